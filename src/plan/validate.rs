//! Semantic checks of a parsed pipeline file, producing the validated [`Plan`]: every mistake
//! is a [`Diagnostic`] located in the file.

use super::detectors::detector_options;
use super::kafka::{kafka_sink, kafka_source};
use super::{CompiledRule, Device, MAX_WINDOWS_PER_READING, Plan, known_device};
use crate::clean::{ClassRule, Classes};
use crate::config::detect::*;
use crate::config::schema::*;
use crate::config::{Diagnostic, Locator};
use crate::detect::DetectorSpec;
use crate::features::{self, Feature, FeatureSet};
use crate::rules::Condition;
use crate::window::WindowSpec;
use std::collections::HashSet;
use toml::Spanned;

pub(super) struct Checker<'a> {
    loc: &'a Locator<'a>,
    errs: Vec<Diagnostic>,
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

    // [source]
    let src = &config.source;
    if src.kind == SourceKind::Kafka {
        kafka_source(&mut c, src);
    } else if src.path.get_ref().trim().is_empty() {
        c.at(
            &src.path,
            "source path is empty",
            Some("give a file or a glob such as \"fixtures/*.parquet\""),
        );
    } else if let Err(e) = glob::Pattern::new(src.path.get_ref()) {
        c.at(&src.path, format!("invalid glob: {e}"), None);
    }
    let zone = match crate::timefmt::Zone::parse(src.time_zone.get_ref()) {
        Ok(z) => z,
        Err(e) => {
            c.at(
                &src.time_zone,
                e,
                Some("use \"UTC\", a fixed offset such as \"+02:00\", or an IANA name such as \"Europe/Berlin\""),
            );
            crate::timefmt::Zone::UTC
        }
    };
    if src.batch_rows == 0 {
        c.top("source batch-rows must be at least 1", None);
    }

    // [clean]
    let mut rules = Vec::new();
    for class in &config.clean.class {
        let pat = class.pattern.get_ref();
        let pattern = match glob::Pattern::new(pat) {
            Ok(p) => p,
            Err(e) => {
                c.at(
                    &class.pattern,
                    format!("clean class match {pat:?} is not a valid glob: {e}"),
                    None,
                );
                continue;
            }
        };
        for (key, bound) in [("min", class.min), ("max", class.max)] {
            if bound.is_some_and(|b| !b.is_finite()) {
                c.at(
                    &class.pattern,
                    format!("clean class {pat:?}: {key} must be a finite number"),
                    Some("leave it out for no bound"),
                );
            }
        }
        if let (Some(lo), Some(hi)) = (class.min, class.max)
            && lo > hi
        {
            c.at(
                &class.pattern,
                format!("clean class {pat:?}: min {lo} is above max {hi}"),
                None,
            );
        }
        if !class.scale.is_finite() || !class.offset.is_finite() || class.scale == 0.0 {
            c.at(
                &class.pattern,
                format!("clean class {pat:?}: scale must be finite and not 0, offset finite"),
                None,
            );
        }
        rules.push(ClassRule {
            pattern,
            min: class.min,
            max: class.max,
            scale: class.scale,
            offset: class.offset,
        });
    }
    let mut bound =
        |s: &Spanned<String>, key: &str, default: i64| match crate::timefmt::parse_timestamp(
            s.get_ref(),
        ) {
            Some(t) => t,
            None => {
                c.at(
                    s,
                    format!("clean {key} {:?} is not a date or time", s.get_ref()),
                    Some(
                        "write \"YYYY-MM-DD\" or an RFC 3339 time such as \"2024-05-06T08:00:00Z\"",
                    ),
                );
                default
            }
        };
    let time_range = (
        bound(&config.clean.min_time, "min-time", 0),
        bound(&config.clean.max_time, "max-time", 7_258_118_400_000),
    );
    if time_range.0 >= time_range.1 {
        c.at(
            &config.clean.max_time,
            "clean max-time must be after min-time",
            None,
        );
    }
    let fill = &config.clean.fill;
    if fill.method != FillMethod::None
        && (fill.interval.ms <= 0 || fill.max_gap.ms < fill.interval.ms)
    {
        c.top(
            "clean.fill: interval must be positive and max-gap at least the interval",
            None,
        );
    }

    // [window]
    let w = &config.window;
    let size = w.size.get_ref().ms;
    if size <= 0 {
        c.at(&w.size, "window size must be positive", None);
    }
    let slide = match (w.kind, &w.slide) {
        (WindowKind::Tumbling, Some(s)) if s.get_ref().ms != size => {
            c.at(
                s,
                "a tumbling window has no slide",
                Some("remove `slide`, or use kind = \"sliding\""),
            );
            size
        }
        (WindowKind::Tumbling, _) => size,
        (WindowKind::Sliding, None) => {
            c.at(
                &w.size,
                "a sliding window needs `slide`",
                Some("add e.g. slide = \"5s\""),
            );
            size
        }
        (WindowKind::Sliding, Some(s)) => {
            let sl = s.get_ref().ms;
            if sl <= 0 {
                c.at(s, "slide must be positive", None);
            } else if sl > size {
                c.at(
                    s,
                    format!(
                        "slide {} is larger than the window size {}",
                        s.get_ref(),
                        w.size.get_ref()
                    ),
                    Some("readings between windows would be skipped; make slide <= size"),
                );
            }
            sl
        }
    };
    let window = WindowSpec::new(size.max(1), slide.clamp(1, size.max(1)));
    // Each reading is copied into every window that holds it: bound that, or one accepted
    // setting (a day sliding by 1 ms) turns every reading into 86 million copies.
    if size > 0 && slide > 0 && size / slide > MAX_WINDOWS_PER_READING {
        let at = w.slide.as_ref().map_or(w.size.span(), |s| s.span());
        c.errs.push(loc.span(
            at,
            format!(
                "a {} window sliding by {} puts each reading into {} windows; at most {MAX_WINDOWS_PER_READING} are allowed",
                w.size.get_ref(),
                w.slide.as_ref().map_or_else(String::new, |s| s.get_ref().to_string()),
                size / slide
            ),
            Some(format!(
                "make slide at least {} (size / {MAX_WINDOWS_PER_READING})",
                crate::config::Duration::from_ms((size + MAX_WINDOWS_PER_READING - 1) / MAX_WINDOWS_PER_READING)
            )),
        ));
    }

    // [features]
    let mut fs = FeatureSet::default();
    let mut seen = HashSet::new();
    for name in config.features.compute.get_ref() {
        match features::scalar(name.get_ref()) {
            Some(f) if seen.insert(features::column_name(name.get_ref())) => {
                fs.push(name.get_ref(), f)
            }
            Some(_) => c.at(
                name,
                format!("feature {:?} is listed twice", name.get_ref()),
                None,
            ),
            None => {
                let known: Vec<&str> = features::SCALAR_FEATURES.iter().map(|(n, _)| *n).collect();
                c.at(
                    name,
                    format!("unknown feature {:?}", name.get_ref()),
                    Some(&format!(
                        "known features: {}; spectral bands go in [[features.band]]",
                        known.join(", ")
                    )),
                );
            }
        }
    }
    for band in &config.features.band {
        let name = band.name.get_ref();
        let ident = name
            .chars()
            .next()
            .is_some_and(|ch| ch.is_ascii_lowercase() || ch == '_')
            && name
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
        if !ident {
            c.at(
                &band.name,
                format!("band name {name:?} must be lower-case letters, digits and `_`"),
                None,
            );
        } else if !seen.insert(name.clone()) || features::scalar(name).is_some() {
            c.at(
                &band.name,
                format!("band name {name:?} is already used"),
                None,
            );
        }
        let hi = *band.high_hz.get_ref();
        if !(band.low_hz >= 0.0 && hi > band.low_hz && hi.is_finite()) {
            c.at(
                &band.high_hz,
                format!("band {name:?}: need 0 <= low-hz < high-hz"),
                None,
            );
        }
        fs.push(
            name,
            Feature::Band {
                low_hz: band.low_hz,
                high_hz: hi,
            },
        );
    }
    if fs.is_empty() {
        c.at(
            &config.features.compute,
            "no features are computed",
            Some("list at least one feature, e.g. compute = [\"mean\"]"),
        );
    }

    // [detect]
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
        let mut spec = DetectorSpec::new(*d.kind.get_ref(), idx);
        spec.learn = learn_of(&mut c, &config.detect, d);
        spec.alpha = alpha;
        spec.z_alert = d.z_alert;
        if let Some(n) = &d.name {
            spec.name = n.clone();
        }
        detector_options(
            &mut c,
            d,
            &mut spec,
            config
                .detect
                .asset_delimiter
                .as_ref()
                .map(|s| s.get_ref().as_str()),
        );
        if let (Some(a), crate::detect::Learn::Reference { .. }) = (&d.alpha, spec.learn)
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

    // [[rules]]
    let mut compiled = Vec::new();
    let mut names = HashSet::new();
    for r in &config.rules {
        if !names.insert(r.name.clone()) {
            c.at(
                &r.when,
                format!("rule name {:?} is used twice", r.name),
                None,
            );
        }
        let sensors = match r.sensors.as_deref().map(glob::Pattern::new).transpose() {
            Ok(p) => p,
            Err(e) => {
                c.at(
                    &r.when,
                    format!("rule {:?}: `sensors` is not a valid glob: {e}", r.name),
                    None,
                );
                None
            }
        };
        match Condition::parse(r.when.get_ref(), &fs) {
            Ok(condition) => compiled.push(CompiledRule {
                name: r.name.clone(),
                severity: r.severity,
                condition,
                sensors,
            }),
            Err(e) => {
                let start = r.when.span().start;
                let quote = if loc_text_starts_with_triple(loc, start) {
                    3
                } else {
                    1
                };
                let byte = r
                    .when
                    .get_ref()
                    .char_indices()
                    .nth(e.offset)
                    .map_or(r.when.get_ref().len(), |(b, _)| b);
                c.errs.push(loc.at(
                    start + quote + byte,
                    format!("rule {:?}: {}", r.name, e.message),
                    None,
                ));
            }
        }
    }

    // [fuse]
    let f = &config.fuse;
    let (open, close) = (*f.open.get_ref(), *f.close.get_ref());
    if !(0.0..=1.0).contains(&open) {
        c.at(&f.open, "fuse open must be in [0, 1]", None);
    }
    if !(0.0..=open).contains(&close) {
        c.at(
            &f.close,
            "fuse close must be in [0, open]",
            Some("close is the hysteresis level below which an open episode starts to resolve"),
        );
    }
    for (key, s) in [
        ("ai-weight", &f.ai_weight),
        ("rules-weight", &f.rules_weight),
    ] {
        let w = *s.get_ref();
        if !(w.is_finite() && w >= 0.0) {
            c.at(
                s,
                format!("fuse {key} {w} must be a finite number >= 0"),
                Some("a NaN or infinite weight makes every fused score NaN, and nothing can alert"),
            );
        }
    }
    if *f.ai_weight.get_ref() == 0.0 && *f.rules_weight.get_ref() == 0.0 {
        c.at(
            &f.ai_weight,
            "fuse ai-weight and rules-weight are both 0: every fused score would be 0",
            None,
        );
    }
    if f.min_windows == 0 || f.quiet_windows == 0 {
        c.top(
            "fuse min-windows and quiet-windows must be at least 1",
            None,
        );
    }

    // [[sink]]
    if config.sink.is_empty() {
        c.top(
            "the pipeline has no [[sink]]: a run would write nothing",
            Some("add e.g. [[sink]] name = \"alerts\", kind = \"parquet\", output = \"alerts\", path = \"out/alerts\""),
        );
    }
    let mut sink_names = HashSet::new();
    let mut sink_paths = HashSet::new();
    for s in &config.sink {
        let name = s.name.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            c.at(
                &s.name,
                format!("sink name {name:?} must be letters, digits, `-` and `_`"),
                Some("the name is a file name under --out DIR"),
            );
        } else if !sink_names.insert(name.clone()) {
            c.at(&s.name, format!("sink name {name:?} is used twice"), None);
        }
        let path = s.path.get_ref();
        if s.kind == SinkKind::Kafka {
            kafka_sink(&mut c, s, config.source.kafka.as_ref());
        } else if path.trim().is_empty() {
            c.at(
                &s.name,
                format!("sink {name:?} has no path"),
                Some("path = \"out/NAME\""),
            );
        } else if !sink_paths.insert(
            std::path::Path::new(path)
                .components()
                .collect::<std::path::PathBuf>(),
        ) {
            c.at(
                &s.path,
                format!("sink {name:?} writes to {path:?}, like another sink"),
                Some("each sink needs its own directory or file"),
            );
        }
        if s.output == OutputKind::Assets
            && !config
                .detect
                .detector
                .iter()
                .any(|d| *d.kind.get_ref() == DetectorKind::AssetMahalanobis)
        {
            c.at(
                &s.name,
                format!("sink {name:?} writes the assets output, but no detector scores assets"),
                Some("add an asset-mahalanobis detector (and [detect] asset-delimiter)"),
            );
        }
        if s.roll_rows == 0 {
            c.at(
                &s.name,
                format!("sink {name:?}: roll-rows must be at least 1"),
                None,
            );
        }
    }

    // [compute]
    let dev = config.compute.device.get_ref().as_str();
    if !known_device(dev) {
        c.at(
            &config.compute.device,
            format!("unknown device {dev:?}"),
            Some("use \"auto\", \"cpu\" or \"cuda:N\" (\"emu:N\" or \"auto-emu\" in test builds)"),
        );
    }
    if !(0.0..=1.0).contains(&config.compute.cross_check) {
        c.at(
            &config.compute.device,
            "compute cross-check must be a fraction in [0, 1]",
            None,
        );
    }
    if config.compute.max_batch_windows == 0 {
        c.top("compute max-batch-windows must be at least 1", None);
    }

    // [[test]]
    for t in &config.test {
        let mut date = |s: &Spanned<String>, what: &str| {
            if crate::timefmt::parse_timestamp(s.get_ref()).is_none() {
                c.at(
                    s,
                    format!(
                        "test {:?}: {what} {:?} is not a date and time",
                        t.name,
                        s.get_ref()
                    ),
                    Some("write `YYYY-MM-DD HH:MM:SS` (UTC), or RFC 3339 with an offset"),
                );
            }
        };
        for s in &t.series {
            date(&s.start, "series start");
        }
        for w in &t.expect_window {
            date(&w.start, "expected window start");
        }
        for a in &t.expect_alert {
            if let Some(e) = &a.window_end {
                date(e, "alert window-end");
            }
        }
        let mut bad = Vec::new();
        if t.input.is_none() && t.series.is_empty() {
            bad.push("needs `input` or at least one `series`".to_string());
        }
        for s in &t.series {
            if s.every.ms <= 0 || s.values.is_empty() {
                bad.push(format!(
                    "series of {:?} needs a positive `every` and some values",
                    s.sensor
                ));
            }
        }
        for w in &t.expect_window {
            for f in w.features.keys() {
                if fs.index_of(f).is_none() {
                    bad.push(format!("expects feature {f:?}, which is not computed"));
                }
            }
        }
        for a in &t.expect_alert {
            if !matches!(a.state.as_str(), "open" | "update" | "resolved") {
                bad.push(format!(
                    "alert state {:?} is not open, update or resolved",
                    a.state
                ));
            }
        }
        for b in bad {
            c.top(format!("test {:?}: {b}", t.name), None);
        }
    }

    if !c.errs.is_empty() {
        c.errs.sort_by_key(|d| (d.line, d.column));
        return Err(c.errs);
    }
    let device = Device::parse(config.compute.device.get_ref()).unwrap_or(Device::Auto);
    let watermark_delay = config.source.max_out_of_orderness.ms + config.window.allowed_lateness.ms;
    Ok(Plan {
        file: loc.file.to_path_buf(),
        text: std::sync::Arc::from(loc.text),
        device,
        watermark_delay,
        config,
        features: fs,
        rules: compiled,
        window,
        detectors,
        classes: Classes::new(rules),
        zone,
        time_range,
    })
}

/// A detector's learn policy: its own `learn`, else `[detect] learn` for the kinds that keep
/// a baseline (others always learn: they have nothing a policy could govern).
fn learn_of(c: &mut Checker, detect: &DetectConfig, d: &DetectorConfig) -> crate::detect::Learn {
    use crate::detect::Learn;
    let kind = *d.kind.get_ref();
    let policy = match &d.learn {
        Some(l) if !DetectorSpec::learns(kind) => {
            c.at(
                l,
                format!("`learn` does not apply to a {} detector", kind.as_str()),
                Some("it is an option of: ewma-z, level-z, seasonal-z, cusum, mahalanobis, asset-mahalanobis"),
            );
            return Learn::Always;
        }
        Some(l) => *l.get_ref(),
        None if DetectorSpec::learns(kind) => detect.learn,
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

fn loc_text_starts_with_triple(loc: &Locator, at: usize) -> bool {
    let t = &loc.text[at.min(loc.text.len())..];
    t.starts_with("\"\"\"") || t.starts_with("'''")
}
