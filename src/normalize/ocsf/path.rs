//! Dotted attribute paths (`actor.process.file.name`, `observables.0.value`) walked into the
//! event under construction, creating objects and array items on the way.

use super::value::{Obj, Value};
use std::borrow::Cow;

/// The segments of a dotted path (`str::split('.')`, without the searcher's setup cost on
/// these short strings).
pub(super) fn segments(path: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(path);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.bytes().position(|b| b == b'.') {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// The way from the root to an object: at each level the index of the member (in an object)
/// or of the item (in an array).
#[derive(Default)]
pub(super) struct Steps {
    at: [u16; 8],
    pub(super) len: usize,
}

impl Steps {
    pub(super) fn follow<'o, 'a>(&self, root: &'o mut Obj<'a>) -> &'o mut Obj<'a> {
        let mut cur = root.value_at_mut(usize::from(self.at[0]));
        for &i in &self.at[1..self.len] {
            cur = match cur {
                Value::Object(o) => o.value_at_mut(usize::from(i)),
                Value::Array(a) => &mut a[usize::from(i)],
                _ => unreachable!("steps lead through objects and arrays"),
            };
        }
        cur.as_object_mut().expect("steps lead to an object")
    }
}

/// The object at dotted path `dir` (created like [`slot_in`] does, and made an object if it
/// is not), recording the way there in `steps` (left empty when the path is too deep to
/// record).
pub(super) fn parent_in<'o, 'a>(
    obj: &'o mut Obj<'a>,
    dir: &'static str,
    steps: &mut Steps,
) -> &'o mut Obj<'a> {
    let mut record = |i: usize| {
        if steps.len < steps.at.len() && i <= usize::from(u16::MAX) {
            steps.at[steps.len] = i as u16;
            steps.len += 1;
            true
        } else {
            false
        }
    };
    let mut complete = true;
    let mut segs = segments(dir);
    let first = segs.next().unwrap_or(dir);
    let (i, mut cur) = obj.entry_index(first, Cow::Borrowed);
    complete &= record(i);
    for seg in segs {
        cur = match index_of(seg) {
            Some(i) => {
                complete &= record(i);
                item(cur, i)
            }
            None => {
                let (i, v) = object(cur).entry_index(seg, Cow::Borrowed);
                complete &= record(i);
                v
            }
        };
    }
    if !complete {
        steps.len = 0;
    }
    object(cur)
}

/// Item `i` of the array `cur` (made an array, and padded with nulls, as needed).
fn item<'o, 'a>(cur: &'o mut Value<'a>, i: usize) -> &'o mut Value<'a> {
    if !cur.is_array() {
        *cur = Value::Array(Vec::new());
    }
    let a = cur.as_array_mut().expect("just made an array");
    while a.len() <= i {
        a.push(Value::Null);
    }
    &mut a[i]
}

/// `cur` as an object (made an empty one if it is not).
fn object<'o, 'a>(cur: &'o mut Value<'a>) -> &'o mut Obj<'a> {
    if !cur.is_object() {
        *cur = Value::Object(Obj::with_capacity(8));
    }
    cur.as_object_mut().expect("just made an object")
}

/// A numeric path segment (an array index).
pub(super) fn index_of(seg: &str) -> Option<usize> {
    if seg.as_bytes().first().is_some_and(|b| b.is_ascii_digit()) {
        seg.parse().ok()
    } else {
        None
    }
}

/// The slot at a dotted path in `obj`, created (objects, and arrays for numeric segments) as
/// needed; `key` makes the key of a new member from a segment.
pub(super) fn slot_in<'o, 'a, 'p>(
    obj: &'o mut Obj<'a>,
    path: &'p str,
    key: impl Fn(&'p str) -> Cow<'a, str>,
) -> &'o mut Value<'a> {
    let mut segs = segments(path);
    let first = segs.next().unwrap_or(path);
    let mut cur = obj.entry_with(first, &key);
    for seg in segs {
        cur = match index_of(seg) {
            Some(i) => item(cur, i),
            None => object(cur).entry_with(seg, &key),
        };
    }
    cur
}
