//! Checkpoints in a local directory (`--state DIR`), for CLI runs.
//!
//! Layout: `DIR/cp/<container>/<blob>.json` holds `{"version":N,"checkpoint":{…}}`, written
//! atomically (temporary file + rename). The lease is an advisory `flock` on
//! `DIR/cp/<container>/<blob>.lock`, held by an open file inside the store: the kernel releases
//! it when the process dies, so a crashed run never blocks the next one, and two processes (or
//! two drains in one process) sharing the directory never drain a blob at once.

use super::{Checkpoint, CheckpointStore, Lease, StoreError, Stored, Summary};
use crate::source::BlobKey;
use anyhow::{bail, Context};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Checkpoints under a directory. See the module documentation.
#[derive(Debug)]
pub struct DirCheckpointStore {
    root: PathBuf,
    /// Open lock files of the leases held, by lease id.
    held: Mutex<HashMap<String, File>>,
}

#[derive(Serialize, Deserialize)]
struct Record {
    version: u64,
    checkpoint: Checkpoint,
}

fn safe(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || !Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
    {
        bail!("name `{name}` is not a plain relative path");
    }
    Ok(())
}

/// Longest file-name component written: file systems allow 255 bytes, and `.json`, `.lock` or
/// `.tmp<pid>` is appended.
const MAX_COMPONENT: usize = 200;

/// `name` as a relative path whose every component fits a file name: a component longer than
/// [`MAX_COMPONENT`] bytes becomes its first 100 bytes, `~` and the BLAKE3 hash of the
/// whole component, so distinct names stay distinct. Records are read by content, so the
/// mapping need not be reversible.
fn bounded_path(name: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for seg in name.split('/') {
        if seg.len() <= MAX_COMPONENT {
            out.push(seg);
        } else {
            let mut cut = 100;
            while !seg.is_char_boundary(cut) {
                cut -= 1;
            }
            let hash = blake3::hash(seg.as_bytes()).to_hex();
            out.push(format!("{}~{}", &seg[..cut], &hash[..32]));
        }
    }
    out
}

/// Takes an exclusive `flock` without waiting; false when another open file holds it.
fn try_flock(f: &File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file descriptor we own; no memory is passed.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_data()?;
    }
    std::fs::rename(&tmp, path)
}

impl DirCheckpointStore {
    /// A store under `root` (created when missing).
    pub fn open(root: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(root.join("cp"))
            .with_context(|| format!("cannot create state directory {}", root.display()))?;
        Ok(DirCheckpointStore {
            root,
            held: Mutex::new(HashMap::new()),
        })
    }

    fn base(&self, key: &BlobKey) -> anyhow::Result<PathBuf> {
        safe(&key.container)?;
        safe(&key.blob)?;
        Ok(self
            .root
            .join("cp")
            .join(bounded_path(&key.container))
            .join(bounded_path(&key.blob)))
    }

    fn record_path(&self, key: &BlobKey) -> anyhow::Result<PathBuf> {
        let mut p = self.base(key)?.into_os_string();
        p.push(".json");
        Ok(p.into())
    }

    fn lock_path(&self, key: &BlobKey) -> anyhow::Result<PathBuf> {
        let mut p = self.base(key)?.into_os_string();
        p.push(".lock");
        Ok(p.into())
    }

    fn read_record(path: &Path) -> anyhow::Result<Option<Record>> {
        match std::fs::read(path) {
            Ok(b) => Ok(Some(serde_json::from_slice(&b).with_context(|| {
                format!("checkpoint {} is not valid", path.display())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    fn holds(&self, lease: &Lease) -> bool {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&lease.id)
    }

    fn all_records(&self, dir: &Path) -> anyhow::Result<Vec<Checkpoint>> {
        let mut out = Vec::new();
        if !dir.is_dir() {
            return Ok(out);
        }
        for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
            let e = e?;
            if e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "json") {
                if let Some(r) = Self::read_record(e.path())? {
                    out.push(r.checkpoint);
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl CheckpointStore for DirCheckpointStore {
    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }

    async fn acquire(&self, key: &BlobKey, ttl: Duration) -> anyhow::Result<Option<Lease>> {
        let path = self.lock_path(key)?;
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        if !try_flock(&f).with_context(|| format!("cannot lock {}", path.display()))? {
            return Ok(None);
        }
        let id = format!("{:032x}", rand::random::<u128>());
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), f);
        Ok(Some(Lease {
            key: key.clone(),
            id,
            ttl,
        }))
    }

    async fn renew(&self, lease: &Lease) -> anyhow::Result<()> {
        if !self.holds(lease) {
            bail!("lease on {} is not held", lease.key);
        }
        Ok(())
    }

    async fn release(&self, lease: &Lease) -> anyhow::Result<()> {
        // Closing the file drops the flock.
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&lease.id);
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> anyhow::Result<Option<Stored>> {
        Ok(Self::read_record(&self.record_path(key)?)?.map(|r| Stored {
            checkpoint: r.checkpoint,
            version: r.version.to_string(),
        }))
    }

    async fn put(
        &self,
        lease: &Lease,
        cp: &Checkpoint,
        expected: Option<&str>,
    ) -> Result<String, StoreError> {
        if !self.holds(lease) || lease.key != cp.key() {
            return Err(StoreError::Conflict(cp.key()));
        }
        let path = self.record_path(&lease.key)?;
        let current = Self::read_record(&path)?.map(|r| r.version.to_string());
        if current.as_deref() != expected {
            return Err(StoreError::Conflict(cp.key()));
        }
        let version = current.map_or(1, |v| v.parse::<u64>().unwrap_or(0) + 1);
        let rec = Record {
            version,
            checkpoint: cp.clone(),
        };
        let data = serde_json::to_vec_pretty(&rec).context("cannot serialize checkpoint")?;
        write_atomic(&path, &data)
            .with_context(|| format!("cannot write checkpoint {}", path.display()))?;
        Ok(version.to_string())
    }

    async fn list(&self, container: &str, prefix: &str) -> anyhow::Result<Vec<Summary>> {
        safe(container)?;
        let dir = self.root.join("cp").join(bounded_path(container));
        Ok(self
            .all_records(&dir)?
            .into_iter()
            .filter(|c| c.blob.starts_with(prefix))
            .map(|c| c.summary())
            .collect())
    }

    async fn list_open(&self) -> anyhow::Result<Vec<BlobKey>> {
        Ok(self
            .all_records(&self.root.join("cp"))?
            .into_iter()
            .filter(|c| !c.closed)
            .map(|c| c.key())
            .collect())
    }

    async fn claim(&self, name: &str, every: Duration) -> anyhow::Result<bool> {
        safe(name)?;
        let dir = self.root.join("claims");
        std::fs::create_dir_all(&dir)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{name}.lock")))?;
        if !try_flock(&lock)? {
            return Ok(false);
        }
        let path = dir.join(format!("{name}.json"));
        let now = Utc::now();
        if let Ok(b) = std::fs::read(&path) {
            if let Ok(last) = serde_json::from_slice::<DateTime<Utc>>(&b) {
                if now.signed_duration_since(last).to_std().unwrap_or_default() < every {
                    return Ok(false);
                }
            }
        }
        write_atomic(&path, &serde_json::to_vec(&now)?)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_longer_than_a_file_name_are_checkpointed() {
        let dir = tempfile::tempdir().unwrap();
        let s = DirCheckpointStore::open(dir.path()).unwrap();
        let ttl = Duration::from_secs(15);
        let long = |tail: &str| format!("tenantId=t/y=2026/{}{tail}.json", "é".repeat(150));
        let (a, b) = (BlobKey::new("c", long("a")), BlobKey::new("c", long("b")));
        for (i, key) in [&a, &b].into_iter().enumerate() {
            let l = s.acquire(key, ttl).await.unwrap().expect("lease");
            let mut cp = Checkpoint::new(key, Utc::now());
            cp.offset = i as u64 + 1;
            s.put(&l, &cp, None)
                .await
                .expect("a long name is checkpointed");
            s.release(&l).await.unwrap();
        }
        assert_eq!(s.get(&a).await.unwrap().unwrap().checkpoint.offset, 1);
        assert_eq!(s.get(&b).await.unwrap().unwrap().checkpoint.offset, 2);
        assert_eq!(s.list("c", "tenantId=t/").await.unwrap().len(), 2);
        assert_eq!(s.list_open().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn lease_excludes_and_put_is_conditional() {
        let dir = tempfile::tempdir().unwrap();
        let s = DirCheckpointStore::open(dir.path()).unwrap();
        let key = BlobKey::new("c", "tenantId=t/y=2026/m=01/d=01/h=00/m=00/PT1H.json");
        let ttl = Duration::from_secs(15);
        let l = s.acquire(&key, ttl).await.unwrap().unwrap();
        assert!(
            s.acquire(&key, ttl).await.unwrap().is_none(),
            "second lease"
        );
        let mut cp = Checkpoint::new(&key, Utc::now());
        let v1 = s.put(&l, &cp, None).await.unwrap();
        assert!(matches!(
            s.put(&l, &cp, None).await,
            Err(StoreError::Conflict(_))
        ));
        cp.offset = 42;
        let v2 = s.put(&l, &cp, Some(&v1)).await.unwrap();
        assert_ne!(v1, v2);
        let got = s.get(&key).await.unwrap().unwrap();
        assert_eq!(got.checkpoint.offset, 42);
        assert_eq!(got.version, v2);
        assert_eq!(s.list_open().await.unwrap(), vec![key.clone()]);
        assert_eq!(s.list("c", "tenantId=t/").await.unwrap().len(), 1);
        assert!(s.list("c", "tenantId=u/").await.unwrap().is_empty());
        s.release(&l).await.unwrap();
        assert!(matches!(
            s.put(&l, &cp, Some(&v2)).await,
            Err(StoreError::Conflict(_))
        ));
        let l2 = s.acquire(&key, ttl).await.unwrap().expect("released");
        cp.closed = true;
        s.put(&l2, &cp, Some(&v2)).await.unwrap();
        assert!(s.list_open().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn claims_run_once_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        let s = DirCheckpointStore::open(dir.path()).unwrap();
        assert!(s.claim("sweep", Duration::from_secs(3600)).await.unwrap());
        assert!(!s.claim("sweep", Duration::from_secs(3600)).await.unwrap());
        assert!(s.claim("sweep", Duration::ZERO).await.unwrap());
    }
}
