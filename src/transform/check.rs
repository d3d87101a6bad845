//! The start-up check: every table, column, operator and function of a parsed transform is
//! resolved against the table registry ([`crate::tables`]) and lowered into the [`Step`]s the
//! evaluator runs. Every problem becomes a [`TransformError`] at the offending name, with a
//! "did you mean" suggestion when a known name is close (case-insensitive match first, then
//! edit distance).
//!
//! Columns: a table rule may name the table's documented columns, `AdditionalFields` and the
//! columns the export adds to every row (`MachineGroup`); a `*` rule any column of any table.
//! After `project`, `project-away`, `project-keep`, `project-rename` and `extend` the set
//! follows the operator (a column projected away cannot be used later in the rule).

use super::parse::{BinOp, Expr, Item, Key, Kind, ListOp, Name, Op, Rule};
use super::value::Value;
use super::TransformError;
use crate::rows::PIVOT_COLUMNS;
use crate::tables::{self, TableInfo, ADDITIONAL_FIELDS, TABLES};
use std::collections::BTreeSet;

/// A column reference.
#[derive(Debug, Clone)]
pub struct ColRef {
    /// The column name.
    pub name: Box<str>,
    /// Its index in [`PIVOT_COLUMNS`]: the row parser located it already.
    pub pivot: Option<u8>,
}

/// A function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Func {
    ToString,
    ToInt,
    ToLower,
    ToUpper,
    Strlen,
    Strcat,
    Ago,
    Now,
    Not,
    IsNull,
    IsNotNull,
    IsEmpty,
    IsNotEmpty,
}

/// Functions by name, with their argument counts (min, max).
const FUNCS: &[(&str, Func, usize, usize)] = &[
    ("tostring", Func::ToString, 1, 1),
    ("toint", Func::ToInt, 1, 1),
    ("tolong", Func::ToInt, 1, 1),
    ("tolower", Func::ToLower, 1, 1),
    ("toupper", Func::ToUpper, 1, 1),
    ("strlen", Func::Strlen, 1, 1),
    ("strcat", Func::Strcat, 1, 64),
    ("ago", Func::Ago, 1, 1),
    ("now", Func::Now, 0, 1),
    ("not", Func::Not, 1, 1),
    ("isnull", Func::IsNull, 1, 1),
    ("isnotnull", Func::IsNotNull, 1, 1),
    ("isempty", Func::IsEmpty, 1, 1),
    ("isnotempty", Func::IsNotEmpty, 1, 1),
];

/// Operators of the subset (for the error naming one outside it).
const OPERATORS: &[&str] = &[
    "where",
    "project",
    "project-away",
    "project-keep",
    "project-rename",
    "extend",
];

/// A checked expression.
#[derive(Debug, Clone)]
pub enum Node {
    /// A constant.
    Const(Value<'static>),
    /// A column of the row.
    Col(ColRef),
    /// Access into a dynamic value.
    Access(Box<Node>, Vec<Key>),
    /// A function call.
    Func(Func, Vec<Node>),
    /// `and`.
    And(Vec<Node>),
    /// `or`.
    Or(Vec<Node>),
    /// A comparison.
    Bin(BinOp, Box<Node>, Box<Node>),
    /// A list test.
    List(ListOp, Box<Node>, Vec<Node>),
    /// `between` (negated when set).
    Between(bool, Box<Node>, Box<Node>, Box<Node>),
    /// `matches regex`.
    Regex(Box<Node>, regex::Regex),
}

/// A column pattern of the project operators.
#[derive(Debug, Clone)]
pub enum Pat {
    /// A name.
    Exact(Box<str>),
    /// A wildcard pattern (`*` matches any run of characters).
    Glob(Box<str>),
}

impl Pat {
    /// True when `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Pat::Exact(n) => **n == *name,
            Pat::Glob(g) => glob(g.as_bytes(), name.as_bytes()),
        }
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.iter().position(|&c| c == b'*') {
        None => p == s,
        Some(i) => {
            if s.len() < i || p[..i] != s[..i] {
                return false;
            }
            let rest = &p[i + 1..];
            (i..=s.len()).any(|j| glob(rest, &s[j..]))
        }
    }
}

/// An item of a checked `project`.
#[derive(Debug, Clone)]
pub enum PItem {
    /// Columns by name or pattern.
    Pat(Pat),
    /// A computed column.
    Assign(Box<str>, Node),
}

/// A checked operator.
#[derive(Debug, Clone)]
pub enum Step {
    /// Keeps the row when the condition is true.
    Where(Node),
    /// `project`.
    Project(Vec<PItem>),
    /// `project-away`.
    Away(Vec<Pat>),
    /// `project-keep`.
    Keep(Vec<Pat>),
    /// `project-rename` (new, old).
    Rename(Vec<(Box<str>, Box<str>)>),
    /// `extend`.
    Extend(Vec<(Box<str>, Node)>),
}

/// Which rows a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One table.
    Table(&'static TableInfo),
    /// Every table (`*` or `source`).
    All,
}

/// One checked rule.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Its tables.
    pub target: Target,
    /// Its operators.
    pub steps: Vec<Step>,
}

/// Checks `rules`; returns every problem found, not only the first.
pub fn check(rules: &[Rule]) -> Result<Vec<Checked>, Vec<TransformError>> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for r in rules {
        let target = match r.table.text.as_str() {
            "*" | "source" => Target::All,
            t => match tables::lookup(t) {
                Some(info) if info.name == t => Target::Table(info),
                found => {
                    let names = TABLES.iter().map(|t| t.name);
                    let hint = found.map(|i| i.name).or_else(|| suggest(t, names));
                    errors.push(TransformError::new(
                        r.table.at,
                        format!("unknown table '{t}'{}", did_you_mean(hint)),
                    ));
                    continue;
                }
            },
        };
        let mut scope = Scope::new(target);
        let steps = r
            .ops
            .iter()
            .filter_map(|op| scope.op(op, &mut errors))
            .collect();
        out.push(Checked { target, steps });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn did_you_mean(hint: Option<&str>) -> String {
    hint.map_or(String::new(), |h| format!(" (did you mean {h}?)"))
}

/// The closest of `candidates` to `name`: same letters in another case first, else the
/// nearest by edit distance when it is close enough to be a typo.
pub fn suggest<'c>(
    name: &str,
    candidates: impl Iterator<Item = &'c str> + Clone,
) -> Option<&'c str> {
    if let Some(c) = candidates.clone().find(|c| c.eq_ignore_ascii_case(name)) {
        return Some(c);
    }
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .map(|c| {
            (
                strsim::levenshtein(&name.to_lowercase(), &c.to_lowercase()),
                c,
            )
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// The columns available at a point of a rule.
struct Scope {
    target: Target,
    columns: BTreeSet<String>,
}

impl Scope {
    fn new(target: Target) -> Self {
        let mut columns: BTreeSet<String> = match target {
            Target::Table(info) => info.columns.iter().map(|c| c.name.to_string()).collect(),
            Target::All => TABLES
                .iter()
                .flat_map(|t| t.columns.iter().map(|c| c.name.to_string()))
                .collect(),
        };
        columns.insert(ADDITIONAL_FIELDS.to_string());
        for c in crate::normalize::drift::EXPORT_ADDED {
            columns.insert(c.to_string());
        }
        Scope { target, columns }
    }

    fn where_(&self) -> String {
        match self.target {
            Target::Table(info) => format!("in {}", info.name),
            Target::All => "in any table".to_string(),
        }
    }

    fn unknown_column(&self, n: &Name) -> TransformError {
        let hint = suggest(&n.text, self.columns.iter().map(String::as_str));
        TransformError::new(
            n.at,
            format!(
                "unknown column '{}' {}{}",
                n.text,
                self.where_(),
                did_you_mean(hint)
            ),
        )
    }

    fn pattern(&self, n: &Name, errors: &mut Vec<TransformError>) -> Pat {
        if n.text.contains('*') {
            let p = Pat::Glob(n.text.as_str().into());
            if !self.columns.iter().any(|c| p.matches(c)) {
                errors.push(TransformError::new(
                    n.at,
                    format!("'{}' matches no column {}", n.text, self.where_()),
                ));
            }
            p
        } else {
            if !self.columns.contains(&n.text) {
                errors.push(self.unknown_column(n));
            }
            Pat::Exact(n.text.as_str().into())
        }
    }

    fn op(&mut self, op: &Op, errors: &mut Vec<TransformError>) -> Option<Step> {
        Some(match op {
            Op::Where(e) => Step::Where(self.expr(e, errors)),
            Op::Project(items) => {
                let mut next = BTreeSet::new();
                let mut out = Vec::new();
                for it in items {
                    match it {
                        Item::Pattern(n) => {
                            let p = self.pattern(n, errors);
                            next.extend(self.columns.iter().filter(|c| p.matches(c)).cloned());
                            out.push(PItem::Pat(p));
                        }
                        Item::Assign(n, e) => {
                            out.push(PItem::Assign(n.text.as_str().into(), self.expr(e, errors)));
                            next.insert(n.text.clone());
                        }
                    }
                }
                self.columns = next;
                Step::Project(out)
            }
            Op::Away(names) => {
                let pats: Vec<Pat> = names.iter().map(|n| self.pattern(n, errors)).collect();
                self.columns.retain(|c| !pats.iter().any(|p| p.matches(c)));
                Step::Away(pats)
            }
            Op::Keep(names) => {
                let pats: Vec<Pat> = names.iter().map(|n| self.pattern(n, errors)).collect();
                self.columns.retain(|c| pats.iter().any(|p| p.matches(c)));
                Step::Keep(pats)
            }
            Op::Rename(pairs) => {
                let mut out = Vec::new();
                for (new, old) in pairs {
                    if !self.columns.remove(&old.text) {
                        errors.push(self.unknown_column(old));
                    }
                    self.columns.insert(new.text.clone());
                    out.push((new.text.as_str().into(), old.text.as_str().into()));
                }
                Step::Rename(out)
            }
            Op::Extend(items) => {
                let mut out = Vec::new();
                for (n, e) in items {
                    out.push((n.text.as_str().into(), self.expr(e, errors)));
                    self.columns.insert(n.text.clone());
                }
                Step::Extend(out)
            }
            Op::Unknown(n) => {
                let hint = suggest(&n.text, OPERATORS.iter().copied());
                errors.push(TransformError::new(
                    n.at,
                    format!(
                        "operator '{}' is not in the supported subset ({}){}",
                        n.text,
                        OPERATORS.join(", "),
                        did_you_mean(hint)
                    ),
                ));
                return None;
            }
        })
    }

    fn expr(&self, e: &Expr, errors: &mut Vec<TransformError>) -> Node {
        let mut sub = |x: &Expr| Box::new(self.expr(x, errors));
        match &e.kind {
            Kind::Lit(v) => Node::Const(v.clone()),
            Kind::Column(c) => {
                if !self.columns.contains(c) {
                    errors.push(self.unknown_column(&Name {
                        text: c.clone(),
                        at: e.at,
                    }));
                }
                let pivot = PIVOT_COLUMNS.iter().position(|p| p == c).map(|i| i as u8);
                Node::Col(ColRef {
                    name: c.as_str().into(),
                    pivot,
                })
            }
            Kind::Access(base, keys) => Node::Access(sub(base), keys.clone()),
            Kind::And(parts) => Node::And(parts.iter().map(|p| self.expr(p, errors)).collect()),
            Kind::Or(parts) => Node::Or(parts.iter().map(|p| self.expr(p, errors)).collect()),
            Kind::Binary(op, a, b) => {
                let (a, b) = (sub(a), sub(b));
                Node::Bin(*op, a, b)
            }
            Kind::List(op, lhs, list) => {
                let lhs = sub(lhs);
                Node::List(
                    *op,
                    lhs,
                    list.iter().map(|x| self.expr(x, errors)).collect(),
                )
            }
            Kind::Between(neg, x, lo, hi) => {
                let (x, lo, hi) = (sub(x), sub(lo), sub(hi));
                Node::Between(*neg, x, lo, hi)
            }
            Kind::Regex(x, pat) => {
                let x = sub(x);
                let re = match &pat.kind {
                    Kind::Lit(Value::Str(p)) => regex::Regex::new(p).map_err(|err| {
                        let first = err.to_string();
                        let last = first.lines().last().unwrap_or("").trim().to_string();
                        TransformError::new(pat.at, format!("invalid regex: {last}"))
                    }),
                    _ => Err(TransformError::new(
                        pat.at,
                        "matches regex needs a string literal".to_string(),
                    )),
                };
                match re {
                    Ok(re) => Node::Regex(x, re),
                    Err(err) => {
                        errors.push(err);
                        Node::Const(Value::Null)
                    }
                }
            }
            Kind::Call(name, args) => {
                let Some(&(_, f, min, max)) = FUNCS.iter().find(|f| f.0 == name.text) else {
                    let hint = suggest(&name.text, FUNCS.iter().map(|f| f.0));
                    errors.push(TransformError::new(
                        name.at,
                        format!("unknown function '{}'{}", name.text, did_you_mean(hint)),
                    ));
                    return Node::Const(Value::Null);
                };
                if args.len() < min || args.len() > max {
                    let want = if min == max {
                        format!("{min}")
                    } else {
                        format!("{min} to {max}")
                    };
                    errors.push(TransformError::new(
                        name.at,
                        format!(
                            "{}() takes {want} argument(s), not {}",
                            name.text,
                            args.len()
                        ),
                    ));
                }
                Node::Func(f, args.iter().map(|a| self.expr(a, errors)).collect())
            }
        }
    }
}
