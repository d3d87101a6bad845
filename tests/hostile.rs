//! Issue 21: a hostile sink or a hostile writer of rows or events must not crash the relay,
//! freeze the handler, keep a lease alive, or get a secret echoed. Real parts: the real binary,
//! HTTP receivers on 127.0.0.1, Azurite for leases and state.
mod common;
mod relay;

use axum::body::Bytes;
use axum::response::IntoResponse;
use mde_relay::deadletter::DeadLetterFile;
use mde_relay::drain::{DrainSettings, Drainer};
use mde_relay::handler::{router, App};
use mde_relay::sink::{Batch, Sink, SinkError};
use mde_relay::source::{local::DirSource, BlobKey, Scoped};
use mde_relay::state::{azure::BlobCheckpointStore, CheckpointStore};
use std::collections::HashSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mde-relay");

/// Runs `app` on 127.0.0.1:0 on a thread of its own (so it outlives any test runtime).
fn serve(app: axum::Router) -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// Event ids in NDJSON request bodies.
fn ids_in(body: &[u8]) -> Vec<String> {
    body.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect()
}

/// A local export file of `n` rows in `dir`.
fn export_file(dir: &std::path::Path, n: u64) -> (std::path::PathBuf, Vec<String>) {
    let (data, ids) = relay::rows(0..n, 10);
    let p = dir.join("PT1H.json");
    std::fs::write(&p, data).unwrap();
    (p, ids)
}

#[test]
fn hostile_retry_after_values_neither_crash_process_nor_lose_events() {
    // Each value once, on the first request; every later request is accepted. Before the fix
    // `1e30` panicked in Duration::from_secs_f64 and the integer one on Instant + Duration.
    let values = [
        "1e30",
        "18446744073709551615",
        "1e308",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ];
    let runs: Vec<_> = values
        .iter()
        .map(|v| {
            let v = v.to_string();
            std::thread::spawn(move || {
                let got = Arc::new(Mutex::new((0usize, Vec::<String>::new())));
                let g = got.clone();
                let ra = v.clone();
                let app = axum::Router::new().fallback(move |body: Bytes| {
                    let g = g.clone();
                    let ra = ra.clone();
                    async move {
                        let mut s = g.lock().unwrap();
                        s.0 += 1;
                        if s.0 == 1 {
                            return (
                                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                                [("retry-after", ra)],
                                "busy",
                            )
                                .into_response();
                        }
                        s.1.extend(ids_in(&body));
                        "ok".into_response()
                    }
                });
                let addr = serve(app);
                let dir = tempfile::tempdir().unwrap();
                let (file, ids) = export_file(dir.path(), 20);
                let started = Instant::now();
                let out = Command::new(BIN)
                    .args(["process", "--sink", "webhook", "--batch-max-events", "5"])
                    .arg(&file)
                    .current_dir(dir.path())
                    .env("RELAY_WEBHOOK_URL", format!("http://{addr}/"))
                    .env("RELAY_RETRY_MAX_ELAPSED", "2m")
                    .output()
                    .unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr).to_string();
                let delivered: HashSet<String> = got.lock().unwrap().1.iter().cloned().collect();
                (v, out.status, stderr, delivered, ids, started.elapsed())
            })
        })
        .collect();
    for r in runs {
        let (v, status, stderr, delivered, ids, took) = r.join().unwrap();
        assert!(
            status.success(),
            "Retry-After: {v}: process failed ({status}): {stderr}"
        );
        assert!(!stderr.contains("panicked"), "Retry-After: {v}: {stderr}");
        let want: HashSet<String> = ids.into_iter().collect();
        assert_eq!(delivered, want, "Retry-After: {v}: every event delivered");
        // Cut to the policy's longest single wait (30 s), not honoured for ever.
        assert!(
            took < Duration::from_secs(60),
            "Retry-After: {v}: took {took:?}"
        );
    }
}

/// A sink that panics on every batch: a stand-in for any bug reached while a drain holds its
/// lease.
struct PanickingSink;

#[async_trait::async_trait]
impl Sink for PanickingSink {
    fn name(&self) -> &'static str {
        "panicking"
    }
    async fn send(&self, _batch: &Batch) -> Result<(), SinkError> {
        panic!("injected panic inside a drain");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_a_drain_is_answered_and_releases_the_lease() {
    let account = common::azurite();
    let dir = tempfile::tempdir().unwrap();
    let container = "insights-logs-advancedhunting-deviceprocessevents";
    let blob = format!(
        "tenantId={}/y=2026/m=01/d=01/h=00/m=00/PT1H.json",
        relay::TENANT
    );
    let path = dir.path().join(container).join(&blob);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, relay::rows(0..3, 10).0).unwrap();
    let state = format!("state-{}", relay::suffix());
    let store: Arc<dyn CheckpointStore> =
        Arc::new(BlobCheckpointStore::new(account.clone(), &state));
    let src = Scoped::new(
        Arc::new(DirSource::new(dir.path())),
        "insights-logs-advancedhunting-",
    );
    let settings = DrainSettings {
        lease_ttl: Duration::from_secs(15),
        close_grace: Duration::from_secs(3600),
        ..DrainSettings::default()
    };
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let dead = Arc::new(DeadLetterFile::new(&dir.path().join("dead.ndjson")));
    let drainer = Drainer::new(
        src,
        store.clone(),
        Arc::new(PanickingSink),
        dead,
        settings,
        rx,
    );
    let app = Arc::new(App {
        drainer: Arc::new(drainer),
        tail: Default::default(),
        max_drain_time: Duration::from_secs(60),
    });
    let addr = serve(router(app, 1 << 20));
    let url = format!("file://{}/{container}/{blob}", dir.path().display());
    let body = serde_json::json!({
        "Data": {"msg": {"id": "e1", "eventType": "Microsoft.Storage.BlobCreated", "data": {"url": url}}},
        "Metadata": {}
    });
    let http = reqwest::Client::new();
    let resp = tokio::time::timeout(
        Duration::from_secs(20),
        http.post(format!("http://{addr}/BlobCreated"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send(),
    )
    .await
    .expect("the invocation is answered, not left hanging")
    .expect("answered");
    assert_eq!(resp.status().as_u16(), 500);
    let text = resp.text().await.unwrap();
    assert!(text.contains("panic"), "{text}");
    // The handler keeps serving.
    let ping = http.get(format!("http://{addr}/")).send().await.unwrap();
    assert!(ping.status().is_success());
    // The lease is released (well within its 15 s ttl), so another drain can take the blob.
    let key = BlobKey::new(container, &blob);
    let t = Instant::now();
    let mut got = None;
    while t.elapsed() < Duration::from_secs(10) {
        if let Some(l) = store.acquire(&key, Duration::from_secs(15)).await.unwrap() {
            got = Some(l);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let l = got.expect("the lease was released after the panic, not kept alive by its renewer");
    store.release(&l).await.unwrap();
}
