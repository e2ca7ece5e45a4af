//! Per-feature baselines: the EWMA mean/variance of the benchmark workload (`ewma-z`), a robust
//! EWMA level with a mean-absolute-deviation spread (`level-z`), and the same learned per
//! season bucket (`seasonal-z`).

use super::kinds::Season;

/// E|X - μ| = σ·sqrt(2/π) for a normal X: multiply a mean absolute deviation by this for σ.
const MAD_TO_SD: f64 = 1.253_314_137_315_500_3;

/// EWMA of a feature's mean and variance (the streaming baseline of one feature).
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
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

/// A robust level: EWMA of the value and EWMA of the absolute residual. One outlier moves the
/// spread by `spread_alpha` times its size, not by its square as a variance would.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Level {
    /// Windows seen.
    pub n: u32,
    /// Level.
    pub level: f64,
    /// Mean absolute residual (0 until the second window).
    pub mad: f64,
}

impl Level {
    /// Scores `x` as |x - level| / (1.2533 · mad) (0 while the spread is unknown), then learns.
    #[inline]
    pub fn score_and_update(&mut self, x: f64, alpha: f64, spread_alpha: f64) -> f64 {
        if !x.is_finite() {
            return 0.0;
        }
        if self.n == 0 {
            self.level = x;
            self.n = 1;
            return 0.0;
        }
        let r = x - self.level;
        // The floor keeps a constant series from scoring its first change as infinite.
        let sd = (self.mad * MAD_TO_SD).max(1e-9 * self.level.abs().max(1.0));
        let z = if self.mad > 0.0 { r.abs() / sd } else { 0.0 };
        self.level += alpha * r;
        self.mad = if self.mad > 0.0 {
            (1.0 - spread_alpha) * self.mad + spread_alpha * r.abs()
        } else {
            r.abs()
        };
        self.n = self.n.saturating_add(1);
        z
    }
}

/// The season bucket of a window starting at `local_ms` (local time, ms since the epoch).
pub fn bucket(season: Season, local_ms: i64) -> usize {
    let hour = local_ms.div_euclid(3_600_000);
    let hod = hour.rem_euclid(24) as usize;
    // 1970-01-01 was a Thursday: day 0 is Thursday, so Monday = (day + 3) mod 7 = 0.
    let dow = (hour.div_euclid(24) + 3).rem_euclid(7) as usize;
    match season {
        Season::HourOfDay => hod,
        Season::HourOfDayWeekend => hod + if dow >= 5 { 24 } else { 0 },
        Season::HourOfWeek => dow * 24 + hod,
    }
}

/// Number of buckets of a season.
pub fn buckets(season: Season) -> usize {
    match season {
        Season::HourOfDay => 24,
        Season::HourOfDayWeekend => 48,
        Season::HourOfWeek => 168,
    }
}

/// A [`Level`] per season bucket.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Seasonal {
    levels: Vec<Level>,
}

impl Seasonal {
    /// Its buckets' levels (empty until its first window).
    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// Replaces its buckets' levels (a checkpoint's, or a device's).
    pub fn set_levels(&mut self, levels: Vec<Level>) {
        self.levels = levels;
    }

    /// Scores `x` against its bucket's level (0 until the bucket has seen `warmup` windows),
    /// then teaches that bucket.
    pub fn score_and_update(
        &mut self,
        x: f64,
        bucket: usize,
        n_buckets: usize,
        alpha: f64,
        spread_alpha: f64,
        warmup: u32,
    ) -> f64 {
        if self.levels.len() != n_buckets {
            self.levels = vec![Level::default(); n_buckets];
        }
        Self::score_bucket(
            &mut self.levels[bucket % n_buckets],
            x,
            alpha,
            spread_alpha,
            warmup,
        )
    }

    /// One bucket's step: its level scores `x` once the bucket has seen `warmup` windows.
    pub fn score_bucket(l: &mut Level, x: f64, alpha: f64, spread_alpha: f64, warmup: u32) -> f64 {
        let warm = l.n >= warmup;
        let z = l.score_and_update(x, alpha, spread_alpha);
        if warm { z } else { 0.0 }
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
    }

    #[test]
    fn level_z_is_about_one_sigma_on_normal_noise_and_large_on_a_jump() {
        let mut rng = crate::tools::fixture::Rng::new(3);
        let mut l = Level::default();
        let mut zs = Vec::new();
        for _ in 0..5000 {
            zs.push(l.score_and_update(10.0 + 2.0 * rng.normal(), 0.05, 0.01));
        }
        let tail = &zs[1000..];
        let rms = (tail.iter().map(|z| z * z).sum::<f64>() / tail.len() as f64).sqrt();
        // z of normal noise against a slightly noisy level: rms a little above 1.
        assert!((0.9..1.3).contains(&rms), "rms z {rms}");
        let jump = l.score_and_update(10.0 + 20.0, 0.05, 0.01);
        assert!(jump > 8.0, "jump z {jump}");
    }

    #[test]
    fn buckets_follow_local_hour_and_weekday() {
        // 2024-03-04 was a Monday.
        let monday_0830 = 1_709_541_000_000;
        assert_eq!(bucket(Season::HourOfDay, monday_0830), 8);
        assert_eq!(bucket(Season::HourOfWeek, monday_0830), 8);
        assert_eq!(bucket(Season::HourOfDayWeekend, monday_0830), 8);
        let sunday_0830 = monday_0830 - 86_400_000;
        assert_eq!(bucket(Season::HourOfWeek, sunday_0830), 6 * 24 + 8);
        assert_eq!(bucket(Season::HourOfDayWeekend, sunday_0830), 24 + 8);
        assert_eq!(bucket(Season::HourOfDay, -1), 23);
    }

    #[test]
    fn seasonal_learns_each_bucket_apart() {
        let mut s = Seasonal::default();
        // Bucket 0 is around 0, bucket 1 around 100; each is normal against its own level.
        let mut rng = crate::tools::fixture::Rng::new(5);
        let mut last = (0.0, 0.0);
        for _ in 0..200 {
            let a = s.score_and_update(rng.normal(), 0, 24, 0.1, 0.05, 3);
            let b = s.score_and_update(100.0 + rng.normal(), 1, 24, 0.1, 0.05, 3);
            last = (a, b);
        }
        assert!(last.0 < 5.0 && last.1 < 5.0, "{last:?}");
        // 100 in bucket 0 is far out.
        assert!(s.score_and_update(100.0, 0, 24, 0.1, 0.05, 3) > 20.0);
        // A new bucket does not score until warm.
        assert_eq!(s.score_and_update(1e6, 5, 24, 0.1, 0.05, 3), 0.0);
    }
}
