//! Semantic checks of a parsed pipeline file, producing the validated [`Plan`]: one validator
//! per section, called in file order; every mistake is a [`Diagnostic`] located in the file.

use super::{Device, Plan};
use crate::config::schema::PipelineConfig;
use crate::config::{Diagnostic, Locator};
use toml::Spanned;

/// The mistakes of `[features]` and `[[rules]]` (against the features and `[registry]
/// attributes`) in pipeline text whose other sections did not parse: `validate` reports
/// every mistake, so a schema error elsewhere does not hide a rule's. Nothing when those
/// sections do not parse themselves (their parse errors are reported already).
pub(super) fn rules_alone(loc: &Locator) -> Vec<Diagnostic> {
    #[derive(serde::Deserialize)]
    struct Part {
        #[serde(default)]
        features: crate::config::schema::FeaturesConfig,
        #[serde(default)]
        rules: Vec<crate::config::detect::RuleConfig>,
        #[serde(default)]
        registry: Option<crate::config::registry::RegistryConfig>,
        #[serde(flatten)]
        _rest: std::collections::BTreeMap<String, serde::de::IgnoredAny>,
    }
    let Ok(part) = toml::from_str::<Part>(loc.text) else {
        return Vec::new();
    };
    let mut c = Checker {
        loc,
        errs: Vec::new(),
    };
    let fs = super::features::features(&mut c, &part.features);
    let schema = super::registry::schema(part.registry.as_ref());
    super::rules::rules(&mut c, &part.rules, &fs, schema.as_ref());
    c.errs
}

/// Collects the diagnostics of one file: each section's validator (`input.rs`, `window.rs`,
/// `features.rs`, `detectors.rs`, `rules.rs`, `outputs.rs`, `testcases.rs`) adds to it.
pub(super) struct Checker<'a> {
    pub(super) loc: &'a Locator<'a>,
    pub(super) errs: Vec<Diagnostic>,
}

impl Checker<'_> {
    pub(super) fn at<T>(&mut self, s: &Spanned<T>, msg: impl Into<String>, hint: Option<&str>) {
        self.errs
            .push(self.loc.span(s.span(), msg, hint.map(str::to_string)));
    }
    pub(super) fn top(&mut self, msg: impl Into<String>, hint: Option<&str>) {
        self.errs
            .push(self.loc.at(0, msg, hint.map(str::to_string)));
    }
}

pub(super) fn validate(loc: &Locator, config: PipelineConfig) -> Result<Plan, Vec<Diagnostic>> {
    let mut c = Checker {
        loc,
        errs: Vec::new(),
    };

    let zone = super::input::source(&mut c, &config);
    let (classes, time_range) = super::input::clean(&mut c, &config);
    let window = super::window::window(&mut c, &config);
    let fs = super::features::features(&mut c, &config.features);
    let detectors = super::detectors::detect(&mut c, &config, &fs);
    let registry = super::registry::registry(&mut c, &config);
    let schema = super::registry::schema(config.registry.as_ref());
    let compiled = super::rules::rules(&mut c, &config.rules, &fs, schema.as_ref());
    super::rules::fuse(&mut c, &config);
    super::outputs::sinks(&mut c, &config);
    super::outputs::compute(&mut c, &config);
    super::testcases::tests(&mut c, &config, &fs);

    if !c.errs.is_empty() {
        c.errs.sort_by_key(|d| (d.line, d.column));
        return Err(c.errs);
    }
    let fill = super::input::fill(&config);
    let fuse = super::vocabulary::fuse(&config.fuse);
    let non_finite = match config.clean.non_finite {
        crate::config::NonFinitePolicy::Reject => crate::stages::clean::NonFinitePolicy::Reject,
        crate::config::NonFinitePolicy::Drop => crate::stages::clean::NonFinitePolicy::Drop,
    };
    let device = Device::parse(config.compute.device.get_ref()).unwrap_or(Device::Auto);
    let watermark_delay = config.source.max_out_of_orderness.ms + config.window.allowed_lateness.ms;
    let compute = super::ComputePlan {
        max_batch_windows: config.compute.max_batch_windows,
        max_batch_delay_ms: config.compute.max_batch_delay.ms,
        cross_check: config.compute.cross_check,
        cross_check_tolerance: config.compute.cross_check_tolerance,
    };
    let clean = super::CleanPlan {
        reject_bad_quality: config.clean.reject_bad_quality,
        dedup: config.clean.dedup,
        known_sensors_only: config.clean.known_sensors_only,
        time_range_text: (
            config.clean.min_time.get_ref().clone(),
            config.clean.max_time.get_ref().clone(),
        ),
    };
    let lead = 4 * (window.size + watermark_delay);
    Ok(Plan {
        name: config.name.clone(),
        registry,
        lead,
        clean,
        warmup: config.detect.warmup,
        compute,
        source: super::io::source(&config),
        sinks: super::io::sinks(&config),
        recovery: super::io::recovery(&config),
        checkpoints_off: config.recovery.as_ref().is_some_and(|r| !r.enabled),
        file: loc.file.to_path_buf(),
        text: std::sync::Arc::from(loc.text),
        device,
        watermark_delay,
        config,
        features: fs,
        rules: compiled,
        window,
        detectors,
        classes,
        fill,
        non_finite,
        fuse,
        zone,
        time_range,
    })
}
