//! The CPU engine: the Rust reference implementation of every feature. It is the definition
//! the CUDA kernels are checked against, so it favours clear, stable numerics (two-pass
//! moments) while staying allocation-free per window.

use super::{ComputeBackend, ComputeError, FeatureBatch, WindowBatch};
use crate::stages::features::{Feature, FeatureSet};

/// The CPU engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuBackend;

impl ComputeBackend for CpuBackend {
    fn name(&self) -> &str {
        "cpu"
    }
    fn features(
        &mut self,
        features: &FeatureSet,
        window_ms: i64,
        batch: &WindowBatch,
        out: &mut FeatureBatch,
    ) -> Result<(), ComputeError> {
        out.width = features.len();
        out.data.clear();
        out.data.resize(batch.len() * features.len(), 0.0);
        for i in 0..batch.len() {
            let (times, values) = batch.window(i);
            let row = &mut out.data[i * features.len()..(i + 1) * features.len()];
            window_features(features, window_ms, batch.start[i], times, values, row);
        }
        Ok(())
    }
}

/// Moments of one window.
#[derive(Clone, Copy, Debug, Default)]
struct Moments {
    n: f64,
    mean: f64,
    m2: f64,
    m3: f64,
    m4: f64,
    min: f64,
    max: f64,
    sumsq: f64,
}

fn moments(values: &[f64], higher: bool) -> Moments {
    let n = values.len() as f64;
    if values.is_empty() {
        return Moments {
            min: f64::NAN,
            max: f64::NAN,
            mean: f64::NAN,
            ..Default::default()
        };
    }
    let (mut sum, mut sumsq, mut min, mut max) = (0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY);
    for &v in values {
        sum += v;
        sumsq += v * v;
        min = min.min(v);
        max = max.max(v);
    }
    // A constant window's mean is its value exactly, so its central moments are exactly 0
    // (sum / n can be off by an ulp, which made std 1e-16 and skewness 1 on a stuck sensor).
    let mean = if min == max { min } else { sum / n };
    let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
    if higher {
        for &v in values {
            let d = v - mean;
            let d2 = d * d;
            m2 += d2;
            m3 += d2 * d;
            m4 += d2 * d2;
        }
    } else {
        for &v in values {
            let d = v - mean;
            m2 += d * d;
        }
    }
    Moments {
        n,
        mean,
        m2: m2 / n,
        m3: m3 / n,
        m4: m4 / n,
        min,
        max,
        sumsq: sumsq / n,
    }
}

/// Computes one window's feature row.
pub fn window_features(
    features: &FeatureSet,
    window_ms: i64,
    start: i64,
    times: &[i64],
    values: &[f64],
    row: &mut [f64],
) {
    let higher = features
        .kinds
        .iter()
        .any(|k| matches!(k, Feature::Skewness | Feature::Kurtosis));
    let m = moments(values, higher);
    for (slot, kind) in row.iter_mut().zip(&features.kinds) {
        *slot = match *kind {
            Feature::Count => m.n,
            Feature::Mean => m.mean,
            Feature::Std => m.m2.sqrt(),
            Feature::Min => m.min,
            Feature::Max => m.max,
            Feature::Rms => m.sumsq.sqrt(),
            Feature::Skewness => {
                if m.m2 > 0.0 {
                    m.m3 / m.m2.powf(1.5)
                } else {
                    0.0
                }
            }
            Feature::Kurtosis => {
                if m.m2 > 0.0 {
                    m.m4 / (m.m2 * m.m2) - 3.0
                } else {
                    0.0
                }
            }
            Feature::Slope => slope(start, times, values),
            Feature::PeakToPeak => m.max - m.min,
            Feature::MeanCrossingRate => crossing_rate(values, m.mean),
            Feature::Band { low_hz, high_hz } => {
                band_power(values, m.mean, window_ms, low_hz, high_hz)
            }
        };
    }
}

/// Least-squares slope of value against time in seconds (0 when all times are equal).
fn slope(start: i64, times: &[i64], values: &[f64]) -> f64 {
    let n = values.len() as f64;
    if values.len() < 2 {
        return 0.0;
    }
    let ts = |t: i64| (t - start) as f64 / 1000.0;
    let tm = times.iter().map(|&t| ts(t)).sum::<f64>() / n;
    let vm = values.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (&t, &v) in times.iter().zip(values) {
        let dt = ts(t) - tm;
        sxy += dt * (v - vm);
        sxx += dt * dt;
    }
    if sxx > 0.0 { sxy / sxx } else { 0.0 }
}

/// Pairs of neighbours whose deviations from the mean have opposite signs, per pair (a zero
/// deviation crosses nothing). Each pair is independent, so the GPU kernel counts the same.
fn crossing_rate(values: &[f64], mean: f64) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let crossings = values
        .windows(2)
        .filter(|p| {
            let (a, b) = (p[0] - mean, p[1] - mean);
            a != 0.0 && b != 0.0 && (a > 0.0) != (b > 0.0)
        })
        .count();
    crossings as f64 / (values.len() - 1) as f64
}

/// Bins computed together by [`band_power`].
const LANES: usize = 4;

/// Power of the mean-removed values between `low_hz` (inclusive) and `high_hz` (exclusive).
/// The values are taken as evenly spaced over the window, so DFT bin k is k / window seconds
/// Hz; a sinusoid of amplitude A inside the band contributes A²/2.
pub fn band_power(values: &[f64], mean: f64, window_ms: i64, low_hz: f64, high_hz: f64) -> f64 {
    let n = values.len();
    if n < 2 {
        return 0.0;
    }
    let secs = window_ms as f64 / 1000.0;
    let k_lo = ((low_hz * secs).ceil() as usize).max(1);
    let k_hi = ((high_hz * secs).ceil() as usize).min(n.div_ceil(2)); // exclusive; below Nyquist
    // Goertzel's recurrence per bin: |X_k|² without a sine per sample. Each bin's recurrence
    // is a chain of dependent operations, so bins go four at a time through one loop over the
    // values (four independent chains, and SIMD lanes): the same operations in the same order
    // per bin as one bin at a time, so the same results, about 3× sooner (docs/performance.md).
    let nn = n as f64 * n as f64;
    let coeff = |k: usize| 2.0 * (2.0 * std::f64::consts::PI * k as f64 / n as f64).cos();
    let mag2 = |c: f64, s1: f64, s2: f64| (s1 * s1 + s2 * s2 - c * s1 * s2).max(0.0);
    let mut power = 0.0;
    let mut k = k_lo;
    while k + LANES <= k_hi {
        let c: [f64; LANES] = std::array::from_fn(|j| coeff(k + j));
        let (mut s1, mut s2) = ([0.0f64; LANES], [0.0f64; LANES]);
        for &v in values {
            let x = v - mean;
            for j in 0..LANES {
                let s = x + c[j] * s1[j] - s2[j];
                s2[j] = s1[j];
                s1[j] = s;
            }
        }
        for j in 0..LANES {
            power += 2.0 * mag2(c[j], s1[j], s2[j]) / nn;
        }
        k += LANES;
    }
    for k in k..k_hi {
        let c = coeff(k);
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &v in values {
            let s = (v - mean) + c * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        power += 2.0 * mag2(c, s1, s2) / nn;
    }
    power
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::features;

    fn all() -> FeatureSet {
        let mut f = FeatureSet::default();
        for (n, k) in features::SCALAR_FEATURES {
            f.push(n, *k);
        }
        f.push(
            "band",
            Feature::Band {
                low_hz: 4.0,
                high_hz: 6.0,
            },
        );
        f
    }

    #[test]
    fn known_values() {
        let fs = all();
        let times: Vec<i64> = (0..100).map(|i| i * 10).collect(); // 100 Hz over 1 s
        let values: Vec<f64> = times
            .iter()
            .map(|&t| {
                3.0 + 2.0 * (2.0 * std::f64::consts::PI * 5.0 * t as f64 / 1000.0 + 0.3).sin()
            })
            .collect();
        let mut row = vec![0.0; fs.len()];
        window_features(&fs, 1000, 0, &times, &values, &mut row);
        let get = |n: &str| row[fs.index_of(n).unwrap()];
        assert_eq!(get("count"), 100.0);
        assert!((get("mean") - 3.0).abs() < 1e-9);
        assert!((get("std") - 2.0_f64.sqrt()).abs() < 1e-9);
        assert!(
            (get("band") - 2.0).abs() < 1e-9,
            "A^2/2 = 2, got {}",
            get("band")
        );
        assert!(get("skewness").abs() < 1e-9);
        assert!((get("kurtosis") + 1.5).abs() < 1e-9); // a sine's excess kurtosis
        assert!((get("mean_crossing_rate") - 10.0 / 99.0).abs() < 0.02);
        let lin: Vec<f64> = times.iter().map(|&t| 2.0 * t as f64 / 1000.0).collect();
        window_features(&fs, 1000, 0, &times, &lin, &mut row);
        assert!((row[fs.index_of("slope").unwrap()] - 2.0).abs() < 1e-9);
    }

    #[test]
    fn bins_four_at_a_time_equal_one_at_a_time_exactly() {
        // One bin at a time, as the recurrence is written in textbooks.
        fn one_by_one(values: &[f64], mean: f64, k_lo: usize, k_hi: usize) -> f64 {
            let n = values.len();
            let mut power = 0.0;
            for k in k_lo..k_hi {
                let c = 2.0 * (2.0 * std::f64::consts::PI * k as f64 / n as f64).cos();
                let (mut s1, mut s2) = (0.0f64, 0.0f64);
                for &v in values {
                    let s = (v - mean) + c * s1 - s2;
                    s2 = s1;
                    s1 = s;
                }
                power += 2.0 * (s1 * s1 + s2 * s2 - c * s1 * s2).max(0.0) / (n as f64 * n as f64);
            }
            power
        }
        let mut rng = crate::tools::fixture::Rng::new(11);
        for n in [2usize, 3, 7, 64, 199, 200, 1000] {
            let values: Vec<f64> = (0..n).map(|_| rng.normal() * 3.0 + 1.0).collect();
            let mean = values.iter().sum::<f64>() / n as f64;
            // 10 s windows: bin k is k / 10 Hz; bands of 0 to 13 bins, cut at Nyquist.
            for (lo, hi) in [
                (0.0, 0.05),
                (0.1, 0.4),
                (1.5, 4.5),
                (0.0, 1000.0),
                (6.5, 8.0),
            ] {
                let k_lo = ((lo * 10.0f64).ceil() as usize).max(1);
                let k_hi = ((hi * 10.0f64).ceil() as usize).min(n.div_ceil(2));
                let want = one_by_one(&values, mean, k_lo, k_hi.max(k_lo));
                let got = band_power(&values, mean, 10_000, lo, hi);
                assert_eq!(got.to_bits(), want.to_bits(), "n {n}, band {lo}-{hi} Hz");
            }
        }
    }

    #[test]
    fn edge_cases() {
        let fs = all();
        let mut row = vec![0.0; fs.len()];
        window_features(&fs, 1000, 0, &[5], &[7.0], &mut row);
        assert_eq!(row[fs.index_of("std").unwrap()], 0.0);
        assert_eq!(row[fs.index_of("slope").unwrap()], 0.0);
        window_features(&fs, 1000, 0, &[1, 2, 3], &[4.0, 4.0, 4.0], &mut row);
        assert_eq!(row[fs.index_of("kurtosis").unwrap()], 0.0);
        // A stuck sensor at a value whose sum / n rounds differently: exactly constant.
        let stuck = [5.3; 10];
        window_features(
            &fs,
            1000,
            0,
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            &stuck,
            &mut row,
        );
        assert_eq!(row[fs.index_of("mean").unwrap()], 5.3);
        assert_eq!(row[fs.index_of("std").unwrap()], 0.0);
        assert_eq!(row[fs.index_of("skewness").unwrap()], 0.0);
        assert_eq!(row[fs.index_of("kurtosis").unwrap()], 0.0);
        assert_eq!(row[fs.index_of("band").unwrap()], 0.0);
    }
}
