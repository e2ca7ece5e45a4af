//! `[source]` and `[clean]`: where readings come from, the time zone of naive times, sensor
//! classes, the accepted time range and gap filling.

use super::kafka::kafka_source;
use super::validate::Checker;
use crate::config::schema::*;
use crate::stages::clean::{ClassRule, Classes};
use crate::timefmt::Zone;
use toml::Spanned;

/// `[source]` (the Kafka settings in `kafka.rs`); returns the zone of naive timestamps.
pub(super) fn source(c: &mut Checker, config: &PipelineConfig) -> Zone {
    let src = &config.source;
    if src.kind == SourceKind::Kafka {
        kafka_source(c, src);
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
    zone
}

/// `[clean]`; returns the sensor classes and the accepted event-time range.
pub(super) fn clean(c: &mut Checker, config: &PipelineConfig) -> (Classes, (i64, i64)) {
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
    (Classes::new(rules), time_range)
}

/// `[clean.fill]` as the window stage takes it.
pub(super) fn fill(config: &PipelineConfig) -> crate::stages::window::Fill {
    use crate::stages::window::{Fill, FillMethod as M};
    let f = &config.clean.fill;
    Fill {
        method: match f.method {
            FillMethod::None => M::None,
            FillMethod::Hold => M::Hold,
            FillMethod::Linear => M::Linear,
        },
        interval_ms: f.interval.ms,
        max_gap_ms: f.max_gap.ms,
    }
}
