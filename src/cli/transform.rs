//! `mde-relay transform check FILE` (parse and check only) and `mde-relay transform test FILE
//! PATH…` (run the transforms over sample export files and print, per table, rows and bytes in
//! and out). Exit codes: 0 fine, 2 when the transform has problems (printed with line, column
//! and a caret) or an input cannot be read.

use crate::rows::{Frame, Framer, RowParser, DEFAULT_MAX_LINE};
use crate::transform::{Outcome, Scratch, Transforms};
use anyhow::Context;
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `transform`.
#[derive(Debug, Args)]
pub struct TransformArgs {
    #[command(subcommand)]
    command: TransformCommand,
}

#[derive(Debug, Subcommand)]
enum TransformCommand {
    /// Parse and check a transform file against the table registry (nothing is read).
    Check {
        /// The transform file (the format of RELAY_TRANSFORMS, docs/transforms.md).
        file: PathBuf,
    },
    /// Run a transform file over sample export files and print what each table keeps.
    Test {
        /// The transform file.
        file: PathBuf,
        /// Export files (JSON Lines) or directories of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

/// Rows and bytes of one table.
#[derive(Debug, Default)]
struct Counts {
    rows_in: u64,
    rows_out: u64,
    bytes_in: u64,
    bytes_out: u64,
}

/// Runs `transform`.
pub fn run(a: TransformArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        TransformCommand::Check { file } => {
            let t = Transforms::from_file(&file, "transform")?;
            let named = t.named_tables();
            println!(
                "{}: ok ({} table rule(s){})",
                file.display(),
                named.len(),
                if named.is_empty() {
                    String::new()
                } else {
                    format!(": {}", named.join(", "))
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        TransformCommand::Test { file, paths } => test(&file, &paths),
    }
}

fn files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        for e in walkdir::WalkDir::new(p).sort_by_file_name() {
            let e = e.with_context(|| format!("cannot read {}", p.display()))?;
            if e.file_type().is_file() {
                out.push(e.into_path());
            }
        }
    }
    Ok(out)
}

fn test(file: &std::path::Path, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let t = Transforms::from_file(file, "transform")?;
    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    let mut parser = RowParser::new();
    let mut scratch = Scratch::default();
    let mut invalid = 0u64;
    let mut count = |line: &[u8]| {
        let Ok(row) = parser.parse(line) else {
            invalid += 1;
            return;
        };
        let (table, info) = crate::tables::table_from_category(&row.category);
        let c = counts.entry(table.into_owned()).or_default();
        c.rows_in += 1;
        c.bytes_in += line.len() as u64;
        let out = match t.run(info, row.properties, row.pivots, &mut scratch) {
            Outcome::Drop => return,
            Outcome::Keep => line.len(),
            Outcome::Rewrite => line.len() - row.properties.len() + scratch.props.len(),
        };
        c.rows_out += 1;
        c.bytes_out += out as u64;
    };
    for path in files(paths)? {
        let mut f = std::fs::File::open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut framer = Framer::new(0, DEFAULT_MAX_LINE);
        loop {
            let n = framer
                .read_from(&mut f, 1 << 20)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if n == 0 {
                if let Some(Frame::Line { bytes, .. }) = framer.finish() {
                    count(bytes);
                }
                break;
            }
            while let Some(frame) = framer.next_frame() {
                if let Frame::Line { bytes, .. } = frame {
                    count(bytes);
                }
            }
        }
    }
    print!("{}", render(&counts));
    if invalid > 0 {
        println!("({invalid} line(s) were not valid export rows and were left out)");
    }
    Ok(ExitCode::SUCCESS)
}

fn render(counts: &BTreeMap<String, Counts>) -> String {
    let mut rows = vec![[
        "TABLE".to_string(),
        "ROWS IN".into(),
        "ROWS OUT".into(),
        "FILTERED".into(),
        "BYTES IN".into(),
        "BYTES OUT".into(),
        "SAVED".into(),
    ]];
    let pct = |a: u64, b: u64| {
        if b == 0 {
            "-".to_string()
        } else {
            format!("{:.1}%", 100.0 * (b as f64 - a as f64) / b as f64)
        }
    };
    for (t, c) in counts {
        rows.push([
            t.clone(),
            c.rows_in.to_string(),
            c.rows_out.to_string(),
            (c.rows_in - c.rows_out.min(c.rows_in)).to_string(),
            c.bytes_in.to_string(),
            c.bytes_out.to_string(),
            pct(c.bytes_out, c.bytes_in),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}
