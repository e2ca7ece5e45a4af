//! Multivariate distance: how far a window's vector of watched features lies from the sensor's
//! learned normal, as the Mahalanobis distance under an EWMA mean and covariance. d² of k
//! normal features follows χ²(k); the Wilson-Hilferty transform turns it into a standard
//! normal z, so one `z-alert` means the same for any k.

/// EWMA mean and covariance of k features.
#[derive(Clone, Debug, Default)]
pub struct Mahalanobis {
    n: u32,
    mean: Vec<f64>,
    /// Row-major k × k.
    cov: Vec<f64>,
    /// Each feature's part in the last score's d²: dᵢ (C⁻¹d)ᵢ (they sum to d²; a part can be
    /// negative when a feature moved the way its correlations expected).
    last: Vec<f64>,
}

impl Mahalanobis {
    /// Scores the vector `x` (0 for the first, or when any value is not finite), then learns it.
    pub fn score_and_update(&mut self, x: &[f64], alpha: f64) -> f64 {
        let k = x.len();
        self.last.clear();
        if k == 0 || x.iter().any(|v| !v.is_finite()) {
            return 0.0;
        }
        if self.n == 0 || self.mean.len() != k {
            self.mean = x.to_vec();
            self.cov = vec![0.0; k * k];
            self.n = 1;
            return 0.0;
        }
        let d: Vec<f64> = x.iter().zip(&self.mean).map(|(a, m)| a - m).collect();
        let z = if self.n >= 2 {
            let (d2, w) = solve_quadratic(&self.cov, &d, k);
            self.last = d.iter().zip(&w).map(|(a, b)| a * b).collect();
            wilson_hilferty(d2, k)
        } else {
            0.0
        };
        for (m, di) in self.mean.iter_mut().zip(&d) {
            *m += alpha * di;
        }
        for i in 0..k {
            for j in 0..k {
                let c = &mut self.cov[i * k + j];
                *c = (1.0 - alpha) * (*c + alpha * d[i] * d[j]);
            }
        }
        self.n = self.n.saturating_add(1);
        z
    }

    /// Each feature's part in the last score's squared distance (empty when it was not
    /// scored): what makes it possible to say which sensors an asset's score comes from.
    pub fn parts(&self) -> &[f64] {
        &self.last
    }
}

/// dᵀ (C + λI)⁻¹ d by Cholesky, with a ridge λ of 1e-6 of the mean variance (and at least
/// 1e-12) so constant or collinear features do not make C singular; and (C + λI)⁻¹ d.
fn solve_quadratic(cov: &[f64], d: &[f64], k: usize) -> (f64, Vec<f64>) {
    let trace = (0..k).map(|i| cov[i * k + i]).sum::<f64>() / k as f64;
    let ridge = (1e-6 * trace).max(1e-12);
    let mut l = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..=i {
            let mut s = cov[i * k + j] + if i == j { ridge } else { 0.0 };
            for p in 0..j {
                s -= l[i * k + p] * l[j * k + p];
            }
            if i == j {
                l[i * k + i] = s.max(ridge).sqrt();
            } else {
                l[i * k + j] = s / l[j * k + j];
            }
        }
    }
    // Forward substitution L y = d; d² = |y|².
    let mut y = vec![0.0; k];
    for i in 0..k {
        let mut s = d[i];
        for p in 0..i {
            s -= l[i * k + p] * y[p];
        }
        y[i] = s / l[i * k + i];
    }
    // Back substitution Lᵀ w = y: w = C⁻¹ d.
    let mut w = vec![0.0; k];
    for i in (0..k).rev() {
        let mut s = y[i];
        for p in i + 1..k {
            s -= l[p * k + i] * w[p];
        }
        w[i] = s / l[i * k + i];
    }
    (y.iter().map(|v| v * v).sum(), w)
}

/// Wilson-Hilferty: for d² ~ χ²(k), ((d²/k)^(1/3) - (1 - 2/(9k))) / sqrt(2/(9k)) is about
/// standard normal; negative values (closer than typical) become 0.
pub fn wilson_hilferty(d2: f64, k: usize) -> f64 {
    let k = k as f64;
    let v = 2.0 / (9.0 * k);
    (((d2 / k).cbrt() - (1.0 - v)) / v.sqrt()).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quadratic_form_matches_a_hand_inverse() {
        // C = [[4, 2], [2, 3]], C⁻¹ = [[3, -2], [-2, 4]] / 8; d = (1, 1): dᵀC⁻¹d = 3/8.
        let (d2, w) = solve_quadratic(&[4.0, 2.0, 2.0, 3.0], &[1.0, 1.0], 2);
        assert!((d2 - 0.375).abs() < 1e-5, "{d2}");
        // C⁻¹ d = (1/8, 2/8).
        assert!(
            (w[0] - 0.125).abs() < 1e-5 && (w[1] - 0.25).abs() < 1e-5,
            "{w:?}"
        );
    }

    #[test]
    fn a_broken_correlation_scores_high_although_each_feature_is_normal() {
        // Two features that move together; then one moves without the other, by an amount
        // that is ordinary for each of them alone.
        let mut rng = crate::fixture::Rng::new(4);
        let mut m = Mahalanobis::default();
        let mut normal = 0.0f64;
        for i in 0..3000 {
            let a = rng.normal();
            let z = m.score_and_update(&[a, a + 0.1 * rng.normal()], 0.01);
            if i > 500 {
                normal = normal.max(z);
            }
        }
        let broken = m.score_and_update(&[1.0, -1.0], 0.01);
        assert!(normal < 6.0, "normal max {normal}");
        assert!(broken > 10.0, "broken {broken}");
        // Both features share the blame for a broken relation; the parts sum to d².
        let parts = m.parts();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|&p| p > 0.0), "{parts:?}");
    }

    #[test]
    fn wilson_hilferty_is_near_normal_quantiles() {
        // χ²(1) 0.99 quantile = 6.635 ↔ z 2.326; χ²(10) 0.99 quantile = 23.209.
        assert!((wilson_hilferty(6.635, 1) - 2.326).abs() < 0.1);
        assert!((wilson_hilferty(23.209, 10) - 2.326).abs() < 0.02);
        assert_eq!(wilson_hilferty(0.0, 3), 0.0);
    }
}
