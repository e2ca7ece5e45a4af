//! The CUDA kernels of cuda/, compiled as host C++ over cuda/emu/hyflow_emu.h (build.rs, feature
//! `kernel-emulation`) and run on the CPU, must agree with the Rust reference (compute::cpu) on
//! random and edge-case windows. scripts/test.sh runs these with the feature on.
#![cfg(feature = "kernel-emulation")]

use crate::common;

use hyflow::compute::{ComputeBackend, FeatureBatch, KernelLayout, WindowBatch, cpu::CpuBackend};
use hyflow::stages::detect::cell::Cell;
use hyflow::stages::features::{Feature, FeatureSet};
use hyflow::tools::fixture::Rng;
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

/// cuda/score.cu against `detect::cell::step` and `compute::detect::run_cpu`, bit for bit:
/// every cell detector (seasonal-z with a cell per hour of the day), with every learn policy
/// (gated ones re-baselining after level shifts, seasonal-z among them, whose every bucket is
/// zeroed then; reference ones freezing), windows of random sensors at random hours interleaved
/// over several batches (NaN, inf, repeats and shifts among the values), the device state and
/// the policies' counts kept between batches, and some sensors' blocks replaced by a patch from
/// the host before a batch (as the engine does after scoring them on the CPU).
#[test]
fn detector_scores_and_device_state_match_the_reference_bit_for_bit() {
    use hyflow::compute::detect::{DetectDevice, Job, emulated::EmulatedDetect, run_cpu};
    use hyflow::compute::segments;
    use hyflow::stages::detect::DetectorKind::*;
    use hyflow::stages::detect::cell::{CellKind, Fate, block, learn_code, step, watches};
    use hyflow::stages::detect::{DetectorSpec, Learn};
    let mut seasonal = DetectorSpec::new(SeasonalZ, vec![1]);
    seasonal.bucket_warmup = 2;
    let with = |kind, features, learn| {
        let mut d = DetectorSpec::new(kind, features);
        d.learn = learn;
        d
    };
    let mut gated_seasonal = seasonal.clone();
    gated_seasonal.learn = Learn::Gated {
        gate: 3.0,
        relearn: 4,
    };
    let detectors = vec![
        DetectorSpec::new(EwmaZ, vec![1, 3]),
        DetectorSpec::new(Mahalanobis, vec![0, 1]), // not a cell detector: skipped
        DetectorSpec::new(LevelZ, vec![0]),
        seasonal,
        DetectorSpec::new(Cusum, vec![2, 0]),
        DetectorSpec::new(Stuck, vec![3]),
        with(
            LevelZ,
            vec![0, 2],
            Learn::Gated {
                gate: 4.0,
                relearn: 5,
            },
        ),
        gated_seasonal,
        with(Cusum, vec![1], Learn::Reference { windows: 6 }),
        with(EwmaZ, vec![3], Learn::Reference { windows: 3 }),
    ];
    let ws = watches(&detectors);
    let (n, b) = (ws.len(), block(&ws));
    assert_eq!((n, b), (12, 58));
    let kinds: Vec<i32> = ws.iter().map(|w| w.kind as i32).collect();
    let params: Vec<f64> = ws.iter().flat_map(|w| w.params).collect();
    let cell_at: Vec<i32> = ws.iter().map(|w| w.at as i32).collect();
    let learn: Vec<i32> = ws
        .iter()
        .flat_map(|w| {
            let (code, count, _) = learn_code(w.learn);
            [code, count, w.detector as i32]
        })
        .collect();
    let gate: Vec<f64> = ws.iter().map(|w| learn_code(w.learn).2).collect();
    let (n_slots, n_feat) = (23usize, 4usize);
    let mut rng = Rng::new(9);
    // All zero is every kind's initial state, on the device and in the reference.
    let mut device = EmulatedDetect::new(0);
    let mut reference = vec![Cell::default(); n_slots * b];
    // The policies' counts, as the scorer keeps them: windows per sensor, and gated windows
    // in a row per sensor and watch.
    let mut seen = vec![0u32; n_slots];
    let mut gated = vec![0u32; n_slots * n];
    let (mut patched, mut scored, mut fates) = (0, [0usize; 5], [0usize; 3]);
    for batch in 0..12 {
        let n_windows = 40 + batch * 7;
        let slots: Vec<u32> = (0..n_windows)
            .map(|_| rng.below(n_slots as u64) as u32)
            .collect();
        let starts: Vec<i64> = (0..n_windows)
            .map(|_| rng.below(6) as i64 * 3_600_000)
            .collect();
        let features: Vec<f64> = (0..n_windows * n_feat)
            .map(|i| match rng.below(60) {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2..=9 => 5.0,
                _ => 100.0 + (batch / 4) as f64 * 30.0 + (i % 7) as f64 + 3.0 * rng.normal(),
            })
            .collect();
        let x: Vec<f64> = (0..n_windows)
            .flat_map(|w| ws.iter().map(move |wa| (w, wa.feature)))
            .map(|(w, f)| features[w * n_feat + f])
            .collect();
        let bucket: Vec<i32> = (0..n_windows)
            .flat_map(|w| ws.iter().map(move |wa| (w, wa)))
            .map(|(w, wa)| wa.bucket(starts[w]) as i32)
            .collect();
        // Sensors the host "scored itself" before this batch: their reference state moves on
        // and the device gets their block as a patch.
        let (order, offsets, seg_slot) = segments(&slots);
        let mut seg_patch = vec![-1i32; seg_slot.len()];
        let mut patch = Vec::new();
        for (s, &slot) in seg_slot.iter().enumerate() {
            if rng.below(4) == 0 {
                let cells = &mut reference[slot as usize * b..(slot as usize + 1) * b];
                for w in &ws {
                    step(w, &mut cells[w.at + w.cells - 1], 90.0 + rng.normal());
                }
                seg_patch[s] = (patch.len() / b) as i32;
                patch.extend_from_slice(cells);
                patched += 1;
            }
        }
        let seg_seen: Vec<u32> = seg_slot.iter().map(|&s| seen[s as usize]).collect();
        let seg_gated: Vec<u32> = seg_slot
            .iter()
            .flat_map(|&s| gated[s as usize * n..(s as usize + 1) * n].to_vec())
            .collect();
        let mut raw = vec![f64::NAN; n_windows * n];
        let mut after = vec![Cell::default(); n_windows * n];
        let mut fate = vec![-1i32; n_windows * n];
        let job = Job {
            n_watch: n,
            kinds: &kinds,
            params: &params,
            cell_at: &cell_at,
            block: b,
            x: &x,
            bucket: &bucket,
            order: &order,
            seg_offsets: &offsets,
            seg_slot: &seg_slot,
            seg_patch: &seg_patch,
            patch: &patch,
            slots: n_slots,
            // The device starts from zeros: no slot was scored before the first batch.
            mirror: &[],
            learn: &learn,
            gate: &gate,
            seen: &seg_seen,
            gated: &seg_gated,
        };
        device
            .run(&job, &mut raw, &mut after, &mut fate)
            .expect("emulated run");
        // The reference: run_cpu on the reference's blocks of the batch's sensors.
        let mut blocks: Vec<Cell> = seg_slot
            .iter()
            .flat_map(|&s| reference[s as usize * b..(s as usize + 1) * b].to_vec())
            .collect();
        let mut want_raw = vec![f64::NAN; raw.len()];
        let mut want_after = vec![Cell::default(); raw.len()];
        let mut want_fate = vec![-2i32; raw.len()];
        run_cpu(
            &ws,
            &job,
            &mut blocks,
            &mut want_raw,
            Some((&mut want_after, &mut want_fate)),
        );
        for (s, &slot) in seg_slot.iter().enumerate() {
            reference[slot as usize * b..(slot as usize + 1) * b]
                .copy_from_slice(&blocks[s * b..(s + 1) * b]);
        }
        for (w, &slot) in slots.iter().enumerate() {
            seen[slot as usize] += 1;
            for (j, wa) in ws.iter().enumerate() {
                let (want, got) = (want_raw[w * n + j], raw[w * n + j]);
                scored[wa.kind as usize] += usize::from(got > 0.0);
                assert_eq!(
                    want.to_bits(),
                    got.to_bits(),
                    "batch {batch} window {w} watch {j} ({:?}): reference {want}, kernel {got}",
                    wa.kind
                );
                assert!(
                    after[w * n + j].same_bits(&want_after[w * n + j]),
                    "batch {batch} window {w} watch {j}: after {:?}, reference {:?}",
                    after[w * n + j],
                    want_after[w * n + j]
                );
                assert_eq!(
                    fate[w * n + j],
                    want_fate[w * n + j],
                    "fate of window {w} watch {j}"
                );
                let g = &mut gated[slot as usize * n + j];
                *g = if fate[w * n + j] == Fate::Kept as i32 {
                    *g + 1
                } else {
                    0
                };
                if wa.learn != Learn::Always {
                    fates[fate[w * n + j] as usize] += 1;
                } else {
                    assert_eq!(fate[w * n + j], Fate::Learned as i32);
                }
            }
        }
    }
    assert!(patched > 10, "patches exercised: {patched}");
    for (i, want) in reference.iter().enumerate() {
        assert!(
            device.state()[i].same_bits(want),
            "device state of cell {i}"
        );
    }
    // Every kind scored something (stuck runs happened, seasonal buckets warmed up); the
    // policies learned, kept and re-baselined.
    assert!(scored.iter().all(|&k| k > 0), "{scored:?} by kind");
    assert!(
        fates.iter().all(|&k| k > 10),
        "{fates:?} learned, kept, re-baselined"
    );
    assert_eq!(CellKind::Seasonal as usize, 4);
}
