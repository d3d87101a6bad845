//! What the network sinks keep of a destination's answer. The destination is untrusted: it may
//! answer with an endless body, or echo the request (headers included) into an error page.
//!
//! * [`read_bounded`] reads at most a given number of body bytes (the rest is dropped with the
//!   connection, which then is not reused).
//! * [`scrub`] is applied to every message built from an answer before it reaches an error, a
//!   dead letter or a log line: it removes every credential the request carried (each header
//!   value, and the token and decoded parts of an `Authorization` value), anything else that
//!   looks like a credential (`Authorization:`/`Bearer`/`Basic`/`ApiKey`/`Splunk` values,
//!   `key=`, `token=`, `password=`, `secret=`, `sig=` and similar assignments), control
//!   characters, and keeps a short prefix ([`MAX_EXCERPT`] characters; the sinks keep at most
//!   160 bytes of the body itself in it).

use base64::Engine;
use bytes::{Bytes, BytesMut};

/// Characters kept of an error message built from an answer (the relay's own context, such as
/// the rule and stream, included).
pub const MAX_EXCERPT: usize = 400;

/// Bytes of an answer's body a sink puts in an error message.
pub const MAX_BODY_EXCERPT: usize = 160;

/// Body bytes read of an error answer (non-2xx).
pub const MAX_ERROR_BODY: usize = 64 << 10;

/// Body bytes read of a successful answer (per-item results of a large bulk request fit).
pub const MAX_OK_BODY: usize = 16 << 20;

/// What replaces a removed credential.
const REDACTED: &str = "[redacted]";

/// Reads at most `max` bytes of `resp`'s body; a failure mid-body keeps what was read.
pub async fn read_bounded(mut resp: reqwest::Response, max: usize) -> Bytes {
    let mut out = BytesMut::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = max - out.len();
        if chunk.len() >= room {
            out.extend_from_slice(&chunk[..room]);
            break;
        }
        out.extend_from_slice(&chunk);
    }
    out.freeze()
}

/// The credentials a request carried, for [`scrub`]: every header value of at least 6 bytes,
/// and for `Scheme token` values the token and, for `Basic`, the decoded `user:password` and
/// password.
pub fn secrets_of(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    let mut out = Vec::new();
    for v in headers.values() {
        let Ok(v) = v.to_str() else { continue };
        let v = v.trim();
        out.push(v.to_string());
        if let Some((scheme, token)) = v.split_once(' ') {
            let token = token.trim();
            out.push(token.to_string());
            if scheme.eq_ignore_ascii_case("basic") {
                if let Ok(plain) = base64::engine::general_purpose::STANDARD.decode(token) {
                    let plain = String::from_utf8_lossy(&plain).to_string();
                    if let Some((_, pw)) = plain.split_once(':') {
                        out.push(pw.to_string());
                    }
                    out.push(plain);
                }
            }
        }
    }
    out.retain(|s| s.len() >= 6);
    // Longest first, so a value is removed whole before a part of it is looked for.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// `text` (built from an answer) without `secrets`, without anything that looks like a
/// credential, without control characters, cut to [`MAX_EXCERPT`] characters.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut s = text.to_string();
    for secret in secrets {
        if s.contains(secret.as_str()) {
            s = s.replace(secret.as_str(), REDACTED);
        }
    }
    let s = redact_patterns(&s);
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_EXCERPT)
        .collect();
    if s.chars().count() > MAX_EXCERPT {
        out.push('…');
    }
    out.trim().to_string()
}

/// Words after which the next word is a credential.
const SCHEMES: &[&str] = &[
    "bearer",
    "basic",
    "apikey",
    "splunk",
    "token",
    "sharedaccesssignature",
];

/// Names whose value (after `=`, `:` or `": "`) is a credential.
const NAMES: &[&str] = &[
    "authorization",
    "api-key",
    "api_key",
    "apikey",
    "x-api-key",
    "key",
    "token",
    "access_token",
    "password",
    "passwd",
    "secret",
    "sig",
    "signature",
    "x-relay-signature",
    "cookie",
    "set-cookie",
    "accountkey",
];

fn redact_patterns(s: &str) -> String {
    // Tokens keep their separators, so the text stays readable around what was removed.
    let mut out = String::with_capacity(s.len());
    let mut redact_next = false;
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String, redact_next: &mut bool| {
        if word.is_empty() {
            return;
        }
        let lower = word.to_ascii_lowercase();
        let bare = lower.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_');
        if *redact_next {
            out.push_str(REDACTED);
            *redact_next = false;
        } else {
            out.push_str(word);
        }
        if SCHEMES.contains(&bare) {
            *redact_next = true;
        }
        word.clear();
    };
    // The last word was a credential name, with only quotes or spaces since (`"password": …`).
    let mut prev_named = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if matches!(c, '=' | ':') {
            let lower = word.to_ascii_lowercase();
            let bare =
                lower.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_');
            let named = NAMES.contains(&bare) || (word.is_empty() && prev_named);
            flush(&mut word, &mut out, &mut redact_next);
            out.push(c);
            prev_named = false;
            if named {
                // Skip spaces and an opening quote, then redact the value.
                while let Some(&n) = chars.peek() {
                    if n == ' ' || n == '"' || n == '\'' {
                        out.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                redact_next = true;
            }
        } else if c.is_whitespace()
            || matches!(c, ',' | ';' | '&' | '"' | '\'' | '<' | '>' | '{' | '}')
        {
            if !word.is_empty() {
                let lower = word.to_ascii_lowercase();
                let bare = lower
                    .trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_');
                prev_named = NAMES.contains(&bare);
            } else if !(c == ' ' || c == '"' || c == '\'') {
                prev_named = false;
            }
            flush(&mut word, &mut out, &mut redact_next);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out, &mut redact_next);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_credentials_are_removed() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "authorization",
            "Splunk 0d6c1a7e-5c1f-4f0b".parse().unwrap(),
        );
        h.insert("x-custom", "hunter2secret".parse().unwrap());
        let secrets = secrets_of(&h);
        let echoed = "401 unauthorized. You sent: Authorization: Splunk 0d6c1a7e-5c1f-4f0b\r\nX-Custom: hunter2secret\r\n";
        let s = scrub(echoed, &secrets);
        assert!(!s.contains("0d6c1a7e"), "{s}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("401 unauthorized"), "{s}");
    }

    #[test]
    fn credential_looking_content_is_removed_without_knowing_it() {
        for (text, secret) in [
            ("bad auth: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", "eyJhbGci"),
            ("{\"password\": \"correct horse\"}", "correct"),
            ("url?sv=1&sig=abcDEF123%3D&se=2", "abcDEF123"),
            ("ApiKey VnVYZlpZc0JBQ2dfY2J0", "VnVYZlpZ"),
            ("Authorization: Bearer abc.def.ghi", "abc.def"),
            ("key=short1", "short1"),
            ("token: Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==", "Zm9vYmFy"),
        ] {
            let s = scrub(text, &[]);
            assert!(!s.contains(secret), "{text} -> {s}");
        }
        // Ordinary error text, ids included, stays readable.
        let s = scrub(
            "refused rule dcr-0123456789abcdef0123456789abcdef: 403",
            &[],
        );
        assert!(s.contains("dcr-0123456789abcdef0123456789abcdef"), "{s}");
        let s = scrub(
            "mapper_parsing_exception: failed to parse field [Timestamp] of type [date]",
            &[],
        );
        assert!(s.contains("failed to parse field [Timestamp]"), "{s}");
    }

    #[test]
    fn excerpts_are_short_and_printable() {
        let s = scrub(&format!("{}\u{0}\u{1b}[31m", "x ".repeat(1000)), &[]);
        assert!(s.chars().count() <= MAX_EXCERPT + 1);
        assert!(!s.chars().any(|c| c.is_control()));
    }
}
