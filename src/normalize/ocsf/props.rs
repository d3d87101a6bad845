//! The row's columns as the OCSF builder reads them: in the row's order, found by name through
//! a small hash table, marked when placed (so giving one back to `unmapped` is clearing the
//! mark).

use super::builder::key_hash;
use super::value::{Obj, Value};
use super::write::{write_str, write_value};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

/// The row's columns (JSON-in-string columns decoded), in the row's order, with `order` the
/// indices of the columns sorted by name (of a name written twice, the last). A placed column
/// is not removed but marked taken, so giving it back is flipping the mark.
#[derive(Debug, Default)]
pub(crate) struct Props<'a> {
    pub(super) cols: Vec<(Cow<'a, str>, Value<'a>, bool)>,
    pub(super) order: Vec<u16>,
    /// Open-addressing table (a power of two long) of the columns in `order`: index + 1, 0
    /// for a free slot.
    pub(super) slots: Vec<u16>,
}

thread_local! {
    /// The sorted order of the last rows' columns by row shape: rows of one shape have their
    /// columns in one order, so sorting is a check (the order is verified on every row).
    static ORDERS: RefCell<HashMap<u64, Vec<u16>>> = RefCell::new(HashMap::new());
}

impl<'a> Props<'a> {
    /// The members of a row's `properties`, in the row's order; `shape` is the row's key
    /// sequence hash (only a hint: the cached order is checked).
    pub fn from_members(cols: Vec<(Cow<'a, str>, Value<'a>, bool)>, shape: u64) -> Self {
        if cols.len() > usize::from(u16::MAX) {
            // Not a real row; the slow way, as one object.
            let obj = Obj::from_members(cols.into_iter().map(|(k, v, _)| (k, v)).collect());
            let cols: Vec<_> = obj
                .into_members()
                .into_iter()
                .map(|(k, v)| (k, v, true))
                .collect();
            let order = (0..cols.len() as u16).collect();
            return Props::with_slots(cols, order);
        }
        let sorted = |order: &[u16]| {
            order.len() == cols.len()
                && order
                    .windows(2)
                    .all(|w| cols[usize::from(w[0])].0 < cols[usize::from(w[1])].0)
        };
        let cached = ORDERS.with(|o| {
            o.borrow()
                .get(&shape)
                .filter(|order| sorted(order))
                .cloned()
        });
        let order = match cached {
            Some(order) => order,
            None => {
                let mut order: Vec<u16> = (0..cols.len() as u16).collect();
                order.sort_by(|&a, &b| cols[usize::from(a)].0.cmp(&cols[usize::from(b)].0));
                // Of a name written twice the last wins, as in `serde_json::Map`.
                order.dedup_by(|later, kept| {
                    if cols[usize::from(*later)].0 == cols[usize::from(*kept)].0 {
                        *kept = *later;
                        true
                    } else {
                        false
                    }
                });
                if order.len() == cols.len() {
                    ORDERS.with(|o| {
                        let mut o = o.borrow_mut();
                        if o.len() >= 256 {
                            o.clear();
                        }
                        o.insert(shape, order.clone());
                    });
                }
                order
            }
        };
        Props::with_slots(cols, order)
    }

    fn with_slots(cols: Vec<(Cow<'a, str>, Value<'a>, bool)>, order: Vec<u16>) -> Self {
        let mut p = Props {
            cols,
            order,
            slots: Vec::new(),
        };
        p.fill_slots();
        p
    }

    /// (Re)builds the hash table of the columns in `order`.
    fn fill_slots(&mut self) {
        let size = (self.order.len() * 2).next_power_of_two().max(16);
        self.slots.clear();
        self.slots.resize(size, 0);
        let mask = size - 1;
        for &i in &self.order {
            let mut s = key_hash(&self.cols[usize::from(i)].0) as usize & mask;
            while self.slots[s] != 0 {
                s = (s + 1) & mask;
            }
            self.slots[s] = i + 1;
        }
    }

    /// The index (in `cols`) of a column, placed or not, by the name's [`key_hash`].
    #[inline]
    fn lookup(&self, name: &str, hash: u32) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut s = hash as usize & mask;
        loop {
            match self.slots[s] {
                0 => return None,
                i => {
                    let i = usize::from(i - 1);
                    if self.cols[i].0.as_ref() == name {
                        return Some(i);
                    }
                }
            }
            s = (s + 1) & mask;
        }
    }

    /// The index (in `cols`) of an unplaced column, by the name's [`key_hash`].
    #[inline]
    pub(super) fn index_h(&self, name: &str, hash: u32) -> Option<usize> {
        self.lookup(name, hash).filter(|&i| self.cols[i].2)
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.order
            .binary_search_by(|&i| self.cols[usize::from(i)].0.as_ref().cmp(name))
    }

    /// The index (in `cols`) of an unplaced column.
    pub(super) fn index(&self, name: &str) -> Option<usize> {
        self.index_h(name, key_hash(name))
    }

    /// The index (in `cols`) of a column, placed or not.
    pub(super) fn index_any(&self, name: &str) -> Option<usize> {
        self.lookup(name, key_hash(name))
    }

    /// An unplaced column's value.
    pub fn get(&self, name: &str) -> Option<&Value<'a>> {
        self.index(name).map(|i| &self.cols[i].1)
    }

    /// Every column, placed or not, mutably (to decode JSON-in-string columns).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Value<'a>)> {
        self.cols.iter_mut().map(|(k, v, _)| {
            let k: &Cow<'a, str> = k;
            (k.as_ref(), v)
        })
    }

    /// Sets a column (unplaced), adding it when the row does not have it.
    pub fn insert(&mut self, name: impl Into<Cow<'a, str>>, v: Value<'a>) -> usize {
        let name = name.into();
        match self.find(&name) {
            Ok(p) => {
                let i = usize::from(self.order[p]);
                self.cols[i] = (name, v, true);
                i
            }
            Err(p) => {
                let i = self.cols.len();
                self.cols.push((name, v, true));
                self.order.insert(p, i as u16);
                self.fill_slots();
                i
            }
        }
    }

    /// Whether every column has been placed.
    pub fn is_empty(&self) -> bool {
        !self.order.iter().any(|&i| self.cols[usize::from(i)].2)
    }

    /// The unplaced columns, sorted by name.
    fn unplaced(&self) -> impl Iterator<Item = &(Cow<'a, str>, Value<'a>, bool)> {
        self.order
            .iter()
            .map(|&i| &self.cols[usize::from(i)])
            .filter(|c| c.2)
    }

    /// The unplaced columns as an object.
    pub(super) fn to_obj(&self) -> Obj<'a> {
        Obj::from_sorted(
            self.unplaced()
                .map(|(k, v, _)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    /// Writes the unplaced columns as a JSON object.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        for (k, v, _) in self.unplaced() {
            if !first {
                out.push(b',');
            }
            first = false;
            write_str(out, k);
            out.push(b':');
            write_value(out, v);
        }
        out.push(b'}');
    }
}
