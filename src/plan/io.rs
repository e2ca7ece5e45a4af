//! Where a run reads and writes, resolved once: the [`SourcePlan`] (files or Kafka partitions,
//! how to read their columns) and one [`SinkPlan`] per `[[sink]]` (the directory, file or
//! topic, with a Kafka sink's brokers and properties merged from the source's). Command-line
//! overrides (`--input`, `--out`, `replay`'s redirected Kafka sinks) change the config before
//! validation, so what is here is what the run does.

use crate::config::schema::*;
use crate::config::{IpcFormat, KafkaSource};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The kind of an input file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// Apache Parquet.
    Parquet,
    /// CSV with a header line.
    Csv,
}

/// Where readings come from.
#[derive(Clone, Debug)]
pub enum Feed {
    /// Files matching a path or glob, read in time order (a replay).
    Files {
        /// The path or glob.
        pattern: String,
        /// How the files are read.
        kind: FileKind,
    },
    /// Kafka partitions, read live.
    Kafka(KafkaSource),
}

/// The source of a run.
#[derive(Clone, Debug)]
pub struct SourcePlan {
    /// Files or Kafka.
    pub feed: Feed,
    /// Which input columns (or JSON fields) hold sensor, time, value and quality.
    pub columns: ColumnMapping,
    /// The unit of numeric times.
    pub time_unit: TimeUnit,
    /// The time zone of naive timestamps, as written (`Plan::zone` is it parsed).
    pub time_zone: String,
    /// CSV dialect and time format.
    pub csv: CsvOptions,
    /// Rows per batch read.
    pub batch_rows: usize,
    /// One partition per Parquet row group instead of per file.
    pub split_row_groups: bool,
    /// A file that cannot be opened becomes a reject row instead of failing the run.
    pub skip_bad_files: bool,
    /// How far behind the largest time read a reading may arrive and still be on time
    /// (`max-out-of-orderness`; the watermark delay adds the allowed lateness).
    pub max_out_of_orderness: crate::config::Duration,
    /// Readings are routed to workers by asset (the sensor id up to the last delimiter)
    /// instead of by sensor (`[detect] asset-delimiter`).
    pub asset_delimiter: Option<String>,
}

/// Settings of a Parquet sink.
#[derive(Clone, Debug)]
pub struct ParquetTarget {
    /// The directory its part files go to.
    pub dir: PathBuf,
    /// Column compression.
    pub compression: Compression,
    /// Directory partitioning by event time.
    pub partition: Partitioning,
    /// A new file after this many rows (at least 1).
    pub roll_rows: usize,
    /// A new file when a file's rows span more event time than this (ms).
    pub roll_ms: Option<i64>,
}

/// Where a sink writes.
#[derive(Clone, Debug)]
pub enum SinkTarget {
    /// Rolling Parquet files in a directory.
    Parquet(ParquetTarget),
    /// One Arrow IPC file or stream.
    ArrowIpc {
        /// The file.
        path: PathBuf,
        /// File or stream format.
        format: IpcFormat,
    },
    /// A Kafka topic.
    Kafka {
        /// The topic.
        topic: String,
        /// Bootstrap brokers (the sink's, else the source's).
        brokers: String,
        /// librdkafka producer properties: the source's, then the sink's.
        properties: BTreeMap<String, String>,
    },
}

/// One `[[sink]]`.
#[derive(Clone, Debug)]
pub struct SinkPlan {
    /// Its name.
    pub name: String,
    /// The output it writes.
    pub output: OutputKind,
    /// Where.
    pub target: SinkTarget,
    /// Time columns as int64 instead of timestamps (`times = "int64"`; file sinks).
    pub int64_times: bool,
}

/// The source plan of a validated config.
pub(super) fn source(config: &PipelineConfig) -> SourcePlan {
    let s = &config.source;
    let feed = match (s.kind, &s.kafka) {
        (SourceKind::Kafka, Some(k)) => Feed::Kafka(k.clone()),
        (kind, _) => Feed::Files {
            pattern: s.path.get_ref().clone(),
            kind: if kind == SourceKind::Csv {
                FileKind::Csv
            } else {
                FileKind::Parquet
            },
        },
    };
    SourcePlan {
        feed,
        columns: s.columns.clone(),
        time_unit: s.time_unit,
        time_zone: s.time_zone.get_ref().clone(),
        csv: s.csv.clone(),
        batch_rows: s.batch_rows,
        split_row_groups: s.split_row_groups,
        skip_bad_files: s.on_bad_file == OnBadFile::Skip,
        max_out_of_orderness: s.max_out_of_orderness,
        asset_delimiter: config
            .detect
            .asset_delimiter
            .as_ref()
            .map(|d| d.get_ref().clone()),
    }
}

/// The sink plans of a validated config.
pub(super) fn sinks(config: &PipelineConfig) -> Vec<SinkPlan> {
    let src = config.source.kafka.as_ref();
    config
        .sink
        .iter()
        .map(|s| {
            let target = match s.kind {
                SinkKind::Parquet => SinkTarget::Parquet(ParquetTarget {
                    dir: PathBuf::from(s.path.get_ref()),
                    compression: s.compression,
                    partition: s.partition,
                    roll_rows: s.roll_rows.max(1),
                    roll_ms: s.roll_interval.map(|d| d.ms),
                }),
                SinkKind::ArrowIpc => SinkTarget::ArrowIpc {
                    path: PathBuf::from(s.path.get_ref()),
                    format: s.format,
                },
                SinkKind::Kafka => {
                    let k = s.kafka.as_ref();
                    let brokers = k
                        .and_then(|k| k.brokers.clone())
                        .or_else(|| src.map(|s| s.brokers.get_ref().clone()))
                        .unwrap_or_default();
                    let mut properties = src.map(|s| s.properties.clone()).unwrap_or_default();
                    if let Some(k) = k {
                        properties.extend(k.properties.clone());
                    }
                    SinkTarget::Kafka {
                        topic: k.map(|k| k.topic.get_ref().clone()).unwrap_or_default(),
                        brokers,
                        properties,
                    }
                }
            };
            SinkPlan {
                name: s.name.get_ref().clone(),
                output: s.output,
                target,
                int64_times: s.times == crate::config::sink::TimeColumns::Int64,
            }
        })
        .collect()
}

/// `[recovery]`, resolved (None without the section, or with `enabled = false`): its
/// directory defaults to `checkpoints` beside the first Parquet sink's directory (or in the
/// working directory without one).
pub(super) fn recovery(config: &PipelineConfig) -> Option<super::RecoveryPlan> {
    let r = config.recovery.as_ref().filter(|r| r.enabled)?;
    let dir = match &r.dir {
        Some(d) => PathBuf::from(d),
        None => config
            .sink
            .iter()
            .find(|s| s.kind == SinkKind::Parquet)
            .and_then(|s| {
                PathBuf::from(s.path.get_ref())
                    .parent()
                    .map(|p| p.join("checkpoints"))
            })
            .unwrap_or_else(|| PathBuf::from("checkpoints")),
    };
    Some(super::RecoveryPlan {
        dir,
        every_ms: r.checkpoint_interval.ms.max(1),
        keep: r.keep.max(1),
    })
}
