//! Checks of `[[detect.detector]]` options: which kind takes which, and their ranges.

use super::validate::Checker;
use crate::config::detect::*;
use crate::config::schema::PipelineConfig;
use crate::stages::detect::DetectorSpec;
use crate::stages::features::FeatureSet;
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
        spec.season = super::vocabulary::season(*v.get_ref());
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
        spec.statistic = super::vocabulary::statistic(*v.get_ref());
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

/// `[detect]`; returns the detector specs with feature indices resolved.
pub(super) fn detect(
    c: &mut Checker,
    config: &PipelineConfig,
    fs: &FeatureSet,
) -> Vec<DetectorSpec> {
    if let Some(delim) = &config.detect.asset_delimiter
        && delim.get_ref().is_empty()
    {
        c.at(delim, "asset-delimiter must not be empty", None);
    }
    let gate = *config.detect.gate.get_ref();
    if !(gate.is_finite() && gate > 0.0) {
        c.at(
            &config.detect.gate,
            format!("detect gate {gate} must be a positive number"),
            Some(
                "the raw score (a z-score for most detectors) above which a window is not learned",
            ),
        );
    }
    if config.detect.learn == LearnPolicy::Reference && config.detect.reference_windows == 0 {
        c.top("detect reference-windows must be at least 1", None);
    }
    let mut detectors = Vec::new();
    for d in &config.detect.detector {
        let mut idx = Vec::new();
        for f in &d.features {
            match fs.index_of(f.get_ref()) {
                Some(i) => idx.push(i),
                None => c.at(
                    f,
                    format!(
                        "detector watches feature {:?}, which is not computed",
                        f.get_ref()
                    ),
                    Some(&format!(
                        "add it to [features] compute; computed: {}",
                        fs.names.join(", ")
                    )),
                ),
            }
        }
        if d.features.is_empty() && *d.kind.get_ref() != DetectorKind::Dropout {
            c.at(
                &d.kind,
                "a detector needs at least one feature",
                Some("features = [\"mean\"]"),
            );
        }
        let alpha = d.alpha.as_ref().map_or(0.1, |a| *a.get_ref());
        if let Some(a) = &d.alpha
            && !(alpha > 0.0 && alpha <= 1.0)
        {
            c.at(a, format!("alpha {alpha} must be in (0, 1]"), None);
        }
        if !(d.z_alert > 0.0 && d.z_alert.is_finite()) {
            c.at(&d.kind, "detector z-alert must be positive", None);
        }
        let mut spec = DetectorSpec::new(super::vocabulary::kind(*d.kind.get_ref()), idx);
        spec.learn = learn_of(c, &config.detect, d);
        spec.alpha = alpha;
        spec.z_alert = d.z_alert;
        if let Some(n) = &d.name {
            spec.name = n.clone();
        }
        detector_options(
            c,
            d,
            &mut spec,
            config
                .detect
                .asset_delimiter
                .as_ref()
                .map(|s| s.get_ref().as_str()),
        );
        if let (Some(a), crate::stages::detect::Learn::Reference { .. }) = (&d.alpha, spec.learn)
            && matches!(
                *d.kind.get_ref(),
                DetectorKind::Mahalanobis | DetectorKind::AssetMahalanobis
            )
        {
            c.at(
                a,
                "`alpha` does nothing under learn = \"reference\"",
                Some("a reference baseline is the plain mean and covariance of the reference windows; remove `alpha`"),
            );
        }
        detectors.push(spec);
    }
    detectors
}

/// A detector's learn policy: its own `learn`, else `[detect] learn` for the kinds that keep
/// a baseline (others always learn: they have nothing a policy could govern).
fn learn_of(
    c: &mut Checker,
    detect: &DetectConfig,
    d: &DetectorConfig,
) -> crate::stages::detect::Learn {
    use crate::stages::detect::Learn;
    let kind = *d.kind.get_ref();
    let policy = match &d.learn {
        Some(l) if !DetectorSpec::learns(super::vocabulary::kind(kind)) => {
            c.at(
                l,
                format!("`learn` does not apply to a {} detector", kind.as_str()),
                Some("it is an option of: ewma-z, level-z, seasonal-z, cusum, mahalanobis, asset-mahalanobis"),
            );
            return Learn::Always;
        }
        Some(l) => *l.get_ref(),
        None if DetectorSpec::learns(super::vocabulary::kind(kind)) => detect.learn,
        None => return Learn::Always,
    };
    match policy {
        LearnPolicy::Always => Learn::Always,
        LearnPolicy::Gated => Learn::Gated {
            gate: *detect.gate.get_ref(),
            relearn: detect.relearn,
        },
        LearnPolicy::Reference => Learn::Reference {
            windows: detect.reference_windows,
        },
    }
}
