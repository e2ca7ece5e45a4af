//! Source decoding: timestamp columns and time zones, integer time units, quality flags, gap
//! filling end to end, and inputs whose file order is not their time order.

use crate::common::{self, Pipeline};

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMillisecondArray,
};
use std::path::Path;
use std::sync::Arc;

fn pipeline(input: &Path, source_extra: &str, rest: &str) -> String {
    Pipeline::parquet("t", input)
        .source(source_extra)
        .with(rest)
        .sinks(&["windows", "rejects"])
        .text()
}

fn column(csv: &str, name: &str) -> Vec<String> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let i = header
        .iter()
        .position(|h| *h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    lines
        .map(|l| l.split(',').nth(i).unwrap_or_default().to_string())
        .collect()
}

#[test]
fn naive_timestamps_are_read_in_the_configured_time_zone() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = tmp.path().join("in.parquet");
    // Local 02:00:05 at +02:00 is 00:00:05 UTC: the window starting at the epoch's midnight.
    let local = 1_709_517_605_000i64; // 2024-03-04T02:00:05 as if it were UTC
    common::write_columns(
        &input,
        vec![
            (
                "sensor_id",
                Arc::new(StringArray::from(vec!["a", "a"])) as ArrayRef,
            ),
            (
                "ts",
                Arc::new(TimestampMillisecondArray::from(vec![local, local + 1000])),
            ),
            ("value", Arc::new(Float64Array::from(vec![1.0, 3.0]))),
        ],
    );
    let out = tmp.path().join("out");
    common::replay_text(&pipeline(&input, "time-zone = \"+02:00\"", ""), 1, &out).expect("run");
    let csv = common::dump(&out.join("windows"));
    assert_eq!(
        column(&csv, "window_start"),
        vec![(local - 7_200_000 - 5000).to_string()]
    );
    assert_eq!(column(&csv, "mean"), vec!["2.0"]);
    // A timestamp with a zone is already UTC: the time zone setting does not apply.
    let utc = tmp.path().join("utc.parquet");
    let ts = TimestampMillisecondArray::from(vec![local]).with_timezone("UTC");
    common::write_columns(
        &utc,
        vec![
            (
                "sensor_id",
                Arc::new(StringArray::from(vec!["a"])) as ArrayRef,
            ),
            ("ts", Arc::new(ts)),
            ("value", Arc::new(Float64Array::from(vec![1.0]))),
        ],
    );
    let out = tmp.path().join("out2");
    common::replay_text(&pipeline(&utc, "time-zone = \"+02:00\"", ""), 1, &out).expect("run");
    assert_eq!(
        column(&common::dump(&out.join("windows")), "window_start"),
        vec![(local - 5000).to_string()]
    );
}

#[test]
fn integer_seconds_and_a_quality_flag() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = tmp.path().join("in.parquet");
    common::write_columns(
        &input,
        vec![
            (
                "id",
                Arc::new(Int64Array::from(vec![7, 7, 7, 7])) as ArrayRef,
            ),
            ("t", Arc::new(Int64Array::from(vec![100, 101, 102, 125]))),
            (
                "v",
                Arc::new(Float64Array::from(vec![1.0, 2.0, 100.0, 5.0])),
            ),
            (
                "ok",
                Arc::new(BooleanArray::from(vec![true, true, false, true])),
            ),
        ],
    );
    let source = "time-unit = \"s\"\ncolumns = { sensor = \"id\", time = \"t\", value = \"v\", quality = \"ok\" }";
    let out = tmp.path().join("out");
    let s = common::replay_text(&pipeline(&input, source, ""), 1, &out).expect("run");
    assert_eq!(s.rejected, 1);
    let csv = common::dump(&out.join("windows"));
    assert_eq!(column(&csv, "sensor_id"), vec!["7", "7"]);
    assert_eq!(column(&csv, "window_start"), vec!["100000", "120000"]);
    assert_eq!(column(&csv, "mean"), vec!["1.5", "5.0"]);
    let rejects = common::dump(&out.join("rejects"));
    assert!(
        rejects.contains(",2,7,102000,100.0,bad quality flag"),
        "{rejects}"
    );
}

#[test]
fn gap_filling_end_to_end() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = tmp.path().join("in.parquet");
    let rows: Vec<_> = [0i64, 1, 2, 6, 7, 8, 9]
        .iter()
        .map(|s| (Some("a"), Some(s * 1000), Some(*s as f64)))
        .collect();
    common::write_readings(&input, &rows);
    let out = tmp.path().join("out");
    let fill = "[clean.fill]\nmethod = \"linear\"\ninterval = \"1s\"\nmax-gap = \"5s\"\n";
    common::replay_text(&pipeline(&input, "", fill), 1, &out).expect("run");
    let csv = common::dump(&out.join("windows"));
    assert_eq!(column(&csv, "count"), vec!["10"]);
    assert_eq!(column(&csv, "filled"), vec!["3"]);
    assert_eq!(column(&csv, "mean"), vec!["4.5"]);
}

#[test]
fn files_out_of_time_order_finish_and_agree_across_workers() {
    let tmp = tempfile::tempdir().expect("tmp");
    // a.parquet holds the latest hour, c.parquet the earliest.
    for (name, hour) in [("a", 2i64), ("b", 1), ("c", 0)] {
        let rows: Vec<_> = (0..3600i64)
            .map(|s| {
                (
                    Some("x"),
                    Some(hour * 3_600_000 + s * 1000),
                    Some((s % 7) as f64),
                )
            })
            .collect();
        common::write_readings(&tmp.path().join(format!("{name}.parquet")), &rows);
    }
    let glob = tmp.path().join("*.parquet");
    let text = pipeline(&glob, "batch-rows = 500", "");
    let one = common::replay_text(&text, 1, &tmp.path().join("o1")).expect("run");
    let two = common::replay_text(&text, 2, &tmp.path().join("o2")).expect("run");
    assert_eq!((one.windows, one.late), (1080, 0));
    assert_eq!((two.windows, two.late), (1080, 0));
    assert_eq!(
        common::dump(&tmp.path().join("o1/windows")),
        common::dump(&tmp.path().join("o2/windows"))
    );
}
