//! The file source: a worker's input partitions (Parquet files or row groups, CSV files), read
//! one after another, a batch per pull, through [`super::source_driver::drive`]. Each batch is
//! emitted at its partition's watermark *before* the batch, which is at most the time of any
//! of its on-time readings' windows, and the same in every run.

use super::Shared;
use super::checkpoint::{Cut, PartReport};
use super::source_driver::{Backpressure, Emitted, Next, Pull, drive};
use crate::batch::{ReadingBatch, RejectKind, RejectRow};
use crate::checkpoint::SourceCut;
use crate::events::{Event as _, RowsRejected};
use crate::output::OutRecord;
use crate::plan::Plan;
use crate::stages::source::{Decoder, Partition};
use arrow_array::RecordBatch;
use std::sync::Arc;
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

struct PartState {
    /// Index in the global partition order.
    index: usize,
    started: bool,
    /// The next row to read (rows before `skip` are passed over: a resumed run).
    row: u64,
    skip: u64,
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

    /// Its position: the next row, and what its watermark has seen.
    fn position(&self) -> SourceCut {
        SourceCut::File {
            name: self.part.name().to_string(),
            row: self.row,
            seen: self.decoder.watermark.seen(),
        }
    }

    /// Its position once read to the end.
    fn done(self) -> (usize, SourceCut) {
        let name = self.part.name().to_string();
        (self.index, SourceCut::FileDone { name })
    }

    /// Decodes `rb` (rows from `first_row`) into `out`. With a checkpoint's `cut` that this
    /// batch's rows take the watermark to, the batch is split where they do: the rows before
    /// are emitted below the cut, the rest at it or later, and where the rest begins is the
    /// partition's position in the checkpoint.
    fn decode_cut(
        &mut self,
        name: &str,
        first_row: u64,
        rb: &RecordBatch,
        cut: Option<Cut>,
        out: &mut Emitted,
    ) {
        let n = rb.num_rows();
        let split = match cut {
            Some((_, at)) if self.bound() >= at => Some(0),
            Some((_, at)) => self.decoder.crossing(rb, at),
            None => None,
        };
        let upto = split.unwrap_or(n);
        if upto > 0 {
            let part = rb.slice(0, upto);
            let at = self.bound();
            let d = self.decoder.decode(name, first_row, &part, self.floor);
            out.decoded(name, upto as u64, d, at, i64::MIN);
            self.row = first_row + upto as u64;
        }
        if let (Some((_, cut_at)), Some(k)) = (cut, split) {
            out.reports.push(PartReport {
                index: self.index,
                cut: self.position(),
                crossed: true,
            });
            // From here on nothing is emitted below the cut (as in a run resumed from it).
            self.floor = self.floor.max(cut_at);
            if k < n {
                let rest = rb.slice(k, n - k);
                let at = self.bound();
                let first = first_row + k as u64;
                let d = self.decoder.decode(name, first, &rest, self.floor);
                out.decoded(name, (n - k) as u64, d, at, i64::MIN);
                self.row = first_row + n as u64;
            }
        } else if cut.is_some() {
            out.reports.push(PartReport {
                index: self.index,
                cut: self.position(),
                crossed: false,
            });
        }
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

    fn pull(
        &mut self,
        _floor: i64,
        cut: Option<Cut>,
        out: &mut Emitted,
    ) -> Result<Next, super::Failure> {
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
                // A resumed run passes over the rows before its checkpoint's position.
                let end = first_row + rb.num_rows() as u64;
                if end <= st.skip {
                    st.row = end;
                    return Ok(Next::Now);
                }
                let from = st.skip.saturating_sub(first_row) as usize;
                let (first_row, rb) = (
                    first_row + from as u64,
                    rb.slice(from, rb.num_rows() - from),
                );
                st.decode_cut(&name, first_row, &rb, cut, out);
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
                let done = self.states.pop();
                out.finished.extend(done.map(|st| st.done()));
            }
            Some(Err(e)) => return Err(super::Failure::Read(e.to_string())),
            None => {
                let done = self.states.pop();
                out.finished.extend(done.map(|st| st.done()));
            }
        }
        Ok(Next::Now)
    }
}

/// The file source over this worker's `parts` (with their index in the global order); `bounds`
/// holds the initial bound of every partition of the run; `resume`, the checkpoint the run
/// goes on from. Returns (readings, side rows).
#[allow(clippy::too_many_arguments)]
pub fn file_source<'s>(
    scope: Scope<'s, i64>,
    pipeline: Arc<Plan>,
    parts: Vec<(usize, Box<dyn Partition>)>,
    bounds: Arc<Vec<i64>>,
    progress: ProbeHandle<i64>,
    done: ProbeHandle<i64>,
    shared: Arc<Shared>,
    resume: Option<Arc<crate::checkpoint::Checkpoint>>,
) -> (
    StreamVec<'s, i64, ReadingBatch>,
    StreamVec<'s, i64, OutRecord>,
) {
    let peers = scope.peers();
    drive(scope, "source", shared, move || {
        let delay = pipeline.watermark_delay;
        let mut states: Vec<PartState> = parts
            .into_iter()
            .filter_map(|(index, part)| {
                let mut floor = part
                    .min_time()
                    .map_or(i64::MIN, |t| t.saturating_sub(delay).saturating_sub(1));
                let mut seed = part.watermark_seed();
                let mut skip = 0;
                // A resumed run: each partition goes on from its position at the cut, and
                // nothing is emitted below the cut (the state already holds what was).
                if let Some(r) = &resume {
                    floor = floor.max(r.at);
                    match r.sources.get(index) {
                        Some(SourceCut::FileDone { .. }) => return None,
                        Some(SourceCut::File { row, seen, .. }) => {
                            skip = *row;
                            if *row > 0 {
                                seed = *seen;
                            }
                        }
                        _ => {}
                    }
                }
                Some(PartState {
                    index,
                    started: false,
                    row: skip,
                    skip,
                    part,
                    decoder: Decoder::new(pipeline.clone(), peers, seed),
                    floor,
                })
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
