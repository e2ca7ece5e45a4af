//! `hyflow eval` scores the NAB dev series exactly as the independent reference scorer
//! (../shared/tools/nab_score.py, beside the repository as in CI) does, on all three profiles.

use std::process::Command;

#[test]
fn nab_scores_equal_the_reference_scorer() {
    let root = env!("CARGO_MANIFEST_DIR");
    let scorer = format!("{root}/../shared/tools/nab_score.py");
    assert!(
        std::path::Path::new(&scorer).exists(),
        "{scorer} not found (the shared folder lies beside the repository)"
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let results = tmp.path().join("results");
    let out = Command::new(env!("CARGO_BIN_EXE_hyflow"))
        .current_dir(root)
        .args([
            "eval",
            "pipelines/nab.toml",
            "--labels",
            "fixtures/nab/combined_windows_dev.json",
            "--data-dir",
            "fixtures/nab",
            "--results-dir",
        ])
        .arg(&results)
        .output()
        .expect("hyflow eval");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = String::from_utf8_lossy(&out.stdout).to_string();
    let reference = Command::new("python3")
        .arg(&scorer)
        .arg(&results)
        .args([
            "--labels",
            &format!("{root}/fixtures/nab/combined_windows_dev.json"),
        ])
        .output()
        .expect("python3");
    assert!(
        reference.status.success(),
        "{}",
        String::from_utf8_lossy(&reference.stderr)
    );
    let theirs = String::from_utf8_lossy(&reference.stdout).to_string();
    let rows = |text: &str| -> Vec<Vec<String>> {
        text.lines()
            .filter(|l| l.starts_with("standard") || l.starts_with("reward_"))
            .map(|l| {
                l.split_whitespace()
                    .map(|w| {
                        // Numbers compare by value: the scorers print 0.363420 and 0.36342.
                        w.parse::<f64>()
                            .map_or_else(|_| w.to_string(), |v| format!("{v:.6}"))
                    })
                    .collect()
            })
            .collect()
    };
    let (a, b) = (rows(&ours), rows(&theirs));
    assert_eq!(a.len(), 3, "{ours}");
    assert_eq!(a, b, "hyflow eval:\n{ours}\nnab_score.py:\n{theirs}");
}

/// Runs `hyflow eval` on a shipped synthetic fixture and returns its report.
fn eval_fixture(name: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hyflow"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "eval",
            &format!("pipelines/{name}.toml"),
            "--labels",
            &format!("fixtures/{name}.labels.json"),
            "-w",
            "2",
        ])
        .output()
        .expect("hyflow eval");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number after `key` in `text`.
fn figure(text: &str, key: &str) -> f64 {
    text.split(key)
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no {key:?} in {text}"))
}

#[test]
fn episode_scores_on_the_synthetic_fixtures_meet_the_targets() {
    // The detection issue's targets: F1 >= 0.9 and median delay <= 2 windows on the shipped
    // fixtures (docs/detection.md also reports other seeds, where delay is not always met).
    for name in ["traffic", "manufacturing"] {
        let text = eval_fixture(name);
        assert!(figure(&text, "F1") >= 0.9, "{name}: {text}");
        assert!(
            figure(&text, "median detection delay") <= 2.0,
            "{name}: {text}"
        );
    }
}

#[test]
fn episode_scores_are_the_documented_ones() {
    // The figures in docs/detection.md; a change to the detectors shows here.
    let text = eval_fixture("traffic");
    assert!(text.contains("159 labels, 239 alert episodes"), "{text}");
    assert!(
        text.contains("precision 0.958  recall 0.981  F1 0.970"),
        "{text}"
    );
    assert!(
        text.contains("median detection delay 0.8 windows"),
        "{text}"
    );
}

#[test]
fn nab_eval_of_one_input_file_uses_its_windows() {
    let out = Command::new(env!("CARGO_BIN_EXE_hyflow"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "eval",
            "pipelines/nab-cv/levels.toml",
            "--input",
            "fixtures/nab/speed_7578.csv",
            "--labels",
            "fixtures/nab/combined_windows_dev.json",
        ])
        .output()
        .expect("hyflow eval");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("(1 files, 4 windows)"), "{text}");
    let standard = text
        .lines()
        .find(|l| l.starts_with("standard"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(standard.contains("4/4"), "{standard}");
}

#[test]
fn cross_validation_chooses_without_the_held_out_category() {
    let out = Command::new(env!("CARGO_BIN_EXE_hyflow"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "eval",
            "pipelines/nab.toml",
            "--labels",
            "fixtures/nab/combined_windows_dev.json",
            "--data-dir",
            "fixtures/nab",
            "--cv",
            "category",
            "--candidate",
            "pipelines/nab-cv/level-only.toml",
        ])
        .output()
        .expect("hyflow eval --cv");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("over 5 files, 2 candidate(s)"), "{text}");
    let pooled: Vec<f64> = text
        .lines()
        .filter_map(|l| l.split("held-out (pooled) score ").nth(1))
        .map(|s| s.trim().parse().expect("a score"))
        .collect();
    assert_eq!(pooled.len(), 3, "one per profile: {text}");
    // Two folds per profile (the fixtures hold two NAB categories), each naming its choice.
    assert_eq!(text.matches("  realKnownCause ").count(), 3, "{text}");
    assert_eq!(text.matches("  realTraffic ").count(), 3, "{text}");
    // Held out, the score is below the in-sample ones of both pipelines (59.9 and 46.3
    // standard on these five files): thresholds chosen on another category fit it less well.
    assert!(pooled[0] < 46.0 && pooled[0] > 20.0, "{text}");
}

#[test]
fn asset_rows_that_alert_name_the_sensors_of_a_labelled_anomaly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let st = Command::new(env!("CARGO_BIN_EXE_hyflow"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["replay", "-q", "pipelines/traffic.toml", "--out"])
        .arg(&out)
        .output()
        .expect("replay");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let labels: Vec<hyflow::tools::eval::SensorLabel> = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/traffic.labels.json"
        ))
        .expect("labels"),
    )
    .expect("json");
    let csv = hyflow::tools::inspect::to_csv_with(
        &hyflow::tools::inspect::read(&out.join("assets")).expect("assets"),
        hyflow::tools::inspect::Times::Millis,
    );
    let (mut alerting, mut explained, mut opens) = (0, 0, 0);
    for line in csv.lines().skip(1) {
        // asset,window_start,window_end,score,ai_score,alert,"top_sensors",episode,state
        let mut tail = line.rsplitn(3, ',');
        let (state, episode, head) = (
            tail.next().unwrap_or(""),
            tail.next().unwrap_or(""),
            tail.next().unwrap_or(""),
        );
        let f: Vec<&str> = head.splitn(7, ',').collect();
        if state == "open" {
            assert!(episode.parse::<u64>().is_ok_and(|e| e >= 1), "{line}");
            opens += 1;
        }
        if f[5] != "true" {
            continue;
        }
        alerting += 1;
        let (asset, start, end): (&str, i64, i64) = (
            f[0],
            f[1].parse().expect("start"),
            f[2].parse().expect("end"),
        );
        let top: Vec<&str> = f[6]
            .trim_matches('"')
            .split(',')
            .map(|s| s.split(':').next().unwrap_or(""))
            .collect();
        assert!(
            top.iter().all(|s| s.starts_with(&format!("{asset}-"))),
            "{line}: names sensors of another asset"
        );
        // The first named sensor has a labelled anomaly around this window.
        if labels
            .iter()
            .any(|l| l.sensor == top[0] && l.start < end + 3_600_000 && l.end > start - 3_600_000)
        {
            explained += 1;
        }
    }
    assert!(alerting > 10, "{alerting} alerting asset rows");
    // Asset episodes open (and resolve) as sensor episodes do.
    assert!(
        opens > 5 && opens < alerting,
        "{opens} asset episodes for {alerting} alerting rows"
    );
    assert!(
        explained * 10 >= alerting * 8,
        "{explained} of {alerting} alerting asset rows name a labelled sensor first"
    );
}

#[test]
fn manufacturing_finds_every_long_fault_by_machine() {
    // Two generated plants of two machines whose faults (`gen --long-faults`) cover the four
    // kinds: broken relation and drift (seed 1), level shift and valve step (seed 3). The
    // seeds were picked for their kinds, not their scores. docs/detection.md has the figures.
    let tmp = tempfile::tempdir().expect("tmp");
    for (seed, f1, outside) in [("1", "0.800", 1), ("3", "1.000", 0)] {
        let data = tmp.path().join(format!("plant{seed}.parquet"));
        let made = Command::new(env!("CARGO_BIN_EXE_hyflow"))
            .args(["gen", "manufacturing", "--long-faults", "--sensors", "8"])
            .args(["--duration", "2h", "--seed", seed, "--out-file"])
            .arg(&data)
            .output()
            .expect("hyflow gen");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let out = Command::new(env!("CARGO_BIN_EXE_hyflow"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["eval", "pipelines/manufacturing.toml", "--labels"])
            .arg(tmp.path().join(format!("plant{seed}.labels.json")))
            .arg("--input")
            .arg(&data)
            .output()
            .expect("hyflow eval");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let by_asset = text
            .split("by asset")
            .nth(1)
            .unwrap_or_else(|| panic!("no per-machine report: {text}"));
        assert!(
            by_asset.contains(&format!(
                "labels detected 2/2, episodes outside labels {outside}"
            )),
            "seed {seed}: {text}"
        );
        assert!(
            by_asset.contains(&format!("F1 {f1}")),
            "seed {seed}: {text}"
        );
        // Seed 1's drift is only caught by its end (docs/detection.md).
        let on = if seed == "1" { 1 } else { 2 };
        assert!(
            by_asset.contains(&format!("labels detected while they last {on}/2")),
            "seed {seed}: {text}"
        );
    }
}
