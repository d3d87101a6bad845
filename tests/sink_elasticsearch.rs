//! The Elasticsearch sink against a local `_bulk` server written here after the documented Bulk
//! API, for only what a real node cannot be made to do on demand: a 401 `security_exception`
//! (the test node has no security plugin) and a whole-request 429 with `Retry-After` at a
//! chosen request. Everything a real engine does — mappings, 409s, per-item failures, 413,
//! write-pool 429s — is tested against a real OpenSearch node in tests/opensearch.rs.

mod common;
mod http_sink;
mod relay;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use http_sink::{checkpointed, decoded, serve, Blob};
use mde_relay::drain::Outcome;
use mde_relay::sink::elasticsearch::{EsAuth, EsConfig, EsSink};
use mde_relay::sink::retry::RetryPolicy;
use mde_relay::sink::Sink;
use serde_json::{json, Value};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const API_KEY: &str = "aWQ6c2VjcmV0LWFwaS1rZXk=";

/// The in-memory cluster and what the test tells it to do.
#[derive(Default)]
struct Cluster {
    /// (index, id) → document.
    docs: HashMap<(String, String), Value>,
    /// Requests seen.
    requests: usize,
    /// Items answered 409.
    conflicts: usize,
    /// Items answered with a per-item 429.
    throttled: usize,
    /// Whole requests answered 413 / 429.
    too_large: usize,
    whole_429: usize,
    /// Ids already answered once with a per-item 429.
    throttled_once: HashSet<String>,
    /// Ids whose document fails mapping (400 document_parsing_exception).
    bad: HashSet<String>,
    /// Ids to throttle once per item.
    flaky: HashSet<String>,
    /// Largest body (as received) taken before answering 413.
    max_content_length: usize,
    /// Answer the first request with 429 + Retry-After.
    throttle_first: bool,
}

type Shared = Arc<Mutex<Cluster>>;

async fn bulk(State(c): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("ApiKey {API_KEY}") {
        let err = json!({"error":{"root_cause":[],"type":"security_exception","reason":"unable to authenticate with provided credentials and anonymous access is not allowed for this request"},"status":401});
        return (StatusCode::UNAUTHORIZED, axum::Json(err)).into_response();
    }
    let mut guard = c.lock().unwrap();
    // One reborrow, so fields can be borrowed apart.
    let c = &mut *guard;
    c.requests += 1;
    if c.throttle_first && c.requests == 1 {
        c.whole_429 += 1;
        let mut r = (StatusCode::TOO_MANY_REQUESTS, "{}").into_response();
        r.headers_mut().insert("retry-after", "1".parse().unwrap());
        return r;
    }
    if body.len() > c.max_content_length {
        c.too_large += 1;
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/x-ndjson",
        "the Bulk API takes NDJSON"
    );
    let text = decoded(&headers, &body);
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert!(text.ends_with(b"\n"), "a bulk body ends with a newline");
    assert_eq!(lines.len() % 2, 0, "action and source lines pair up");
    let mut items = Vec::new();
    let mut errors = false;
    for pair in lines.chunks(2) {
        let action: Value = serde_json::from_slice(pair[0]).unwrap();
        let doc: Value = serde_json::from_slice(pair[1]).unwrap();
        let create = &action["create"];
        assert!(create.is_object(), "every action is a create: {action}");
        let index = create["_index"].as_str().unwrap().to_string();
        let id = create["_id"].as_str().unwrap().to_string();
        assert_eq!(doc["id"].as_str(), Some(id.as_str()), "_id is the event id");
        assert!(
            doc["@timestamp"].is_string(),
            "@timestamp on every document"
        );
        let item = if c.flaky.contains(&id) && c.throttled_once.insert(id.clone()) {
            c.throttled += 1;
            json!({"_index":index,"_id":id,"status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation"}})
        } else if c.bad.contains(&id) {
            json!({"_index":index,"_id":id,"status":400,"error":{"type":"document_parsing_exception","reason":"[1:120] failed to parse field [properties.ReportId] of type [long]"}})
        } else if let Entry::Vacant(slot) = c.docs.entry((index.clone(), id.clone())) {
            slot.insert(doc);
            json!({"_index":index,"_id":id,"_version":1,"result":"created","status":201})
        } else {
            c.conflicts += 1;
            json!({"_index":index,"_id":id,"status":409,"error":{"type":"version_conflict_engine_exception","reason":format!("[{id}]: version conflict, document already exists (current version [1])")}})
        };
        errors |= item["status"].as_u64().unwrap() >= 300;
        items.push(json!({ "create": item }));
    }
    axum::Json(json!({"took": 3, "errors": errors, "items": items})).into_response()
}

fn cluster(c: Cluster) -> (url::Url, Shared) {
    let shared = Arc::new(Mutex::new(c));
    let app = axum::Router::new()
        .route("/_bulk", axum::routing::post(bulk))
        .layer(DefaultBodyLimit::disable())
        .with_state(shared.clone());
    (serve(app), shared)
}

fn config(url: url::Url, key: &str) -> EsConfig {
    let mut c = EsConfig::new(url);
    c.index = "mde-{table}".into();
    c.auth = EsAuth::ApiKey(key.into());
    c.http.retry = RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_elapsed: Duration::from_secs(30),
    };
    c
}

#[tokio::test]
async fn a_whole_request_429_with_retry_after_is_waited_out() {
    // A real node answers 429 when its queues are full, but never with Retry-After and never
    // at a chosen request: this server throttles the first request whole, with Retry-After.
    let blob = Blob::new(120, 50);
    let (url, state) = cluster(Cluster {
        max_content_length: usize::MAX,
        throttle_first: true,
        ..Cluster::default()
    });
    let sink: Arc<dyn Sink> = Arc::new(EsSink::new(config(url, API_KEY)).unwrap());
    let started = std::time::Instant::now();
    let r = blob.drain(sink.clone(), 50).await.unwrap();
    assert_eq!((r.outcome, r.stats.dead_lettered), (Outcome::Drained, 0));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not waited out"
    );
    let s = state.lock().unwrap();
    assert_eq!((s.whole_429, s.docs.len()), (1, 120));
    assert!(sink.stats().retries.contains_key("429"));
}

#[tokio::test]
async fn a_401_stops_the_drain_with_the_checkpoint_unchanged_and_no_secret_in_the_error() {
    let blob = Blob::new(120, 50);
    let (url, state) = cluster(Cluster {
        max_content_length: usize::MAX,
        ..Cluster::default()
    });
    let wrong = "d3Jvbmc6aHVudGVyMg==";
    let sink: Arc<dyn Sink> = Arc::new(EsSink::new(config(url.clone(), wrong)).unwrap());
    let err = blob.drain(sink, 50).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("401"), "{msg}");
    assert!(msg.contains("security_exception"), "{msg}");
    assert!(msg.contains("RELAY_ES_API_KEY"), "{msg}");
    assert!(!msg.contains(wrong), "the key leaked: {msg}");
    assert_eq!(checkpointed(&blob).unwrap_or(0), 0, "checkpoint moved");
    assert!(state.lock().unwrap().docs.is_empty());

    // With the right key the same blob is delivered from the start.
    let sink: Arc<dyn Sink> = Arc::new(EsSink::new(config(url, API_KEY)).unwrap());
    let r = blob.drain(sink, 50).await.unwrap();
    assert_eq!(r.from, 0);
    assert_eq!(state.lock().unwrap().docs.len(), 120);
}
