//! hyflow's CUDA engine (src/compute/cuda.rs, through cudarc's driver API) end to end without a
//! GPU: the `hyflow` binary runs with cuda/emu/fake_driver.cpp as its libcuda and
//! libnvidia-ml, a driver that runs cuda/features.cu on the CPU and checks what a GPU would
//! not (lazy streams, poisoned device memory, bounds, pinned and write-combined memory, the
//! PTX target). The replay must give the CPU's results, keep two batches in flight, and lose
//! no batch when the device faults or runs out of memory. scripts/test.sh builds the driver
//! (the `kernel-emulation` feature) and puts NVRTC on LD_LIBRARY_PATH.
#![cfg(feature = "kernel-emulation")]

use crate::common;

use crate::common::device;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a run of `hyflow replay` on the fake driver printed and counted.
struct Run {
    stdout: String,
    stderr: String,
    /// The fake driver's counts (HYFLOW_FAKE_CUDA_STATS).
    stats: HashMap<String, u64>,
    out: PathBuf,
}

impl Run {
    fn stat(&self, key: &str) -> u64 {
        self.stats.get(key).copied().unwrap_or(0)
    }

    /// The cost report's line of engine `name` (`cuda:0`, `cuda:0 detectors`), if any.
    fn engine_line(&self, name: &str) -> Option<&str> {
        self.stdout.lines().find(|l| {
            l.trim_start()
                .strip_prefix(name)
                .and_then(|rest| rest.split_whitespace().next())
                .is_some_and(|w| w.parse::<u64>().is_ok())
        })
    }

    /// (batches, windows) of engine `name` in the cost report.
    fn engine(&self, name: &str) -> (u64, u64) {
        let line = self
            .engine_line(name)
            .unwrap_or_else(|| panic!("no {name} line in:\n{}", self.stdout));
        let n: Vec<u64> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        (n[0], n[1])
    }

    /// Batches of engine `name` cross-checked on the CPU.
    fn cross_checked(&self, name: &str) -> u64 {
        self.count_near(name, "cross-checked ", true)
    }

    /// Batches engine `name` failed (recomputed on the CPU).
    fn failed(&self, name: &str) -> u64 {
        self.count_near(name, " failed", false)
    }

    /// The number just after (`after`) or just before `word` on engine `name`'s line, or 0.
    fn count_near(&self, name: &str, word: &str, after: bool) -> u64 {
        let line = self.engine_line(name).expect("engine line");
        let (before, rest) = match line.split_once(word) {
            Some(x) => x,
            None => return 0,
        };
        let n = if after {
            rest.split_whitespace().next()
        } else {
            before.split_whitespace().last()
        };
        n.and_then(|n| n.parse().ok()).unwrap_or(0)
    }
}

/// A manufacturing input of `sensors` sensors over `minutes` in `dir`, and its CPU outputs
/// (2 workers: outputs do not depend on the number of workers).
fn input_and_cpu_run(dir: &Path, sensors: usize, minutes: i64, seed: u64) -> (PathBuf, PathBuf) {
    let input = dir.join("m.parquet");
    let ds = hyflow::tools::fixture::manufacturing::generate(sensors, minutes * 60_000, seed);
    hyflow::tools::fixture::write(ds, &input).expect("fixture");
    let out = dir.join("cpu");
    let cpu = common::replay_text(&device::pipeline(&input, "cpu"), 2, &out).expect("cpu run");
    assert!(cpu.alert_events > 0, "the input has anomalies");
    (input, out)
}

/// `hyflow replay` of the manufacturing pipeline over `input` on `device`, with the fake
/// driver first on the library path and `env` set; it must succeed.
fn replay_on_fake(
    dir: &Path,
    input: &Path,
    workers: usize,
    device: &str,
    env: &[(&str, &str)],
) -> Run {
    let (run, status) = try_replay_on_fake(dir, input, workers, device, env);
    assert!(
        status.success(),
        "hyflow replay --device {device} failed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    run
}

/// [`replay_on_fake`], whatever its exit status.
fn try_replay_on_fake(
    dir: &Path,
    input: &Path,
    workers: usize,
    device: &str,
    env: &[(&str, &str)],
) -> (Run, ExitStatus) {
    let name = format!("{}-{}", device.replace(':', ""), env.len());
    let pipeline = dir.join(format!("{name}.toml"));
    std::fs::write(&pipeline, device::pipeline(input, "auto")).expect("write pipeline");
    let (out, stats) = (dir.join(&name), dir.join(format!("{name}.stats")));
    let (out_file, err_file) = (
        dir.join(format!("{name}.out")),
        dir.join(format!("{name}.err")),
    );
    let file = |p: &Path| Stdio::from(std::fs::File::create(p).expect("output file"));
    let path = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
    let child = Command::new(env!("CARGO_BIN_EXE_hyflow"))
        .arg("replay")
        .arg(&pipeline)
        .arg("--out")
        .arg(&out)
        .args(["-w", &workers.to_string(), "--device", device])
        .env(
            "LD_LIBRARY_PATH",
            format!("{}:{path}", env!("HYFLOW_FAKE_CUDA_DIR")),
        )
        .env("HYFLOW_FAKE_CUDA_STATS", &stats)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(file(&out_file))
        .stderr(file(&err_file))
        .spawn()
        .expect("run hyflow");
    let status = wait_at_most(child, Duration::from_secs(180), &err_file);
    let run = Run {
        stdout: std::fs::read_to_string(&out_file).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_file).unwrap_or_default(),
        stats: std::fs::read_to_string(&stats)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect(),
        out,
    };
    println!("{}\n{}\n{:?}", run.stdout, run.stderr, run.stats);
    (run, status)
}

/// Replays an input of 3 sensors over `minutes` on the fake driver with `dev` and `env` on 2
/// workers, checks that every output equals the CPU's, and returns the run.
fn same_as_cpu_on_fake(minutes: i64, dev: &str, env: &[(&str, &str)]) -> Run {
    same_as_cpu_on_fake_with(2, 3, minutes, dev, env)
}

/// [`same_as_cpu_on_fake`] with `workers` and `sensors`.
fn same_as_cpu_on_fake_with(
    workers: usize,
    sensors: usize,
    minutes: i64,
    dev: &str,
    env: &[(&str, &str)],
) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, cpu_out) = input_and_cpu_run(dir.path(), sensors, minutes, 5);
    let run = replay_on_fake(dir.path(), &input, workers, dev, env);
    device::same_outputs(&cpu_out, &run.out);
    run
}

/// The child's exit status; killed (and the test failed) if it runs past `limit`.
fn wait_at_most(mut child: Child, limit: Duration, stderr: &Path) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for hyflow") {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let err = std::fs::read_to_string(stderr).unwrap_or_default();
            panic!("hyflow replay still running after {limit:?}:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_cuda_engine_on_the_fake_driver_gives_the_cpu_results() {
    // A slow GPU: a batch is done after its event has been polled 50 times (~5 ms of the
    // stage's polling). The worker windows on meanwhile, so a second batch is queued behind
    // the first.
    let run = same_as_cpu_on_fake(4, "cuda:0", &[("HYFLOW_FAKE_CUDA_LAG", "50")]);
    let (batches, windows) = run.engine("cuda:0");
    assert!(
        batches >= 4 && windows > 30,
        "{batches} batches, {windows} windows"
    );
    assert_eq!(
        run.engine("cpu").0,
        run.cross_checked("cuda:0"),
        "the CPU only cross-checked: nothing fell back to it"
    );
    // Manufacturing windows are short (10 s at 1-10 Hz): the warp-per-window kernel.
    assert_eq!(run.stat("launches_warp"), batches);
    // The detectors (level-z, stuck) too, every window once, with no fallback.
    let (detect_batches, detect_windows) = run.engine("cuda:0 detectors");
    assert_eq!(run.stat("launches_detect"), detect_batches);
    assert_eq!(run.stat("detect_windows"), detect_windows);
    assert_eq!(run.stat("launches"), batches + detect_batches);
    assert!(run.engine_line("cpu detectors").is_none(), "{}", run.stdout);
    assert!(
        run.cross_checked("cuda:0 detectors") > 0 && run.failed("cuda:0 detectors") == 0,
        "the detector cross-check found the device's scores equal to the CPU's:\n{}",
        run.stdout
    );
    assert_eq!((run.stat("failures"), run.stat("sticky_error")), (0, 0));
    assert_eq!(
        run.stat("ptx_target_sm"),
        90,
        "PTX for the device's own architecture"
    );
    assert!(
        run.stat("max_launches_queued_on_a_stream") >= 2,
        "two batches in flight on a worker's stream"
    );
    assert!(
        run.stat("not_ready") > 0,
        "results are polled, not waited for"
    );
    // Batches go through pinned memory (inputs write-combined, outputs not); only the feature
    // codes and the detectors' kinds and parameters, once per engine, are copied from pageable
    // memory.
    assert!(run.stat("pinned_allocs_write_combined") >= 4 && run.stat("pinned_allocs") >= 1);
    let p = hyflow::plan::load(&common::root().join("pipelines/manufacturing.toml")).expect("load");
    let width = p.features.len() as u64 - 1; // device::pipeline leaves mean-crossing-rate out
    let watches = hyflow::stages::detect::cell::watches(&p.detectors).len() as u64;
    assert_eq!(
        run.stat("dtoh_pinned_bytes"),
        windows * width * 8 + run.stat("detect_out_bytes")
    );
    // Per worker: kinds, parameters, cell offsets, learn policies and gates, 60 bytes per
    // watched feature.
    assert!(run.stat("htod_pageable_bytes") <= 2 * (width * 20 + watches * 60));
    assert!(
        run.stdout.contains("GPU cuda:0") && run.stdout.contains("(NVML"),
        "the GPU energy counter is read:\n{}",
        run.stdout
    );
}

#[test]
fn auto_routes_between_the_cpu_and_the_fake_device_and_gives_the_cpu_results() {
    let run = same_as_cpu_on_fake(6, "auto", &[]);
    let ((on_gpu, _), (on_cpu, _)) = (run.engine("cuda:0"), run.engine("cpu"));
    assert!(on_gpu >= 2 && on_cpu >= 2, "cuda:0 {on_gpu}, cpu {on_cpu}");
    assert_eq!(run.stat("launches_warp"), on_gpu);
    // The detectors route by cost too: at least the 3 probes on the device per worker.
    assert!(run.engine("cuda:0 detectors").0 >= 3, "{}", run.stdout);
}

#[test]
fn three_workers_share_the_device_with_the_cpu_and_give_its_results() {
    // One context, three streams, every worker routing between the CPU and the device and
    // spilling when its two slots are busy; batches done after 3 polls.
    let run = same_as_cpu_on_fake_with(3, 16, 10, "auto", &[("HYFLOW_FAKE_CUDA_LAG", "3")]);
    let ((on_gpu, _), (on_cpu, _)) = (run.engine("cuda:0"), run.engine("cpu"));
    assert!(on_gpu >= 6 && on_cpu >= 9, "cuda:0 {on_gpu}, cpu {on_cpu}");
    assert_eq!(run.stat("launches_warp"), on_gpu);
    assert_eq!(run.stat("failures"), 0);
}

#[test]
fn a_device_fault_mid_run_loses_no_batch() {
    // The third feature-kernel launch faults when it runs: the context is lost for good (every
    // later call fails, as on a GPU), with whatever was queued on any stream. Those batches,
    // and every later one, are computed on the CPU: the error says the device is lost, so
    // every worker drops it at once rather than after three failures of its own. (How many
    // batches were queued behind the fault depends on when the detector engine's synchronous
    // calls made the fake run its streams: at least the faulting one.)
    let run = same_as_cpu_on_fake(4, "cuda:0", &[("HYFLOW_FAKE_CUDA_FAULT", "features:3")]);
    assert_eq!(run.stat("sticky_error"), 700, "the fault happened");
    assert!(
        run.stat("launches_warp") >= 2,
        "the launches before the fault ran"
    );
    assert!(run.failed("cuda:0") >= 1, "{}", run.stdout);
    assert!(
        run.failed("cuda:0 detectors") <= 2,
        "each worker's detector engine fails once at most, then stays on the CPU"
    );
    assert!(
        run.stderr.contains("recomputing it on the CPU")
            && run.stderr.contains("CUDA_ERROR_ILLEGAL_ADDRESS")
            && run.stderr.contains("cuda:0 is lost for this run"),
        "the error is logged:\n{}",
        run.stderr
    );
    assert!(!run.stderr.contains("failed 3 batches in a row"));
}

#[test]
fn a_fault_in_the_detector_kernel_loses_no_detector_state() {
    // The second detector launch faults: its batch, and every later one, is scored on the CPU
    // from the host's mirror of the device's cells, so no sensor's baseline is lost and every
    // score equals the CPU's (checked by same_as_cpu_on_fake). The feature engine, on the same
    // lost context, falls back too.
    let run = same_as_cpu_on_fake(4, "cuda:0", &[("HYFLOW_FAKE_CUDA_FAULT", "detect:2")]);
    assert_eq!(run.stat("sticky_error"), 700, "the fault happened");
    assert_eq!(
        run.stat("launches_detect"),
        1,
        "one detector batch ran on the device"
    );
    // One failed batch per worker at most: the faulting one, and on the other worker the
    // first after it ("lost earlier in this run"); then neither tries the device again.
    let failed = run.failed("cuda:0 detectors");
    assert!((1..=2).contains(&failed), "{}", run.stdout);
    assert!(run.engine("cpu detectors").0 > 0, "{}", run.stdout);
    assert!(
        run.stderr.contains("scoring detectors failed")
            && run.stderr.contains("and every later one"),
        "the fallback is logged:\n{}",
        run.stderr
    );
}

#[test]
fn running_out_of_device_memory_loses_no_batch() {
    // 64 KiB of device memory: the feature codes and small batches fit, larger ones do not.
    let run = same_as_cpu_on_fake(4, "cuda:0", &[("HYFLOW_FAKE_CUDA_FAULT", "oom:65536")]);
    assert!(run.stat("out_of_memory") > 0, "allocations failed");
    assert_eq!(run.stat("sticky_error"), 0, "out of memory is not sticky");
    assert!(run.engine("cpu").0 > 0, "batches fell back to the CPU");
}

#[test]
fn a_panic_in_a_worker_fails_the_run_instead_of_hanging_it() {
    // A driver that answers a pinned allocation with success and a null pointer makes cudarc
    // panic (an assertion) inside a worker. The run must stop with an error naming it, not
    // wait forever for the dead worker (it did before: found with this driver).
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, _) = input_and_cpu_run(dir.path(), 3, 4, 5);
    let (run, status) = try_replay_on_fake(
        dir.path(),
        &input,
        2,
        "cuda:0",
        &[("HYFLOW_FAKE_CUDA_FAULT", "null-pinned")],
    );
    assert!(!status.success(), "the run failed");
    assert!(
        run.stderr.contains("panicked") && run.stderr.contains("stopped by a panic"),
        "{}",
        run.stderr
    );
}
