//! Checkpoints and `--resume` (`[recovery]`): a replay stopped at any point — killed with
//! SIGKILL at random moments, or "crashed" right after each of its checkpoints with the parts
//! it wrote later still on disk — goes on to exactly the rows of a replay never stopped; a
//! damaged newest checkpoint is named and the one before it used; what cannot be saved yet
//! is refused by name.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn hyflow() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hyflow"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// The manufacturing pipeline on the CPU, without its tests, taking a checkpoint every millisecond into `dir/checkpoints` (all kept), and
/// optionally without `[recovery]`.
fn pipeline(dir: &Path, recovery: bool) -> PathBuf {
    pipeline_of("pipelines/manufacturing.toml", dir, recovery)
}

/// [`pipeline`], of another shipped pipeline.
fn pipeline_of(file: &str, dir: &Path, recovery: bool) -> PathBuf {
    pipeline_edited(file, dir, recovery, &|t| t.to_string())
}

/// [`pipeline_of`], its text changed by `edit` first.
fn pipeline_edited(
    file: &str,
    dir: &Path,
    recovery: bool,
    edit: &dyn Fn(&str) -> String,
) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = edit(&std::fs::read_to_string(root.join(file)).expect("read"));
    let mut kept = Vec::new();
    for block in text.split("\n[").enumerate().map(|(i, b)| {
        if i == 0 {
            b.to_string()
        } else {
            format!("[{b}")
        }
    }) {
        if block.starts_with("[[test") {
            continue;
        }
        kept.push(block.replace("device = \"auto\"", "device = \"cpu\""));
    }
    let mut p = kept.join("\n");
    if recovery {
        p.push_str(&format!(
            "\n[recovery]\ncheckpoint-interval = \"1ms\"\nkeep = 1000\ndir = \"{}\"\n",
            dir.join("checkpoints").display()
        ));
    }
    let path = dir.join(if recovery {
        "recovery.toml"
    } else {
        "plain.toml"
    });
    std::fs::write(&path, p).expect("write pipeline");
    path
}

fn replay(pipeline: &Path, out: &Path, extra: &[&str]) -> (i32, String) {
    replay_w(pipeline, out, 2, extra)
}

/// [`replay`] with `workers` worker threads.
fn replay_w(pipeline: &Path, out: &Path, workers: usize, extra: &[&str]) -> (i32, String) {
    let o = hyflow()
        .arg("replay")
        .arg(pipeline)
        .arg("--out")
        .arg(out)
        .args(["-w", &workers.to_string()])
        .args(extra)
        .output()
        .expect("run hyflow");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

/// Every output's rows as CSV (file boundaries aside: a checkpoint closes the current part).
fn rows(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .expect("outputs")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir() && e.file_name() != "checkpoints")
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert!(
        ["windows", "alerts", "rejects"]
            .iter()
            .all(|o| names.iter().any(|n| n == o)),
        "{names:?}"
    );
    names
        .iter()
        .map(|o| {
            let b = hyflow::tools::inspect::read(&out.join(o)).expect("read output");
            format!("{o}\n{}", hyflow::tools::inspect::to_csv(&b))
        })
        .collect()
}

/// The outputs of a replay never stopped, and of one that took checkpoints.
fn reference(tmp: &Path) -> (Vec<String>, PathBuf) {
    let plain = pipeline(tmp, false);
    let out = tmp.join("plain");
    let (code, err) = replay(&plain, &out, &["-q"]);
    assert_eq!(code, 0, "{err}");
    (rows(&out), pipeline(tmp, true))
}

fn assert_same(want: &[String], out: &Path, what: &str) {
    let got = rows(out);
    assert_eq!(got.len(), want.len(), "{what}: outputs");
    for (w, g) in want.iter().zip(&got) {
        // Each output: its name, its columns, its rows.
        let name = w.lines().next().unwrap_or_default();
        let o = w.lines().nth(1).unwrap_or_default();
        assert!(
            w.lines().count() > 2 || name == "rejects" || name == "late",
            "{what}: the reference has rows ({name}: {o})"
        );
        if w != g {
            let line = w.lines().zip(g.lines()).position(|(a, b)| a != b);
            let show = |t: &str| {
                line.and_then(|l| t.lines().nth(l))
                    .unwrap_or_default()
                    .to_string()
            };
            panic!(
                "{what}: the output with columns {o} differs from the replay never stopped ({} rows against {}; first different line {line:?}:\n  want {}\n  got  {})",
                g.lines().count(),
                w.lines().count(),
                show(w),
                show(g)
            );
        }
    }
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy");
        }
    }
}

/// Replays `file` with 2 workers taking checkpoints (the rows must be those of a replay
/// taking none), then for every checkpoint it took: the outputs as the run left them (with
/// the parts written after that checkpoint, which the resumed run must remove) and that
/// checkpoint the newest, resumed with each worker count of `resume_with`. Returns how many
/// checkpoints were resumed from.
fn every_checkpoint_resumes(file: &str, resume_with: &[usize]) -> usize {
    every_checkpoint_resumes_edited(file, &|t| t.to_string(), resume_with).len()
}

/// [`every_checkpoint_resumes`] of `file` changed by `edit`; returns the checkpoints.
fn every_checkpoint_resumes_edited(
    file: &str,
    edit: &dyn Fn(&str) -> String,
    resume_with: &[usize],
) -> Vec<hyflow::checkpoint::Checkpoint> {
    let tmp = tempfile::tempdir().expect("tmp");
    let plain = pipeline_edited(file, tmp.path(), false, edit);
    let (code, err) = replay(&plain, &tmp.path().join("plain"), &["-q"]);
    assert_eq!(code, 0, "{err}");
    let want = rows(&tmp.path().join("plain"));
    let with = pipeline_edited(file, tmp.path(), true, edit);
    let out = tmp.path().join("out");
    let (code, err) = replay(&with, &out, &["-q"]);
    assert_eq!(code, 0, "{err}");
    assert_same(&want, &out, "a replay taking checkpoints");
    let all = tmp.path().join("checkpoints");
    let saved = tmp.path().join("saved");
    copy_dir(&all, &saved);
    let ids: Vec<PathBuf> = hyflow::checkpoint::list(&saved)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert!(ids.len() >= 2, "checkpoints taken: {ids:?}");
    let done = tmp.path().join("done");
    copy_dir(&out, &done);
    for cp in &ids {
        for &w in resume_with {
            let _ = std::fs::remove_dir_all(&out);
            copy_dir(&done, &out);
            let _ = std::fs::remove_dir_all(&all);
            std::fs::create_dir_all(&all).expect("mkdir");
            std::fs::copy(cp, all.join(cp.file_name().expect("name"))).expect("copy");
            let (code, err) = replay_w(&with, &out, w, &["--resume"]);
            assert_eq!(code, 0, "{err}");
            assert!(err.contains("resuming from"), "{err}");
            if w != 2 {
                assert!(
                    err.contains("taken by a run of 2 worker(s): its sensors' state is dealt out"),
                    "{err}"
                );
            }
            assert_same(
                &want,
                &out,
                &format!("{file} resumed from {} with -w {w}", cp.display()),
            );
        }
    }
    ids.iter()
        .map(|p| hyflow::checkpoint::read(p).expect("read checkpoint"))
        .collect()
}

#[test]
fn checkpoints_change_no_output_and_every_one_resumes_to_the_same_rows() {
    every_checkpoint_resumes("pipelines/manufacturing.toml", &[2]);
}

// Incidents resume too (the shipped pipeline's output includes them; above), also with an
// incident grace, under which a resolved episode stays in its incident for a while: some
// checkpoints hold such episodes, to be let go after the cut.
#[test]
fn incidents_resume_with_episodes_leaving_after_the_grace() {
    let grace = |t: &str| t.replacen("[registry]\n", "[registry]\nincident-grace = \"10m\"\n", 1);
    let cps = every_checkpoint_resumes_edited("pipelines/manufacturing.toml", &grace, &[2]);
    // The traffic pipeline's topology has directed edges with travel times (its Arrow IPC
    // sink left out: one file, not checkpointed).
    let no_ipc = |t: &str| {
        t.split("\n[[sink]]")
            .filter(|b| !b.contains("kind = \"arrow-ipc\""))
            .collect::<Vec<_>>()
            .join("\n[[sink]]")
    };
    every_checkpoint_resumes_edited("pipelines/traffic.toml", &no_ipc, &[2]);
    let leaving = cps
        .iter()
        .filter_map(|c| c.incidents.as_ref())
        .filter(|i| i.episodes.iter().any(|e| e.2.is_some()))
        .count();
    assert!(
        leaving > 0,
        "no checkpoint of {} holds an episode leaving after the grace",
        cps.len()
    );
}

#[test]
fn asset_detectors_and_asset_episodes_resume_too() {
    every_checkpoint_resumes("pipelines/asset.toml", &[2]);
}

// A checkpoint's state is per sensor and asset: a run of another worker count deals it out
// as it routes readings, and goes on to the same rows (each checkpoint, resumed with fewer
// and with more workers than took it; the asset pipeline's sensors move with their asset).
#[test]
fn a_checkpoint_resumes_with_fewer_or_more_workers() {
    every_checkpoint_resumes("pipelines/manufacturing.toml", &[1, 3]);
    every_checkpoint_resumes("pipelines/asset.toml", &[1, 3]);
}

/// `n` points in (0.1, 1.0), pseudo-random from `seed` (xorshift).
fn fractions(seed: u64, n: usize) -> Vec<f64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            0.1 + 0.9 * (x % 1000) as f64 / 1000.0
        })
        .collect()
}

#[test]
fn a_replay_killed_five_times_ends_with_the_rows_of_one_never_stopped() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (want, with) = reference(tmp.path());
    // How long a whole replay taking checkpoints takes here (a debug build is much slower):
    // the kills land within it.
    let started = std::time::Instant::now();
    let (code, err) = replay(&with, &tmp.path().join("timed"), &["-q"]);
    assert_eq!(code, 0, "{err}");
    let whole = started.elapsed();
    let _ = std::fs::remove_dir_all(tmp.path().join("checkpoints"));
    let out = tmp.path().join("out");
    let kills: Vec<Duration> = fractions(0x5eed_cafe, 5)
        .into_iter()
        .map(|f| whole.mul_f64(f))
        .collect();
    let mut killed = 0;
    for (k, after) in kills.iter().enumerate() {
        let mut child = hyflow()
            .arg("replay")
            .arg(&with)
            .arg("--out")
            .arg(&out)
            .args(["-w", "2", "-q"])
            .args(if k > 0 { &["--resume"][..] } else { &[][..] })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(*after);
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("SIGKILL");
            killed += 1;
        }
        child.wait().expect("reap");
    }
    assert!(
        killed > 0,
        "every run ended before its kill ({kills:?}, whole {whole:?})"
    );
    let taken = hyflow::checkpoint::list(&tmp.path().join("checkpoints"));
    assert!(
        !taken.is_empty(),
        "no checkpoint before the kills ({kills:?}, whole {whole:?})"
    );
    let (code, err) = replay(&with, &out, &["--resume"]);
    assert_eq!(code, 0, "{err}");
    assert_same(
        &want,
        &out,
        &format!("killed after {kills:?} (whole {whole:?})"),
    );
}

/// A full disk, made by a file-size limit (`ulimit -f`, SIGXFSZ ignored: a write past it
/// fails with EFBIG as one to a full disk fails with ENOSPC): the replay fails with the file
/// and the OS error named, leaves no temporary behind and no checkpoint past what is durable;
/// resumed (under growing limits, then none), it ends with the rows of a replay never
/// stopped.
#[test]
fn a_full_disk_fails_the_run_cleanly_and_the_resume_loses_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (want, with) = reference(tmp.path());
    let out = tmp.path().join("out");
    let cps = tmp.path().join("checkpoints");
    let temporaries = |dir: &Path| -> Vec<PathBuf> {
        let mut v = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.to_string_lossy().ends_with(".tmp") {
                    v.push(p);
                }
            }
        }
        v
    };
    let mut failed = 0;
    for kib in [16, 64, 128, 256] {
        let o = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "ulimit -f {kib}; trap '' XFSZ; exec \"$0\" replay \"$1\" --out \"$2\" -w 2 -q --resume"
            ))
            .arg(env!("CARGO_BIN_EXE_hyflow"))
            .arg(&with)
            .arg(&out)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&o.stderr);
        if o.status.success() {
            break; // every file it still had to write fitted
        }
        failed += 1;
        assert_eq!(o.status.code(), Some(1), "limit {kib} KiB: {err}");
        assert!(
            err.contains("File too large") && (err.contains(".parquet") || err.contains(".hfck")),
            "limit {kib} KiB: {err}"
        );
        assert_eq!(
            temporaries(tmp.path()),
            Vec::<PathBuf>::new(),
            "limit {kib} KiB"
        );
    }
    // (Parts and checkpoints are tens of KiB at least: the first limit is always hit.)
    assert!(failed >= 1);
    // Every checkpoint left reads back whole: none is a half-written one.
    for (_, f) in hyflow::checkpoint::list(&cps) {
        hyflow::checkpoint::read(&f).unwrap_or_else(|e| panic!("{e}"));
    }
    let (code, err) = replay(&with, &out, &["--resume", "-q"]);
    assert_eq!(code, 0, "{err}");
    assert_same(&want, &out, "resumed after a full disk");
}

#[test]
fn a_damaged_newest_checkpoint_is_named_and_the_one_before_it_used() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (want, with) = reference(tmp.path());
    let out = tmp.path().join("out");
    let (code, err) = replay(&with, &out, &["-q"]);
    assert_eq!(code, 0, "{err}");
    let all = hyflow::checkpoint::list(&tmp.path().join("checkpoints"));
    assert!(all.len() >= 2, "{all:?}");
    // Cut short (a disk that lost the file's tail), and a temporary left by a crash while
    // writing the next one.
    let newest = &all[0].1;
    let bytes = std::fs::read(newest).expect("read");
    std::fs::write(newest, &bytes[..bytes.len() / 2]).expect("truncate");
    std::fs::write(
        tmp.path()
            .join("checkpoints/.checkpoint-9999999999.hfck.tmp"),
        b"half",
    )
    .expect("write");
    let (code, err) = replay(&with, &out, &["--resume"]);
    assert_eq!(code, 0, "{err}");
    let name = newest
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    assert!(
        err.contains(&format!("{name}: cut short")) && err.contains("trying an older checkpoint"),
        "{err}"
    );
    assert!(
        err.contains(&format!("resuming from {}", all[1].1.display())),
        "{err}"
    );
    assert_same(
        &want,
        &out,
        "resumed from the checkpoint before a damaged one",
    );
    // What `checkpoint inspect` says of the directory: the newest whole one.
    let o = hyflow()
        .args(["checkpoint", "inspect"])
        .arg(tmp.path().join("checkpoints"))
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.contains("fixtures/manufacturing.parquet: "), "{text}");
    assert!(text.contains("state: 32 sensor(s)"), "{text}");
    assert!(text.contains("  incidents: "), "{text}");
}

#[test]
fn a_checkpoint_of_another_pipeline_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let with = pipeline(tmp.path(), true);
    let out = tmp.path().join("out");
    let (code, err) = replay(&with, &out, &["-q"]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = replay(&with, &out, &["--resume", "--set", "window.size=\"20s\""]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("taken by another version of the pipeline"),
        "{err}"
    );
}

/// A run of a changed pipeline numbers its checkpoints after those of the earlier version
/// in the same directory: its own are the newest (a run that resumes takes them), and pruning
/// removes the earlier version's first.
#[test]
fn a_changed_pipeline_numbers_its_checkpoints_after_the_earlier_versions() {
    let tmp = tempfile::tempdir().expect("tmp");
    let with = pipeline(tmp.path(), true);
    let out = tmp.path().join("out");
    let (code, err) = replay(&with, &out, &["-q"]);
    assert_eq!(code, 0, "{err}");
    let cps = tmp.path().join("checkpoints");
    let first = hyflow::checkpoint::list(&cps);
    assert!(!first.is_empty());
    let (code, err) = replay(&with, &out, &["-q", "--set", "window.size=\"20s\""]);
    assert_eq!(code, 0, "{err}");
    let all = hyflow::checkpoint::list(&cps);
    let (newest, _) = hyflow::checkpoint::latest(&cps);
    let (_, newest) = newest.expect("a checkpoint");
    assert!(all.len() > first.len());
    assert!(newest.id > first[0].0, "{} after {}", newest.id, first[0].0);
    assert_ne!(
        newest.pipeline_hash,
        hyflow::checkpoint::read(&first[0].1)
            .expect("read")
            .pipeline_hash
    );
}

#[test]
fn what_checkpoints_cannot_save_yet_is_refused_by_name() {
    let tmp = tempfile::tempdir().expect("tmp");
    // An Arrow IPC sink: one file, complete only at the end.
    let ipc = tmp.path().join("ipc.toml");
    let text = std::fs::read_to_string(pipeline(tmp.path(), true)).expect("read");
    std::fs::write(
        &ipc,
        format!("{text}\n[[sink]]\nname = \"ipc\"\noutput = \"windows\"\nkind = \"arrow-ipc\"\n"),
    )
    .expect("write");
    let (code, err) = replay(&ipc, &tmp.path().join("out"), &["-q"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "checkpoints ([recovery]) are not implemented yet for Arrow IPC sinks (sink ipc"
        ),
        "{err}"
    );
    // --resume without [recovery].
    let plain = pipeline(tmp.path(), false);
    let (code, err) = replay(&plain, &tmp.path().join("out"), &["--resume"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("add a [recovery] section"), "{err}");
    // `enabled = false` turns a [recovery] section off: no checkpoint, and none to resume.
    let with = pipeline(tmp.path(), true);
    let off = ["-q", "--set", "recovery.enabled=false"];
    let (code, err) = replay(&with, &tmp.path().join("off"), &off);
    assert_eq!(code, 0, "{err}");
    assert!(!tmp.path().join("checkpoints").exists());
    let (code, err) = replay(
        &with,
        &tmp.path().join("off"),
        &[&off[..], &["--resume"]].concat(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("without enabled = false"), "{err}");
}

/// [`assert_same`], numbers within rounding (relative 1e-9): for runs whose features were
/// computed on different devices (the kernels sum in another order than the CPU).
#[cfg(feature = "kernel-emulation")]
fn assert_close(want: &[String], out: &Path, what: &str) {
    let got = rows(out);
    assert_eq!(got.len(), want.len(), "{what}: outputs");
    let close = |a: &str, b: &str| {
        a == b
            || match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                _ => false,
            }
    };
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(w.lines().count(), g.lines().count(), "{what}: rows");
        for (a, b) in w.lines().zip(g.lines()) {
            let same = a.split(',').count() == b.split(',').count()
                && a.split(',').zip(b.split(',')).all(|(x, y)| close(x, y));
            assert!(same, "{what}: a row differs\n  want {a}\n  got  {b}");
        }
    }
}

/// With checkpoints, detectors on a device keep their state there: a checkpoint saves the
/// engine's cells (its host mirror is current), and a replay resumed from a checkpoint in the
/// middle of the run gives the rows of a replay on the device never stopped: exactly on the
/// device, within rounding on the CPU (whose features are summed in another order; the
/// detector kernel equals its CPU reference bit for bit). The level detector is gated, so the
/// learn policies' counts are carried over too.
#[cfg(feature = "kernel-emulation")]
#[test]
fn checkpoints_save_the_state_of_detectors_on_a_device() {
    let tmp = tempfile::tempdir().expect("tmp");
    // The level detector gated; the mean-crossing rate and the stuck detector on `mean` left
    // out, as in tests/it/common/device.rs (they compare values exactly, so the last bit of a
    // window's mean, summed in another order on the device, can change them).
    let gated = |t: &str| {
        t.replace(
            "name = \"level\"\nkind = \"level-z\"\n",
            "name = \"level\"\nkind = \"level-z\"\nlearn = \"gated\"\n",
        )
        .replace(", \"mean-crossing-rate\"]", "]")
        .replace(
            "name = \"stuck\"\nkind = \"stuck\"\nfeatures = [\"mean\"]",
            "name = \"stuck\"\nkind = \"stuck\"\nfeatures = [\"std\"]",
        )
    };
    let file = "pipelines/manufacturing.toml";
    let plain = pipeline_edited(file, tmp.path(), false, &gated);
    let with = pipeline_edited(file, tmp.path(), true, &gated);
    let text = std::fs::read_to_string(&with).expect("read");
    assert!(text.contains("learn = \"gated\"\n") && !text.contains("mean-crossing-rate"));
    assert!(text.contains("features = [\"std\"]"));
    // A small input (the emulated device is slow in a debug build), of 3 row groups: the
    // replay's source reads a row group at a time, and a checkpoint is cut between reads.
    let input = tmp.path().join("m.parquet");
    let ds = hyflow::tools::fixture::manufacturing::generate(8, 80 * 60_000, 5);
    hyflow::tools::fixture::write(ds, &input).expect("fixture");
    let input = input.display().to_string();
    // Small batches: a checkpoint is cut between them.
    let device = [
        "--device",
        "emu:0",
        "--input",
        &input,
        "--set",
        "compute.max-batch-windows=16",
    ];
    let (code, err) = replay(&plain, &tmp.path().join("plain"), &device);
    assert_eq!(code, 0, "{err}");
    let want = rows(&tmp.path().join("plain"));
    let out = tmp.path().join("with");
    let o = hyflow()
        .arg("replay")
        .arg(&with)
        .arg("--out")
        .arg(&out)
        .args(["-w", "2"])
        .args(device)
        .output()
        .expect("run hyflow");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.trim_start().starts_with("emu:0 detectors")),
        "the detectors ran on the device:\n{stdout}"
    );
    assert_same(&want, &out, "emu:0 with checkpoints");
    // Keep only a checkpoint from the middle of the run (the later parts stay on disk, to be
    // discarded) and resume from it: on the device, then on the CPU.
    let all = tmp.path().join("checkpoints");
    let ids = hyflow::checkpoint::list(&all);
    assert!(ids.len() >= 2, "checkpoints taken: {ids:?}");
    let middle = ids[ids.len() / 2].1.clone();
    let saved = std::fs::read(&middle).expect("read checkpoint");
    // Another device is another [compute]: carried over with --from-checkpoint.
    for (resume_on, carry, what) in [
        ("emu:0", "-q", "resumed on emu:0"),
        ("cpu", "--from-checkpoint", "resumed on the CPU"),
    ] {
        for (_, p) in hyflow::checkpoint::list(&all) {
            std::fs::remove_file(p).expect("remove");
        }
        std::fs::write(&middle, &saved).expect("put the checkpoint back");
        let args = [
            "--device",
            resume_on,
            "--input",
            &input,
            "--set",
            "compute.max-batch-windows=16",
            "--resume",
            carry,
        ];
        let (code, err) = replay(&with, &out, &args);
        assert_eq!(code, 0, "{err}");
        if resume_on == "cpu" {
            assert_close(&want, &out, what);
        } else {
            assert_same(&want, &out, what);
        }
    }
}

/// `--from-checkpoint` carries a checkpoint's state over to a pipeline whose rules or
/// `[compute]` changed (a change of `[compute]` that changes no output here: the rows are
/// those of the replay never stopped), names the settings that differ when anything else
/// changed, and is needed: without it a changed pipeline is refused, with a hint.
#[test]
fn from_checkpoint_carries_state_over_to_changed_rules_or_compute_only() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (want, with) = reference(tmp.path());
    let out = tmp.path().join("out");
    let (code, err) = replay(&with, &out, &["-q"]);
    assert_eq!(code, 0, "{err}");
    // Keep only a checkpoint from the middle of the run, with the later parts on disk.
    let all = tmp.path().join("checkpoints");
    let ids = hyflow::checkpoint::list(&all);
    assert!(ids.len() >= 2, "checkpoints taken: {ids:?}");
    let middle = ids[ids.len() / 2].1.clone();
    for (_, p) in &ids {
        if *p != middle {
            std::fs::remove_file(p).expect("remove");
        }
    }
    let compute = ["--set", "compute.max-batch-windows=16"];
    let (code, err) = replay(&with, &out, &[&compute[..], &["--resume"]].concat());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "only its rules or [compute] changed: --from-checkpoint carries the state over"
        ),
        "{err}"
    );
    let window = ["--set", "window.size=\"20s\""];
    let (code, err) = replay(
        &with,
        &out,
        &[
            &window[..],
            &compute[..],
            &["--resume", "--from-checkpoint"],
        ]
        .concat(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("its state would not fit")
            && err.contains(": window.size differs (only rules, compute may change"),
        "{err}"
    );
    let (code, err) = replay(
        &with,
        &out,
        &[&compute[..], &["--resume", "--from-checkpoint"]].concat(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("carrying its state over to the changed rules or [compute]"),
        "{err}"
    );
    assert_same(
        &want,
        &out,
        "resumed with --from-checkpoint after a change of [compute]",
    );
}
