//! Sinks: where events go. Everything upstream fills a [`Batch`] (events serialized back to
//! back as NDJSON) and hands it to a [`Sink`], which returns only once the destination
//! acknowledged every event in it. The caller advances its checkpoint after that, and never
//! before: delivery is at-least-once, and event ids let receivers drop duplicates.
//!
//! One file per sink: [`stdout`], [`file`], [`webhook`], [`queue`], [`logs_ingestion`] (Azure
//! Monitor Logs Ingestion API) and [`elasticsearch`] (`_bulk`); [`http`] is the HTTP-batch core
//! the webhook, Logs Ingestion and Elasticsearch sinks share, [`retry`] holds the retry policy
//! and counters every network sink shares, and [`config`] is the factory: it reads the
//! `RELAY_*` settings through [`crate::config::Settings`] and builds the configured sink. Each
//! sink's config struct lives next to it. [`Batch`], [`EventId`] and [`Rejected`] live in
//! [`crate::event`] and are re-exported here.
//!
//! A destination may refuse single events for good while taking the rest (Elasticsearch
//! mapping errors): [`Sink::deliver`] hands those back as [`Rejected`], and the caller writes
//! them to the dead-letter destination before it advances its checkpoint.

pub mod answer;
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

pub use crate::event::{Batch, EventId, Item, Rejected};
pub use config::{SinkConfig, SinkTarget};
pub use retry::SinkStats;

use async_trait::async_trait;

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

    /// Most batches this sink takes at once, when it has a limit of its own: a sink that writes
    /// events in the order it is given them (file, stdout) says `Some(1)`, so that the
    /// pipelined delivery ([`crate::deliver`]) keeps its output in input order. `None`: as many
    /// as `RELAY_INFLIGHT_BATCHES`.
    fn max_in_flight(&self) -> Option<usize> {
        None
    }

    /// Counters since the sink was built (events and bytes acknowledged, retries by reason,
    /// seconds throttled). Take the difference of two snapshots ([`SinkStats::since`]) for one
    /// invocation's share. Sinks without network I/O report zeros.
    fn stats(&self) -> SinkStats {
        SinkStats::default()
    }
}
