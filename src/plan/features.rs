//! `[features]`: the features a window computes, in row order.

use super::validate::Checker;
use crate::config::schema::*;
use crate::stages::features::{self, Feature, FeatureSet};
use std::collections::HashSet;

/// Whether `name` is a column of the windows output besides the features (its fixed columns
/// and any per-detector score column): a band may not take it.
fn is_window_column(name: &str) -> bool {
    use crate::stages::sink::arrow;
    name.starts_with(arrow::DETECTOR_COLUMN_PREFIX)
        || arrow::windows_schema(&FeatureSet::default(), &[])
            .fields()
            .iter()
            .any(|f| f.name() == name)
}

/// `[features]`; returns the feature set.
pub(super) fn features(c: &mut Checker, cfg: &FeaturesConfig) -> FeatureSet {
    let mut fs = FeatureSet::default();
    let mut seen = HashSet::new();
    for name in cfg.compute.get_ref() {
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
    for band in &cfg.band {
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
        } else if is_window_column(name) {
            c.at(
                &band.name,
                format!("band name {name:?} is a column of the windows output"),
                Some("the windows output has sensor_id, window_start, window_end, filled, score, ai_score, rule_score, fused, alert, rules, rebaselined and a score_<detector> column per detector; choose another name"),
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
            &cfg.compute,
            "no features are computed",
            Some("list at least one feature, e.g. compute = [\"mean\"]"),
        );
    }
    fs
}
