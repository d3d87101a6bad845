//! Sending requests: up to `concurrency` in flight, retries under the sink's policy, 413
//! splitting, and per-item verdicts ([`super::Verdict`]).

use super::{error_chain, Destination, HttpSink, Posted, Request, Verdict, MIN_LEARNED_LIMIT};
use crate::event::{Batch, Rejected};
use crate::sink::retry::{parse_retry_after, Attempt};
use crate::sink::{answer, SinkError};
use futures::StreamExt;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::SystemTime;

impl<D: Destination> HttpSink<D> {
    /// Delivers one request, splitting it on 413. Returns the events refused for good.
    pub(super) async fn deliver_request(
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
    pub(super) async fn post(&self, batch: &Batch, req: Request) -> Result<Posted, SinkError> {
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
                // What the request carries that an echoing destination must not get into our
                // errors and logs.
                let secrets = answer::secrets_of(&headers);
                let scrub = |m: String| answer::scrub(&m, &secrets);
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
                // Read the body to the end (so the connection goes back to the pool), but no
                // further than a bound: the destination is not trusted to end it.
                let max = if status.is_success() {
                    answer::MAX_OK_BODY
                } else {
                    answer::MAX_ERROR_BODY
                };
                let body = answer::read_bounded(resp, max).await;
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
                        return Attempt::Permanent(scrub(self.dest.refused(
                            batch,
                            &req.events,
                            status,
                            &body,
                        )))
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
                        message: scrub(message),
                    },
                    Verdict::Permanent(m) => Attempt::Permanent(scrub(m)),
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
                            reason: scrub(reason),
                        }));
                        if retry.is_empty() {
                            return Attempt::Done(true);
                        }
                        let events: Vec<usize> = retry.iter().map(|&k| req.events[k]).collect();
                        let message = format!(
                            "{} of {} event(s) failed ({})",
                            events.len(),
                            req.events.len(),
                            scrub(retry_reason.clone())
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
    pub(super) async fn deliver_batch(&self, batch: &Batch) -> Result<Vec<Rejected>, SinkError> {
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

pub(super) fn classify_error<T>(e: reqwest::Error) -> Attempt<T> {
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
