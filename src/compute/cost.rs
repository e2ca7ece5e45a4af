//! What the scheduler measures: the online cost model of an engine (fixed overhead + cost per
//! value) and the per-engine counts of the cost report.

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
}
