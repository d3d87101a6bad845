//! Building the relay's parts from settings: the one place that reads the drain, Tail and
//! handler settings from the environment ([`RelaySettings::from_env`]) and turns connection
//! names into sources, checkpoint stores, dead-letter stores and the sink.
//!
//! Everything here is pure configuration: no network call is made, so `serve` can answer the
//! host's `GET /` before it touches Azure, and a bad setting stops start-up with a message that
//! names it.

use crate::azure::StorageAccount;
use crate::config::{env, env_or_default};
use crate::deadletter::blob::DeadLetterContainer;
use crate::deadletter::{DeadLetterFile, DeadLetterSink};
use crate::drain::DrainSettings;
use crate::normalize::Format;
use crate::pipeline::Filter;
use crate::sink::Sink;
use crate::source::{azure::AzureSource, local::DirSource, Scoped, Source};
use crate::state::{azure::BlobCheckpointStore, local::DirCheckpointStore, CheckpointStore};
use crate::tail::TailSettings;
use anyhow::{anyhow, bail};
use clap::ValueEnum;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Connection setting of the export storage account.
pub const EXPORT_CONNECTION: &str = "MdeExportStorage";
/// Connection setting of the host's own storage (checkpoints, dead letters, the event queue).
pub const HOST_CONNECTION: &str = "AzureWebJobsStorage";

/// Parses durations: everything [`crate::sink::config::parse_duration`] accepts (`30s`, `15m`,
/// `1h`, `250ms`, bare seconds, `hh:mm:ss`), plus days (`2d`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let days = t
        .strip_suffix('d')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|n| n.is_finite() && *n >= 0.0 && *n < 1e5);
    days.map(|n| Duration::from_secs_f64(n * 86400.0))
        .or_else(|| crate::sink::config::parse_duration(t))
        .ok_or_else(|| format!("`{s}` is not a duration (examples: 45s, 15m, 1h, 2d)"))
}

fn setting<T>(name: &str, parse: impl Fn(&str) -> Result<T, String>) -> anyhow::Result<T> {
    let raw = env_or_default(name).ok_or_else(|| anyhow!("setting `{name}` is required"))?;
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

fn list(name: &str) -> Vec<String> {
    env(name)
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
fn transforms_from_env() -> anyhow::Result<Option<std::sync::Arc<crate::transform::Transforms>>> {
    match env("RELAY_TRANSFORMS") {
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
}

impl RelaySettings {
    /// Reads the settings from the environment; an invalid value names its setting.
    pub fn from_env() -> anyhow::Result<Self> {
        let format = setting("RELAY_FORMAT", |s| Format::from_str(s, true))?;
        let lease = setting("RELAY_LEASE_SECONDS", |s| match s.trim().parse::<u64>() {
            Ok(n) if (15..=60).contains(&n) => Ok(Duration::from_secs(n)),
            _ => Err(format!("`{s}` must be a number of seconds from 15 to 60")),
        })?;
        let prefix = setting("RELAY_CONTAINER_PREFIX", |s| Ok(s.trim().to_string()))?;
        if prefix.is_empty() {
            bail!("setting `RELAY_CONTAINER_PREFIX` must not be empty");
        }
        let sweep_hours = setting("RELAY_TAIL_SWEEP_HOURS", |s| {
            positive(s).and_then(|n| u32::try_from(n).map_err(|e| e.to_string()))
        })?;
        let concurrency = setting("RELAY_DRAIN_CONCURRENCY", positive)?;
        Ok(RelaySettings {
            container_prefix: prefix,
            state_container: setting("RELAY_STATE_CONTAINER", |s| Ok(s.trim().to_string()))?,
            deadletter_container: setting("RELAY_DEADLETTER_CONTAINER", |s| {
                Ok(s.trim().to_string())
            })?,
            drain: DrainSettings {
                chunk: setting("RELAY_READ_CHUNK", size)?,
                batch_max_events: setting("RELAY_BATCH_MAX_EVENTS", positive)?,
                batch_max_bytes: setting("RELAY_BATCH_MAX_BYTES", size)?,
                close_grace: setting("RELAY_CLOSE_GRACE", parse_duration)?,
                lease_ttl: lease,
                format,
                filter: Filter {
                    tables: list("RELAY_TABLES"),
                    tenants: list("RELAY_TENANTS"),
                    transforms: transforms_from_env()?,
                },
                max_line: setting("RELAY_MAX_ROW_BYTES", size)?,
                concurrency,
            },
            tail: TailSettings {
                sweep_every: setting("RELAY_TAIL_SWEEP_INTERVAL", parse_duration)?,
                sweep_hours,
            },
            max_drain_time: setting("RELAY_MAX_DRAIN_TIME", parse_duration)?,
            max_request_bytes: setting("RELAY_MAX_REQUEST_BYTES", size)?,
        })
    }
}

/// The sink configured by `RELAY_SINK` and its settings (see [`crate::sink::config`]), the
/// single place the handler builds its sink. The drain cuts batches by the sink's limits.
pub fn sink_from_env(settings: &mut RelaySettings) -> anyhow::Result<Arc<dyn Sink>> {
    let c = crate::sink::config::SinkConfig::from_env()?;
    settings.drain.batch_max_events = c.batch_max_events;
    settings.drain.batch_max_bytes = c.batch_max_bytes;
    Ok(c.build()?)
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
        None => Arc::new(AzureSource::new(account(spec)?)?),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172800)));
        assert_eq!(parse_duration("00:10:00"), Ok(Duration::from_secs(600)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3 fortnights").is_err());
    }
}
