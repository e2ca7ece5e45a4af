//! The sensor registry: what a plant or road network looks like. A row per sensor (asset,
//! line or road segment, class, unit, enabled, and the attributes rules name as
//! `registry.NAME`) and the topology (edges between sensors or assets, with a direction and a
//! travel time where they have one). Rows change over time: each [`Change`] carries the event
//! time from which it holds, and replaces the whole row (a `None` value deletes it), as a
//! compacted topic does. [`Current`] turns such upserts into the insertions and retractions
//! of a differential collection (`dataflow/registry.rs` arranges them and reads them as of each
//! window's time). Knows nothing of timely; `load.rs` reads the registry files.

pub mod load;
pub mod parquet;
pub mod tables;
pub mod topic;

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// The attributes registry rows may carry, in declared order (what `registry.NAME` in a rule
/// refers to).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schema {
    /// Attribute names.
    pub names: Vec<String>,
    /// Per attribute: true for a boolean, false for a number.
    pub is_bool: Vec<bool>,
}

impl Schema {
    /// Two attributes, `max_temp` (a number) and `critical` (a boolean): the schema of the
    /// registry's unit tests and of its fuzz target.
    pub fn example() -> Self {
        Self {
            names: vec!["max_temp".into(), "critical".into()],
            is_bool: vec![false, true],
        }
    }
    /// Index and type (true: boolean) of attribute `name`.
    pub fn index_of(&self, name: &str) -> Option<(usize, bool)> {
        let i = self.names.iter().position(|n| n == name)?;
        Some((i, self.is_bool[i]))
    }
}

/// One sensor's registry row.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// The asset (machine, detector station) it belongs to; empty when none.
    pub asset: String,
    /// The line or road segment; empty when none.
    pub segment: String,
    /// Its class (free text: `temperature`, `loop-detector`).
    pub class: String,
    /// Its unit (free text).
    pub unit: String,
    /// False: the sensor does not alert, and its open episodes resolve.
    pub enabled: bool,
    /// Attribute values in [`Schema`] order as `f64` bits (booleans 1.0 and 0.0); `None`
    /// where the row has none. Bits, so that rows are ordered and hashed as collections need.
    pub attrs: Vec<Option<u64>>,
}

impl Entry {
    /// Attribute `i` (NaN when missing: every comparison with it is false).
    pub fn attr(&self, i: usize) -> f64 {
        self.attrs
            .get(i)
            .copied()
            .flatten()
            .map_or(f64::NAN, f64::from_bits)
    }
    /// All attribute values (NaN where missing), in schema order.
    pub fn values(&self) -> Vec<f64> {
        (0..self.attrs.len()).map(|i| self.attr(i)).collect()
    }
}

/// An edge of the topology.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EdgeInfo {
    /// What connects the two (free text: `upstream`, `shared-utility`).
    pub kind: String,
    /// True when the edge runs downstream, from `from` to `to` (for the most upstream member
    /// of an incident).
    pub directed: bool,
    /// Travel time along it (ms; 0 when not given).
    pub travel_ms: i64,
}

/// What a registry row is about: a sensor, or an edge `from` → `to`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Key {
    /// A sensor id.
    Sensor(String),
    /// An edge between two sensors or assets.
    Edge(String, String),
}

/// A registry row's value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Value {
    /// A sensor's row.
    Sensor(Entry),
    /// An edge's row.
    Edge(EdgeInfo),
}

/// One change of the registry.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// Event time (ms) from which it holds; `i64::MIN` for the rows at start.
    pub time: i64,
    /// The row it changes.
    pub key: Key,
    /// The whole new row; `None` deletes it.
    pub value: Option<Value>,
}

/// A row with the time from which it holds (part of the value, so that an arrangement keeps
/// a key's rows in time order and a lookup stops at the first row from after its time).
pub type Dated = (i64, Value);

/// A registry update as a differential collection carries it.
pub type Update = ((Key, Dated), i64, isize);

/// The registry as it stands after the changes applied so far: turns upserts into
/// differential updates (the old row retracted, the new one inserted).
#[derive(Default)]
pub struct Current {
    rows: HashMap<Key, Dated>,
}

impl Current {
    /// Applies `c`, appending the updates it makes to `out` (none when it changes nothing).
    pub fn apply(&mut self, c: Change, out: &mut Vec<Update>) {
        let old = match c.value {
            Some(v) => {
                if self.rows.get(&c.key).map(|r| &r.1) == Some(&v) {
                    return;
                }
                out.push(((c.key.clone(), (c.time, v.clone())), c.time, 1));
                self.rows.insert(c.key.clone(), (c.time, v))
            }
            None => self.rows.remove(&c.key),
        };
        if let Some(old) = old {
            out.push(((c.key, old), c.time, -1));
        }
    }
    /// Rows held now.
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    /// True when it holds no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// What to do with windows of sensors the registry does not hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unknown {
    /// Score them with their class's default attributes.
    Accept,
    /// Send them to the rejects output.
    Reject,
}

/// A sensor's registry view for one window: its row as of the window's end with the class
/// defaults filled in, or nothing (not registered, and `unknown-sensors = "reject"`).
pub type View = Option<Arc<Entry>>;

/// Class defaults: attribute values by sensor id glob (the first match counts).
#[derive(Clone, Debug, Default)]
pub struct Defaults {
    /// Globs and their attribute values (schema order, `None` where the class sets none).
    pub classes: Vec<(glob::Pattern, Vec<Option<u64>>)>,
    /// Attributes in the schema.
    pub width: usize,
}

impl Defaults {
    /// The defaults of `sensor`'s class (all missing when no class matches).
    pub fn of(&self, sensor: &str) -> Option<&[Option<u64>]> {
        self.classes
            .iter()
            .find(|(p, _)| p.matches(sensor))
            .map(|(_, a)| a.as_slice())
    }
    /// `sensor`'s view from its registry row (`None`: not registered) under `policy`.
    pub fn view(&self, sensor: &str, row: Option<&Entry>, policy: Unknown) -> View {
        let class = self.of(sensor);
        match row {
            Some(e) => {
                let mut e = e.clone();
                e.attrs.resize(self.width, None);
                if let Some(d) = class {
                    for (a, d) in e.attrs.iter_mut().zip(d) {
                        if a.is_none() {
                            *a = *d;
                        }
                    }
                }
                Some(Arc::new(e))
            }
            None if policy == Unknown::Accept => Some(Arc::new(Entry {
                enabled: true,
                attrs: class.map_or_else(|| vec![None; self.width], <[_]>::to_vec),
                ..Entry::default()
            })),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sensor(max: f64) -> Value {
        Value::Sensor(Entry {
            enabled: true,
            attrs: vec![Some(max.to_bits())],
            ..Entry::default()
        })
    }

    #[test]
    fn an_upsert_retracts_the_old_row_and_a_delete_retracts_it() {
        let mut cur = Current::default();
        let mut out = Vec::new();
        let key = Key::Sensor("m01-temp".into());
        let change = |time, value| Change {
            time,
            key: key.clone(),
            value,
        };
        cur.apply(change(i64::MIN, Some(sensor(80.0))), &mut out);
        cur.apply(change(10, Some(sensor(80.0))), &mut out); // no change
        cur.apply(change(20, Some(sensor(70.0))), &mut out);
        cur.apply(change(30, None), &mut out);
        cur.apply(change(40, None), &mut out); // nothing to delete
        let at = i64::MIN;
        assert_eq!(
            out,
            vec![
                ((key.clone(), (at, sensor(80.0))), at, 1),
                ((key.clone(), (20, sensor(70.0))), 20, 1),
                ((key.clone(), (at, sensor(80.0))), 20, -1),
                ((key.clone(), (20, sensor(70.0))), 30, -1),
            ]
        );
        assert!(cur.is_empty());
    }

    #[test]
    fn class_defaults_fill_what_a_row_leaves_empty_and_stand_for_unknown_sensors() {
        let d = Defaults {
            classes: vec![(
                glob::Pattern::new("*-temp").unwrap(),
                vec![Some(90f64.to_bits()), None],
            )],
            width: 2,
        };
        let row = Entry {
            enabled: true,
            attrs: vec![None, Some(1f64.to_bits())],
            ..Entry::default()
        };
        let v = d.view("m01-temp", Some(&row), Unknown::Reject).unwrap();
        assert_eq!(v.values(), vec![90.0, 1.0]);
        let v = d.view("m02-temp", None, Unknown::Accept).unwrap();
        assert_eq!(v.attr(0), 90.0);
        assert!(v.attr(1).is_nan() && v.enabled);
        assert!(d.view("m02-temp", None, Unknown::Reject).is_none());
        let v = d.view("m02-vib", None, Unknown::Accept).unwrap();
        assert!(v.attr(0).is_nan());
    }
}
