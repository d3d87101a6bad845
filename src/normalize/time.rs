//! Timestamps: the export writes ISO-8601 UTC with 0 to 7 fractional digits, usually ending in
//! `Z` but without it on some Email rows' `_TimeReceivedBySvc`. Events carry RFC 3339 UTC ending
//! in `Z`, keeping the source's fractional digits.

use std::borrow::Cow;

/// True when `b` is `YYYY-MM-DDTHH:MM:SS` followed by an optional fraction (`.` and 1-9 digits).
/// Returns the length of that prefix.
fn datetime_len(b: &[u8]) -> Option<usize> {
    const SHAPE: &[u8; 19] = b"0000-00-00T00:00:00";
    if b.len() < 19 {
        return None;
    }
    for (i, &s) in SHAPE.iter().enumerate() {
        let c = b[i];
        let ok = match s {
            b'0' => c.is_ascii_digit(),
            b'T' => c == b'T' || c == b't' || c == b' ',
            _ => c == s,
        };
        if !ok {
            return None;
        }
    }
    let mut n = 19;
    if b.get(19) == Some(&b'.') {
        let digits = b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        n = 20 + digits;
    }
    Some(n)
}

/// Normalizes a timestamp to RFC 3339 UTC ending in `Z`. Returns `None` when the text is not an
/// ISO-8601 date-time.
pub fn normalize_timestamp(s: &str) -> Option<Cow<'_, str>> {
    let b = s.as_bytes();
    let n = datetime_len(b)?;
    let rest = &s[n..];
    let plain_t = b[10] == b'T';
    match rest {
        "Z" if plain_t => Some(Cow::Borrowed(s)),
        "Z" | "z" | "" => {
            let mut o = String::with_capacity(n + 1);
            o.push_str(&s[..10]);
            o.push('T');
            o.push_str(&s[11..n]);
            o.push('Z');
            Some(Cow::Owned(o))
        }
        _ => {
            // An explicit offset: convert to UTC.
            let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
            let frac = n.saturating_sub(20);
            let fmt = match frac {
                0 => chrono::SecondsFormat::Secs,
                1..=3 => chrono::SecondsFormat::Millis,
                4..=6 => chrono::SecondsFormat::Micros,
                _ => chrono::SecondsFormat::Nanos,
            };
            Some(Cow::Owned(
                t.with_timezone(&chrono::Utc).to_rfc3339_opts(fmt, true),
            ))
        }
    }
}

/// Seconds since the Unix epoch (with fraction) of a normalized timestamp.
pub fn unix_seconds(s: &str) -> Option<f64> {
    let (secs, nanos) = unix_parts(s)?;
    Some(secs as f64 + f64::from(nanos) / 1e9)
}

/// Milliseconds since the Unix epoch of a normalized timestamp, the fraction rounded once,
/// half up, from its decimal digits (integer arithmetic: `.0994999` is 99, `.0995` is 100).
pub fn unix_millis(s: &str) -> Option<i64> {
    let (secs, nanos) = unix_parts(s)?;
    Some(secs * 1000 + (i64::from(nanos) + 500_000) / 1_000_000)
}

/// Whole seconds since the Unix epoch and the nanoseconds of the fraction (digits past the
/// ninth are not accepted by [`datetime_len`]).
fn unix_parts(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    let n = datetime_len(b)?;
    let num = |r: std::ops::Range<usize>| -> i64 {
        b[r].iter().fold(0i64, |a, &c| a * 10 + (c - b'0') as i64)
    };
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let (hh, mm, ss) = (num(11..13), num(14..16), num(17..19));
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), proleptic Gregorian.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + hh * 3600 + mm * 60 + ss;
    let mut nanos = 0u32;
    if n > 20 {
        let digits = (n - 20) as u32;
        nanos = (num(20..n) * 10i64.pow(9 - digits)) as u32;
    }
    Some((secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_z_timestamps_and_adds_missing_z() {
        for s in [
            "2026-07-17T10:07:37Z",
            "2026-07-17T10:07:37.7Z",
            "2026-07-17T10:07:37.9530854Z",
        ] {
            assert!(matches!(normalize_timestamp(s), Some(Cow::Borrowed(x)) if x == s));
        }
        assert_eq!(
            normalize_timestamp("2026-07-18T14:04:13.912").as_deref(),
            Some("2026-07-18T14:04:13.912Z")
        );
        assert_eq!(
            normalize_timestamp("2026-07-18 14:04:13").as_deref(),
            Some("2026-07-18T14:04:13Z")
        );
        assert_eq!(
            normalize_timestamp("2026-07-18T16:04:13.5+02:00").as_deref(),
            Some("2026-07-18T14:04:13.500Z")
        );
        assert_eq!(normalize_timestamp("yesterday"), None);
        assert_eq!(normalize_timestamp(""), None);
    }

    #[test]
    fn unix_seconds_matches_chrono() {
        let s = "2026-07-17T10:07:37.729415Z";
        let c = chrono::DateTime::parse_from_rfc3339(s).unwrap();
        let want = c.timestamp() as f64 + c.timestamp_subsec_micros() as f64 / 1e6;
        assert!((unix_seconds(s).unwrap() - want).abs() < 1e-6);
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(unix_seconds("2000-02-29T00:00:00Z"), Some(951782400.0));
    }

    #[test]
    fn millis_round_once_from_the_digits() {
        let base = 1_784_282_857_000; // 2026-07-17T10:07:37Z
        for (frac, ms) in [
            ("", 0),
            (".0994999", 99),
            (".0995", 100),
            (".9995", 1000),
            (".1234567", 123),
            (".999999999", 1000),
            (".5", 500),
        ] {
            let s = format!("2026-07-17T10:07:37{frac}Z");
            assert_eq!(unix_millis(&s), Some(base + ms), "{s}");
        }
    }
}
