//! Delivery: the one place a batch goes to the sink and comes back acknowledged. The drain, the
//! `process` command and `redrive` all hand their batches to a [`Pipeline`]; none of them calls
//! the sink itself.
//!
//! * **Batching.** [`Delivery::full`] says when a batch reached the sink's limits
//!   (`RELAY_BATCH_MAX_EVENTS` / `RELAY_BATCH_MAX_BYTES`); the limits live here, once.
//! * **In flight.** Up to [`Limits::in_flight`] batches (`RELAY_INFLIGHT_BATCHES`) are at the
//!   sink at once, each in a task of its own, while the caller reads and normalizes the next
//!   ones. A sink that must see one batch at a time to keep its output in order (file, stdout)
//!   says so with [`Sink::max_in_flight`].
//! * **In order.** Acknowledgements are handed back strictly in submission order: a batch that
//!   the sink acknowledged before an older one waits for it. So what a caller learns from
//!   [`Pipeline::take_acked`] is always the longest *prefix* of acknowledged batches — the
//!   watermark — and a checkpoint built from the marks it returns never passes a batch that is
//!   still in flight. A crash re-sends only the batches past the checkpoint, cut again at the
//!   same row boundaries, so with the same event ids.
//! * **Dead letters.** The rows a batch's range refused (parse errors) and the events the sink
//!   refused one by one ([`Sink::deliver`]) are stored before the batch counts as acknowledged,
//!   so before any checkpoint passes them. Callers that keep refused events themselves
//!   (`redrive`) pass no dead-letter sink and get the refusals back in [`Acked::refused`].
//! * **Deadlines.** Every sink call is bounded by `send_by` (the invocation's deadline plus
//!   [`crate::drain::SEND_GRACE`]); cancelling one is safe because nothing past the watermark
//!   is checkpointed.
//! * **Checkpoint coalescing.** [`Coalesce`] says when the watermark is worth writing: at most
//!   every `RELAY_CHECKPOINT_INTERVAL` or `RELAY_CHECKPOINT_BYTES`, whichever comes first. The
//!   caller always writes at the end of a drain, on shutdown and at the deadline too. The trade:
//!   a crash delivers again at most that much (plus the batches in flight), with the same ids.

use crate::deadletter::{DeadLetter, DeadLetterSink};
use crate::event::{Batch, Rejected};
use crate::sink::Sink;
use anyhow::Context;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How batches are cut and how many are in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Events per batch (`RELAY_BATCH_MAX_EVENTS`).
    pub max_events: usize,
    /// Bytes per batch (`RELAY_BATCH_MAX_BYTES`).
    pub max_bytes: usize,
    /// Batches of one blob (or one `process` run) at the sink at once (`RELAY_INFLIGHT_BATCHES`).
    pub in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_events: 500,
            max_bytes: 1_000_000,
            in_flight: DEFAULT_INFLIGHT,
        }
    }
}

/// Default of `RELAY_INFLIGHT_BATCHES`.
pub const DEFAULT_INFLIGHT: usize = 8;
/// Default of `RELAY_CHECKPOINT_INTERVAL`.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);
/// Default of `RELAY_CHECKPOINT_BYTES` (16 MiB).
pub const DEFAULT_CHECKPOINT_BYTES: u64 = 16 << 20;

/// A sink with the limits its batches are cut by. Cheap to clone.
#[derive(Clone)]
pub struct Delivery {
    sink: Arc<dyn Sink>,
    limits: Limits,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("sink", &self.sink.name())
            .field("limits", &self.limits)
            .finish()
    }
}

impl Delivery {
    /// Batches of at most `limits` to `sink`.
    pub fn new(sink: Arc<dyn Sink>, limits: Limits) -> Self {
        Delivery { sink, limits }
    }

    /// The sink.
    pub fn sink(&self) -> &Arc<dyn Sink> {
        &self.sink
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// True when `batch` reached the limits and should be submitted: at the event limit, or
    /// when one more event of the batch's average size would pass the byte limit. Cutting
    /// *before* the limit matters: the HTTP sinks cap each request at the same byte limit, so a
    /// batch one event over it would cost a second request for that one event, and halve the
    /// batches the sink's request slots keep in flight.
    pub fn full(&self, batch: &Batch) -> bool {
        let (n, bytes) = (batch.len(), batch.bytes());
        n >= self.limits.max_events.max(1)
            || bytes >= self.limits.max_bytes
            || (n > 0 && bytes + bytes / n > self.limits.max_bytes)
    }

    /// Batches allowed in flight: the setting, capped by what the sink allows.
    pub fn window(&self) -> usize {
        let own = self.sink.max_in_flight().unwrap_or(usize::MAX);
        self.limits.in_flight.min(own).max(1)
    }

    /// A pipeline for one run. With `dead`, row dead letters and refused events are stored
    /// there before a batch counts as acknowledged; without, refused events come back in
    /// [`Acked::refused`] and the row dead letters in [`Acked::dead`]. Sink calls still running
    /// at `send_by` fail.
    pub fn pipeline<M: Send + 'static>(
        &self,
        dead: Option<Arc<dyn DeadLetterSink>>,
        send_by: Option<Instant>,
    ) -> Pipeline<M> {
        Pipeline {
            sink: self.sink.clone(),
            window: self.window(),
            dead,
            send_by,
            flights: VecDeque::new(),
            acked: VecDeque::new(),
            spare: Vec::new(),
            stats: PipelineStats::default(),
        }
    }
}

/// A batch the sink acknowledged, handed back in submission order.
#[derive(Debug)]
pub struct Acked<M> {
    /// What the caller attached on submission (an offset, the records of a redrive...).
    pub mark: M,
    /// The batch as sent.
    pub batch: Batch,
    /// Events the sink refused one by one (already dead-lettered when the pipeline has a
    /// dead-letter sink).
    pub refused: Vec<Rejected>,
    /// Row dead letters submitted with the batch (empty when they were stored).
    pub dead: Vec<DeadLetter>,
}

/// Counters of one pipeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineStats {
    /// Batches acknowledged (batches without events not counted).
    pub batches: u64,
    /// Most batches at the sink at once.
    pub in_flight_max: usize,
    /// Events the sink refused one by one.
    pub refused: u64,
    /// Time the caller waited for the sink (window full, or the final flush), in ms.
    pub sink_wait_ms: u64,
}

type Sent = Result<(Batch, Vec<Rejected>), anyhow::Error>;

/// One submitted batch.
struct Flight<M> {
    mark: M,
    dead: Vec<DeadLetter>,
    /// `None` for a batch without events (only dead letters): nothing to send.
    task: Option<JoinHandle<Sent>>,
    empty: Option<Batch>,
}

/// Batches of one run on their way to the sink; see the module documentation. Dropping it
/// aborts whatever is still in flight (nothing past the watermark was checkpointed).
pub struct Pipeline<M> {
    sink: Arc<dyn Sink>,
    window: usize,
    dead: Option<Arc<dyn DeadLetterSink>>,
    send_by: Option<Instant>,
    flights: VecDeque<Flight<M>>,
    acked: VecDeque<Acked<M>>,
    spare: Vec<Batch>,
    stats: PipelineStats,
}

impl<M> Drop for Pipeline<M> {
    fn drop(&mut self) {
        for f in &self.flights {
            if let Some(t) = &f.task {
                t.abort();
            }
        }
    }
}

impl<M: Send + 'static> Pipeline<M> {
    /// An empty batch to fill (reusing the buffers of acknowledged ones).
    pub fn batch(&mut self) -> Batch {
        self.spare.pop().unwrap_or_default()
    }

    /// Gives an acknowledged batch's buffers back for reuse.
    pub fn recycle(&mut self, mut batch: Batch) {
        if self.spare.len() < self.window {
            batch.clear();
            self.spare.push(batch);
        }
    }

    /// The sink's short name.
    pub fn sink_name(&self) -> &'static str {
        self.sink.name()
    }

    /// Batches submitted and not yet handed back.
    pub fn in_flight(&self) -> usize {
        self.flights.len()
    }

    /// Counters so far.
    pub fn stats(&self) -> PipelineStats {
        self.stats
    }

    /// Submits `batch` with the row dead letters `dead` of its range and the caller's `mark`.
    /// Waits (bounded by `send_by`) while the window is full. On `Err` the run must stop: the
    /// batches acknowledged before the failure are still in [`Pipeline::take_acked`].
    pub async fn submit(
        &mut self,
        batch: Batch,
        dead: Vec<DeadLetter>,
        mark: M,
    ) -> anyhow::Result<()> {
        while self.flights.len() >= self.window {
            self.settle_front(true).await?;
        }
        let (task, empty) = if batch.is_empty() {
            (None, Some(batch))
        } else {
            let sink = self.sink.clone();
            let by = self.send_by;
            let task = tokio::spawn(async move {
                let send = sink.deliver(&batch);
                let sent = match by {
                    Some(by) => tokio::time::timeout_at(by.into(), send)
                        .await
                        .map_err(|_| {
                            anyhow::anyhow!(
                                "sink {} did not accept a batch before the invocation's deadline \
                             (retries included); the rows stay for the next drain",
                                sink.name()
                            )
                        })?,
                    None => send.await,
                };
                let refused =
                    sent.with_context(|| format!("sink {} refused a batch", sink.name()))?;
                Ok((batch, refused))
            });
            (Some(task), None)
        };
        self.flights.push_back(Flight {
            mark,
            dead,
            task,
            empty,
        });
        let busy = self.flights.iter().filter(|f| f.task.is_some()).count();
        self.stats.in_flight_max = self.stats.in_flight_max.max(busy);
        // Lets the new task start its request (and finished ones report) even on a
        // current-thread runtime whose only other work is this caller's CPU-bound loop.
        tokio::task::yield_now().await;
        // Hand back whatever is already acknowledged, without waiting.
        while self
            .flights
            .front()
            .is_some_and(|f| f.task.as_ref().is_none_or(|t| t.is_finished()))
        {
            self.settle_front(false).await?;
        }
        Ok(())
    }

    /// Waits until every submitted batch is acknowledged (or one failed).
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        while !self.flights.is_empty() {
            self.settle_front(true).await?;
        }
        Ok(())
    }

    /// The next acknowledged batch, in submission order.
    pub fn take_acked(&mut self) -> Option<Acked<M>> {
        self.acked.pop_front()
    }

    /// Waits for the oldest batch, stores its dead letters, and moves it to the acknowledged.
    async fn settle_front(&mut self, count_wait: bool) -> anyhow::Result<()> {
        let Some(mut f) = self.flights.pop_front() else {
            return Ok(());
        };
        let waited = Instant::now();
        let (batch, refused) = match f.task.take() {
            None => (f.empty.take().unwrap_or_default(), Vec::new()),
            Some(t) => {
                let r = t.await;
                if count_wait {
                    self.stats.sink_wait_ms += waited.elapsed().as_millis() as u64;
                }
                r.context("delivery task failed")??
            }
        };
        if !batch.is_empty() {
            self.stats.batches += 1;
        }
        self.stats.refused += refused.len() as u64;
        let mut dead = std::mem::take(&mut f.dead);
        if let Some(sink) = &self.dead {
            if !refused.is_empty() {
                dead.extend(DeadLetter::refused(self.sink.name(), &batch, &refused));
            }
            if !dead.is_empty() {
                sink.store(&dead)
                    .await
                    .with_context(|| format!("cannot store dead letters in {}", sink.location()))?;
                dead.clear();
            }
        }
        self.acked.push_back(Acked {
            mark: f.mark,
            batch,
            refused,
            dead,
        });
        Ok(())
    }
}

/// When the watermark is worth writing: every `every` or `bytes` of input, whichever first.
#[derive(Debug, Clone)]
pub struct Coalesce {
    every: Duration,
    bytes: u64,
    last: Instant,
    pending: u64,
    dirty: bool,
    /// Checkpoints written.
    pub written: u64,
}

impl Coalesce {
    /// Writes due every `every` (`RELAY_CHECKPOINT_INTERVAL`) or `bytes`
    /// (`RELAY_CHECKPOINT_BYTES`) of acknowledged input.
    pub fn new(every: Duration, bytes: u64) -> Self {
        Coalesce {
            every,
            bytes,
            last: Instant::now(),
            pending: 0,
            dirty: false,
            written: 0,
        }
    }

    /// The watermark moved over `bytes` more bytes of input.
    pub fn advanced(&mut self, bytes: u64) {
        self.pending += bytes;
        self.dirty = true;
    }

    /// True when the watermark moved and a write is due by time or bytes.
    pub fn due(&self) -> bool {
        self.dirty && (self.pending >= self.bytes || self.last.elapsed() >= self.every)
    }

    /// True when the watermark moved since the last write.
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// A checkpoint was written.
    pub fn wrote(&mut self) {
        self.last = Instant::now();
        self.pending = 0;
        self.dirty = false;
        self.written += 1;
    }
}

#[cfg(test)]
mod tests;
