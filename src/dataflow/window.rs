//! The window stage: readings exchanged by sensor (or asset) into per-sensor buffers
//! ([`crate::stages::window::WindowState`]); a window `[s, e)` closes once the input frontier reaches
//! `e`, and goes on at time `e` in batches of at most `max-batch-windows`. Duplicate readings
//! are rejected when their window closes, at the end of the reading's last window.

use super::stage::{Arrived, Emit, Stage, least, unary};
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
        for b in data.drain(..) {
            self.state.insert(&b);
            let Some(c) = at.retain() else { continue };
            if self.held.as_ref().is_none_or(|h| c.time() < h.time()) {
                self.held = Some(c);
            }
        }
    }

    fn on_frontier(&mut self, frontier: AntichainRef<'_, i64>, out: &mut Emit<Self::Out>) {
        let Some(h) = self.held.as_mut() else { return };
        let upto = least(frontier);
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
        if self.state.buffered() == 0 {
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
) -> (
    StreamVec<'s, i64, WindowBatch>,
    StreamVec<'s, i64, OutRecord>,
) {
    let exchange = Exchange::new(|b: &ReadingBatch| u64::from(b.dest));
    unary(stream, exchange, "window", move |_| Windows {
        state: WindowState::new(pipeline.window, pipeline.fill, pipeline.clean.dedup),
        spec: pipeline.window,
        max_batch: pipeline.compute.max_batch_windows.max(1),
        held: None,
    })
    .ok_err(|r| r)
}
