//! The table registry: every Advanced Hunting table in Microsoft's published schema
//! (`data/advanced-hunting-schema.json`, turned into static data by `build.rs`), with its
//! documented columns and types, its JSON columns, and whether the streaming API lists it.
//!
//! The registry is for *knowing* tables and columns (which ones hold JSON text, what is drift),
//! never for coercing values: the docs lag the wire (platform facts §1).
//!
//! Unknown tables are not an error: [`table_from_category`] derives a name from any
//! `AdvancedHunting-<Table>` category; an unknown table's only JSON column is `AdditionalFields`.

use std::borrow::Cow;

/// Prefix of every export container; the table name (lower-cased) follows it.
pub const CONTAINER_PREFIX: &str = "insights-logs-advancedhunting-";
/// Prefix of every row's `category`; the table name follows it.
pub const CATEGORY_PREFIX: &str = "AdvancedHunting-";
/// The JSON column every table has, known or not.
pub const ADDITIONAL_FIELDS: &str = "AdditionalFields";
/// Where the registry's data comes from (shown by `mde-relay schema`).
pub const SCHEMA_SOURCE: &str = "Microsoft Learn / MicrosoftDocs/defender-docs advanced hunting table docs, extracted 2026-11-30 (data/advanced-hunting-schema.json)";

/// One documented column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Column name.
    pub name: &'static str,
    /// Type as written in the docs (`string`, `long`, `dynamic`, ...; not always a KQL name).
    pub ty: &'static str,
}

/// What the relay knows about one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableInfo {
    /// Table name as in Advanced Hunting, e.g. `DeviceProcessEvents`.
    pub name: &'static str,
    /// Streaming status in Microsoft's supported-event-types list (`GA`, `Not available`), or
    /// `None` when the list does not name the table.
    pub streaming: Option<&'static str>,
    /// `ms.date` of the doc the columns come from.
    pub doc_date: &'static str,
    /// Documented columns, in the doc's order.
    pub columns: &'static [Column],
    /// The same column names, sorted (for binary search).
    pub sorted_columns: &'static [&'static str],
    /// Columns whose JSON text is decoded (sorted): typed `dynamic` (or `array`/`object`) in
    /// the docs, or documented `string` but carrying JSON text on the wire (platform facts §1),
    /// and `AdditionalFields` always.
    pub json_columns: &'static [&'static str],
}

impl TableInfo {
    /// True when the streaming API lists the table as generally available.
    pub fn streams(&self) -> bool {
        self.streaming == Some("GA")
    }

    /// True when the docs list `column` for this table.
    pub fn documents(&self, column: &str) -> bool {
        self.sorted_columns.binary_search(&column).is_ok()
    }

    /// True when `column` holds JSON text to decode in this table.
    pub fn is_json_column(&self, column: &str) -> bool {
        self.json_columns.binary_search(&column).is_ok()
    }
}

include!(concat!(env!("OUT_DIR"), "/schema_tables.rs"));

/// Every table of the published schema, sorted by name.
pub static TABLES: &[TableInfo] = GENERATED_TABLES;

/// Every column name that is a JSON column in some table (the union of
/// [`TableInfo::json_columns`], sorted): the row parser notes string values of these columns
/// that look like JSON while it walks `properties`, before it necessarily knows the table
/// (envelope key order varies).
pub static JSON_NAMES: &[&str] = GENERATED_JSON_NAMES;

/// The entry of [`JSON_NAMES`] equal to `name`.
pub fn json_name(name: &str) -> Option<&'static str> {
    JSON_NAMES.binary_search(&name).ok().map(|i| JSON_NAMES[i])
}

/// True when `column` of `table` holds JSON text that is decoded into the object or array it
/// encodes. Known tables: their [`TableInfo::json_columns`]; unknown tables: `AdditionalFields`.
/// Free-text columns are never JSON columns, whatever their values look like.
pub fn is_json_column(table: &str, column: &str) -> bool {
    match lookup(table) {
        Some(info) => info.is_json_column(column),
        None => column == ADDITIONAL_FIELDS,
    }
}

/// A table name: borrowed from the registry for known tables, owned for new ones.
pub type TableName = Cow<'static, str>;

/// Looks a table up by name, case-insensitively.
pub fn lookup(name: &str) -> Option<&'static TableInfo> {
    // Exact case first (every real row): a binary search over the sorted registry.
    match TABLES.binary_search_by(|t| t.name.cmp(name)) {
        Ok(i) => Some(&TABLES[i]),
        Err(_) => TABLES.iter().find(|t| t.name.eq_ignore_ascii_case(name)),
    }
}

/// The table a row belongs to, from its `category` (`AdvancedHunting-<Table>`). Known tables
/// come back with their registry entry; a category without the prefix is used as it is.
pub fn table_from_category(category: &str) -> (TableName, Option<&'static TableInfo>) {
    let name = category.strip_prefix(CATEGORY_PREFIX).unwrap_or(category);
    match lookup(name) {
        Some(info) => (Cow::Borrowed(info.name), Some(info)),
        None => (Cow::Owned(name.to_string()), None),
    }
}

/// The export container of a table: `insights-logs-advancedhunting-<table lower-cased>`.
pub fn container_for(table: &str) -> String {
    format!("{CONTAINER_PREFIX}{}", table.to_ascii_lowercase())
}

/// The table an export container holds, when the container is an export container. Unknown
/// tables come back lower-cased (the container name loses the case).
pub fn table_for_container(container: &str) -> Option<TableName> {
    let lower = container.strip_prefix(CONTAINER_PREFIX)?;
    if lower.is_empty() {
        return None;
    }
    Some(match lookup(lower) {
        Some(info) => Cow::Borrowed(info.name),
        None => Cow::Owned(lower.to_string()),
    })
}

/// The `category` value rows of a table carry.
pub fn category_for(table: &str) -> String {
    format!("{CATEGORY_PREFIX}{table}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_round_trips_container_and_category() {
        assert_eq!(TABLES.len(), 66);
        for info in TABLES {
            let c = container_for(info.name);
            assert_eq!(table_for_container(&c).as_deref(), Some(info.name));
            let (name, found) = table_from_category(&category_for(info.name));
            assert_eq!(name, info.name);
            assert_eq!(found, Some(info));
            assert!(info.sorted_columns.windows(2).all(|w| w[0] < w[1]));
            assert!(info.json_columns.windows(2).all(|w| w[0] < w[1]));
            assert_eq!(info.columns.len(), info.sorted_columns.len());
        }
        assert!(TABLES.windows(2).all(|w| w[0].name < w[1].name));
        let columns: usize = TABLES.iter().map(|t| t.columns.len()).sum();
        assert_eq!(columns, 1620);
    }

    #[test]
    fn unknown_tables_pass_through() {
        let (name, info) = table_from_category("AdvancedHunting-BrandNewTable");
        assert_eq!(name, "BrandNewTable");
        assert!(info.is_none());
        assert_eq!(
            table_for_container("insights-logs-advancedhunting-brandnewtable").as_deref(),
            Some("brandnewtable")
        );
        assert_eq!(table_for_container("other-container"), None);
        assert_eq!(table_for_container(CONTAINER_PREFIX), None);
        assert!(is_json_column("BrandNewTable", "AdditionalFields"));
        assert!(!is_json_column("BrandNewTable", "Categories"));
    }

    #[test]
    fn json_names_is_the_union() {
        let mut union: Vec<&str> = TABLES
            .iter()
            .flat_map(|t| t.json_columns.iter().copied())
            .collect();
        union.sort();
        union.dedup();
        assert_eq!(union, JSON_NAMES);
        assert_eq!(json_name("RawEventData"), Some("RawEventData"));
        assert_eq!(json_name("ProcessCommandLine"), None);
    }

    #[test]
    fn json_columns_from_types_and_platform_facts() {
        // String-typed in the docs, JSON text on the wire.
        assert!(is_json_column("devicenetworkinfo", "IPAddresses"));
        assert!(is_json_column("EmailEvents", "AuthenticationDetails"));
        assert!(is_json_column("EmailEvents", "DetectionMethods"));
        assert!(is_json_column("DeviceInfo", "LoggedOnUsers"));
        assert!(is_json_column("AlertInfo", "Categories"));
        // Typed dynamic.
        assert!(is_json_column("CloudAppEvents", "RawEventData"));
        assert!(is_json_column("IdentityLogonEvents", "AdditionalFields"));
        assert!(is_json_column("MessageEvents", "DetectionMethods"));
        // AdditionalFields everywhere, even where the doc lacks it.
        assert!(is_json_column("DeviceImageLoadEvents", "AdditionalFields"));
        // Free text never.
        assert!(!is_json_column("DeviceProcessEvents", "ProcessCommandLine"));
        assert!(!is_json_column("DeviceProcessEvents", "ReportId"));
        let dpe = lookup("DeviceProcessEvents").unwrap();
        assert!(dpe.streams());
        assert!(dpe.documents("ProcessCommandLine"));
        assert!(!dpe.documents("MachineGroup"));
        assert!(!lookup("BehaviorInfo").unwrap().streams());
    }
}
