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
use super::stage::{Arrived, Emit, Stage, unary};
use crate::compute::scheduler::Completed;
use crate::compute::{Ticket, WindowBatch, backend_for};
use crate::plan::Plan;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline as Pipe;
use timely::dataflow::operators::Capability;
use timely::progress::frontier::AntichainRef;
use timely::scheduling::Activator;

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
            WindowBatch::concat(parts.iter().map(|(_, b)| b)),
            parts.into_iter().map(|(c, b)| (c, Some(b))).collect(),
        )
    }
}

/// Closed windows with their features, or the failure that stopped computing them (it goes
/// on to the sinks, which then give up: in a cluster, the way process 0 hears of it).
pub type Featured = Result<(WindowBatch, crate::batch::FeatureBatch), super::Failure>;

/// The features stage's state on one worker.
struct Features {
    /// The engine (None once its reports are in, or when it could not start).
    engine: Option<crate::compute::scheduler::Hybrid>,
    features: crate::stages::features::FeatureSet,
    /// Window size (ms).
    size: i64,
    /// Windows per engine batch at most, and how long a gathered batch may wait.
    max: usize,
    delay: Duration,
    gather: Gather,
    flight: InOrder,
    shared: Arc<Shared>,
    act: Activator,
}

impl Features {
    fn submit(&mut self) {
        let Some(hybrid) = self.engine.as_mut() else {
            return;
        };
        let (batch, parts) = self.gather.take();
        self.flight
            .begun(hybrid.submit(&self.features, self.size, batch), parts);
    }
}

impl Stage for Features {
    type In = WindowBatch;
    type Out = Featured;

    fn on_input(&mut self, at: &Arrived<'_>, data: &mut Vec<WindowBatch>, _: &mut Emit<Featured>) {
        let Some(hybrid) = self.engine.as_ref() else {
            data.clear();
            return;
        };
        let coalesce = hybrid.accelerated();
        for w in data.drain(..) {
            if w.is_empty() {
                continue;
            }
            let Some(cap) = at.retain() else { continue };
            if !self.gather.is_empty() && self.gather.windows() + w.len() > self.max {
                self.submit();
            }
            self.gather.push(cap, w);
            if !coalesce || self.gather.windows() >= self.max {
                self.submit();
            }
        }
    }

    fn on_frontier(&mut self, frontier: AntichainRef<'_, i64>, out: &mut Emit<Featured>) {
        if self.engine.is_none() {
            return;
        }
        let end = frontier.is_empty();
        if !self.gather.is_empty() {
            if end || self.gather.due_in(self.delay).is_zero() {
                self.submit();
            } else {
                self.act.activate_after(self.gather.due_in(self.delay));
            }
        }
        let Some(hybrid) = self.engine.as_mut() else {
            return;
        };
        // Results: whatever is back; at the end of the input, everything.
        loop {
            let done = hybrid.poll(&self.features, self.size, end && !self.flight.is_empty());
            if done.is_empty() {
                break;
            }
            for c in done {
                self.flight.finished(c);
            }
            while let Some((c, parts)) = self.flight.pop_ready() {
                for (cap, featured) in split(c, parts, &self.shared) {
                    out.give(&cap, [featured]);
                }
            }
        }
        if !self.flight.is_empty() {
            // Look again soon: the accelerator finishes on its own (a batch takes
            // milliseconds; polling every 100 µs lets an idle worker sleep meanwhile).
            self.act.activate_after(POLL);
        }
        if end
            && self.flight.is_empty()
            && let Some(hybrid) = self.engine.take()
        {
            self.shared.add_engine_reports(hybrid.engine_reports());
        }
    }
}

/// The features stage (see the module doc).
pub fn features_stage<'s>(
    stream: StreamVec<'s, i64, WindowBatch>,
    pipeline: Arc<Plan>,
    shared: Arc<Shared>,
) -> StreamVec<'s, i64, Featured> {
    unary(stream, Pipe, "features", move |act| {
        let c = &pipeline.compute;
        let engine = match backend_for(pipeline.device, c.cross_check, c.cross_check_tolerance) {
            Ok(mut e) => {
                e.share_costs(&shared.costs);
                Some(e)
            }
            Err(e) => {
                shared.fail(super::Failure::Engine {
                    device: pipeline.device.to_string(),
                    detectors: false,
                    message: e.to_string(),
                });
                None
            }
        };
        Features {
            engine,
            features: pipeline.features.clone(),
            size: pipeline.window.size,
            max: c.max_batch_windows.max(1),
            delay: Duration::from_millis(c.max_batch_delay_ms.max(0) as u64),
            gather: Gather::default(),
            flight: InOrder::default(),
            shared: shared.clone(),
            act,
        }
    })
}

/// A finished batch, split back into the batches it was gathered from, each with the
/// capability of its own time.
fn split(c: Completed, mut parts: Parts, shared: &Shared) -> Vec<(Capability<i64>, Featured)> {
    let f = match c.result {
        Ok(f) => f,
        Err(e) => {
            let msg = super::Failure::Compute(e.to_string());
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
            let mine = f.rows(row, w.len());
            row += w.len();
            (cap, Ok((w, mine)))
        })
        .collect()
}
