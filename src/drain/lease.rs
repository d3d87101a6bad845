//! Holding a blob's checkpoint lease while it is drained: taking it (or waiting for another
//! drain's, [`super::Contention`]) and renewing it every third of its ttl.

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

/// Renews `lease` every third of its ttl; sets `lost` once renewals failed for a whole ttl.
pub(super) async fn renew_loop(
    store: Arc<dyn CheckpointStore>,
    lease: Lease,
    lost: Arc<AtomicBool>,
) {
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
