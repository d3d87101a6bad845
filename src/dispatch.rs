//! Drain requests: how Tail spreads the draining over instances.
//!
//! A timer function runs on one instance at a time (platform facts §3b), so a Tail that drained
//! everything itself would put every appended byte of every table through one instance. Instead
//! Tail finds the blobs that are behind their checkpoint and puts one *drain request* per blob
//! on `RELAY_EVENTS_QUEUE`, the queue the `BlobCreated` function is triggered by: the Functions
//! host scales queue-triggered invocations out over instances, and each request is drained like
//! a BlobCreated event, under the blob's lease.
//!
//! The message text is base64 of a JSON object (the trigger's `messageEncoding` in `host.json`
//! is `base64`: a message that is not valid base64 would go to the poison queue unread):
//!
//! ```json
//! {"eventType":"MdeRelay.DrainRequest","id":"<container>/<blob>@<length>",
//!  "subject":"/blobServices/default/containers/<container>/blobs/<blob>",
//!  "eventTime":"2026-11-25T10:00:00Z",
//!  "data":{"container":"<container>","blob":"<blob>","length":<bytes seen by Tail>}}
//! ```
//!
//! It names a container and blob, never a URL: the handler reads it from the export account it
//! is configured with, and only when the container has the export prefix. Requests are
//! idempotent: a duplicate, or one for a blob another instance is draining, costs one lease
//! check ([`crate::drain::Outcome::Busy`] / [`crate::drain::Outcome::UpToDate`]) and ends
//! successfully, never a second delivery.

use crate::azure::StorageAccount;
use crate::source::BlobKey;
use async_trait::async_trait;
use azure_core::error::ErrorKind;
use azure_core::http::RequestContent;
use azure_storage_queue::models::QueueMessage;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

/// `eventType` of a drain request.
pub const DRAIN_REQUEST: &str = "MdeRelay.DrainRequest";

/// The JSON text of a drain request for `key`, seen by Tail at `length` bytes.
pub fn request_json(key: &BlobKey, length: u64, now: DateTime<Utc>) -> String {
    json!({
        "eventType": DRAIN_REQUEST,
        "id": format!("{}/{}@{length}", key.container, key.blob),
        "subject": format!("/blobServices/default/containers/{}/blobs/{}", key.container, key.blob),
        "eventTime": now.to_rfc3339_opts(SecondsFormat::Secs, true),
        "data": {"container": key.container, "blob": key.blob, "length": length},
    })
    .to_string()
}

/// The queue message text of a drain request: base64 of [`request_json`], as the queue
/// trigger's `messageEncoding: base64` expects.
pub fn request_message(key: &BlobKey, length: u64, now: DateTime<Utc>) -> String {
    base64::engine::general_purpose::STANDARD.encode(request_json(key, length, now))
}

/// Where Tail puts drain requests.
#[async_trait]
pub trait DrainRequests: Send + Sync {
    /// Asks for `key` (seen at `length` bytes) to be drained.
    async fn request(&self, key: &BlobKey, length: u64) -> anyhow::Result<()>;
    /// Where the requests go, for logs.
    fn describe(&self) -> String;
}

/// Drain requests on a storage queue (`RELAY_EVENTS_QUEUE` in `AzureWebJobsStorage`).
#[derive(Debug)]
pub struct QueueRequests {
    account: StorageAccount,
    queue: String,
}

impl QueueRequests {
    /// Requests on `queue` of `account`. No request is made here.
    pub fn new(account: StorageAccount, queue: &str) -> Self {
        QueueRequests {
            account,
            queue: queue.to_string(),
        }
    }
}

#[async_trait]
impl DrainRequests for QueueRequests {
    async fn request(&self, key: &BlobKey, length: u64) -> anyhow::Result<()> {
        // Built per request so an account SAS is always fresh; building makes no request.
        let client = self
            .account
            .queue_service()
            .map_err(|e| anyhow::anyhow!("{}", e.message))?
            .queue_client(&self.queue)?;
        let text = request_message(key, length, Utc::now());
        for attempt in 0..2 {
            let content: RequestContent<QueueMessage, _> = QueueMessage {
                message_text: Some(text.clone()),
            }
            .try_into()?;
            match client.send_message(content, None).await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    let missing = matches!(e.kind(), ErrorKind::HttpResponse { status, .. } if u16::from(*status) == 404);
                    if attempt == 0 && missing {
                        // The host creates its trigger queue when it starts listening; a fresh
                        // account (or a test) may not have it yet. Every request that found it
                        // missing creates it (Tail puts several at once, and one that saw the
                        // 404 before another's create landed must not fail): "already exists"
                        // is fine, and this happens only while the queue is missing.
                        if let Err(c) = client.create(None).await {
                            let exists = matches!(c.kind(), ErrorKind::HttpResponse { status, .. } if u16::from(*status) == 409);
                            if !exists {
                                return Err(anyhow::anyhow!(
                                    "cannot create queue {}: {}",
                                    self.queue,
                                    crate::logging::redact(&c.to_string())
                                ));
                            }
                        }
                        continue;
                    }
                    return Err(anyhow::anyhow!(
                        "cannot put a drain request for {key} on queue {}: {}",
                        self.queue,
                        crate::logging::redact(&e.to_string())
                    ));
                }
            }
        }
        anyhow::bail!("queue {} does not exist", self.queue)
    }

    fn describe(&self) -> String {
        format!("queue {} of {}", self.queue, self.account.setting())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_request_is_base64_json_the_event_parser_reads() {
        let key = BlobKey::new(
            "insights-logs-advancedhunting-deviceevents",
            "tenantId=t/y=2026/m=11/d=01/h=10/m=00/PT1H.json",
        );
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
        let text = request_message(&key, 42, now);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&text)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(v["eventType"], DRAIN_REQUEST);
        assert_eq!(v["data"]["blob"], key.blob.as_str());
        assert_eq!(v["data"]["length"], 42);
        assert_eq!(v["eventTime"], "2026-11-25T10:00:00Z");
    }
}
