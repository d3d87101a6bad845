//! The drain: forwards the new rows of one export blob, exactly where the last drain stopped.
//!
//! One call of [`Drainer::drain`], for one blob:
//! 1. takes the lease on the blob's checkpoint (or skips / waits when another drain holds it:
//!    two drains of one blob never run at once, so nothing is sent twice by racing);
//! 2. reads the checkpoint and the blob's properties; a blob that shrank, was re-created (new
//!    creation time) or, for non-append blobs, was rewritten (new ETag) starts over at 0;
//! 3. reads from the checkpoint offset to the **committed length** seen in step 2 with ranged
//!    reads of bounded size (the next one prefetched while the current one is processed), cuts
//!    rows with the [`Framer`], and turns them into events or dead letters with the
//!    [`RowProcessor`];
//! 4. whenever a batch is full (`RELAY_BATCH_MAX_EVENTS` / `RELAY_BATCH_MAX_BYTES`), hands it to
//!    the sink, stores the batch's dead letters, and only then writes the checkpoint with
//!    [`Framer::resume_offset`] (the first byte after the last row in the batch). A crash
//!    anywhere re-sends at most that one batch, with the same event ids;
//! 5. at the end, an **open** blob keeps its unterminated last line for later (the offset stays
//!    at its first byte); a **closed** blob (see [`is_closed`]) gets it processed as a row.
//!
//! Memory is bounded by two read chunks, one partial row and one batch, whatever the blob size.
//! A drain stops early, at a checkpoint, on shutdown or when its deadline passes.
//!
//! Every wait is bounded by the deadline (the Functions host kills the whole worker when one
//! invocation outlives `functionTimeout`): the wait for a drain slot ([`Outcome::Deferred`]
//! when none came free), the wait for another drain's lease, and a sink send with its retries
//! and back-off, which may run [`SEND_GRACE`] past the deadline and then fails the drain
//! before the checkpoint (the batch is sent again, with the same ids, by the next drain).

use crate::deadletter::{DeadLetter, DeadLetterSink};
use crate::event::Batch;
use crate::pipeline::RowProcessor;
use crate::rows::Framer;
use crate::sink::Sink;
use crate::source::{BlobKey, BlobProps, BlobType, Scoped};
use crate::state::{Checkpoint, CheckpointStore, Lease, StoreError};
mod lease;
mod report;

use lease::LeaseGuard;
pub use report::{Contention, DrainSettings, Outcome, Report, SEND_GRACE};

use anyhow::Context;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// True when `key` will not grow any more: it is not an append blob, or its hour ended and it
/// was last written more than `grace` ago. Only then is a final unterminated line a row.
pub fn is_closed(key: &BlobKey, props: &BlobProps, now: DateTime<Utc>, grace: Duration) -> bool {
    if matches!(props.blob_type, BlobType::Block | BlobType::Page) {
        return true;
    }
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let quiet = now.signed_duration_since(props.last_modified) >= grace;
    let hour_over = key
        .hour()
        .is_none_or(|h| now >= h + chrono::Duration::hours(1) + grace);
    quiet && hour_over
}

/// Why a stored checkpoint no longer applies to the blob, if it does not.
pub fn restart_reason(cp: &Checkpoint, props: &BlobProps) -> Option<String> {
    if props.length < cp.offset || props.length < cp.length {
        return Some(format!(
            "blob shrank from {} to {} bytes",
            cp.length.max(cp.offset),
            props.length
        ));
    }
    if let (Some(was), Some(is)) = (&cp.incarnation, &props.incarnation) {
        if was != is {
            return Some(format!("blob was re-created ({was} -> {is})"));
        }
    }
    if cp.blob_type != BlobType::Unknown && props.blob_type != cp.blob_type {
        return Some(format!(
            "blob type changed from {:?} to {:?}",
            cp.blob_type, props.blob_type
        ));
    }
    // Append blobs change ETag on every append; other blobs only when rewritten.
    if props.blob_type != BlobType::Append && !cp.etag.is_empty() && cp.etag != props.etag {
        return Some("blob was rewritten (ETag changed)".into());
    }
    None
}

/// Drains blobs. Cheap to share (`Arc`); one instance serves every invocation.
pub struct Drainer {
    source: Scoped,
    store: Arc<dyn CheckpointStore>,
    sink: Arc<dyn Sink>,
    dead: Arc<dyn DeadLetterSink>,
    settings: DrainSettings,
    stop: watch::Receiver<bool>,
    permits: Semaphore,
}

impl std::fmt::Debug for Drainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drainer")
            .field("source", &self.source)
            .field("store", &self.store.describe())
            .field("sink", &self.sink.name())
            .field("dead_letters", &self.dead.location())
            .field("settings", &self.settings)
            .finish()
    }
}

/// Aborts a spawned read when the drain ends before using it.
struct Prefetch(JoinHandle<anyhow::Result<Bytes>>);

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// State of one drain under its lease.
struct Run<'a> {
    d: &'a Drainer,
    lease: &'a Lease,
    lost: &'a AtomicBool,
    cp: Checkpoint,
    version: Option<String>,
    proc: RowProcessor,
    batch: Batch,
    dead: Vec<DeadLetter>,
    base: (u64, u64, u64),
    /// Filtered rows and bytes of the checkpoint before this drain.
    base_filtered: (u64, u64),
    batches: u64,
    /// Newest event time among the batches the sink acknowledged.
    newest: Option<f64>,
    /// Latest moment a sink send may still be running (deadline + [`SEND_GRACE`]).
    send_by: Option<Instant>,
}

impl Run<'_> {
    /// Sends the batch, stores the dead letters, then checkpoints `offset`, in that order.
    async fn commit(
        &mut self,
        offset: u64,
        examined: u64,
        props: &BlobProps,
    ) -> anyhow::Result<()> {
        if !self.batch.is_empty() {
            let send = self.d.sink.deliver(&self.batch);
            let sent = match self.send_by {
                // Cancelling the send is safe: nothing is checkpointed, so the next drain sends
                // the batch again with the same event ids.
                Some(by) => tokio::time::timeout_at(by.into(), send)
                    .await
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "sink {} did not accept a batch before the invocation's deadline \
                             (retries included); the rows stay for the next drain",
                            self.d.sink.name()
                        )
                    })?,
                None => send.await,
            };
            let refused =
                sent.with_context(|| format!("sink {} refused a batch", self.d.sink.name()))?;
            self.newest = crate::metrics::newest(self.newest, &self.batch);
            // Events the sink refused one by one are dead-lettered below, before the checkpoint.
            if !refused.is_empty() {
                let n = refused.len() as u64;
                let sink = self.d.sink.name();
                self.dead
                    .extend(DeadLetter::refused(sink, &self.batch, &refused));
                self.proc.stats.events = self.proc.stats.events.saturating_sub(n);
                self.proc.stats.dead_lettered += n;
            }
            self.batch.clear();
            self.batches += 1;
        }
        if !self.dead.is_empty() {
            self.d.dead.store(&self.dead).await.with_context(|| {
                format!("cannot store dead letters in {}", self.d.dead.location())
            })?;
            self.dead.clear();
        }
        if self.lost.load(Ordering::SeqCst) {
            anyhow::bail!(
                "lease on {} lost; stopping before the checkpoint",
                self.lease.key
            );
        }
        let s = &self.proc.stats;
        self.cp.offset = offset;
        self.cp.length = examined;
        self.cp.rows = self.base.0 + s.rows;
        self.cp.events = self.base.1 + s.events;
        self.cp.dead_lettered = self.base.2 + s.dead_lettered;
        self.cp.filtered = self.base_filtered.0 + s.filtered;
        self.cp.filtered_bytes = self.base_filtered.1 + s.filtered_bytes;
        self.cp.etag = props.etag.clone();
        self.cp.incarnation = props.incarnation.clone();
        self.cp.blob_type = props.blob_type;
        self.cp.last_seen = Utc::now();
        match self
            .d
            .store
            .put(self.lease, &self.cp, self.version.as_deref())
            .await
        {
            Ok(v) => {
                self.version = Some(v);
                Ok(())
            }
            Err(StoreError::Conflict(k)) => {
                anyhow::bail!("checkpoint of {k} changed under this drain (lease lost)")
            }
            Err(StoreError::Other(e)) => Err(e),
        }
    }
}

impl Drainer {
    /// A drainer reading `source`, checkpointing in `store`, sending to `sink`, dead-lettering
    /// to `dead`. Drains stop at their next checkpoint once `stop` turns true.
    pub fn new(
        source: Scoped,
        store: Arc<dyn CheckpointStore>,
        sink: Arc<dyn Sink>,
        dead: Arc<dyn DeadLetterSink>,
        settings: DrainSettings,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Drainer {
            permits: Semaphore::new(settings.concurrency.max(1)),
            source,
            store,
            sink,
            dead,
            settings,
            stop,
        }
    }

    /// The source.
    pub fn source(&self) -> &Scoped {
        &self.source
    }

    /// The checkpoint store.
    pub fn store(&self) -> &Arc<dyn CheckpointStore> {
        &self.store
    }

    /// The settings.
    pub fn settings(&self) -> &DrainSettings {
        &self.settings
    }

    /// The dead-letter destination.
    pub fn dead_letters(&self) -> &Arc<dyn DeadLetterSink> {
        &self.dead
    }

    /// The sink.
    pub fn sink(&self) -> &Arc<dyn Sink> {
        &self.sink
    }

    /// True once shutdown was requested.
    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn past(deadline: Option<Instant>) -> bool {
        deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Drains `key`. See the module documentation. `progress` is told about every chunk read
    /// (its size in bytes).
    pub async fn drain(
        &self,
        key: &BlobKey,
        contention: Contention,
        deadline: Option<Instant>,
        progress: Option<&(dyn Fn(u64) + Send + Sync)>,
    ) -> anyhow::Result<Report> {
        if !self.source.allows(&key.container) {
            anyhow::bail!(
                "container {} is outside the allowed prefix {}",
                key.container,
                self.source.prefix()
            );
        }
        // Memory per drain is bounded; the permit bounds the number of drains. The wait for it
        // is bounded too: by the deadline and by shutdown.
        let Some(_permit) = self.slot(deadline).await? else {
            info!(
                blob = %key,
                "no drain slot came free before the deadline (or shutdown); not started, \
                 checkpoint unchanged (left to Tail)"
            );
            return Ok(Report::new(key, Outcome::Deferred));
        };
        let lease = match self.lease(key, contention, deadline).await? {
            Some(l) => l,
            None => {
                debug!(blob = %key, "another drain holds this blob; skipping");
                return Ok(Report::new(key, Outcome::Busy));
            }
        };
        // Any way out of the drain (error, panic, cancellation) stops renewing and releases the
        // lease: the guard does it on drop.
        let guard = LeaseGuard::new(self.store.clone(), lease);
        let result = self
            .drain_leased(key, guard.lease(), guard.lost(), deadline, progress)
            .await;
        if let Err(e) = guard.release().await {
            // It expires by itself within its ttl.
            warn!(blob = %key, error = %format!("{e:#}"), "cannot release checkpoint lease");
        }
        result
    }

    /// A drain slot, or `None` when `deadline` passes or shutdown starts first (or already
    /// did: a drain is not started after its deadline).
    async fn slot(
        &self,
        deadline: Option<Instant>,
    ) -> anyhow::Result<Option<tokio::sync::SemaphorePermit<'_>>> {
        if Self::past(deadline) || self.stopping() {
            return Ok(None);
        }
        if let Ok(p) = self.permits.try_acquire() {
            return Ok(Some(p));
        }
        let mut stop = self.stop.clone();
        let expired = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            p = self.permits.acquire() => Ok(Some(p.context("drainer closed")?)),
            _ = expired => Ok(None),
            _ = stop.wait_for(|s| *s) => Ok(None),
        }
    }

    async fn drain_leased(
        &self,
        key: &BlobKey,
        lease: &Lease,
        lost: &AtomicBool,
        deadline: Option<Instant>,
        progress: Option<&(dyn Fn(u64) + Send + Sync)>,
    ) -> anyhow::Result<Report> {
        let started = Instant::now();
        let now = Utc::now();
        let stored = self.store.get(key).await?;
        let is_new = stored.is_none();
        let (mut cp, version) = match stored {
            Some(s) => (s.checkpoint, Some(s.version)),
            None => (Checkpoint::new(key, now), None),
        };
        let mut report = Report::new(key, Outcome::Drained);
        let Some(props) = self.source.properties(key).await? else {
            report.outcome = Outcome::Missing;
            // A vanished (or never created) blob needs no more watching: a closed checkpoint
            // also clears the open marker its lease may have left.
            if !cp.closed {
                cp.closed = true;
                cp.last_seen = now;
                self.store
                    .put(lease, &cp, version.as_deref())
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                info!(blob = %key, "blob is gone; checkpoint closed");
            }
            return Ok(report);
        };
        if !is_new {
            if let Some(why) = restart_reason(&cp, &props) {
                warn!(blob = %key, reason = %why, old_offset = cp.offset, "starting the blob over");
                let first_seen = cp.first_seen;
                let restarts = cp.restarts + 1;
                cp = Checkpoint::new(key, first_seen);
                cp.restarts = restarts;
                report.restarted = true;
            }
        }
        let closing = is_closed(key, &props, now, self.settings.close_grace);
        report.from = cp.offset;
        report.to = cp.offset;
        report.length = props.length;
        if !is_new && !report.restarted && cp.length == props.length && (cp.closed || !closing) {
            report.outcome = Outcome::UpToDate;
            report.closed = cp.closed;
            return Ok(report);
        }

        let s = &self.settings;
        let mut run = Run {
            d: self,
            lease,
            lost,
            base: (cp.rows, cp.events, cp.dead_lettered),
            base_filtered: (cp.filtered, cp.filtered_bytes),
            cp,
            version,
            proc: RowProcessor::new(s.format, s.filter.clone(), s.max_line).log_drift(true),
            batch: Batch::new(),
            dead: Vec::new(),
            batches: 0,
            newest: None,
            send_by: deadline.map(|d| d + SEND_GRACE),
        };
        let end = props.length;
        let start = run.cp.offset;
        let mut framer = Framer::new(start, s.max_line);
        let chunk = s.chunk.max(1) as u64;
        let read = |from: u64| {
            let src = self.source.clone();
            let k = key.clone();
            let to = (from + chunk).min(end);
            Prefetch(tokio::spawn(async move { src.read(&k, from..to).await }))
        };
        let mut pos = start;
        let mut next = (pos < end).then(|| read(pos));
        let mut stopped = false;
        'chunks: while let Some(mut pending) = next.take() {
            if self.stopping() || Self::past(deadline) {
                stopped = true;
                break;
            }
            let data = (&mut pending.0)
                .await
                .context("read task failed")?
                .with_context(|| format!("cannot read {key}"))?;
            pos += data.len() as u64;
            run.proc.stats.bytes += data.len() as u64;
            if let Some(p) = progress {
                p(data.len() as u64);
            }
            next = (pos < end).then(|| read(pos));
            framer.feed(&data);
            drop(data);
            while let Some(frame) = framer.next_frame() {
                run.proc.handle_off_worker(
                    frame,
                    Some(&key.container),
                    &key.blob,
                    &mut run.batch,
                    &mut run.dead,
                );
                if run.batch.len() >= s.batch_max_events || run.batch.bytes() >= s.batch_max_bytes {
                    // Mid-blob, the checkpoint records as examined only what it covers: the
                    // bytes read past it are not processed yet. Were it the bytes read, a drain
                    // that stops here (deadline, shutdown, crash) would leave a checkpoint whose
                    // length equals the blob's, and Tail (which compares lengths) and the next
                    // drain (up to date) would skip the rest until the blob grows or closes.
                    let offset = framer.resume_offset();
                    run.commit(offset, offset, &props).await?;
                    if self.stopping() || Self::past(deadline) {
                        stopped = true;
                        break 'chunks;
                    }
                }
            }
        }
        if stopped {
            report.outcome = Outcome::Stopped;
        } else {
            if closing {
                if let Some(frame) = framer.finish() {
                    run.proc.handle_off_worker(
                        frame,
                        Some(&key.container),
                        &key.blob,
                        &mut run.batch,
                        &mut run.dead,
                    );
                }
            }
            run.cp.closed = closing;
            run.commit(framer.resume_offset(), end, &props).await?;
        }
        report.to = run.cp.offset;
        report.stats = run.proc.stats;
        report.batches = run.batches;
        report.closed = run.cp.closed;
        report.newest_event = run.newest;
        crate::metrics::drain_summary(key, &report.summary(), started.elapsed());
        if report.stats.rows > 0 || report.outcome == Outcome::Stopped || report.restarted {
            info!(
                blob = %key,
                outcome = ?report.outcome,
                from = report.from,
                to = report.to,
                length = report.length,
                rows = report.stats.rows,
                events = report.stats.events,
                dead_lettered = report.stats.dead_lettered,
                filtered = report.stats.filtered,
                batches = report.batches,
                closed = report.closed,
                ms = started.elapsed().as_millis() as u64,
                "drained"
            );
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn props(len: u64, modified: DateTime<Utc>) -> BlobProps {
        BlobProps {
            length: len,
            etag: "\"e\"".into(),
            last_modified: modified,
            incarnation: Some("c1".into()),
            blob_type: BlobType::Append,
        }
    }

    #[test]
    fn closed_only_after_the_hour_and_a_quiet_grace_period() {
        let k = BlobKey::new("c", "tenantId=t/y=2026/m=11/d=01/h=10/m=00/PT1H.json");
        let g = Duration::from_secs(600);
        let t = |h, m| Utc.with_ymd_and_hms(2026, 11, 1, h, m, 0).unwrap();
        // Hour 10 ends at 11:00; closed from 11:10 if quiet for 10 minutes.
        assert!(!is_closed(&k, &props(5, t(10, 30)), t(11, 5), g));
        assert!(is_closed(&k, &props(5, t(10, 30)), t(11, 10), g));
        assert!(
            !is_closed(&k, &props(5, t(11, 55)), t(12, 0), g),
            "still growing"
        );
        let mut block = props(5, t(11, 59));
        block.blob_type = BlobType::Block;
        assert!(is_closed(&k, &block, t(12, 0), g));
    }

    #[test]
    fn restart_on_shrink_recreate_and_rewrite() {
        let k = BlobKey::new("c", "b");
        let now = Utc::now();
        let mut cp = Checkpoint::new(&k, now);
        cp.offset = 10;
        cp.length = 12;
        cp.incarnation = Some("c1".into());
        cp.blob_type = BlobType::Append;
        cp.etag = "\"old\"".into();
        assert!(
            restart_reason(&cp, &props(12, now)).is_none(),
            "ETag change on append"
        );
        assert!(restart_reason(&cp, &props(11, now))
            .unwrap()
            .contains("shrank"));
        let mut p = props(50, now);
        p.incarnation = Some("c2".into());
        assert!(restart_reason(&cp, &p).unwrap().contains("re-created"));
        cp.blob_type = BlobType::Block;
        let mut p = props(50, now);
        p.blob_type = BlobType::Block;
        assert!(restart_reason(&cp, &p).unwrap().contains("rewritten"));
    }
}
