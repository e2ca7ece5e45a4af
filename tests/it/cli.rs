//! The `hyflow` binary: exit codes and what it prints.

use crate::common;
use std::process::Command;

fn hyflow(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hyflow"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run hyflow");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn validate_reports_located_errors_and_exit_code() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\n[source]\nkind = \"parquet\"\npath = \"f.parquet\"\n[window]\nkind = \"tumbling\"\nsize = \"10 sec\"\n").expect("write");
    let (code, _, err) = hyflow(&["validate", &bad.display().to_string()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.toml:7:8: error: invalid duration \"10 sec\""),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    let (code, out, _) = hyflow(&[
        "validate",
        "pipelines/manufacturing.toml",
        "pipelines/traffic.toml",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("pipelines/traffic.toml: ok"), "{out}");
}

#[test]
fn replay_summary_counts_windows_of_unregistered_sensors() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sensors = tmp.path().join("sensors.csv");
    std::fs::write(&sensors, "sensor,asset\nm0000-temp,m0000\n").expect("write");
    let (code, out, err) = hyflow(&[
        "replay",
        "pipelines/bench.toml",
        "--out",
        &tmp.path().display().to_string(),
        "--set",
        &format!("registry.sensors={}", sensors.display()),
        "--set",
        "registry.unknown-sensors=reject",
    ]);
    assert_eq!(code, 0, "{err}");
    // 100 sensors × 10 windows; one sensor is registered.
    for needle in ["windows                10", "windows refused       990"] {
        assert!(out.contains(needle), "{needle:?} not in\n{out}");
    }
    // A registry that holds none of them: nothing kept, which is not a success.
    std::fs::write(&sensors, "sensor,asset\nnone-temp,none\n").expect("write");
    let (code, _, err) = hyflow(&[
        "replay",
        "pipelines/bench.toml",
        "--out",
        &tmp.path().join("none").display().to_string(),
        "--set",
        &format!("registry.sensors={}", sensors.display()),
        "--set",
        "registry.unknown-sensors=reject",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("every one of the 1000 windows was refused"),
        "{err}"
    );
}

#[test]
fn replay_prints_a_summary() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (code, out, err) = hyflow(&[
        "replay",
        "-w",
        "2",
        "pipelines/bench.toml",
        "--out",
        &tmp.path().display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "rows in            100000",
        "windows              1000",
        "dropped",
        "late",
        "alert events",
    ] {
        assert!(out.contains(needle), "{needle:?} not in\n{out}");
    }
    let (code, csv, _) = hyflow(&["cat", &tmp.path().join("windows").display().to_string()]);
    assert_eq!(code, 0);
    assert_eq!(csv.lines().count(), 1001);
}

#[test]
fn explain_and_schema() {
    let (code, out, _) = hyflow(&["explain", "-w", "2", "pipelines/manufacturing.toml"]);
    assert_eq!(code, 0);
    for needle in [
        "1. source",
        "exchange  readings by hash(asset: sensor id up to the last \"-\") % 2",
        "window    [cpu] tumbling 10s",
        "band_defect",
        "on a GPU: a warp per window when a batch averages at most 256 values",
        "on a GPU: level, bearing, stuck (cuda/score.cu",
        "machine = asset-mahalanobis(mean) alpha 0.01 statistic t2, learn gated (gate 6, relearn 360)",
        "stuck = stuck(mean);",
        "sinks",
        "8. checkpoints none (a replay takes them with a [recovery] section)",
    ] {
        assert!(out.contains(needle), "{needle:?} not in\n{out}");
    }
    // The live pipeline: `hyflow run`'s default; a replay's only with [recovery].
    let (code, out, _) = hyflow(&["explain", "pipelines/manufacturing-live.toml"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("8. checkpoints every 30s into out/manufacturing-live/checkpoints, the newest 3 kept (the default of `hyflow run`; not with --until-end)"),
        "{out}"
    );
    let (code, out, _) = hyflow(&["explain", "pipelines/bench.toml"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("8. checkpoints none (a replay takes them with a [recovery] section)"),
        "{out}"
    );
    let (code, out, _) = hyflow(&["schema"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let text = v.to_string();
    assert!(
        text.contains("Largest expected disorder of event time"),
        "doc comments become descriptions"
    );
    assert!(text.contains("max-out-of-orderness"));
}

#[test]
fn gen_is_deterministic() {
    let tmp = tempfile::tempdir().expect("tmp");
    let a = tmp.path().join("a.parquet");
    let b = tmp.path().join("b.parquet");
    for f in [&a, &b] {
        let (code, _, err) = hyflow(&[
            "gen",
            "traffic",
            "--sensors",
            "6",
            "--duration",
            "1d",
            "--seed",
            "3",
            "--out-file",
            &f.display().to_string(),
        ]);
        assert_eq!(code, 0, "{err}");
    }
    assert_eq!(std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"));
    let labels = std::fs::read_to_string(tmp.path().join("a.labels.json")).expect("labels");
    assert!(labels.contains("\"kind\": \"incident\""), "{labels}");
}

#[test]
fn replay_of_a_missing_input_fails_cleanly() {
    let (code, _, err) = hyflow(&[
        "replay",
        "pipelines/bench.toml",
        "--input",
        "does/not/exist.parquet",
        "--out",
        "/tmp/hyflow-never",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no input file matches \"does/not/exist.parquet\""),
        "{err}"
    );
}

#[test]
fn docs_pipeline_md_matches_the_schema() {
    let (code, schema, _) = hyflow(&["schema"]);
    assert_eq!(code, 0);
    let mut child = Command::new("python3")
        .arg("scripts/pipeline_doc.py")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(schema.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let tables = String::from_utf8_lossy(&out.stdout);
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/pipeline.md"))
        .expect("doc");
    assert!(
        doc.trim_end().ends_with(tables.trim()),
        "docs/pipeline.md is out of date: regenerate its key tables with\n  hyflow schema | python3 scripts/pipeline_doc.py"
    );
}

#[test]
fn a_cuda_device_without_cuda_fails_cleanly_and_auto_runs_on_the_cpu() {
    let tmp = tempfile::tempdir().expect("tmp");
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/bench.toml"))
            .expect("read");
    let cuda = tmp.path().join("cuda.toml");
    std::fs::write(&cuda, format!("{text}\n[compute]\ndevice = \"cuda:0\"\n")).expect("write");
    let (code, _, err) = hyflow(&["validate", &cuda.display().to_string()]);
    assert_eq!(code, 0, "cuda:N is a valid setting: {err}");
    // SAFETY: only probes whether the library loads.
    if unsafe { cudarc::driver::sys::is_culib_present() } {
        eprintln!("a CUDA driver is present here: the failure path is not exercised");
        return;
    }
    let out = tmp.path().join("out").display().to_string();
    let (code, _, err) = hyflow(&["replay", &cuda.display().to_string(), "--out", &out]);
    assert_eq!(code, 1);
    assert!(
        err.contains("compute device \"cuda:0\": no CUDA driver"),
        "{err}"
    );
    let (code, stdout, err) = hyflow(&["replay", "pipelines/bench.toml", "--out", &out]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("device = \"auto\": using the CPU"), "{err}");
    assert!(
        stdout.contains("compute engines:") && stdout.contains("cpu "),
        "{stdout}"
    );
    // No GPU was used, so no GPU energy is claimed (nor a CPU figure where RAPL is unreadable).
    let energy = stdout
        .lines()
        .find(|l| l.contains("energy:"))
        .expect("energy line");
    assert!(energy.ends_with("no GPU used"), "{energy}");
    if hyflow::energy::rapl_now().is_none() {
        assert!(energy.contains("CPU counter absent"), "{energy}");
    }
}

#[test]
fn score_writes_one_row_per_input_row_matching_its_golden_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let score = |extra: &[&str]| {
        let out = tmp.path().join("scores.csv");
        let mut args = vec![
            "score",
            "pipelines/nab.toml",
            "--input",
            "fixtures/nab/speed_7578.csv",
            "--out-file",
        ];
        let path = out.display().to_string();
        args.push(&path);
        args.extend_from_slice(extra);
        let (code, _, err) = hyflow(&args);
        assert_eq!(code, 0, "{err}");
        std::fs::read_to_string(&out).expect("scores")
    };
    let got = score(&[]);
    let input = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/nab/speed_7578.csv"
    ))
    .expect("input");
    assert_eq!(got.lines().count(), input.lines().count());
    assert_eq!(got.lines().next(), Some("timestamp,value,anomaly_score"));
    for (g, i) in got.lines().zip(input.lines()).skip(1) {
        // The input's `2015-09-08 11:39:00` (UTC in nab.toml) as RFC 3339, then its value.
        let (ts, value) = i.split_once(',').expect("input row");
        let rfc = format!("{}Z", ts.replacen(' ', "T", 1));
        assert!(g.starts_with(&format!("{rfc},{value},")), "{g} is not {i}");
        let s: f64 = g
            .rsplit(',')
            .next()
            .and_then(|s| s.parse().ok())
            .expect("score");
        assert!((0.0..=1.0).contains(&s), "{g}");
    }
    // `--timestamps input` echoes the input's text; the scores are the same.
    let echoed = score(&["--timestamps", "input"]);
    for ((e, i), g) in echoed.lines().zip(input.lines()).zip(got.lines()).skip(1) {
        assert!(e.starts_with(&format!("{i},")), "{e} does not echo {i}");
        assert_eq!(e.rsplit(',').next(), g.rsplit(',').next());
    }
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/nab/speed_7578.scores.csv");
    if std::env::var_os("HYFLOW_BLESS").is_some() {
        std::fs::create_dir_all(golden.parent().expect("dir")).expect("mkdir");
        std::fs::write(&golden, &got).expect("bless");
    }
    let want = std::fs::read_to_string(&golden).expect("golden scores (HYFLOW_BLESS=1 creates it)");
    assert!(want == got, "scores differ from {}", golden.display());
}

#[test]
fn device_option_overrides_the_pipeline_and_is_checked() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out").display().to_string();
    let (code, stdout, err) = hyflow(&[
        "replay",
        "pipelines/bench.toml",
        "--device",
        "cpu",
        "--out",
        &out,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("device = \"auto\""), "{err}");
    assert!(stdout.contains("    cpu "), "{stdout}");
    let (code, _, err) = hyflow(&["replay", "pipelines/bench.toml", "--device", "gpu"]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown device \"gpu\""), "{err}");
}

#[test]
fn score_of_multi_sensor_input_names_each_rows_sensor_and_asset() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("scores.csv");
    let (code, _, err) = hyflow(&[
        "score",
        "pipelines/traffic.toml",
        "--input",
        "fixtures/traffic.parquet",
        "--out-file",
        &out.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let got = std::fs::read_to_string(&out).expect("scores");
    let mut lines = got.lines();
    assert_eq!(
        lines.next(),
        Some("timestamp,sensor_id,asset,value,anomaly_score")
    );
    let (mut rows, mut scored) = (0, 0);
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f.len(), 5, "{l}");
        let t = hyflow::timefmt::parse_timestamp(f[0]).expect("a time");
        assert_eq!(f[0], hyflow::timefmt::format_rfc3339(t), "{l}");
        assert!(f[1].starts_with(&format!("{}-", f[2])), "{l}");
        let s: f64 = f[4].parse().expect("score");
        assert!((0.0..=1.0).contains(&s), "{l}");
        rows += 1;
        scored += usize::from(s > 0.0);
    }
    // One row per input row (the fixture's 302,400 readings), most of them scored.
    assert_eq!(rows, 302_400);
    assert!(scored * 2 > rows, "{scored} of {rows} rows have a score");
}

#[test]
fn rust_log_sets_the_log_level() {
    let run = |level: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_hyflow"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("HYFLOW_LOG")
            .env("RUST_LOG", level)
            .args([
                "score",
                "pipelines/nab.toml",
                "--input",
                "fixtures/nab/speed_7578.csv",
                "--out-file",
                "/dev/null",
            ])
            .output()
            .expect("hyflow score");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    // The device line is logged at info.
    assert!(run("info").contains("INFO"), "info shows it");
    assert!(!run("warn").contains("INFO"), "warn hides it");
}

#[test]
fn metrics_and_json_logs_on_the_command_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().display().to_string();
    let (code, _, err) = hyflow(&[
        "replay",
        "pipelines/traffic.toml",
        "--out",
        &out,
        "--metrics",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    // Every log line is one JSON object; the endpoint said where it listened.
    let lines: Vec<serde_json::Value> = err
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("a JSON log line"))
        .collect();
    assert!(!lines.is_empty(), "{err}");
    assert!(!err.contains(" INFO "), "no text log lines: {err}");
    let said = lines
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str())
        .any(|m| m.starts_with("metrics on http://127.0.0.1:") && m.ends_with("/metrics"));
    assert!(said, "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "no colour codes off a terminal: {err}"
    );
    let (code, _, err) = hyflow(&["replay", "pipelines/traffic.toml", "--metrics", "localhost"]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("not an address to listen on"), "{err}");
    // A port already taken: a clear error before anything runs, and nothing written.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let out2 = tmp.path().join("taken");
    let (code, _, err) = hyflow(&[
        "replay",
        "pipelines/traffic.toml",
        "-q",
        "--out",
        &out2.display().to_string(),
        "--metrics",
        &port,
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("--metrics 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(!out2.join("windows").join("part-00000.parquet").exists());
}

#[test]
fn environment_variables_are_substituted_and_an_unset_one_is_a_located_error() {
    // The manufacturing pipeline made portable: its input and window size from the
    // environment, its name with a default, and a literal dollar in a comment.
    let tmp = tempfile::tempdir().expect("tmp");
    let text = std::fs::read_to_string("pipelines/manufacturing.toml")
        .expect("read")
        .replacen(
            "name = \"manufacturing\"",
            "name = \"${LINE_NAME:-manufacturing}\"",
            1,
        )
        .replace("\"fixtures/manufacturing.parquet\"", "\"${HYFLOW_INPUT}\"")
        .replace("size = \"10s\"", "size = \"${WINDOW}\" # costs $$0 and $1");
    assert!(text.contains("${HYFLOW_INPUT}") && text.contains("${WINDOW}"));
    let file = tmp.path().join("portable.toml");
    std::fs::write(&file, &text).expect("write");
    let run = |env: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hyflow"))
            .args(["explain", &file.display().to_string()])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("HYFLOW_INPUT")
            .env_remove("LINE_NAME")
            .envs(env.iter().copied())
            .output()
            .expect("run hyflow");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = run(&[
        ("HYFLOW_INPUT", "fixtures/manufacturing.parquet"),
        ("WINDOW", "30s"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pipeline \"manufacturing\""), "{out}");
    assert!(
        out.contains("\"fixtures/manufacturing.parquet\" (1 file(s) now)"),
        "{out}"
    );
    assert!(out.contains("tumbling 30s"), "{out}");
    let (code, _, err) = run(&[("WINDOW", "30s")]);
    assert_eq!(code, 2, "{err}");
    let line = text
        .lines()
        .position(|l| l.contains("${HYFLOW_INPUT}"))
        .expect("line")
        + 1;
    assert!(
        err.contains(&format!("portable.toml:{line}:"))
            && err.contains("environment variable HYFLOW_INPUT is not set")
            && err.contains("${HYFLOW_INPUT:-value}"),
        "{err}"
    );
}

#[test]
fn set_changes_one_setting_before_validation() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let out_arg = out.display().to_string();
    let (code, _, err) = hyflow(&[
        "replay",
        "pipelines/manufacturing.toml",
        "--out",
        &out_arg,
        "--set",
        "window.size=30s",
        "--set",
        "compute.device=cpu",
        "--set",
        "clean.reject-bad-quality=false",
    ]);
    assert_eq!(code, 0, "{err}");
    let windows = common::dump(&out.join("windows"));
    let row = windows.lines().nth(1).expect("a window");
    let (start, end): (i64, i64) = {
        let f: Vec<&str> = row.split(',').collect();
        (f[1].parse().expect("start"), f[2].parse().expect("end"))
    };
    assert_eq!(end - start, 30_000, "{row}");
    // A wrong value is an error naming the --set, and nothing is written.
    let (code, _, err) = hyflow(&[
        "replay",
        "pipelines/manufacturing.toml",
        "--out",
        &tmp.path().join("bad").display().to_string(),
        "--set",
        "window.size=30 sec",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("invalid duration") && err.contains("(in --set window.size=30 sec)"),
        "{err}"
    );
    assert!(!tmp.path().join("bad").exists());
    let (code, _, err) = hyflow(&["replay", "pipelines/manufacturing.toml", "--set", "size"]);
    assert_ne!(code, 0);
    assert!(err.contains("expected KEY.PATH=VALUE"), "{err}");
}
