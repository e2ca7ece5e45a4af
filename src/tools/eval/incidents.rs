//! Incident evaluation: the incidents a replay found (the `incidents` output) against those a
//! fixture holds (`FILE.incidents.json`, written by `hyflow gen`). Members are compared by
//! unit (the registry asset of a sensor, or the sensor). A found incident matches an expected
//! one when their times overlap (the expected one's end extended by `slack`, the time a
//! window needs to see it) and they share a member. Reported: how many expected incidents
//! were found (recall), how many found ones match one (precision), and for the found
//! incidents that match, how often the root-cause candidate (the earliest member) and the
//! most upstream member are the expected ones.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// An incident a fixture holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExpectedIncident {
    /// What happened (`jam`, `detector-failure`).
    pub kind: String,
    /// Where it started: the root cause.
    pub root: String,
    /// The most upstream unit it reached (empty where the topology has no direction).
    #[serde(default)]
    pub upstream: String,
    /// Every unit it affected.
    pub members: Vec<String>,
    /// Start (ms).
    pub start: i64,
    /// End (ms, exclusive).
    pub end: i64,
}

/// An incident as found: its events folded together.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FoundIncident {
    /// Its id.
    pub id: String,
    /// When its earliest member opened.
    pub start: i64,
    /// Its last event's time.
    pub end: i64,
    /// Units of every member it had.
    pub members: BTreeSet<String>,
    /// Root-cause candidate's unit.
    pub root: String,
    /// Its last non-empty most-upstream member's unit.
    pub upstream: String,
}

/// One incident event, as the `incidents` output holds it.
pub struct Event<'a> {
    /// Incident id.
    pub id: &'a str,
    /// Event time.
    pub time: i64,
    /// Incident start.
    pub start: i64,
    /// Members (comma-separated sensors).
    pub members: &'a str,
    /// Root-cause candidate.
    pub root: &'a str,
    /// Most upstream member.
    pub upstream: &'a str,
}

/// Folds events into incidents; `unit` maps a sensor to its unit.
pub fn fold<'a>(
    events: impl Iterator<Item = Event<'a>>,
    unit: &dyn Fn(&str) -> String,
) -> Vec<FoundIncident> {
    let mut by: BTreeMap<String, FoundIncident> = BTreeMap::new();
    for e in events {
        let f = by.entry(e.id.to_string()).or_insert_with(|| FoundIncident {
            id: e.id.to_string(),
            start: e.start,
            end: e.time,
            root: unit(e.root),
            ..FoundIncident::default()
        });
        f.end = f.end.max(e.time);
        f.members
            .extend(e.members.split(',').filter(|m| !m.is_empty()).map(unit));
        if !e.upstream.is_empty() {
            f.upstream = unit(e.upstream);
        }
    }
    by.into_values().collect()
}

/// What [`evaluate`] finds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IncidentReport {
    /// Expected incidents.
    pub expected: usize,
    /// Expected incidents that a found one matches.
    pub detected: usize,
    /// Found incidents.
    pub found: usize,
    /// Found incidents that match an expected one.
    pub matching: usize,
    /// Detected incidents whose first matching found incident names the expected root.
    pub root_right: usize,
    /// Detected incidents with an expected upstream unit.
    pub with_upstream: usize,
    /// ... whose first matching found incident names it.
    pub upstream_right: usize,
}

impl IncidentReport {
    /// Found incidents that match / found (1 when none was found).
    pub fn precision(&self) -> f64 {
        ratio(self.matching, self.found)
    }
    /// Detected / expected (1 when none was expected).
    pub fn recall(&self) -> f64 {
        ratio(self.detected, self.expected)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

fn matches(f: &FoundIncident, e: &ExpectedIncident, slack: i64) -> bool {
    f.start < e.end + slack && f.end >= e.start && e.members.iter().any(|m| f.members.contains(m))
}

/// Scores `found` against `expected`.
pub fn evaluate(
    expected: &[ExpectedIncident],
    found: &[FoundIncident],
    slack: i64,
) -> IncidentReport {
    let mut r = IncidentReport {
        expected: expected.len(),
        found: found.len(),
        ..IncidentReport::default()
    };
    r.matching = found
        .iter()
        .filter(|f| expected.iter().any(|e| matches(f, e, slack)))
        .count();
    for e in expected {
        let Some(first) = found
            .iter()
            .filter(|f| matches(f, e, slack))
            .min_by_key(|f| (f.start, f.id.clone()))
        else {
            continue;
        };
        r.detected += 1;
        r.root_right += usize::from(first.root == e.root);
        if !e.upstream.is_empty() {
            r.with_upstream += 1;
            r.upstream_right += usize::from(first.upstream == e.upstream);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected(root: &str, members: &[&str], start: i64, end: i64) -> ExpectedIncident {
        ExpectedIncident {
            kind: "jam".into(),
            root: root.into(),
            upstream: members[0].into(),
            members: members.iter().map(|m| m.to_string()).collect(),
            start,
            end,
        }
    }

    #[test]
    fn found_incidents_fold_by_id_and_match_by_time_and_members() {
        let unit = |s: &str| s.split('-').next().unwrap_or(s).to_string();
        let ev = |id, time, members, root, upstream| Event {
            id,
            time,
            start: 100,
            members,
            root,
            upstream,
        };
        let found = fold(
            [
                ev("d03-speed#1", 100, "d03-speed", "d03-speed", ""),
                ev(
                    "d03-speed#1",
                    200,
                    "d02-occ,d03-speed",
                    "d03-speed",
                    "d02-occ",
                ),
                ev("d03-speed#1", 300, "d03-speed", "d03-speed", ""),
                ev("d07-flow#1", 100, "d07-flow", "d07-flow", ""),
            ]
            .into_iter(),
            &unit,
        );
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].members, ["d02", "d03"].map(String::from).into());
        assert_eq!((found[0].end, found[0].upstream.as_str()), (300, "d02"));
        let exp = [
            expected("d03", &["d01", "d02", "d03"], 50, 250),
            expected("d05", &["d05"], 50, 250),
        ];
        let r = evaluate(&exp, &found, 10);
        assert_eq!((r.expected, r.detected, r.found, r.matching), (2, 1, 2, 1));
        assert_eq!((r.root_right, r.with_upstream, r.upstream_right), (1, 1, 0));
        assert_eq!((r.precision(), r.recall()), (0.5, 0.5));
        // Outside the time: no match, even with a shared member.
        let late = [expected("d03", &["d03"], 400, 500)];
        assert_eq!(evaluate(&late, &found, 10).detected, 0);
    }
}
