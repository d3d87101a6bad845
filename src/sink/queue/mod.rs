//! The queue sink: events as Azure Storage queue messages, through the official
//! `azure_storage_queue` crate.
//!
//! Each message holds as many NDJSON lines (events, in batch order) as fit 64 KiB of message
//! text on the wire: base64 by default (what a Functions queue trigger decodes), or the raw text
//! with `RELAY_QUEUE_ENCODING=none` (then measured XML-escaped, as the SDK sends it). An event
//! too large for a message on its own is uploaded as a blob to `RELAY_QUEUE_CLAIMS_CONTAINER`
//! in the same account (claim check), and its line in the message is a reference instead:
//!
//! ```json
//! {"id":"<event id>","table":"<table>","claim_check":{"container":"mde-relay-claims",
//!  "blob":"<table>/<event id>.json","url":"https://…/mde-relay-claims/<table>/<event id>.json","bytes":123456}}
//! ```
//!
//! The blob name comes from the event id, so a re-sent batch overwrites the same blob. Sends and
//! uploads run under the sink's [`RetryPolicy`] (the SDK's own retries are turned off so that
//! policy, its `Retry-After` handling and its counters are the only ones); a missing queue or
//! claims container is created once, on first use.

mod claim;
mod config;
mod encoding;
mod message;

pub use config::{valid_storage_name, QueueConfig};
pub use encoding::{QueueEncoding, MAX_MESSAGE_BYTES};
use message::Message;

use super::retry::{parse_retry_after, Attempt, Retrier, SinkStats};
use super::{Sink, SinkError};
use crate::azure::StorageAccount;
use crate::config::ConfigError;
use crate::event::Batch;
use async_trait::async_trait;
use azure_core::error::ErrorKind;
use azure_core::http::{ClientOptions, RequestContent, RetryOptions, Transport};
use azure_storage_blob::{BlobContainerClient, BlobServiceClientOptions};
use azure_storage_queue::models::QueueMessage;
use azure_storage_queue::{QueueClient, QueueServiceClientOptions};
use futures::StreamExt;
use std::fmt;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

/// A 404 for a queue or container that does not exist (yet).
struct Missing;

/// Sends batches to a Storage queue.
pub struct QueueSink {
    account: StorageAccount,
    queue: String,
    encoding: QueueEncoding,
    claims_container: String,
    concurrency: usize,
    /// Sink-wide cap on requests in flight, whoever calls `send` concurrently.
    inflight: tokio::sync::Semaphore,
    retrier: Retrier,
    /// One HTTP client for every SDK client built (connection reuse across batches).
    transport: Transport,
    claims_ready: AtomicBool,
}

impl fmt::Debug for QueueSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueSink")
            .field("account", &self.account)
            .field("queue", &self.queue)
            .field("encoding", &self.encoding)
            .finish_non_exhaustive()
    }
}

/// The SDK clients of one send (built per batch so the account SAS is always fresh).
struct Clients {
    queue: QueueClient,
    claims: BlobContainerClient,
}

impl QueueSink {
    /// Builds the sink. No request is made here.
    pub fn new(c: QueueConfig) -> Result<Self, ConfigError> {
        let sink = QueueSink {
            account: c.account,
            queue: c.queue,
            encoding: c.encoding,
            claims_container: c.claims_container,
            concurrency: c.concurrency.max(1),
            inflight: tokio::sync::Semaphore::new(c.concurrency.max(1)),
            retrier: Retrier::new(c.retry),
            transport: Transport::new(azure_core::http::new_http_client(None)),
            claims_ready: AtomicBool::new(false),
        };
        // Fail now, naming the connection, if clients cannot be built at all.
        sink.clients()
            .map_err(|m| ConfigError::new(sink.account.setting(), m))?;
        Ok(sink)
    }

    fn client_options(&self) -> ClientOptions {
        ClientOptions {
            retry: RetryOptions::none(),
            transport: Some(self.transport.clone()),
            ..Default::default()
        }
    }

    fn clients(&self) -> Result<Clients, String> {
        let queue = self
            .account
            .queue_service_with(Some(QueueServiceClientOptions {
                client_options: self.client_options(),
                ..Default::default()
            }))
            .map_err(|e| e.message)?
            .queue_client(&self.queue)
            .map_err(|e| redact(&e.to_string()))?;
        let claims = self
            .account
            .blob_service_with(Some(BlobServiceClientOptions {
                client_options: self.client_options(),
                ..Default::default()
            }))
            .map_err(|e| e.message)?
            .blob_container_client(&self.claims_container);
        Ok(Clients { queue, claims })
    }

    async fn deliver(
        &self,
        batch: &Batch,
        clients: &Clients,
        msg: Message,
    ) -> Result<(), SinkError> {
        for &i in &msg.claims {
            self.upload_claim(batch, clients, i).await?;
        }
        let text = self.encode(&msg.raw)?;
        let what = format!(
            "message of {} event(s), {} bytes, to queue {}",
            msg.events,
            text.len(),
            self.queue
        );
        for first in [true, false] {
            let sent = self
                .retrier
                .run("queue", &what, || {
                    let content: Result<RequestContent<QueueMessage, _>, _> = QueueMessage {
                        message_text: Some(text.clone()),
                    }
                    .try_into();
                    async move {
                        let content = match content {
                            Ok(c) => c,
                            Err(e) => return Attempt::Permanent(redact(&e.to_string())),
                        };
                        let _permit = self.inflight.acquire().await.expect("never closed");
                        match clients.queue.send_message(content, None).await {
                            Ok(_) => Attempt::Done(Ok(())),
                            Err(e) => classify(e, "QueueNotFound"),
                        }
                    }
                })
                .await?;
            match sent {
                Ok(()) => {
                    self.retrier.counters.sent(msg.events, text.len());
                    return Ok(());
                }
                Err(Missing) if first => self.create_queue(clients).await?,
                Err(Missing) => break,
            }
        }
        Err(SinkError::Permanent {
            sink: "queue",
            message: format!(
                "queue {} does not exist in {}",
                self.queue,
                self.account.setting()
            ),
        })
    }

    async fn create_queue(&self, clients: &Clients) -> Result<(), SinkError> {
        tracing::info!(sink = "queue", queue = %self.queue, "queue does not exist; creating it");
        let what = format!("creating queue {}", self.queue);
        self.create_once(&what, || async {
            clients.queue.create(None).await.map(|_| ())
        })
        .await
    }

    /// Creates a queue or container with the sink's retry policy; "already exists" (409,
    /// created meanwhile by someone else) counts as done.
    async fn create_once<F, Fut>(&self, what: &str, create: F) -> Result<(), SinkError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = azure_core::Result<()>>,
    {
        self.retrier
            .run("queue", what, || async {
                match create().await {
                    Ok(()) => Attempt::Done(()),
                    Err(e) if e.http_status().map(u16::from) == Some(409) => Attempt::Done(()),
                    Err(e) => match classify(e, "") {
                        Attempt::Done(_) => Attempt::Done(()),
                        Attempt::Retry {
                            reason,
                            retry_after,
                            message,
                        } => Attempt::Retry {
                            reason,
                            retry_after,
                            message,
                        },
                        Attempt::Permanent(m) => Attempt::Permanent(m),
                    },
                }
            })
            .await
    }
}

/// Removes SAS signatures from a message (SDK and transport errors can quote request URLs).
fn redact(s: &str) -> String {
    crate::logging::redact(s).into_owned()
}

/// Sorts an SDK error into retry / permanent / "missing" (a 404 with error code `missing`).
fn classify(e: azure_core::Error, missing: &str) -> Attempt<Result<(), Missing>> {
    let message = redact(&e.to_string());
    match e.kind() {
        ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response,
        } => {
            let code = u16::from(*status);
            if code == 404 && !missing.is_empty() && error_code.as_deref() == Some(missing) {
                return Attempt::Done(Err(Missing));
            }
            if matches!(code, 408 | 429 | 500..=599) {
                let retry_after = raw_response.as_ref().and_then(|r| {
                    let h = r.headers();
                    let ms = |name: &'static str| {
                        h.get_optional_str(&azure_core::http::headers::HeaderName::from_static(
                            name,
                        ))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_millis)
                    };
                    ms("x-ms-retry-after-ms")
                        .or_else(|| ms("retry-after-ms"))
                        .or_else(|| {
                            h.get_optional_str(&azure_core::http::headers::HeaderName::from_static(
                                "retry-after",
                            ))
                            .and_then(|v| parse_retry_after(v, SystemTime::now()))
                        })
                });
                Attempt::Retry {
                    reason: code.to_string(),
                    retry_after,
                    message,
                }
            } else {
                Attempt::Permanent(message)
            }
        }
        ErrorKind::Connection | ErrorKind::Io => Attempt::Retry {
            reason: "connection".into(),
            retry_after: None,
            message,
        },
        // Token acquisition (managed identity endpoint) can fail transiently.
        ErrorKind::Credential => Attempt::Retry {
            reason: "credential".into(),
            retry_after: None,
            message,
        },
        _ => Attempt::Permanent(message),
    }
}

#[async_trait]
impl Sink for QueueSink {
    fn name(&self) -> &'static str {
        "queue"
    }

    async fn send(&self, batch: &Batch) -> Result<(), SinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let clients = self.clients().map_err(|message| SinkError::Permanent {
            sink: "queue",
            message,
        })?;
        let messages = self.plan(batch);
        let count = messages.len();
        let mut acks = futures::stream::iter(messages)
            .map(|m| self.deliver(batch, &clients, m))
            .buffer_unordered(self.concurrency);
        while let Some(r) = acks.next().await {
            r?;
        }
        tracing::debug!(
            sink = "queue",
            events = batch.len(),
            messages = count,
            ms = started.elapsed().as_millis() as u64,
            "batch acknowledged"
        );
        Ok(())
    }

    fn stats(&self) -> SinkStats {
        self.retrier.counters.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventId;

    fn sink(encoding: QueueEncoding) -> QueueSink {
        let account =
            StorageAccount::from_connection_string("C", "UseDevelopmentStorage=true").unwrap();
        let mut c = QueueConfig::new(account, "events");
        c.encoding = encoding;
        QueueSink::new(c).unwrap()
    }

    fn event(b: &mut Batch, n: usize, size: usize, filler: char) {
        let mut id = [b'0'; 32];
        id[..8].copy_from_slice(format!("{n:08}").as_bytes());
        let pad: String = std::iter::repeat_n(filler, size.saturating_sub(20)).collect();
        let json = format!(r#"{{"n":{n},"p":"{pad}"}}"#);
        b.push_json(EventId(id), "DeviceEvents".into(), None, json.as_bytes());
    }

    #[test]
    fn names() {
        assert!(valid_storage_name("mde-relay-claims"));
        for bad in ["ab", "Upper", "a--b", "-ab", "ab-", "a_b", &"a".repeat(64)] {
            assert!(!valid_storage_name(bad), "{bad}");
        }
    }

    #[test]
    fn messages_fit_and_keep_order() {
        for (enc, filler) in [
            (QueueEncoding::Base64, 'x'),
            (QueueEncoding::None, '<'),
            (QueueEncoding::None, 'x'),
        ] {
            let s = sink(enc);
            let mut b = Batch::new();
            for n in 0..200 {
                event(&mut b, n, 1500 + n * 7, filler);
            }
            event(&mut b, 200, 70_000, filler);
            event(&mut b, 201, 100, filler);
            let msgs = s.plan(&b);
            let mut lines = Vec::new();
            for m in &msgs {
                let text = s.encode(&m.raw).unwrap();
                let escaped = enc.cost(text.as_bytes());
                assert!(escaped <= MAX_MESSAGE_BYTES, "{enc:?}: {escaped}");
                lines.extend(
                    m.raw
                        .split(|&c| c == b'\n')
                        .filter(|l| !l.is_empty())
                        .map(<[u8]>::to_vec),
                );
            }
            assert_eq!(lines.len(), 202);
            for (i, l) in lines.iter().enumerate() {
                let v: serde_json::Value = serde_json::from_slice(l).unwrap();
                if i == 200 {
                    assert_eq!(
                        v["claim_check"]["blob"],
                        format!("DeviceEvents/{}.json", b.items()[200].id)
                    );
                    assert_eq!(v["id"], b.items()[200].id.as_str());
                    assert!(v["claim_check"]["url"].as_str().unwrap().ends_with("/devstoreaccount1/mde-relay-claims/DeviceEvents/00000200000000000000000000000000.json"));
                } else {
                    assert_eq!(l.as_slice(), b.event(i));
                }
            }
            let claims: Vec<usize> = msgs.iter().flat_map(|m| m.claims.clone()).collect();
            assert_eq!(claims, [200]);
            // Greedy: the messages are well filled.
            assert!(
                msgs.len()
                    <= 200 * 2300 / (enc.budget() - 3000) * if filler == '<' { 4 } else { 1 } + 2,
                "{}",
                msgs.len()
            );
        }
    }

    #[test]
    fn sas_is_redacted() {
        assert_eq!(
            redact("GET http://h/q?sv=1&sig=abc%2Bdef&se=2 failed; sig=zzz"),
            "GET http://h/q?sv=1&sig=REDACTED&se=2 failed; sig=REDACTED"
        );
    }
}
