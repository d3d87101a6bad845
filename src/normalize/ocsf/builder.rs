//! The event under construction: the OCSF object so far, the row's columns not placed yet, and
//! where each placed column went, so that an object which ends up violating its OCSF
//! constraint can be taken out again with its columns returned to `unmapped` (see
//! [`super::valid`]).

use super::time_ms;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// How a column's value becomes an OCSF value. A value that does not convert (null, `""`, the
/// wrong type, out of the attribute's range) is not placed and its column stays in `unmapped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conv {
    /// A non-empty string (numbers are written as their decimal text).
    Str,
    /// A signed 64-bit integer (`integer_t`, `long_t`), or a string holding one (the export
    /// writes numbers as strings at times).
    Int,
    /// A TCP/UDP port (`port_t`, 0–65535), as a number or a string holding one.
    Port,
    /// An IPv4 or IPv6 address (`ip_t`; an IPv6 zone suffix `%…` is allowed). Placeholders
    /// such as `-` are not addresses.
    Ip,
    /// An ISO-8601 timestamp → milliseconds since the epoch (`timestamp_t`).
    Time,
    /// A hash (hex digits, `file_hash_t`): appended to the `fingerprint` array at the path with
    /// this `algorithm_id`.
    Hash(u8),
    /// A group name: the path becomes `[{"name": value}]`.
    Group,
    /// A string that OCSF holds in a string array: the path becomes `[value]`.
    StrList,
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

/// An OCSF class: its uid, caption, category and category caption.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Class {
    pub uid: u32,
    pub name: &'static str,
    pub category_uid: u32,
    pub category_name: &'static str,
}

/// Where a placed value came from: a column of the row, or a key of its `AdditionalFields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    Column(Cow<'static, str>),
    Additional(String),
}

/// A value taken out of the row, kept until the event is finished so it can go back.
struct Taken {
    origin: Origin,
    value: Value,
}

/// An event being built: the OCSF object so far and the row's columns not placed yet.
pub(crate) struct Event {
    /// The OCSF event.
    pub obj: Map<String, Value>,
    /// The row's columns still unplaced (JSON-in-string columns already decoded).
    pub props: Map<String, Value>,
    /// The relay's event id, as hex.
    pub id: String,
    taken: Vec<Taken>,
    /// (attribute path, index into `taken`) for every placement.
    placed: Vec<(Cow<'static, str>, usize)>,
}

impl Event {
    /// An event with nothing placed yet.
    pub fn empty(props: Map<String, Value>, id: String) -> Event {
        Event {
            obj: Map::new(),
            props,
            id,
            taken: Vec::new(),
            placed: Vec::new(),
        }
    }

    /// Places every column of `fields` that converts; placed columns leave `props`.
    pub fn apply(&mut self, fields: &[Field]) {
        let mut placed: Vec<(&'static str, &'static str)> = Vec::new();
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
                Conv::StrList => self.set(fl.path, Value::Array(vec![out])),
                _ => self.set(fl.path, out),
            }
            placed.push((fl.column, fl.path));
        }
        for (column, path) in placed {
            let idx = match self.props.remove(column) {
                Some(value) => {
                    self.taken.push(Taken {
                        origin: Origin::Column(Cow::Borrowed(column)),
                        value,
                    });
                    self.taken.len() - 1
                }
                // Placed twice by this table (a name and a file name): the same value.
                None => match self
                    .taken
                    .iter()
                    .rposition(|t| matches!(&t.origin, Origin::Column(c) if c == column))
                {
                    Some(i) => i,
                    None => continue,
                },
            };
            self.placed.push((Cow::Borrowed(path), idx));
        }
    }

    /// Takes a column out of the row, recording that it went to `path` (so it comes back if
    /// the object at `path` is dropped). `None` when the row does not have it.
    pub fn take_col(&mut self, column: &str, path: impl Into<Cow<'static, str>>) -> Option<Value> {
        let value = self.props.remove(column)?;
        self.record(
            Origin::Column(Cow::Owned(column.to_string())),
            value.clone(),
            path.into(),
        );
        Some(value)
    }

    /// Records that a value of the row now lives at `path`.
    fn record(&mut self, origin: Origin, value: Value, path: Cow<'static, str>) {
        self.taken.push(Taken { origin, value });
        let idx = self.taken.len() - 1;
        self.placed.push((path, idx));
    }

    /// The string value of a column (not consumed).
    pub fn col_str(&self, column: &str) -> Option<&str> {
        self.props
            .get(column)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Removes and returns a key of the decoded `AdditionalFields` object, recording that it
    /// went to `path` (the column itself stays in `unmapped` with what is left, or leaves when
    /// it becomes empty).
    pub fn take_additional(
        &mut self,
        key: &str,
        path: impl Into<Cow<'static, str>>,
    ) -> Option<Value> {
        let Some(Value::Object(af)) = self.props.get_mut("AdditionalFields") else {
            return None;
        };
        let v = af.remove(key)?;
        if af.is_empty() {
            self.props.remove("AdditionalFields");
        }
        self.record(Origin::Additional(key.to_string()), v.clone(), path.into());
        Some(v)
    }

    /// A key of the decoded `AdditionalFields` object (not consumed).
    pub fn additional(&self, key: &str) -> Option<&Value> {
        self.props.get("AdditionalFields")?.as_object()?.get(key)
    }

    /// Gives back to the row every value placed at `prefix` or below that is not also placed
    /// somewhere that stays.
    pub fn restore(&mut self, prefix: &str) {
        let under = |p: &str| {
            p == prefix
                || (p.len() > prefix.len()
                    && p.starts_with(prefix)
                    && p.as_bytes()[prefix.len()] == b'.')
        };
        let mut gone: Vec<usize> = Vec::new();
        self.placed.retain(|(p, i)| {
            if under(p) {
                gone.push(*i);
                false
            } else {
                true
            }
        });
        gone.sort_unstable();
        gone.dedup();
        for i in gone {
            if self.placed.iter().any(|(_, j)| *j == i) {
                continue;
            }
            let Taken { origin, value } = &self.taken[i];
            match origin {
                Origin::Column(c) => {
                    self.props
                        .entry(c.to_string())
                        .or_insert_with(|| value.clone());
                }
                Origin::Additional(k) => {
                    let af = self
                        .props
                        .entry("AdditionalFields")
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(o) = af {
                        o.entry(k.clone()).or_insert_with(|| value.clone());
                    }
                }
            }
        }
    }

    /// Removes the value at `path` and gives its columns back to the row.
    pub fn drop_path(&mut self, path: &str) {
        match path.rsplit_once('.') {
            None => {
                self.obj.remove(path);
            }
            Some((parent, last)) => match self.get_mut(parent) {
                Some(Value::Object(p)) => {
                    p.remove(last);
                }
                Some(Value::Array(a)) => {
                    if let Ok(i) = last.parse::<usize>() {
                        if i < a.len() {
                            a[i] = Value::Null;
                        }
                    }
                }
                _ => {}
            },
        }
        self.restore(path);
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

    /// The finished event: what is left of the row goes to `unmapped`.
    pub fn into_value(mut self) -> Value {
        if !self.props.is_empty() {
            self.obj.insert(
                "unmapped".into(),
                Value::Object(std::mem::take(&mut self.props)),
            );
        }
        Value::Object(self.obj)
    }
}

pub(crate) fn severity_caption(id: u32) -> &'static str {
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

/// An integer of a column: a JSON integer within `i64`, or a string holding one.
fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

/// Whether `s` is an IP address as `ip_t` defines it (IPv4 or IPv6, optional `%zone`).
pub(crate) fn is_ip(s: &str) -> bool {
    let addr = s.split_once('%').map_or(s, |(a, _)| a);
    addr.parse::<std::net::IpAddr>().is_ok()
}

/// Converts one column value; `None` leaves the column unplaced.
pub(crate) fn convert(v: &Value, conv: Conv) -> Option<Value> {
    match conv {
        // `file_hash_t` is hex digits: a placeholder (`-`) is not a hash.
        Conv::Hash(_) => match v {
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(Value::String(s.clone()))
            }
            _ => None,
        },
        Conv::Str | Conv::Group | Conv::StrList => match v {
            Value::String(s) if !s.is_empty() => Some(Value::String(s.clone())),
            Value::Number(n) => Some(Value::String(n.to_string())),
            _ => None,
        },
        Conv::Int => int_of(v).map(Value::from),
        Conv::Port => int_of(v)
            .filter(|p| (0..=65535).contains(p))
            .map(Value::from),
        Conv::Ip => match v {
            Value::String(s) if is_ip(s) => Some(Value::String(s.clone())),
            _ => None,
        },
        Conv::Time => v.as_str().and_then(time_ms).map(Value::from),
    }
}
