//! Checks of `[[detect.detector]]` options: which kind takes which, and their ranges.

use super::validate::Checker;
use crate::config::detect::*;
use crate::detect::DetectorSpec;
use toml::Spanned;

/// Checks the kind-specific options of a detector and copies them into `spec`: an option the
/// kind does not use is an error (it would silently do nothing).
pub(super) fn detector_options(
    c: &mut Checker,
    d: &DetectorConfig,
    spec: &mut DetectorSpec,
    asset_delimiter: Option<&str>,
) {
    use DetectorKind::*;
    let kind = *d.kind.get_ref();
    let allowed = |c: &mut Checker, name: &str, span: &Spanned<()>, kinds: &[DetectorKind]| {
        let ok = kinds.contains(&kind);
        if !ok {
            let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            c.at(
                span,
                format!("`{name}` does not apply to a {} detector", kind.as_str()),
                Some(&format!("it is an option of: {}", names.join(", "))),
            );
        }
        ok
    };
    let unit = |s: std::ops::Range<usize>| Spanned::new(s, ());
    if let Some(v) = &d.alpha {
        allowed(
            c,
            "alpha",
            &unit(v.span()),
            &[
                EwmaZ,
                LevelZ,
                SeasonalZ,
                Cusum,
                Mahalanobis,
                AssetMahalanobis,
            ],
        );
    }
    if let Some(v) = &d.spread_alpha
        && allowed(
            c,
            "spread-alpha",
            &unit(v.span()),
            &[LevelZ, SeasonalZ, Cusum],
        )
    {
        let a = *v.get_ref();
        if !(a > 0.0 && a <= 1.0) {
            c.at(v, format!("spread-alpha {a} must be in (0, 1]"), None);
        }
        spec.spread_alpha = a;
    }
    if let Some(v) = &d.season
        && allowed(c, "season", &unit(v.span()), &[SeasonalZ])
    {
        spec.season = *v.get_ref();
    }
    if let Some(v) = &d.bucket_warmup
        && allowed(c, "bucket-warmup", &unit(v.span()), &[SeasonalZ])
    {
        spec.bucket_warmup = *v.get_ref();
    }
    if let Some(v) = &d.history
        && allowed(c, "history", &unit(v.span()), &[SpectralResidual])
    {
        let h = *v.get_ref();
        if !(16..=4096).contains(&h) {
            c.at(v, format!("history {h} must be in 16..=4096"), None);
        }
        spec.history = h as usize;
    }
    if let Some(v) = &d.drift
        && allowed(c, "drift", &unit(v.span()), &[Cusum])
    {
        let x = *v.get_ref();
        if !(x >= 0.0 && x.is_finite()) {
            c.at(v, format!("drift {x} must be >= 0"), None);
        }
        spec.drift = x;
    }
    if let Some(v) = &d.threshold
        && allowed(c, "threshold", &unit(v.span()), &[Cusum])
    {
        let x = *v.get_ref();
        if !(x > 0.0 && x.is_finite()) {
            c.at(v, format!("threshold {x} must be positive"), None);
        }
        spec.threshold = x;
    }
    if let Some(v) = &d.windows
        && allowed(c, "windows", &unit(v.span()), &[Stuck, Dropout])
    {
        if *v.get_ref() == 0 {
            c.at(v, "windows must be at least 1", None);
        }
        spec.windows = *v.get_ref();
    }
    if let Some(v) = &d.statistic
        && allowed(
            c,
            "statistic",
            &unit(v.span()),
            &[Mahalanobis, AssetMahalanobis],
        )
    {
        spec.statistic = *v.get_ref();
    }
    if let Some(v) = &d.range_windows
        && allowed(c, "range-windows", &unit(v.span()), &[Context])
    {
        let n = *v.get_ref();
        if !(1..=100_000).contains(&n) {
            c.at(v, format!("range-windows {n} must be in 1..=100000"), None);
        }
        spec.context.range_windows = n;
    }
    if let Some(v) = &d.range_margin
        && allowed(c, "range-margin", &unit(v.span()), &[Context])
    {
        let x = *v.get_ref();
        if !(0.0..=100.0).contains(&x) {
            c.at(v, format!("range-margin {x} must be in 0..=100"), None);
        }
        spec.context.range_margin = x;
    }
    if let Some(v) = &d.rest
        && allowed(c, "rest", &unit(v.span()), &[Context])
    {
        spec.context.rest = *v.get_ref();
    }
    if kind == AssetMahalanobis && asset_delimiter.is_none() {
        c.at(
            &d.kind,
            "an asset-mahalanobis detector needs to know the assets",
            Some("set [detect] asset-delimiter, e.g. \"-\" for ids like d03-flow"),
        );
    }
    if kind == Mahalanobis && d.features.len() < 2 {
        c.at(
            &d.kind,
            "a mahalanobis detector needs at least two features",
            Some("for one feature use level-z or ewma-z"),
        );
    }
    if kind == Dropout && !d.features.is_empty() {
        c.at(
            &d.kind,
            "a dropout detector watches windows, not features",
            Some("remove `features`"),
        );
    }
}
