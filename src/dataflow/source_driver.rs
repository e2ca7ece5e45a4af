//! The one source operator: [`drive`] turns a [`Pull`] (this worker's share of a source's
//! partitions: files in `file_source.rs`, Kafka partitions in `kafka_source.rs`) into two
//! streams, readings for the windows and side rows (rejects, late rows, a failure) for the
//! sinks. The driver owns what every source shares: the capabilities (held at the reader's
//! bound, never lowered), the emission of each item at its own time, failing the run on a
//! read error, stopping on abort, and activation. [`Backpressure`] is handed to the reader,
//! which knows where it would emit next. The readers keep what differs: which partition to
//! read next, polling, idleness, offsets.

use super::Shared;
use crate::batch::ReadingBatch;
use crate::events::{Event as _, RowsDecoded};
use crate::output::OutRecord;
use crate::stages::source::Decoded;
use std::sync::Arc;
use std::time::Duration;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

/// Holds a source back while it is far ahead of what the sinks have finished.
pub(super) struct Backpressure {
    /// The sources' frontier (what they have sent).
    progress: ProbeHandle<i64>,
    /// The sinks' frontier (what they have finished).
    done: ProbeHandle<i64>,
    /// How far (event time, ms) a source may read ahead of the sinks: 4 × (window size +
    /// watermark delay).
    lead: i64,
}

fn least(p: &ProbeHandle<i64>) -> i64 {
    p.with_frontier(|f| f.iter().copied().min())
        .unwrap_or(i64::MAX)
}

impl Backpressure {
    pub(super) fn new(progress: ProbeHandle<i64>, done: ProbeHandle<i64>, lead: i64) -> Self {
        Self {
            progress,
            done,
            lead,
        }
    }
    /// The least time the sources may still send at.
    pub(super) fn sent(&self) -> i64 {
        least(&self.progress)
    }
    /// True when a source about to emit at `bound` should wait: it is more than `lead` ahead
    /// of what the sinks have finished, unless the sinks have finished everything the sources
    /// sent (then waiting cannot help: another partition holds the frontier back).
    pub(super) fn should_wait(&self, bound: i64) -> bool {
        let finished = least(&self.done);
        bound > finished.saturating_add(self.lead) && finished < self.sent()
    }
}

/// What a reader emits in one pull, each item with its timely time.
#[derive(Default)]
pub(super) struct Emitted {
    /// Readings, routed to a worker each.
    pub(super) readings: Vec<(i64, ReadingBatch)>,
    /// Reject and late rows, for the sinks.
    pub(super) side: Vec<(i64, OutRecord)>,
    /// With a checkpoint's cut armed: where the partitions read stand.
    pub(super) reports: Vec<super::checkpoint::PartReport>,
    /// Partitions read to their end in this pull: (index, position).
    pub(super) finished: Vec<(usize, crate::checkpoint::SourceCut)>,
}

impl Emitted {
    /// The largest time anything is emitted at (None: nothing).
    fn latest(&self) -> Option<i64> {
        let r = self.readings.iter().map(|(t, _)| *t);
        let s = self.side.iter().map(|(t, _)| *t);
        r.chain(s).max()
    }
}

impl Emitted {
    /// One decoded batch of `partition` (`rows` input rows): its readings at `at`, its reject
    /// and late rows each at its own time raised to `floor`; counted as an event.
    pub(super) fn decoded(&mut self, partition: &str, rows: u64, d: Decoded, at: i64, floor: i64) {
        RowsDecoded {
            partition,
            rows,
            accepted: d.accepted(),
            rejects: &d.rejects,
            late: d.late.len() as u64,
            dropped: d.dropped,
        }
        .emit();
        self.readings.extend(d.batches.into_iter().map(|b| (at, b)));
        let rejects = d
            .rejects
            .into_iter()
            .map(|(t, r)| (t.max(floor), OutRecord::Reject(r)));
        let late = d
            .late
            .into_iter()
            .map(|(t, r)| (t.max(floor), OutRecord::Late(r)));
        self.side.extend(rejects.chain(late));
    }
}

/// When the driver should run the reader again.
pub(super) enum Next {
    /// As soon as possible (there is more to read).
    Now,
    /// After a while (nothing to read yet, or held back).
    After(Duration),
}

/// A source's partitions on one worker, as the driver reads them.
pub(super) trait Pull {
    /// The least time the reader may still emit at; `None` once it will emit nothing more.
    fn bound(&self) -> Option<i64>;
    /// Reads what is ready into `out`, at times no lower than `floor` (the driver's current
    /// capability). With `cut` (a checkpoint being taken), a partition whose watermark reaches
    /// the cut splits its batch there and reports its position. An error stops the run (after
    /// it is sent to the sinks).
    fn pull(
        &mut self,
        floor: i64,
        cut: Option<super::checkpoint::Cut>,
        out: &mut Emitted,
    ) -> Result<Next, super::Failure>;
}

/// The source operator `name` over `reader`: (readings, side rows). The reader is made on
/// the worker, by `make`, when the operator is built.
pub(super) fn drive<'s, P: Pull + 'static>(
    scope: Scope<'s, i64>,
    name: &'static str,
    shared: Arc<Shared>,
    make: impl FnOnce() -> P,
) -> (
    StreamVec<'s, i64, ReadingBatch>,
    StreamVec<'s, i64, OutRecord>,
) {
    let mut builder = OperatorBuilder::new(name.to_string(), scope);
    let info = builder.operator_info();
    let (readings_out, readings) = builder.new_output();
    let (side_out, side) = builder.new_output();
    let mut readings_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<ReadingBatch>>>::from(readings_out);
    let mut side_out = OutputBuilder::<_, CapacityContainerBuilder<Vec<OutRecord>>>::from(side_out);
    builder.build(move |caps| {
        let act = scope.activator_for(info.address);
        let worker = scope.index();
        let mut reader = make();
        let mut caps: Option<Vec<Capability<i64>>> = Some(caps);
        hold(&mut caps, reader.bound());
        if caps.is_none()
            && let Some(c) = shared.checkpoints.as_ref()
        {
            // Nothing to read here (no partition of this worker's): said at once, or the
            // coordinator would wait for this source forever and take a cut after the end of
            // the input, whose last windows the other stages have already flushed.
            c.source_pulled(worker, None, None, None, Vec::new(), Vec::new());
        }
        let span = tracing::debug_span!("operator", name);
        move |_frontiers| {
            let _span = span.enter();
            let Some(floor) = caps.as_ref().map(|c| *c[0].time()) else {
                return;
            };
            if shared.aborted() {
                caps = None;
                return;
            }
            let mut out = Emitted::default();
            let checkpoints = shared.checkpoints.as_ref();
            let cut = checkpoints.and_then(|c| c.armed());
            let next = reader.pull(floor, cut, &mut out);
            // Before anything is sent: a cut armed while this pull decoded, which it passed
            // without splitting, is cancelled before any stage sees what it emitted.
            if let Some(c) = checkpoints {
                let (reports, finished) = (
                    std::mem::take(&mut out.reports),
                    std::mem::take(&mut out.finished),
                );
                let bound = match &next {
                    Ok(_) => reader.bound(),
                    Err(_) => None,
                };
                c.source_pulled(worker, cut, out.latest(), bound, reports, finished);
            }
            if let Some(c) = caps.as_ref() {
                let mut r = readings_out.activate();
                for (t, b) in out.readings {
                    r.session(&c[0].delayed(&t)).give(b);
                }
                let mut s = side_out.activate();
                for (t, row) in out.side {
                    s.session(&c[1].delayed(&t)).give(row);
                }
                if let Err(e) = &next {
                    // Tell worker 0 (perhaps in another process) before stopping.
                    s.session(&c[1]).give(OutRecord::Failure(e.clone()));
                }
            }
            match next {
                Ok(next) => {
                    hold(&mut caps, reader.bound());
                    if caps.is_some() {
                        match next {
                            Next::Now => act.activate(),
                            Next::After(d) => act.activate_after(d),
                        }
                    }
                }
                Err(e) => {
                    shared.fail(e);
                    caps = None;
                }
            }
        }
    });
    (readings, side)
}

/// Holds the capabilities at `bound` (never lower than they are), or drops them at `None`.
fn hold(caps: &mut Option<Vec<Capability<i64>>>, bound: Option<i64>) {
    match (caps.as_mut(), bound) {
        (Some(cs), Some(b)) => {
            for c in cs.iter_mut() {
                if b > *c.time() {
                    c.downgrade(&b);
                }
            }
        }
        (Some(_), None) => *caps = None,
        (None, _) => {}
    }
}
