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

use super::config::ConfigError;
use super::retry::{parse_retry_after, Attempt, Retrier, RetryPolicy, SinkStats};
use super::{Batch, Rejected, Sink, SinkError};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::StatusCode;
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
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
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
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

/// Gzips `raw` at level 1: JSON still shrinks several-fold, at a fraction of the default's CPU.
pub fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(raw.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    enc.write_all(raw).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
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

    /// The byte cap in force: the configured one, lowered by what 413 answers taught.
    fn cap(&self) -> usize {
        self.max_bytes
            .min(self.learned_limit.load(Ordering::Relaxed))
    }

    /// The uncompressed body of `events`.
    pub fn format(&self, batch: &Batch, events: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        if let (Some(&a), Some(&b)) = (events.first(), events.last()) {
            if self.dest.is_plain_ndjson() && b + 1 - a == events.len() {
                // Consecutive events sit back to back in the batch: the body is one slice.
                let items = batch.items();
                out.extend_from_slice(
                    &batch.ndjson()[items[a].range.start..items[b].range.end + 1],
                );
                return out;
            }
        }
        self.dest.open(&mut out);
        for (k, &i) in events.iter().enumerate() {
            self.dest.append(batch, i, k == 0, &mut out);
        }
        self.dest.close(&mut out);
        out
    }

    /// The body as sent of `events`.
    fn body(&self, batch: &Batch, events: &[usize]) -> Bytes {
        let raw = self.format(batch, events);
        Bytes::from(if self.gzip { gzip(&raw) } else { raw })
    }

    /// Formats as many events from `start` as fit `budget` uncompressed bytes (at least one,
    /// at most `max_events`, all allowed in one request). Returns the end index and the body.
    fn format_greedy(&self, batch: &Batch, start: usize, budget: usize) -> (usize, Vec<u8>) {
        let n = batch.len().min(start.saturating_add(self.max_events));
        if self.dest.is_plain_ndjson() {
            let items = batch.items();
            let base = items[start].range.start;
            let mut end = start + 1;
            while end < n
                && items[end].range.end + 1 - base <= budget
                && self.dest.same_request(batch, start, end)
            {
                end += 1;
            }
            let (a, b) = (base, items[end - 1].range.end + 1);
            return (end, batch.ndjson()[a..b].to_vec());
        }
        let mut out = Vec::with_capacity(budget.min(batch.bytes() + 64 * (n - start)) + 2);
        self.dest.open(&mut out);
        let mut i = start;
        while i < n {
            if i > start && !self.dest.same_request(batch, start, i) {
                break;
            }
            let mark = out.len();
            self.dest.append(batch, i, i == start, &mut out);
            if i > start && out.len() + self.dest.close_len() > budget {
                out.truncate(mark);
                break;
            }
            i += 1;
        }
        self.dest.close(&mut out);
        (i, out)
    }

    /// The request starting at event `start`. The cut depends only on the batch, the cap in
    /// force and the compression ratio seen so far, so a re-sent batch gets the same requests.
    fn next_request(&self, batch: &Batch, start: usize, gzip_ratio: &mut f64) -> Request {
        let cap = self.cap();
        if !self.gzip {
            let (end, body) = self.format_greedy(batch, start, cap.min(self.max_raw_bytes));
            return Request {
                events: (start..end).collect(),
                body: Bytes::from(body),
            };
        }
        // The compressed size is known only after compressing: take an uncompressed budget
        // from the ratio seen so far (with a margin), compress, and if the result overflows,
        // shrink the budget by how much it overflowed and compress again.
        let mut budget = ((cap as f64) * *gzip_ratio * 0.9) as usize;
        loop {
            let (end, raw) =
                self.format_greedy(batch, start, budget.min(self.max_raw_bytes).max(1));
            let body = gzip(&raw);
            let ratio = (raw.len() as f64 / body.len().max(1) as f64).clamp(1.0, 64.0);
            *gzip_ratio = ratio;
            if body.len() <= cap || end - start == 1 {
                return Request {
                    events: (start..end).collect(),
                    body: Bytes::from(body),
                };
            }
            let shrunk = (raw.len() as f64 * cap as f64 / body.len() as f64 * 0.95) as usize;
            budget = shrunk.min(raw.len() - 1);
        }
    }

    /// Event ranges and body sizes of the requests `batch` would be cut into (tests, tools).
    pub fn plan(&self, batch: &Batch) -> Vec<(std::ops::Range<usize>, usize)> {
        let mut ratio = 4.0;
        let mut next = 0;
        let mut out = Vec::new();
        while next < batch.len() {
            let r = self.next_request(batch, next, &mut ratio);
            let end = *r.events.last().expect("a request holds an event") + 1;
            out.push((next..end, r.body.len()));
            next = end;
        }
        out
    }

    /// Delivers one request, splitting it on 413. Returns the events refused for good.
    async fn deliver_request(
        &self,
        batch: &Batch,
        first: Request,
    ) -> Result<Vec<Rejected>, SinkError> {
        let name = self.dest.name();
        let mut stack = vec![first];
        let mut rejected = Vec::new();
        while let Some(req) = stack.pop() {
            let cap = self.cap();
            if req.events.len() == 1 && req.body.len() > cap {
                self.retrier.counters.oversize();
                tracing::warn!(
                    sink = name,
                    event_id = %batch.items()[req.events[0]].id,
                    bytes = req.body.len(),
                    cap,
                    "event is larger than the request size cap as sent; sending it alone"
                );
            }
            match self.post(batch, req).await? {
                Posted::Delivered { rejected: r } => rejected.extend(r),
                Posted::TooLarge(req, r) if req.events.len() == 1 => {
                    rejected.extend(r);
                    if self.dest.dead_letters_oversize() {
                        self.retrier.counters.oversize();
                        rejected.push(Rejected {
                            index: req.events[0],
                            reason: format!(
                                "{name} refused the event: 413 Payload Too Large to the event alone ({} bytes as sent; over the receiver's request size limit)",
                                req.body.len()
                            ),
                        });
                        continue;
                    }
                    return Err(SinkError::Permanent {
                        sink: name,
                        message: format!(
                            "{} answered 413 Payload Too Large to event {} alone ({} bytes as sent); raise the receiver's limit",
                            self.dest.target(),
                            batch.items()[req.events[0]].id,
                            req.body.len()
                        ),
                    });
                }
                Posted::TooLarge(req, r) => {
                    rejected.extend(r);
                    let limit = (req.body.len() / 2).max(MIN_LEARNED_LIMIT);
                    let before = self.learned_limit.fetch_min(limit, Ordering::Relaxed);
                    self.retrier.counters.split();
                    tracing::warn!(
                        sink = name,
                        target = %self.dest.target(),
                        events = req.events.len(),
                        bytes = req.body.len(),
                        learned_limit = before.min(limit),
                        "413 Payload Too Large; splitting the request in halves and capping later requests below its size"
                    );
                    let mid = req.events.len() / 2;
                    // Second half pushed first: the first half is sent (and settled) first.
                    for part in [&req.events[mid..], &req.events[..mid]] {
                        stack.push(Request {
                            events: part.to_vec(),
                            body: self.body(batch, part),
                        });
                    }
                }
            }
        }
        Ok(rejected)
    }

    /// Posts one request under the retry policy; events that failed transiently per item are
    /// sent again (alone) within the same retry budget.
    async fn post(&self, batch: &Batch, req: Request) -> Result<Posted, SinkError> {
        let what = format!(
            "request of {} event(s), {} bytes, to {}",
            req.events.len(),
            req.body.len(),
            self.dest.target()
        );
        // The request as it stands (shrinks to the events still pending after per-item
        // failures) and the events refused for good so far.
        let state = Mutex::new((req, Vec::<Rejected>::new()));
        let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = self
            .retrier
            .run(self.dest.name(), &what, || async {
                let req = lock().0.clone();
                // Sink-wide cap on requests in flight, whoever calls `send` concurrently.
                let _permit = self
                    .inflight
                    .acquire()
                    .await
                    .expect("semaphore never closed");
                let mut headers = self.headers.clone();
                let url = match self
                    .dest
                    .prepare(batch, &req.events, &req.body, &mut headers)
                    .await
                {
                    Ok(u) => u,
                    Err(Attempt::Done(())) => unreachable!("prepare never finishes a request"),
                    Err(Attempt::Retry {
                        reason,
                        retry_after,
                        message,
                    }) => {
                        return Attempt::Retry {
                            reason,
                            retry_after,
                            message,
                        }
                    }
                    Err(Attempt::Permanent(m)) => return Attempt::Permanent(m),
                };
                let sent = self
                    .client
                    .post(url)
                    .headers(headers)
                    .body(req.body.clone())
                    .send()
                    .await;
                let resp = match sent {
                    Ok(r) => r,
                    Err(e) => return classify_error(e),
                };
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
                    200..=299 => {}
                    413 => return Attempt::Done(false),
                    408 | 429 | 500..=599 => {
                        return Attempt::Retry {
                            reason: code.to_string(),
                            retry_after,
                            message: format!("answered {status}"),
                        }
                    }
                    300..=399 => {
                        return Attempt::Permanent(format!(
                            "answered {status} (a redirect; set {} to the final URL)",
                            self.dest.url_setting()
                        ))
                    }
                    _ => {
                        return Attempt::Permanent(self.dest.refused(
                            batch,
                            &req.events,
                            status,
                            &body,
                        ))
                    }
                }
                match self.dest.accepted(batch, &req.events, &body) {
                    Verdict::Accepted => {
                        self.retrier.counters.sent(req.events.len(), req.body.len());
                        Attempt::Done(true)
                    }
                    Verdict::Retry(message) => Attempt::Retry {
                        reason: code.to_string(),
                        retry_after,
                        message,
                    },
                    Verdict::Permanent(m) => Attempt::Permanent(m),
                    Verdict::Items {
                        retry,
                        retry_reason,
                        rejected,
                    } => {
                        let delivered = req.events.len() - retry.len() - rejected.len();
                        self.retrier.counters.sent(delivered, req.body.len());
                        let mut st = lock();
                        st.1.extend(rejected.into_iter().map(|(k, reason)| Rejected {
                            index: req.events[k],
                            reason,
                        }));
                        if retry.is_empty() {
                            return Attempt::Done(true);
                        }
                        let events: Vec<usize> = retry.iter().map(|&k| req.events[k]).collect();
                        let message = format!(
                            "{} of {} event(s) failed ({retry_reason})",
                            events.len(),
                            req.events.len()
                        );
                        let body = self.body(batch, &events);
                        st.0 = Request { events, body };
                        Attempt::Retry {
                            reason: format!(
                                "item {}",
                                retry_reason.split(' ').next().unwrap_or("")
                            ),
                            retry_after,
                            message,
                        }
                    }
                }
            })
            .await;
        let (req, rejected) = state.into_inner().unwrap_or_else(|p| p.into_inner());
        match outcome? {
            true => Ok(Posted::Delivered { rejected }),
            false => Ok(Posted::TooLarge(req, rejected)),
        }
    }

    /// Sends `batch`; returns the events the destination refused for good.
    async fn deliver_batch(&self, batch: &Batch) -> Result<Vec<Rejected>, SinkError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let started = std::time::Instant::now();
        let mut next = 0;
        let mut ratio = 4.0;
        // Requests are cut lazily, so formatting overlaps with requests in flight.
        let requests = futures::stream::poll_fn(|_| {
            if next >= batch.len() {
                return std::task::Poll::Ready(None);
            }
            let r = self.next_request(batch, next, &mut ratio);
            next = *r.events.last().expect("a request holds an event") + 1;
            std::task::Poll::Ready(Some(r))
        });
        let mut acks = requests
            .map(|r| self.deliver_request(batch, r))
            .buffer_unordered(self.concurrency);
        let mut rejected = Vec::new();
        while let Some(r) = acks.next().await {
            // The first failure ends the batch: dropping the stream cancels the rest, and the
            // caller re-sends the whole batch later (at-least-once).
            rejected.extend(r?);
        }
        rejected.sort_by_key(|r| r.index);
        tracing::debug!(
            sink = self.dest.name(),
            events = batch.len(),
            rejected = rejected.len(),
            ms = started.elapsed().as_millis() as u64,
            "batch acknowledged"
        );
        Ok(rejected)
    }
}

fn classify_error<T>(e: reqwest::Error) -> Attempt<T> {
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

/// Writes event `i` of `batch` with `"<field>":"<time>"` added in front of its other fields:
/// the event time (`properties.Timestamp`), else the export time (`exported_at`), else now, as
/// RFC 3339 UTC with microseconds. Destinations that need a time column on every record
/// (Logs Ingestion `TimeGenerated`, Elasticsearch `@timestamp`) use it.
pub fn append_with_time(batch: &Batch, i: usize, field: &str, out: &mut Vec<u8>) {
    let ev = batch.event(i);
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(b"\":\"");
    match batch.items()[i].time.filter(|t| t.is_finite()) {
        Some(t) => write_time(t, out),
        None => match exported_at(ev) {
            Some(s) => out.extend_from_slice(s),
            None => {
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                write_time(now, out)
            }
        },
    }
    out.push(b'"');
    // The event is a JSON object: splice the rest of it in after the added field.
    match ev.get(1..) {
        Some(rest) if rest.iter().any(|c| !c.is_ascii_whitespace() && *c != b'}') => {
            out.push(b',');
            out.extend_from_slice(rest);
        }
        _ => out.push(b'}'),
    }
}

/// The top-level `exported_at` string of a normalized event (it precedes `properties`, so
/// the first match is the envelope's), when it has one.
fn exported_at(ev: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\"exported_at\":\"";
    let at = memchr::memmem::find(ev, KEY)? + KEY.len();
    let len = memchr::memchr(b'"', &ev[at..])?;
    Some(&ev[at..at + len]).filter(|s| s.len() >= 20)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
fn write_time(t: f64, out: &mut Vec<u8>) {
    let micros = (t * 1e6).round() as i64;
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let dt = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    use chrono::{Datelike, Timelike};
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::EventId;

    #[test]
    fn time_field_goes_first() {
        let mut b = Batch::new();
        let id = EventId([b'a'; 32]);
        b.push_json(id, "T".into(), Some(1_767_225_600.25), br#"{"x":1}"#);
        b.push_json(
            id,
            "T".into(),
            None,
            br#"{"id":"a","exported_at":"2026-11-24T09:14:03.5518831Z","properties":{}}"#,
        );
        b.push_json(id, "T".into(), None, br#"{}"#);
        let mut out = Vec::new();
        append_with_time(&b, 0, "TimeGenerated", &mut out);
        assert_eq!(
            out,
            br#"{"TimeGenerated":"2026-01-01T00:00:00.250000Z","x":1}"#
        );
        out.clear();
        append_with_time(&b, 1, "@timestamp", &mut out);
        assert!(out.starts_with(br#"{"@timestamp":"2026-11-24T09:14:03.5518831Z","id":"a""#));
        out.clear();
        append_with_time(&b, 2, "t", &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v["t"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn urls() {
        assert!(parse_url("https://example.com/x").is_ok());
        assert!(parse_url("http://127.0.0.1:8080/x").is_ok());
        assert!(parse_url("http://example.com/x").is_err());
    }
}
