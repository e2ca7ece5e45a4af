//! Incidents in the dataflow, maintained incrementally with differential dataflow. Open
//! episodes are a collection (an episode is inserted at its `open` event and retracted at its
//! `resolved` one, at those events' times, the retraction delayed by `[registry]
//! incident-grace`); each sensor stands for its registry asset when it
//! has one (the "unit": sensors of one machine belong together); the registry's edges, mapped
//! to units, restricted to units with open episodes (and, for an edge with a travel time, to
//! units whose first open episodes began within it plus a window) and made symmetric, connect
//! them. Each
//! connected component is labelled with its earliest episode by label propagation (an
//! iterative computation), so incidents grow, merge, split and close as episodes open and
//! resolve, retractions flowing through. The membership changes go to worker 0, where
//! `stages::incidents::Tracker` turns them into incident events at each completed time.

use super::registry::Registry;
use crate::output::{AlertState, OutRecord};
use crate::stages::incidents::{Episode, Member, Tracker};
use differential_dataflow::algorithms::graphs::propagate::propagate;
use differential_dataflow::{AsCollection, VecCollection};
use std::collections::BTreeMap;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::vec::Map as _;

/// A collection keyed by sensor (or any id), with each key replaced by its unit: the sensor's
/// registry asset where it has one, else itself.
fn to_unit<'s, X>(
    c: VecCollection<'s, i64, (String, X)>,
    unit_of: &VecCollection<'s, i64, (String, String)>,
) -> VecCollection<'s, i64, (String, X)>
where
    X: differential_dataflow::ExchangeData + std::hash::Hash,
{
    let mapped = c
        .clone()
        .join_map(unit_of.clone(), |_, x, u| (u.clone(), x.clone()));
    let unmapped = c.antijoin(unit_of.clone().map(|(s, _)| s));
    mapped.concat(unmapped)
}

/// The incident events of the alert events in `scored`, at their times (all on worker 0).
/// An edge with a travel time joins two units only while their first open episodes opened
/// within that time plus `slack_ms` (a window) of each other. A resolved episode leaves the
/// collection `grace_ms` after its `resolved` event (an update at that later time, which
/// differential holds until the frontier passes it).
pub fn incidents<'s>(
    scored: &StreamVec<'s, i64, OutRecord>,
    registry: &Registry<'s>,
    slack_ms: i64,
    grace_ms: i64,
) -> StreamVec<'s, i64, OutRecord> {
    // Episodes opening and resolving, each at its event's time; peaks on the side.
    let open = scored
        .clone()
        .unary::<CapacityContainerBuilder<Vec<_>>, _, _, _>(Pipeline, "episodes", |_, _| {
            move |input, output| {
                input.for_each(|cap, data| {
                    let Some(cap) = cap.retain_least(0) else {
                        return;
                    };
                    let t = *cap.time();
                    let mut session = output.session(&cap);
                    for r in data.iter() {
                        let OutRecord::Alert(a) = r else { continue };
                        let ep: Episode = (a.opened_at, a.sensor.clone(), a.episode);
                        let (at, diff): (i64, isize) = match a.state {
                            AlertState::Open => (t, 1),
                            AlertState::Resolved => (t.saturating_add(grace_ms), -1),
                            AlertState::Update => continue,
                        };
                        session.give(((a.sensor.clone(), ep), at, diff));
                    }
                });
            }
        })
        .as_collection();
    let unit_of = registry
        .rows
        .clone()
        .flat_map(|(s, (_, e))| (!e.asset.is_empty()).then_some((s, e.asset)));
    // (unit, episode) of every open episode.
    let units = to_unit(open, &unit_of);
    // Edges between units: whether they run downstream, and their travel time.
    let edges = registry
        .edges
        .clone()
        .map(|((a, b), info)| (a, (b, info.directed, info.travel_ms)));
    let edges = to_unit(edges, &unit_of).map(|(ua, (b, d, tr))| (b, (ua, d, tr)));
    let edges = to_unit(edges, &unit_of)
        .filter(|(ub, (ua, _, _))| ua != ub)
        .map(|(ub, (ua, d, tr))| ((ua, ub), (d, tr)))
        .distinct();
    // Each unit's first open episode (the label it starts propagation with).
    let labels = units.clone().reduce(|_, input, output| {
        output.push((input[0].0.clone(), 1));
    });
    // Edges whose ends both have open episodes (the joins), and, for an edge with a travel
    // time, whose first episodes opened within it (plus a window) of each other.
    let live_edges = edges
        .map(|((a, b), (d, tr))| (a, (b, d, tr)))
        .join_map(labels.clone(), |a, (b, d, tr), la: &Episode| {
            (b.clone(), (a.clone(), *d, *tr, la.0))
        })
        .join_map(labels.clone(), |b, (a, d, tr, ta), lb: &Episode| {
            ((a.clone(), b.clone()), (*d, *tr, *ta, lb.0))
        })
        .filter(move |(_, (_, tr, ta, tb))| {
            *tr == 0 || ta.abs_diff(*tb) <= (*tr).saturating_add(slack_ms).max(0) as u64
        })
        .map(|(ab, (d, _, _, _))| (ab, d))
        .distinct();
    let both_ways = live_edges
        .clone()
        .map(|((a, b), _)| (a, b))
        .concat(live_edges.clone().map(|((a, b), _)| (b, a)))
        .distinct();
    let components = propagate(both_ways, labels);
    // Units with an upstream unit in the same incident.
    let downstream = live_edges
        .filter(|(_, d)| *d)
        .map(|((a, b), _)| (a, b))
        .join_map(components.clone(), |_, b, la| (b.clone(), la.clone()))
        .join_map(components.clone(), |b, la, lb| (b.clone(), la == lb))
        .filter(|(_, same)| *same)
        .map(|(b, _)| b)
        .distinct();
    let labelled = units.join_map(components, |u, ep, label| {
        (u.clone(), (label.clone(), ep.clone()))
    });
    let members = labelled
        .clone()
        .semijoin(downstream.clone())
        .map(|(_, (l, ep))| {
            (
                l,
                Member {
                    episode: ep,
                    has_upstream: true,
                },
            )
        })
        .concat(labelled.antijoin(downstream).map(|(_, (l, ep))| {
            (
                l,
                Member {
                    episode: ep,
                    has_upstream: false,
                },
            )
        }))
        .consolidate();
    let peaks = scored.clone().flat_map(|r| match r {
        OutRecord::Alert(a) => Some(((a.opened_at, a.sensor, a.episode), a.peak)),
        _ => None,
    });
    tracked(members.inner, peaks)
}

/// Worker 0: membership changes and peaks buffered per time, applied in time order once both
/// inputs are complete through it.
fn tracked<'s>(
    changes: StreamVec<'s, i64, ((Episode, Member), i64, isize)>,
    peaks: StreamVec<'s, i64, (Episode, f64)>,
) -> StreamVec<'s, i64, OutRecord> {
    type Pending = BTreeMap<
        i64,
        (
            Capability<i64>,
            Vec<((Episode, Member), isize)>,
            Vec<(Episode, f64)>,
        ),
    >;
    changes.binary_frontier::<_, CapacityContainerBuilder<Vec<OutRecord>>, _, _, _, _>(
        peaks,
        Exchange::new(|_| 0),
        Exchange::new(|_| 0),
        "incidents",
        |_, _| {
            let mut pending: Pending = BTreeMap::new();
            let mut tracker = Tracker::default();
            move |(changes, f1), (peaks, f2), output| {
                changes.for_each(|cap, data| {
                    for (x, t, d) in data.drain(..) {
                        let c = cap.delayed(&t, 0);
                        pending
                            .entry(t)
                            .or_insert_with(|| (c, Vec::new(), Vec::new()))
                            .1
                            .push((x, d));
                    }
                });
                peaks.for_each(|cap, data| {
                    let Some(c) = cap.retain_least(0) else { return };
                    let e = pending
                        .entry(*c.time())
                        .or_insert_with(|| (c.clone(), Vec::new(), Vec::new()));
                    e.2.append(data);
                });
                while let Some((&t, _)) = pending.first_key_value() {
                    if f1.less_equal(&t) || f2.less_equal(&t) {
                        break;
                    }
                    let Some((_, (cap, mut ch, pk))) = pending.pop_first() else {
                        break;
                    };
                    for (ep, p) in pk {
                        tracker.peak(ep, p);
                    }
                    // Changes of one time, consolidated, in a fixed order.
                    ch.sort();
                    let mut merged: Vec<((Episode, Member), isize)> = Vec::new();
                    for (x, d) in ch {
                        match merged.last_mut() {
                            Some((y, e)) if *y == x => *e += d,
                            _ => merged.push((x, d)),
                        }
                    }
                    merged.retain(|(_, d)| *d != 0);
                    let rows = tracker.apply(t, merged);
                    if !rows.is_empty() {
                        output
                            .session(&cap)
                            .give_iterator(rows.into_iter().map(OutRecord::Incident));
                    }
                }
            }
        },
    )
}
