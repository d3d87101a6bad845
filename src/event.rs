//! What passes between the stages: the [`Batch`] of serialized events (with each event's
//! [`EventId`], table and time as an [`Item`]) that normalization fills and a sink sends,
//! the [`Rejected`] events a sink hands back, and the [`SourceRef`] of a row that events and
//! dead letters carry. This module depends on nothing but [`crate::tables`], so every stage
//! (normalize, sink, deadletter, drain) can import it without importing another stage.
//!
//! A batch does not call into the normalizer: the normalizer asks for an [`EventWriter`]
//! ([`Batch::begin_event`]), writes the event's JSON into its buffer and finishes it with the
//! event's metadata.

use crate::tables::TableName;
use std::ops::Range;

/// An event id: 32 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub [u8; 32]);

impl EventId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex is ASCII")
    }
}

impl std::fmt::Debug for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Metadata of one event in a [`Batch`].
#[derive(Debug, Clone)]
pub struct Item {
    /// Byte range of the event's JSON in [`Batch::ndjson`] (without the trailing newline).
    pub range: Range<usize>,
    /// The event id.
    pub id: EventId,
    /// The table the event came from.
    pub table: TableName,
    /// Event time (properties.Timestamp) in Unix seconds, when it parsed.
    pub time: Option<f64>,
}

/// Events serialized back to back, one JSON object per line, with per-event metadata.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    data: Vec<u8>,
    items: Vec<Item>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch::default()
    }

    /// Starts one event: write its JSON (one line, no newline) into [`EventWriter::out`],
    /// then [`EventWriter::finish`] it with its metadata.
    pub fn begin_event(&mut self) -> EventWriter<'_> {
        let start = self.data.len();
        EventWriter { batch: self, start }
    }

    /// Appends an already serialized event (one line of JSON, no newline).
    pub fn push_json(&mut self, id: EventId, table: TableName, time: Option<f64>, json: &[u8]) {
        let mut w = self.begin_event();
        w.out().extend_from_slice(json);
        w.finish(id, table, time);
    }

    /// All events as NDJSON, each line ending in `\n`.
    pub fn ndjson(&self) -> &[u8] {
        &self.data
    }

    /// Per-event metadata, in order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The JSON of event `i`.
    pub fn event(&self, i: usize) -> &[u8] {
        &self.data[self.items[i].range.clone()]
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Size of [`Batch::ndjson`] in bytes.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Removes every event, keeping the allocations.
    pub fn clear(&mut self) {
        self.data.clear();
        self.items.clear();
    }

    /// A new batch holding events `range` of this one (used to split a batch).
    pub fn slice(&self, range: Range<usize>) -> Batch {
        let mut b = Batch::new();
        for i in range {
            let it = &self.items[i];
            b.push_json(it.id, it.table.clone(), it.time, self.event(i));
        }
        b
    }
}

/// One event being appended to a [`Batch`] ([`Batch::begin_event`]). Dropping it without
/// [`EventWriter::finish`] leaves the bytes written so far in the buffer, so always finish.
pub struct EventWriter<'a> {
    batch: &'a mut Batch,
    start: usize,
}

impl EventWriter<'_> {
    /// The buffer the event's JSON is appended to.
    #[inline]
    pub fn out(&mut self) -> &mut Vec<u8> {
        &mut self.batch.data
    }

    /// Ends the event: records its range and metadata and the newline after it.
    #[inline]
    pub fn finish(self, id: EventId, table: TableName, time: Option<f64>) {
        let end = self.batch.data.len();
        self.batch.data.push(b'\n');
        self.batch.items.push(Item {
            range: self.start..end,
            id,
            table,
            time,
        });
    }
}

/// An event of a batch the destination refused for good (a mapping error, say) while it took
/// the others: the caller dead-letters it and goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Position of the event in the batch.
    pub index: usize,
    /// The destination's reason (error type and reason; no secrets).
    pub reason: String,
}

/// Where a row came from: the export container and blob (or, for local files, no container and
/// the path relative to the input root), and the byte offset of the row's first byte.
#[derive(Debug, Clone, Copy)]
pub struct SourceRef<'a> {
    /// Export container, `None` for local files.
    pub container: Option<&'a str>,
    /// Blob name, or the local path relative to the input root.
    pub blob: &'a str,
    /// Byte offset of the row in the blob or file.
    pub offset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_keeps_events_as_ndjson() {
        let mut b = Batch::new();
        let id = EventId([b'a'; 32]);
        b.push_json(id, "T".into(), Some(1.5), br#"{"x":1}"#);
        let mut w = b.begin_event();
        w.out().extend_from_slice(br#"{"y":2}"#);
        w.finish(id, "U".into(), None);
        assert_eq!(b.ndjson(), b"{\"x\":1}\n{\"y\":2}\n");
        assert_eq!(b.event(1), br#"{"y":2}"#);
        let s = b.slice(1..2);
        assert_eq!(s.ndjson(), b"{\"y\":2}\n");
        assert_eq!(s.items()[0].table, "U");
    }
}
