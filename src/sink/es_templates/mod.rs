//! Index templates for the Elasticsearch / OpenSearch sink, and installing them
//! (`mde-relay setup elasticsearch`, or `RELAY_ES_INSTALL_TEMPLATES=true` at start-up).
//!
//! Without templates the engine maps every field dynamically: the first row of a JSON column
//! (`AdditionalFields`, `RawEventData`, …) fixes the type of each key it has, and the next row
//! whose `AdditionalFields.Size` is text instead of a number fails with
//! `mapper_parsing_exception` (a per-item 400 the sink dead-letters). The templates here map
//!
//! - the envelope of the normalized event (`mde-relay/v1`, docs/schema.md): dates as `date`, ids
//!   and names as `keyword`;
//! - each table's documented columns (`properties.*`) by their type in the published schema
//!   ([`crate::tables`]) where it is fixed: `datetime` → `date`, `long`/`int` → `long`, `real` →
//!   `double`, `bool` → `boolean`, `string`/`guid`/`enum` → `keyword`;
//! - every JSON column as a field that takes any object: `flattened` on Elasticsearch,
//!   `flat_object` on OpenSearch. Both take only an object (or an array of objects) at the
//!   field's root, which is why the sink sends a JSON column value that is not one as
//!   `{"value": …}` ([`wrap_json_columns`]; `RELAY_ES_JSON_OBJECTS`, on by default);
//!
//! with `index.mapping.ignore_malformed` on, so a value the docs type wrongly (the docs lag the
//! wire) is kept in `_source` and left out of the index instead of refusing the event.
//!
//! Layout: component templates `<base>@settings`, `<base>@envelope`, `<base>@<table>` per
//! table, and one composable index template per table (`<index>` with `{table}` filled in,
//! also matching `<index>-*` for rollover names) plus a catch-all for tables the registry does
//! not know. `<base>` is `RELAY_ES_INDEX` without `{table}` (`mde-relay` for the default
//! `mde-relay-{table}`). Installing PUTs each template; doing it again changes nothing.

use super::elasticsearch::{auth_header, EsConfig};
use crate::config::ConfigError;
use crate::tables::{TableInfo, TABLES};
use anyhow::{anyhow, bail, Context};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// `ignore_above` of keyword and flattened fields: longer strings are kept in `_source` but not
/// indexed (Lucene refuses terms over 32766 bytes; 8191 characters of UTF-8 fit).
pub const IGNORE_ABOVE: u32 = 8191;
/// Priority of the per-table index templates (the catch-all has one less).
pub const PRIORITY: u32 = 200;
/// Version in each template's `_meta`, raised when the templates change.
pub const TEMPLATES_VERSION: u32 = 1;

/// The search engine behind the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Elasticsearch (7.8 or later: composable templates, `flattened`).
    Elasticsearch,
    /// OpenSearch (2.7 or later: `flat_object`).
    OpenSearch,
}

impl Flavor {
    /// The field type that takes any JSON object.
    pub fn object_type(self) -> Value {
        match self {
            Flavor::Elasticsearch => json!({"type": "flattened", "ignore_above": IGNORE_ABOVE}),
            // flat_object has no ignore_above (2.19): a leaf string over 32766 bytes is refused.
            Flavor::OpenSearch => json!({"type": "flat_object"}),
        }
    }
}

/// What `GET /` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    /// Elasticsearch or OpenSearch.
    pub flavor: Flavor,
    /// `version.number`, e.g. `2.19.6`.
    pub version: String,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.flavor {
            Flavor::Elasticsearch => "Elasticsearch",
            Flavor::OpenSearch => "OpenSearch",
        };
        write!(f, "{name} {}", self.version)
    }
}

impl Engine {
    /// Reads the root endpoint's answer; refuses versions without what the templates need.
    pub fn from_root(root: &Value) -> anyhow::Result<Engine> {
        let v = &root["version"];
        let version = v["number"]
            .as_str()
            .ok_or_else(|| anyhow!("the root endpoint's answer has no version.number: {root}"))?
            .to_string();
        let flavor = if v["distribution"].as_str() == Some("opensearch") {
            Flavor::OpenSearch
        } else {
            Flavor::Elasticsearch
        };
        let mut parts = version
            .split(['.', '-'])
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        let e = Engine { flavor, version };
        match flavor {
            Flavor::OpenSearch if (major, minor) < (2, 7) => {
                bail!("{e} has no flat_object field type (OpenSearch 2.7 or later is needed)")
            }
            Flavor::Elasticsearch if (major, minor) < (7, 8) => {
                bail!(
                    "{e} has no composable index templates (Elasticsearch 7.8 or later is needed)"
                )
            }
            _ => Ok(e),
        }
    }
}

/// The templates for one index setting and engine.
#[derive(Debug, Clone)]
pub struct Templates {
    /// `(name, body)` for `PUT _component_template/<name>`.
    pub components: Vec<(String, Value)>,
    /// `(name, body)` for `PUT _index_template/<name>`.
    pub index_templates: Vec<(String, Value)>,
}

/// Options of the index templates.
#[derive(Debug, Clone, Default)]
pub struct TemplateOptions {
    /// Make the indices data streams (`"data_stream": {}`).
    pub data_stream: bool,
    /// Lifecycle: an ILM policy name (`index.lifecycle.name`, Elasticsearch); on OpenSearch an
    /// ISM policy picks its indices by its own `ism_template` (docs/sinks.md).
    pub ilm_policy: Option<String>,
}

/// The mapping of a documented column type, where the type is fixed.
fn column_type(ty: &str) -> Option<Value> {
    Some(match ty {
        "string" | "guid" | "enum" => json!({"type": "keyword", "ignore_above": IGNORE_ABOVE}),
        "datetime" => json!({"type": "date"}),
        "long" | "int" | "integer" => json!({"type": "long"}),
        "real" => json!({"type": "double"}),
        "bool" | "boolean" | "nullable bool" => json!({"type": "boolean"}),
        _ => return None,
    })
}

/// The `properties.*` mappings of one table.
fn table_properties(t: &TableInfo, flavor: Flavor) -> Map<String, Value> {
    let mut m = Map::new();
    for c in t.columns {
        if t.is_json_column(c.name) {
            m.insert(c.name.to_string(), flavor.object_type());
        } else if let Some(v) = column_type(c.ty) {
            m.insert(c.name.to_string(), v);
        }
    }
    // JSON columns seen on the wire but not in the table's doc.
    for j in t.json_columns {
        m.entry(j.to_string())
            .or_insert_with(|| flavor.object_type());
    }
    m
}

/// The `properties.*` mappings for an index holding every table: a column keeps its mapping
/// where every table that has it agrees, and is left to dynamic mapping otherwise.
fn union_properties(flavor: Flavor) -> Map<String, Value> {
    let mut seen: BTreeMap<String, Option<Value>> = BTreeMap::new();
    for t in TABLES {
        for (k, v) in table_properties(t, flavor) {
            seen.entry(k)
                .and_modify(|old| {
                    if old.as_ref() != Some(&v) {
                        *old = None
                    }
                })
                .or_insert(Some(v));
        }
    }
    seen.into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

fn properties_component(props: Map<String, Value>) -> Value {
    json!({
        "template": {"mappings": {"properties": {"properties": {
            "type": "object",
            "properties": props,
        }}}},
        "_meta": meta(),
    })
}

fn meta() -> Value {
    json!({"managed_by": "mde-relay", "version": TEMPLATES_VERSION})
}

/// The envelope of the normalized event (docs/schema.md).
fn envelope() -> Value {
    let kw = json!({"type": "keyword", "ignore_above": IGNORE_ABOVE});
    let date = json!({"type": "date"});
    json!({
        "template": {"mappings": {
            "dynamic_templates": [
                // Undocumented columns and new envelope fields: strings as keywords.
                {"strings_as_keywords": {
                    "match_mapping_type": "string",
                    "mapping": kw,
                }}
            ],
            "properties": {
                "@timestamp": date,
                "timestamp": date,
                "exported_at": date,
                "received_at": date,
                "schema": kw,
                "id": kw,
                "table": kw,
                "tenant_id": kw,
                "device_id": kw,
                "device_name": kw,
                "machine_group": kw,
                "action_type": kw,
                "report_id": kw,
                "source": {"properties": {
                    "container": kw,
                    "blob": kw,
                    "offset": {"type": "long"},
                }},
            }
        }},
        "_meta": meta(),
    })
}

fn settings(opts: &TemplateOptions) -> Value {
    let mut s = json!({
        // A value the docs type wrongly stays in _source instead of refusing the event.
        "index.mapping.ignore_malformed": true,
        // Documented columns plus drift; the JSON columns are one field each.
        "index.mapping.total_fields.limit": 2000,
    });
    if let Some(p) = &opts.ilm_policy {
        s["index.lifecycle.name"] = json!(p);
    }
    json!({"template": {"settings": s}, "_meta": meta()})
}

/// The base name of the templates: `index` without `{table}` and the separators around it.
pub fn base_name(index: &str) -> String {
    let b = index
        .replace("{table}", "")
        .trim_matches(['-', '_', '.'])
        .to_string();
    if b.is_empty() {
        "mde-relay".into()
    } else {
        b
    }
}

/// Builds the templates for `index` (`RELAY_ES_INDEX`) on `flavor`.
pub fn templates(index: &str, flavor: Flavor, opts: &TemplateOptions) -> Templates {
    let base = base_name(index);
    let mut components = vec![
        (format!("{base}@settings"), settings(opts)),
        (format!("{base}@envelope"), envelope()),
    ];
    let mut index_templates = Vec::new();
    let index_template = |patterns: Vec<String>, composed_of: Vec<String>, priority: u32| {
        let mut t = json!({
            "index_patterns": patterns,
            "composed_of": composed_of,
            "priority": priority,
            "_meta": meta(),
        });
        if opts.data_stream {
            t["data_stream"] = json!({});
        }
        t
    };
    let common = [format!("{base}@settings"), format!("{base}@envelope")];
    if index.contains("{table}") {
        for t in TABLES {
            let lower = t.name.to_ascii_lowercase();
            let name = index.replace("{table}", &lower);
            let comp = format!("{base}@{lower}");
            components.push((
                comp.clone(),
                properties_component(table_properties(t, flavor)),
            ));
            let mut composed: Vec<String> = common.to_vec();
            composed.push(comp);
            index_templates.push((
                name.clone(),
                index_template(vec![name.clone(), format!("{name}-*")], composed, PRIORITY),
            ));
        }
        // Tables the registry does not know: their only JSON column is AdditionalFields.
        let comp = format!("{base}@unknown-table");
        let mut props = Map::new();
        props.insert(
            crate::tables::ADDITIONAL_FIELDS.into(),
            flavor.object_type(),
        );
        components.push((comp.clone(), properties_component(props)));
        let mut composed: Vec<String> = common.to_vec();
        composed.push(comp);
        index_templates.push((
            format!("{base}@unknown-table"),
            index_template(vec![index.replace("{table}", "*")], composed, PRIORITY - 1),
        ));
    } else {
        let comp = format!("{base}@all-tables");
        components.push((comp.clone(), properties_component(union_properties(flavor))));
        let mut composed: Vec<String> = common.to_vec();
        composed.push(comp);
        index_templates.push((
            index.to_string(),
            index_template(
                vec![index.to_string(), format!("{index}-*")],
                composed,
                PRIORITY,
            ),
        ));
    }
    Templates {
        components,
        index_templates,
    }
}

/// The event `doc` (with `@timestamp` in front) with each JSON column of `table` whose value is
/// not an object, null, or an array of objects wrapped as `{"value": …}`; `None` when no
/// value needs it (the common case: the event is sent as it is). `flattened` (Elasticsearch)
/// and `flat_object` (OpenSearch) refuse a string, a number or an array of strings at their
/// root, and the export has all three in JSON columns (arrays of addresses, text that is not
/// JSON). The rewritten event's keys come out sorted.
pub(crate) fn wrap_json_columns(table: &str, doc: &[u8]) -> Option<Vec<u8>> {
    use serde_json::value::RawValue;
    use std::collections::BTreeMap;
    let info = crate::tables::lookup(table);
    let is_json = |c: &str| match info {
        Some(i) => i.is_json_column(c),
        None => c == crate::tables::ADDITIONAL_FIELDS,
    };
    // A quick look first (no parse): most events have no JSON column value to wrap.
    let cols: &[&str] = match info {
        Some(i) => i.json_columns,
        None => &[crate::tables::ADDITIONAL_FIELDS],
    };
    if !cols.iter().any(|c| may_need_wrap(doc, c)) {
        return None;
    }
    let mut top: BTreeMap<String, &RawValue> = serde_json::from_slice(doc).ok()?;
    let props: BTreeMap<String, &RawValue> =
        serde_json::from_str(top.get("properties")?.get()).ok()?;
    let fits = |v: &RawValue| {
        let t = v.get().trim_start();
        match t.as_bytes().first() {
            Some(b'{') | Some(b'n') => true,
            Some(b'[') => serde_json::from_str::<Vec<&RawValue>>(t).is_ok_and(|items| {
                items.iter().all(|i| {
                    matches!(
                        i.get().trim_start().as_bytes().first(),
                        Some(b'{') | Some(b'n')
                    )
                })
            }),
            _ => false,
        }
    };
    if props.iter().all(|(k, v)| !is_json(k) || fits(v)) {
        return None;
    }
    let mut wrapped: BTreeMap<&str, Box<RawValue>> = BTreeMap::new();
    for (k, v) in &props {
        let raw = if is_json(k) && !fits(v) {
            RawValue::from_string(format!("{{\"value\":{}}}", v.get())).ok()?
        } else {
            (*v).to_owned()
        };
        wrapped.insert(k, raw);
    }
    let props = serde_json::value::to_raw_value(&wrapped).ok()?;
    top.insert("properties".into(), &props);
    serde_json::to_vec(&top).ok()
}

/// True unless every `"column":` key in `doc` is followed by an object, null, or an array of
/// objects (or the key is absent). A key found elsewhere (nested, or inside a string) can only
/// make this true, which costs a parse, never a wrong answer.
fn may_need_wrap(doc: &[u8], column: &str) -> bool {
    use serde_json::value::RawValue;
    let name = column.as_bytes();
    let skip_ws = |mut i: usize| {
        while doc.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    for at in memchr::memmem::find_iter(doc, name) {
        let end = at + name.len();
        if at == 0 || doc[at - 1] != b'"' || doc.get(end) != Some(&b'"') {
            continue;
        }
        let colon = skip_ws(end + 1);
        if doc.get(colon) != Some(&b':') {
            continue;
        }
        let v = skip_ws(colon + 1);
        match doc.get(v) {
            Some(b'{') | Some(b'n') => {}
            Some(b'[') => {
                let mut items =
                    serde_json::Deserializer::from_slice(&doc[v..]).into_iter::<Vec<&RawValue>>();
                let objects = matches!(items.next(), Some(Ok(list)) if list.iter().all(|i| {
                    matches!(i.get().trim_start().as_bytes().first(), Some(b'{') | Some(b'n'))
                }));
                if !objects {
                    return true;
                }
            }
            _ => return true,
        }
    }
    false
}

mod installer;
pub use installer::{detect, install, install_at_startup, Installed};

#[cfg(test)]
mod tests;
