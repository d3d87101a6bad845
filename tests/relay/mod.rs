//! Helpers for the handler tests: export rows, writing append blobs into Azurite, starting the
//! real `mde-relay serve` binary with the environment the Functions host gives it, and posting
//! the host's invocation payloads.
#![allow(dead_code)]

use super::common;
use azure_core::http::RequestContent;
use azure_storage_blob::BlobServiceClient;
use mde_relay::azure::StorageAccount;
use mde_relay::normalize::event_id;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The tenant of generated rows.
pub const TENANT: &str = "0f3c6a5e-1111-4222-8333-944455556666";

/// One export row (without terminator) and the id its event must get.
pub fn row(i: u64, pad: usize) -> (String, String) {
    let props = format!(
        r#"{{"Timestamp":"2026-01-01T00:{:02}:{:02}.1234567Z","DeviceId":"dev-{}","DeviceName":"host-{}","ActionType":"ProcessCreated","MachineGroup":"UnassignedGroup","ReportId":{},"FileName":"cmd.exe","ProcessCommandLine":"{}","AdditionalFields":"{{\"n\":{}}}"}}"#,
        (i / 60) % 60,
        i % 60,
        i % 97,
        i % 13,
        639199803770463703u64 + i,
        "x".repeat(pad),
        i
    );
    let line = format!(
        r#"{{"time":"2026-01-01T00:59:00.0000000Z","tenantId":"{TENANT}","operationName":"Publish","category":"AdvancedHunting-DeviceProcessEvents","properties":{props},"Tenant":"DefaultTenant"}}"#
    );
    let id = event_id(TENANT, "DeviceProcessEvents", props.as_bytes());
    (line, id.as_str().to_string())
}

/// Rows `range` as CRLF-terminated bytes, and their ids.
pub fn rows(range: std::ops::Range<u64>, pad: usize) -> (Vec<u8>, Vec<String>) {
    let mut b = Vec::new();
    let mut ids = Vec::new();
    for i in range {
        let (l, id) = row(i, pad);
        b.extend_from_slice(l.as_bytes());
        b.extend_from_slice(b"\r\n");
        ids.push(id);
    }
    (b, ids)
}

/// A random lower-case hex suffix.
pub fn suffix() -> String {
    format!("{:010x}", rand::random::<u64>() & 0xff_ffff_ffff)
}

/// One test's slice of Azurite: its own export container prefix, export container, state and
/// dead-letter containers.
pub struct Env {
    pub account: StorageAccount,
    pub svc: BlobServiceClient,
    /// `RELAY_CONTAINER_PREFIX` for this test.
    pub prefix: String,
    /// The export container (starts with `prefix`).
    pub container: String,
    pub state: String,
    pub deadletter: String,
    /// `RELAY_EVENTS_QUEUE` of this test (BlobCreated's trigger queue, where Tail dispatches).
    pub queue: String,
    pub dir: tempfile::TempDir,
}

impl Env {
    /// A fresh environment; fails with instructions when Azurite is not running.
    pub async fn new() -> Env {
        let account = common::azurite();
        let svc = account.blob_service().expect("blob client");
        let s = suffix();
        let prefix = format!("insights-logs-advancedhunting-t{s}-");
        let env = Env {
            container: format!("{prefix}deviceprocessevents"),
            state: format!("state-{s}"),
            deadletter: format!("deadletter-{s}"),
            queue: format!("events-{s}"),
            prefix,
            account,
            svc,
            dir: tempfile::tempdir().unwrap(),
        };
        env.svc
            .blob_container_client(&env.container)
            .create(None)
            .await
            .expect("create export container");
        env
    }

    /// The export blob name of an hour.
    pub fn blob_name(hour: &str) -> String {
        // hour: "YYYY/MM/DD/HH"
        let p: Vec<&str> = hour.split('/').collect();
        format!(
            "tenantId={TENANT}/y={}/m={}/d={}/h={}/m=00/PT1H.json",
            p[0], p[1], p[2], p[3]
        )
    }

    /// The blob URL an event for `blob` carries.
    pub fn url(&self, blob: &str) -> String {
        format!("{}/{}/{}", common::blob_endpoint(), self.container, blob)
    }

    /// Creates an empty append blob.
    pub async fn create_append(&self, blob: &str) {
        self.svc
            .blob_client(&self.container, blob)
            .append_blob_client()
            .create(None)
            .await
            .expect("create append blob");
    }

    /// Appends `data` (in blocks of at most 4 MiB).
    pub async fn append(&self, blob: &str, data: &[u8]) {
        let c = self
            .svc
            .blob_client(&self.container, blob)
            .append_blob_client();
        for part in data.chunks(4 << 20) {
            c.append_block(RequestContent::from(part.to_vec()), part.len() as u64, None)
                .await
                .expect("append block");
        }
    }

    /// Downloads every blob of `container` as (name, bytes).
    pub async fn download_all(&self, container: &str) -> Vec<(String, Vec<u8>)> {
        use futures::TryStreamExt;
        let c = self.svc.blob_container_client(container);
        let mut pager = c.list_blobs(None).unwrap();
        let mut out = Vec::new();
        while let Some(item) = pager.try_next().await.unwrap() {
            let name = item.name.unwrap();
            let body = c
                .blob_client(&name)
                .download(None)
                .await
                .unwrap()
                .body
                .collect()
                .await
                .unwrap();
            out.push((name, body.to_vec()));
        }
        out
    }

    /// The events file of the relay.
    pub fn events_path(&self) -> PathBuf {
        self.dir.path().join("events.ndjson")
    }

    /// The connection string the host would give: `UseDevelopmentStorage=true` when Azurite
    /// is on its standard ports, explicit endpoints otherwise.
    pub fn connection_string() -> String {
        let standard = common::blob_endpoint() == "http://127.0.0.1:10000/devstoreaccount1"
            && common::queue_endpoint() == "http://127.0.0.1:10001/devstoreaccount1";
        if standard {
            "UseDevelopmentStorage=true".into()
        } else {
            common::azurite_connection_string()
        }
    }

    /// The environment the Functions host gives the handler (plus the test's settings).
    pub fn host_env(&self, port: u16) -> HashMap<String, String> {
        let cs = Self::connection_string();
        let mut m = HashMap::new();
        for (k, v) in [
            ("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()),
            ("FUNCTIONS_WORKER_RUNTIME", "custom".into()),
            ("AzureWebJobsStorage", cs.clone()),
            ("MdeExportStorage", cs),
            ("RELAY_CONTAINER_PREFIX", self.prefix.clone()),
            ("RELAY_STATE_CONTAINER", self.state.clone()),
            ("RELAY_DEADLETTER_CONTAINER", self.deadletter.clone()),
            ("RELAY_EVENTS_QUEUE", self.queue.clone()),
            ("RELAY_SINK", "file".into()),
            ("RELAY_FILE_PATH", self.events_path().display().to_string()),
            ("RELAY_LEASE_SECONDS", "15".into()),
            ("RUST_LOG", "info".into()),
        ] {
            m.insert(k.to_string(), v);
        }
        m
    }
}

/// A running `mde-relay serve`.
pub struct Relay {
    pub child: Child,
    pub port: u16,
    /// stdout (the JSON logs).
    pub log: PathBuf,
    /// stderr, kept apart: the host logs its lines containing "error" at Error level.
    pub err_log: PathBuf,
    /// The trigger queue Tail dispatches drain requests to.
    pub queue: String,
    client: reqwest::Client,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Relay {
    /// Starts the binary with `env` (the port is chosen here) and waits until `GET /` answers,
    /// as the host does.
    pub async fn start(env: &Env, extra: &[(&str, &str)]) -> Relay {
        let port = free_port();
        let log = env.dir.path().join(format!("relay-{port}.log"));
        let err_log = env.dir.path().join(format!("relay-{port}.stderr"));
        let out = std::fs::File::create(&log).unwrap();
        let err = std::fs::File::create(&err_log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mde-relay"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.host_env(port))
            .envs(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = cmd.spawn().expect("start mde-relay serve");
        let relay = Relay {
            child,
            port,
            log,
            err_log,
            queue: env.queue.clone(),
            client: reqwest::Client::new(),
        };
        let started = Instant::now();
        loop {
            if let Ok(r) = relay
                .client
                .get(format!("http://127.0.0.1:{port}/"))
                .send()
                .await
            {
                assert!(r.status().is_success());
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "relay did not answer GET / within 30 s; log:\n{}",
                relay.logs()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        relay
    }

    /// Everything the relay wrote to stdout, then everything it wrote to stderr.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default() + &self.stderr()
    }

    /// What the relay wrote to stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err_log).unwrap_or_default()
    }

    /// Posts an invocation the way the host does; returns status and body.
    pub async fn invoke(&self, function: &str, body: &Value) -> (u16, Value) {
        self.try_invoke(function, body)
            .await
            .expect("invocation request")
    }

    /// Like [`Relay::invoke`], but a worker that died (connection refused or reset) is an
    /// error instead of a panic.
    pub async fn try_invoke(
        &self,
        function: &str,
        body: &Value,
    ) -> Result<(u16, Value), reqwest::Error> {
        let r = self
            .client
            .post(format!("http://127.0.0.1:{}/{function}", self.port))
            .header(
                "X-Azure-Functions-InvocationId",
                format!("{:032x}", rand::random::<u128>()),
            )
            .header(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .timeout(Duration::from_secs(300))
            .send()
            .await?;
        let status = r.status().as_u16();
        let bytes = r.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// Posts a BlobCreated invocation carrying `message` from a task of its own, for a test that
    /// kills the worker while it runs: the answer (or the broken connection) is ignored.
    pub fn blob_created_in_background(&self, message: &str) -> tokio::task::JoinHandle<()> {
        let url = format!("http://127.0.0.1:{}/BlobCreated", self.port);
        let body = queue_invocation(message).to_string();
        tokio::spawn(async move {
            let _ = reqwest::Client::new()
                .post(url)
                .header("X-Azure-Functions-InvocationId", "kill-me")
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await;
        })
    }

    /// Posts a BlobCreated queue-trigger invocation carrying `message` (the queue message text).
    pub async fn blob_created(&self, message: &str) -> (u16, Value) {
        self.invoke("BlobCreated", &queue_invocation(message)).await
    }

    /// Posts a Tail timer-trigger invocation only (its drain requests stay on the queue).
    pub async fn tail_only(&self) -> (u16, Value) {
        self.invoke("Tail", &timer_invocation()).await
    }

    /// A Tail run as the host completes it: the timer invocation, then every drain request it
    /// put on the queue handed to this worker's BlobCreated, as the queue trigger would. The
    /// status is Tail's, or that of the first queue invocation that failed.
    pub async fn tail(&self) -> (u16, Value) {
        let (st, body) = self.tail_only().await;
        if st != 200 {
            return (st, body);
        }
        let p = pump(&self.queue, &[self]).await;
        match p.failures.first() {
            Some(f) => (f.0, Value::String(f.1.clone())),
            None => (st, body),
        }
    }

    /// Kills the process with SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM)
    }

    /// Sends SIGINT (Ctrl-C) and waits for the exit status.
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGINT)
    }

    fn signal(&mut self, sig: libc::c_int) -> std::process::ExitStatus {
        // SAFETY: signalling our own child by pid.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
        self.child.wait().unwrap()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sys(method: &str) -> Value {
    json!({
        "MethodName": method,
        "UtcNow": "2026-11-25T10:00:00.0000000Z",
        "RandGuid": "8b3e6f8e-7c1f-4c1e-9a3b-6d1f0c2e4a5b"
    })
}

/// The host's queue-trigger invocation: the message text arrives JSON-encoded as a string,
/// and string metadata values are JSON-encoded a second time.
pub fn queue_invocation(message: &str) -> Value {
    json!({
        "Data": {"message": serde_json::to_string(message).unwrap()},
        "Metadata": {
            "DequeueCount": "1",
            "ExpirationTime": "\"2026-12-02T10:00:00+00:00\"",
            "Id": "\"5d6b3f0e-2b1c-4e0f-9c8a-7f6e5d4c3b2a\"",
            "InsertionTime": "\"2026-11-25T10:00:00+00:00\"",
            "NextVisibleTime": "\"2026-11-25T10:10:00+00:00\"",
            "PopReceipt": "\"AgAAAAMAAAAAAAAA\"",
            "sys": sys("BlobCreated")
        }
    })
}

/// The host's timer-trigger invocation.
pub fn timer_invocation() -> Value {
    json!({
        "Data": {"timer": {
            "Schedule": {"AdjustForDST": true},
            "ScheduleStatus": {
                "Last": "2026-11-25T09:59:00+00:00",
                "Next": "2026-11-25T10:01:00+00:00",
                "LastUpdated": "2026-11-25T10:00:00+00:00"
            },
            "IsPastDue": false
        }},
        "Metadata": {"sys": sys("Tail")}
    })
}

/// An Event Grid BlobCreated event (Event Grid schema) for `url`.
pub fn blob_created_event(url: &str, container: &str, blob: &str, len: u64) -> Value {
    json!({
        "topic": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/devstoreaccount1",
        "subject": format!("/blobServices/default/containers/{container}/blobs/{blob}"),
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": format!("{:032x}", rand::random::<u128>()),
        "data": {
            "api": "PutBlob",
            "clientRequestId": "c0ffee00-0000-0000-0000-000000000000",
            "requestId": "deadbeef-0000-0000-0000-000000000000",
            "eTag": "0x8DCAFEBABE00000",
            "contentType": "application/octet-stream",
            "contentLength": len,
            "blobType": "AppendBlob",
            "url": url,
            "sequencer": "00000000000000000000000000000000000000000000000",
            "storageDiagnostics": {"batchId": "b0000000-0000-0000-0000-000000000000"}
        },
        "dataVersion": "",
        "metadataVersion": "1",
        "eventTime": "2026-11-25T10:00:00.0000000Z"
    })
}

/// Base64 of `s`.
pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Ids of the events in an NDJSON file, in order; lines that do not parse (a line torn by a
/// crash) are counted separately.
pub fn event_ids(path: &Path) -> (Vec<String>, usize) {
    let text = std::fs::read(path).unwrap_or_default();
    let mut ids = Vec::new();
    let mut torn = 0;
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<Value>(line) {
            Ok(v) => ids.push(v["id"].as_str().unwrap().to_string()),
            Err(_) => torn += 1,
        }
    }
    (ids, torn)
}

/// How often each id occurs.
pub fn counts(ids: &[String]) -> HashMap<&str, usize> {
    let mut m = HashMap::new();
    for i in ids {
        *m.entry(i.as_str()).or_insert(0) += 1;
    }
    m
}

/// What [`pump`] did.
#[derive(Debug, Default)]
pub struct Pumped {
    /// Messages handed to each worker (same order as the workers).
    pub per_worker: Vec<usize>,
    /// Status and body of queue invocations that failed (their messages stay on the queue).
    pub failures: Vec<(u16, String)>,
}

/// Plays the host's queue trigger on `queue`: receives messages (invisible meanwhile), decodes
/// base64 (`messageEncoding: base64`; a message that is not base64 would go to the poison queue
/// unread, so it fails here), posts each to a worker's BlobCreated (round robin, a received
/// batch concurrently, as one instance runs `batchSize` invocations at once) and deletes the
/// message after a 200. Returns once the queue is empty.
pub async fn pump(queue: &str, workers: &[&Relay]) -> Pumped {
    pump_with(queue, workers, false).await
}

/// [`pump`]; with `keep_going`, failed invocations do not stop it (their messages come back
/// after the visibility timeout, as on the host).
pub async fn pump_with(queue: &str, workers: &[&Relay], keep_going: bool) -> Pumped {
    use azure_storage_queue::models::QueueClientReceiveMessagesOptions;
    use base64::Engine;
    let q = common::azurite()
        .queue_service()
        .unwrap()
        .queue_client(queue)
        .unwrap();
    let mut out = Pumped {
        per_worker: vec![0; workers.len()],
        ..Pumped::default()
    };
    let mut next = 0usize;
    loop {
        let got = match q
            .receive_messages(Some(QueueClientReceiveMessagesOptions {
                number_of_messages: Some(16),
                visibility_timeout: Some(if keep_going { 20 } else { 120 }),
                ..Default::default()
            }))
            .await
        {
            Ok(r) => r.into_model().expect("messages"),
            // No queue yet: nobody put anything.
            Err(_) => return out,
        };
        let items = got.items.unwrap_or_default();
        if items.is_empty() {
            return out;
        }
        let mut calls = Vec::new();
        for m in items {
            let w = next % workers.len();
            next += 1;
            out.per_worker[w] += 1;
            let text = m.message_text.clone().unwrap_or_default();
            let worker = workers[w];
            let q = &q;
            calls.push(async move {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok());
                let Some(decoded) = decoded else {
                    return Some((0, format!("not base64 (would be poisoned): {text}")));
                };
                let inv = queue_invocation(&decoded);
                let (st, body) = match worker.try_invoke("BlobCreated", &inv).await {
                    Ok(r) => r,
                    // The worker died: the message stays invisible, then comes back (as on
                    // the host, whose visibility timeout expires).
                    Err(e) => return Some((0, format!("worker gone: {e}"))),
                };
                if st != 200 {
                    return Some((st, format!("{body}")));
                }
                q.delete_message(
                    m.message_id.as_deref().unwrap(),
                    m.pop_receipt.as_deref().unwrap(),
                    None,
                )
                .await
                .expect("delete message");
                None
            });
        }
        for f in futures::future::join_all(calls).await.into_iter().flatten() {
            out.failures.push(f);
        }
        if !out.failures.is_empty() && !keep_going {
            return out;
        }
    }
}
