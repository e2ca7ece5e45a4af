//! Sources: input partitions (Parquet files or row groups, CSV files) that yield Arrow
//! record batches, and the [`Decoder`] that turns a batch into cleaned, routed
//! [`ReadingBatch`]es plus reject and late rows. Each partition has its own watermark, so the
//! late/on-time decision depends only on that partition's order, never on scheduling.

mod columns;
pub mod csv;
mod decode;
pub mod kafka;
pub mod message;
pub mod parquet;

pub use columns::{arrow_cast_f64, sensor_strings, time_ms};
pub use decode::{Decoded, Decoder, destination, route_key};

use crate::config::TimeUnit;
use arrow_array::RecordBatch;
use arrow_schema::TimeUnit as ArrowUnit;
use std::path::PathBuf;

/// A source failure, naming the input and what is wrong.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// No file matches the source path.
    #[error("no input file matches {pattern:?}")]
    NoInput {
        /// The path or glob.
        pattern: String,
    },
    /// The file cannot be opened as Parquet.
    #[error("{file}: {message}")]
    Open {
        /// The file.
        file: String,
        /// Why.
        message: String,
    },
    /// A mapped column is missing or has an unusable type.
    #[error("{file}: column {column:?}: {message}")]
    Column {
        /// The file.
        file: String,
        /// The column.
        column: String,
        /// Why.
        message: String,
    },
    /// Reading failed part way (a corrupt page, say).
    #[error("{file}: read failed at row {row}: {message}")]
    Read {
        /// The file.
        file: String,
        /// First row of the batch that failed.
        row: u64,
        /// Why.
        message: String,
    },
}

impl SourceError {
    /// The input the error is about.
    pub fn file(&self) -> &str {
        match self {
            SourceError::NoInput { pattern } => pattern,
            SourceError::Open { file, .. }
            | SourceError::Column { file, .. }
            | SourceError::Read { file, .. } => file,
        }
    }
}

/// One ordered input partition.
pub trait Partition: Send {
    /// Name used in rejects and errors (the file path).
    fn name(&self) -> &str;
    /// A lower bound of every event time of the partition's whole input (the file, not just
    /// this partition), when known up front; the same for all partitions of an input.
    fn min_time(&self) -> Option<i64>;
    /// The largest event time in the same input before this partition (ms), which its
    /// watermark starts from; None for a partition that starts an input.
    fn watermark_seed(&self) -> Option<i64> {
        None
    }
    /// The next batch with the partition row number of its first row; None at the end.
    fn next_batch(&mut self) -> Option<Result<(u64, RecordBatch), SourceError>>;
}

/// The message of a panic caught from a decoder (a third-party reader that panics on damaged
/// input): what the reject row or error then says.
pub(crate) fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The files a source path or glob names, sorted.
pub fn expand(pattern: &str) -> Result<Vec<PathBuf>, SourceError> {
    let mut files: Vec<PathBuf> = if pattern.contains(['*', '?', '[']) {
        glob::glob(pattern)
            .map_err(|_| SourceError::NoInput {
                pattern: pattern.into(),
            })?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect()
    } else {
        let p = PathBuf::from(pattern);
        if p.exists() { vec![p] } else { vec![] }
    };
    files.sort();
    if files.is_empty() {
        return Err(SourceError::NoInput {
            pattern: pattern.into(),
        });
    }
    Ok(files)
}

pub(crate) fn unit_of(u: ArrowUnit) -> TimeUnit {
    match u {
        ArrowUnit::Second => TimeUnit::S,
        ArrowUnit::Millisecond => TimeUnit::Ms,
        ArrowUnit::Microsecond => TimeUnit::Us,
        ArrowUnit::Nanosecond => TimeUnit::Ns,
    }
}

/// Converts a raw time to ms (floor).
#[inline]
pub(crate) fn to_ms(raw: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::S => raw.saturating_mul(1000),
        TimeUnit::Ms => raw,
        TimeUnit::Us => raw.div_euclid(1000),
        TimeUnit::Ns => raw.div_euclid(1_000_000),
    }
}
