//! Pipeline tests (`hyflow test`, like `vector test`): each `[[test]]` of a pipeline file
//! replays its readings through the pipeline and checks the expected windows and alerts.

use crate::config::{OutputKind, SinkConfig, SourceKind, TestConfig, TimeUnit};
use crate::dataflow::{self, RunOptions};
use crate::plan::Plan;
use crate::timefmt::{format_timestamp, parse_timestamp};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use std::path::Path;
use std::sync::Arc;

/// The result of one test.
#[derive(Debug)]
pub struct Outcome {
    /// The test's name.
    pub name: String,
    /// What did not match (empty when it passed).
    pub failures: Vec<String>,
}

/// Runs every `[[test]]` of `pipeline`, using `scratch` for inputs and outputs.
pub fn run_all(pipeline: &Plan, scratch: &Path) -> super::Result<Vec<Outcome>> {
    pipeline
        .config
        .test
        .iter()
        .enumerate()
        .map(|(i, t)| run_one(pipeline, t, &scratch.join(format!("test-{i}"))))
        .collect()
}

fn sink(name: &str, output: OutputKind, dir: &Path) -> SinkConfig {
    SinkConfig::internal_parquet(name, output, &dir.join(name))
}

fn run_one(pipeline: &Plan, t: &TestConfig, dir: &Path) -> super::Result<Outcome> {
    std::fs::create_dir_all(dir)?;
    let mut inline = false;
    let input = match &t.input {
        Some(input) => input.clone(),
        None => {
            // Inline series become a Parquet file in the pipeline's column names, times in ms.
            inline = true;
            let cols = &pipeline.source.columns;
            let mut rows: Vec<(String, i64, f64)> = Vec::new();
            for s in &t.series {
                let start = parse_timestamp(s.start.get_ref()).unwrap_or(0);
                let n = s.values.len() * s.repeat.max(1) as usize;
                rows.extend((0..n).map(|k| {
                    (
                        s.sensor.clone(),
                        start + k as i64 * s.every.ms,
                        s.values[k % s.values.len()],
                    )
                }));
            }
            rows.sort_by_key(|r| r.1);
            let path = dir.join("input.parquet");
            write_input(&path, &cols.sensor, &cols.time, &cols.value, &rows)?;
            path.display().to_string()
        }
    };
    let p = pipeline.with_config(|c| {
        c.sink = vec![
            sink("windows", OutputKind::Windows, dir),
            sink("alerts", OutputKind::Alerts, dir),
        ];
        c.set_input(&input);
        if inline {
            c.source.kind = SourceKind::Parquet;
            c.source.time_unit = TimeUnit::Ms;
            c.source.columns.quality = None;
        }
    })?;
    let opts = RunOptions {
        workers: 1,
        cluster: None,
        until_end: false,
        metrics: None,
        ..Default::default()
    };
    dataflow::run(Arc::new(p), &opts)?;
    let windows = crate::tools::inspect::read(&dir.join("windows"))?;
    let alerts = crate::tools::inspect::read(&dir.join("alerts"))?;
    let mut failures = Vec::new();
    for w in &t.expect_window {
        let start = parse_timestamp(w.start.get_ref()).unwrap_or(0);
        let Some((b, i)) = find(&windows, |b, i| {
            str_at(b, "sensor_id", i) == w.sensor && int_at(b, "window_start", i) == start
        }) else {
            failures.push(format!(
                "no window of {:?} starting {}",
                w.sensor,
                w.start.get_ref()
            ));
            continue;
        };
        for (name, want) in &w.features {
            let got = num_at(b, &crate::stages::features::column_name(name), i);
            if !(got == *want || (got - want).abs() <= 1e-9 * want.abs().max(got.abs())) {
                failures.push(format!(
                    "window {:?} {}: {name} = {got}, expected {want}",
                    w.sensor,
                    w.start.get_ref()
                ));
            }
        }
        if let Some(want) = w.alert {
            let got = b.column_by_name("alert").map(|c| c.as_boolean().value(i));
            if got != Some(want) {
                let got = got.map_or(
                    "missing (the windows output has no alert column)".into(),
                    |g| g.to_string(),
                );
                failures.push(format!(
                    "window {:?} {}: alert = {got}, expected {want}",
                    w.sensor,
                    w.start.get_ref()
                ));
            }
        }
        if let Some(want) = &w.rules {
            let got = str_at(b, "rules", i);
            if got != *want {
                failures.push(format!(
                    "window {:?} {}: rules = {got:?}, expected {want:?}",
                    w.sensor,
                    w.start.get_ref()
                ));
            }
        }
    }
    for a in &t.expect_alert {
        let end = a
            .window_end
            .as_ref()
            .and_then(|e| parse_timestamp(e.get_ref()));
        let found = find(&alerts, |b, i| {
            str_at(b, "sensor_id", i) == a.sensor
                && str_at(b, "state", i) == a.state
                && end.is_none_or(|e| int_at(b, "window_end", i) == e)
                && a.severity
                    .as_ref()
                    .is_none_or(|s| str_at(b, "severity", i) == *s)
        });
        if found.is_none() {
            let seen: Vec<String> = alerts
                .iter()
                .flat_map(|b| {
                    (0..b.num_rows()).map(move |i| {
                        format!(
                            "{} {} at {}",
                            str_at(b, "sensor_id", i),
                            str_at(b, "state", i),
                            format_timestamp(int_at(b, "window_end", i))
                        )
                    })
                })
                .collect();
            failures.push(format!(
                "no {} alert for {:?}{}; alerts seen: [{}]",
                a.state,
                a.sensor,
                a.window_end
                    .as_ref()
                    .map(|e| format!(" at {}", e.get_ref()))
                    .unwrap_or_default(),
                seen.join("; ")
            ));
        }
    }
    if t.expect_no_alerts {
        let n: usize = alerts.iter().map(RecordBatch::num_rows).sum();
        if n > 0 {
            failures.push(format!("expected no alerts, got {n}"));
        }
    }
    Ok(Outcome {
        name: t.name.clone(),
        failures,
    })
}

fn find(
    batches: &[RecordBatch],
    pred: impl Fn(&RecordBatch, usize) -> bool,
) -> Option<(&RecordBatch, usize)> {
    batches
        .iter()
        .find_map(|b| (0..b.num_rows()).find(|&i| pred(b, i)).map(|i| (b, i)))
}
fn str_at(b: &RecordBatch, col: &str, i: usize) -> String {
    b.column_by_name(col)
        .map(|c| c.as_string::<i32>().value(i).to_string())
        .unwrap_or_default()
}
/// A time column's value (ms since the epoch).
fn int_at(b: &RecordBatch, col: &str, i: usize) -> i64 {
    b.column_by_name(col)
        .and_then(|c| crate::tools::inspect::millis(c.as_ref()))
        .map_or(i64::MIN, |v| v[i])
}
fn num_at(b: &RecordBatch, col: &str, i: usize) -> f64 {
    match b.column_by_name(col) {
        Some(c) if c.data_type() == &arrow_schema::DataType::Int64 => {
            c.as_primitive::<Int64Type>().value(i) as f64
        }
        Some(c) if c.data_type() == &arrow_schema::DataType::Float64 && c.is_valid(i) => {
            c.as_primitive::<Float64Type>().value(i)
        }
        _ => f64::NAN,
    }
}

fn write_input(
    path: &Path,
    sensor: &str,
    time: &str,
    value: &str,
    rows: &[(String, i64, f64)],
) -> super::Result<()> {
    use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    let schema = Arc::new(Schema::new(vec![
        Field::new(sensor, DataType::Utf8, false),
        Field::new(time, DataType::Int64, false),
        Field::new(value, DataType::Float64, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.0.as_str()),
        )),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
    ];
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path)?, schema.clone(), None)?;
    w.write(&RecordBatch::try_new(schema, cols)?)?;
    w.close()?;
    Ok(())
}
