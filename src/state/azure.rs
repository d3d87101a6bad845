//! Checkpoints in an Azure Storage container (`RELAY_STATE_CONTAINER` in `AzureWebJobsStorage`).
//!
//! Layout inside the container:
//! * `cp/<export container>/<blob name>`: the checkpoint as JSON, with `offset`, `length` and
//!   `closed` mirrored in blob metadata so a listing can compare many checkpoints at once. The
//!   blob lease on it is the drain lease; writes carry the lease id and `If-Match` the ETag read
//!   before. A lease needs a blob, so the first acquire creates a placeholder (`{}`).
//! * `open/<export container>/<blob name>`: an empty marker per blob that is not closed, so Tail
//!   lists only the blobs it must watch instead of every checkpoint ever written. It is written
//!   before the checkpoint that needs it and deleted after the checkpoint that closes the blob,
//!   so a crash leaves at worst a stale marker (Tail then drains, finds nothing, and closes it).
//! * `claims/<name>`: the last run time of a periodic job, claimed with `If-Match`.

use super::{Checkpoint, CheckpointStore, Lease, StoreError, Stored, Summary};
use crate::azure::blob::{ensure_container, is_not_found, ClientCache};
use crate::azure::StorageAccount;
use crate::source::BlobKey;
use anyhow::Context;
use async_trait::async_trait;
use azure_core::http::{RequestContent, StatusCode};
use azure_storage_blob::models::{
    BlobClientAcquireLeaseOptions, BlobClientUploadOptions, BlobContainerClientListBlobsOptions,
    ListBlobsIncludeItem,
};
use azure_storage_blob::BlobContainerClient;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::OnceCell;

const PLACEHOLDER: &[u8] = b"{}";

/// Checkpoints in a blob container. See the module documentation.
pub struct BlobCheckpointStore {
    clients: ClientCache,
    container: String,
    ready: OnceCell<()>,
    /// Leases whose open marker was already written.
    marked: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for BlobCheckpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobCheckpointStore")
            .field("account", self.clients.account())
            .field("container", &self.container)
            .finish()
    }
}

fn status(e: &azure_core::Error) -> Option<StatusCode> {
    e.http_status()
}

/// True for the answers that mean "someone else got there first": 409 and 412.
fn is_conflict(e: &azure_core::Error) -> bool {
    matches!(
        status(e),
        Some(StatusCode::Conflict) | Some(StatusCode::PreconditionFailed)
    )
}

impl BlobCheckpointStore {
    /// A store in `container` of `account`. The container is created on first use.
    pub fn new(account: StorageAccount, container: impl Into<String>) -> Self {
        BlobCheckpointStore {
            clients: ClientCache::new(account),
            container: container.into(),
            ready: OnceCell::new(),
            marked: Mutex::new(HashSet::new()),
        }
    }

    /// A store that never creates its container: for readers such as `mde-relay status`, which
    /// must not change the account they inspect. A missing container lists as empty.
    pub fn read_only(account: StorageAccount, container: impl Into<String>) -> Self {
        BlobCheckpointStore {
            ready: OnceCell::new_with(Some(())),
            ..Self::new(account, container)
        }
    }

    async fn container(&self) -> anyhow::Result<BlobContainerClient> {
        let c = self.clients.get()?.blob_container_client(&self.container);
        self.ready
            .get_or_try_init(|| ensure_container(&c, &self.container))
            .await?;
        Ok(c)
    }

    fn cp_name(key: &BlobKey) -> String {
        format!("cp/{}/{}", key.container, key.blob)
    }

    fn open_name(key: &BlobKey) -> String {
        format!("open/{}/{}", key.container, key.blob)
    }

    async fn try_acquire(
        &self,
        c: &BlobContainerClient,
        key: &BlobKey,
        ttl: Duration,
    ) -> Result<Option<Lease>, azure_core::Error> {
        let id = uuid_like();
        let opts = BlobClientAcquireLeaseOptions {
            proposed_lease_id: Some(id.clone()),
            ..Default::default()
        };
        let secs = ttl.as_secs().clamp(15, 60) as i32;
        match c
            .blob_client(&Self::cp_name(key))
            .acquire_lease(secs, Some(opts))
            .await
        {
            Ok(_) => Ok(Some(Lease {
                key: key.clone(),
                id,
                ttl: Duration::from_secs(secs as u64),
            })),
            Err(e) if status(&e) == Some(StatusCode::Conflict) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn put_marker(&self, c: &BlobContainerClient, key: &BlobKey) -> anyhow::Result<()> {
        c.blob_client(&Self::open_name(key))
            .upload(RequestContent::from(Vec::new()), None)
            .await
            .with_context(|| format!("cannot write open marker of {key}"))?;
        Ok(())
    }
}

/// A random lease id in the GUID format the service requires.
fn uuid_like() -> String {
    let b: u128 = rand::random();
    let h = format!("{b:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[async_trait]
impl CheckpointStore for BlobCheckpointStore {
    fn describe(&self) -> String {
        format!(
            "container {} of {}",
            self.container,
            self.clients.account().setting()
        )
    }

    async fn acquire(&self, key: &BlobKey, ttl: Duration) -> anyhow::Result<Option<Lease>> {
        let c = self.container().await?;
        match self.try_acquire(&c, key, ttl).await {
            Ok(l) => return Ok(l),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e).with_context(|| format!("cannot lease checkpoint of {key}")),
        }
        // No checkpoint yet: mark the blob open first (so Tail sees it even if this drain dies
        // before its first write), then create the placeholder the lease needs.
        self.put_marker(&c, key).await?;
        let opts = BlobClientUploadOptions::default().if_not_exists();
        match c
            .blob_client(&Self::cp_name(key))
            .upload(RequestContent::from(PLACEHOLDER.to_vec()), Some(opts))
            .await
        {
            Ok(_) => {}
            Err(e) if is_conflict(&e) => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create checkpoint of {key}")),
        }
        self.try_acquire(&c, key, ttl)
            .await
            .with_context(|| format!("cannot lease checkpoint of {key}"))
    }

    async fn renew(&self, lease: &Lease) -> anyhow::Result<()> {
        let c = self.container().await?;
        c.blob_client(&Self::cp_name(&lease.key))
            .renew_lease(lease.id.clone(), None)
            .await
            .with_context(|| format!("cannot renew the lease on {}", lease.key))?;
        Ok(())
    }

    async fn release(&self, lease: &Lease) -> anyhow::Result<()> {
        self.marked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&lease.id);
        let c = self.container().await?;
        c.blob_client(&Self::cp_name(&lease.key))
            .release_lease(lease.id.clone(), None)
            .await
            .with_context(|| format!("cannot release the lease on {}", lease.key))?;
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> anyhow::Result<Option<Stored>> {
        let c = self.container().await?;
        let rsp = match c.blob_client(&Self::cp_name(key)).download(None).await {
            Ok(r) => r,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read checkpoint of {key}")),
        };
        let version = rsp
            .properties
            .etag
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let body = rsp
            .body
            .collect()
            .await
            .with_context(|| format!("cannot read checkpoint of {key}"))?;
        if body.as_ref() == PLACEHOLDER {
            return Ok(None);
        }
        let checkpoint: Checkpoint = serde_json::from_slice(&body)
            .with_context(|| format!("checkpoint of {key} is not valid JSON"))?;
        Ok(Some(Stored {
            checkpoint,
            version,
        }))
    }

    async fn put(
        &self,
        lease: &Lease,
        cp: &Checkpoint,
        expected: Option<&str>,
    ) -> Result<String, StoreError> {
        let key = cp.key();
        if key != lease.key {
            return Err(StoreError::Conflict(key));
        }
        let c = self.container().await?;
        let need_marker = !cp.closed
            && !self
                .marked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&lease.id);
        if need_marker {
            self.put_marker(&c, &key).await?;
            self.marked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(lease.id.clone());
        }
        let metadata = HashMap::from([
            ("offset".to_string(), cp.offset.to_string()),
            ("length".to_string(), cp.length.to_string()),
            ("closed".to_string(), cp.closed.to_string()),
            ("filtered".to_string(), cp.filtered.to_string()),
            ("filtered_bytes".to_string(), cp.filtered_bytes.to_string()),
        ]);
        // Without a stored version the placeholder (or nothing) is there; the lease alone
        // guards that first write.
        let opts = BlobClientUploadOptions {
            lease_id: Some(lease.id.clone()),
            if_match: expected.map(Into::into),
            metadata: Some(metadata),
            blob_content_type: Some("application/json".into()),
            ..Default::default()
        };
        let body = serde_json::to_vec(cp).context("cannot serialize checkpoint")?;
        let rsp = match c
            .blob_client(&Self::cp_name(&key))
            .upload(RequestContent::from(body), Some(opts))
            .await
        {
            Ok(r) => r,
            Err(e) if is_conflict(&e) => return Err(StoreError::Conflict(key)),
            Err(e) => {
                return Err(StoreError::Other(
                    anyhow::Error::new(e).context(format!("cannot write checkpoint of {key}")),
                ))
            }
        };
        if cp.closed {
            match c.blob_client(&Self::open_name(&key)).delete(None).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    // A stale marker only costs Tail a look; the checkpoint is what counts.
                    tracing::warn!(blob = %key, error = %e, "cannot delete open marker");
                }
            }
            self.marked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&lease.id);
        }
        Ok(rsp.etag.map(|e| e.to_string()).unwrap_or_default())
    }

    async fn list(&self, container: &str, prefix: &str) -> anyhow::Result<Vec<Summary>> {
        let c = self.container().await?;
        let head = format!("cp/{container}/");
        let opts = BlobContainerClientListBlobsOptions {
            prefix: Some(format!("{head}{prefix}")),
            include: Some(vec![ListBlobsIncludeItem::Metadata]),
            ..Default::default()
        };
        let mut pager = c.list_blobs(Some(opts))?;
        let mut out = Vec::new();
        loop {
            let item = match pager.try_next().await {
                Ok(Some(item)) => item,
                Ok(None) => break,
                // No state container yet (a read-only store never creates it): no checkpoints.
                Err(e) if is_not_found(&e) => break,
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot list checkpoints of {container}"))
                }
            };
            let Some(name) = item.name else { continue };
            let Some(blob) = name.strip_prefix(&head) else {
                continue;
            };
            let md = item.metadata.and_then(|m| m.values).unwrap_or_default();
            let num = |k: &str| md.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            out.push(Summary {
                key: BlobKey::new(container, blob),
                offset: num("offset"),
                length: num("length"),
                closed: md.get("closed").is_some_and(|v| v == "true"),
                filtered: num("filtered"),
                filtered_bytes: num("filtered_bytes"),
            });
        }
        Ok(out)
    }

    async fn list_open(&self) -> anyhow::Result<Vec<BlobKey>> {
        let c = self.container().await?;
        let opts = BlobContainerClientListBlobsOptions {
            prefix: Some("open/".into()),
            ..Default::default()
        };
        let mut pager = c.list_blobs(Some(opts))?;
        let mut out = Vec::new();
        while let Some(item) = pager.try_next().await.context("cannot list open blobs")? {
            let Some(name) = item.name else { continue };
            if let Some((container, blob)) =
                name.strip_prefix("open/").and_then(|r| r.split_once('/'))
            {
                out.push(BlobKey::new(container, blob));
            }
        }
        Ok(out)
    }

    async fn claim(&self, name: &str, every: Duration) -> anyhow::Result<bool> {
        let c = self.container().await?;
        let b = c.blob_client(&format!("claims/{name}"));
        let now = Utc::now();
        let mut opts = BlobClientUploadOptions::default();
        match b.download(None).await {
            Ok(rsp) => {
                let etag = rsp.properties.etag.clone();
                let body = rsp.body.collect().await?;
                if let Ok(last) = serde_json::from_slice::<DateTime<Utc>>(&body) {
                    if now.signed_duration_since(last).to_std().unwrap_or_default() < every {
                        return Ok(false);
                    }
                }
                opts.if_match = etag;
            }
            Err(e) if is_not_found(&e) => opts = opts.if_not_exists(),
            Err(e) => return Err(e).with_context(|| format!("cannot read claim {name}")),
        }
        let body = serde_json::to_vec(&now)?;
        match b.upload(RequestContent::from(body), Some(opts)).await {
            Ok(_) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("cannot write claim {name}")),
        }
    }
}
