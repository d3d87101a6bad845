//! The JSON writers of the generator: keys, escaped strings, numbers, GUIDs, hex and the
//! export's timestamp forms, appended straight to the row buffer.

use super::{Rng, TICKS_PER_SEC};

pub(super) fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &c| {
        (h ^ c as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

// ---- writing primitives -------------------------------------------------------------------

pub(super) const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `n` random lowercase hex digits.
pub(super) fn push_hex(o: &mut Vec<u8>, rng: &mut Rng, n: usize) {
    let mut left = n;
    while left > 0 {
        let mut r = rng.u64();
        for _ in 0..left.min(16) {
            o.push(HEX[(r & 15) as usize]);
            r >>= 4;
        }
        left = left.saturating_sub(16);
    }
}

/// Appends a random version-4 GUID (the shape of tenant, object and device ids).
pub(super) fn push_guid(o: &mut Vec<u8>, rng: &mut Rng) {
    let start = o.len();
    for (i, n) in [8, 4, 4, 4, 12].into_iter().enumerate() {
        if i > 0 {
            o.push(b'-');
        }
        push_hex(o, rng, n);
    }
    o[start + 14] = b'4';
    o[start + 19] = b"89ab"[(o[start + 19] & 3) as usize];
}

pub(super) fn guid_string(rng: &mut Rng) -> String {
    let mut v = Vec::with_capacity(36);
    push_guid(&mut v, rng);
    String::from_utf8(v).expect("hex is ASCII")
}

/// Writes the key of the next member of the object being written, with the separating comma.
pub(super) fn key(o: &mut Vec<u8>, k: &str) {
    if !matches!(o.last(), Some(b'{') | Some(b'[')) {
        o.push(b',');
    }
    o.push(b'"');
    o.extend_from_slice(k.as_bytes());
    o.extend_from_slice(b"\":");
}

/// Appends `s` JSON-escaped (without quotes).
pub(super) fn esc(o: &mut Vec<u8>, s: &[u8]) {
    let mut run = 0;
    for (i, &c) in s.iter().enumerate() {
        let rep: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                o.extend_from_slice(&s[run..i]);
                o.extend_from_slice(b"\\u00");
                o.push(HEX[(c >> 4) as usize]);
                o.push(HEX[(c & 15) as usize]);
                run = i + 1;
                continue;
            }
            _ => continue,
        };
        o.extend_from_slice(&s[run..i]);
        o.extend_from_slice(rep);
        run = i + 1;
    }
    o.extend_from_slice(&s[run..]);
}

/// `"k":"v"` with `v` escaped.
pub(super) fn s(o: &mut Vec<u8>, k: &str, v: &str) {
    key(o, k);
    o.push(b'"');
    esc(o, v.as_bytes());
    o.push(b'"');
}

/// `"k":"v"` from bytes.
pub(super) fn sb(o: &mut Vec<u8>, k: &str, v: &[u8]) {
    key(o, k);
    o.push(b'"');
    esc(o, v);
    o.push(b'"');
}

/// `"k":"v"` or `"k":null`.
pub(super) fn os(o: &mut Vec<u8>, k: &str, v: Option<&str>) {
    match v {
        Some(v) => s(o, k, v),
        None => null(o, k),
    }
}

pub(super) fn null(o: &mut Vec<u8>, k: &str) {
    key(o, k);
    o.extend_from_slice(b"null");
}

/// `"k":<raw JSON>`.
pub(super) fn raw(o: &mut Vec<u8>, k: &str, v: &str) {
    key(o, k);
    o.extend_from_slice(v.as_bytes());
}

pub(super) fn int(o: &mut Vec<u8>, k: &str, v: i64) {
    key(o, k);
    o.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

pub(super) fn boolean(o: &mut Vec<u8>, k: &str, v: bool) {
    raw(o, k, if v { "true" } else { "false" });
}

/// `"k":"<n random hex digits>"`.
pub(super) fn hex(o: &mut Vec<u8>, rng: &mut Rng, k: &str, n: usize) {
    key(o, k);
    o.push(b'"');
    push_hex(o, rng, n);
    o.push(b'"');
}

/// `"k":"<guid>"`.
pub(super) fn guid(o: &mut Vec<u8>, rng: &mut Rng, k: &str) {
    key(o, k);
    o.push(b'"');
    push_guid(o, rng);
    o.push(b'"');
}

/// `"k":"<timestamp>Z"` with `digits` fractional digits.
pub(super) fn ts(o: &mut Vec<u8>, k: &str, t: i64, digits: usize) {
    key(o, k);
    o.push(b'"');
    write_ts(o, t, digits);
    o.extend_from_slice(b"Z\"");
}

/// Writes `YYYY-MM-DDTHH:MM:SS[.fffffff]` (no zone) for `t` in 100 ns ticks since the epoch,
/// with `digits` (0-7) fractional digits.
pub(super) fn write_ts(o: &mut Vec<u8>, t: i64, digits: usize) {
    let secs = t.div_euclid(TICKS_PER_SEC);
    let frac = t.rem_euclid(TICKS_PER_SEC) as u32;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u32;
    let mut b = *b"0000-00-00T00:00:00.0000000";
    let put = |b: &mut [u8; 27], at: usize, v: u32, w: usize| {
        let mut v = v;
        for i in (0..w).rev() {
            b[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut b, 0, y as u32, 4);
    put(&mut b, 5, m, 2);
    put(&mut b, 8, d, 2);
    put(&mut b, 11, sod / 3600, 2);
    put(&mut b, 14, sod / 60 % 60, 2);
    put(&mut b, 17, sod % 60, 2);
    put(&mut b, 20, frac, 7);
    let len = if digits == 0 { 19 } else { 20 + digits.min(7) };
    o.extend_from_slice(&b[..len]);
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Expands a template (`{u}` user, `{f}` file, `{n}` number) into `o`, unescaped.
pub(super) fn expand(o: &mut Vec<u8>, tmpl: &str, user: &str, file: &str, n: u64) {
    let b = tmpl.as_bytes();
    let mut i = 0;
    let mut run = 0;
    while i < b.len() {
        if b[i] == b'{' && i + 2 < b.len() && b[i + 2] == b'}' {
            let sub: Option<&[u8]> = match b[i + 1] {
                b'u' => Some(user.as_bytes()),
                b'f' => Some(file.as_bytes()),
                b'n' => None,
                _ => {
                    i += 1;
                    continue;
                }
            };
            o.extend_from_slice(&b[run..i]);
            match sub {
                Some(s) => o.extend_from_slice(s),
                None => o.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
            }
            i += 3;
            run = i;
        } else {
            i += 1;
        }
    }
    o.extend_from_slice(&b[run..]);
}
