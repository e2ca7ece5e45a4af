//! Parquet input. A file is split into one input partition per row group (when every row group
//! has statistics for the time column; otherwise the whole file is one partition), so several
//! workers can decode one file. Each partition's watermark is seeded with the largest event
//! time of the row groups before it (from the statistics): exactly what a single reader would
//! have seen, so late decisions do not depend on how partitions are spread over workers.
//! Columns are found by name (never by position) and only the mapped ones are decoded, a batch
//! at a time, handed on as (sensor, time, value[, quality]) whatever their order in the file;
//! a string sensor column is read as an Arrow dictionary so each distinct id is interned once
//! per batch, not once per row.

use super::{Partition, SourceError};
use crate::config::{ColumnMapping, TimeUnit};
use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use parquet::file::statistics::Statistics;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn open_err(path: &Path, msg: impl Into<String>) -> SourceError {
    SourceError::Open {
        file: path.display().to_string(),
        message: msg.into(),
    }
}

/// An opened Parquet file: its footer, checked against the column mapping.
#[derive(Clone)]
pub struct ParquetFile {
    path: PathBuf,
    meta: ArrowReaderMetadata,
    projection: Vec<usize>,
    /// The decoded batch's columns come in file order; `order[k]` is where the k-th mapped
    /// column (sensor, time, value[, quality]) is in it.
    order: Vec<usize>,
    /// Per row group: (rows, smallest and largest event time in ms), when known.
    groups: Vec<(u64, Option<(i64, i64)>)>,
}

/// A contiguous run of row groups of one file, read as one partition.
pub struct ParquetPartition {
    file: Arc<ParquetFile>,
    name: String,
    row_groups: Vec<usize>,
    batch_rows: usize,
    reader: Option<ParquetRecordBatchReader>,
    failed: bool,
    rows: u64,
    min_time: Option<i64>,
    seed: Option<i64>,
}

impl ParquetFile {
    /// Opens `path` and checks that the mapped columns exist with usable types. Row-group
    /// time statistics outside `range` (the accepted event times) are ignored: the rows behind
    /// them are rejected, so they must not seed a watermark.
    pub fn open(
        path: &Path,
        columns: &ColumnMapping,
        unit: TimeUnit,
        zone: &crate::timefmt::Zone,
        range: (i64, i64),
    ) -> Result<Self, SourceError> {
        let file = File::open(path).map_err(|e| open_err(path, e.to_string()))?;
        let plain = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
            .map_err(|e| open_err(path, format!("not a readable Parquet file: {e}")))?;
        let file_schema = plain.schema().clone();
        let name = path.display().to_string();
        let mut wanted = vec![
            (&columns.sensor, "sensor"),
            (&columns.time, "time"),
            (&columns.value, "value"),
        ];
        if let Some(q) = &columns.quality {
            wanted.push((q, "quality"));
        }
        let mut projection = Vec::new();
        let mut time_field = None;
        for (col, role) in &wanted {
            let Some((idx, field)) = file_schema.column_with_name(col) else {
                let have: Vec<&str> = file_schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect();
                return Err(SourceError::Column {
                    file: name,
                    column: col.to_string(),
                    message: format!(
                        "the {role} column is missing; the file has: {}",
                        have.join(", ")
                    ),
                });
            };
            check_type(role, field.data_type()).map_err(|m| SourceError::Column {
                file: name.clone(),
                column: col.to_string(),
                message: m,
            })?;
            projection.push(idx);
            if *role == "time" {
                time_field = Some(field.clone());
            }
        }
        let mut sorted = projection.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let order = projection
            .iter()
            .map(|i| sorted.binary_search(i).unwrap_or_default())
            .collect();
        // Read string sensor ids as a dictionary.
        let hinted: Vec<Field> = file_schema
            .fields()
            .iter()
            .map(|f| {
                let value = match f.data_type() {
                    DataType::Utf8 => Some(DataType::Utf8),
                    DataType::LargeUtf8 => Some(DataType::LargeUtf8),
                    _ => None,
                };
                if f.name() == &columns.sensor
                    && let Some(value) = value
                {
                    Field::new(
                        f.name(),
                        DataType::Dictionary(Box::new(DataType::Int32), Box::new(value)),
                        f.is_nullable(),
                    )
                } else {
                    f.as_ref().clone()
                }
            })
            .collect();
        let meta = ArrowReaderMetadata::try_new(
            plain.metadata().clone(),
            ArrowReaderOptions::new().with_schema(Arc::new(Schema::new(hinted))),
        )
        .map_err(|e| {
            open_err(
                path,
                format!("cannot read the sensor column as a dictionary: {e}"),
            )
        })?;
        let pq = meta.metadata();
        let leaf = pq
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .position(|c| c.path().parts() == [columns.time.as_str()]);
        let (unit, naive) = match time_field.as_ref().map(|f| f.data_type()) {
            Some(DataType::Timestamp(u, tz)) => (super::unit_of(*u), tz.is_none()),
            _ => (unit, false),
        };
        let utc = |raw: i64| {
            let ms = super::to_ms(raw, unit);
            if naive {
                zone.local_to_utc(ms)
            } else {
                Some(ms)
            }
        };
        let groups = pq
            .row_groups()
            .iter()
            .map(|rg| {
                let stats = leaf
                    .and_then(|l| rg.column(l).statistics())
                    .and_then(|s| match s {
                        Statistics::Int64(s) => Some((*s.min_opt()?, *s.max_opt()?)),
                        Statistics::Int32(s) => {
                            Some((i64::from(*s.min_opt()?), i64::from(*s.max_opt()?)))
                        }
                        _ => None,
                    });
                let ms = stats
                    .and_then(|(lo, hi)| Some((utc(lo)?, utc(hi)?)))
                    .filter(|(lo, hi)| *lo >= range.0 && *hi < range.1);
                (rg.num_rows().max(0) as u64, ms)
            })
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            meta,
            projection,
            order,
            groups,
        })
    }

    /// Total rows, from the footer.
    pub fn rows(&self) -> u64 {
        self.groups.iter().map(|g| g.0).sum()
    }

    /// The file's input partitions, in file order: with `split`, one per row group when every
    /// row group has time statistics; else one for the whole file.
    pub fn partitions(self: &Arc<Self>, batch_rows: usize, split: bool) -> Vec<ParquetPartition> {
        let name = self.path.display().to_string();
        let part = |row_groups: Vec<usize>, rows: u64, min_time: Option<i64>, seed: Option<i64>| {
            ParquetPartition {
                file: self.clone(),
                name: name.clone(),
                row_groups,
                batch_rows: batch_rows.max(1),
                reader: None,
                failed: false,
                rows,
                min_time,
                seed,
            }
        };
        let complete = !self.groups.is_empty() && self.groups.iter().all(|g| g.1.is_some());
        // The whole file's smallest time: the same for every partition, so emission times
        // derived from it do not depend on the split.
        let min = self
            .groups
            .iter()
            .filter_map(|g| g.1)
            .map(|s| s.0)
            .min()
            .filter(|_| complete);
        if !complete || !split {
            return vec![part((0..self.groups.len()).collect(), 0, min, None)];
        }
        let mut out = Vec::new();
        let (mut first_row, mut seed) = (0u64, None::<i64>);
        for (i, (rows, stats)) in self.groups.iter().enumerate() {
            let hi = stats.map_or(i64::MIN, |s| s.1);
            out.push(part(vec![i], first_row, min, seed));
            first_row += rows;
            seed = Some(seed.map_or(hi, |s| s.max(hi)));
        }
        out
    }
}

fn check_type(role: &str, dt: &DataType) -> Result<(), String> {
    let ok = match role {
        "sensor" => {
            matches!(
                dt,
                DataType::Utf8
                    | DataType::LargeUtf8
                    | DataType::Utf8View
                    | DataType::Int32
                    | DataType::Int64
                    | DataType::UInt32
                    | DataType::UInt64
            ) || matches!(dt, DataType::Dictionary(_, v) if matches!(**v, DataType::Utf8 | DataType::LargeUtf8))
        }
        "time" => matches!(
            dt,
            DataType::Int64 | DataType::Int32 | DataType::Timestamp(_, _)
        ),
        "value" => {
            dt.is_numeric()
                && !matches!(
                    dt,
                    DataType::Decimal32(..)
                        | DataType::Decimal64(..)
                        | DataType::Decimal128(..)
                        | DataType::Decimal256(..)
                )
        }
        _ => matches!(dt, DataType::Boolean) || dt.is_integer(),
    };
    if ok {
        return Ok(());
    }
    let want = match role {
        "sensor" => "a string or integer",
        "time" => "an integer (in the source's time-unit) or a timestamp",
        "value" => "a number (integer or float)",
        _ => "a boolean (true = good) or an integer (0 = good)",
    };
    Err(format!("the {role} column has type {dt}; expected {want}"))
}

impl ParquetPartition {
    fn build(&self) -> Result<ParquetRecordBatchReader, SourceError> {
        let f = &self.file;
        let file = File::open(&f.path).map_err(|e| open_err(&f.path, e.to_string()))?;
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, f.meta.clone());
        let mask = ProjectionMask::roots(builder.parquet_schema(), f.projection.iter().copied());
        builder
            .with_row_groups(self.row_groups.clone())
            .with_projection(mask)
            .with_batch_size(self.batch_rows)
            .build()
            .map_err(|e| open_err(&f.path, e.to_string()))
    }
}

impl Partition for ParquetPartition {
    fn name(&self) -> &str {
        &self.name
    }
    fn min_time(&self) -> Option<i64> {
        self.min_time
    }
    fn watermark_seed(&self) -> Option<i64> {
        self.seed
    }
    fn next_batch(&mut self) -> Option<Result<(u64, RecordBatch), SourceError>> {
        if self.failed {
            return None;
        }
        if self.reader.is_none() {
            match self.build() {
                Ok(r) => self.reader = Some(r),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        let first = self.rows;
        match self
            .reader
            .as_mut()?
            .next()?
            .and_then(|b| b.project(&self.file.order))
        {
            Ok(b) => {
                self.rows += b.num_rows() as u64;
                Some(Ok((first, b)))
            }
            Err(e) => Some(Err(SourceError::Read {
                file: self.file.path.display().to_string(),
                row: first,
                message: e.to_string(),
            })),
        }
    }
}
