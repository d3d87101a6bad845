//! Normalization: one parsed [`Row`] becomes one event of schema `mde-relay/v1` (or, in `raw`
//! format, the original row plus `id`, `table` and `source`; in `ocsf` format an OCSF 1.5.0
//! event, see [`ocsf`]). `docs/schema.md` documents every field, `docs/ocsf.md` the OCSF mapping.
//!
//! The event is written straight into the output buffer a [`Batch`] hands out
//! ([`Batch::begin_event`]): `properties` values are
//! copied byte for byte from the parsed row (so integers above 2^53 survive digit for digit), and
//! only the table's JSON columns ([`crate::tables::is_json_column`]) holding JSON text are
//! decoded and re-emitted as JSON. Values are never coerced to their documented types.

pub mod drift;
pub mod ocsf;
mod time;

use crate::event::{Batch, EventId};
use crate::rows::{Row, Str};
use crate::tables::{self, TableInfo, TableName};
use serde::de;

pub use time::{normalize_timestamp, unix_seconds};

/// Schema name carried by every normalized event.
pub const SCHEMA: &str = "mde-relay/v1";

/// Output format of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Schema `mde-relay/v1` (docs/schema.md).
    #[default]
    Normalized,
    /// The original row unmodified, plus `id`, `table` and `source`.
    Raw,
    /// OCSF 1.5.0 events (docs/ocsf.md).
    Ocsf,
}

pub use crate::event::SourceRef;

impl Format {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [Format; 3] = [Format::Normalized, Format::Raw, Format::Ocsf];

    /// The format's setting value (`normalized`, `raw`, `ocsf`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Normalized => "normalized",
            Format::Raw => "raw",
            Format::Ocsf => "ocsf",
        }
    }

    /// Parses a setting value, ignoring case (the `RELAY_FORMAT` reader; the CLI flag goes
    /// through the same names).
    pub fn parse(s: &str) -> Result<Format, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("invalid variant: {s}"))
    }
}

/// The event id: the first 128 bits of SHA-256 over tenant, table and the `properties` bytes (as
/// [`Row::properties`] holds them: every key and value exactly as written), as 32 lowercase hex
/// characters. `time` is left out on purpose so the export's re-deliveries (identical
/// properties, fresh `time`) get the same id.
pub fn event_id(tenant: &str, table: &str, properties: &[u8]) -> EventId {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"mde-relay/v1 event id\0");
    // Tenant GUIDs appear in either case; the length prefixes keep the fields apart.
    let mut tenant_buf = [0u8; 64];
    let tenant = if tenant.len() <= 64 {
        let t = &mut tenant_buf[..tenant.len()];
        t.copy_from_slice(tenant.as_bytes());
        t.make_ascii_lowercase();
        &*t
    } else {
        tenant.as_bytes()
    };
    h.update((tenant.len() as u64).to_le_bytes());
    h.update(tenant);
    h.update((table.len() as u64).to_le_bytes());
    h.update(table.as_bytes());
    h.update(properties);
    let digest = h.finalize();
    let mut id = [0u8; 32];
    hex::encode_to_slice(&digest[..16], &mut id).expect("32 hex chars");
    EventId(id)
}

/// Turns parsed rows into events.
#[derive(Debug, Default)]
pub struct Normalizer {
    format: Format,
}

/// Output names of the pivot fields, matching [`crate::rows::PIVOT_COLUMNS`].
const PIVOT_FIELDS: [&str; 5] = [
    "device_id",
    "device_name",
    "machine_group",
    "action_type",
    "report_id",
];

impl Normalizer {
    /// A normalizer writing the given format.
    pub fn new(format: Format) -> Self {
        Normalizer { format }
    }

    /// The table a row belongs to.
    pub fn table_of(row: &Row<'_>) -> TableName {
        tables::table_from_category(&row.category).0
    }

    /// Appends the event for `row` (whose original line is `line`) to `batch`. Returns
    /// [`Undecoded`]: the JSON columns whose text did not decode.
    pub fn push(
        &self,
        row: &Row<'_>,
        line: &[u8],
        src: SourceRef<'_>,
        batch: &mut Batch,
    ) -> Undecoded {
        let (table, info) = tables::table_from_category(&row.category);
        self.push_table(row, &table, info, line, src, batch)
    }

    /// [`Normalizer::push`] for a row whose table (from [`tables::table_from_category`]) the
    /// caller already looked up.
    pub fn push_table(
        &self,
        row: &Row<'_>,
        table: &TableName,
        info: Option<&'static TableInfo>,
        line: &[u8],
        src: SourceRef<'_>,
        batch: &mut Batch,
    ) -> Undecoded {
        let tenant = row.tenant_id.as_deref().unwrap_or("");
        let id = event_id(tenant, table, row.properties);
        self.push_with_id(row, table, info, line, src, batch, id)
    }

    /// [`Normalizer::push_table`] with the event id given: a transformed row keeps the id of
    /// the row it came from.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn push_with_id(
        &self,
        row: &Row<'_>,
        table: &TableName,
        info: Option<&'static TableInfo>,
        line: &[u8],
        src: SourceRef<'_>,
        batch: &mut Batch,
        id: EventId,
    ) -> Undecoded {
        let mut undecoded = Undecoded(0);
        let ts = row.timestamp.as_deref().and_then(normalize_timestamp);
        let time = ts.as_deref().and_then(unix_seconds);
        match self.format {
            Format::Raw => {
                let mut w = batch.begin_event();
                let out = w.out();
                out.extend_from_slice(b"{\"id\":\"");
                out.extend_from_slice(&id.0);
                out.extend_from_slice(b"\",\"table\":");
                write_str(out, table);
                out.extend_from_slice(b",\"source\":");
                write_source(out, src);
                out.push(b',');
                // The original row without its opening brace: every original byte kept.
                let text = line.trim_ascii_start();
                out.extend_from_slice(&text[1..]);
                w.finish(id, table.clone(), time);
            }
            Format::Ocsf => {
                let mut w = batch.begin_event();
                let out = w.out();
                ocsf::write_event(row, table, &id, out);
                w.finish(id, table.clone(), time);
            }
            Format::Normalized => {
                let is_json = |name: &str| match info {
                    Some(i) => i.is_json_column(name),
                    None => name == tables::ADDITIONAL_FIELDS,
                };
                let mut w = batch.begin_event();
                let out = w.out();
                out.extend_from_slice(b"{\"schema\":\"");
                out.extend_from_slice(SCHEMA.as_bytes());
                out.extend_from_slice(b"\",\"id\":\"");
                out.extend_from_slice(&id.0);
                out.extend_from_slice(b"\",\"table\":");
                write_str(out, table);
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
                for (range, field) in row.pivots.iter().zip(PIVOT_FIELDS) {
                    if let Some(r) = range {
                        out.extend_from_slice(b",\"");
                        out.extend_from_slice(field.as_bytes());
                        out.extend_from_slice(b"\":");
                        out.extend_from_slice(&row.properties[r.clone()]);
                    }
                }
                out.extend_from_slice(b",\"properties\":");
                // Copy properties, decoding this table's JSON columns on the way.
                let mut at = 0;
                for (i, (name, r)) in row.dynamic_candidates.iter().enumerate() {
                    if is_json(name) {
                        out.extend_from_slice(&row.properties[at..r.start]);
                        let raw = std::str::from_utf8(&row.properties[r.clone()])
                            .expect("properties are UTF-8");
                        if !write_dynamic(out, raw) {
                            undecoded.set(i);
                        }
                        at = r.end;
                    }
                }
                out.extend_from_slice(&row.properties[at..]);
                out.push(b'}');
                w.finish(id, table.clone(), time);
            }
        }
        undecoded
    }
}

/// Which of a row's [`Row::dynamic_candidates`] are JSON columns of its table whose text did
/// not decode (bit `i` for candidate `i`; candidates past 64 are not tracked). In `raw`
/// format nothing is decoded, so nothing is reported here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Undecoded(pub u64);

impl Undecoded {
    fn set(&mut self, i: usize) {
        if i < 64 {
            self.0 |= 1 << i;
        }
    }

    /// True when no JSON column failed to decode.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Indices of the candidates that failed to decode.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..64).filter(move |i| self.0 & (1 << i) != 0)
    }
}

/// True when `raw` (a JSON string from a JSON column, already known to start with `{` or `[`)
/// holds valid JSON of that kind.
pub fn decodes(raw: &str) -> bool {
    match serde_json::from_str::<Str<'_>>(raw) {
        Ok(Str(text)) => {
            let inner = text.trim();
            (inner.starts_with('{') || inner.starts_with('['))
                && serde_json::from_str::<de::IgnoredAny>(inner).is_ok()
        }
        Err(_) => false,
    }
}

/// A JSON column's JSON string: emitted as the object/array it encodes when it holds valid
/// JSON of that kind (returns true), otherwise unchanged (returns false).
fn write_dynamic(out: &mut Vec<u8>, raw: &str) -> bool {
    if let Ok(Str(text)) = serde_json::from_str::<Str<'_>>(raw) {
        let inner = text.trim();
        if (inner.starts_with('{') || inner.starts_with('['))
            && serde_json::from_str::<de::IgnoredAny>(inner).is_ok()
        {
            // Inside valid JSON, CR and LF can only be whitespace between tokens: dropping them
            // keeps the value intact and the output one line.
            if memchr::memchr2(b'\n', b'\r', inner.as_bytes()).is_some() {
                out.extend(inner.bytes().filter(|&b| b != b'\n' && b != b'\r'));
            } else {
                out.extend_from_slice(inner.as_bytes());
            }
            return true;
        }
    }
    out.extend_from_slice(raw.as_bytes());
    false
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
