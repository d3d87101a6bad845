//! The drain's settings and what it reports: [`DrainSettings`], [`Contention`], [`Outcome`] and
//! the [`Report`] of one drain (with the fields of its `drain_summary` line).

use crate::normalize::Format;
use crate::pipeline::{Filter, Stats};
use crate::source::BlobKey;
use serde::Serialize;
use std::time::Duration;

/// How a drain behaves.
#[derive(Debug, Clone)]
pub struct DrainSettings {
    /// Bytes per ranged read (`RELAY_READ_CHUNK`).
    pub chunk: usize,
    /// Events per batch (`RELAY_BATCH_MAX_EVENTS`).
    pub batch_max_events: usize,
    /// Bytes per batch (`RELAY_BATCH_MAX_BYTES`).
    pub batch_max_bytes: usize,
    /// How long after its hour and its last write a blob counts as closed
    /// (`RELAY_CLOSE_GRACE`).
    pub close_grace: Duration,
    /// Lease duration on a checkpoint (`RELAY_LEASE_SECONDS`, 15–60 s); renewed every third.
    pub lease_ttl: Duration,
    /// Event format.
    pub format: Format,
    /// Table / tenant allow-lists.
    pub filter: Filter,
    /// Longest accepted row.
    pub max_line: usize,
    /// Blobs drained at once by this process (`RELAY_DRAIN_CONCURRENCY`); bounds memory.
    pub concurrency: usize,
}

impl Default for DrainSettings {
    fn default() -> Self {
        DrainSettings {
            chunk: 4 << 20,
            batch_max_events: 500,
            batch_max_bytes: 1_000_000,
            close_grace: Duration::from_secs(30 * 60),
            lease_ttl: Duration::from_secs(30),
            format: Format::Normalized,
            filter: Filter::default(),
            max_line: crate::rows::DEFAULT_MAX_LINE,
            concurrency: 4,
        }
    }
}

/// How long past the drain deadline a batch already handed to the sink may take (retries and
/// back-off included) before the drain gives up on it. Keeps an invocation inside
/// `functionTimeout` (`RELAY_MAX_DRAIN_TIME` + this must stay below it).
pub const SEND_GRACE: Duration = Duration::from_secs(60);

/// What to do when another drain holds the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contention {
    /// Return [`Outcome::Busy`] at once: the holder will forward the rows.
    Skip,
    /// Retry for up to this long, then return [`Outcome::Busy`].
    Wait(Duration),
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Read up to the committed length.
    Drained,
    /// Nothing new since the last drain.
    UpToDate,
    /// Another drain holds the blob.
    Busy,
    /// The blob does not exist (any more).
    Missing,
    /// Stopped early (shutdown or deadline) at a checkpoint.
    Stopped,
    /// Not started: no drain slot (`RELAY_DRAIN_CONCURRENCY`) came free before the deadline or
    /// shutdown. Nothing was read and the checkpoint is unchanged; Tail drains the blob later.
    Deferred,
}

/// What one drain did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The blob.
    pub blob: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Offset the drain started at.
    pub from: u64,
    /// Offset checkpointed at the end.
    pub to: u64,
    /// Committed length of the blob when the drain started.
    pub length: u64,
    /// Rows, events, dead letters, skipped rows and bytes read by this drain.
    pub stats: Stats,
    /// Batches sent.
    pub batches: u64,
    /// The blob is closed (its last row processed).
    pub closed: bool,
    /// The blob was started over (shrunk or re-created).
    pub restarted: bool,
    /// Newest event time (properties.Timestamp, Unix seconds) among the events this drain
    /// delivered; the `lag` of the drain summary is measured from it.
    pub newest_event: Option<f64>,
}

impl Report {
    /// The fields of the `drain_summary` log line ([`crate::metrics::drain_summary`]).
    pub fn summary(&self) -> crate::metrics::Summary<'_> {
        crate::metrics::Summary {
            outcome: &self.outcome,
            stats: &self.stats,
            batches: self.batches,
            offset: self.to,
            length: self.length,
            newest_event: self.newest_event,
        }
    }

    pub(super) fn new(key: &BlobKey, outcome: Outcome) -> Self {
        Report {
            blob: key.to_string(),
            outcome,
            from: 0,
            to: 0,
            length: 0,
            stats: Stats::default(),
            batches: 0,
            closed: false,
            restarted: false,
            newest_event: None,
        }
    }
}
