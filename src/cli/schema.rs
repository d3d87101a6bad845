//! `mde-relay schema`: prints the table registry (built from Microsoft's published Advanced
//! Hunting schema, see [`crate::tables`]) as a table of tables, one table's columns, or JSON.

use crate::tables::{self, TableInfo};
use clap::{Args, ValueEnum};
use serde_json::json;
use std::io::Write;
use std::process::ExitCode;

/// How `schema` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum SchemaFormat {
    /// Aligned columns for reading.
    #[default]
    Text,
    /// `{"tables":[{"name":..,"streams":..,"columns":[{"name":..,"type":..}],"json_columns":[..]}]}`.
    Json,
}

/// Arguments of `schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Show only this table (case-insensitive), with every column.
    table: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SchemaFormat::Text)]
    format: SchemaFormat,
}

/// Runs `schema`.
pub fn run(a: SchemaArgs) -> anyhow::Result<ExitCode> {
    let selected: Vec<&TableInfo> = match &a.table {
        Some(name) => match tables::lookup(name) {
            Some(t) => vec![t],
            None => anyhow::bail!(
                "no table `{name}` in the registry ({} tables from the published schema; \
                 `mde-relay schema` lists them). Rows of unknown tables are still forwarded, \
                 with AdditionalFields decoded, and reported as schema drift.",
                tables::TABLES.len()
            ),
        },
        None => tables::TABLES.iter().collect(),
    };
    let mut out = std::io::stdout().lock();
    match a.format {
        SchemaFormat::Json => {
            serde_json::to_writer(&mut out, &document(&selected))?;
            writeln!(out)?;
        }
        SchemaFormat::Text if a.table.is_some() => write_table(&mut out, selected[0])?,
        SchemaFormat::Text => write_tables(&mut out, &selected)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The machine-readable registry document.
pub fn document(selected: &[&TableInfo]) -> serde_json::Value {
    let tables: Vec<serde_json::Value> = selected
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "streams": t.streams(),
                "streaming_status": t.streaming,
                "doc_date": t.doc_date,
                "columns": t.columns.iter().map(|c| json!({"name": c.name, "type": c.ty})).collect::<Vec<_>>(),
                "json_columns": t.json_columns,
            })
        })
        .collect();
    json!({ "source": tables::SCHEMA_SOURCE, "tables": tables })
}

fn write_tables(out: &mut impl Write, selected: &[&TableInfo]) -> std::io::Result<()> {
    let w = selected
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        out,
        "{:<w$}  {:>7}  {:<7}  JSON COLUMNS",
        "TABLE", "COLUMNS", "STREAMS"
    )?;
    for t in selected {
        let streams = if t.streams() { "yes" } else { "no" };
        writeln!(
            out,
            "{:<w$}  {:>7}  {:<7}  {}",
            t.name,
            t.columns.len(),
            streams,
            t.json_columns.join(", ")
        )?;
    }
    writeln!(
        out,
        "\n{} tables, {} columns. Source: {}.",
        selected.len(),
        selected.iter().map(|t| t.columns.len()).sum::<usize>(),
        tables::SCHEMA_SOURCE
    )
}

fn write_table(out: &mut impl Write, t: &TableInfo) -> std::io::Result<()> {
    let streaming = t.streaming.unwrap_or("not listed");
    writeln!(
        out,
        "{} ({} columns; streaming API: {streaming}; doc dated {})",
        t.name,
        t.columns.len(),
        t.doc_date
    )?;
    let w = t
        .columns
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    writeln!(out, "{:<w$}  {:<13}  JSON", "COLUMN", "TYPE")?;
    for c in t.columns {
        let json = if t.is_json_column(c.name) { "yes" } else { "" };
        writeln!(out, "{:<w$}  {:<13}  {json}", c.name, c.ty)?;
    }
    let extra: Vec<&str> = t
        .json_columns
        .iter()
        .copied()
        .filter(|c| !t.documents(c))
        .collect();
    if !extra.is_empty() {
        writeln!(
            out,
            "Also decoded when present (JSON text on the wire, not in this doc): {}",
            extra.join(", ")
        )?;
    }
    Ok(())
}
