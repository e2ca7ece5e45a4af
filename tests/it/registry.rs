//! The sensor registry (`[registry]`): windows are enriched with their sensor's row as of the
//! window's end, so a change in the change log alters rule results from its time on, a
//! sensor added later is scored from then, a disabled one stops alerting and its episode
//! resolves, and an unknown one is accepted with class defaults or rejected, counted.

use crate::common::pipeline::Pipeline;
use crate::common::{dump, write_readings};
use std::path::Path;

/// 10 minutes of readings every second from 2024-03-04 00:00:00 UTC, at 85.0.
const T0: i64 = 1_709_510_400_000;
const MIN: i64 = 60_000;

fn readings(dir: &Path, sensors: &[&str]) -> std::path::PathBuf {
    let mut rows = Vec::new();
    for k in 0..600 {
        for s in sensors {
            rows.push((Some(*s), Some(T0 + k * 1000), Some(85.0)));
        }
    }
    let path = dir.join("in.parquet");
    write_readings(&path, &rows);
    path
}

/// A Parquet registry file of string columns (`None`: null).
fn write_parquet(dir: &Path, name: &str, cols: &[(&str, &[Option<&str>])]) -> String {
    use std::sync::Arc;
    let p = dir.join(name);
    let batch = arrow_array::RecordBatch::try_from_iter(cols.iter().map(|(n, v)| {
        (
            *n,
            Arc::new(arrow_array::StringArray::from(v.to_vec())) as arrow_array::ArrayRef,
        )
    }))
    .expect("batch");
    let f = std::fs::File::create(&p).expect("create");
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    p.display().to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

/// A pipeline with a registry (`registry` lines after the file paths), the rule
/// `mean > registry.max_temp`, alerts from rules alone, and windows, alerts and rejects sinks.
fn pipeline(dir: &Path, sensors: &[&str], registry: &str) -> String {
    let input = readings(dir, sensors);
    Pipeline::parquet("registry", &input)
        .source("columns = { sensor = \"sensor_id\", time = \"ts\", value = \"value\" }")
        .source("time-unit = \"ms\"")
        .with(&format!("[registry]\n{registry}"))
        .with("[[rules]]\nname = \"hot\"\nwhen = \"mean > registry.max_temp\"\nseverity = \"critical\"")
        .with("[fuse]\nai-weight = 0.0\nrules-weight = 1.0\nopen = 0.5\nclose = 0.3\nquiet-windows = 2")
        .sinks(&["windows", "alerts", "rejects"])
        .text()
}

/// (sensor, window end, rules fired) of every window written.
pub(crate) fn windows(out: &Path) -> Vec<(String, i64, String)> {
    let csv = dump(&out.join("windows"));
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).expect(n);
    let (s, e, r) = (col("sensor_id"), col("window_end"), col("rules"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[s].to_string(),
                f[e].parse().expect("end"),
                f[r].to_string(),
            )
        })
        .collect()
}

/// (sensor, state, window end) of every alert event.
pub(crate) fn alerts(out: &Path) -> Vec<(String, String, i64)> {
    let path = out.join("alerts");
    if !path.exists() {
        return Vec::new();
    }
    let csv = dump(&path);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).expect(n);
    let (s, st, e) = (col("sensor_id"), col("state"), col("window_end"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[s].to_string(),
                f[st].to_string(),
                f[e].parse().expect("end"),
            )
        })
        .collect()
}

fn run(toml: &str, workers: usize, out: &Path) -> hyflow::dataflow::Summary {
    let s = crate::common::replay_text(toml, workers, out).unwrap_or_else(|e| panic!("{e}"));
    s.check_accounting().expect("every row accounted for");
    s
}

#[test]
fn a_threshold_change_alters_rules_from_its_effective_time_on() {
    let dir = tempfile::tempdir().unwrap();
    let sensors = write(
        dir.path(),
        "sensors.csv",
        "sensor,asset,max_temp\nm01-temp,m01,90\nm02-temp,m02,80\n",
    );
    // At 00:05:00, m01-temp's limit drops to 80; m02-temp's rises to 90 at 00:07:30.
    let changes = write(
        dir.path(),
        "changes.jsonl",
        concat!(
            r#"{"time": "2024-03-04T00:07:30Z", "sensor": "m02-temp", "value": {"asset": "m02", "max_temp": 90}}"#,
            "\n",
            r#"{"time": "2024-03-04T00:05:00Z", "sensor": "m01-temp", "value": {"asset": "m01", "max_temp": 80}}"#,
            "\n"
        ),
    );
    let toml = pipeline(
        dir.path(),
        &["m01-temp", "m02-temp"],
        &format!(
            "sensors = {sensors:?}\nchanges = {changes:?}\nattributes = {{ max_temp = \"number\" }}"
        ),
    );
    let mut first = None;
    for workers in [1, 2] {
        let out = dir.path().join(format!("out{workers}"));
        let s = run(&toml, workers, &out);
        assert_eq!(s.windows, 120);
        let w = windows(&out);
        for (sensor, end, rules) in &w {
            // A window reads the registry as it stood before its end: a change at 00:05:00
            // first counts for the window [00:05:00, 00:05:10).
            let hot = match sensor.as_str() {
                "m01-temp" => *end > T0 + 5 * MIN,
                _ => *end <= T0 + 7 * MIN + 30_000,
            };
            assert_eq!(
                rules == "hot",
                hot,
                "{sensor} window ending {end}: {rules:?}"
            );
        }
        // One episode each: m01 opens with its first hot window; m02 resolves after two
        // quiet windows once its limit rose.
        let a = alerts(&out);
        assert!(
            a.contains(&("m01-temp".into(), "open".into(), T0 + 5 * MIN + 10_000)),
            "{a:?}"
        );
        assert!(
            a.contains(&("m02-temp".into(), "resolved".into(), T0 + 7 * MIN + 50_000)),
            "{a:?}"
        );
        match &first {
            None => first = Some((w, a)),
            Some(f) => assert_eq!(f, &(w, a), "1 and 2 workers differ"),
        }
    }
}

#[test]
fn unknown_sensors_are_rejected_per_window_or_accepted_with_class_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let sensors = write(dir.path(), "sensors.csv", "sensor,max_temp\nm01-temp,90\n");
    // m03-temp is registered at 00:05:00 (from then on it is known).
    let changes = write(
        dir.path(),
        "changes.jsonl",
        r#"{"time": 1709510700000, "sensor": "m03-temp", "value": {"max_temp": 80}}"#,
    );
    let registry = format!(
        "sensors = {sensors:?}\nchanges = {changes:?}\nattributes = {{ max_temp = \"number\" }}"
    );
    // Rejected: x-temp's 60 windows and m03-temp's first 30 go to the rejects output.
    let toml = pipeline(
        dir.path(),
        &["m01-temp", "m03-temp", "x-temp"],
        &format!("{registry}\nunknown-sensors = \"reject\""),
    );
    let out = dir.path().join("reject");
    let s = run(&toml, 2, &out);
    assert_eq!((s.windows, s.windows_unregistered), (90, 90));
    let w = windows(&out);
    assert!(w.iter().all(|(s, _, _)| s != "x-temp"));
    let m03: Vec<_> = w.iter().filter(|(s, _, _)| s == "m03-temp").collect();
    assert_eq!(m03.len(), 30);
    assert!(
        m03.iter()
            .all(|(_, end, r)| *end > T0 + 5 * MIN && r == "hot")
    );
    let rejects = dump(&out.join("rejects"));
    assert_eq!(rejects.lines().filter(|l| l.contains("x-temp")).count(), 60);
    assert_eq!(
        rejects.lines().filter(|l| l.contains("m03-temp")).count(),
        30
    );
    // (CSV doubles the quotes.)
    assert!(
        rejects
            .contains("the registry does not hold sensor \"\"x-temp\"\" as of 2024-03-04 00:00:10"),
        "{rejects}"
    );
    assert_eq!(s.events.counter("hyflow_windows_unregistered_total"), 90);

    // Accepted: x-temp gets the `x-*` class's limit (70), so every window of it is hot.
    let toml = pipeline(
        dir.path(),
        &["m01-temp", "x-temp"],
        &format!(
            "{registry}\n[[registry.class]]\nmatch = \"x-*\"\nattributes = {{ max_temp = 70.0 }}"
        ),
    );
    let out = dir.path().join("accept");
    let s = run(&toml, 1, &out);
    assert_eq!((s.windows, s.windows_unregistered), (120, 0));
    let w = windows(&out);
    assert!(
        w.iter()
            .filter(|(s, _, _)| s == "x-temp")
            .all(|(_, _, r)| r == "hot")
    );
    assert!(
        w.iter()
            .filter(|(s, _, _)| s == "m01-temp")
            .all(|(_, _, r)| r.is_empty())
    );
}

#[test]
fn a_disabled_sensor_stops_alerting_and_its_episode_resolves_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let sensors = write(dir.path(), "sensors.csv", "sensor,max_temp\nm01-temp,80\n");
    let changes = write(
        dir.path(),
        "changes.jsonl",
        r#"{"time": "2024-03-04T00:05:00Z", "sensor": "m01-temp", "value": {"max_temp": 80, "enabled": false}}"#,
    );
    let toml = pipeline(
        dir.path(),
        &["m01-temp"],
        &format!(
            "sensors = {sensors:?}\nchanges = {changes:?}\nattributes = {{ max_temp = \"number\" }}"
        ),
    );
    let out = dir.path().join("out");
    run(&toml, 1, &out);
    let a = alerts(&out);
    let states: Vec<&str> = a
        .iter()
        .map(|(_, s, _)| s.as_str())
        .filter(|s| *s != "update")
        .collect();
    assert_eq!(states, vec!["open", "resolved"], "{a:?}");
    // Resolved by the first window after the change, not two quiet windows later.
    assert_eq!(a.last().map(|x| x.2), Some(T0 + 5 * MIN + 10_000), "{a:?}");
}

#[test]
fn registry_mistakes_are_located_in_the_pipeline_and_the_registry_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad_row = write(dir.path(), "bad.csv", "sensor,max_temp\nm01-temp,hot\n");
    let good = write(dir.path(), "good.csv", "sensor,max_temp\nm01-temp,80\n");
    let bad_parquet = write_parquet(
        dir.path(),
        "bad.parquet",
        &[
            ("sensor", &[Some("m01-temp")]),
            ("max_temp", &[Some("hot")]),
        ],
    );
    for (registry, rule, what) in [
        (
            format!("sensors = {bad_row:?}\nattributes = {{ max_temp = \"number\" }}"),
            "mean > registry.max_temp",
            format!("registry sensors: {bad_row}:2: attribute `max_temp` is a number, not \"hot\""),
        ),
        (
            format!("sensors = {good:?}\nattributes = {{ max_temp = \"number\" }}"),
            "mean > registry.min_temp",
            "unknown registry attribute `min_temp`: [registry] attributes declares max_temp".into(),
        ),
        (
            format!(
                "sensors = {:?}\nattributes = {{ max_temp = \"number\" }}",
                dir.path().join("none.csv").display()
            ),
            "mean > registry.max_temp",
            "cannot read the registry file".into(),
        ),
        (
            format!("sensors = {good:?}\nattributes = {{ enabled = \"bool\" }}"),
            "mean > 1",
            "registry attribute \"enabled\" is a column every registry row has".into(),
        ),
        (
            format!("sensors = {bad_parquet:?}\nattributes = {{ max_temp = \"number\" }}"),
            "mean > registry.max_temp",
            format!(
                "registry sensors: {bad_parquet}: row 1: attribute `max_temp` is a number, not \"hot\""
            ),
        ),
        (
            format!(
                "sensors = {:?}\nattributes = {{ max_temp = \"number\" }}",
                dir.path().join("sensors.xlsx").display()
            ),
            "mean > registry.max_temp",
            "hyflow reads sensors from .csv, .parquet or .toml files".into(),
        ),
        (
            format!("sensors = {good:?}\nrecord = \"out/changes.jsonl\""),
            "mean > 1",
            "only a live run that reads a registry `topic` records changes".into(),
        ),
    ] {
        let input = readings(dir.path(), &["m01-temp"]);
        let toml = Pipeline::parquet("bad", &input)
            .with(&format!("[registry]\n{registry}"))
            .with(&format!(
                "[[rules]]\nname = \"r\"\nwhen = \"{rule}\"\nseverity = \"info\""
            ))
            .sink("windows")
            .text();
        let e = hyflow::plan::parse(Path::new("p.toml"), &toml)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&what), "{e}");
        assert!(e.contains("p.toml:"), "located: {e}");
    }
    // Incidents need the topology.
    let input = readings(dir.path(), &["m01-temp"]);
    let toml = Pipeline::parquet("bad", &input).sink("incidents").text();
    let e = hyflow::plan::parse(Path::new("p.toml"), &toml)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("writes incidents, which follow the registry's topology"),
        "{e}"
    );
}

#[test]
fn toml_and_parquet_registries_give_what_the_same_rows_in_csv_give() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "sensors.csv",
        "sensor,asset,max_temp\nm01-temp,m01,90\nm02-temp,m02,80\n",
    );
    let toml_rows = write(
        dir.path(),
        "sensors.toml",
        "[[sensor]]\nsensor = \"m01-temp\"\nasset = \"m01\"\nmax_temp = 90\n\n[[sensor]]\nsensor = \"m02-temp\"\nasset = \"m02\"\nmax_temp = 80.0\n",
    );
    // Columns in another order, the number as text: found by name, read as the CSV's field.
    let parquet_rows = write_parquet(
        dir.path(),
        "sensors.parquet",
        &[
            ("max_temp", &[Some("90"), Some("80.0")]),
            ("asset", &[Some("m01"), Some("m02")]),
            ("sensor", &[Some("m01-temp"), Some("m02-temp")]),
        ],
    );
    let mut got = Vec::new();
    for (name, sensors) in [("csv", csv), ("toml", toml_rows), ("parquet", parquet_rows)] {
        let toml = pipeline(
            dir.path(),
            &["m01-temp", "m02-temp"],
            &format!("sensors = {sensors:?}\nattributes = {{ max_temp = \"number\" }}"),
        );
        let out = dir.path().join(name);
        run(&toml, 1, &out);
        got.push(windows(&out));
    }
    // m02-temp (85 > 80) is hot throughout, m01-temp never.
    assert!(
        got[0]
            .iter()
            .all(|(s, _, r)| (r == "hot") == (s == "m02-temp"))
    );
    assert_eq!(got[0], got[1]);
    assert_eq!(got[0], got[2]);
}
