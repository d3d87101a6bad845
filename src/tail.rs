//! Tail: finds export blobs that grew and has them drained. BlobCreated fires once per hourly
//! blob, when it is created (nearly empty); appends fire nothing (platform facts §2). So every
//! run:
//!
//! 1. **Known open blobs**: every blob whose checkpoint is not closed is compared with its
//!    properties (length, closable); those that grew, vanished or can now be closed are drained.
//!    Rows appended to an open blob are therefore forwarded by the next run.
//! 2. **Recent hours**: the current and previous hour of every export container (listed by
//!    prefix, so containers created later are found) are listed and compared with their
//!    checkpoints: this catches blobs whose event was lost or never sent.
//! 3. **Slow sweep**: once per `RELAY_TAIL_SWEEP_INTERVAL` (claimed in the checkpoint store, so
//!    one instance does it) step 2 covers the last `RELAY_TAIL_SWEEP_HOURS` hours instead.
//!
//! 4. **Dispatch** (`RELAY_TAIL_MODE=dispatch`, the default): one drain request per blob behind
//!    goes on `RELAY_EVENTS_QUEUE` ([`crate::dispatch`]), so the queue-triggered function drains
//!    them on every instance the host scales to; a timer runs on one instance only. With
//!    `drain`, this process drains them itself (`RELAY_DRAIN_CONCURRENCY` at once).
//!
//! Listings run concurrently (bounded). Blob names start with `tenantId=<guid>/`, and the SDK lists without delimiters, so hour
//! prefixes need the tenant: tenants come from `RELAY_TENANTS` when set, else from the known
//! checkpoints plus the first blob of each container.

use crate::dispatch::DrainRequests;
use crate::drain::{is_closed, Contention, Drainer, Outcome};
use crate::source::{BlobKey, BlobProps};
use crate::state::Summary;
use chrono::{DateTime, Datelike, Duration as ChronoDuration, DurationRound, TimeZone, Utc};
use futures::stream::{self, StreamExt};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Listings (and drain requests) of one Tail run at once.
const LIST_CONCURRENCY: usize = 16;

/// What Tail does with the blobs it finds behind (`RELAY_TAIL_MODE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TailMode {
    /// Put one drain request per blob on `RELAY_EVENTS_QUEUE` ([`crate::dispatch`]): the
    /// queue-triggered function drains them, on as many instances as the host scales to.
    #[default]
    Dispatch,
    /// Drain them in this process (single-process use: `serve` outside Azure).
    Drain,
}

impl TailMode {
    /// Parses `dispatch` or `drain`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dispatch" => Ok(TailMode::Dispatch),
            "drain" => Ok(TailMode::Drain),
            _ => Err(format!("`{s}` is neither `dispatch` nor `drain`")),
        }
    }
}

/// Settings of the Tail function.
#[derive(Debug, Clone)]
pub struct TailSettings {
    /// How often the slow sweep runs (`RELAY_TAIL_SWEEP_INTERVAL`).
    pub sweep_every: Duration,
    /// How many hours back it looks (`RELAY_TAIL_SWEEP_HOURS`).
    pub sweep_hours: u32,
    /// Dispatch or drain (`RELAY_TAIL_MODE`).
    pub mode: TailMode,
}

impl Default for TailSettings {
    fn default() -> Self {
        TailSettings {
            sweep_every: Duration::from_secs(3600),
            sweep_hours: 48,
            mode: TailMode::Dispatch,
        }
    }
}

/// What a Tail run did.
#[derive(Debug, Clone, Default)]
pub struct TailReport {
    /// What it did with the blobs behind.
    pub mode: TailMode,
    /// Export containers listed.
    pub containers: usize,
    /// Blobs found behind their checkpoint (or never seen).
    pub behind: usize,
    /// Drain requests enqueued (dispatch mode).
    pub enqueued: usize,
    /// Time spent finding the blobs behind, in ms.
    pub listing_ms: u64,
    /// Open blobs checked.
    pub open_checked: usize,
    /// Blobs seen in the listed hours.
    pub listed: usize,
    /// Blobs drained (or attempted).
    pub drains: usize,
    /// Drains skipped because another drain held the blob.
    pub busy: usize,
    /// Drains that failed.
    pub failed: usize,
    /// Drains stopped early (shutdown or deadline).
    pub stopped: usize,
    /// Drains not started: no drain slot came free before the deadline (the next run does them).
    pub deferred: usize,
    /// Events sent.
    pub events: u64,
    /// Rows dead-lettered.
    pub dead_lettered: u64,
    /// This run was the slow sweep.
    pub swept: bool,
}

/// Whether a blob with checkpoint `cp` (none: never seen) and properties `props` has work.
fn needs_drain(
    key: &BlobKey,
    cp: Option<&Summary>,
    props: &BlobProps,
    now: DateTime<Utc>,
    grace: Duration,
) -> bool {
    match cp {
        None => true,
        Some(c) => props.length != c.length || (!c.closed && is_closed(key, props, now, grace)),
    }
}

/// The days (as `tenantId=<t>/y=/m=/d=/` prefixes) covering hours `from..=to`.
fn day_prefixes(tenant: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<String> {
    let mut out = Vec::new();
    let mut d = Utc
        .with_ymd_and_hms(from.year(), from.month(), from.day(), 0, 0, 0)
        .single()
        .unwrap_or(from);
    while d <= to {
        out.push(format!(
            "tenantId={tenant}/y={:04}/m={:02}/d={:02}/",
            d.year(),
            d.month(),
            d.day()
        ));
        d += ChronoDuration::days(1);
    }
    out
}

/// Runs Tail once: in [`TailMode::Dispatch`] (with `requests`) every blob behind gets a drain
/// request; otherwise the blobs are drained here, stopping at a checkpoint when `deadline`
/// passes.
pub async fn run(
    d: &Drainer,
    t: &TailSettings,
    deadline: Option<Instant>,
    requests: Option<&dyn DrainRequests>,
) -> anyhow::Result<TailReport> {
    let started = Instant::now();
    let now = Utc::now();
    let grace = d.settings().close_grace;
    let src = d.source();
    let store = d.store();
    let mut report = TailReport {
        mode: match requests {
            Some(_) => t.mode,
            None => TailMode::Drain,
        },
        ..TailReport::default()
    };
    let mut todo: BTreeSet<BlobKey> = BTreeSet::new();
    // Length seen per blob due (for the drain request).
    let mut lengths: HashMap<BlobKey, u64> = HashMap::new();

    // 1. Known open blobs.
    let open: Vec<BlobKey> = store
        .list_open()
        .await?
        .into_iter()
        .filter(|k| src.allows(&k.container))
        .collect();
    report.open_checked = open.len();
    let checks = stream::iter(open.iter().cloned())
        .map(|key| async move {
            let cp = store.get(&key).await;
            let props = src.properties(&key).await;
            (key, cp, props)
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    for (key, cp, props) in checks {
        if let Ok(Some(p)) = &props {
            lengths.insert(key.clone(), p.length);
        }
        let due = match (cp, props) {
            (Ok(Some(cp)), Ok(Some(p))) => {
                crate::drain::restart_reason(&cp.checkpoint, &p).is_some()
                    || needs_drain(&key, Some(&cp.checkpoint.summary()), &p, now, grace)
            }
            (Ok(Some(cp)), Ok(None)) => !cp.checkpoint.closed,
            // A placeholder without a checkpoint: a drain died before its first write.
            (Ok(None), _) => true,
            (Err(e), _) | (_, Err(e)) => {
                warn!(blob = %key, error = %format!("{e:#}"), "cannot check open blob");
                report.failed += 1;
                false
            }
        };
        if due {
            todo.insert(key);
        }
    }

    // 2./3. Recent hours (or the sweep window) of every export container, listed concurrently.
    let sweep_hours = i64::from(t.sweep_hours.max(2));
    report.swept = store
        .claim("sweep", t.sweep_every)
        .await
        .unwrap_or_else(|e| {
            warn!(error = %format!("{e:#}"), "cannot claim the sweep; listing recent hours only");
            false
        });
    let hours = if report.swept { sweep_hours } else { 2 };
    let this_hour = now.duration_trunc(ChronoDuration::hours(1)).unwrap_or(now);
    let from = this_hour - ChronoDuration::hours(hours - 1);
    let containers = src.containers().await?;
    report.containers = containers.len();
    let configured = &d.settings().filter.tenants;
    let mut tenants: BTreeSet<String> = open
        .iter()
        .filter_map(|k| k.tenant().map(str::to_string))
        .collect();
    if !configured.is_empty() {
        tenants = configured.iter().cloned().collect();
    } else {
        // The first blob of each container names a tenant; known ones add the rest.
        let probes = stream::iter(containers.iter().cloned())
            .map(|c| async move {
                let r = src.list_blobs(&c, "tenantId=", Some(1)).await;
                (c, r)
            })
            .buffer_unordered(LIST_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        for (c, r) in probes {
            match r {
                Ok(first) => tenants.extend(first.into_iter().filter_map(|l| {
                    BlobKey::new(c.as_str(), l.name)
                        .tenant()
                        .map(str::to_string)
                })),
                Err(e) => {
                    warn!(container = %c, error = %format!("{e:#}"), "cannot probe container")
                }
            }
        }
    }
    let mut prefixes = Vec::new();
    for c in &containers {
        for tenant in &tenants {
            for day in day_prefixes(tenant, from, this_hour) {
                prefixes.push((c.clone(), day));
            }
        }
    }
    let listings = stream::iter(prefixes)
        .map(|(c, day)| async move {
            let listed = match src.list_blobs(&c, &day, None).await {
                Ok(l) => l,
                Err(e) => {
                    warn!(container = %c, prefix = %day, error = %format!("{e:#}"), "cannot list blobs");
                    return Err(());
                }
            };
            if listed.is_empty() {
                return Ok((c, listed, HashMap::new()));
            }
            match store.list(&c, &day).await {
                Ok(v) => {
                    let cps: HashMap<String, Summary> =
                        v.into_iter().map(|s| (s.key.blob.clone(), s)).collect();
                    Ok((c, listed, cps))
                }
                Err(e) => {
                    warn!(container = %c, prefix = %day, error = %format!("{e:#}"), "cannot list checkpoints");
                    Err(())
                }
            }
        })
        .buffer_unordered(LIST_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    for l in listings {
        let Ok((c, listed, cps)) = l else {
            report.failed += 1;
            continue;
        };
        for l in listed {
            let key = BlobKey::new(c.as_str(), l.name);
            if key.hour().is_some_and(|h| h < from || h > this_hour) {
                continue;
            }
            report.listed += 1;
            if needs_drain(&key, cps.get(&key.blob), &l.props, now, grace) {
                lengths.insert(key.clone(), l.props.length);
                todo.insert(key);
            }
        }
    }
    report.behind = todo.len();
    report.listing_ms = started.elapsed().as_millis() as u64;

    if let (TailMode::Dispatch, Some(requests)) = (t.mode, requests) {
        // The queue-triggered function drains them, spread over instances by the host.
        let lengths = &lengths;
        let sent = stream::iter(todo)
            .map(|key| async move {
                let len = lengths.get(&key).copied().unwrap_or(0);
                let r = requests.request(&key, len).await;
                (key, r)
            })
            .buffer_unordered(LIST_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        for (key, r) in sent {
            match r {
                Ok(()) => report.enqueued += 1,
                Err(e) => {
                    report.failed += 1;
                    warn!(blob = %key, error = %format!("{e:#}"), "cannot enqueue a drain request");
                }
            }
        }
        summary(&report, started.elapsed());
        return Ok(report);
    }

    // Drain everything due; the drainer bounds how many run at once.
    report.drains = todo.len();
    let results = stream::iter(todo)
        .map(|key| async move {
            let r = d.drain(&key, Contention::Skip, deadline, None).await;
            (key, r)
        })
        .buffer_unordered(d.settings().concurrency.max(1) * 2)
        .collect::<Vec<_>>()
        .await;
    for (key, r) in results {
        match r {
            Ok(r) => {
                report.events += r.stats.events;
                report.dead_lettered += r.stats.dead_lettered;
                match r.outcome {
                    Outcome::Busy => report.busy += 1,
                    Outcome::Stopped => report.stopped += 1,
                    Outcome::Deferred => report.deferred += 1,
                    _ => {}
                }
            }
            Err(e) => {
                report.failed += 1;
                warn!(blob = %key, error = %format!("{e:#}"), "drain failed");
            }
        }
    }
    summary(&report, started.elapsed());
    Ok(report)
}

/// The one `event=tail_summary` line of a Tail run.
fn summary(r: &TailReport, took: Duration) {
    info!(
        event = "tail_summary",
        mode = ?r.mode,
        containers_listed = r.containers,
        open_checked = r.open_checked,
        listed = r.listed,
        blobs_behind = r.behind,
        requests_enqueued = r.enqueued,
        listing_ms = r.listing_ms,
        drains = r.drains,
        busy = r.busy,
        stopped = r.stopped,
        deferred = r.deferred,
        failed = r.failed,
        events = r.events,
        dead_lettered = r.dead_lettered,
        swept = r.swept,
        duration_ms = took.as_millis() as u64,
        "tail run finished"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_prefixes_cover_the_window() {
        let from = Utc.with_ymd_and_hms(2026, 10, 31, 23, 0, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        assert_eq!(
            day_prefixes("t", from, to),
            vec![
                "tenantId=t/y=2026/m=10/d=31/".to_string(),
                "tenantId=t/y=2026/m=11/d=01/".to_string()
            ]
        );
        let to = Utc.with_ymd_and_hms(2026, 10, 31, 23, 0, 0).unwrap();
        assert_eq!(day_prefixes("t", from, to).len(), 1);
    }
}
