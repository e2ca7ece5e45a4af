//! Multivariate distance: how far a window's vector of watched features lies from the learned
//! normal (a sensor's, or an asset's), as one of two statistics of SPC:
//!
//! - `t2`: the Mahalanobis distance d² = dᵀ C⁻¹ d (Hotelling's T² when the mean and covariance
//!   are those of a reference period). d² of k normal features follows χ²(k); the
//!   Wilson-Hilferty transform turns it into a standard normal z, so one `z-alert` means the
//!   same for any k.
//! - `spe`: the squared prediction error of PCA (the Q statistic): the part of the standardised
//!   vector outside the principal components that explain 90 % of the normal variance. A
//!   broken relation between sensors leaves that subspace although each value stays in its
//!   range. SPE ≈ g·χ²(h) (Box 1954; Jackson and Mudholkar 1979) with g = θ₂/θ₁, h = θ₁²/θ₂,
//!   θᵢ the sum of the residual eigenvalues to the power i; z by Wilson-Hilferty again.
//!
//! The mean and covariance are an EWMA (`alpha`), or under a reference period the plain mean
//! and covariance of its windows, frozen at its end ([`Mahalanobis::freeze`]); a feature that
//! was constant in the reference period is then left out of both statistics.

/// Which statistic a multivariate detector reports.
pub use super::kinds::Statistic;

/// Share of the normal variance the principal components kept by `spe` explain.
pub const SPE_EXPLAINED: f64 = 0.9;

/// Mean and covariance of k features (EWMA, or plain), and what a frozen model keeps.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Mahalanobis {
    n: u32,
    mean: Vec<f64>,
    /// Row-major k × k.
    cov: Vec<f64>,
    /// Each feature's part in the last score's statistic (they sum to it): for `t2`
    /// dᵢ (C⁻¹d)ᵢ (negative when a feature moved the way its correlations expected), for
    /// `spe` the square of its residual.
    last: Vec<f64>,
    /// Set by [`Self::freeze`]: the model no longer learns.
    frozen: Option<Frozen>,
}

/// What a frozen model computes once.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Frozen {
    /// Features kept (not constant in the reference period).
    keep: Vec<usize>,
    /// The PCA of the kept features, made on the first `spe` score.
    pca: Option<Pca>,
}

/// PCA of a correlation matrix: what SPE needs.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Pca {
    /// Standard deviation of each feature used.
    sd: Vec<f64>,
    /// Residual eigenvectors (components beyond those kept), each of the features' length.
    residual: Vec<Vec<f64>>,
    g: f64,
    h: f64,
}

impl Mahalanobis {
    /// Scores the vector `x` (0 for the first, or when any value is not finite), then learns it
    /// with weight `alpha`.
    pub fn score_and_update(&mut self, x: &[f64], alpha: f64) -> f64 {
        let z = self.score(x, Statistic::T2);
        self.learn(x, alpha);
        z
    }

    /// The statistic of `x` as a normal z (0 until two vectors are learned, or when a value is
    /// not finite); its parts are then in [`Self::parts`].
    pub fn score(&mut self, x: &[f64], statistic: Statistic) -> f64 {
        let k = x.len();
        self.last.clear();
        if k == 0 || self.n < 2 || self.mean.len() != k || x.iter().any(|v| !v.is_finite()) {
            return 0.0;
        }
        let d: Vec<f64> = x.iter().zip(&self.mean).map(|(a, m)| a - m).collect();
        let keep: Vec<usize> = match &self.frozen {
            Some(f) => f.keep.clone(),
            None => (0..k).collect(),
        };
        if keep.is_empty() {
            return 0.0;
        }
        let dk: Vec<f64> = keep.iter().map(|&i| d[i]).collect();
        let m = keep.len();
        let (stat, parts_k, dof) = match statistic {
            Statistic::T2 => {
                let cov = sub_matrix(&self.cov, k, &keep);
                let (d2, w) = solve_quadratic(&cov, &dk, m);
                let parts = dk.iter().zip(&w).map(|(a, b)| a * b).collect();
                (d2, parts, m as f64)
            }
            Statistic::Spe => {
                // A frozen model keeps its PCA; a learning one makes it from the current
                // covariance (no copy of the kept one per window).
                let fresh;
                let pca: &Pca = match self.frozen.as_mut() {
                    Some(f) => f
                        .pca
                        .get_or_insert_with(|| Pca::of(&sub_matrix(&self.cov, k, &keep), m)),
                    None => {
                        fresh = Pca::of(&self.cov, k);
                        &fresh
                    }
                };
                let Some((spe, parts)) = pca.spe(&dk) else {
                    return 0.0;
                };
                (spe / pca.g, parts, pca.h)
            }
        };
        self.last = vec![0.0; k];
        for (&i, p) in keep.iter().zip(parts_k) {
            self.last[i] = p;
        }
        wilson_hilferty_f(stat, dof)
    }

    /// Learns `x` with weight `alpha` (the first vector sets the mean); nothing when frozen or
    /// when a value is not finite.
    pub fn learn(&mut self, x: &[f64], alpha: f64) {
        let k = x.len();
        if self.frozen.is_some() || k == 0 || x.iter().any(|v| !v.is_finite()) {
            return;
        }
        if self.n == 0 || self.mean.len() != k {
            self.mean = x.to_vec();
            self.cov = vec![0.0; k * k];
            self.n = 1;
            return;
        }
        let d: Vec<f64> = x.iter().zip(&self.mean).map(|(a, m)| a - m).collect();
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
    }

    /// The weight that makes [`Self::learn`] keep the plain mean and (population) covariance
    /// of the vectors learned so far: 1 / (n + 1).
    pub fn plain_weight(&self) -> f64 {
        1.0 / (f64::from(self.n) + 1.0)
    }

    /// Vectors learned.
    pub fn learned(&self) -> u32 {
        self.n
    }

    /// Stops learning (the end of a reference period). Features whose variance was 0 (to 1e-12
    /// of their mean's square) are left out of the statistics from now on; returns them.
    pub fn freeze(&mut self) -> Vec<usize> {
        let k = self.mean.len();
        let constant: Vec<usize> = (0..k)
            .filter(|&i| {
                let v = self.cov[i * k + i];
                !(v > 1e-24 * self.mean[i] * self.mean[i] && v > 0.0)
            })
            .collect();
        let keep = (0..k).filter(|i| !constant.contains(i)).collect();
        self.frozen = Some(Frozen { keep, pca: None });
        constant
    }

    /// Whether [`Self::freeze`] was called.
    pub fn is_frozen(&self) -> bool {
        self.frozen.is_some()
    }

    /// Each feature's part in the last score's statistic (empty when it was not scored): what
    /// makes it possible to say which sensors an asset's score comes from.
    pub fn parts(&self) -> &[f64] {
        &self.last
    }
}

/// The rows and columns `keep` of a row-major k × k matrix.
fn sub_matrix(m: &[f64], k: usize, keep: &[usize]) -> Vec<f64> {
    if keep.len() == k {
        return m.to_vec();
    }
    keep.iter()
        .flat_map(|&i| keep.iter().map(move |&j| m[i * k + j]))
        .collect()
}

impl Pca {
    /// The PCA of the correlation matrix of covariance `cov` (m × m; a variance is floored at
    /// 1e-6 of the mean variance, as in `t2`).
    fn of(cov: &[f64], m: usize) -> Self {
        let trace = (0..m).map(|i| cov[i * m + i]).sum::<f64>() / m.max(1) as f64;
        let floor = (1e-6 * trace).max(1e-12);
        let sd: Vec<f64> = (0..m).map(|i| cov[i * m + i].max(floor).sqrt()).collect();
        let mut r = vec![0.0; m * m];
        for i in 0..m {
            for j in 0..m {
                r[i * m + j] = cov[i * m + j] / (sd[i] * sd[j]);
            }
            r[i * m + i] = 1.0;
        }
        let (values, vectors) = jacobi_eigen(&r, m);
        // Components by eigenvalue, largest first; keep those explaining SPE_EXPLAINED, and
        // always leave at least one residual component.
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
        let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
        let mut kept = 0;
        let mut explained = 0.0;
        while kept + 1 < m && explained < SPE_EXPLAINED * total {
            explained += values[order[kept]].max(0.0);
            kept += 1;
        }
        let rest = &order[kept..];
        let floor = 1e-9 * total.max(1e-300);
        let theta1: f64 = rest.iter().map(|&j| values[j].max(floor)).sum();
        let theta2: f64 = rest.iter().map(|&j| values[j].max(floor).powi(2)).sum();
        let residual = rest
            .iter()
            .map(|&j| (0..m).map(|i| vectors[i * m + j]).collect())
            .collect();
        Self {
            sd,
            residual,
            g: theta2 / theta1,
            h: theta1 * theta1 / theta2,
        }
    }

    /// SPE of a deviation `d` from the mean, and each feature's squared residual (summing to
    /// it); None without a residual component.
    fn spe(&self, d: &[f64]) -> Option<(f64, Vec<f64>)> {
        if self.residual.is_empty() || !(self.g > 0.0 && self.h > 0.0) {
            return None;
        }
        let z: Vec<f64> = d.iter().zip(&self.sd).map(|(a, s)| a / s).collect();
        let mut r = vec![0.0; z.len()];
        for v in &self.residual {
            let t: f64 = v.iter().zip(&z).map(|(a, b)| a * b).sum();
            for (ri, vi) in r.iter_mut().zip(v) {
                *ri += t * vi;
            }
        }
        let parts: Vec<f64> = r.iter().map(|x| x * x).collect();
        Some((parts.iter().sum(), parts))
    }
}

/// Eigenvalues and eigenvectors (columns of a row-major m × m matrix) of a symmetric matrix,
/// by cyclic Jacobi rotations.
fn jacobi_eigen(a: &[f64], m: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; m * m];
    for i in 0..m {
        v[i * m + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..m)
            .flat_map(|i| (0..m).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * m + j] * a[i * m + j])
            .sum();
        if off < 1e-22 {
            break;
        }
        for p in 0..m {
            for q in p + 1..m {
                let apq = a[p * m + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * m + q] - a[p * m + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..m {
                    let akp = a[k * m + p];
                    let akq = a[k * m + q];
                    a[k * m + p] = c * akp - s * akq;
                    a[k * m + q] = s * akp + c * akq;
                }
                for k in 0..m {
                    let apk = a[p * m + k];
                    let aqk = a[q * m + k];
                    a[p * m + k] = c * apk - s * aqk;
                    a[q * m + k] = s * apk + c * aqk;
                }
                for k in 0..m {
                    let vkp = v[k * m + p];
                    let vkq = v[k * m + q];
                    v[k * m + p] = c * vkp - s * vkq;
                    v[k * m + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..m).map(|i| a[i * m + i]).collect(), v)
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
    wilson_hilferty_f(d2, k as f64)
}

/// [`wilson_hilferty`] for any positive degrees of freedom.
fn wilson_hilferty_f(d2: f64, k: f64) -> f64 {
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
        let mut rng = crate::tools::fixture::Rng::new(4);
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

    #[test]
    fn jacobi_finds_the_eigenpairs_of_a_symmetric_matrix() {
        // [[2, 1], [1, 2]]: eigenvalues 3 and 1, eigenvectors (1, 1)/√2 and (1, -1)/√2.
        let (values, vectors) = jacobi_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
        let mut v = values.clone();
        v.sort_by(f64::total_cmp);
        assert!(
            (v[0] - 1.0).abs() < 1e-12 && (v[1] - 3.0).abs() < 1e-12,
            "{values:?}"
        );
        // A v = λ v for each column.
        let a = [2.0, 1.0, 1.0, 2.0];
        for j in 0..2 {
            for i in 0..2 {
                let av = a[i * 2] * vectors[j] + a[i * 2 + 1] * vectors[2 + j];
                assert!((av - values[j] * vectors[i * 2 + j]).abs() < 1e-12);
            }
        }
        // A 4 × 4 with a known spectrum: diag(4, 3, 2, 1) rotated stays (4, 3, 2, 1).
        let r = [
            3.0, 0.5, 0.0, 0.5, 0.5, 3.0, 0.5, 0.0, 0.0, 0.5, 1.0, 0.0, 0.5, 0.0, 0.0, 1.0,
        ];
        let (values, _) = jacobi_eigen(&r, 4);
        let trace: f64 = values.iter().sum();
        assert!((trace - 8.0).abs() < 1e-9, "{values:?}");
    }

    fn correlated(rng: &mut crate::tools::fixture::Rng) -> [f64; 3] {
        let a = rng.normal();
        [a, 2.0 * a + 0.1 * rng.normal(), 10.0 + 0.5 * rng.normal()]
    }

    #[test]
    fn spe_scores_a_broken_relation_and_not_an_ordinary_vector() {
        let mut rng = crate::tools::fixture::Rng::new(9);
        let mut m = Mahalanobis::default();
        for _ in 0..400 {
            let x = correlated(&mut rng);
            let w = m.plain_weight();
            m.learn(&x, w);
        }
        assert!(m.freeze().is_empty());
        let mut normal = 0.0f64;
        for _ in 0..2000 {
            normal = normal.max(m.score(&correlated(&mut rng), Statistic::Spe));
        }
        // Feature 1 stops following feature 0; each stays within its normal range.
        let broken = m.score(&[1.0, -1.0, 10.0], Statistic::Spe);
        assert!(normal < 5.0, "normal max {normal}");
        assert!(broken > 10.0, "broken {broken}");
        let parts = m.parts();
        let total: f64 = parts.iter().sum();
        assert!(
            parts[0] + parts[1] > 0.9 * total,
            "the related pair: {parts:?}"
        );
        // T² scores a far move of the unrelated third feature.
        let t2 = m.score(&[0.0, 0.0, 14.0], Statistic::T2);
        assert!(t2 > 6.0, "{t2}");
    }

    #[test]
    fn plain_weights_give_the_sample_mean_and_covariance_and_freezing_stops_learning() {
        let xs = [[1.0, 2.0], [3.0, 1.0], [2.0, 6.0], [6.0, 3.0]];
        let mut m = Mahalanobis::default();
        for x in &xs {
            let w = m.plain_weight();
            m.learn(x, w);
        }
        assert!((m.mean[0] - 3.0).abs() < 1e-12 && (m.mean[1] - 3.0).abs() < 1e-12);
        // Population covariance: var0 = (4 + 0 + 1 + 9) / 4, cov01 = (2 + 0 - 3 + 0) / 4.
        assert!((m.cov[0] - 3.5).abs() < 1e-12, "{:?}", m.cov);
        assert!((m.cov[1] + 0.25).abs() < 1e-12, "{:?}", m.cov);
        m.freeze();
        m.learn(&[100.0, 100.0], 0.5);
        assert_eq!(m.learned(), 4);
        assert!((m.mean[0] - 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_feature_constant_in_the_reference_is_left_out() {
        let mut rng = crate::tools::fixture::Rng::new(3);
        let mut m = Mahalanobis::default();
        for _ in 0..200 {
            let a = rng.normal();
            let w = m.plain_weight();
            m.learn(&[a, a + 0.2 * rng.normal(), 50.0], w);
        }
        assert_eq!(m.freeze(), vec![2]);
        // The constant moves (a set point changed): neither statistic explodes on it.
        for stat in [Statistic::T2, Statistic::Spe] {
            let z = m.score(&[0.1, 0.1, 51.0], stat);
            assert!(z < 5.0, "{stat:?}: {z}");
            assert_eq!(m.parts()[2], 0.0);
            // The others still count.
            let z = m.score(&[2.0, -2.0, 50.0], stat);
            assert!(z > 8.0, "{stat:?}: {z}");
        }
    }
}
