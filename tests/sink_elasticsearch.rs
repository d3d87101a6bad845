//! The Elasticsearch sink against a local `_bulk` server written here after the documented Bulk
//! API (Elasticsearch 8.x / OpenSearch 2.x: NDJSON action and source lines, `create` refusing
//! an existing `_id` with 409 `version_conflict_engine_exception`, per-item `status` and
//! `error`, `errors: true` on partial failure, 413 for a body over `http.max_content_length`,
//! 401 `security_exception` without valid credentials). No Elasticsearch server can be
//! installed in this environment; the server below keeps documents in memory.
//!
//! Through a real drain (local blob, directory checkpoints, dead-letter file): every event is
//! indexed exactly once through whole-request 429 + Retry-After, per-item 429s, mapping errors
//! (dead-lettered, drain goes on) and a 413; a 401 stops the drain with the checkpoint unchanged.

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
async fn every_event_is_indexed_once_through_throttling_partial_failures_and_a_413() {
    let blob = Blob::new(400, 200);
    let ids = blob.ids.clone();
    // Every 9th event fails mapping, every 7th is throttled once per item, the first 5 are
    // in the index already (an earlier delivery), the first request is throttled whole, and
    // bodies over 60 kB are refused with 413.
    let c = Cluster {
        bad: ids.iter().step_by(9).cloned().collect(),
        flaky: ids.iter().skip(3).step_by(7).cloned().collect(),
        max_content_length: 60_000,
        throttle_first: true,
        ..Cluster::default()
    };
    let (url, state) = cluster(c);
    {
        let mut s = state.lock().unwrap();
        for id in &ids[1..6] {
            s.docs
                .insert(("mde-deviceprocessevents".into(), id.clone()), json!({}));
        }
    }
    let mut cfg = config(url, API_KEY);
    cfg.http.concurrency = 3;
    let sink: Arc<dyn Sink> = Arc::new(EsSink::new(cfg).unwrap());
    let report = blob.drain(sink.clone(), 150).await.unwrap();
    assert_eq!(report.outcome, Outcome::Drained);

    let bad: HashSet<&String> = ids.iter().step_by(9).collect();
    {
        let s = state.lock().unwrap();
        let indexed: HashSet<&String> = s.docs.keys().map(|(_, id)| id).collect();
        for id in &ids {
            assert_eq!(
                indexed.contains(id),
                !bad.contains(id),
                "event {id}: indexed unless its mapping fails"
            );
        }
        assert!(s.docs.keys().all(|(i, _)| i == "mde-deviceprocessevents"));
        // Nothing acknowledged was sent again: the only conflicts are the 5 pre-existing ids
        // (minus the one of them that fails mapping first).
        let pre_bad = ids[1..6].iter().filter(|i| bad.contains(i)).count();
        assert_eq!(s.conflicts, 5 - pre_bad, "acknowledged items were re-sent");
        assert!(s.whole_429 == 1 && s.too_large >= 1 && s.throttled > 10);

        // Mapping failures are dead-lettered with the error type and reason, one each.
        let dead = blob.dead();
        let dead_ids: Vec<&str> = dead
            .iter()
            .map(|d| d["event_id"].as_str().unwrap())
            .collect();
        let mut want: Vec<&str> = bad.iter().map(|s| s.as_str()).collect();
        let mut got = dead_ids.clone();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want);
        for d in &dead {
            assert_eq!(d["rejected_by"], "elasticsearch");
            let reason = d["reason"].as_str().unwrap();
            assert!(
                reason.contains("document_parsing_exception") && reason.contains("ReportId"),
                "{reason}"
            );
            assert_eq!(
                d["container"],
                "insights-logs-advancedhunting-deviceprocessevents"
            );
            let original: Value = serde_json::from_str(d["original"].as_str().unwrap()).unwrap();
            assert_eq!(original["id"], d["event_id"]);
        }
        assert_eq!(report.stats.dead_lettered, bad.len() as u64);
        let st = sink.stats();
        assert!(st.splits >= 1 && st.retries.contains_key("429"), "{st}");
    }
    // Everything was checkpointed: a second drain has nothing to do.
    let again = blob.drain(sink, 150).await.unwrap();
    assert_eq!(again.outcome, Outcome::UpToDate);
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

#[tokio::test]
async fn process_cli_indexes_with_flags_and_dead_letters_refused_events() {
    let blob = Blob::new(30, 10);
    let bad = blob.ids[4].clone();
    let (url, state) = cluster(Cluster {
        bad: [bad.clone()].into(),
        max_content_length: usize::MAX,
        ..Cluster::default()
    });
    let input = blob.dir.path().join("src");
    let dead = blob.dir.path().join("cli-dead.ndjson");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mde-relay"))
        .args(["process", "--sink", "elasticsearch", "--es-url"])
        .arg(url.as_str())
        .args(["--es-index", "cli-{table}", "--es-gzip", "true"])
        .arg("--dead-letter")
        .arg(&dead)
        .arg(&input)
        .env("RELAY_ES_API_KEY", API_KEY)
        .env_remove("RELAY_SINK")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains(API_KEY));
    assert!(stderr.contains("1 dead-lettered"), "{stderr}");
    let s = state.lock().unwrap();
    assert_eq!(s.docs.len(), 29);
    assert!(s.docs.keys().all(|(i, _)| i == "cli-deviceprocessevents"));
    let d: Value = serde_json::from_str(std::fs::read_to_string(&dead).unwrap().trim()).unwrap();
    assert_eq!(d["event_id"], bad);
}
