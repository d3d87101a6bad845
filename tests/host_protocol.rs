//! The handler against what the real Functions host does (platform facts §3a): the host's exact
//! request bodies, its deadline (an invocation that outlives `functionTimeout` kills the worker),
//! the answers it accepts (a 2xx must be a JSON object), where failures must show (stderr lines
//! containing "error"; the body of a non-2xx answer is never read), and the exit codes it
//! restarts a worker on. The real `mde-relay serve` binary, Azurite, and local HTTP receivers.

mod common;
mod relay;

use relay::{event_ids, rows, Env, Relay};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// A slow webhook receiver
// ---------------------------------------------------------------------------------------------

/// Event ids received, in arrival order, and how many requests arrived.
#[derive(Default)]
struct Received {
    ids: Vec<String>,
    requests: usize,
}

/// A local NDJSON webhook receiver that takes `delay` per request and then answers `status`.
/// Returns its URL and what it received.
async fn receiver(delay: Duration, status: u16) -> (String, Arc<Mutex<Received>>) {
    use axum::routing::post;
    let seen = Arc::new(Mutex::new(Received::default()));
    let s2 = seen.clone();
    let app = axum::Router::new().route(
        "/ingest",
        post(move |body: axum::body::Bytes| {
            let seen = s2.clone();
            async move {
                seen.lock().unwrap().requests += 1;
                tokio::time::sleep(delay).await;
                if status == 200 {
                    let mut s = seen.lock().unwrap();
                    for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                        let v: Value = serde_json::from_slice(line).expect("NDJSON event");
                        s.ids.push(v["id"].as_str().unwrap().to_string());
                    }
                }
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let port = common::http::spawn(app).await.port();
    (format!("http://127.0.0.1:{port}/ingest"), seen)
}

/// A BlobCreated invocation for `blob` in `container` (queue trigger, Event Grid schema).
fn blob_created_for(container: &str, blob: &str) -> Value {
    let url = format!("{}/{container}/{blob}", common::blob_endpoint());
    let ev = relay::blob_created_event(&url, container, blob, 0).to_string();
    relay::queue_invocation(&ev)
}

/// Creates an append blob holding `data` in `container`.
async fn put_blob(env: &Env, container: &str, blob: &str, data: &[u8]) {
    use azure_core::http::RequestContent;
    let c = env.svc.blob_client(container, blob).append_blob_client();
    c.create(None).await.expect("create append blob");
    for part in data.chunks(4 << 20) {
        c.append_block(RequestContent::from(part.to_vec()), part.len() as u64, None)
            .await
            .expect("append block");
    }
}

async fn create_container(env: &Env, name: &str) {
    env.svc
        .blob_container_client(name)
        .create(None)
        .await
        .expect("create container");
}

// ---------------------------------------------------------------------------------------------
// 1. Every wait is bounded by the invocation's deadline
// ---------------------------------------------------------------------------------------------

/// One drain slot, a slow sink (each request takes longer than an invocation's deadline): while
/// the first invocation holds the slot, a second one waits for it only until its own deadline,
/// answers 200 in time without touching its blob (no checkpoint), and Tail delivers that blob
/// completely later.
#[tokio::test(flavor = "multi_thread")]
async fn an_invocation_waiting_for_a_drain_slot_answers_before_its_deadline() {
    const DEADLINE: Duration = Duration::from_secs(2);
    const SINK_DELAY: Duration = Duration::from_secs(3);
    let env = Env::new().await;
    let (url, seen) = receiver(SINK_DELAY, 200).await;
    let relay = Relay::start(
        &env,
        &[
            ("RELAY_DRAIN_CONCURRENCY", "1"),
            ("RELAY_MAX_DRAIN_TIME", "2s"),
            ("RELAY_SINK", "webhook"),
            ("RELAY_WEBHOOK_URL", &url),
            ("RELAY_BATCH_MAX_EVENTS", "10"),
        ],
    )
    .await;
    // Two blobs of the current hour (so Tail's listing finds the one nobody started), in two
    // export containers.
    let hour = chrono::Utc::now().format("%Y/%m/%d/%H").to_string();
    let blob = Env::blob_name(&hour);
    let second = format!("{}devicefileevents", env.prefix);
    create_container(&env, &second).await;
    let (a, a_ids) = rows(0..40, 20); // 4 batches of 3 s each
    let (b, b_ids) = rows(1000..1010, 20);
    put_blob(&env, &env.container, &blob, &a).await;
    put_blob(&env, &second, &blob, &b).await;

    let first = {
        let body = blob_created_for(&env.container, &blob);
        let port = relay.port;
        tokio::spawn(async move {
            let started = Instant::now();
            let r = reqwest::Client::new()
                .post(format!("http://127.0.0.1:{port}/BlobCreated"))
                .header("Content-Type", "application/json")
                .header("X-Azure-Functions-InvocationId", "first")
                .body(body.to_string())
                .send()
                .await
                .expect("first invocation");
            (r.status().as_u16(), started.elapsed())
        })
    };
    // The first invocation holds the only slot once its first batch reached the sink.
    let t0 = Instant::now();
    while seen.lock().unwrap().requests == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the first drain never reached the sink:\n{}",
            relay.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let (st, body) = relay
        .invoke("BlobCreated", &blob_created_for(&second, &blob))
        .await;
    let took = started.elapsed();
    assert_eq!(
        st,
        200,
        "left to Tail, not failed: {body}\n{}",
        relay.logs()
    );
    assert!(
        took < DEADLINE + Duration::from_secs(2),
        "the second invocation answered after {took:?}; its deadline was {DEADLINE:?}"
    );
    assert!(
        relay
            .logs()
            .contains("no drain slot came free before the deadline"),
        "{}",
        relay.logs()
    );
    // Its blob was not started: no checkpoint.
    let state = env.download_all(&env.state).await;
    assert!(
        !state
            .iter()
            .any(|(n, _)| n.starts_with(&format!("cp/{second}/"))),
        "the deferred blob has no checkpoint: {:?}",
        state.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    // The first invocation answers once the batch in flight is acknowledged (well within
    // SEND_GRACE of its deadline), successfully.
    let (st, took) = first.await.unwrap();
    assert_eq!(st, 200, "{}", relay.logs());
    assert!(
        took < SINK_DELAY + Duration::from_secs(3),
        "first invocation took {took:?}"
    );

    // Tail (bounded by the same deadline) delivers the rest of the first blob and the second.
    let mut want: Vec<String> = a_ids.iter().chain(&b_ids).cloned().collect();
    want.sort();
    let t0 = Instant::now();
    loop {
        let (st, _) = relay.tail().await;
        assert_eq!(st, 200, "{}", relay.logs());
        let mut got = seen.lock().unwrap().ids.clone();
        got.sort();
        got.dedup();
        if got == want {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "not delivered: {} of {} events\n{}",
            got.len(),
            want.len(),
            relay.logs()
        );
    }
    let ids = seen.lock().unwrap().ids.clone();
    assert_eq!(ids.len(), want.len(), "every event exactly once");
}

// ---------------------------------------------------------------------------------------------
// 2./3. Answers: 2xx is always a JSON object; every failure is one stderr line with "error"
// ---------------------------------------------------------------------------------------------

/// One request as the host sends it; returns status, content type and body text.
async fn send(
    port: u16,
    method: reqwest::Method,
    path: &str,
    body: Option<String>,
) -> (u16, String, String) {
    let mut req = reqwest::Client::new()
        .request(method, format!("http://127.0.0.1:{port}{path}"))
        .header("X-Azure-Functions-InvocationId", "walk")
        .timeout(Duration::from_secs(120));
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json; charset=utf-8")
            .body(b);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, r.text().await.unwrap_or_default())
}

fn error_lines(relay: &Relay) -> Vec<String> {
    relay
        .stderr()
        .lines()
        .filter(|l| l.to_lowercase().contains("error"))
        .map(str::to_string)
        .collect()
}

/// Every route and outcome: each 2xx answer is a JSON object with `Content-Type:
/// application/json` (invocations: `Outputs`, `Logs`, `ReturnValue`); each non-2xx answer adds
/// exactly one stderr line containing "error" and its reason.
#[tokio::test(flavor = "multi_thread")]
async fn every_route_and_outcome_answers_as_the_host_expects() {
    use reqwest::Method;
    let env = Env::new().await;
    let relay = Relay::start(&env, &[("RELAY_MAX_REQUEST_BYTES", "64KiB")]).await;
    let port = relay.port;
    let blob = Env::blob_name("2026/01/01/00");
    let (data, ids) = rows(0..5, 10);
    env.create_append(&blob).await;
    env.append(&blob, &data).await;
    let ev = |url: &str, ty: &str| {
        let mut e = relay::blob_created_event(url, &env.container, &blob, 0);
        e["eventType"] = Value::String(ty.into());
        relay::queue_invocation(&e.to_string()).to_string()
    };
    let created = "Microsoft.Storage.BlobCreated";
    let timer = relay::timer_invocation().to_string();
    let missing = env.url(&Env::blob_name("2026/01/01/05"));
    let foreign = "https://elsewhere.blob.core.windows.net/c/b";

    // (what, method, path, body, expected status, reason expected in the stderr line)
    type Case<'a> = (&'a str, Method, &'a str, Option<String>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("readiness ping", Method::GET, "/", None, 200, ""),
        (
            "drain",
            Method::POST,
            "/BlobCreated",
            Some(ev(&env.url(&blob), created)),
            200,
            "",
        ),
        (
            "up to date",
            Method::POST,
            "/BlobCreated",
            Some(ev(&env.url(&blob), created)),
            200,
            "",
        ),
        (
            "missing blob",
            Method::POST,
            "/BlobCreated",
            Some(ev(&missing, created)),
            200,
            "",
        ),
        (
            "other event type",
            Method::POST,
            "/BlobCreated",
            Some(ev(&env.url(&blob), "Microsoft.Storage.BlobDeleted")),
            200,
            "",
        ),
        (
            "foreign account",
            Method::POST,
            "/BlobCreated",
            Some(ev(foreign, created)),
            200,
            "",
        ),
        ("tail", Method::POST, "/Tail", Some(timer.clone()), 200, ""),
        (
            "tail, empty metadata",
            Method::POST,
            "/Tail",
            Some(r#"{"Data":{"timer":{}},"Metadata":{}}"#.into()),
            200,
            "",
        ),
        (
            "not JSON",
            Method::POST,
            "/BlobCreated",
            Some("not json".into()),
            500,
            "not valid JSON",
        ),
        (
            "no trigger data",
            Method::POST,
            "/BlobCreated",
            Some(r#"{"Data":{},"Metadata":{}}"#.into()),
            500,
            "no trigger data",
        ),
        (
            "not an event",
            Method::POST,
            "/BlobCreated",
            Some(relay::queue_invocation("hello there").to_string()),
            500,
            "binding `message`",
        ),
        (
            "tail, not JSON",
            Method::POST,
            "/Tail",
            Some("{".into()),
            500,
            "not valid JSON",
        ),
        (
            "unknown function",
            Method::POST,
            "/NoSuchFunction",
            Some(timer.clone()),
            404,
            "404",
        ),
        (
            "wrong method",
            Method::GET,
            "/BlobCreated",
            None,
            405,
            "405",
        ),
        (
            "body over the limit",
            Method::POST,
            "/BlobCreated",
            Some(format!(
                "{{\"Data\":{{\"message\":\"{}\"}}}}",
                "x".repeat(100_000)
            )),
            413,
            "413",
        ),
    ];
    for (what, method, path, body, want, reason) in cases {
        let before = error_lines(&relay).len();
        let (status, ct, text) = send(port, method.clone(), path, body).await;
        assert_eq!(status, want, "{what}: {text}\n{}", relay.logs());
        let after = error_lines(&relay);
        if (200..300).contains(&status) {
            assert!(
                ct.starts_with("application/json"),
                "{what}: 2xx with Content-Type {ct:?}"
            );
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{what}: 2xx body is not JSON ({e}): {text:?}"));
            assert!(v.is_object(), "{what}: 2xx body is not an object: {text}");
            if path != "/" {
                assert_eq!(v["Outputs"], serde_json::json!({}), "{what}");
                assert_eq!(v["Logs"], serde_json::json!([]), "{what}");
                assert!(v.as_object().unwrap().contains_key("ReturnValue"), "{what}");
            }
            assert_eq!(after.len(), before, "{what}: success wrote an error line");
        } else {
            assert_eq!(
                after.len(),
                before + 1,
                "{what}: a failed answer writes exactly one stderr error line:\n{}",
                relay.stderr()
            );
            let line = &after[before];
            assert!(
                line.contains(reason) && line.contains(path.trim_start_matches('/')),
                "{what}: the stderr line names the request and the reason ({reason}): {line}"
            );
        }
    }
    assert_eq!(event_ids(&env.events_path()).0, ids, "drained once");
}

/// A drain that fails (the sink refuses the batch) fails the invocation, which writes one
/// stderr error line with the reason; the SAS signature in the sink URL reaches neither stream.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_drain_writes_one_redacted_error_line_to_stderr() {
    let env = Env::new().await;
    let (url, _) = receiver(Duration::ZERO, 400).await;
    let secret = "c2VjcmV0LXNpZ25hdHVyZQ%3D%3D";
    let url = format!("{url}?sv=2024-01-01&sig={secret}");
    let relay = Relay::start(
        &env,
        &[("RELAY_SINK", "webhook"), ("RELAY_WEBHOOK_URL", &url)],
    )
    .await;
    let blob = Env::blob_name("2026/01/01/00");
    env.create_append(&blob).await;
    env.append(&blob, &rows(0..3, 5).0).await;
    let (st, body) = relay
        .invoke("BlobCreated", &blob_created_for(&env.container, &blob))
        .await;
    assert_eq!(st, 500, "{body}");
    let errs = error_lines(&relay);
    assert_eq!(errs.len(), 1, "one line:\n{}", relay.stderr());
    assert!(
        errs[0].contains("BlobCreated") && errs[0].contains("refused a batch"),
        "{}",
        errs[0]
    );
    let all = relay.logs();
    assert!(!all.contains(secret), "the signature leaked:\n{all}");
    // The structured stdout log has it too.
    assert!(
        std::fs::read_to_string(&relay.log)
            .unwrap()
            .lines()
            .any(|l| l.contains("invocation failed") && l.contains("\"error\"")),
        "{all}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. The host's exact payloads (tests/fixtures/host-payloads, from the host's source)
// ---------------------------------------------------------------------------------------------

/// The blob the fixtures' events name, and the export container they name.
const FIXTURE_BLOB: &str =
    "tenantId=11111111-2222-3333-4444-555555555555/y=2026/m=11/d=01/h=10/m=00/PT1H.json";
const FIXTURE_CONTAINER: &str = "insights-logs-advancedhunting-deviceevents";
/// `id` of the event in both queue fixtures (the host also puts it in `Metadata.Id`).
const FIXTURE_EVENT_ID: &str = "831e1650-001e-001b-66ab-eeb76e069631";

/// A fixture with its blob URL pointed at this run's Azurite and its container at `container`.
fn host_payload(name: &str, container: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/host-payloads")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace(
            "http://127.0.0.1:10000/devstoreaccount1",
            &common::blob_endpoint(),
        )
        .replace(FIXTURE_CONTAINER, container)
}

/// Posts `body` byte for byte with the host's headers.
async fn post_as_host(port: u16, function: &str, body: String) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/{function}"))
        .header("Content-Type", "application/json; charset=utf-8")
        .header(
            "X-Azure-Functions-InvocationId",
            "3f6e0c2a-8d4b-4f1e-9b7a-2c5d8e1f4a6b",
        )
        .header("X-Azure-Functions-HostVersion", "4.1037.0.0")
        .header("User-Agent", "Azure-Functions-Host/4.1037.0.0")
        .body(body)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .expect("invocation");
    let st = r.status().as_u16();
    let v = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null);
    (st, v)
}

async fn replay_queue_payload(fixture: &str) {
    let env = Env::new().await;
    let container = format!("{}deviceevents", env.prefix);
    create_container(&env, &container).await;
    let (data, ids) = rows(0..12, 10);
    put_blob(&env, &container, FIXTURE_BLOB, &data).await;
    let relay = Relay::start(&env, &[]).await;
    let (st, body) =
        post_as_host(relay.port, "BlobCreated", host_payload(fixture, &container)).await;
    assert_eq!(st, 200, "{fixture}: {body}\n{}", relay.logs());
    assert_eq!(
        body,
        serde_json::json!({"Outputs":{},"Logs":[],"ReturnValue":null})
    );
    assert_eq!(
        event_ids(&env.events_path()).0,
        ids,
        "{fixture}: the blob is drained\n{}",
        relay.logs()
    );
    // Metadata.Id is the event's id (the host overwrote the queue message id with it): it is
    // logged as the event's id, never as a queue message id.
    let logs = relay.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("BlobCreated invocation"))
        .unwrap_or_else(|| panic!("no invocation line:\n{logs}"));
    let v: Value = serde_json::from_str(line).expect("JSON log line");
    assert!(
        v["event_ids"]
            .as_str()
            .unwrap_or_default()
            .contains(FIXTURE_EVENT_ID),
        "{line}"
    );
    assert_eq!(
        v["span"]["invocation_id"],
        "3f6e0c2a-8d4b-4f1e-9b7a-2c5d8e1f4a6b"
    );
    assert!(
        !logs.to_lowercase().contains("message_id"),
        "nothing is logged as a queue message id:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hosts_event_grid_queue_payload_drains_the_blob() {
    replay_queue_payload("queue-eventgrid.json").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hosts_cloudevents_queue_payload_drains_the_blob() {
    replay_queue_payload("queue-cloudevents.json").await;
}

/// A blob of this hour with 7 rows, and a relay with `settings` that got the host's timer
/// payload (answered 200). Returns the ids of the rows too.
async fn timer_fixture(settings: &[(&str, &str)]) -> (Env, Relay, Vec<String>) {
    let env = Env::new().await;
    let blob = Env::blob_name(&chrono::Utc::now().format("%Y/%m/%d/%H").to_string());
    env.create_append(&blob).await;
    let (data, ids) = rows(0..7, 10);
    env.append(&blob, &data).await;
    let relay = Relay::start(&env, settings).await;
    let (st, body) = post_as_host(relay.port, "Tail", host_payload("timer.json", "-")).await;
    assert_eq!(st, 200, "{body}\n{}", relay.logs());
    assert!(relay.logs().contains("tail run finished"));
    (env, relay, ids)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hosts_timer_payload_runs_tail() {
    let (env, relay, ids) = timer_fixture(&[]).await;
    // Tail dispatches (RELAY_TAIL_MODE=dispatch, the default): it drains nothing itself and
    // puts one drain request on the events queue, which BlobCreated drains.
    assert!(
        relay.logs().contains("\"requests_enqueued\":1"),
        "{}",
        relay.logs()
    );
    assert_eq!(event_ids(&env.events_path()).0, Vec::<String>::new());
    let pumped = relay::pump(&env.queue, &[&relay]).await;
    assert!(pumped.failures.is_empty(), "{:?}", pumped.failures);
    assert_eq!(pumped.per_worker, vec![1], "one drain request");
    assert_eq!(event_ids(&env.events_path()).0, ids, "{}", relay.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hosts_timer_payload_drains_in_tail_mode_drain() {
    let (env, relay, ids) = timer_fixture(&[("RELAY_TAIL_MODE", "drain")]).await;
    assert_eq!(event_ids(&env.events_path()).0, ids, "{}", relay.logs());
}

// ---------------------------------------------------------------------------------------------
// 5. Exit codes
// ---------------------------------------------------------------------------------------------

/// Ctrl-C on a hand-run `serve` stops it cleanly with 0 (SIGTERM, the platform's signal, exits
/// with the restart code: tests/handler.rs `sigterm_stops_cleanly`).
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_a_hand_run_serve_with_0() {
    let env = Env::new().await;
    let mut relay = Relay::start(&env, &[]).await;
    let (st, _) = relay.tail().await;
    assert_eq!(st, 200, "{}", relay.logs());
    let status = relay.interrupt();
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", relay.logs());
    assert!(relay.logs().contains("mde-relay handler stopped"));
}
