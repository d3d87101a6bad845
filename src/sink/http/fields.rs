//! The time field some destinations want first in each event (`TimeGenerated`, `@timestamp`).

use crate::event::Batch;
use std::io::Write;
use std::time::SystemTime;

/// Writes event `i` of `batch` with `"<field>":"<time>"` added in front of its other fields:
/// the event time (`properties.Timestamp`), else the export time (`exported_at`), else now, as
/// RFC 3339 UTC with microseconds. Destinations that need a time column on every record
/// (Logs Ingestion `TimeGenerated`, Elasticsearch `@timestamp`) use it.
pub fn append_with_time(batch: &Batch, i: usize, field: &str, out: &mut Vec<u8>) {
    let ev = batch.event(i);
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(b"\":\"");
    match batch.items()[i].time.filter(|t| t.is_finite()) {
        Some(t) => write_time(t, out),
        None => match exported_at(ev) {
            Some(s) => out.extend_from_slice(s),
            None => {
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                write_time(now, out)
            }
        },
    }
    out.push(b'"');
    // The event is a JSON object: splice the rest of it in after the added field.
    match ev.get(1..) {
        Some(rest) if rest.iter().any(|c| !c.is_ascii_whitespace() && *c != b'}') => {
            out.push(b',');
            out.extend_from_slice(rest);
        }
        _ => out.push(b'}'),
    }
}

/// The top-level `exported_at` string of a normalized event (it precedes `properties`, so
/// the first match is the envelope's), when it has one.
fn exported_at(ev: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\"exported_at\":\"";
    let at = memchr::memmem::find(ev, KEY)? + KEY.len();
    let len = memchr::memchr(b'"', &ev[at..])?;
    Some(&ev[at..at + len]).filter(|s| s.len() >= 20)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
fn write_time(t: f64, out: &mut Vec<u8>) {
    let micros = (t * 1e6).round() as i64;
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let dt = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    use chrono::{Datelike, Timelike};
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventId;

    #[test]
    fn time_field_goes_first() {
        let mut b = Batch::new();
        let id = EventId([b'a'; 32]);
        b.push_json(id, "T".into(), Some(1_767_225_600.25), br#"{"x":1}"#);
        b.push_json(
            id,
            "T".into(),
            None,
            br#"{"id":"a","exported_at":"2026-11-24T09:14:03.5518831Z","properties":{}}"#,
        );
        b.push_json(id, "T".into(), None, br#"{}"#);
        let mut out = Vec::new();
        append_with_time(&b, 0, "TimeGenerated", &mut out);
        assert_eq!(
            out,
            br#"{"TimeGenerated":"2026-01-01T00:00:00.250000Z","x":1}"#
        );
        out.clear();
        append_with_time(&b, 1, "@timestamp", &mut out);
        assert!(out.starts_with(br#"{"@timestamp":"2026-11-24T09:14:03.5518831Z","id":"a""#));
        out.clear();
        append_with_time(&b, 2, "t", &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v["t"].as_str().unwrap().ends_with('Z'));
    }
}
