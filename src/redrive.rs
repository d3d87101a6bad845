//! Redrive: stored dead letters go through the normalizer and the sink again, once whatever
//! refused them is fixed (a parser bug, a table the relay did not know, a limit raised).
//!
//! Each selected record's original bytes are handed to the same [`RowProcessor`] a drain uses,
//! as a row at the record's container, blob and offset, so an event that now comes out is byte
//! for byte what a first delivery would have sent: the same `id` (tenant, table, `properties`
//! bytes), the same `source`. Per stored group (one dead-letter blob, or the local file):
//! 1. events are sent in batches of the sink's limits, several in flight ([`crate::deliver`]);
//!    the sink acknowledges each;
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
use crate::deliver::{Delivery, Pipeline};
use crate::event::{Batch, EventId};
use crate::normalize::Format;
use crate::pipeline::{Filter, RowProcessor};
use crate::rows::Frame;
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
    if let Some(cat) = v.get("category").and_then(|c| c.as_str()) {
        return Some(crate::tables::table_from_category(cat).0.into_owned());
    }
    // A record of an event a sink refused holds the event, which names its table.
    Some(v.get("table")?.as_str()?.to_string())
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
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedriveReport {
    /// Records selected.
    pub selected: u64,
    /// Records that became events and were acknowledged by the sink (removed).
    pub sent: u64,
    /// Records an allow-list or a transform's `where` now drops (removed, as a first delivery
    /// would have dropped them).
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
    delivery: &Delivery,
    settings: &RedriveSettings,
    sel: &Selection,
) -> anyhow::Result<RedriveReport> {
    let mut report = RedriveReport::default();
    for (name, _) in store.names(&sel.prefix()).await? {
        if let Some(group) = store.read(&name).await? {
            redrive_group(store, delivery, settings, sel, &group, &mut report).await?;
        }
    }
    delivery.sink().finish().await?;
    Ok(report)
}

async fn redrive_group(
    store: &DeadLetterStore,
    delivery: &Delivery,
    s: &RedriveSettings,
    sel: &Selection,
    group: &Group,
    report: &mut RedriveReport,
) -> anyhow::Result<()> {
    let mut proc = RowProcessor::new(s.format, s.filter.clone(), s.max_line);
    let mut pending = Pending {
        pipe: delivery.pipeline(None, None),
        batch: Batch::new(),
        records: Vec::new(),
    };
    let mut keep: Vec<DeadLetter> = Vec::new();
    let mut done: Vec<DeadLetter> = Vec::new();
    let mut touched = false;
    let failed_before = report.failed;
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
        if let Some(id) = refused_event_id(r) {
            // A sink refused this event after it was normalized: the record holds the event
            // as sent, so it goes out again unchanged, under the id it had.
            let table = table_of(r).map(Into::into).unwrap_or_else(|| "".into());
            pending.batch.push_json(id, table, None, &bytes);
            pending.records.push(r.clone());
        } else {
            let before = proc.stats;
            let mut again = Vec::new();
            let events_before = pending.batch.len();
            proc.handle(
                Frame::Line {
                    offset: r.offset,
                    bytes: &bytes,
                },
                r.container.as_deref(),
                &r.blob,
                &mut pending.batch,
                &mut again,
            );
            if let Some(new) = again.pop() {
                report.failed += 1;
                keep.push(DeadLetter {
                    // The row's full length stays what the drain measured.
                    length: r.length,
                    ..new
                });
            } else if pending.batch.len() > events_before {
                pending.records.push(r.clone());
            } else if proc.stats.skipped > before.skipped || proc.stats.filtered > before.filtered {
                report.skipped += 1;
                done.push(r.clone());
            }
        }
        if delivery.full(&pending.batch) {
            pending.submit().await?;
            pending.absorb(report, &mut done, &mut keep);
        }
    }
    if !touched {
        return Ok(());
    }
    pending.submit().await?;
    pending.pipe.flush().await?;
    pending.absorb(report, &mut done, &mut keep);
    // Only after the sink acknowledged every event of the group.
    store.record_done(&done)?;
    if !done.is_empty() || report.failed > failed_before {
        store
            .replace(group, &keep)
            .await
            .with_context(|| format!("events were sent, but {} was not updated: a new redrive sends them again (same ids)", store.describe()))?;
        report.groups_changed += 1;
    }
    Ok(())
}

/// The id of an event a sink refused ([`DeadLetter::rejected`]): such a record holds the event
/// as sent, not an export row.
fn refused_event_id(r: &DeadLetter) -> Option<EventId> {
    r.rejected_by.as_ref()?;
    let id = r.event_id.as_deref()?.as_bytes();
    let valid = id.len() == 32 && id.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then(|| EventId(id.try_into().expect("32 bytes")))
}

/// Events on their way to the sink, with the record each came from (same order); batches in
/// flight carry their records as the mark.
struct Pending {
    pipe: Pipeline<Vec<DeadLetter>>,
    batch: Batch,
    records: Vec<DeadLetter>,
}

impl Pending {
    /// Hands the batch being filled to the pipeline.
    async fn submit(&mut self) -> anyhow::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, self.pipe.batch());
        let records = std::mem::take(&mut self.records);
        self.pipe.submit(batch, Vec::new(), records).await
    }

    /// Acknowledged records are done; events the sink refused one by one stay as records of
    /// the refused event, with the sink's reason, at the original location.
    fn absorb(
        &mut self,
        report: &mut RedriveReport,
        done: &mut Vec<DeadLetter>,
        keep: &mut Vec<DeadLetter>,
    ) {
        let sink = self.pipe.sink_name();
        while let Some(a) = self.pipe.take_acked() {
            let mut again = vec![None; a.mark.len()];
            for r in &a.refused {
                if let Some(slot) = again.get_mut(r.index) {
                    *slot = Some(&r.reason);
                }
            }
            for (i, (r, reason)) in a.mark.into_iter().zip(again).enumerate() {
                match reason {
                    None => {
                        report.sent += 1;
                        done.push(r);
                    }
                    Some(reason) => {
                        report.failed += 1;
                        let id = a.batch.items()[i].id;
                        keep.push(DeadLetter {
                            container: r.container,
                            blob: r.blob,
                            offset: r.offset,
                            length: r.length,
                            ..DeadLetter::rejected(sink, id.as_str(), a.batch.event(i), reason)
                        });
                    }
                }
            }
            self.pipe.recycle(a.batch);
        }
    }
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
            rejected_by: None,
            event_id: None,
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
    /// A sink that refuses, one by one, the events whose JSON contains `refuse`.
    struct Picky {
        refuse: &'static str,
        got: std::sync::Mutex<Vec<(String, String)>>,
    }

    #[async_trait::async_trait]
    impl crate::sink::Sink for Picky {
        fn name(&self) -> &'static str {
            "picky"
        }
        async fn send(&self, _: &Batch) -> Result<(), crate::sink::SinkError> {
            unreachable!("redrive delivers")
        }
        async fn deliver(
            &self,
            batch: &Batch,
        ) -> Result<Vec<crate::event::Rejected>, crate::sink::SinkError> {
            let mut refused = Vec::new();
            for (i, it) in batch.items().iter().enumerate() {
                let ev = String::from_utf8(batch.event(i).to_vec()).unwrap();
                if ev.contains(self.refuse) {
                    refused.push(crate::event::Rejected {
                        index: i,
                        reason: "mapper_parsing_exception: nope".into(),
                    });
                } else {
                    self.got.lock().unwrap().push((it.id.to_string(), ev));
                }
            }
            Ok(refused)
        }
    }

    /// An event a sink refused is stored as that event; redrive sends it again, unchanged and
    /// under its first id, once the sink takes it, and keeps it (with the new reason) while the
    /// sink still refuses it.
    #[tokio::test]
    async fn events_a_sink_refused_go_out_again_under_their_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dl.ndjson");
        let event = br#"{"schema":"mde-relay/v1","id":"0123456789abcdef0123456789abcdef","table":"AlertInfo","source":{"container":"insights-logs-advancedhunting-alertinfo","blob":"b","offset":7},"properties":{"x":"bad"}}"#;
        let mut batch = Batch::new();
        let id = EventId(*b"0123456789abcdef0123456789abcdef");
        batch.push_json(id, "AlertInfo".into(), None, event);
        let refused = [crate::event::Rejected {
            index: 0,
            reason: "first".into(),
        }];
        let recs = DeadLetter::refused("elasticsearch", &batch, &refused);
        std::fs::write(&path, recs[0].to_line()).unwrap();
        let store = DeadLetterStore::file(&path);
        let settings = RedriveSettings {
            format: Format::Normalized,
            filter: Filter::default(),
            max_line: 1 << 20,
        };
        let limits = crate::deliver::Limits {
            max_events: 10,
            ..Default::default()
        };
        let all = Selection::default();

        let still = std::sync::Arc::new(Picky {
            refuse: "bad",
            got: Default::default(),
        });
        let d = Delivery::new(still, limits);
        let r = redrive(&store, &d, &settings, &all).await.unwrap();
        assert_eq!((r.selected, r.sent, r.failed), (1, 0, 1));
        let kept = std::fs::read_to_string(&path).unwrap();
        assert!(kept.contains("mapper_parsing_exception"), "{kept}");

        let fixed = std::sync::Arc::new(Picky {
            refuse: "never-matches",
            got: Default::default(),
        });
        let d = Delivery::new(fixed.clone(), limits);
        let r = redrive(&store, &d, &settings, &all).await.unwrap();
        assert_eq!((r.selected, r.sent, r.failed), (1, 1, 0));
        let got = fixed.got.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "0123456789abcdef0123456789abcdef");
        assert_eq!(got[0].1.as_bytes(), event);
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), "");
    }
}
