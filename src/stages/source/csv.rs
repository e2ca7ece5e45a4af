//! CSV input: a header line, then one reading per line. Read a batch of lines at a time (never
//! the whole file) into Arrow arrays that the `Decoder` cleans like any other input. A field
//! that cannot be parsed becomes null, so the row goes to rejects ("... is null or unreadable")
//! and the rest of the file goes on. One file is one partition.

use super::{Partition, SourceError};
use crate::config::{ColumnMapping, CsvOptions, CsvTime};
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

/// A CSV file being read.
pub struct CsvPartition {
    name: String,
    lines: std::io::Lines<BufReader<File>>,
    /// Column positions of sensor (None: from the file name), time, value, quality.
    sensor: Option<usize>,
    time: usize,
    value: usize,
    quality: Option<usize>,
    file_sensor: String,
    iso: bool,
    zone: crate::timefmt::Zone,
    batch_rows: usize,
    rows: u64,
    schema: Arc<Schema>,
}

fn split(line: &str) -> Vec<&str> {
    line.split(',')
        .map(|f| f.trim().trim_matches('"'))
        .collect()
}

impl CsvPartition {
    /// Opens `path` and finds the mapped columns in its header.
    pub fn open(
        path: &Path,
        columns: &ColumnMapping,
        csv: &CsvOptions,
        zone: &crate::timefmt::Zone,
        batch_rows: usize,
    ) -> Result<Self, SourceError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| SourceError::Open {
            file: name.clone(),
            message: e.to_string(),
        })?;
        let mut lines = BufReader::new(file).lines();
        let header = match lines.next() {
            Some(Ok(h)) => h,
            Some(Err(e)) => {
                return Err(SourceError::Open {
                    file: name,
                    message: format!("cannot read the header line: {e}"),
                });
            }
            None => {
                return Err(SourceError::Open {
                    file: name,
                    message: "empty file: a CSV input needs a header line".into(),
                });
            }
        };
        let header: Vec<String> = split(header.trim_start_matches('\u{feff}'))
            .into_iter()
            .map(str::to_string)
            .collect();
        let find = |col: &str, role: &str| {
            header
                .iter()
                .position(|h| h == col)
                .ok_or_else(|| SourceError::Column {
                    file: name.clone(),
                    column: col.to_string(),
                    message: format!(
                        "the {role} column is missing; the header has: {}",
                        header.join(", ")
                    ),
                })
        };
        let sensor = if csv.sensor_from_file_name {
            None
        } else {
            Some(find(&columns.sensor, "sensor")?)
        };
        let time = find(&columns.time, "time")?;
        let value = find(&columns.value, "value")?;
        let quality = columns
            .quality
            .as_deref()
            .map(|q| find(q, "quality"))
            .transpose()?;
        let iso = csv.time_format == CsvTime::Iso;
        let time_type = if iso {
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        } else {
            DataType::Int64
        };
        let mut fields = vec![
            Field::new("sensor", DataType::Utf8, true),
            Field::new("time", time_type, true),
            Field::new("value", DataType::Float64, true),
        ];
        if quality.is_some() {
            fields.push(Field::new("quality", DataType::Boolean, true));
        }
        let file_sensor = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        Ok(Self {
            name,
            lines,
            sensor,
            time,
            value,
            quality,
            file_sensor,
            iso,
            zone: zone.clone(),
            batch_rows: batch_rows.max(1),
            rows: 0,
            schema: Arc::new(Schema::new(fields)),
        })
    }
}

impl Partition for CsvPartition {
    fn name(&self) -> &str {
        &self.name
    }
    fn min_time(&self) -> Option<i64> {
        None
    }
    fn next_batch(&mut self) -> Option<Result<(u64, RecordBatch), SourceError>> {
        let first = self.rows;
        let (mut sensors, mut times, mut values, mut quality) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        while sensors.len() < self.batch_rows {
            let line = match self.lines.next() {
                None => break, // end of file: hand out what this batch has
                Some(Ok(l)) => l,
                Some(Err(e)) => {
                    return Some(Err(SourceError::Read {
                        file: self.name.clone(),
                        row: self.rows,
                        message: e.to_string(),
                    }));
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            self.rows += 1;
            let f = split(&line);
            let get = |i: usize| f.get(i).copied().filter(|s| !s.is_empty());
            sensors.push(match self.sensor {
                None => Some(self.file_sensor.clone()),
                Some(i) => get(i).map(str::to_string),
            });
            times.push(get(self.time).and_then(|t| {
                if self.iso {
                    self.zone.parse_text(t)
                } else {
                    t.parse::<i64>().ok()
                }
            }));
            values.push(get(self.value).and_then(|v| v.parse::<f64>().ok()));
            if let Some(q) = self.quality {
                // true/false, or an integer with 0 = good (as for Parquet quality columns).
                quality.push(get(q).map(|q| match q.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    other => other.parse::<i64>().is_ok_and(|n| n == 0),
                }));
            }
            if sensors.len() >= self.batch_rows {
                break;
            }
        }
        if sensors.is_empty() {
            return None;
        }
        let time: ArrayRef = if self.iso {
            Arc::new(TimestampMillisecondArray::from(times).with_timezone("UTC"))
        } else {
            Arc::new(Int64Array::from(times))
        };
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(sensors)),
            time,
            Arc::new(Float64Array::from(values)),
        ];
        if self.quality.is_some() {
            cols.push(Arc::new(BooleanArray::from(quality)));
        }
        Some(
            RecordBatch::try_new(self.schema.clone(), cols)
                .map(|b| (first, b))
                .map_err(|e| SourceError::Read {
                    file: self.name.clone(),
                    row: first,
                    message: e.to_string(),
                }),
        )
    }
}
