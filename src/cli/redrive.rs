//! `mde-relay redrive`: sends stored dead letters through the normalizer and the configured
//! sink again (see [`crate::redrive`]). Records that now become events are removed (from the
//! dead-letter container) or moved to `<file>.done` (local file); records refused again stay,
//! with the new reason. Event ids are those a first delivery would have given.
//!
//! Exit codes: 0 when every selected record was delivered (or skipped by an allow-list), 1 when
//! some stay dead-lettered, 2 when the redrive could not run.

use super::backfill::parse_hour;
use super::sink_args::SinkArgs;
use crate::deadletter::stored::DeadLetterStore;
use crate::normalize::Format;
use crate::redrive::{self, RedriveSettings, Selection};
use crate::setup::{self, RelaySettings};
use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `redrive`.
#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// Dead letters in this local NDJSON file (default: the AzureWebJobsStorage dead-letter
    /// container, RELAY_DEADLETTER_CONTAINER).
    #[arg(long)]
    dead_letter: Option<PathBuf>,
    /// Only rows of these tables (comma-separated).
    #[arg(long, value_delimiter = ',')]
    table: Vec<String>,
    /// Only rows of export blobs of this hour (UTC) or later.
    #[arg(long, value_parser = parse_hour)]
    since: Option<DateTime<Utc>>,
    /// Only rows of export blobs before this hour (UTC).
    #[arg(long, value_parser = parse_hour)]
    until: Option<DateTime<Utc>>,
    /// Event format (default: RELAY_FORMAT, as the relay delivered).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// The sink and its settings (each flag falls back to its RELAY_* variable).
    #[command(flatten)]
    sink: Box<SinkArgs>,
}

/// Runs `redrive`.
pub fn run(a: RedriveArgs) -> anyhow::Result<ExitCode> {
    crate::logging::init_stderr();
    if let (Some(s), Some(u)) = (a.since, a.until) {
        if u <= s {
            bail!("--until must be after --since");
        }
    }
    let settings = RelaySettings::from_env()?;
    let sink_config = a.sink.config()?;
    let rs = RedriveSettings {
        format: a.format.unwrap_or(settings.drain.format),
        filter: settings.drain.filter.clone(),
        max_line: settings.drain.max_line,
        batch_max_events: sink_config.batch_max_events,
        batch_max_bytes: sink_config.batch_max_bytes,
    };
    let store = match &a.dead_letter {
        Some(p) => {
            if !p.is_file() {
                bail!("--dead-letter {}: no such file", p.display());
            }
            DeadLetterStore::file(p)
        }
        None => DeadLetterStore::container(
            setup::account(setup::HOST_CONNECTION)
                .context("dead letters: pass --dead-letter FILE, or set AzureWebJobsStorage")?,
            &settings.deadletter_container,
        ),
    };
    let sel = Selection {
        tables: a.table.clone(),
        since: a.since,
        until: a.until,
    };
    let sink = sink_config.build()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let r = rt.block_on(redrive::redrive(&store, sink.as_ref(), &rs, &sel))?;
    eprintln!(
        "redrive: {} selected in {}: {} delivered, {} skipped by an allow-list, {} refused again (kept with the new reason), {} not redrivable (truncated; kept)",
        r.selected,
        store.describe(),
        r.sent,
        r.skipped,
        r.failed,
        r.unrecoverable
    );
    Ok(if r.failed + r.unrecoverable > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
