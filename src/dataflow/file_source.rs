//! The file source: a worker's input partitions (Parquet files or row groups, CSV files), read
//! one after another, a batch per pull, through [`super::source_driver::drive`]. Each batch is
//! emitted at its partition's watermark *before* the batch, which is at most the time of any
//! of its on-time readings' windows, and the same in every run.

use super::Shared;
use super::source_driver::{Backpressure, Emitted, Next, Pull, drive};
use crate::batch::{ReadingBatch, RejectKind, RejectRow};
use crate::events::{Event as _, RowsRejected};
use crate::output::OutRecord;
use crate::plan::Plan;
use crate::stages::source::{Decoder, Partition};
use std::sync::Arc;
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

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

/// A worker's partitions, in the global order.
struct FileReader {
    /// Unfinished partitions, the next one last.
    states: Vec<PartState>,
    /// The initial bound of every partition of the run, in the global order.
    bounds: Arc<Vec<i64>>,
    peers: usize,
    pressure: Backpressure,
    skip_bad_files: bool,
}

impl Pull for FileReader {
    fn bound(&self) -> Option<i64> {
        self.states.iter().map(PartState::bound).min()
    }

    fn pull(&mut self, _floor: i64, out: &mut Emitted) -> Result<Next, super::Failure> {
        let Some(st) = self.states.last_mut() else {
            return Ok(Next::Now);
        };
        // Held back: try again at the next activation (the sinks' progress will wake it).
        let wait = Next::Now;
        // Backpressure: at most `peers` partitions in flight, in the global order. Partition
        // k starts once partition k - peers is done (the sources' frontier has reached the
        // initial bound of partition k - peers + 1), or when it holds the frontier itself.
        if !st.started {
            if st.index >= self.peers {
                let need = self.bounds[st.index + 1 - self.peers].min(st.bound());
                if self.pressure.sent() < need {
                    return Ok(wait);
                }
            }
            st.started = true;
        }
        // Backpressure within the pipeline (see `Backpressure::should_wait`).
        if self.pressure.should_wait(st.bound()) {
            return Ok(wait);
        }
        let name = st.part.name().to_string();
        // A decoder that panics on a damaged file must not take the worker (and with it the
        // whole run) down: it becomes an ordinary read error naming the file.
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| st.part.next_batch()))
            .unwrap_or_else(|p| {
                let why = crate::stages::source::panic_text(p.as_ref());
                Some(Err(crate::stages::source::SourceError::Read {
                    file: name.clone(),
                    row: 0,
                    message: format!("the Parquet decoder failed: {why}"),
                }))
            });
        match next {
            Some(Ok((first_row, rb))) => {
                let at = st.bound();
                let d = st.decoder.decode(&name, first_row, &rb, st.floor);
                out.decoded(&name, rb.num_rows() as u64, d, at, i64::MIN);
            }
            Some(Err(e)) if self.skip_bad_files => {
                tracing::error!("skipping the rest of {name}: {e}");
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
                out.side.push((st.bound(), OutRecord::Reject(row)));
                self.states.pop();
            }
            Some(Err(e)) => return Err(super::Failure::Read(e.to_string())),
            None => {
                self.states.pop();
            }
        }
        Ok(Next::Now)
    }
}

/// The file source over this worker's `parts` (with their index in the global order); `bounds`
/// holds the initial bound of every partition of the run. Returns (readings, side rows).
pub fn file_source<'s>(
    scope: Scope<'s, i64>,
    pipeline: Arc<Plan>,
    parts: Vec<(usize, Box<dyn Partition>)>,
    bounds: Arc<Vec<i64>>,
    progress: ProbeHandle<i64>,
    done: ProbeHandle<i64>,
    shared: Arc<Shared>,
) -> (
    StreamVec<'s, i64, ReadingBatch>,
    StreamVec<'s, i64, OutRecord>,
) {
    let peers = scope.peers();
    drive(scope, "source", shared, move || {
        let delay = pipeline.watermark_delay;
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
        FileReader {
            states,
            bounds,
            peers,
            pressure: Backpressure::new(progress, done, pipeline.lead),
            skip_bad_files: pipeline.source.skip_bad_files,
        }
    })
}
