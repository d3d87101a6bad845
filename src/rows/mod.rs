//! Export rows: cutting the byte stream into lines ([`framer`]) and parsing each line's
//! envelope ([`parse_row`]).
//!
//! A row is one JSON object per line: `time`, `tenantId`, `category`, `properties`, and on newer
//! rows `_TimeReceivedBySvc`, `operationName`, `Tenant` (platform facts §1). Parsing borrows from
//! the line: `properties` stays a raw slice so its exact bytes can be hashed for the event id and
//! its values copied without a round trip through floating point.

pub mod framer;

use crate::tables::json_name;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::hash::Hasher;
use std::ops::Range;

pub use framer::{Frame, Framer, DEFAULT_MAX_LINE};

/// Columns copied to the top level of a normalized event (pivot fields), in output order.
pub const PIVOT_COLUMNS: [&str; 5] = [
    "DeviceId",
    "DeviceName",
    "MachineGroup",
    "ActionType",
    "ReportId",
];

/// One export row, parsed. Strings borrow from the line; `properties` borrows from the
/// parser's buffer.
#[derive(Debug)]
pub struct Row<'a> {
    /// Envelope `time`: when the export wrote the row.
    pub time: Option<Cow<'a, str>>,
    /// Envelope `tenantId`.
    pub tenant_id: Option<Cow<'a, str>>,
    /// `category`, e.g. `AdvancedHunting-DeviceProcessEvents`.
    pub category: Cow<'a, str>,
    /// `_TimeReceivedBySvc`, when present.
    pub received: Option<Cow<'a, str>>,
    /// `properties` exactly as written in the line. The event id hashes these bytes.
    pub properties: &'a [u8],
    /// `properties.Timestamp`, when it is a string.
    pub timestamp: Option<Cow<'a, str>>,
    /// Byte ranges in `properties` of the values of [`PIVOT_COLUMNS`].
    pub pivots: &'a [Option<Range<usize>>; 5],
    /// String values that look like JSON text (first character `{` or `[`) of columns named in
    /// [`crate::tables::JSON_NAMES`]: (name, byte range in `properties`).
    pub dynamic_candidates: &'a [(&'static str, Range<usize>)],
    /// Number of members of `properties`.
    pub columns: u32,
    /// A hash of the sequence of `properties` keys: rows of one table with the same hash have
    /// the same columns, so schema drift is only looked up once per shape.
    pub shape: u64,
}

/// Parses rows, reusing its buffers across rows (no per-row allocation on the common path;
/// nothing is copied: every field borrows from the line).
#[derive(Debug, Default)]
pub struct RowParser {
    pivots: [Option<Range<usize>>; 5],
    candidates: Vec<(&'static str, Range<usize>)>,
    /// Column count and key-sequence hash of the last row.
    shape: (u32, u64),
}

/// Why a line could not become an event. The text is what the dead-letter record carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    /// The line is longer than the configured maximum.
    #[error("row is {len} bytes, longer than the maximum of {max} bytes")]
    TooLong {
        /// Length of the line.
        len: u64,
        /// The configured maximum.
        max: usize,
    },
    /// The line is not valid UTF-8.
    #[error("row is not valid UTF-8 (first invalid byte at row offset {0})")]
    InvalidUtf8(usize),
    /// The line is not JSON at all, or is cut short.
    #[error("row is not valid JSON: {0}")]
    NotJson(String),
    /// The line is valid JSON but not an object.
    #[error("row is JSON but not an object (found {0})")]
    NotObject(&'static str),
    /// A required envelope field is missing or has the wrong type.
    #[error("row lacks {0}")]
    MissingField(&'static str),
}

/// A JSON string that borrows from the input when it has no escapes.
pub(crate) struct Str<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

fn kind_of(first: u8) -> &'static str {
    match first {
        b'[' => "an array",
        b'"' => "a string",
        b't' | b'f' => "a boolean",
        b'n' => "null",
        _ => "a number",
    }
}

impl RowParser {
    /// A parser with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one line (terminator already removed) into a [`Row`], in one pass over the
    /// line: the envelope fields are picked out and `properties` is walked as it streams by.
    pub fn parse<'a>(&'a mut self, line: &'a [u8]) -> Result<Row<'a>, RowError> {
        let text = std::str::from_utf8(line).map_err(|e| RowError::InvalidUtf8(e.valid_up_to()))?;
        let trimmed = text.trim_start();
        match trimmed.as_bytes().first() {
            Some(b'{') => {}
            Some(&c) if serde_json::from_str::<de::IgnoredAny>(trimmed).is_ok() => {
                return Err(RowError::NotObject(kind_of(c)))
            }
            _ => {
                let e = serde_json::from_str::<de::IgnoredAny>(trimmed).unwrap_err();
                let mut msg = e.to_string();
                let t = trimmed.trim_end();
                if t.starts_with(['"', '}', ']']) || t.ends_with([',', '{', '[']) {
                    msg.push_str(" (the line looks like a piece of a pretty-printed, multi-line JSON document, which is not JSON Lines)");
                }
                return Err(RowError::NotJson(msg));
            }
        }
        self.candidates.clear();
        self.pivots = Default::default();
        self.shape = (0, 0);
        let mut de = serde_json::Deserializer::from_str(text);
        let env = de
            .deserialize_map(EnvelopeVisitor {
                text,
                pivots: &mut self.pivots,
                candidates: &mut self.candidates,
                shape: &mut self.shape,
            })
            .and_then(|env| de.end().map(|_| env))
            .map_err(|e| {
                let mut msg = e.to_string();
                if e.is_eof() {
                    msg.push_str(" (the line ends inside a JSON document: pretty-printed, multi-line JSON is not JSON Lines)");
                }
                RowError::NotJson(msg)
            })?;
        let category = env
            .category
            .ok_or(RowError::MissingField("a string `category`"))?;
        let (timestamp, props) = match env.properties {
            PropsSeen::Object(ts, range) => (ts, range),
            PropsSeen::Missing | PropsSeen::NotObject => {
                return Err(RowError::MissingField("an object `properties`"))
            }
        };
        Ok(Row {
            time: env.time,
            tenant_id: env.tenant_id,
            category,
            received: env.received,
            properties: &line[props],
            timestamp,
            pivots: &self.pivots,
            dynamic_candidates: &self.candidates,
            columns: self.shape.0,
            shape: self.shape.1,
        })
    }
}

/// Parses one line with a fresh parser (convenient in tests; hot paths keep a [`RowParser`]).
pub fn parse_row(line: &[u8]) -> Result<OwnedRowCheck, RowError> {
    let mut p = RowParser::new();
    let r = p.parse(line)?;
    Ok(OwnedRowCheck {
        category: r.category.into_owned(),
        tenant_id: r.tenant_id.map(Cow::into_owned),
        properties: String::from_utf8_lossy(r.properties).into_owned(),
    })
}

/// The main facts of a parsed row, owned (see [`parse_row`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRowCheck {
    /// `category`.
    pub category: String,
    /// `tenantId`.
    pub tenant_id: Option<String>,
    /// `properties` as written.
    pub properties: String,
}

enum PropsSeen<'a> {
    Missing,
    NotObject,
    /// An object: its `Timestamp` if it had a string one, and its byte range in the line.
    Object(Option<Cow<'a, str>>, Range<usize>),
}

struct Envelope<'a> {
    time: Option<Cow<'a, str>>,
    tenant_id: Option<Cow<'a, str>>,
    category: Option<Cow<'a, str>>,
    received: Option<Cow<'a, str>>,
    properties: PropsSeen<'a>,
}

struct EnvelopeVisitor<'o, 'de> {
    /// The whole line: values borrow from it, so their addresses give their offsets.
    text: &'de str,
    pivots: &'o mut [Option<Range<usize>>; 5],
    candidates: &'o mut Vec<(&'static str, Range<usize>)>,
    shape: &'o mut (u32, u64),
}

/// Offset of `part` (a slice of `text`) in `text`.
fn offset_in(text: &str, part: &str) -> usize {
    part.as_ptr() as usize - text.as_ptr() as usize
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// From the end of the previous member of an object (or just after its `{`), finds where the
/// next member's value starts: skips `,`, the key string and `:`. Only called on text serde
/// already accepted up to that value.
fn next_value_start(b: &[u8], from: usize) -> Option<usize> {
    let mut i = skip_ws(b, from);
    if b.get(i) == Some(&b',') {
        i = skip_ws(b, i + 1);
    }
    if b.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    loop {
        i += memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        if b[i] == b'\\' {
            i += 2;
        } else {
            break;
        }
    }
    i = skip_ws(b, i + 1);
    if b.get(i) != Some(&b':') {
        return None;
    }
    Some(skip_ws(b, i + 1))
}

impl<'de> Visitor<'de> for EnvelopeVisitor<'_, 'de> {
    type Value = Envelope<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut env = Envelope {
            time: None,
            tenant_id: None,
            category: None,
            received: None,
            properties: PropsSeen::Missing,
        };
        let text = self.text;
        // End of the previous member (starts just after the envelope's `{`).
        let mut cursor = offset_in(text, text.trim_start()) + 1;
        while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
            if key == "properties" {
                if !matches!(env.properties, PropsSeen::Missing) {
                    return Err(de::Error::custom("duplicate key `properties`"));
                }
                let start = next_value_start(text.as_bytes(), cursor)
                    .ok_or_else(|| de::Error::custom("cannot locate `properties`"))?;
                env.properties = map.next_value_seed(PropsSeed {
                    text,
                    start,
                    pivots: &mut *self.pivots,
                    candidates: &mut *self.candidates,
                    shape: &mut *self.shape,
                })?;
                cursor = match &env.properties {
                    PropsSeen::Object(_, r) => r.end,
                    // Not an object: the row is refused anyway.
                    _ => return Ok(env),
                };
                continue;
            }
            let raw: &'de RawValue = map.next_value()?;
            cursor = offset_in(text, raw.get()) + raw.get().len();
            let as_str = || {
                serde_json::from_str::<Str<'de>>(raw.get())
                    .ok()
                    .map(|s| s.0)
            };
            match key.as_ref() {
                "time" => env.time = as_str(),
                "tenantId" => env.tenant_id = as_str(),
                "category" => env.category = as_str(),
                "_TimeReceivedBySvc" => env.received = as_str(),
                _ => {}
            }
        }
        Ok(env)
    }
}

/// Walks `properties` in place: notes its extent in the line, the timestamp, the pivot values
/// the candidate JSON columns (ranges relative to the object's `{`) and the shape of its keys.
struct PropsSeed<'o, 'de> {
    text: &'de str,
    /// Offset of the value in `text` (its `{` when it is an object).
    start: usize,
    pivots: &'o mut [Option<Range<usize>>; 5],
    candidates: &'o mut Vec<(&'static str, Range<usize>)>,
    shape: &'o mut (u32, u64),
}

/// True when a raw JSON string value's text starts with `{` or `[` (after blanks): the only
/// values a JSON column can decode, so the only ones worth noting.
fn looks_like_json_text(raw: &str) -> bool {
    let b = raw.as_bytes();
    if b.first() != Some(&b'"') {
        return false;
    }
    let mut i = 1;
    loop {
        match b.get(i) {
            Some(b'{' | b'[') => return true,
            Some(b' ' | b'\t') => i += 1,
            // An escaped blank (`\n`, `\r`, `\t`).
            Some(b'\\') if matches!(b.get(i + 1), Some(b'n' | b'r' | b't')) => i += 2,
            _ => return false,
        }
    }
}

impl<'de> DeserializeSeed<'de> for PropsSeed<'_, 'de> {
    type Value = PropsSeen<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PropsSeed<'_, 'de> {
    type Value = PropsSeen<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (text, start) = (self.text, self.start);
        if text.as_bytes().get(start) != Some(&b'{') {
            return Err(de::Error::custom("cannot locate `properties`"));
        }
        let mut timestamp = None;
        let mut last = start + 1;
        let mut shape = rustc_hash::FxHasher::default();
        let mut columns = 0u32;
        while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            let raw = value.get();
            let at = offset_in(text, raw);
            last = at + raw.len();
            let range = at - start..last - start;
            columns += 1;
            // The key sequence, hashed cheaply (the keys are in cache already): a new shape is
            // looked up in the registry once, not every row.
            shape.write(key.as_bytes());
            shape.write_u8(0xff);
            // One `match` so the compiler can branch on length first: this runs for every
            // column of every row.
            match key.as_ref() {
                "Timestamp" => {
                    timestamp = serde_json::from_str::<Str<'de>>(raw).ok().map(|s| s.0);
                }
                "DeviceId" => self.pivots[0] = Some(range),
                "DeviceName" => self.pivots[1] = Some(range),
                "MachineGroup" => self.pivots[2] = Some(range),
                "ActionType" => self.pivots[3] = Some(range),
                "ReportId" => self.pivots[4] = Some(range),
                _ if looks_like_json_text(raw) => {
                    if let Some(name) = json_name(&key) {
                        self.candidates.push((name, range));
                    }
                }
                _ => {}
            }
        }
        *self.shape = (columns, shape.finish());
        let close = skip_ws(text.as_bytes(), last);
        if text.as_bytes().get(close) != Some(&b'}') {
            return Err(de::Error::custom("cannot locate the end of `properties`"));
        }
        Ok(PropsSeen::Object(timestamp, start..close + 1))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(PropsSeen::NotObject)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(PropsSeen::NotObject)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(PropsSeen::NotObject)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(PropsSeen::NotObject)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(PropsSeen::NotObject)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(PropsSeen::NotObject)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(PropsSeen::NotObject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::JSON_NAMES;

    #[test]
    fn parses_envelope_in_any_key_order() {
        let line = br#"{"properties":{"Timestamp":"2026-01-01T00:00:00Z","ReportId":639199803770463703},"category":"AdvancedHunting-DeviceEvents","tenantId":"t","time":"2026-01-01T00:01:00Z","Tenant":"DefaultTenant"}"#;
        let mut p = RowParser::new();
        let row = p.parse(line).unwrap();
        assert_eq!(row.category, "AdvancedHunting-DeviceEvents");
        assert_eq!(row.tenant_id.as_deref(), Some("t"));
        assert_eq!(
            row.properties,
            br#"{"Timestamp":"2026-01-01T00:00:00Z","ReportId":639199803770463703}"#
        );
        assert_eq!(row.timestamp.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert!(row.received.is_none());
        let r = row.pivots[4].clone().unwrap();
        assert_eq!(&row.properties[r], b"639199803770463703");
    }

    #[test]
    fn properties_are_the_exact_bytes_whatever_the_spacing() {
        let line = br#" { "we\"ird" : [1, {"a":"}"}] , "category" : "AdvancedHunting-X" , "propert\u0069es" : { "Timestamp" : "t" , "ReportId":12 } , "z": [1] } "#;
        let mut p = RowParser::new();
        let row = p.parse(line).unwrap();
        assert_eq!(row.properties, br#"{ "Timestamp" : "t" , "ReportId":12 }"#);
        assert_eq!(row.timestamp.as_deref(), Some("t"));
        let r = row.pivots[4].clone().unwrap();
        assert_eq!(&row.properties[r], b"12");
        let row = p.parse(br#"{"properties":{},"category":"c"}"#).unwrap();
        assert_eq!(row.properties, b"{}");
        let row = p.parse(br#"{"properties":{ },"category":"c"}"#).unwrap();
        assert_eq!(row.properties, b"{ }");
    }

    #[test]
    fn pivot_columns_match_the_parser() {
        let props: Vec<String> = PIVOT_COLUMNS
            .iter()
            .map(|c| format!(r#""{c}":"{c}""#))
            .chain(JSON_NAMES.iter().map(|c| format!(r#""{c}":" [{c}""#)))
            .chain([r#""ProcessCommandLine":"{\"x\":1}""#.to_string()])
            .chain([r#""Categories":"not json-looking""#.to_string()])
            .collect();
        let line = format!(r#"{{"category":"x","properties":{{{}}}}}"#, props.join(","));
        let mut p = RowParser::new();
        let row = p.parse(line.as_bytes()).unwrap();
        for (i, c) in PIVOT_COLUMNS.iter().enumerate() {
            let r = row.pivots[i].clone().unwrap();
            assert_eq!(&row.properties[r], format!("\"{c}\"").as_bytes());
        }
        let names: Vec<&str> = row.dynamic_candidates.iter().map(|c| c.0).collect();
        assert_eq!(names, JSON_NAMES);
        assert_eq!(
            row.columns as usize,
            PIVOT_COLUMNS.len() + JSON_NAMES.len() + 2
        );
    }

    #[test]
    fn shape_follows_the_key_sequence_only() {
        let mut p = RowParser::new();
        let shape = |p: &mut RowParser, props: &str| {
            let line = format!(r#"{{"category":"x","properties":{props}}}"#);
            let row = p.parse(line.as_bytes()).unwrap();
            (row.columns, row.shape)
        };
        let a = shape(&mut p, r#"{"A":1,"B":"x"}"#);
        assert_eq!(a, shape(&mut p, r#"{"A":2, "B":null}"#));
        assert_eq!(a, shape(&mut p, r#"{"A":2,"\u0042":null}"#));
        assert_ne!(a, shape(&mut p, r#"{"B":1,"A":"x"}"#));
        assert_ne!(a, shape(&mut p, r#"{"AB":1}"#));
        assert_ne!(a, shape(&mut p, r#"{"A":1,"B":"x","C":3}"#));
        assert_eq!(shape(&mut p, "{}").0, 0);
    }

    #[test]
    fn json_text_detection() {
        assert!(looks_like_json_text(r#""{}""#));
        assert!(looks_like_json_text(r#"" \n[1]""#));
        assert!(!looks_like_json_text(r#""x{}""#));
        assert!(!looks_like_json_text(r#"{"a":1}"#));
        assert!(!looks_like_json_text(r#""""#));
    }

    #[test]
    fn classifies_bad_rows() {
        assert_eq!(parse_row(b"\xff{}").unwrap_err(), RowError::InvalidUtf8(0));
        assert!(matches!(parse_row(b"hello"), Err(RowError::NotJson(_))));
        assert_eq!(
            parse_row(b"[1,2]").unwrap_err(),
            RowError::NotObject("an array")
        );
        assert_eq!(
            parse_row(b"42").unwrap_err(),
            RowError::NotObject("a number")
        );
        assert!(matches!(
            parse_row(br#"{"properties":{}}"#),
            Err(RowError::MissingField(_))
        ));
        assert!(matches!(
            parse_row(br#"{"category":"x","properties":"{}"}"#),
            Err(RowError::MissingField(_))
        ));
        assert!(matches!(
            parse_row(br#"{"category":"x","properties":{},}"#),
            Err(RowError::NotJson(_))
        ));
        match parse_row(br#"  "Timestamp": "2026-01-01T00:00:00Z","#) {
            Err(RowError::NotJson(m)) => assert!(m.contains("pretty-printed"), "{m}"),
            other => panic!("{other:?}"),
        }
        match parse_row(b"hello") {
            Err(RowError::NotJson(m)) => assert!(!m.contains("pretty-printed"), "{m}"),
            other => panic!("{other:?}"),
        }
        match parse_row(b"{") {
            Err(RowError::NotJson(m)) => assert!(m.contains("pretty-printed"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
