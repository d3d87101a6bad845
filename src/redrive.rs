//! Redrive: stored dead letters go through the normalizer and the sink again, once whatever
//! refused them is fixed (a parser bug, a table the relay did not know, a limit raised).
//!
//! Each selected record's original bytes are handed to the same [`RowProcessor`] a drain uses,
//! as a row at the record's container, blob and offset, so an event that now comes out is byte
//! for byte what a first delivery would have sent: the same `id` (tenant, table, `properties`
//! bytes), the same `source`. Per stored group (one dead-letter blob, or the local file):
//! 1. events are sent in batches of the sink's limits; the sink acknowledges each;
//! 2. only then is the group rewritten: records that became events (or that an allow-list now
//!    skips, as a first delivery would have) are removed, in a local store after being
//!    appended to `<file>.done`; records that fail again stay with the **new** reason; records
//!    not selected stay as they were.
//!
//! A crash between 1 and 2 sends those events again on the next redrive, with the same ids
//! (at-least-once, like every delivery of the relay); a second redrive after a complete one
//! finds nothing left to send.
//!
//! Records that keep only a prefix of their row (over-long rows, `truncated`) or no original
//! bytes cannot be redriven and stay untouched.

use crate::deadletter::stored::{DeadLetterStore, Group};
use crate::deadletter::DeadLetter;
use crate::normalize::Format;
use crate::pipeline::{Filter, RowProcessor};
use crate::rows::Frame;
use crate::sink::{Batch, Sink};
use crate::source::BlobKey;
use anyhow::Context;
use base64::Engine;
use chrono::{DateTime, Utc};

/// Which records to redrive.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only these tables (case-insensitive); empty: all.
    pub tables: Vec<String>,
    /// Only rows of blobs whose hour is at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Only rows of blobs whose hour is before this.
    pub until: Option<DateTime<Utc>>,
}

impl Selection {
    /// True when `r` is selected. Records of blobs without an hour in their name match only
    /// when no time bound is given.
    pub fn matches(&self, r: &DeadLetter) -> bool {
        if self.since.is_some() || self.until.is_some() {
            let hour = BlobKey::new(r.container.as_deref().unwrap_or(""), r.blob.as_str()).hour();
            let Some(h) = hour else { return false };
            if self.since.is_some_and(|s| h < s) || self.until.is_some_and(|u| h >= u) {
                return false;
            }
        }
        if self.tables.is_empty() {
            return true;
        }
        let table = table_of(r);
        table.is_some_and(|t| self.tables.iter().any(|w| w.eq_ignore_ascii_case(&t)))
    }

    /// The dead-letter blob prefix that holds every selected record, when one table is chosen.
    pub fn prefix(&self) -> String {
        match self.tables.as_slice() {
            [one] => format!("{}/", crate::tables::container_for(one)),
            _ => String::new(),
        }
    }
}

/// The table of a record: from its export container, else from the `category` of its row.
fn table_of(r: &DeadLetter) -> Option<String> {
    if let Some(t) = r
        .container
        .as_deref()
        .and_then(crate::tables::table_for_container)
    {
        return Some(t.into_owned());
    }
    let v: serde_json::Value = serde_json::from_str(r.original.as_deref()?).ok()?;
    let cat = v.get("category")?.as_str()?;
    Some(crate::tables::table_from_category(cat).0.into_owned())
}

/// How a redrive behaves.
#[derive(Debug, Clone)]
pub struct RedriveSettings {
    /// Event format (as the drain's).
    pub format: Format,
    /// Allow-lists (as the drain's).
    pub filter: Filter,
    /// Longest accepted row.
    pub max_line: usize,
    /// Events per batch.
    pub batch_max_events: usize,
    /// Bytes per batch.
    pub batch_max_bytes: usize,
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedriveReport {
    /// Records selected.
    pub selected: u64,
    /// Records that became events and were acknowledged by the sink (removed).
    pub sent: u64,
    /// Records an allow-list now skips (removed, as a first delivery would have skipped them).
    pub skipped: u64,
    /// Records refused again (kept, with the new reason).
    pub failed: u64,
    /// Records that cannot be redriven: truncated or without original bytes (kept).
    pub unrecoverable: u64,
    /// Groups rewritten or removed.
    pub groups_changed: u64,
}

/// The original bytes of a record, when it has the whole row.
fn original(r: &DeadLetter) -> Option<Vec<u8>> {
    if r.truncated {
        return None;
    }
    match (&r.original, &r.original_base64) {
        (Some(s), _) => Some(s.as_bytes().to_vec()),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD.decode(b).ok(),
        _ => None,
    }
}

/// Redrives the selected records of `store` into `sink`. See the module documentation.
pub async fn redrive(
    store: &DeadLetterStore,
    sink: &dyn Sink,
    settings: &RedriveSettings,
    sel: &Selection,
) -> anyhow::Result<RedriveReport> {
    let mut report = RedriveReport::default();
    for (name, _) in store.names(&sel.prefix()).await? {
        if let Some(group) = store.read(&name).await? {
            redrive_group(store, sink, settings, sel, &group, &mut report).await?;
        }
    }
    sink.finish().await?;
    Ok(report)
}

async fn redrive_group(
    store: &DeadLetterStore,
    sink: &dyn Sink,
    s: &RedriveSettings,
    sel: &Selection,
    group: &Group,
    report: &mut RedriveReport,
) -> anyhow::Result<()> {
    let mut proc = RowProcessor::new(s.format, s.filter.clone(), s.max_line);
    let mut batch = Batch::new();
    let mut keep: Vec<DeadLetter> = Vec::new();
    let mut done: Vec<DeadLetter> = Vec::new();
    let mut touched = false;
    let mut refused = false;
    for r in &group.records {
        if !sel.matches(r) {
            keep.push(r.clone());
            continue;
        }
        report.selected += 1;
        touched = true;
        let Some(bytes) = original(r) else {
            report.unrecoverable += 1;
            keep.push(r.clone());
            continue;
        };
        let before = proc.stats;
        let mut again = Vec::new();
        proc.handle(
            Frame::Line {
                offset: r.offset,
                bytes: &bytes,
            },
            r.container.as_deref(),
            &r.blob,
            &mut batch,
            &mut again,
        );
        if let Some(new) = again.pop() {
            report.failed += 1;
            refused = true;
            keep.push(DeadLetter {
                // The row's full length stays what the drain measured.
                length: r.length,
                ..new
            });
        } else {
            if proc.stats.skipped > before.skipped {
                report.skipped += 1;
            } else {
                report.sent += 1;
            }
            done.push(r.clone());
        }
        if batch.len() >= s.batch_max_events || batch.bytes() >= s.batch_max_bytes {
            send(sink, &mut batch).await?;
        }
    }
    if !touched {
        return Ok(());
    }
    send(sink, &mut batch).await?;
    // Only after the sink acknowledged every event of the group.
    store.record_done(&done)?;
    if !done.is_empty() || refused {
        store
            .replace(group, &keep)
            .await
            .with_context(|| format!("events were sent, but {} was not updated: a new redrive sends them again (same ids)", store.describe()))?;
        report.groups_changed += 1;
    }
    Ok(())
}

async fn send(sink: &dyn Sink, batch: &mut Batch) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    sink.send(batch)
        .await
        .with_context(|| format!("sink {} refused a batch", sink.name()))?;
    batch.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn rec(container: Option<&str>, blob: &str) -> DeadLetter {
        DeadLetter {
            reason: "r".into(),
            container: container.map(str::to_string),
            blob: blob.into(),
            offset: 0,
            length: 1,
            original: Some(r#"{"category":"AdvancedHunting-AlertInfo"}"#.into()),
            original_base64: None,
            truncated: false,
        }
    }

    #[test]
    fn selection_by_table_and_hour() {
        let b = "tenantId=t/y=2026/m=11/d=01/h=05/m=00/PT1H.json";
        let dpe = rec(Some("insights-logs-advancedhunting-deviceprocessevents"), b);
        let local = rec(None, "some/file.json");
        let all = Selection::default();
        assert!(all.matches(&dpe) && all.matches(&local));
        let t = Selection {
            tables: vec!["deviceprocessevents".into()],
            ..Selection::default()
        };
        assert!(t.matches(&dpe) && !t.matches(&local));
        assert_eq!(
            t.prefix(),
            "insights-logs-advancedhunting-deviceprocessevents/"
        );
        let alert = Selection {
            tables: vec!["AlertInfo".into()],
            ..Selection::default()
        };
        assert!(alert.matches(&local), "table from the row's category");
        let h = |hh| Utc.with_ymd_and_hms(2026, 11, 1, hh, 0, 0).unwrap();
        let w = Selection {
            since: Some(h(5)),
            until: Some(h(6)),
            ..Selection::default()
        };
        assert!(w.matches(&dpe) && !w.matches(&local));
        let later = Selection {
            since: Some(h(6)),
            ..Selection::default()
        };
        assert!(!later.matches(&dpe));
    }

    #[test]
    fn truncated_records_have_no_original() {
        let mut r = rec(None, "f");
        assert!(original(&r).is_some());
        r.truncated = true;
        assert!(original(&r).is_none());
        let r = DeadLetter {
            original: None,
            original_base64: Some(base64::engine::general_purpose::STANDARD.encode(b"\xff{")),
            ..rec(None, "f")
        };
        assert_eq!(original(&r).unwrap(), b"\xff{");
    }
}
