//! The registry in the dataflow. Its changes become differential collections
//! (`registry_changes.rs`: worker 0 emits them, each at its effective time); sensor rows are arranged by sensor id, exchanged as
//! readings are (by sensor, or by asset), so each worker holds the rows of the sensors whose
//! windows it scores. [`enrich`] gives every window its sensor's row as of the window's end,
//! read from the arrangement's trace once the registry's frontier has passed that time: a
//! change affects the windows that end after it, and never a row already written.

use super::Shared;
use super::features::Featured;
use super::registry_changes::{Changes, Live, WindowsFrontier, changes};
use crate::plan::RegistryPlan;
use crate::stages::registry::{EdgeInfo, Entry};
use crate::stages::source::{destination, route_key};
use differential_dataflow::VecCollection;
use differential_dataflow::operators::arrange::{Arranged, TraceAgent, arrangement::arrange_core};
use differential_dataflow::trace::TraceReader;
use differential_dataflow::trace::cursor::{Cursor, cursor_list};
use differential_dataflow::trace::implementations::{ValBatcher, ValSpine};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::{Scope, StreamVec};
use timely::progress::Antichain;

/// The arranged sensor rows, each with the time from which it holds.
pub type SensorTrace = TraceAgent<ValSpine<String, (i64, Entry), i64, isize>>;

/// The registry's collections on one worker.
pub struct Registry<'s> {
    /// Sensor rows, arranged by sensor id on the worker that scores the sensor's windows.
    pub sensors: Arranged<'s, SensorTrace>,
    /// Sensor rows with the time from which they hold, as a collection (for incidents: each
    /// sensor's asset).
    pub rows: VecCollection<'s, i64, (String, (i64, Entry))>,
    /// Edges of the topology.
    pub edges: VecCollection<'s, i64, ((String, String), EdgeInfo)>,
    /// Registry messages refused (for the rejects output), and a failure.
    pub side: StreamVec<'s, i64, crate::output::OutRecord>,
}

/// The registry's collections: `plan`'s changes, and with `live` its topic's, read by worker 0
/// (`registry_changes.rs`). Sensor rows go where the sensor's windows go: by sensor id, or by
/// its asset with `[detect] asset-delimiter` (`delimiter`).
pub fn registry<'s>(
    scope: Scope<'s, i64>,
    plan: Arc<RegistryPlan>,
    delimiter: Option<String>,
    windows: Rc<WindowsFrontier>,
    live: Option<Live>,
    shared: Arc<Shared>,
) -> Registry<'s> {
    let Changes {
        sensors: rows,
        edges,
        side,
    } = changes(scope, plan, windows, live, shared);
    let peers = scope.peers() as u32;
    let exchange = Exchange::new(move |u: &((String, (i64, Entry)), i64, isize)| {
        let key = route_key((u.0).0.as_str(), delimiter.as_deref());
        u64::from(destination(key, peers))
    });
    let sensors =
        arrange_core::<_, _, ValBatcher<String, (i64, Entry), i64, isize>, ValSpine<_, _, _, _>>(
            rows.inner.clone(),
            exchange,
            "registry by sensor",
            ValBatcher::new,
        );
    Registry {
        sensors,
        rows,
        edges,
        side,
    }
}

/// Windows waiting for the registry to be complete up to their time.
type Waiting = BTreeMap<i64, (Capability<i64>, Vec<Featured>)>;

/// Gives each window of `feats` its sensor's registry view (`WindowBatch::registry`) as of
/// the window's end: the rows with times before it, class defaults filled in; nothing for a
/// sensor the registry does not hold when `unknown-sensors = "reject"`.
pub fn enrich<'s>(
    feats: StreamVec<'s, i64, Featured>,
    sensors: &Arranged<'s, SensorTrace>,
    plan: Arc<RegistryPlan>,
    windows: Rc<WindowsFrontier>,
) -> StreamVec<'s, i64, Featured> {
    let mut trace = sensors.trace.clone();
    feats.binary_frontier::<_, CapacityContainerBuilder<Vec<Featured>>, _, _, _, _>(
        sensors.stream.clone(),
        Pipeline,
        Pipeline,
        "registry lookup",
        move |_, _| {
            let mut waiting: Waiting = BTreeMap::new();
            let mut compacted = i64::MIN;
            move |(input, frontier), (reg, reg_frontier), out| {
                input.for_each(|cap, data| {
                    let Some(cap) = cap.retain_least(0) else {
                        data.clear();
                        return;
                    };
                    let e = waiting
                        .entry(*cap.time())
                        .or_insert_with(|| (cap, Vec::new()));
                    e.1.append(data);
                });
                reg.for_each(|_, _| {});
                // A window ending at e reads the rows of times < e: ready once the registry
                // frontier has passed e - 1.
                let ready: Vec<i64> = waiting
                    .keys()
                    .copied()
                    .take_while(|t| !reg_frontier.less_equal(&t.saturating_sub(1)))
                    .collect();
                if !ready.is_empty() {
                    let mut upper = Antichain::new();
                    trace.read_upper(&mut upper);
                    let batches = trace.batches_through(upper.borrow()).unwrap_or_default();
                    let (mut cursor, storage) = cursor_list(batches);
                    for t in ready {
                        let Some((cap, mut items)) = waiting.remove(&t) else {
                            continue;
                        };
                        for (w, _) in items.iter_mut().flatten() {
                            w.registry = lookup(
                                &mut cursor,
                                &storage,
                                &w.sensor,
                                t.saturating_sub(1),
                                &plan,
                            );
                        }
                        out.session(&cap).give_iterator(items.into_iter());
                    }
                }
                windows.set(frontier.frontier().iter().copied().min());
                // Later reads are at times >= the least of what waits and what may come, less 1.
                let next = waiting
                    .keys()
                    .next()
                    .copied()
                    .into_iter()
                    .chain(frontier.frontier().iter().copied())
                    .min();
                match next {
                    Some(n) if n.saturating_sub(1) > compacted => {
                        compacted = n.saturating_sub(1);
                        trace.set_logical_compaction(Antichain::from_elem(compacted).borrow());
                        trace.set_physical_compaction(Antichain::from_elem(compacted).borrow());
                    }
                    None if compacted != i64::MAX => {
                        compacted = i64::MAX;
                        trace.set_logical_compaction(Antichain::new().borrow());
                        trace.set_physical_compaction(Antichain::new().borrow());
                    }
                    _ => {}
                }
            }
        },
    )
}

/// The views of `sensors` as of `at` (rows with times <= `at`).
fn lookup<C>(
    cursor: &mut C,
    storage: &C::Storage,
    sensors: &[Arc<str>],
    at: i64,
    plan: &RegistryPlan,
) -> Vec<crate::stages::registry::View>
where
    C: for<'a> Cursor<Key<'a> = &'a String, Val<'a> = &'a (i64, Entry), Time = i64, Diff = isize>,
    for<'a> C: Cursor<TimeGat<'a> = &'a i64, DiffGat<'a> = &'a isize>,
{
    let mut order: Vec<usize> = (0..sensors.len()).collect();
    order.sort_by(|&a, &b| sensors[a].cmp(&sensors[b]));
    let mut out = vec![None; sensors.len()];
    cursor.rewind_keys(storage);
    let mut last: Option<(usize, crate::stages::registry::View)> = None;
    for i in order {
        if let Some((j, v)) = &last
            && sensors[*j] == sensors[i]
        {
            out[i] = v.clone();
            continue;
        }
        let key = sensors[i].to_string();
        cursor.seek_key(storage, &key);
        let mut row = None;
        if cursor.get_key(storage) == Some(&key) {
            // Rows in the order they hold from: the row of `at` is the last one from before
            // it that is present at `at`; those from after it are not looked at.
            while cursor.val_valid(storage) && cursor.val(storage).0 <= at {
                let mut n = 0;
                cursor.map_times(storage, |t, d| {
                    if *t <= at {
                        n += *d;
                    }
                });
                if n > 0 {
                    row = Some(&cursor.val(storage).1);
                }
                cursor.step_val(storage);
            }
        }
        let v = plan.defaults.view(&sensors[i], row, plan.unknown);
        out[i] = v.clone();
        last = Some((i, v));
    }
    out
}
