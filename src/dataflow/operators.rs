//! The timely operators of the window and sink stages (the sources are in `file_source.rs`
//! and `kafka_source.rs` over `source_driver.rs`, features in `features.rs`, scoring in
//! `score.rs`).

use super::Shared;
use crate::batch::ReadingBatch;
use crate::compute::{FeatureBatch, WindowBatch};
use crate::events::{Event as _, RowsRejected};
use crate::output::OutRecord;
use crate::plan::Plan;
use crate::sink::SinkSet;
use crate::window::WindowState;
use std::collections::BTreeMap;
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::core::OkErr;
use timely::dataflow::operators::{Capability, Operator};

/// Closed windows with their features, or the failure that stopped computing them (it goes
/// on to the sinks, which then give up: in a cluster, the way process 0 hears of it).
pub type Featured = Result<(WindowBatch, FeatureBatch), String>;

/// Windows: buffers readings per sensor and closes windows as the frontier passes their end.
/// Returns the closed windows and the duplicate rejects (for the sinks).
#[allow(clippy::result_large_err)] // `Err` is the second output, not an error
pub fn window_stage<'s>(
    stream: StreamVec<'s, i64, ReadingBatch>,
    pipeline: Arc<Plan>,
) -> (
    StreamVec<'s, i64, WindowBatch>,
    StreamVec<'s, i64, OutRecord>,
) {
    let exchange = Exchange::new(|b: &ReadingBatch| u64::from(b.dest));
    let out = stream
        .unary_frontier::<CapacityContainerBuilder<Vec<Result<WindowBatch, OutRecord>>>, _, _, _>(
            exchange,
            "Window",
            move |_cap, _info| {
                let mut state =
                    WindowState::new(pipeline.window, pipeline.fill, pipeline.clean.dedup);
                let max_batch = pipeline.compute.max_batch_windows.max(1);
                let spec = pipeline.window;
                let mut held: Option<Capability<i64>> = None;
                let span = tracing::debug_span!("operator", name = "window");
                move |(input, frontier), output| {
                    let _span = span.enter();
                    input.for_each(|cap, data| {
                        for b in data.drain(..) {
                            state.insert(&b);
                            let Some(c) = cap.retain_least(output.output_index()) else {
                                continue;
                            };
                            if held.as_ref().is_none_or(|h| c.time() < h.time()) {
                                held = Some(c);
                            }
                        }
                    });
                    let Some(h) = held.as_mut() else { return };
                    let upto = least(frontier.frontier());
                    let mut rejects = Vec::new();
                    let closed = state.close(upto, &mut rejects);
                    RowsRejected {
                        rows: rejects.iter().map(|r| &r.1),
                    }
                    .emit();
                    for (end, batch) in closed {
                        let t = h.delayed(&end);
                        let mut session = output.session(&t);
                        for part in split(batch, max_batch) {
                            session.give(Ok(part));
                        }
                    }
                    for (t, r) in rejects {
                        let t = h.delayed(&spec.last_end(t).max(*h.time()));
                        output.session(&t).give(Err(OutRecord::Reject(r)));
                    }
                    if state.buffered() == 0 {
                        held = None;
                    } else if upto > *h.time() {
                        h.downgrade(&upto);
                    }
                }
            },
        );
    out.ok_err(|r| r)
}

/// The least time of a frontier (`i64::MAX` once it is empty: everything is complete).
fn least(f: timely::progress::frontier::AntichainRef<'_, i64>) -> i64 {
    f.iter().copied().min().unwrap_or(i64::MAX)
}

/// Splits a batch into batches of at most `max` windows.
fn split(batch: WindowBatch, max: usize) -> Vec<WindowBatch> {
    if batch.len() <= max {
        return vec![batch];
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < batch.len() {
        let j = (i + max).min(batch.len());
        let mut b = WindowBatch::default();
        for k in i..j {
            b.push_window(
                batch.slot[k],
                batch.sensor[k].clone(),
                batch.start[k],
                batch.end[k],
            );
            let (ts, vs) = batch.window(k);
            b.times.extend_from_slice(ts);
            b.values.extend_from_slice(vs);
            b.finish_window(batch.filled[k]);
        }
        out.push(b);
        i = j;
    }
    out
}

/// Sinks: on worker 0, writes every record once its time is complete, in canonical order.
pub fn sink_stage<'s>(
    stream: StreamVec<'s, i64, OutRecord>,
    sinks: Option<SinkSet>,
    shared: Arc<Shared>,
) -> StreamVec<'s, i64, ()> {
    let scope = stream.scope();
    stream.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Exchange::new(|_: &OutRecord| 0),
        "Sink",
        move |_cap, info| {
            let mut pending: BTreeMap<i64, Vec<OutRecord>> = BTreeMap::new();
            let mut sinks = sinks;
            let mut last_checkpoint = std::time::Instant::now();
            let act = scope.activator_for(info.address);
            let span = tracing::debug_span!("operator", name = "sink");
            move |(input, frontier), _output| {
                let _span = span.enter();
                input.for_each(|cap, data| {
                    let Some(t) = cap.least().copied() else {
                        return;
                    };
                    if let Some(OutRecord::Failure(msg)) =
                        data.iter().find(|r| matches!(r, OutRecord::Failure(_)))
                    {
                        shared.fail(msg.clone());
                    }
                    pending.entry(t).or_default().append(data);
                });
                let Some(set) = sinks.as_mut() else {
                    pending.clear();
                    return;
                };
                let mut ready = Vec::new();
                while let Some(entry) = pending.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let (t, rows) = entry.remove_entry();
                    ready.extend(rows.into_iter().map(|r| (t, r)));
                }
                if !ready.is_empty()
                    && !shared.aborted()
                    && let Err(e) = set.write(ready)
                {
                    shared.fail(format!("writing output: {e}"));
                }
                // Live runs: now and then make everything written durable; every row below
                // the frontier is written, so the sources may commit the offsets behind it.
                if let Some(every) = shared.checkpoint_every() {
                    // Come back even if nothing arrives: a quiet stream still gets committed.
                    act.activate_after(every);
                }
                if let Some(every) = shared.checkpoint_every()
                    && last_checkpoint.elapsed() >= every
                    && !shared.aborted()
                {
                    last_checkpoint = std::time::Instant::now();
                    let upto = least(frontier.frontier());
                    match set.make_durable() {
                        Ok(true) => {
                            shared.set_durable(upto);
                            crate::events::SinkDurable { upto_ms: upto }.emit();
                        }
                        Ok(false) => {}
                        Err(e) => shared.fail(format!("making output durable: {e}")),
                    }
                }
                if (frontier.is_empty() || shared.aborted())
                    && let Some(mut set) = sinks.take()
                {
                    if shared.aborted() {
                        set.abort();
                    } else {
                        match set.finish() {
                            Ok(files) => {
                                *shared.files.lock().unwrap_or_else(|p| p.into_inner()) = files
                            }
                            Err(e) => shared.fail(format!("finishing output: {e}")),
                        }
                    }
                }
            }
        },
    )
}
