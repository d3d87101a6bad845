//! Operating the relay against Azurite with the real binary: `status` (lag per table, read-only),
//! the handler's `drain_summary` metrics line, and `redrive` of dead letters.

mod common;
mod relay;

use azure_storage_blob::models::BlobContainerClientListBlobsOptions;
use futures::TryStreamExt;
use mde_relay::deadletter::blob::DeadLetterContainer;
use mde_relay::deadletter::{DeadLetter, DeadLetterSink};
use mde_relay::source::BlobKey;
use mde_relay::state::{azure::BlobCheckpointStore, CheckpointStore};
use relay::{counts, event_ids, rows, Env, Relay};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Output};

/// Runs the binary with the handler's environment (plus `extra`).
fn run(env: &Env, args: &[&str], extra: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mde-relay"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.host_env(0))
        .envs(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .output()
        .expect("run mde-relay")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `status --format json`, and the entry of the test's export container.
fn status(env: &Env) -> Value {
    let o = run(env, &["status", "--format", "json"], &[]);
    assert!(o.status.success(), "status failed: {}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("status --format json is JSON");
    v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["container"] == env.container.as_str())
        .unwrap_or_else(|| panic!("no entry for {}: {v:#}", env.container))
        .clone()
}

/// Name → (ETag, lease state) of every blob in the state container: any checkpoint write or
/// lease would show here.
async fn state_snapshot(env: &Env) -> BTreeMap<String, String> {
    let c = env.svc.blob_container_client(&env.state);
    let opts = BlobContainerClientListBlobsOptions::default();
    let mut pager = c.list_blobs(Some(opts)).unwrap();
    let mut out = BTreeMap::new();
    loop {
        let item = match pager.try_next().await {
            Ok(Some(item)) => item,
            Ok(None) => break,
            // No state container yet: nothing was ever written.
            Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => break,
            Err(e) => panic!("cannot list {}: {e}", env.state),
        };
        let p = item.properties.unwrap();
        out.insert(
            item.name.unwrap(),
            format!("{:?} {:?}", p.etag, p.lease_state),
        );
    }
    out
}

/// The hour blob of the current hour (inside the window `status` watches without checkpoints).
fn current_blob() -> String {
    Env::blob_name(&chrono::Utc::now().format("%Y/%m/%d/%H").to_string())
}

/// `status` reports exactly the bytes appended but not yet drained (including an incomplete
/// last line), zero after a drain; `--max-lag` exits 1 with a reason when exceeded and 0
/// otherwise; nothing it does changes a checkpoint or takes a lease. The drain logs one
/// `drain_summary` line with the numbers Application Insights alerts on.
#[tokio::test(flavor = "multi_thread")]
async fn status_reports_undrained_bytes_and_never_changes_a_checkpoint() {
    let env = Env::new().await;
    let blob = current_blob();
    env.create_append(&blob).await;
    let (a, ids) = rows(0..20, 10);
    env.append(&blob, &a).await;

    // Never drained: everything is pending, no checkpoint exists, and status creates none.
    let t = status(&env);
    assert_eq!(t["pending_bytes"], a.len(), "{t:#}");
    assert_eq!(t["behind"], 1, "{t:#}");
    assert_eq!(t["watched"], 1, "{t:#}");
    assert!(
        state_snapshot(&env).await.is_empty(),
        "status wrote to the state container"
    );
    let exists = env
        .svc
        .blob_container_client(&env.state)
        .get_properties(None)
        .await;
    assert!(exists.is_err(), "status created the state container");

    let relay = Relay::start(&env, &[]).await;
    let (st, _) = relay.tail().await;
    assert_eq!(st, 200, "{}", relay.logs());
    assert_eq!(event_ids(&env.events_path()).0, ids);
    let t = status(&env);
    assert_eq!(t["pending_bytes"], 0, "{t:#}");
    assert_eq!(t["behind"], 0, "{t:#}");
    assert!(t["oldest_behind"].is_null(), "{t:#}");
    assert_eq!(t["watched"], 1, "the hour is not over: still watched");

    // The drain's metrics line.
    let logs = relay.logs();
    let summary: Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "drain_summary")
        .unwrap_or_else(|| panic!("no drain_summary line:\n{logs}"));
    for f in mde_relay::metrics::SUMMARY_FIELDS {
        assert!(
            summary.get(*f).is_some(),
            "drain_summary lacks {f}: {summary}"
        );
    }
    assert_eq!(
        summary["table"],
        &env.container["insights-logs-advancedhunting-".len()..]
    );
    assert_eq!(summary["blob"], blob.as_str());
    assert_eq!(summary["bytes_read"], a.len());
    assert_eq!(summary["events_sent"], 20);
    assert_eq!(summary["dead_letters"], 0);
    assert_eq!(summary["pending_bytes"], 0);
    // Row timestamps are 2026-01-01T00:00:19 at the newest: lag is measured from there.
    let newest = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:19.1234567Z").unwrap();
    let lag = summary["lag_seconds"].as_f64().expect("lag_seconds");
    let expected = (chrono::Utc::now() - newest.to_utc()).num_milliseconds() as f64 / 1000.0;
    assert!(
        lag <= expected && lag > expected - 120.0,
        "lag {lag}, expected about {expected}"
    );

    // Appended since: complete rows and half a row.
    let (b, _) = rows(20..25, 10);
    let (half, _) = rows(25..26, 10);
    let mut more = b.clone();
    more.extend_from_slice(&half[..half.len() / 2]);
    env.append(&blob, &more).await;
    // A drain holds the blob meanwhile: status neither waits for nor disturbs its lease.
    let store = BlobCheckpointStore::new(env.account.clone(), &env.state);
    let key = BlobKey::new(env.container.as_str(), blob.as_str());
    let lease = store
        .acquire(&key, std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .expect("lease");
    let before = state_snapshot(&env).await;
    assert!(
        before.values().any(|v| v.contains("Leased")),
        "the lease shows in the snapshot: {before:?}"
    );
    assert!(
        before.keys().any(|k| k.starts_with("cp/")),
        "a checkpoint exists: {before:?}"
    );
    let t = status(&env);
    assert_eq!(t["pending_bytes"], more.len(), "{t:#}");
    assert_eq!(t["behind"], 1);
    assert!(t["oldest_behind"].is_string(), "{t:#}");

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let o = run(&env, &["status", "--max-lag", "1s"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let reason: Vec<&str> = err.lines().filter(|l| l.starts_with("lag: ")).collect();
    assert_eq!(reason.len(), 1, "one reason line: {err}");
    assert!(
        reason[0].contains("deviceprocessevents is ") && reason[0].contains("behind"),
        "{err}"
    );
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        table.starts_with("TABLE "),
        "human table by default: {table}"
    );
    let o = run(&env, &["status", "--max-lag", "1h"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // The poison queue of the events queue: its depth, by name.
    let events_queue = common::unique("ops-events");
    let poison = env
        .account
        .queue_service()
        .unwrap()
        .queue_client(&format!("{events_queue}-poison"))
        .unwrap();
    poison.create(None).await.unwrap();
    for n in 0..2 {
        let msg = azure_storage_queue::models::QueueMessage {
            message_text: Some(format!("poison {n}")),
        };
        poison
            .send_message(msg.try_into().unwrap(), None)
            .await
            .unwrap();
    }
    let o = run(
        &env,
        &["status", "--format", "json"],
        &[("RELAY_EVENTS_QUEUE", events_queue.as_str())],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["poison_queue"]["name"], format!("{events_queue}-poison"));
    assert_eq!(v["poison_queue"]["depth"], 2, "{v:#}");
    poison.delete(None).await.unwrap();
    assert_eq!(
        state_snapshot(&env).await,
        before,
        "status changed a checkpoint or took a lease"
    );
    store
        .renew(&lease)
        .await
        .expect("the drain's lease is still ours");
    store.release(&lease).await.unwrap();

    // Drained again: the complete rows go, the half row is held back and stays pending.
    let (st, _) = relay.tail().await;
    assert_eq!(st, 200, "{}", relay.logs());
    let t = status(&env);
    assert_eq!(t["pending_bytes"], half.len() / 2, "{t:#}");
    let rest = &half[half.len() / 2..];
    env.append(&blob, rest).await;
    let (st, _) = relay.tail().await;
    assert_eq!(st, 200);
    let t = status(&env);
    assert_eq!(t["pending_bytes"], 0, "{t:#}");
    let o = run(&env, &["status", "--max-lag", "1s"], &[]);
    assert_eq!(o.status.code(), Some(0), "nothing pending: {}", stderr(&o));
    assert_eq!(event_ids(&env.events_path()).0.len(), 26);
}

/// A dead letter with `original` bytes `line` at `offset` of the test's blob.
fn record(env: &Env, blob: &str, offset: u64, line: &[u8], reason: &str) -> DeadLetter {
    DeadLetter {
        reason: reason.into(),
        container: Some(env.container.clone()),
        blob: blob.into(),
        offset,
        length: line.len() as u64,
        original: Some(String::from_utf8(line.to_vec()).unwrap()),
        original_base64: None,
        truncated: false,
        rejected_by: None,
        event_id: None,
    }
}

/// Rows a relay with a bug refused (their `original` bytes are valid rows now) are sent again
/// exactly once, with the ids and source a first delivery gives, and removed; a row that is
/// still malformed stays with the new reason; records outside `--table`/`--since` stay.
#[tokio::test(flavor = "multi_thread")]
async fn redrive_resends_fixed_dead_letters_once_and_keeps_the_rest() {
    let env = Env::new().await;
    let blob = Env::blob_name("2026/11/01/05");
    let old_blob = Env::blob_name("2026/10/01/05");
    let (ok, ids) = rows(0..3, 4);
    let lines: Vec<&[u8]> = ok
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l.strip_suffix(b"\r").unwrap())
        .collect();
    let bad =
        b"{\"time\":\"2026-11-01T05:00:00Z\",\"tenantId\":\"t\",\"properties\":{\"broken\": }";
    let mut offsets = Vec::new();
    let mut at = 0u64;
    for l in &lines {
        offsets.push(at);
        at += l.len() as u64 + 2;
    }
    // Two groups as the drain writes them: fixed rows plus a malformed one, and one more
    // fixed row of an older hour that --since leaves out.
    let dl = DeadLetterContainer::new(env.account.clone(), &env.deadletter);
    let mut group = vec![
        record(&env, &blob, offsets[0], lines[0], "old parser bug"),
        record(&env, &blob, offsets[1], lines[1], "old parser bug"),
        record(&env, &blob, at, bad, "old reason"),
        record(&env, &blob, offsets[2], lines[2], "old parser bug"),
    ];
    dl.store(&group).await.unwrap();
    let (old_row, old_ids) = rows(50..51, 4);
    let old_line = old_row.strip_suffix(b"\r\n").unwrap();
    dl.store(&[record(&env, &old_blob, 0, old_line, "old parser bug")])
        .await
        .unwrap();

    // status counts them per table (from the listing: the writer records the count).
    assert_eq!(status(&env)["dead_letters"], 5);

    let table = &env.container["insights-logs-advancedhunting-".len()..];
    let args = ["redrive", "--table", table, "--since", "2026-11-01T00"];
    let o = run(&env, &args, &[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "one row stays dead: {}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("4 selected") && stderr(&o).contains("3 delivered"),
        "{}",
        stderr(&o)
    );
    let (got, torn) = event_ids(&env.events_path());
    assert_eq!(torn, 0);
    assert_eq!(got, ids, "the ids a first delivery gives, in order");
    // Same source as a first delivery.
    let text = std::fs::read_to_string(env.events_path()).unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["source"]["container"], env.container.as_str());
    assert_eq!(first["source"]["blob"], blob.as_str());
    assert_eq!(first["source"]["offset"], offsets[0]);

    let stored = env.download_all(&env.deadletter).await;
    let mut left: Vec<DeadLetter> = Vec::new();
    for (_, body) in &stored {
        for l in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            left.push(serde_json::from_slice(l).unwrap());
        }
    }
    assert_eq!(
        left.len(),
        2,
        "the malformed row and the unselected one: {left:?}"
    );
    let still_bad = left
        .iter()
        .find(|r| r.offset == at && r.blob == blob)
        .unwrap();
    assert_ne!(still_bad.reason, "old reason", "kept with the new reason");
    assert_eq!(still_bad.original.as_deref().unwrap().as_bytes(), bad);
    assert!(
        left.iter().any(|r| r.blob == old_blob),
        "outside --since: kept"
    );
    assert_eq!(status(&env)["dead_letters"], 2);

    // Again: nothing more is sent.
    let o = run(&env, &args, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(event_ids(&env.events_path()).0, ids, "nothing sent twice");

    // Without bounds the older row goes too; the malformed one still stays.
    let o = run(&env, &["redrive"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let (got, _) = event_ids(&env.events_path());
    let mut want = ids.clone();
    want.extend(old_ids);
    assert_eq!(got, want);
    assert!(counts(&got).values().all(|&n| n == 1));

    // A local dead-letter file: successes move to <file>.done, the rest stays.
    let file = env.dir.path().join("deadletter.ndjson");
    group.truncate(3);
    let body: Vec<u8> = group.iter().flat_map(|r| r.to_line()).collect();
    std::fs::write(&file, &body).unwrap();
    let out = env.dir.path().join("local-events.ndjson");
    let o = run(
        &env,
        &[
            "redrive",
            "--dead-letter",
            file.to_str().unwrap(),
            "--sink",
            "file",
            "--file-path",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(event_ids(&out).0, ids[..2].to_vec());
    let kept = std::fs::read_to_string(&file).unwrap();
    assert_eq!(kept.lines().count(), 1, "{kept}");
    assert!(kept.contains("\"offset\":") && !kept.contains("old reason"));
    let done = std::fs::read_to_string(file.with_extension("ndjson.done")).unwrap();
    let done: Vec<DeadLetter> = done
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(done, group[..2].to_vec());
}

/// The same for a local export copy and a backfill's `--state` directory: status counts what a
/// backfill drained, then exactly what was appended since, without touching the checkpoints.
#[test]
fn status_of_a_local_backfill() {
    let dir = tempfile::tempdir().unwrap();
    let container = "insights-logs-advancedhunting-deviceprocessevents";
    let blob = Env::blob_name("2026/11/01/05");
    let path = dir.path().join("export").join(container).join(&blob);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let (a, _) = rows(0..10, 4);
    std::fs::write(&path, &a).unwrap();
    let source = format!("dir:{}", dir.path().join("export").display());
    let state = dir.path().join("state");
    let bin = env!("CARGO_BIN_EXE_mde-relay");
    let out = dir.path().join("events.ndjson");
    let o = Command::new(bin)
        .args(["process", "--source", &source, "--since", "2026-11-01T00"])
        .args(["--until", "2026-11-02T00", "--state"])
        .arg(&state)
        .arg("--out")
        .arg(&out)
        .env_remove("AzureWebJobsStorage")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let status = || {
        let o = Command::new(bin)
            .args(["status", "--format", "json", "--source", &source, "--state"])
            .arg(&state)
            .env_remove("AzureWebJobsStorage")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(v["poison_queue"].is_null(), "no host storage, no queue");
        v["tables"][0].clone()
    };
    let t = status();
    assert_eq!(t["table"], "DeviceProcessEvents");
    assert_eq!(t["pending_bytes"], 0, "{t:#}");
    assert_eq!(t["newest_hour"], "2026-11-01T05:00:00Z");
    let snapshot = || {
        walkdir::WalkDir::new(&state)
            .sort_by_file_name()
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                let body = e
                    .file_type()
                    .is_file()
                    .then(|| std::fs::read(e.path()).unwrap());
                (e.path().to_path_buf(), body)
            })
            .collect::<Vec<_>>()
    };
    let before = snapshot();
    let (b, _) = rows(10..13, 4);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, &b).unwrap();
    let t = status();
    assert_eq!(t["pending_bytes"], b.len(), "{t:#}");
    assert_eq!(t["behind"], 1);
    assert_eq!(snapshot(), before, "status changed the state directory");
}
