//! Benchmark (ignored by default): one large export append blob in Azurite drained by the real
//! `mde-relay serve` through a BlobCreated invocation; reports throughput and the handler's peak
//! RSS, and fails when the peak reaches 128 MiB.
//!
//! ```sh
//! cargo test --release --test bench_drain -- --ignored --nocapture
//! BENCH_BYTES=256MiB cargo test --release --test bench_drain -- --ignored --nocapture
//! ```
//!
//! Results go in `docs/benchmarks.md`. Events go to the stdout sink (redirected to /dev/null)
//! so the number measures the relay, not a disk; completeness is checked on the checkpoint.

mod common;
mod relay;

use relay::{blob_created_event, row, Env};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT_RSS: u64 = 128 << 20;

/// Peak RSS (bytes) and CPU seconds (user + system) of the waited-for children.
fn children_usage() -> (u64, f64) {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        ru.ru_maxrss as u64 * 1024,
        secs(ru.ru_utime) + secs(ru.ru_stime),
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: writes a 1 GiB blob into Azurite; run by name with --ignored"]
async fn drain_1gib_blob_peak_rss() {
    let target = std::env::var("BENCH_BYTES")
        .ok()
        .map(|s| mde_relay::config::parse_size(&s).unwrap())
        .unwrap_or(1 << 30);
    let env = Env::new().await;
    let blob = Env::blob_name("2026/01/01/00");
    env.create_append(&blob).await;

    // Write the blob: rows of about 1.1 KB, appended 4 MiB at a time.
    let t = Instant::now();
    let mut buf = Vec::with_capacity(4 << 20);
    let (mut written, mut rows) = (0u64, 0u64);
    while written < target {
        let (line, _) = row(rows, 700 + (rows % 300) as usize);
        buf.extend_from_slice(line.as_bytes());
        buf.extend_from_slice(b"\r\n");
        rows += 1;
        if buf.len() >= (4 << 20) - 4096 || written + buf.len() as u64 >= target {
            env.append(&blob, &buf).await;
            written += buf.len() as u64;
            buf.clear();
        }
    }
    eprintln!(
        "wrote {rows} rows, {:.1} MiB in {:.1}s",
        written as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );

    // Start the handler as the host would, events to /dev/null.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut henv = env.host_env(port);
    henv.insert("RELAY_SINK".into(), "stdout".into());
    henv.insert("RELAY_MAX_DRAIN_TIME".into(), "1h".into());
    henv.insert("RUST_LOG".into(), "warn".into());
    let mut child = Command::new(env!("CARGO_BIN_EXE_mde-relay"))
        .arg("serve")
        .env_clear()
        .envs(henv)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let c = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    while c.get(&base).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let ev = blob_created_event(&env.url(&blob), &env.container, &blob, 0).to_string();
    let t = Instant::now();
    let r = c
        .post(format!("{base}/BlobCreated"))
        .header("Content-Type", "application/json")
        .header("X-Azure-Functions-InvocationId", "bench")
        .body(relay::queue_invocation(&ev).to_string())
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(r.status().as_u16(), 200);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    let (rss, cpu) = children_usage();

    // Completeness: the checkpoint covers every row.
    let state = env.download_all(&env.state).await;
    let cp: Value = state
        .iter()
        .find(|(n, _)| n.starts_with("cp/"))
        .map(|(_, b)| serde_json::from_slice(b).unwrap())
        .expect("checkpoint");
    assert_eq!(cp["offset"], written, "{cp}");
    assert_eq!(cp["events"], rows, "{cp}");

    let mib = written as f64 / 1048576.0;
    eprintln!(
        "drained {rows} rows, {mib:.1} MiB in {secs:.1}s: {:.1} MiB/s, {:.0} rows/s; peak RSS {:.1} MiB; relay CPU {cpu:.1}s ({:.0} MiB per CPU-second)",
        mib / secs,
        rows as f64 / secs,
        rss as f64 / 1048576.0,
        mib / cpu
    );
    env.svc
        .blob_container_client(&env.container)
        .delete(None)
        .await
        .unwrap();
    assert!(rss < LIMIT_RSS, "peak RSS {rss} bytes");
}
