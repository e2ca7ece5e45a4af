//! The outputs open in pyarrow with the documented schemas, and the benchmark pipeline's
//! output equals the reference semantics of ../shared/bench/WORKLOAD.md computed by
//! scripts/bench_reference.py, and partitioned outputs read the same in pyarrow, polars and
//! DuckDB. Needs python3 with pyarrow, numpy, polars and duckdb (the README's test command
//! installs them); set HYFLOW_SKIP_PYTHON=1 to skip these tests knowingly.

use crate::common;

use std::process::Command;

fn python(args: &[&str]) -> Option<String> {
    if std::env::var_os("HYFLOW_SKIP_PYTHON").is_some() {
        eprintln!("HYFLOW_SKIP_PYTHON is set: skipped");
        return None;
    }
    let out = Command::new("python3")
        .args(args)
        .output()
        .expect("python3 must be installed (or set HYFLOW_SKIP_PYTHON=1)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "python3 {args:?} failed:\n{text}");
    Some(text)
}

/// The pipeline's detectors, comma-separated (the windows output's `score_<detector>` columns).
fn detectors(p: &hyflow::plan::Plan) -> String {
    let names: Vec<&str> = p.detectors.iter().map(|d| d.name.as_str()).collect();
    names.join(",")
}

#[test]
fn outputs_open_in_pyarrow_with_the_documented_schema() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    common::replay("pipelines/manufacturing.toml", 2, None, &out).expect("replay");
    let p =
        hyflow::plan::load(std::path::Path::new("pipelines/manufacturing.toml")).expect("valid");
    let feats = p.features.names.join(",");
    if let Some(text) = python(&[
        "tests/read_outputs.py",
        &out.display().to_string(),
        &feats,
        "windows,alerts,rejects,late",
        &detectors(&p),
    ]) {
        assert!(text.contains("\nok"), "{text}");
    }
    let out = tmp.path().join("traffic");
    common::replay("pipelines/traffic.toml", 2, None, &out).expect("replay");
    let p = hyflow::plan::load(std::path::Path::new("pipelines/traffic.toml")).expect("valid");
    if let Some(text) = python(&[
        "tests/read_outputs.py",
        &out.display().to_string(),
        &p.features.names.join(","),
        "windows,alerts",
        &detectors(&p),
    ]) {
        assert!(
            text.contains("alerts-arrow:") && text.contains("\nok"),
            "{text}"
        );
    }
}

/// docs/outputs.md's reading of partitioned outputs, run by tests/read_partitions.py: pyarrow,
/// polars and DuckDB read `date=`/`hour=` directories with the same columns, types and rows.
#[test]
fn partitioned_outputs_read_the_same_in_pyarrow_polars_and_duckdb() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    std::env::set_current_dir(common::root()).expect("cd root");
    let text = std::fs::read_to_string("pipelines/traffic.toml").expect("pipeline");
    assert!(text.contains("partition = \"date\""));
    let text = text.replace("partition = \"date\"", "partition = \"hour\"");
    common::replay_text(&text, 2, &out).expect("replay");
    let windows = out.join("windows");
    assert!(windows.join("date=2024-03-04").join("hour=08").is_dir());
    if let Some(text) = python(&["tests/read_partitions.py", &windows.display().to_string()]) {
        assert!(
            text.starts_with("partitions: pyarrow, polars and DuckDB agree on"),
            "{text}"
        );
    }
}

#[test]
fn bench_pipeline_matches_the_workload_reference() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    common::replay("pipelines/bench.toml", 2, None, &out).expect("replay");
    if let Some(text) = python(&[
        "scripts/bench_reference.py",
        "fixtures/bench.parquet",
        &out.join("windows").display().to_string(),
    ]) {
        assert!(text.starts_with("equal: 1000 windows"), "{text}");
    }
}
