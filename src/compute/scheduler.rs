//! The hybrid scheduler (`compute.device = "auto"` with a GPU, or `"cuda:N"`): routes each batch
//! of windows to the engine expected to finish it soonest, by an online cost model per engine
//! (fixed overhead + cost per value, a least-squares fit that forgets old batches); recomputes
//! a batch on the CPU when an engine fails (no batch is ever lost); recomputes a fraction of the
//! other engines' batches on the CPU and reports the largest difference (the cross-check); and
//! keeps the per-engine counts of the cost report.

use super::{ComputeBackend, ComputeError, FeatureBatch, WindowBatch};
use crate::features::FeatureSet;
use std::time::Instant;

/// An online linear cost model: seconds ≈ fixed + per_value · values.
#[derive(Clone, Debug, Default)]
pub struct CostModel {
    // Exponentially weighted sums for the least-squares fit.
    w: f64,
    x: f64,
    y: f64,
    xx: f64,
    xy: f64,
    /// Batches observed.
    pub samples: u64,
}

impl CostModel {
    const DECAY: f64 = 0.95;

    /// Learns that a batch of `values` took `secs`.
    pub fn observe(&mut self, values: f64, secs: f64) {
        let d = Self::DECAY;
        self.w = d * self.w + 1.0;
        self.x = d * self.x + values;
        self.y = d * self.y + secs;
        self.xx = d * self.xx + values * values;
        self.xy = d * self.xy + values * secs;
        self.samples += 1;
    }

    /// (fixed seconds, seconds per value), both at least 0.
    pub fn fit(&self) -> (f64, f64) {
        if self.w == 0.0 {
            return (0.0, 0.0);
        }
        let var = self.xx * self.w - self.x * self.x;
        if var.abs() <= 1e-12 * self.xx * self.w {
            // One batch size only: all of the cost per value.
            return (0.0, (self.y / self.x.max(1.0)).max(0.0));
        }
        let per = ((self.xy * self.w - self.x * self.y) / var).max(0.0);
        let fixed = ((self.y - per * self.x) / self.w).max(0.0);
        (fixed, per)
    }

    /// Predicted seconds for a batch of `values`.
    pub fn predict(&self, values: f64) -> f64 {
        let (fixed, per) = self.fit();
        fixed + per * values
    }
}

/// What one engine did during a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineReport {
    /// Engine name (`cpu`, `cuda:0`).
    pub name: String,
    /// Batches it computed.
    pub batches: u64,
    /// Windows it computed.
    pub windows: u64,
    /// Values it read.
    pub values: u64,
    /// Seconds it was busy.
    pub busy_secs: f64,
    /// Batches it failed (recomputed on the CPU).
    pub errors: u64,
    /// Its batches recomputed on the CPU for the cross-check.
    pub cross_checked: u64,
    /// Largest absolute difference found by the cross-check.
    pub max_abs_diff: f64,
    /// Largest relative difference found by the cross-check.
    pub max_rel_diff: f64,
}

struct Engine {
    backend: Box<dyn ComputeBackend>,
    cost: CostModel,
    report: EngineReport,
    failures_in_a_row: u32,
    disabled: bool,
}

impl Engine {
    /// Learns the cost of a finished batch and counts it.
    fn record(&mut self, batch: &WindowBatch, secs: f64) {
        self.cost.observe(batch.values.len() as f64, secs);
        self.report.batches += 1;
        self.report.windows += batch.len() as u64;
        self.report.values += batch.values.len() as u64;
        self.report.busy_secs += secs;
    }
}

/// Routing policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// By measured cost (`auto`).
    Cheapest,
    /// Always the accelerator unless it fails (`cuda:N`).
    Accelerator,
}

/// The scheduler; engine 0 is always the CPU reference.
pub struct Hybrid {
    engines: Vec<Engine>,
    policy: Policy,
    cross_check: f64,
    tolerance: f64,
    batches: u64,
    scratch: FeatureBatch,
}

impl Hybrid {
    /// A scheduler over `cpu` and `others`; `cross_check` is the fraction of non-CPU batches
    /// recomputed on the CPU, `tolerance` the relative difference that gets logged.
    pub fn new(
        cpu: Box<dyn ComputeBackend>,
        others: Vec<Box<dyn ComputeBackend>>,
        policy: Policy,
        cross_check: f64,
        tolerance: f64,
    ) -> Self {
        let engines = std::iter::once(cpu)
            .chain(others)
            .map(|backend| Engine {
                report: EngineReport {
                    name: backend.name().to_string(),
                    ..Default::default()
                },
                backend,
                cost: CostModel::default(),
                failures_in_a_row: 0,
                disabled: false,
            })
            .collect();
        Self {
            engines,
            policy,
            cross_check: cross_check.clamp(0.0, 1.0),
            tolerance,
            batches: 0,
            scratch: FeatureBatch::default(),
        }
    }

    /// The engine for the next batch of `values` values.
    fn choose(&self, values: f64) -> usize {
        let live: Vec<usize> = (0..self.engines.len())
            .filter(|&i| !self.engines[i].disabled)
            .collect();
        if self.policy == Policy::Accelerator {
            return live.iter().copied().find(|&i| i > 0).unwrap_or(0);
        }
        // Measure every engine a few times first, then now and then again (every 64th batch)
        // so that estimates follow changing conditions.
        if let Some(&i) = live.iter().find(|&&i| self.engines[i].cost.samples < 3) {
            return i;
        }
        let best = live
            .iter()
            .copied()
            .min_by(|&a, &b| {
                self.engines[a]
                    .cost
                    .predict(values)
                    .total_cmp(&self.engines[b].cost.predict(values))
            })
            .unwrap_or(0);
        if self.batches % 64 == 63 && live.len() > 1 {
            return live[(self.batches as usize / 64) % live.len()];
        }
        best
    }

    /// Per-engine counts so far.
    pub fn engine_reports(&self) -> Vec<EngineReport> {
        self.engines.iter().map(|e| e.report.clone()).collect()
    }
}

impl ComputeBackend for Hybrid {
    fn name(&self) -> &str {
        "auto"
    }

    fn report(&self) -> Vec<EngineReport> {
        self.engine_reports()
    }

    fn features(
        &mut self,
        features: &FeatureSet,
        window_ms: i64,
        batch: &WindowBatch,
        out: &mut FeatureBatch,
    ) -> Result<(), ComputeError> {
        let values = batch.values.len() as f64;
        let i = self.choose(values);
        self.batches += 1;
        let started = Instant::now();
        let result = self.engines[i]
            .backend
            .features(features, window_ms, batch, out);
        let secs = started.elapsed().as_secs_f64();
        let e = &mut self.engines[i];
        match result {
            Ok(()) => {
                e.record(batch, secs);
                e.failures_in_a_row = 0;
            }
            Err(err) if i > 0 => {
                e.report.errors += 1;
                e.failures_in_a_row += 1;
                tracing::warn!(
                    "{} failed a batch of {} windows, recomputing it on the CPU: {err}",
                    e.report.name,
                    batch.len()
                );
                if e.failures_in_a_row >= 3 {
                    e.disabled = true;
                    tracing::error!(
                        "{} failed 3 batches in a row: routing everything to the CPU from now on",
                        e.report.name
                    );
                }
                return self.cpu(features, window_ms, batch, out);
            }
            Err(err) => return Err(err),
        }
        // Cross-check: every k-th batch of the other engines, k = 1 / fraction.
        if i > 0 && self.cross_check > 0.0 {
            let every = (1.0 / self.cross_check).round().max(1.0) as u64;
            if self.engines[i].report.batches.is_multiple_of(every) {
                let mut reference = std::mem::take(&mut self.scratch);
                self.cpu(features, window_ms, batch, &mut reference)?;
                let (mut abs, mut rel) = (0.0f64, 0.0f64);
                for (a, b) in reference.data.iter().zip(&out.data) {
                    if a == b || (a.is_nan() && b.is_nan()) {
                        continue;
                    }
                    let d = (a - b).abs();
                    abs = abs.max(d);
                    rel = rel.max(d / a.abs().max(b.abs()).max(f64::MIN_POSITIVE));
                }
                let e = &mut self.engines[i].report;
                e.cross_checked += 1;
                e.max_abs_diff = e.max_abs_diff.max(abs);
                e.max_rel_diff = e.max_rel_diff.max(rel);
                if rel > self.tolerance {
                    tracing::warn!(
                        "cross-check: {} differs from the CPU by {rel:.3e} (relative), {abs:.3e} (absolute) on a batch of {} windows",
                        e.name,
                        batch.len()
                    );
                }
                self.scratch = reference;
            }
        }
        Ok(())
    }
}

impl Hybrid {
    fn cpu(
        &mut self,
        features: &FeatureSet,
        window_ms: i64,
        batch: &WindowBatch,
        out: &mut FeatureBatch,
    ) -> Result<(), ComputeError> {
        let started = Instant::now();
        self.engines[0]
            .backend
            .features(features, window_ms, batch, out)?;
        let secs = started.elapsed().as_secs_f64();
        self.engines[0].record(batch, secs);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::cpu::CpuBackend;
    use crate::features::{Feature, FeatureSet};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fake accelerator: the CPU's results, optionally perturbed, optionally failing.
    struct Fake {
        calls: Arc<AtomicU32>,
        fail: bool,
        nudge: f64,
    }

    impl ComputeBackend for Fake {
        fn name(&self) -> &str {
            "fake:0"
        }
        fn features(
            &mut self,
            f: &FeatureSet,
            ms: i64,
            b: &WindowBatch,
            out: &mut FeatureBatch,
        ) -> Result<(), ComputeError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail {
                return Err(ComputeError::Device("out of memory".into()));
            }
            CpuBackend.features(f, ms, b, out)?;
            out.data.iter_mut().for_each(|v| *v *= 1.0 + self.nudge);
            Ok(())
        }
    }

    fn setup() -> (FeatureSet, WindowBatch) {
        let mut f = FeatureSet::default();
        f.push("mean", Feature::Mean);
        f.push("max", Feature::Max);
        let mut b = WindowBatch::default();
        for w in 0..10 {
            b.push_window(w, Arc::from("s"), 0, 1000);
            for i in 0..50 {
                b.times.push(i * 20);
                b.values.push(f64::from(w) + i as f64);
            }
            b.finish_window(0);
        }
        (f, b)
    }

    #[test]
    fn cost_model_fits_overhead_and_slope() {
        let mut c = CostModel::default();
        for n in [100.0, 1000.0, 10_000.0, 100.0, 5000.0] {
            c.observe(n, 0.002 + 1e-6 * n);
        }
        let (fixed, per) = c.fit();
        assert!(
            (fixed - 0.002).abs() < 1e-9 && (per - 1e-6).abs() < 1e-12,
            "{fixed} {per}"
        );
        assert!((c.predict(20_000.0) - 0.022).abs() < 1e-9);
    }

    #[test]
    fn failed_batches_are_recomputed_on_the_cpu_and_the_engine_is_dropped() {
        let (f, b) = setup();
        let calls = Arc::new(AtomicU32::new(0));
        let fake = Fake {
            calls: calls.clone(),
            fail: true,
            nudge: 0.0,
        };
        let mut h = Hybrid::new(
            Box::new(CpuBackend),
            vec![Box::new(fake)],
            Policy::Accelerator,
            0.0,
            1e-9,
        );
        let mut want = FeatureBatch::default();
        CpuBackend.features(&f, 1000, &b, &mut want).expect("cpu");
        for _ in 0..5 {
            let mut got = FeatureBatch::default();
            h.features(&f, 1000, &b, &mut got)
                .expect("no batch is lost");
            assert_eq!(got, want);
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "dropped after 3 failures in a row"
        );
        let r = h.engine_reports();
        assert_eq!((r[0].batches, r[1].errors, r[1].batches), (5, 3, 0));
    }

    #[test]
    fn cross_check_reports_the_difference() {
        let (f, b) = setup();
        let fake = Fake {
            calls: Arc::new(AtomicU32::new(0)),
            fail: false,
            nudge: 1e-7,
        };
        let mut h = Hybrid::new(
            Box::new(CpuBackend),
            vec![Box::new(fake)],
            Policy::Accelerator,
            0.5,
            1e-9,
        );
        let mut out = FeatureBatch::default();
        for _ in 0..4 {
            h.features(&f, 1000, &b, &mut out).expect("ok");
        }
        let r = &h.engine_reports()[1];
        assert_eq!((r.batches, r.cross_checked), (4, 2));
        assert!((r.max_rel_diff - 1e-7).abs() < 1e-9, "{}", r.max_rel_diff);
    }

    #[test]
    fn cheapest_policy_measures_then_prefers_the_faster_engine() {
        let (f, b) = setup();
        let calls = Arc::new(AtomicU32::new(0));
        let fake = Fake {
            calls: calls.clone(),
            fail: false,
            nudge: 0.0,
        };
        let mut h = Hybrid::new(
            Box::new(CpuBackend),
            vec![Box::new(fake)],
            Policy::Cheapest,
            0.0,
            1e-9,
        );
        // Pretend the fake engine is 100× cheaper than measured for the CPU.
        for _ in 0..3 {
            h.engines[0].cost.observe(500.0, 1.0);
            h.engines[1].cost.observe(500.0, 0.01);
        }
        let mut out = FeatureBatch::default();
        for _ in 0..10 {
            h.features(&f, 1000, &b, &mut out).expect("ok");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 10);
    }
}
