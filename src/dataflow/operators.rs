//! The timely operators of a pipeline, one per stage:
//! source (decode + clean + watermark) → exchange(sensor) → window → features → score/fuse →
//! exchange(worker 0) → sink.

use super::Shared;
use super::source_driver::{Backpressure, emit_decoded};
use crate::batch::{ReadingBatch, RejectKind, RejectRow};
use crate::compute::{FeatureBatch, WindowBatch};
use crate::events::{Event as _, RowsRejected};
use crate::output::OutRecord;
use crate::plan::Plan;
use crate::sink::SinkSet;
use crate::source::{Decoder, Partition};
use crate::window::WindowState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::core::OkErr;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::operators::{Capability, Operator};
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

/// What the source sends: readings for one worker, or a side row for the sinks.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Msg {
    /// Readings routed to `batch.dest`.
    Readings(ReadingBatch),
    /// A reject or late row, routed to worker 0.
    Side(OutRecord),
}

/// Closed windows with their features, or the failure that stopped computing them (it goes
/// on to the sinks, which then give up: in a cluster, the way process 0 hears of it).
pub type Featured = Result<(WindowBatch, FeatureBatch), String>;

/// Splits a source's output into its readings and its side rows (rejects and late rows, and
/// failures), which go straight to the sinks.
#[allow(clippy::result_large_err)] // a split of two streams, not an error path
pub fn split_source<'s>(
    stream: StreamVec<'s, i64, Msg>,
) -> (
    StreamVec<'s, i64, ReadingBatch>,
    StreamVec<'s, i64, OutRecord>,
) {
    stream.ok_err(|m| match m {
        Msg::Readings(b) => Ok(b),
        Msg::Side(r) => Err(r),
    })
}

struct PartState {
    /// Index in the global partition order.
    index: usize,
    started: bool,
    part: Box<dyn Partition>,
    decoder: Decoder,
    /// The input's smallest event time minus the watermark delay (or the beginning of time).
    floor: i64,
}

impl PartState {
    /// Lower bound of the times this partition will still emit at.
    fn bound(&self) -> i64 {
        self.floor.max(self.decoder.watermark.get())
    }
}

/// The initial emission bound of a partition: its input's smallest time or its watermark seed,
/// minus the watermark delay.
pub fn initial_bound(part: &dyn Partition, delay: i64) -> i64 {
    let floor = part
        .min_time()
        .map_or(i64::MIN, |t| t.saturating_sub(delay).saturating_sub(1));
    floor.max(
        part.watermark_seed()
            .map_or(i64::MIN, |t| t.saturating_sub(delay)),
    )
}

/// The source: reads this worker's partitions one after another, a batch per activation.
/// Each batch is emitted at its partition's watermark *before* the batch, which is at most
/// the time of any of its on-time readings' windows, and the same in every run.
pub fn source_stage<'s>(
    scope: Scope<'s, i64>,
    pipeline: Arc<Plan>,
    parts: Vec<(usize, Box<dyn Partition>)>,
    bounds: Arc<Vec<i64>>,
    progress: ProbeHandle<i64>,
    done: ProbeHandle<i64>,
    shared: Arc<Shared>,
) -> StreamVec<'s, i64, Msg> {
    let peers = scope.peers();
    source::<_, CapacityContainerBuilder<Vec<Msg>>, _, _>(scope, "Source", move |cap, info| {
        let act = scope.activator_for(info.address);
        let delay = pipeline.watermark_delay;
        let lead = 4 * (pipeline.window.size + delay);
        let mut states: Vec<PartState> = parts
            .into_iter()
            .map(|(index, part)| {
                let floor = part
                    .min_time()
                    .map_or(i64::MIN, |t| t.saturating_sub(delay).saturating_sub(1));
                let seed = part.watermark_seed();
                PartState {
                    index,
                    started: false,
                    part,
                    decoder: Decoder::new(pipeline.clone(), peers, seed),
                    floor,
                }
            })
            .collect();
        states.reverse(); // pop from the end = file order
        let mut cap: Option<Capability<i64>> = Some(cap);
        if let (Some(c), Some(low)) = (cap.as_mut(), states.iter().map(PartState::bound).min()) {
            c.downgrade(&low);
        }
        let pressure = Backpressure::new(progress, done, lead);
        let span = tracing::debug_span!("operator", name = "source");
        move |output| {
            let _span = span.enter();
            let Some(c) = cap.as_mut() else { return };
            if shared.aborted() {
                cap = None;
                return;
            }
            let Some(st) = states.last_mut() else {
                cap = None;
                return;
            };
            // Backpressure: at most `peers` partitions in flight, in the global order. Partition
            // k starts once partition k - peers is done (the sources' frontier has reached the
            // initial bound of partition k - peers + 1), or when it holds the frontier itself.
            if !st.started {
                if st.index >= peers {
                    let need = bounds[st.index + 1 - peers].min(st.bound());
                    if pressure.sent() < need {
                        act.activate();
                        return;
                    }
                }
                st.started = true;
            }
            // Backpressure within the pipeline (see `Backpressure::should_wait`).
            if pressure.should_wait(st.bound()) {
                act.activate();
                return;
            }
            let name = st.part.name().to_string();
            // A decoder that panics on a damaged file must not take the worker (and with it
            // the whole run) down: it becomes an ordinary read error naming the file.
            let next =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| st.part.next_batch()))
                    .unwrap_or_else(|p| {
                        let why = crate::source::panic_text(p.as_ref());
                        Some(Err(crate::source::SourceError::Read {
                            file: name.clone(),
                            row: 0,
                            message: format!("the Parquet decoder failed: {why}"),
                        }))
                    });
            match next {
                Some(Ok((first_row, rb))) => {
                    let at = st.bound();
                    let d = st.decoder.decode(&name, first_row, &rb, st.floor);
                    emit_decoded(&name, rb.num_rows() as u64, d, at, i64::MIN, |t, msgs| {
                        output
                            .session(&c.delayed(&t))
                            .give_iterator(msgs.into_iter())
                    });
                }
                Some(Err(e)) => {
                    if pipeline.source.skip_bad_files {
                        tracing::error!("skipping the rest of {name}: {e}");
                        let t = c.delayed(&st.bound());
                        let row = RejectRow {
                            source: name,
                            row: None,
                            sensor: None,
                            time: None,
                            value: None,
                            reason: format!("file skipped: {e}"),
                            kind: RejectKind::FileSkipped,
                        };
                        RowsRejected {
                            rows: [&row].into_iter(),
                        }
                        .emit();
                        output.session(&t).give(Msg::Side(OutRecord::Reject(row)));
                        states.pop();
                    } else {
                        // Tell worker 0 (perhaps in another process) before stopping.
                        let t = c.delayed(&st.bound());
                        output
                            .session(&t)
                            .give(Msg::Side(OutRecord::Failure(e.to_string())));
                        shared.fail(e.to_string());
                        cap = None;
                        return;
                    }
                }
                None => {
                    states.pop();
                }
            }
            match states.iter().map(PartState::bound).min() {
                Some(low) => {
                    c.downgrade(&low.max(*c.time()));
                    act.activate();
                }
                None => cap = None,
            }
        }
    })
}

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
