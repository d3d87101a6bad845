//! The local Drainer tests build: export blobs under `<root>/src` (laid out as
//! `<container>/<blob>`), checkpoints under `<root>/state`, dead letters in `dead`.
#![allow(dead_code)]

use mde_relay::deadletter::DeadLetterFile;
use mde_relay::drain::{DrainSettings, Drainer};
use mde_relay::sink::Sink;
use mde_relay::source::{local::DirSource, Scoped};
use mde_relay::state::{local::DirCheckpointStore, CheckpointStore};
use std::path::Path;
use std::sync::Arc;

/// A Drainer over `<root>/src` restricted to `prefix`, with checkpoints in `<root>/state`.
/// Nobody asks it to stop (the dropped sender leaves the flag false).
pub fn local_drainer(
    root: &Path,
    prefix: &str,
    dead: &Path,
    sink: Arc<dyn Sink>,
    settings: DrainSettings,
) -> Drainer {
    let src = Scoped::new(Arc::new(DirSource::new(root.join("src"))), prefix);
    let store: Arc<dyn CheckpointStore> =
        Arc::new(DirCheckpointStore::open(root.join("state")).unwrap());
    let dead = Arc::new(DeadLetterFile::new(dead));
    let (_, rx) = tokio::sync::watch::channel(false);
    Drainer::new(src, store, sink, dead, settings, rx)
}
