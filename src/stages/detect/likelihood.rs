//! Anomaly likelihood (`[fuse] calibration = "likelihood"`), after Numenta's HTM detector
//! (Ahmad, Lavin, Purdy, Agha 2017): the mean of a detector's last `likelihood-window` raw
//! scores is judged against the normal distribution of such means over the sensor's last
//! `tail-history` windows. A lasting change in how surprising the data is stands out even when
//! no single window is extreme, and one noisy window is averaged away. The learned score is
//! -log10 of the normal tail probability / 10, the same scale as the tail calibration (0.5 at
//! p = 1e-5), which is HTM's log-likelihood.

use std::collections::VecDeque;

/// Means a history needs before it judges.
pub const MIN_HISTORY: usize = 100;

/// Least standard deviation of the means (in raw-score units), so that a history of equal
/// means does not make every later change infinitely unlikely.
const SD_FLOOR: f64 = 0.05;

/// The likelihood state of one (sensor, detector).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Likelihood {
    recent: VecDeque<f64>,
    history: VecDeque<f64>,
    sum: f64,
    sum2: f64,
}

impl Likelihood {
    /// Adds `raw` to the short window and scores its mean against the history (None before
    /// [`MIN_HISTORY`] means or when not `settled`); when `learn`, the mean joins the history
    /// (the last `history` kept).
    pub fn score(
        &mut self,
        raw: f64,
        window: usize,
        history: usize,
        settled: bool,
        learn: bool,
    ) -> Option<f64> {
        // An infinite raw score is as surprising as can be; NaN says nothing.
        let raw = if raw.is_nan() { 0.0 } else { raw.min(1e6) };
        self.recent.push_back(raw);
        if self.recent.len() > window.max(1) {
            self.recent.pop_front();
        }
        let mean = self.recent.iter().sum::<f64>() / self.recent.len() as f64;
        let out = (settled && self.history.len() >= MIN_HISTORY).then(|| {
            let n = self.history.len() as f64;
            let mu = self.sum / n;
            let sd = (self.sum2 / n - mu * mu).max(0.0).sqrt().max(SD_FLOOR);
            (-log10_normal_tail((mean - mu) / sd) / 10.0).clamp(0.0, 1.0)
        });
        if learn && settled {
            self.history.push_back(mean);
            self.sum += mean;
            self.sum2 += mean * mean;
            if self.history.len() > history.max(MIN_HISTORY) {
                let old = self.history.pop_front().unwrap_or(0.0);
                self.sum -= old;
                self.sum2 -= old * old;
            }
            // Running sums drift; recompute them now and then.
            if self.history.len().is_multiple_of(1024) {
                self.sum = self.history.iter().sum();
                self.sum2 = self.history.iter().map(|v| v * v).sum();
            }
        }
        out
    }
}

/// log10 of P(Z > z) for a standard normal Z, accurate far into the tail (no underflow):
/// erfc by the Chebyshev fit of Numerical Recipes (`erfcc`, relative error < 1.2e-7), taken
/// in logs.
pub fn log10_normal_tail(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let ax = x.abs();
    let t = 1.0 / (1.0 + 0.5 * ax);
    let poly = -ax * ax - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    // ln erfc(|x|) = ln t + poly.
    let ln_erfc_abs = t.ln() + poly;
    let ln_q = if x >= 0.0 {
        ln_erfc_abs - std::f64::consts::LN_2
    } else {
        (1.0 - 0.5 * ln_erfc_abs.exp()).ln()
    };
    ln_q / std::f64::consts::LN_10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_tail_is_right_near_and_far() {
        // P(Z > 0) = 0.5, P(Z > 1.96) = 0.025, P(Z > 5) = 2.87e-7, P(Z > 30) ~ 4.9e-198.
        for (z, p) in [
            (0.0, 0.5),
            (1.96, 0.024_997_9),
            (5.0, 2.866_516e-7),
            (-1.0, 0.841_344_7),
        ] {
            let got = 10f64.powf(log10_normal_tail(z));
            assert!((got - p).abs() / p < 1e-5, "z {z}: {got} vs {p}");
        }
        let far = log10_normal_tail(30.0);
        assert!((far - (-197.31)).abs() < 0.05, "{far}");
    }

    #[test]
    fn a_lasting_rise_scores_higher_than_one_spike() {
        let mut rng = crate::tools::fixture::Rng::new(4);
        let (mut spike, mut lasting) = (Likelihood::default(), Likelihood::default());
        let (mut s_max, mut l_max) = (0.0f64, 0.0f64);
        for i in 0..600 {
            let noise = rng.normal().abs();
            let s = spike.score(if i == 500 { 8.0 } else { noise }, 10, 2000, true, true);
            let l = lasting.score(
                if i >= 500 { noise + 3.0 } else { noise },
                10,
                2000,
                true,
                true,
            );
            if i >= 500 {
                s_max = s_max.max(s.unwrap_or(0.0));
                l_max = l_max.max(l.unwrap_or(0.0));
            } else if i > MIN_HISTORY + 10 {
                assert!(s.unwrap() < 0.5 && l.unwrap() < 0.5, "window {i}");
            }
        }
        assert!(l_max > 0.9, "{l_max}");
        assert!(s_max < l_max, "{s_max} vs {l_max}");
        assert_eq!(
            Likelihood::default().score(5.0, 10, 100, false, false),
            None
        );
    }
}
