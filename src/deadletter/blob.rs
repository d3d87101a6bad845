//! Dead letters in a blob container (`RELAY_DEADLETTER_CONTAINER` in `AzureWebJobsStorage`).
//!
//! Each stored group of records becomes one NDJSON blob named after where its first row was:
//! `<export container>/<blob name>/<offset, 20 digits>.ndjson`. The name is deterministic, so a
//! drain that is repeated after a crash overwrites the same blob instead of adding a copy, and a
//! listing sorts by position in the source blob.

use super::{DeadLetter, DeadLetterSink};
use crate::azure::blob::{ensure_container, ClientCache};
use crate::azure::StorageAccount;
use anyhow::Context;
use async_trait::async_trait;
use azure_core::http::RequestContent;
use azure_storage_blob::models::BlobClientUploadOptions;
use tokio::sync::OnceCell;

/// Blob metadata holding the number of records in a dead-letter blob.
pub const RECORDS_METADATA: &str = "records";

/// Dead letters as blobs. See the module documentation.
pub struct DeadLetterContainer {
    clients: ClientCache,
    container: String,
    ready: OnceCell<()>,
}

impl std::fmt::Debug for DeadLetterContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterContainer")
            .field("account", self.clients.account())
            .field("container", &self.container)
            .finish()
    }
}

impl DeadLetterContainer {
    /// Dead letters go to `container` of `account` (created on first use).
    pub fn new(account: StorageAccount, container: impl Into<String>) -> Self {
        DeadLetterContainer {
            clients: ClientCache::new(account),
            container: container.into(),
            ready: OnceCell::new(),
        }
    }

    /// The blob name a group starting with `first` is stored under.
    pub fn blob_name(first: &DeadLetter) -> String {
        format!(
            "{}/{}/{:020}.ndjson",
            first.container.as_deref().unwrap_or("local"),
            first.blob,
            first.offset
        )
    }
}

#[async_trait]
impl DeadLetterSink for DeadLetterContainer {
    async fn store(&self, records: &[DeadLetter]) -> anyhow::Result<()> {
        let Some(first) = records.first() else {
            return Ok(());
        };
        let c = self.clients.get()?.blob_container_client(&self.container);
        self.ready
            .get_or_try_init(|| ensure_container(&c, &self.container))
            .await?;
        let mut body = Vec::new();
        for r in records {
            body.extend_from_slice(&r.to_line());
        }
        let name = Self::blob_name(first);
        let opts = BlobClientUploadOptions {
            blob_content_type: Some("application/x-ndjson".into()),
            // Lets `mde-relay status` count records from a listing, without reading them.
            metadata: Some(std::collections::HashMap::from([(
                RECORDS_METADATA.to_string(),
                records.len().to_string(),
            )])),
            ..Default::default()
        };
        c.blob_client(&name)
            .upload(RequestContent::from(body), Some(opts))
            .await
            .with_context(|| format!("cannot write dead letters to {}/{name}", self.container))?;
        Ok(())
    }

    fn location(&self) -> String {
        format!("container {}", self.container)
    }
}
