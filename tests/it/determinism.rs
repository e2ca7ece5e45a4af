//! The same input gives the same outputs however it is split: one row group or many (each
//! row group is its own input partition), any batch size, and 1, 2 or 3 workers.

use crate::common;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use std::path::Path;
use std::sync::Arc;

/// Readings of 6 sensors at 1 Hz for 10 minutes, with disorder: every 37th reading arrives
/// 3-45 s late (some within the 5 s out-of-orderness, most after their window closed), plus
/// NaNs and duplicates.
fn readings() -> Vec<(String, i64, f64)> {
    let mut rows = Vec::new();
    for s in 0..600i64 {
        for k in 0..6 {
            let t = 1_700_000_000_000 + s * 1000 + k * 7;
            let v = ((s * 7 + k * 13) % 17) as f64 + if s % 101 == 0 { f64::NAN } else { 0.0 };
            let delay = if (s * 6 + k) % 37 == 0 {
                3_000 + ((s * 6 + k) % 43) * 1000
            } else {
                0
            };
            rows.push((format!("s{k}"), t, v, t + delay));
            if (s * 6 + k) % 151 == 0 {
                rows.push((format!("s{k}"), t, v + 1.0, t + delay + 1));
            }
        }
    }
    rows.sort_by_key(|r| r.3);
    rows.into_iter().map(|(a, b, c, _)| (a, b, c)).collect()
}

fn write(path: &Path, rows: &[(String, i64, f64)], row_group: usize) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("sensor_id", DataType::Utf8, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("value", DataType::Float64, false),
    ]));
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(path).expect("create"),
        schema.clone(),
        Some(props),
    )
    .expect("writer");
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.0.as_str()),
        )),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
    ];
    w.write(&RecordBatch::try_new(schema, cols).expect("batch"))
        .expect("write");
    w.close().expect("close");
}

const PIPELINE: &str = r#"name = "det"
[source]
kind = "parquet"
path = "PATH"
max-out-of-orderness = "5s"
batch-rows = BATCH
split-row-groups = SPLIT

[window]
kind = "sliding"
size = "20s"
slide = "10s"
allowed-lateness = "2s"

[features]
compute = ["count", "mean", "std", "slope"]

[[detect.detector]]
kind = "ewma-z"
features = ["mean"]

[[sink]]
name = "windows"
kind = "parquet"
output = "windows"
path = "out/windows"

[[sink]]
name = "alerts"
kind = "parquet"
output = "alerts"
path = "out/alerts"

[[sink]]
name = "rejects"
kind = "parquet"
output = "rejects"
path = "out/rejects"

[[sink]]
name = "late"
kind = "parquet"
output = "late"
path = "out/late"
"#;

#[test]
fn outputs_do_not_depend_on_row_groups_or_workers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rows = readings();
    let mut reference: Option<Vec<String>> = None;
    for (row_group, workers, batch) in [
        (1_000_000, 1, 100),
        (500, 1, 100),
        (500, 2, 100),
        (333, 3, 7),
        (1_000_000, 2, 64),
    ] {
        let input = tmp.path().join(format!("in_{row_group}.parquet"));
        write(&input, &rows, row_group);
        let out = tmp.path().join(format!("out_{row_group}_{workers}"));
        let text = PIPELINE
            .replace("PATH", &input.display().to_string())
            .replace("BATCH", &batch.to_string())
            .replace("SPLIT", &(row_group < 1_000_000).to_string());
        let s = common::replay_text(&text, workers, &out).expect("run");
        assert!(
            s.late > 20 && s.rejected > 10,
            "the input exercises late and rejected rows: {s:?}"
        );
        let dumps: Vec<String> = ["windows", "alerts", "rejects", "late"]
            .iter()
            .map(|k| {
                common::dump(&out.join(k)).replace(&format!("in_{row_group}.parquet"), "in.parquet")
            })
            .collect();
        match &reference {
            None => reference = Some(dumps),
            Some(r) => {
                for (k, (a, b)) in ["windows", "alerts", "rejects", "late"]
                    .iter()
                    .zip(r.iter().zip(&dumps))
                {
                    if a != b {
                        let d: Vec<String> = a
                            .lines()
                            .zip(b.lines())
                            .filter(|(x, y)| x != y)
                            .take(3)
                            .map(|(x, y)| format!("want {x}\n got  {y}"))
                            .collect();
                        panic!(
                            "{k} differs for row groups of {row_group} rows and {workers} workers ({} vs {} lines):\n{}",
                            a.lines().count(),
                            b.lines().count(),
                            d.join("\n")
                        );
                    }
                }
            }
        }
    }
}
