//! Parquet input: one partition per file, streamed row group by row group (never the whole
//! file), with only the mapped columns decoded. The sensor column is read as an Arrow
//! dictionary so each distinct id is interned once per batch, not once per row.

use super::{Partition, SourceError};
use crate::config::{ColumnMapping, TimeUnit};
use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::file::statistics::Statistics;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A Parquet file being read.
pub struct ParquetPartition {
    path: PathBuf,
    name: String,
    reader: ParquetRecordBatchReader,
    rows: u64,
    min_time: Option<i64>,
}

fn open_err(path: &Path, msg: impl Into<String>) -> SourceError {
    SourceError::Open {
        file: path.display().to_string(),
        message: msg.into(),
    }
}

impl ParquetPartition {
    /// Opens `path`, checks that the mapped columns exist with usable types, and prepares a
    /// reader of `batch_rows` rows per batch.
    pub fn open(
        path: &Path,
        columns: &ColumnMapping,
        unit: TimeUnit,
        batch_rows: usize,
    ) -> Result<Self, SourceError> {
        let file = File::open(path).map_err(|e| open_err(path, e.to_string()))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(
            file.try_clone()
                .map_err(|e| open_err(path, e.to_string()))?,
        )
        .map_err(|e| open_err(path, format!("not a readable Parquet file: {e}")))?;
        let file_schema = builder.schema().clone();
        let name = path.display().to_string();
        let mut wanted = vec![
            (&columns.sensor, "sensor"),
            (&columns.time, "time"),
            (&columns.value, "value"),
        ];
        if let Some(q) = &columns.quality {
            wanted.push((q, "quality"));
        }
        let mut indices = Vec::new();
        let mut fields = Vec::new();
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
            indices.push(idx);
            fields.push(field.clone());
        }
        // Read string sensor ids as a dictionary (interned once per distinct id per batch).
        let hinted: Vec<Field> = file_schema
            .fields()
            .iter()
            .map(|f| {
                if f.name() == &columns.sensor
                    && matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8)
                {
                    Field::new(
                        f.name(),
                        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                        f.is_nullable(),
                    )
                } else {
                    f.as_ref().clone()
                }
            })
            .collect();
        let options = ArrowReaderOptions::new().with_schema(Arc::new(Schema::new(hinted)));
        let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
            .map_err(|e| {
                open_err(
                    path,
                    format!("cannot read the sensor column as a dictionary: {e}"),
                )
            })?;
        let meta = builder.metadata().clone();
        let time_leaf = builder
            .parquet_schema()
            .columns()
            .iter()
            .position(|c| c.path().parts() == [columns.time.as_str()]);
        let min_time = time_leaf.and_then(|leaf| min_time(&meta, leaf, &fields[1], unit));
        let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(batch_rows.max(1))
            .build()
            .map_err(|e| open_err(path, e.to_string()))?;
        Ok(Self {
            path: path.to_path_buf(),
            name,
            reader,
            rows: 0,
            min_time,
        })
    }

    /// Total rows in a Parquet file, from its footer.
    pub fn count_rows(path: &Path) -> Result<u64, SourceError> {
        let file = File::open(path).map_err(|e| open_err(path, e.to_string()))?;
        let b = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| open_err(path, format!("not a readable Parquet file: {e}")))?;
        Ok(b.metadata().file_metadata().num_rows().max(0) as u64)
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

/// Smallest event time in the file (ms), from row-group statistics, when every row group has them.
fn min_time(
    meta: &parquet::file::metadata::ParquetMetaData,
    leaf: usize,
    field: &Field,
    unit: TimeUnit,
) -> Option<i64> {
    let mut min = i64::MAX;
    for rg in meta.row_groups() {
        let raw = match rg.column(leaf).statistics()? {
            Statistics::Int64(s) => *s.min_opt()?,
            Statistics::Int32(s) => i64::from(*s.min_opt()?),
            _ => return None,
        };
        min = min.min(raw);
    }
    if min == i64::MAX {
        return None;
    }
    let unit = match field.data_type() {
        DataType::Timestamp(u, _) => super::unit_of(*u),
        _ => unit,
    };
    Some(super::to_ms(min, unit))
}

impl Partition for ParquetPartition {
    fn name(&self) -> &str {
        &self.name
    }
    fn min_time(&self) -> Option<i64> {
        self.min_time
    }
    fn next_batch(&mut self) -> Option<Result<(u64, RecordBatch), SourceError>> {
        let first = self.rows;
        match self.reader.next()? {
            Ok(b) => {
                self.rows += b.num_rows() as u64;
                Some(Ok((first, b)))
            }
            Err(e) => Some(Err(SourceError::Read {
                file: self.path.display().to_string(),
                row: first,
                message: e.to_string(),
            })),
        }
    }
}
