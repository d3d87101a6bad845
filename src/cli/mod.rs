//! Command-line entry point: argument parsing and dispatch to one file per command.

mod backfill;
mod gen;
mod process;
mod redrive;
mod schema;
mod serve;
mod status;

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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", crate::logging::redact(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}

/// Parses sizes like `1GiB`, `500MB`, `16m`, `4096`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (examples: 4096, 64KiB, 500MB, 1GiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        u => return Err(format!("unknown size unit `{u}` in `{s}`")),
    };
    Ok((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("1.5k"), Ok(1500));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }
}
