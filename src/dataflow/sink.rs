//! The sink stage, on worker 0: every output row (scored windows, alerts, asset rows, and the
//! side rows of the source and window stages) is held until its time is complete, then written
//! in a canonical order ([`crate::stages::sink::SinkSet`]). In live runs the outputs are made durable
//! every commit interval, and the frontier written up to is published for the sources'
//! offset commits. A failure row from any worker fails the run.

use super::stage::{Arrived, Emit, Stage, least, unary};
use super::{Failure, OutputStep, Shared};
use crate::events::Event as _;
use crate::output::OutRecord;
use crate::stages::sink::SinkSet;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::progress::frontier::AntichainRef;
use timely::scheduling::Activator;

fn output(step: OutputStep, e: impl std::fmt::Display) -> Failure {
    Failure::Output {
        step,
        message: e.to_string(),
    }
}

/// The sink stage's state (the sinks only on worker 0).
struct Sinks {
    pending: BTreeMap<i64, Vec<OutRecord>>,
    sinks: Option<SinkSet>,
    shared: Arc<Shared>,
    last_checkpoint: Instant,
    act: Activator,
    /// The cut of the checkpoint this run resumed from (i64::MIN: none).
    resumed_at: i64,
}

impl Stage for Sinks {
    type In = OutRecord;
    type Out = ();

    fn on_input(&mut self, at: &Arrived<'_>, data: &mut Vec<OutRecord>, _: &mut Emit<()>) {
        if let Some(OutRecord::Failure(msg)) =
            data.iter().find(|r| matches!(r, OutRecord::Failure(_)))
        {
            self.shared.fail(msg.clone());
        }
        // A resumed run: every row below the cut was written before it (a registry's rejects,
        // emitted again as its files are read again).
        if at.time() < self.resumed_at {
            data.clear();
            return;
        }
        self.pending.entry(at.time()).or_default().append(data);
    }

    fn on_frontier(&mut self, frontier: AntichainRef<'_, i64>, _: &mut Emit<()>) {
        let shared = &self.shared;
        let Some(set) = self.sinks.as_mut() else {
            self.pending.clear();
            return;
        };
        // A live run stopped at its last checkpoint writes nothing at or after its cut: the
        // run resumed from it writes those rows.
        let last = shared.checkpoints.as_ref().and_then(|c| c.final_cut());
        let upto = least(frontier).min(last.unwrap_or(i64::MAX));
        // A checkpoint: the rows below its cut are written and made durable, and the
        // checkpoint written, before any row at or after the cut.
        let checkpoints = shared.checkpoints.as_ref();
        // A checkpoint written meanwhile counts now (at the end of the input: wait for it).
        if let Some(c) = checkpoints {
            written(c, frontier.is_empty() || shared.aborted(), shared);
        }
        if let Some(c) = checkpoints
            && !shared.aborted()
            && let Some((id, at)) = c.maybe_arm(frontier.is_empty())
        {
            write_below(&mut self.pending, set, upto.min(at), shared);
            if upto >= at {
                if frontier.is_empty() && !c.parts_in(id) {
                    // The input is complete: the run ends here, and stages that have nothing
                    // left to do may never save for this cut.
                    c.cancel(id);
                } else if !c.parts_in(id) {
                    // Some worker's stages have not saved yet: come back soon.
                    self.act.activate_after(std::time::Duration::from_millis(1));
                    return;
                } else {
                    let started = std::time::Instant::now();
                    match set.make_durable() {
                        Ok(_) => {
                            c.complete(id, set.positions(), started.elapsed());
                            // A stopping run writes nothing after its last cut: wait for it.
                            if c.stopping() {
                                written(c, true, shared);
                            }
                        }
                        Err(e) => shared.fail(output(OutputStep::Durable, e)),
                    }
                }
            }
        }
        // (The checkpoint just written may be the last.)
        let last = shared.checkpoints.as_ref().and_then(|c| c.final_cut());
        let upto = upto.min(last.unwrap_or(i64::MAX));
        write_below(&mut self.pending, set, upto, shared);
        // Live runs: now and then make everything written durable; every row below the
        // frontier is written, so the sources may commit the offsets behind it.
        if let Some(every) = shared.checkpoint_every() {
            // Come back even if nothing arrives: a quiet stream still gets committed (and a
            // stop asked for gets its checkpoint soon).
            let soon = if checkpoints.is_some() {
                every.min(std::time::Duration::from_millis(50))
            } else {
                every
            };
            self.act.activate_after(soon);
            if self.last_checkpoint.elapsed() >= every && !shared.aborted() {
                self.last_checkpoint = Instant::now();
                match set.make_durable() {
                    Ok(true) => {
                        shared.set_durable(upto);
                        crate::events::SinkDurable { upto_ms: upto }.emit();
                    }
                    Ok(false) => {}
                    Err(e) => shared.fail(output(OutputStep::Durable, e)),
                }
            }
        }
        if frontier.is_empty() && last.is_some() {
            self.pending.clear();
        }
        if (frontier.is_empty() || shared.aborted())
            && let Some(mut set) = self.sinks.take()
        {
            // The last checkpoint handed to the writer is written before the run ends.
            if let Some(c) = shared.checkpoints.as_ref() {
                written(c, true, shared);
            }
            if shared.aborted() {
                set.abort();
            } else {
                match set.finish() {
                    Ok(files) => *shared.files.lock().unwrap_or_else(|p| p.into_inner()) = files,
                    Err(e) => shared.fail(output(OutputStep::Finish, e)),
                }
            }
        }
    }
}

/// Takes in the checkpoint being written, once written (`wait`: waiting for it): logged and
/// counted, or the run failed with its error.
fn written(c: &super::checkpoint::Coordinator, wait: bool, shared: &Shared) {
    match c.written_now(wait) {
        None => {}
        Some(Ok(w)) => crate::events::CheckpointWritten {
            id: w.id,
            at_ms: w.at,
            path: &w.path,
            bytes: std::fs::metadata(&w.path).map_or(0, |m| m.len()),
            held: w.held.as_secs_f64(),
            seconds: w.writing.as_secs_f64(),
        }
        .emit(),
        Some(Err(e)) => shared.fail(output(OutputStep::Checkpoint, e)),
    }
}

/// Writes the pending rows with times below `upto`.
fn write_below(
    pending: &mut BTreeMap<i64, Vec<OutRecord>>,
    set: &mut SinkSet,
    upto: i64,
    shared: &Shared,
) {
    let mut ready = Vec::new();
    while let Some(entry) = pending.first_entry() {
        if *entry.key() >= upto {
            break;
        }
        let (t, rows) = entry.remove_entry();
        ready.extend(rows.into_iter().map(|r| (t, r)));
    }
    if !ready.is_empty()
        && !shared.aborted()
        && let Err(e) = set.write(ready)
    {
        shared.fail(output(OutputStep::Write, e));
    }
}

/// The sink stage: every row to worker 0, written there by `sinks`.
pub fn sink_stage<'s>(
    stream: StreamVec<'s, i64, OutRecord>,
    sinks: Option<SinkSet>,
    shared: Arc<Shared>,
    resumed_at: i64,
) -> StreamVec<'s, i64, ()> {
    unary(
        stream,
        Exchange::new(|_: &OutRecord| 0),
        "sink",
        move |act| Sinks {
            pending: BTreeMap::new(),
            sinks,
            shared,
            last_checkpoint: Instant::now(),
            act,
            resumed_at,
        },
    )
}
