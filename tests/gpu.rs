//! On a machine with a GPU: the CUDA engines equal the CPU reference (features within stated
//! tolerances, detector scores bit for bit), and how fast the kernels run.
//! Ignored elsewhere (no GPU in CI); scripts/gpu-check.sh runs these with
//! `--ignored` and records what they print in docs/gpu.md. `HYFLOW_GPU_SCALE=N` divides every
//! batch size by N: `scripts/gpu-check.sh --rehearse` runs them that way against the fake
//! driver (cuda/emu/fake_driver.cpp), whose figures mean nothing but whose run proves the
//! script and the tests work before a GPU's minutes are spent on them.

#[path = "it/common/mod.rs"]
mod common;

use hyflow::compute::{
    ComputeBackend, FeatureBatch, KernelLayout, WindowBatch, cpu::CpuBackend, cuda::CudaBackend,
};
use hyflow::stages::features::{Feature, FeatureSet, SCALAR_FEATURES};
use hyflow::tools::fixture::Rng;
use std::sync::Arc;
use std::time::Instant;

/// `windows` divided by HYFLOW_GPU_SCALE (at least 1).
fn scaled(windows: usize) -> usize {
    let scale: usize = std::env::var("HYFLOW_GPU_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    (windows / scale.max(1)).max(1)
}

/// `windows` (scaled) random windows of about `per` values.
fn random_batch(windows: usize, per: usize, seed: u64) -> WindowBatch {
    let windows = scaled(windows);
    let mut rng = Rng::new(seed);
    let mut b = WindowBatch::default();
    for w in 0..windows {
        b.push_window(w as u32, Arc::from("s"), 0, 10_000);
        let n = 1 + rng.below(per as u64 * 2) as usize;
        for i in 0..n {
            b.times.push((i * 10_000 / n) as i64);
            b.values
                .push(100.0 + (i as f64 * 0.3).sin() * 5.0 + rng.normal());
        }
        b.finish_window(0);
    }
    b
}

#[test]
#[ignore = "needs a GPU: scripts/gpu-check.sh runs it"]
fn cuda_engine_equals_the_cpu_reference() {
    let mut gpu = CudaBackend::new(0).expect("a CUDA device");
    let features = common::all_features();
    for seed in 0..4 {
        // Seeds 0 and 1 on one kernel, 2 and 3 on the other.
        let layout = [KernelLayout::Block, KernelLayout::Warp][seed as usize / 2];
        gpu.set_layout(Some(layout));
        let batch = random_batch(2000, 200, seed);
        let (mut want, mut got) = (FeatureBatch::default(), FeatureBatch::default());
        CpuBackend
            .features(&features, 10_000, &batch, &mut want)
            .expect("cpu");
        gpu.features(&features, 10_000, &batch, &mut got)
            .expect("gpu");
        let mut worst: f64 = 0.0;
        for (i, (a, b)) in want.data.iter().zip(&got.data).enumerate() {
            if a == b || (a.is_nan() && b.is_nan()) {
                continue;
            }
            let rel = (a - b).abs() / a.abs().max(b.abs()).max(1e-300);
            let scale = if matches!(
                features.kinds[i % features.len()],
                Feature::Skewness | Feature::Kurtosis | Feature::MeanCrossingRate
            ) {
                1.0
            } else {
                0.0
            };
            assert!(
                rel < 1e-9 || (a - b).abs() < 1e-9 * scale,
                "seed {seed}, value {i} (feature {}): cpu {a}, gpu {b}",
                features.names[i % features.len()]
            );
            worst = worst.max(rel);
        }
        println!(
            "seed {seed} ({layout:?}): {} windows, largest relative difference {worst:.2e}",
            batch.len()
        );
    }
}

#[test]
#[ignore = "needs a GPU: scripts/gpu-check.sh runs it"]
fn feature_kernel_throughput() {
    let mut gpu = CudaBackend::new(0).expect("a CUDA device");
    let scalar = {
        let mut f = FeatureSet::default();
        for (n, k) in SCALAR_FEATURES {
            f.push(n, *k);
        }
        f
    };
    for (name, features) in [
        ("11 scalar features", scalar),
        ("11 scalar + 2 bands", common::all_features()),
    ] {
        for (windows, per, layout) in [
            (10_000, 100, KernelLayout::Block),
            (10_000, 100, KernelLayout::Warp),
            (100_000, 100, KernelLayout::Block),
            (100_000, 100, KernelLayout::Warp),
            (20_000, 1000, KernelLayout::Block),
            (20_000, 1000, KernelLayout::Warp),
        ] {
            gpu.set_layout(Some(layout));
            let batch = random_batch(windows, per, 7);
            let windows = batch.len();
            let mut out = FeatureBatch::default();
            gpu.features(&features, 10_000, &batch, &mut out)
                .expect("warm-up");
            let runs = 5;
            let t = Instant::now();
            for _ in 0..runs {
                gpu.features(&features, 10_000, &batch, &mut out)
                    .expect("gpu");
            }
            let secs = t.elapsed().as_secs_f64() / runs as f64;
            let bytes = batch.values.len() * 16 + batch.len() * 12 + out.data.len() * 8;
            let t = Instant::now();
            CpuBackend
                .features(&features, 10_000, &batch, &mut out)
                .expect("cpu");
            let cpu = t.elapsed().as_secs_f64();
            println!(
                "{name}, {layout:?}: {windows} windows, {} values: GPU {:.2} ms/batch incl. copies = {:.1} M windows/s, {:.1} GB/s moved; CPU (1 thread) {:.2} ms",
                batch.values.len(),
                secs * 1e3,
                windows as f64 / secs / 1e6,
                bytes as f64 / secs / 1e9,
                cpu * 1e3
            );
        }
    }
}

/// The largest relative difference between two feature batches (NaN equals NaN).
fn worst_difference(want: &FeatureBatch, got: &FeatureBatch) -> f64 {
    assert_eq!(want.data.len(), got.data.len(), "same shape");
    want.data
        .iter()
        .zip(&got.data)
        .filter(|(a, b)| a != b && !(a.is_nan() && b.is_nan()))
        .map(|(a, b)| (a - b).abs() / a.abs().max(b.abs()).max(1e-300))
        .fold(0.0, f64::max)
}

#[test]
#[ignore = "needs a GPU: scripts/gpu-check.sh runs it"]
fn batches_in_flight_come_back_in_order_and_equal_the_cpu_reference() {
    use hyflow::compute::scheduler::{Hybrid, Policy};
    let features = common::all_features();
    let batches: Vec<WindowBatch> = (0..8)
        .map(|s| random_batch(500 + 300 * s, 100, s as u64))
        .collect();
    let want: Vec<FeatureBatch> = batches
        .iter()
        .map(|b| {
            let mut w = FeatureBatch::default();
            CpuBackend
                .features(&features, 10_000, b, &mut w)
                .expect("cpu");
            w
        })
        .collect();
    // The engine alone: two begun, finished in order, without waiting (polled).
    let mut gpu = CudaBackend::new(0).expect("a CUDA device");
    assert_eq!(gpu.depth(), 2);
    gpu.begin(10, &features, 10_000, &batches[0])
        .expect("begin 0");
    gpu.begin(11, &features, 10_000, &batches[1])
        .expect("begin 1");
    assert!(
        gpu.begin(12, &features, 10_000, &batches[2]).is_err(),
        "both slots are busy"
    );
    for (ticket, want) in [(10, &want[0]), (11, &want[1])] {
        let f = loop {
            if let Some(f) = gpu.finish(false) {
                break f;
            }
            std::thread::yield_now();
        };
        assert_eq!(f.ticket, ticket);
        let got = f.result.expect("features");
        let worst = worst_difference(want, &got);
        println!(
            "in flight: ticket {ticket}: largest relative difference {worst:.2e}, busy {:.3} ms",
            f.busy_secs * 1e3
        );
    }
    // Through the scheduler: every batch back once, equal to the CPU's.
    let mut h = Hybrid::new(
        Box::new(CpuBackend),
        vec![Box::new(gpu)],
        Policy::Accelerator,
        0.25,
        1e-9,
    );
    let tickets: Vec<u64> = batches
        .iter()
        .map(|b| h.submit(&features, 10_000, b.clone()))
        .collect();
    let mut seen = 0;
    while h.outstanding() > 0 {
        for c in h.poll(&features, 10_000, true) {
            let i = tickets
                .iter()
                .position(|&t| t == c.ticket)
                .expect("known ticket");
            let worst = worst_difference(&want[i], &c.result.expect("features"));
            assert!(worst < 1e-6, "batch {i}: {worst:.2e}");
            seen += 1;
        }
    }
    assert_eq!(seen, batches.len());
    let r = h.engine_reports();
    println!(
        "scheduler: cuda batches {}, cpu batches {}, cross-checked {}, max rel diff {:.2e}",
        r[1].batches, r[0].batches, r[1].cross_checked, r[1].max_rel_diff
    );
    assert_eq!(r[1].batches, batches.len() as u64, "all on the GPU");
}

#[test]
#[ignore = "needs a GPU: scripts/gpu-check.sh runs it"]
fn feature_kernel_bandwidth_with_two_batches_in_flight() {
    let features = common::all_features();
    let mut gpu = CudaBackend::new(0).expect("a CUDA device");
    for (windows, per, layout) in [
        (100_000, 100, KernelLayout::Block),
        (100_000, 100, KernelLayout::Warp),
        (50_000, 1000, KernelLayout::Block),
        (50_000, 1000, KernelLayout::Warp),
    ] {
        gpu.set_layout(Some(layout));
        let batch = random_batch(windows, per, 3);
        let windows = batch.len();
        let mut out = FeatureBatch::default();
        gpu.features(&features, 10_000, &batch, &mut out)
            .expect("warm-up");
        let (runs, kernel_before) = (10u64, gpu.kernel_secs());
        let t = Instant::now();
        let mut finished = 0;
        for i in 0..runs {
            if gpu.begin(i, &features, 10_000, &batch).is_err() {
                gpu.finish(true)
                    .expect("a batch in flight")
                    .result
                    .expect("gpu");
                finished += 1;
                gpu.begin(i, &features, 10_000, &batch).expect("begin");
            }
        }
        while finished < runs {
            gpu.finish(true)
                .expect("a batch in flight")
                .result
                .expect("gpu");
            finished += 1;
        }
        let wall = t.elapsed().as_secs_f64() / runs as f64;
        let kernel = (gpu.kernel_secs() - kernel_before) / runs as f64;
        // What the kernel reads and writes: values and times (16 B each), offsets and starts,
        // and the features.
        let bytes = batch.values.len() * 16 + batch.len() * 12 + batch.len() * features.len() * 8;
        println!(
            "{layout:?}: {windows} windows x ~{per} values, 13 features, 2 in flight: {:.2} ms/batch end to end ({:.1} M windows/s, {:.1} GB/s incl. copies); kernel alone {:.3} ms = {:.0} GB/s ({:.0}% of the H200's 4800 GB/s)",
            wall * 1e3,
            windows as f64 / wall / 1e6,
            bytes as f64 / wall / 1e9,
            kernel * 1e3,
            bytes as f64 / kernel / 1e9,
            bytes as f64 / kernel / 4.8e12 * 100.0
        );
    }
}

/// cuda/score.cu on the device against the CPU reference, bit for bit (FMA contraction is off
/// in both), over batches of interleaved sensors with NaN, repeats and level shifts; then how
/// many windows per second it scores at two batch sizes, against the CPU.
#[test]
#[ignore = "needs a GPU: scripts/gpu-check.sh runs it"]
fn detector_kernel_equals_the_cpu_bit_for_bit() {
    use hyflow::compute::detect::{DetectEngine, Fresh, cuda::CudaDetect};
    use hyflow::stages::detect::DetectorKind::*;
    use hyflow::stages::detect::cell::watches;
    use hyflow::stages::detect::{DetectorSpec, Learn};
    let with = |kind, features, learn| {
        let mut d = DetectorSpec::new(kind, features);
        d.learn = learn;
        d
    };
    // Learn policies too: both engines start every batch from the same counts (`Fresh`:
    // no scorer keeps them here), so gated windows re-baseline within a batch.
    let ws = watches(&[
        DetectorSpec::new(EwmaZ, vec![0, 1]),
        DetectorSpec::new(LevelZ, vec![0, 2]),
        DetectorSpec::new(SeasonalZ, vec![0]),
        DetectorSpec::new(Cusum, vec![1]),
        DetectorSpec::new(Stuck, vec![2]),
        with(
            SeasonalZ,
            vec![1],
            Learn::Gated {
                gate: 3.0,
                relearn: 3,
            },
        ),
        with(LevelZ, vec![1, 2], Learn::Reference { windows: 2 }),
    ]);
    let device = || Box::new(CudaDetect::new(0).expect("a CUDA device"));
    let mut gpu = DetectEngine::new(
        ws.clone(),
        Some(device()),
        hyflow::compute::router::Policy::Accelerator,
        0.0,
        hyflow::timefmt::Zone::UTC,
    );
    let mut cpu = DetectEngine::new(
        ws.clone(),
        None,
        hyflow::compute::router::Policy::Accelerator,
        0.0,
        hyflow::timefmt::Zone::UTC,
    );
    let mut rng = Rng::new(21);
    let sensors = scaled(5_000) as u64;
    let batch = |rng: &mut Rng, windows: usize| {
        let slots: Vec<u32> = (0..windows).map(|_| rng.below(sensors) as u32).collect();
        // Windows at random hours of two days (seasonal-z turns its buckets).
        let rows: Vec<(i64, [f64; 3])> = slots
            .iter()
            .map(|&s| {
                let hour = rng.below(48) as i64 * 3_600_000;
                let row = match rng.below(40) {
                    0 => [f64::NAN, 1.0, f64::INFINITY],
                    1..=4 => [7.0, 7.0, 7.0],
                    _ => [
                        s as f64 + rng.normal(),
                        10.0 * rng.normal(),
                        rng.normal().round(),
                    ],
                };
                (hour, row)
            })
            .collect();
        (slots, rows)
    };
    let mut compared = 0;
    for _ in 0..20 {
        let (slots, rows) = batch(&mut rng, scaled(20_000));
        let x = gpu.gather(rows.iter().map(|(t, r)| (*t, &r[..])));
        let (a, b) = (gpu.score(&slots, &x, &Fresh), cpu.score(&slots, &x, &Fresh));
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "score {i}: device {a}, CPU {b}");
        }
        compared += a.len();
    }
    for s in 0..sensors as u32 {
        assert!(
            gpu.cells(s)
                .iter()
                .zip(cpu.cells(s))
                .all(|(a, b)| a.same_bits(b)),
            "cells of sensor {s}"
        );
    }
    assert!(
        gpu.reports()
            .iter()
            .all(|r| r.errors == 0 && r.name.starts_with("cuda:0"))
    );
    println!("detector kernel: {compared} scores equal to the CPU's bit for bit");
    for windows in [scaled(10_000), scaled(200_000)] {
        let (slots, rows) = batch(&mut rng, windows);
        let x = gpu.gather(rows.iter().map(|(t, r)| (*t, &r[..])));
        let rate = |e: &mut DetectEngine| {
            let t = Instant::now();
            for _ in 0..5 {
                e.score(&slots, &x, &Fresh);
            }
            windows as f64 * 5.0 / t.elapsed().as_secs_f64()
        };
        let (g, c) = (rate(&mut gpu), rate(&mut cpu));
        println!(
            "detector kernel: {windows} windows x {} watches of {sensors} sensors: device {:.1} M windows/s (copies included), CPU {:.1} M windows/s",
            ws.len(),
            g / 1e6,
            c / 1e6
        );
    }
}
