//! Retries shared by the network sinks (webhook, queue), and the counters they keep.
//!
//! Policy: connection errors, timeouts, 408, 429 and 5xx are retried with exponential backoff
//! and full jitter (a random delay between zero and `initial × 2^attempt`, capped) until
//! [`RetryPolicy::max_elapsed`] has passed. A `Retry-After` answer closes the sink's
//! [`Throttle`] until it expires: every request of that sink, concurrent ones included, waits
//! for it, so no request reaches the destination earlier than it asked. Everything else is the
//! caller's to classify (413 splits in the webhook sink; other 4xx are permanent).
//!
//! A `Retry-After` comes from the destination, so it is untrusted: it is parsed without
//! panicking whatever it says (`1e30`, `18446744073709551615`, a date in year 9999) and the
//! wait it asks for is cut to [`MAX_RETRY_AFTER`]. All instant arithmetic is checked.

use super::SinkError;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Longest wait a destination's `Retry-After` imposes; a longer one is cut to it (and, like
/// any wait, still gives up when it would end past the retry budget).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How long and how often to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Upper bound of the first backoff delay.
    pub initial_backoff: Duration,
    /// Largest single backoff delay (before jitter).
    pub max_backoff: Duration,
    /// Give up once retrying a request would go on past this (`RELAY_RETRY_MAX_ELAPSED`).
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The full-jitter delay before retry number `attempt` (0-based): uniform in
    /// `[0, min(max_backoff, initial_backoff × 2^attempt)]`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .initial_backoff
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max_backoff);
        ceiling.mul_f64(rand::random::<f64>())
    }
}

/// What one attempt of an operation ended with.
#[derive(Debug)]
pub enum Attempt<T> {
    /// Finished (the value may still tell the caller something, e.g. "too large").
    Done(T),
    /// A transient failure: try again after a backoff, or after `retry_after` when the
    /// destination said how long to wait.
    Retry {
        /// Counter key: the HTTP status (`"429"`, `"503"`) or `"timeout"` / `"connection"`.
        reason: String,
        /// The destination's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
        /// What happened, for logs and the final error (no secrets).
        message: String,
    },
    /// A failure retrying will not fix.
    Permanent(String),
}

/// Parses a `Retry-After` value: delay seconds (integer; a decimal is accepted too) or an
/// HTTP date. A date in the past means "now". `None` when the value is neither. Never panics:
/// a delay too large for a [`Duration`] saturates (the retrier cuts it to the policy's limit).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        if !(secs.is_finite() && secs >= 0.0) {
            return None;
        }
        return Some(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    // An HTTP date has whole seconds: wait until the end of that second is not asked for, so
    // the delay is exactly "until that instant".
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The sink-wide "not before" instant set by `Retry-After`. Shared by every request of a sink.
#[derive(Debug, Default)]
pub struct Throttle {
    not_before: Mutex<Option<Instant>>,
}

impl Throttle {
    /// Closes the throttle until `until` (never shortens it). Returns how much later than
    /// before the sink may send, which is what the "seconds throttled" counter adds.
    pub fn hold_until(&self, until: Instant) -> Duration {
        let mut nb = self.not_before.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let from = nb.map_or(now, |t| t.max(now));
        if until > from {
            *nb = Some(until);
            until - from
        } else {
            Duration::ZERO
        }
    }

    /// When the throttle opens, if it is closed now.
    pub fn closed_until(&self) -> Option<Instant> {
        let nb = *self.not_before.lock().unwrap_or_else(|p| p.into_inner());
        nb.filter(|t| *t > Instant::now())
    }

    /// Waits until the throttle is open. Returns the instant it would open at instead when that
    /// is after `deadline`.
    pub async fn wait(&self, deadline: Instant) -> Result<(), Instant> {
        // Loop: another request may extend the hold while this one sleeps.
        while let Some(t) = self.closed_until() {
            if t > deadline {
                return Err(t);
            }
            tokio::time::sleep_until(t).await;
        }
        Ok(())
    }
}

/// Counters of a sink, cumulative since it was built. Read them with [`Counters::snapshot`].
#[derive(Debug, Default)]
pub struct Counters {
    events: AtomicU64,
    bytes: AtomicU64,
    requests: AtomicU64,
    splits: AtomicU64,
    oversize: AtomicU64,
    throttled_micros: AtomicU64,
    retries: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    /// Counts one acknowledged request of `events` events and `bytes` bytes as sent.
    pub fn sent(&self, events: usize, bytes: usize) {
        self.events.fetch_add(events as u64, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request split in two after a 413.
    pub fn split(&self) {
        self.splits.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an event bigger than the byte cap (sent alone, or by claim check).
    pub fn oversize(&self) {
        self.oversize.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a retry for `reason`.
    pub fn retry(&self, reason: &str) {
        let mut r = self.retries.lock().unwrap_or_else(|p| p.into_inner());
        *r.entry(reason.to_string()).or_default() += 1;
    }

    /// Adds time during which the sink was held back by `Retry-After`.
    pub fn throttled(&self, d: Duration) {
        self.throttled_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> SinkStats {
        SinkStats {
            events: self.events.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            splits: self.splits.load(Ordering::Relaxed),
            oversize: self.oversize.load(Ordering::Relaxed),
            throttled_secs: self.throttled_micros.load(Ordering::Relaxed) as f64 / 1e6,
            retries: self
                .retries
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// What a sink did: events and bytes acknowledged, requests, retries by reason, time spent
/// throttled. Cumulative; [`SinkStats::since`] gives one invocation's share.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SinkStats {
    /// Events acknowledged by the destination.
    pub events: u64,
    /// Bytes acknowledged, as sent (after formatting and compression).
    pub bytes: u64,
    /// Requests (or queue messages) acknowledged.
    pub requests: u64,
    /// Requests split in halves after a 413.
    pub splits: u64,
    /// Events larger than the byte cap (sent alone, or stored by claim check).
    pub oversize: u64,
    /// Seconds during which `Retry-After` held the sink back.
    pub throttled_secs: f64,
    /// Retries by reason: HTTP status (`"429"`, `"503"`), `"timeout"` or `"connection"`.
    pub retries: BTreeMap<String, u64>,
}

impl SinkStats {
    /// The difference `self - earlier` (what happened between two snapshots).
    pub fn since(&self, earlier: &SinkStats) -> SinkStats {
        let mut retries = self.retries.clone();
        for (k, v) in &earlier.retries {
            if let Some(x) = retries.get_mut(k) {
                *x = x.saturating_sub(*v);
            }
        }
        retries.retain(|_, v| *v > 0);
        SinkStats {
            events: self.events.saturating_sub(earlier.events),
            bytes: self.bytes.saturating_sub(earlier.bytes),
            requests: self.requests.saturating_sub(earlier.requests),
            splits: self.splits.saturating_sub(earlier.splits),
            oversize: self.oversize.saturating_sub(earlier.oversize),
            throttled_secs: (self.throttled_secs - earlier.throttled_secs).max(0.0),
            retries,
        }
    }

    /// Total retries of every reason.
    pub fn total_retries(&self) -> u64 {
        self.retries.values().sum()
    }
}

impl std::fmt::Display for SinkStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "events={} bytes={} requests={} splits={} oversize={} throttled_secs={:.3} retries={{",
            self.events, self.bytes, self.requests, self.splits, self.oversize, self.throttled_secs
        )?;
        for (i, (k, v)) in self.retries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}:{v}")?;
        }
        f.write_str("}")
    }
}

/// Runs operations under a [`RetryPolicy`], sharing one [`Throttle`] and one set of
/// [`Counters`] per sink.
#[derive(Debug, Default)]
pub struct Retrier {
    /// The policy.
    pub policy: RetryPolicy,
    /// The sink-wide `Retry-After` hold.
    pub throttle: Throttle,
    /// The sink's counters.
    pub counters: Counters,
}

impl Retrier {
    /// A retrier with `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        Retrier {
            policy,
            ..Default::default()
        }
    }

    /// Runs `op` until it is [`Attempt::Done`], permanent, or out of retry budget. `what`
    /// describes the request for logs (e.g. "request of 120 events").
    pub async fn run<T, F, Fut>(
        &self,
        sink: &'static str,
        what: &str,
        mut op: F,
    ) -> Result<T, SinkError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let started = Instant::now();
        // Checked: the budget comes from a setting.
        let deadline = started
            .checked_add(self.policy.max_elapsed)
            .unwrap_or(started + Duration::from_secs(100 * 365 * 86_400));
        let mut attempt: u32 = 0;
        loop {
            if let Err(until) = self.throttle.wait(deadline).await {
                return Err(SinkError::RetriesExhausted {
                    sink,
                    message: format!(
                        "{what}: the destination asked to wait {:.1}s more (Retry-After), past the retry budget of {:?}",
                        (until - Instant::now()).as_secs_f64(),
                        self.policy.max_elapsed
                    ),
                });
            }
            match op().await {
                Attempt::Done(v) => return Ok(v),
                Attempt::Permanent(message) => {
                    return Err(SinkError::Permanent {
                        sink,
                        message: format!("{what}: {message}"),
                    })
                }
                Attempt::Retry {
                    reason,
                    retry_after,
                    message,
                } => {
                    self.counters.retry(&reason);
                    let now = Instant::now();
                    // The destination's wait is bounded, and every sum is checked: a hostile
                    // `Retry-After` must not overflow an instant.
                    let retry_after = retry_after.map(|d| d.min(MAX_RETRY_AFTER));
                    let next = match retry_after {
                        Some(d) => now.checked_add(d).inspect(|&next| {
                            // Held even when giving up below: the next batch must not reach
                            // the destination before it said either.
                            self.counters.throttled(self.throttle.hold_until(next));
                        }),
                        None => now.checked_add(self.policy.backoff(attempt)),
                    };
                    let Some(next) = next.filter(|n| *n <= deadline) else {
                        return Err(SinkError::RetriesExhausted {
                            sink,
                            message: format!(
                                "{what}: {message} (after {} retries over {:.1}s)",
                                attempt,
                                started.elapsed().as_secs_f64()
                            ),
                        });
                    };
                    tracing::warn!(
                        sink,
                        reason = %reason,
                        attempt = attempt + 1,
                        delay_ms = (next - now).as_millis() as u64,
                        retry_after = retry_after.is_some(),
                        "{what}: {message}; retrying"
                    );
                    // With Retry-After the shared throttle makes every request of this sink,
                    // this one included, wait at the top of its loop.
                    if retry_after.is_none() {
                        tokio::time::sleep_until(next).await;
                    }
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn backoff_is_bounded_and_jittered() {
        let p = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            max_elapsed: Duration::from_secs(10),
        };
        let samples: Vec<_> = (0..200).map(|_| p.backoff(2)).collect();
        assert!(samples.iter().all(|d| *d <= Duration::from_millis(400)));
        // Full jitter: not all the same.
        assert!(samples.iter().any(|d| *d != samples[0]));
        assert!((0..50).all(|_| p.backoff(40) <= Duration::from_secs(1)));
    }

    #[test]
    fn stats_difference() {
        let c = Counters::default();
        c.sent(10, 100);
        c.retry("429");
        let a = c.snapshot();
        c.sent(5, 50);
        c.retry("429");
        c.retry("503");
        let d = c.snapshot().since(&a);
        assert_eq!((d.events, d.bytes, d.requests), (5, 50, 1));
        assert_eq!(d.retries.get("429"), Some(&1));
        assert_eq!(d.retries.get("503"), Some(&1));
        assert_eq!(d.total_retries(), 2);
        assert!(d.to_string().contains("retries={429:1,503:1}"), "{d}");
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_permanent_ones_are_not() {
        let r = Retrier::new(RetryPolicy {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            max_elapsed: Duration::from_secs(5),
        });
        let mut n = 0;
        let v = r
            .run("test", "op", || {
                n += 1;
                let k = n;
                async move {
                    if k < 3 {
                        Attempt::Retry {
                            reason: "500".into(),
                            retry_after: None,
                            message: "boom".into(),
                        }
                    } else {
                        Attempt::Done(k)
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!(v, 3);
        assert_eq!(r.counters.snapshot().retries.get("500"), Some(&2));
        let e = r
            .run("test", "op", || async {
                Attempt::<()>::Permanent("400 bad".into())
            })
            .await
            .unwrap_err();
        assert!(matches!(e, SinkError::Permanent { .. }), "{e}");
    }

    #[tokio::test]
    async fn gives_up_after_max_elapsed() {
        let r = Retrier::new(RetryPolicy {
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(20),
            max_elapsed: Duration::from_millis(200),
        });
        let t = Instant::now();
        let e = r
            .run("test", "op", || async {
                Attempt::<()>::Retry {
                    reason: "503".into(),
                    retry_after: None,
                    message: "unavailable".into(),
                }
            })
            .await
            .unwrap_err();
        assert!(matches!(e, SinkError::RetriesExhausted { .. }), "{e}");
        assert!(t.elapsed() <= Duration::from_millis(400));
        // A Retry-After longer than the budget gives up at once instead of sleeping.
        let t = Instant::now();
        let e = r
            .run("test", "op", || async {
                Attempt::<()>::Retry {
                    reason: "429".into(),
                    retry_after: Some(Duration::from_secs(60)),
                    message: "slow down".into(),
                }
            })
            .await
            .unwrap_err();
        assert!(e.to_string().contains("429") || e.to_string().contains("slow down"));
        assert!(t.elapsed() < Duration::from_millis(100));
    }

    #[test]
    fn hostile_retry_after_values_parse_without_panicking() {
        let now = SystemTime::now();
        for v in [
            "1e30",
            "18446744073709551615",
            "1.8e19",
            "1e308",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            let d = parse_retry_after(v, now);
            assert!(
                d.is_some_and(|d| d > Duration::from_secs(1_000_000)),
                "{v}: {d:?}"
            );
        }
        for v in ["NaN", "inf", "-1e30", "99999999999999999999999"] {
            // Not a delay (or not representable as one): ignored, the normal backoff applies.
            let _ = parse_retry_after(v, now);
        }
    }

    #[tokio::test]
    async fn hostile_retry_after_neither_panics_nor_waits_past_the_budget() {
        let r = Retrier::new(RetryPolicy {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(50),
            max_elapsed: Duration::from_secs(5),
        });
        for asked in [
            Duration::MAX,
            Duration::from_secs(u64::MAX),
            Duration::from_secs(1 << 40),
        ] {
            let t = Instant::now();
            let e = r
                .run("test", "op", || async move {
                    Attempt::<()>::Retry {
                        reason: "503".into(),
                        retry_after: Some(asked),
                        message: "unavailable".into(),
                    }
                })
                .await
                .unwrap_err();
            assert!(matches!(e, SinkError::RetriesExhausted { .. }), "{e}");
            assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
            // The hold it leaves on the sink is the cap, not what was asked.
            let held = r.throttle.closed_until().unwrap() - Instant::now();
            assert!(held <= MAX_RETRY_AFTER, "{held:?}");
        }
    }

    #[tokio::test]
    async fn retry_after_holds_every_request() {
        let r = std::sync::Arc::new(Retrier::new(RetryPolicy::default()));
        let held = r
            .throttle
            .hold_until(Instant::now() + Duration::from_millis(300));
        r.counters.throttled(held);
        let t = Instant::now();
        let v = r
            .run("test", "op", || async { Attempt::Done(1) })
            .await
            .unwrap();
        assert_eq!(v, 1);
        assert!(
            t.elapsed() >= Duration::from_millis(290),
            "{:?}",
            t.elapsed()
        );
        assert!(r.counters.snapshot().throttled_secs >= 0.29);
    }
}
