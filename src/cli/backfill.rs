//! `mde-relay process --source MdeExportStorage --since … [--until …] [--tables …]`: drains
//! historical export blobs through the configured sink, with the same drain and checkpoints as
//! the Functions handler. With the default checkpoint store (the `AzureWebJobsStorage`
//! container) a backfill and a running function app share progress and never send a row twice
//! concurrently; `--state DIR` keeps checkpoints in a local directory instead.
//!
//! Blobs are chosen by the hour in their name (`…/y=/m=/d=/h=/…`): `--since` inclusive,
//! `--until` exclusive (default: now). Each export container is listed once (one blob per hour,
//! so a year is under 9000 names).

use super::sink_args::SinkArgs;
use crate::deliver::Delivery;
use crate::drain::{Contention, Outcome};
use crate::normalize::Format;
use crate::pipeline::{Filter, Stats};
use crate::setup::{self, RelaySettings};
use crate::sink::{file::FileSink, stdout::StdoutSink, Sink};
use crate::source::BlobKey;
use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use clap::Args;
use futures::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// Backfill options of `process` (used with `--source`).
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// First hour to drain (UTC), e.g. 2026-11-01T00, 2026-11-01 or 2026-11-01T00:00:00Z.
    #[arg(long, value_parser = parse_hour, requires = "source")]
    since: Option<DateTime<Utc>>,
    /// Stop before this hour (UTC; default: now).
    #[arg(long, value_parser = parse_hour, requires = "source")]
    until: Option<DateTime<Utc>>,
    /// Keep checkpoints in this directory (default: the AzureWebJobsStorage state container).
    #[arg(long, requires = "source")]
    state: Option<PathBuf>,
}

/// Parses an hour: `YYYY-MM-DDTHH`, `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS]`, or RFC 3339.
pub fn parse_hour(s: &str) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    let t = t.trim_end_matches('Z');
    for f in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(Utc.from_utc_datetime(&d));
        }
    }
    if let Ok(d) = NaiveDateTime::parse_from_str(&format!("{t}:00"), "%Y-%m-%dT%H:%M") {
        return Ok(Utc.from_utc_datetime(&d));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight")));
    }
    Err(format!(
        "`{s}` is not an hour (examples: 2026-11-01T00, 2026-11-01, 2026-11-01T00:00:00Z)"
    ))
}

/// What `process --source` asks a backfill to do: [`BackfillArgs`] and the `process` options a
/// backfill uses (so this module does not depend on `process`).
pub struct Request<'a> {
    /// `--source`: a connection setting name or `dir:PATH`.
    pub source: &'a str,
    /// `--since`, `--until`, `--state`.
    pub args: &'a BackfillArgs,
    /// `--format`.
    pub format: Format,
    /// `--tables`.
    pub tables: &'a [String],
    /// `--tenants`.
    pub tenants: &'a [String],
    /// `--max-row-bytes`.
    pub max_row_bytes: u64,
    /// `--out`.
    pub out: Option<&'a str>,
    /// `--dead-letter`.
    pub dead_letter: Option<&'a Path>,
    /// The sink flags.
    pub sink: &'a SinkArgs,
    /// `--transform` / `RELAY_TRANSFORMS`, checked.
    pub transforms: Option<std::sync::Arc<crate::transform::Transforms>>,
}

/// Runs a backfill.
pub fn run(a: &Request<'_>) -> anyhow::Result<ExitCode> {
    let b = a.args;
    let since = b.since.context("--since is required with --source")?;
    let until = b.until.unwrap_or_else(Utc::now);
    if until <= since {
        bail!("--until must be after --since");
    }
    let mut settings = RelaySettings::from_env()?;
    settings.drain.format = a.format;
    settings.drain.filter = Filter {
        tables: a.tables.to_vec(),
        tenants: a.tenants.to_vec(),
        transforms: a.transforms.clone(),
    };
    settings.drain.max_line = usize::try_from(a.max_row_bytes)
        .ok()
        .filter(|&m| m > 0)
        .context("--max-row-bytes must be at least 1")?;
    let sink_config = a.sink.config()?;
    for t in settings.drain.filter.unknown_tables() {
        eprintln!("warning: --tables names `{t}`, which is not a known export table");
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stores = setup::Stores::Backfill {
        state: b.state.as_deref(),
        dead_letter: a.dead_letter,
    };
    // --out is a shortcut as for local files, but appends and syncs every batch: checkpoints
    // must never run ahead of what is on disk.
    let sink: Arc<dyn Sink> = match a.out {
        Some("-") => Arc::new(StdoutSink),
        Some(o) => Arc::new(
            FileSink::open(Path::new(o), true, false)
                .with_context(|| format!("cannot open output file {o}"))?,
        ),
        None => sink_config.build()?,
    };
    let delivery = Delivery::new(sink, sink_config.limits());
    let drainer = setup::drainer(&settings, a.source, stores, delivery, stop_rx)?;
    let sink = drainer.sink().clone();
    let dead = drainer.dead_letters().clone();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        if a.out.is_none() {
            if let Some(done) = crate::sink::es_templates::install_at_startup(&sink_config).await? {
                eprintln!("elasticsearch templates: {done}");
            }
        }
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: stopping at the next checkpoint");
                let _ = stop_tx.send(true);
            }
        });
        let concurrency = settings.drain.concurrency.max(1);
        let lease_wait = settings.drain.lease_ttl + std::time::Duration::from_secs(5);
        let filter = &drainer.settings().filter;

        // Which blobs: every allowed container (or those of --tables), hours in [since, until).
        let mut containers = drainer.source().containers().await?;
        if !filter.tables.is_empty() {
            let wanted: Vec<String> = filter
                .tables
                .iter()
                .map(|t| crate::tables::container_for(t))
                .collect();
            containers.retain(|c| wanted.iter().any(|w| w == c));
        }
        let mut blobs: Vec<(BlobKey, u64)> = Vec::new();
        let mut undated = 0usize;
        for c in &containers {
            for l in drainer.source().list_blobs(c, "", None).await? {
                let key = BlobKey::new(c.as_str(), l.name);
                match key.hour() {
                    Some(h) if h >= since && h < until => blobs.push((key, l.props.length)),
                    Some(_) => {}
                    None => undated += 1,
                }
            }
        }
        if undated > 0 {
            eprintln!("note: {undated} blob(s) without y=/m=/d=/h= in their name were left out");
        }
        let total: u64 = blobs.iter().map(|b| b.1).sum();
        eprintln!(
            "backfill: {} blob(s), {:.1} MB in {} container(s) from {}, {} to {}",
            blobs.len(),
            total as f64 / 1e6,
            containers.len(),
            drainer.source().describe(),
            since.format("%Y-%m-%dT%H"),
            until.format("%Y-%m-%dT%H")
        );
        let bar = if std::io::stderr().is_terminal() {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
                )
                .expect("valid template"),
            );
            b
        } else {
            ProgressBar::hidden()
        };
        let started = Instant::now();
        let drainer = &drainer;
        let bar_ref = &bar;
        let results = stream::iter(blobs)
            .map(|(key, len)| async move {
                let inc = |n: u64| bar_ref.inc(n);
                let r = drainer
                    .drain(&key, Contention::Wait(lease_wait), None, Some(&inc))
                    .await;
                // Bytes already checkpointed earlier count as done.
                let read = r.as_ref().map(|r| r.stats.bytes).unwrap_or(0);
                bar_ref.inc(len.saturating_sub(read));
                (key, r)
            })
            .buffer_unordered(concurrency)
            .collect::<Vec<_>>()
            .await;
        bar.finish_and_clear();
        let mut stats = Stats::default();
        let (mut busy, mut failed, mut stopped) = (0, 0, 0);
        for (key, r) in results {
            match r {
                Ok(r) => {
                    stats.add(&r.stats);
                    match r.outcome {
                        Outcome::Busy => {
                            busy += 1;
                            eprintln!("busy (being drained elsewhere): {key}");
                        }
                        Outcome::Stopped => stopped += 1,
                        _ => {}
                    }
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("failed: {key}: {}", crate::logging::redact(&format!("{e:#}")));
                }
            }
        }
        sink.finish().await?;
        let secs = started.elapsed().as_secs_f64();
        let mb = stats.bytes as f64 / 1e6;
        eprintln!(
            "backfill: {} rows, {} events, {} dead-lettered, {} skipped{}, {:.1} MB read in {:.2}s ({:.1} MB/s); {} busy, {} stopped, {} failed",
            stats.rows,
            stats.events,
            stats.dead_lettered,
            stats.skipped,
            super::process::filtered_note(&stats),
            mb,
            secs,
            if secs > 0.0 { mb / secs } else { 0.0 },
            busy,
            stopped,
            failed
        );
        if stats.dead_lettered > 0 {
            eprintln!("dead letters: {}", dead.location());
        }
        Ok(if failed + busy + stopped > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours() {
        let h = Utc.with_ymd_and_hms(2026, 11, 1, 5, 0, 0).unwrap();
        assert_eq!(parse_hour("2026-11-01T05"), Ok(h));
        assert_eq!(parse_hour("2026-11-01T05:00"), Ok(h));
        assert_eq!(parse_hour("2026-11-01T05:00:00Z"), Ok(h));
        assert_eq!(
            parse_hour("2026-11-01"),
            Ok(Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap())
        );
        assert!(parse_hour("yesterday").is_err());
    }
}
