//! Transform text to syntax tree, with the grammar in `kql.pest` (pest, a PEG parser
//! generator: the grammar file is the reference that docs/transforms.md quotes, and pest
//! reports the line and column of the first token it could not take).
//!
//! The tree keeps byte offsets ([`Span`]) so the checker can point at a column or function
//! name; nothing here knows tables or columns.

use super::value::{parse_date, parse_span, Value};
use super::TransformError;
use pest::iterators::Pair;
use pest::Parser as _;
use std::borrow::Cow;

mod grammar {
    #![allow(missing_docs)]
    /// The generated parser.
    #[derive(pest_derive::Parser)]
    #[grammar = "transform/kql.pest"]
    pub struct Kql;
}
use grammar::{Kql, Rule as R};

/// Byte offset of a name or expression in the transform text.
pub type Span = usize;

/// A name and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    /// The name (bracketed names unquoted).
    pub text: String,
    /// Byte offset.
    pub at: Span,
}

/// One rule: a table and its operators.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Table name as written, `*` or `source`.
    pub table: Name,
    /// The operators, in order.
    pub ops: Vec<Op>,
}

/// A tabular operator.
#[derive(Debug, Clone)]
pub enum Op {
    /// `where`.
    Where(Expr),
    /// `project`: patterns (names, wildcards) and `Name = expr` items.
    Project(Vec<Item>),
    /// `project-away`.
    Away(Vec<Name>),
    /// `project-keep`.
    Keep(Vec<Name>),
    /// `project-rename new = old`.
    Rename(Vec<(Name, Name)>),
    /// `extend name = expr`.
    Extend(Vec<(Name, Expr)>),
    /// An operator outside the subset.
    Unknown(Name),
}

/// An item of `project`.
#[derive(Debug, Clone)]
pub enum Item {
    /// A column name or wildcard pattern.
    Pattern(Name),
    /// A computed column.
    Assign(Name, Expr),
}

/// An expression and where it starts.
#[derive(Debug, Clone)]
pub struct Expr {
    /// What it is.
    pub kind: Kind,
    /// Byte offset.
    pub at: Span,
}

/// Comparison operators taking one right-hand term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum BinOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    EqCi,
    NeCi,
    Has,
    NotHas,
    Contains,
    NotContains,
    StartsWith,
    NotStartsWith,
    EndsWith,
    NotEndsWith,
}

/// Operators taking a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ListOp {
    In,
    NotIn,
    InCi,
    NotInCi,
    HasAny,
}

/// Key of a dotted or bracketed access.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    /// `.Name` or `["Name"]`.
    Field(String),
    /// `[0]`.
    Index(i64),
}

/// Expression kinds.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A literal.
    Lit(Value<'static>),
    /// A column.
    Column(String),
    /// Access into a dynamic value.
    Access(Box<Expr>, Vec<Key>),
    /// A function call.
    Call(Name, Vec<Expr>),
    /// `and`.
    And(Vec<Expr>),
    /// `or`.
    Or(Vec<Expr>),
    /// A comparison.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// A list test.
    List(ListOp, Box<Expr>, Vec<Expr>),
    /// `between` (negated when the flag is set), inclusive.
    Between(bool, Box<Expr>, Box<Expr>, Box<Expr>),
    /// `matches regex` with the pattern expression.
    Regex(Box<Expr>, Box<Expr>),
}

/// Parses a whole transform file.
pub fn parse(text: &str) -> Result<Vec<Rule>, TransformError> {
    let mut pairs = Kql::parse(R::file, text).map_err(|e| syntax_error(text, e))?;
    let file = pairs.next().expect("file");
    let mut rules = Vec::new();
    for p in file.into_inner() {
        if p.as_rule() == R::rule {
            rules.push(rule(p)?);
        }
    }
    Ok(rules)
}

/// The pairs under `p` without the keyword tokens.
fn kids(p: Pair<'_, R>) -> Vec<Pair<'_, R>> {
    p.into_inner()
        .filter(|c| {
            !matches!(
                c.as_rule(),
                R::kw_where
                    | R::kw_filter
                    | R::kw_project
                    | R::kw_project_away
                    | R::kw_project_keep
                    | R::kw_project_rename
                    | R::kw_extend
                    | R::kw_and
                    | R::kw_or
                    | R::kw_matches
                    | R::kw_regex
            )
        })
        .collect()
}

fn name(p: Pair<'_, R>) -> Name {
    let at = p.as_span().start();
    let text = match p.as_rule() {
        R::column_name | R::column => {
            let inner = p.into_inner().next().expect("name");
            return name(inner);
        }
        R::bracketed => string(p.into_inner().next().expect("string")),
        _ => p.as_str().to_string(),
    };
    Name { text, at }
}

fn rule(p: Pair<'_, R>) -> Result<Rule, TransformError> {
    let mut it = p.into_inner().filter(|p| p.as_rule() != R::pipe);
    let table = name(it.next().expect("table"));
    let ops = it.map(op).collect::<Result<_, _>>()?;
    Ok(Rule { table, ops })
}

fn op(p: Pair<'_, R>) -> Result<Op, TransformError> {
    let r = p.as_rule();
    let at = p.as_span().start();
    let k = kids(p);
    Ok(match r {
        R::where_op => Op::Where(expr(k.into_iter().next().expect("expr"))?),
        R::project_op => Op::Project(
            k.into_iter()
                .map(|c| match c.as_rule() {
                    R::assign => {
                        let (n, e) = assign(c)?;
                        Ok(Item::Assign(n, e))
                    }
                    _ => Ok(Item::Pattern(name(c))),
                })
                .collect::<Result<_, TransformError>>()?,
        ),
        R::project_away => Op::Away(k.into_iter().map(name).collect()),
        R::project_keep => Op::Keep(k.into_iter().map(name).collect()),
        R::project_rename => Op::Rename(
            k.into_iter()
                .map(|c| {
                    let mut i = c.into_inner();
                    let new = name(i.next().expect("new"));
                    (new, name(i.next().expect("old")))
                })
                .collect(),
        ),
        R::extend_op => Op::Extend(k.into_iter().map(assign).collect::<Result<_, _>>()?),
        _ => {
            let n = k.into_iter().next().map(name).unwrap_or(Name {
                text: String::new(),
                at,
            });
            Op::Unknown(n)
        }
    })
}

fn assign(p: Pair<'_, R>) -> Result<(Name, Expr), TransformError> {
    let mut i = p.into_inner();
    let n = name(i.next().expect("name"));
    Ok((n, expr(i.next().expect("expr"))?))
}

fn boxed(e: Expr) -> Box<Expr> {
    Box::new(e)
}

fn expr(p: Pair<'_, R>) -> Result<Expr, TransformError> {
    let at = p.as_span().start();
    let r = p.as_rule();
    let text = p.as_str();
    if r == R::string {
        return Ok(Expr {
            kind: Kind::Lit(Value::Str(Cow::Owned(string(p)))),
            at,
        });
    }
    let mut k = kids(p);
    let kind = match r {
        R::expr | R::and_expr => {
            if k.len() == 1 {
                return expr(k.pop().expect("one"));
            }
            let parts = k.into_iter().map(expr).collect::<Result<Vec<_>, _>>()?;
            if r == R::expr {
                Kind::Or(parts)
            } else {
                Kind::And(parts)
            }
        }
        R::cmp_expr => {
            let mut it = k.into_iter();
            let lhs = expr(it.next().expect("term"))?;
            let Some(tail) = it.next() else {
                return Ok(lhs);
            };
            let tr = tail.as_rule();
            let mut t = kids(tail).into_iter();
            let first = t.next().expect("operator");
            match tr {
                R::binary_test => {
                    let op = binop(first.as_str());
                    Kind::Binary(op, boxed(lhs), boxed(expr(t.next().expect("rhs"))?))
                }
                R::list_test => {
                    let op = match first.as_str() {
                        "in" => ListOp::In,
                        "!in" => ListOp::NotIn,
                        "in~" => ListOp::InCi,
                        "!in~" => ListOp::NotInCi,
                        _ => ListOp::HasAny,
                    };
                    let list = t.map(expr).collect::<Result<_, _>>()?;
                    Kind::List(op, boxed(lhs), list)
                }
                R::between_test => {
                    let neg = first.as_str().starts_with('!');
                    let lo = expr(t.next().expect("lo"))?;
                    let hi = expr(t.next().expect("hi"))?;
                    Kind::Between(neg, boxed(lhs), boxed(lo), boxed(hi))
                }
                _ => Kind::Regex(boxed(lhs), boxed(expr(first)?)),
            }
        }
        R::term => {
            let mut it = k.into_iter();
            let base = expr(it.next().expect("primary"))?;
            let keys: Vec<Key> = it
                .map(|a| {
                    let c = a.into_inner().next().expect("key");
                    match c.as_rule() {
                        R::integer => Key::Index(c.as_str().parse().unwrap_or(i64::MAX)),
                        R::string => Key::Field(string(c)),
                        _ => Key::Field(c.as_str().to_string()),
                    }
                })
                .collect();
            if keys.is_empty() {
                return Ok(base);
            }
            Kind::Access(boxed(base), keys)
        }
        R::column => Kind::Column(name(k.pop().expect("name")).text),
        R::call => {
            let mut it = k.into_iter();
            let n = name(it.next().expect("function"));
            Kind::Call(n, it.map(expr).collect::<Result<_, _>>()?)
        }
        R::datetime_lit => {
            let text = k.pop().expect("text").as_str();
            match parse_date(text) {
                Some(d) => Kind::Lit(Value::Date(d)),
                None => {
                    return Err(TransformError::new(
                        at,
                        format!("datetime({text}) is not a date and time (e.g. datetime(2026-01-31T08:00:00Z))"),
                    ))
                }
            }
        }
        R::timespan_call => return expr(k.pop().expect("span")),
        R::timespan => match parse_span(text) {
            Some(s) => Kind::Lit(Value::Span(s)),
            None => {
                return Err(TransformError::new(
                    at,
                    format!("`{text}` is not a timespan"),
                ))
            }
        },
        R::dynamic_lit => Kind::Lit(Value::from_json_owned(dynamic(k.pop().expect("value")))),
        R::number => Kind::Lit(match text.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Real(text.parse().unwrap_or(f64::NAN)),
        }),
        R::boolean => Kind::Lit(Value::Bool(text == "true")),
        R::null_lit => Kind::Lit(Value::Null),
        other => unreachable!("{other:?} is not an expression"),
    };
    Ok(Expr { kind, at })
}

fn binop(s: &str) -> BinOp {
    match s {
        "==" => BinOp::Eq,
        "!=" => BinOp::Ne,
        "<" => BinOp::Lt,
        "<=" => BinOp::Le,
        ">" => BinOp::Gt,
        ">=" => BinOp::Ge,
        "=~" => BinOp::EqCi,
        "!~" => BinOp::NeCi,
        "has" => BinOp::Has,
        "!has" => BinOp::NotHas,
        "contains" => BinOp::Contains,
        "!contains" => BinOp::NotContains,
        "startswith" => BinOp::StartsWith,
        "!startswith" => BinOp::NotStartsWith,
        "endswith" => BinOp::EndsWith,
        _ => BinOp::NotEndsWith,
    }
}

/// The value of a `string` pair: escapes resolved, verbatim strings taken as written.
fn string(p: Pair<'_, R>) -> String {
    let inner = p.into_inner().next().expect("string kind");
    let body = inner.clone().into_inner().next().map_or("", |b| b.as_str());
    match inner.as_rule() {
        R::verbatim => {
            let b = inner.into_inner().next().expect("body");
            match b.as_rule() {
                R::vdq_body => b.as_str().replace("\"\"", "\""),
                _ => b.as_str().replace("''", "'"),
            }
        }
        _ => unescape(body),
    }
}

fn unescape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            o.push(c);
            continue;
        }
        match it.next() {
            Some('n') => o.push('\n'),
            Some('t') => o.push('\t'),
            Some('r') => o.push('\r'),
            Some('0') => o.push('\0'),
            Some(other) => o.push(other),
            None => o.push('\\'),
        }
    }
    o
}

fn dynamic(p: Pair<'_, R>) -> serde_json::Value {
    use serde_json::Value as J;
    let text = p.as_str();
    match p.as_rule() {
        R::dyn_list => J::Array(p.into_inner().map(dynamic).collect()),
        R::dyn_object => J::Object(
            p.into_inner()
                .map(|m| {
                    let mut i = m.into_inner();
                    let k = string(i.next().expect("key"));
                    (k, dynamic(i.next().expect("value")))
                })
                .collect(),
        ),
        R::string => J::String(string(p)),
        R::boolean => J::Bool(text == "true"),
        R::number => serde_json::from_str(text).unwrap_or(J::Null),
        _ => J::Null,
    }
}

/// A readable name for each token pest may expect.
fn expected(r: &R) -> &'static str {
    match r {
        R::rule | R::table => "a table name (or `*`)",
        R::where_op
        | R::project_op
        | R::project_away
        | R::project_keep
        | R::project_rename
        | R::extend_op
        | R::unknown_op
        | R::op_name => "an operator",
        R::expr | R::and_expr | R::cmp_expr | R::term | R::call | R::column => "an expression",
        R::binary_op | R::list_op | R::between_op | R::kw_matches => "a comparison",
        R::kw_and => "`and`",
        R::kw_or => "`or`",
        R::kw_regex => "`regex`",
        R::pattern | R::column_name | R::assign | R::rename | R::ident | R::bracketed => {
            "a column name"
        }
        R::accessor => "`.` or `[`",
        R::string | R::dq_string | R::sq_string | R::verbatim => "a string",
        R::number | R::integer => "a number",
        R::datetime_text => "a date and time",
        R::timespan | R::span_unit => "a timespan (e.g. 1h)",
        R::EOI => "the end of the text",
        R::pipe => "`|`",
        _ => "more",
    }
}

fn syntax_error(text: &str, e: pest::error::Error<R>) -> TransformError {
    let at = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((p, _)) => p,
    };
    // At the end of the text: point just past its last character, not at a blank line.
    let at = if text[at..].trim().is_empty() {
        text.trim_end().len()
    } else {
        at
    };
    let msg = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<&str> = positives.iter().map(expected).collect();
            names.sort();
            names.dedup();
            let found = text[at..]
                .split(|c: char| c.is_whitespace())
                .next()
                .filter(|w| !w.is_empty())
                .map_or("the end of the text".to_string(), |w| format!("`{w}`"));
            match names.len() {
                0 => format!("unexpected {found}"),
                1 => format!("expected {}, found {found}", names[0]),
                n => format!(
                    "expected {} or {}, found {found}",
                    names[..n - 1].join(", "),
                    names[n - 1]
                ),
            }
        }
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    TransformError::new(at, msg)
}
