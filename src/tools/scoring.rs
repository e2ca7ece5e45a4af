//! Row-by-row scoring (`hyflow score`, `hyflow eval`): one scored row per input row, the NAB
//! results layout (with `sensor_id`, and `asset` when the pipeline scores assets, for input
//! that holds several sensors). A row's score is the fused score of the first window that ends after the
//! row: what the streaming pipeline knew once that window closed. With a window no longer than
//! the input's sampling interval, that window holds no later row.

use super::{Needed, Result, ToolError, invalid};
use crate::config::{self, OutputKind, SinkConfig};
use crate::dataflow::{self, RunOptions};
use crate::plan::FileKind;
use crate::plan::Plan;
use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

/// One input row with its score.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredRow {
    /// The row's timestamp as written in the input (CSV), or as RFC 3339 (Parquet).
    pub timestamp: String,
    /// Its sensor, when the input has a sensor column (None: one series per file).
    pub sensor: Option<String>,
    /// Its event time in ms, when readable.
    pub time: Option<i64>,
    /// The value as written (CSV) or formatted (Parquet).
    pub value: String,
    /// The anomaly score in [0, 1].
    pub score: f64,
}

/// Scores every row of one input file through `pipeline`; returns the rows in input order and
/// the number of windows computed.
pub fn score_file(pipeline: &Plan, input: &Path, workers: usize) -> Result<(Vec<ScoredRow>, u64)> {
    let tmp = scratch_dir("score");
    let windows_dir = tmp.join("windows");
    let p = pipeline.with_config(|c| {
        c.set_input(&input.display().to_string());
        c.sink = vec![SinkConfig::internal_parquet(
            "windows",
            OutputKind::Windows,
            &windows_dir,
        )]
    })?;
    let p = Arc::new(p);
    let opts = RunOptions {
        workers,
        cluster: None,
        until_end: false,
        metrics: None,
        ..Default::default()
    };
    let summary = dataflow::run(p.clone(), &opts)?;
    if summary.files_in != 1 {
        invalid!(
            "score takes one input file; {} matched {}",
            summary.files_in,
            input.display()
        );
    }
    // (sensor, window end) -> fused score
    let mut scores: HashMap<(String, i64), f64> = HashMap::new();
    for b in crate::tools::inspect::read(&windows_dir)? {
        let sensor = b
            .column_by_name("sensor_id")
            .needed("column sensor_id")?
            .as_string::<i32>()
            .clone();
        let end = b
            .column_by_name("window_end")
            .and_then(|c| crate::tools::inspect::millis(c.as_ref()))
            .needed("column window_end")?;
        let fused = b
            .column_by_name("fused")
            .needed("column fused")?
            .as_primitive::<Float64Type>()
            .clone();
        for i in 0..b.num_rows() {
            scores.insert((sensor.value(i).to_string(), end[i]), fused.value(i));
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let spec = p.window;
    let score_of = |sensor: &str, t: Option<i64>| {
        t.and_then(|t| {
            scores
                .get(&(sensor.to_string(), spec.first_start(t) + spec.size))
                .copied()
        })
        .unwrap_or(0.0)
    };
    let src = &p.source;
    let mut rows = Vec::new();
    let kind = match &src.feed {
        crate::plan::Feed::Files { kind, .. } => *kind,
        crate::plan::Feed::Kafka(_) => invalid!("score reads a file, not Kafka"),
    };
    match kind {
        FileKind::Csv => {
            // Echo the input's own timestamp and value text, row for row.
            let file = std::io::BufReader::new(std::fs::File::open(input)?);
            let mut lines = file.lines();
            let header = lines.next().needed("header line (the input is empty)")??;
            let cols: Vec<String> = header
                .trim_start_matches('\u{feff}')
                .split(',')
                .map(|c| c.trim().trim_matches('"').to_string())
                .collect();
            let find = |c: &str| {
                cols.iter()
                    .position(|h| h == c)
                    .needed(format_args!("column {c:?} in the header"))
            };
            let (ti, vi) = (find(&src.columns.time)?, find(&src.columns.value)?);
            let si = if src.csv.sensor_from_file_name {
                None
            } else {
                Some(find(&src.columns.sensor)?)
            };
            let stem = input
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            for line in lines {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                let f: Vec<&str> = line
                    .split(',')
                    .map(|x| x.trim().trim_matches('"'))
                    .collect();
                let ts = f.get(ti).copied().unwrap_or("");
                let t = match src.csv.time_format {
                    config::CsvTime::Iso => p.zone.parse_text(ts),
                    config::CsvTime::Unix => ts.parse::<i64>().ok(),
                };
                let column = si.map(|i| f.get(i).copied().unwrap_or(""));
                let sensor = column.unwrap_or(&stem);
                rows.push(ScoredRow {
                    timestamp: ts.to_string(),
                    sensor: column.map(str::to_string),
                    time: t,
                    value: f.get(vi).copied().unwrap_or("").to_string(),
                    score: score_of(sensor, t),
                });
            }
        }
        FileKind::Parquet => {
            use crate::stages::source::{arrow_cast_f64, sensor_strings, time_ms};
            for b in crate::tools::inspect::read(input)? {
                let col = |n: &str| b.column_by_name(n).needed(format_args!("column {n:?}"));
                let sensors = sensor_strings(col(&src.columns.sensor)?);
                let times = time_ms(col(&src.columns.time)?, src.time_unit, &p.zone);
                let values = arrow_cast_f64(col(&src.columns.value)?);
                for i in 0..b.num_rows() {
                    rows.push(ScoredRow {
                        timestamp: times[i]
                            .map(crate::timefmt::format_rfc3339)
                            .unwrap_or_default(),
                        sensor: Some(sensors[i].clone().unwrap_or_default()),
                        time: times[i],
                        value: values[i].map(|v| v.to_string()).unwrap_or_default(),
                        score: score_of(sensors[i].as_deref().unwrap_or(""), times[i]),
                    });
                }
            }
        }
    }
    Ok((rows, summary.windows))
}

/// A fresh scratch directory under the system temp dir, unique within this process.
pub fn scratch_dir(what: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("hyflow-{what}-{}-{n}", std::process::id()))
}

/// How [`write_csv`] writes the `timestamp` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timestamps {
    /// RFC 3339 in UTC (`2014-04-01T00:05:00Z`), from the row's event time as the pipeline read
    /// it (its `time-zone` applied); a row whose time is unreadable keeps the input's text.
    Rfc3339,
    /// The input's own text, unchanged (NAB's results layout, which its scorer compares with the
    /// data file's stamps); Parquet input has no text and is written as RFC 3339.
    Input,
}

impl ScoredRow {
    /// The `timestamp` column's text as `how` says.
    pub fn timestamp_text(&self, how: Timestamps) -> std::borrow::Cow<'_, str> {
        match (how, self.time) {
            (Timestamps::Rfc3339, Some(t)) => crate::timefmt::format_rfc3339(t).into(),
            _ => self.timestamp.as_str().into(),
        }
    }
}

/// Writes rows as `timestamp,value,anomaly_score`; rows with a sensor as
/// `timestamp,sensor_id[,asset],value,anomaly_score` (`asset` with an `asset_delimiter`).
pub fn write_csv(
    path: &Path,
    rows: &[ScoredRow],
    asset_delimiter: Option<&str>,
    timestamps: Timestamps,
) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path)
            .map_err(|e| ToolError::Invalid(format!("creating {}: {e}", path.display())))?,
    );
    let with_sensor = rows.iter().any(|r| r.sensor.is_some());
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    match (with_sensor, asset_delimiter) {
        (false, _) => writeln!(out, "timestamp,value,anomaly_score")?,
        (true, None) => writeln!(out, "timestamp,sensor_id,value,anomaly_score")?,
        (true, Some(_)) => writeln!(out, "timestamp,sensor_id,asset,value,anomaly_score")?,
    }
    for r in rows {
        let sensor = r.sensor.as_deref().unwrap_or("");
        let ts = r.timestamp_text(timestamps);
        match (with_sensor, asset_delimiter) {
            (false, _) => writeln!(out, "{},{},{}", quote(&ts), r.value, r.score)?,
            (true, None) => writeln!(
                out,
                "{},{},{},{}",
                quote(&ts),
                quote(sensor),
                r.value,
                r.score
            )?,
            (true, Some(d)) => writeln!(
                out,
                "{},{},{},{},{}",
                quote(&ts),
                quote(sensor),
                quote(crate::stages::detect::asset::asset_of(sensor, d)),
                r.value,
                r.score
            )?,
        }
    }
    out.flush()?;
    Ok(())
}
