//! Golden outputs: every shipped pipeline replayed over its shipped fixture must produce exactly
//! the committed outputs (tests/golden/<pipeline>/<sink>.csv.zst, CSV compressed with zstd),
//! with 1 and with 2 workers.
//!
//! After an intended change, regenerate them with:
//!     HYFLOW_BLESS=1 cargo test --features kernel-emulation --test it golden::
//! and review the difference (`zstdcat tests/golden/traffic/alerts.csv.zst | head`).

use crate::common;

use std::path::{Path, PathBuf};

fn golden_dir(pipeline: &str) -> PathBuf {
    common::root().join("tests/golden").join(pipeline)
}

fn first_difference(want: &str, got: &str) -> String {
    for (i, (a, b)) in want.lines().zip(got.lines()).enumerate() {
        if a != b {
            return format!("line {}:\n  want: {a}\n  got:  {b}", i + 1);
        }
    }
    format!(
        "lengths differ: want {} lines, got {}",
        want.lines().count(),
        got.lines().count()
    )
}

fn check(pipeline: &str, sinks: &[&str]) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let one = tmp.path().join("w1");
    let two = tmp.path().join("w2");
    common::replay(&format!("pipelines/{pipeline}.toml"), 1, None, &one).expect("replay -w 1");
    common::replay(&format!("pipelines/{pipeline}.toml"), 2, None, &two).expect("replay -w 2");
    let bless = std::env::var_os("HYFLOW_BLESS").is_some();
    let dir = golden_dir(pipeline);
    for sink in sinks {
        let got = common::dump(&one.join(sink));
        let got2 = common::dump(&two.join(sink));
        assert!(
            got == got2,
            "{pipeline}/{sink}: -w 1 and -w 2 differ at {}",
            first_difference(&got, &got2)
        );
        let file = dir.join(format!("{sink}.csv.zst"));
        if bless {
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(
                &file,
                zstd::encode_all(got.as_bytes(), 19).expect("compress"),
            )
            .expect("write golden");
            continue;
        }
        let want = read_golden(&file);
        assert!(!want.is_empty(), "{}: empty golden file", file.display());
        assert!(
            want == got,
            "{pipeline}/{sink} differs from {} at {}\n(regenerate with HYFLOW_BLESS=1 cargo test --features kernel-emulation --test it golden:: if intended)",
            file.display(),
            first_difference(&want, &got)
        );
    }
}

fn read_golden(file: &Path) -> String {
    let bytes = std::fs::read(file)
        .unwrap_or_else(|e| panic!("{}: {e} (create with HYFLOW_BLESS=1)", file.display()));
    String::from_utf8(zstd::decode_all(&bytes[..]).expect("decompress")).expect("utf-8")
}

#[test]
fn manufacturing() {
    check(
        "manufacturing",
        &["windows", "alerts", "rejects", "late", "incidents"],
    );
}

#[test]
fn traffic() {
    check(
        "traffic",
        &[
            "windows",
            "alerts",
            "alerts-arrow.arrow",
            "rejects",
            "late",
            "assets",
            "incidents",
        ],
    );
}

#[test]
fn bench() {
    check("bench", &["windows"]);
}

#[test]
fn nab() {
    check("nab", &["windows", "rejects"]);
}

#[test]
fn nab_replay() {
    check("nab-replay", &["windows", "alerts", "rejects"]);
}
