//! Values a transform computes with, and the KQL semantics of comparing them.
//!
//! A column's value is read from the raw JSON bytes of `properties` only when an expression
//! asks for it ([`Value::from_raw`]): strings without escapes borrow from the row, numbers stay
//! integers when they are, and a JSON column's JSON text is decoded into a `dynamic` value (the
//! transform sees the row after JSON columns are decoded, as the normalized event does).
//!
//! Rules (docs/transforms.md): every comparison with null is false (negated ones too); `==`,
//! `!=`, `in`, `!in` are case-sensitive; `=~`, `!~`, `in~`, `has`, `contains`, `startswith`,
//! `endswith` are not; `has` matches whole terms. A datetime compared with a string parses the
//! string; a number compared with a string parses the string.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use std::borrow::Cow;
use std::cmp::Ordering;

/// Nanoseconds per unit.
pub(crate) const NS_SECOND: i64 = 1_000_000_000;

/// One value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// Null: a missing column, a JSON `null`, or a failed conversion.
    Null,
    /// `bool`.
    Bool(bool),
    /// `long`.
    Int(i64),
    /// `real`.
    Real(f64),
    /// `string`.
    Str(Cow<'a, str>),
    /// `datetime`: nanoseconds since the Unix epoch, UTC.
    Date(i64),
    /// `timespan`: nanoseconds.
    Span(i64),
    /// `dynamic`: an object or array (decoded JSON column, `dynamic([...])`).
    Dyn(Cow<'a, serde_json::Value>),
}

impl<'a> Value<'a> {
    /// The value of a column from its raw JSON text in `properties`. `json_column`: the column
    /// holds JSON text to decode (the table's JSON columns).
    pub fn from_raw(raw: &'a [u8], json_column: bool) -> Value<'a> {
        let text = std::str::from_utf8(raw).unwrap_or("null");
        match raw.first() {
            Some(b'"') => {
                let s = if memchr::memchr(b'\\', raw).is_none() {
                    Cow::Borrowed(&text[1..text.len().saturating_sub(1).max(1)])
                } else {
                    match serde_json::from_str::<String>(text) {
                        Ok(s) => Cow::Owned(s),
                        Err(_) => return Value::Null,
                    }
                };
                if json_column {
                    let t = s.trim_start();
                    if t.starts_with(['{', '[']) {
                        if let Ok(v) = serde_json::from_str::<serde_json::Value>(t) {
                            return Value::Dyn(Cow::Owned(v));
                        }
                    }
                }
                Value::Str(s)
            }
            Some(b't') => Value::Bool(true),
            Some(b'f') => Value::Bool(false),
            Some(b'n') | None => Value::Null,
            Some(b'{' | b'[') => match serde_json::from_str(text) {
                Ok(v) => Value::Dyn(Cow::Owned(v)),
                Err(_) => Value::Null,
            },
            Some(_) => number(text),
        }
    }

    /// A decoded JSON value as a transform value, borrowing it (objects and arrays stay
    /// `dynamic`).
    pub fn from_json(v: &'a serde_json::Value) -> Value<'a> {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => n.as_f64().map_or(Value::Null, Value::Real),
            },
            serde_json::Value::String(s) => Value::Str(Cow::Borrowed(s)),
            other => Value::Dyn(Cow::Borrowed(other)),
        }
    }

    /// [`Value::from_json`] taking the value.
    pub fn from_json_owned(v: serde_json::Value) -> Value<'static> {
        match v {
            serde_json::Value::String(s) => Value::Str(Cow::Owned(s)),
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => Value::Dyn(Cow::Owned(v)),
            other => Value::from_json(&other).into_owned(),
        }
    }

    /// A value borrowing this one (constants of a transform, evaluated per row).
    pub fn borrowed(&self) -> Value<'_> {
        match self {
            Value::Str(s) => Value::Str(Cow::Borrowed(s)),
            Value::Dyn(d) => Value::Dyn(Cow::Borrowed(d)),
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(*b),
            Value::Int(i) => Value::Int(*i),
            Value::Real(r) => Value::Real(*r),
            Value::Date(d) => Value::Date(*d),
            Value::Span(s) => Value::Span(*s),
        }
    }

    /// `tostring`, taking the value (strings stay borrowed).
    pub fn into_text(self) -> Cow<'a, str> {
        match self {
            Value::Str(s) => s,
            other => Cow::Owned(other.to_text().into_owned()),
        }
    }

    /// The value borrowing nothing.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Real(r) => Value::Real(r),
            Value::Date(d) => Value::Date(d),
            Value::Span(s) => Value::Span(s),
            Value::Dyn(d) => Value::Dyn(Cow::Owned(d.into_owned())),
        }
    }

    /// True for null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// `isempty`: null or the empty string.
    pub fn is_empty(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Str(s) => s.is_empty(),
            _ => false,
        }
    }

    /// `tostring`: null becomes the empty string, `dynamic` its JSON text.
    pub fn to_text(&self) -> Cow<'_, str> {
        match self {
            Value::Null => Cow::Borrowed(""),
            Value::Str(s) => Cow::Borrowed(s),
            Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Value::Int(i) => Cow::Owned(i.to_string()),
            Value::Real(r) => Cow::Owned(r.to_string()),
            Value::Date(d) => Cow::Owned(date_text(*d)),
            Value::Span(s) => Cow::Owned(span_text(*s)),
            Value::Dyn(v) => Cow::Owned(v.to_string()),
        }
    }

    /// `toint` / `tolong`: integers from numbers, numeric strings and booleans, else null.
    pub fn to_int(&self) -> Value<'static> {
        match self {
            Value::Int(i) => Value::Int(*i),
            Value::Real(r) if r.is_finite() => Value::Int(r.trunc() as i64),
            Value::Bool(b) => Value::Int(*b as i64),
            Value::Str(s) => match number(s.trim()) {
                Value::Int(i) => Value::Int(i),
                Value::Real(r) if r.is_finite() => Value::Int(r.trunc() as i64),
                _ => Value::Null,
            },
            Value::Dyn(d) => Value::from_json(d).to_int(),
            _ => Value::Null,
        }
    }

    /// Writes the value as JSON (a reshaped row's new columns).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
            Value::Real(r) if r.is_finite() => {
                serde_json::to_writer(&mut *out, r).expect("writing to a Vec cannot fail")
            }
            Value::Real(_) => out.extend_from_slice(b"null"),
            Value::Str(s) => crate::normalize::write_str(out, s),
            Value::Date(_) | Value::Span(_) => crate::normalize::write_str(out, &self.to_text()),
            Value::Dyn(v) => serde_json::to_writer(&mut *out, &**v).expect("writing to a Vec"),
        }
    }
}

/// A JSON number's text as `long` when it is an integer that fits, else `real`, else null.
fn number(text: &str) -> Value<'static> {
    if let Ok(i) = text.parse::<i64>() {
        return Value::Int(i);
    }
    text.parse::<f64>().map_or(Value::Null, Value::Real)
}

/// A datetime as KQL prints it: ISO 8601 UTC with 7 fractional digits dropped when zero.
pub fn date_text(ns: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_nanos(ns);
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A timespan as KQL prints it: `[-][d.]hh:mm:ss[.fffffff]`.
pub fn span_text(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let a = ns.unsigned_abs();
    let secs = a / NS_SECOND as u64;
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let frac = a % NS_SECOND as u64 / 100;
    let mut o = sign.to_string();
    if d > 0 {
        o.push_str(&format!("{d}."));
    }
    o.push_str(&format!("{h:02}:{m:02}:{s:02}"));
    if frac > 0 {
        o.push_str(&format!(".{frac:07}"));
    }
    o
}

/// Parses a datetime: ISO 8601 / RFC 3339 (with `T` or a blank, offset or not, any number of
/// fractional digits), or a date alone. Without an offset the time is UTC.
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return t.timestamp_nanos_opt();
    }
    let s = s.strip_suffix(['Z', 'z']).unwrap_or(s);
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return t.and_utc().timestamp_nanos_opt();
        }
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_nanos_opt()
}

/// Parses a timespan literal (`1h`, `30m`, `1.5d`, `100ms`, `-10s`) into nanoseconds.
pub fn parse_span(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s
        .find(|c: char| c.is_ascii_alphabetic())
        .filter(|&i| i > 0)?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit_ns: f64 = match unit {
        "d" | "day" | "days" => 86400e9,
        "h" | "hour" | "hours" => 3600e9,
        "m" | "minute" | "minutes" => 60e9,
        "s" | "second" | "seconds" => 1e9,
        "ms" => 1e6,
        _ => return None,
    };
    let v = n * unit_ns;
    (v.is_finite() && v.abs() < 9.2e18).then_some(v as i64)
}

/// The numeric value of `v` as f64 (numbers and numeric strings).
fn as_f64(v: &Value<'_>) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Real(r) => Some(*r),
        Value::Str(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(*b as i64 as f64),
        _ => None,
    }
}

/// A `dynamic` scalar as its plain value (a JSON string inside an object compares as a string).
fn scalar<'v>(v: &'v Value<'_>) -> Cow<'v, Value<'v>> {
    match v {
        Value::Dyn(d) if !d.is_object() && !d.is_array() => Cow::Owned(Value::from_json(d)),
        other => Cow::Borrowed(other),
    }
}

/// Orders two values, or `None` when they do not compare (null, mismatched kinds).
pub fn compare(a: &Value<'_>, b: &Value<'_>) -> Option<Ordering> {
    let (a, b) = (scalar(a), scalar(b));
    match (&*a, &*b) {
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Date(x), Value::Date(y)) | (Value::Span(x), Value::Span(y)) => Some(x.cmp(y)),
        (Value::Date(x), Value::Str(s)) => parse_date(s).map(|y| x.cmp(&y)),
        (Value::Str(s), Value::Date(y)) => parse_date(s).map(|x| x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Some(x.as_ref().cmp(y.as_ref())),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Dyn(x), Value::Dyn(y)) => (x == y).then_some(Ordering::Equal),
        (Value::Dyn(_), _) | (_, Value::Dyn(_)) => None,
        (x, y) => as_f64(x)?.partial_cmp(&as_f64(y)?),
    }
}

/// `==`: case-sensitive for strings; false when either side is null.
pub fn equals(a: &Value<'_>, b: &Value<'_>) -> bool {
    compare(a, b) == Some(Ordering::Equal)
}

/// `=~`: equal ignoring case (as strings); false when either side is null.
pub fn equals_ci(a: &Value<'_>, b: &Value<'_>) -> bool {
    if a.is_null() || b.is_null() {
        return false;
    }
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => eq_ci(x, y),
        _ => eq_ci(&a.to_text(), &b.to_text()) || equals(a, b),
    }
}

fn eq_ci(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.eq_ignore_ascii_case(b)
        || (!a.is_ascii() && a.to_lowercase() == b.to_lowercase())
}

/// Lower-cases ASCII without allocating when there is nothing to change.
fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) || !s.is_ascii() {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// `contains`: `needle` anywhere in `hay`, ignoring case.
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    let (h, n) = (lower(hay), lower(needle));
    memchr::memmem::find(h.as_bytes(), n.as_bytes()).is_some()
}

/// `startswith`, ignoring case.
pub fn starts_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if hay.is_ascii() && needle.is_ascii() {
        return h.len() >= n.len() && h[..n.len()].eq_ignore_ascii_case(n);
    }
    lower(hay).starts_with(&*lower(needle))
}

/// `endswith`, ignoring case.
pub fn ends_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if hay.is_ascii() && needle.is_ascii() {
        return h.len() >= n.len() && h[h.len() - n.len()..].eq_ignore_ascii_case(n);
    }
    lower(hay).ends_with(&*lower(needle))
}

fn is_term_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c >= 0x80
}

/// `has`: `needle` occurs in `hay` as whole terms, ignoring case. A term is a run of letters
/// and digits; the match must not start or end inside a term of `hay` (where `needle` itself
/// starts or ends with a letter or digit). An empty needle matches nothing.
pub fn has_term(hay: &str, needle: &str) -> bool {
    let needle = needle.trim_matches(|c: char| !c.is_alphanumeric() && c.is_ascii() && c != '_');
    if needle.is_empty() {
        return false;
    }
    let (h, n) = (lower(hay), lower(needle));
    let (h, n) = (h.as_bytes(), n.as_bytes());
    let (head, tail) = (is_term_char(n[0]), is_term_char(n[n.len() - 1]));
    memchr::memmem::find_iter(h, n).any(|at| {
        let before = at == 0 || !head || !is_term_char(h[at - 1]);
        let end = at + n.len();
        let after = end == h.len() || !tail || !is_term_char(h[end]);
        before && after
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_matches_whole_terms_ignoring_case() {
        assert!(has_term("powershell.exe -enc AAA", "PowerShell"));
        assert!(has_term("C:\\Windows\\System32\\cmd.exe", "system32"));
        assert!(!has_term("powershell.exe", "power"));
        assert!(!has_term("xpowershell", "powershell"));
        assert!(has_term("a cmd.exe b", "cmd.exe"));
        assert!(!has_term("anything", ""));
    }

    #[test]
    fn raw_values() {
        assert_eq!(
            Value::from_raw(b"\"a\\\"b\"", false),
            Value::Str("a\"b".into())
        );
        assert_eq!(Value::from_raw(b"\"\"", false), Value::Str("".into()));
        assert_eq!(
            Value::from_raw(b"639199803770463703", false),
            Value::Int(639199803770463703)
        );
        assert_eq!(Value::from_raw(b"1.5", false), Value::Real(1.5));
        assert_eq!(Value::from_raw(b"null", false), Value::Null);
        assert!(matches!(
            Value::from_raw(br#""{\"a\":1}""#, true),
            Value::Dyn(_)
        ));
        assert!(matches!(
            Value::from_raw(br#""{\"a\":1}""#, false),
            Value::Str(_)
        ));
        assert!(matches!(
            Value::from_raw(br#""{not json""#, true),
            Value::Str(_)
        ));
    }

    #[test]
    fn dates_and_spans() {
        let a = parse_date("2026-01-01T00:00:00.1234567Z").unwrap();
        assert_eq!(parse_date("2026-01-01").unwrap(), a - 123_456_700);
        assert_eq!(parse_date("2026-01-01 00:00:00.1234567").unwrap(), a);
        assert_eq!(parse_span("1h"), Some(3600 * NS_SECOND));
        assert_eq!(parse_span("1.5d"), Some(129_600 * NS_SECOND));
        assert_eq!(parse_span("100ms"), Some(100_000_000));
        assert_eq!(span_text(90 * 60 * NS_SECOND), "01:30:00");
        assert_eq!(date_text(0), "1970-01-01T00:00:00Z");
        let s = Value::Str("2026-01-01T00:00:00Z".into());
        assert_eq!(compare(&s, &Value::Date(a)), Some(Ordering::Less));
    }
}
