//! Running a checked transform on one row.
//!
//! The row stays what the parser made of it: `properties` as raw bytes. A `where` reads only
//! the columns it names: pivot columns (`ActionType`, `DeviceId`, ...) from the ranges the row
//! parser already noted, any other column from one shallow scan of `properties` (keys and
//! value extents, no decoding, done once per row and only when needed), and a value is decoded
//! only when an expression reads it. A row that only passes `where`s is forwarded as it was:
//! nothing is re-serialized. The first operator that changes columns (`project*`, `extend`)
//! turns the row into a list of columns whose untouched values stay raw byte slices; the new
//! `properties` are written once at the end.

use super::check::{ColRef, Func, Node, PItem, Pat, Step};
use super::parse::{BinOp, Key, ListOp};
use super::value::{self, compare, equals, equals_ci, Value};
use crate::tables::{TableInfo, ADDITIONAL_FIELDS};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::ops::Range;

/// What a transform made of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Forward the row unchanged.
    Keep,
    /// A `where` dropped it.
    Drop,
    /// Forward the row with the new `properties` left in [`Scratch::props`].
    Rewrite,
}

/// Buffers reused across rows.
#[derive(Debug, Default)]
pub struct Scratch {
    /// Members of `properties`: key (without quotes) and value byte ranges.
    members: Vec<Member>,
    /// The rewritten `properties` after [`Outcome::Rewrite`].
    pub props: Vec<u8>,
}

/// The operators that run on one table's rows (its own rules, then the `*` rules).
#[derive(Debug, Clone, Default)]
pub struct Program {
    /// The operators in order.
    pub steps: Vec<Step>,
}

impl Program {
    /// Runs the program on a row's `properties` (`pivots`: the parser's ranges of
    /// [`crate::rows::PIVOT_COLUMNS`]) of a table (`info`, `None` when unknown).
    pub fn run(
        &self,
        props: &[u8],
        pivots: &[Option<Range<usize>>; 5],
        info: Option<&'static TableInfo>,
        scratch: &mut Scratch,
    ) -> Outcome {
        scratch.members.clear();
        let mut row = RowCtx {
            props,
            pivots,
            info,
            members: &mut scratch.members,
            scan_at: Some(1),
            cols: None,
            now: None,
        };
        for step in &self.steps {
            if !row.step(step) {
                return Outcome::Drop;
            }
        }
        match row.cols.take() {
            None => Outcome::Keep,
            Some(cols) => {
                let out = &mut scratch.props;
                out.clear();
                out.push(b'{');
                for (i, c) in cols.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    crate::normalize::write_str(out, &c.name);
                    out.push(b':');
                    match &c.cell {
                        Cell::Raw(raw) => out.extend_from_slice(raw),
                        Cell::Val(v) => v.write_json(out),
                    }
                }
                out.push(b'}');
                Outcome::Rewrite
            }
        }
    }
}

/// A column of a reshaped row.
#[derive(Debug, Clone)]
struct Col<'r> {
    name: Cow<'r, str>,
    cell: Cell<'r>,
}

/// A column's value: the row's raw JSON, or computed.
#[derive(Debug, Clone)]
enum Cell<'r> {
    Raw(&'r [u8]),
    Val(Value<'r>),
}

struct RowCtx<'r, 'm> {
    props: &'r [u8],
    pivots: &'r [Option<Range<usize>>; 5],
    info: Option<&'static TableInfo>,
    members: &'m mut Vec<Member>,
    /// Where the scan of `properties` goes on (`None` once it reached the end).
    scan_at: Option<usize>,
    /// Set once an operator changed the columns.
    cols: Option<Vec<Col<'r>>>,
    now: Option<i64>,
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// Index of the closing quote of the string opening at `open`.
fn string_end(b: &[u8], open: usize) -> usize {
    let mut i = open + 1;
    loop {
        match memchr::memchr2(b'"', b'\\', &b[i.min(b.len())..]) {
            Some(j) if b[i + j] == b'\\' => i += j + 2,
            Some(j) => return i + j,
            None => return b.len(),
        }
    }
}

/// End (exclusive) of the JSON value starting at `i` (text the row parser already accepted).
fn value_end(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'"') => string_end(b, i) + 1,
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => j = string_end(b, j),
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            b.len()
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            j
        }
    }
}

/// A member of `properties`: key (without quotes) and value byte ranges.
type Member = (Range<usize>, Range<usize>);

/// The member of the object `b` starting at or after `i` (just past `{` or a previous value):
/// its key (without quotes) and value ranges, and where the next one starts.
fn next_member(b: &[u8], i: usize) -> Option<(Member, usize)> {
    let mut i = skip_ws(b, i);
    if b.get(i) == Some(&b',') {
        i = skip_ws(b, i + 1);
    }
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let ke = string_end(b, i);
    let key = i + 1..ke;
    i = skip_ws(b, ke + 1);
    i = skip_ws(b, i + 1);
    let ve = value_end(b, i);
    Some(((key, i..ve), ve))
}

/// The members of the object `b` (keys without their quotes).
#[cfg(test)]
fn scan(b: &[u8], out: &mut Vec<Member>) {
    let mut i = 1;
    while let Some((m, next)) = next_member(b, i) {
        out.push(m);
        i = next;
    }
}

/// A raw key as a name (escapes resolved when there are any).
fn key_name(raw: &[u8]) -> Cow<'_, str> {
    let s = std::str::from_utf8(raw).unwrap_or("");
    if memchr::memchr(b'\\', raw).is_none() {
        return Cow::Borrowed(s);
    }
    serde_json::from_str::<String>(&format!("\"{s}\"")).map_or(Cow::Borrowed(s), Cow::Owned)
}

fn truthy(v: &Value<'_>) -> bool {
    matches!(v, Value::Bool(true))
}

impl<'r> RowCtx<'r, '_> {
    fn is_json(&self, name: &str) -> bool {
        match self.info {
            Some(i) => i.is_json_column(name),
            None => name == ADDITIONAL_FIELDS,
        }
    }

    /// Scans on until the member named `want` (returned), or to the end (`want` = `None`).
    /// Members already seen are kept, so a row is scanned at most once whatever it is asked.
    fn scan_for(&mut self, want: Option<&str>) -> Option<usize> {
        let props = self.props;
        let matches = |k: &Range<usize>, want: &str| {
            let raw = &props[k.clone()];
            raw == want.as_bytes()
                || (memchr::memchr(b'\\', raw).is_some() && key_name(raw) == want)
        };
        if let Some(w) = want {
            if let Some(i) = self.members.iter().position(|(k, _)| matches(k, w)) {
                return Some(i);
            }
        }
        while let Some(at) = self.scan_at {
            match next_member(props, at) {
                Some((m, next)) => {
                    self.scan_at = Some(next);
                    let hit = want.is_some_and(|w| matches(&m.0, w));
                    self.members.push(m);
                    if hit {
                        return Some(self.members.len() - 1);
                    }
                }
                None => self.scan_at = None,
            }
        }
        None
    }

    fn column(&mut self, c: &ColRef) -> Value<'r> {
        if let Some(cols) = &self.cols {
            return match cols.iter().find(|x| *x.name == *c.name) {
                Some(Col {
                    cell: Cell::Raw(raw),
                    name,
                }) => Value::from_raw(raw, self.is_json(name)),
                Some(Col {
                    cell: Cell::Val(v), ..
                }) => v.clone(),
                None => Value::Null,
            };
        }
        let props = self.props;
        if let Some(p) = c.pivot {
            return match &self.pivots[p as usize] {
                Some(r) => Value::from_raw(&props[r.clone()], false),
                None => Value::Null,
            };
        }
        match self.scan_for(Some(&*c.name)) {
            Some(i) => {
                let v = self.members[i].1.clone();
                Value::from_raw(&props[v], self.is_json(&c.name))
            }
            None => Value::Null,
        }
    }

    fn materialize(&mut self) -> &mut Vec<Col<'r>> {
        if self.cols.is_none() {
            self.scan_for(None);
            let props = self.props;
            let cols = self
                .members
                .iter()
                .map(|(k, v)| Col {
                    name: key_name(&props[k.clone()]),
                    cell: Cell::Raw(&props[v.clone()]),
                })
                .collect();
            self.cols = Some(cols);
        }
        self.cols.as_mut().expect("set above")
    }

    /// Runs one operator; false when the row is dropped.
    fn step<'p>(&mut self, step: &'p Step) -> bool
    where
        'p: 'r,
    {
        match step {
            Step::Where(cond) => return truthy(&self.eval(cond)),
            Step::Project(items) => {
                let values: Vec<Option<Value<'r>>> = items
                    .iter()
                    .map(|i| match i {
                        PItem::Assign(_, e) => Some(self.eval(e)),
                        PItem::Pat(_) => None,
                    })
                    .collect();
                let old = std::mem::take(self.materialize());
                let mut new: Vec<Col<'r>> = Vec::with_capacity(items.len());
                for (item, v) in items.iter().zip(values) {
                    match (item, v) {
                        (PItem::Assign(n, _), Some(v)) => new.push(Col {
                            name: Cow::Owned(n.to_string()),
                            cell: Cell::Val(v),
                        }),
                        (PItem::Pat(Pat::Exact(n)), _) => {
                            if new.iter().any(|c| *c.name == **n) {
                                continue;
                            }
                            new.push(match old.iter().find(|c| *c.name == **n) {
                                Some(c) => c.clone(),
                                None => Col {
                                    name: Cow::Owned(n.to_string()),
                                    cell: Cell::Val(Value::Null),
                                },
                            });
                        }
                        (PItem::Pat(p), _) => {
                            for c in &old {
                                if p.matches(&c.name) && !new.iter().any(|x| x.name == c.name) {
                                    new.push(c.clone());
                                }
                            }
                        }
                        (PItem::Assign(..), None) => {}
                    }
                }
                self.cols = Some(new);
            }
            Step::Away(pats) => self
                .materialize()
                .retain(|c| !pats.iter().any(|p| p.matches(&c.name))),
            Step::Keep(pats) => self
                .materialize()
                .retain(|c| pats.iter().any(|p| p.matches(&c.name))),
            Step::Rename(pairs) => {
                let cols = self.materialize();
                for (new, old) in pairs {
                    if let Some(i) = cols.iter().position(|c| *c.name == **old) {
                        cols.retain(|c| *c.name != **new || *c.name == **old);
                        let i = cols.iter().position(|c| *c.name == **old).unwrap_or(i);
                        cols[i].name = Cow::Owned(new.to_string());
                    }
                }
            }
            Step::Extend(items) => {
                self.materialize();
                for (name, e) in items {
                    let v = self.eval(e);
                    let cols = self.cols.as_mut().expect("materialized");
                    match cols.iter_mut().find(|c| *c.name == **name) {
                        Some(c) => c.cell = Cell::Val(v),
                        None => cols.push(Col {
                            name: Cow::Owned(name.to_string()),
                            cell: Cell::Val(v),
                        }),
                    }
                }
            }
        }
        true
    }

    fn now(&mut self) -> i64 {
        *self
            .now
            .get_or_insert_with(|| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX))
    }

    fn eval<'p>(&mut self, n: &'p Node) -> Value<'r>
    where
        'p: 'r,
    {
        match n {
            Node::Const(v) => v.borrowed(),
            Node::Col(c) => self.column(c),
            Node::Access(base, keys) => access(self.eval(base), keys),
            Node::And(parts) => Value::Bool(parts.iter().all(|p| truthy(&self.eval(p)))),
            Node::Or(parts) => Value::Bool(parts.iter().any(|p| truthy(&self.eval(p)))),
            Node::Bin(op, a, b) => {
                let (a, b) = (self.eval(a), self.eval(b));
                Value::Bool(!a.is_null() && !b.is_null() && binary(*op, &a, &b))
            }
            Node::List(op, lhs, items) => {
                let x = self.eval(lhs);
                if x.is_null() {
                    return Value::Bool(false);
                }
                let test = |y: &Value<'_>| match op {
                    ListOp::In | ListOp::NotIn => equals(&x, y),
                    ListOp::InCi | ListOp::NotInCi => equals_ci(&x, y),
                    ListOp::HasAny => value::has_term(&x.to_text(), &y.to_text()),
                };
                let mut any = false;
                for item in items {
                    let y = self.eval(item);
                    any = match &y {
                        Value::Dyn(d) if d.is_array() => d
                            .as_array()
                            .expect("array")
                            .iter()
                            .any(|e| test(&Value::from_json(e))),
                        y => test(y),
                    };
                    if any {
                        break;
                    }
                }
                Value::Bool(match op {
                    ListOp::NotIn | ListOp::NotInCi => !any,
                    _ => any,
                })
            }
            Node::Between(neg, x, lo, hi) => {
                let (x, lo, hi) = (self.eval(x), self.eval(lo), self.eval(hi));
                match (compare(&x, &lo), compare(&x, &hi)) {
                    (Some(a), Some(b)) => {
                        let inside = a != Ordering::Less && b != Ordering::Greater;
                        Value::Bool(inside != *neg)
                    }
                    _ => Value::Bool(false),
                }
            }
            Node::Regex(x, re) => {
                let x = self.eval(x);
                Value::Bool(!x.is_null() && re.is_match(&x.to_text()))
            }
            Node::Func(f, args) => self.call(*f, args),
        }
    }

    fn call<'p>(&mut self, f: Func, args: &'p [Node]) -> Value<'r>
    where
        'p: 'r,
    {
        let arg = |i: usize, row: &mut Self| args.get(i).map_or(Value::Null, |a| row.eval(a));
        let a = arg(0, self);
        match f {
            Func::ToString => Value::Str(a.into_text()),
            Func::ToInt => a.to_int(),
            Func::ToLower | Func::ToUpper if a.is_null() => Value::Null,
            Func::ToLower => Value::Str(Cow::Owned(a.to_text().to_lowercase())),
            Func::ToUpper => Value::Str(Cow::Owned(a.to_text().to_uppercase())),
            Func::Strlen if a.is_null() => Value::Null,
            Func::Strlen => Value::Int(a.to_text().chars().count() as i64),
            Func::Strcat => {
                let mut s = a.into_text().into_owned();
                for i in 1..args.len() {
                    s.push_str(&arg(i, self).to_text());
                }
                Value::Str(Cow::Owned(s))
            }
            Func::Ago => match a {
                Value::Span(s) => Value::Date(self.now().saturating_sub(s)),
                _ => Value::Null,
            },
            Func::Now => match a {
                Value::Span(s) => Value::Date(self.now().saturating_add(s)),
                Value::Null if args.is_empty() => Value::Date(self.now()),
                _ => Value::Null,
            },
            Func::Not => match a {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Null,
            },
            Func::IsNull => Value::Bool(a.is_null()),
            Func::IsNotNull => Value::Bool(!a.is_null()),
            Func::IsEmpty => Value::Bool(a.is_empty()),
            Func::IsNotEmpty => Value::Bool(!a.is_empty()),
        }
    }
}

/// `x.Key`, `x["Key"]`, `x[0]` on a dynamic value (anything else, or a missing key: null).
fn access<'r>(base: Value<'r>, keys: &[Key]) -> Value<'r> {
    fn step<'v>(v: &'v serde_json::Value, k: &Key) -> Option<&'v serde_json::Value> {
        match k {
            Key::Field(f) => v.get(f.as_str()),
            Key::Index(i) => {
                let a = v.as_array()?;
                let i = if *i < 0 { a.len() as i64 + i } else { *i };
                a.get(usize::try_from(i).ok()?)
            }
        }
    }
    let Value::Dyn(d) = base else {
        return Value::Null;
    };
    match d {
        Cow::Borrowed(v) => keys
            .iter()
            .try_fold(v, |v, k| step(v, k))
            .map_or(Value::Null, Value::from_json),
        Cow::Owned(v) => keys
            .iter()
            .try_fold(&v, |v, k| step(v, k))
            .map_or(Value::Null, |v| Value::from_json_owned(v.clone())),
    }
}

fn binary(op: BinOp, a: &Value<'_>, b: &Value<'_>) -> bool {
    use BinOp::*;
    let text = |v: &Value<'_>| v.to_text().into_owned();
    match op {
        Eq => equals(a, b),
        Ne => compare(a, b).is_some_and(|o| o != Ordering::Equal),
        Lt => compare(a, b) == Some(Ordering::Less),
        Le => matches!(compare(a, b), Some(Ordering::Less | Ordering::Equal)),
        Gt => compare(a, b) == Some(Ordering::Greater),
        Ge => matches!(compare(a, b), Some(Ordering::Greater | Ordering::Equal)),
        EqCi => equals_ci(a, b),
        NeCi => !equals_ci(a, b),
        Has => value::has_term(&a.to_text(), &b.to_text()),
        NotHas => !value::has_term(&a.to_text(), &b.to_text()),
        Contains => value::contains_ci(&a.to_text(), &b.to_text()),
        NotContains => !value::contains_ci(&a.to_text(), &b.to_text()),
        StartsWith => value::starts_ci(&a.to_text(), &b.to_text()),
        NotStartsWith => !value::starts_ci(&a.to_text(), &b.to_text()),
        EndsWith => value::ends_ci(&a.to_text(), &text(b)),
        NotEndsWith => !value::ends_ci(&a.to_text(), &b.to_text()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_every_member() {
        let p = br#"{ "A" : "x\"}" , "B":{"c":[1,{"d":"]"}]},"C":-1.5e3,"D":null,"E":[],"F\u0041":true}"#;
        let mut m = Vec::new();
        scan(p, &mut m);
        let got: Vec<(&str, &str)> = m
            .iter()
            .map(|(k, v)| {
                (
                    std::str::from_utf8(&p[k.clone()]).unwrap(),
                    std::str::from_utf8(&p[v.clone()]).unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("A", r#""x\"}""#),
                ("B", r#"{"c":[1,{"d":"]"}]}"#),
                ("C", "-1.5e3"),
                ("D", "null"),
                ("E", "[]"),
                ("F\\u0041", "true")
            ]
        );
        assert_eq!(key_name(br"F\u0041"), "FA");
        m.clear();
        scan(b"{}", &mut m);
        assert!(m.is_empty());
    }
}
