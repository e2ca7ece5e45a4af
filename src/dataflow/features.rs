//! The features stage: hands batches of closed windows to the compute engine (the hybrid
//! scheduler) and sends each batch on, with its features, at its own time once its results are
//! back. While batches are in flight on an accelerator the stage holds their capabilities, so
//! the frontier downstream waits for them, and it keeps taking new windows meanwhile.
//!
//! With an accelerator, windows closed at different times are gathered into one batch of up to
//! `[compute] max-batch-windows` windows, closed at that size, `max-batch-delay` after its first
//! window, or at the end of the input, whichever comes first; the features come back split into
//! the original batches. On the CPU alone, batches go as they come (gathering buys nothing
//! there and would only add delay).

use super::Shared;
use super::operators::Featured;
use crate::compute::scheduler::Completed;
use crate::compute::{FeatureBatch, Ticket, WindowBatch, backend_for};
use crate::plan::Plan;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline as Pipe;
use timely::dataflow::operators::{Capability, Operator};

/// The batches an engine batch was gathered from, each with the capability of its time (the
/// batch itself is kept only when there are several; a single one comes back from the engine).
pub type Parts = Vec<(Capability<i64>, Option<WindowBatch>)>;

/// How often the stage looks for finished batches while some are in flight.
const POLL: Duration = Duration::from_micros(100);

/// Batches given to the engine, handed on in the order they were given: engines finish them
/// in any order (a batch spilled to the CPU before the GPU's), but the score stage updates each
/// sensor's detectors in the order its windows arrive, which must be time order.
#[derive(Default)]
pub struct InOrder {
    batches: BTreeMap<Ticket, (Parts, Option<Completed>)>,
}

impl InOrder {
    /// Notes a batch given to the engine under `ticket` (tickets grow with each submission).
    pub fn begun(&mut self, ticket: Ticket, parts: Parts) {
        self.batches.insert(ticket, (parts, None));
    }

    /// Notes a batch the engine has finished.
    pub fn finished(&mut self, c: Completed) {
        let entry = self
            .batches
            .get_mut(&c.ticket)
            .expect("every ticket was begun");
        entry.1 = Some(c);
    }

    /// The oldest batch, once it is finished.
    pub fn pop_ready(&mut self) -> Option<(Completed, Parts)> {
        let entry = self.batches.first_entry()?;
        entry.get().1.as_ref()?;
        let (parts, done) = entry.remove();
        Some((done.expect("checked above"), parts))
    }

    /// True when no batch is outstanding.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
}

/// Batches of windows waiting to be gathered into one engine batch.
#[derive(Default)]
pub struct Gather {
    parts: Vec<(Capability<i64>, WindowBatch)>,
    windows: usize,
    since: Option<Instant>,
}

impl Gather {
    /// Adds a batch of windows, due at `cap`'s time.
    pub fn push(&mut self, cap: Capability<i64>, batch: WindowBatch) {
        self.windows += batch.len();
        self.since.get_or_insert_with(Instant::now);
        self.parts.push((cap, batch));
    }

    /// Windows waiting.
    pub fn windows(&self) -> usize {
        self.windows
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// How long until the gathered batch is due (zero when overdue).
    pub fn due_in(&self, delay: Duration) -> Duration {
        self.since
            .map_or(Duration::ZERO, |t| delay.saturating_sub(t.elapsed()))
    }

    /// Everything gathered, as one batch, and the parts to split its features back into
    /// (none when it is a single part, which the engine gives back itself).
    pub fn take(&mut self) -> (WindowBatch, Parts) {
        self.windows = 0;
        self.since = None;
        let mut parts = std::mem::take(&mut self.parts);
        if parts.len() == 1 {
            let (cap, batch) = parts.pop().expect("one part");
            return (batch, vec![(cap, None)]);
        }
        (
            concat(parts.iter().map(|(_, b)| b)),
            parts.into_iter().map(|(c, b)| (c, Some(b))).collect(),
        )
    }
}

/// The windows of `parts` in one batch, in order.
pub fn concat<'a>(parts: impl Iterator<Item = &'a WindowBatch> + Clone) -> WindowBatch {
    let mut all = WindowBatch::default();
    let (windows, values) = parts
        .clone()
        .fold((0, 0), |(w, v), b| (w + b.len(), v + b.values.len()));
    all.times.reserve(values);
    all.values.reserve(values);
    all.offsets.reserve(windows + 1);
    for b in parts {
        for k in 0..b.len() {
            all.push_window(b.slot[k], b.sensor[k].clone(), b.start[k], b.end[k]);
            let (ts, vs) = b.window(k);
            all.times.extend_from_slice(ts);
            all.values.extend_from_slice(vs);
            all.finish_window(b.filled[k]);
        }
    }
    all
}

/// Rows `from..from + n` of `f`.
fn rows(f: &FeatureBatch, from: usize, n: usize) -> FeatureBatch {
    FeatureBatch {
        width: f.width,
        data: f.data[from * f.width..(from + n) * f.width].to_vec(),
    }
}

/// The features stage (see the module doc).
pub fn features_stage<'s>(
    stream: StreamVec<'s, i64, WindowBatch>,
    pipeline: Arc<Plan>,
    shared: Arc<Shared>,
) -> StreamVec<'s, i64, Featured> {
    let scope = stream.scope();
    stream.unary_frontier::<CapacityContainerBuilder<Vec<Featured>>, _, _, _>(
        Pipe,
        "Features",
        move |_cap, info| {
            let act = scope.activator_for(info.address);
            let c = &pipeline.compute;
            let mut engine =
                match backend_for(pipeline.device, c.cross_check, c.cross_check_tolerance) {
                    Ok(mut e) => {
                        e.share_costs(&shared.costs);
                        Some(e)
                    }
                    Err(e) => {
                        shared.fail(format!("compute device \"{}\": {e}", pipeline.device));
                        None
                    }
                };
            let (max, delay) = (
                c.max_batch_windows.max(1),
                Duration::from_millis(c.max_batch_delay_ms.max(0) as u64),
            );
            let (features, size) = (pipeline.features.clone(), pipeline.window.size);
            let mut gather = Gather::default();
            let mut flight = InOrder::default();
            let span = tracing::debug_span!("operator", name = "features");
            move |(input, frontier), output| {
                let _span = span.enter();
                let Some(hybrid) = engine.as_mut() else {
                    input.for_each(|_, data| data.clear());
                    return;
                };
                let coalesce = hybrid.accelerated();
                input.for_each(|cap, data| {
                    for w in data.drain(..) {
                        if w.is_empty() {
                            continue;
                        }
                        let Some(cap) = cap.retain_least(output.output_index()) else {
                            continue;
                        };
                        if !gather.is_empty() && gather.windows() + w.len() > max {
                            let (batch, parts) = gather.take();
                            flight.begun(hybrid.submit(&features, size, batch), parts);
                        }
                        gather.push(cap, w);
                        if !coalesce || gather.windows() >= max {
                            let (batch, parts) = gather.take();
                            flight.begun(hybrid.submit(&features, size, batch), parts);
                        }
                    }
                });
                let end = frontier.is_empty();
                if !gather.is_empty() {
                    if end || gather.due_in(delay).is_zero() {
                        let (batch, parts) = gather.take();
                        flight.begun(hybrid.submit(&features, size, batch), parts);
                    } else {
                        act.activate_after(gather.due_in(delay));
                    }
                }
                // Results: whatever is back; at the end of the input, everything.
                loop {
                    let done = hybrid.poll(&features, size, end && !flight.is_empty());
                    if done.is_empty() {
                        break;
                    }
                    for c in done {
                        flight.finished(c);
                    }
                    while let Some((c, parts)) = flight.pop_ready() {
                        for (cap, stage) in split(c, parts, &shared) {
                            output.session(&cap).give(stage);
                        }
                    }
                }
                if !flight.is_empty() {
                    // Look again soon: the accelerator finishes on its own (a batch takes
                    // milliseconds; polling every 100 µs lets an idle worker sleep meanwhile).
                    act.activate_after(POLL);
                }
                if end
                    && flight.is_empty()
                    && let Some(hybrid) = engine.take()
                {
                    shared.add_engine_reports(hybrid.engine_reports());
                }
            }
        },
    )
}

/// A finished batch, split back into the batches it was gathered from, each with the
/// capability of its own time.
fn split(c: Completed, mut parts: Parts, shared: &Shared) -> Vec<(Capability<i64>, Featured)> {
    let f = match c.result {
        Ok(f) => f,
        Err(e) => {
            let msg = format!("computing features: {e}");
            shared.fail(msg.clone());
            return parts
                .into_iter()
                .take(1)
                .map(|(cap, _)| (cap, Err(msg.clone())))
                .collect();
        }
    };
    if parts.len() == 1 && parts[0].1.is_none() {
        let (cap, _) = parts.pop().expect("one part");
        return vec![(cap, Ok((c.batch, f)))];
    }
    let mut row = 0;
    parts
        .into_iter()
        .map(|(cap, part)| {
            let w = part.expect("gathered parts are kept");
            let mine = rows(&f, row, w.len());
            row += w.len();
            (cap, Ok((w, mine)))
        })
        .collect()
}
