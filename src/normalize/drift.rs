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
//! warning with `event=schema_drift` ([`log_new`]).
//!
//! Cost per row is a table match (pointer compare for known tables) and a shape compare: the
//! parser hashes each row's key sequence ([`Row::shape`]), and the columns of a shape are looked
//! up in the registry only the first time the shape is seen.
//!
//! Rows are untrusted, so everything here is bounded whatever a row holds (a row of a million
//! undocumented keys costs linear time, not quadratic): columns are found through a hash map;
//! at most [`MAX_COLUMNS`] drifted columns are tracked per table, and the rest are only counted
//! ([`DriftEntry`] of kind [`DriftKind::UntrackedColumns`]); one [`Drift`] writes at most
//! [`MAX_LOG_LINES`] drift lines, then one line saying how many it left out; the process-wide
//! memory of logged drift holds at most [`MAX_LOGGED`] entries; [`Drift::summary`] is counts
//! only, and [`Drift::report`] lists at most [`MAX_COLUMNS`] columns per table.

use crate::rows::Row;
use crate::tables::TableInfo;
use rustc_hash::FxHashMap;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use super::Undecoded;

/// The column the export adds to every device-linked row (platform facts §1): not drift.
pub(crate) const EXPORT_ADDED: &[&str] = &["MachineGroup"];

/// Shapes remembered per table before the memory is cleared (rows whose keys vary without end
/// then cost a registry lookup per new shape, never unbounded memory).
const MAX_SHAPES: usize = 4096;

/// Drifted columns tracked (named, counted per column) per table; further ones are counted
/// together.
pub const MAX_COLUMNS: usize = 256;

/// Drift lines one [`Drift`] (one drain, one `process` run) writes at most.
pub const MAX_LOG_LINES: usize = 20;

/// (table, column, kind) entries the process remembers as logged; past it the memory starts over
/// (a drift may then be logged once more, still within [`MAX_LOG_LINES`] per drain).
pub const MAX_LOGGED: usize = 10_000;

/// Tables tracked one by one; rows of further unknown tables are counted under
/// [`OTHER_TABLES`].
pub const MAX_TABLES: usize = 1024;

/// The name unknown tables past [`MAX_TABLES`] are counted under.
pub const OTHER_TABLES: &str = "(other unknown tables)";

/// A kind of schema drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DriftKind {
    /// Rows of a table the registry does not know.
    UnknownTable,
    /// A column the table's doc does not list.
    UndocumentedColumn,
    /// A JSON column whose JSON-looking text did not decode.
    UndecodableJson,
    /// Drifted columns beyond [`MAX_COLUMNS`] for the table, not tracked one by one: `rows`
    /// counts (row, column) occurrences.
    UntrackedColumns,
}

impl DriftKind {
    /// The name used in logs and `--format json` reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::UnknownTable => "unknown_table",
            DriftKind::UndocumentedColumn => "undocumented_column",
            DriftKind::UndecodableJson => "undecodable_json",
            DriftKind::UntrackedColumns => "untracked_columns",
        }
    }
}

/// One line of the drift report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftEntry {
    /// Table name as the rows carry it.
    pub table: String,
    /// The column (`None` for [`DriftKind::UnknownTable`] and [`DriftKind::UntrackedColumns`]).
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
    /// (kind, name) → index in `columns`.
    index: FxHashMap<(DriftKind, Box<str>), u32>,
    /// Occurrences of drifted columns past [`MAX_COLUMNS`].
    untracked: u64,
    /// Shape (column count, key hash) → its undocumented columns.
    shapes: FxHashMap<Shape, ShapeDrift>,
    /// The last shape seen and its undocumented columns: rows of a table nearly always share
    /// one shape, so the map is rarely consulted.
    last_shape: Option<(Shape, ShapeDrift)>,
}

/// The undocumented columns of one row shape: indices in `columns`, and how many more were past
/// the cap.
#[derive(Debug, Clone, Default)]
struct ShapeDrift {
    tracked: Arc<[u32]>,
    untracked: u64,
}

impl TableDrift {
    fn new(name: &str, info: Option<&'static TableInfo>) -> Self {
        TableDrift {
            name: name.to_string(),
            info,
            rows: 0,
            columns: Vec::new(),
            index: FxHashMap::default(),
            untracked: 0,
            shapes: FxHashMap::default(),
            last_shape: None,
        }
    }

    /// The index of (name, kind) in `columns`, added (and logged) when new; `None` when the
    /// table already tracks [`MAX_COLUMNS`] columns.
    fn column(&mut self, name: &str, kind: DriftKind, log: &mut LogBudget) -> Option<usize> {
        // Reached only for the first row of each shape, so the key allocation is rare.
        if let Some(&i) = self.index.get(&(kind, Box::<str>::from(name))) {
            return Some(i as usize);
        }
        if self.columns.len() >= MAX_COLUMNS {
            return None;
        }
        log.log(&self.name, Some(name), kind);
        self.columns.push(ColumnDrift {
            name: name.to_string(),
            kind,
            rows: 0,
        });
        let i = self.columns.len() - 1;
        self.index.insert((kind, name.into()), i as u32);
        Some(i)
    }
}

/// How many drift lines a [`Drift`] may still write.
#[derive(Debug, Default)]
struct LogBudget {
    on: bool,
    written: usize,
    left_out: u64,
}

impl LogBudget {
    fn log(&mut self, table: &str, column: Option<&str>, kind: DriftKind) {
        if !self.on {
            return;
        }
        if self.written < MAX_LOG_LINES {
            if log_new(table, column, kind) {
                self.written += 1;
            }
        } else {
            self.left_out += 1;
        }
    }
}

/// Drift counters of one run (one per [`crate::pipeline::RowProcessor`]).
#[derive(Debug, Default)]
pub struct Drift {
    log: LogBudget,
    tables: Vec<TableDrift>,
    last: usize,
}

impl Drop for Drift {
    fn drop(&mut self) {
        if self.log.left_out > 0 {
            tracing::warn!(
                event = "schema_drift",
                left_out = self.log.left_out,
                "schema drift: {} more new drifted column(s) not logged one by one (at most {MAX_LOG_LINES} lines per drain)",
                self.log.left_out
            );
        }
    }
}

impl Drift {
    /// Counters that also log each new (table, column, kind) once per process when `log`.
    pub fn new(log: bool) -> Self {
        Drift {
            log: LogBudget {
                on: log,
                ..LogBudget::default()
            },
            tables: Vec::new(),
            last: 0,
        }
    }

    /// The index in `tables` of `name`, added when new. Past [`MAX_TABLES`] tables, unknown
    /// ones share one overflow entry.
    fn table(&mut self, name: &str, info: Option<&'static TableInfo>) -> usize {
        let same = |t: &TableDrift| match (t.info, info) {
            (Some(a), Some(b)) => std::ptr::eq(a, b),
            (None, None) => t.name == name,
            _ => false,
        };
        if !self.tables.get(self.last).is_some_and(same) {
            self.last = match self.tables.iter().position(same) {
                Some(i) => i,
                None if self.tables.len() >= MAX_TABLES => {
                    match self.tables.iter().position(|t| t.name == OTHER_TABLES) {
                        Some(i) => i,
                        None => {
                            self.tables.push(TableDrift::new(OTHER_TABLES, None));
                            self.tables.len() - 1
                        }
                    }
                }
                None => {
                    if info.is_none() {
                        self.log.log(name, None, DriftKind::UnknownTable);
                    }
                    self.tables.push(TableDrift::new(name, info));
                    self.tables.len() - 1
                }
            };
        }
        self.last
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
        let i = self.table(table, info);
        let (t, log) = (&mut self.tables[i], &mut self.log);
        t.rows += 1;
        if let Some(info) = info {
            let shape = (row.columns, row.shape);
            if t.last_shape.as_ref().map(|s| s.0) != Some(shape) {
                let cols = match t.shapes.get(&shape) {
                    Some(c) => c.clone(),
                    None => {
                        let mut idx = Vec::new();
                        let mut untracked = 0u64;
                        for_each_key(row.properties, |key| {
                            if !info.documents(key) && !EXPORT_ADDED.contains(&key) {
                                match t.column(key, DriftKind::UndocumentedColumn, log) {
                                    Some(c) => idx.push(c as u32),
                                    None => untracked += 1,
                                }
                            }
                        });
                        let cols = ShapeDrift {
                            tracked: idx.into(),
                            untracked,
                        };
                        if t.shapes.len() >= MAX_SHAPES {
                            t.shapes.clear();
                        }
                        t.shapes.insert(shape, cols.clone());
                        cols
                    }
                };
                t.last_shape = Some((shape, cols));
            }
            if let Some((_, cols)) = &t.last_shape {
                for &i in cols.tracked.iter() {
                    t.columns[i as usize].rows += 1;
                }
                t.untracked += cols.untracked;
            }
        }
        for i in undecoded.iter() {
            if let Some((name, _)) = row.dynamic_candidates.get(i) {
                match t.column(name, DriftKind::UndecodableJson, log) {
                    Some(c) => t.columns[c].rows += 1,
                    None => t.untracked += 1,
                }
            }
        }
    }

    /// Adds another run's counters (e.g. one per file or blob) into this one.
    pub fn merge(&mut self, other: &Drift) {
        for o in &other.tables {
            let i = self.table(&o.name, o.info);
            let (t, log) = (&mut self.tables[i], &mut self.log);
            t.rows += o.rows;
            t.untracked += o.untracked;
            for c in &o.columns {
                match t.column(&c.name, c.kind, log) {
                    Some(i) => t.columns[i].rows += c.rows,
                    None => t.untracked += c.rows,
                }
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
            if t.untracked > 0 {
                out.push(DriftEntry {
                    table: t.name.clone(),
                    column: None,
                    kind: DriftKind::UntrackedColumns,
                    rows: t.untracked,
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
        let untracked: u64 = of(DriftKind::UntrackedColumns).map(|e| e.rows).sum();
        if untracked > 0 {
            parts.push(format!(
                "more undocumented columns than the {MAX_COLUMNS} tracked per table ({untracked} occurrences)"
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
                    DriftKind::UntrackedColumns => format!(
                        "{}: more undocumented columns than the {MAX_COLUMNS} tracked ({} occurrences)",
                        e.table,
                        rows_text(e.rows).trim_end_matches(" rows").trim_end_matches(" row")
                    ),
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

/// Calls `f` with each key of a `properties` object (already validated by the row parser), in
/// order, without building the object: values are skipped, keys borrowed when unescaped.
fn for_each_key(properties: &[u8], mut f: impl FnMut(&str)) {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Keys<'f, F>(&'f mut F);
    impl<'de, F: FnMut(&str)> Visitor<'de> for Keys<'_, F> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                (self.0)(&k);
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_slice(properties);
    // Recursion limit is serde_json's default (128): the row parser already accepted the row.
    let _ = de.deserialize_map(Keys(&mut f));
}

/// Logs `event=schema_drift` for (table, column, kind) unless this process already did; true
/// when it logged.
pub fn log_new(table: &str, column: Option<&str>, kind: DriftKind) -> bool {
    static SEEN: OnceLock<Mutex<HashSet<(String, String, DriftKind)>>> = OnceLock::new();
    let key = (table.to_string(), column.unwrap_or("").to_string(), kind);
    let new = SEEN
        .get_or_init(Default::default)
        .lock()
        .map(|mut s| {
            if s.len() >= MAX_LOGGED {
                s.clear();
            }
            s.insert(key)
        })
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
    new
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
