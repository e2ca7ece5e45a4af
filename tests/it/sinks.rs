//! Sinks: rolling by rows and by event time, date/hour partitioning, no temporary files left,
//! Arrow IPC file and stream, and a clear error when an output cannot be created.

use crate::common::{self, Pipeline};

use std::path::Path;

/// The test pipeline over `input` with the sinks `with` adds.
fn pipeline(input: &Path, with: impl FnOnce(Pipeline) -> Pipeline) -> String {
    with(Pipeline::parquet("sinks", input)).text()
}

/// 3 sensors, one reading per second for 2 hours, starting at 2024-03-04T23:00:00Z.
fn input(dir: &Path) -> std::path::PathBuf {
    let t0 = 1_709_593_200_000i64;
    let rows: Vec<_> = (0..7200i64)
        .flat_map(|s| ["a", "b", "c"].map(|n| (Some(n), Some(t0 + s * 1000), Some(s as f64))))
        .collect();
    let path = dir.join("in.parquet");
    common::write_readings(&path, &rows);
    path
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out.sort();
    out
}

#[test]
fn parquet_rolls_by_rows_and_partitions_by_hour() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = input(tmp.path());
    let sinks = |p: Pipeline| {
        p.sink_with(
            "windows",
            "windows",
            "roll-rows = 1000\npartition = \"hour\"",
        )
    };
    let out = tmp.path().join("out");
    let s = common::replay_text(&pipeline(&input, sinks), 2, &out).expect("run");
    assert_eq!(s.windows, 3 * 720);
    let files = files_under(&out.join("windows"));
    let hidden = |f: &String| {
        Path::new(f)
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
    };
    assert!(
        files.iter().all(|f| f.ends_with(".parquet") && !hidden(f)),
        "temporary files left: {files:?}"
    );
    let hours: Vec<&str> = files
        .iter()
        .filter_map(|f| f.split("windows/").nth(1))
        .map(|f| f.rsplit_once('/').map_or(f, |x| x.0))
        .collect();
    assert!(
        hours.contains(&"date=2024-03-04/hour=23") && hours.contains(&"date=2024-03-05/hour=00"),
        "{hours:?}"
    );
    // 1080 windows per hour at most 1000 rows per file: two files per hour.
    assert_eq!(files.len(), 4, "{files:?}");
    let csv = common::dump(&out.join("windows"));
    assert_eq!(csv.lines().count() - 1, 3 * 720);
}

#[test]
fn parquet_rolls_by_event_time() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = input(tmp.path());
    let sinks = |p: Pipeline| p.sink_with("windows", "windows", "roll-interval = \"30m\"");
    let out = tmp.path().join("out");
    common::replay_text(&pipeline(&input, sinks), 1, &out).expect("run");
    assert_eq!(files_under(&out.join("windows")).len(), 4);
}

#[test]
fn arrow_ipc_file_and_stream() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = input(tmp.path());
    let sinks = |p: Pipeline| {
        p.sink_with("w", "windows", "kind = \"arrow-ipc\"")
            .sink_with("s", "windows", "kind = \"arrow-ipc\"\nformat = \"stream\"")
    };
    let out = tmp.path().join("out");
    common::replay_text(&pipeline(&input, sinks), 2, &out).expect("run");
    let file = common::dump(&out.join("w.arrow"));
    let stream = common::dump(&out.join("s.arrows"));
    assert_eq!(file.lines().count() - 1, 3 * 720);
    assert_eq!(file, stream);
    assert!(!out.join(".w.arrow.tmp").exists());
}

#[test]
fn an_output_that_cannot_be_created_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = input(tmp.path());
    let blocker = tmp.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").expect("write");
    let sinks = |p: Pipeline| p.sink("windows");
    let err = common::replay_text(&pipeline(&input, sinks), 1, &blocker.join("out"))
        .expect_err("must fail");
    assert!(err.to_string().contains("not-a-dir/out/windows"), "{err}");
}

#[test]
fn a_rerun_replaces_the_previous_parts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = input(tmp.path());
    let out = tmp.path().join("out");
    let many = |p: Pipeline| p.sink_with("windows", "windows", "roll-rows = 100");
    common::replay_text(&pipeline(&input, many), 1, &out).expect("run");
    assert!(files_under(&out.join("windows")).len() > 20);
    let one = |p: Pipeline| p.sink("windows");
    common::replay_text(&pipeline(&input, one), 1, &out).expect("run");
    assert_eq!(files_under(&out.join("windows")).len(), 1);
}

#[test]
fn parquet_files_say_what_wrote_them() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let tmp = tempfile::tempdir().expect("tmp");
    let input = input(tmp.path());
    let out = tmp.path().join("out");
    let text = pipeline(&input, |p| {
        p.sinks(&["windows", "alerts"])
            .sink_with("windows-int", "windows", "times = \"int64\"\n")
    });
    common::replay_text(&text, 1, &out).expect("run");
    let hash = format!("fnv1a64:{:016x}", hyflow::batch::sensor_hash(&text));
    // Schema version 2: typed times; 1 (int64 times) where the sink asks for it.
    for (output, version) in [("windows", "2"), ("alerts", "2"), ("windows-int", "1")] {
        let dir = out.join(output);
        let file = std::fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .find(|p| p.extension().is_some_and(|e| e == "parquet"))
            .unwrap_or_else(|| panic!("no {output} file"));
        let r =
            SerializedFileReader::new(std::fs::File::open(&file).expect("open")).expect("parquet");
        let kv: std::collections::BTreeMap<String, String> = r
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .expect("key-value metadata")
            .iter()
            .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
            .collect();
        assert_eq!(kv["hyflow.version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(kv["hyflow.pipeline"], "sinks");
        assert_eq!(kv["hyflow.pipeline_hash"], hash);
        assert_eq!(kv["hyflow.output"], output.trim_end_matches("-int"));
        assert_eq!(kv["hyflow.schema_version"], version);
    }
}

/// Time columns are `timestamp[ms, UTC]` (`times = "int64"` keeps int64 ms), `hyflow cat`
/// prints them as RFC 3339, and the values are the same either way.
#[test]
fn time_columns_are_utc_timestamps_unless_a_sink_asks_for_int64() {
    use arrow_schema::{DataType, TimeUnit};
    let tmp = tempfile::tempdir().expect("tmp");
    let input = input(tmp.path());
    let out = tmp.path().join("out");
    let text = pipeline(&input, |p| {
        p.sinks(&["windows", "late"])
            .sink_with("windows-int", "windows", "times = \"int64\"\n")
            .sink_with(
                "windows-ipc",
                "windows",
                "kind = \"arrow-ipc\"\ntimes = \"int64\"\n",
            )
    });
    common::replay_text(&text, 1, &out).expect("run");
    let utc = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let typed = hyflow::tools::inspect::read(&out.join("windows")).expect("windows");
    let plain = hyflow::tools::inspect::read(&out.join("windows-int")).expect("windows-int");
    let ipc = hyflow::tools::inspect::read(&out.join("windows-ipc.arrow")).expect("windows-ipc");
    for c in ["window_start", "window_end"] {
        assert_eq!(
            typed[0].schema().field_with_name(c).expect(c).data_type(),
            &utc
        );
        assert_eq!(
            plain[0].schema().field_with_name(c).expect(c).data_type(),
            &DataType::Int64
        );
        assert_eq!(
            ipc[0].schema().field_with_name(c).expect(c).data_type(),
            &DataType::Int64
        );
    }
    let late = hyflow::tools::inspect::read(&out.join("late")).expect("late");
    if let Some(b) = late.first() {
        assert_eq!(
            b.schema()
                .field_with_name("time")
                .expect("time")
                .data_type(),
            &utc
        );
        assert_eq!(
            b.schema()
                .field_with_name("watermark")
                .expect("wm")
                .data_type(),
            &utc
        );
    }
    // The same values: ms in the dump of both.
    assert_eq!(
        common::dump(&out.join("windows")),
        common::dump(&out.join("windows-int"))
    );
    // `hyflow cat` prints RFC 3339 (the input starts 2024-03-04T23:00:00Z; 10 s windows).
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_hyflow"))
        .arg("cat")
        .arg(out.join("windows"))
        .output()
        .expect("cat");
    let csv = String::from_utf8_lossy(&o.stdout);
    assert!(
        csv.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("a,2024-03-04T23:00:00Z,2024-03-04T23:00:10Z,")),
        "{}",
        csv.lines().take(3).collect::<Vec<_>>().join("\n")
    );
}
