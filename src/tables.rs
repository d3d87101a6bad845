//! The table registry: every Advanced Hunting table the streaming export is known to write,
//! with its container name, its `category`, and the `dynamic` columns that arrive as JSON text
//! inside a JSON string (platform facts §1).
//!
//! Unknown tables are not an error: [`table_from_category`] derives a name from any
//! `AdvancedHunting-<Table>` category, and an unknown table simply has no dynamic columns, so its
//! rows pass through untouched.

use std::borrow::Cow;

/// Prefix of every export container; the table name (lower-cased) follows it.
pub const CONTAINER_PREFIX: &str = "insights-logs-advancedhunting-";
/// Prefix of every row's `category`; the table name follows it.
pub const CATEGORY_PREFIX: &str = "AdvancedHunting-";

/// What the relay knows about one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableInfo {
    /// Table name as in Advanced Hunting, e.g. `DeviceProcessEvents`.
    pub name: &'static str,
    /// Columns typed `dynamic` that arrive as JSON text inside a JSON string.
    pub dynamic_columns: &'static [&'static str],
}

const fn t(name: &'static str, dynamic_columns: &'static [&'static str]) -> TableInfo {
    TableInfo {
        name,
        dynamic_columns,
    }
}

const AF: &[&str] = &["AdditionalFields"];

/// Every table seen streaming (platform facts §1), sorted by name.
pub static TABLES: &[TableInfo] = &[
    t(
        "AlertEvidence",
        &["AdditionalFields", "AttackTechniques", "Categories"],
    ),
    t("AlertInfo", &["AttackTechniques", "Categories"]),
    t(
        "BehaviorEntities",
        &[
            "AdditionalFields",
            "AttackTechniques",
            "Categories",
            "DataSources",
        ],
    ),
    t(
        "BehaviorInfo",
        &[
            "AdditionalFields",
            "AttackTechniques",
            "Categories",
            "DataSources",
        ],
    ),
    t("CloudAppEvents", &[]),
    t("DeviceEvents", AF),
    t("DeviceFileCertificateInfo", &["CrlDistributionPointUrls"]),
    t("DeviceFileEvents", AF),
    t("DeviceImageLoadEvents", AF),
    t("DeviceInfo", &["AdditionalFields", "LoggedOnUsers"]),
    t("DeviceLogonEvents", AF),
    t("DeviceNetworkEvents", AF),
    t(
        "DeviceNetworkInfo",
        &[
            "ConnectedNetworks",
            "DefaultGateways",
            "DnsAddresses",
            "IPAddresses",
        ],
    ),
    t("DeviceProcessEvents", AF),
    t("DeviceRegistryEvents", AF),
    t("EmailAttachmentInfo", &[]),
    t("EmailEvents", &["AuthenticationDetails"]),
    t("EmailPostDeliveryEvents", &[]),
    t("EmailUrlInfo", &[]),
    t("IdentityDirectoryEvents", &[]),
    t("IdentityInfo", &[]),
    t("IdentityLogonEvents", &[]),
    t("IdentityQueryEvents", &[]),
    t("MessageEvents", &[]),
    t("MessageUrlInfo", &[]),
    t("UrlClickEvents", &["UrlChain"]),
];

/// Every column name that is a JSON-in-string `dynamic` column in some table (the union of
/// [`TableInfo::dynamic_columns`]): the row parser notes these while it walks `properties`, before
/// it necessarily knows the table (envelope key order varies).
pub static DYNAMIC_NAMES: &[&str] = &[
    "AdditionalFields",
    "AttackTechniques",
    "AuthenticationDetails",
    "Categories",
    "ConnectedNetworks",
    "CrlDistributionPointUrls",
    "DataSources",
    "DefaultGateways",
    "DnsAddresses",
    "IPAddresses",
    "LoggedOnUsers",
    "UrlChain",
];

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

/// Whether `column` of `table` holds JSON text inside a JSON string (platform facts §1, "Type
/// quirks"): the table's registered dynamic columns, and `AdditionalFields` on tables the
/// registry does not know yet.
pub fn is_json_column(table: &str, column: &str) -> bool {
    match lookup(table) {
        Some(info) => info.dynamic_columns.contains(&column),
        None => column == "AdditionalFields",
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
        assert_eq!(TABLES.len(), 26);
        for info in TABLES {
            let c = container_for(info.name);
            assert_eq!(table_for_container(&c).as_deref(), Some(info.name));
            let (name, found) = table_from_category(&category_for(info.name));
            assert_eq!(name, info.name);
            assert_eq!(found, Some(info));
        }
        assert!(TABLES.windows(2).all(|w| w[0].name < w[1].name));
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
    }

    #[test]
    fn dynamic_names_is_the_union() {
        let mut union: Vec<&str> = TABLES
            .iter()
            .flat_map(|t| t.dynamic_columns.iter().copied())
            .collect();
        union.sort();
        union.dedup();
        assert_eq!(union, DYNAMIC_NAMES);
    }

    #[test]
    fn dynamic_columns_known() {
        let dn = lookup("devicenetworkinfo").unwrap();
        assert!(dn.dynamic_columns.contains(&"IPAddresses"));
        assert!(lookup("EmailEvents")
            .unwrap()
            .dynamic_columns
            .contains(&"AuthenticationDetails"));
        assert!(lookup("CloudAppEvents").unwrap().dynamic_columns.is_empty());
    }
}
