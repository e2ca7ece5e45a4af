//! Helpers shared by the integration tests.
#![allow(dead_code)]

use hyflow::config;
use hyflow::dataflow::{self, RunOptions, Summary};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The repository root (tests run there).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Replays `pipeline` (a path relative to the root) with `workers`, writing to `out`.
pub fn replay(
    pipeline: &str,
    workers: usize,
    input: Option<&str>,
    out: &Path,
) -> Result<Summary, dataflow::RunError> {
    std::env::set_current_dir(root()).expect("cd root");
    let p = Arc::new(config::load(Path::new(pipeline)).expect("pipeline is valid"));
    dataflow::run(
        p,
        &RunOptions {
            workers,
            input: input.map(str::to_string),
            out_dir: Some(out.to_path_buf()),
        },
    )
}

/// Replays pipeline text written to a temporary file.
pub fn replay_text(toml: &str, workers: usize, out: &Path) -> Result<Summary, dataflow::RunError> {
    let file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("pipeline file");
    std::fs::write(file.path(), toml).expect("write pipeline");
    let p = Arc::new(config::load(file.path()).unwrap_or_else(|e| panic!("{e}")));
    dataflow::run(
        p,
        &RunOptions {
            workers,
            input: None,
            out_dir: Some(out.to_path_buf()),
        },
    )
}

/// An output rendered as CSV.
pub fn dump(path: &Path) -> String {
    hyflow::inspect::to_csv(
        &hyflow::inspect::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
    )
}

/// Writes a Parquet file with columns sensor_id (string), ts (int64), value (float64, nullable).
pub fn write_readings(path: &Path, rows: &[(Option<&str>, Option<i64>, Option<f64>)]) {
    use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    let schema = Arc::new(Schema::new(vec![
        Field::new("sensor_id", DataType::Utf8, true),
        Field::new("ts", DataType::Int64, true),
        Field::new("value", DataType::Float64, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(rows.iter().map(|r| r.0).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| r.1).collect::<Int64Array>()),
        Arc::new(rows.iter().map(|r| r.2).collect::<Float64Array>()),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols).expect("batch");
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(path).expect("create"),
        schema,
        None,
    )
    .expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}
