//! Export rows: cutting the byte stream into lines ([`framer`]) and parsing each line's
//! envelope ([`parse_row`]).
//!
//! A row is one JSON object per line: `time`, `tenantId`, `category`, `properties`, and on newer
//! rows `_TimeReceivedBySvc`, `operationName`, `Tenant` (platform facts §1). Parsing borrows from
//! the line: `properties` stays a raw slice so its exact bytes can be hashed for the event id and
//! its values copied without a round trip through floating point.

pub mod framer;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

pub use framer::{Frame, Framer, DEFAULT_MAX_LINE};

/// The envelope of one export row, borrowed from its line.
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
    /// The Advanced Hunting row, exactly as written (always a JSON object).
    pub properties: &'a RawValue,
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

/// Envelope as serde sees it; every field optional so a missing one gets our own message.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    time: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "tenantId")]
    tenant_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    category: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "_TimeReceivedBySvc")]
    received: Option<&'a RawValue>,
    #[serde(borrow, default)]
    properties: Option<&'a RawValue>,
}

fn opt_str<'a>(v: Option<&'a RawValue>) -> Option<Cow<'a, str>> {
    let v = v?;
    serde_json::from_str::<Str<'a>>(v.get()).ok().map(|s| s.0)
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

/// Parses one line (terminator already removed) into a [`Row`].
pub fn parse_row(line: &[u8]) -> Result<Row<'_>, RowError> {
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
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|e| {
        let mut msg = e.to_string();
        if e.is_eof() {
            msg.push_str(" (the line ends inside a JSON document: pretty-printed, multi-line JSON is not JSON Lines)");
        }
        RowError::NotJson(msg)
    })?;
    let category = opt_str(env.category).ok_or(RowError::MissingField("a string `category`"))?;
    let properties = env
        .properties
        .filter(|p| p.get().starts_with('{'))
        .ok_or(RowError::MissingField("an object `properties`"))?;
    Ok(Row {
        time: opt_str(env.time),
        tenant_id: opt_str(env.tenant_id),
        category,
        received: opt_str(env.received),
        properties,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_envelope_in_any_key_order() {
        let line = br#"{"properties":{"Timestamp":"2026-01-01T00:00:00Z","ReportId":639199803770463703},"category":"AdvancedHunting-DeviceEvents","tenantId":"t","time":"2026-01-01T00:01:00Z","Tenant":"DefaultTenant"}"#;
        let row = parse_row(line).unwrap();
        assert_eq!(row.category, "AdvancedHunting-DeviceEvents");
        assert_eq!(row.tenant_id.as_deref(), Some("t"));
        assert!(row.properties.get().contains("639199803770463703"));
        assert!(row.received.is_none());
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
