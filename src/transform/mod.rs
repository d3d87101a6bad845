//! KQL transforms per table, run on each row before the sink (`RELAY_TRANSFORMS`,
//! `process --transform FILE`; the subset is documented in docs/transforms.md).
//!
//! ```text
//! DeviceNetworkEvents | where ActionType !in ("ConnectionSuccess", "ConnectionAttempt")
//! * | project-away AdditionalFields
//! ```
//!
//! * [`parse`]: text to syntax tree (pest grammar `kql.pest`);
//! * [`check`]: tables, columns, operators and functions resolved against the registry at
//!   start-up, so a bad transform stops `serve` and `process` before any read;
//! * [`eval`]: the per-row run, reading only the columns an expression names;
//! * [`value`]: values and the KQL comparison rules.
//!
//! A table's program is its own rules in file order, then the `*` rules. The pipeline calls
//! [`Transforms::run`] after the allow-lists and before the event is built, so the result is
//! the same for `normalized`, `raw` and `ocsf`; the event id stays the original row's.

pub mod check;
pub mod eval;
pub mod parse;
pub mod step;
pub mod value;

use crate::tables::{TableInfo, TABLES};
use check::Target;
pub use eval::{Outcome, Program, Scratch};
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// A problem in a transform, at a line and column of its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformError {
    /// Byte offset in the text.
    pub at: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub col: usize,
    /// What is wrong.
    pub message: String,
    /// The line of text, for the caret.
    pub excerpt: String,
}

impl TransformError {
    /// An error at byte `at`; [`TransformError::locate`] fills in line and column.
    pub fn new(at: usize, message: String) -> Self {
        TransformError {
            at,
            line: 0,
            col: 0,
            message,
            excerpt: String::new(),
        }
    }

    /// Fills in line, column and excerpt from the transform text.
    pub fn locate(mut self, text: &str) -> Self {
        let at = self.at.min(text.len());
        let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        self.line = text[..at].matches('\n').count() + 1;
        self.col = text[start..at].chars().count() + 1;
        self.excerpt = text[start..end].trim_end().to_string();
        self
    }
}

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "transform line {}, col {}: {}",
            self.line, self.col, self.message
        )?;
        if !self.excerpt.is_empty() {
            let pad: String = self
                .excerpt
                .chars()
                .take(self.col - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n  | {}\n  | {pad}^", self.excerpt)?;
        }
        Ok(())
    }
}

/// Every problem of a transform text, and where the text came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformErrors {
    /// `RELAY_TRANSFORMS`, `--transform FILE`, ...
    pub origin: String,
    /// The problems, in text order.
    pub errors: Vec<TransformError>,
}

impl fmt::Display for TransformErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        writeln!(
            f,
            "{}: {n} problem{} in the transform",
            self.origin,
            if n == 1 { "" } else { "s" }
        )?;
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TransformErrors {}

/// The checked transforms of a whole file: one program per table that has a rule, and one for
/// every other table (the `*` rules).
#[derive(Debug, Clone)]
pub struct Transforms {
    /// Per registry table (index in [`TABLES`]).
    by_table: Vec<Option<Arc<Program>>>,
    /// Tables without a rule of their own, known or not.
    other: Option<Arc<Program>>,
    /// The tables that have rules of their own.
    named: Vec<&'static str>,
}

impl Transforms {
    /// Parses and checks `text`; `origin` names where it came from in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Transforms, TransformErrors> {
        let fail = |errors: Vec<TransformError>| TransformErrors {
            origin: origin.to_string(),
            errors: errors.into_iter().map(|e| e.locate(text)).collect(),
        };
        let rules = parse::parse(text).map_err(|e| fail(vec![e]))?;
        let checked = check::check(&rules).map_err(fail)?;
        let star: Vec<check::Step> = checked
            .iter()
            .filter(|c| c.target == Target::All)
            .flat_map(|c| c.steps.iter().cloned())
            .collect();
        let other = (!star.is_empty()).then(|| {
            Arc::new(Program {
                steps: star.clone(),
            })
        });
        let mut by_table = vec![other.clone(); TABLES.len()];
        let mut named = Vec::new();
        for (i, info) in TABLES.iter().enumerate() {
            let own: Vec<check::Step> = checked
                .iter()
                .filter(|c| c.target == Target::Table(info))
                .flat_map(|c| c.steps.iter().cloned())
                .collect();
            if !own.is_empty() || checked.iter().any(|c| c.target == Target::Table(info)) {
                named.push(info.name);
                let steps = own.into_iter().chain(star.iter().cloned()).collect();
                by_table[i] = Some(Arc::new(Program { steps }));
            }
        }
        Ok(Transforms {
            by_table,
            other,
            named,
        })
    }

    /// Reads the transforms of a setting: a file path when a file of that name exists (or the
    /// value names no operator), else the transform text itself.
    pub fn from_setting(value: &str, setting: &str) -> anyhow::Result<Transforms> {
        let v = value.trim();
        let path = std::path::Path::new(v);
        if !v.contains('\n') && path.is_file() || !v.contains('|') {
            return Self::from_file(path, setting);
        }
        Ok(Self::parse(value, setting)?)
    }

    /// Reads a transform file.
    pub fn from_file(path: &std::path::Path, origin: &str) -> anyhow::Result<Transforms> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "{origin}: cannot read transform file {}: {e}",
                path.display()
            )
        })?;
        Ok(Self::parse(
            &text,
            &format!("{origin} ({})", path.display()),
        )?)
    }

    /// Tables with rules of their own.
    pub fn named_tables(&self) -> &[&'static str] {
        &self.named
    }

    /// The program for rows of a table (`info`: its registry entry, `None` when unknown).
    pub fn program(&self, info: Option<&'static TableInfo>) -> Option<&Program> {
        let p = match info {
            Some(info) => {
                let i = (info as *const TableInfo as usize).wrapping_sub(TABLES.as_ptr() as usize)
                    / std::mem::size_of::<TableInfo>();
                match TABLES.get(i) {
                    Some(t) if std::ptr::eq(t, info) => self.by_table[i].as_ref(),
                    _ => match TABLES.iter().position(|t| t.name == info.name) {
                        Some(i) => self.by_table[i].as_ref(),
                        None => self.other.as_ref(),
                    },
                }
            }
            None => self.other.as_ref(),
        };
        p.map(|p| &**p)
    }

    /// Runs the table's program on a row.
    pub fn run(
        &self,
        info: Option<&'static TableInfo>,
        props: &[u8],
        pivots: &[Option<Range<usize>>; 5],
        scratch: &mut Scratch,
    ) -> Outcome {
        match self.program(info) {
            Some(p) => p.run(props, pivots, info, scratch),
            None => Outcome::Keep,
        }
    }
}

#[cfg(test)]
mod tests;
