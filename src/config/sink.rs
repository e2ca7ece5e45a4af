//! The schema of `[[sink]]` blocks: outputs, their formats and files.

use super::duration::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// Sink kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SinkKind {
    /// Parquet files in a directory, rolled and optionally partitioned.
    Parquet,
    /// One Arrow IPC file (or stream) for tools that read Arrow directly.
    ArrowIpc,
    /// A Kafka topic: alerts as versioned JSON keyed by sensor (docs/alerts.md), or rejects
    /// and late rows as JSON records (a dead-letter feed of refused readings).
    Kafka,
}

/// Which output a sink writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OutputKind {
    /// One row per (sensor, window): features and scores.
    Windows,
    /// Alert lifecycle events: open, update, resolved.
    Alerts,
    /// Readings (or files) rejected by cleaning, with the reason.
    Rejects,
    /// Readings that came after their windows were computed.
    Late,
    /// One row per (asset, window start) scored by an `asset-mahalanobis` detector: its
    /// score and the sensors that contribute most.
    Assets,
    /// Incident events: sets of sensors with open alert episodes that are connected through
    /// the registry's topology (open, update, merged-into, resolved).
    Incidents,
}

/// Compression of Parquet sinks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    /// zstd (level 3).
    #[default]
    Zstd,
    /// Snappy.
    Snappy,
    /// None.
    None,
}

/// Directory partitioning of Parquet sinks, by the event time of each row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Partitioning {
    /// All files in the sink's directory.
    #[default]
    None,
    /// `date=YYYY-MM-DD/` directories.
    Date,
    /// `date=YYYY-MM-DD/hour=HH/` directories.
    Hour,
}

/// Arrow IPC flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum IpcFormat {
    /// The random-access file format (`.arrow`).
    #[default]
    File,
    /// The streaming format (`.arrows`).
    Stream,
}

/// An output.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SinkConfig {
    /// Name of the sink (letters, digits, `-`, `_`); with `--out DIR` it is written to
    /// `DIR/<name>`.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// `parquet`, `arrow-ipc` or `kafka`.
    pub kind: SinkKind,
    /// `windows`, `alerts`, `rejects` or `late`.
    pub output: OutputKind,
    /// Directory (parquet) or file (arrow-ipc), relative to the current directory.
    #[serde(default = "super::schema::empty")]
    #[schemars(with = "String")]
    pub path: Spanned<String>,
    /// Topic and producer settings (kind = "kafka").
    #[serde(default)]
    pub kafka: Option<super::kafka::KafkaSink>,
    /// Parquet compression.
    #[serde(default)]
    pub compression: Compression,
    /// Parquet directory partitioning by event time.
    #[serde(default)]
    pub partition: Partitioning,
    /// Start a new Parquet file after this many rows.
    #[serde(default = "default_roll_rows")]
    pub roll_rows: usize,
    /// Start a new Parquet file when a file's rows span more event time than this.
    #[serde(default)]
    pub roll_interval: Option<Duration>,
    /// Arrow IPC flavour (arrow-ipc sinks only).
    #[serde(default)]
    pub format: IpcFormat,
    /// Type of the time columns (`window_start`, `window_end`, `time`, ...) in Parquet and
    /// Arrow IPC files: `timestamp` (ms, UTC: what pyarrow, polars and DuckDB read as times)
    /// or `int64` (ms since the epoch, the files' schema version 1). Kafka messages always
    /// carry ms since the epoch.
    #[serde(default)]
    pub times: TimeColumns,
}

/// Type of the time columns of a file sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TimeColumns {
    /// `timestamp[ms, UTC]`.
    #[default]
    Timestamp,
    /// `int64`, ms since the epoch.
    Int64,
}

impl SinkConfig {
    /// A Parquet sink of `output` at `path` (one file, snappy, no partitioning): what the
    /// commands that run a pipeline for their own purposes (score, eval, test) write to.
    pub fn internal_parquet(name: &str, output: OutputKind, path: &std::path::Path) -> Self {
        Self {
            name: Spanned::new(0..0, name.into()),
            kind: SinkKind::Parquet,
            output,
            path: Spanned::new(0..0, path.display().to_string()),
            compression: Compression::Snappy,
            partition: Partitioning::None,
            roll_rows: usize::MAX,
            roll_interval: None,
            format: IpcFormat::File,
            kafka: None,
            times: TimeColumns::Timestamp,
        }
    }
}

fn default_roll_rows() -> usize {
    1_000_000
}
