//! The webhook sink against a real HTTP receiver (axum on 127.0.0.1:0 inside the test):
//! Retry-After, 5xx retries, 413 splits and the byte cap, HMAC, gzip, formats, permanent
//! errors, and the `process` CLI sending to a webhook.
mod common;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use mde_relay::sink::retry::RetryPolicy;
use mde_relay::sink::webhook::{WebhookConfig, WebhookFormat, WebhookSink};
use mde_relay::sink::{Batch, EventId, Sink, SinkError};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// One request as the receiver saw it.
#[derive(Clone)]
struct Seen {
    at: Instant,
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

/// Decides the answer to request number `n` (0-based) with `body`.
type Behavior = dyn Fn(usize, &HeaderMap, &Bytes) -> Answer + Send + Sync;

struct Answer {
    status: u16,
    retry_after: Option<String>,
    delay: Duration,
}

fn ok() -> Answer {
    status(200)
}

fn status(status: u16) -> Answer {
    Answer {
        status,
        retry_after: None,
        delay: Duration::ZERO,
    }
}

#[derive(Clone)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    behavior: Arc<Behavior>,
}

async fn handle(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    let at = Instant::now();
    let n = r.seen.lock().unwrap().len();
    let a = (r.behavior)(n, &headers, &body);
    r.seen.lock().unwrap().push(Seen {
        at,
        status: a.status,
        headers,
        body,
    });
    tokio::time::sleep(a.delay).await;
    let mut resp = (StatusCode::from_u16(a.status).unwrap(), "answer").into_response();
    if let Some(ra) = a.retry_after {
        resp.headers_mut()
            .insert("retry-after", ra.parse().unwrap());
    }
    resp
}

/// Starts a receiver; returns its URL and what it saw.
async fn receiver(
    behavior: impl Fn(usize, &HeaderMap, &Bytes) -> Answer + Send + Sync + 'static,
) -> (url::Url, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let state = Receiver {
        seen: seen.clone(),
        behavior: Arc::new(behavior),
    };
    let app = axum::Router::new()
        .route("/in", axum::routing::post(handle))
        .layer(DefaultBodyLimit::disable())
        .with_state(state);
    let addr = common::http::spawn(app).await;
    (url::Url::parse(&format!("http://{addr}/in")).unwrap(), seen)
}

/// Pseudo-random text (compresses about as badly as real GUIDs and hashes do).
fn noise(seed: u64, len: usize) -> String {
    common::noise(seed, len, b"0123456789abcdefghijklmnopqrstuvwxyz ,:")
}

/// `n` events of about `size` bytes each, with distinct ids and a sequence number `seq`.
fn events(n: usize, size: usize) -> Batch {
    let mut b = Batch::new();
    for i in 0..n {
        let id = format!("{:032x}", 0xabc0_0000_u64 + i as u64);
        let mut idb = [0u8; 32];
        idb.copy_from_slice(id.as_bytes());
        let pad = noise(i as u64, size.saturating_sub(120));
        let json = format!(
            r#"{{"schema":"mde-relay/v1","id":"{id}","seq":{i},"table":"DeviceProcessEvents","properties":{{"FileName":"cmd.exe","pad":"{pad}"}}}}"#
        );
        b.push_json(
            EventId(idb),
            "DeviceProcessEvents".into(),
            Some(1_767_225_600.25 + i as f64),
            json.as_bytes(),
        );
    }
    b
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_elapsed: Duration::from_secs(20),
    }
}

fn config(url: url::Url) -> WebhookConfig {
    let mut c = WebhookConfig::new(url);
    c.retry = fast_retries();
    c.timeout = Duration::from_secs(10);
    c
}

/// The body as the receiver got it, gunzipped when so encoded.
fn decoded(s: &Seen) -> Vec<u8> {
    if s.headers
        .get("content-encoding")
        .is_some_and(|v| v == "gzip")
    {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&s.body[..])
            .read_to_end(&mut out)
            .expect("gzip body decodes");
        out
    } else {
        s.body.to_vec()
    }
}

/// The `seq` numbers of the events in an NDJSON body, in order.
fn seqs(body: &[u8]) -> Vec<u64> {
    body.split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).expect("each line is JSON");
            v["seq"].as_u64().expect("seq")
        })
        .collect()
}

/// The `seq` numbers of every accepted (2xx) request, request by request.
fn accepted(seen: &Mutex<Vec<Seen>>) -> Vec<Vec<u64>> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|s| s.status / 100 == 2)
        .map(|s| seqs(&decoded(s)))
        .collect()
}

/// Every request's events are consecutive and increasing; together they are each event once.
fn assert_each_once(reqs: &[Vec<u64>], n: u64) {
    for r in reqs {
        assert!(
            r.windows(2).all(|w| w[1] == w[0] + 1),
            "events within a request are out of order: {r:?}"
        );
    }
    let mut all: Vec<u64> = reqs.iter().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..n).collect::<Vec<_>>(), "lost or duplicated events");
}

#[tokio::test]
async fn retry_after_holds_every_request_then_all_events_arrive() {
    // First request: 429, Retry-After 2. Requests already in flight meanwhile are slow
    // successes, so the sink's other slots free up only after it has seen the 429.
    let (url, seen) = receiver(|n, _, _| match n {
        0 => Answer {
            status: 429,
            retry_after: Some("2".into()),
            delay: Duration::ZERO,
        },
        1..=3 => Answer {
            delay: Duration::from_millis(300),
            ..ok()
        },
        _ => ok(),
    })
    .await;
    let mut c = config(url);
    c.concurrency = 4;
    c.max_bytes = 20_000;
    let sink = WebhookSink::new(c).unwrap();
    let b = events(200, 1500);
    let started = Instant::now();
    sink.send(&b).await.unwrap();
    let took = started.elapsed();

    let s = seen.lock().unwrap().clone();
    let t429 = s[0].at;
    assert_eq!(s[0].status, 429);
    for (i, r) in s.iter().enumerate().skip(4) {
        assert!(
            r.at >= t429 + Duration::from_secs(2),
            "request {i} arrived {:?} after the 429, before Retry-After expired",
            r.at - t429
        );
    }
    assert!(s.len() > 10, "expected many requests, got {}", s.len());
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_each_once(&accepted(&seen), 200);
    let st = sink.stats();
    assert_eq!(st.retries.get("429"), Some(&1));
    assert!(
        (1.9..2.5).contains(&st.throttled_secs),
        "throttled {}",
        st.throttled_secs
    );
    assert_eq!(st.events, 200);
}

#[tokio::test]
async fn retry_after_as_http_date_is_honoured() {
    let (url, seen) = receiver(|n, _, _| match n {
        0 => Answer {
            status: 503,
            retry_after: Some(httpdate::fmt_http_date(
                std::time::SystemTime::now() + Duration::from_secs(2),
            )),
            delay: Duration::ZERO,
        },
        _ => ok(),
    })
    .await;
    let mut c = config(url);
    c.concurrency = 1;
    let sink = WebhookSink::new(c).unwrap();
    sink.send(&events(10, 500)).await.unwrap();
    let s = seen.lock().unwrap().clone();
    assert_eq!(s.len(), 2);
    // An HTTP date has whole seconds: at least one full second must pass, up to two.
    assert!(
        s[1].at - s[0].at >= Duration::from_secs(1),
        "{:?}",
        s[1].at - s[0].at
    );
    assert_each_once(&accepted(&seen), 10);
}

#[tokio::test]
async fn three_500s_then_every_event_in_order() {
    let (url, seen) = receiver(|n, _, _| if n < 3 { status(500) } else { ok() }).await;
    let mut c = config(url);
    c.concurrency = 1;
    c.max_bytes = 50_000;
    let sink = WebhookSink::new(c).unwrap();
    sink.send(&events(300, 1500)).await.unwrap();
    let reqs = accepted(&seen);
    let flat: Vec<u64> = reqs.iter().flatten().copied().collect();
    assert_eq!(flat, (0..300).collect::<Vec<_>>(), "order or completeness");
    let st = sink.stats();
    assert_eq!(st.retries.get("500"), Some(&3));
    assert_eq!(st.events, 300);
    // The retried request carried the same batch id every time.
    let s = seen.lock().unwrap();
    let ids: Vec<_> = s[..4]
        .iter()
        .map(|r| r.headers["x-relay-batch-id"].clone())
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
}

/// A receiver refusing bodies over 100 KB with 413.
fn limited(limit: usize) -> impl Fn(usize, &HeaderMap, &Bytes) -> Answer + Send + Sync {
    move |_, _, body| {
        if body.len() > limit {
            status(413)
        } else {
            ok()
        }
    }
}

#[tokio::test]
async fn cap_holds_on_bytes_as_sent_in_every_format() {
    const LIMIT: usize = 100_000;
    for format in [
        WebhookFormat::Ndjson,
        WebhookFormat::Json,
        WebhookFormat::SplunkHec,
    ] {
        for gzip in [false, true] {
            let (url, seen) = receiver(limited(LIMIT)).await;
            let mut c = config(url);
            c.format = format;
            c.gzip = gzip;
            c.max_bytes = LIMIT;
            c.max_events = 10_000;
            let sink = WebhookSink::new(c).unwrap();
            let b = events(2000, 1500);
            sink.send(&b).await.unwrap();
            let s = seen.lock().unwrap().clone();
            let what = format!("{format:?} gzip={gzip}");
            assert!(s.iter().all(|r| r.status == 200), "{what}: a 413 happened");
            assert!(s.iter().all(|r| r.body.len() <= LIMIT), "{what}");
            // Greedy packing: requests are not tiny.
            let total: usize = s.iter().map(|r| r.body.len()).sum();
            assert!(
                total / s.len() > LIMIT / 2,
                "{what}: average {}",
                total / s.len()
            );
            let mut reqs = Vec::new();
            for r in &s {
                let body = decoded(r);
                let seq = match format {
                    WebhookFormat::Ndjson => seqs(&body),
                    WebhookFormat::Json => {
                        let v: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
                        v.iter().map(|e| e["seq"].as_u64().unwrap()).collect()
                    }
                    WebhookFormat::SplunkHec => body
                        .split(|&c| c == b'\n')
                        .filter(|l| !l.is_empty())
                        .map(|l| {
                            let v: serde_json::Value = serde_json::from_slice(l).unwrap();
                            assert_eq!(v["sourcetype"], "DeviceProcessEvents");
                            let seq = v["event"]["seq"].as_u64().unwrap();
                            assert_eq!(v["time"].as_f64().unwrap(), 1_767_225_600.25 + seq as f64);
                            seq
                        })
                        .collect(),
                };
                reqs.push(seq);
                let ct = r.headers["content-type"].to_str().unwrap().to_string();
                let want = if format == WebhookFormat::Ndjson {
                    "application/x-ndjson"
                } else {
                    "application/json"
                };
                assert_eq!(ct, want);
            }
            assert_each_once(&reqs, 2000);
        }
    }
}

#[tokio::test]
async fn a_413_splits_requests_without_losing_or_reordering() {
    const LIMIT: usize = 100_000;
    for gzip in [false, true] {
        let (url, seen) = receiver(limited(if gzip { 10_000 } else { LIMIT })).await;
        let mut c = config(url);
        c.concurrency = 1;
        c.gzip = gzip;
        c.max_bytes = 1_000_000; // above the receiver's limit: it must answer 413
        c.max_events = 10_000;
        let sink = WebhookSink::new(c).unwrap();
        sink.send(&events(1000, 1500)).await.unwrap();
        // A second batch starts below the limit learned from the 413s.
        let before = seen.lock().unwrap().len();
        let b2 = events(300, 1500);
        sink.send(&b2).await.unwrap();
        let s = seen.lock().unwrap().clone();
        assert!(s.iter().any(|r| r.status == 413), "gzip={gzip}");
        assert!(
            s[before..].iter().all(|r| r.status == 200),
            "gzip={gzip}: the learned limit did not stick"
        );
        let ok: Vec<_> = s.iter().filter(|r| r.status == 200).collect();
        assert!(ok
            .iter()
            .all(|r| r.body.len() <= if gzip { 10_000 } else { LIMIT }));
        let flat: Vec<u64> = ok
            .iter()
            .take_while(|r| r.at < s[before].at)
            .flat_map(|r| seqs(&decoded(r)))
            .collect();
        assert_eq!(flat, (0..1000).collect::<Vec<_>>(), "gzip={gzip}");
        assert!(sink.stats().splits > 0);
    }
}

#[tokio::test]
async fn an_oversize_event_is_sent_alone_and_a_413_for_it_is_permanent() {
    let (url, seen) = receiver(limited(1_000_000)).await;
    let mut c = config(url);
    c.max_bytes = 10_000;
    c.concurrency = 1;
    let sink = WebhookSink::new(c).unwrap();
    let mut b = events(5, 1500);
    let big = events(6, 50_000);
    b.push_json(
        big.items()[5].id,
        "DeviceProcessEvents".into(),
        None,
        big.event(5),
    );
    sink.send(&b).await.unwrap();
    let reqs = accepted(&seen);
    assert_eq!(reqs.last().unwrap(), &vec![5]);
    assert_eq!(sink.stats().oversize, 1);

    // The same event to a receiver whose limit it exceeds even alone.
    let (url, _) = receiver(limited(20_000)).await;
    let mut c = config(url);
    c.max_bytes = 10_000;
    let sink = WebhookSink::new(c).unwrap();
    let e = sink.send(&b).await.unwrap_err();
    assert!(matches!(e, SinkError::Permanent { .. }), "{e}");
    assert!(e.to_string().contains(big.items()[5].id.as_str()), "{e}");
}

#[tokio::test]
async fn signatures_verify_and_headers_arrive() {
    let secret = "s3cret-key";
    let (url, seen) = receiver(|n, _, _| if n == 0 { status(503) } else { ok() }).await;
    let mut c = config(url);
    c.secret = Some(secret.as_bytes().to_vec());
    c.gzip = true;
    c.headers =
        mde_relay::sink::webhook::parse_headers("Authorization: Splunk tok-123;X-Source: relay")
            .unwrap();
    c.max_bytes = 30_000;
    c.concurrency = 1;
    let sink = WebhookSink::new(c).unwrap();
    let b = events(100, 1500);
    sink.send(&b).await.unwrap();
    let s = seen.lock().unwrap().clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for r in &s {
        let sig = r.headers["x-relay-signature"].to_str().unwrap();
        let (t, v1) = sig
            .strip_prefix("t=")
            .and_then(|x| x.split_once(",v1="))
            .expect("t=<unix>,v1=<hex>");
        let t: u64 = t.parse().unwrap();
        assert!(now.abs_diff(t) < 300);
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(&r.body); // the body as sent: compressed
        mac.verify_slice(&hex::decode(v1).unwrap())
            .expect("signature verifies");
        assert_eq!(r.headers["authorization"], "Splunk tok-123");
        assert_eq!(r.headers["x-source"], "relay");
        assert_eq!(r.headers["content-encoding"], "gzip");
        assert_eq!(r.headers["x-relay-batch-id"].len(), 32);
    }
    // A tampered body does not verify.
    let r = &s[1];
    let sig = r.headers["x-relay-signature"].to_str().unwrap();
    let (t, v1) = sig[2..].split_once(",v1=").unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&r.body[1..]);
    assert!(mac.verify_slice(&hex::decode(v1).unwrap()).is_err());

    // Batch ids: the 503'd request and its retry share one; different requests differ; the
    // same batch sent again gets the same ids.
    assert_eq!(
        s[0].headers["x-relay-batch-id"],
        s[1].headers["x-relay-batch-id"]
    );
    let first: Vec<_> = s[1..]
        .iter()
        .map(|r| r.headers["x-relay-batch-id"].clone())
        .collect();
    let mut uniq = first.clone();
    uniq.dedup();
    assert_eq!(uniq.len(), first.len());
    sink.send(&b).await.unwrap();
    let again: Vec<_> = seen.lock().unwrap()[s.len()..]
        .iter()
        .map(|r| r.headers["x-relay-batch-id"].clone())
        .collect();
    assert_eq!(first, again);
    assert_each_once(&accepted(&seen)[..first.len()], 100);
}

#[tokio::test]
async fn a_400_is_permanent_and_not_retried() {
    let (url, seen) = receiver(|_, _, _| status(400)).await;
    let sink = WebhookSink::new(config(url)).unwrap();
    let e = sink.send(&events(3, 200)).await.unwrap_err();
    assert!(matches!(e, SinkError::Permanent { .. }), "{e}");
    assert!(e.to_string().contains("400"), "{e}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_retried_within_the_budget() {
    // First request hangs past the timeout, then the receiver answers.
    let (url, seen) = receiver(|n, _, _| Answer {
        delay: if n == 0 {
            Duration::from_secs(4)
        } else {
            Duration::ZERO
        },
        ..ok()
    })
    .await;
    let mut c = config(url);
    c.timeout = Duration::from_secs(1);
    let sink = WebhookSink::new(c).unwrap();
    sink.send(&events(5, 200)).await.unwrap();
    assert_eq!(sink.stats().retries.get("timeout"), Some(&1));
    assert_eq!(seen.lock().unwrap().len(), 2);

    // Nothing listening: retried until the budget runs out, then a non-permanent error.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut c = config(url::Url::parse(&format!("http://127.0.0.1:{port}/in")).unwrap());
    c.retry.max_elapsed = Duration::from_millis(400);
    let sink = WebhookSink::new(c).unwrap();
    let t = Instant::now();
    let e = sink.send(&events(2, 200)).await.unwrap_err();
    assert!(matches!(e, SinkError::RetriesExhausted { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(sink.stats().retries.get("connection").copied().unwrap_or(0) >= 1);
}

/// Export rows of DeviceProcessEvents, `n` of them, CRLF-terminated.
fn export_rows(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            r#"{{"time":"2026-01-01T00:00:{:02}.0000000Z","tenantId":"11111111-2222-3333-4444-555555555555","operationName":"Publish","category":"AdvancedHunting-DeviceProcessEvents","properties":{{"Timestamp":"2026-01-01T00:00:00.123Z","DeviceId":"d{i}","DeviceName":"host{i}","ActionType":"ProcessCreated","FileName":"cmd.exe","ReportId":{}}},"Tenant":"DefaultTenant"}}"#,
            i % 60,
            1000 + i
        ));
        s.push_str("\r\n");
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_cli_sends_to_a_webhook_with_flags() {
    let (mut url, seen) = receiver(|n, _, _| if n == 0 { status(503) } else { ok() }).await;
    url.set_query(Some("token=hunter2"));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("PT1H.json");
    std::fs::write(&input, export_rows(250)).unwrap();
    let dir_path = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_mde-relay"))
            .current_dir(&dir_path)
            .env_remove("RELAY_SINK")
            .env("RELAY_WEBHOOK_FORMAT", "json") // env fallback for a flag not given
            .args(["process", input.to_str().unwrap(), "--sink", "webhook"])
            .args(["--webhook-url", url.as_str(), "--batch-max-events", "100"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let s: Vec<Seen> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.status == 200)
        .cloned()
        .collect();
    assert_eq!(s.len(), 3, "250 events in batches of 100");
    let mut ids = Vec::new();
    for r in &s {
        let v: Vec<serde_json::Value> = serde_json::from_slice(&r.body).expect("JSON array");
        ids.extend(v.iter().map(|e| e["report_id"].to_string()));
    }
    // Batches are in flight at once (pipelined delivery): they may arrive in any order.
    let mut ids: Vec<u64> = ids.iter().map(|i| i.parse().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1000..1250).collect::<Vec<u64>>());
    assert!(stderr.contains("sink webhook: events=250"), "{stderr}");
    // The retry is logged (to stderr) with its reason, never with the URL's token.
    assert!(
        stderr.contains("retrying") && stderr.contains("503"),
        "{stderr}"
    );
    assert!(stderr.contains("retries={503:1}"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn process_cli_refuses_bad_sink_settings_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("rows.json");
    std::fs::write(&input, export_rows(1)).unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_mde-relay"));
        c.current_dir(dir.path())
            .arg("process")
            .arg(&input)
            .args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let (code, err) = run(
        &[
            "--sink",
            "webhook",
            "--webhook-url",
            "http://example.com/in?token=hunter2",
        ],
        &[],
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains(
            "RELAY_WEBHOOK_URL (--webhook-url) must be https (http is allowed only for loopback)"
        ),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    let (code, err) = run(
        &[],
        &[
            ("RELAY_SINK", "webhook"),
            ("RELAY_WEBHOOK_URL", "http://127.0.0.1:1/"),
            ("RELAY_WEBHOOK_GZIP", "maybe"),
        ],
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains("RELAY_WEBHOOK_GZIP (--webhook-gzip) must be true or false"),
        "{err}"
    );
    let (code, err) = run(&["--sink", "queue"], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("RELAY_QUEUE_NAME"), "{err}");
}

#[tokio::test]
async fn concurrency_caps_requests_in_flight_across_concurrent_sends() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    let (n2, m2, t2) = (now.clone(), max.clone(), total.clone());
    let app = axum::Router::new()
        .route(
            "/in",
            axum::routing::post(move || {
                let (now, max, total) = (n2.clone(), m2.clone(), t2.clone());
                async move {
                    let cur = now.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(cur, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    total.fetch_add(1, Ordering::SeqCst);
                    "ok"
                }
            }),
        )
        .layer(DefaultBodyLimit::disable());
    let addr = common::http::spawn(app).await;
    let mut c = config(url::Url::parse(&format!("http://{addr}/in")).unwrap());
    c.concurrency = 2;
    c.max_events = 10;
    let sink = WebhookSink::new(c).unwrap();
    let (a, b) = (events(60, 300), events(60, 300));
    let (ra, rb) = tokio::join!(sink.send(&a), sink.send(&b));
    ra.unwrap();
    rb.unwrap();
    assert_eq!(total.load(Ordering::SeqCst), 12);
    assert_eq!(max.load(Ordering::SeqCst), 2, "requests in flight");
}
