//! The event under construction: the OCSF object so far, the row's columns not placed yet, and
//! where each placed column went, so that an object which ends up violating its OCSF
//! constraint can be taken out again with its columns returned to `unmapped` (see
//! [`super::valid`]).

use super::path::{index_of, parent_in, segments, slot_in, Steps};
pub(crate) use super::props::Props;
use super::time_ms;
use super::value::{Obj, Value};
use super::write::{write_str, write_value};
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
    /// [`key_hash`] of `column`.
    pub hash: u32,
    /// Where the last `.` of `path` is (0 when there is none).
    pub split: u16,
}

/// Shorthand for table rows.
pub(crate) const fn f(column: &'static str, path: &'static str, conv: Conv) -> Field {
    Field {
        column,
        path,
        conv,
        hash: key_hash(column),
        split: last_dot(path),
    }
}

/// The position of the last `.` of `path`, 0 when there is none.
const fn last_dot(path: &str) -> u16 {
    let b = path.as_bytes();
    let mut i = b.len();
    while i > 0 {
        i -= 1;
        if b[i] == b'.' {
            return i as u16;
        }
    }
    0
}

/// A hash of a column name for [`Props`]' table: its length and first and last 8 bytes
/// (names of one row differ there; a collision only costs a probe).
pub(crate) const fn key_hash(s: &str) -> u32 {
    let b = s.as_bytes();
    let n = b.len();
    let mut head: u64 = 0;
    let mut tail: u64 = 0;
    let mut i = 0;
    while i < 8 && i < n {
        head |= (b[i] as u64) << (8 * i);
        tail |= (b[n - 1 - i] as u64) << (8 * i);
        i += 1;
    }
    let h = (head.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ tail.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ n as u64)
        .wrapping_mul(0x1656_67B1_9E37_79F9);
    (h >> 32) as u32
}

/// An OCSF class: its uid, caption, category and category caption.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Class {
    pub uid: u32,
    pub name: &'static str,
    pub category_uid: u32,
    pub category_name: &'static str,
}

/// Where a placed value came from: a column of the row (its index in [`Props`]), or a key of
/// its `AdditionalFields` (with the value, which left the decoded object).
#[derive(Debug, Clone, PartialEq)]
enum Origin<'a> {
    Column(usize),
    Additional(String, Value<'a>),
}

/// An event being built: the OCSF object so far and the row's columns not placed yet.
pub(crate) struct Event<'a> {
    /// The OCSF event.
    pub obj: Obj<'a>,
    /// The row's columns still unplaced (JSON-in-string columns already decoded).
    pub props: Props<'a>,
    /// The relay's event id, as hex.
    pub id: &'a str,
    taken: Vec<Origin<'a>>,
    /// (attribute path, index into `taken`) for every placement.
    placed: Vec<(Cow<'static, str>, usize)>,
    /// [`Event::apply`]'s list of what it placed, kept for its allocation.
    scratch: Vec<(usize, &'static str)>,
}

impl<'a> Event<'a> {
    /// An event with nothing placed yet.
    pub fn empty(props: Props<'a>, id: &'a str) -> Event<'a> {
        Event {
            obj: Obj::new(),
            props,
            id,
            taken: Vec::with_capacity(64),
            placed: Vec::with_capacity(64),
            scratch: Vec::with_capacity(32),
        }
    }

    /// Places every column of `fields` that converts; placed columns leave `props`.
    pub fn apply(&mut self, fields: &[Field]) {
        // (column index, path) of what was placed; columns leave `props` only at the end, as
        // a table may place one column twice (a name and a file name).
        let mut placed = std::mem::take(&mut self.scratch);
        placed.clear();
        let Event { obj, props, .. } = self;
        // Where the object the last field went into is (member and item indices from the
        // root): consecutive fields of a table mostly share it (`actor.process.file.…`), so
        // its path is walked by name once for them.
        let mut parent: Option<(&'static str, Steps)> = None;
        for fl in fields {
            let Some(ci) = props.index_h(fl.column, fl.hash) else {
                continue;
            };
            let Some(out) = convert(&props.cols[ci].1, fl.conv) else {
                continue;
            };
            let (dir, leaf) = fl.path.split_at(usize::from(fl.split));
            let leaf = leaf.strip_prefix('.').unwrap_or(leaf);
            let slot: &mut Value<'a> = if dir.is_empty() || index_of(leaf).is_some() {
                parent = None;
                slot_in(obj, fl.path, Cow::Borrowed)
            } else {
                let p = match &parent {
                    Some((d, steps)) if *d == dir => steps.follow(obj),
                    _ => {
                        let mut steps = Steps::default();
                        let p = parent_in(obj, dir, &mut steps);
                        // A way too deep to record is walked again next time.
                        parent = (steps.len > 0).then_some((dir, steps));
                        p
                    }
                };
                p.entry_with(leaf, Cow::Borrowed)
            };
            match fl.conv {
                Conv::Hash(alg) => {
                    let fp = Value::Object(Obj::from_sorted(vec![
                        (Cow::Borrowed("algorithm_id"), alg.into()),
                        (Cow::Borrowed("value"), out),
                    ]));
                    match slot {
                        Value::Array(a) => a.push(fp),
                        slot => *slot = Value::Array(vec![fp]),
                    }
                }
                Conv::Group => {
                    *slot = Value::Array(vec![Value::Object(Obj::from_sorted(vec![(
                        Cow::Borrowed("name"),
                        out,
                    )]))])
                }
                Conv::StrList => *slot = Value::Array(vec![out]),
                _ => *slot = out,
            }
            placed.push((ci, fl.path));
        }
        self.take_placed(&placed);
        self.scratch = placed;
    }

    fn take_placed(&mut self, placed: &[(usize, &'static str)]) {
        for &(ci, path) in placed {
            let idx = if self.props.cols[ci].2 {
                self.props.cols[ci].2 = false;
                self.taken.push(Origin::Column(ci));
                self.taken.len() - 1
            } else {
                // Placed twice by this table: the same value.
                match self
                    .taken
                    .iter()
                    .rposition(|t| matches!(t, Origin::Column(c) if *c == ci))
                {
                    Some(i) => i,
                    None => continue,
                }
            };
            self.placed.push((Cow::Borrowed(path), idx));
        }
    }

    /// Takes a column out of the row, recording that it went to `path` (so it comes back if
    /// the object at `path` is dropped). `None` when the row does not have it.
    pub fn take_col(
        &mut self,
        column: &str,
        path: impl Into<Cow<'static, str>>,
    ) -> Option<Value<'a>> {
        let ci = self.props.index(column)?;
        self.props.cols[ci].2 = false;
        self.record(Origin::Column(ci), path.into());
        Some(self.props.cols[ci].1.clone())
    }

    /// Records that a value of the row now lives at `path`.
    fn record(&mut self, origin: Origin<'a>, path: Cow<'static, str>) {
        self.taken.push(origin);
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
    ) -> Option<Value<'a>> {
        let ai = self.props.index("AdditionalFields")?;
        let Value::Object(af) = &mut self.props.cols[ai].1 else {
            return None;
        };
        let v = af.remove(key)?;
        if af.is_empty() {
            self.props.cols[ai].2 = false;
        }
        self.record(Origin::Additional(key.to_string(), v.clone()), path.into());
        Some(v)
    }

    /// A key of the decoded `AdditionalFields` object (not consumed).
    pub fn additional(&self, key: &str) -> Option<&Value<'a>> {
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
            match &self.taken[i] {
                Origin::Column(ci) => self.props.cols[*ci].2 = true,
                Origin::Additional(k, value) => {
                    let ai = match self.props.index_any("AdditionalFields") {
                        Some(ai) => {
                            let c = &mut self.props.cols[ai];
                            if !c.2 {
                                // Left when it became empty: back as a new object.
                                c.1 = Value::Object(Obj::new());
                                c.2 = true;
                            }
                            ai
                        }
                        None => self
                            .props
                            .insert("AdditionalFields", Value::Object(Obj::new())),
                    };
                    if let Value::Object(o) = &mut self.props.cols[ai].1 {
                        if !o.contains_key(k) {
                            o.insert(k.clone(), value.clone());
                        }
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
    pub fn set(&mut self, path: &'static str, v: Value<'a>) {
        *self.slot(path) = v;
    }

    /// [`Event::set`] for a path made at run time.
    pub fn set_owned(&mut self, path: &str, v: Value<'a>) {
        *slot_in(&mut self.obj, path, |s| Cow::Owned(s.to_string())) = v;
    }

    /// The value at a dotted path, when there is one.
    pub fn get(&self, path: &str) -> Option<&Value<'a>> {
        let mut segs = segments(path);
        let mut cur = self.obj.get(segs.next()?)?;
        for seg in segs {
            cur = match index_of(seg) {
                Some(i) => cur.as_array()?.get(i)?,
                None => cur.as_object()?.get(seg)?,
            };
        }
        Some(cur)
    }

    /// The value at a dotted path, mutably.
    pub fn get_mut(&mut self, path: &str) -> Option<&mut Value<'a>> {
        let mut segs = segments(path);
        let mut cur = self.obj.get_mut(segs.next()?)?;
        for seg in segs {
            cur = match index_of(seg) {
                Some(i) => cur.as_array_mut()?.get_mut(i)?,
                None => cur.as_object_mut()?.get_mut(seg)?,
            };
        }
        Some(cur)
    }

    /// Whether an object exists at `path` and holds at least one of `keys`.
    pub fn has_any(&self, path: &str, keys: &[&str]) -> bool {
        self.get(path)
            .and_then(Value::as_object)
            .is_some_and(|o| keys.iter().any(|k| o.contains_key(k)))
    }

    fn slot(&mut self, path: &'static str) -> &mut Value<'a> {
        slot_in(&mut self.obj, path, Cow::Borrowed)
    }

    /// Sets class, category, activity and the derived `type_uid`/`type_name`, and severity.
    pub fn classify(&mut self, class: Class, activity_id: u32, activity: &str, severity_id: u32) {
        let o = &mut self.obj;
        o.insert("class_uid", class.uid.into());
        o.insert("class_name", class.name.into());
        o.insert("category_uid", class.category_uid.into());
        o.insert("category_name", class.category_name.into());
        o.insert("activity_id", activity_id.into());
        o.insert("activity_name", activity.to_string().into());
        o.insert(
            "type_uid",
            (u64::from(class.uid) * 100 + u64::from(activity_id)).into(),
        );
        o.insert("type_name", format!("{}: {activity}", class.name).into());
        o.insert("severity_id", severity_id.into());
        o.insert("severity", severity_caption(severity_id).into());
    }

    /// Sets `status_id` and its caption.
    pub fn status(&mut self, status_id: u32) {
        let caption = match status_id {
            1 => "Success",
            2 => "Failure",
            99 => "Other",
            _ => "Unknown",
        };
        self.obj.insert("status_id", status_id.into());
        self.obj.insert("status", caption.into());
    }

    /// Writes the finished event as JSON: what is left of the row goes to `unmapped` (among
    /// the members in key order, as `serde_json` would write the object).
    pub fn write(&self, out: &mut Vec<u8>) {
        let with_unmapped = !self.props.is_empty();
        out.push(b'{');
        let mut first = true;
        let mut sep = |out: &mut Vec<u8>| {
            if !first {
                out.push(b',');
            }
            first = false;
        };
        let mut pending = with_unmapped;
        for (k, v) in self.obj.iter() {
            if pending && k >= "unmapped" {
                pending = false;
                sep(out);
                out.extend_from_slice(b"\"unmapped\":");
                self.props.write(out);
                if k == "unmapped" {
                    // Replaced by the row's columns, as an insert into the map would.
                    continue;
                }
            }
            sep(out);
            write_str(out, k);
            out.push(b':');
            write_value(out, v);
        }
        if pending {
            sep(out);
            out.extend_from_slice(b"\"unmapped\":");
            self.props.write(out);
        }
        out.push(b'}');
    }

    /// The finished event as a `serde_json::Value` (tests and [`super::build`]).
    pub fn to_json(&self) -> serde_json::Value {
        let mut obj = self.obj.clone();
        if !self.props.is_empty() {
            obj.insert("unmapped", Value::Object(self.props.to_obj()));
        }
        Value::Object(obj).to_json()
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
fn int_of(v: &Value<'_>) -> Option<i64> {
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
pub(crate) fn convert<'a>(v: &Value<'a>, conv: Conv) -> Option<Value<'a>> {
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
            Value::Number(n) => Some(Value::String(Cow::Owned(n.to_string()))),
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
