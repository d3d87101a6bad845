//! A fast reader of a row's `properties` object into [`Value`]s that borrow from the row. It
//! handles what export rows hold (strings with the short escapes, integers, literals, nested
//! objects and arrays) and gives up (`None`) on anything else — a `\u` escape, a number that is
//! not a plain integer it can read exactly, a control character, deep nesting — so that the
//! caller parses the object with `serde_json` instead: the result is always what `serde_json`
//! gives.

use super::value::{Obj, Value};
use super::write::escape_mask;
use std::borrow::Cow;

/// Nesting deeper than this is left to `serde_json` (which has its own limit).
const MAX_DEPTH: usize = 64;

/// The members of the JSON object `text` in the order written (duplicates kept), each marked
/// unplaced; `None` when this reader does not handle the text.
#[allow(clippy::type_complexity)]
pub(crate) fn members(text: &str) -> Option<Vec<(Cow<'_, str>, Value<'_>, bool)>> {
    let mut r = Reader { text, pos: 0 };
    r.ws();
    r.eat(b'{')?;
    // Room for as many members as the last row had (rows of a file share their shape).
    let mut out = Vec::with_capacity(LAST_LEN.get());
    r.ws();
    if r.peek()? == b'}' {
        r.pos += 1;
    } else {
        loop {
            r.ws();
            let k = r.string()?;
            r.ws();
            r.eat(b':')?;
            r.ws();
            let v = r.value(1)?;
            out.push((k, v, true));
            r.ws();
            match r.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
    }
    r.ws();
    LAST_LEN.set(out.len().max(8));
    (r.pos == text.len()).then_some(out)
}

thread_local! {
    static LAST_LEN: std::cell::Cell<usize> = const { std::cell::Cell::new(64) };
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    #[inline]
    fn ws(&mut self) {
        let b = self.text.as_bytes();
        while self.pos < b.len() && matches!(b[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Option<Value<'a>> {
        Some(match self.peek()? {
            b'"' => Value::String(self.string()?),
            b'{' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.pos += 1;
                let mut members = Vec::new();
                self.ws();
                if self.peek()? == b'}' {
                    self.pos += 1;
                } else {
                    loop {
                        self.ws();
                        let k = self.string()?;
                        self.ws();
                        self.eat(b':')?;
                        self.ws();
                        members.push((k, self.value(depth + 1)?));
                        self.ws();
                        match self.next()? {
                            b',' => continue,
                            b'}' => break,
                            _ => return None,
                        }
                    }
                }
                Value::Object(Obj::from_members(members))
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.pos += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek()? == b']' {
                    self.pos += 1;
                } else {
                    loop {
                        self.ws();
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        match self.next()? {
                            b',' => continue,
                            b']' => break,
                            _ => return None,
                        }
                    }
                }
                Value::Array(items)
            }
            b't' => self.literal("true", Value::Bool(true))?,
            b'f' => self.literal("false", Value::Bool(false))?,
            b'n' => self.literal("null", Value::Null)?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return None,
        })
    }

    fn literal(&mut self, word: &str, v: Value<'a>) -> Option<Value<'a>> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Some(v)
        } else {
            None
        }
    }

    /// A plain integer (no leading zero, at most 18 digits, so it fits); anything else is
    /// left to `serde_json`.
    fn number(&mut self) -> Option<Value<'a>> {
        let b = self.text.as_bytes();
        let start = self.pos;
        let mut i = start;
        let negative = b[i] == b'-';
        if negative {
            i += 1;
        }
        let digits = i;
        let mut n: u64 = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            n = n * 10 + u64::from(b[i] - b'0');
            i += 1;
            if i - digits > 18 {
                return None;
            }
        }
        let len = i - digits;
        if len == 0
            || (b[digits] == b'0' && len > 1)
            || (i < b.len() && matches!(b[i], b'.' | b'e' | b'E' | b'+' | b'-'))
        {
            return None;
        }
        if negative && n == 0 {
            // `-0` is a float to serde_json.
            return None;
        }
        self.pos = i;
        Some(if negative {
            Value::Number((-(n as i64)).into())
        } else {
            Value::Number(n.into())
        })
    }

    /// A string, borrowed when it has no escapes.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let text = self.text;
        let b = text.as_bytes();
        let start = self.pos;
        let mut i = start;
        // Find the closing quote or the first backslash (a control character gives up).
        loop {
            let stop = if i + 8 <= b.len() {
                let m = escape_mask(u64::from_le_bytes(b[i..i + 8].try_into().ok()?));
                if m == 0 {
                    i += 8;
                    continue;
                }
                i + (m.trailing_zeros() / 8) as usize
            } else {
                match b[i..]
                    .iter()
                    .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                {
                    Some(p) => i + p,
                    None => return None,
                }
            };
            match b[stop] {
                b'"' => {
                    self.pos = stop + 1;
                    return Some(Cow::Borrowed(&text[start..stop]));
                }
                b'\\' => {
                    i = stop;
                    break;
                }
                c if c < 0x20 => return None,
                // Flagged above a real stop byte only (see `escape_mask`): go on after it.
                _ => i = stop + 1,
            }
        }
        // Escapes: decode into an owned string.
        let mut s = String::with_capacity(i - start + 16);
        s.push_str(&text[start..i]);
        let mut run = i;
        while i < b.len() {
            match b[i] {
                b'"' => {
                    s.push_str(&text[run..i]);
                    self.pos = i + 1;
                    return Some(Cow::Owned(s));
                }
                b'\\' => {
                    s.push_str(&text[run..i]);
                    let c = match *b.get(i + 1)? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        // `\u` (surrogates and all) is left to serde_json.
                        _ => return None,
                    };
                    s.push(c);
                    i += 2;
                    run = i;
                }
                c if c < 0x20 => return None,
                _ => i += 1,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_members(text: &str) -> Vec<(String, serde_json::Value)> {
        super::super::value::parse_members(text)
            .unwrap()
            .into_iter()
            .map(|(k, v, _)| (k.into_owned(), v.to_json()))
            .collect()
    }

    fn read(text: &str) -> Option<Vec<(String, serde_json::Value)>> {
        members(text).map(|m| {
            m.into_iter()
                .map(|(k, v, _)| (k.into_owned(), v.to_json()))
                .collect()
        })
    }

    /// Whatever it reads, it reads as `serde_json` does; what it does not handle it declines.
    #[test]
    fn reads_as_serde_json_does_or_declines() {
        let handled = [
            r#"{}"#,
            r#" { "a" : 1 , "b":-2, "c":"x", "d":null, "e":true, "f":false } "#,
            r#"{"p":"C:\\Windows\\cmd.exe \"q\" \/ \b\f\n\r\t","k\"ey":"v"}"#,
            r#"{"n":[1,[2,{"x":[]}],{}],"o":{"z":1,"a":2,"z":3}}"#,
            r#"{"big":123456789012345678,"neg":-123456789012345678,"z":0,"m":-1}"#,
            r#"{"dup":1,"dup":2}"#,
            r#"{"ünï":"cödé 李伟","long":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"bbbbbbbbbbbbbbb"}"#,
            r#"{"a":"1234567","b":"12345678","c":"123456789\\"}"#,
        ];
        for text in handled {
            assert_eq!(read(text), Some(serde_members(text)), "{text}");
        }
        let declined = [
            r#"{"u":"\u00e9"}"#,
            r#"{"f":1.5}"#,
            r#"{"e":1e5}"#,
            r#"{"h":18446744073709551615}"#,
            r#"{"h":99999999999999999999}"#,
            r#"{"m0":-0}"#,
        ];
        for text in declined {
            assert_eq!(read(text), None, "{text}");
        }
        // Not JSON: declined (the caller's serde_json parse then fails too).
        for text in [
            r#"{"a":}"#,
            r#"{"a":1"#,
            r#"{"a":tru}"#,
            r#"{"a":"x}"#,
            r#"{"a":01}"#,
        ] {
            assert!(members(text).is_none(), "{text}");
        }
    }
}
