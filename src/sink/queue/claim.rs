//! The claim check of the queue sink: an event too large for one message is uploaded as the
//! blob `<table>/<event id>.json` of `RELAY_QUEUE_CLAIMS_CONTAINER`, and the message carries a
//! reference to it instead (module documentation of [`super`]).

use super::{classify, Clients, Missing, QueueSink};
use crate::event::Batch;
use crate::sink::retry::Attempt;
use crate::sink::SinkError;
use azure_core::http::RequestContent;
use azure_storage_blob::models::BlobClientUploadOptions;
use std::sync::atomic::Ordering;

impl QueueSink {
    /// The claim-check blob name of event `i`: `<table>/<event id>.json`.
    pub(super) fn claim_blob(batch: &Batch, i: usize) -> String {
        let it = &batch.items()[i];
        let table: String = it
            .table
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{table}/{}.json", it.id)
    }

    pub(super) fn claim_reference(&self, batch: &Batch, i: usize) -> Vec<u8> {
        let it = &batch.items()[i];
        let blob = Self::claim_blob(batch, i);
        let url = self.account.blob_endpoint().map(|base| {
            let mut u = base.clone();
            if let Ok(mut segs) = u.path_segments_mut() {
                segs.pop_if_empty().push(&self.claims_container);
                for part in blob.split('/') {
                    segs.push(part);
                }
            }
            u.to_string()
        });
        serde_json::to_vec(&serde_json::json!({
            "id": it.id.as_str(),
            "table": it.table.as_ref(),
            "claim_check": {
                "container": self.claims_container,
                "blob": blob,
                "url": url,
                "bytes": it.range.len(),
            }
        }))
        .expect("serializing a json! value cannot fail")
    }

    pub(super) async fn upload_claim(
        &self,
        batch: &Batch,
        clients: &Clients,
        i: usize,
    ) -> Result<(), SinkError> {
        let it = &batch.items()[i];
        let name = Self::claim_blob(batch, i);
        let body = bytes::Bytes::copy_from_slice(batch.event(i));
        let what = format!(
            "claim-check blob {}/{name} ({} bytes)",
            self.claims_container,
            body.len()
        );
        tracing::warn!(
            sink = "queue",
            event_id = %it.id,
            bytes = body.len(),
            container = %self.claims_container,
            "event is too large for a queue message; storing it as a claim-check blob"
        );
        let blob = clients.claims.blob_client(&name);
        for first in [true, false] {
            let r = self
                .retrier
                .run("queue", &what, || {
                    let body = body.clone();
                    let blob = &blob;
                    async move {
                        let options = BlobClientUploadOptions {
                            blob_content_type: Some("application/json".into()),
                            ..Default::default()
                        };
                        let _permit = self.inflight.acquire().await.expect("never closed");
                        match blob
                            .upload(RequestContent::from(body.to_vec()), Some(options))
                            .await
                        {
                            Ok(_) => Attempt::Done(Ok(())),
                            Err(e) => classify(e, "ContainerNotFound"),
                        }
                    }
                })
                .await?;
            match r {
                Ok(()) => {
                    self.retrier.counters.oversize();
                    return Ok(());
                }
                Err(Missing) if first && !self.claims_ready.load(Ordering::Relaxed) => {
                    self.create_container(clients).await?;
                }
                Err(Missing) => break,
            }
        }
        Err(SinkError::Permanent {
            sink: "queue",
            message: format!(
                "claim-check container {} does not exist in {}",
                self.claims_container,
                self.account.setting()
            ),
        })
    }

    pub(super) async fn create_container(&self, clients: &Clients) -> Result<(), SinkError> {
        tracing::info!(sink = "queue", container = %self.claims_container, "claim-check container does not exist; creating it");
        let what = format!("creating container {}", self.claims_container);
        self.create_once(&what, || async {
            clients.claims.create(None).await.map(|_| ())
        })
        .await?;
        self.claims_ready.store(true, Ordering::Relaxed);
        Ok(())
    }
}
