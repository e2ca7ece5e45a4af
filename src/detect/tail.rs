//! Tail-probability calibration of detector scores (`[fuse] calibration = "tail"`): per sensor,
//! the mean of the last few raw scores is compared with the distribution of the sensor's own
//! score history; q = P(Z > (short − μ) / σ) is the normal tail probability of a mean that high,
//! and the learned score is ln(q) / ln(1e-10), clamped to [0, 1] (1 at q ≤ 1e-10). Scores of
//! different sensors, whatever their scale or noise, become comparable, so one threshold
//! serves them all (the idea of Numenta's "anomaly likelihood"). The log keeps far tails apart
//! where Φ itself rounds to 1.

use std::collections::VecDeque;

/// The calibration state of one sensor.
#[derive(Clone, Debug, Default)]
pub struct Tail {
    long: VecDeque<f64>,
    sum: f64,
    sumsq: f64,
    short: VecDeque<f64>,
    short_sum: f64,
}

impl Tail {
    /// Calibrates `score` (then learns it): Φ of the short-term mean's standard score against the
    /// history, or None while the history holds fewer than `min_history` scores.
    pub fn calibrate(
        &mut self,
        score: f64,
        short: usize,
        long: usize,
        min_history: usize,
    ) -> Option<f64> {
        let score = if score.is_finite() { score } else { 0.0 };
        self.short.push_back(score);
        self.short_sum += score;
        if self.short.len() > short.max(1) {
            self.short_sum -= self.short.pop_front().unwrap_or(0.0);
        }
        let n = self.long.len() as f64;
        let out = (self.long.len() >= min_history.max(2)).then(|| {
            let mean = self.sum / n;
            let var = (self.sumsq / n - mean * mean).max(0.0);
            let sd = var.sqrt().max(1e-3 * mean.abs()).max(1e-9);
            let recent = self.short_sum / self.short.len() as f64;
            let q = 0.5 * erfc((recent - mean) / sd / std::f64::consts::SQRT_2);
            (q.max(f64::MIN_POSITIVE).ln() / 1e-10f64.ln()).clamp(0.0, 1.0)
        });
        self.long.push_back(score);
        self.sum += score;
        self.sumsq += score * score;
        if self.long.len() > long.max(2) {
            let old = self.long.pop_front().unwrap_or(0.0);
            self.sum -= old;
            self.sumsq -= old * old;
        }
        out
    }
}

/// Φ(x), the standard normal distribution function (|error| < 1.5e-7).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The complementary error function, with a relative error below 1.2e-7 everywhere, far
/// tails included (the Chebyshev fit of Numerical Recipes' `erfcc`).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * (-z * z + p).exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
        assert!((normal_cdf(-1.96) - 0.025).abs() < 1e-4);
    }

    #[test]
    fn a_burst_of_high_scores_is_a_tail_event() {
        let mut t = Tail::default();
        let mut last = None;
        for i in 0..500 {
            last = t.calibrate(1.0 + 0.1 * ((i * 7 % 11) as f64 - 5.0) / 5.0, 5, 400, 50);
        }
        assert!(last.is_some_and(|p| p < 0.2), "{last:?}");
        let mut p = 0.0;
        for _ in 0..5 {
            p = t.calibrate(4.0, 5, 400, 50).unwrap_or(0.0);
        }
        assert!(p > 0.99, "{p}");
        assert_eq!(
            Tail::default().calibrate(3.0, 5, 400, 50),
            None,
            "no history yet"
        );
    }
}
