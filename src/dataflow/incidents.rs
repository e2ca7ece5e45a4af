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

use super::Shared;
use super::checkpoint::LiveEpisode;
use super::registry::Registry;
use crate::checkpoint::Checkpoint;
use crate::output::{AlertState, OutRecord};
use crate::stages::incidents::{Episode, Member, Tracker};
use differential_dataflow::algorithms::graphs::propagate::propagate;
use differential_dataflow::{AsCollection, VecCollection};
use std::collections::BTreeMap;
use std::sync::Arc;
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
///
/// Checkpoints: each worker saves the episodes in its part of the collection at the cut,
/// and worker 0 the tracker. A resumed run puts the saved episodes back just below the cut
/// (the registry is rebuilt from its files as before), so the differential computation
/// stands where it stood; the tracker, restored, passes over the membership that rebuilding
/// shows below the cut (it already holds it).
pub fn incidents<'s>(
    scored: &StreamVec<'s, i64, OutRecord>,
    registry: &Registry<'s>,
    slack_ms: i64,
    grace_ms: i64,
    shared: Arc<Shared>,
    resume: Option<Arc<Checkpoint>>,
) -> StreamVec<'s, i64, OutRecord> {
    let restored = resume
        .as_ref()
        .filter(|r| r.at != i64::MIN)
        .map(|r| (r.at, r.incidents.clone().unwrap_or_default()));
    let open = episodes(
        scored,
        grace_ms,
        shared.clone(),
        restored.as_ref().map(|(at, st)| (*at, st.episodes.clone())),
    );
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
    tracked(
        members.inner,
        peaks,
        shared,
        restored.map(|(at, st)| (at, st.tracker)),
    )
}

/// Where an episode of the collection stands on this worker: when it entered (its `open`
/// event's time) and when it was resolved (its `resolved` event's time).
type Standing = (i64, Option<i64>);

/// The open-episode collection: each episode inserted at its `open` event's time and
/// retracted `grace_ms` after its `resolved` event; `restored` (a resumed run: the cut and the
/// saved episodes) is put back just below the cut, on worker 0.
fn episodes<'s>(
    scored: &StreamVec<'s, i64, OutRecord>,
    grace_ms: i64,
    shared: Arc<Shared>,
    restored: Option<(i64, Vec<LiveEpisode>)>,
) -> VecCollection<'s, i64, (String, Episode)> {
    let worker = scored.scope().index();
    scored
        .clone()
        .unary_frontier::<CapacityContainerBuilder<Vec<_>>, _, _, _>(
            Pipeline,
            "episodes",
            move |cap, _| {
                let mut restore = restored
                    .filter(|_| worker == 0)
                    .map(|(at, eps)| (cap.delayed(&(at - 1)), eps));
                // Where each episode stands: kept only for runs that take checkpoints.
                let tracking = shared.checkpoints.is_some();
                let mut live: BTreeMap<(String, Episode), Standing> = BTreeMap::new();
                let mut saved = 0u64;
                move |(input, frontier), output| {
                    if let Some((cap, eps)) = restore.take() {
                        let below = *cap.time();
                        for (sensor, ep, leaves) in eps {
                            let key = (sensor.clone(), ep.clone());
                            output.session(&cap).give(((sensor, ep), below, 1));
                            let resolved = leaves.map(|l| {
                                output.session(&cap.delayed(&l)).give((key.clone(), l, -1));
                                l.saturating_sub(grace_ms)
                            });
                            live.insert(key, (below, resolved));
                        }
                    }
                    input.for_each(|cap, data| {
                        let Some(cap) = cap.retain_least(0) else {
                            return;
                        };
                        let t = *cap.time();
                        let mut session = output.session(&cap);
                        for r in data.iter() {
                            let OutRecord::Alert(a) = r else { continue };
                            let ep: Episode = (a.opened_at, a.sensor.clone(), a.episode);
                            let key = (a.sensor.clone(), ep);
                            let (at, diff): (i64, isize) = match a.state {
                                AlertState::Open => {
                                    if tracking {
                                        live.insert(key.clone(), (t, None));
                                    }
                                    (t, 1)
                                }
                                AlertState::Resolved => {
                                    if let Some(s) = live.get_mut(&key) {
                                        s.1 = Some(t);
                                    }
                                    (t.saturating_add(grace_ms), -1)
                                }
                                AlertState::Update => continue,
                            };
                            session.give((key, at, diff));
                        }
                    });
                    // A cut: once everything below it has arrived, the episodes in the
                    // collection there.
                    let cut = shared.checkpoints.as_ref().and_then(|c| c.armed());
                    let mut keep_from = frontier.frontier().first().copied().unwrap_or(i64::MAX);
                    if let (Some(c), Some((id, at))) = (shared.checkpoints.as_ref(), cut)
                        && saved != id
                    {
                        if frontier.less_than(&at) {
                            keep_from = keep_from.min(at);
                        } else {
                            c.put_live(worker, id, at_cut(&live, at, grace_ms));
                            saved = id;
                        }
                    }
                    // Episodes that have left the collection for good.
                    live.retain(|_, (_, r)| {
                        r.is_none_or(|r| r.saturating_add(grace_ms) >= keep_from)
                    });
                }
            },
        )
        .as_collection()
}

/// The episodes of `live` in the collection at the cut `at`: entered below it and not yet
/// left; one resolved at or after the cut is still open there.
fn at_cut(
    live: &BTreeMap<(String, Episode), Standing>,
    at: i64,
    grace_ms: i64,
) -> Vec<LiveEpisode> {
    live.iter()
        .filter(|(_, (entered, _))| *entered < at)
        .filter_map(|((sensor, ep), (_, resolved))| {
            let leaves = match resolved {
                Some(r) if *r < at => Some(r.saturating_add(grace_ms)),
                _ => None,
            };
            if leaves.is_some_and(|l| l < at) {
                return None;
            }
            Some((sensor.clone(), ep.clone(), leaves))
        })
        .collect()
}

/// Worker 0: membership changes and peaks buffered per time, applied in time order once both
/// inputs are complete through it.
/// `restored` (a resumed run): the cut and the tracker saved there; nothing below the cut is
/// applied again. At a cut, worker 0 saves the tracker once every time below it is applied.
fn tracked<'s>(
    changes: StreamVec<'s, i64, ((Episode, Member), i64, isize)>,
    peaks: StreamVec<'s, i64, (Episode, f64)>,
    shared: Arc<Shared>,
    restored: Option<(i64, Tracker)>,
) -> StreamVec<'s, i64, OutRecord> {
    let worker = changes.scope().index();
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
            let (floor, mut tracker) = restored.unwrap_or((i64::MIN, Tracker::default()));
            let mut saved = 0u64;
            move |(changes, f1), (peaks, f2), output| {
                let cut = shared
                    .checkpoints
                    .as_ref()
                    .filter(|_| worker == 0)
                    .and_then(|c| c.armed());
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
                    if t < floor {
                        // The collection rebuilt below the cut resumed from: already held.
                        continue;
                    }
                    if let (Some(c), Some((id, at))) = (shared.checkpoints.as_ref(), cut)
                        && saved != id
                        && t >= at
                    {
                        c.put_tracker(id, tracker.clone());
                        saved = id;
                    }
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
                // Every time below the cut is applied (and none above it).
                if let (Some(c), Some((id, at))) = (shared.checkpoints.as_ref(), cut)
                    && saved != id
                    && !f1.less_than(&at)
                    && !f2.less_than(&at)
                {
                    c.put_tracker(id, tracker.clone());
                    saved = id;
                }
            }
        },
    )
}
