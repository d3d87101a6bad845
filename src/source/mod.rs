//! Sources: where export blobs are read from, behind one small byte-range trait.
//!
//! The drain needs only five things from a blob store: a blob's properties (committed length,
//! ETag, last-modified, creation time, blob type), a ranged read, a listing of blobs by name
//! prefix, a listing of containers by name prefix, and a way to tell whether a URL from an event
//! points into this store at all. [`Source`] is exactly that, so the drain, the Tail sweep and the
//! backfill are written once and run against Azure Storage ([`azure::AzureSource`], the
//! `MdeExportStorage` connection) or a local directory ([`local::DirSource`], tests and offline
//! runs) alike.
//!
//! Scope is enforced here, not by callers remembering to check: [`Scoped`] wraps a source and
//! refuses every call on a container that does not start with the configured prefix
//! (`RELAY_CONTAINER_PREFIX`), and [`Scoped::admit_url`] turns an event's blob URL into a
//! [`BlobKey`] only when it names this account and an allowed container. A refused URL is never
//! fetched.

pub mod azure;
pub mod local;
pub mod names;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// A blob: its container and its name inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobKey {
    /// Container name.
    pub container: String,
    /// Blob name (may contain `/`).
    pub blob: String,
}

impl BlobKey {
    /// A key from its parts.
    pub fn new(container: impl Into<String>, blob: impl Into<String>) -> Self {
        BlobKey {
            container: container.into(),
            blob: blob.into(),
        }
    }

    /// The tenant id in an export blob name (`tenantId=<guid>/…`), if the name has one.
    pub fn tenant(&self) -> Option<&str> {
        let rest = self.blob.strip_prefix("tenantId=")?;
        let t = rest.split('/').next()?;
        (!t.is_empty()).then_some(t)
    }

    /// The hour an export blob belongs to, from `…/y=YYYY/m=MM/d=DD/h=HH/…` in its name.
    pub fn hour(&self) -> Option<DateTime<Utc>> {
        let mut y = None;
        let mut parts = (None, None, None);
        // `m=` appears twice (month, then minute): the first one after `y=` is the month.
        for seg in self.blob.split('/') {
            if let Some(v) = seg.strip_prefix("y=") {
                y = v.parse::<i32>().ok();
            } else if let Some(v) = seg.strip_prefix("m=") {
                if y.is_some() && parts.0.is_none() {
                    parts.0 = v.parse::<u32>().ok();
                }
            } else if let Some(v) = seg.strip_prefix("d=") {
                parts.1 = v.parse::<u32>().ok();
            } else if let Some(v) = seg.strip_prefix("h=") {
                parts.2 = v.parse::<u32>().ok();
            }
        }
        match (y, parts) {
            (Some(y), (Some(m), Some(d), Some(h))) => {
                Utc.with_ymd_and_hms(y, m, d, h, 0, 0).single()
            }
            _ => None,
        }
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.container, self.blob)
    }
}

/// The blob name prefix of one hour of one tenant's export:
/// `tenantId=<t>/y=YYYY/m=MM/d=DD/h=HH/`.
pub fn hour_prefix(tenant: &str, hour: DateTime<Utc>) -> String {
    format!(
        "tenantId={tenant}/y={:04}/m={:02}/d={:02}/h={:02}/",
        hour.year(),
        hour.month(),
        hour.day(),
        hour.hour()
    )
}

/// The kind of blob. Only append blobs grow; the others are complete once they exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobType {
    /// Append blob (what the export writes).
    Append,
    /// Block blob.
    Block,
    /// Page blob.
    Page,
    /// Not reported.
    Unknown,
}

/// What the drain needs to know about a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobProps {
    /// Committed length in bytes: everything below it can be read and will not change.
    pub length: u64,
    /// ETag (changes on every append).
    pub etag: String,
    /// Last write.
    pub last_modified: DateTime<Utc>,
    /// Identity of this incarnation of the blob (its creation time in Azure): it changes when
    /// the blob is deleted and created again under the same name. `None` when unknown.
    pub incarnation: Option<String>,
    /// Blob type.
    pub blob_type: BlobType,
}

/// One blob found by a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Blob name.
    pub name: String,
    /// Its properties as listed.
    pub props: BlobProps,
}

/// A blob store the relay reads export blobs from. See the module documentation.
#[async_trait]
pub trait Source: Send + Sync {
    /// A short description for logs (endpoint, never credentials).
    fn describe(&self) -> String;

    /// Splits a blob URL into a key when it points into this store; otherwise says why not.
    /// Must not touch the network.
    fn key_for_url(&self, url: &str) -> Result<BlobKey, String>;

    /// Properties of a blob; `None` when it does not exist.
    async fn properties(&self, key: &BlobKey) -> anyhow::Result<Option<BlobProps>>;

    /// Bytes `range` of a blob (the range must lie below a committed length seen before).
    async fn read(&self, key: &BlobKey, range: Range<u64>) -> anyhow::Result<Bytes>;

    /// Blobs of `container` whose names start with `prefix`, in name order; at most `limit`
    /// when given. A missing container lists as empty.
    async fn list_blobs(
        &self,
        container: &str,
        prefix: &str,
        limit: Option<usize>,
    ) -> anyhow::Result<Vec<Listed>>;

    /// Containers whose names start with `prefix`, in name order.
    async fn list_containers(&self, prefix: &str) -> anyhow::Result<Vec<String>>;
}

/// A source restricted to containers starting with a prefix. Every call on another container
/// fails without reaching the store.
#[derive(Clone)]
pub struct Scoped {
    inner: Arc<dyn Source>,
    prefix: String,
}

impl fmt::Debug for Scoped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scoped")
            .field("source", &self.inner.describe())
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Why an event's blob was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The URL does not point into the configured account.
    #[error("foreign blob URL: {0}")]
    ForeignAccount(String),
    /// The container is not an export container.
    #[error("container `{0}` does not start with the allowed prefix `{1}`")]
    ForeignContainer(String, String),
    /// The container or blob name is not one Azure could have created.
    #[error("invalid name `{0}`: {1}")]
    BadName(String, &'static str),
}

/// A name as logs may show it: control characters escaped, at most 200 characters.
fn shown(name: &str) -> String {
    name.chars()
        .take(200)
        .flat_map(char::escape_debug)
        .collect()
}

impl Scoped {
    /// Restricts `inner` to containers starting with `prefix`.
    pub fn new(inner: Arc<dyn Source>, prefix: impl Into<String>) -> Self {
        Scoped {
            inner,
            prefix: prefix.into(),
        }
    }

    /// The allowed container prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// True when `container` may be read: a valid container name (Azure's rules) starting with
    /// the prefix.
    pub fn allows(&self, container: &str) -> bool {
        container.starts_with(&self.prefix) && names::container_problem(container).is_none()
    }

    /// The key of an event's blob URL, when it names this account, an allowed container and a
    /// valid blob name (no dot segments, no control characters: [`names`]). Pure: nothing is
    /// fetched, whatever the URL says.
    pub fn admit_url(&self, url: &str) -> Result<BlobKey, Refusal> {
        let key = self
            .inner
            .key_for_url(url)
            .map_err(Refusal::ForeignAccount)?;
        self.check(&key.container)?;
        if let Some(why) = names::blob_problem(&key.blob) {
            return Err(Refusal::BadName(shown(&key.blob), why));
        }
        Ok(key)
    }

    /// The key of a drain request's container and blob, when the container is allowed and both
    /// names are valid ([`names`]). Pure, like [`Self::admit_url`].
    pub fn admit_key(&self, container: &str, blob: &str) -> Result<BlobKey, Refusal> {
        self.check(container)?;
        if let Some(why) = names::blob_problem(blob) {
            return Err(Refusal::BadName(shown(blob), why));
        }
        Ok(BlobKey::new(container.to_string(), blob.to_string()))
    }

    fn check(&self, container: &str) -> Result<(), Refusal> {
        if let Some(why) = names::container_problem(container) {
            return Err(Refusal::BadName(shown(container), why));
        }
        if self.allows(container) {
            Ok(())
        } else {
            Err(Refusal::ForeignContainer(
                container.to_string(),
                self.prefix.clone(),
            ))
        }
    }

    /// See [`Source::describe`].
    pub fn describe(&self) -> String {
        self.inner.describe()
    }

    /// See [`Source::properties`].
    pub async fn properties(&self, key: &BlobKey) -> anyhow::Result<Option<BlobProps>> {
        self.check(&key.container)?;
        self.inner.properties(key).await
    }

    /// See [`Source::read`].
    pub async fn read(&self, key: &BlobKey, range: Range<u64>) -> anyhow::Result<Bytes> {
        self.check(&key.container)?;
        self.inner.read(key, range).await
    }

    /// See [`Source::list_blobs`].
    pub async fn list_blobs(
        &self,
        container: &str,
        prefix: &str,
        limit: Option<usize>,
    ) -> anyhow::Result<Vec<Listed>> {
        self.check(container)?;
        self.inner.list_blobs(container, prefix, limit).await
    }

    /// Every allowed container.
    pub async fn containers(&self) -> anyhow::Result<Vec<String>> {
        let mut c = self.inner.list_containers(&self.prefix).await?;
        c.retain(|c| self.allows(c));
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_and_hour_from_export_names() {
        let k = BlobKey::new(
            "insights-logs-advancedhunting-deviceevents",
            "tenantId=abc/y=2026/m=11/d=02/h=13/m=00/PT1H.json",
        );
        assert_eq!(k.tenant(), Some("abc"));
        assert_eq!(
            k.hour().unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 2, 13, 0, 0).unwrap()
        );
        assert_eq!(
            hour_prefix("abc", k.hour().unwrap()),
            "tenantId=abc/y=2026/m=11/d=02/h=13/"
        );
        let odd = BlobKey::new("c", "some/other/name.json");
        assert_eq!(odd.tenant(), None);
        assert_eq!(odd.hour(), None);
        let bad = BlobKey::new("c", "tenantId=a/y=2026/m=13/d=02/h=13/m=00/PT1H.json");
        assert_eq!(bad.hour(), None);
    }
}
