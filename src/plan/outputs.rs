//! `[[sink]]` and `[compute]`.

use super::kafka::kafka_sink;
use super::known_device;
use super::validate::Checker;
use crate::config::detect::*;
use crate::config::schema::*;
use std::collections::HashSet;

/// `[[sink]]`.
pub(super) fn sinks(c: &mut Checker, config: &PipelineConfig) {
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
            kafka_sink(c, s, config.source.kafka.as_ref());
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
}

/// `[compute]`.
pub(super) fn compute(c: &mut Checker, config: &PipelineConfig) {
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
}
