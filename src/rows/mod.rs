//! Export rows: cutting the byte stream into lines ([`framer`]) and parsing each line's
//! envelope ([`parse_row`]).
//!
//! A row is one JSON object per line: `time`, `tenantId`, `category`, `properties`, and on newer
//! rows `_TimeReceivedBySvc`, `operationName`, `Tenant` (platform facts §1). Parsing borrows from
//! the line: `properties` stays a raw slice so its exact bytes can be hashed for the event id and
//! its values copied without a round trip through floating point.

pub mod framer;

use crate::tables::DYNAMIC_NAMES;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
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
    /// `properties` in canonical form: the same keys in the same order, every value byte for
    /// byte as written, without insignificant whitespace. The event id hashes these bytes.
    pub properties: &'a [u8],
    /// `properties.Timestamp`, when it is a string.
    pub timestamp: Option<Cow<'a, str>>,
    /// Byte ranges in `properties` of the values of [`PIVOT_COLUMNS`].
    pub pivots: &'a [Option<Range<usize>>; 5],
    /// String values of columns named in [`crate::tables::DYNAMIC_NAMES`]: (name, byte range in
    /// `properties`).
    pub dynamic_candidates: &'a [(&'static str, Range<usize>)],
}

/// Parses rows, reusing its buffers across rows (no per-row allocation on the common path).
#[derive(Debug, Default)]
pub struct RowParser {
    props: Vec<u8>,
    pivots: [Option<Range<usize>>; 5],
    candidates: Vec<(&'static str, Range<usize>)>,
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
                return Err(RowError::NotJson(e.to_string()));
            }
        }
        self.props.clear();
        self.candidates.clear();
        self.pivots = Default::default();
        let mut de = serde_json::Deserializer::from_str(text);
        let env = de
            .deserialize_map(EnvelopeVisitor {
                props: &mut self.props,
                pivots: &mut self.pivots,
                candidates: &mut self.candidates,
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
        let timestamp = match env.properties {
            PropsSeen::Object(ts) => ts,
            PropsSeen::Missing | PropsSeen::NotObject => {
                return Err(RowError::MissingField("an object `properties`"))
            }
        };
        Ok(Row {
            time: env.time,
            tenant_id: env.tenant_id,
            category,
            received: env.received,
            properties: &self.props,
            timestamp,
            pivots: &self.pivots,
            dynamic_candidates: &self.candidates,
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
    /// Canonical `properties`.
    pub properties: String,
}

enum PropsSeen<'a> {
    Missing,
    NotObject,
    /// An object, with its `Timestamp` if it had a string one.
    Object(Option<Cow<'a, str>>),
}

struct Envelope<'a> {
    time: Option<Cow<'a, str>>,
    tenant_id: Option<Cow<'a, str>>,
    category: Option<Cow<'a, str>>,
    received: Option<Cow<'a, str>>,
    properties: PropsSeen<'a>,
}

struct EnvelopeVisitor<'o> {
    props: &'o mut Vec<u8>,
    pivots: &'o mut [Option<Range<usize>>; 5],
    candidates: &'o mut Vec<(&'static str, Range<usize>)>,
}

/// A JSON value that is kept only when it is a string.
struct MaybeStr<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for MaybeStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: &'de RawValue = Deserialize::deserialize(d)?;
        Ok(MaybeStr(
            serde_json::from_str::<Str<'de>>(raw.get())
                .ok()
                .map(|s| s.0),
        ))
    }
}

impl<'de> Visitor<'de> for EnvelopeVisitor<'_> {
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
        while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
            match key.as_ref() {
                "time" => env.time = map.next_value::<MaybeStr<'de>>()?.0,
                "tenantId" => env.tenant_id = map.next_value::<MaybeStr<'de>>()?.0,
                "category" => env.category = map.next_value::<MaybeStr<'de>>()?.0,
                "_TimeReceivedBySvc" => env.received = map.next_value::<MaybeStr<'de>>()?.0,
                "properties" => {
                    if !matches!(env.properties, PropsSeen::Missing) {
                        return Err(de::Error::custom("duplicate key `properties`"));
                    }
                    env.properties = map.next_value_seed(PropsSeed {
                        out: self.props,
                        pivots: self.pivots,
                        candidates: self.candidates,
                    })?;
                }
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(env)
    }
}

/// Walks `properties`: writes its canonical form and notes the timestamp, the pivot values
/// and the candidate dynamic columns.
struct PropsSeed<'o> {
    out: &'o mut Vec<u8>,
    pivots: &'o mut [Option<Range<usize>>; 5],
    candidates: &'o mut Vec<(&'static str, Range<usize>)>,
}

impl<'de> DeserializeSeed<'de> for PropsSeed<'_> {
    type Value = PropsSeen<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PropsSeed<'_> {
    type Value = PropsSeen<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let out = self.out;
        let mut timestamp = None;
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
                Cow::Owned(k) => crate::normalize::write_str(out, k),
            }
            out.push(b':');
            let start = out.len();
            let raw = value.get();
            out.extend_from_slice(raw.as_bytes());
            let range = start..out.len();
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
                "AdditionalFields"
                | "AttackTechniques"
                | "AuthenticationDetails"
                | "Categories"
                | "ConnectedNetworks"
                | "CrlDistributionPointUrls"
                | "DataSources"
                | "DefaultGateways"
                | "DnsAddresses"
                | "IPAddresses"
                | "LoggedOnUsers"
                | "UrlChain"
                    if raw.starts_with('"') =>
                {
                    if let Some(name) = DYNAMIC_NAMES.iter().find(|n| **n == key) {
                        self.candidates.push((name, range));
                    }
                }
                _ => {}
            }
        }
        out.push(b'}');
        Ok(PropsSeen::Object(timestamp))
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
    fn pivot_columns_match_the_parser() {
        let props: Vec<String> = PIVOT_COLUMNS
            .iter()
            .chain(DYNAMIC_NAMES.iter())
            .map(|c| format!(r#""{c}":"{c}""#))
            .collect();
        let line = format!(r#"{{"category":"x","properties":{{{}}}}}"#, props.join(","));
        let mut p = RowParser::new();
        let row = p.parse(line.as_bytes()).unwrap();
        for (i, c) in PIVOT_COLUMNS.iter().enumerate() {
            let r = row.pivots[i].clone().unwrap();
            assert_eq!(&row.properties[r], format!("\"{c}\"").as_bytes());
        }
        let names: Vec<&str> = row.dynamic_candidates.iter().map(|c| c.0).collect();
        assert_eq!(names, DYNAMIC_NAMES);
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
        match parse_row(b"{") {
            Err(RowError::NotJson(m)) => assert!(m.contains("pretty-printed"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
