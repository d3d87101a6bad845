//! Command-line entry point: argument parsing and dispatch to one file per command.

mod backfill;
mod format;
mod gen;
mod process;
mod redrive;
mod schema;
mod serve;
mod setup;
pub mod sink_args;
mod status;
mod transform;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Turns the Microsoft Defender XDR streaming export into a clean, reliable event feed.
#[derive(Debug, Parser)]
#[command(name = "mde-relay", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Normalize export rows from local files or directories (recursively) into NDJSON events.
    Process(process::ProcessArgs),
    /// Write realistic synthetic export rows (for tests and benchmarks).
    Gen(gen::GenArgs),
    /// Run as the Azure Functions custom handler (the host starts this; see host.json).
    Serve(serve::ServeArgs),
    /// Show, per export table, how far behind the relay is (read-only; `--max-lag` for checks).
    Status(status::StatusArgs),
    /// Send stored dead letters through the normalizer and the sink again.
    Redrive(redrive::RedriveArgs),
    /// Print the table registry: every Advanced Hunting table, its columns and JSON columns.
    Schema(schema::SchemaArgs),
    /// Check KQL transforms (RELAY_TRANSFORMS) or try them on sample export files.
    Transform(transform::TransformArgs),
    /// Prepare a destination: install the Elasticsearch / OpenSearch index templates.
    Setup(setup::SetupArgs),
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Process(a) => process::run(a),
        Command::Gen(a) => gen::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Status(a) => status::run(a),
        Command::Redrive(a) => redrive::run(a),
        Command::Schema(a) => schema::run(a),
        Command::Transform(a) => transform::run(a),
        Command::Setup(a) => setup::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", crate::logging::redact(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}
