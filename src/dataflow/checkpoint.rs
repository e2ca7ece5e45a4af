//! Taking checkpoints in a running dataflow (one process; the file format and what a
//! checkpoint holds are `crate::checkpoint`'s). The [`Coordinator`] is shared by the workers:
//!
//! 1. **Arm.** Every `checkpoint-interval` the sink stage (worker 0) arms a cut `at` above
//!    every time any source has emitted at so far and above every source's capability (each
//!    source publishes both after every pull), so that every source still reading must read
//!    again, and report where its partitions stand, before any stage reaches the cut.
//! 2. **Cut the sources.** A source that sees the cut splits the batch in which its
//!    partition's watermark first reaches `at`: the rows before go out as usual, the rest at
//!    `at` or later, and the row where the rest begins (with the watermark before it) is the
//!    partition's position in the checkpoint. A source that was mid-pull when the cut was
//!    armed and emitted at or above it cancels the cut (the sink arms another next time).
//! 3. **Save the stages.** The window and score stages hold back what arrives at `at` or
//!    later; once their input frontier reaches `at` (everything below has arrived and been
//!    taken in), they hand their state over, then take in what they held back.
//! 4. **Complete.** When the sinks' frontier reaches `at` and every worker's state is in, the
//!    sinks write the rows below `at`, make them durable (close the Parquet part), and hand
//!    the checkpoint to a writer thread; the rows at `at` and later follow at once. The
//!    checkpoint counts (its positions committed, the next cut armed) once its file is
//!    written ([`Coordinator::written_now`]); a stopping run waits for it.
//!
//! 5. **Stop.** A live run asked to stop ([`Coordinator::stop`]) arms a cut at once; the
//!    sources read on until it is taken (partitions with nothing more to read count as idle
//!    up to it), then finish; the open windows stay in the checkpoint (not flushed) and no row
//!    at or after the cut is written ([`Coordinator::final_cut`]).
//!
//! Holding back and splitting never change an output: a reading emitted at `at` or later
//! belongs only to windows ending after `at`, and windows reach the scorer in order per
//! sensor either way.

use crate::checkpoint::{self, Checkpoint, ScoringState, SinkPosition, SourceCut};
use crate::stages::incidents::{Episode, Tracker};
use crate::stages::window::SeriesSnapshot;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// An episode in the incidents' collection at a cut: its sensor, itself, and when it leaves
/// (see [`checkpoint::IncidentsState`]).
pub(super) type LiveEpisode = (String, Episode, Option<i64>);

/// What a run's checkpoints are and where they go.
#[derive(Clone, Debug)]
pub struct CheckpointOptions {
    /// The directory.
    pub dir: PathBuf,
    /// How often (wall clock).
    pub every: Duration,
    /// How many to keep.
    pub keep: usize,
}

impl CheckpointOptions {
    /// A pipeline's `[recovery]` settings as a run takes them.
    pub fn of(r: &crate::plan::RecoveryPlan) -> Self {
        Self {
            dir: r.dir.clone(),
            every: Duration::from_millis(r.every_ms.max(1) as u64),
            keep: r.keep,
        }
    }
}

/// A cut being taken: its id and time.
pub type Cut = (u64, i64);

/// Where a source partition stands after a pull, for the armed cut.
pub(super) struct PartReport {
    /// The partition's index in the run's order.
    pub index: usize,
    /// Its position: where rows at the cut or later begin (when `crossed`), else the next row.
    pub cut: SourceCut,
    /// It emitted at the cut or later in this pull; `cut` is where that began.
    pub crossed: bool,
}

struct Inner {
    next_id: u64,
    /// Per worker: the largest time its source has emitted at.
    hi: Vec<i64>,
    /// Per worker: its source's capability after its last read (i64::MAX once finished).
    caps: Vec<i64>,
    /// The armed cut's partition positions: (position, crossed).
    parts: BTreeMap<usize, (SourceCut, bool)>,
    /// Partitions whose reader has finished (read to their end, or a live run stopped): their
    /// last position, for every cut.
    finished: BTreeMap<usize, SourceCut>,
    windows: Vec<Option<Vec<SeriesSnapshot>>>,
    scoring: Vec<Option<ScoringState>>,
    /// Per worker: the episodes in the incidents' collection (runs that track incidents).
    live: Vec<Option<Vec<LiveEpisode>>>,
    /// The incident tracker (worker 0).
    tracker: Option<Tracker>,
    last: Instant,
    written: u64,
    /// How far above every source's emissions the next cut goes (doubles after each cancelled
    /// cut, so that sources decoding while it is armed fall below it).
    margin: i64,
    /// The last cut was cancelled: arm the next one without waiting for the interval.
    retry: bool,
    /// The cut resumed from (or the beginning of time).
    floor: i64,
    /// A source has emitted something, or taken its capability above `floor`: from then on the
    /// stages may write rows, and there is something to save. (Not the emission times: a
    /// resumed run emits its first readings at the cut itself, and a fresh one perhaps at the
    /// beginning of time.)
    moved: bool,
}

/// Shared by the workers of one process: arms cuts, collects the parts, writes the file.
pub struct Coordinator {
    opts: CheckpointOptions,
    pipeline: String,
    hash: u64,
    /// The definition hashed (`checkpoint::definition`).
    definition: String,
    workers: usize,
    /// The run tracks incidents: their state is part of every checkpoint.
    incidents: bool,
    /// Every partition's position when the run started, in the run's order.
    initial: Vec<SourceCut>,
    armed_id: AtomicU64,
    armed_at: AtomicI64,
    inner: Mutex<Inner>,
    /// The source positions of the last checkpoint written, with its id: what live sources
    /// commit to their consumer group (never ahead of saved state).
    committed: Mutex<(u64, Vec<SourceCut>)>,
    /// A live run was asked to stop: the next cut is armed at once, and the first completed
    /// afterwards is the run's last.
    stopping: AtomicBool,
    /// The cut of the run's last checkpoint, once taken (`i64::MAX`: not yet): nothing at or
    /// after it is written, and the sources stop.
    final_at: AtomicI64,
    /// The checkpoint being written by a thread of its own, if any.
    writing: Mutex<Option<InFlight>>,
}

/// A checkpoint handed to its writer thread.
struct InFlight {
    id: u64,
    at: i64,
    /// Its source positions (committed once it is written).
    positions: Vec<SourceCut>,
    /// How long the sinks were held for it.
    held: Duration,
    /// It is a stopping run's last.
    last: bool,
    job: Job,
}

/// What a writer returns: the file and how long it took.
type WriteResult = Result<(PathBuf, Duration), checkpoint::CheckpointError>;

/// A checkpoint's write: on its thread, or done here (no thread could be started).
enum Job {
    Thread(std::thread::JoinHandle<WriteResult>),
    Done(WriteResult),
}

/// A checkpoint file written.
pub(super) struct Written {
    /// Its id.
    pub id: u64,
    /// Its cut.
    pub at: i64,
    /// Its file.
    pub path: PathBuf,
    /// How long the sinks were held for it (its outputs made durable, its state handed over).
    pub held: Duration,
    /// How long its writer took to encode, write and flush it.
    pub writing: Duration,
}

const NONE: u64 = 0;

impl Coordinator {
    /// A coordinator for a run of `workers` workers whose partitions start at `initial`;
    /// checkpoint ids go on from `after` (the checkpoint resumed from, or 0), and cuts from
    /// `floor` (its cut, or the beginning of time).
    pub fn new(
        opts: CheckpointOptions,
        plan: &crate::plan::Plan,
        workers: usize,
        initial: Vec<SourceCut>,
        after: (u64, i64),
    ) -> Self {
        let (after, floor) = after;
        Self {
            opts,
            pipeline: plan.name.clone(),
            hash: checkpoint::pipeline_hash(&plan.config),
            definition: checkpoint::definition(&plan.config),
            workers,
            incidents: plan.tracks_incidents(),
            initial,
            armed_id: AtomicU64::new(NONE),
            armed_at: AtomicI64::new(i64::MIN),
            committed: Mutex::new((NONE, Vec::new())),
            stopping: AtomicBool::new(false),
            final_at: AtomicI64::new(i64::MAX),
            writing: Mutex::new(None),
            inner: Mutex::new(Inner {
                next_id: after + 1,
                // Nothing is emitted below the cut resumed from: no new cut goes below it.
                hi: vec![floor; workers],
                caps: vec![floor; workers],
                parts: BTreeMap::new(),
                finished: BTreeMap::new(),
                windows: vec![None; workers],
                scoring: vec![None; workers],
                live: vec![None; workers],
                tracker: None,
                last: Instant::now(),
                written: 0,
                margin: plan.window.slide.max(1),
                retry: false,
                floor,
                moved: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cut being taken, if any.
    pub fn armed(&self) -> Option<Cut> {
        let id = self.armed_id.load(Ordering::SeqCst);
        (id != NONE).then(|| (id, self.armed_at.load(Ordering::SeqCst)))
    }

    /// A live run is asked to stop: take a checkpoint now, the run's last (see
    /// [`Self::final_cut`]).
    pub(super) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// True once a stop was asked for.
    pub(super) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The cut of a stopped run's last checkpoint, once it is written: the sources stop, the
    /// open windows stay unflushed (they are in the checkpoint) and no row at or after it is
    /// written, so that the run resumed from it goes on as if never stopped.
    pub(super) fn final_cut(&self) -> Option<i64> {
        let at = self.final_at.load(Ordering::SeqCst);
        (at != i64::MAX).then_some(at)
    }

    /// The positions a stopped run commits to its consumer group: those of its last
    /// checkpoint (or of the one it resumed from, when it wrote none); `None` before the last
    /// checkpoint is written.
    pub fn final_positions(&self) -> Option<Vec<SourceCut>> {
        self.final_cut()?;
        let (id, positions) = self.last_positions();
        Some(if id == NONE {
            self.initial.clone()
        } else {
            positions
        })
    }

    /// Checkpoints written by this run.
    pub fn written(&self) -> u64 {
        self.lock().written
    }

    fn disarm(&self, inner: &mut Inner) {
        self.armed_id.store(NONE, Ordering::SeqCst);
        self.armed_at.store(i64::MIN, Ordering::SeqCst);
        inner.parts.clear();
        inner.windows.iter_mut().for_each(|w| *w = None);
        inner.scoring.iter_mut().for_each(|s| *s = None);
        inner.live.iter_mut().for_each(|s| *s = None);
        inner.tracker = None;
    }

    /// The sink stage, now and then: arms a cut when the interval has passed (or a stop was
    /// asked for) and none is being taken (nor the run `ending`: its input is complete);
    /// returns the cut being taken.
    pub(super) fn maybe_arm(&self, ending: bool) -> Option<Cut> {
        if let Some(c) = self.armed() {
            return Some(c);
        }
        if ending || self.final_cut().is_some() || self.is_writing() {
            return None;
        }
        let stopping = self.stopping();
        let mut inner = self.lock();
        if inner.last.elapsed() < self.opts.every && !inner.retry && !stopping {
            return None;
        }
        let hi = inner.hi.iter().copied().max().unwrap_or(i64::MIN);
        // The capabilities of the sources still reading (i64::MAX: finished); with none, the
        // run is ending.
        let frontier = inner.caps.iter().copied().min().unwrap_or(i64::MAX);
        if stopping && !inner.moved && frontier != i64::MAX {
            // Stopped before reading anything: the checkpoint resumed from (or the run's
            // start) is still the state; nothing after it was written.
            self.final_at.store(inner.floor, Ordering::SeqCst);
            return None;
        }
        if !inner.moved || frontier == i64::MAX {
            return None; // nothing read yet, or every source has finished
        }
        inner.retry = false;
        // Above every emission and every source's capability, not only the least: then no
        // stage has reached the cut, and every source still reading must read again (and
        // report where its partitions stand) before one does. (Above the least only, a source
        // already past the cut could sleep through it, found by the stop test under load: a
        // worker's last batch took its capability hours of event time past its emissions, and
        // the checkpoint held its partitions' old offsets.)
        let most = inner.caps.iter().copied().filter(|&c| c != i64::MAX).max();
        let at = hi
            .max(most.unwrap_or(frontier))
            .saturating_add(inner.margin);
        let id = inner.next_id;
        inner.next_id += 1;
        // The time first, then the id that makes it visible.
        self.armed_at.store(at, Ordering::SeqCst);
        self.armed_id.store(id, Ordering::SeqCst);
        Some((id, at))
    }

    /// A source's pull is over: `seen` is the cut it split for (read before decoding),
    /// `emitted` the largest time it emitted at (None: nothing), `bound` its capability now
    /// (None: finished), `reports` its partitions' positions and `finished` those it read to
    /// the end.
    pub(super) fn source_pulled(
        &self,
        worker: usize,
        seen: Option<Cut>,
        emitted: Option<i64>,
        bound: Option<i64>,
        reports: Vec<PartReport>,
        finished: Vec<(usize, SourceCut)>,
    ) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        if let Some(e) = emitted {
            inner.hi[worker] = inner.hi[worker].max(e);
        }
        inner.caps[worker] = bound.unwrap_or(i64::MAX);
        inner.moved |= emitted.is_some() || bound.is_none_or(|b| b > inner.floor);
        for (i, c) in finished {
            inner.finished.insert(i, c);
        }
        let Some((id, at)) = self.armed() else {
            return;
        };
        let same = seen.is_some_and(|s| s.0 == id);
        if !same && (emitted.is_some_and(|e| e >= at) || bound.is_some_and(|b| b >= at)) {
            // Armed while this pull was decoding, which emitted at or above the cut without
            // splitting, or took its capability there without reporting where its partitions
            // stand: this cut cannot be taken. The sink arms another.
            tracing::debug!("checkpoint {id} at {at} cancelled: a source passed it mid-pull");
            self.disarm(inner);
            inner.retry = true;
            inner.margin = inner.margin.saturating_mul(2);
            return;
        }
        for r in reports {
            let crossed = same && r.crossed;
            match inner.parts.get(&r.index) {
                Some((_, true)) => {} // the position where the cut was crossed is final
                _ => {
                    inner.parts.insert(r.index, (r.cut, crossed));
                }
            }
        }
    }

    /// Gives up the cut `id` (the run is ending before every stage saved for it).
    pub(super) fn cancel(&self, id: u64) {
        let mut inner = self.lock();
        if self.armed().is_some_and(|c| c.0 == id) {
            self.disarm(&mut inner);
        }
    }

    /// A window stage's state at the cut `id`.
    pub(super) fn put_windows(&self, worker: usize, id: u64, state: Vec<SeriesSnapshot>) {
        let mut inner = self.lock();
        if self.armed().is_some_and(|c| c.0 == id) {
            inner.windows[worker] = Some(state);
        }
    }

    /// A score stage's state at the cut `id`.
    pub(super) fn put_scoring(&self, worker: usize, id: u64, state: ScoringState) {
        let mut inner = self.lock();
        if self.armed().is_some_and(|c| c.0 == id) {
            inner.scoring[worker] = Some(state);
        }
    }

    /// The episodes in a worker's part of the incidents' collection at the cut `id`.
    pub(super) fn put_live(&self, worker: usize, id: u64, episodes: Vec<LiveEpisode>) {
        let mut inner = self.lock();
        if self.armed().is_some_and(|c| c.0 == id) {
            inner.live[worker] = Some(episodes);
        }
    }

    /// The incident tracker's state at the cut `id`.
    pub(super) fn put_tracker(&self, id: u64, tracker: Tracker) {
        let mut inner = self.lock();
        if self.armed().is_some_and(|c| c.0 == id) {
            inner.tracker = Some(tracker);
        }
    }

    /// True when every worker's state for cut `id` is in.
    pub(super) fn parts_in(&self, id: u64) -> bool {
        let inner = self.lock();
        self.armed().is_some_and(|c| c.0 == id)
            && inner.windows.iter().all(Option::is_some)
            && inner.scoring.iter().all(Option::is_some)
            && (!self.incidents
                || (inner.live.iter().all(Option::is_some) && inner.tracker.is_some()))
    }

    /// Hands the checkpoint of cut `id` (the sinks are durable at `sinks`, `held` after the
    /// sinks reached the cut) to a writer thread: it is encoded, written and flushed while the
    /// run goes on, and counts (its positions committed, the interval restarted, a stopping
    /// run's last cut set) once [`Self::written_now`] finds it written. A stopping run waits
    /// for it: nothing after its last cut may be written.
    pub(super) fn complete(&self, id: u64, sinks: Vec<SinkPosition>, held: Duration) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let at = self.armed_at.load(Ordering::SeqCst);
        let sources: Vec<SourceCut> = self
            .initial
            .iter()
            .enumerate()
            .map(
                |(i, start)| match (inner.parts.get(&i), inner.finished.get(&i)) {
                    (Some((c, true)), _) => c.clone(),
                    (_, Some(done)) => done.clone(),
                    (Some((c, false)), None) => c.clone(),
                    (None, None) => start.clone(),
                },
            )
            .collect();
        let state = inner
            .windows
            .iter_mut()
            .zip(inner.scoring.iter_mut())
            .map(|(w, s)| checkpoint::WorkerState {
                windows: w.take().unwrap_or_default(),
                scoring: s.take(),
            })
            .collect();
        let incidents = self.incidents.then(|| {
            let mut episodes: Vec<LiveEpisode> = inner
                .live
                .iter_mut()
                .filter_map(Option::take)
                .flatten()
                .collect();
            episodes.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
            checkpoint::IncidentsState {
                episodes,
                tracker: inner.tracker.take().unwrap_or_default(),
            }
        });
        let positions = sources.clone();
        let c = Checkpoint {
            id,
            at,
            pipeline_hash: self.hash,
            definition: self.definition.clone(),
            pipeline: self.pipeline.clone(),
            workers: self.workers,
            written_ms: crate::timefmt::now_ms(),
            sources,
            state,
            sinks,
            incidents,
        };
        self.disarm(inner);
        let (dir, keep) = (self.opts.dir.clone(), self.opts.keep);
        let write = move || {
            let started = Instant::now();
            checkpoint::write(&dir, &c, keep).map(|p| (p, started.elapsed()))
        };
        let job = match std::thread::Builder::new()
            .name("hyflow-checkpoint".into())
            .spawn(write)
        {
            Ok(h) => Job::Thread(h),
            Err(e) => {
                // No thread to be had: the checkpoint fails as a write would.
                let path = self.opts.dir.clone();
                Job::Done(Err(checkpoint::CheckpointError::Io { path, source: e }))
            }
        };
        *self.writing.lock().unwrap_or_else(|p| p.into_inner()) = Some(InFlight {
            id,
            at,
            positions,
            held,
            last: self.stopping(),
            job,
        });
    }

    /// True while a checkpoint is being written.
    pub(super) fn is_writing(&self) -> bool {
        self.writing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// The checkpoint handed to the writer, once written (`wait`: waiting for it); None when
    /// none is being written, or it is not written yet. A written one counts from here on.
    pub(super) fn written_now(
        &self,
        wait: bool,
    ) -> Option<Result<Written, checkpoint::CheckpointError>> {
        let f = {
            let mut w = self.writing.lock().unwrap_or_else(|p| p.into_inner());
            let finished = match &w.as_ref()?.job {
                Job::Thread(h) => h.is_finished(),
                Job::Done(_) => true,
            };
            if !wait && !finished {
                return None;
            }
            w.take()?
        };
        let done = match f.job {
            Job::Done(r) => r,
            Job::Thread(h) => h.join().unwrap_or_else(|_| {
                Err(checkpoint::CheckpointError::Io {
                    path: self.opts.dir.clone(),
                    source: std::io::Error::other("the checkpoint writer panicked"),
                })
            }),
        };
        let mut inner = self.lock();
        inner.last = Instant::now();
        Some(done.map(|(path, writing)| {
            inner.written += 1;
            *self.committed.lock().unwrap_or_else(|p| p.into_inner()) = (f.id, f.positions);
            if f.last {
                self.final_at.store(f.at, Ordering::SeqCst);
            }
            Written {
                id: f.id,
                at: f.at,
                path,
                held: f.held,
                writing,
            }
        }))
    }

    /// Writes the checkpoint of a live run's start (nothing read, no state; the sinks as
    /// opened), so that a run killed before its first checkpoint goes on from here: the parts
    /// it wrote are removed, and it reads again from the same offsets.
    pub(super) fn write_start(
        &self,
        sinks: Vec<SinkPosition>,
    ) -> Result<PathBuf, checkpoint::CheckpointError> {
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        let c = Checkpoint {
            id,
            at: i64::MIN,
            pipeline_hash: self.hash,
            definition: self.definition.clone(),
            pipeline: self.pipeline.clone(),
            workers: self.workers,
            written_ms: crate::timefmt::now_ms(),
            sources: self.initial.clone(),
            state: vec![checkpoint::WorkerState::default(); self.workers],
            sinks,
            incidents: None,
        };
        let path = checkpoint::write(&self.opts.dir, &c, self.opts.keep)?;
        inner.written += 1;
        *self.committed.lock().unwrap_or_else(|p| p.into_inner()) = (c.id, c.sources);
        Ok(path)
    }

    /// The source positions of the last checkpoint written and its id (0: none yet).
    pub(super) fn last_positions(&self) -> (u64, Vec<SourceCut>) {
        self.committed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// What a stage holds back while a cut is being taken, and when it saves its state.
pub(super) struct Holding<T> {
    held: Vec<(i64, T)>,
    /// The last cut this stage saved its state for.
    saved: u64,
}

impl<T> Default for Holding<T> {
    fn default() -> Self {
        Self {
            held: Vec::new(),
            saved: NONE,
        }
    }
}

impl<T> Holding<T> {
    /// Holds `item` (arrived at `time`) back if the cut `cut` is being taken, this stage has not
    /// saved for it, and `time` is at or above it; otherwise gives it back.
    pub(super) fn hold(&mut self, cut: Option<Cut>, time: i64, item: T) -> Option<T> {
        match cut {
            Some((id, at)) if self.saved != id && time >= at => {
                self.held.push((time, item));
                None
            }
            _ => Some(item),
        }
    }

    /// At the input frontier `upto`: whether the stage should save its state for `cut` now
    /// (everything below the cut has arrived, and it has not saved yet). Afterwards call
    /// [`Self::release`].
    pub(super) fn due(&self, cut: Option<Cut>, upto: i64) -> Option<u64> {
        match cut {
            Some((id, at)) if self.saved != id && upto >= at => Some(id),
            _ => None,
        }
    }

    /// True when nothing is held back.
    pub(super) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Records that the stage saved for `id`.
    pub(super) fn saved(&mut self, id: u64) {
        self.saved = id;
    }

    /// What may be taken in now: everything when no cut is pending for this stage, else what
    /// arrived below the cut (held under an earlier, cancelled one).
    pub(super) fn release(&mut self, cut: Option<Cut>) -> Vec<(i64, T)> {
        match cut {
            Some((id, at)) if self.saved != id => {
                let (below, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
                    .into_iter()
                    .partition(|(t, _)| *t < at);
                self.held = keep;
                below
            }
            _ => std::mem::take(&mut self.held),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A coordinator for `workers` workers of the manufacturing pipeline, resumed from a cut
    /// at `floor` (i64::MIN: a fresh run), taking a checkpoint whenever asked.
    fn coordinator(workers: usize, floor: i64) -> Coordinator {
        let plan =
            crate::plan::load(std::path::Path::new("pipelines/manufacturing.toml")).expect("plan");
        let opts = CheckpointOptions {
            dir: std::env::temp_dir(),
            every: Duration::ZERO,
            keep: 3,
        };
        Coordinator::new(opts, &plan, workers, Vec::new(), (7, floor))
    }

    // The stop test under load: a worker whose last batch took its capability far past its
    // emissions slept through a cut armed between the two, and the checkpoint held its
    // partitions' old offsets.
    #[test]
    fn a_cut_goes_above_every_sources_capability_not_only_the_least() {
        let c = coordinator(2, i64::MIN);
        c.source_pulled(0, None, Some(100), Some(100), Vec::new(), Vec::new());
        c.source_pulled(1, None, Some(100), Some(1_000_000), Vec::new(), Vec::new());
        let (_, at) = c.maybe_arm(false).expect("a cut");
        assert!(at > 1_000_000, "cut at {at}");
    }

    // A resumed run emits its first readings at the cut it resumed from: that is reading,
    // and a stop then takes a checkpoint (ending at the old one left the rows written since
    // in parts no checkpoint lists).
    #[test]
    fn a_stop_after_readings_emitted_at_the_resumed_cut_takes_a_checkpoint() {
        let c = coordinator(2, 5_000);
        c.stop();
        c.source_pulled(0, None, Some(5_000), Some(5_000), Vec::new(), Vec::new());
        c.source_pulled(1, None, None, Some(5_000), Vec::new(), Vec::new());
        let (_, at) = c.maybe_arm(false).expect("a cut");
        assert!(at > 5_000, "cut at {at}");
        assert_eq!(c.final_cut(), None);
    }

    #[test]
    fn a_stop_before_any_source_moved_ends_at_the_cut_resumed_from() {
        let c = coordinator(2, 5_000);
        c.source_pulled(0, None, None, Some(5_000), Vec::new(), Vec::new());
        c.stop();
        c.source_pulled(1, None, None, Some(5_000), Vec::new(), Vec::new());
        assert_eq!(c.maybe_arm(false), None);
        assert_eq!(c.final_cut(), Some(5_000));
        // A source whose capability moved (an idle stream following another's watermark
        // closes restored windows) is not "nothing read".
        let c = coordinator(2, 5_000);
        c.stop();
        c.source_pulled(1, None, None, Some(9_000), Vec::new(), Vec::new());
        assert!(c.maybe_arm(false).is_some());
        assert_eq!(c.final_cut(), None);
    }
}
