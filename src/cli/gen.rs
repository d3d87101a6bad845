//! `mde-relay gen`: synthetic export rows.

use crate::gen::{generate, Limit};
use anyhow::Context;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Table to generate, e.g. DeviceProcessEvents.
    #[arg(long)]
    table: String,
    /// Number of rows.
    #[arg(long, conflicts_with = "bytes")]
    rows: Option<u64>,
    /// Approximate output size (e.g. 1GiB); generation stops at the first row past it.
    #[arg(long, value_parser = crate::config::parse_size)]
    bytes: Option<u64>,
    /// Seed; the same seed gives the same rows.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output file (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `gen`.
pub fn run(a: GenArgs) -> anyhow::Result<ExitCode> {
    let limit = match (a.rows, a.bytes) {
        (_, Some(b)) => Limit::Bytes(b),
        (Some(r), None) => Limit::Rows(r),
        (None, None) => Limit::Rows(1000),
    };
    // Refuse an unknown table before creating the output file.
    crate::gen::check_table(&a.table)?;
    let mut out: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let rows = generate(&a.table, a.seed, limit, &mut out)?;
    out.flush()?;
    eprintln!("gen: wrote {rows} {} rows", a.table);
    Ok(ExitCode::SUCCESS)
}
