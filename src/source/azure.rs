//! Azure Storage as a [`Source`], through the official `azure_storage_blob` crate and a
//! connection from [`crate::azure`] (`MdeExportStorage`: connection string or managed identity).
//!
//! Reads are one ranged GET each (`Range: bytes=a-b`, no ETag lock: an append blob's ETag
//! changes on every append, but bytes below a committed length never change). The service client
//! is rebuilt every [`CLIENT_MAX_AGE`] ([`crate::azure::blob::ClientCache`]), so a SAS signed from an account key never expires under a
//! long-running handler, while its connection pool is reused between rebuilds.

use super::{BlobKey, BlobProps, BlobType, Listed, Source};
pub use crate::azure::blob::CLIENT_MAX_AGE;
use crate::azure::blob::{is_not_found, ClientCache};
use crate::azure::StorageAccount;
use anyhow::{bail, Context};
use async_trait::async_trait;
use azure_storage_blob::models::{
    BlobClientDownloadOptions, BlobClientGetPropertiesResultHeaders,
    BlobContainerClientListBlobsOptions, BlobServiceClientListContainersOptions,
    BlobType as SdkBlobType,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use std::num::NonZero;
use std::ops::Range;

/// Largest number of results asked for per listing page.
const PAGE: i32 = 5000;

/// Converts the SDK's timestamps.
pub(crate) fn to_chrono(t: time::OffsetDateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond()).unwrap_or_default()
}

fn blob_type(t: Option<&SdkBlobType>) -> BlobType {
    match t {
        Some(SdkBlobType::AppendBlob) => BlobType::Append,
        Some(SdkBlobType::BlockBlob) => BlobType::Block,
        Some(SdkBlobType::PageBlob) => BlobType::Page,
        _ => BlobType::Unknown,
    }
}

/// Export blobs in an Azure Storage account.
pub struct AzureSource {
    clients: ClientCache,
}

impl std::fmt::Debug for AzureSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureSource")
            .field("account", self.clients.account())
            .finish()
    }
}

impl AzureSource {
    /// A source reading the account of `account`. Nothing is contacted until the first call.
    pub fn new(account: StorageAccount) -> anyhow::Result<Self> {
        if account.blob_endpoint().is_none() {
            bail!("setting `{}`: has no blob endpoint", account.setting());
        }
        Ok(AzureSource {
            clients: ClientCache::new(account),
        })
    }
}

#[async_trait]
impl Source for AzureSource {
    fn describe(&self) -> String {
        let a = self.clients.account();
        format!(
            "{} ({})",
            a.blob_endpoint().map(|u| u.as_str()).unwrap_or("?"),
            a.setting()
        )
    }

    fn key_for_url(&self, url: &str) -> Result<BlobKey, String> {
        let (c, b) = self.clients.account().parse_blob_url(url)?;
        Ok(BlobKey::new(c, b))
    }

    async fn properties(&self, key: &BlobKey) -> anyhow::Result<Option<BlobProps>> {
        let client = self.clients.get()?.blob_client(&key.container, &key.blob);
        let rsp = match client.get_properties(None).await {
            Ok(r) => r,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read properties of {key}")),
        };
        let length = rsp
            .content_length()?
            .with_context(|| format!("no Content-Length for {key}"))?;
        let etag = rsp.etag()?.map(|e| e.to_string()).unwrap_or_default();
        let last_modified = rsp.last_modified()?.map(to_chrono).unwrap_or_else(Utc::now);
        let incarnation = rsp.creation_time()?.map(|t| to_chrono(t).to_rfc3339());
        Ok(Some(BlobProps {
            length,
            etag,
            last_modified,
            incarnation,
            blob_type: blob_type(rsp.blob_type()?.as_ref()),
        }))
    }

    async fn read(&self, key: &BlobKey, range: Range<u64>) -> anyhow::Result<Bytes> {
        let want = usize::try_from(range.end.saturating_sub(range.start))?;
        let Some(size) = NonZero::new(want) else {
            return Ok(Bytes::new());
        };
        let client = self.clients.get()?.blob_client(&key.container, &key.blob);
        // One partition covering the whole range: a single GET, no ETag lock between parts.
        let opts = BlobClientDownloadOptions {
            range: Some(range.clone().into()),
            partition_size: Some(size),
            parallel: NonZero::new(1),
            ..Default::default()
        };
        let rsp = client
            .download(Some(opts))
            .await
            .with_context(|| format!("cannot read bytes {range:?} of {key}"))?;
        let body = rsp
            .body
            .collect()
            .await
            .with_context(|| format!("reading bytes {range:?} of {key} failed"))?;
        if body.len() != want {
            bail!(
                "asked for {want} bytes at {} of {key}, got {} (blob shrank or was re-created?)",
                range.start,
                body.len()
            );
        }
        Ok(body)
    }

    async fn list_blobs(
        &self,
        container: &str,
        prefix: &str,
        limit: Option<usize>,
    ) -> anyhow::Result<Vec<Listed>> {
        let client = self.clients.get()?.blob_container_client(container);
        let opts = BlobContainerClientListBlobsOptions {
            prefix: (!prefix.is_empty()).then(|| prefix.to_string()),
            maxresults: Some(limit.map_or(PAGE, |l| l.clamp(1, PAGE as usize) as i32)),
            ..Default::default()
        };
        let mut pager = client.list_blobs(Some(opts))?;
        let mut out = Vec::new();
        loop {
            let item = match pager.try_next().await {
                Ok(Some(i)) => i,
                Ok(None) => break,
                Err(e) if is_not_found(&e) => return Ok(Vec::new()),
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot list {container}/{prefix}"))
                }
            };
            let (Some(name), Some(p)) = (item.name, item.properties) else {
                continue;
            };
            out.push(Listed {
                name,
                props: BlobProps {
                    length: p.content_length.unwrap_or(0),
                    etag: p.etag.map(|e| e.to_string()).unwrap_or_default(),
                    last_modified: p.last_modified.map(to_chrono).unwrap_or_else(Utc::now),
                    incarnation: p.creation_time.map(|t| to_chrono(t).to_rfc3339()),
                    blob_type: blob_type(p.blob_type.as_ref()),
                },
            });
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }

    async fn list_containers(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let client = self.clients.get()?;
        let opts = BlobServiceClientListContainersOptions {
            prefix: (!prefix.is_empty()).then(|| prefix.to_string()),
            maxresults: Some(PAGE),
            ..Default::default()
        };
        let mut pager = client.list_containers(Some(opts))?;
        let mut out = Vec::new();
        while let Some(c) = pager.try_next().await.context("cannot list containers")? {
            if let Some(n) = c.name {
                out.push(n);
            }
        }
        out.sort();
        Ok(out)
    }
}
