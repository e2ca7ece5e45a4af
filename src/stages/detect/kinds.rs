//! The detection vocabulary the detectors own: detector kinds, seasons, statistics,
//! calibrations and the fusion settings (rule severities are the rule language's, `rules::Severity`). The plan maps the pipeline file's
//! (`config::detect`) onto these, so that detection never reads the schema.

/// What a detector computes (`kind` in a pipeline file; docs/pipeline.md says what each does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetectorKind {
    /// EWMA z-score.
    EwmaZ,
    /// Robust level (EWMA level and mean absolute deviation).
    LevelZ,
    /// Robust level per season bucket.
    SeasonalZ,
    /// Mahalanobis distance of a sensor's watched features.
    Mahalanobis,
    /// Mahalanobis distance across the sensors of an asset.
    AssetMahalanobis,
    /// Spectral residual saliency.
    SpectralResidual,
    /// Two-sided CUSUM.
    Cusum,
    /// Stuck sensor.
    Stuck,
    /// Dropouts.
    Dropout,
    /// CAD-OSE's contextual anomaly detector.
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Statistic {
    /// Hotelling T² (the Mahalanobis distance).
    #[default]
    T2,
    /// The PCA residual (Q / SPE).
    Spe,
}

/// The season buckets of `seasonal-z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Season {
    /// 24 buckets.
    #[default]
    HourOfDay,
    /// 48 buckets: hour of day, weekdays apart from weekends.
    HourOfDayWeekend,
    /// 168 buckets.
    HourOfWeek,
}

/// How raw detector scores become the learned score in [0, 1].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Calibration {
    /// Against the detector's alert level.
    #[default]
    Ratio,
    /// Tail probability against the score's own history.
    Tail,
    /// HTM's anomaly likelihood.
    Likelihood,
    /// The larger of tail and likelihood.
    TailLikelihood,
}

impl Calibration {
    /// Its name in a pipeline file.
    pub fn as_str(self) -> &'static str {
        match self {
            Calibration::Ratio => "ratio",
            Calibration::Tail => "tail",
            Calibration::Likelihood => "likelihood",
            Calibration::TailLikelihood => "tail-likelihood",
        }
    }
}

/// Fusion, calibration and episode settings (`[fuse]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Fuse {
    /// Calibration of raw scores.
    pub calibration: Calibration,
    /// Scores a tail calibration remembers.
    pub tail_history: u32,
    /// Scores the likelihood averages.
    pub likelihood_window: u32,
    /// Weight of the learned score.
    pub ai_weight: f64,
    /// Weight of the rule score.
    pub rules_weight: f64,
    /// Windows a detector stays quiet after it alerted.
    pub refractory: u32,
    /// Fused score above which a window alerts.
    pub open: f64,
    /// Fused score at or below which an open episode starts to resolve.
    pub close: f64,
    /// Windows above `open` before an episode opens.
    pub min_windows: u32,
    /// Windows at or below `close` before an episode resolves.
    pub quiet_windows: u32,
    /// Least time between two `update` events of an episode (ms).
    pub update_every_ms: i64,
}

impl Default for Fuse {
    /// The defaults of `[fuse]` (a unit test of the plan keeps them equal to the schema's).
    fn default() -> Self {
        Self {
            calibration: Calibration::Ratio,
            tail_history: 2000,
            likelihood_window: 10,
            ai_weight: 1.0,
            rules_weight: 1.0,
            refractory: 0,
            open: 0.5,
            close: 0.3,
            min_windows: 1,
            quiet_windows: 1,
            update_every_ms: 60_000,
        }
    }
}
