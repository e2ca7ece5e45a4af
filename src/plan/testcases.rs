//! `[[test]]`: the pipeline tests declared beside the pipeline.

use super::validate::Checker;
use crate::config::schema::*;
use crate::stages::features::FeatureSet;
use toml::Spanned;

/// `[[test]]`.
pub(super) fn tests(c: &mut Checker, config: &PipelineConfig, fs: &FeatureSet) {
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
}
