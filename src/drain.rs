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

mod lease;
mod lifecycle;
mod report;
mod run;

pub use lifecycle::{is_closed, restart_reason};
pub use report::{Contention, DrainSettings, Outcome, Report, SEND_GRACE};

use crate::deadletter::{DeadLetter, DeadLetterSink};
use crate::deliver::{Coalesce, Delivery};
use crate::pipeline::RowProcessor;
use crate::rows::Framer;
use crate::sink::Sink;
use crate::source::{BlobKey, Scoped};
use crate::state::{Checkpoint, CheckpointStore, Lease};
use anyhow::Context;
use bytes::Bytes;
use chrono::Utc;
use lease::LeaseGuard;
use run::{Mark, Run};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// Drains blobs. Cheap to share (`Arc`); one instance serves every invocation.
pub struct Drainer {
    source: Scoped,
    store: Arc<dyn CheckpointStore>,
    delivery: Delivery,
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
            .field("delivery", &self.delivery)
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

impl Drainer {
    /// A drainer reading `source`, checkpointing in `store`, delivering through `delivery`,
    /// dead-lettering to `dead`. Drains stop at their next checkpoint once `stop` turns true.
    pub fn new(
        source: Scoped,
        store: Arc<dyn CheckpointStore>,
        delivery: Delivery,
        dead: Arc<dyn DeadLetterSink>,
        settings: DrainSettings,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Drainer {
            permits: Semaphore::new(settings.concurrency.max(1)),
            source,
            store,
            delivery,
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

    /// Where dead letters go.
    pub fn dead_letters(&self) -> &Arc<dyn DeadLetterSink> {
        &self.dead
    }

    /// The sink.
    pub fn sink(&self) -> &Arc<dyn Sink> {
        self.delivery.sink()
    }

    /// The sink and the limits batches are cut by.
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
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
            props: &props,
            base: (cp.rows, cp.events, cp.dead_lettered),
            base_filtered: (cp.filtered, cp.filtered_bytes),
            cp,
            version,
            watermark: None,
            refused: 0,
            newest: None,
            coalesce: Coalesce::new(s.checkpoint_every, s.checkpoint_bytes),
        };
        let mut proc = RowProcessor::new(s.format, s.filter.clone(), s.max_line).log_drift(true);
        let mut pipe = self
            .delivery
            .pipeline::<Mark>(Some(self.dead.clone()), deadline.map(|d| d + SEND_GRACE));
        let mut batch = pipe.batch();
        let mut dead: Vec<DeadLetter> = Vec::new();
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
        let mark = |proc: &RowProcessor, offset, examined, closed| Mark {
            offset,
            examined,
            rows: proc.stats.rows,
            events: proc.stats.events,
            dead: proc.stats.dead_lettered,
            filtered: (proc.stats.filtered, proc.stats.filtered_bytes),
            closed,
        };
        let mut pos = start;
        let mut next = (pos < end).then(|| read(pos));
        let mut stopped = false;
        'chunks: while let Some(mut pending) = next.take() {
            if self.stopping() || Self::past(deadline) {
                stopped = true;
                break;
            }
            let data = match (&mut pending.0).await {
                Ok(Ok(d)) => d,
                Ok(Err(e)) => {
                    let e = e.context(format!("cannot read {key}"));
                    return Err(run.save_then_fail(&mut pipe, e).await);
                }
                Err(e) => {
                    let e = anyhow::Error::new(e).context("read task failed");
                    return Err(run.save_then_fail(&mut pipe, e).await);
                }
            };
            pos += data.len() as u64;
            proc.stats.bytes += data.len() as u64;
            if let Some(p) = progress {
                p(data.len() as u64);
            }
            next = (pos < end).then(|| read(pos));
            framer.feed(&data);
            drop(data);
            while let Some(frame) = framer.next_frame() {
                proc.handle_off_worker(
                    frame,
                    Some(&key.container),
                    &key.blob,
                    &mut batch,
                    &mut dead,
                );
                if self.delivery.full(&batch) {
                    // Mid-blob, the checkpoint records as examined only what it covers: the
                    // bytes read past it are not processed yet. Were it the bytes read, a drain
                    // that stops here (deadline, shutdown, crash) would leave a checkpoint whose
                    // length equals the blob's, and Tail (which compares lengths) and the next
                    // drain (up to date) would skip the rest until the blob grows or closes.
                    let offset = framer.resume_offset();
                    let m = mark(&proc, offset, offset, false);
                    let full = std::mem::replace(&mut batch, pipe.batch());
                    let sent = pipe.submit(full, std::mem::take(&mut dead), m).await;
                    let sent = match sent {
                        Ok(()) => run.absorb(&mut pipe).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = sent {
                        return Err(run.save_then_fail(&mut pipe, e).await);
                    }
                    if self.stopping() || Self::past(deadline) {
                        stopped = true;
                        break 'chunks;
                    }
                }
            }
        }
        let last = if stopped {
            report.outcome = Outcome::Stopped;
            // Rows cut since the last full batch are not sent; the checkpoint stays before
            // them (the watermark), and the next drain cuts the same batches again.
            None
        } else {
            if closing {
                if let Some(frame) = framer.finish() {
                    proc.handle_off_worker(
                        frame,
                        Some(&key.container),
                        &key.blob,
                        &mut batch,
                        &mut dead,
                    );
                }
            }
            Some(mark(&proc, framer.resume_offset(), end, closing))
        };
        let finished = async {
            if let Some(m) = last {
                pipe.submit(batch, dead, m).await?;
            }
            pipe.flush().await?;
            run.take(&mut pipe);
            // Always at the end of a drain (and on shutdown or at the deadline): the watermark
            // and, for a drain that reached the end, the examined length.
            run.write().await
        };
        if let Err(e) = finished.await {
            return Err(run.save_then_fail(&mut pipe, e).await);
        }
        let ps = pipe.stats();
        report.stats = proc.stats;
        // What was delivered (up to the watermark), not what a stopped drain cut and left.
        let (rows, events, dead) = run
            .watermark
            .map_or((0, 0, 0), |w| (w.rows, w.events, w.dead));
        report.stats.rows = rows;
        report.stats.events = events;
        report.stats.dead_lettered = dead;
        report.stats.events = report.stats.events.saturating_sub(run.refused);
        report.stats.dead_lettered += run.refused;
        report.batches = ps.batches;
        report.batches_in_flight_max = ps.in_flight_max;
        report.sink_wait_ms = ps.sink_wait_ms;
        report.checkpoints_written = run.coalesce.written;
        report.to = run.cp.offset;
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
