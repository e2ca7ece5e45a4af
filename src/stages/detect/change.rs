//! Change detectors: level shifts (two-sided CUSUM), stuck sensors and dropouts.

/// Two-sided CUSUM of residuals standardised against a slow EWMA baseline (Page, 1954).
/// The score is the larger cumulative sum in standard deviations; once it passes `threshold`
/// the shift is taken as the new normal (baseline reset to the value, sums to 0).
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Cusum {
    n: u32,
    m: f64,
    mad: f64,
    hi: f64,
    lo: f64,
}

/// CUSUM settings.
#[derive(Clone, Copy, Debug)]
pub struct CusumParams {
    /// Baseline EWMA weight.
    pub alpha: f64,
    /// Spread EWMA weight.
    pub spread_alpha: f64,
    /// Allowance per window (standard deviations).
    pub drift: f64,
    /// Re-baseline level.
    pub threshold: f64,
}

impl Cusum {
    /// From its cell (see [`super::cell::Cell`]).
    pub(super) fn from_cell(c: &super::cell::Cell) -> Self {
        Self {
            n: c.n,
            m: c.a,
            mad: c.b,
            hi: c.c,
            lo: c.d,
        }
    }

    /// Into its cell.
    pub(super) fn to_cell(self) -> super::cell::Cell {
        super::cell::Cell {
            a: self.m,
            b: self.mad,
            c: self.hi,
            d: self.lo,
            n: self.n,
            run: 0,
        }
    }

    /// Scores `x`, then learns it.
    pub fn score_and_update(&mut self, x: f64, p: CusumParams) -> f64 {
        if !x.is_finite() {
            return 0.0;
        }
        if self.n == 0 {
            self.m = x;
            self.n = 1;
            return 0.0;
        }
        let r = x - self.m;
        let sd = self.mad * 1.253_314_137_315_500_3;
        let mut score = 0.0;
        if sd > 0.0 {
            let z = (r / sd).clamp(-1e6, 1e6);
            self.hi = (self.hi + z - p.drift).max(0.0);
            self.lo = (self.lo - z - p.drift).max(0.0);
            score = self.hi.max(self.lo);
        }
        if score > p.threshold {
            self.m = x;
            self.hi = 0.0;
            self.lo = 0.0;
        } else {
            self.m += p.alpha * r;
        }
        self.mad = if self.mad > 0.0 {
            (1.0 - p.spread_alpha) * self.mad + p.spread_alpha * r.abs().min(10.0 * sd)
        } else {
            r.abs()
        };
        self.n = self.n.saturating_add(1);
        score
    }
}

/// Counts consecutive windows in which a feature kept exactly its previous value.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Stuck {
    prev: Option<f64>,
    run: u32,
}

impl Stuck {
    /// From its cell (see [`super::cell::Cell`]).
    pub(super) fn from_cell(c: &super::cell::Cell) -> Self {
        Self {
            prev: (c.n != 0).then_some(c.a),
            run: c.run,
        }
    }

    /// Into its cell.
    pub(super) fn to_cell(self) -> super::cell::Cell {
        super::cell::Cell {
            a: self.prev.unwrap_or(0.0),
            n: u32::from(self.prev.is_some()),
            run: self.run,
            ..Default::default()
        }
    }

    /// Windows in a row (counting this one) with an unchanged value; 0 when it changed.
    pub fn update(&mut self, x: f64) -> u32 {
        if !x.is_finite() {
            return self.run;
        }
        match self.prev {
            Some(p) if p == x => self.run = self.run.saturating_add(1),
            _ => self.run = 0,
        }
        self.prev = Some(x);
        self.run
    }
}

/// Tracks the start of a sensor's previous window, for the windows missing in between.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Dropout {
    prev_start: Option<i64>,
}

impl Dropout {
    /// Missing windows before this one (given the slide) plus the fraction of filled values.
    pub fn update(&mut self, start: i64, slide_ms: i64, values: u32, filled: u32) -> f64 {
        let missing = match self.prev_start {
            Some(p) if start > p => ((start - p) / slide_ms.max(1) - 1).max(0) as f64,
            _ => 0.0,
        };
        self.prev_start = Some(start);
        let filled = if values > 0 {
            filled as f64 / values as f64
        } else {
            0.0
        };
        missing + filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: CusumParams = CusumParams {
        alpha: 0.01,
        spread_alpha: 0.01,
        drift: 0.5,
        threshold: 8.0,
    };

    #[test]
    fn cusum_accumulates_a_small_shift_that_no_single_window_shows() {
        let mut rng = crate::tools::fixture::Rng::new(9);
        let mut c = Cusum::default();
        for _ in 0..2000 {
            c.score_and_update(rng.normal(), P);
        }
        let quiet: f64 = (0..200)
            .map(|_| c.score_and_update(rng.normal(), P))
            .fold(0.0, f64::max);
        // A shift of 1.5 σ: each window alone is unremarkable, the sum is not.
        let shifted: Vec<f64> = (0..30)
            .map(|_| c.score_and_update(1.5 + rng.normal(), P))
            .collect();
        let peak = shifted.iter().cloned().fold(0.0, f64::max);
        assert!(quiet < 8.0, "quiet {quiet}");
        assert!(peak > 8.0, "peak {peak}");
        // After the re-baseline the new level is normal again.
        let after: f64 = (0..200)
            .map(|_| c.score_and_update(1.5 + rng.normal(), P))
            .skip(50)
            .fold(0.0, f64::max);
        assert!(after < 8.0, "after {after}");
    }

    #[test]
    fn stuck_counts_unchanged_windows_and_ignores_nan() {
        let mut s = Stuck::default();
        let runs: Vec<u32> = [1.0, 2.0, 2.0, f64::NAN, 2.0, 3.0]
            .iter()
            .map(|&x| s.update(x))
            .collect();
        assert_eq!(runs, vec![0, 0, 1, 1, 2, 0]);
    }

    #[test]
    fn dropout_counts_missing_windows_and_filled_values() {
        let mut d = Dropout::default();
        assert_eq!(d.update(0, 10, 5, 0), 0.0);
        assert_eq!(d.update(10, 10, 5, 0), 0.0);
        assert_eq!(d.update(50, 10, 4, 1), 3.0 + 0.25);
    }
}
