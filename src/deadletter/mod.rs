//! Dead letters: rows that could not become events, kept with the reason, their location and
//! their original bytes so nothing is lost silently — and events a sink refused one by one
//! (an Elasticsearch mapping error), kept as the event with the sink's reason
//! ([`DeadLetter::rejected`]). [`DeadLetterFile`] writes them as NDJSON
//! for CLI runs; the Functions handler writes them to a blob container.

pub mod blob;
pub mod stored;

use crate::event::SourceRef;
use crate::rows::RowError;
use async_trait::async_trait;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One dead-lettered row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeadLetter {
    /// Why the row was refused.
    pub reason: String,
    /// Export container (`null` for local files).
    pub container: Option<String>,
    /// Blob name, or local path relative to the input root.
    pub blob: String,
    /// Byte offset of the row's first byte.
    pub offset: u64,
    /// Length of the row in bytes (without terminator).
    pub length: u64,
    /// The original bytes, when they are UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
    /// The original bytes, base64, when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_base64: Option<String>,
    /// True when only a prefix of the row is kept (over-long rows).
    #[serde(default)]
    pub truncated: bool,
    /// Set when a sink refused the event (not the row): the sink's name. `original` is then
    /// the event as the sink was given it, not the export row. Absent on row dead letters,
    /// so older readers see the record they know.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_by: Option<String>,
    /// The refused event's id (with `rejected_by`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

impl DeadLetter {
    /// A record for the row at `src` with bytes `bytes` (possibly a prefix of a row `length`
    /// bytes long).
    pub fn new(err: &RowError, src: SourceRef<'_>, bytes: &[u8], length: u64) -> Self {
        let (original, original_base64) = match std::str::from_utf8(bytes) {
            Ok(s) => (Some(s.to_string()), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            ),
        };
        DeadLetter {
            reason: err.to_string(),
            container: src.container.map(str::to_string),
            blob: src.blob.to_string(),
            offset: src.offset,
            length,
            original,
            original_base64,
            truncated: (bytes.len() as u64) < length,
            rejected_by: None,
            event_id: None,
        }
    }

    /// A record for an event (`event`, its JSON as sent to the sink) that sink `sink`
    /// refused for `reason`. The location comes from the event's own `source` field.
    pub fn rejected(sink: &str, id: &str, event: &[u8], reason: &str) -> Self {
        #[derive(serde::Deserialize)]
        struct Event {
            source: Option<Source>,
        }
        #[derive(serde::Deserialize)]
        struct Source {
            container: Option<String>,
            #[serde(default)]
            blob: String,
            #[serde(default)]
            offset: u64,
        }
        let src = serde_json::from_slice::<Event>(event)
            .ok()
            .and_then(|e| e.source);
        let (container, blob, offset) = match src {
            Some(s) => (s.container, s.blob, s.offset),
            None => (None, String::new(), 0),
        };
        DeadLetter {
            reason: format!("{sink} sink refused event {id}: {reason}"),
            container,
            blob,
            offset,
            length: event.len() as u64,
            original: Some(String::from_utf8_lossy(event).into_owned()),
            original_base64: None,
            truncated: false,
            rejected_by: Some(sink.to_string()),
            event_id: Some(id.to_string()),
        }
    }

    /// Records for the events of `batch` that sink `sink` refused ([`crate::sink::Sink::deliver`]).
    pub fn refused(
        sink: &str,
        batch: &crate::event::Batch,
        refused: &[crate::event::Rejected],
    ) -> Vec<Self> {
        refused
            .iter()
            .map(|r| {
                Self::rejected(
                    sink,
                    batch.items()[r.index].id.as_str(),
                    batch.event(r.index),
                    &r.reason,
                )
            })
            .collect()
    }

    /// The record as one JSON line (with newline).
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).expect("serializable");
        v.push(b'\n');
        v
    }
}

/// Where dead letters go.
#[async_trait]
pub trait DeadLetterSink: Send + Sync {
    /// Stores records durably; returns once they are stored.
    async fn store(&self, records: &[DeadLetter]) -> anyhow::Result<()>;
    /// Human-readable location for messages.
    fn location(&self) -> String;
}

/// Dead letters appended to a local NDJSON file, created on the first record.
#[derive(Debug)]
pub struct DeadLetterFile {
    path: PathBuf,
    out: Mutex<Option<BufWriter<File>>>,
    /// Start the file empty on the first record instead of appending.
    truncate: bool,
}

impl DeadLetterFile {
    /// Dead letters will be appended to `path`; nothing is created until the first record.
    pub fn new(path: &Path) -> Self {
        DeadLetterFile {
            path: path.to_path_buf(),
            out: Mutex::new(None),
            truncate: false,
        }
    }

    /// Like [`DeadLetterFile::new`], but a run that dead-letters anything replaces the file's
    /// old content (used beside a fresh `--out FILE`, so a re-run does not repeat records).
    pub fn fresh(path: &Path) -> Self {
        DeadLetterFile {
            truncate: true,
            ..Self::new(path)
        }
    }

    /// Flushes and syncs the file, if one was created.
    pub fn finish(&self) -> std::io::Result<()> {
        let mut g = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = g.as_mut() {
            w.flush()?;
            w.get_ref().sync_data()?;
        }
        Ok(())
    }

    /// Stores records synchronously.
    pub fn store_sync(&self, records: &[DeadLetter]) -> std::io::Result<()> {
        let mut g = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            let mut o = OpenOptions::new();
            o.create(true);
            if self.truncate {
                o.write(true).truncate(true);
            } else {
                o.append(true);
            }
            let f = o.open(&self.path)?;
            *g = Some(BufWriter::new(f));
        }
        let w = g.as_mut().expect("opened above");
        for r in records {
            w.write_all(&r.to_line())?;
        }
        w.flush()
    }
}

#[async_trait]
impl DeadLetterSink for DeadLetterFile {
    async fn store(&self, records: &[DeadLetter]) -> anyhow::Result<()> {
        self.store_sync(records)?;
        Ok(())
    }
    fn location(&self) -> String {
        self.path.display().to_string()
    }
}
