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

use super::config::{ConfigError, Settings};
use super::retry::{parse_retry_after, Attempt, Retrier, RetryPolicy, SinkStats};
use super::{Batch, Sink, SinkError};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use std::fmt;
use std::io::Write;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};
use url::Url;

/// Header carrying the request's deterministic id.
pub const BATCH_ID_HEADER: &str = "x-relay-batch-id";
/// Header carrying the HMAC signature.
pub const SIGNATURE_HEADER: &str = "x-relay-signature";

/// Smallest request-size limit learned from 413 answers (keeps a misbehaving receiver from
/// shrinking requests to nothing).
const MIN_LEARNED_LIMIT: usize = 1024;

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

/// Checks a webhook URL: https, or http when the host is loopback. Errors never echo the URL
/// (it may hold a token).
pub fn parse_url(s: &str) -> Result<Url, String> {
    let u = Url::parse(s.trim()).map_err(|e| format!("is not a valid URL ({e})"))?;
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err("has no host".into()),
    };
    match u.scheme() {
        "https" => Ok(u),
        "http" if loopback => Ok(u),
        _ => Err("must be https (http is allowed only for loopback)".into()),
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

/// `scheme://host:port` of a URL: what logs may say about the destination.
fn target_of(u: &Url) -> String {
    match u.port() {
        Some(p) => format!("{}://{}:{p}", u.scheme(), u.host_str().unwrap_or("")),
        None => format!("{}://{}", u.scheme(), u.host_str().unwrap_or("")),
    }
}

/// The deterministic id of a request: 128 bits of BLAKE3 over its event ids, as hex.
pub fn batch_id(batch: &Batch, events: Range<usize>) -> String {
    let mut h = blake3::Hasher::new_derive_key("mde-relay 2026 batch id v1");
    for it in &batch.items()[events] {
        h.update(&it.id.0);
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

/// One request: a run of consecutive events and its body as sent.
struct Request {
    events: Range<usize>,
    body: Bytes,
}

/// What a request ended with, when not with an error.
enum Posted {
    Accepted,
    TooLarge,
}

/// Posts batches to a webhook.
pub struct WebhookSink {
    client: reqwest::Client,
    url: Url,
    target: String,
    format: WebhookFormat,
    headers: HeaderMap,
    gzip: bool,
    secret: Option<Vec<u8>>,
    concurrency: usize,
    inflight: tokio::sync::Semaphore,
    max_bytes: usize,
    max_events: usize,
    retrier: Retrier,
    /// Body size later requests are cut at after the receiver answered 413: half the size it
    /// refused (what the split sends), so later batches do not hit the same 413 again.
    learned_limit: AtomicUsize,
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSink")
            .field("target", &self.target)
            .field("format", &self.format)
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// Builds the sink (and its HTTP client).
    pub fn new(c: WebhookConfig) -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder()
            .timeout(c.timeout)
            .connect_timeout(c.timeout.min(Duration::from_secs(10)))
            // A redirect would resend the body somewhere else (or drop it as a GET): refuse.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(c.concurrency)
            .tcp_nodelay(true)
            .user_agent(concat!("mde-relay/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ConfigError::new(
                    "RELAY_WEBHOOK_URL",
                    format!("cannot build an HTTP client: {e}"),
                )
            })?;
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(c.format.content_type()),
        );
        if c.gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        for (n, v) in &c.headers {
            headers.insert(n.clone(), v.clone());
        }
        Ok(WebhookSink {
            client,
            target: target_of(&c.url),
            url: c.url,
            format: c.format,
            headers,
            gzip: c.gzip,
            secret: c.secret,
            concurrency: c.concurrency.max(1),
            inflight: tokio::sync::Semaphore::new(c.concurrency.max(1)),
            max_bytes: c.max_bytes.max(1),
            max_events: c.max_events.max(1),
            retrier: Retrier::new(c.retry),
            learned_limit: AtomicUsize::new(usize::MAX),
        })
    }

    /// The byte cap in force: the configured one, lowered by what 413 answers taught.
    fn cap(&self) -> usize {
        self.max_bytes
            .min(self.learned_limit.load(Ordering::Relaxed))
    }

    fn close_len(&self) -> usize {
        usize::from(self.format == WebhookFormat::Json)
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

    /// Appends event `i` of `batch` in the body format; `first` is true for a body's first.
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

    /// The uncompressed body of events `range`.
    fn format_range(&self, batch: &Batch, range: Range<usize>) -> Vec<u8> {
        let mut out = Vec::new();
        if self.format == WebhookFormat::Ndjson {
            // Events sit back to back in the batch: the body is one slice of it.
            let items = batch.items();
            let (a, b) = (
                items[range.start].range.start,
                items[range.end - 1].range.end + 1,
            );
            out.extend_from_slice(&batch.ndjson()[a..b]);
            return out;
        }
        let n = range.len();
        self.open(&mut out);
        for i in range.clone() {
            self.append(batch, i, i == range.start, &mut out);
        }
        self.close(&mut out);
        debug_assert!(n > 0);
        out
    }

    /// Formats as many events from `start` as fit `budget` uncompressed bytes (at least one,
    /// at most `max_events`). Returns the end index and the body.
    fn format_greedy(&self, batch: &Batch, start: usize, budget: usize) -> (usize, Vec<u8>) {
        let n = batch.len().min(start.saturating_add(self.max_events));
        if self.format == WebhookFormat::Ndjson {
            let items = batch.items();
            let base = items[start].range.start;
            let mut end = start + 1;
            while end < n && items[end].range.end + 1 - base <= budget {
                end += 1;
            }
            return (end, self.format_range(batch, start..end));
        }
        let mut out = Vec::with_capacity(budget.min(batch.bytes() + 64 * (n - start)) + 2);
        self.open(&mut out);
        let mut i = start;
        while i < n {
            let mark = out.len();
            self.append(batch, i, i == start, &mut out);
            if i > start && out.len() + self.close_len() > budget {
                out.truncate(mark);
                break;
            }
            i += 1;
        }
        self.close(&mut out);
        (i, out)
    }

    fn gzip_body(raw: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(raw.len() / 4 + 64),
            // Level 1: JSON still shrinks several-fold, at a fraction of the default's CPU.
            flate2::Compression::fast(),
        );
        enc.write_all(raw).expect("writing to a Vec cannot fail");
        enc.finish().expect("writing to a Vec cannot fail")
    }

    /// Cuts `batch` into requests, in order, each within the cap. The cut depends only on the
    /// batch and the cap in force, so a re-sent batch gets the same requests (and batch ids).
    fn plan(&self, batch: &Batch) -> Planner<'_> {
        Planner {
            sink: self,
            next: 0,
            batch_len: batch.len(),
            // Typical gzip ratio of JSON events at level 1; corrected after each request.
            gzip_ratio: 4.0,
        }
    }

    /// The request starting at event `start`.
    fn next_request(&self, batch: &Batch, start: usize, gzip_ratio: &mut f64) -> Request {
        let cap = self.cap();
        if !self.gzip {
            let (end, body) = self.format_greedy(batch, start, cap);
            return Request {
                events: start..end,
                body: Bytes::from(body),
            };
        }
        // The compressed size is known only after compressing: take an uncompressed budget
        // from the ratio seen so far (with a margin), compress, and if the result overflows,
        // shrink the budget by how much it overflowed and compress again.
        let mut budget = ((cap as f64) * *gzip_ratio * 0.9) as usize;
        loop {
            let (end, raw) = self.format_greedy(batch, start, budget.max(1));
            let body = Self::gzip_body(&raw);
            let ratio = (raw.len() as f64 / body.len().max(1) as f64).clamp(1.0, 64.0);
            *gzip_ratio = ratio;
            if body.len() <= cap || end - start == 1 {
                return Request {
                    events: start..end,
                    body: Bytes::from(body),
                };
            }
            let shrunk = (raw.len() as f64 * cap as f64 / body.len() as f64 * 0.95) as usize;
            budget = shrunk.min(raw.len() - 1);
        }
    }

    /// Delivers one request, splitting it on 413.
    async fn deliver(&self, batch: &Batch, first: Request) -> Result<(usize, usize), SinkError> {
        let mut stack = vec![first];
        let (mut bytes, mut requests) = (0, 0);
        while let Some(req) = stack.pop() {
            let cap = self.cap();
            if req.events.len() == 1 && req.body.len() > cap {
                self.retrier.counters.oversize();
                tracing::warn!(
                    sink = "webhook",
                    event_id = %batch.items()[req.events.start].id,
                    bytes = req.body.len(),
                    cap,
                    "event is larger than RELAY_BATCH_MAX_BYTES as sent; sending it alone"
                );
            }
            match self.post(batch, &req).await? {
                Posted::Accepted => {
                    self.retrier.counters.sent(req.events.len(), req.body.len());
                    bytes += req.body.len();
                    requests += 1;
                }
                Posted::TooLarge if req.events.len() == 1 => {
                    return Err(SinkError::Permanent {
                        sink: "webhook",
                        message: format!(
                            "{} answered 413 Payload Too Large to event {} alone ({} bytes as sent); raise the receiver's limit",
                            self.target,
                            batch.items()[req.events.start].id,
                            req.body.len()
                        ),
                    });
                }
                Posted::TooLarge => {
                    let limit = (req.body.len() / 2).max(MIN_LEARNED_LIMIT);
                    let before = self.learned_limit.fetch_min(limit, Ordering::Relaxed);
                    self.retrier.counters.split();
                    tracing::warn!(
                        sink = "webhook",
                        target = %self.target,
                        events = req.events.len(),
                        bytes = req.body.len(),
                        learned_limit = before.min(limit),
                        "413 Payload Too Large; splitting the request in halves and capping later requests below its size"
                    );
                    let mid = req.events.start + req.events.len() / 2;
                    // Pushed second half first: the first half is sent (and acknowledged) first.
                    for r in [mid..req.events.end, req.events.start..mid] {
                        let raw = self.format_range(batch, r.clone());
                        let body = if self.gzip {
                            Self::gzip_body(&raw)
                        } else {
                            raw
                        };
                        stack.push(Request {
                            events: r,
                            body: Bytes::from(body),
                        });
                    }
                }
            }
        }
        Ok((bytes, requests))
    }

    /// Posts one request under the retry policy.
    async fn post(&self, batch: &Batch, req: &Request) -> Result<Posted, SinkError> {
        let id = HeaderValue::from_str(&batch_id(batch, req.events.clone()))
            .expect("hex is a valid header value");
        let what = format!(
            "request of {} event(s), {} bytes, to {}",
            req.events.len(),
            req.body.len(),
            self.target
        );
        self.retrier
            .run("webhook", &what, || async {
                // Sink-wide cap on requests in flight, whoever calls `send` concurrently.
                let _permit = self
                    .inflight
                    .acquire()
                    .await
                    .expect("semaphore never closed");
                let mut headers = self.headers.clone();
                headers.insert(HeaderName::from_static(BATCH_ID_HEADER), id.clone());
                if let Some(key) = &self.secret {
                    let t = SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    let sig = signature(key, t, &req.body);
                    headers.insert(
                        HeaderName::from_static(SIGNATURE_HEADER),
                        HeaderValue::from_str(&sig).expect("ASCII"),
                    );
                }
                let sent = self
                    .client
                    .post(self.url.clone())
                    .headers(headers)
                    .body(req.body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(resp) => classify(resp).await,
                    Err(e) => classify_error(e),
                }
            })
            .await
    }
}

async fn classify(resp: reqwest::Response) -> Attempt<Posted> {
    let status = resp.status();
    let code = status.as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    // Read the body to the end so the connection goes back to the pool.
    let body = resp.bytes().await.unwrap_or_default();
    match code {
        200..=299 => Attempt::Done(Posted::Accepted),
        413 => Attempt::Done(Posted::TooLarge),
        408 | 429 | 500..=599 => Attempt::Retry {
            reason: code.to_string(),
            retry_after,
            message: format!("answered {status}"),
        },
        300..=399 => Attempt::Permanent(format!(
            "answered {status} (a redirect; set RELAY_WEBHOOK_URL to the final URL)"
        )),
        _ => {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
            Attempt::Permanent(format!("answered {status}: {}", text.trim()))
        }
    }
}

fn classify_error(e: reqwest::Error) -> Attempt<Posted> {
    // reqwest's message would include the URL (which may hold a token): strip it.
    let reason = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection"
    } else if e.is_builder() {
        return Attempt::Permanent(error_chain(&e.without_url()));
    } else {
        // Connection reset, broken pipe, protocol error mid-request: transient.
        "connection"
    };
    Attempt::Retry {
        reason: reason.into(),
        retry_after: None,
        message: error_chain(&e.without_url()),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Yields a batch's requests lazily, so formatting overlaps with requests in flight.
struct Planner<'a> {
    sink: &'a WebhookSink,
    next: usize,
    batch_len: usize,
    gzip_ratio: f64,
}

impl Planner<'_> {
    fn next_request(&mut self, batch: &Batch) -> Option<Request> {
        if self.next >= self.batch_len {
            return None;
        }
        let r = self
            .sink
            .next_request(batch, self.next, &mut self.gzip_ratio);
        self.next = r.events.end;
        Some(r)
    }
}

#[async_trait]
impl Sink for WebhookSink {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, batch: &Batch) -> Result<(), SinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let mut planner = self.plan(batch);
        let requests =
            futures::stream::poll_fn(|_| std::task::Poll::Ready(planner.next_request(batch)));
        let mut acks = requests
            .map(|r| self.deliver(batch, r))
            .buffer_unordered(self.concurrency);
        let (mut bytes, mut count) = (0, 0);
        while let Some(r) = acks.next().await {
            // The first failure ends the batch: dropping the stream cancels the rest, and the
            // caller re-sends the whole batch later (at-least-once).
            let (b, n) = r?;
            bytes += b;
            count += n;
        }
        tracing::debug!(
            sink = "webhook",
            events = batch.len(),
            bytes,
            requests = count,
            ms = started.elapsed().as_millis() as u64,
            "batch acknowledged"
        );
        Ok(())
    }

    fn stats(&self) -> SinkStats {
        self.retrier.counters.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::EventId;

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

    fn plan_all(s: &WebhookSink, b: &Batch) -> Vec<Request> {
        let mut p = s.plan(b);
        std::iter::from_fn(|| p.next_request(b)).collect()
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
        let body = s.format_range(&b, 0..2);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[1]["n"], 1);

        let s = sink(WebhookFormat::SplunkHec, false, 1 << 20);
        let body = s.format_range(&b, 0..2);
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
        assert_eq!(s.format_range(&b, 0..2), b.ndjson());
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
