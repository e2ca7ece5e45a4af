//! The one router of the compute engines: which engine a batch goes to, and what happens when
//! an engine fails or disagrees with the CPU. The features stage ([`super::scheduler::Hybrid`])
//! and the detector engine ([`super::detect::DetectEngine`]) both run their batches where this
//! says, and tell it what came of each; the router keeps the cost book, the failure policy,
//! the cross-check cadence and verdict, and the per-engine report, and makes each decision an
//! event ([`crate::events`]).
//!
//! Engine 0 is always the CPU reference, which is never dropped. The rules, the same for both
//! stages:
//! - **Routing.** `auto` ([`Policy::Cheapest`]): each live engine is measured on 3 batches
//!   first (over the run's workers when the costs are shared; a probe still in flight on an
//!   accelerator counts, so the first batches do not all go to it), then every 64th batch goes to
//!   the next engine in turn so that estimates follow changing conditions, and every other
//!   batch to the engine predicted to finish it soonest. `cuda:N` ([`Policy::Accelerator`]):
//!   the accelerator while it is live.
//! - **Failures.** A failed batch is recomputed on the CPU (the caller does that; nothing is
//!   lost). An engine is dropped for the rest of the run at its first [`ComputeError::Lost`],
//!   or after 3 failed batches in a row.
//! - **Cross-check.** A fraction `f` of an accelerator's batches is recomputed on the CPU: its
//!   n-th batch is checked when ⌊n · f⌋ passes a whole number. With [`Check::Exact`] (the
//!   detectors, whose kernel is bit-exact by design) any difference means the engine is wrong:
//!   the CPU's result is used and the batch counts as failed. With [`Check::Within`] (features,
//!   whose sums may round differently) a difference beyond the tolerance is reported and the
//!   engine's result kept.

use super::ComputeError;
use super::cost::{CostBook, EngineReport, SharedCost};
use crate::events::{
    BatchComputed, BatchFailed, BatchRouted, BatchSpilled, CrossChecked, DeviceLost, Event as _,
    Route, Stage,
};

/// Routing policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// By measured cost (`auto`); a batch for a full accelerator goes to the CPU when that is
    /// expected to be sooner than waiting.
    Cheapest,
    /// Always the accelerator unless it fails (`cuda:N`); a full accelerator is waited for.
    Accelerator,
}

/// How a cross-checked batch is compared with the CPU's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Check {
    /// Bit for bit: any difference is a failure, and the CPU's result is used.
    Exact,
    /// Within a relative tolerance: a larger difference is reported; the engine's result stands.
    Within(f64),
}

/// What a cross-check found ([`Router::checked`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Difference {
    /// Largest absolute difference.
    pub max_abs: f64,
    /// Largest relative difference, where the stage measures one.
    pub max_rel: Option<f64>,
    /// The two results differ in shape or, for [`Check::Exact`], in any bit.
    pub differs: bool,
}

/// Failed batches in a row after which an engine is dropped.
const FAILURES_TO_DROP: u32 = 3;

struct Lane {
    report: EngineReport,
    cost: SharedCost,
    failures_in_a_row: u32,
    dropped: bool,
    /// Probes routed here and not yet computed, failed or spilled (this worker's).
    probing: u64,
}

/// The router of one stage on one worker (see the module doc).
pub struct Router {
    stage: Stage,
    lanes: Vec<Lane>,
    policy: Policy,
    fraction: f64,
    check: Check,
    batches: u64,
}

impl Router {
    /// A router over engines named `names` (the CPU reference first) for `stage`, cross-checking
    /// the fraction `cross_check` of the others' batches.
    pub fn new(
        stage: Stage,
        names: impl IntoIterator<Item = String>,
        policy: Policy,
        cross_check: f64,
        check: Check,
    ) -> Self {
        let lanes = names
            .into_iter()
            .map(|name| Lane {
                report: EngineReport {
                    name,
                    ..Default::default()
                },
                cost: SharedCost::default(),
                failures_in_a_row: 0,
                dropped: false,
                probing: 0,
            })
            .collect();
        Self {
            stage,
            lanes,
            policy,
            fraction: cross_check.clamp(0.0, 1.0),
            check,
            batches: 0,
        }
    }

    /// Makes the engines learn their costs in `book` (shared by the workers of a run) instead
    /// of on their own.
    pub fn share_costs(&mut self, book: &CostBook) {
        for l in &mut self.lanes {
            l.cost = book.get(&l.report.name);
        }
    }

    /// The name of engine `i`.
    pub fn name(&self, i: usize) -> &str {
        &self.lanes[i].report.name
    }

    /// True when engine `i` is still in use.
    pub fn live(&self, i: usize) -> bool {
        !self.lanes[i].dropped
    }

    /// True when an accelerator is still in use.
    pub fn accelerated(&self) -> bool {
        (1..self.lanes.len()).any(|i| self.live(i))
    }

    /// The routing policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Engine `i`'s predicted seconds for a batch of `work` (values or cells).
    pub fn predict(&self, i: usize, work: f64) -> f64 {
        self.lanes[i].cost.predict(work)
    }

    /// Batches engine `i` has been measured on (by every worker sharing its costs).
    pub fn samples(&self, i: usize) -> u64 {
        self.lanes[i].cost.samples()
    }

    /// The engine for the next batch of `work` and `windows` windows.
    pub fn route(&mut self, work: f64, windows: usize) -> usize {
        let (i, reason) = self.choose(work);
        self.batches += 1;
        if reason == Route::Probe {
            self.lanes[i].probing += 1;
        }
        BatchRouted {
            stage: self.stage,
            engine: self.name(i),
            windows: windows as u64,
            route: reason,
        }
        .emit();
        i
    }

    fn choose(&self, work: f64) -> (usize, Route) {
        let live: Vec<usize> = (0..self.lanes.len()).filter(|&i| self.live(i)).collect();
        if live.len() == 1 {
            return (0, Route::CpuOnly);
        }
        if self.policy == Policy::Accelerator {
            return (live[1], Route::Dedicated);
        }
        if let Some(&i) = live
            .iter()
            .find(|&&i| self.samples(i) + self.lanes[i].probing < 3)
        {
            return (i, Route::Probe);
        }
        if self.batches % 64 == 63 {
            return (
                live[(self.batches as usize / 64) % live.len()],
                Route::Probe,
            );
        }
        // By cost among the engines measured (an engine whose probes are still in flight has
        // no cost yet, and an empty model predicts 0).
        let measured: Vec<usize> = live
            .iter()
            .copied()
            .filter(|&i| self.samples(i) >= 3)
            .collect();
        let among = if measured.is_empty() {
            &live
        } else {
            &measured
        };
        let best = among
            .iter()
            .copied()
            .min_by(|&a, &b| self.predict(a, work).total_cmp(&self.predict(b, work)))
            .unwrap_or(0);
        (best, Route::Cost)
    }

    /// Engine `i` computed a batch of `windows` windows and `work` in `secs`: learns its cost
    /// and counts it. True when the batch is due for a cross-check (never for the CPU).
    pub fn computed(&mut self, i: usize, windows: usize, work: f64, secs: f64) -> bool {
        let l = &mut self.lanes[i];
        l.cost.observe(work, secs);
        l.probing = l.probing.saturating_sub(1);
        let r = &mut l.report;
        r.batches += 1;
        r.windows += windows as u64;
        r.values += work as u64;
        r.busy_secs += secs;
        BatchComputed {
            stage: self.stage,
            engine: &r.name,
            windows: windows as u64,
            seconds: secs,
        }
        .emit();
        let due = i > 0
            && self.fraction > 0.0
            && (r.batches as f64 * self.fraction).floor() as u64 > r.cross_checked;
        if !due {
            // A success (a checked batch is one only once its check has passed).
            l.failures_in_a_row = 0;
        }
        due
    }

    /// Records the cross-check of a batch engine `i` computed; true when its result stands,
    /// false when the CPU's must be used instead (the batch then counts as failed).
    pub fn checked(&mut self, i: usize, windows: usize, d: Difference) -> bool {
        let mismatch = match self.check {
            Check::Exact => d.differs,
            Check::Within(tol) => d.differs || d.max_rel.is_some_and(|r| r > tol),
        };
        let r = &mut self.lanes[i].report;
        r.cross_checked += 1;
        r.max_abs_diff = r.max_abs_diff.max(d.max_abs);
        r.max_rel_diff = r.max_rel_diff.max(d.max_rel.unwrap_or(0.0));
        CrossChecked {
            stage: self.stage,
            engine: &r.name,
            windows: windows as u64,
            max_abs: d.max_abs,
            max_rel: d.max_rel,
            mismatch,
        }
        .emit();
        if mismatch && self.check == Check::Exact {
            let err = ComputeError::Device("its results differ from the CPU's".into());
            self.failed(i, &err, windows);
            return false;
        }
        self.lanes[i].failures_in_a_row = 0;
        true
    }

    /// A batch routed to accelerator `i` went to the CPU because `i` had no room for it.
    pub fn spilled(&mut self, i: usize, windows: usize) {
        let l = &mut self.lanes[i];
        l.probing = l.probing.saturating_sub(1);
        let r = &mut l.report;
        r.spilled += 1;
        BatchSpilled {
            engine: &r.name,
            windows: windows as u64,
        }
        .emit();
    }

    /// Engine `i` failed a batch of `windows` windows (the caller recomputes it on the CPU).
    /// Drops the engine when the failure policy says so.
    pub fn failed(&mut self, i: usize, err: &ComputeError, windows: usize) {
        let l = &mut self.lanes[i];
        l.probing = l.probing.saturating_sub(1);
        l.report.errors += 1;
        l.failures_in_a_row += 1;
        let lost = matches!(err, ComputeError::Lost(_));
        BatchFailed {
            stage: self.stage,
            engine: &l.report.name,
            windows: windows as u64,
            error: err,
            lost: lost && !l.dropped,
        }
        .emit();
        if l.dropped || i == 0 {
            return;
        }
        let reason = if lost {
            "is lost for this run"
        } else if l.failures_in_a_row >= FAILURES_TO_DROP {
            "failed 3 batches in a row"
        } else {
            return;
        };
        l.dropped = true;
        DeviceLost {
            stage: self.stage,
            engine: &l.report.name,
            reason,
        }
        .emit();
    }

    /// What each engine did so far, the CPU first.
    pub fn reports(&self) -> Vec<EngineReport> {
        self.lanes.iter().map(|l| l.report.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(policy: Policy, fraction: f64, check: Check) -> Router {
        let names = ["cpu", "dev:0"].map(String::from);
        Router::new(Stage::Features, names, policy, fraction, check)
    }

    #[test]
    fn the_cross_check_cadence_is_the_fraction_of_batches() {
        let mut r = router(Policy::Accelerator, 0.3, Check::Exact);
        let due: Vec<bool> = (0..10)
            .map(|_| {
                let due = r.computed(1, 1, 1.0, 0.001);
                if due {
                    r.checked(1, 1, Difference::default());
                }
                due
            })
            .collect();
        // Batches 4, 7 and 10: where ⌊0.3 n⌋ passes 1, 2 and 3.
        let at: Vec<usize> = (1..=10).filter(|n| due[n - 1]).collect();
        assert_eq!(at, vec![4, 7, 10]);
        assert!(!r.computed(0, 1, 1.0, 0.001), "the CPU is never checked");
    }

    #[test]
    fn three_failures_in_a_row_or_one_loss_drop_an_engine() {
        // Every decision is an event: the run's recorder (here this thread's) counts them.
        let events = crate::events::Recorder::default();
        let _installed = events.install();
        let mut r = router(Policy::Accelerator, 0.0, Check::Exact);
        let oom = ComputeError::Device("out of memory".into());
        r.failed(1, &oom, 1);
        r.failed(1, &oom, 1);
        r.computed(1, 1, 1.0, 0.001);
        r.failed(1, &oom, 1);
        r.failed(1, &oom, 1);
        assert!(r.live(1), "a success in between resets the count");
        assert_eq!(r.route(1.0, 1), 1);
        r.failed(1, &oom, 1);
        assert!(!r.live(1));
        assert_eq!(r.route(1.0, 1), 0, "everything to the CPU");
        let count = |name, labels: &[(&str, &str)]| events.counter_with(name, labels);
        assert_eq!(
            count("hyflow_batch_failures_total", &[("engine", "dev:0")]),
            5
        );
        assert_eq!(
            count("hyflow_devices_lost_total", &[("engine", "dev:0")]),
            1
        );
        let routed = "hyflow_batches_routed_total";
        assert_eq!(
            count(routed, &[("engine", "dev:0"), ("route", "dedicated")]),
            1
        );
        assert_eq!(
            count(routed, &[("engine", "cpu"), ("route", "cpu-only")]),
            1
        );
        let mut r = router(Policy::Accelerator, 0.0, Check::Exact);
        r.failed(1, &ComputeError::Lost("illegal address".into()), 1);
        assert!(!r.live(1) && r.live(0));
        r.failed(0, &oom, 1);
        assert!(r.live(0), "the CPU is never dropped");
    }

    #[test]
    fn an_exact_check_rejects_any_difference_and_a_tolerant_one_only_reports_it() {
        let d = Difference {
            max_abs: 1e-12,
            max_rel: Some(1e-12),
            differs: true,
        };
        let mut exact = router(Policy::Accelerator, 1.0, Check::Exact);
        assert!(!exact.checked(1, 1, d));
        assert_eq!(exact.reports()[1].errors, 1);
        let mut within = router(Policy::Accelerator, 1.0, Check::Within(1e-9));
        let small = Difference {
            differs: false,
            ..d
        };
        assert!(within.checked(1, 1, small));
        let large = Difference {
            max_rel: Some(0.5),
            ..small
        };
        assert!(within.checked(1, 1, large), "reported, kept");
        let r = &within.reports()[1];
        assert_eq!((r.cross_checked, r.errors), (2, 0));
        assert!((r.max_rel_diff - 0.5).abs() < 1e-12);
    }

    #[test]
    fn probes_in_flight_count_so_an_unmeasured_accelerator_gets_three() {
        // An asynchronous accelerator: its batches are routed but not finished yet. The CPU is
        // measured already (shared costs).
        let book = CostBook::default();
        for _ in 0..3 {
            book.get("cpu").observe(1000.0, 0.01);
        }
        let mut r = router(Policy::Cheapest, 0.0, Check::Exact);
        r.share_costs(&book);
        let got: Vec<usize> = (0..6).map(|_| r.route(1000.0, 1)).collect();
        assert_eq!(
            got,
            [1, 1, 1, 0, 0, 0],
            "3 probes in flight, then the measured CPU"
        );
        r.spilled(1, 1);
        assert_eq!(
            r.route(1000.0, 1),
            1,
            "a spilled probe did not probe: one more"
        );
        for _ in 0..3 {
            r.computed(1, 1, 1000.0, 0.001);
        }
        assert_eq!(r.route(1000.0, 1), 1, "measured now, and faster");
    }

    #[test]
    fn cheapest_probes_each_engine_then_takes_the_faster() {
        let mut r = router(Policy::Cheapest, 0.0, Check::Exact);
        let mut got = Vec::new();
        for _ in 0..12 {
            let i = r.route(1000.0, 1);
            got.push(i);
            // The device is ten times faster.
            let secs = if i == 0 { 0.01 } else { 0.001 };
            r.computed(i, 1, 1000.0, secs);
        }
        assert_eq!(
            &got[..6],
            &[0, 0, 0, 1, 1, 1],
            "3 probes each, the CPU first"
        );
        assert!(got[6..].iter().all(|&i| i == 1), "{got:?}");
    }
}
