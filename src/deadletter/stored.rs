//! Reading stored dead letters back, for `mde-relay status` (how many) and `mde-relay redrive`
//! (send them again, then remove or keep them).
//!
//! Two stores, matching the two writers: the dead-letter container of the host storage
//! ([`super::blob::DeadLetterContainer`]: one NDJSON blob per stored group, named
//! `<export container>/<blob>/<offset>.ndjson`) and a local NDJSON file
//! ([`super::DeadLetterFile`], one group: the whole file). A [`Group`] is the unit that is
//! rewritten: after a redrive it is deleted (nothing left) or replaced by what stays.
//!
//! Reading never creates anything: a missing container or file holds no dead letters.

use super::blob::RECORDS_METADATA;
use super::DeadLetter;
use crate::azure::blob::{is_not_found, ClientCache};
use crate::azure::StorageAccount;
use anyhow::Context;
use azure_core::http::RequestContent;
use azure_storage_blob::models::{
    BlobClientDeleteOptions, BlobClientUploadOptions, BlobContainerClientListBlobsOptions,
    ListBlobsIncludeItem,
};
use futures::TryStreamExt;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One stored group of dead letters.
#[derive(Debug, Clone, Default)]
pub struct Group {
    /// Blob name in the container, or empty for a local file.
    pub name: String,
    /// The records, in stored order.
    pub records: Vec<DeadLetter>,
    /// Lines that are not dead-letter records (kept untouched when the group is rewritten).
    pub unreadable: Vec<String>,
    /// The version read (ETag of a blob), so a rewrite cannot clobber a newer one.
    pub version: Option<String>,
}

/// Where dead letters are read back from. See the module documentation.
pub struct DeadLetterStore(Kind);

enum Kind {
    /// The dead-letter container of a storage account.
    Container {
        clients: Box<ClientCache>,
        container: String,
    },
    /// A local NDJSON file; records that were redriven go to `<file>.done`.
    File(PathBuf),
}

impl std::fmt::Debug for DeadLetterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

fn parse_lines(name: String, text: &[u8]) -> Group {
    let mut g = Group {
        name,
        ..Group::default()
    };
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.trim_ascii().is_empty() {
            continue;
        }
        match serde_json::from_slice::<DeadLetter>(line) {
            Ok(r) => g.records.push(r),
            Err(_) => g
                .unreadable
                .push(String::from_utf8_lossy(line).into_owned()),
        }
    }
    g
}

fn to_ndjson(records: &[DeadLetter], unreadable: &[String]) -> Vec<u8> {
    let mut body = Vec::new();
    for r in records {
        body.extend_from_slice(&r.to_line());
    }
    for u in unreadable {
        body.extend_from_slice(u.as_bytes());
        body.push(b'\n');
    }
    body
}

impl DeadLetterStore {
    /// The dead-letter container `container` of `account`.
    pub fn container(account: StorageAccount, container: impl Into<String>) -> Self {
        DeadLetterStore(Kind::Container {
            clients: Box::new(ClientCache::new(account)),
            container: container.into(),
        })
    }

    /// A local dead-letter file.
    pub fn file(path: &Path) -> Self {
        DeadLetterStore(Kind::File(path.to_path_buf()))
    }

    /// Where the records are, for messages.
    pub fn describe(&self) -> String {
        match &self.0 {
            Kind::Container { container, .. } => format!("container {container}"),
            Kind::File(p) => p.display().to_string(),
        }
    }

    /// The file successfully redriven records of a local store are appended to.
    pub fn done_path(path: &Path) -> PathBuf {
        let mut p = path.as_os_str().to_owned();
        p.push(".done");
        p.into()
    }

    /// The groups, by name, with their record count when the listing tells it; for a
    /// container, only blobs whose names start with `prefix` (an export container name and
    /// `/` narrow to one table). Groups are read one at a time with [`Self::read`], so a large
    /// store is never held in memory at once.
    pub async fn names(&self, prefix: &str) -> anyhow::Result<Vec<(String, Option<u64>)>> {
        match &self.0 {
            Kind::File(p) => Ok(if p.exists() {
                vec![(String::new(), None)]
            } else {
                Vec::new()
            }),
            Kind::Container { clients, container } => {
                let c = clients.get()?.blob_container_client(container);
                let opts = BlobContainerClientListBlobsOptions {
                    prefix: (!prefix.is_empty()).then(|| prefix.to_string()),
                    include: Some(vec![ListBlobsIncludeItem::Metadata]),
                    ..Default::default()
                };
                let mut pager = c.list_blobs(Some(opts))?;
                let mut names = Vec::new();
                loop {
                    match pager.try_next().await {
                        Ok(Some(item)) => {
                            let Some(name) = item.name else { continue };
                            let n = item
                                .metadata
                                .and_then(|m| m.values)
                                .and_then(|m| m.get(RECORDS_METADATA).and_then(|v| v.parse().ok()));
                            names.push((name, n));
                        }
                        Ok(None) => break,
                        // No container: nothing was ever dead-lettered.
                        Err(e) if is_not_found(&e) => break,
                        Err(e) => {
                            return Err(e).with_context(|| {
                                format!("cannot list dead letters in {container}")
                            })
                        }
                    }
                }
                Ok(names)
            }
        }
    }

    /// Reads one group; `None` when it is gone (removed meanwhile by another redrive).
    pub async fn read(&self, name: &str) -> anyhow::Result<Option<Group>> {
        match &self.0 {
            Kind::File(p) => match std::fs::read(p) {
                Ok(b) => Ok(Some(parse_lines(String::new(), &b))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
            },
            Kind::Container { clients, container } => {
                let c = clients.get()?.blob_container_client(container);
                let what = || format!("cannot read dead letters {container}/{name}");
                let rsp = match c.blob_client(name).download(None).await {
                    Ok(r) => r,
                    Err(e) if is_not_found(&e) => return Ok(None),
                    Err(e) => return Err(e).with_context(what),
                };
                let version = rsp.properties.etag.as_ref().map(|e| e.to_string());
                let body = rsp.body.collect().await.with_context(what)?;
                let mut g = parse_lines(name.to_string(), &body);
                g.version = version;
                Ok(Some(g))
            }
        }
    }

    /// Records per export container (`local` for records of local files). A container's
    /// groups are counted from the listing (the writer stores the count in metadata); only
    /// groups without it are read.
    pub async fn count_by_container(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        let mut m = BTreeMap::new();
        for (name, n) in self.names("").await? {
            match (n, name.split_once('/')) {
                (Some(n), Some((container, _))) => {
                    *m.entry(container.to_string()).or_insert(0) += n
                }
                _ => {
                    for r in self
                        .read(&name)
                        .await?
                        .map(|g| g.records)
                        .unwrap_or_default()
                    {
                        *m.entry(r.container.unwrap_or_else(|| "local".into()))
                            .or_insert(0) += 1;
                    }
                }
            }
        }
        Ok(m)
    }

    /// Replaces `group` by `keep` (records) plus its unreadable lines; deletes it when nothing
    /// is left. A container's group is only changed if it is still the version read (a drain
    /// that wrote it again meanwhile wins; the redrive then fails and can be run again).
    pub async fn replace(&self, group: &Group, keep: &[DeadLetter]) -> anyhow::Result<()> {
        let body = to_ndjson(keep, &group.unreadable);
        match &self.0 {
            Kind::File(p) => {
                // Atomic: a crash leaves the old file (its records are then sent again, with the
                // same ids) or the new one, never a torn one.
                let tmp = p.with_extension(format!("redrive{}", std::process::id()));
                {
                    let mut f = std::fs::File::create(&tmp)
                        .with_context(|| format!("cannot write {}", tmp.display()))?;
                    f.write_all(&body)?;
                    f.sync_data()?;
                }
                std::fs::rename(&tmp, p)
                    .with_context(|| format!("cannot replace {}", p.display()))?;
                Ok(())
            }
            Kind::Container { clients, container } => {
                let b = clients
                    .get()?
                    .blob_container_client(container)
                    .blob_client(&group.name);
                let what = || format!("cannot update dead letters {container}/{}", group.name);
                let if_match = group.version.clone().map(Into::into);
                if body.is_empty() {
                    let opts = BlobClientDeleteOptions {
                        if_match,
                        ..Default::default()
                    };
                    match b.delete(Some(opts)).await {
                        Ok(_) => Ok(()),
                        Err(e) if is_not_found(&e) => Ok(()),
                        Err(e) => Err(e).with_context(what),
                    }
                } else {
                    let opts = BlobClientUploadOptions {
                        blob_content_type: Some("application/x-ndjson".into()),
                        metadata: Some(HashMap::from([(
                            RECORDS_METADATA.to_string(),
                            (keep.len() + group.unreadable.len()).to_string(),
                        )])),
                        if_match,
                        ..Default::default()
                    };
                    b.upload(RequestContent::from(body), Some(opts))
                        .await
                        .with_context(what)?;
                    Ok(())
                }
            }
        }
    }

    /// For a local store, appends `done` to `<file>.done` (synced); a container keeps no record
    /// of redriven rows (the delivered events carry their source).
    pub fn record_done(&self, done: &[DeadLetter]) -> anyhow::Result<()> {
        let Kind::File(p) = &self.0 else {
            return Ok(());
        };
        if done.is_empty() {
            return Ok(());
        }
        let path = Self::done_path(p);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        f.write_all(&to_ndjson(done, &[]))?;
        f.sync_data()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_unreadable_lines() {
        let rec = DeadLetter {
            reason: "r".into(),
            container: Some("c".into()),
            blob: "b".into(),
            offset: 3,
            length: 2,
            original: Some("{x".into()),
            original_base64: None,
            truncated: false,
            rejected_by: None,
            event_id: None,
        };
        let mut text = rec.to_line();
        text.extend_from_slice(b"not a record\r\n\n");
        let g = parse_lines("n".into(), &text);
        assert_eq!(g.records, vec![rec.clone()]);
        assert_eq!(g.unreadable, vec!["not a record".to_string()]);
        assert_eq!(
            to_ndjson(&g.records, &g.unreadable),
            [rec.to_line(), b"not a record\n".to_vec()].concat()
        );
    }
}
