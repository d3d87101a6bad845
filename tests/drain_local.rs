//! The drain against a local directory source and checkpoint store: restart rules, concurrent
//! drains, sink failures and closing, without Azure in the way.

mod common;
mod relay;

use async_trait::async_trait;
use mde_relay::deliver::{Delivery, Limits};
use mde_relay::drain::{Contention, DrainSettings, Drainer, Outcome};
use mde_relay::sink::{file::FileSink, Batch, Sink, SinkError};
use mde_relay::source::BlobKey;
use relay::{counts, event_ids, rows};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PREFIX: &str = "insights-logs-advancedhunting-";
const CONTAINER: &str = "insights-logs-advancedhunting-deviceprocessevents";

/// A file sink that refuses batches while `fail` is set, and counts what it accepted.
struct FlakySink {
    inner: FileSink,
    fail: AtomicBool,
    sent: AtomicUsize,
}

#[async_trait]
impl Sink for FlakySink {
    fn name(&self) -> &'static str {
        "flaky"
    }
    /// It writes a file: one batch at a time keeps the events in blob order.
    fn max_in_flight(&self) -> Option<usize> {
        Some(1)
    }
    async fn send(&self, batch: &Batch) -> Result<(), SinkError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(SinkError::RetriesExhausted {
                sink: "flaky",
                message: "receiver down".into(),
            });
        }
        // Slow enough that concurrent drains overlap.
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.sent.fetch_add(batch.len(), Ordering::SeqCst);
        self.inner.send(batch).await
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    sink: Arc<FlakySink>,
    drainer: Drainer,
    key: BlobKey,
}

impl Fixture {
    fn new(grace: Duration) -> Fixture {
        Self::with(grace, DrainSettings::default())
    }

    fn with(grace: Duration, base: DrainSettings) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(FlakySink {
            inner: FileSink::open(&dir.path().join("events.ndjson"), true, false).unwrap(),
            fail: AtomicBool::new(false),
            sent: AtomicUsize::new(0),
        });
        let settings = DrainSettings {
            chunk: 4096,
            close_grace: grace,
            concurrency: 8,
            ..base
        };
        let limits = Limits {
            max_events: 7,
            ..Limits::default()
        };
        // Nobody asks these drains to stop; a dropped sender leaves the flag false.
        let drainer = common::drain::local_drainer(
            dir.path(),
            PREFIX,
            &dir.path().join("dead.ndjson"),
            Delivery::new(sink.clone(), limits),
            settings,
        );
        let key = BlobKey::new(
            CONTAINER,
            format!(
                "tenantId={}/y=2026/m=01/d=01/h=00/m=00/PT1H.json",
                relay::TENANT
            ),
        );
        Fixture {
            dir,
            sink,
            drainer,
            key,
        }
    }

    fn path(&self) -> PathBuf {
        self.dir
            .path()
            .join("src")
            .join(&self.key.container)
            .join(&self.key.blob)
    }

    fn write(&self, data: &[u8]) {
        std::fs::create_dir_all(self.path().parent().unwrap()).unwrap();
        std::fs::write(self.path(), data).unwrap();
    }

    fn append(&self, data: &[u8]) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.path())
            .unwrap();
        f.write_all(data).unwrap();
    }

    fn events(&self) -> Vec<String> {
        event_ids(&self.dir.path().join("events.ndjson")).0
    }

    fn dead(&self) -> Vec<serde_json::Value> {
        read_lines(&self.dir.path().join("dead.ndjson"))
    }

    async fn drain(&self) -> mde_relay::drain::Report {
        self.drainer
            .drain(
                &self.key,
                Contention::Wait(Duration::from_secs(10)),
                None,
                None,
            )
            .await
            .unwrap()
    }
}

fn read_lines(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn a_failed_send_is_retried_from_the_last_checkpoint_with_the_same_ids() {
    let f = Fixture::new(Duration::from_secs(3600));
    let (data, ids) = rows(0..50, 20);
    f.write(&data);
    f.sink.fail.store(true, Ordering::SeqCst);
    let refused = f.drainer.drain(&f.key, Contention::Skip, None, None).await;
    assert!(refused.is_err(), "a refused batch fails the drain");
    assert!(f.events().is_empty());
    f.sink.fail.store(false, Ordering::SeqCst);
    let r = f.drain().await;
    assert_eq!(r.outcome, Outcome::Drained);
    assert_eq!(r.from, 0, "nothing was checkpointed while the sink refused");
    assert_eq!(f.events(), ids);
    assert_eq!(f.drain().await.outcome, Outcome::UpToDate);
}

/// Checkpoints are coalesced: one per RELAY_CHECKPOINT_BYTES of acknowledged input (and one at
/// the end), not one per batch; the last one covers the whole blob.
#[tokio::test]
async fn checkpoints_are_written_per_checkpoint_bytes_not_per_batch() {
    let base = DrainSettings {
        checkpoint_bytes: 64 << 10,
        checkpoint_every: Duration::from_secs(3600),
        ..DrainSettings::default()
    };
    let f = Fixture::with(Duration::from_secs(3600), base);
    let (data, ids) = rows(0..2000, 100);
    f.write(&data);
    let r = f.drain().await;
    assert_eq!(f.events(), ids);
    assert_eq!(r.to, data.len() as u64);
    let most = data.len() as u64 / (64 << 10) + 2;
    assert!(
        r.checkpoints_written <= most && r.checkpoints_written >= most - 2,
        "{} checkpoints for {} bytes in {} batches",
        r.checkpoints_written,
        data.len(),
        r.batches
    );
    assert!(r.batches > 10 * r.checkpoints_written, "{r:?}");
}

#[tokio::test]
async fn concurrent_drains_of_one_blob_never_double_send() {
    let f = Fixture::new(Duration::from_secs(3600));
    let (data, ids) = rows(0..400, 50);
    f.write(&data);
    let (a, b, c) = tokio::join!(
        f.drainer.drain(&f.key, Contention::Skip, None, None),
        f.drainer.drain(&f.key, Contention::Skip, None, None),
        f.drainer.drain(
            &f.key,
            Contention::Wait(Duration::from_secs(30)),
            None,
            None
        ),
    );
    let outcomes = [a.unwrap().outcome, b.unwrap().outcome, c.unwrap().outcome];
    assert!(outcomes.contains(&Outcome::Busy), "{outcomes:?}");
    let got = f.events();
    assert_eq!(got.len(), ids.len(), "{outcomes:?}");
    assert!(counts(&got).values().all(|&n| n == 1));
}

#[tokio::test]
async fn a_shrunk_or_recreated_blob_starts_over() {
    let f = Fixture::new(Duration::from_secs(3600));
    let (data, ids) = rows(0..20, 5);
    f.write(&data);
    f.drain().await;
    assert_eq!(f.events(), ids);
    // Replaced by a shorter blob with other rows: read again from 0.
    let (data2, ids2) = rows(100..105, 5);
    std::fs::remove_file(f.path()).unwrap();
    f.write(&data2);
    let r = f.drain().await;
    assert!(r.restarted);
    assert_eq!(r.from, 0);
    let mut want = ids.clone();
    want.extend(ids2.clone());
    assert_eq!(f.events(), want);
    // Re-created (new file, new inode) with content longer than the old offset.
    let (data3, ids3) = rows(200..260, 5);
    let tmp = f.path().with_extension("new");
    std::fs::write(&tmp, &data3).unwrap();
    std::fs::rename(&tmp, f.path()).unwrap();
    let r = f.drain().await;
    assert!(r.restarted, "new incarnation detected");
    want.extend(ids3);
    assert_eq!(f.events(), want);
}

#[tokio::test]
async fn open_blobs_keep_their_partial_row_and_closed_ones_process_it() {
    let f = Fixture::new(Duration::from_secs(1));
    let (data, ids) = rows(0..10, 5);
    let cut = data.len() - 30;
    f.write(&data[..cut]);
    let r = f.drain().await;
    assert!(!r.closed, "just written: open");
    assert_eq!(f.events(), ids[..9].to_vec());
    // The writer finishes the row: forwarded once, nothing lost at the cut.
    f.append(&data[cut..]);
    f.drain().await;
    assert_eq!(f.events(), ids);
    // A torn final row of a closed blob is processed, and lands in the dead letters.
    f.append(b"{\"time\":\"2026-01-01T00:59:00Z\",\"tenantId\":\"t\"");
    f.drain().await;
    assert!(f.dead().is_empty(), "open: the partial row waits");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = f.drain().await;
    assert!(r.closed);
    let dead = f.dead();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["offset"], data.len() as u64);
    assert_eq!(f.drain().await.outcome, Outcome::UpToDate);
    // A closed blob that grows again is reopened and drained from where it stopped.
    let (more, more_ids) = rows(10..12, 5);
    f.append(b"\r\n");
    f.append(&more);
    let r = f.drain().await;
    assert!(!r.closed);
    let mut want = ids;
    want.extend(more_ids);
    assert_eq!(f.events(), want);
}

#[tokio::test]
async fn a_missing_blob_is_not_watched() {
    let f = Fixture::new(Duration::from_secs(3600));
    assert_eq!(f.drain().await.outcome, Outcome::Missing);
    assert!(f.drainer.store().list_open().await.unwrap().is_empty());
    // It appears later (a late event, or Tail's listing): drained from 0.
    let (data, ids) = rows(0..3, 5);
    f.write(&data);
    assert_eq!(f.drain().await.outcome, Outcome::Drained);
    assert_eq!(f.events(), ids);
}

#[tokio::test]
async fn containers_outside_the_prefix_are_never_read() {
    let f = Fixture::new(Duration::from_secs(3600));
    let other = BlobKey::new("mde-relay-state", "cp/secret.json");
    let e = f
        .drainer
        .drain(&other, Contention::Skip, None, None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("outside the allowed prefix"), "{e}");
}

/// `process --source dir:… --since … --state DIR`: the backfill drains the chosen hours through
/// the sink with checkpoints; a second run sends nothing again.
#[test]
fn backfill_from_a_directory_with_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src").join(CONTAINER);
    let mut want = Vec::new();
    for (h, range) in [("00", 0..10), ("01", 10..25), ("05", 25..30)] {
        let p = src.join(format!(
            "tenantId={}/y=2026/m=11/d=01/h={h}/m=00/PT1H.json",
            relay::TENANT
        ));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let (data, ids) = rows(range, 5);
        std::fs::write(&p, data).unwrap();
        if h != "05" {
            want.extend(ids);
        }
    }
    let out = dir.path().join("events.ndjson");
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_mde-relay"))
            .args(["process", "--source"])
            .arg(format!("dir:{}", dir.path().join("src").display()))
            .args([
                "--since",
                "2026-11-01T00",
                "--until",
                "2026-11-01T02",
                "--state",
            ])
            .arg(dir.path().join("state"))
            .env_remove("AzureWebJobsStorage")
            .env("RELAY_SINK", "file")
            .env("RELAY_FILE_PATH", &out)
            .output()
            .unwrap()
    };
    let o = run();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("2 blob(s)"), "{err}");
    let mut got = event_ids(&out).0;
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let o = run();
    assert!(o.status.success());
    assert_eq!(
        event_ids(&out).0.len(),
        want.len(),
        "second run sends nothing"
    );
}

/// A checkpoint store whose writes fail once `ok_puts` of them succeeded, until `down` is
/// cleared: a storage outage in the middle of a drain.
struct FlakyStore {
    inner: mde_relay::state::local::DirCheckpointStore,
    ok_puts: AtomicUsize,
    down: AtomicBool,
}

#[async_trait]
impl mde_relay::state::CheckpointStore for FlakyStore {
    fn describe(&self) -> String {
        "flaky".into()
    }
    async fn acquire(
        &self,
        key: &BlobKey,
        ttl: Duration,
    ) -> anyhow::Result<Option<mde_relay::state::Lease>> {
        self.inner.acquire(key, ttl).await
    }
    async fn renew(&self, lease: &mde_relay::state::Lease) -> anyhow::Result<()> {
        self.inner.renew(lease).await
    }
    async fn release(&self, lease: &mde_relay::state::Lease) -> anyhow::Result<()> {
        self.inner.release(lease).await
    }
    async fn get(&self, key: &BlobKey) -> anyhow::Result<Option<mde_relay::state::Stored>> {
        self.inner.get(key).await
    }
    async fn put(
        &self,
        lease: &mde_relay::state::Lease,
        cp: &mde_relay::state::Checkpoint,
        expected: Option<&str>,
    ) -> Result<String, mde_relay::state::StoreError> {
        if self.down.load(Ordering::SeqCst)
            && self
                .ok_puts
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_err()
        {
            return Err(anyhow::anyhow!("storage unavailable (503)").into());
        }
        self.inner.put(lease, cp, expected).await
    }
    async fn list(
        &self,
        container: &str,
        prefix: &str,
    ) -> anyhow::Result<Vec<mde_relay::state::Summary>> {
        self.inner.list(container, prefix).await
    }
    async fn list_open(&self) -> anyhow::Result<Vec<BlobKey>> {
        self.inner.list_open().await
    }
    async fn claim(&self, name: &str, every: Duration) -> anyhow::Result<bool> {
        self.inner.claim(name, every).await
    }
}

/// Storage goes down in the middle of a drain (checkpoint writes fail while the next batches
/// are read and sent): the drain fails, and the next one resumes from the last checkpoint
/// written.
/// Every row arrives; the only repeats are the rows past that checkpoint, re-sent in order
/// with the ids they had.
#[tokio::test]
async fn a_storage_outage_mid_drain_loses_nothing_and_resends_with_the_same_ids() {
    use mde_relay::state::CheckpointStore;
    let dir = tempfile::tempdir().unwrap();
    let key = BlobKey::new(
        CONTAINER,
        format!(
            "tenantId={}/y=2026/m=01/d=01/h=00/m=00/PT1H.json",
            relay::TENANT
        ),
    );
    let (data, ids) = rows(0..3000, 100);
    let path = dir.path().join("src").join(CONTAINER).join(&key.blob);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &data).unwrap();
    let store = Arc::new(FlakyStore {
        inner: mde_relay::state::local::DirCheckpointStore::open(dir.path().join("state")).unwrap(),
        ok_puts: AtomicUsize::new(2),
        down: AtomicBool::new(true),
    });
    let events = dir.path().join("events.ndjson");
    let sink = Arc::new(FileSink::open(&events, true, false).unwrap());
    let settings = DrainSettings {
        chunk: 4096,
        close_grace: Duration::from_secs(3600),
        checkpoint_bytes: 32 << 10,
        checkpoint_every: Duration::from_secs(3600),
        ..DrainSettings::default()
    };
    let limits = Limits {
        max_events: 20,
        in_flight: 4,
        ..Limits::default()
    };
    let (_, rx) = tokio::sync::watch::channel(false);
    let drainer = Drainer::new(
        mde_relay::source::Scoped::new(
            Arc::new(mde_relay::source::local::DirSource::new(
                dir.path().join("src"),
            )),
            PREFIX,
        ),
        store.clone(),
        Delivery::new(sink, limits),
        Arc::new(mde_relay::deadletter::DeadLetterFile::new(
            &dir.path().join("dead.ndjson"),
        )),
        settings,
        rx,
    );
    let failed = drainer.drain(&key, Contention::Skip, None, None).await;
    let err = format!(
        "{:#}",
        failed.expect_err("a failed checkpoint write fails the drain")
    );
    assert!(err.contains("storage unavailable"), "{err}");
    let cp = store.get(&key).await.unwrap().unwrap().checkpoint;
    assert!(cp.offset > 0 && cp.offset < data.len() as u64, "{cp:?}");
    let before = event_ids(&events).0;
    assert!(
        before.len() > cp.rows as usize,
        "batches past the checkpoint were sent"
    );

    store.down.store(false, Ordering::SeqCst);
    let r = drainer
        .drain(&key, Contention::Wait(Duration::from_secs(10)), None, None)
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Drained);
    assert_eq!(
        r.from, cp.offset,
        "resumed from the last checkpoint written"
    );
    let got = event_ids(&events).0;
    // First the rows up to the end of the failed drain, then the rows from the checkpoint on.
    let k = cp.rows as usize;
    assert_eq!(&got[..before.len()], &ids[..before.len()]);
    assert_eq!(
        &got[before.len()..],
        &ids[k..],
        "re-sent in order, with the same ids"
    );
    let c = counts(&got);
    assert!(ids.iter().all(|i| c[i.as_str()] >= 1), "every row arrived");
    let cp = store.get(&key).await.unwrap().unwrap().checkpoint;
    assert_eq!((cp.offset, cp.rows), (data.len() as u64, 3000));
}
