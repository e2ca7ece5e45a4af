//! The schema's detection vocabulary (`config::detect`) mapped onto detection's own
//! (`detect::kinds`), so that detection never reads the schema.

use crate::config::detect as c;
use crate::stages::detect as d;

/// A detector kind.
pub(super) fn kind(k: c::DetectorKind) -> d::DetectorKind {
    use c::DetectorKind as C;
    use d::DetectorKind as D;
    match k {
        C::EwmaZ => D::EwmaZ,
        C::LevelZ => D::LevelZ,
        C::SeasonalZ => D::SeasonalZ,
        C::Mahalanobis => D::Mahalanobis,
        C::AssetMahalanobis => D::AssetMahalanobis,
        C::SpectralResidual => D::SpectralResidual,
        C::Cusum => D::Cusum,
        C::Stuck => D::Stuck,
        C::Dropout => D::Dropout,
        C::Context => D::Context,
    }
}

/// A season.
pub(super) fn season(s: c::Season) -> d::Season {
    match s {
        c::Season::HourOfDay => d::Season::HourOfDay,
        c::Season::HourOfDayWeekend => d::Season::HourOfDayWeekend,
        c::Season::HourOfWeek => d::Season::HourOfWeek,
    }
}

/// A multivariate statistic.
pub(super) fn statistic(s: c::Statistic) -> d::Statistic {
    match s {
        c::Statistic::T2 => d::Statistic::T2,
        c::Statistic::Spe => d::Statistic::Spe,
    }
}

/// A severity.
pub(super) fn severity(s: c::Severity) -> crate::stages::rules::Severity {
    use crate::stages::rules::Severity as R;
    match s {
        c::Severity::Info => R::Info,
        c::Severity::Warning => R::Warning,
        c::Severity::Critical => R::Critical,
    }
}

/// `[fuse]`.
pub(super) fn fuse(f: &c::FuseConfig) -> d::Fuse {
    d::Fuse {
        calibration: match f.calibration {
            c::Calibration::Ratio => d::Calibration::Ratio,
            c::Calibration::Tail => d::Calibration::Tail,
            c::Calibration::Likelihood => d::Calibration::Likelihood,
            c::Calibration::TailLikelihood => d::Calibration::TailLikelihood,
        },
        tail_history: f.tail_history,
        likelihood_window: f.likelihood_window,
        ai_weight: *f.ai_weight.get_ref(),
        rules_weight: *f.rules_weight.get_ref(),
        refractory: f.refractory,
        open: *f.open.get_ref(),
        close: *f.close.get_ref(),
        min_windows: f.min_windows,
        quiet_windows: f.quiet_windows,
        update_every_ms: f.update_every.ms,
    }
}

#[cfg(test)]
mod tests {
    /// An empty `[fuse]` means detection's defaults.
    #[test]
    fn the_fuse_defaults_agree() {
        assert_eq!(
            super::fuse(&Default::default()),
            crate::stages::detect::Fuse::default()
        );
    }
}
