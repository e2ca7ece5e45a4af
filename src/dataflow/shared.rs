//! What the workers of a run share: its metrics recorder, the first error, the
//! output files, the engines' reports, the stop flag and, for live runs, the positions and
//! durable frontier that offsets are committed by.

use crate::compute::cost::EngineReport;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// State shared by the workers of a run.
#[derive(Default)]
pub struct Shared {
    /// The run's metrics (the events of its workers reach it; summary, progress and
    /// `/metrics` read it).
    pub recorder: Arc<crate::events::Recorder>,
    /// A live run (window-close lag is measured against the wall clock).
    pub(super) live: AtomicBool,
    pub(super) abort: AtomicBool,
    pub(super) error: Mutex<Option<super::Failure>>,
    pub(super) files: Mutex<Vec<(String, Vec<PathBuf>)>>,
    pub(super) engines: Mutex<Vec<EngineReport>>,
    /// The engines' cost models, shared by the workers (routing under `auto`).
    pub costs: crate::compute::cost::CostBook,
    pub(super) finished_workers: AtomicUsize,
    /// A worker panicked: the others may wait for it forever, so the run is not joined.
    pub(super) panicked: AtomicBool,
    pub(super) stop: AtomicBool,
    pub(super) positions: Mutex<Vec<(String, i32, i64)>>,
    /// Live runs: every output row with a time below this is durable.
    pub(super) durable: std::sync::atomic::AtomicI64,
    /// Live runs: how often the sinks make their outputs durable (ms; 0 = only at the end).
    pub(super) checkpoint_ms: std::sync::atomic::AtomicI64,
    /// Live runs: the largest partition watermark any worker of this process has reached.
    pub(super) live_max: std::sync::atomic::AtomicI64,
    /// Live runs: how many times a silent partition of this process got messages again
    /// (every reader then asks the broker about its own silent partitions before time moves
    /// on).
    pub(super) wakes: std::sync::atomic::AtomicU64,
    /// Checkpoints, when the run takes them.
    pub(super) checkpoints: Option<super::checkpoint::Coordinator>,
}

/// Counts its worker as finished when dropped, at the end of the worker's loop or when the
/// worker panics (which then fails the run).
pub(super) struct WorkerDone(pub(super) Arc<Shared>, pub(super) usize);

impl Drop for WorkerDone {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail(super::Failure::Panic(self.1));
            self.0.panicked.store(true, Ordering::SeqCst);
        }
        self.0.finished_workers.fetch_add(1, Ordering::SeqCst);
    }
}

impl Shared {
    /// Asks live sources to stop reading: the run then finishes what it read and ends cleanly
    /// or, taking checkpoints, takes one last checkpoint and ends there (its open windows are
    /// in it, not flushed).
    pub fn request_stop(&self) {
        if self.live.load(Ordering::SeqCst)
            && let Some(c) = &self.checkpoints
        {
            c.stop();
        }
        self.stop.store(true, Ordering::SeqCst);
    }
    /// True once a stop was asked for.
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    /// True once live sources should finish: a stop was asked for and, when the run takes
    /// checkpoints, its last one is written (or the run failed).
    pub fn stop_now(&self) -> bool {
        self.stop_requested()
            && (self.aborted()
                || self
                    .checkpoints
                    .as_ref()
                    .is_none_or(|c| !c.stopping() || c.final_cut().is_some()))
    }
    /// Records where a live source stopped, per (topic, partition): the next offset to read.
    pub fn record_positions(&self, positions: impl Iterator<Item = (String, i32, i64)>) {
        self.positions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(positions);
    }
    /// Every output row with a time below the returned one is durable (live runs).
    pub fn durable(&self) -> i64 {
        self.durable.load(Ordering::SeqCst)
    }
    /// Records that every output row below `t` is durable.
    pub fn set_durable(&self, t: i64) {
        self.durable.fetch_max(t, Ordering::SeqCst);
    }
    /// Records a worker's most advanced partition watermark.
    pub fn note_live_bound(&self, t: i64) {
        self.live_max.fetch_max(t, Ordering::SeqCst);
    }
    /// The most advanced partition watermark of the process, and how many partitions have
    /// woken up so far, read in that order: a watermark raised by a partition that woke up
    /// comes with its wake (it is counted before the partition's readings are decoded).
    pub fn live_bound_and_wakes(&self) -> (i64, u64) {
        let most = self.live_max.load(Ordering::SeqCst);
        (most, self.wakes.load(Ordering::SeqCst))
    }
    /// A silent partition got messages again.
    pub fn note_wake(&self) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
    /// How often sinks make outputs durable, when they should (ms).
    pub fn checkpoint_every(&self) -> Option<Duration> {
        let ms = self.checkpoint_ms.load(Ordering::SeqCst);
        (ms > 0).then(|| Duration::from_millis(ms as u64))
    }
    /// Records the first error and asks every operator to stop.
    pub fn fail(&self, e: super::Failure) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
        self.abort.store(true, Ordering::SeqCst);
    }
    /// Adds one worker's engine counts to the run's (summed by engine name).
    pub fn add_engine_reports(&self, reports: Vec<EngineReport>) {
        let mut all = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        for r in reports {
            match all.iter_mut().find(|a| a.name == r.name) {
                Some(a) => {
                    a.batches += r.batches;
                    a.windows += r.windows;
                    a.values += r.values;
                    a.busy_secs += r.busy_secs;
                    a.errors += r.errors;
                    a.cross_checked += r.cross_checked;
                    a.max_abs_diff = a.max_abs_diff.max(r.max_abs_diff);
                    a.max_rel_diff = a.max_rel_diff.max(r.max_rel_diff);
                }
                None => all.push(r),
            }
        }
    }
    /// True once a failure was recorded.
    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_panics_fails_the_run_and_counts_as_finished() {
        let shared = Arc::new(Shared::default());
        let (ok, bad) = (shared.clone(), shared.clone());
        std::thread::spawn(move || {
            let _done = WorkerDone(ok, 0);
        })
        .join()
        .expect("worker 0 ends");
        assert!(!shared.panicked.load(Ordering::SeqCst) && !shared.aborted());
        let r = std::thread::spawn(move || {
            let _done = WorkerDone(bad, 1);
            panic!("worker 1 breaks");
        })
        .join();
        assert!(r.is_err());
        assert_eq!(shared.finished_workers.load(Ordering::SeqCst), 2);
        assert!(shared.panicked.load(Ordering::SeqCst) && shared.aborted());
        let err = shared.error.lock().unwrap().clone();
        assert_eq!(err, Some(super::super::Failure::Panic(1)));
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("worker 1 stopped by a panic"), "{text}");
    }
}
