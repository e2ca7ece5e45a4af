//! Outputs: the [`Sink`] interface, Parquet and Arrow IPC sinks, and the [`SinkSet`] that
//! orders rows deterministically and hands each output's rows to its sinks.

pub mod arrow;
pub mod chunk;
pub mod durable;
pub mod ipc;
pub mod kafka;
pub mod parquet;

use crate::config::OutputKind;
use crate::output::OutRecord;
use crate::plan::Plan;
use crate::plan::SinkTarget;
use arrow_array::RecordBatch;
use arrow_schema::ArrowError;
use std::path::{Path, PathBuf};

/// A failed write.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A file system error.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A Parquet writer error.
    #[error("{path}: {source}")]
    Parquet {
        /// Where.
        path: PathBuf,
        /// Why.
        source: ::parquet::errors::ParquetError,
    },
    /// An Arrow error.
    #[error("{path}: {source}")]
    Arrow {
        /// Where.
        path: PathBuf,
        /// Why.
        source: ArrowError,
    },
    /// A Kafka producer error or undelivered messages.
    #[error("Kafka topic {topic}: {message}")]
    Kafka {
        /// The topic.
        topic: String,
        /// Why.
        message: String,
    },
}

impl SinkError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    pub(crate) fn arrow(path: &Path, source: ArrowError) -> Self {
        Self::Arrow {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A destination of record batches of one schema.
pub trait Sink: Send {
    /// Writes rows; `times[i]` is row i's event time (for partitioning and rolling).
    fn write(&mut self, batch: &RecordBatch, times: &[i64]) -> Result<(), SinkError>;
    /// Completes every file; returns the files written.
    fn finish(&mut self) -> Result<Vec<PathBuf>, SinkError>;
    /// Makes everything written so far durable (a Parquet file closed and renamed, Kafka
    /// messages acknowledged); false when this sink cannot before `finish`.
    fn make_durable(&mut self) -> Result<bool, SinkError> {
        Ok(false)
    }
    /// Gives up: removes temporary files, leaves completed ones.
    fn abort(&mut self);
    /// After [`Self::make_durable`]: the next part number and the files written so far (what a
    /// checkpoint keeps); None for sinks that cannot go back to it on resume.
    fn position(&self) -> Option<(u64, Vec<PathBuf>)> {
        None
    }
}

/// A file sink with `times = "int64"`: its batches' time columns as int64 (the same ms).
struct Int64Times {
    inner: Box<dyn Sink>,
    schema: arrow_schema::SchemaRef,
}

impl Sink for Int64Times {
    fn write(&mut self, batch: &RecordBatch, times: &[i64]) -> Result<(), SinkError> {
        let b = arrow::with_int64_times(batch, &self.schema)
            .map_err(|e| SinkError::arrow(&PathBuf::from("<memory>"), e))?;
        self.inner.write(&b, times)
    }
    fn finish(&mut self) -> Result<Vec<PathBuf>, SinkError> {
        self.inner.finish()
    }
    fn make_durable(&mut self) -> Result<bool, SinkError> {
        self.inner.make_durable()
    }
    fn position(&self) -> Option<(u64, Vec<PathBuf>)> {
        self.inner.position()
    }
    fn abort(&mut self) {
        self.inner.abort()
    }
}

/// All sinks of a pipeline, grouped by the output they write.
pub struct SinkSet {
    pipeline: String,
    features: crate::stages::features::FeatureSet,
    windows_schema: arrow_schema::SchemaRef,
    sinks: Vec<(OutputKind, String, Box<dyn Sink>)>,
}

/// The key-value metadata of every Parquet file of `output`: the hyflow version, the
/// pipeline's name and a hash of its file (FNV-1a, 64 bits, hex), the output and the version
/// of its schema.
pub fn file_metadata(
    pipeline: &Plan,
    output: OutputKind,
    int64_times: bool,
) -> Vec<(String, String)> {
    let version = if int64_times {
        1
    } else {
        arrow::FILE_SCHEMA_VERSION
    };
    let output = serde_json::to_value(output)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    vec![
        ("hyflow.version".into(), env!("CARGO_PKG_VERSION").into()),
        ("hyflow.pipeline".into(), pipeline.name.clone()),
        (
            "hyflow.pipeline_hash".into(),
            format!("fnv1a64:{:016x}", crate::batch::sensor_hash(&pipeline.text)),
        ),
        ("hyflow.output".into(), output),
        ("hyflow.schema_version".into(), version.to_string()),
    ]
}

impl SinkSet {
    /// Opens every sink of `pipeline` where its plan says. With `append` (live runs), Parquet
    /// sinks keep the files of earlier runs.
    pub fn open(pipeline: &Plan, append: bool) -> Result<Self, SinkError> {
        Self::open_at(pipeline, append, &[])
    }

    /// As [`Self::open`], going on from a checkpoint's sink positions: a Parquet sink keeps
    /// the parts numbered below its position and removes the rest (written after the cut).
    pub fn open_at(
        pipeline: &Plan,
        append: bool,
        at: &[crate::checkpoint::SinkPosition],
    ) -> Result<Self, SinkError> {
        let detectors: Vec<&str> = pipeline.detectors.iter().map(|d| d.name.as_str()).collect();
        let windows_schema = arrow::windows_schema(&pipeline.features, &detectors);
        let mut sinks: Vec<(OutputKind, String, Box<dyn Sink>)> = Vec::new();
        for plan in &pipeline.sinks {
            let schema = match plan.output {
                OutputKind::Windows => windows_schema.clone(),
                OutputKind::Alerts => arrow::alerts_schema(),
                OutputKind::Rejects => arrow::rejects_schema(),
                OutputKind::Late => arrow::late_schema(),
                OutputKind::Assets => arrow::assets_schema(),
                OutputKind::Incidents => arrow::incidents_schema(),
            };
            let file_schema = if plan.int64_times {
                arrow::int64_times(&schema)
            } else {
                schema.clone()
            };
            let sink: Box<dyn Sink> = match &plan.target {
                SinkTarget::Parquet(t) => {
                    let metadata = file_metadata(pipeline, plan.output, plan.int64_times);
                    let from = at.iter().find(|p| p.name == plan.name);
                    match from.and_then(|p| Some((p.next_part?, p.files.clone()))) {
                        Some((next, files)) => Box::new(parquet::ParquetSink::resume(
                            t,
                            file_schema.clone(),
                            metadata,
                            next,
                            files,
                        )?),
                        None => Box::new(parquet::ParquetSink::new(
                            t,
                            file_schema.clone(),
                            append,
                            metadata,
                        )?),
                    }
                }
                SinkTarget::ArrowIpc { path, format } => Box::new(ipc::IpcSink::new(
                    path.clone(),
                    file_schema.clone(),
                    *format,
                )?),
                SinkTarget::Kafka {
                    topic,
                    brokers,
                    properties,
                } => Box::new(kafka::KafkaSink::new(topic, brokers, properties)?),
            };
            let sink = if plan.int64_times && !matches!(plan.target, SinkTarget::Kafka { .. }) {
                Box::new(Int64Times {
                    inner: sink,
                    schema: file_schema,
                })
            } else {
                sink
            };
            sinks.push((plan.output, plan.name.clone(), sink));
        }
        Ok(Self {
            pipeline: pipeline.name.clone(),
            features: pipeline.features.clone(),
            windows_schema,
            sinks,
        })
    }

    fn wants(&self, kind: OutputKind) -> bool {
        self.sinks.iter().any(|(k, _, _)| *k == kind)
    }

    /// Writes records whose timely times are all complete. Rows are put in a canonical order
    /// first (by time, then sensor/source and content), so the output does not depend on the
    /// number of workers or on scheduling.
    pub fn write(&mut self, mut records: Vec<(i64, OutRecord)>) -> Result<(), SinkError> {
        records.sort_by(|(ta, a), (tb, b)| ta.cmp(tb).then_with(|| order(a, b)));
        let mut windows = Vec::new();
        let mut alerts = Vec::new();
        let mut rejects = Vec::new();
        let mut late = Vec::new();
        let mut assets = Vec::new();
        let mut incidents = Vec::new();
        for (t, r) in &records {
            match r {
                OutRecord::Window(w) => windows.push((*t, w)),
                OutRecord::Alert(a) => alerts.push((*t, a)),
                OutRecord::Reject(x) => rejects.push((*t, x)),
                OutRecord::Late(l) => late.push((*t, l)),
                OutRecord::Asset(a) => assets.push((*t, a)),
                OutRecord::Incident(i) => incidents.push((*t, i)),
                OutRecord::Failure(_) => {}
            }
        }
        let path = PathBuf::from("<memory>");
        if !windows.is_empty() && self.wants(OutputKind::Windows) {
            let rows: Vec<_> = windows.iter().map(|x| x.1).collect();
            let times: Vec<i64> = rows.iter().map(|r| r.start).collect();
            let b = arrow::windows_batch(&self.windows_schema, &self.features, &rows)
                .map_err(|e| SinkError::arrow(&path, e))?;
            self.emit(OutputKind::Windows, &b, &times)?;
        }
        if !alerts.is_empty() && self.wants(OutputKind::Alerts) {
            let rows: Vec<_> = alerts.iter().map(|x| x.1).collect();
            let times: Vec<i64> = rows.iter().map(|r| r.window_end).collect();
            let b = arrow::alerts_batch(&self.pipeline, &rows)
                .map_err(|e| SinkError::arrow(&path, e))?;
            self.emit(OutputKind::Alerts, &b, &times)?;
        }
        if !rejects.is_empty() && self.wants(OutputKind::Rejects) {
            let rows: Vec<_> = rejects.iter().map(|x| x.1).collect();
            let times: Vec<i64> = rejects
                .iter()
                .map(|(t, r)| r.time.unwrap_or((*t).max(0)))
                .collect();
            let b = arrow::rejects_batch(&rows).map_err(|e| SinkError::arrow(&path, e))?;
            self.emit(OutputKind::Rejects, &b, &times)?;
        }
        if !assets.is_empty() && self.wants(OutputKind::Assets) {
            let rows: Vec<_> = assets.iter().map(|x| x.1).collect();
            let times: Vec<i64> = rows.iter().map(|r| r.start).collect();
            let b = arrow::assets_batch(&rows).map_err(|e| SinkError::arrow(&path, e))?;
            self.emit(OutputKind::Assets, &b, &times)?;
        }
        if !incidents.is_empty() && self.wants(OutputKind::Incidents) {
            let rows: Vec<_> = incidents.iter().map(|x| x.1).collect();
            let times: Vec<i64> = rows.iter().map(|r| r.time).collect();
            let b = arrow::incidents_batch(&self.pipeline, &rows)
                .map_err(|e| SinkError::arrow(&path, e))?;
            self.emit(OutputKind::Incidents, &b, &times)?;
        }
        if !late.is_empty() && self.wants(OutputKind::Late) {
            let rows: Vec<_> = late.iter().map(|x| x.1).collect();
            let times: Vec<i64> = rows.iter().map(|r| r.time).collect();
            let b = arrow::late_batch(&rows).map_err(|e| SinkError::arrow(&path, e))?;
            self.emit(OutputKind::Late, &b, &times)?;
        }
        Ok(())
    }

    fn emit(
        &mut self,
        kind: OutputKind,
        batch: &RecordBatch,
        times: &[i64],
    ) -> Result<(), SinkError> {
        for (k, _, sink) in &mut self.sinks {
            if *k == kind {
                sink.write(batch, times)?;
            }
        }
        Ok(())
    }

    /// Makes everything written so far durable in every sink; false when a sink cannot
    /// (an Arrow IPC file is only complete at the end).
    pub fn make_durable(&mut self) -> Result<bool, SinkError> {
        let mut all = true;
        for (_, _, sink) in &mut self.sinks {
            all &= sink.make_durable()?;
        }
        Ok(all)
    }

    /// Every sink's durable position, after [`Self::make_durable`] (what a checkpoint keeps).
    pub fn positions(&self) -> Vec<crate::checkpoint::SinkPosition> {
        self.sinks
            .iter()
            .map(|(_, name, sink)| {
                let (next_part, files) = match sink.position() {
                    Some((n, f)) => (Some(n), f),
                    None => (None, Vec::new()),
                };
                crate::checkpoint::SinkPosition {
                    name: name.clone(),
                    next_part,
                    files,
                }
            })
            .collect()
    }

    /// Completes every sink; returns (sink name, files). When one fails, the sinks after it
    /// are aborted, so no temporary file is left behind.
    pub fn finish(&mut self) -> Result<Vec<(String, Vec<PathBuf>)>, SinkError> {
        let mut out = Vec::new();
        let mut failed = None;
        for (_, name, sink) in &mut self.sinks {
            if failed.is_some() {
                sink.abort();
                continue;
            }
            match sink.finish() {
                Ok(files) => out.push((name.clone(), files)),
                Err(e) => failed = Some(e),
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Removes temporary files of every sink.
    pub fn abort(&mut self) {
        for (_, _, sink) in &mut self.sinks {
            sink.abort();
        }
    }
}

/// Canonical order of records with the same timely time.
fn order(a: &OutRecord, b: &OutRecord) -> std::cmp::Ordering {
    use OutRecord::*;
    use std::cmp::Ordering::*;
    let rank = |r: &OutRecord| match r {
        Window(_) => 0,
        Alert(_) => 1,
        Reject(_) => 2,
        Late(_) => 3,
        Asset(_) => 4,
        Incident(_) => 5,
        Failure(_) => 6,
    };
    match (a, b) {
        (Window(x), Window(y)) => x.sensor.cmp(&y.sensor).then(x.start.cmp(&y.start)),
        (Alert(x), Alert(y)) => x
            .sensor
            .cmp(&y.sensor)
            .then(x.window_end.cmp(&y.window_end))
            .then(x.state.cmp(&y.state)),
        (Reject(x), Reject(y)) => x
            .source
            .cmp(&y.source)
            .then(x.row.cmp(&y.row))
            .then(x.sensor.cmp(&y.sensor))
            .then(x.time.cmp(&y.time))
            .then(x.value.map(f64::to_bits).cmp(&y.value.map(f64::to_bits)))
            .then(x.reason.cmp(&y.reason)),
        (Late(x), Late(y)) => x.source.cmp(&y.source).then(x.row.cmp(&y.row)),
        (Asset(x), Asset(y)) => x.asset.cmp(&y.asset).then(x.start.cmp(&y.start)),
        (Incident(x), Incident(y)) => x
            .incident
            .cmp(&y.incident)
            .then(x.state.cmp(&y.state))
            .then(x.members.cmp(&y.members)),
        _ => rank(a).cmp(&rank(b)).then(Equal),
    }
}
