//! `mde-relay process`: normalize local export files (or whole directory trees) into NDJSON.
//!
//! Files are read in fixed-size chunks through the [`Framer`], so memory stays flat whatever
//! their size. Local files are final: a last line without terminator is a row.

use super::sink_args::SinkArgs;
use crate::deadletter::{DeadLetter, DeadLetterFile};
use crate::deliver::{Delivery, Pipeline};
use crate::event::Batch;
use crate::normalize::Format;
use crate::pipeline::{Filter, RowProcessor, Stats};
use crate::rows::{Framer, DEFAULT_MAX_LINE};
use crate::sink::{file::FileSink, stdout::StdoutSink, Sink, SinkTarget};
use crate::transform::Transforms;
use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// Read size for local files.
const CHUNK: usize = 1 << 20;
/// Inputs larger than this get a progress bar on a terminal.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;

/// Arguments of `process`.
#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// Files or directories (searched recursively) of export rows.
    #[arg(required_unless_present = "source")]
    pub(super) paths: Vec<PathBuf>,
    /// Backfill from export storage instead of local files: a connection setting name
    /// (`MdeExportStorage`) or `dir:PATH`, drained with checkpoints through the configured sink.
    #[arg(long, conflicts_with = "paths", requires = "since")]
    pub(super) source: Option<String>,
    #[command(flatten)]
    pub(super) backfill: super::backfill::BackfillArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Normalized)]
    pub(super) format: Format,
    /// Output file (truncated first), or `-` for stdout: a shortcut that overrides --sink.
    #[arg(long)]
    pub(super) out: Option<String>,
    /// Where dead-lettered rows go (default: `<output file>.deadletter.ndjson`, or
    /// `./mde-relay-deadletter.ndjson` for other sinks).
    #[arg(long)]
    pub(super) dead_letter: Option<PathBuf>,
    /// Only these tables (comma-separated, e.g. DeviceProcessEvents,AlertInfo).
    #[arg(long, value_delimiter = ',')]
    pub(super) tables: Vec<String>,
    /// Only these tenant ids (comma-separated GUIDs).
    #[arg(long, value_delimiter = ',')]
    pub(super) tenants: Vec<String>,
    /// Longest accepted row; longer rows are dead-lettered.
    #[arg(long, default_value_t = DEFAULT_MAX_LINE as u64, value_parser = crate::config::parse_size)]
    pub(super) max_row_bytes: u64,
    /// KQL transforms run on every row before the sink (docs/transforms.md): a file, or the
    /// transform text itself.
    #[arg(long, value_name = "FILE", env = "RELAY_TRANSFORMS")]
    pub(super) transform: Option<String>,
    /// List every schema drift (table, column, rows) on stderr, one per line, after the
    /// one-line count printed without it.
    #[arg(long)]
    pub(super) drift_report: bool,
    /// The sink and its settings (each flag falls back to its RELAY_* variable).
    #[command(flatten)]
    pub(super) sink: Box<SinkArgs>,
}

impl ProcessArgs {
    /// The transforms of `--transform` / `RELAY_TRANSFORMS`, checked.
    pub(super) fn transforms(&self) -> anyhow::Result<Option<Arc<Transforms>>> {
        match self.transform.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => {
                Ok(Some(Arc::new(Transforms::from_setting(t, "--transform")?)))
            }
            _ => Ok(None),
        }
    }
}

/// One input file and its name relative to the input root.
struct Input {
    path: PathBuf,
    name: String,
    len: u64,
}

fn collect_inputs(paths: &[PathBuf]) -> anyhow::Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for root in paths {
        let meta = std::fs::metadata(root)
            .with_context(|| format!("cannot read input path {}", root.display()))?;
        if meta.is_file() {
            let name = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| root.display().to_string());
            inputs.push(Input {
                path: root.clone(),
                name,
                len: meta.len(),
            });
            continue;
        }
        for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
            let entry =
                entry.with_context(|| format!("cannot read directory {}", root.display()))?;
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let len = entry
                .metadata()
                .with_context(|| format!("cannot read {}", entry.path().display()))?
                .len();
            inputs.push(Input {
                path: entry.path().to_path_buf(),
                name,
                len,
            });
        }
    }
    Ok(inputs)
}

/// Runs `process`.
pub fn run(a: ProcessArgs) -> anyhow::Result<ExitCode> {
    // Sink warnings (retries, throttling, oversize events) go to stderr; stdout may carry the
    // events themselves. RUST_LOG overrides the level.
    crate::logging::init_stderr();
    if let Some(source) = a.source.clone() {
        return super::backfill::run(&super::backfill::Request {
            source: &source,
            args: &a.backfill,
            format: a.format,
            tables: &a.tables,
            tenants: &a.tenants,
            max_row_bytes: a.max_row_bytes,
            out: a.out.as_deref(),
            dead_letter: a.dead_letter.as_deref(),
            sink: &a.sink,
            transforms: a.transforms()?,
        });
    }
    // A bad transform stops here, before any input is read or output opened.
    let transforms = a.transforms()?;
    let config = a.sink.config()?;
    let max_line = usize::try_from(a.max_row_bytes)
        .ok()
        .filter(|&m| m > 0)
        .context("--max-row-bytes must be between 1 and the address space")?;
    let inputs = collect_inputs(&a.paths)?;
    let out_file = match (&a.out, &config.target) {
        (Some(o), _) if o != "-" => Some(PathBuf::from(o)),
        (None, SinkTarget::File { path }) => Some(path.clone()),
        _ => None,
    };
    let dead_path = a.dead_letter.clone().unwrap_or_else(|| match &out_file {
        Some(p) => PathBuf::from(format!("{}.deadletter.ndjson", p.display())),
        None => PathBuf::from("mde-relay-deadletter.ndjson"),
    });
    let sink: Arc<dyn Sink> = match a.out.as_deref() {
        Some("-") => Arc::new(StdoutSink),
        // --out: a fresh file, synced once at the end (fast); RELAY_SINK=file appends and
        // syncs every batch instead.
        Some(o) => Arc::new(
            FileSink::open(Path::new(o), false, true)
                .with_context(|| format!("cannot open output file {o}"))?,
        ),
        None => config.build()?,
    };
    if a.out.is_some() && !matches!(config.target, SinkTarget::Stdout | SinkTarget::File { .. }) {
        eprintln!(
            "note: --out overrides the {} sink chosen by --sink / RELAY_SINK",
            config.kind()
        );
    }
    let filter = Filter {
        tables: a.tables.clone(),
        tenants: a.tenants.clone(),
        transforms,
    };
    for t in filter.unknown_tables() {
        eprintln!("warning: --tables names `{t}`, which is not a known export table; rows of it are kept if they appear");
    }
    // Beside a fresh --out FILE the dead letters start fresh too; otherwise they accumulate
    // like the events do.
    let dead = Arc::new(match a.out.as_deref() {
        Some(o) if o != "-" => DeadLetterFile::fresh(&dead_path),
        _ => DeadLetterFile::new(&dead_path),
    });
    let delivery = Delivery::new(sink.clone(), config.limits());
    let total: u64 = inputs.iter().map(|i| i.len).sum();
    let bar = if std::io::stderr().is_terminal() && total >= PROGRESS_MIN_BYTES {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .expect("valid template"),
        );
        b
    } else {
        ProgressBar::hidden()
    };

    // Two workers: the sink's requests (formatting, compression, TLS) run beside the reading
    // and normalizing of the next batches.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let mut proc = RowProcessor::new(a.format, filter, max_line);
    rt.block_on(async {
        if a.out.is_none() {
            if let Some(done) = crate::sink::es_templates::install_at_startup(&config).await? {
                eprintln!("elasticsearch templates: {done}");
            }
        }
        let mut pipe = delivery.pipeline::<()>(Some(dead.clone()), None);
        let full = |b: &Batch| delivery.full(b);
        for input in &inputs {
            process_file(input, &mut proc, &mut pipe, &bar, &full).await?;
        }
        pipe.flush().await?;
        absorb(&mut pipe, &mut proc);
        sink.finish().await?;
        anyhow::Ok(())
    })?;
    dead.finish()
        .with_context(|| format!("cannot write dead letters to {}", dead_path.display()))?;
    bar.finish_and_clear();
    summary(&proc.stats, started.elapsed().as_secs_f64(), inputs.len());
    // Counts on one line that fits a terminal; the list on request (the handler logs each
    // entry as `event=schema_drift`).
    if let Some(drift) = proc.drift.summary() {
        if a.drift_report {
            eprintln!("{drift}:");
            for line in proc.drift.report() {
                eprintln!("  {line}");
            }
        } else {
            eprintln!("{drift} (--drift-report for the list)");
        }
    }
    let st = sink.stats();
    if st.requests > 0 {
        eprintln!("sink {}: {st}", sink.name());
    }
    if proc.stats.dead_lettered > 0 {
        eprintln!(
            "{} row(s) dead-lettered to {}",
            proc.stats.dead_lettered,
            dead_path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn process_file(
    input: &Input,
    proc: &mut RowProcessor,
    pipe: &mut Pipeline<()>,
    bar: &ProgressBar,
    full: &dyn Fn(&Batch) -> bool,
) -> anyhow::Result<()> {
    let mut f = std::fs::File::open(&input.path)
        .with_context(|| format!("cannot open {}", input.path.display()))?;
    let mut framer = Framer::new(0, proc.max_line());
    let mut batch = pipe.batch();
    let mut dl: Vec<DeadLetter> = Vec::new();
    loop {
        let n = framer
            .read_from(&mut f, CHUNK)
            .with_context(|| format!("cannot read {}", input.path.display()))?;
        if n == 0 {
            break;
        }
        proc.stats.bytes += n as u64;
        bar.inc(n as u64);
        while let Some(frame) = framer.next_frame() {
            proc.handle(frame, None, &input.name, &mut batch, &mut dl);
            if full(&batch) {
                let b = std::mem::replace(&mut batch, pipe.batch());
                pipe.submit(b, std::mem::take(&mut dl), ()).await?;
                absorb(pipe, proc);
            }
        }
    }
    if let Some(frame) = framer.finish() {
        proc.handle(frame, None, &input.name, &mut batch, &mut dl);
    }
    // The rest of this file travels with the next file's batches in flight.
    pipe.submit(batch, dl, ()).await?;
    absorb(pipe, proc);
    Ok(())
}

/// Counts the events the sink refused one by one in acknowledged batches (the pipeline stored
/// them as dead letters) and recycles the batches.
fn absorb(pipe: &mut Pipeline<()>, proc: &mut RowProcessor) {
    while let Some(a) = pipe.take_acked() {
        let n = a.refused.len() as u64;
        proc.stats.events = proc.stats.events.saturating_sub(n);
        proc.stats.dead_lettered += n;
        pipe.recycle(a.batch);
    }
}

/// `, N filtered (X saved)` when transforms dropped rows.
pub(super) fn filtered_note(s: &Stats) -> String {
    if s.filtered == 0 {
        return String::new();
    }
    format!(
        ", {} filtered ({} saved)",
        s.filtered,
        crate::status::human_bytes(s.filtered_bytes)
    )
}

fn summary(s: &Stats, secs: f64, files: usize) {
    let mb = s.bytes as f64 / 1e6;
    eprintln!(
        "processed {files} file(s): {} rows, {} events, {} dead-lettered, {} skipped{}, {:.1} MB in {:.2}s ({:.1} MB/s)",
        s.rows,
        s.events,
        s.dead_lettered,
        s.skipped,
        filtered_note(s),
        mb,
        secs,
        if secs > 0.0 { mb / secs } else { 0.0 }
    );
}
