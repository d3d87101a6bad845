//! Logging set-up shared by every command, with one guarantee: no SAS signature reaches a log.
//!
//! The official SDK and its HTTP transport quote request URLs in their error messages, and with
//! an account-key or SAS connection those URLs carry `sig=…`. Rather than trusting every log
//! site to scrub its error, the writer behind the tracing subscriber ([`Redacting`]) and the
//! CLI's final error line pass through [`redact`].

use std::borrow::Cow;
use std::io::{self, Write};

/// Replaces the value of every `sig=` query parameter in `s` with `REDACTED`.
pub fn redact(s: &str) -> Cow<'_, str> {
    if !s.contains("sig=") {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find("sig=") {
        out.push_str(&rest[..p + 4]);
        out.push_str("REDACTED");
        let tail = &rest[p + 4..];
        let end = tail
            .find(|c: char| matches!(c, '&' | '"' | '\'' | ')' | '\\') || c.is_whitespace())
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// A writer that redacts each buffer before passing it on. tracing's fmt layer writes one whole
/// formatted event per `write`, so a signature is never split across calls.
pub struct Redacting<W>(pub W);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(s) if s.contains("sig=") => {
                self.0.write_all(redact(s).as_bytes())?;
                Ok(buf.len())
            }
            _ => self.0.write_all(buf).map(|_| buf.len()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Writes `line` to stderr as one line (line breaks folded into spaces), with SAS signatures
/// redacted. For failures that must reach an operator even where stdout is logged at a lower
/// level: the Functions host logs stderr lines containing "error" at Error level.
pub fn stderr_error(line: &str) {
    let one: String = redact(line)
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{one}");
    let _ = err.flush();
}

/// JSON logs on stdout (the Functions host collects them), filtered by `RUST_LOG` (default
/// `info`).
pub fn init_json_stdout() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(|| Redacting(io::stdout()))
        .try_init();
}

/// Plain logs on stderr (stdout may carry events), filtered by `RUST_LOG` (default `warn`).
pub fn init_stderr() {
    let _ = tracing_subscriber::fmt()
        .with_writer(|| Redacting(io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_removed() {
        assert_eq!(
            redact("GET http://h/q?sv=1&sig=abc%2Bdef&se=2 failed; sig=zzz"),
            "GET http://h/q?sv=1&sig=REDACTED&se=2 failed; sig=REDACTED"
        );
        assert_eq!(
            redact(r#"{"url":"https://a/b?sig=x\"y"}"#),
            r#"{"url":"https://a/b?sig=REDACTED\"y"}"#
        );
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
        let mut out = Redacting(Vec::new());
        out.write_all(b"error: url (http://x/?sig=secret)\n")
            .unwrap();
        assert_eq!(out.0, b"error: url (http://x/?sig=REDACTED)\n");
    }
}
