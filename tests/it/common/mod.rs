//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod device;
pub mod kafka;
pub mod pipeline;
pub mod stage;

#[allow(unused_imports)] // tests/gpu.rs includes these helpers without it
pub use pipeline::Pipeline;

use hyflow::dataflow::{self, RunOptions, Summary};
use hyflow::plan;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The repository root (tests run there).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The plan of pipeline file `path`, reading `input` (when given: `--input`) and writing its
/// file sinks into `out` (`--out`); panics when it is not valid.
pub fn load(path: &Path, input: Option<&str>, out: &Path) -> Arc<plan::Plan> {
    let p = plan::load_with(path, |c| {
        if let Some(input) = input {
            c.set_input(input);
        }
        c.set_out_dir(out);
    });
    Arc::new(p.unwrap_or_else(|e| panic!("{e}")))
}

/// Replays `pipeline` (a path relative to the root) with `workers`, writing to `out`.
pub fn replay(
    pipeline: &str,
    workers: usize,
    input: Option<&str>,
    out: &Path,
) -> Result<Summary, dataflow::RunError> {
    std::env::set_current_dir(root()).expect("cd root");
    let p = load(Path::new(pipeline), input, out);
    dataflow::run(
        p,
        &RunOptions {
            workers,
            ..RunOptions::default()
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
    let p = load(file.path(), None, out);
    dataflow::run(
        p,
        &RunOptions {
            workers,
            ..RunOptions::default()
        },
    )
}

/// An output rendered as CSV, times as ms since the epoch (the golden outputs hold these;
/// `hyflow cat` prints RFC 3339).
pub fn dump(path: &Path) -> String {
    hyflow::tools::inspect::to_csv_with(
        &hyflow::tools::inspect::read(path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
        hyflow::tools::inspect::Times::Millis,
    )
}

/// Writes named columns (all nullable) to a Parquet file as one row group.
pub fn write_columns(path: &Path, cols: Vec<(&str, arrow_array::ArrayRef)>) {
    use arrow_schema::{Field, Schema};
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch =
        arrow_array::RecordBatch::try_new(schema.clone(), cols.into_iter().map(|c| c.1).collect())
            .expect("batch");
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(path).expect("create"),
        schema,
        None,
    )
    .expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

/// As [`write_readings`], in row groups of `group` rows.
pub fn write_readings_grouped(
    path: &Path,
    rows: &[(Option<&str>, Option<i64>, Option<f64>)],
    group: usize,
) {
    use arrow_array::{Float64Array, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    let schema = Arc::new(Schema::new(vec![
        Field::new("sensor_id", DataType::Utf8, true),
        Field::new("ts", DataType::Int64, true),
        Field::new("value", DataType::Float64, true),
    ]));
    let batch = arrow_array::RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(rows.iter().map(|r| r.0).collect::<StringArray>()),
            Arc::new(rows.iter().map(|r| r.1).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|r| r.2).collect::<Float64Array>()),
        ],
    )
    .expect("batch");
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(group))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(path).expect("create"),
        schema,
        Some(props),
    )
    .expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

/// Writes a Parquet file with columns sensor_id (string), ts (int64), value (float64), all nullable.
pub fn write_readings(path: &Path, rows: &[(Option<&str>, Option<i64>, Option<f64>)]) {
    use arrow_array::{Float64Array, Int64Array, StringArray};
    write_columns(
        path,
        vec![
            (
                "sensor_id",
                Arc::new(rows.iter().map(|r| r.0).collect::<StringArray>()),
            ),
            (
                "ts",
                Arc::new(rows.iter().map(|r| r.1).collect::<Int64Array>()),
            ),
            (
                "value",
                Arc::new(rows.iter().map(|r| r.2).collect::<Float64Array>()),
            ),
        ],
    );
}

/// Every scalar feature and two spectral bands: the set the kernel tests check.
pub fn all_features() -> hyflow::stages::features::FeatureSet {
    let mut f = hyflow::stages::features::FeatureSet::default();
    for (n, k) in hyflow::stages::features::SCALAR_FEATURES {
        f.push(n, *k);
    }
    f.push(
        "band_low",
        hyflow::stages::features::Feature::Band {
            low_hz: 0.0,
            high_hz: 2.0,
        },
    );
    f.push(
        "band_mid",
        hyflow::stages::features::Feature::Band {
            low_hz: 2.0,
            high_hz: 7.5,
        },
    );
    f
}

/// Sends signal `sig` (`"TERM"`, `"HUP"`, ...) to process `pid` with kill(1); panics when it
/// cannot be delivered.
pub fn signal(pid: u32, sig: &str) {
    let st = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(st.success(), "kill -{sig} {pid}: {st:?}");
}
