//! A local directory as a [`Source`]: `<root>/<container>/<blob name>`. Used by tests and by
//! offline runs (`process --source dir:PATH`). Files are treated as append blobs: they may
//! grow, and their inode stands in for Azure's creation time, so a file replaced under the same
//! name counts as re-created.

use super::{BlobKey, BlobProps, BlobType, Listed, Source};
use anyhow::{bail, Context};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

/// Export blobs as files under a root directory.
#[derive(Debug, Clone)]
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    /// A source reading `<root>/<container>/<blob>`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirSource { root: root.into() }
    }

    /// The file holding `key`. Names that would leave the root (`..`, absolute) are refused.
    pub fn path_of(&self, key: &BlobKey) -> anyhow::Result<PathBuf> {
        safe_relative(&key.container)?;
        safe_relative(&key.blob)?;
        Ok(self.root.join(&key.container).join(&key.blob))
    }

    /// The `file://` URL of a blob (what an event for it would carry).
    pub fn url_of(&self, key: &BlobKey) -> String {
        format!(
            "file://{}/{}/{}",
            self.root.display(),
            key.container,
            key.blob
        )
    }
}

fn safe_relative(name: &str) -> anyhow::Result<()> {
    let p = Path::new(name);
    if name.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        bail!("blob or container name `{name}` is not a plain relative path");
    }
    Ok(())
}

fn props_of(meta: &std::fs::Metadata) -> BlobProps {
    let modified: DateTime<Utc> = meta
        .modified()
        .map(DateTime::<Utc>::from)
        .unwrap_or_else(|_| Utc::now());
    #[cfg(unix)]
    let incarnation = {
        use std::os::unix::fs::MetadataExt;
        Some(format!("{}:{}", meta.dev(), meta.ino()))
    };
    #[cfg(not(unix))]
    let incarnation = None;
    BlobProps {
        length: meta.len(),
        etag: format!(
            "\"{}-{}\"",
            meta.len(),
            modified.timestamp_nanos_opt().unwrap_or_default()
        ),
        last_modified: modified,
        incarnation,
        blob_type: BlobType::Append,
    }
}

#[async_trait]
impl Source for DirSource {
    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }

    fn key_for_url(&self, url: &str) -> Result<BlobKey, String> {
        let root = format!("file://{}/", self.root.display());
        let rest = url
            .strip_prefix(&root)
            .ok_or_else(|| format!("{url} is not under {root}"))?;
        let (c, b) = rest
            .split_once('/')
            .ok_or("URL has no blob name after the container")?;
        let key = BlobKey::new(c, b);
        self.path_of(&key).map_err(|e| e.to_string())?;
        Ok(key)
    }

    async fn properties(&self, key: &BlobKey) -> anyhow::Result<Option<BlobProps>> {
        let p = self.path_of(key)?;
        match tokio::fs::metadata(&p).await {
            Ok(m) if m.is_file() => Ok(Some(props_of(&m))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot stat {}", p.display())),
        }
    }

    async fn read(&self, key: &BlobKey, range: Range<u64>) -> anyhow::Result<Bytes> {
        let p = self.path_of(key)?;
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Seek, SeekFrom};
            let mut f =
                std::fs::File::open(&p).with_context(|| format!("cannot open {}", p.display()))?;
            f.seek(SeekFrom::Start(range.start))?;
            let len = usize::try_from(range.end.saturating_sub(range.start))?;
            let mut buf = vec![0u8; len];
            f.read_exact(&mut buf)
                .with_context(|| format!("cannot read {:?} of {}", range, p.display()))?;
            Ok(Bytes::from(buf))
        })
        .await?
    }

    async fn list_blobs(
        &self,
        container: &str,
        prefix: &str,
        limit: Option<usize>,
    ) -> anyhow::Result<Vec<Listed>> {
        safe_relative(container)?;
        let dir = self.root.join(container);
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            if !dir.is_dir() {
                return Ok(out);
            }
            for entry in walkdir::WalkDir::new(&dir).sort_by_file_name() {
                let entry = entry?;
                if !entry.file_type().is_file() {
                    continue;
                }
                let rel = entry.path().strip_prefix(&dir).unwrap_or(entry.path());
                let name = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if name.starts_with(&prefix) {
                    out.push(Listed {
                        name,
                        props: props_of(&entry.metadata()?),
                    });
                }
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            if let Some(l) = limit {
                out.truncate(l);
            }
            Ok(out)
        })
        .await?
    }

    async fn list_containers(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        let mut rd = match tokio::fs::read_dir(&self.root).await {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).context("cannot list the source directory"),
        };
        while let Some(e) = rd.next_entry().await? {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().await?.is_dir() && name.starts_with(prefix) {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_lists_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir
            .path()
            .join("insights-logs-advancedhunting-a/tenantId=t/y=2026");
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("PT1H.json"), b"0123456789").unwrap();
        std::fs::create_dir_all(dir.path().join("other")).unwrap();
        let s = DirSource::new(dir.path());
        let key = BlobKey::new(
            "insights-logs-advancedhunting-a",
            "tenantId=t/y=2026/PT1H.json",
        );
        let p = s.properties(&key).await.unwrap().unwrap();
        assert_eq!(p.length, 10);
        assert_eq!(&s.read(&key, 2..5).await.unwrap()[..], b"234");
        assert!(s.read(&key, 8..12).await.is_err(), "short read is an error");
        let l = s
            .list_blobs("insights-logs-advancedhunting-a", "tenantId=t/", None)
            .await
            .unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].name, "tenantId=t/y=2026/PT1H.json");
        assert_eq!(
            s.list_containers("insights-").await.unwrap(),
            vec!["insights-logs-advancedhunting-a"]
        );
        assert!(s
            .properties(&BlobKey::new("c", "../../etc/passwd"))
            .await
            .is_err());
        assert_eq!(s.key_for_url(&s.url_of(&key)).unwrap(), key);
        assert!(s.key_for_url("file:///elsewhere/c/b").is_err());
        assert!(s
            .properties(&BlobKey::new("insights-logs-advancedhunting-a", "nope"))
            .await
            .unwrap()
            .is_none());
    }
}
