//! What the scheduler measures: the online cost model of an engine (fixed overhead + cost per
//! value), shared by the workers of a run ([`CostBook`]), and the per-engine counts of the cost
//! report.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

/// A cost model the workers of a run share: every worker's batches teach it, so an engine is
/// measured a few times per run, not per worker (a worker with few batches still gets them
/// routed by what the others learned).
#[derive(Clone, Debug, Default)]
pub struct SharedCost(Arc<Mutex<CostModel>>);

impl SharedCost {
    fn model(&self) -> std::sync::MutexGuard<'_, CostModel> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// See [`CostModel::observe`].
    pub fn observe(&self, values: f64, secs: f64) {
        self.model().observe(values, secs);
    }
    /// See [`CostModel::predict`].
    pub fn predict(&self, values: f64) -> f64 {
        self.model().predict(values)
    }
    /// Batches observed, by every worker.
    pub fn samples(&self) -> u64 {
        self.model().samples
    }
}

/// The cost models of a run, one per engine name (`cpu`, `cuda:0`, `cuda:0 detectors`).
#[derive(Debug, Default)]
pub struct CostBook(Mutex<HashMap<String, SharedCost>>);

impl CostBook {
    /// The model of engine `name`, made on first use.
    pub fn get(&self, name: &str) -> SharedCost {
        let mut book = self.0.lock().unwrap_or_else(|p| p.into_inner());
        book.entry(name.to_string()).or_default().clone()
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
    /// Batches routed to it that went to the CPU instead because its queue was full.
    pub spilled: u64,
    /// Batches it failed (recomputed on the CPU).
    pub errors: u64,
    /// Its batches recomputed on the CPU for the cross-check.
    pub cross_checked: u64,
    /// Largest absolute difference found by the cross-check.
    pub max_abs_diff: f64,
    /// Largest relative difference found by the cross-check.
    pub max_rel_diff: f64,
}

#[cfg(test)]
mod tests {
    use super::CostModel;

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
    fn a_book_hands_every_worker_the_same_model_per_engine() {
        let book = super::CostBook::default();
        let (a, b) = (book.get("cuda:0"), book.get("cuda:0"));
        a.observe(1000.0, 0.5);
        b.observe(2000.0, 1.0);
        assert_eq!(book.get("cuda:0").samples(), 2);
        assert_eq!(book.get("cpu").samples(), 0);
    }
}
