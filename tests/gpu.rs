//! On a machine with a GPU: the CUDA engine equals the CPU reference, and how fast the feature
//! kernel runs. Ignored elsewhere (no GPU in CI); scripts/gpu-check.sh runs these with
//! `--ignored` and records what they print in docs/gpu.md.

use hyflow::compute::{
    ComputeBackend, FeatureBatch, WindowBatch, cpu::CpuBackend, cuda::CudaBackend,
};
use hyflow::features::{Feature, FeatureSet, SCALAR_FEATURES};
use hyflow::fixture::Rng;
use std::sync::Arc;
use std::time::Instant;

fn all_features() -> FeatureSet {
    let mut f = FeatureSet::default();
    for (n, k) in SCALAR_FEATURES {
        f.push(n, *k);
    }
    f.push(
        "band_low",
        Feature::Band {
            low_hz: 0.0,
            high_hz: 2.0,
        },
    );
    f.push(
        "band_mid",
        Feature::Band {
            low_hz: 2.0,
            high_hz: 7.5,
        },
    );
    f
}

fn random_batch(windows: usize, per: usize, seed: u64) -> WindowBatch {
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
    let features = all_features();
    for seed in 0..4 {
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
        println!("seed {seed}: 2000 windows, largest relative difference {worst:.2e}");
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
        ("11 scalar + 2 bands", all_features()),
    ] {
        for (windows, per) in [(10_000, 100), (100_000, 100), (20_000, 1000)] {
            let batch = random_batch(windows, per, 7);
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
                "{name}: {windows} windows, {} values: GPU {:.2} ms/batch incl. copies = {:.1} M windows/s, {:.1} GB/s moved; CPU (1 thread) {:.2} ms",
                batch.values.len(),
                secs * 1e3,
                windows as f64 / secs / 1e6,
                bytes as f64 / secs / 1e9,
                cpu * 1e3
            );
        }
    }
}
