//! Schema drift: what the rows carry that the published schema (the [`crate::tables`]
//! registry) does not describe. Three kinds are counted, per row:
//!
//! * `unknown_table`: rows of a table the registry does not know;
//! * `undocumented_column`: a column a known table's doc does not list (`MachineGroup`, which
//!   the export adds to every device-linked row, is documented behaviour and not counted);
//! * `undecodable_json`: a JSON column whose text looks like JSON (starts with `{` or `[`) but
//!   does not parse, so it was forwarded as the string it is.
//!
//! Drift never changes an event; it is reported: `process` prints [`Drift::summary`] after its
//! summary line, and the handler logs each new (table, column, kind) once per process as a
//! warning with `event=schema_drift` ([`Drift::log_new`]).
//!
//! Cost per row is a table match (pointer compare for known tables) and a shape compare: the
//! parser hashes each row's key sequence ([`Row::shape`]), and the columns of a shape are looked
//! up in the registry only the first time the shape is seen.

use crate::rows::Row;
use crate::tables::TableInfo;
use rustc_hash::FxHashMap;
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use super::Undecoded;

/// The column the export adds to every device-linked row (platform facts §1): not drift.
const EXPORT_ADDED: &[&str] = &["MachineGroup"];

/// Shapes remembered per table before the memory is cleared (rows whose keys vary without end
/// then cost a registry lookup per new shape, never unbounded memory).
const MAX_SHAPES: usize = 4096;

/// A kind of schema drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DriftKind {
    /// Rows of a table the registry does not know.
    UnknownTable,
    /// A column the table's doc does not list.
    UndocumentedColumn,
    /// A JSON column whose JSON-looking text did not decode.
    UndecodableJson,
}

impl DriftKind {
    /// The name used in logs and `--format json` reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::UnknownTable => "unknown_table",
            DriftKind::UndocumentedColumn => "undocumented_column",
            DriftKind::UndecodableJson => "undecodable_json",
        }
    }
}

/// One line of the drift report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftEntry {
    /// Table name as the rows carry it.
    pub table: String,
    /// The column (`None` for [`DriftKind::UnknownTable`]).
    pub column: Option<String>,
    /// What kind of drift.
    pub kind: DriftKind,
    /// Rows showing it.
    pub rows: u64,
}

#[derive(Debug)]
struct ColumnDrift {
    name: String,
    kind: DriftKind,
    rows: u64,
}

/// A row's column count and key-sequence hash ([`Row::columns`], [`Row::shape`]).
type Shape = (u32, u64);

#[derive(Debug)]
struct TableDrift {
    name: String,
    info: Option<&'static TableInfo>,
    /// Rows seen (reported for unknown tables).
    rows: u64,
    columns: Vec<ColumnDrift>,
    /// Shape (column count, key hash) → indices in `columns` of its undocumented columns.
    shapes: FxHashMap<Shape, Box<[u32]>>,
    /// The last shape seen and its undocumented columns: rows of a table nearly always share
    /// one shape, so the map is rarely consulted.
    last_shape: Option<(Shape, Box<[u32]>)>,
}

impl TableDrift {
    fn column(&mut self, name: &str, kind: DriftKind, log: bool) -> usize {
        if let Some(i) = self
            .columns
            .iter()
            .position(|c| c.kind == kind && c.name == name)
        {
            return i;
        }
        if log {
            log_new(&self.name, Some(name), kind);
        }
        self.columns.push(ColumnDrift {
            name: name.to_string(),
            kind,
            rows: 0,
        });
        self.columns.len() - 1
    }
}

/// Drift counters of one run (one per [`crate::pipeline::RowProcessor`]).
#[derive(Debug, Default)]
pub struct Drift {
    log: bool,
    tables: Vec<TableDrift>,
    last: usize,
}

impl Drift {
    /// Counters that also log each new (table, column, kind) once per process when `log`.
    pub fn new(log: bool) -> Self {
        Drift {
            log,
            ..Drift::default()
        }
    }

    fn table(&mut self, name: &str, info: Option<&'static TableInfo>) -> &mut TableDrift {
        let same = |t: &TableDrift| match (t.info, info) {
            (Some(a), Some(b)) => std::ptr::eq(a, b),
            (None, None) => t.name == name,
            _ => false,
        };
        if !self.tables.get(self.last).is_some_and(same) {
            self.last = match self.tables.iter().position(same) {
                Some(i) => i,
                None => {
                    if info.is_none() && self.log {
                        log_new(name, None, DriftKind::UnknownTable);
                    }
                    self.tables.push(TableDrift {
                        name: name.to_string(),
                        info,
                        rows: 0,
                        columns: Vec::new(),
                        shapes: FxHashMap::default(),
                        last_shape: None,
                    });
                    self.tables.len() - 1
                }
            };
        }
        &mut self.tables[self.last]
    }

    /// Counts the drift of one row of `table` (`info` its registry entry, `None` when
    /// unknown); `undecoded` comes from [`super::Normalizer::push_table`].
    pub fn observe(
        &mut self,
        table: &str,
        info: Option<&'static TableInfo>,
        row: &Row<'_>,
        undecoded: Undecoded,
    ) {
        let log = self.log;
        let t = self.table(table, info);
        t.rows += 1;
        if let Some(info) = info {
            let shape = (row.columns, row.shape);
            if t.last_shape.as_ref().map(|s| s.0) != Some(shape) {
                let cols = match t.shapes.get(&shape) {
                    Some(c) => c.clone(),
                    None => {
                        let mut idx = Vec::new();
                        for key in keys(row.properties) {
                            if !info.documents(&key) && !EXPORT_ADDED.contains(&key.as_str()) {
                                idx.push(t.column(&key, DriftKind::UndocumentedColumn, log) as u32);
                            }
                        }
                        let idx: Box<[u32]> = idx.into();
                        if t.shapes.len() >= MAX_SHAPES {
                            t.shapes.clear();
                        }
                        t.shapes.insert(shape, idx.clone());
                        idx
                    }
                };
                t.last_shape = Some((shape, cols));
            }
            if let Some((_, cols)) = &t.last_shape {
                for &i in cols.iter() {
                    t.columns[i as usize].rows += 1;
                }
            }
        }
        for i in undecoded.iter() {
            if let Some((name, _)) = row.dynamic_candidates.get(i) {
                let c = t.column(name, DriftKind::UndecodableJson, log);
                t.columns[c].rows += 1;
            }
        }
    }

    /// Adds another run's counters (e.g. one per file or blob) into this one.
    pub fn merge(&mut self, other: &Drift) {
        for o in &other.tables {
            let log = self.log;
            let t = self.table(&o.name, o.info);
            t.rows += o.rows;
            for c in &o.columns {
                let i = t.column(&c.name, c.kind, log);
                t.columns[i].rows += c.rows;
            }
        }
    }

    /// Every drift seen, sorted by table, kind and column.
    pub fn entries(&self) -> Vec<DriftEntry> {
        let mut out = Vec::new();
        for t in &self.tables {
            if t.info.is_none() {
                out.push(DriftEntry {
                    table: t.name.clone(),
                    column: None,
                    kind: DriftKind::UnknownTable,
                    rows: t.rows,
                });
            }
            for c in t.columns.iter().filter(|c| c.rows > 0) {
                out.push(DriftEntry {
                    table: t.name.clone(),
                    column: Some(c.name.clone()),
                    kind: c.kind,
                    rows: c.rows,
                });
            }
        }
        out.sort_by(|a, b| (&a.table, a.kind, &a.column).cmp(&(&b.table, b.kind, &b.column)));
        out
    }

    /// True when nothing drifted.
    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    /// The line `process` prints on stderr, short enough for a terminal whatever drifted:
    /// counts only, e.g. `schema drift: 17 undocumented columns in 5 tables, 1 unknown table`
    /// (zero counts left out); `None` when nothing drifted. [`Drift::report`] has the list.
    pub fn summary(&self) -> Option<String> {
        let entries = self.entries();
        if entries.is_empty() {
            return None;
        }
        let of = |k: DriftKind| entries.iter().filter(move |e| e.kind == k);
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut parts = Vec::new();
        let columns = of(DriftKind::UndocumentedColumn).count();
        if columns > 0 {
            let tables: HashSet<&str> = of(DriftKind::UndocumentedColumn)
                .map(|e| e.table.as_str())
                .collect();
            parts.push(format!(
                "{} in {}",
                plural(columns, "undocumented column", "undocumented columns"),
                plural(tables.len(), "table", "tables")
            ));
        }
        let json = of(DriftKind::UndecodableJson).count();
        if json > 0 {
            parts.push(plural(
                json,
                "JSON column not valid JSON",
                "JSON columns not valid JSON",
            ));
        }
        let unknown = of(DriftKind::UnknownTable).count();
        if unknown > 0 {
            parts.push(plural(unknown, "unknown table", "unknown tables"));
        }
        Some(format!("schema drift: {}", parts.join(", ")))
    }

    /// Every drift entry, one line each, sorted by table, kind and column, e.g.
    /// `DeviceProcessEvents: undocumented column ProcessUniqueId (3,001 rows)` or
    /// `unknown table FooEvents (12 rows)`.
    pub fn report(&self) -> Vec<String> {
        self.entries()
            .iter()
            .map(|e| {
                let rows = rows_text(e.rows);
                let col = e.column.as_deref().unwrap_or("");
                match e.kind {
                    DriftKind::UnknownTable => format!("unknown table {} ({rows})", e.table),
                    DriftKind::UndocumentedColumn => {
                        format!("{}: undocumented column {col} ({rows})", e.table)
                    }
                    DriftKind::UndecodableJson => {
                        format!("{}: JSON column {col} not valid JSON ({rows})", e.table)
                    }
                }
            })
            .collect()
    }
}

/// `1 row`, `3,001 rows`.
fn rows_text(n: u64) -> String {
    let digits = n.to_string();
    let mut s = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            s.push(',');
        }
        s.push(c);
    }
    format!("{s} row{}", if n == 1 { "" } else { "s" })
}

/// The keys of a `properties` object (already validated by the row parser).
fn keys(properties: &[u8]) -> Vec<String> {
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(properties)
        .map(|m| m.into_iter().map(|(k, _)| k).collect())
        .unwrap_or_default()
}

/// Logs `event=schema_drift` for (table, column, kind) unless this process already did.
pub fn log_new(table: &str, column: Option<&str>, kind: DriftKind) {
    static SEEN: OnceLock<Mutex<HashSet<(String, String, DriftKind)>>> = OnceLock::new();
    let key = (table.to_string(), column.unwrap_or("").to_string(), kind);
    let new = SEEN
        .get_or_init(Default::default)
        .lock()
        .map(|mut s| s.insert(key))
        .unwrap_or(true);
    if new {
        tracing::warn!(
            event = "schema_drift",
            table,
            column = column.unwrap_or(""),
            kind = kind.as_str(),
            "schema drift: rows differ from the published Advanced Hunting schema"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::RowParser;
    use crate::tables;

    fn observe(d: &mut Drift, category: &str, props: &str, undecoded: Undecoded) {
        let line = format!(r#"{{"category":"{category}","properties":{props}}}"#);
        let mut p = RowParser::new();
        let row = p.parse(line.as_bytes()).unwrap();
        let (table, info) = tables::table_from_category(&row.category);
        d.observe(&table, info, &row, undecoded);
    }

    #[test]
    fn counts_each_kind() {
        let mut d = Drift::new(false);
        let dpe = "AdvancedHunting-DeviceProcessEvents";
        for i in 0..3001 {
            let props = if i % 2 == 0 {
                r#"{"Timestamp":"t","ProcessUniqueId":1,"MachineGroup":null}"#
            } else {
                r#"{"ProcessUniqueId":1,"Timestamp":"t","DeviceId":"d"}"#
            };
            observe(&mut d, dpe, props, Undecoded::default());
        }
        observe(&mut d, dpe, r#"{"Timestamp":"t"}"#, Undecoded::default());
        for _ in 0..12 {
            observe(
                &mut d,
                "AdvancedHunting-FooEvents",
                "{}",
                Undecoded::default(),
            );
        }
        observe(
            &mut d,
            "AdvancedHunting-DeviceEvents",
            r#"{"AdditionalFields":"{bad"}"#,
            Undecoded(1),
        );
        assert_eq!(
            d.summary().unwrap(),
            "schema drift: 1 undocumented column in 1 table, 1 JSON column not valid JSON, \
             1 unknown table"
        );
        assert_eq!(
            d.report(),
            [
                "DeviceEvents: JSON column AdditionalFields not valid JSON (1 row)",
                "DeviceProcessEvents: undocumented column ProcessUniqueId (3,001 rows)",
                "unknown table FooEvents (12 rows)",
            ]
        );
        let mut total = Drift::new(false);
        total.merge(&d);
        total.merge(&d);
        assert_eq!(total.entries()[1].rows, 6002);
        assert_eq!(total.entries()[2].kind, DriftKind::UnknownTable);
        assert!(Drift::default().summary().is_none());
    }

    #[test]
    fn row_counts() {
        assert_eq!(rows_text(1), "1 row");
        assert_eq!(rows_text(999), "999 rows");
        assert_eq!(rows_text(1000), "1,000 rows");
        assert_eq!(rows_text(1234567), "1,234,567 rows");
    }
}
