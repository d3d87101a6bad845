//! Holding a blob's checkpoint lease while it is drained: taking it (or waiting for another
//! drain's, [`super::Contention`]) and renewing it every third of its ttl.
//!
//! The renewer is a spawned task, so it does not stop by itself when the drain stops. Tied to a
//! [`LeaseGuard`], any way out of the drain — a normal return, an error, a panic unwinding through
//! it, or the drain's future being dropped (a timeout, a cancelled invocation) — aborts the
//! renewer and releases the lease. A normal end releases it inline ([`LeaseGuard::release`]);
//! every other end releases it from [`Drop`] on a spawned task, and should even that fail the
//! lease expires within its ttl because nothing renews it any more.

use super::{Contention, Drainer};
use crate::source::BlobKey;
use crate::state::{CheckpointStore, Lease};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::warn;

impl Drainer {
    pub(super) async fn lease(
        &self,
        key: &BlobKey,
        contention: Contention,
        deadline: Option<Instant>,
    ) -> anyhow::Result<Option<Lease>> {
        let started = Instant::now();
        loop {
            if let Some(l) = self.store.acquire(key, self.settings.lease_ttl).await? {
                return Ok(Some(l));
            }
            match contention {
                Contention::Wait(max)
                    if started.elapsed() < max && !self.stopping() && !Self::past(deadline) =>
                {
                    let mut pause = Duration::from_millis(500);
                    if let Some(d) = deadline {
                        pause = pause.min(d.saturating_duration_since(Instant::now()));
                    }
                    tokio::time::sleep(pause).await;
                }
                _ => return Ok(None),
            }
        }
    }
}

/// A held lease, renewed every third of its ttl until the guard is released or dropped.
pub(super) struct LeaseGuard {
    store: Arc<dyn CheckpointStore>,
    lease: Lease,
    lost: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
    released: bool,
}

impl LeaseGuard {
    /// Starts renewing `lease` (held in `store`). Must be called inside a tokio runtime.
    pub(super) fn new(store: Arc<dyn CheckpointStore>, lease: Lease) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = tokio::spawn(renew_loop(store.clone(), lease.clone(), lost.clone()));
        LeaseGuard {
            store,
            lease,
            lost,
            renewer,
            released: false,
        }
    }

    /// The lease.
    pub(super) fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Set once renewals failed for a whole ttl: another drain may hold the blob now.
    pub(super) fn lost(&self) -> &AtomicBool {
        &self.lost
    }

    /// Stops renewing and releases the lease now.
    pub(super) async fn release(mut self) -> anyhow::Result<()> {
        self.renewer.abort();
        self.released = true;
        self.store.release(&self.lease).await
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.renewer.abort();
        if self.released {
            return;
        }
        // Not released inline: the drain failed, panicked or was cancelled. Release from a task
        // of its own (Drop cannot wait); without a runtime the lease simply expires.
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, lease) = (self.store.clone(), self.lease.clone());
        rt.spawn(async move {
            if let Err(e) = store.release(&lease).await {
                warn!(blob = %lease.key, error = %format!("{e:#}"), "cannot release checkpoint lease (it expires within its ttl)");
            }
        });
    }
}

/// Renews `lease` every third of its ttl; sets `lost` once renewals failed for a whole ttl.
async fn renew_loop(store: Arc<dyn CheckpointStore>, lease: Lease, lost: Arc<AtomicBool>) {
    let every = (lease.ttl / 3).max(Duration::from_secs(1));
    let mut last_ok = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        match store.renew(&lease).await {
            Ok(()) => last_ok = Instant::now(),
            Err(e) => {
                warn!(blob = %lease.key, error = %format!("{e:#}"), "lease renewal failed");
                if last_ok.elapsed() >= lease.ttl {
                    lost.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }
    }
}
