//! The per-row step shared by every entry point: a [`Frame`] from the framer is parsed, filtered
//! by the table/tenant allow-lists, normalized into the current [`Batch`], or turned into a
//! [`DeadLetter`]. The CLI (local files) and the blob drain both drive this.

use crate::deadletter::DeadLetter;
use crate::event::{Batch, SourceRef};
use crate::normalize::drift::Drift;
use crate::normalize::{Format, Normalizer};
use crate::rows::{Frame, RowError, RowParser};
use crate::tables;
use crate::transform::step::{Fate, TransformStep};
use crate::transform::Transforms;
use std::sync::Arc;

/// Counters of one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Non-blank lines seen (valid or not).
    pub rows: u64,
    /// Events produced.
    pub events: u64,
    /// Rows dead-lettered.
    pub dead_lettered: u64,
    /// Rows dropped by an allow-list (`--tables`, `--tenants`).
    pub skipped: u64,
    /// Rows dropped by a transform's `where` (`RELAY_TRANSFORMS`): not dead letters.
    pub filtered: u64,
    /// Bytes of the rows counted in `filtered` (what the sink was spared).
    pub filtered_bytes: u64,
    /// Bytes of input read (set by the reader driving the processor).
    pub bytes: u64,
}

impl Stats {
    /// Adds another run's counters.
    pub fn add(&mut self, o: &Stats) {
        self.rows += o.rows;
        self.events += o.events;
        self.dead_lettered += o.dead_lettered;
        self.skipped += o.skipped;
        self.filtered += o.filtered;
        self.filtered_bytes += o.filtered_bytes;
        self.bytes += o.bytes;
    }
}

/// Allow-lists (an empty list allows everything) and the transforms run on the rows they allow.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Table names (case-insensitive).
    pub tables: Vec<String>,
    /// Tenant GUIDs (case-insensitive).
    pub tenants: Vec<String>,
    /// KQL transforms (`RELAY_TRANSFORMS`, `--transform`), checked at start-up.
    pub transforms: Option<Arc<Transforms>>,
}

impl Filter {
    fn allows(&self, table: &str, tenant: Option<&str>) -> bool {
        (self.tables.is_empty() || self.tables.iter().any(|t| t.eq_ignore_ascii_case(table)))
            && (self.tenants.is_empty()
                || tenant.is_some_and(|x| self.tenants.iter().any(|t| t.eq_ignore_ascii_case(x))))
    }

    /// Checks the table names against the registry; unknown names are allowed (new tables
    /// appear without notice) but returned so the caller can warn about a likely typo.
    pub fn unknown_tables(&self) -> Vec<&str> {
        self.tables
            .iter()
            .filter(|t| tables::lookup(t).is_none())
            .map(String::as_str)
            .collect()
    }
}

/// Rows at least this long are normalized outside the async worker threads
/// ([`RowProcessor::handle_off_worker`]): one such row can take a noticeable time (a row of a
/// million keys), and a worker busy with it answers no request meanwhile.
pub const BIG_ROW_BYTES: usize = 256 << 10;

/// Turns frames into events or dead letters.
#[derive(Debug)]
pub struct RowProcessor {
    parser: RowParser,
    normalizer: Normalizer,
    filter: Filter,
    transform: Option<Box<TransformStep>>,
    max_line: usize,
    /// Counters so far.
    pub stats: Stats,
    /// Schema drift seen so far (rows that were normalized).
    pub drift: Drift,
}

impl RowProcessor {
    /// A processor writing `format`, keeping rows `filter` allows, with lines up to `max_line`.
    pub fn new(format: Format, filter: Filter, max_line: usize) -> Self {
        RowProcessor {
            parser: RowParser::new(),
            normalizer: Normalizer::new(format),
            transform: filter
                .transforms
                .clone()
                .map(|t| Box::new(TransformStep::new(t))),
            filter,
            max_line,
            stats: Stats::default(),
            drift: Drift::default(),
        }
    }

    /// Also logs each new schema drift once per process (`event=schema_drift`): what the
    /// handler wants; the CLI prints a summary instead.
    pub fn log_drift(mut self, on: bool) -> Self {
        self.drift = Drift::new(on);
        self
    }

    /// The longest accepted row.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// [`RowProcessor::handle`] for callers on an async task: a row of [`BIG_ROW_BYTES`] or more
    /// is processed under [`tokio::task::block_in_place`] on a multi-threaded runtime, so the
    /// runtime moves its other tasks (the handler's `GET /`, other invocations) to another
    /// worker meanwhile. Small rows, the common case, pay nothing.
    pub fn handle_off_worker(
        &mut self,
        frame: Frame<'_>,
        container: Option<&str>,
        blob: &str,
        batch: &mut Batch,
        dead: &mut Vec<DeadLetter>,
    ) {
        let big = matches!(&frame, Frame::Line { bytes, .. } if bytes.len() >= BIG_ROW_BYTES);
        let multi_thread = big
            && tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread {
            tokio::task::block_in_place(|| self.handle(frame, container, blob, batch, dead))
        } else {
            self.handle(frame, container, blob, batch, dead)
        }
    }

    /// Handles one frame from `container`/`blob`: appends its event to `batch`, or its dead
    /// letter to `dead`, or counts it as skipped or filtered.
    pub fn handle(
        &mut self,
        frame: Frame<'_>,
        container: Option<&str>,
        blob: &str,
        batch: &mut Batch,
        dead: &mut Vec<DeadLetter>,
    ) {
        self.stats.rows += 1;
        match frame {
            Frame::Oversize {
                offset,
                len,
                prefix,
            } => {
                let err = RowError::TooLong {
                    len,
                    max: self.max_line,
                };
                let src = SourceRef {
                    container,
                    blob,
                    offset,
                };
                dead.push(DeadLetter::new(&err, src, &prefix, len));
                self.stats.dead_lettered += 1;
            }
            Frame::Line { offset, bytes } => {
                let src = SourceRef {
                    container,
                    blob,
                    offset,
                };
                let result = self.parser.parse(bytes).map(|row| {
                    let (table, info) = tables::table_from_category(&row.category);
                    if !self.filter.allows(&table, row.tenant_id.as_deref()) {
                        return Fate::Skipped;
                    }
                    if let Some(t) = self.transform.as_deref_mut() {
                        let (n, d) = (&self.normalizer, &mut self.drift);
                        return t.push(&row, &table, info, bytes, src, n, batch, d);
                    }
                    let undecoded = self
                        .normalizer
                        .push_table(&row, &table, info, bytes, src, batch);
                    self.drift.observe(&table, info, &row, undecoded);
                    Fate::Event
                });
                match result {
                    Ok(Fate::Event) => self.stats.events += 1,
                    Ok(Fate::Skipped) => self.stats.skipped += 1,
                    Ok(Fate::Filtered) => {
                        self.stats.filtered += 1;
                        self.stats.filtered_bytes += bytes.len() as u64;
                    }
                    Err(err) => {
                        dead.push(DeadLetter::new(&err, src, bytes, bytes.len() as u64));
                        self.stats.dead_lettered += 1;
                    }
                }
            }
        }
    }
}
