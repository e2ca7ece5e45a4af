//! The scoring part of a pipeline definition: `[detect]` (learned detectors), `[[rules]]` and
//! `[fuse]` (fusion, calibration and the alert lifecycle). Like schema.rs, these types are the
//! schema; which detector accepts which option is checked in validate/detectors.rs.

use super::duration::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// Learned detectors.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DetectConfig {
    /// Windows a sensor must have seen before its detectors may raise a score.
    #[serde(default = "default_warmup")]
    pub warmup: u32,
    /// The detectors.
    #[serde(default)]
    pub detector: Vec<DetectorConfig>,
    /// Sensors belong to an asset named by their id up to the last occurrence of this
    /// delimiter (`"-"`: `d03-flow` and `d03-speed` are asset `d03`). Needed by
    /// `asset-mahalanobis`; windows are then exchanged by asset, not by sensor.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub asset_delimiter: Option<Spanned<String>>,
    /// What the detectors that keep a baseline (`ewma-z`, `level-z`, `seasonal-z`, `cusum`,
    /// `mahalanobis`, `asset-mahalanobis`) learn from, unless a detector says otherwise.
    #[serde(default)]
    pub learn: LearnPolicy,
    /// `learn = "gated"`: a window whose raw score is above this does not update the
    /// baseline (nor the tail calibration's history).
    #[serde(default = "default_gate")]
    #[schemars(with = "f64")]
    pub gate: Spanned<f64>,
    /// `learn = "gated"`: after this many gated windows in a row the shift is taken as the new
    /// normal: the baseline starts again from the current window (a re-baselining, counted in
    /// the run summary and logged). 0: never.
    #[serde(default = "default_relearn")]
    pub relearn: u32,
    /// `learn = "reference"`: the windows (per sensor or asset) the baseline learns from;
    /// then it is frozen (SPC phase I, then phase II).
    #[serde(default = "default_reference")]
    pub reference_windows: u32,
}

/// What a detector's baseline learns from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LearnPolicy {
    /// Every window (an anomaly that lasts is learned as normal within a few windows).
    #[default]
    Always,
    /// Windows whose raw score is at most `gate`; a shift gated for `relearn` windows in a
    /// row is accepted as the new normal.
    Gated,
    /// The first `reference-windows` windows only; then the baseline is frozen.
    Reference,
}

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            warmup: default_warmup(),
            detector: Vec::new(),
            asset_delimiter: None,
            learn: LearnPolicy::Always,
            gate: default_gate(),
            relearn: default_relearn(),
            reference_windows: default_reference(),
        }
    }
}
fn default_gate() -> Spanned<f64> {
    Spanned::new(0..0, 4.0)
}
fn default_relearn() -> u32 {
    60
}
fn default_reference() -> u32 {
    500
}
fn default_warmup() -> u32 {
    5
}

/// Kinds of detectors (formulas in docs/detection.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DetectorKind {
    /// Per-sensor EWMA of a feature's mean and variance; the score is |x - m| / sqrt(v).
    EwmaZ,
    /// Robust level: EWMA level (`alpha`) and EWMA mean absolute deviation (`spread-alpha`);
    /// the score is |x - level| / (1.2533 · deviation).
    LevelZ,
    /// Seasonal level: like level-z, learned separately per `season` bucket (hour of day or
    /// hour of week, in the source's time zone).
    SeasonalZ,
    /// Distance of the vector of the watched features from the sensor's learned normal:
    /// Mahalanobis with an EWMA mean and covariance, as a normal-equivalent z (Wilson-Hilferty).
    Mahalanobis,
    /// Across the sensors of one asset (`[detect] asset-delimiter`): Mahalanobis distance of
    /// the vector of every sensor's watched features in windows of the same start, from the
    /// asset's learned normal. Every sensor of the asset gets the score.
    AssetMahalanobis,
    /// Pattern change: the spectral residual saliency (Ren et al., KDD 2019) of the newest
    /// value in the last `history` windows.
    SpectralResidual,
    /// Level shifts: two-sided CUSUM of standardised residuals with `drift`; it re-baselines
    /// after `threshold`.
    Cusum,
    /// Stuck sensor: the run of windows in which the feature did not change; 0.5 at `windows`.
    Stuck,
    /// Dropouts: windows missing since the sensor's previous window plus the fraction of filled
    /// values; 0.5 at `windows`.
    Dropout,
    /// Sequences new to the sensor: the contextual anomaly detector of CAD-OSE over the
    /// watched features coded as levels of a range learned from the first `range-windows`
    /// windows; its score is already in [0, 1] and is not calibrated further. CPU only.
    Context,
}

impl DetectorKind {
    /// The kind as written in a pipeline file.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectorKind::EwmaZ => "ewma-z",
            DetectorKind::LevelZ => "level-z",
            DetectorKind::SeasonalZ => "seasonal-z",
            DetectorKind::Mahalanobis => "mahalanobis",
            DetectorKind::AssetMahalanobis => "asset-mahalanobis",
            DetectorKind::SpectralResidual => "spectral-residual",
            DetectorKind::Cusum => "cusum",
            DetectorKind::Stuck => "stuck",
            DetectorKind::Dropout => "dropout",
            DetectorKind::Context => "context",
        }
    }
}

/// The statistic of `mahalanobis` and `asset-mahalanobis`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Statistic {
    /// Mahalanobis distance (Hotelling's T² under a reference period).
    #[default]
    T2,
    /// Squared prediction error of PCA (the Q statistic): the part of the standardised vector
    /// outside the components that explain 90 % of the normal variance.
    Spe,
}

/// Season buckets of `seasonal-z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Season {
    /// 24 buckets.
    #[default]
    HourOfDay,
    /// 48 buckets: hour of day, working days (Monday to Friday) apart from weekends.
    HourOfDayWeekend,
    /// 168 buckets: hour of the week.
    HourOfWeek,
}

/// One detector. Options that a kind does not use are an error.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DetectorConfig {
    /// Detector kind.
    #[schemars(with = "DetectorKind")]
    pub kind: Spanned<DetectorKind>,
    /// Name reported in alerts (default: the kind).
    #[serde(default)]
    pub name: Option<String>,
    /// Features it watches. The detector's score is the largest over them, except
    /// `mahalanobis`, which scores them as one vector; `dropout` watches none.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub features: Vec<Spanned<String>>,
    /// EWMA weight of the newest window, in (0, 1] (level, mean and covariance; default
    /// 0.1). Not an option of `stuck`, `dropout` and `spectral-residual`, which keep no mean.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub alpha: Option<Spanned<f64>>,
    /// The z-score at which the `ratio`-calibrated learned score is 0.5.
    #[serde(default = "default_z")]
    pub z_alert: f64,
    /// level-z, seasonal-z, cusum: EWMA weight of the spread estimate (default 0.01).
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub spread_alpha: Option<Spanned<f64>>,
    /// seasonal-z: the buckets (default `hour-of-day`).
    #[serde(default)]
    #[schemars(with = "Option<Season>")]
    pub season: Option<Spanned<Season>>,
    /// seasonal-z: windows a bucket must have seen before it scores (default 3).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub bucket_warmup: Option<Spanned<u32>>,
    /// spectral-residual: windows of history the saliency map is computed over (default 64,
    /// at least 16).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub history: Option<Spanned<u32>>,
    /// cusum: allowance per window in standard deviations (default 0.5).
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub drift: Option<Spanned<f64>>,
    /// cusum: cumulative sum (standard deviations) after which it re-baselines (default 8).
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub threshold: Option<Spanned<f64>>,
    /// stuck, dropout: windows (unchanged, or missing) at which the score is 0.5 (default 6 for
    /// stuck, 2 for dropout).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub windows: Option<Spanned<u32>>,
    /// mahalanobis, asset-mahalanobis: `t2` (default) or `spe` (docs/detection.md).
    #[serde(default)]
    #[schemars(with = "Option<Statistic>")]
    pub statistic: Option<Spanned<Statistic>>,
    /// context: windows whose values set the range of levels (default 400). The range is set
    /// at 1/8, 1/4, 1/2 and all of them, each time learning the windows so far again; scores
    /// are 0 until the first.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub range_windows: Option<Spanned<u32>>,
    /// context: the learned range is widened by this times its width on each side (default
    /// 1), so that the values seen so far use about a third of the 8 levels.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub range_margin: Option<Spanned<f64>>,
    /// context: windows scored 0 after a score of at least 0.75 (default 100; 0 = none).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub rest: Option<Spanned<u32>>,
    /// What this detector's baseline learns from (default: `[detect] learn`, with its `gate`,
    /// `relearn` and `reference-windows`); only for the detectors that keep a baseline.
    #[serde(default)]
    #[schemars(with = "Option<LearnPolicy>")]
    pub learn: Option<Spanned<LearnPolicy>>,
}

fn one_spanned() -> Spanned<f64> {
    Spanned::new(0..0, 1.0)
}
fn default_z() -> f64 {
    4.0
}

/// Rule severity.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Worth a look (rule score 0.2).
    Info,
    /// Needs attention (rule score 0.6).
    Warning,
    /// Act now (rule score 1.0).
    Critical,
}

/// A rule over the features of one window.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuleConfig {
    /// The rule's name, reported in alerts.
    pub name: String,
    /// A condition such as `max > 95 and slope > 0.5` (see docs/pipeline.md, rules).
    #[schemars(with = "String")]
    pub when: Spanned<String>,
    /// `info`, `warning` or `critical`.
    pub severity: Severity,
    /// Glob on sensor ids the rule applies to (all sensors when absent), e.g. `"*-speed"`.
    #[serde(default)]
    pub sensors: Option<String>,
}

/// Fusion and the alert lifecycle.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FuseConfig {
    /// How each detector's raw score becomes a learned score in [0, 1]: `ratio` (z² / (z² +
    /// z-alert²)) or `tail` (-log10 of the tail probability of the score among the sensor's own
    /// recent scores, / 10; comparable across sensors; see docs/detection.md).
    #[serde(default)]
    pub calibration: Calibration,
    /// `tail` calibration: raw scores of history per sensor and detector.
    #[serde(default = "default_tail_history")]
    pub tail_history: u32,
    /// `likelihood` calibration: raw scores averaged into the short-term mean.
    #[serde(default = "default_likelihood_window")]
    pub likelihood_window: u32,
    /// Weight of the calibrated learned score (finite, >= 0).
    #[serde(default = "one_spanned")]
    #[schemars(with = "f64")]
    pub ai_weight: Spanned<f64>,
    /// Weight of the rule score (finite, >= 0).
    #[serde(default = "one_spanned")]
    #[schemars(with = "f64")]
    pub rules_weight: Spanned<f64>,
    /// Windows of refractory period: a fused score not above every fused score of the
    /// sensor's previous `refractory` windows is halved (0 = off), so a lasting anomaly
    /// stands out where it starts.
    #[serde(default)]
    pub refractory: u32,
    /// A window is anomalous when its fused score is above this.
    #[serde(default = "default_open")]
    #[schemars(with = "f64")]
    pub open: Spanned<f64>,
    /// An open episode stays open while the fused score is above this (hysteresis; <= open).
    #[serde(default = "default_close")]
    #[schemars(with = "f64")]
    pub close: Spanned<f64>,
    /// Consecutive anomalous windows needed to open an episode.
    #[serde(default = "one_u32")]
    pub min_windows: u32,
    /// Consecutive quiet windows (fused <= close) needed to resolve an episode.
    #[serde(default = "one_u32")]
    pub quiet_windows: u32,
    /// Least event time between two updates of one open episode.
    #[serde(default = "default_update")]
    pub update_every: Duration,
}

impl Default for FuseConfig {
    fn default() -> Self {
        Self {
            calibration: Calibration::Ratio,
            tail_history: default_tail_history(),
            likelihood_window: default_likelihood_window(),
            ai_weight: one_spanned(),
            rules_weight: one_spanned(),
            refractory: 0,
            open: default_open(),
            close: default_close(),
            min_windows: 1,
            quiet_windows: 1,
            update_every: default_update(),
        }
    }
}
fn default_likelihood_window() -> u32 {
    10
}
fn default_tail_history() -> u32 {
    2000
}

/// Calibration of the learned score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Calibration {
    /// z² / (z² + z_alert²): 0.5 at the detector's z-alert.
    #[default]
    Ratio,
    /// -log10(p) / 10 (clamped to 1), p the tail probability of the raw score among the
    /// sensor's last `tail-history` raw scores of the same detector (empirical below their 95th
    /// percentile, an exponential tail fitted to the excesses above it).
    Tail,
    /// -log10(p) / 10 (clamped to 1), p the normal tail probability of the mean of the last
    /// `likelihood-window` raw scores against the mean and spread of such means over the last
    /// `tail-history` windows: the anomaly likelihood of Numenta's HTM detector.
    Likelihood,
    /// The larger of `tail` and `likelihood`: a single extreme window, or a lasting rise.
    TailLikelihood,
}

fn default_open() -> Spanned<f64> {
    Spanned::new(0..0, 0.5)
}
fn default_close() -> Spanned<f64> {
    Spanned::new(0..0, 0.3)
}
fn one_u32() -> u32 {
    1
}
fn default_update() -> Duration {
    Duration::from_ms(60_000)
}
