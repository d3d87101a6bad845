//! The queue sink against Azurite: every event arrives, every message is at most 64 KiB,
//! base64 decodes, raw encoding works, and an oversize event round-trips through its claim
//! check blob. Each test uses its own queue and container names.

mod common;

use azure_storage_queue::models::QueueClientReceiveMessagesOptions;
use azure_storage_queue::QueueClient;
use base64::Engine;
use mde_relay::sink::queue::{QueueConfig, QueueEncoding, QueueSink, MAX_MESSAGE_BYTES};
use mde_relay::sink::retry::RetryPolicy;
use mde_relay::sink::{Batch, EventId, Sink};
use std::time::Duration;

fn noise(seed: u64, len: usize) -> String {
    // Includes XML-special characters, which the raw encoding must escape.
    common::noise(seed, len, b"0123456789abcdefghijklmnopqrstuvwxyz<>&")
}

/// Events with `seq` numbers `0..n`, of varied sizes; `big` lists the seqs made 200 KB.
fn events(n: usize, big: &[usize]) -> Batch {
    let mut b = Batch::new();
    for i in 0..n {
        let id = format!("{:032x}", 0xfeed_0000_u64 + i as u64);
        let mut idb = [0u8; 32];
        idb.copy_from_slice(id.as_bytes());
        let size = if big.contains(&i) {
            200_000
        } else {
            800 + (i * 37) % 2500
        };
        let json = format!(
            r#"{{"id":"{id}","seq":{i},"table":"AlertEvidence","pad":"{}"}}"#,
            noise(i as u64, size)
        );
        b.push_json(EventId(idb), "AlertEvidence".into(), None, json.as_bytes());
    }
    b
}

/// Drains the queue: every message's text, in arrival order.
async fn drain(q: &QueueClient) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let got = q
            .receive_messages(Some(QueueClientReceiveMessagesOptions {
                number_of_messages: Some(32),
                visibility_timeout: Some(60),
                ..Default::default()
            }))
            .await
            .expect("receive")
            .into_model()
            .expect("messages");
        let items = got.items.unwrap_or_default();
        if items.is_empty() {
            return out;
        }
        for m in items {
            out.push(m.message_text.clone().unwrap_or_default());
            q.delete_message(
                m.message_id.as_deref().unwrap(),
                m.pop_receipt.as_deref().unwrap(),
                None,
            )
            .await
            .expect("delete");
        }
    }
}

fn config(name: &str, encoding: QueueEncoding) -> QueueConfig {
    let mut c = QueueConfig::new(common::azurite(), name);
    c.encoding = encoding;
    c.claims_container = format!("{name}-claims");
    c.retry = RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        max_elapsed: Duration::from_secs(20),
    };
    c
}

/// Checks the decoded NDJSON texts against the batch; returns the claim-check references.
fn check_lines(texts: &[Vec<u8>], b: &Batch) -> Vec<serde_json::Value> {
    let mut seen = vec![0u32; b.len()];
    let mut claims = Vec::new();
    for t in texts {
        let mut last = None;
        for line in t.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).expect("each line is JSON");
            let seq = if v.get("claim_check").is_some() {
                claims.push(v.clone());
                let id = v["id"].as_str().unwrap();
                b.items()
                    .iter()
                    .position(|it| it.id.as_str() == id)
                    .unwrap()
            } else {
                let seq = v["seq"].as_u64().unwrap() as usize;
                assert_eq!(line, b.event(seq), "event {seq} altered");
                seq
            };
            // In batch order within a message.
            assert!(last.is_none_or(|l| seq > l), "out of order in a message");
            last = Some(seq);
            seen[seq] += 1;
        }
    }
    assert!(seen.iter().all(|&n| n == 1), "lost or duplicated: {seen:?}");
    claims
}

#[tokio::test]
async fn every_event_arrives_base64_in_messages_of_at_most_64_kib_with_claim_checks() {
    let name = common::unique("sinkq");
    let cfg = config(&name, QueueEncoding::Base64);
    let account = cfg.account.clone();
    let claims_container = cfg.claims_container.clone();
    let sink = QueueSink::new(cfg).unwrap();
    // The queue and the claims container do not exist yet: the sink creates them.
    let b = events(400, &[17, 250]);
    sink.send(&b).await.expect("send");

    let q = account
        .queue_service()
        .unwrap()
        .queue_client(&name)
        .unwrap();
    let texts = drain(&q).await;
    assert!(texts.len() > 10, "{} messages", texts.len());
    let mut decoded = Vec::new();
    for t in &texts {
        assert!(t.len() <= MAX_MESSAGE_BYTES, "message of {} bytes", t.len());
        decoded.push(
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .expect("message text is base64"),
        );
    }
    // Messages are well filled (greedy): 400 events averaging ~2 KB need ~18 messages.
    assert!(texts.len() < 30, "{} messages", texts.len());
    let claims = check_lines(&decoded, &b);
    assert_eq!(claims.len(), 2);

    // Each claim check fetches back the exact event.
    let blobs = account.blob_service().unwrap();
    for c in &claims {
        let cc = &c["claim_check"];
        assert_eq!(cc["container"], claims_container.as_str());
        let blob = cc["blob"].as_str().unwrap();
        let url = cc["url"].as_str().unwrap();
        assert!(
            url.ends_with(&format!("/{claims_container}/{blob}")),
            "{url}"
        );
        let body = blobs
            .blob_client(&claims_container, blob)
            .download(None)
            .await
            .expect("claim blob exists")
            .body
            .collect()
            .await
            .unwrap();
        let seq = b
            .items()
            .iter()
            .position(|it| it.id.as_str() == c["id"].as_str().unwrap())
            .unwrap();
        assert_eq!(&body[..], b.event(seq));
        assert_eq!(cc["bytes"].as_u64().unwrap() as usize, b.event(seq).len());
    }
    let st = sink.stats();
    assert_eq!(st.events, 400);
    assert_eq!(st.requests as usize, texts.len());
    assert_eq!(st.oversize, 2);

    q.delete(None).await.unwrap();
    blobs
        .blob_container_client(&claims_container)
        .delete(None)
        .await
        .unwrap();
}

#[tokio::test]
async fn raw_encoding_sends_the_ndjson_itself() {
    let name = common::unique("sinkqraw");
    let cfg = config(&name, QueueEncoding::None);
    let account = cfg.account.clone();
    let q = account
        .queue_service()
        .unwrap()
        .queue_client(&name)
        .unwrap();
    q.create(None).await.unwrap();
    let sink = QueueSink::new(cfg).unwrap();
    let b = events(150, &[]);
    sink.send(&b).await.expect("send");
    let texts = drain(&q).await;
    let mut raw = Vec::new();
    for t in &texts {
        // What went over the wire was the XML-escaped text.
        let escaped = t.len() + t.matches(['<', '>']).count() * 3 + t.matches('&').count() * 4;
        assert!(escaped <= MAX_MESSAGE_BYTES, "{escaped}");
        raw.push(t.as_bytes().to_vec());
    }
    check_lines(&raw, &b);
    q.delete(None).await.unwrap();
}

#[tokio::test]
async fn config_from_settings_reaches_azurite() {
    // The same path the handler takes: RELAY_* settings and a named connection.
    let account = common::azurite(); // fails at once, with instructions, when Azurite is down
    let name = common::unique("sinkqcfg");
    let cs = common::azurite_connection_string();
    let get = |k: &str| -> Option<String> {
        match k {
            "RELAY_SINK" => Some("queue".into()),
            "RELAY_QUEUE_NAME" => Some(name.clone()),
            "RELAY_QUEUE_CONNECTION" => Some("MyStorage".into()),
            "MyStorage" => Some(cs.clone()),
            _ => None,
        }
    };
    let cfg =
        mde_relay::sink::SinkConfig::from_settings(&mde_relay::config::Settings::new(get)).unwrap();
    assert_eq!(cfg.kind(), "queue");
    let sink = cfg.build().unwrap();
    let b = events(3, &[]);
    sink.send(&b).await.unwrap();
    let q = account
        .queue_service()
        .unwrap()
        .queue_client(&name)
        .unwrap();
    let texts = drain(&q).await;
    assert_eq!(texts.len(), 1);
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&texts[0])
        .unwrap();
    assert_eq!(raw, b.ndjson());
    q.delete(None).await.unwrap();

    // A missing connection is named at start-up.
    let e =
        mde_relay::sink::SinkConfig::from_settings(&mde_relay::config::Settings::new(|k: &str| {
            match k {
                "RELAY_SINK" => Some("queue".to_string()),
                "RELAY_QUEUE_NAME" => Some("q-x".to_string()),
                "RELAY_QUEUE_CONNECTION" => Some("Nope".to_string()),
                _ => None,
            }
        }))
        .unwrap_err();
    assert_eq!(e.setting, "Nope");
}

#[tokio::test]
async fn throttling_answers_from_the_service_are_retried_after_retry_after() {
    // A stand-in queue endpoint: 503 + Retry-After: 1 twice, then 201 Created. Azurite never
    // throttles, so this is how the SDK error path (status and headers) is exercised.
    use std::sync::{Arc, Mutex};
    let hits: Arc<Mutex<Vec<tokio::time::Instant>>> = Arc::default();
    let h = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let h = h.clone();
        async move {
            let n = {
                let mut v = h.lock().unwrap();
                v.push(tokio::time::Instant::now());
                v.len()
            };
            if n <= 2 {
                (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    [("retry-after", "1"), ("x-ms-error-code", "ServerBusy")],
                    "",
                )
            } else {
                (
                    axum::http::StatusCode::CREATED,
                    [
                        ("content-type", "application/xml"),
                        ("x-ms-request-id", "test"),
                    ],
                    "",
                )
            }
        }
    });
    let addr = common::http::spawn(app).await;
    let cs = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={};BlobEndpoint=http://{addr}/devstoreaccount1;QueueEndpoint=http://{addr}/devstoreaccount1",
        mde_relay::azure::AZURITE_KEY
    );
    let account = mde_relay::azure::StorageAccount::from_connection_string("X", &cs).unwrap();
    let mut c = QueueConfig::new(account, "throttled");
    c.retry.max_elapsed = Duration::from_secs(10);
    let sink = QueueSink::new(c).unwrap();
    sink.send(&events(2, &[]))
        .await
        .expect("sent after retries");
    let hits = hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 3);
    assert!(hits[1] - hits[0] >= Duration::from_secs(1));
    assert!(hits[2] - hits[1] >= Duration::from_secs(1));
    let st = sink.stats();
    assert_eq!(st.retries.get("503"), Some(&2));
    assert!(st.throttled_secs >= 1.9, "{}", st.throttled_secs);
}
