//! One drain under its lease: the watermark of acknowledged batches and the checkpoint writes.

use super::Drainer;
use crate::deliver::{Coalesce, Pipeline};
use crate::source::BlobProps;
use crate::state::{Checkpoint, Lease, StoreError};
use chrono::Utc;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::warn;

/// Where a submitted batch ends: the checkpoint it allows once it and every batch before it are
/// acknowledged, and the counters up to it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mark {
    /// First byte after the batch's last row.
    pub(super) offset: u64,
    /// Bytes examined (the checkpoint's `length`): `offset` mid-blob, the blob length at the end.
    pub(super) examined: u64,
    /// Rows, events and dead letters of this drain up to the batch end (before refusals).
    pub(super) rows: u64,
    pub(super) events: u64,
    pub(super) dead: u64,
    /// Rows and bytes a transform's `where` dropped, up to the batch end.
    pub(super) filtered: (u64, u64),
    /// The blob is finished with this batch.
    pub(super) closed: bool,
}

/// State of one drain under its lease.
pub(super) struct Run<'a> {
    pub(super) d: &'a Drainer,
    pub(super) lease: &'a Lease,
    pub(super) lost: &'a AtomicBool,
    pub(super) props: &'a BlobProps,
    pub(super) cp: Checkpoint,
    pub(super) version: Option<String>,
    pub(super) base: (u64, u64, u64),
    /// Filtered rows and bytes of the checkpoint before this drain.
    pub(super) base_filtered: (u64, u64),
    /// The end of the longest acknowledged prefix, and the counters up to it.
    pub(super) watermark: Option<Mark>,
    /// Events the sink refused one by one in acknowledged batches (dead-lettered).
    pub(super) refused: u64,
    /// Newest event time among the batches the sink acknowledged.
    pub(super) newest: Option<f64>,
    pub(super) coalesce: Coalesce,
}

impl Run<'_> {
    /// Moves the watermark over every batch acknowledged so far (their dead letters are
    /// stored), and writes the checkpoint when one is due.
    pub(super) async fn absorb(&mut self, pipe: &mut Pipeline<Mark>) -> anyhow::Result<()> {
        self.take(pipe);
        if self.coalesce.due() {
            self.write().await?;
        }
        Ok(())
    }

    pub(super) fn take(&mut self, pipe: &mut Pipeline<Mark>) {
        while let Some(a) = pipe.take_acked() {
            let from = self.watermark.map_or(self.cp.offset, |w| w.offset);
            self.coalesce.advanced(a.mark.offset.saturating_sub(from));
            self.refused += a.refused.len() as u64;
            self.newest = crate::metrics::newest(self.newest, &a.batch);
            self.watermark = Some(a.mark);
            pipe.recycle(a.batch);
        }
    }

    /// Writes the watermark as the checkpoint (nothing past it was acknowledged).
    pub(super) async fn write(&mut self) -> anyhow::Result<()> {
        let Some(w) = self.watermark else {
            return Ok(());
        };
        if self.lost.load(Ordering::SeqCst) {
            anyhow::bail!(
                "lease on {} lost; stopping before the checkpoint",
                self.lease.key
            );
        }
        self.cp.offset = w.offset;
        self.cp.length = w.examined;
        self.cp.rows = self.base.0 + w.rows;
        self.cp.events = self.base.1 + w.events.saturating_sub(self.refused);
        self.cp.dead_lettered = self.base.2 + w.dead + self.refused;
        self.cp.filtered = self.base_filtered.0 + w.filtered.0;
        self.cp.filtered_bytes = self.base_filtered.1 + w.filtered.1;
        self.cp.closed = w.closed;
        self.cp.etag = self.props.etag.clone();
        self.cp.incarnation = self.props.incarnation.clone();
        self.cp.blob_type = self.props.blob_type;
        self.cp.last_seen = Utc::now();
        match self
            .d
            .store
            .put(self.lease, &self.cp, self.version.as_deref())
            .await
        {
            Ok(v) => {
                self.version = Some(v);
                self.coalesce.wrote();
                Ok(())
            }
            Err(StoreError::Conflict(k)) => {
                anyhow::bail!("checkpoint of {k} changed under this drain (lease lost)")
            }
            Err(StoreError::Other(e)) => Err(e),
        }
    }

    /// After a failure: keeps what was acknowledged before it (fewer re-sends), then fails.
    pub(super) async fn save_then_fail(
        &mut self,
        pipe: &mut Pipeline<Mark>,
        e: anyhow::Error,
    ) -> anyhow::Error {
        self.take(pipe);
        if self.coalesce.dirty() {
            if let Err(w) = self.write().await {
                warn!(blob = %self.lease.key, error = %format!("{w:#}"), "cannot checkpoint what was acknowledged before a failure");
            }
        }
        e
    }
}
