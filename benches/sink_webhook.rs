//! HTTP sink throughput: 1 M generated events (~1.5 KB each, shaped like normalized
//! DeviceProcessEvents) sent to a local receiver by the webhook sink (every format), the
//! Elasticsearch sink (`_bulk`, answered item by item like a cluster does) and the Logs
//! Ingestion sink (its token from an App Service managed-identity endpoint served by the
//! receiver, through the real `azure_identity` credential and its cache).
//!
//! The relay side runs on a current-thread Tokio runtime on the main thread (one core); the
//! receiver (axum, counting lines) runs on its own thread and runtime. Reported: wall-clock
//! events/s and the relay thread's own CPU time (from /proc/thread-self/stat), which is the
//! steadier number on a shared machine.
//!
//! Run: `cargo bench --bench sink_webhook` (optionally `-- EVENTS`, default 1000000). Under
//! `cargo test` it makes a 5,000-event smoke run.

#[path = "../tests/common/http.rs"]
mod http;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use mde_relay::sink::elasticsearch::{EsConfig, EsSink};
use mde_relay::sink::logs_ingestion::{LogsConfig, LogsSink};
use mde_relay::sink::webhook::{WebhookConfig, WebhookFormat, WebhookSink};
use mde_relay::sink::{Batch, EventId, Sink};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Counts {
    events: AtomicU64,
    bytes: AtomicU64,
    requests: AtomicU64,
}

async fn receive(
    State(c): State<Arc<Counts>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> &'static str {
    count(&c, &headers, &body);
    "ok"
}

/// `_bulk`: answers every item `201`, as a cluster does (with the sink's `filter_path`).
async fn bulk(State(c): State<Arc<Counts>>, headers: axum::http::HeaderMap, body: Bytes) -> String {
    let n = count(&c, &headers, &body);
    let mut out = String::with_capacity(32 + n * 26);
    out.push_str(r#"{"errors":false,"items":["#);
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"create":{"status":201}}"#);
    }
    out.push_str("]}");
    out
}

/// Logs Ingestion upload: 204.
async fn upload(
    State(c): State<Arc<Counts>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> axum::http::StatusCode {
    count(&c, &headers, &body);
    axum::http::StatusCode::NO_CONTENT
}

/// App Service managed-identity token endpoint.
async fn token() -> axum::Json<serde_json::Value> {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    axum::Json(serde_json::json!({
        "access_token": "bench-token",
        "expires_on": exp.to_string(),
        "resource": "https://monitor.azure.com/",
        "token_type": "Bearer",
    }))
}

/// Counts the events of a body; returns how many.
fn count(c: &Counts, headers: &axum::http::HeaderMap, body: &Bytes) -> usize {
    let gz = headers.get("content-encoding").is_some_and(|v| v == "gzip");
    let plain = if gz {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out).unwrap();
        Bytes::from(out)
    } else {
        body.clone()
    };
    // Every format carries each event's `"schema":"mde-relay/v1"` exactly once.
    let n = memchr::memmem::find_iter(&plain, b"\"schema\":\"mde-relay/v1\"").count();
    c.events.fetch_add(n as u64, Ordering::Relaxed);
    c.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    c.requests.fetch_add(1, Ordering::Relaxed);
    n
}

/// Starts the receiver on its own thread; returns its URL and counters.
fn start_receiver() -> (url::Url, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    let app = axum::Router::new()
        .route("/in", axum::routing::post(receive))
        .route("/_bulk", axum::routing::post(bulk))
        .route(
            "/dataCollectionRules/{rule}/streams/{stream}",
            axum::routing::post(upload),
        )
        .route("/msi/token", axum::routing::get(token))
        .layer(DefaultBodyLimit::disable())
        .with_state(c);
    let base = http::serve(app);
    (base.join("in").unwrap(), counts)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(n);
        s
    }
}

/// A realistic normalized event, ~1.5 KB.
fn event(r: &mut Rng, i: u64) -> (EventId, Vec<u8>) {
    let id = r.hex(32);
    let dev = r.hex(40);
    let json = format!(
        concat!(
            r#"{{"schema":"mde-relay/v1","id":"{id}","table":"DeviceProcessEvents","timestamp":"2026-03-01T10:{m:02}:{s:02}.{f:07}Z","#,
            r#""exported_at":"2026-03-01T10:{m:02}:59.1234567Z","received_at":"2026-03-01T10:{m:02}:59.2Z","tenant_id":"3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d","#,
            r#""source":{{"container":"insights-logs-advancedhunting-deviceprocessevents","blob":"tenantId=3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d/y=2026/m=03/d=01/h=10/m=00/PT1H.json","offset":{off}}},"#,
            r#""device_id":"{dev}","device_name":"wks-{n:05}.corp.contoso.com","machine_group":"Workstations EU","action_type":"ProcessCreated","report_id":{rep},"#,
            r#""properties":{{"Timestamp":"2026-03-01T10:{m:02}:{s:02}.{f:07}Z","DeviceId":"{dev}","DeviceName":"wks-{n:05}.corp.contoso.com","ActionType":"ProcessCreated","#,
            r#""FileName":"powershell.exe","FolderPath":"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe","SHA1":"{sha1}","FileSize":{size},"#,
            r#""ProcessId":{pid},"ProcessCommandLine":"powershell.exe -NoProfile -ExecutionPolicy Bypass -File C:\\ProgramData\\agent\\{tok}.ps1","ProcessIntegrityLevel":"High","#,
            r#""ProcessCreationTime":"2026-03-01T10:{m:02}:{s:02}.0000000Z","AccountDomain":"contoso","AccountName":"svc-{n:05}","#,
            r#""LogonId":{logon},"InitiatingProcessFileName":"cmd.exe","InitiatingProcessId":{ppid},"InitiatingProcessCommandLine":"cmd.exe /c \"C:\\ProgramData\\agent\\run.cmd\"","#,
            r#""InitiatingProcessSHA1":"{isha1}","AdditionalFields":{{"ProcessStartKey":{key}}},"ReportId":{rep}}}}}"#
        ),
        id = id,
        m = i % 60,
        s = (i / 60) % 60,
        f = i % 10_000_000,
        off = i * 1700,
        dev = dev,
        n = i % 50_000,
        rep = 639_199_803_770_000_000u64 + i,
        sha1 = r.hex(40),
        size = 400_000 + r.next() % 100_000,
        pid = r.next() % 60_000,
        tok = r.hex(12),
        logon = r.next() % 10_000_000,
        ppid = r.next() % 60_000,
        isha1 = r.hex(40),
        key = r.next() % 1_000_000_000_000,
    );
    let mut idb = [0u8; 32];
    idb.copy_from_slice(id.as_bytes());
    (EventId(idb), json.into_bytes())
}

/// A pool of batches of 500 events, reused cyclically (1 M distinct events would be 1.5 GB).
fn pool(batches: usize) -> Vec<Batch> {
    let mut r = Rng(0x1234_5678_9abc_def1);
    (0..batches)
        .map(|b| {
            let mut batch = Batch::new();
            for k in 0..500 {
                let (id, json) = event(&mut r, (b * 500 + k) as u64);
                batch.push_json(
                    id,
                    "DeviceProcessEvents".into(),
                    Some(1_772_359_200.0),
                    &json,
                );
            }
            batch
        })
        .collect()
}

/// CPU seconds used by the calling thread.
fn thread_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is 14th, stime 15th.
    let rest = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn run(
    rt: &tokio::runtime::Runtime,
    label: &str,
    cfg: WebhookConfig,
    pool: &[Batch],
    events: usize,
    counts: &Counts,
) {
    run_sink(
        rt,
        label,
        &WebhookSink::new(cfg).unwrap(),
        pool,
        events,
        counts,
    )
}

fn run_sink(
    rt: &tokio::runtime::Runtime,
    label: &str,
    sink: &dyn Sink,
    pool: &[Batch],
    events: usize,
    counts: &Counts,
) {
    let batches = events / 500;
    let before = (
        counts.events.load(Ordering::Relaxed),
        counts.bytes.load(Ordering::Relaxed),
        counts.requests.load(Ordering::Relaxed),
    );
    let cpu0 = thread_cpu();
    let t0 = Instant::now();
    rt.block_on(async {
        for i in 0..batches {
            sink.send(&pool[i % pool.len()]).await.unwrap();
        }
    });
    let wall = t0.elapsed().as_secs_f64();
    let cpu = thread_cpu() - cpu0;
    let got = counts.events.load(Ordering::Relaxed) - before.0;
    let bytes = counts.bytes.load(Ordering::Relaxed) - before.1;
    let reqs = counts.requests.load(Ordering::Relaxed) - before.2;
    assert_eq!(got as usize, batches * 500, "{label}: receiver count");
    println!(
        "{label:<26} events={got:>8} requests={reqs:>6} sent={:>7.1} MB  wall={wall:>6.2}s  {:>9.0} events/s  {:>6.1} MB/s  relay-cpu={cpu:>5.2}s  {:>9.0} events/cpu-s",
        bytes as f64 / 1e6,
        got as f64 / wall,
        bytes as f64 / 1e6 / wall,
        if cpu > 0.0 { got as f64 / cpu } else { f64::NAN },
    );
}

fn main() {
    // `cargo test --all-targets` runs this binary without `--bench`: then only a quick smoke
    // run (5,000 events), so the test suite stays fast.
    let benching = std::env::args().any(|a| a == "--bench");
    let events: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if benching { 1_000_000 } else { 5_000 });
    let (url, counts) = start_receiver();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = pool(40);
    for b in &pool {
        for i in 0..b.len() {
            serde_json::from_slice::<serde_json::Value>(b.event(i)).expect("events are valid JSON");
        }
    }
    let avg = pool.iter().map(Batch::bytes).sum::<usize>() / (pool.len() * 500);
    println!("relay: current-thread runtime; events average {avg} bytes; batches of 500");
    let base = || {
        let mut c = WebhookConfig::new(url.clone());
        c.timeout = Duration::from_secs(30);
        c
    };
    // Warm-up (connections, allocator).
    run(&rt, "warm-up", base(), &pool, events.min(20_000), &counts);
    run(&rt, "ndjson", base(), &pool, events, &counts);
    let mut c = base();
    c.secret = Some(b"bench-secret".to_vec());
    run(&rt, "ndjson + hmac", c, &pool, events, &counts);
    let mut c = base();
    c.format = WebhookFormat::Json;
    run(&rt, "json array", c, &pool, events, &counts);
    let mut c = base();
    c.format = WebhookFormat::SplunkHec;
    run(&rt, "splunk-hec", c, &pool, events, &counts);
    let mut c = base();
    c.gzip = true;
    run(
        &rt,
        "ndjson + gzip (1/5 of N)",
        c,
        &pool,
        events / 5,
        &counts,
    );

    // Elasticsearch `_bulk` (create + _id, @timestamp added to every event).
    let root = url.join("/").unwrap();
    let es = EsSink::new(EsConfig::new(root.clone())).unwrap();
    run_sink(&rt, "elasticsearch", &es, &pool, events, &counts);
    // The same without the JSON-column check ({"value": …} wrapping) the default sink does.
    let mut c = EsConfig::new(root.clone());
    c.json_objects = false;
    let es = EsSink::new(c).unwrap();
    run_sink(
        &rt,
        "elasticsearch, RELAY_ES_JSON_OBJECTS=false",
        &es,
        &pool,
        events,
        &counts,
    );
    let mut c = EsConfig::new(root.clone());
    c.http.gzip = true;
    let es = EsSink::new(c).unwrap();
    run_sink(
        &rt,
        "elasticsearch + gzip (1/5)",
        &es,
        &pool,
        events / 5,
        &counts,
    );

    // Logs Ingestion (JSON array, TimeGenerated added; token from the identity endpoint).
    std::env::set_var(
        "IDENTITY_ENDPOINT",
        root.join("/msi/token").unwrap().as_str(),
    );
    std::env::set_var("IDENTITY_HEADER", "bench");
    let logs = |gzip: bool| {
        let mut c = LogsConfig::new(
            root.clone(),
            "dcr-00000000000000000000000000000000",
            "Custom-MdeRelayEvents",
        );
        c.http.gzip = gzip;
        LogsSink::new(c).unwrap()
    };
    run_sink(&rt, "logs-ingestion", &logs(false), &pool, events, &counts);
    run_sink(
        &rt,
        "logs-ingestion + gzip (1/5)",
        &logs(true),
        &pool,
        events / 5,
        &counts,
    );
}
