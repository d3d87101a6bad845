//! Writing an OCSF [`Value`] straight into the output buffer, escaping strings exactly as
//! `serde_json` does (so the output is byte for byte what `serde_json::to_writer` gave).

use super::value::{Obj, Value};

/// How `serde_json` escapes each byte of a string: 0 not at all, `u` as `\u00XX`, else the
/// letter after the backslash.
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// The bytes of `w` that are a control character, `"` or `\`, as their high bits. The lowest
/// flagged byte is exact; bytes above a flagged one may be flagged too (a borrow), so a
/// flagged byte is checked against [`ESCAPE`].
#[inline]
pub(crate) fn escape_mask(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    // Bytes below 0x20 (a byte with its high bit set is not below anything here).
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    control | zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')))
}

#[inline]
fn word(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
}

/// Writes `s` as a JSON string, escaped exactly as `serde_json` does.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let n = b.len();
    out.reserve(n + 2);
    out.push(b'"');
    // `start`: first byte not copied yet; `i`: first byte not checked yet.
    let mut start = 0;
    let mut i = 0;
    while i < n {
        let mask = if i + 8 <= n {
            escape_mask(word(b, i))
        } else if n >= 8 {
            // The last 8 bytes, those before `i` shifted out.
            escape_mask(word(b, n - 8)) >> (8 * (i + 8 - n))
        } else {
            // A short string: byte by byte.
            for (j, &c) in b.iter().enumerate().skip(i) {
                if ESCAPE[usize::from(c)] != 0 {
                    out.extend_from_slice(&b[start..j]);
                    escape(out, c);
                    start = j + 1;
                }
            }
            break;
        };
        if mask == 0 {
            i += 8;
            continue;
        }
        let at = i + (mask.trailing_zeros() / 8) as usize;
        let c = b[at];
        if ESCAPE[usize::from(c)] != 0 {
            out.extend_from_slice(&b[start..at]);
            escape(out, c);
            start = at + 1;
        }
        i = at + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// Writes the escape of byte `c` (one [`ESCAPE`] marks).
#[inline]
fn escape(out: &mut Vec<u8>, c: u8) {
    let esc = ESCAPE[usize::from(c)];
    out.push(b'\\');
    out.push(esc);
    if esc == b'u' {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.extend_from_slice(b"00");
        out.push(HEX[usize::from(c >> 4)]);
        out.push(HEX[usize::from(c & 0xf)]);
    }
}

/// Writes a value as compact JSON, as `serde_json::to_writer` would.
pub(crate) fn write_value(out: &mut Vec<u8>, v: &Value<'_>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
            } else if let Some(i) = n.as_i64() {
                out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
            } else {
                // A float: `Number`'s text is what the serializer writes (ryu).
                use std::io::Write;
                let _ = write!(out, "{n}");
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(a) => {
            out.push(b'[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, v);
            }
            out.push(b']');
        }
        Value::Object(o) => write_obj(out, o),
    }
}

/// Writes an object as compact JSON, members in key order.
pub(crate) fn write_obj(out: &mut Vec<u8>, o: &Obj<'_>) {
    out.push(b'{');
    for (i, (k, v)) in o.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_value(out, v);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::ocsf::value::parse_owned;

    /// The writer and `serde_json` agree byte for byte, escapes and numbers included.
    #[test]
    fn writes_what_serde_json_writes() {
        let mut strings: Vec<String> = vec![
            String::new(),
            "plain".into(),
            "C:\\Windows\\System32\\cmd.exe /c \"echo\"".into(),
            "ünïcödé 李伟 \u{1F600} \u{7f}".into(),
        ];
        for c in 0u8..0x20 {
            strings.push(format!(
                "{}ab{}cdefghijklmnop{}",
                c as char, c as char, c as char
            ));
        }
        // Every length up to 40 with a character to escape at every position (and a second).
        for len in 1..40 {
            for at in 0..len {
                for c in ['"', '\\', '\n', '\u{1}', '\u{1f}', 'é', '\u{7f}'] {
                    let mut t: Vec<char> = "abcdefghijklmnopqrstuvwxyz0123456789ABCD"
                        .chars()
                        .take(len)
                        .collect();
                    t[at] = c;
                    strings.push(t.iter().collect());
                    t[len - 1 - (at / 2)] = '"';
                    strings.push(t.iter().collect());
                }
            }
        }
        for s in &strings {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
        let text = r#"{"b":[1,-2,3.5,1e300,-0,18446744073709551615,18446744073709551616,true,null],
            "a":{"z":"x\"y","y":{}},"c":-9223372036854775808,"d":0.1}"#;
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let mine = parse_owned(text).unwrap();
        let mut out = Vec::new();
        write_value(&mut out, &mine);
        assert_eq!(out, serde_json::to_vec(&v).unwrap());
        assert_eq!(mine.to_json(), v);
    }
}
