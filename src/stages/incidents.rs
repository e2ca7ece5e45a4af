//! Incidents: connected sets of sensors with open alert episodes. `dataflow/incidents.rs`
//! maintains which incident each open episode belongs to (differential: the components of
//! the topology restricted to sensors, or their assets, with open episodes, each labelled by
//! its earliest episode); [`Tracker`] turns the changes of that membership, one event time
//! at a time, into the incident lifecycle: open, update, merged-into, resolved.
//!
//! Ids are stable because a component's label is its earliest member episode
//! (`sensor#episode`): a merge keeps the older incident's id (the younger one is
//! `merged-into` it), and a split leaves the id with the part that holds that episode (the
//! other parts open as new incidents, `related` to the one they left). Knows nothing of
//! timely.

use crate::output::{IncidentRow, IncidentState};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// An alert episode: (opened at, sensor, episode number). Ordered by opening time first, so
/// the least episode of a set is the one that opened first.
pub type Episode = (i64, String, u64);

/// An episode's place in an incident, as the membership collection carries it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Member {
    /// The episode.
    pub episode: Episode,
    /// True when another member is upstream of it along a directed edge.
    pub has_upstream: bool,
}

/// An incident id as written: `sensor#episode`.
pub fn id(label: &Episode) -> String {
    format!("{}#{}", label.1, label.2)
}

#[derive(Clone, Debug, Default)]
struct Incident {
    members: BTreeSet<Member>,
    peak: f64,
}

/// The incidents as they stand, and the events their changes cause.
#[derive(Default)]
pub struct Tracker {
    incidents: BTreeMap<Episode, Incident>,
    /// The incident each member episode belongs to.
    of: HashMap<Episode, Episode>,
    /// Largest fused score of each open episode so far.
    peaks: HashMap<Episode, f64>,
}

impl Tracker {
    /// Records an episode's peak (from its alert events).
    pub fn peak(&mut self, episode: Episode, peak: f64) {
        let p = self.peaks.entry(episode).or_insert(f64::NEG_INFINITY);
        *p = p.max(peak);
    }

    /// Applies the membership changes of one event time `t` ((incident label, member), +1 or
    /// -1) and returns the events they cause, ordered by incident id.
    pub fn apply(&mut self, t: i64, changes: Vec<((Episode, Member), isize)>) -> Vec<IncidentRow> {
        let before: HashMap<Episode, Episode> = changes
            .iter()
            .filter_map(|((_, m), _)| {
                let label = self.label_of(&m.episode)?;
                Some((m.episode.clone(), label))
            })
            .collect();
        let mut touched = BTreeSet::new();
        let mut existed = BTreeMap::new();
        for ((label, member), diff) in &changes {
            existed
                .entry(label.clone())
                .or_insert_with(|| self.incidents.contains_key(label));
            let inc = self.incidents.entry(label.clone()).or_default();
            if *diff > 0 {
                inc.members.insert(member.clone());
                self.of.insert(member.episode.clone(), label.clone());
            } else {
                inc.members.remove(member);
                if self.of.get(&member.episode) == Some(label) {
                    self.of.remove(&member.episode);
                }
            }
            touched.insert(label.clone());
        }
        let mut out = Vec::new();
        for label in touched {
            let had = existed.get(&label).copied().unwrap_or(false);
            let now = self
                .incidents
                .get(&label)
                .is_some_and(|i| !i.members.is_empty());
            if now {
                let peak = {
                    let inc = &self.incidents[&label];
                    inc.members
                        .iter()
                        .filter_map(|m| self.peaks.get(&m.episode))
                        .fold(inc.peak, |a, b| a.max(*b))
                };
                let inc = self.incidents.get_mut(&label).expect("present");
                inc.peak = peak;
                let (state, related) = if had {
                    (IncidentState::Update, String::new())
                } else {
                    // A part that split off names the incident it left.
                    let from = inc
                        .members
                        .iter()
                        .filter_map(|m| before.get(&m.episode))
                        .find(|l| **l != label)
                        .map(id)
                        .unwrap_or_default();
                    (IncidentState::Open, from)
                };
                out.push(row(&label, inc, state, t, None, related));
            } else if had {
                let inc = self.incidents.remove(&label).unwrap_or_default();
                // Where did its members go? Into another incident: merged; nowhere: resolved.
                let last: BTreeSet<Member> = changes
                    .iter()
                    .filter(|((l, _), d)| *l == label && *d < 0)
                    .map(|((_, m), _)| m.clone())
                    .collect();
                let into = last
                    .iter()
                    .filter_map(|m| self.label_of(&m.episode))
                    .min()
                    .map(|l| id(&l));
                let peak = last
                    .iter()
                    .filter_map(|m| self.peaks.get(&m.episode))
                    .fold(inc.peak, |a, b| a.max(*b));
                let shown = Incident {
                    members: last,
                    peak,
                };
                let state = if into.is_some() {
                    IncidentState::MergedInto
                } else {
                    IncidentState::Resolved
                };
                out.push(row(
                    &label,
                    &shown,
                    state,
                    t,
                    Some(t),
                    into.unwrap_or_default(),
                ));
            } else {
                self.incidents.remove(&label);
            }
        }
        // Episodes no incident holds any more are over: forget their peaks.
        for ((_, m), d) in &changes {
            if *d < 0 && self.label_of(&m.episode).is_none() {
                self.peaks.remove(&m.episode);
            }
        }
        out
    }

    /// The incident `episode` belongs to now.
    fn label_of(&self, episode: &Episode) -> Option<Episode> {
        self.of.get(episode).cloned()
    }

    /// Open incidents.
    pub fn open(&self) -> usize {
        self.incidents.len()
    }
}

fn row(
    label: &Episode,
    inc: &Incident,
    state: IncidentState,
    t: i64,
    end: Option<i64>,
    related: String,
) -> IncidentRow {
    let mut sensors: Vec<&str> = inc.members.iter().map(|m| m.episode.1.as_str()).collect();
    sensors.sort_unstable();
    sensors.dedup();
    let any_upstream = inc.members.iter().any(|m| m.has_upstream);
    let upstream = if any_upstream {
        inc.members
            .iter()
            .filter(|m| !m.has_upstream)
            .map(|m| &m.episode)
            .min()
            .map(|e| e.1.clone())
            .unwrap_or_default()
    } else {
        String::new()
    };
    IncidentRow {
        incident: id(label),
        state,
        time: t,
        start: label.0,
        end,
        members: sensors.join(","),
        size: sensors.len() as u32,
        root_cause: label.1.clone(),
        upstream,
        peak: if inc.peak.is_finite() { inc.peak } else { 0.0 },
        related,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(at: i64, s: &str) -> Episode {
        (at, s.into(), 1)
    }
    fn m(at: i64, s: &str) -> Member {
        Member {
            episode: ep(at, s),
            has_upstream: false,
        }
    }
    fn events(rows: &[IncidentRow]) -> Vec<(String, &'static str, String, String)> {
        rows.iter()
            .map(|r| {
                (
                    r.incident.clone(),
                    r.state.as_str(),
                    r.members.clone(),
                    r.related.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn incidents_open_grow_merge_split_and_resolve_with_stable_ids() {
        let mut t = Tracker::default();
        let (a, b, c) = (ep(10, "a"), ep(20, "b"), ep(30, "c"));
        // a opens; c opens apart.
        let r = t.apply(10, vec![((a.clone(), m(10, "a")), 1)]);
        assert_eq!(
            events(&r),
            vec![("a#1".into(), "open", "a".into(), "".into())]
        );
        let r = t.apply(30, vec![((c.clone(), m(30, "c")), 1)]);
        assert_eq!(
            events(&r),
            vec![("c#1".into(), "open", "c".into(), "".into())]
        );
        // b opens between them: one incident under a's id; c's is merged into it.
        t.peak(c.clone(), 0.9);
        let r = t.apply(
            40,
            vec![
                ((a.clone(), m(20, "b")), 1),
                ((a.clone(), m(30, "c")), 1),
                ((c.clone(), m(30, "c")), -1),
            ],
        );
        assert_eq!(
            events(&r),
            vec![
                ("a#1".into(), "update", "a,b,c".into(), "".into()),
                ("c#1".into(), "merged-into", "c".into(), "a#1".into()),
            ]
        );
        assert_eq!(r[0].peak, 0.9);
        assert_eq!(t.open(), 1);
        // b resolves: c splits off again, under its own id, from a#1.
        let r = t.apply(
            50,
            vec![
                ((a.clone(), m(20, "b")), -1),
                ((a.clone(), m(30, "c")), -1),
                ((c.clone(), m(30, "c")), 1),
            ],
        );
        assert_eq!(
            events(&r),
            vec![
                ("a#1".into(), "update", "a".into(), "".into()),
                ("c#1".into(), "open", "c".into(), "a#1".into()),
            ]
        );
        let _ = b;
        // Both resolve.
        let r = t.apply(
            60,
            vec![((a.clone(), m(10, "a")), -1), ((c.clone(), m(30, "c")), -1)],
        );
        assert_eq!(
            events(&r),
            vec![
                ("a#1".into(), "resolved", "a".into(), "".into()),
                ("c#1".into(), "resolved", "c".into(), "".into()),
            ]
        );
        assert_eq!((r[0].end, r[0].start), (Some(60), 10));
        assert_eq!(t.open(), 0);
        assert!(t.of.is_empty() && t.peaks.is_empty());
    }

    #[test]
    fn the_most_upstream_member_is_the_earliest_without_an_upstream_member() {
        let mut t = Tracker::default();
        let l = ep(10, "d03");
        let up = |at, s: &str, has| Member {
            episode: ep(at, s),
            has_upstream: has,
        };
        let r = t.apply(
            10,
            vec![
                ((l.clone(), up(10, "d03", true)), 1),
                ((l.clone(), up(12, "d01", false)), 1),
                ((l.clone(), up(11, "d02", true)), 1),
            ],
        );
        assert_eq!(
            (r[0].root_cause.as_str(), r[0].upstream.as_str()),
            ("d03", "d01")
        );
        assert_eq!(r[0].size, 3);
    }
}
