//! Checkpoints: how far each export blob has been forwarded, and who is draining it right now.
//!
//! One [`Checkpoint`] per blob records the offset up to which every row was acknowledged by the
//! sink (or dead-lettered), the blob's length, ETag and creation time when it was last drained,
//! whether it is closed, and when it was first and last seen. The drain writes it only after the
//! sink acknowledged a batch, so a crash re-sends at most the batch in flight.
//!
//! [`CheckpointStore`] is the seam: Azure Blob Storage ([`azure::BlobCheckpointStore`], the
//! `AzureWebJobsStorage` connection, container `RELAY_STATE_CONTAINER`) for the Functions
//! handler and a local directory ([`local::DirCheckpointStore`], `--state DIR`) for CLI runs.
//! Two mechanisms keep concurrent drains of one blob apart:
//! * a **lease** per checkpoint ([`CheckpointStore::acquire`]): only its holder drains the blob;
//!   it expires on its own when the holder dies, so a crash never wedges a blob;
//! * **optimistic concurrency** on every write ([`CheckpointStore::put`] with the version read
//!   before): if the lease was lost and someone else wrote in between, the write fails instead of
//!   moving the offset backwards or forwards under the other drain.

pub mod azure;
pub mod local;

use crate::source::{BlobKey, BlobType};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Progress of one export blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format version of this record.
    #[serde(default = "one")]
    pub v: u32,
    /// Export container.
    pub container: String,
    /// Blob name.
    pub blob: String,
    /// Every byte below this was forwarded (or dead-lettered, or filtered out); the next drain
    /// starts here. Always the start of a row.
    pub offset: u64,
    /// Bytes of the blob examined so far (its committed length at the last complete drain).
    pub length: u64,
    /// Rows forwarded, dead-lettered or filtered below `offset`.
    pub rows: u64,
    /// Events sent below `offset`.
    #[serde(default)]
    pub events: u64,
    /// Rows dead-lettered below `offset`.
    #[serde(default)]
    pub dead_lettered: u64,
    /// Rows a transform's `where` dropped below `offset` (`RELAY_TRANSFORMS`).
    #[serde(default)]
    pub filtered: u64,
    /// Bytes of those rows.
    #[serde(default)]
    pub filtered_bytes: u64,
    /// ETag of the blob when last drained.
    pub etag: String,
    /// Creation time (or another incarnation marker) of the blob when last drained.
    #[serde(default)]
    pub incarnation: Option<String>,
    /// Blob type when last drained.
    #[serde(default = "unknown")]
    pub blob_type: BlobType,
    /// True once the blob stopped growing and its final row, terminated or not, was processed.
    pub closed: bool,
    /// When the relay first saw the blob.
    pub first_seen: DateTime<Utc>,
    /// When the relay last drained it.
    pub last_seen: DateTime<Utc>,
    /// How many times the blob was started over (shrunk or re-created).
    #[serde(default)]
    pub restarts: u32,
}

fn one() -> u32 {
    1
}

fn unknown() -> BlobType {
    BlobType::Unknown
}

impl Checkpoint {
    /// A fresh checkpoint at offset 0.
    pub fn new(key: &BlobKey, now: DateTime<Utc>) -> Self {
        Checkpoint {
            v: 1,
            container: key.container.clone(),
            blob: key.blob.clone(),
            offset: 0,
            length: 0,
            rows: 0,
            events: 0,
            dead_lettered: 0,
            filtered: 0,
            filtered_bytes: 0,
            etag: String::new(),
            incarnation: None,
            blob_type: BlobType::Unknown,
            closed: false,
            first_seen: now,
            last_seen: now,
            restarts: 0,
        }
    }

    /// The blob this checkpoint belongs to.
    pub fn key(&self) -> BlobKey {
        BlobKey::new(&self.container, &self.blob)
    }

    /// What listings report about it.
    pub fn summary(&self) -> Summary {
        Summary {
            key: self.key(),
            offset: self.offset,
            length: self.length,
            closed: self.closed,
            filtered: self.filtered,
            filtered_bytes: self.filtered_bytes,
        }
    }
}

/// The part of a checkpoint listings return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The blob.
    pub key: BlobKey,
    /// Its checkpoint offset.
    pub offset: u64,
    /// Bytes examined so far.
    pub length: u64,
    /// Closed.
    pub closed: bool,
    /// Rows filtered out by transforms below the offset.
    pub filtered: u64,
    /// Bytes of those rows.
    pub filtered_bytes: u64,
}

/// A checkpoint as stored, with the version to pass to the next [`CheckpointStore::put`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Opaque version (an ETag in Azure).
    pub version: String,
}

/// A held lease on one blob's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The blob.
    pub key: BlobKey,
    /// Lease id.
    pub id: String,
    /// How long it lasts without renewal.
    pub ttl: Duration,
}

/// Failures of checkpoint writes that callers handle specially.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The checkpoint changed since it was read, or the lease is no longer ours.
    #[error("checkpoint of {0} changed under us (lease lost?)")]
    Conflict(BlobKey),
    /// Anything else (network, permissions, corrupt record).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Where checkpoints live. See the module documentation.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// A short description for logs.
    fn describe(&self) -> String;

    /// Takes the lease on `key`'s checkpoint for `ttl` (15–60 s). `Ok(None)` when someone else
    /// holds it.
    async fn acquire(&self, key: &BlobKey, ttl: Duration) -> anyhow::Result<Option<Lease>>;

    /// Extends a held lease by its ttl. Fails when the lease was lost.
    async fn renew(&self, lease: &Lease) -> anyhow::Result<()>;

    /// Gives a lease up so the next drain need not wait for it to expire.
    async fn release(&self, lease: &Lease) -> anyhow::Result<()>;

    /// The stored checkpoint of `key`, if any.
    async fn get(&self, key: &BlobKey) -> anyhow::Result<Option<Stored>>;

    /// Writes `cp` under `lease`, if the stored version is still `expected` (`None`: nothing
    /// stored yet). Returns the new version.
    async fn put(
        &self,
        lease: &Lease,
        cp: &Checkpoint,
        expected: Option<&str>,
    ) -> Result<String, StoreError>;

    /// Checkpoints of `container` whose blob names start with `prefix`.
    async fn list(&self, container: &str, prefix: &str) -> anyhow::Result<Vec<Summary>>;

    /// Every blob whose checkpoint is not closed (the blobs Tail keeps an eye on).
    async fn list_open(&self) -> anyhow::Result<Vec<BlobKey>>;

    /// Claims the periodic job `name` when it last ran more than `every` ago (or never): true
    /// for exactly one of several concurrent callers.
    async fn claim(&self, name: &str, every: Duration) -> anyhow::Result<bool>;
}
