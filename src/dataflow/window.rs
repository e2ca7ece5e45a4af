//! The window stage: readings exchanged by sensor (or asset) into per-sensor buffers
//! ([`crate::stages::window::WindowState`]); a window `[s, e)` closes once the input frontier reaches
//! `e`, and goes on at time `e` in batches of at most `max-batch-windows`. Duplicate readings
//! are rejected when their window closes, at the end of the reading's last window.

use super::Shared;
use super::checkpoint::Holding;
use super::stage::{Arrived, Emit, Stage, least, unary_from};
use crate::batch::{ReadingBatch, WindowBatch};
use crate::events::{Event as _, RowsRejected};
use crate::output::OutRecord;
use crate::plan::Plan;
use crate::stages::window::{WindowSpec, WindowState};
use std::sync::Arc;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::core::OkErr;
use timely::progress::frontier::AntichainRef;

/// The window stage's state on one worker.
struct Windows {
    state: WindowState,
    spec: WindowSpec,
    max_batch: usize,
    /// Held while any reading is buffered: at most the time of the earliest of them.
    held: Option<Capability<i64>>,
    shared: Arc<Shared>,
    worker: usize,
    /// Readings at or after a checkpoint's cut, held back until the state is saved.
    holding: Holding<ReadingBatch>,
}

impl Windows {
    /// Closes every window ending by `upto`, emitting them and the duplicates they held.
    fn close(&mut self, upto: i64, out: &mut Emit<Result<WindowBatch, OutRecord>>) {
        let Some(h) = self.held.as_mut() else { return };
        let mut rejects = Vec::new();
        let closed = self.state.close(upto, &mut rejects);
        RowsRejected {
            rows: rejects.iter().map(|r| &r.1),
        }
        .emit();
        for (end, batch) in closed {
            out.give(
                &h.delayed(&end),
                batch.split(self.max_batch).into_iter().map(Ok),
            );
        }
        for (t, r) in rejects {
            let t = h.delayed(&self.spec.last_end(t).max(*h.time()));
            out.give(&t, [Err(OutRecord::Reject(r))]);
        }
    }
}

impl Stage for Windows {
    type In = ReadingBatch;
    type Out = Result<WindowBatch, OutRecord>;

    fn on_input(
        &mut self,
        at: &Arrived<'_>,
        data: &mut Vec<ReadingBatch>,
        _: &mut Emit<Self::Out>,
    ) {
        let cut = self.shared.checkpoints.as_ref().and_then(|c| c.armed());
        for b in data.drain(..) {
            if let Some(b) = self.holding.hold(cut, at.time(), b) {
                self.state.insert(&b);
            }
            let Some(c) = at.retain() else { continue };
            if self.held.as_ref().is_none_or(|h| c.time() < h.time()) {
                self.held = Some(c);
            }
        }
    }

    fn on_frontier(&mut self, frontier: AntichainRef<'_, i64>, out: &mut Emit<Self::Out>) {
        let upto = least(frontier);
        let shared = self.shared.clone();
        if let Some(c) = shared.checkpoints.as_ref() {
            let cut = c.armed();
            for (_, b) in self.holding.release(cut) {
                self.state.insert(&b);
            }
            if let (Some(id), Some((_, at))) = (self.holding.due(cut, upto), cut) {
                // Everything below the cut has arrived: close what ends before it (a window
                // ending at the cut is a row at the cut: after it), save the rest, then take
                // in what was held back.
                self.close(at.saturating_sub(1), out);
                c.put_windows(self.worker, id, self.state.snapshot());
                self.holding.saved(id);
                for (_, b) in self.holding.release(cut) {
                    self.state.insert(&b);
                }
            }
        }
        if self.held.is_none() {
            return;
        }
        if upto == i64::MAX
            && shared
                .checkpoints
                .as_ref()
                .is_some_and(|c| c.final_cut().is_some())
        {
            // A live run stopped at its last checkpoint, which holds the open windows: they
            // close in the run that resumes from it, not here.
            self.held = None;
            return;
        }
        self.close(upto, out);
        let Some(h) = self.held.as_mut() else { return };
        if self.state.buffered() == 0 && self.holding.is_empty() {
            self.held = None;
        } else if upto > *h.time() {
            h.downgrade(&upto);
        }
    }
}

/// The window stage: (closed windows, duplicate rejects for the sinks).
#[allow(clippy::result_large_err)] // `Err` is the second output, not an error
pub fn window_stage<'s>(
    stream: StreamVec<'s, i64, ReadingBatch>,
    pipeline: Arc<Plan>,
    shared: Arc<Shared>,
    resume: Option<Arc<crate::checkpoint::Checkpoint>>,
) -> (
    StreamVec<'s, i64, WindowBatch>,
    StreamVec<'s, i64, OutRecord>,
) {
    let exchange = Exchange::new(|b: &ReadingBatch| u64::from(b.dest));
    let worker = stream.scope().index();
    unary_from(stream, exchange, "window", move |_, cap| {
        let mut state = WindowState::new(pipeline.window, pipeline.fill, pipeline.clean.dedup);
        let mut held = None;
        if let Some(r) = &resume {
            if let Some(w) = r.state.get(worker) {
                state.restore(w.windows.clone());
            }
            // Restored readings: a capability for the windows they will close (all end
            // after the cut).
            if state.buffered() > 0 {
                held = Some(cap.delayed(&r.at));
            }
        }
        Windows {
            state,
            spec: pipeline.window,
            max_batch: pipeline.compute.max_batch_windows.max(1),
            held,
            shared,
            worker,
            holding: Holding::default(),
        }
    })
    .ok_err(|r| r)
}
