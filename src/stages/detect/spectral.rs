//! Spectral residual saliency (Ren et al., "Time-Series Anomaly Detection Service at
//! Microsoft", KDD 2019), streaming: at each window the last `history` values, extended by
//! `EXTEND` extrapolated points so the newest value is not at the edge, go through a DFT; the
//! log amplitude minus its local average (the spectral residual) goes back with the original
//! phase; the magnitude of the result is the saliency map. The score of the newest value is
//! |S - S̄| / S̄, S̄ the mean saliency of the last `LOCAL` values up to it: large where the
//! series does something its recent pattern does not predict.

use std::collections::VecDeque;

/// Extrapolated points appended (m in the paper).
pub const EXTEND: usize = 5;
/// Width of the average filter over the log spectrum (q in the paper).
pub const SMOOTH: usize = 3;
/// Amplitudes at or below this count as zero.
const EPS: f64 = 1e-8;
/// Saliency values the newest one is compared with (z in the paper).
pub const LOCAL: usize = 21;

/// The shared DFT tables and scratch space for one history length.
#[derive(Clone, Debug)]
pub struct SpectralResidual {
    history: usize,
    cos: Vec<f64>,
    sin: Vec<f64>,
    x: Vec<f64>,
    re: Vec<f64>,
    im: Vec<f64>,
    r: Vec<f64>,
}

impl SpectralResidual {
    /// Tables for `history` values (at least LOCAL + 2).
    pub fn new(history: usize) -> Self {
        let history = history.max(LOCAL + 2);
        let n = history + EXTEND;
        let w = 2.0 * std::f64::consts::PI / n as f64;
        Self {
            history,
            cos: (0..n).map(|k| (w * k as f64).cos()).collect(),
            sin: (0..n).map(|k| (w * k as f64).sin()).collect(),
            x: vec![0.0; n],
            re: vec![0.0; n],
            im: vec![0.0; n],
            r: vec![0.0; n],
        }
    }

    /// Values of history kept per sensor.
    pub fn history(&self) -> usize {
        self.history
    }

    /// Appends `v` to a sensor's `buf` and scores it (0 until the buffer is full).
    pub fn score_and_update(&mut self, buf: &mut VecDeque<f64>, v: f64) -> f64 {
        if !v.is_finite() {
            return 0.0;
        }
        buf.push_back(v);
        if buf.len() > self.history {
            buf.pop_front();
        }
        if buf.len() < self.history {
            return 0.0;
        }
        self.saliency_score(buf)
    }

    fn saliency_score(&mut self, buf: &VecDeque<f64>) -> f64 {
        let h = self.history;
        let n = h + EXTEND;
        for (i, &v) in buf.iter().enumerate() {
            self.x[i] = v;
        }
        // Extension as in the authors' implementation (microsoft/anomalydetector): from the
        // EXTEND + 1 values before the newest, the next value is predicted as the second of
        // them plus the sum of the slopes from each to the last of them; EXTEND copies of it
        // follow the newest value.
        let w = &self.x[h - EXTEND - 2..h - 1];
        let last = w[EXTEND];
        let slopes = (0..EXTEND)
            .map(|i| (last - w[i]) / (EXTEND - i) as f64)
            .sum::<f64>();
        let next = w[1] + slopes;
        for i in h..n {
            self.x[i] = next;
        }
        // Scale (not centre: the level is part of the spectrum the residual is taken of); the
        // ratio does not depend on the scale, the DFT's rounding does.
        let scale = self.x.iter().map(|v| v.abs()).fold(0.0, f64::max);
        if scale == 0.0 || !scale.is_finite() {
            return 0.0;
        }
        for v in &mut self.x {
            *v /= scale;
        }
        // DFT; log amplitude; residual against its trailing average; back with the phase.
        for k in 0..n {
            let (mut re, mut im) = (0.0, 0.0);
            for (j, &v) in self.x.iter().enumerate() {
                let t = (j * k) % n;
                re += v * self.cos[t];
                im -= v * self.sin[t];
            }
            self.re[k] = re;
            self.im[k] = im;
            let amp = re.hypot(im);
            // As the reference: a vanishing component has log amplitude 0 and stays 0.
            self.r[k] = if amp > EPS { amp.ln() } else { 0.0 };
        }
        let logs: Vec<f64> = self.r.clone();
        for k in 0..n {
            let lo = k.saturating_sub(SMOOTH - 1);
            let avg = logs[lo..=k].iter().sum::<f64>() / (k - lo + 1) as f64;
            let amp = self.re[k].hypot(self.im[k]);
            // exp(R + iP) = exp(R) · X / |X|.
            let f = if amp > EPS {
                (logs[k] - avg).exp() / amp
            } else {
                0.0
            };
            self.re[k] *= f;
            self.im[k] *= f;
        }
        // Saliency at the newest real value and the LOCAL before it.
        let saliency = |j: usize, s: &Self| {
            let (mut re, mut im) = (0.0, 0.0);
            for k in 0..n {
                let t = (j * k) % n;
                re += s.re[k] * s.cos[t] - s.im[k] * s.sin[t];
                im += s.re[k] * s.sin[t] + s.im[k] * s.cos[t];
            }
            re.hypot(im) / n as f64
        };
        // Trailing mean of LOCAL saliencies ending at the newest (as the reference does).
        let s = saliency(h - 1, self);
        let local = (s + (h - LOCAL..h - 1).map(|j| saliency(j, self)).sum::<f64>()) / LOCAL as f64;
        if local > 1e-12 {
            (s - local).abs() / local
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spike_in_a_periodic_series_stands_out_and_the_pattern_does_not() {
        let mut sr = SpectralResidual::new(64);
        let mut buf = VecDeque::new();
        let mut rng = crate::tools::fixture::Rng::new(2);
        let wave = |i: usize| (i as f64 * 2.0 * std::f64::consts::PI / 12.0).sin();
        let mut normal = 0.0f64;
        for i in 0..400 {
            let s = sr.score_and_update(&mut buf, wave(i) + 0.05 * rng.normal());
            if i > 100 {
                normal = normal.max(s);
            }
        }
        let spike = sr.score_and_update(&mut buf, wave(400) + 3.0);
        assert!(
            spike > 3.0 * normal.max(0.1),
            "spike {spike}, normal max {normal}"
        );
    }

    #[test]
    fn equals_the_reference_implementation() {
        // Values from the authors' algorithm in numpy (microsoft/anomalydetector's
        // extend_series, spectral_residual_transform and score formula with z = 21):
        // x_i = sin(2πi/12) + 0.1 · ((7i) mod 5), i < 64, and the same with x_63 + 3.
        let x = |i: usize| {
            (i as f64 * 2.0 * std::f64::consts::PI / 12.0).sin() + 0.1 * ((i * 7) % 5) as f64
        };
        for (spike, want) in [
            (0.0, 0.415_630_683_115_570_66),
            (3.0, 6.161_299_631_514_552),
        ] {
            let mut sr = SpectralResidual::new(64);
            let mut buf = VecDeque::new();
            let mut got = 0.0;
            for i in 0..64 {
                got = sr.score_and_update(&mut buf, x(i) + if i == 63 { spike } else { 0.0 });
            }
            assert!(
                (got - want).abs() < 1e-9 * want,
                "spike {spike}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn constant_and_short_series_score_zero() {
        let mut sr = SpectralResidual::new(32);
        let mut buf = VecDeque::new();
        for _ in 0..100 {
            assert!(sr.score_and_update(&mut buf, 7.0).abs() < 1e-9);
        }
        assert_eq!(sr.score_and_update(&mut buf, f64::NAN), 0.0);
    }
}
