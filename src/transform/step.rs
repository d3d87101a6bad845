//! The transform's place in the per-row step ([`crate::pipeline::RowProcessor`]): run the
//! table's program on the parsed row, then build the event from the row as it was (kept), from
//! the rewritten row (reshaped: the line with its new `properties`, parsed again so every
//! format sees the same columns), or not at all (filtered). The event id is always the one of
//! the original row.

use super::{Outcome, Scratch, Transforms};
use crate::event::{Batch, SourceRef};
use crate::normalize::drift::Drift;
use crate::normalize::{event_id, Normalizer, Undecoded};
use crate::rows::{Row, RowParser};
use crate::tables::{TableInfo, TableName};
use std::sync::Arc;

/// What became of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// An event was built.
    Event,
    /// An allow-list dropped it.
    Skipped,
    /// A transform's `where` dropped it.
    Filtered,
}

/// The transforms and the buffers they reuse across rows.
#[derive(Debug)]
pub struct TransformStep {
    transforms: Arc<Transforms>,
    scratch: Scratch,
    parser: RowParser,
    line: Vec<u8>,
}

impl TransformStep {
    /// A step running `transforms`.
    pub fn new(transforms: Arc<Transforms>) -> Self {
        TransformStep {
            transforms,
            scratch: Scratch::default(),
            parser: RowParser::new(),
            line: Vec::new(),
        }
    }

    /// Runs the transform on `row` (parsed from `line`) and appends its event, if any.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        row: &Row<'_>,
        table: &TableName,
        info: Option<&'static TableInfo>,
        line: &[u8],
        src: SourceRef<'_>,
        normalizer: &Normalizer,
        batch: &mut Batch,
        drift: &mut Drift,
    ) -> Fate {
        match self
            .transforms
            .run(info, row.properties, row.pivots, &mut self.scratch)
        {
            Outcome::Drop => Fate::Filtered,
            Outcome::Keep => {
                let undecoded = normalizer.push_table(row, table, info, line, src, batch);
                drift.observe(table, info, row, undecoded);
                Fate::Event
            }
            Outcome::Rewrite => {
                let tenant = row.tenant_id.as_deref().unwrap_or("");
                let id = event_id(tenant, table, row.properties);
                let start = row.properties.as_ptr() as usize - line.as_ptr() as usize;
                let end = start + row.properties.len();
                self.line.clear();
                self.line.extend_from_slice(&line[..start]);
                self.line.extend_from_slice(&self.scratch.props);
                self.line.extend_from_slice(&line[end..]);
                // Drift is about the export's columns: the original row's.
                drift.observe(table, info, row, Undecoded::default());
                match self.parser.parse(&self.line) {
                    Ok(new) => {
                        normalizer.push_with_id(&new, table, info, &self.line, src, batch, id);
                    }
                    // Cannot happen (the new properties are valid JSON): keep the row whole
                    // rather than lose it.
                    Err(_) => {
                        normalizer.push_with_id(row, table, info, line, src, batch, id);
                    }
                }
                Fate::Event
            }
        }
    }
}
