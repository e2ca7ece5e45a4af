//! Tail-probability calibration (`[fuse] calibration = "tail"`): a detector's raw score is
//! judged against that sensor's own recent raw scores of the same detector. Below the 95th
//! percentile of the history p is the empirical tail (share of history at least as high);
//! above it the excesses over the percentile are modelled as exponential (the peaks-over-
//! threshold idea of SPOT, Siffer et al., KDD 2017, with the simplest tail), so scores beyond
//! anything seen still get distinct, finite probabilities. The learned score is
//! min(1, -log10(p) / 10): 0.3 at p = 1e-3, 0.5 at 1e-5. Any sensor, scale or detector gives
//! comparable scores, so one threshold serves them all.

use std::collections::VecDeque;

/// The quantile above which the tail is fitted.
pub const TAIL_QUANTILE: f64 = 0.95;

/// Settled scores a history needs before it judges: five excesses over the 95th percentile
/// for the exponential tail.
pub const MIN_HISTORY: usize = 100;

/// The calibration state of one (sensor, detector).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Tail {
    order: VecDeque<f64>,
    sorted: Vec<f64>,
}

impl Tail {
    /// Calibrates `score` against the history (None while it holds fewer than `min_history`
    /// scores, or when not `settled`), then, when `learn`, adds it, keeping the last
    /// `history`. Only settled scores (the detector is past its warm-up) should be learned,
    /// and only a finite one is: the start-up scores of a baseline that is still settling
    /// (often in the hundreds) would otherwise stay in the history and make every later
    /// anomaly look ordinary. A detector that does not learn a window (its learn policy)
    /// does not teach it to the calibration either.
    pub fn calibrate(
        &mut self,
        score: f64,
        history: usize,
        min_history: usize,
        settled: bool,
        learn: bool,
    ) -> Option<f64> {
        let out = (settled && self.sorted.len() >= min_history.max(20))
            .then(|| self.p_score(if score.is_nan() { 0.0 } else { score }));
        if !learn || !score.is_finite() {
            return out;
        }
        self.order.push_back(score);
        let at = self.sorted.partition_point(|&v| v < score);
        self.sorted.insert(at, score);
        if self.order.len() > history.max(20) {
            let old = self.order.pop_front().unwrap_or(0.0);
            let at = self.sorted.partition_point(|&v| v < old);
            self.sorted.remove(at);
        }
        out
    }

    /// -log10(p) / 10 of `s` against the current history.
    fn p_score(&self, s: f64) -> f64 {
        let a = &self.sorted;
        let n = a.len();
        let u = a[((TAIL_QUANTILE * n as f64) as usize).min(n - 1)];
        let p = if s <= u {
            let at_least = n - a.partition_point(|&v| v < s);
            (at_least + 1) as f64 / (n + 1) as f64
        } else {
            let over = a.partition_point(|&v| v <= u);
            let excess = &a[over..];
            let beta = if excess.is_empty() {
                0.0
            } else {
                excess.iter().map(|v| v - u).sum::<f64>() / excess.len() as f64
            };
            (1.0 - TAIL_QUANTILE) * (-(s - u) / beta.max(1e-12)).exp()
        };
        (-p.max(f64::MIN_POSITIVE).log10() / 10.0).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_comparable_across_scales() {
        // The same shape of history at two scales gives the same calibrated scores.
        let mut rng = crate::tools::fixture::Rng::new(1);
        let (mut a, mut b) = (Tail::default(), Tail::default());
        for _ in 0..1000 {
            let x = rng.normal().abs();
            let pa = a.calibrate(x, 500, 100, true, true);
            let pb = b.calibrate(1000.0 * x, 500, 100, true, true);
            assert_eq!(pa.is_some(), pb.is_some());
            if let (Some(pa), Some(pb)) = (pa, pb) {
                assert!((pa - pb).abs() < 1e-9);
            }
        }
        // Ordinary scores are low; one far beyond the history is high but below 1.
        let typical = a.calibrate(0.7, 500, 100, true, true).unwrap();
        let extreme = a.calibrate(8.0, 500, 100, true, true).unwrap();
        assert!(typical < 0.1, "{typical}");
        assert!(extreme > 0.4, "{extreme}");
        let further = a.calibrate(12.0, 500, 100, true, true).unwrap();
        assert!(further > extreme, "{further} vs {extreme}");
    }

    #[test]
    fn warms_up_and_forgets() {
        let mut t = Tail::default();
        for i in 0..30 {
            assert_eq!(t.calibrate(i as f64, 40, 30, true, true), None);
        }
        assert!(t.calibrate(1.0, 40, 30, true, true).is_some());
        for _ in 0..100 {
            t.calibrate(100.0, 40, 30, true, true);
        }
        assert_eq!(t.sorted.len(), 40);
        assert!(t.sorted.iter().all(|&v| v == 100.0));
        // A constant history: equal is ordinary, anything above is extreme.
        assert!(t.calibrate(100.0, 40, 30, true, true).unwrap() < 0.01);
        assert_eq!(t.calibrate(100.5, 40, 30, true, true), Some(1.0));
    }

    #[test]
    fn start_up_and_non_finite_scores_are_never_learned() {
        // A baseline settling: raw scores in the thousands, then ordinary ones, then an
        // anomaly of 8. Learned from the start, the thousands make 8 look ordinary.
        let mut rng = crate::tools::fixture::Rng::new(3);
        let (mut settled_only, mut everything) = (Tail::default(), Tail::default());
        for i in 0..400 {
            let x = if i < 50 {
                1000.0 + i as f64
            } else {
                rng.normal().abs()
            };
            let settled = i >= 50;
            settled_only.calibrate(x, 2000, MIN_HISTORY, settled, settled);
            everything.calibrate(x, 2000, MIN_HISTORY, true, true);
            if i % 7 == 0 {
                // Non-finite scores are judged (as extreme) but never enter the history.
                settled_only.calibrate(f64::INFINITY, 2000, MIN_HISTORY, settled, settled);
            }
        }
        assert_eq!(settled_only.sorted.len(), 350);
        assert!(
            settled_only
                .sorted
                .iter()
                .all(|v| v.is_finite() && *v < 100.0)
        );
        let good = settled_only
            .calibrate(8.0, 2000, MIN_HISTORY, true, true)
            .unwrap();
        let bad = everything
            .calibrate(8.0, 2000, MIN_HISTORY, true, true)
            .unwrap();
        assert!(good > 0.4, "{good}");
        assert!(bad < 0.15, "{bad}");
        assert_eq!(Tail::default().calibrate(5.0, 10, 0, false, false), None);
    }
}
