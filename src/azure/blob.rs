//! Blob storage plumbing the source, the checkpoint store and the dead-letter stores share: a
//! service client rebuilt before its SAS ages out ([`ClientCache`]), the not-found test and
//! container creation.

use super::StorageAccount;
use anyhow::Context;
use azure_core::http::StatusCode;
use azure_storage_blob::{BlobContainerClient, BlobServiceClient};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one service client (and the SAS in its URL) is used before it is rebuilt: half of
/// [`super::SAS_LIFETIME`], so a request started on an old client still has a valid SAS.
pub const CLIENT_MAX_AGE: Duration = Duration::from_secs(10 * 60);

/// A cached blob service client, rebuilt when old.
pub(crate) struct ClientCache {
    account: StorageAccount,
    current: Mutex<Option<(Instant, Arc<BlobServiceClient>)>>,
}

impl ClientCache {
    pub(crate) fn new(account: StorageAccount) -> Self {
        ClientCache {
            account,
            current: Mutex::new(None),
        }
    }

    pub(crate) fn account(&self) -> &StorageAccount {
        &self.account
    }

    pub(crate) fn get(&self) -> anyhow::Result<Arc<BlobServiceClient>> {
        let mut g = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, c)) = g.as_ref() {
            if at.elapsed() < CLIENT_MAX_AGE {
                return Ok(c.clone());
            }
        }
        let c = Arc::new(self.account.blob_service()?);
        *g = Some((Instant::now(), c.clone()));
        Ok(c)
    }
}

/// True when an SDK error is an HTTP 404.
pub(crate) fn is_not_found(e: &azure_core::Error) -> bool {
    e.http_status() == Some(StatusCode::NotFound)
}

/// Creates `container` unless it exists.
pub(crate) async fn ensure_container(c: &BlobContainerClient, name: &str) -> anyhow::Result<()> {
    match c.create(None).await {
        Ok(_) => Ok(()),
        Err(e) if e.http_status() == Some(StatusCode::Conflict) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create container {name}")),
    }
}
