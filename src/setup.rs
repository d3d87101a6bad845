//! Building the relay's parts from settings: the one place that reads the drain, Tail and
//! handler settings from the environment ([`RelaySettings::from_env`]) and turns connection
//! names into sources, checkpoint stores, dead-letter stores and the sink.
//!
//! Everything here is pure configuration: no network call is made, so `serve` can answer the
//! host's `GET /` before it touches Azure, and a bad setting stops start-up with a message that
//! names it.

use crate::azure::StorageAccount;
use crate::config::{parse_long_duration, Settings};
use crate::deadletter::blob::DeadLetterContainer;
use crate::deadletter::{DeadLetterFile, DeadLetterSink};
use crate::deliver::Delivery;
use crate::drain::{DrainSettings, Drainer};
use crate::normalize::Format;
use crate::pipeline::Filter;
use crate::source::{azure::AzureSource, local::DirSource, Scoped, Source};
use crate::state::{azure::BlobCheckpointStore, local::DirCheckpointStore, CheckpointStore};
use crate::tail::{TailMode, TailSettings};
use anyhow::{anyhow, bail, Context};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Connection setting of the export storage account.
pub const EXPORT_CONNECTION: &str = "MdeExportStorage";
/// Connection setting of the host's own storage (checkpoints, dead letters, the event queue).
pub const HOST_CONNECTION: &str = "AzureWebJobsStorage";

fn setting<T>(
    s: &Settings<'_>,
    name: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> anyhow::Result<T> {
    let raw = s
        .value(name)
        .ok_or_else(|| anyhow!("setting `{name}` is required"))?;
    parse(&raw).map_err(|e| anyhow!("setting `{name}`: {e}"))
}

fn positive(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{s}` is not a whole number of at least 1")),
    }
}

fn size(s: &str) -> Result<usize, String> {
    let n = crate::config::parse_size(s)?;
    usize::try_from(n)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("`{s}` must be at least 1 byte"))
}

fn list(s: &Settings<'_>, name: &str) -> Vec<String> {
    s.raw(name)
        .map(|v| {
            v.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// `RELAY_TRANSFORMS` (a file path or the transform text), checked: a bad transform stops
/// start-up here, before any read.
fn transforms(
    s: &Settings<'_>,
) -> anyhow::Result<Option<std::sync::Arc<crate::transform::Transforms>>> {
    match s.raw("RELAY_TRANSFORMS") {
        Some(v) if !v.trim().is_empty() => Ok(Some(std::sync::Arc::new(
            crate::transform::Transforms::from_setting(&v, "RELAY_TRANSFORMS")?,
        ))),
        _ => Ok(None),
    }
}

/// Every relay setting besides connections and the sink.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Only containers starting with this are read (`RELAY_CONTAINER_PREFIX`).
    pub container_prefix: String,
    /// Checkpoint container in the host storage (`RELAY_STATE_CONTAINER`).
    pub state_container: String,
    /// Dead-letter container in the host storage (`RELAY_DEADLETTER_CONTAINER`).
    pub deadletter_container: String,
    /// Drain settings.
    pub drain: DrainSettings,
    /// Tail settings.
    pub tail: TailSettings,
    /// Longest an invocation drains (`RELAY_MAX_DRAIN_TIME`).
    pub max_drain_time: Duration,
    /// Largest accepted invocation body (`RELAY_MAX_REQUEST_BYTES`).
    pub max_request_bytes: usize,
    /// The queue BlobCreated is triggered by, where Tail puts drain requests
    /// (`RELAY_EVENTS_QUEUE`).
    pub events_queue: String,
}

impl RelaySettings {
    /// Reads the settings from the environment; an invalid value names its setting.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_settings(&Settings::env())
    }

    /// Reads the settings through `s`; an invalid value names its setting.
    pub fn from_settings(env: &Settings<'_>) -> anyhow::Result<Self> {
        let format = setting(env, "RELAY_FORMAT", Format::parse)?;
        let lease = setting(env, "RELAY_LEASE_SECONDS", |s| {
            match s.trim().parse::<u64>() {
                Ok(n) if (15..=60).contains(&n) => Ok(Duration::from_secs(n)),
                _ => Err(format!("`{s}` must be a number of seconds from 15 to 60")),
            }
        })?;
        let prefix = setting(env, "RELAY_CONTAINER_PREFIX", |s| Ok(s.trim().to_string()))?;
        if prefix.is_empty() {
            bail!("setting `RELAY_CONTAINER_PREFIX` must not be empty");
        }
        let sweep_hours = setting(env, "RELAY_TAIL_SWEEP_HOURS", |s| {
            positive(s).and_then(|n| u32::try_from(n).map_err(|e| e.to_string()))
        })?;
        let concurrency = setting(env, "RELAY_DRAIN_CONCURRENCY", positive)?;
        Ok(RelaySettings {
            container_prefix: prefix,
            state_container: setting(env, "RELAY_STATE_CONTAINER", |s| Ok(s.trim().to_string()))?,
            deadletter_container: setting(env, "RELAY_DEADLETTER_CONTAINER", |s| {
                Ok(s.trim().to_string())
            })?,
            drain: DrainSettings {
                chunk: setting(env, "RELAY_READ_CHUNK", size)?,
                checkpoint_every: setting(env, "RELAY_CHECKPOINT_INTERVAL", parse_long_duration)?,
                checkpoint_bytes: setting(env, "RELAY_CHECKPOINT_BYTES", size)? as u64,
                close_grace: setting(env, "RELAY_CLOSE_GRACE", parse_long_duration)?,
                lease_ttl: lease,
                format,
                filter: Filter {
                    tables: list(env, "RELAY_TABLES"),
                    tenants: list(env, "RELAY_TENANTS"),
                    transforms: transforms(env)?,
                },
                max_line: setting(env, "RELAY_MAX_ROW_BYTES", size)?,
                concurrency,
            },
            tail: TailSettings {
                sweep_every: setting(env, "RELAY_TAIL_SWEEP_INTERVAL", parse_long_duration)?,
                sweep_hours,
                mode: setting(env, "RELAY_TAIL_MODE", TailMode::parse)?,
            },
            events_queue: setting(env, "RELAY_EVENTS_QUEUE", |s| Ok(s.trim().to_string()))?,
            max_drain_time: setting(env, "RELAY_MAX_DRAIN_TIME", parse_long_duration)?,
            max_request_bytes: setting(env, "RELAY_MAX_REQUEST_BYTES", size)?,
        })
    }
}

/// The sink configured by `RELAY_SINK` and its settings (see [`crate::sink::config`]) with the
/// limits its batches are cut and pipelined by: the single place the handler builds its sink.
pub fn delivery_from_env() -> anyhow::Result<Delivery> {
    Ok(crate::sink::config::SinkConfig::from_env()?.delivery()?)
}

/// Where a [`Drainer`] keeps checkpoints and dead letters.
#[derive(Debug, Clone, Copy)]
pub enum Stores<'a> {
    /// The host storage ([`HOST_CONNECTION`]): checkpoints in the state container, dead
    /// letters in the dead-letter container. The handler's choice; the connection must be set.
    Host,
    /// A backfill's choice: checkpoints in `state` (a directory) or else the host storage;
    /// dead letters in `dead_letter`, else `<state>/deadletter.ndjson`, else the host storage,
    /// else `./mde-relay-deadletter.ndjson`.
    Backfill {
        /// `--state DIR`.
        state: Option<&'a Path>,
        /// `--dead-letter FILE`.
        dead_letter: Option<&'a Path>,
    },
}

/// The one constructor of the [`Drainer`] from settings, used by the handler and by backfill:
/// the export source `source` (a connection setting name or `dir:PATH`, restricted to the
/// container prefix), checkpoints and dead letters as `stores` says, delivering through
/// `delivery` (the sink with the limits its batches are cut by). Pure configuration: no network
/// call.
pub fn drainer(
    settings: &RelaySettings,
    source: &str,
    stores: Stores<'_>,
    delivery: Delivery,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Drainer> {
    let (source, store, dead) = match stores {
        Stores::Host => {
            let host = account(HOST_CONNECTION)?;
            let source = export_source(source, &settings.container_prefix)?;
            (
                source,
                host_store(&host, settings),
                host_dead_letters(&host, settings),
            )
        }
        Stores::Backfill { state, dead_letter } => {
            let source = export_source(source, &settings.container_prefix)?;
            let host = || account(HOST_CONNECTION);
            let store = match state {
                Some(dir) => dir_store(dir)?,
                None => host_store(
                    &host().context("checkpoints: pass --state DIR, or set AzureWebJobsStorage")?,
                    settings,
                ),
            };
            let dead: Arc<dyn DeadLetterSink> = match (dead_letter, state) {
                (Some(p), _) => file_dead_letters(p),
                (None, Some(dir)) => file_dead_letters(&dir.join("deadletter.ndjson")),
                (None, None) => match host() {
                    Ok(h) => host_dead_letters(&h, settings),
                    Err(_) => file_dead_letters(Path::new("mde-relay-deadletter.ndjson")),
                },
            };
            (source, store, dead)
        }
    };
    Ok(Drainer::new(
        source,
        store,
        delivery,
        dead,
        settings.drain.clone(),
        stop,
    ))
}

/// Reads a storage connection (connection string or identity-based settings).
pub fn account(connection: &str) -> anyhow::Result<StorageAccount> {
    Ok(StorageAccount::from_env(connection)?)
}

/// The export source: a connection setting name (normally `MdeExportStorage`) or `dir:PATH`
/// for a local directory laid out as `<container>/<blob>`; restricted to `prefix`.
pub fn export_source(spec: &str, prefix: &str) -> anyhow::Result<Scoped> {
    let inner: Arc<dyn Source> = match spec.strip_prefix("dir:") {
        Some(path) => Arc::new(DirSource::new(path)),
        // The relay only reads the export account: its SAS allows read and list, nothing else.
        None => Arc::new(AzureSource::new(account(spec)?.read_only())?),
    };
    Ok(Scoped::new(inner, prefix))
}

/// Checkpoints in the host storage's state container.
pub fn host_store(host: &StorageAccount, s: &RelaySettings) -> Arc<dyn CheckpointStore> {
    Arc::new(BlobCheckpointStore::new(host.clone(), &s.state_container))
}

/// Dead letters in the host storage's dead-letter container.
pub fn host_dead_letters(host: &StorageAccount, s: &RelaySettings) -> Arc<dyn DeadLetterSink> {
    Arc::new(DeadLetterContainer::new(
        host.clone(),
        &s.deadletter_container,
    ))
}

/// Checkpoints in a local directory.
pub fn dir_store(path: &Path) -> anyhow::Result<Arc<dyn CheckpointStore>> {
    Ok(Arc::new(DirCheckpointStore::open(path)?))
}

/// Dead letters appended to a local NDJSON file.
pub fn file_dead_letters(path: &Path) -> Arc<dyn DeadLetterSink> {
    Arc::new(DeadLetterFile::new(path))
}
