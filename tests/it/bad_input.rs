//! Bad input: corrupt or mismatched files get a clear error naming the file (and column);
//! bad rows go to the rejects output with a reason; late rows to the late output; nothing else
//! is lost.

use crate::common::{Pipeline, dump, replay_text, write_readings};
use std::path::Path;

fn pipeline(input: &str, extra_source: &str) -> String {
    Pipeline::parquet("bad", input)
        .source("max-out-of-orderness = \"1s\"")
        .source(extra_source)
        .with("[[clean.class]]\nmatch = \"*\"\nmin = -100.0\nmax = 100.0")
        .sinks(&["windows", "rejects", "late"])
        .text()
}

fn good_rows() -> Vec<(Option<&'static str>, Option<i64>, Option<f64>)> {
    (0..100)
        .map(|i| {
            (
                Some(if i % 2 == 0 { "a" } else { "b" }),
                Some(i * 500),
                Some(i as f64 / 10.0),
            )
        })
        .collect()
}

fn count_rows(csv: &str) -> usize {
    csv.lines().count().saturating_sub(1)
}

#[test]
fn bad_rows_are_rejected_with_reasons_and_the_rest_is_kept() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = tmp.path().join("in.parquet");
    let mut rows = good_rows();
    rows.push((Some("a"), Some(10_100), Some(f64::NAN)));
    rows.push((Some("a"), Some(10_200), Some(1e9)));
    rows.push((None, Some(10_300), Some(1.0)));
    rows.push((Some("b"), None, Some(1.0)));
    rows.push((Some("b"), Some(10_400), None));
    rows.push((Some("a"), Some(1_000), Some(5.0))); // late: window [0,10s) closed at watermark ~48.5 s
    write_readings(&input, &rows);
    let out = tmp.path().join("out");
    let s =
        replay_text(&pipeline(&input.display().to_string(), ""), 2, &out).expect("run succeeds");
    assert_eq!((s.rows_in, s.rejected, s.late), (106, 5, 1));
    let rejects = dump(&out.join("rejects"));
    for reason in [
        "value is NaN",
        "above the valid maximum 100",
        "sensor id is null",
        "time is null",
        "value is null",
    ] {
        assert!(
            rejects.contains(reason),
            "missing reason {reason:?} in\n{rejects}"
        );
    }
    assert!(
        rejects.contains(&format!("{},100,a,10100,NaN,value is NaN", input.display())),
        "{rejects}"
    );
    let late = dump(&out.join("late"));
    assert_eq!(count_rows(&late), 1, "{late}");
    assert!(late.contains(",105,a,1000,5.0,"), "{late}");
    // Every good reading made it into a window: 100 readings over 50 s, 2 sensors.
    let windows = dump(&out.join("windows"));
    let total: i64 = windows
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .nth(3)
                .and_then(|c| c.parse::<i64>().ok())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(total, 100, "{windows}");
}

#[test]
fn corrupt_file_fails_with_its_name() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = tmp.path().join("corrupt.parquet");
    std::fs::write(&input, b"PAR1 this is not parquet at all").expect("write");
    let err = replay_text(
        &pipeline(&input.display().to_string(), ""),
        1,
        &tmp.path().join("out"),
    )
    .expect_err("must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("corrupt.parquet") && msg.contains("not a readable Parquet file"),
        "{msg}"
    );
}

#[test]
fn corrupt_file_is_skipped_on_request_and_other_files_are_kept() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_readings(&tmp.path().join("a_good.parquet"), &good_rows());
    std::fs::write(tmp.path().join("b_bad.parquet"), b"garbage").expect("write");
    let glob = format!("{}/*.parquet", tmp.path().display());
    let out = tmp.path().join("out");
    let s = replay_text(&pipeline(&glob, "on-bad-file = \"skip\""), 2, &out).expect("run succeeds");
    assert_eq!((s.rows_in, s.rejected), (100, 1));
    let rejects = dump(&out.join("rejects"));
    assert!(
        rejects.contains("b_bad.parquet") && rejects.contains("file skipped"),
        "{rejects}"
    );
    assert_eq!(count_rows(&dump(&out.join("windows"))), 10);
}

#[test]
fn missing_column_names_file_and_column() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = tmp.path().join("in.parquet");
    write_readings(&input, &good_rows());
    let text = pipeline(
        &input.display().to_string(),
        "columns = { value = \"reading\" }",
    );
    let msg = replay_text(&text, 1, &tmp.path().join("out"))
        .expect_err("must fail")
        .to_string();
    assert!(
        msg.contains("in.parquet")
            && msg.contains("column \"reading\"")
            && msg.contains("the file has: sensor_id, ts, value"),
        "{msg}"
    );
}

#[test]
fn wrong_column_type_names_the_type() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = tmp.path().join("in.parquet");
    write_readings(&input, &good_rows());
    // Map the value to the (string) sensor column.
    let text = pipeline(
        &input.display().to_string(),
        "columns = { value = \"sensor_id\" }",
    );
    let msg = replay_text(&text, 1, &tmp.path().join("out"))
        .expect_err("must fail")
        .to_string();
    assert!(
        msg.contains("column \"sensor_id\"") && msg.contains("has type Utf8; expected a number"),
        "{msg}"
    );
}

#[test]
fn damaged_pages_fail_cleanly_with_the_file_name() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = tmp.path().join("damaged.parquet");
    let rows: Vec<_> = (0..20_000)
        .map(|i| (Some("a"), Some(i64::from(i) * 10), Some(f64::from(i).sin())))
        .collect();
    write_readings(&input, &rows);
    let mut bytes = std::fs::read(&input).expect("read");
    // Overwrite the middle of the data pages; the footer stays intact.
    let mid = bytes.len() / 3;
    for b in &mut bytes[mid..mid + 200] {
        *b = 0xAB;
    }
    std::fs::write(&input, &bytes).expect("write");
    match replay_text(
        &pipeline(&input.display().to_string(), ""),
        1,
        &tmp.path().join("out"),
    ) {
        Err(e) => assert!(e.to_string().contains("damaged.parquet"), "{e}"),
        // Damage inside plain-encoded values can decode to other numbers: then the
        // readings are cleaned like any others, and nothing is lost.
        Ok(s) => assert_eq!(s.rows_in, 20_000),
    }
}

#[test]
fn no_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let glob = format!("{}/*.parquet", tmp.path().display());
    let msg = replay_text(&pipeline(&glob, ""), 1, Path::new(&tmp.path().join("out")))
        .expect_err("must fail")
        .to_string();
    assert!(msg.contains("no input file matches"), "{msg}");
}
