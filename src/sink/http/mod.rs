//! The HTTP-batch core every HTTP sink (webhook, Logs Ingestion, Elasticsearch) runs on. A sink
//! file only says what is particular to its destination, through [`Destination`]: how events
//! are written into a body, where a request goes and with which headers, and what an answer
//! means. Everything else lives here, once:
//!
//! - **Byte-capped requests, measured as sent.** A batch becomes requests whose bodies, after
//!   formatting and compression, are at most the cap (`RELAY_BATCH_MAX_BYTES`, or a
//!   destination's own lower limit). An event that alone exceeds it is sent alone, with a
//!   warning: it is never dropped. A destination can also keep events apart
//!   ([`Destination::same_request`], e.g. a stream per table).
//! - **Concurrency.** Up to `concurrency` requests of the sink are in flight, across concurrent
//!   `send`s too; `send` returns only when every request of its batch is settled, so the
//!   caller's checkpoint never runs ahead of the destination.
//! - **Retries** ([`super::retry`]): connection errors, timeouts, 408, 429 and 5xx, with full
//!   jitter, `Retry-After` holding every request of the sink, all within the retry budget.
//! - **413 splitting.** A refused request is split in halves, sent one after the other, and
//!   later requests are cut below the refused size.
//! - **Per-item results.** A destination that answers per event (Elasticsearch `_bulk`) returns
//!   [`Verdict::Items`]: only the events that failed transiently are sent again, and those it
//!   refused for good come back from [`Sink::deliver`] as [`Rejected`] for the caller to
//!   dead-letter.
//! - **Permanent errors** (other 4xx, redirects) end the batch with [`SinkError::Permanent`];
//!   the destination words the message (never with a secret).

mod body;
mod fields;
mod send;

pub use body::gzip;
pub use fields::append_with_time;

use super::retry::{Attempt, Retrier, RetryPolicy, SinkStats};
use super::{Sink, SinkError};
use crate::config::ConfigError;
use crate::event::{Batch, Rejected};
use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::StatusCode;
use std::fmt;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;
use url::Url;

/// Smallest request-size limit learned from 413 answers (keeps a misbehaving receiver from
/// shrinking requests to nothing).
const MIN_LEARNED_LIMIT: usize = 1024;

/// Transport settings of an HTTP sink.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Per-request timeout.
    pub timeout: Duration,
    /// Requests in flight.
    pub concurrency: usize,
    /// Byte cap of a request body as sent.
    pub max_bytes: usize,
    /// Events per request.
    pub max_events: usize,
    /// Gzip request bodies (`Content-Encoding: gzip`).
    pub gzip: bool,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Byte cap of a request body before compression, for destinations that limit that
    /// (Logs Ingestion: 1,000,000); `usize::MAX` when only the size as sent counts.
    pub max_raw_bytes: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: Duration::from_secs(30),
            concurrency: 4,
            max_bytes: 1_000_000,
            max_events: 500,
            gzip: false,
            retry: RetryPolicy::default(),
            max_raw_bytes: usize::MAX,
        }
    }
}

/// What a destination made of a 2xx answer.
#[derive(Debug)]
pub enum Verdict {
    /// Every event of the request is delivered.
    Accepted,
    /// Per-event results; events not listed are delivered.
    Items {
        /// Positions (in the request's event list) that failed transiently (429, 5xx): sent again.
        retry: Vec<usize>,
        /// Why the first of them failed (for logs), e.g. `429 es_rejected_execution_exception`.
        retry_reason: String,
        /// Positions refused for good, with the destination's reason: dead-lettered.
        rejected: Vec<(usize, String)>,
    },
    /// A failure of the whole request retrying will fix (the answer said so in its body).
    Retry(String),
    /// A failure of the whole request retrying will not fix.
    Permanent(String),
}

/// What is particular to one HTTP destination.
#[async_trait]
pub trait Destination: Send + Sync + 'static {
    /// Sink kind for logs and errors (`webhook`, `elasticsearch`, `logs-ingestion`).
    fn name(&self) -> &'static str;

    /// `scheme://host:port` of the destination: what logs may say about it.
    fn target(&self) -> &str;

    /// `Content-Type` of request bodies.
    fn content_type(&self) -> &'static str;

    /// The setting holding the destination's URL, for messages (`RELAY_WEBHOOK_URL`).
    fn url_setting(&self) -> &'static str;

    /// True when an event the receiver answers 413 to on its own goes to the dead-letter
    /// destination (it can never be taken: Elasticsearch's `http.max_content_length`); by
    /// default the drain stops instead, with an error telling to raise the receiver's limit.
    fn dead_letters_oversize(&self) -> bool {
        false
    }

    /// Whether event `i` may go in the same request as event `first` (`i > first`, both of
    /// the same batch). Default: always.
    fn same_request(&self, _batch: &Batch, _first: usize, _i: usize) -> bool {
        true
    }

    /// Writes what comes before the first event (`[` for a JSON array).
    fn open(&self, _out: &mut Vec<u8>) {}

    /// Writes what comes after the last event (`]` for a JSON array).
    fn close(&self, _out: &mut Vec<u8>) {}

    /// Length of what [`Destination::close`] writes.
    fn close_len(&self) -> usize {
        0
    }

    /// Appends event `i` of `batch`; `first` is true for a body's first event.
    fn append(&self, batch: &Batch, i: usize, first: bool, out: &mut Vec<u8>);

    /// True when the body of consecutive events is exactly their NDJSON lines in the batch
    /// (lets the core copy one slice instead of appending event by event).
    fn is_plain_ndjson(&self) -> bool {
        false
    }

    /// The URL and the request's own headers (authorization, signatures, ids) for a request of
    /// `events` with `body` (as sent). An `Err` is an attempt outcome, e.g. a token that could
    /// not be fetched ([`Attempt::Retry`]).
    async fn prepare(
        &self,
        batch: &Batch,
        events: &[usize],
        body: &Bytes,
        headers: &mut HeaderMap,
    ) -> Result<Url, Attempt<()>>;

    /// What a 2xx answer with `body` means. Default: every event delivered.
    fn accepted(&self, _batch: &Batch, _events: &[usize], _body: &[u8]) -> Verdict {
        Verdict::Accepted
    }

    /// The message of a permanent error for a 4xx answer (other than 408, 413 and 429).
    /// Default: the status and the start of the body.
    fn refused(
        &self,
        _batch: &Batch,
        _events: &[usize],
        status: StatusCode,
        body: &[u8],
    ) -> String {
        let text =
            String::from_utf8_lossy(&body[..body.len().min(crate::sink::answer::MAX_BODY_EXCERPT)]);
        format!("answered {status}: {}", text.trim())
    }
}

/// One request: events of a batch (positions, in order) and the body as sent.
#[derive(Clone)]
struct Request {
    events: Vec<usize>,
    body: Bytes,
}

/// What posting a request ended with, when not with an error.
enum Posted {
    /// Delivered, possibly with events refused for good; `bytes` as sent, summed over attempts
    /// that delivered something.
    Delivered { rejected: Vec<Rejected> },
    /// 413: the request (as last sent) is to be split.
    TooLarge(Request, Vec<Rejected>),
}

/// A sink posting batches to a [`Destination`].
pub struct HttpSink<D: Destination> {
    dest: D,
    client: reqwest::Client,
    headers: HeaderMap,
    gzip: bool,
    concurrency: usize,
    inflight: tokio::sync::Semaphore,
    max_bytes: usize,
    max_events: usize,
    max_raw_bytes: usize,
    retrier: Retrier,
    /// Body size later requests are cut at after the receiver answered 413: half the size it
    /// refused (what the split sends), so later batches do not hit the same 413 again.
    learned_limit: AtomicUsize,
}

impl<D: Destination + fmt::Debug> fmt::Debug for HttpSink<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSink")
            .field("dest", &self.dest)
            .field("gzip", &self.gzip)
            .field("concurrency", &self.concurrency)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

/// Builds the HTTP client the sinks use. `setting` names the setting errors are reported on.
pub fn client(o: &HttpOptions, setting: &str) -> Result<reqwest::Client, ConfigError> {
    reqwest::Client::builder()
        .timeout(o.timeout)
        .connect_timeout(o.timeout.min(Duration::from_secs(10)))
        // A redirect would resend the body somewhere else (or drop it as a GET): refuse.
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(o.concurrency.max(1))
        .tcp_nodelay(true)
        .user_agent(concat!("mde-relay/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ConfigError::new(setting, format!("cannot build an HTTP client: {e}")))
}

/// `scheme://host:port` of a URL: what logs may say about the destination.
pub fn target_of(u: &Url) -> String {
    match u.port() {
        Some(p) => format!("{}://{}:{p}", u.scheme(), u.host_str().unwrap_or("")),
        None => format!("{}://{}", u.scheme(), u.host_str().unwrap_or("")),
    }
}

/// Checks a destination URL: https, or http when the host is loopback. Errors never echo the
/// URL (it may hold a token).
pub fn parse_url(s: &str) -> Result<Url, String> {
    let u = Url::parse(s.trim()).map_err(|e| format!("is not a valid URL ({e})"))?;
    if u.host().is_none() {
        return Err("has no host".into());
    }
    let loopback = crate::loopback::is_literal_loopback(&u);
    match u.scheme() {
        "https" => Ok(u),
        "http" if loopback => Ok(u),
        _ => Err("must be https (http is allowed only for loopback)".into()),
    }
}

/// The message of an error chain, without URLs (reqwest's would include them, and a URL may
/// hold a token).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

impl<D: Destination> HttpSink<D> {
    /// A sink posting to `dest`. `setting` names the setting client errors are reported on.
    pub fn with(dest: D, o: HttpOptions, setting: &str) -> Result<Self, ConfigError> {
        let client = client(&o, setting)?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(dest.content_type()));
        if o.gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        Ok(HttpSink {
            dest,
            client,
            headers,
            gzip: o.gzip,
            concurrency: o.concurrency.max(1),
            inflight: tokio::sync::Semaphore::new(o.concurrency.max(1)),
            max_bytes: o.max_bytes.max(1),
            max_events: o.max_events.max(1),
            max_raw_bytes: o.max_raw_bytes.max(1),
            retrier: Retrier::new(o.retry),
            learned_limit: AtomicUsize::new(usize::MAX),
        })
    }

    /// The destination.
    pub fn destination(&self) -> &D {
        &self.dest
    }

    /// Headers every request carries (content type and encoding); the destination adds its own.
    pub fn base_headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }
}

#[async_trait]
impl<D: Destination> Sink for HttpSink<D> {
    fn name(&self) -> &'static str {
        self.dest.name()
    }

    async fn send(&self, batch: &Batch) -> Result<(), SinkError> {
        let rejected = self.deliver_batch(batch).await?;
        match rejected.first() {
            None => Ok(()),
            Some(r) => Err(SinkError::Permanent {
                sink: self.dest.name(),
                message: format!(
                    "{} event(s) refused (first: event {}: {}) and this caller cannot dead-letter them",
                    rejected.len(),
                    batch.items()[r.index].id,
                    r.reason
                ),
            }),
        }
    }

    async fn deliver(&self, batch: &Batch) -> Result<Vec<Rejected>, SinkError> {
        self.deliver_batch(batch).await
    }

    fn stats(&self) -> SinkStats {
        self.retrier.counters.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(parse_url("https://example.com/x").is_ok());
        assert!(parse_url("http://127.0.0.1:8080/x").is_ok());
        assert!(parse_url("http://example.com/x").is_err());
    }
}
