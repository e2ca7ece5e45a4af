//! The CUDA kernels of cuda/, compiled as host C++ over cuda/emu/hyflow_emu.h (build.rs, feature
//! `kernel-emulation`) and run on the CPU, must agree with the Rust reference (compute::cpu) on
//! random and edge-case windows. scripts/test.sh runs these with the feature on.
#![cfg(feature = "kernel-emulation")]

mod common;

use hyflow::compute::{ComputeBackend, FeatureBatch, KernelLayout, WindowBatch, cpu::CpuBackend};
use hyflow::features::{Feature, FeatureSet};
use hyflow::fixture::Rng;
use std::sync::Arc;

fn emulated(
    features: &FeatureSet,
    window_ms: i64,
    batch: &WindowBatch,
    threads: u32,
    layout: KernelLayout,
) -> Vec<f64> {
    hyflow::compute::emulated::kernel_features(features, window_ms, batch, threads, layout).data
}

/// |a - b| <= 1e-9 · max(|a|, |b|, scale): sums in another order differ in the last bits,
/// relative to the magnitude of what was summed (`scale`, per feature).
fn close(a: f64, b: f64, scale: f64) -> bool {
    if a == b {
        return true; // also equal infinities
    }
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(scale) + 1e-12
}

/// Both kernels (a block per window with `threads` threads; a warp per window, `threads` / 32
/// windows per block) against the reference.
fn check(batch: &WindowBatch, window_ms: i64, threads: u32, what: &str) {
    for layout in [KernelLayout::Block, KernelLayout::Warp] {
        check_layout(
            batch,
            window_ms,
            threads,
            layout,
            &format!("{what}, {layout:?}"),
        );
    }
}

fn check_layout(
    batch: &WindowBatch,
    window_ms: i64,
    threads: u32,
    layout: KernelLayout,
    what: &str,
) {
    let features = common::all_features();
    let mut want = FeatureBatch::default();
    CpuBackend
        .features(&features, window_ms, batch, &mut want)
        .expect("cpu");
    let got = emulated(&features, window_ms, batch, threads, layout);
    for w in 0..batch.len() {
        let (_, vals) = batch.window(w);
        let magnitude = vals.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (j, name) in features.names.iter().enumerate() {
            let scale = match features.kinds[j] {
                Feature::Count
                | Feature::Skewness
                | Feature::Kurtosis
                | Feature::MeanCrossingRate => 1.0,
                Feature::Band { .. } => magnitude * magnitude,
                _ => magnitude,
            };
            let (a, b) = (
                want.data[w * features.len() + j],
                got[w * features.len() + j],
            );
            assert!(
                close(a, b, scale),
                "{what}: window {w} ({} values) feature {name}: reference {a}, kernel {b}",
                vals.len()
            );
        }
    }
}

fn batch_of(windows: &[Vec<(i64, f64)>], window_ms: i64) -> WindowBatch {
    let mut b = WindowBatch::default();
    for (i, w) in windows.iter().enumerate() {
        let start = i as i64 * window_ms;
        b.push_window(i as u32, Arc::from("s"), start, start + window_ms);
        for (t, v) in w {
            b.times.push(start + t);
            b.values.push(*v);
        }
        b.finish_window(0);
    }
    b
}

#[test]
fn random_windows_match_the_reference() {
    for seed in 0..6u64 {
        let mut rng = Rng::new(seed);
        let window_ms = 10_000;
        let windows: Vec<Vec<(i64, f64)>> = (0..6)
            .map(|_| {
                let n = rng.below(700) as usize + 1;
                let level = rng.range(-1e3, 1e3);
                let mut t = 0;
                (0..n)
                    .map(|i| {
                        t += rng.below(window_ms as u64 / n as u64 + 1) as i64;
                        let v = level + 5.0 * (i as f64 * 0.7).sin() + rng.normal();
                        (t.min(window_ms - 1), v)
                    })
                    .collect()
            })
            .collect();
        check(
            &batch_of(&windows, window_ms),
            window_ms,
            [32, 64][seed as usize % 2],
            &format!("seed {seed}"),
        );
    }
}

#[test]
fn edge_cases_match_the_reference() {
    let window_ms = 1_000;
    let largest: Vec<(i64, f64)> = (0..4096)
        .map(|i| (i * 1000 / 4096, (i as f64 * 0.01).cos()))
        .collect();
    let windows = vec![
        vec![],                                                  // empty window
        vec![(5, 42.0)],                                         // one value
        vec![(1, 3.0), (2, 3.0), (3, 3.0)],                      // constant
        (0..10).map(|i| (i, 5.3)).collect(),                     // constant; 10 · 5.3 / 10 != 5.3
        vec![(1, 1e300), (2, -1e300), (3, 5e299)],               // huge values
        vec![(0, 1.0), (0, 2.0), (0, 3.0)],                      // one distinct time
        vec![(1, 0.0), (2, 1.0), (3, -1.0), (4, 0.0), (5, 2.0)], // zero deviations
        largest,                                                 // the largest window
    ];
    // 96 threads: the warp kernel's last block has 2 windows for its 3 warps.
    check(&batch_of(&windows, window_ms), window_ms, 96, "edge cases");
}

unsafe extern "C" {
    fn hyflow_emu_ewma_score(
        features: *const f64,
        n_feat: i32,
        order: *const i32,
        seg_offsets: *const u32,
        seg_slot: *const u32,
        n_segments: i32,
        watch: *const i32,
        alpha: *const f64,
        n_watch: i32,
        state_n: *mut u32,
        state_m: *mut f64,
        state_v: *mut f64,
        z_out: *mut f64,
        seen_out: *mut u32,
    );
}

#[test]
fn ewma_scores_and_device_state_match_the_reference() {
    use hyflow::compute::segments;
    use hyflow::detect::Ewma;
    let (n_slots, n_feat) = (23usize, 4usize);
    let watch = [1i32, 3, 0];
    let alpha = [0.1, 0.05, 0.3];
    let mut rng = Rng::new(9);
    // Device state (as the engine will keep it) and the reference, per (slot, watched pair).
    let (mut sn, mut sm, mut sv) = (
        vec![0u32; n_slots * 3],
        vec![0.0f64; n_slots * 3],
        vec![0.0f64; n_slots * 3],
    );
    let mut reference = vec![Ewma::default(); n_slots * 3];
    for batch in 0..5 {
        // Windows of random sensors, several per sensor, interleaved, some not finite.
        let n_windows = 40 + batch * 7;
        let slots: Vec<u32> = (0..n_windows)
            .map(|_| rng.below(n_slots as u64) as u32)
            .collect();
        let features: Vec<f64> = (0..n_windows * n_feat)
            .map(|i| match rng.below(50) {
                0 => f64::NAN,
                1 => f64::INFINITY,
                _ => 100.0 + (i % 7) as f64 + 3.0 * rng.normal(),
            })
            .collect();
        let (order, offsets, seg_slot) = segments(&slots);
        let mut z = vec![f64::NAN; n_windows * 3];
        let mut seen = vec![u32::MAX; n_windows * 3];
        // SAFETY: buffers sized as the kernel indexes them (see cuda/score.cu).
        unsafe {
            hyflow_emu_ewma_score(
                features.as_ptr(),
                n_feat as i32,
                order.as_ptr(),
                offsets.as_ptr(),
                seg_slot.as_ptr(),
                seg_slot.len() as i32,
                watch.as_ptr(),
                alpha.as_ptr(),
                3,
                sn.as_mut_ptr(),
                sm.as_mut_ptr(),
                sv.as_mut_ptr(),
                z.as_mut_ptr(),
                seen.as_mut_ptr(),
            );
        }
        for (w, &slot) in slots.iter().enumerate() {
            for j in 0..3 {
                let e = &mut reference[slot as usize * 3 + j];
                let before = e.n;
                let want = e.score_and_update(features[w * n_feat + watch[j] as usize], alpha[j]);
                let got = z[w * 3 + j];
                assert!(
                    want == got || (want - got).abs() <= 1e-12 * want.abs(),
                    "batch {batch} window {w} pair {j}: reference {want}, kernel {got}"
                );
                assert_eq!(seen[w * 3 + j], before);
            }
        }
    }
    for (i, e) in reference.iter().enumerate() {
        assert_eq!((sn[i], sm[i], sv[i]), (e.n, e.m, e.v), "state of pair {i}");
    }
}
