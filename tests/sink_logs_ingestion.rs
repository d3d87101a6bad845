//! The Logs Ingestion sink against two local servers on 127.0.0.1:
//!
//! - an identity endpoint speaking the App Service managed-identity protocol (`GET
//!   IDENTITY_ENDPOINT?api-version=2019-08-01&resource=…&client_id=…` with the
//!   `X-IDENTITY-HEADER` secret, answering `access_token` / `expires_on` as a string), so the
//!   real `azure_identity` credential code runs and its token cache is what is tested;
//! - a Logs Ingestion endpoint (`POST /dataCollectionRules/{rule}/streams/{stream}
//!   ?api-version=2023-01-01`, bearer token, JSON array ≤ 1,000,000 bytes before compression,
//!   Azure's `{"error":{"code","message"}}` on failures).
//!
//! The process environment points `IDENTITY_ENDPOINT` / `IDENTITY_HEADER` at the first server
//! once for the whole test binary; each test uses its own client id, so the fetches of each
//! test's credential are counted apart.

mod common;
mod http_sink;
mod relay;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use http_sink::{checkpointed, decoded, serve, Blob};
use mde_relay::drain::Outcome;
use mde_relay::sink::logs_ingestion::{LogsConfig, LogsSink};
use mde_relay::sink::retry::RetryPolicy;
use mde_relay::sink::Sink;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const IDENTITY_SECRET: &str = "identity-header-secret";
const RULE: &str = "dcr-0123456789abcdef0123456789abcdef";

/// Token fetches per client id.
type Fetches = Arc<Mutex<HashMap<String, usize>>>;

async fn token(
    State(f): State<Fetches>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if headers
        .get("x-identity-header")
        .is_none_or(|v| v != IDENTITY_SECRET)
    {
        return (StatusCode::UNAUTHORIZED, "missing X-IDENTITY-HEADER").into_response();
    }
    assert_eq!(q.get("api-version").map(String::as_str), Some("2019-08-01"));
    assert_eq!(
        q.get("resource").map(String::as_str),
        Some("https://monitor.azure.com/"),
        "the token is for Azure Monitor"
    );
    let client = q.get("client_id").cloned().unwrap_or_default();
    let n = {
        let mut f = f.lock().unwrap();
        let n = f.entry(client.clone()).or_default();
        *n += 1;
        *n
    };
    // Tokens of clients named "short-…" expire within the credential's refresh window.
    let life = if client.starts_with("short-") {
        120
    } else {
        3600
    };
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + life;
    axum::Json(json!({
        "access_token": format!("token-{client}-{n}"),
        "expires_on": expires.to_string(),
        "resource": "https://monitor.azure.com/",
        "token_type": "Bearer",
        "client_id": client,
    }))
    .into_response()
}

/// The identity endpoint, started once, with the environment pointing at it.
fn identity() -> &'static Fetches {
    static ID: OnceLock<Fetches> = OnceLock::new();
    ID.get_or_init(|| {
        let f: Fetches = Arc::default();
        let app = axum::Router::new()
            .route("/msi/token", axum::routing::get(token))
            .with_state(f.clone());
        let url = serve(app);
        // Set once, before any credential exists, and never changed: the only writes to the
        // environment in this test binary.
        std::env::set_var("IDENTITY_ENDPOINT", format!("{url}msi/token"));
        std::env::set_var("IDENTITY_HEADER", IDENTITY_SECRET);
        f
    })
}

/// One upload as the endpoint saw it.
#[derive(Clone)]
struct Upload {
    stream: String,
    token: String,
    status: u16,
    records: Vec<Value>,
}

#[derive(Default)]
struct Workspace {
    uploads: Vec<Upload>,
    /// Answers by upload number (0-based); 204 otherwise.
    script: HashMap<usize, (u16, Option<&'static str>)>,
    /// Bodies larger than this, before compression, are refused with 413.
    max_raw: usize,
}

type Shared = Arc<Mutex<Workspace>>;

async fn upload(
    State(w): State<Shared>,
    Path((rule, stream)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    assert_eq!(q.get("api-version").map(String::as_str), Some("2023-01-01"));
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string();
    let raw = decoded(&headers, &body);
    let mut w = w.lock().unwrap();
    let n = w.uploads.len();
    let (status, code) = if rule != RULE {
        (404, Some("NotFound"))
    } else if token.is_empty() {
        (401, Some("InvalidToken"))
    } else if let Some(a) = w.script.get(&n) {
        *a
    } else if raw.len() > w.max_raw {
        (413, None)
    } else {
        (204, None)
    };
    assert!(raw.len() <= 1_000_000, "the API limit is 1,000,000 bytes");
    let records: Vec<Value> = if status == 204 {
        serde_json::from_slice(&raw).expect("the body is a JSON array")
    } else {
        Vec::new()
    };
    w.uploads.push(Upload {
        stream,
        token,
        status,
        records,
    });
    let mut r = match code {
        Some(code) => (
            StatusCode::from_u16(status).unwrap(),
            axum::Json(json!({"error":{"code":code,"message":format!("{code} for this request")}})),
        )
            .into_response(),
        None => StatusCode::from_u16(status).unwrap().into_response(),
    };
    if status == 429 {
        r.headers_mut().insert("retry-after", "1".parse().unwrap());
    }
    r
}

fn workspace(w: Workspace) -> (url::Url, Shared) {
    let shared = Arc::new(Mutex::new(w));
    let app = axum::Router::new()
        .route(
            "/dataCollectionRules/{rule}/streams/{stream}",
            axum::routing::post(upload),
        )
        .layer(DefaultBodyLimit::disable())
        .with_state(shared.clone());
    (serve(app), shared)
}

fn config(url: url::Url, stream: &str, client: &str) -> LogsConfig {
    let mut c = LogsConfig::new(url, RULE, stream);
    c.client_id = Some(client.to_string());
    c.http.retry = RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_elapsed: Duration::from_secs(30),
    };
    c
}

#[tokio::test]
async fn every_event_arrives_with_its_id_through_throttling_errors_and_a_413_on_one_token() {
    let fetches = identity();
    let client = format!("client-{}", relay::suffix());
    let blob = Blob::new(600, 300);
    let (url, ws) = workspace(Workspace {
        script: [
            (0, (429, Some("TooManyRequests"))),
            (2, (503, Some("ServiceUnavailable"))),
            (3, (500, None)),
        ]
        .into(),
        max_raw: 120_000,
        ..Workspace::default()
    });
    let sink: Arc<dyn Sink> =
        Arc::new(LogsSink::new(config(url, "Custom-MdeRelayEvents", &client)).unwrap());
    let r = blob.drain(sink.clone(), 250).await.unwrap();
    assert_eq!(r.outcome, Outcome::Drained);

    {
        let w = ws.lock().unwrap();
        let ok: Vec<&Upload> = w.uploads.iter().filter(|u| u.status == 204).collect();
        assert!(
            w.uploads.iter().any(|u| u.status == 413),
            "no 413 was provoked"
        );
        assert!(ok.len() > 3, "a multi-request run");
        let mut got: HashMap<String, usize> = HashMap::new();
        for u in &ok {
            assert_eq!(u.stream, "Custom-MdeRelayEvents");
            assert_eq!(
                u.token,
                format!("token-{client}-1"),
                "the first token is reused"
            );
            for rec in &u.records {
                let t = rec["TimeGenerated"]
                    .as_str()
                    .expect("TimeGenerated on each record");
                assert!(t.starts_with("2026-01-01T00:") && t.ends_with('Z'), "{t}");
                assert_eq!(rec["table"], "DeviceProcessEvents");
                *got.entry(rec["id"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
        // At least once, with the ids the events have everywhere else.
        for id in &blob.ids {
            assert!(got.contains_key(id), "event {id} never arrived");
        }
        assert_eq!(got.len(), blob.ids.len(), "unknown ids arrived");
        assert_eq!(
            fetches.lock().unwrap()[&client],
            1,
            "the token was fetched more than once"
        );
        let st = sink.stats();
        assert!(
            st.splits >= 1 && st.retries.contains_key("429") && st.retries.contains_key("503"),
            "{st}"
        );
        assert!(
            st.throttled_secs >= 0.9,
            "Retry-After was not honoured: {st}"
        );
    }
    assert_eq!(
        blob.drain(sink, 250).await.unwrap().outcome,
        Outcome::UpToDate
    );
}

#[tokio::test]
async fn a_403_stops_the_drain_naming_rule_stream_status_and_code() {
    identity();
    let client = format!("client-{}", relay::suffix());
    let blob = Blob::new(50, 20);
    // Every upload is refused: the three batches are in flight at once (pipelined delivery),
    // so which one is sent first is not fixed.
    let refuse = (403, Some("OperationFailed"));
    let (url, ws) = workspace(Workspace {
        script: [(0, refuse), (1, refuse), (2, refuse)].into(),
        max_raw: usize::MAX,
        ..Workspace::default()
    });
    let sink: Arc<dyn Sink> =
        Arc::new(LogsSink::new(config(url.clone(), "Custom-{table}", &client)).unwrap());
    let err = blob.drain(sink, 20).await.unwrap_err();
    let msg = format!("{err:#}");
    for want in [
        RULE,
        "Custom-DeviceProcessEvents",
        "403",
        "OperationFailed",
        "Monitoring Metrics Publisher",
    ] {
        assert!(msg.contains(want), "{want} missing from: {msg}");
    }
    assert!(
        !msg.contains(&format!("token-{client}")),
        "the token leaked: {msg}"
    );
    assert_eq!(checkpointed(&blob).unwrap_or(0), 0, "checkpoint moved");
    {
        // A 403 is not retried: no batch was uploaded twice.
        let w = ws.lock().unwrap();
        let sent: Vec<String> = w
            .uploads
            .iter()
            .flat_map(|u| u.records.iter().map(|r| r.to_string()))
            .collect();
        let distinct: std::collections::HashSet<&String> = sent.iter().collect();
        assert!(
            !w.uploads.is_empty() && w.uploads.len() <= 3,
            "{}",
            w.uploads.len()
        );
        assert_eq!(distinct.len(), sent.len(), "a 403 is not retried");
    }

    // A wrong rule id: 404, also permanent.
    let mut c = config(url, "Custom-MdeRelayEvents", &client);
    c.rule_id = "dcr-ffffffffffffffffffffffffffffffff".into();
    let err = blob
        .drain(Arc::new(LogsSink::new(c).unwrap()), 20)
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("404") && msg.contains("NotFound") && msg.contains("RELAY_LOGS_RULE_ID"),
        "{msg}"
    );
    assert_eq!(checkpointed(&blob).unwrap_or(0), 0);
}

#[tokio::test]
async fn a_token_near_expiry_is_fetched_again() {
    let fetches = identity();
    // The credential refreshes tokens in their last five minutes; these live two.
    let client = format!("short-{}", relay::suffix());
    let blob = Blob::new(40, 10);
    let (url, ws) = workspace(Workspace {
        max_raw: usize::MAX,
        ..Workspace::default()
    });
    let sink: Arc<dyn Sink> =
        Arc::new(LogsSink::new(config(url, "Custom-MdeRelayEvents", &client)).unwrap());
    blob.drain(sink, 10).await.unwrap();
    let n = fetches.lock().unwrap()[&client];
    let uploads = ws.lock().unwrap().uploads.len();
    assert_eq!(uploads, 4);
    assert_eq!(
        n, uploads,
        "a token about to expire must be refreshed before use"
    );
}

#[tokio::test]
async fn process_cli_uploads_per_table_stream_with_the_real_identity_flow() {
    identity();
    let (url, ws) = workspace(Workspace {
        max_raw: usize::MAX,
        ..Workspace::default()
    });
    let blob = Blob::new(25, 10);
    let fetches = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let id_app = axum::Router::new()
        .route("/msi/token", axum::routing::get(token))
        .with_state(fetches.clone());
    let id_url = serve(id_app);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mde-relay"))
        .args(["process", "--sink", "logs-ingestion", "--logs-endpoint"])
        .arg(url.as_str())
        .args(["--logs-rule-id", RULE, "--logs-stream", "Custom-{table}"])
        .args(["--logs-client-id", "cli-client", "--batch-max-events", "10"])
        .arg("--dead-letter")
        .arg(blob.dir.path().join("d.ndjson"))
        .arg(blob.dir.path().join("src"))
        .env("IDENTITY_ENDPOINT", format!("{id_url}msi/token"))
        .env("IDENTITY_HEADER", IDENTITY_SECRET)
        .env_remove("RELAY_SINK")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("token-cli-client"), "{stderr}");
    let w = ws.lock().unwrap();
    assert_eq!(w.uploads.len(), 3);
    assert!(w
        .uploads
        .iter()
        .all(|u| u.stream == "Custom-DeviceProcessEvents" && u.token == "token-cli-client-1"));
    let n: usize = w.uploads.iter().map(|u| u.records.len()).sum();
    assert_eq!(n, 25);
    assert_eq!(fetches.lock().unwrap()["cli-client"], 1);
}
