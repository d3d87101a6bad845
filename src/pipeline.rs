//! The per-row step shared by every entry point: a [`Frame`] from the framer is parsed, filtered
//! by the table/tenant allow-lists, normalized into the current [`Batch`], or turned into a
//! [`DeadLetter`]. The CLI (local files) and the blob drain both drive this.

use crate::deadletter::DeadLetter;
use crate::event::{Batch, SourceRef};
use crate::normalize::drift::Drift;
use crate::normalize::{Format, Normalizer};
use crate::rows::{Frame, RowError, RowParser};
use crate::tables;

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
        self.bytes += o.bytes;
    }
}

/// Allow-lists; an empty list allows everything.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Table names (case-insensitive).
    pub tables: Vec<String>,
    /// Tenant GUIDs (case-insensitive).
    pub tenants: Vec<String>,
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

/// Turns frames into events or dead letters.
#[derive(Debug)]
pub struct RowProcessor {
    parser: RowParser,
    normalizer: Normalizer,
    filter: Filter,
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

    /// Handles one frame from `container`/`blob`: appends its event to `batch`, or its dead
    /// letter to `dead`, or counts it as skipped.
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
                        return false;
                    }
                    let undecoded = self
                        .normalizer
                        .push_table(&row, &table, info, bytes, src, batch);
                    self.drift.observe(&table, info, &row, undecoded);
                    true
                });
                match result {
                    Ok(true) => self.stats.events += 1,
                    Ok(false) => self.stats.skipped += 1,
                    Err(err) => {
                        dead.push(DeadLetter::new(&err, src, bytes, bytes.len() as u64));
                        self.stats.dead_lettered += 1;
                    }
                }
            }
        }
    }
}
