//! Incidents in the dataflow, maintained incrementally with differential dataflow. Open
//! episodes are a collection (an episode is inserted at its `open` event and retracted at its
//! `resolved` one, at those events' times); each sensor stands for its registry asset when it
//! has one (the "unit": sensors of one machine belong together); the registry's edges, mapped
//! to units, restricted to units with open episodes and made symmetric, connect them. Each
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
pub fn incidents<'s>(
    scored: &StreamVec<'s, i64, OutRecord>,
    registry: &Registry<'s>,
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
                        let diff: isize = match a.state {
                            AlertState::Open => 1,
                            AlertState::Resolved => -1,
                            AlertState::Update => continue,
                        };
                        session.give(((a.sensor.clone(), ep), t, diff));
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
    // Edges between units (both ways), whether they run downstream.
    let edges = registry
        .edges
        .clone()
        .map(|((a, b), info)| (a, (b, info.directed)));
    let edges = to_unit(edges, &unit_of).map(|(ua, (b, d))| (b, (ua, d)));
    let edges = to_unit(edges, &unit_of)
        .filter(|(ub, (ua, _))| ua != ub)
        .map(|(ub, (ua, d))| ((ua, ub), d))
        .distinct();
    let active = units.clone().map(|(u, _)| u).distinct();
    let live_edges = edges
        .clone()
        .map(|((a, b), d)| (a, (b, d)))
        .semijoin(active.clone())
        .map(|(a, (b, d))| (b, (a, d)))
        .semijoin(active)
        .map(|(b, (a, d))| ((a, b), d));
    let both_ways = live_edges
        .clone()
        .map(|((a, b), _)| (a, b))
        .concat(live_edges.clone().map(|((a, b), _)| (b, a)))
        .distinct();
    let labels = units.clone().reduce(|_, input, output| {
        output.push((input[0].0.clone(), 1));
    });
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
