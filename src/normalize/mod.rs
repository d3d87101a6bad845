//! Normalization: one parsed [`Row`] becomes one event of schema `mde-relay/v1` (or, in `raw`
//! format, the original row plus `id`, `table` and `source`). `docs/schema.md` documents every
//! field.
//!
//! The event is written straight into the output buffer of a [`Batch`]: `properties` values are
//! copied byte for byte from the input (so integers above 2^53 survive digit for digit), and
//! only the table's JSON-in-string `dynamic` columns are decoded and re-emitted as JSON.

mod time;

use crate::rows::{Row, Str};
use crate::sink::{Batch, EventId};
use crate::tables::{self, TableName};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

pub use time::{normalize_timestamp, unix_seconds};

/// Schema name carried by every normalized event.
pub const SCHEMA: &str = "mde-relay/v1";

/// Output format of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Schema `mde-relay/v1` (docs/schema.md).
    #[default]
    Normalized,
    /// The original row unmodified, plus `id`, `table` and `source`.
    Raw,
}

/// Where a row came from: the export container and blob (or, for local files, no container and
/// the path relative to the input root), and the byte offset of the row's first byte.
#[derive(Debug, Clone, Copy)]
pub struct SourceRef<'a> {
    /// Export container, `None` for local files.
    pub container: Option<&'a str>,
    /// Blob name, or the local path relative to the input root.
    pub blob: &'a str,
    /// Byte offset of the row in the blob or file.
    pub offset: u64,
}

/// The event id: 128 bits of BLAKE3 over tenant, table and the exact `properties` bytes, as 32
/// lowercase hex characters. `time` is left out on purpose so the export's re-deliveries
/// (identical properties, fresh `time`) get the same id.
pub fn event_id(tenant: &str, table: &str, properties: &[u8]) -> EventId {
    let mut h = blake3::Hasher::new_derive_key("mde-relay 2026 event id v1");
    // Tenant GUIDs appear in either case; the length prefixes keep the fields apart.
    let tenant = tenant.to_ascii_lowercase();
    h.update(&(tenant.len() as u64).to_le_bytes());
    h.update(tenant.as_bytes());
    h.update(&(table.len() as u64).to_le_bytes());
    h.update(table.as_bytes());
    h.update(properties);
    let digest = h.finalize();
    let mut id = [0u8; 32];
    hex::encode_to_slice(&digest.as_bytes()[..16], &mut id).expect("32 hex chars");
    EventId(id)
}

/// Turns rows into events. Holds a scratch buffer reused across rows.
#[derive(Debug, Default)]
pub struct Normalizer {
    format: Format,
    scratch: Vec<u8>,
}

/// Pivot columns copied to the top level of a normalized event, in output order.
const PIVOTS: [(&str, &str); 5] = [
    ("DeviceId", "device_id"),
    ("DeviceName", "device_name"),
    ("MachineGroup", "machine_group"),
    ("ActionType", "action_type"),
    ("ReportId", "report_id"),
];

impl Normalizer {
    /// A normalizer writing the given format.
    pub fn new(format: Format) -> Self {
        Normalizer {
            format,
            scratch: Vec::with_capacity(8192),
        }
    }

    /// The table a row belongs to.
    pub fn table_of(row: &Row<'_>) -> TableName {
        tables::table_from_category(&row.category).0
    }

    /// Appends the event for `row` (whose original line is `line`) to `batch`.
    pub fn push(
        &mut self,
        row: &Row<'_>,
        line: &[u8],
        src: SourceRef<'_>,
        batch: &mut Batch,
    ) -> Result<(), crate::rows::RowError> {
        let (table, info) = tables::table_from_category(&row.category);
        let tenant = row.tenant_id.as_deref().unwrap_or("");
        let id = event_id(tenant, &table, row.properties.get().as_bytes());
        let dynamic = info.map(|i| i.dynamic_columns).unwrap_or(&[]);
        match self.format {
            Format::Raw => {
                let visited = visit_properties(row.properties, &[], &mut self.scratch)?;
                let time = visited.timestamp.and_then(|t| unix_seconds(&t));
                batch.push_event(id, table.clone(), time, |out| {
                    out.extend_from_slice(b"{\"id\":\"");
                    out.extend_from_slice(&id.0);
                    out.extend_from_slice(b"\",\"table\":");
                    write_str(out, &table);
                    out.extend_from_slice(b",\"source\":");
                    write_source(out, src);
                    out.push(b',');
                    // The original row without its opening brace: every original byte kept.
                    let text = trim_ascii(line);
                    out.extend_from_slice(&text[1..]);
                });
            }
            Format::Normalized => {
                let v = visit_properties(row.properties, dynamic, &mut self.scratch)?;
                let ts = v.timestamp.as_deref().and_then(normalize_timestamp);
                let time = ts.as_deref().and_then(unix_seconds);
                let scratch = &self.scratch;
                batch.push_event(id, table.clone(), time, |out| {
                    out.extend_from_slice(b"{\"schema\":\"");
                    out.extend_from_slice(SCHEMA.as_bytes());
                    out.extend_from_slice(b"\",\"id\":\"");
                    out.extend_from_slice(&id.0);
                    out.extend_from_slice(b"\",\"table\":");
                    write_str(out, &table);
                    out.extend_from_slice(b",\"timestamp\":");
                    write_opt_str(out, ts.as_deref());
                    out.extend_from_slice(b",\"exported_at\":");
                    let exported = row.time.as_deref().and_then(normalize_timestamp);
                    write_opt_str(out, exported.as_deref().or(row.time.as_deref()));
                    out.extend_from_slice(b",\"received_at\":");
                    let received = row.received.as_deref().and_then(normalize_timestamp);
                    write_opt_str(out, received.as_deref().or(row.received.as_deref()));
                    out.extend_from_slice(b",\"tenant_id\":");
                    write_opt_str(out, row.tenant_id.as_deref());
                    out.extend_from_slice(b",\"source\":");
                    write_source(out, src);
                    for (i, (_, field)) in PIVOTS.iter().enumerate() {
                        if let Some(r) = &v.pivots[i] {
                            out.extend_from_slice(b",\"");
                            out.extend_from_slice(field.as_bytes());
                            out.extend_from_slice(b"\":");
                            out.extend_from_slice(&scratch[r.clone()]);
                        }
                    }
                    out.extend_from_slice(b",\"properties\":");
                    out.extend_from_slice(scratch);
                    out.push(b'}');
                });
            }
        }
        Ok(())
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    &b[start..]
}

/// What a pass over `properties` found besides the rewritten object.
struct Visited<'a> {
    timestamp: Option<Cow<'a, str>>,
    /// Byte ranges in the scratch buffer of each pivot's value.
    pivots: [Option<std::ops::Range<usize>>; 5],
}

/// Walks `properties` once, writing it (with dynamic columns decoded) into `out`, and noting the
/// timestamp and the pivot values on the way.
fn visit_properties<'a>(
    props: &'a RawValue,
    dynamic: &'static [&'static str],
    out: &mut Vec<u8>,
) -> Result<Visited<'a>, crate::rows::RowError> {
    out.clear();
    let mut de = serde_json::Deserializer::from_str(props.get());
    let v = PropsVisitor { dynamic, out };
    de.deserialize_map(v)
        .map_err(|e| crate::rows::RowError::NotJson(e.to_string()))
}

struct PropsVisitor<'o> {
    dynamic: &'static [&'static str],
    out: &'o mut Vec<u8>,
}

impl<'de> Visitor<'de> for PropsVisitor<'_> {
    type Value = Visited<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let out = self.out;
        let mut visited = Visited {
            timestamp: None,
            pivots: Default::default(),
        };
        out.push(b'{');
        let mut first = true;
        while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            if !first {
                out.push(b',');
            }
            first = false;
            match &key {
                // No escapes in the input: the raw bytes are the key.
                Cow::Borrowed(k) => {
                    out.push(b'"');
                    out.extend_from_slice(k.as_bytes());
                    out.push(b'"');
                }
                Cow::Owned(k) => write_str(out, k),
            }
            out.push(b':');
            let start = out.len();
            let raw = value.get();
            if self.dynamic.contains(&key.as_ref()) && raw.starts_with('"') {
                write_dynamic(out, raw);
            } else {
                out.extend_from_slice(raw.as_bytes());
            }
            if key == "Timestamp" {
                visited.timestamp = serde_json::from_str::<Str<'de>>(raw).ok().map(|s| s.0);
            } else if let Some(i) = PIVOTS.iter().position(|(col, _)| *col == key) {
                visited.pivots[i] = Some(start..out.len());
            }
        }
        out.push(b'}');
        Ok(visited)
    }
}

/// A dynamic column's JSON string: emitted as the object/array it encodes when it holds valid
/// JSON of that kind, otherwise unchanged.
fn write_dynamic(out: &mut Vec<u8>, raw: &str) {
    if let Ok(Str(text)) = serde_json::from_str::<Str<'_>>(raw) {
        let inner = text.trim();
        if (inner.starts_with('{') || inner.starts_with('['))
            && serde_json::from_str::<de::IgnoredAny>(inner).is_ok()
        {
            // Inside valid JSON, CR and LF can only be whitespace between tokens: dropping them
            // keeps the value intact and the output one line.
            if inner.bytes().any(|b| b == b'\n' || b == b'\r') {
                out.extend(inner.bytes().filter(|&b| b != b'\n' && b != b'\r'));
            } else {
                out.extend_from_slice(inner.as_bytes());
            }
            return;
        }
    }
    out.extend_from_slice(raw.as_bytes());
}

/// Writes `s` as a JSON string.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    // Fast path: nothing to escape.
    if s.bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b != 0x7f)
    {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
    }
}

fn write_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_source(out: &mut Vec<u8>, src: SourceRef<'_>) {
    out.extend_from_slice(b"{\"container\":");
    write_opt_str(out, src.container);
    out.extend_from_slice(b",\"blob\":");
    write_str(out, src.blob);
    out.extend_from_slice(b",\"offset\":");
    out.extend_from_slice(itoa::Buffer::new().format(src.offset).as_bytes());
    out.push(b'}');
}

#[cfg(test)]
mod tests;
