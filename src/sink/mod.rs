//! Sinks: where events go. Everything upstream fills a [`Batch`] (events serialized back to
//! back as NDJSON) and hands it to a [`Sink`], which returns only once the destination
//! acknowledged every event in it. The caller advances its checkpoint after that, and never
//! before: delivery is at-least-once, and event ids let receivers drop duplicates.
//!
//! One file per sink: [`stdout`], [`file`], [`webhook`], [`queue`], [`logs_ingestion`] (Azure
//! Monitor Logs Ingestion API) and [`elasticsearch`] (`_bulk`); [`http`] is the HTTP-batch core
//! the webhook, Logs Ingestion and Elasticsearch sinks share, [`retry`] holds the retry policy
//! and counters every network sink shares, and [`config`] reads the `RELAY_*` settings and
//! builds the configured sink.
//!
//! A destination may refuse single events for good while taking the rest (Elasticsearch
//! mapping errors): [`Sink::deliver`] hands those back as [`Rejected`], and the caller writes
//! them to the dead-letter destination before it advances its checkpoint.

pub mod config;
pub mod elasticsearch;
pub mod es_templates;
pub mod file;
pub mod http;
pub mod logs_ingestion;
pub mod queue;
pub mod retry;
pub mod stdout;
pub mod webhook;

pub use config::{SinkConfig, SinkTarget};
pub use retry::SinkStats;

use crate::tables::TableName;
use async_trait::async_trait;
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

    /// Appends one event: `write` appends its JSON (one line, no newline) to the buffer.
    pub fn push_event(
        &mut self,
        id: EventId,
        table: TableName,
        time: Option<f64>,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        let start = self.data.len();
        write(&mut self.data);
        let end = self.data.len();
        self.data.push(b'\n');
        self.items.push(Item {
            range: start..end,
            id,
            table,
            time,
        });
    }

    /// Appends an already serialized event (one line of JSON, no newline).
    pub fn push_json(&mut self, id: EventId, table: TableName, time: Option<f64>, json: &[u8]) {
        self.push_event(id, table, time, |out| out.extend_from_slice(json));
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

/// Why a sink gave up on a batch. Either way the caller must not advance its checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The destination refused the batch in a way retrying will not fix (a 4xx other than
    /// 408/413/429, bad credentials, a missing queue).
    #[error("permanent error from {sink}: {message}")]
    Permanent {
        /// Sink kind.
        sink: &'static str,
        /// What happened (no secrets).
        message: String,
    },
    /// Transient failures went on past the retry budget.
    #[error("gave up on {sink} after retrying: {message}")]
    RetriesExhausted {
        /// Sink kind.
        sink: &'static str,
        /// The last failure (no secrets).
        message: String,
    },
    /// A local I/O failure (file, stdout).
    #[error("I/O error writing to {sink}: {source}")]
    Io {
        /// Sink kind.
        sink: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
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

/// A destination for events.
#[async_trait]
pub trait Sink: Send + Sync {
    /// Short name for logs (`stdout`, `file`, `webhook`, `queue`).
    fn name(&self) -> &'static str;

    /// Delivers every event of `batch`. Returns `Ok` only once the destination acknowledged all
    /// of them; on `Err` some may have been delivered (the caller re-sends the batch later).
    async fn send(&self, batch: &Batch) -> Result<(), SinkError>;

    /// Like [`Sink::send`], but events the destination refused for good, one by one, come back
    /// instead of failing the batch: `Ok` means every other event is acknowledged, and the
    /// caller must dead-letter the returned ones before advancing its checkpoint. Sinks that
    /// refuse only whole batches keep this default.
    async fn deliver(&self, batch: &Batch) -> Result<Vec<Rejected>, SinkError> {
        self.send(batch).await.map(|()| Vec::new())
    }

    /// Flushes anything buffered; called once when a run ends.
    async fn finish(&self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Counters since the sink was built (events and bytes acknowledged, retries by reason,
    /// seconds throttled). Take the difference of two snapshots ([`SinkStats::since`]) for one
    /// invocation's share. Sinks without network I/O report zeros.
    fn stats(&self) -> SinkStats {
        SinkStats::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_keeps_events_as_ndjson() {
        let mut b = Batch::new();
        let id = EventId([b'a'; 32]);
        b.push_json(id, "T".into(), Some(1.5), br#"{"x":1}"#);
        b.push_event(id, "U".into(), None, |o| o.extend_from_slice(br#"{"y":2}"#));
        assert_eq!(b.ndjson(), b"{\"x\":1}\n{\"y\":2}\n");
        assert_eq!(b.event(1), br#"{"y":2}"#);
        let s = b.slice(1..2);
        assert_eq!(s.ndjson(), b"{\"y\":2}\n");
        assert_eq!(s.items()[0].table, "U");
    }
}
