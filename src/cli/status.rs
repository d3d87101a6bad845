//! `mde-relay status`: is the relay keeping up? Per export table, the bytes appended but not
//! yet forwarded, how long the oldest has waited, the newest hour and the dead letters stored;
//! the poison queue's depth. See [`crate::status`]. It only reads: no lease, no checkpoint
//! write, so it is safe beside the running function app and from cron.
//!
//! Exit codes: 0, or 1 with a one-line reason on stderr when `--max-lag` is exceeded, or 2 when
//! the status cannot be taken (a message names the setting or store at fault).

use crate::deadletter::stored::DeadLetterStore;
use crate::setup::{self, RelaySettings};
use crate::state::azure::BlobCheckpointStore;
use crate::state::CheckpointStore;
use crate::status::{self, PoisonQueue};
use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Output of `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    /// Aligned columns for people.
    Table,
    /// One JSON document for scripts.
    Json,
}

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Export storage: a connection setting name, or `dir:PATH` for a local directory laid out
    /// as `<container>/<blob>`.
    #[arg(long, default_value = setup::EXPORT_CONNECTION)]
    source: String,
    /// Checkpoints in this directory (as `process --state`; default: the AzureWebJobsStorage
    /// state container, read-only).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Dead letters in this NDJSON file (default: `<state dir>/deadletter.ndjson` with
    /// --state, else the AzureWebJobsStorage dead-letter container).
    #[arg(long)]
    dead_letter: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
    format: StatusFormat,
    /// Exit 1 with a one-line reason when any table is further behind than this (e.g. 15m).
    #[arg(long, value_parser = crate::config::parse_long_duration)]
    max_lag: Option<Duration>,
    /// Blobs without a checkpoint count as pending when their hour is this recent (default:
    /// RELAY_TAIL_SWEEP_HOURS, how far back Tail looks); older ones are `untracked`.
    #[arg(long)]
    window_hours: Option<u32>,
}

/// Runs `status`.
pub fn run(a: StatusArgs) -> anyhow::Result<ExitCode> {
    crate::logging::init_stderr();
    let settings = RelaySettings::from_env()?;
    let src = setup::export_source(&a.source, &settings.container_prefix)?;
    // The host storage is optional with --state: it only adds the poison queue then.
    let host = setup::account(setup::HOST_CONNECTION);
    let need_host = || {
        host.as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("checkpoints and dead letters: pass --state DIR, or set AzureWebJobsStorage")
    };
    let (store, dead): (Arc<dyn CheckpointStore>, DeadLetterStore) = match &a.state {
        Some(dir) => {
            if !dir.is_dir() {
                bail!("--state {}: no such directory", dir.display());
            }
            let dead = a
                .dead_letter
                .clone()
                .unwrap_or_else(|| dir.join("deadletter.ndjson"));
            (setup::dir_store(dir)?, DeadLetterStore::file(&dead))
        }
        None => {
            let h = need_host()?;
            let dead = match &a.dead_letter {
                Some(p) => DeadLetterStore::file(p),
                None => DeadLetterStore::container(h.clone(), &settings.deadletter_container),
            };
            let store = BlobCheckpointStore::read_only(h.clone(), &settings.state_container);
            (Arc::new(store), dead)
        }
    };
    let window = a.window_hours.unwrap_or(settings.tail.sweep_hours);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let st = rt.block_on(async {
        let mut st =
            status::collect(&src, store.as_ref(), &dead, window, chrono::Utc::now()).await?;
        if let Ok(h) = &host {
            let name = format!(
                "{}-poison",
                crate::config::env_or_default("RELAY_EVENTS_QUEUE").unwrap_or_default()
            );
            match status::queue_depth(h, &name).await {
                Ok(depth) => st.poison_queue = Some(PoisonQueue { name, depth }),
                Err(e) => eprintln!(
                    "warning: poison queue unknown: {}",
                    crate::logging::redact(&format!("{e:#}"))
                ),
            }
        }
        anyhow::Ok(st)
    })?;
    match a.format {
        StatusFormat::Table => print!("{}", status::render_table(&st)),
        StatusFormat::Json => println!("{}", serde_json::to_string_pretty(&st)?),
    }
    if let Some(max) = a.max_lag {
        if let Some(why) = status::lag_exceeded(&st, max.as_secs_f64()) {
            eprintln!("lag: {why}");
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}
