//! Reads hyflow outputs back (Parquet directories, Parquet files, Arrow IPC files) and renders
//! them as CSV: used by `hyflow cat` and by the golden-output tests.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// True for a partition directory (`date=2024-05-06`, `hour=08`).
fn is_partition(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n.to_string_lossy().contains('='))
}

/// The Parquet part files under `dir` (recursively through partition directories), sorted.
pub fn part_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if dir.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            if is_partition(&p) {
                out.extend(part_files(&p)?);
            }
        } else if p.extension().is_some_and(|x| x == "parquet")
            && !p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Reads every record batch of an output (a Parquet directory or file, or an Arrow IPC file).
pub fn read(path: &Path) -> super::Result<Vec<RecordBatch>> {
    let mut batches = Vec::new();
    if path.extension().is_some_and(|x| x == "arrow") {
        let r = arrow_ipc::reader::FileReader::try_new(std::fs::File::open(path)?, None)?;
        for b in r {
            batches.push(b?);
        }
        return Ok(batches);
    }
    if path.extension().is_some_and(|x| x == "arrows") {
        let r = arrow_ipc::reader::StreamReader::try_new(std::fs::File::open(path)?, None)?;
        for b in r {
            batches.push(b?);
        }
        return Ok(batches);
    }
    let parts = part_files(path)?;
    if parts.is_empty() && path.is_dir() {
        // A directory of outputs (out/manufacturing holds windows/, alerts/, ...): their rows
        // have different columns, so name them instead of mixing them.
        let mut outputs: Vec<String> = std::fs::read_dir(path)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir() && !is_partition(p))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
            .collect();
        outputs.sort();
        if !outputs.is_empty() {
            super::invalid!(
                "{} holds several outputs ({}): name one, e.g. {}",
                path.display(),
                outputs.join(", "),
                path.join(&outputs[0]).display()
            );
        }
    }
    for f in parts {
        let builder = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f)?)?;
        let schema = builder.schema().clone();
        let before = batches.len();
        for b in builder.build()? {
            batches.push(b?);
        }
        if batches.len() == before {
            batches.push(RecordBatch::new_empty(schema));
        }
    }
    Ok(batches)
}

/// The values of a time column as ms since the epoch: a timestamp (ms) column, or an int64
/// one (outputs written before times were typed, or with `times = "int64"`). `None` for any
/// other type.
pub fn millis(col: &dyn Array) -> Option<arrow_buffer::ScalarBuffer<i64>> {
    match col.data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, _) => Some(
            col.as_primitive::<TimestampMillisecondType>()
                .values()
                .clone(),
        ),
        DataType::Int64 => Some(col.as_primitive::<Int64Type>().values().clone()),
        _ => None,
    }
}

/// How [`to_csv_with`] prints time (timestamp) columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Times {
    /// RFC 3339 in UTC, `2024-03-04T00:05:00Z` (what `hyflow cat` prints).
    Rfc3339,
    /// Milliseconds since the epoch (the stored value; the golden outputs hold these).
    Millis,
}

/// Renders batches as CSV with a header; floats use Rust's shortest round-trip form, times
/// RFC 3339.
pub fn to_csv(batches: &[RecordBatch]) -> String {
    to_csv_with(batches, Times::Rfc3339)
}

/// [`to_csv`], with time columns printed as `times` says.
pub fn to_csv_with(batches: &[RecordBatch], times: Times) -> String {
    let mut s = String::new();
    let Some(first) = batches.first() else {
        return s;
    };
    let header: Vec<&str> = first
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    s.push_str(&header.join(","));
    s.push('\n');
    for b in batches {
        for row in 0..b.num_rows() {
            for (c, col) in b.columns().iter().enumerate() {
                if c > 0 {
                    s.push(',');
                }
                if col.is_null(row) {
                    continue;
                }
                match col.data_type() {
                    DataType::Int64 => {
                        let _ = write!(s, "{}", col.as_primitive::<Int64Type>().value(row));
                    }
                    DataType::Timestamp(TimeUnit::Millisecond, _) => {
                        let ms = col.as_primitive::<TimestampMillisecondType>().value(row);
                        match times {
                            Times::Rfc3339 => s.push_str(&crate::timefmt::format_rfc3339(ms)),
                            Times::Millis => {
                                let _ = write!(s, "{ms}");
                            }
                        }
                    }
                    DataType::Float64 => {
                        let _ = write!(s, "{:?}", col.as_primitive::<Float64Type>().value(row));
                    }
                    DataType::Boolean => {
                        let _ = write!(s, "{}", col.as_boolean().value(row));
                    }
                    DataType::Utf8 => {
                        let v = col.as_string::<i32>().value(row);
                        if v.contains([',', '"', '\n']) {
                            let _ = write!(s, "\"{}\"", v.replace('"', "\"\""));
                        } else {
                            s.push_str(v);
                        }
                    }
                    other => {
                        let _ = write!(s, "<{other}>");
                    }
                }
            }
            s.push('\n');
        }
    }
    s
}
