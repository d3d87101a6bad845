//! Is the relay keeping up? Per export table: the blobs being watched, the bytes appended but
//! not yet forwarded, how long the oldest of them has been waiting, the newest hour, and the
//! dead letters stored; plus the depth of the BlobCreated poison queue. `mde-relay status`
//! prints it.
//!
//! It only reads: blob listings and properties of the export account, checkpoint listings and
//! reads, dead-letter reads and a queue's properties. It never takes a lease and never writes a
//! checkpoint, so it can run beside the function app (or from cron) at any time.
//!
//! Which blobs count, per export container:
//! * every blob with a checkpoint (the relay saw it);
//! * every blob without one whose hour lies within the last `window` hours (Tail's slow sweep
//!   will find it: `RELAY_TAIL_SWEEP_HOURS`), or whose name carries no hour;
//! * older blobs without a checkpoint are counted as `untracked`: the relay will never drain
//!   them on its own (they predate it, or fell out of the sweep): a backfill does.
//!
//! For each counted blob, `pending = blob length − checkpoint offset` (no checkpoint: offset 0).
//! A blob is *behind* when pending > 0; it has been behind since its checkpoint was last written
//! (`last_seen`) or, without a checkpoint, since its hour began. `lag` = now − the oldest such
//! time in the table. An open blob's unterminated last line counts as pending: it is not
//! forwarded until it is complete or the blob is closed.

use crate::deadletter::stored::DeadLetterStore;
use crate::source::{BlobKey, Scoped};
use crate::state::CheckpointStore;
use anyhow::Context;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::Serialize;
use std::collections::HashMap;

/// The state of one export table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TableStatus {
    /// Table name (or the container name when it is not an export container).
    pub table: String,
    /// Export container.
    pub container: String,
    /// Blobs counted (see the module documentation).
    pub blobs: usize,
    /// Blobs not closed: Tail keeps watching them.
    pub watched: usize,
    /// Blobs with bytes not yet forwarded.
    pub behind: usize,
    /// Bytes appended but not yet forwarded, summed over the blobs.
    pub pending_bytes: u64,
    /// Since when the longest-waiting blob has been behind.
    pub oldest_behind: Option<DateTime<Utc>>,
    /// now − `oldest_behind`, in seconds (0 when nothing is pending).
    pub lag_seconds: f64,
    /// The newest hour among the container's blobs.
    pub newest_hour: Option<DateTime<Utc>>,
    /// Older blobs without a checkpoint, which the relay will not drain on its own.
    pub untracked: usize,
    /// Dead letters stored for this table.
    pub dead_letters: u64,
    /// Rows transforms filtered out (`RELAY_TRANSFORMS`), summed over the checkpoints.
    pub filtered_rows: u64,
    /// Bytes of those rows: what the sink was spared.
    pub filtered_bytes: u64,
}

impl TableStatus {
    /// A table with nothing counted yet.
    fn empty(container: &str) -> Self {
        TableStatus {
            table: crate::metrics::table_label(container),
            container: container.to_string(),
            blobs: 0,
            watched: 0,
            behind: 0,
            pending_bytes: 0,
            oldest_behind: None,
            lag_seconds: 0.0,
            newest_hour: None,
            untracked: 0,
            dead_letters: 0,
            filtered_rows: 0,
            filtered_bytes: 0,
        }
    }
}

/// The poison queue of BlobCreated events.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PoisonQueue {
    /// Queue name (`<RELAY_EVENTS_QUEUE>-poison`).
    pub name: String,
    /// Approximate number of messages.
    pub depth: u64,
}

/// Everything `status` reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Status {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// The export source.
    pub source: String,
    /// The checkpoint store.
    pub state: String,
    /// The dead-letter store.
    pub dead_letter_store: String,
    /// One entry per export container (and per container that only has dead letters).
    pub tables: Vec<TableStatus>,
    /// Dead letters of local files (`process` runs), not tied to an export container.
    pub dead_letters_local: u64,
    /// The poison queue, when the host storage is known.
    pub poison_queue: Option<PoisonQueue>,
}

impl Status {
    /// The table furthest behind, if any table is behind at all.
    pub fn worst(&self) -> Option<&TableStatus> {
        self.tables
            .iter()
            .filter(|t| t.pending_bytes > 0)
            .max_by(|a, b| a.lag_seconds.total_cmp(&b.lag_seconds))
    }
}

/// Takes the status. `window_hours`: how far back blobs without a checkpoint still count (see
/// the module documentation).
pub async fn collect(
    source: &Scoped,
    store: &dyn CheckpointStore,
    dead: &DeadLetterStore,
    window_hours: u32,
    now: DateTime<Utc>,
) -> anyhow::Result<Status> {
    let window_start = now - ChronoDuration::hours(i64::from(window_hours));
    let mut tables = Vec::new();
    for container in source.containers().await? {
        let listed = source.list_blobs(&container, "", None).await?;
        let cps: HashMap<String, crate::state::Summary> = store
            .list(&container, "")
            .await?
            .into_iter()
            .map(|s| (s.key.blob.clone(), s))
            .collect();
        let mut t = TableStatus::empty(&container);
        for cp in cps.values() {
            t.filtered_rows += cp.filtered;
            t.filtered_bytes += cp.filtered_bytes;
        }
        for l in listed {
            let key = BlobKey::new(container.as_str(), l.name.as_str());
            let hour = key.hour();
            if let Some(h) = hour {
                t.newest_hour = Some(t.newest_hour.map_or(h, |n| n.max(h)));
            }
            let cp = cps.get(&l.name);
            if cp.is_none() && hour.is_some_and(|h| h < window_start) {
                t.untracked += 1;
                continue;
            }
            t.blobs += 1;
            let offset = cp.map_or(0, |c| c.offset);
            if !cp.is_some_and(|c| c.closed) {
                t.watched += 1;
            }
            let pending = l.props.length.saturating_sub(offset);
            if pending == 0 {
                continue;
            }
            t.behind += 1;
            t.pending_bytes += pending;
            let since = match cp {
                // Listings carry offsets only; the time is in the checkpoint itself.
                Some(_) => store
                    .get(&key)
                    .await?
                    .map(|s| s.checkpoint.last_seen)
                    .unwrap_or(l.props.last_modified),
                None => hour.unwrap_or(l.props.last_modified),
            };
            t.oldest_behind = Some(t.oldest_behind.map_or(since, |o| o.min(since)));
        }
        if let Some(o) = t.oldest_behind {
            t.lag_seconds = (now - o).num_milliseconds().max(0) as f64 / 1000.0;
        }
        tables.push(t);
    }
    let counts = dead
        .count_by_container()
        .await
        .with_context(|| format!("cannot count dead letters in {}", dead.describe()))?;
    let mut local = 0;
    for (container, n) in counts {
        if container == "local" {
            local += n;
            continue;
        }
        match tables.iter_mut().find(|t| t.container == container) {
            Some(t) => t.dead_letters += n,
            None => tables.push(TableStatus {
                dead_letters: n,
                ..TableStatus::empty(&container)
            }),
        }
    }
    tables.sort_by(|a, b| a.container.cmp(&b.container));
    Ok(Status {
        at: now,
        source: source.describe(),
        state: store.describe(),
        dead_letter_store: dead.describe(),
        tables,
        dead_letters_local: local,
        poison_queue: None,
    })
}

/// Approximate number of messages in `queue` of `account`; a missing queue holds none.
pub async fn queue_depth(
    account: &crate::azure::StorageAccount,
    queue: &str,
) -> anyhow::Result<u64> {
    use azure_storage_queue::models::QueueClientGetPropertiesResultHeaders;
    let q = account.queue_service()?.queue_client(queue)?;
    match q.get_properties(None).await {
        Ok(r) => Ok(r
            .approximate_messages_count()
            .with_context(|| format!("queue {queue}: unreadable message count"))?
            .unwrap_or(0)
            .max(0) as u64),
        Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => Ok(0),
        Err(e) => Err(e).with_context(|| format!("cannot read the properties of queue {queue}")),
    }
}

/// `1h 5m`, `3m 20s`, `45s`.
pub fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    let (d, h, m, s) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// `0 B`, `12.3 kB`, `4.0 MB` (decimal units, as the backfill prints).
pub fn human_bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.1} GB", n as f64 / 1e9),
    }
}

/// The human table (`kubectl get` style: upper-case headers, aligned columns, `-` for none).
pub fn render_table(s: &Status) -> String {
    let head = [
        "TABLE",
        "BLOBS",
        "WATCHED",
        "BEHIND",
        "PENDING",
        "LAG",
        "OLDEST BEHIND",
        "NEWEST HOUR",
        "UNTRACKED",
        "DEAD LETTERS",
        "FILTERED",
    ];
    let mut rows: Vec<Vec<String>> = vec![head.iter().map(|h| h.to_string()).collect()];
    for t in &s.tables {
        rows.push(vec![
            t.table.clone(),
            t.blobs.to_string(),
            t.watched.to_string(),
            t.behind.to_string(),
            human_bytes(t.pending_bytes),
            if t.pending_bytes > 0 {
                human_duration(t.lag_seconds)
            } else {
                "-".into()
            },
            t.oldest_behind
                .map_or("-".into(), |o| o.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            t.newest_hour
                .map_or("-".into(), |h| h.format("%Y-%m-%dT%H").to_string()),
            t.untracked.to_string(),
            t.dead_letters.to_string(),
            if t.filtered_rows > 0 {
                format!("{} ({})", t.filtered_rows, human_bytes(t.filtered_bytes))
            } else {
                "-".into()
            },
        ]);
    }
    let widths: Vec<usize> = (0..head.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    if s.tables.is_empty() {
        out.push_str("(no export containers found)\n");
    }
    if s.dead_letters_local > 0 {
        out.push_str(&format!(
            "dead letters of local files: {}\n",
            s.dead_letters_local
        ));
    }
    match &s.poison_queue {
        Some(p) => out.push_str(&format!(
            "poison queue {}: {} message(s)\n",
            p.name, p.depth
        )),
        None => out.push_str("poison queue: unknown (AzureWebJobsStorage is not set)\n"),
    }
    out
}

/// The reason `--max-lag` fails, when a table is further behind than `max_secs`.
pub fn lag_exceeded(s: &Status, max_secs: f64) -> Option<String> {
    let mut over: Vec<&TableStatus> = s
        .tables
        .iter()
        .filter(|t| t.pending_bytes > 0 && t.lag_seconds > max_secs)
        .collect();
    over.sort_by(|a, b| b.lag_seconds.total_cmp(&a.lag_seconds));
    let w = over.first()?;
    let others = match over.len() {
        1 => String::new(),
        n => format!(" (and {} more table(s))", n - 1),
    };
    Some(format!(
        "{} is {} behind, over the maximum of {}: {} pending in {} blob(s){others}",
        w.table,
        human_duration(w.lag_seconds),
        human_duration(max_secs),
        human_bytes(w.pending_bytes),
        w.behind
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, pending: u64, lag: f64) -> TableStatus {
        TableStatus {
            table: name.into(),
            container: name.to_lowercase(),
            blobs: 1,
            watched: 1,
            behind: usize::from(pending > 0),
            pending_bytes: pending,
            oldest_behind: None,
            lag_seconds: lag,
            newest_hour: None,
            untracked: 0,
            dead_letters: 0,
            filtered_rows: 0,
            filtered_bytes: 0,
        }
    }

    fn status(tables: Vec<TableStatus>) -> Status {
        Status {
            at: Utc::now(),
            source: "s".into(),
            state: "st".into(),
            dead_letter_store: "d".into(),
            tables,
            dead_letters_local: 0,
            poison_queue: None,
        }
    }

    #[test]
    fn max_lag_names_the_worst_table() {
        let s = status(vec![
            table("A", 10, 100.0),
            table("B", 2_500_000, 7300.0),
            table("C", 0, 0.0),
        ]);
        let why = lag_exceeded(&s, 60.0).unwrap();
        assert_eq!(
            why,
            "B is 2h 1m behind, over the maximum of 1m 0s: 2.5 MB pending in 1 blob(s) (and 1 more table(s))"
        );
        assert!(lag_exceeded(&s, 8000.0).is_none());
        assert_eq!(s.worst().unwrap().table, "B");
        assert!(status(vec![table("C", 0, 0.0)]).worst().is_none());
    }

    #[test]
    fn human_table_is_aligned() {
        let s = status(vec![table("DeviceEvents", 1234, 65.0)]);
        let t = render_table(&s);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("TABLE          BLOBS"), "{t}");
        assert!(lines[1].starts_with("DeviceEvents   1"), "{t}");
        assert!(
            lines[1].contains("1.2 kB") && lines[1].contains("1m 5s"),
            "{t}"
        );
        assert!(t.contains("poison queue: unknown"), "{t}");
    }

    #[test]
    fn units() {
        assert_eq!(human_duration(0.4), "0s");
        assert_eq!(human_duration(3700.0), "1h 1m");
        assert_eq!(human_duration(90000.0), "1d 1h");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500_000_000), "1.5 GB");
    }
}
