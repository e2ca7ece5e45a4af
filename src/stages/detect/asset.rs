//! Detection across the sensors of one asset (`asset-mahalanobis`): the windows of one start
//! of every sensor of an asset (a machine, a traffic detector station) make one vector, the
//! sensors' watched features side by side in sensor-id order, scored by its Mahalanobis
//! distance from the asset's learned normal. A traffic incident (speed down, occupancy up,
//! flow down at once) breaks the usual relation between the three even when each alone looks
//! like rush hour. The score stage calls this once per (asset, window start) with all member
//! windows, which requires windows to be exchanged by asset (see `asset_of`).

use super::kinds::DetectorKind;
use super::multivariate::Mahalanobis;
use super::tail::Tail;
use super::{Contribution, DetectorSpec};
use std::collections::HashMap;

/// The asset of `sensor`: its id up to the last `delimiter` (the whole id when it has none).
pub fn asset_of<'a>(sensor: &'a str, delimiter: &str) -> &'a str {
    if delimiter.is_empty() {
        return sensor;
    }
    sensor.rsplit_once(delimiter).map_or(sensor, |(a, _)| a)
}

/// Learned state of one asset.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
struct AssetState {
    /// Member sensors, sorted, that the state was learned on.
    sensors: Vec<String>,
    /// Windows scored.
    windows: u32,
    /// Per asset detector.
    models: Vec<Mahalanobis>,
    tails: Vec<Tail>,
    likes: Vec<super::likelihood::Likelihood>,
    /// Per asset detector: gated windows in a row (`learn = "gated"`).
    gated: Vec<u32>,
}

/// An [`AssetScorer`]'s learned state (per asset, sorted by asset), as a checkpoint keeps it.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct AssetScorerState {
    state: std::collections::BTreeMap<String, AssetState>,
}

/// One asset's part of an [`AssetScorerState`].
#[derive(Clone)]
pub struct OneAsset(AssetState);

impl AssetScorerState {
    /// Each asset's state, by asset (for moving assets between workers).
    pub fn into_assets(self) -> Vec<(String, OneAsset)> {
        self.state
            .into_iter()
            .map(|(k, v)| (k, OneAsset(v)))
            .collect()
    }

    /// The state of `assets`.
    pub fn from_assets(assets: impl IntoIterator<Item = (String, OneAsset)>) -> Self {
        Self {
            state: assets.into_iter().map(|(k, v)| (k, v.0)).collect(),
        }
    }
}

/// Scores groups of windows of one asset.
pub struct AssetScorer {
    /// (index among all detectors, spec) of the asset detectors.
    detectors: Vec<(usize, DetectorSpec)>,
    calibrator: super::Calibrator,
    warmup: u32,
    state: HashMap<String, AssetState>,
    scratch: Vec<f64>,
    rebaselines: u64,
    last_shares: Vec<Vec<(String, f64)>>,
}

/// Each member sensor's share of the positive parts of a squared distance over `per` features
/// per member, largest first.
fn sensor_shares(parts: &[f64], members: &[(&str, &[f64])], per: usize) -> Vec<(String, f64)> {
    if parts.len() != members.len() * per || per == 0 {
        return Vec::new();
    }
    let mut by: Vec<(String, f64)> = members
        .iter()
        .zip(parts.chunks(per))
        .map(|((s, _), p)| (s.to_string(), p.iter().sum::<f64>().max(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect();
    let total: f64 = by.iter().map(|(_, v)| v).sum();
    if !(total > 0.0 && total.is_finite()) {
        return Vec::new();
    }
    for (_, v) in &mut by {
        *v /= total;
    }
    by.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    by
}

impl AssetScorer {
    /// The asset detectors among `all` (None when there are none).
    pub fn new(all: &[DetectorSpec], calibrator: super::Calibrator, warmup: u32) -> Option<Self> {
        let detectors: Vec<(usize, DetectorSpec)> = all
            .iter()
            .enumerate()
            .filter(|(_, d)| d.kind == DetectorKind::AssetMahalanobis)
            .map(|(i, d)| (i, d.clone()))
            .collect();
        (!detectors.is_empty()).then(|| Self {
            detectors,
            calibrator,
            warmup,
            state: HashMap::new(),
            scratch: Vec::new(),
            rebaselines: 0,
            last_shares: Vec::new(),
        })
    }

    /// Every asset's learned state, for a checkpoint.
    pub fn save(&self) -> AssetScorerState {
        AssetScorerState {
            state: self
                .state
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Restores what [`Self::save`] returned.
    pub fn restore(&mut self, saved: AssetScorerState) {
        self.state = saved.state.into_iter().collect();
    }

    /// Re-baselinings since the last call (`learn = "gated"`).
    pub fn take_rebaselines(&mut self) -> u64 {
        std::mem::take(&mut self.rebaselines)
    }

    /// Scores the windows of one start of `asset`; `members` are (sensor, feature row) sorted
    /// by sensor. Returns one contribution per asset detector, for every member. A group that
    /// lacks a sensor the asset has had scores nothing (0); a new sensor restarts learning.
    pub fn score(&mut self, asset: &str, members: &[(&str, &[f64])]) -> Vec<Contribution> {
        let st = self.state.entry(asset.to_string()).or_default();
        let same = st.sensors.len() == members.len()
            && st.sensors.iter().zip(members).all(|(a, (b, _))| a == b);
        if !same {
            let grows = members
                .iter()
                .any(|(s, _)| st.sensors.binary_search_by(|x| x.as_str().cmp(s)).is_err());
            if !grows {
                // A member is missing this time: nothing to compare.
                self.last_shares = vec![Vec::new(); self.detectors.len()];
                return self.zeros();
            }
            *st = AssetState {
                sensors: members.iter().map(|(s, _)| s.to_string()).collect(),
                windows: 0,
                models: vec![Mahalanobis::default(); self.detectors.len()],
                tails: vec![Tail::default(); self.detectors.len()],
                likes: vec![Default::default(); self.detectors.len()],
                gated: vec![0; self.detectors.len()],
            };
        }
        let warm = st.windows >= self.warmup;
        let seen = st.windows;
        st.windows = st.windows.saturating_add(1);
        let mut out = Vec::with_capacity(self.detectors.len());
        let mut shares = Vec::with_capacity(self.detectors.len());
        for (k, (index, d)) in self.detectors.iter().enumerate() {
            self.scratch.clear();
            for (_, row) in members {
                self.scratch.extend(d.features.iter().map(|&f| row[f]));
            }
            let raw = st.models[k].score(&self.scratch, d.statistic);
            let parts = sensor_shares(st.models[k].parts(), members, d.features.len());
            // A gated model learns every window until it has settled (1/alpha windows, with
            // the plain weights of a sample mean and covariance first): a covariance still near
            // zero would make every window look anomalous, be gated, and never settle.
            let settling = matches!(d.learn, super::Learn::Gated { .. })
                && f64::from(st.models[k].learned()) < 1.0 / d.alpha;
            let (learned, rebaseline) = if settling {
                (true, false)
            } else {
                d.learn.decide(raw, seen, st.gated[k])
            };
            if d.learn != super::Learn::Always {
                st.gated[k] = if learned { 0 } else { st.gated[k] + 1 };
            }
            if rebaseline {
                let mut fresh = Mahalanobis::default();
                fresh.learn(&self.scratch, d.alpha);
                st.models[k] = fresh;
                st.gated[k] = 0;
                self.rebaselines += 1;
                tracing::info!(
                    detector = d.name.as_str(),
                    "re-baselined an asset: a shift held long enough is the new normal"
                );
            } else if learned {
                let mut constant = super::learn_multivariate(d, &mut st.models[k], &self.scratch);
                if let super::Learn::Reference { windows } = d.learn
                    && seen + 1 >= windows
                    && !st.models[k].is_frozen()
                {
                    constant = st.models[k].freeze();
                }
                if !constant.is_empty() {
                    let per = d.features.len().max(1);
                    let mut names: Vec<&str> =
                        constant.iter().map(|&i| members[i / per].0).collect();
                    names.dedup();
                    tracing::warn!(
                        asset,
                        detector = d.name.as_str(),
                        "constant in the reference period, left out of the asset's score: {}",
                        names.join(", ")
                    );
                }
            }
            let cal = self.calibrator.calibrate(
                d,
                &mut st.tails[k],
                &mut st.likes[k],
                raw,
                warm,
                learned,
            );
            out.push(Contribution {
                detector: *index,
                feature: None,
                raw,
                score: cal,
                rebaselined: rebaseline,
            });
            shares.push(parts);
        }
        self.last_shares = shares;
        out
    }

    /// The sensors behind the last [`Self::score`], per asset detector in order: (sensor,
    /// share of the squared distance), largest first, sensors with no positive part left out.
    pub fn last_shares(&self) -> &[Vec<(String, f64)>] {
        &self.last_shares
    }

    fn zeros(&self) -> Vec<Contribution> {
        self.detectors
            .iter()
            .map(|(index, _)| Contribution {
                detector: *index,
                feature: None,
                raw: 0.0,
                score: 0.0,
                rebaselined: false,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::detect::Statistic;

    #[test]
    fn asset_is_the_id_up_to_the_last_delimiter() {
        assert_eq!(asset_of("d03-flow", "-"), "d03");
        assert_eq!(asset_of("plant-1-m02-temp", "-"), "plant-1-m02");
        assert_eq!(asset_of("solo", "-"), "solo");
        assert_eq!(asset_of("a.b", ""), "a.b");
    }

    /// An asset scorer of one detector, ratio-calibrated, 100 windows of warm-up.
    fn ratio_scorer(spec: DetectorSpec) -> AssetScorer {
        AssetScorer::new(
            &[spec],
            crate::stages::detect::Calibrator {
                method: crate::stages::detect::Calibration::Ratio,
                history: 2000,
                window: 10,
            },
            100,
        )
        .expect("asset detector")
    }

    #[test]
    fn a_joint_change_scores_although_each_sensor_alone_is_ordinary() {
        let spec = DetectorSpec {
            alpha: 0.01,
            ..DetectorSpec::new(DetectorKind::AssetMahalanobis, vec![0])
        };
        let mut a = ratio_scorer(spec);
        let mut rng = crate::tools::fixture::Rng::new(6);
        let mut normal = 0.0f64;
        for i in 0..3000 {
            // Demand drives flow up, speed down: the two move against each other.
            let demand = rng.normal();
            let flow = [10.0 + 3.0 * demand + 0.3 * rng.normal()];
            let speed = [90.0 - 6.0 * demand + 0.6 * rng.normal()];
            let c = a.score("d01", &[("d01-flow", &flow), ("d01-speed", &speed)]);
            assert_eq!(c.len(), 1);
            if i > 500 {
                normal = normal.max(c[0].score);
            }
        }
        // Flow and speed both down by an ordinary amount for each: an incident.
        let c = a.score("d01", &[("d01-flow", &[7.0]), ("d01-speed", &[84.0])]);
        assert!(normal < 0.5, "normal max {normal}");
        assert!(c[0].raw > 10.0 && c[0].score > 0.8, "{c:?}");
        // A missing member scores nothing and does not reset what was learned.
        let c = a.score("d01", &[("d01-flow", &[10.0])]);
        assert_eq!(c[0].score, 0.0);
        let c = a.score("d01", &[("d01-flow", &[10.0]), ("d01-speed", &[90.0])]);
        assert!(c[0].score < 0.5, "{c:?}");
    }

    #[test]
    fn a_broken_relation_names_the_sensor_that_left_it() {
        // A pump: current and flow both follow the load; the bearing temperature wanders on
        // its own. Then the current rises while the flow stays: each value is in its normal
        // range, but the relation is broken, and the current is the sensor to look at.
        let mut spec = DetectorSpec::new(DetectorKind::AssetMahalanobis, vec![0]);
        spec.alpha = 0.02;
        spec.z_alert = 8.0;
        let mut a = ratio_scorer(spec);
        let mut rng = crate::tools::fixture::Rng::new(9);
        let mut score = |cur: f64, flow: f64, temp: f64| {
            let c = a.score(
                "p1",
                &[
                    ("p1-current", &[cur]),
                    ("p1-flow", &[flow]),
                    ("p1-temp", &[temp]),
                ],
            );
            (c[0].clone(), a.last_shares()[0].clone())
        };
        for _ in 0..2000 {
            let load = rng.normal();
            score(
                50.0 + 5.0 * load + 0.3 * rng.normal(),
                100.0 + 10.0 * load + 0.6 * rng.normal(),
                60.0 + rng.normal(),
            );
        }
        let (c, shares) = score(55.0, 100.0, 60.0);
        assert!(c.score > 0.5, "{c:?}");
        assert_eq!(shares[0].0, "p1-current", "{shares:?}");
        assert!(shares[0].1 > 0.5, "{shares:?}");
        let temp = shares
            .iter()
            .find(|s| s.0 == "p1-temp")
            .map_or(0.0, |s| s.1);
        assert!(temp < 0.1, "{shares:?}");
        let total: f64 = shares.iter().map(|s| s.1).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }

    /// Windows of a pump (current and flow follow the load; the temperature wanders; the
    /// setpoint is constant in the reference period), scored by one asset detector.
    fn pump_run(
        statistic: Statistic,
        broken: (f64, f64),
    ) -> (Contribution, Vec<(String, f64)>, f64) {
        let mut spec = DetectorSpec::new(DetectorKind::AssetMahalanobis, vec![0]);
        spec.statistic = statistic;
        spec.learn = crate::stages::detect::Learn::Reference { windows: 400 };
        spec.z_alert = 8.0;
        let mut a = ratio_scorer(spec);
        let mut rng = crate::tools::fixture::Rng::new(12);
        let mut score = |cur: f64, flow: f64, temp: f64, set: f64| {
            let c = a.score(
                "p1",
                &[
                    ("p1-current", &[cur]),
                    ("p1-flow", &[flow]),
                    ("p1-setpoint", &[set]),
                    ("p1-temp", &[temp]),
                ],
            );
            (c[0].clone(), a.last_shares()[0].clone())
        };
        let mut normal = 0.0f64;
        for i in 0..1400 {
            let load = rng.normal();
            // After the reference, the setpoint is moved once: not a fault.
            let set = if i < 700 { 5.0 } else { 6.0 };
            let (c, _) = score(
                50.0 + 5.0 * load + 0.3 * rng.normal(),
                100.0 + 10.0 * load + 0.6 * rng.normal(),
                60.0 + rng.normal(),
                set,
            );
            if i >= 400 {
                normal = normal.max(c.raw);
            }
        }
        let (c, shares) = score(broken.0, broken.1, 60.0, 6.0);
        (c, shares, normal)
    }

    #[test]
    fn a_frozen_reference_scores_a_broken_relation_by_t2_and_spe_and_names_the_sensors() {
        for statistic in [Statistic::T2, Statistic::Spe] {
            // Current up by one standard deviation of its own, flow unchanged.
            let (c, shares, normal) = pump_run(statistic, (55.0, 100.0));
            assert!(normal < 5.0, "{statistic:?}: normal max {normal}");
            assert!(c.raw > 8.0 && c.score > 0.5, "{statistic:?}: {c:?}");
            let named: Vec<&str> = shares.iter().take(2).map(|s| s.0.as_str()).collect();
            assert!(named.contains(&"p1-current"), "{statistic:?}: {shares:?}");
            assert!(
                shares.iter().all(|s| s.0 != "p1-setpoint"),
                "the constant setpoint is left out: {shares:?}"
            );
        }
    }

    #[test]
    fn a_gated_asset_settles_from_a_cold_start_and_then_holds_a_shift() {
        let mut spec = DetectorSpec::new(DetectorKind::AssetMahalanobis, vec![0]);
        spec.alpha = 0.01;
        spec.z_alert = 10.0;
        spec.learn = crate::stages::detect::Learn::Gated {
            gate: 6.0,
            relearn: 0,
        };
        let mut a = ratio_scorer(spec);
        let mut rng = crate::tools::fixture::Rng::new(21);
        let mut score = |shift: f64, rng: &mut crate::tools::fixture::Rng| {
            let load = rng.normal();
            let c = a.score(
                "p1",
                &[
                    (
                        "p1-current",
                        &[30.0 + 3.0 * load + 0.3 * rng.normal() + shift],
                    ),
                    ("p1-pres", &[5.0 + 0.25 * load + 0.04 * rng.normal()]),
                ],
            );
            c[0].raw
        };
        let mut normal = 0.0f64;
        for i in 0..2000 {
            let z = score(0.0, &mut rng);
            if i >= 200 {
                normal = normal.max(z);
            }
        }
        // Before the settling period and the plain start weights, the first windows'
        // near-zero covariance gated every window after them: normal windows reached z 209.
        assert!(normal < 6.0, "normal max {normal}");
        let mut last = 0.0;
        for _ in 0..500 {
            last = score(6.0, &mut rng);
        }
        assert!(last > 6.0, "a held shift keeps scoring: {last}");
    }
}
