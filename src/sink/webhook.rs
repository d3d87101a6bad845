//! The webhook sink: events POSTed to an HTTP endpoint as NDJSON, a JSON array or Splunk HEC
//! envelopes, optionally gzip-compressed and HMAC-signed.
//!
//! A batch becomes one or more requests whose bodies, exactly as sent (after formatting and
//! compression), are at most `RELAY_BATCH_MAX_BYTES` — the cap other shippers measure before
//! serialization and then trip over (platform facts §6). An event that alone exceeds the cap is
//! sent alone, with a warning: it is never dropped. Up to `RELAY_WEBHOOK_CONCURRENCY` requests
//! are in flight, and [`Sink::send`] returns only when all of them are acknowledged, so the
//! caller's checkpoint never runs ahead of the receiver. Requests of one batch may arrive out of
//! order when the concurrency is above 1; each request's events are in batch order, and the two
//! halves of a 413 split are sent one after the other.
//!
//! Every request carries `X-Relay-Batch-Id` (a hash of its event ids, the same on every retry)
//! and, with `RELAY_WEBHOOK_SECRET`, `X-Relay-Signature: t=<unix seconds>,v1=<hex
//! HMAC-SHA256("<t>." + body as sent)>`.
//!
//! Batching, concurrency, retries, `Retry-After` and 413 splits are the shared HTTP-batch
//! core's ([`super::http`]); this file holds the body formats and the headers.

use super::http::{target_of, Destination, HttpOptions, HttpSink};
use super::retry::{Attempt, RetryPolicy};
use crate::config::{ConfigError, Settings};
use crate::event::Batch;
use async_trait::async_trait;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::fmt;
use std::io::Write;
use std::ops::Range;
use std::time::{Duration, SystemTime};
use url::Url;

pub use super::http::parse_url;

/// Header carrying the request's deterministic id.
pub const BATCH_ID_HEADER: &str = "x-relay-batch-id";
/// Header carrying the HMAC signature.
pub const SIGNATURE_HEADER: &str = "x-relay-signature";

/// Body format of webhook requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// One event per line (`application/x-ndjson`).
    Ndjson,
    /// A JSON array of events (`application/json`).
    Json,
    /// Splunk HTTP Event Collector: one `{"time":…,"sourcetype":<table>,"event":…}` per line.
    SplunkHec,
}

impl WebhookFormat {
    /// Parses `ndjson`, `json`, `splunk-hec`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ndjson" | "jsonl" => Some(Self::Ndjson),
            "json" => Some(Self::Json),
            "splunk-hec" | "splunk" | "hec" => Some(Self::SplunkHec),
            _ => None,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Ndjson => "application/x-ndjson",
            Self::Json | Self::SplunkHec => "application/json",
        }
    }
}

/// Settings of the webhook sink.
#[derive(Clone)]
pub struct WebhookConfig {
    /// Where to POST (https, or http on a loopback host).
    pub url: Url,
    /// Body format.
    pub format: WebhookFormat,
    /// Extra headers (values are secrets: never logged).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Gzip request bodies.
    pub gzip: bool,
    /// HMAC-SHA256 key for `X-Relay-Signature`.
    pub secret: Option<Vec<u8>>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Requests in flight.
    pub concurrency: usize,
    /// Byte cap of a request body as sent.
    pub max_bytes: usize,
    /// Events per request.
    pub max_events: usize,
    /// Retry policy.
    pub retry: RetryPolicy,
}

impl fmt::Debug for WebhookConfig {
    // Hand-written: the URL's path and query, header values and the secret can hold tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("target", &target_of(&self.url))
            .field("format", &self.format)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("gzip", &self.gzip)
            .field("signed", &self.secret.is_some())
            .field("timeout", &self.timeout)
            .field("concurrency", &self.concurrency)
            .field("max_bytes", &self.max_bytes)
            .field("max_events", &self.max_events)
            .field("retry", &self.retry)
            .finish()
    }
}

impl WebhookConfig {
    /// A configuration with defaults for everything but the URL (tests, benchmarks).
    pub fn new(url: Url) -> Self {
        WebhookConfig {
            url,
            format: WebhookFormat::Ndjson,
            headers: Vec::new(),
            gzip: false,
            secret: None,
            timeout: Duration::from_secs(30),
            concurrency: 4,
            max_bytes: 1_000_000,
            max_events: 500,
            retry: RetryPolicy::default(),
        }
    }

    /// Reads the `RELAY_WEBHOOK_*` settings.
    pub fn from_settings(
        s: &Settings<'_>,
        max_events: usize,
        max_bytes: usize,
        retry: RetryPolicy,
    ) -> Result<Self, ConfigError> {
        const URL: &str = "RELAY_WEBHOOK_URL";
        let url = parse_url(&s.required(URL, "RELAY_SINK=webhook")?)
            .map_err(|m| ConfigError::new(URL, m))?;
        let format = s.required("RELAY_WEBHOOK_FORMAT", "RELAY_SINK=webhook")?;
        let format = WebhookFormat::parse(&format).ok_or_else(|| {
            ConfigError::new(
                "RELAY_WEBHOOK_FORMAT",
                format!(
                    "must be ndjson, json or splunk-hec, not `{}`",
                    format.trim()
                ),
            )
        })?;
        let headers = match s.raw("RELAY_WEBHOOK_HEADERS") {
            Some(h) => {
                parse_headers(&h).map_err(|m| ConfigError::new("RELAY_WEBHOOK_HEADERS", m))?
            }
            None => Vec::new(),
        };
        Ok(WebhookConfig {
            url,
            format,
            headers,
            gzip: s.bool("RELAY_WEBHOOK_GZIP")?,
            secret: s
                .raw("RELAY_WEBHOOK_SECRET")
                .map(|v| v.trim().as_bytes().to_vec()),
            timeout: s.duration("RELAY_WEBHOOK_TIMEOUT")?,
            concurrency: s.count("RELAY_WEBHOOK_CONCURRENCY", 1)?,
            max_bytes,
            max_events,
            retry,
        })
    }
}

/// Parses `Name: value` pairs separated by newlines, or by `;` when what follows the `;`
/// starts a new `Name:` (so `Content-Type: text/plain; charset=utf-8` stays one header).
/// Errors name the header, never its value.
pub fn parse_headers(s: &str) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut out = Vec::new();
    for line in s.lines() {
        let mut pieces: Vec<&str> = Vec::new();
        let mut start = 0;
        for (i, _) in line.match_indices(';') {
            if starts_header(&line[i + 1..]) {
                pieces.push(&line[start..i]);
                start = i + 1;
            }
        }
        pieces.push(&line[start..]);
        for p in pieces.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = p
                .split_once(':')
                .ok_or_else(|| "must hold `Name: value` pairs (one has no `:`)".to_string())?;
            let name = name.trim();
            let hn = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("has an invalid header name `{name}`"))?;
            if matches!(
                hn.as_str(),
                "content-length"
                    | "content-encoding"
                    | "transfer-encoding"
                    | "host"
                    | "connection"
                    | BATCH_ID_HEADER
                    | SIGNATURE_HEADER
            ) {
                return Err(format!("sets `{name}`, which the relay sets itself"));
            }
            let mut hv = HeaderValue::from_str(value.trim())
                .map_err(|_| format!("has an invalid value for header `{name}`"))?;
            hv.set_sensitive(true);
            out.push((hn, hv));
        }
    }
    Ok(out)
}

fn starts_header(rest: &str) -> bool {
    let rest = rest.trim_start();
    match rest.find(':') {
        Some(0) | None => false,
        Some(i) => rest[..i]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
    }
}

/// The deterministic id of a request: 128 bits of BLAKE3 over its event ids, as hex.
pub fn batch_id(batch: &Batch, events: Range<usize>) -> String {
    batch_id_of(batch, events)
}

fn batch_id_of(batch: &Batch, events: impl IntoIterator<Item = usize>) -> String {
    let mut h = blake3::Hasher::new_derive_key("mde-relay 2026 batch id v1");
    for i in events {
        h.update(&batch.items()[i].id.0);
    }
    hex::encode(&h.finalize().as_bytes()[..16])
}

/// The `X-Relay-Signature` value for `body` sent at Unix time `t`.
pub fn signature(key: &[u8], t: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    let mut ts = itoa::Buffer::new();
    mac.update(ts.format(t).as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// What is particular to a webhook: the body format and the batch id and signature headers.
pub struct Webhook {
    url: Url,
    target: String,
    format: WebhookFormat,
    secret: Option<Vec<u8>>,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("target", &self.target)
            .field("format", &self.format)
            .field("signed", &self.secret.is_some())
            .finish()
    }
}

/// Posts batches to a webhook.
pub type WebhookSink = HttpSink<Webhook>;

impl HttpSink<Webhook> {
    /// Builds the sink (and its HTTP client).
    pub fn new(c: WebhookConfig) -> Result<Self, ConfigError> {
        let dest = Webhook {
            target: target_of(&c.url),
            url: c.url,
            format: c.format,
            secret: c.secret,
        };
        let mut sink = HttpSink::with(
            dest,
            HttpOptions {
                timeout: c.timeout,
                concurrency: c.concurrency,
                max_bytes: c.max_bytes,
                max_events: c.max_events,
                gzip: c.gzip,
                retry: c.retry,
                max_raw_bytes: usize::MAX,
            },
            "RELAY_WEBHOOK_URL",
        )?;
        for (n, v) in c.headers {
            sink.base_headers_mut().insert(n, v);
        }
        Ok(sink)
    }
}

#[async_trait]
impl Destination for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn target(&self) -> &str {
        &self.target
    }

    fn url_setting(&self) -> &'static str {
        "RELAY_WEBHOOK_URL"
    }

    fn content_type(&self) -> &'static str {
        self.format.content_type()
    }

    fn is_plain_ndjson(&self) -> bool {
        self.format == WebhookFormat::Ndjson
    }

    fn open(&self, out: &mut Vec<u8>) {
        if self.format == WebhookFormat::Json {
            out.push(b'[');
        }
    }

    fn close(&self, out: &mut Vec<u8>) {
        if self.format == WebhookFormat::Json {
            out.push(b']');
        }
    }

    fn close_len(&self) -> usize {
        usize::from(self.format == WebhookFormat::Json)
    }

    fn append(&self, batch: &Batch, i: usize, first: bool, out: &mut Vec<u8>) {
        let ev = batch.event(i);
        match self.format {
            WebhookFormat::Ndjson => {
                out.extend_from_slice(ev);
                out.push(b'\n');
            }
            WebhookFormat::Json => {
                if !first {
                    out.push(b',');
                }
                out.extend_from_slice(ev);
            }
            WebhookFormat::SplunkHec => {
                let it = &batch.items()[i];
                out.push(b'{');
                if let Some(t) = it.time.filter(|t| t.is_finite()) {
                    // Shortest round-trip form: 1700000000.123, never an exponent at this size.
                    let _ = write!(out, "\"time\":{t},");
                }
                out.extend_from_slice(b"\"sourcetype\":");
                // Table names are plain identifiers, but an unknown one is escaped properly.
                let _ = serde_json::to_writer(&mut *out, it.table.as_ref());
                out.extend_from_slice(b",\"event\":");
                out.extend_from_slice(ev);
                out.extend_from_slice(b"}\n");
            }
        }
    }

    async fn prepare(
        &self,
        batch: &Batch,
        events: &[usize],
        body: &Bytes,
        headers: &mut HeaderMap,
    ) -> Result<Url, Attempt<()>> {
        let id = HeaderValue::from_str(&batch_id_of(batch, events.iter().copied()))
            .expect("hex is a valid header value");
        headers.insert(HeaderName::from_static(BATCH_ID_HEADER), id);
        if let Some(key) = &self.secret {
            let t = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let sig = signature(key, t, body);
            headers.insert(
                HeaderName::from_static(SIGNATURE_HEADER),
                HeaderValue::from_str(&sig).expect("ASCII"),
            );
        }
        Ok(self.url.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventId;

    fn sink(format: WebhookFormat, gzip: bool, max_bytes: usize) -> WebhookSink {
        let mut c = WebhookConfig::new(Url::parse("http://127.0.0.1:9/").unwrap());
        c.format = format;
        c.gzip = gzip;
        c.max_bytes = max_bytes;
        WebhookSink::new(c).unwrap()
    }

    fn batch(n: usize, size: usize) -> Batch {
        let mut b = Batch::new();
        for i in 0..n {
            let mut id = [b'0'; 32];
            id[..8].copy_from_slice(format!("{i:08}").as_bytes());
            let pad = "x".repeat(size.saturating_sub(20));
            let json = format!(r#"{{"n":{i},"p":"{pad}"}}"#);
            b.push_json(
                EventId(id),
                "DeviceEvents".into(),
                Some(1_700_000_000.5 + i as f64),
                json.as_bytes(),
            );
        }
        b
    }

    struct Planned {
        events: Range<usize>,
        body: Vec<u8>,
    }

    fn plan_all(s: &WebhookSink, b: &Batch) -> Vec<Planned> {
        s.plan(b)
            .into_iter()
            .map(|(events, len)| Planned {
                events,
                body: vec![0; len],
            })
            .collect()
    }

    #[test]
    fn urls() {
        assert!(parse_url("https://example.com/x").is_ok());
        assert!(parse_url("http://127.0.0.1:8080/x").is_ok());
        assert!(parse_url("http://localhost/x").is_ok());
        assert!(parse_url("http://[::1]:9/x").is_ok());
        assert_eq!(
            parse_url("http://example.com/x").unwrap_err(),
            "must be https (http is allowed only for loopback)"
        );
        assert!(parse_url("ftp://127.0.0.1/").is_err());
        assert!(parse_url("not a url").is_err());
    }

    #[test]
    fn headers() {
        let h = parse_headers(
            "Authorization: Splunk abc;X-Tenant: t1\nContent-Type: text/plain; charset=utf-8",
        )
        .unwrap();
        let names: Vec<_> = h.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["authorization", "x-tenant", "content-type"]);
        assert_eq!(h[2].1, "text/plain; charset=utf-8");
        assert!(h[0].1.is_sensitive());
        let e = parse_headers("Authorization").unwrap_err();
        assert!(!e.contains("Authorization: "));
        assert!(parse_headers("X-Relay-Signature: forged").is_err());
        let e = parse_headers("Bad Name: secret-value").unwrap_err();
        assert!(!e.contains("secret-value"), "{e}");
    }

    #[test]
    fn debug_hides_secrets() {
        let mut c = WebhookConfig::new(
            Url::parse("https://h.example/services/T0/B0/tok?code=hunter2").unwrap(),
        );
        c.headers = parse_headers("Authorization: Splunk hunter3").unwrap();
        c.secret = Some(b"hunter4".to_vec());
        let d = format!("{c:?}");
        for s in ["hunter2", "hunter3", "hunter4", "/services"] {
            assert!(!d.contains(s), "{d}");
        }
        assert!(d.contains("https://h.example"));
    }

    #[test]
    fn formats() {
        let b = batch(2, 30);
        let s = sink(WebhookFormat::Json, false, 1 << 20);
        let body = s.format(&b, &[0, 1]);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[1]["n"], 1);

        let s = sink(WebhookFormat::SplunkHec, false, 1 << 20);
        let body = s.format(&b, &[0, 1]);
        let lines: Vec<serde_json::Value> = body
            .split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["time"], 1_700_000_001.5);
        assert_eq!(lines[1]["sourcetype"], "DeviceEvents");
        assert_eq!(lines[1]["event"]["n"], 1);

        let s = sink(WebhookFormat::Ndjson, false, 1 << 20);
        assert_eq!(s.format(&b, &[0, 1]), b.ndjson());
    }

    #[test]
    fn requests_hold_the_cap_in_every_format() {
        let b = batch(300, 700);
        for format in [
            WebhookFormat::Ndjson,
            WebhookFormat::Json,
            WebhookFormat::SplunkHec,
        ] {
            for gzip in [false, true] {
                let cap = 20_000;
                let s = sink(format, gzip, cap);
                let reqs = plan_all(&s, &b);
                let mut next = 0;
                for r in &reqs {
                    assert!(
                        r.body.len() <= cap,
                        "{format:?} gzip={gzip}: {} > {cap}",
                        r.body.len()
                    );
                    assert_eq!(
                        r.events.start, next,
                        "{format:?} gzip={gzip}: gap or overlap"
                    );
                    next = r.events.end;
                }
                assert_eq!(next, 300);
                if !gzip {
                    // Greedy: each request but the last is nearly full.
                    assert!(
                        reqs.len() <= 300 * 760 / (cap - 800) + 1,
                        "{format:?}: {} requests",
                        reqs.len()
                    );
                }
            }
        }
    }

    #[test]
    fn max_events_per_request() {
        let b = batch(25, 50);
        let mut c = WebhookConfig::new(Url::parse("http://127.0.0.1:9/").unwrap());
        c.max_events = 10;
        let s = WebhookSink::new(c).unwrap();
        let sizes: Vec<_> = plan_all(&s, &b).iter().map(|r| r.events.len()).collect();
        assert_eq!(sizes, [10, 10, 5]);
    }

    #[test]
    fn an_oversize_event_gets_its_own_request() {
        let mut b = batch(3, 100);
        b.push_json(
            EventId([b'f'; 32]),
            "T".into(),
            None,
            format!(r#"{{"big":"{}"}}"#, "y".repeat(5000)).as_bytes(),
        );
        let more = batch(2, 100);
        for i in 0..2 {
            b.push_json(more.items()[i].id, "T".into(), None, more.event(i));
        }
        let s = sink(WebhookFormat::Ndjson, false, 1000);
        let reqs = plan_all(&s, &b);
        let ranges: Vec<_> = reqs.iter().map(|r| r.events.clone()).collect();
        assert_eq!(ranges, [0..3, 3..4, 4..6]);
        assert!(reqs[1].body.len() > 1000);
    }

    #[test]
    fn ids_and_signatures_are_deterministic() {
        let b = batch(4, 30);
        assert_eq!(batch_id(&b, 0..2), batch_id(&b.slice(0..4), 0..2));
        assert_ne!(batch_id(&b, 0..2), batch_id(&b, 1..3));
        assert_eq!(batch_id(&b, 0..2).len(), 32);
        // RFC 4231-style check against an independent computation of the same MAC input.
        let sig = signature(b"key", 1700000000, b"body");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"1700000000.body");
        assert_eq!(
            sig,
            format!(
                "t=1700000000,v1={}",
                hex::encode(mac.finalize().into_bytes())
            )
        );
    }
}
