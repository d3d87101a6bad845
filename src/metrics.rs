//! Drain metrics: one structured `event=drain_summary` log line per drain that did work.
//!
//! The Functions host forwards every stdout line of the custom handler to Application Insights
//! (`traces`, severity Information), and the handler's logs are JSON with the fields at top
//! level, so each number below is a column away in KQL (`parse_json(message)`): the alert rules
//! in `infra/modules/monitoring.bicep` and the queries in `docs/operations.md` are built on it.
//! These are **log-based metrics**: why no OpenTelemetry exporter is used is explained in
//! `docs/operations.md` ("Why log-based metrics").
//!
//! Fields: `table`, `container`, `blob`, `outcome`, `bytes_read`, `rows`, `events_sent`,
//! `dead_letters`, `skipped`, `filtered` (rows a transform's `where` dropped: not dead letters),
//! `filtered_bytes` (their size), `batches`, `batches_in_flight_max` (most batches at the sink
//! at once), `checkpoints_written` (checkpoint writes of this drain: coalesced, see
//! [`crate::deliver`]), `sink_wait_ms` (time the drain waited for the sink), `duration_ms`,
//! `offset` (checkpoint after the drain),
//! `length` (blob length when the drain started), `pending_bytes` (length − offset), and
//! `lag_seconds` = now − the newest event timestamp (properties.Timestamp) delivered by this
//! drain (absent when nothing was delivered or no event had a timestamp).

use crate::event::Batch;
use crate::pipeline::Stats;
use crate::source::BlobKey;
use std::time::Duration;
use tracing::info;

/// The fields of a `drain_summary` line (besides `event`), as KQL sees them after
/// `parse_json(message)`; the deployment test checks the alert queries use only these.
pub const SUMMARY_FIELDS: &[&str] = &[
    "table",
    "container",
    "blob",
    "outcome",
    "bytes_read",
    "rows",
    "events_sent",
    "dead_letters",
    "skipped",
    "filtered",
    "filtered_bytes",
    "batches",
    "batches_in_flight_max",
    "checkpoints_written",
    "sink_wait_ms",
    "duration_ms",
    "offset",
    "length",
    "pending_bytes",
    "lag_seconds",
];

/// The newest event time of `batch` (Unix seconds), folded into `so_far`.
pub fn newest(so_far: Option<f64>, batch: &Batch) -> Option<f64> {
    batch
        .items()
        .iter()
        .filter_map(|i| i.time)
        .filter(|t| t.is_finite())
        .fold(so_far, |m, t| Some(m.map_or(t, |m: f64| m.max(t))))
}

/// Seconds from `newest` (Unix seconds) to now, never negative (clock skew, future events).
pub fn lag_seconds(newest: f64, now: chrono::DateTime<chrono::Utc>) -> f64 {
    let now = now.timestamp_micros() as f64 / 1e6;
    ((now - newest) * 1000.0).round().max(0.0) / 1000.0
}

/// The table a container holds: the registry's name, else the container without the standard
/// prefix, else the container itself.
pub fn table_label(container: &str) -> String {
    crate::tables::table_for_container(container)
        .map(|t| t.into_owned())
        .unwrap_or_else(|| container.to_string())
}

/// What one drain did, as the `drain_summary` line reports it (the drain fills it from its
/// `drain::Report`, so this module does not depend on the drain).
#[derive(Debug, Clone, Copy)]
pub struct Summary<'a> {
    /// How the drain ended (logged with its `Debug` form).
    pub outcome: &'a dyn std::fmt::Debug,
    /// Rows, events, dead letters, skipped rows and bytes read.
    pub stats: &'a Stats,
    /// Batches sent.
    pub batches: u64,
    /// Most batches at the sink at once.
    pub batches_in_flight_max: usize,
    /// Checkpoints written.
    pub checkpoints_written: u64,
    /// Time spent waiting for the sink, in ms.
    pub sink_wait_ms: u64,
    /// Checkpoint offset after the drain.
    pub offset: u64,
    /// Blob length when the drain started.
    pub length: u64,
    /// Newest event time delivered (Unix seconds).
    pub newest_event: Option<f64>,
}

/// Logs the `drain_summary` line of one drain. See the module documentation.
pub fn drain_summary(key: &BlobKey, r: &Summary<'_>, took: Duration) {
    let lag = r.newest_event.map(|t| lag_seconds(t, chrono::Utc::now()));
    info!(
        event = "drain_summary",
        table = %table_label(&key.container),
        container = %key.container,
        blob = %key.blob,
        outcome = ?r.outcome,
        bytes_read = r.stats.bytes,
        rows = r.stats.rows,
        events_sent = r.stats.events,
        dead_letters = r.stats.dead_lettered,
        skipped = r.stats.skipped,
        filtered = r.stats.filtered,
        filtered_bytes = r.stats.filtered_bytes,
        batches = r.batches,
        batches_in_flight_max = r.batches_in_flight_max,
        checkpoints_written = r.checkpoints_written,
        sink_wait_ms = r.sink_wait_ms,
        duration_ms = took.as_millis() as u64,
        offset = r.offset,
        length = r.length,
        pending_bytes = r.length.saturating_sub(r.offset),
        lag_seconds = lag,
        "drain summary"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventId;
    use chrono::TimeZone;

    #[test]
    fn newest_event_and_lag() {
        let mut b = Batch::new();
        assert_eq!(newest(None, &b), None);
        for t in [Some(100.0), None, Some(250.5), Some(90.0)] {
            b.push_json(EventId([b'0'; 32]), "T".into(), t, b"{}");
        }
        assert_eq!(newest(None, &b), Some(250.5));
        assert_eq!(newest(Some(300.0), &b), Some(300.0));
        let now = chrono::Utc.timestamp_opt(1000, 0).unwrap();
        assert_eq!(lag_seconds(250.5, now), 749.5);
        assert_eq!(lag_seconds(2000.0, now), 0.0, "future events lag nothing");
    }

    #[test]
    fn table_labels() {
        assert_eq!(
            table_label("insights-logs-advancedhunting-deviceprocessevents"),
            "DeviceProcessEvents"
        );
        assert_eq!(table_label("other"), "other");
    }
}
