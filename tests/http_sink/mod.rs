//! What the Logs Ingestion and Elasticsearch sink tests share: a drain of one local export blob
//! (directory source, directory checkpoints, dead-letter file) into a real sink, and HTTP
//! servers on 127.0.0.1 running on their own thread (so they outlive any one test's runtime).
#![allow(dead_code)]

use super::relay;
use mde_relay::drain::{Contention, DrainSettings, Report};
use mde_relay::sink::Sink;
use mde_relay::source::BlobKey;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const PREFIX: &str = "insights-logs-advancedhunting-";
const CONTAINER: &str = "insights-logs-advancedhunting-deviceprocessevents";

/// One export blob in a temporary directory, drained into a sink.
pub struct Blob {
    pub dir: tempfile::TempDir,
    pub key: BlobKey,
    /// Ids of the rows written, in order.
    pub ids: Vec<String>,
}

impl Blob {
    /// A blob of `n` rows padded by `pad` bytes.
    pub fn new(n: u64, pad: usize) -> Blob {
        let dir = tempfile::tempdir().unwrap();
        let key = BlobKey::new(
            CONTAINER,
            format!(
                "tenantId={}/y=2026/m=01/d=01/h=00/m=00/PT1H.json",
                relay::TENANT
            ),
        );
        let (data, ids) = relay::rows(0..n, pad);
        let path = dir.path().join("src").join(&key.container).join(&key.blob);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
        Blob { dir, key, ids }
    }

    /// The dead-letter file.
    pub fn dead_path(&self) -> PathBuf {
        self.dir.path().join("dead.ndjson")
    }

    /// Dead-letter records written so far.
    pub fn dead(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dead_path())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Drains the blob into `sink` in batches of `batch` events. Closed blobs only: the grace
    /// is zero so the whole file is read.
    pub async fn drain(&self, sink: Arc<dyn Sink>, batch: usize) -> anyhow::Result<Report> {
        let settings = DrainSettings {
            chunk: 16 * 1024,
            batch_max_events: batch,
            close_grace: Duration::from_secs(3600),
            ..DrainSettings::default()
        };
        let drainer = super::common::drain::local_drainer(
            self.dir.path(),
            PREFIX,
            &self.dead_path(),
            sink,
            settings,
        );
        drainer
            .drain(
                &self.key,
                Contention::Wait(Duration::from_secs(10)),
                None,
                None,
            )
            .await
    }
}

pub use super::common::http::serve;

/// The request body, gunzipped when `Content-Encoding: gzip` says so.
pub fn decoded(headers: &axum::http::HeaderMap, body: &[u8]) -> Vec<u8> {
    if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .expect("gzip body decodes");
        out
    } else {
        body.to_vec()
    }
}

/// The checkpoint file's offset of the blob, if one was written.
pub fn checkpointed(blob: &Blob) -> Option<u64> {
    // Layout of the directory store: state/cp/<container>/<blob>.json holding
    // {"version":N,"checkpoint":{…}}.
    let state = blob.dir.path().join("state").join("cp");
    let mut found = None;
    for e in walk(&state) {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&e).ok()?).ok()?;
        if let Some(o) = v["checkpoint"]["offset"].as_u64() {
            found = Some(o);
        }
    }
    found
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else if path.extension().is_some_and(|x| x == "json") {
                out.push(path);
            }
        }
    }
    out
}
