//! The CSV source: NAB-style files with timestamps as text, sensor ids from the file name,
//! unparseable fields to rejects, and `hyflow score` writing one scored row per input row.

use crate::common;

use hyflow::config::{ColumnMapping, CsvOptions, CsvTime};
use hyflow::stages::source::{Partition, csv::CsvPartition};

#[test]
fn reads_batches_with_nulls_for_unreadable_fields() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("series_1.csv");
    std::fs::write(&path, "timestamp,value\n2015-09-08 11:39:00,73\nnot a time,62\n2015-09-08 11:59:00,abc\n\n2015-09-08 12:19:00,69\n").expect("write");
    let columns = ColumnMapping {
        time: "timestamp".into(),
        ..ColumnMapping::default()
    };
    let csv = CsvOptions {
        time_format: CsvTime::Iso,
        sensor_from_file_name: true,
    };
    let mut p =
        CsvPartition::open(&path, &columns, &csv, &hyflow::timefmt::Zone::UTC, 3).expect("open");
    let mut rows = Vec::new();
    while let Some(b) = p.next_batch() {
        let (first, b) = b.expect("batch");
        rows.push((
            first,
            b.num_rows(),
            b.column(1).null_count(),
            b.column(2).null_count(),
        ));
    }
    // Batches of 3 rows: the last, short batch is not lost at the end of the file.
    assert_eq!(rows, vec![(0, 3, 1, 1), (3, 1, 0, 0)]);
}

#[test]
fn a_csv_pipeline_replays() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("series_1.csv");
    let mut text = String::from("timestamp,value\n");
    for i in 0..200 {
        text.push_str(&format!(
            "{},{}\n",
            hyflow::timefmt::format_timestamp(1_441_712_340_000 + i * 300_000),
            i % 7
        ));
    }
    std::fs::write(&path, text).expect("write");
    let pipeline = common::pipeline::shipped("nab", |c| c.set_input(&path.display().to_string()));
    let s = common::replay_text(&pipeline, 1, &tmp.path().join("out")).expect("run");
    assert_eq!(s.rows_in, 200);
    assert_eq!(
        s.windows, 200,
        "one 1-minute window per 5-minute reading: {s:?}"
    );
}
