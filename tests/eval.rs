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
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    };
    let (a, b) = (rows(&ours), rows(&theirs));
    assert_eq!(a.len(), 3, "{ours}");
    assert_eq!(a, b, "hyflow eval:\n{ours}\nnab_score.py:\n{theirs}");
}

#[test]
fn episode_scores_on_a_synthetic_fixture() {
    let out = Command::new(env!("CARGO_BIN_EXE_hyflow"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "eval",
            "pipelines/traffic.toml",
            "--labels",
            "fixtures/traffic.labels.json",
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
    let text = String::from_utf8_lossy(&out.stdout);
    // The baseline detectors' figures (docs/detection.md); a change to them shows here.
    assert!(text.contains("159 labels, 75 alert episodes"), "{text}");
    assert!(
        text.contains("precision 1.000  recall 0.447  F1 0.617"),
        "{text}"
    );
    assert!(
        text.contains("median detection delay 1.2 windows"),
        "{text}"
    );
}
