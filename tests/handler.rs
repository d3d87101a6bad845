//! End-to-end tests of the Functions custom handler: the real `mde-relay serve` binary, started
//! with the environment the Functions host gives it, against Azurite, driven by the host's
//! invocation payloads (queue trigger with plain and base64 BlobCreated events, timer trigger).

mod common;
mod relay;

use relay::{b64, blob_created_event, counts, event_ids, rows, Env, Relay};
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn assert_exactly_once(env: &Env, expected: &[String]) {
    let (ids, torn) = event_ids(&env.events_path());
    assert_eq!(torn, 0, "no torn lines without a crash");
    let c = counts(&ids);
    for id in expected {
        assert_eq!(c.get(id.as_str()), Some(&1), "event {id} delivered once");
    }
    assert_eq!(ids.len(), expected.len(), "no extra events");
}

/// An append blob created empty, then appended in three steps (rows split across appends; the
/// last append ends without a row terminator), is delivered completely and exactly once after
/// BlobCreated and Tail runs: complete rows on the next Tail, the unterminated last row once the
/// blob is closed.
#[tokio::test(flavor = "multi_thread")]
async fn append_blob_in_three_steps_is_delivered_exactly_once() {
    let env = Env::new().await;
    let relay = Relay::start(&env, &[("RELAY_CLOSE_GRACE", "4s")]).await;
    let blob = Env::blob_name("2026/01/01/00");
    let url = env.url(&blob);

    // Created empty: BlobCreated fires once, with contentLength 0 (plain queue message).
    env.create_append(&blob).await;
    let ev = blob_created_event(&url, &env.container, &blob, 0).to_string();
    let (st, body) = relay.blob_created(&ev).await;
    assert_eq!(st, 200, "{body}\n{}", relay.logs());
    assert_eq!(
        body,
        serde_json::json!({"Outputs":{},"Logs":[],"ReturnValue":null})
    );
    assert_eq!(event_ids(&env.events_path()).0.len(), 0);

    let (all, ids) = rows(0..30, 40);
    // Cut points inside rows: after row 9's middle, after row 19's middle; the last append ends
    // with row 29 complete but without its CRLF.
    let row_start = |i: usize| -> usize {
        let mut n = 0;
        let mut off = 0;
        while n < i {
            off += all[off..].windows(2).position(|w| w == b"\r\n").unwrap() + 2;
            n += 1;
        }
        off
    };
    let cut1 = row_start(9) + 25;
    let cut2 = row_start(19) + 60;
    let end = all.len() - 2;

    // Append 1 (ends mid-row 9): Tail forwards rows 0..9.
    env.append(&blob, &all[..cut1]).await;
    let (st, _) = relay.tail().await;
    assert_eq!(st, 200, "{}", relay.logs());
    let (got, _) = event_ids(&env.events_path());
    assert_eq!(got, ids[..9].to_vec());

    // Append 2 (completes row 9, ends mid-row 19): Tail forwards rows 9..19.
    env.append(&blob, &all[cut1..cut2]).await;
    let (st, _) = relay.tail().await;
    assert_eq!(st, 200);
    assert_eq!(event_ids(&env.events_path()).0, ids[..19].to_vec());

    // Append 3 (ends with row 29 unterminated). A duplicate BlobCreated (base64, as Event Grid
    // writes queue messages) and a Tail: rows 19..29; row 29 is held back while the blob is open.
    env.append(&blob, &all[cut2..end]).await;
    let (st, _) = relay.blob_created(&b64(&ev)).await;
    assert_eq!(st, 200, "{}", relay.logs());
    let (st, _) = relay.tail().await;
    assert_eq!(st, 200);
    assert_eq!(event_ids(&env.events_path()).0, ids[..29].to_vec());

    // Once the blob is closed (hour over, quiet for the grace period), Tail forwards the last
    // row; more Tail runs change nothing.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for _ in 0..2 {
        let (st, _) = relay.tail().await;
        assert_eq!(st, 200);
    }
    assert_exactly_once(&env, &ids);
    let logs = relay.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("\"invocation_id\"") && l.contains("drained")),
        "JSON logs carry the invocation id:\n{logs}"
    );
}

/// A blob nobody announced (lost event), in the current hour, is found by Tail's listing.
#[tokio::test(flavor = "multi_thread")]
async fn tail_finds_blobs_without_events() {
    let env = Env::new().await;
    let relay = Relay::start(&env, &[]).await;
    let blob = Env::blob_name(&chrono::Utc::now().format("%Y/%m/%d/%H").to_string());
    env.create_append(&blob).await;
    let (data, ids) = rows(0..25, 10);
    env.append(&blob, &data).await;
    let (st, _) = relay.tail().await;
    assert_eq!(st, 200, "{}", relay.logs());
    assert_exactly_once(&env, &ids);
    // Grows later: the next Tail forwards the new rows (the blob is known and open now).
    let (more, more_ids) = rows(25..40, 10);
    env.append(&blob, &more).await;
    let (st, _) = relay.tail().await;
    assert_eq!(st, 200);
    let mut all = ids;
    all.extend(more_ids);
    assert_exactly_once(&env, &all);
}

/// An event naming a foreign account (here: a local listener) or a non-export container is
/// rejected and logged without any request to it.
#[tokio::test(flavor = "multi_thread")]
async fn events_naming_other_accounts_are_rejected_without_a_request() {
    let env = Env::new().await;
    let relay = Relay::start(&env, &[]).await;
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let port = trap.local_addr().unwrap().port();
    let blob = Env::blob_name("2026/01/01/00");
    let foreign = format!(
        "http://127.0.0.1:{port}/devstoreaccount1/{}/{blob}",
        env.container
    );
    let other_container = format!("{}/not-an-export-container/{blob}", common::blob_endpoint());
    let other_account = format!(
        "http://127.0.0.1:{}/otheraccount/{}/{blob}",
        url::Url::parse(&common::blob_endpoint())
            .unwrap()
            .port()
            .unwrap(),
        env.container
    );
    for url in [&foreign, &other_container, &other_account] {
        let ev = blob_created_event(url, &env.container, &blob, 0);
        let (st, _) = relay.blob_created(&b64(&ev.to_string())).await;
        assert_eq!(st, 200, "rejected, not retried: {}", relay.logs());
    }
    // An array of events in one message, plain.
    let arr = serde_json::json!([blob_created_event(&foreign, &env.container, &blob, 0)]);
    let (st, _) = relay.blob_created(&arr.to_string()).await;
    assert_eq!(st, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    match trap.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the foreign listener was contacted: {other:?}"),
    }
    let logs = relay.logs();
    assert_eq!(
        logs.matches("rejected event").count(),
        4,
        "each rejection is logged:\n{logs}"
    );
    assert!(
        !std::fs::exists(env.events_path()).unwrap() || event_ids(&env.events_path()).0.is_empty()
    );
}

/// A malformed row lands in the dead-letter container with its blob, offset, reason and
/// original bytes; the rows around it are delivered.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_rows_are_dead_lettered_with_their_location() {
    let env = Env::new().await;
    let relay = Relay::start(&env, &[]).await;
    let blob = Env::blob_name("2026/01/01/00");
    env.create_append(&blob).await;
    let (a, mut ids) = rows(0..3, 5);
    let bad = b"{\"time\":\"2026-01-01T00:59:00Z\",\"tenantId\":\"t\",\"category\":\"AdvancedHunting-DeviceEvents\",\"properties\":{\"broken\": }";
    let (c, more) = rows(3..6, 5);
    ids.extend(more);
    let mut data = a.clone();
    let bad_offset = data.len() as u64;
    data.extend_from_slice(bad);
    data.extend_from_slice(b"\r\n");
    data.extend_from_slice(&c);
    env.append(&blob, &data).await;
    // Delivered the eventGridTrigger way (the event object itself as binding data), in the
    // CloudEvents schema.
    let ce = serde_json::json!({
        "specversion": "1.0",
        "type": "Microsoft.Storage.BlobCreated",
        "source": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/devstoreaccount1",
        "id": "ce-1",
        "time": "2026-11-25T10:00:00Z",
        "subject": format!("/blobServices/default/containers/{}/blobs/{blob}", env.container),
        "data": {"api": "PutBlob", "blobType": "AppendBlob", "contentLength": data.len(), "url": env.url(&blob)}
    });
    let invocation = serde_json::json!({
        "Data": {"event": ce},
        "Metadata": {"sys": {"MethodName": "BlobCreated", "UtcNow": "2026-11-25T10:00:00Z", "RandGuid": "r"}}
    });
    let (st, _) = relay.invoke("BlobCreated", &invocation).await;
    assert_eq!(st, 200, "{}", relay.logs());
    assert_exactly_once(&env, &ids);

    let dl = env.download_all(&env.deadletter).await;
    assert_eq!(dl.len(), 1, "one dead-letter blob: {dl:?}");
    let (name, body) = &dl[0];
    assert!(
        name.starts_with(&format!("{}/{blob}/", env.container)),
        "{name}"
    );
    let rec: serde_json::Value =
        serde_json::from_slice(body.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(rec["container"], env.container.as_str());
    assert_eq!(rec["blob"], blob.as_str());
    assert_eq!(rec["offset"], bad_offset);
    assert_eq!(rec["original"], std::str::from_utf8(bad).unwrap());
    assert!(rec["reason"].as_str().unwrap().contains("JSON"), "{rec}");
}

/// SIGKILL in the middle of a large drain, then a restart: nothing is lost, and at most the
/// batch in flight is sent again, with the same ids.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_drain_loses_nothing_and_resends_at_most_one_batch() {
    const BATCH: usize = 200;
    let env = Env::new().await;
    let blob = Env::blob_name("2026/01/01/00");
    env.create_append(&blob).await;
    let (data, ids) = rows(0..40_000, 400);
    env.append(&blob, &data).await;
    // A checkpoint after every acknowledged batch (no coalescing), and the file sink takes one
    // batch at a time: so at most one batch is re-sent. The pipelined case (several batches in
    // flight, coalesced checkpoints) is `sigkill_with_batches_in_flight_resends_only_whole_batches`.
    let settings = [
        ("RELAY_BATCH_MAX_EVENTS", "200"),
        ("RELAY_READ_CHUNK", "1MiB"),
        ("RELAY_CLOSE_GRACE", "1s"),
        ("RELAY_CHECKPOINT_BYTES", "1"),
    ];
    let mut relay = Relay::start(&env, &settings).await;
    let ev = blob_created_event(&env.url(&blob), &env.container, &blob, 0).to_string();
    let invocation = relay.blob_created_in_background(&ev);
    // Kill once a good part (but not all) was delivered.
    let started = Instant::now();
    loop {
        let n = event_ids(&env.events_path()).0.len();
        if n >= ids.len() / 4 {
            assert!(
                n < ids.len(),
                "drain finished before the kill; make the blob larger"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "drain too slow: {n} events\n{}",
            relay.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    relay.kill();
    let _ = invocation.await;
    let before = event_ids(&env.events_path()).0.len();

    // Restart; Tail until everything is there (the dead process's lease expires in ≤ 15 s).
    let relay = Relay::start(&env, &settings).await;
    let started = Instant::now();
    loop {
        let (st, _) = relay.tail().await;
        assert_eq!(st, 200, "{}", relay.logs());
        let got: HashSet<String> = event_ids(&env.events_path()).0.into_iter().collect();
        if got.len() == ids.len() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not everything delivered after restart: {} of {}\n{}",
            got.len(),
            ids.len(),
            relay.logs()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (got, torn) = event_ids(&env.events_path());
    assert!(
        torn <= 1,
        "at most the line being written when killed is torn"
    );
    let expected: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let c = counts(&got);
    assert!(c.keys().all(|k| expected.contains(k)), "only expected ids");
    let dup: usize = c.values().map(|n| n - 1).sum();
    eprintln!(
        "killed after {before} of {} events; re-sent {dup}, torn {torn}",
        ids.len()
    );
    assert!(
        dup + torn <= BATCH,
        "re-sent {dup} events (+{torn} torn); at most one batch of {BATCH} (killed after {before})"
    );
    // Re-sent events are contiguous: the in-flight batch, sent again whole.
    let first_dup = got.iter().position(|id| c[id.as_str()] > 1);
    if let Some(p) = first_dup {
        assert!(got[p..p + dup].iter().all(|id| c[id.as_str()] == 2));
    }
}

/// SIGTERM: the handler stops taking work and exits with the host's "intentional restart" code
/// 200, so a host still routing to it restarts the worker (it does not restart one that exits 0).
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_cleanly() {
    let env = Env::new().await;
    let mut relay = Relay::start(&env, &[]).await;
    let (st, _) = relay.tail().await;
    assert_eq!(st, 200, "{}", relay.logs());
    let status = relay.terminate();
    assert_eq!(
        status.code(),
        Some(mde_relay::handler::RESTART_EXIT_CODE.into()),
        "{status:?}\n{}",
        relay.logs()
    );
    assert!(relay.logs().contains("shutdown requested"));
    assert!(relay.logs().contains("mde-relay handler stopped"));
}

/// Bad settings stop start-up with a message naming the setting, before listening.
#[test]
fn bad_settings_stop_startup_naming_the_setting() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mde-relay"))
        .arg("serve")
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", "1")
        .env("AzureWebJobsStorage", "UseDevelopmentStorage=true")
        .env("MdeExportStorage", "UseDevelopmentStorage=true")
        .env("RELAY_LEASE_SECONDS", "5")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("RELAY_LEASE_SECONDS"), "{err}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mde-relay"))
        .arg("serve")
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", "1")
        .env("AzureWebJobsStorage", "UseDevelopmentStorage=true")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MdeExportStorage"), "{err}");
}

/// `process --source MdeExportStorage --since … --until …` drains the chosen hours through the
/// configured sink with the handler's checkpoints (in AzureWebJobsStorage): a BlobCreated for a
/// backfilled blob afterwards sends nothing again, and appended rows are picked up.
#[tokio::test(flavor = "multi_thread")]
async fn backfill_shares_checkpoints_with_the_handler() {
    let env = Env::new().await;
    let mut want = Vec::new();
    let mut blobs = Vec::new();
    for (hour, range) in [
        ("2026/11/01/00", 0..10),
        ("2026/11/01/01", 10..30),
        ("2026/11/01/03", 30..35),
    ] {
        let blob = Env::blob_name(hour);
        env.create_append(&blob).await;
        let (data, ids) = rows(range, 8);
        env.append(&blob, &data).await;
        if hour != "2026/11/01/03" {
            want.extend(ids);
        }
        blobs.push(blob);
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mde-relay"))
        .args([
            "process",
            "--source",
            "MdeExportStorage",
            "--since",
            "2026-11-01T00",
            "--until",
            "2026-11-01T02",
        ])
        .env_clear()
        .envs(env.host_env(0))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("2 blob(s)"), "{err}");
    let (got, _) = event_ids(&env.events_path());
    let mut sorted = got.clone();
    sorted.sort();
    want.sort();
    assert_eq!(sorted, want);

    let relay = Relay::start(&env, &[]).await;
    let ev = blob_created_event(&env.url(&blobs[1]), &env.container, &blobs[1], 0);
    let (st, _) = relay.blob_created(&ev.to_string()).await;
    assert_eq!(st, 200, "{}", relay.logs());
    assert_eq!(
        event_ids(&env.events_path()).0.len(),
        want.len(),
        "nothing sent twice"
    );
    let (more, more_ids) = rows(100..103, 8);
    env.append(&blobs[1], &more).await;
    let (st, _) = relay.tail().await;
    assert_eq!(st, 200);
    let (got, _) = event_ids(&env.events_path());
    assert_eq!(got[want.len()..].to_vec(), more_ids);
}
