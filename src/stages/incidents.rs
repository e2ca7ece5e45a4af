//! Incidents: connected sets of sensors with open alert episodes. `dataflow/incidents.rs`
//! maintains which incident each open episode belongs to (differential: the components of
//! the topology restricted to sensors, or their assets, with open episodes, each labelled by
//! its earliest episode); [`Tracker`] turns the changes of that membership, one event time
//! at a time, into the incident lifecycle: open, update, merged-into, resolved.
//!
//! Ids are stable. A new incident's id is its first episode (`sensor#episode`); a merge keeps
//! the older incident's id (the younger one is `merged-into` it); a split leaves the id with
//! the part that holds the incident's earliest open episode (the other parts open as new
//! incidents, `related` to the one they left); and when the earliest episode resolves while
//! the rest stays connected, the incident goes on under its id. Knows nothing of timely.

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

/// Who an incident is to its consumers: its id, start and root cause, which stay the same
/// while it lasts, whatever its label becomes.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Identity {
    id: String,
    start: i64,
    root: String,
    peak: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Incident {
    members: BTreeSet<Member>,
}

/// The incidents as they stand, and the events their changes cause.
///
/// The membership collection labels a component with its earliest *open* episode, so when
/// that episode resolves while others stay connected the label changes. The incident does
/// not: the new label takes over the identity (id, start, root cause) of the incident its
/// members came from. A label whose members came from no vanished incident is a new
/// incident (a split when they came from one that goes on).
///
/// It is saved whole in a checkpoint (serde).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Tracker {
    /// Members by component label.
    incidents: BTreeMap<Episode, Incident>,
    /// Identity by component label.
    ids: HashMap<Episode, Identity>,
    /// The label each member episode has.
    of: HashMap<Episode, Episode>,
    /// Largest fused score of each open episode so far.
    peaks: HashMap<Episode, f64>,
    /// What the last event of each open incident showed (members, upstream, peak): an
    /// `update` that would show the same is not sent (a member episode replaced by another of
    /// the same sensor, as an episode that breaks up within `incident-grace` does).
    shown: HashMap<String, (String, String, u64)>,
}

impl Tracker {
    /// Records an episode's peak (from its alert events).
    pub fn peak(&mut self, episode: Episode, peak: f64) {
        let p = self.peaks.entry(episode).or_insert(f64::NEG_INFINITY);
        *p = p.max(peak);
    }

    /// Applies the membership changes of one event time `t` ((component label, member), +1 or
    /// -1) and returns the events they cause, ordered by incident id.
    pub fn apply(&mut self, t: i64, changes: Vec<((Episode, Member), isize)>) -> Vec<IncidentRow> {
        // Where each changed member was before.
        let before: HashMap<Episode, Episode> = changes
            .iter()
            .filter_map(|((_, m), _)| Some((m.episode.clone(), self.of.get(&m.episode)?.clone())))
            .collect();
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
        }
        let now = |s: &Self, l: &Episode| s.incidents.get(l).is_some_and(|i| !i.members.is_empty());
        let vanished: BTreeSet<Episode> = existed
            .iter()
            .filter(|(l, had)| **had && !now(self, l))
            .map(|(l, _)| l.clone())
            .collect();
        let mut taken_over = BTreeSet::new();
        let mut out = Vec::new();
        for (label, had) in &existed {
            if !now(self, label) {
                continue;
            }
            let (state, related) = if *had {
                (IncidentState::Update, String::new())
            } else {
                let sources: BTreeSet<&Episode> = self.incidents[label]
                    .members
                    .iter()
                    .filter_map(|m| before.get(&m.episode))
                    .collect();
                let heir = sources
                    .iter()
                    .filter(|l| vanished.contains(**l) && !taken_over.contains(**l))
                    .filter_map(|l| Some(((*l).clone(), self.ids.get(*l)?.clone())))
                    .min_by(|a, b| (a.1.start, &a.1.id).cmp(&(b.1.start, &b.1.id)));
                match heir {
                    Some((old, identity)) => {
                        taken_over.insert(old);
                        self.ids.insert(label.clone(), identity);
                        (IncidentState::Update, String::new())
                    }
                    None => {
                        self.ids.insert(
                            label.clone(),
                            Identity {
                                id: id(label),
                                start: label.0,
                                root: label.1.clone(),
                                peak: f64::NEG_INFINITY,
                            },
                        );
                        let from = sources
                            .iter()
                            .filter_map(|l| self.ids.get(*l))
                            .map(|i| i.id.clone())
                            .next()
                            .unwrap_or_default();
                        (IncidentState::Open, from)
                    }
                }
            };
            let members = self.incidents[label].members.clone();
            let identity = self.ids.get_mut(label).expect("identity");
            for m in &members {
                if let Some(p) = self.peaks.get(&m.episode) {
                    identity.peak = identity.peak.max(*p);
                }
            }
            out.push(row(identity, &members, state, t, None, related));
        }
        for label in &vanished {
            self.incidents.remove(label);
            let identity = self.ids.remove(label);
            if taken_over.contains(label) {
                continue;
            }
            let Some(mut identity) = identity else {
                continue;
            };
            // Where did its members go? Into another incident: merged; nowhere: resolved.
            let last: BTreeSet<Member> = changes
                .iter()
                .filter(|((l, _), d)| l == label && *d < 0)
                .map(|((_, m), _)| m.clone())
                .collect();
            for m in &last {
                if let Some(p) = self.peaks.get(&m.episode) {
                    identity.peak = identity.peak.max(*p);
                }
            }
            let into = last
                .iter()
                .filter_map(|m| self.of.get(&m.episode))
                .filter_map(|l| self.ids.get(l))
                .map(|i| i.id.clone())
                .min();
            let state = if into.is_some() {
                IncidentState::MergedInto
            } else {
                IncidentState::Resolved
            };
            out.push(row(
                &identity,
                &last,
                state,
                t,
                Some(t),
                into.unwrap_or_default(),
            ));
        }
        for label in existed.keys() {
            if !now(self, label) {
                self.incidents.remove(label);
            }
        }
        // Episodes no incident holds any more are over: forget their peaks.
        for ((_, m), d) in &changes {
            if *d < 0 && !self.of.contains_key(&m.episode) {
                self.peaks.remove(&m.episode);
            }
        }
        out.retain(|r| {
            let seen = (r.members.clone(), r.upstream.clone(), r.peak.to_bits());
            match r.state {
                IncidentState::Open => {
                    self.shown.insert(r.incident.clone(), seen);
                    true
                }
                IncidentState::Update => {
                    self.shown.insert(r.incident.clone(), seen.clone()) != Some(seen)
                }
                IncidentState::MergedInto | IncidentState::Resolved => {
                    self.shown.remove(&r.incident);
                    true
                }
            }
        });
        out.sort_by(|a, b| a.incident.cmp(&b.incident).then(a.state.cmp(&b.state)));
        out
    }

    /// Open incidents.
    pub fn open(&self) -> usize {
        self.incidents.len()
    }
}

fn row(
    who: &Identity,
    members: &BTreeSet<Member>,
    state: IncidentState,
    t: i64,
    end: Option<i64>,
    related: String,
) -> IncidentRow {
    let mut sensors: Vec<&str> = members.iter().map(|m| m.episode.1.as_str()).collect();
    sensors.sort_unstable();
    sensors.dedup();
    let any_upstream = members.iter().any(|m| m.has_upstream);
    let upstream = if any_upstream {
        members
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
        incident: who.id.clone(),
        state,
        time: t,
        start: who.start,
        end,
        members: sensors.join(","),
        size: sensors.len() as u32,
        root_cause: who.root.clone(),
        upstream,
        peak: if who.peak.is_finite() { who.peak } else { 0.0 },
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
    fn an_incident_keeps_its_id_when_its_earliest_episode_resolves_first() {
        let mut t = Tracker::default();
        let (a, b) = (ep(10, "a"), ep(20, "b"));
        t.apply(10, vec![((a.clone(), m(10, "a")), 1)]);
        t.apply(
            20,
            vec![((a.clone(), m(20, "b")), 1), ((a.clone(), m(30, "c")), 1)],
        );
        // a resolves; b and c stay connected: the component's label becomes b's episode, the
        // incident stays a#1.
        let r = t.apply(
            30,
            vec![
                ((a.clone(), m(10, "a")), -1),
                ((a.clone(), m(20, "b")), -1),
                ((a.clone(), m(30, "c")), -1),
                ((b.clone(), m(20, "b")), 1),
                ((b.clone(), m(30, "c")), 1),
            ],
        );
        assert_eq!(
            events(&r),
            vec![("a#1".into(), "update", "b,c".into(), "".into())]
        );
        assert_eq!((r[0].start, r[0].root_cause.as_str()), (10, "a"));
        let r = t.apply(
            40,
            vec![((b.clone(), m(20, "b")), -1), ((b, m(30, "c")), -1)],
        );
        assert_eq!(
            events(&r),
            vec![("a#1".into(), "resolved", "b,c".into(), "".into())]
        );
        assert_eq!(t.open(), 0);
        assert!(t.ids.is_empty() && t.of.is_empty());
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
