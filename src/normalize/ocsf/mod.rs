//! OCSF output (`--format ocsf`, `RELAY_FORMAT=ocsf`): one row becomes one event of the Open
//! Cybersecurity Schema Framework, version [`OCSF_VERSION`]. `docs/ocsf.md` documents the mapping
//! field by field.
//!
//! The mapping is data: every class family has a table of [`Field`]s (column → OCSF attribute
//! path, with a conversion) in its own module — [`system`] (process, file, module, script,
//! registry), [`network`] (network, DNS), [`iam`] (authentication), [`findings`] (detection) —
//! and a few lines of code for what a table cannot say (activity from `ActionType`, direction,
//! enum captions). Whatever a class has no place for stays in `unmapped`, keyed by its column
//! name: no column is dropped.
//!
//! Unlike the other formats this one builds a `serde_json::Value` per row: the event is a tree
//! whose shape depends on the row, and building it through `Value` keeps the mapping readable.
//! `docs/benchmarks.md` has the cost next to `normalized`. A class whose required attributes a
//! row cannot fill (a process row without any process column, say) is not emitted half-empty:
//! the row becomes a Base Event with everything under `unmapped`, so every event validates.

mod findings;
mod iam;
mod network;
mod system;

use super::{normalize_timestamp, unix_seconds};
use crate::event::EventId;
use crate::rows::Row;
use crate::tables;
use serde_json::{Map, Value};

/// OCSF schema version of every event (`metadata.version`).
pub const OCSF_VERSION: &str = "1.5.0";
/// `metadata.product.name`.
pub const PRODUCT_NAME: &str = "Microsoft Defender for Endpoint";
/// `metadata.product.vendor_name`.
pub const VENDOR_NAME: &str = "Microsoft";

/// How a column's value becomes an OCSF value. A value that does not convert (null, `""`, the
/// wrong type) is not placed and its column stays in `unmapped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conv {
    /// A non-empty string (numbers are written as their decimal text).
    Str,
    /// An integer, or a string holding one (the export writes ports as strings at times).
    Int,
    /// An ISO-8601 timestamp → milliseconds since the epoch (`timestamp_t`).
    Time,
    /// A hash: appended to the `fingerprint` array at the path with this `algorithm_id`.
    Hash(u8),
    /// A group name: the path becomes `[{"name": value}]`.
    Group,
}

/// One row of a mapping table: `column` goes to the attribute at `path` (dot-separated; a
/// numeric segment is an array index).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub column: &'static str,
    pub path: &'static str,
    pub conv: Conv,
}

/// Shorthand for table rows.
pub(crate) const fn f(column: &'static str, path: &'static str, conv: Conv) -> Field {
    Field { column, path, conv }
}

/// Columns every row shares (besides `Timestamp`, which [`Event::new`] handles).
const COMMON: &[Field] = &[
    f("DeviceId", "device.uid", Conv::Str),
    f("DeviceName", "device.hostname", Conv::Str),
    f("MachineGroup", "device.groups", Conv::Group),
    f("ActionType", "metadata.event_code", Conv::Str),
];

/// An OCSF class: its uid, caption, category and category caption.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Class {
    pub uid: u32,
    pub name: &'static str,
    pub category_uid: u32,
    pub category_name: &'static str,
}

pub(crate) const BASE_EVENT: Class = Class {
    uid: 0,
    name: "Base Event",
    category_uid: 0,
    category_name: "Uncategorized",
};

/// An event being built: the OCSF object so far and the row's columns not placed yet.
pub(crate) struct Event {
    /// The OCSF event.
    pub obj: Map<String, Value>,
    /// The row's columns still unplaced (JSON-in-string columns already decoded).
    pub props: Map<String, Value>,
    /// The relay's event id, as hex.
    pub id: String,
}

impl Event {
    fn new(row: &Row<'_>, table: &str, id: &EventId) -> Option<Event> {
        let mut props: Map<String, Value> = serde_json::from_slice(row.properties).ok()?;
        // Decode JSON-in-string columns so `unmapped` carries them as JSON and the class
        // mappings can read inside `AdditionalFields`.
        for (name, value) in props.iter_mut() {
            if let Value::String(text) = value {
                if tables::is_json_column(table, name) {
                    let t = text.trim_start();
                    if t.starts_with('{') || t.starts_with('[') {
                        if let Ok(v) = serde_json::from_str::<Value>(t) {
                            *value = v;
                        }
                    }
                }
            }
        }
        let id = String::from_utf8_lossy(&id.0).into_owned();
        let mut ev = Event {
            obj: Map::new(),
            props,
            id,
        };
        let mut metadata = Map::new();
        metadata.insert("version".into(), OCSF_VERSION.into());
        metadata.insert(
            "product".into(),
            serde_json::json!({"name": PRODUCT_NAME, "vendor_name": VENDOR_NAME}),
        );
        metadata.insert("uid".into(), ev.id.clone().into());
        metadata.insert("log_name".into(), table.into());
        // `device` and `actor` come from the host profile on most classes.
        metadata.insert("profiles".into(), serde_json::json!(["host"]));
        if let Some(t) = row.tenant_id.as_deref() {
            metadata.insert("tenant_uid".into(), t.into());
        }
        if let Some(ms) = row.time.as_deref().and_then(time_ms) {
            metadata.insert("logged_time".into(), ms.into());
        }
        ev.obj.insert("metadata".into(), Value::Object(metadata));
        // `time` is required: the event's Timestamp, else the export time, else 0.
        let ts = match ev.props.get("Timestamp") {
            Some(Value::String(s)) => time_ms(s).map(|ms| (ms, s.clone())),
            _ => None,
        };
        let time = match ts {
            Some((ms, text)) => {
                ev.props.remove("Timestamp");
                ev.set("metadata.original_time", text.into());
                ms
            }
            None => row.time.as_deref().and_then(time_ms).unwrap_or(0),
        };
        ev.obj.insert("time".into(), time.into());
        ev.apply(COMMON);
        Some(ev)
    }

    /// Places every column of `fields` that converts; placed columns leave `props`.
    pub fn apply(&mut self, fields: &[Field]) {
        let mut placed: Vec<&'static str> = Vec::new();
        for fl in fields {
            let Some(v) = self.props.get(fl.column) else {
                continue;
            };
            let Some(out) = convert(v, fl.conv) else {
                continue;
            };
            match fl.conv {
                Conv::Hash(alg) => {
                    let fp = serde_json::json!({"algorithm_id": alg, "value": out});
                    match self.slot(fl.path) {
                        Value::Array(a) => a.push(fp),
                        slot => *slot = Value::Array(vec![fp]),
                    }
                }
                Conv::Group => self.set(fl.path, serde_json::json!([{ "name": out }])),
                _ => self.set(fl.path, out),
            }
            placed.push(fl.column);
        }
        for c in placed {
            self.props.remove(c);
        }
    }

    /// The string value of a column (not consumed).
    pub fn col_str(&self, column: &str) -> Option<&str> {
        self.props
            .get(column)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Removes and returns a key of the decoded `AdditionalFields` object (the column itself
    /// stays in `unmapped` with what is left, or leaves when it becomes empty).
    pub fn take_additional(&mut self, key: &str) -> Option<Value> {
        let Some(Value::Object(af)) = self.props.get_mut("AdditionalFields") else {
            return None;
        };
        let v = af.remove(key)?;
        if af.is_empty() {
            self.props.remove("AdditionalFields");
        }
        Some(v)
    }

    /// A key of the decoded `AdditionalFields` object (not consumed).
    pub fn additional(&self, key: &str) -> Option<&Value> {
        self.props.get("AdditionalFields")?.as_object()?.get(key)
    }

    /// Sets the value at a dotted path, creating objects (and arrays, for numeric segments).
    pub fn set(&mut self, path: &str, v: Value) {
        *self.slot(path) = v;
    }

    /// The value at a dotted path, when there is one.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let mut cur = self.obj.get(path.split('.').next()?)?;
        for seg in path.split('.').skip(1) {
            cur = match seg.parse::<usize>() {
                Ok(i) => cur.as_array()?.get(i)?,
                Err(_) => cur.as_object()?.get(seg)?,
            };
        }
        Some(cur)
    }

    /// The value at a dotted path, mutably.
    pub fn get_mut(&mut self, path: &str) -> Option<&mut Value> {
        let mut segs = path.split('.');
        let mut cur = self.obj.get_mut(segs.next()?)?;
        for seg in segs {
            cur = match seg.parse::<usize>() {
                Ok(i) => cur.as_array_mut()?.get_mut(i)?,
                Err(_) => cur.as_object_mut()?.get_mut(seg)?,
            };
        }
        Some(cur)
    }

    /// Whether an object exists at `path` and holds at least one of `keys`.
    pub fn has_any(&self, path: &str, keys: &[&str]) -> bool {
        self.get(path)
            .and_then(Value::as_object)
            .is_some_and(|o| keys.iter().any(|k| o.contains_key(*k)))
    }

    fn slot(&mut self, path: &str) -> &mut Value {
        let mut segs = path.split('.');
        let first = segs.next().unwrap_or(path);
        let mut cur = self.obj.entry(first).or_insert(Value::Null);
        for seg in segs {
            cur = match seg.parse::<usize>() {
                Ok(i) => {
                    if !cur.is_array() {
                        *cur = Value::Array(Vec::new());
                    }
                    let a = cur.as_array_mut().expect("just made an array");
                    while a.len() <= i {
                        a.push(Value::Null);
                    }
                    &mut a[i]
                }
                Err(_) => {
                    if !cur.is_object() {
                        *cur = Value::Object(Map::new());
                    }
                    cur.as_object_mut()
                        .expect("just made an object")
                        .entry(seg)
                        .or_insert(Value::Null)
                }
            };
        }
        cur
    }

    /// Sets class, category, activity and the derived `type_uid`/`type_name`, and severity.
    pub fn classify(&mut self, class: Class, activity_id: u32, activity: &str, severity_id: u32) {
        let o = &mut self.obj;
        o.insert("class_uid".into(), class.uid.into());
        o.insert("class_name".into(), class.name.into());
        o.insert("category_uid".into(), class.category_uid.into());
        o.insert("category_name".into(), class.category_name.into());
        o.insert("activity_id".into(), activity_id.into());
        o.insert("activity_name".into(), activity.into());
        o.insert(
            "type_uid".into(),
            (u64::from(class.uid) * 100 + u64::from(activity_id)).into(),
        );
        o.insert(
            "type_name".into(),
            format!("{}: {activity}", class.name).into(),
        );
        o.insert("severity_id".into(), severity_id.into());
        o.insert("severity".into(), severity_caption(severity_id).into());
    }

    /// Sets `status_id` and its caption.
    pub fn status(&mut self, status_id: u32) {
        let caption = match status_id {
            1 => "Success",
            2 => "Failure",
            99 => "Other",
            _ => "Unknown",
        };
        self.obj.insert("status_id".into(), status_id.into());
        self.obj.insert("status".into(), caption.into());
    }

    /// Fixes up what tables cannot: every `file` object gets `type_id` 1 (Regular File) and a
    /// `name` (from its path when the name column was empty); processes get their `name`.
    /// Returns false when a `file` has neither name nor path (the class cannot be emitted).
    fn finish_objects(v: &mut Value) -> bool {
        let Value::Object(o) = v else {
            return match v {
                Value::Array(a) => a.iter_mut().all(Self::finish_objects),
                _ => true,
            };
        };
        let mut ok = true;
        for (k, child) in o.iter_mut() {
            if k == "unmapped" {
                continue;
            }
            if k == "file" || k == "file_result" {
                if let Value::Object(file) = child {
                    if !file.contains_key("name") {
                        match file.get("path").and_then(Value::as_str).map(basename) {
                            Some(n) if !n.is_empty() => {
                                file.insert("name".into(), n.into());
                            }
                            _ => ok = false,
                        }
                    }
                    file.entry("type_id").or_insert(1.into());
                }
            }
            ok &= Self::finish_objects(child);
        }
        ok
    }

    /// The finished event: what is left of the row goes to `unmapped`.
    fn into_value(mut self) -> Value {
        if !self.props.is_empty() {
            self.obj.insert(
                "unmapped".into(),
                Value::Object(std::mem::take(&mut self.props)),
            );
        }
        Value::Object(self.obj)
    }
}

/// The last component of a Windows or POSIX path.
fn basename(p: &str) -> &str {
    p.rsplit(['\\', '/']).next().unwrap_or(p)
}

fn severity_caption(id: u32) -> &'static str {
    match id {
        1 => "Informational",
        2 => "Low",
        3 => "Medium",
        4 => "High",
        5 => "Critical",
        6 => "Fatal",
        99 => "Other",
        _ => "Unknown",
    }
}

/// Milliseconds since the epoch of an export timestamp.
pub(crate) fn time_ms(s: &str) -> Option<i64> {
    let norm = normalize_timestamp(s)?;
    unix_seconds(&norm).map(|secs| (secs * 1000.0).round() as i64)
}

/// Converts one column value; `None` leaves the column unplaced.
fn convert(v: &Value, conv: Conv) -> Option<Value> {
    match conv {
        Conv::Str | Conv::Hash(_) | Conv::Group => match v {
            Value::String(s) if !s.is_empty() => Some(Value::String(s.clone())),
            Value::Number(n) => Some(Value::String(n.to_string())),
            _ => None,
        },
        Conv::Int => match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(v.clone()),
            Value::String(s) => s.trim().parse::<i64>().ok().map(Value::from),
            _ => None,
        },
        Conv::Time => v.as_str().and_then(time_ms).map(Value::from),
    }
}

/// What a class mapping decided: emit the event, or fall back to a Base Event.
pub(crate) type Mapped = Option<Event>;

/// Builds the OCSF event of `row` and writes it as JSON into `out`.
pub(crate) fn write_event(row: &Row<'_>, table: &str, id: &EventId, out: &mut Vec<u8>) {
    let value = build(row, table, id);
    serde_json::to_writer(&mut *out, &value).expect("writing to a Vec cannot fail");
}

/// Builds the OCSF event of `row` as a JSON value.
pub fn build(row: &Row<'_>, table: &str, id: &EventId) -> Value {
    let Some(ev) = Event::new(row, table, id) else {
        return base_event_of(row, table, id);
    };
    let action = action(&ev);
    let mapped = match table {
        "DeviceProcessEvents" => system::process_activity(ev),
        "DeviceFileEvents" => system::file_activity(ev),
        "DeviceImageLoadEvents" => system::module_activity(ev),
        "DeviceRegistryEvents" => system::registry_activity(ev),
        "DeviceNetworkEvents" => network::network_activity(ev),
        "DeviceLogonEvents" => iam::authentication(ev),
        "DeviceEvents" => match action.as_deref() {
            Some("PowerShellCommand") => system::script_activity(ev),
            Some("DnsQueryResponse") => network::dns_activity(ev),
            Some("AntivirusDetection") => findings::detection_finding(ev),
            _ => Some(base_event(ev)),
        },
        _ => Some(base_event(ev)),
    };
    match mapped.and_then(|mut ev| {
        let mut obj = Value::Object(std::mem::take(&mut ev.obj));
        let ok = Event::finish_objects(&mut obj);
        ev.obj = match obj {
            Value::Object(o) => o,
            _ => unreachable!("an object stays an object"),
        };
        ok.then_some(ev)
    }) {
        Some(ev) => ev.into_value(),
        None => base_event_of(row, table, id),
    }
}

/// A Base Event: common fields placed, the rest of the row under `unmapped`.
fn base_event(mut ev: Event) -> Event {
    // The host profile's `device` only makes sense when the row names a device.
    if !ev.has_any("device", &["uid", "hostname"]) {
        ev.obj.remove("device");
    } else {
        ev.set("device.type_id", 0.into());
    }
    let action = ev.get("metadata.event_code").and_then(Value::as_str);
    let (id, name) = match action {
        Some(a) => (99, a.to_string()),
        None => (0, "Unknown".to_string()),
    };
    ev.classify(BASE_EVENT, id, &name, 1);
    ev
}

/// The fallback for a row a class mapping could not fill: a Base Event from scratch.
fn base_event_of(row: &Row<'_>, table: &str, id: &EventId) -> Value {
    let ev = Event::new(row, table, id).unwrap_or_else(|| {
        // Unreachable in practice: the row parser only passes rows whose `properties` is an
        // object. Still an event rather than a panic, with the bytes kept.
        let mut props = Map::new();
        props.insert(
            "properties".into(),
            String::from_utf8_lossy(row.properties).into_owned().into(),
        );
        let mut obj = Map::new();
        obj.insert(
            "metadata".into(),
            serde_json::json!({"version": OCSF_VERSION, "product": {"name": PRODUCT_NAME, "vendor_name": VENDOR_NAME}, "uid": String::from_utf8_lossy(&id.0), "log_name": table}),
        );
        obj.insert("time".into(), 0.into());
        Event {
            obj,
            props,
            id: String::from_utf8_lossy(&id.0).into_owned(),
        }
    });
    base_event(ev).into_value()
}

/// Places the `InitiatingProcess*` block as `actor.process` (every Device table but
/// DeviceInfo-like ones carries it).
pub(crate) const INITIATING: &[Field] = &[
    f("InitiatingProcessFileName", "actor.process.name", Conv::Str),
    f(
        "InitiatingProcessFileName",
        "actor.process.file.name",
        Conv::Str,
    ),
    f(
        "InitiatingProcessFolderPath",
        "actor.process.file.path",
        Conv::Str,
    ),
    f(
        "InitiatingProcessMD5",
        "actor.process.file.hashes",
        Conv::Hash(1),
    ),
    f(
        "InitiatingProcessSHA1",
        "actor.process.file.hashes",
        Conv::Hash(2),
    ),
    f(
        "InitiatingProcessSHA256",
        "actor.process.file.hashes",
        Conv::Hash(3),
    ),
    f(
        "InitiatingProcessFileSize",
        "actor.process.file.size",
        Conv::Int,
    ),
    f(
        "InitiatingProcessVersionInfoCompanyName",
        "actor.process.file.company_name",
        Conv::Str,
    ),
    f(
        "InitiatingProcessVersionInfoProductName",
        "actor.process.file.product.name",
        Conv::Str,
    ),
    f(
        "InitiatingProcessVersionInfoProductVersion",
        "actor.process.file.product.version",
        Conv::Str,
    ),
    f(
        "InitiatingProcessVersionInfoFileVersion",
        "actor.process.file.version",
        Conv::Str,
    ),
    f(
        "InitiatingProcessVersionInfoFileDescription",
        "actor.process.file.desc",
        Conv::Str,
    ),
    f(
        "InitiatingProcessVersionInfoOriginalFileName",
        "actor.process.file.internal_name",
        Conv::Str,
    ),
    f("InitiatingProcessId", "actor.process.pid", Conv::Int),
    f("InitiatingProcessUniqueId", "actor.process.uid", Conv::Str),
    f(
        "InitiatingProcessCommandLine",
        "actor.process.cmd_line",
        Conv::Str,
    ),
    f(
        "InitiatingProcessCreationTime",
        "actor.process.created_time",
        Conv::Time,
    ),
    f(
        "InitiatingProcessAccountName",
        "actor.process.user.name",
        Conv::Str,
    ),
    f(
        "InitiatingProcessAccountDomain",
        "actor.process.user.domain",
        Conv::Str,
    ),
    f(
        "InitiatingProcessAccountSid",
        "actor.process.user.uid",
        Conv::Str,
    ),
    f(
        "InitiatingProcessAccountObjectId",
        "actor.process.user.uid_alt",
        Conv::Str,
    ),
    f(
        "InitiatingProcessAccountUpn",
        "actor.process.user.email_addr",
        Conv::Str,
    ),
    f(
        "InitiatingProcessLogonId",
        "actor.process.session.uid",
        Conv::Str,
    ),
    f(
        "InitiatingProcessParentId",
        "actor.process.parent_process.pid",
        Conv::Int,
    ),
    f(
        "InitiatingProcessParentFileName",
        "actor.process.parent_process.name",
        Conv::Str,
    ),
    f(
        "InitiatingProcessParentFileName",
        "actor.process.parent_process.file.name",
        Conv::Str,
    ),
    f(
        "InitiatingProcessParentCreationTime",
        "actor.process.parent_process.created_time",
        Conv::Time,
    ),
];

/// Applies [`INITIATING`] and the integrity level when the row identifies the initiating
/// process (OCSF's process needs a pid, uid, command line or name); returns whether it did.
/// When it does not, nothing is placed and the columns stay in `unmapped`.
pub(crate) fn initiating_actor(ev: &mut Event) -> bool {
    const IDENTIFYING: &[(&str, Conv)] = &[
        ("InitiatingProcessId", Conv::Int),
        ("InitiatingProcessUniqueId", Conv::Str),
        ("InitiatingProcessCommandLine", Conv::Str),
        ("InitiatingProcessFileName", Conv::Str),
    ];
    let identified = IDENTIFYING
        .iter()
        .any(|(c, conv)| ev.props.get(*c).and_then(|v| convert(v, *conv)).is_some());
    if !identified {
        return false;
    }
    integrity(ev, "InitiatingProcessIntegrityLevel", "actor.process");
    ev.apply(INITIATING);
    prune_user(ev, "actor.process.user");
    true
}

/// A `user` object needs a name, uid or account: without one it goes back to `unmapped`
/// (only its optional columns were placed).
pub(crate) fn prune_user(ev: &mut Event, path: &str) {
    let Some(Value::Object(u)) = ev.get(path).cloned() else {
        return;
    };
    if u.contains_key("name") || u.contains_key("uid") {
        return;
    }
    // Put the placed columns back so nothing is lost.
    let back: &[(&str, &str)] = &[
        ("domain", "AccountDomain"),
        ("uid_alt", "AccountObjectId"),
        ("email_addr", "AccountUpn"),
    ];
    let prefix = if path.starts_with("actor.process") {
        "InitiatingProcess"
    } else {
        ""
    };
    for (attr, col) in back {
        if let Some(v) = u.get(*attr) {
            ev.props.insert(format!("{prefix}{col}"), v.clone());
        }
    }
    remove_path(ev, path);
}

/// Removes the value at a dotted path of objects.
pub(crate) fn remove_path(ev: &mut Event, path: &str) {
    match path.rsplit_once('.') {
        None => {
            ev.obj.remove(path);
        }
        Some((parent, last)) => {
            if let Some(Value::Object(p)) = ev.get_mut(parent) {
                p.remove(last);
            }
        }
    }
}

/// Maps an MDE integrity level column to `<path>.integrity_id` and `<path>.integrity`.
pub(crate) fn integrity(ev: &mut Event, column: &str, path: &str) {
    let Some(level) = ev.col_str(column) else {
        return;
    };
    let (id, caption) = match level.to_ascii_lowercase().as_str() {
        "untrusted" => (1, "Untrusted"),
        "low" => (2, "Low"),
        "medium" => (3, "Medium"),
        "high" => (4, "High"),
        "system" => (5, "System"),
        "protected" => (6, "Protected"),
        _ => (99, level),
    };
    let caption = caption.to_string();
    ev.set(&format!("{path}.integrity_id"), id.into());
    ev.set(&format!("{path}.integrity"), caption.into());
    ev.props.remove(column);
}

/// The activity for an `ActionType` from a class's table: (`activity_id`, caption), or 99
/// Other captioned with the ActionType itself.
pub(crate) fn activity_of(
    action: Option<&str>,
    table: &[(&str, u32, &'static str)],
) -> (u32, String) {
    match action {
        Some(a) => table
            .iter()
            .find(|(t, _, _)| *t == a)
            .map(|(_, id, c)| (*id, (*c).to_string()))
            .unwrap_or((99, a.to_string())),
        None => (0, "Unknown".to_string()),
    }
}

/// The row's ActionType (already placed as `metadata.event_code`).
pub(crate) fn action(ev: &Event) -> Option<String> {
    ev.get("metadata.event_code")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Ensures `device` carries its required `type_id` (0, Unknown: an event row does not say
/// what kind of device it came from).
pub(crate) fn device(ev: &mut Event) {
    ev.set("device.type_id", 0.into());
}

#[cfg(test)]
mod tests;
