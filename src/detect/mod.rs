//! Scoring: per-sensor learned detectors over window features, rule evaluation, fusion into
//! one score, and the alert episode lifecycle. State is indexed by the worker-local sensor slot;
//! windows of one sensor must be scored in start order.

pub mod episode;
pub mod tail;

pub use episode::{EpisodeConfig, Episodes};

use crate::config::{CompiledRule, DetectorKind, FuseConfig};

/// A detector with its features resolved to row indices.
#[derive(Clone, Debug)]
pub struct DetectorSpec {
    /// Kind.
    pub kind: DetectorKind,
    /// Feature indices watched.
    pub features: Vec<usize>,
    /// EWMA weight.
    pub alpha: f64,
    /// z at which the calibrated score is 0.5.
    pub z_alert: f64,
}

/// EWMA of a feature's mean and variance (the streaming baseline of one feature).
#[derive(Clone, Copy, Debug, Default)]
pub struct Ewma {
    /// Windows seen.
    pub n: u32,
    /// Mean estimate.
    pub m: f64,
    /// Variance estimate.
    pub v: f64,
}

impl Ewma {
    /// Scores `x` against the baseline (0 for the first window), then learns it.
    #[inline]
    pub fn score_and_update(&mut self, x: f64, alpha: f64) -> f64 {
        if !x.is_finite() {
            return 0.0;
        }
        let z = if self.n == 0 {
            0.0
        } else {
            (x - self.m).abs() / (self.v + 1e-9).sqrt()
        };
        if self.n == 0 {
            self.m = x;
            self.v = 0.0;
        } else {
            let d = x - self.m;
            self.m += alpha * d;
            self.v = (1.0 - alpha) * (self.v + alpha * d * d);
        }
        self.n = self.n.saturating_add(1);
        z
    }
}

/// Maps a z-score to [0, 1): z² / (z² + z_alert²), which is 0.5 at z = z_alert.
#[inline]
pub fn calibrate(z: f64, z_alert: f64) -> f64 {
    let z2 = z * z;
    if z2.is_finite() {
        z2 / (z2 + z_alert * z_alert)
    } else {
        1.0
    }
}

/// The result of scoring one window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scored {
    /// Largest raw z over all detectors.
    pub score: f64,
    /// Calibrated learned score (0 until warm).
    pub ai: f64,
    /// Rule score.
    pub rule: f64,
    /// Fused score in [0, 1].
    pub fused: f64,
    /// fused > open.
    pub alert: bool,
    /// Indices of the rules that fired.
    pub fired: Vec<usize>,
    /// (feature index, z) of every watched feature, largest z first.
    pub contributions: Vec<(usize, f64)>,
}

/// Detector state for all sensors of a worker.
pub struct Scorer {
    detectors: Vec<crate::detect::DetectorSpec>,
    rules: Vec<CompiledRule>,
    warmup: u32,
    fuse: FuseConfig,
    /// Per slot: one EWMA per (detector, feature).
    state: Vec<Vec<Ewma>>,
    /// Per slot: tail calibration state (`calibration = "tail"`).
    tails: Vec<tail::Tail>,
    width: usize,
}

impl Scorer {
    /// A scorer for a pipeline's detectors, rules and fusion settings.
    pub fn new(
        detectors: Vec<DetectorSpec>,
        rules: Vec<CompiledRule>,
        warmup: u32,
        fuse: FuseConfig,
    ) -> Self {
        let width = detectors.iter().map(|d| d.features.len()).sum();
        Self {
            detectors,
            rules,
            warmup,
            fuse,
            state: Vec::new(),
            tails: Vec::new(),
            width,
        }
    }

    /// Scores the next window of sensor `slot`, whose feature row is `row`.
    pub fn score(&mut self, slot: u32, sensor: &str, row: &[f64]) -> Scored {
        let s = slot as usize;
        if self.state.len() <= s {
            self.state.resize(s + 1, Vec::new());
        }
        let st = &mut self.state[s];
        if st.len() != self.width {
            st.resize(self.width, Ewma::default());
        }
        let mut out = Scored::default();
        let mut k = 0;
        for d in &self.detectors {
            let mut dz: f64 = 0.0;
            let mut warm = true;
            for &f in &d.features {
                let e = &mut st[k];
                warm &= e.n >= self.warmup;
                let z = e.score_and_update(row[f], d.alpha);
                out.contributions.push((f, z));
                dz = dz.max(z);
                k += 1;
            }
            out.score = out.score.max(dz);
            if warm {
                out.ai = out.ai.max(calibrate(dz, d.z_alert));
            }
        }
        if self.fuse.calibration == crate::config::Calibration::Tail && !self.detectors.is_empty() {
            if self.tails.len() <= s {
                self.tails.resize(s + 1, tail::Tail::default());
            }
            let f = &self.fuse;
            let p = self.tails[s].calibrate(
                out.score,
                f.tail_short as usize,
                f.tail_long as usize,
                self.warmup as usize,
            );
            out.ai = p.unwrap_or(0.0);
        }
        out.contributions.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (i, r) in self.rules.iter().enumerate() {
            if r.applies_to(sensor) && r.condition.eval(row) {
                out.fired.push(i);
                out.rule = out.rule.max(r.severity.weight());
            }
        }
        out.fused =
            (self.fuse.ai_weight * out.ai + self.fuse.rules_weight * out.rule).clamp(0.0, 1.0);
        out.alert = out.fused > *self.fuse.open.get_ref();
        out
    }

    /// The compiled rules (for names and severities).
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewma_matches_the_workload_definition() {
        // WORKLOAD.md: score = |x-m|/sqrt(v+1e-9); m += 0.1 d; v = 0.9 (v + 0.1 d²)
        let mut e = Ewma::default();
        assert_eq!(e.score_and_update(10.0, 0.1), 0.0);
        let z = e.score_and_update(12.0, 0.1);
        assert!((z - 2.0 / 1e-9f64.sqrt()).abs() < 1e-3);
        assert!((e.m - 10.2).abs() < 1e-12);
        assert!((e.v - 0.9 * 0.4).abs() < 1e-12);
        assert!((calibrate(4.0, 4.0) - 0.5).abs() < 1e-12);
    }
}
