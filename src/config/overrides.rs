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

    /// Reads `pattern` (a file or a glob) instead of the source's path: `--input`. A Kafka
    /// source becomes a file source (a replay of what its topics held): CSV when the pattern
    /// ends in `.csv`, Parquet otherwise.
    pub fn set_input(&mut self, pattern: &str) {
        self.source.path = Spanned::new(0..0, pattern.to_string());
        if self.source.kind == SourceKind::Kafka {
            self.source.kind = if pattern.ends_with(".csv") {
                SourceKind::Csv
            } else {
                SourceKind::Parquet
            };
        }
    }

    /// Writes every file sink into `dir` instead of its path: sink NAME to `dir/NAME` (an
    /// Arrow IPC sink to `dir/NAME.arrow`, or `.arrows` for a stream): `--out`. Kafka sinks
    /// are left as they are.
    pub fn set_out_dir(&mut self, dir: &std::path::Path) {
        for s in &mut self.sink {
            let file = match (s.kind, s.format) {
                (SinkKind::Kafka, _) => continue,
                (SinkKind::Parquet, _) => s.name.get_ref().clone(),
                (SinkKind::ArrowIpc, IpcFormat::File) => format!("{}.arrow", s.name.get_ref()),
                (SinkKind::ArrowIpc, IpcFormat::Stream) => format!("{}.arrows", s.name.get_ref()),
            };
            s.path = Spanned::new(0..0, dir.join(file).display().to_string());
        }
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
