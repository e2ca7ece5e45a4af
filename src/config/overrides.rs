//! Overrides of a parsed pipeline that the command line and tests make before it is
//! validated (`plan::load_with`, `Plan::with_config`): the edited file is checked as a whole.

use super::schema::*;
use std::collections::HashSet;
use std::path::PathBuf;
use toml::Spanned;

impl PipelineConfig {
    /// Sets `[compute] device` (the `--device` option of `replay` and `bench`); validation
    /// checks it as it checks the file's.
    pub fn set_device(&mut self, device: &str) {
        self.compute.device = toml::Spanned::new(0..0, device.to_string());
    }

    /// Turns every Kafka sink into a Parquet sink beside the pipeline's other file sinks (in
    /// the directory that holds the first Parquet sink, else `out/<pipeline name>/`), named
    /// as the sink: what `hyflow replay` does unless it is asked to write to Kafka. Returns
    /// (sink name, new path) of each sink it changed.
    pub fn redirect_kafka_sinks(&mut self) -> Vec<(String, String)> {
        let sinks = &mut self.sink;
        let base = sinks
            .iter()
            .find(|s| s.kind == SinkKind::Parquet)
            .and_then(|s| {
                std::path::Path::new(s.path.get_ref())
                    .parent()
                    .map(std::path::Path::to_path_buf)
            })
            .unwrap_or_else(|| PathBuf::from("out").join(&self.name));
        let taken: HashSet<PathBuf> = sinks
            .iter()
            .filter(|s| s.kind != SinkKind::Kafka)
            .map(|s| PathBuf::from(s.path.get_ref()))
            .collect();
        let mut changed = Vec::new();
        for s in sinks.iter_mut().filter(|s| s.kind == SinkKind::Kafka) {
            let mut path = base.join(s.name.get_ref());
            if taken.contains(&path) {
                path = base.join(format!("{}-kafka", s.name.get_ref()));
            }
            let path = path.display().to_string();
            s.kind = SinkKind::Parquet;
            s.kafka = None;
            s.path = Spanned::new(0..0, path.clone());
            changed.push((s.name.get_ref().clone(), path));
        }
        changed
    }
}
