//! Pipelined delivery and Tail's dispatch, end to end with the real binary and Azurite:
//! SIGKILL with several batches in flight at a slow webhook, and three `serve` workers sharing
//! the drain requests Tail puts on the queue.

mod common;
mod relay;

use relay::{blob_created_event, counts, event_ids, pump, pump_with, rows, Env, Relay};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the slow receiver saw.
#[derive(Default)]
struct Seen {
    /// Ids of each request, in arrival order, with the phase (0 before the kill, 1 after).
    requests: Vec<(u8, Vec<String>)>,
}

/// A webhook receiver on 127.0.0.1 that reads a request, records its ids, and answers 200
/// after `delay`, any number of requests at once. Runs on its own thread (it outlives the
/// test's runtime and the relay it serves).
struct Receiver {
    port: u16,
    seen: Arc<Mutex<Seen>>,
    now: Arc<AtomicUsize>,
    phase: Arc<AtomicUsize>,
}

impl Receiver {
    fn start(delay: Duration) -> Receiver {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let now = Arc::new(AtomicUsize::new(0));
        let phase = Arc::new(AtomicUsize::new(0));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (s, n, p) = (seen.clone(), now.clone(), phase.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
                    let (s, n, p) = (s.clone(), n.clone(), p.clone());
                    async move {
                        n.fetch_add(1, Ordering::SeqCst);
                        let ids: Vec<String> = body
                            .split(|&b| b == b'\n')
                            .filter(|l| !l.is_empty())
                            .map(|l| {
                                let v: serde_json::Value = serde_json::from_slice(l).unwrap();
                                v["id"].as_str().unwrap().to_string()
                            })
                            .collect();
                        let phase = p.load(Ordering::SeqCst) as u8;
                        s.lock().unwrap().requests.push((phase, ids));
                        tokio::time::sleep(delay).await;
                        n.fetch_sub(1, Ordering::SeqCst);
                        axum::Json(serde_json::json!({}))
                    }
                });
                let l = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(l, app).await.unwrap();
            });
        });
        Receiver {
            port,
            seen,
            now,
            phase,
        }
    }

    fn delivered(&self) -> usize {
        let s = self.seen.lock().unwrap();
        s.requests
            .iter()
            .flat_map(|r| r.1.iter())
            .collect::<HashSet<_>>()
            .len()
    }
}

/// SIGKILL while at least four batches are at a slow webhook (150 ms per answer), then a
/// restart: every row arrives; what arrives twice is whole batches, re-sent with the same ids,
/// and no more than the batches in flight plus what the checkpoint coalescing allows.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_with_batches_in_flight_resends_only_whole_batches() {
    const BATCH: usize = 200;
    const INFLIGHT: usize = 8;
    let env = Env::new().await;
    let blob = Env::blob_name("2026/01/01/00");
    env.create_append(&blob).await;
    let (data, ids) = rows(0..30_000, 400);
    env.append(&blob, &data).await;
    let row_bytes = data.len() / ids.len();
    let rx = Receiver::start(Duration::from_millis(150));
    let url = format!("http://127.0.0.1:{}/ingest", rx.port);
    let settings = [
        ("RELAY_SINK", "webhook"),
        ("RELAY_WEBHOOK_URL", url.as_str()),
        ("RELAY_WEBHOOK_CONCURRENCY", "8"),
        ("RELAY_BATCH_MAX_EVENTS", "200"),
        ("RELAY_INFLIGHT_BATCHES", "8"),
        ("RELAY_CHECKPOINT_BYTES", "1MiB"),
        ("RELAY_CHECKPOINT_INTERVAL", "1h"),
        ("RELAY_READ_CHUNK", "1MiB"),
        ("RELAY_CLOSE_GRACE", "1s"),
    ];
    let mut relay = Relay::start(&env, &settings).await;
    let ev = blob_created_event(&env.url(&blob), &env.container, &blob, 0).to_string();
    let invocation = relay.blob_created_in_background(&ev);
    // Kill once a good part was delivered and at least four batches are at the receiver.
    let started = Instant::now();
    loop {
        let n = rx.delivered();
        if n >= ids.len() / 4 && rx.now.load(Ordering::SeqCst) >= 4 {
            assert!(n < ids.len(), "drain finished before the kill");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "drain too slow or never 4 batches in flight: {n} events, {} at once\n{}",
            rx.now.load(Ordering::SeqCst),
            relay.logs()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let in_flight = rx.now.load(Ordering::SeqCst);
    relay.kill();
    let _ = invocation.await;
    rx.phase.store(1, Ordering::SeqCst);
    let before = rx.delivered();

    let relay = Relay::start(&env, &settings).await;
    let started = Instant::now();
    loop {
        let (st, _) = relay.tail().await;
        assert_eq!(st, 200, "{}", relay.logs());
        if rx.delivered() == ids.len() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "not everything delivered after restart: {} of {}\n{}",
            rx.delivered(),
            ids.len(),
            relay.logs()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let seen = rx.seen.lock().unwrap();
    let first: HashSet<&str> = seen
        .requests
        .iter()
        .filter(|r| r.0 == 0)
        .flat_map(|r| r.1.iter().map(String::as_str))
        .collect();
    let all: Vec<String> = seen
        .requests
        .iter()
        .flat_map(|r| r.1.iter().cloned())
        .collect();
    let expected: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let c = counts(&all);
    assert!(c.keys().all(|k| expected.contains(k)), "only expected ids");
    assert!(c.values().all(|&n| n <= 2), "nothing sent three times");
    // Every batch after the restart is either wholly a re-send or wholly new.
    let mut resent_batches = 0;
    for (phase, r) in seen.requests.iter().filter(|r| r.0 == 1) {
        let old = r.iter().filter(|i| first.contains(i.as_str())).count();
        assert!(
            old == 0 || old == r.len(),
            "phase {phase}: a batch of {} re-sent {old} of its events",
            r.len()
        );
        if old > 0 {
            resent_batches += 1;
        }
    }
    let dup: usize = c.values().map(|n| n - 1).sum();
    // The watermark lags by at most the checkpoint bytes plus the batches in flight (and the
    // one whose checkpoint write was under way).
    let bound = (1 << 20) / row_bytes + (INFLIGHT + 1) * BATCH;
    eprintln!(
        "killed with {in_flight} batches at the receiver after {before} of {} events; \
         re-sent {dup} events; {resent_batches} wholly re-sent batches after the restart (bound {bound})",
        ids.len()
    );
    assert!(dup <= bound, "re-sent {dup} > {bound}");
}

/// Three workers, as three instances of the Functions app: six blobs keep growing; Tail runs on
/// one of them and only enqueues drain requests; the queue's messages go to all three as the
/// host's queue trigger would hand them out. One worker is killed mid-way and restarted. Every
/// row is delivered, an id arrives twice only as part of a batch cut short by the kill, and at
/// least two workers drained blobs.
#[tokio::test(flavor = "multi_thread")]
async fn three_workers_share_the_drain_requests_of_tail() {
    const BATCH: usize = 100;
    let env = Env::new().await;
    let now = chrono::Utc::now();
    // Six hourly blobs of the last hours: the first Tail's sweep lists them, later Tails check
    // them as open blobs.
    let blobs: Vec<String> = (0..6)
        .map(|h| {
            Env::blob_name(
                &(now - chrono::Duration::hours(h))
                    .format("%Y/%m/%d/%H")
                    .to_string(),
            )
        })
        .collect();
    for b in &blobs {
        env.create_append(b).await;
    }
    let settings = [
        ("RELAY_BATCH_MAX_EVENTS", "100"),
        ("RELAY_CHECKPOINT_BYTES", "1"),
        ("RELAY_READ_CHUNK", "256KiB"),
    ];
    let file = |i: usize| env.dir.path().join(format!("events-{i}.ndjson"));
    let start = |i: usize| {
        let path = file(i).display().to_string();
        let env = &env;
        async move {
            let mut s: Vec<(&str, &str)> = settings.to_vec();
            let path: &'static str = Box::leak(path.into_boxed_str());
            s.push(("RELAY_FILE_PATH", path));
            Relay::start(env, &s).await
        }
    };
    let mut workers = [start(0).await, start(1).await, start(2).await];
    let mut want: Vec<String> = Vec::new();
    let mut next = 0u64;
    let mut grow = |n: u64| {
        let (d, i) = rows(next..next + n, 200);
        next += n;
        want.extend(i);
        d
    };
    let mut appends: Vec<Vec<Vec<u8>>> = Vec::new();
    for round in 0..4 {
        appends.push(
            (0..6)
                .map(|_| grow(if round == 2 { 3000 } else { 300 }))
                .collect(),
        );
    }
    let mut restarted = 3usize;
    for (round, data) in appends.into_iter().enumerate() {
        for (b, d) in blobs.iter().zip(&data) {
            env.append(b, d).await;
        }
        let (st, _) = workers[0].tail_only().await;
        assert_eq!(st, 200, "{}", workers[0].logs());
        let refs: Vec<&Relay> = workers.iter().collect();
        if round == 2 {
            // Kill worker 1 (SIGKILL) while the drains of this larger round run; the pump goes
            // on, and the killed worker's messages come back after their visibility timeout.
            let pid = workers[1].child.id() as i32;
            let kill = async {
                tokio::time::sleep(Duration::from_millis(700)).await;
                // SAFETY: signalling our own child by pid.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            };
            let (p, ()) = tokio::join!(pump_with(&env.queue, &refs, true), kill);
            eprintln!("round with the kill: {:?}", p.per_worker);
            drop(refs);
            workers[1].kill();
            workers[1] = start(restarted).await;
            restarted += 1;
        } else {
            let p = pump(&env.queue, &refs).await;
            assert!(p.failures.is_empty(), "{:?}", p.failures);
        }
    }
    // Until everything is there (the killed worker's leases expire within 15 s).
    let started = Instant::now();
    let all_files = |n: usize| -> (Vec<String>, usize) {
        let mut ids = Vec::new();
        let mut torn = 0;
        for i in 0..n {
            let (v, t) = event_ids(&file(i));
            ids.extend(v);
            torn += t;
        }
        (ids, torn)
    };
    let wanted: HashSet<&str> = want.iter().map(String::as_str).collect();
    loop {
        let (got, _) = all_files(restarted);
        if got.iter().map(String::as_str).collect::<HashSet<_>>() == wanted {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{} of {} rows delivered",
            got.iter().collect::<HashSet<_>>().len(),
            want.len()
        );
        let (st, _) = workers[0].tail_only().await;
        assert_eq!(st, 200);
        let refs: Vec<&Relay> = workers.iter().collect();
        pump_with(&env.queue, &refs, true).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (got, torn) = all_files(restarted);
    let c = counts(&got);
    assert!(c.keys().all(|k| wanted.contains(k)), "only expected ids");
    assert!(torn <= 1, "at most the line written at the kill is torn");
    let dup: usize = c.values().map(|n| n - 1).sum();
    // The killed worker drained at most RELAY_DRAIN_CONCURRENCY (4) blobs, each with one
    // unacknowledged (file sink: one at a time) batch.
    assert!(dup + torn <= 4 * BATCH, "re-sent {dup} (+{torn} torn)");
    // Re-sent events come in runs (whole batches), never one here and there.
    for f in 0..restarted {
        let (ids, _) = event_ids(&file(f));
        let mut runs = 0;
        let mut prev = false;
        for id in &ids {
            let d = c[id.as_str()] > 1;
            if d && !prev {
                runs += 1;
            }
            prev = d;
        }
        assert!(runs <= 2 * 4, "file {f}: {runs} runs of re-sent events");
    }
    // The work spread: drain summaries with rows in the logs of at least two workers.
    let mut drained_by: HashMap<usize, usize> = HashMap::new();
    for (i, w) in workers.iter().enumerate() {
        let n = w
            .logs()
            .lines()
            .filter(|l| l.contains("\"drain_summary\"") && !l.contains("\"rows\":0"))
            .count();
        if n > 0 {
            drained_by.insert(i, n);
        }
    }
    assert!(drained_by.len() >= 2, "drains per worker: {drained_by:?}");
    let tail_logs = workers[0].logs();
    assert!(
        tail_logs.contains("\"tail_summary\"") && tail_logs.contains("\"requests_enqueued\":6"),
        "Tail enqueued one request per blob"
    );
    eprintln!(
        "rows {}, re-sent {dup}, drains per worker {drained_by:?}",
        want.len()
    );
}
