use super::*;
use crate::stages::detect::DetectorKind::*;
use crate::tools::fixture::Rng;

/// A device modelled on the host: its own cells, which only patches and its own batches
/// change, so an engine that forgets to patch after scoring on the CPU gets old scores back.
/// It grows its state by zeros, keeping its own cells (never re-reading the mirror).
/// `fail(batch)` makes a batch fail before it runs (as an allocation failure would); `corrupt`
/// adds 1 to every score.
struct HostDevice {
    state: Vec<Cell>,
    ws: Vec<Watch>,
    batch: u64,
    fail: fn(u64) -> Option<ComputeError>,
    corrupt: bool,
}

impl DetectDevice for HostDevice {
    fn name(&self) -> &str {
        "host:0"
    }

    fn run(
        &mut self,
        job: &Job<'_>,
        raw: &mut [f64],
        after: &mut [Cell],
        fate: &mut [i32],
    ) -> Result<(), ComputeError> {
        self.batch += 1;
        if let Some(e) = (self.fail)(self.batch) {
            return Err(e);
        }
        let b = job.block;
        if self.state.len() < job.slots * b {
            self.state.resize(job.slots * b, Cell::default());
        }
        for (s, &slot) in job.seg_slot.iter().enumerate() {
            if job.seg_patch[s] >= 0 {
                let p = job.seg_patch[s] as usize * b;
                self.state[slot as usize * b..(slot as usize + 1) * b]
                    .copy_from_slice(&job.patch[p..p + b]);
            }
        }
        let mut blocks: Vec<Cell> = job
            .seg_slot
            .iter()
            .flat_map(|&slot| self.state[slot as usize * b..(slot as usize + 1) * b].to_vec())
            .collect();
        run_cpu(&self.ws, job, &mut blocks, raw, Some((after, fate)));
        for (s, &slot) in job.seg_slot.iter().enumerate() {
            self.state[slot as usize * b..(slot as usize + 1) * b]
                .copy_from_slice(&blocks[s * b..(s + 1) * b]);
        }
        if self.corrupt {
            raw.iter_mut().for_each(|r| *r += 1.0);
        }
        Ok(())
    }
}

fn watches_of_every_kind() -> Vec<Watch> {
    let mut seasonal = DetectorSpec::new(SeasonalZ, vec![0]);
    seasonal.bucket_warmup = 1;
    watches(&[
        DetectorSpec::new(EwmaZ, vec![0, 1]),
        DetectorSpec::new(LevelZ, vec![1]),
        seasonal,
        DetectorSpec::new(Cusum, vec![0]),
        DetectorSpec::new(Stuck, vec![1]),
    ])
}

/// Runs `batches` random batches through `engine` and through a plain CPU reference; asserts
/// that every score and the final cells agree exactly.
fn agrees_with_the_reference(engine: &mut DetectEngine, batches: usize) {
    let ws = engine.watches().to_vec();
    let (n, b) = (ws.len(), block(&ws));
    let mut reference = vec![Cell::default(); 64 * b];
    let mut rng = Rng::new(17);
    for batch in 0..batches {
        // Slots grow over the first batches (the device state has to grow); a batch an hour
        // (the seasonal buckets turn; the engine's time zone is +2 h).
        let top = 5 + batch.min(20) as u64;
        let slots: Vec<u32> = (0..10 + batch % 7).map(|_| rng.below(top) as u32).collect();
        let rows: Vec<(i64, Vec<f64>)> = slots
            .iter()
            .map(|_| {
                let x = if rng.below(10) == 0 {
                    3.0
                } else {
                    rng.normal()
                };
                (batch as i64 * 3_600_000, vec![10.0 + x, x])
            })
            .collect();
        let inputs = engine.gather(rows.iter().map(|(t, r)| (*t, r.as_slice())));
        let raw = engine.score(&slots, &inputs, &Fresh);
        for (w, &slot) in slots.iter().enumerate() {
            for (j, wa) in ws.iter().enumerate() {
                let bucket = wa.bucket(rows[w].0 + 7_200_000);
                assert_eq!(inputs.bucket[w * n + j] as usize, bucket);
                let cell = &mut reference[slot as usize * b + wa.at + bucket];
                let want = step(wa, cell, inputs.x[w * n + j]);
                assert_eq!(
                    want.to_bits(),
                    raw[w * n + j].to_bits(),
                    "batch {batch} window {w} watch {j}"
                );
            }
        }
    }
    for slot in 0..64u32 {
        let got = engine.cells(slot);
        let want = &reference[slot as usize * b..(slot as usize + 1) * b];
        assert!(got.is_empty() || got.iter().zip(want).all(|(a, b)| a.same_bits(b)));
    }
}

fn host_engine(
    fail: fn(u64) -> Option<ComputeError>,
    corrupt: bool,
    policy: Policy,
    check: f64,
) -> DetectEngine {
    let ws = watches_of_every_kind();
    let dev = HostDevice {
        state: Vec::new(),
        ws: ws.clone(),
        batch: 0,
        fail,
        corrupt,
    };
    DetectEngine::new(
        ws,
        Some(Box::new(dev)),
        policy,
        check,
        crate::timefmt::Zone::Fixed(7_200_000),
    )
}

#[test]
fn every_batch_on_the_device_gives_the_cpu_scores() {
    let mut e = host_engine(|_| None, false, Policy::Accelerator, 0.0);
    agrees_with_the_reference(&mut e, 30);
    let r = e.reports();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!((r[0].name.as_str(), r[0].batches), ("host:0 detectors", 30));
}

#[test]
fn batches_the_device_fails_are_scored_on_the_cpu_and_the_device_catches_up() {
    // Every third batch fails: the CPU scores it, and the next device batch must patch those
    // sensors.
    let mut e = host_engine(
        |b| (b % 3 == 0).then(|| ComputeError::Device("out of memory".into())),
        false,
        Policy::Accelerator,
        0.0,
    );
    agrees_with_the_reference(&mut e, 30);
    let r = e.reports();
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[0].batches, 10, "CPU batches");
    assert_eq!((r[1].batches, r[1].errors), (20, 10));
}

#[test]
fn a_lost_device_hands_every_later_batch_to_the_cpu() {
    let mut e = host_engine(
        |b| (b == 4).then(|| ComputeError::Lost("illegal address".into())),
        false,
        Policy::Accelerator,
        0.0,
    );
    agrees_with_the_reference(&mut e, 20);
    let r = e.reports();
    assert_eq!((r[1].batches, r[1].errors), (3, 1));
    assert_eq!(r[0].batches, 17);
}

#[test]
fn the_cross_check_catches_wrong_scores_and_the_cpu_ones_are_used() {
    // A device wrong every time: each of its batches is checked, the CPU's scores are used,
    // and after 3 wrong batches in a row (the router's failure policy) it is dropped.
    let mut e = host_engine(|_| None, true, Policy::Accelerator, 1.0);
    agrees_with_the_reference(&mut e, 10);
    let r = e.reports();
    assert_eq!((r[1].cross_checked, r[1].errors), (3, 3));
    assert_eq!(r[0].batches, 10, "the CPU scored every batch");
    assert!((r[1].max_abs_diff - 1.0).abs() < 1e-9, "{r:?}");
    // A right device passes every check.
    let mut e = host_engine(|_| None, false, Policy::Accelerator, 0.5);
    agrees_with_the_reference(&mut e, 10);
    let r = e.reports();
    assert_eq!((r[0].cross_checked, r[0].errors), (5, 0));
}

#[test]
fn routing_by_cost_mixes_both_sides_without_changing_a_score() {
    let mut e = host_engine(|_| None, false, Policy::Cheapest, 0.0);
    agrees_with_the_reference(&mut e, 40);
    let r = e.reports();
    // Three probes each at least; which side wins depends on timing, not on correctness.
    assert_eq!(r.iter().map(|r| r.batches).sum::<u64>(), 40);
    assert!(r.iter().all(|r| r.batches >= 3), "{r:?}");
}

#[test]
fn no_cell_detector_or_the_cpu_device_needs_no_engine() {
    let d = [DetectorSpec::new(Mahalanobis, vec![0, 1])];
    assert!(
        DetectEngine::for_device(Device::Cuda(0), &d, crate::timefmt::Zone::UTC, 0.0)
            .unwrap()
            .is_none()
    );
    let d = [DetectorSpec::new(EwmaZ, vec![0])];
    assert!(
        DetectEngine::for_device(Device::Cpu, &d, crate::timefmt::Zone::UTC, 0.0)
            .unwrap()
            .is_none()
    );
    // An unknown device cannot reach the engine: the plan refuses it.
    assert!(crate::plan::Device::parse("tpu:0").is_none());
}

/// Learn policies on a device: a scorer given the engine's raw scores gives exactly what a
/// scorer that runs the detectors itself gives (raw and calibrated scores, the detector that
/// fired, re-baselinings), window by window: the engine decides from the scorer's counts
/// as the scorer does. Every sensor's level shifts for good part-way: gated detectors (a
/// seasonal one among them, whose every bucket a re-baselining zeroes, in the device's cells
/// and the host's mirror) gate it and then re-baseline; reference ones freeze. Every fourth
/// device batch fails, so the CPU scores it from the mirror and patches the device after.
#[test]
fn learn_policies_on_the_engine_equal_the_scorer_on_the_cpu() {
    use crate::stages::detect::{Fuse, Learn, Scorer, WindowMeta};
    let with = |kind, features, learn| {
        let mut d = DetectorSpec::new(kind, features);
        d.learn = learn;
        d.bucket_warmup = 1;
        d
    };
    let gated = |relearn| Learn::Gated { gate: 4.0, relearn };
    let detectors = vec![
        with(LevelZ, vec![0, 1], gated(30)),
        with(SeasonalZ, vec![0], gated(20)),
        with(Cusum, vec![1], Learn::Reference { windows: 40 }),
        with(EwmaZ, vec![0], Learn::Always),
        with(EwmaZ, vec![1], Learn::Reference { windows: 25 }),
    ];
    let zone = crate::timefmt::Zone::UTC;
    let scorer = || {
        Scorer::new(
            detectors.clone(),
            Vec::new(),
            5,
            Fuse::default(),
            600_000,
            zone.clone(),
        )
    };
    let (mut cpu, mut fed) = (scorer(), scorer());
    let ws = watches(&detectors);
    let device = HostDevice {
        state: Vec::new(),
        ws: ws.clone(),
        batch: 0,
        fail: |b| (b % 4 == 0).then(|| ComputeError::Device("out of memory".into())),
        corrupt: false,
    };
    let mut engine = DetectEngine::new(ws, Some(Box::new(device)), Policy::Accelerator, 0.5, zone);
    let mut rng = Rng::new(23);
    let sensors = 6u32;
    // Windows of 10 minutes, every sensor each time, in batches of 1 to 60 windows.
    let windows: Vec<(u32, i64, [f64; 2])> = (0..700i64)
        .flat_map(|i| (0..sensors).map(move |s| (s, i)))
        .map(|(s, i)| {
            let shift = if i >= 200 + 60 * i64::from(s) {
                12.0
            } else {
                0.0
            };
            let day = (i % 144) as f64 / 20.0;
            (
                s,
                i * 600_000,
                [10.0 + day + rng.normal() + shift, rng.normal() + shift],
            )
        })
        .collect();
    let (mut at, mut rebaselined) = (0, 0);
    while at < windows.len() {
        let end = (at + 1 + rng.below(60) as usize).min(windows.len());
        let batch = &windows[at..end];
        let slots: Vec<u32> = batch.iter().map(|w| w.0).collect();
        let inputs = engine.gather(batch.iter().map(|w| (w.1, &w.2[..])));
        let raw = engine.score(&slots, &inputs, &fed);
        let n = engine.watches().len();
        for (k, &(slot, start, row)) in batch.iter().enumerate() {
            let meta = WindowMeta {
                start,
                values: 60,
                filled: 0,
            };
            let want = cpu.score(slot, "s", meta, &row, &[]);
            let cells = &raw[k * n..(k + 1) * n];
            let got = fed.score_with(slot, "s", meta, &row, &[], Some(cells), &[]);
            assert_eq!(
                format!("{:?}", want.contributions),
                format!("{:?}", got.contributions),
                "sensor {slot} window at {start}"
            );
            assert_eq!(want.ai.to_bits(), got.ai.to_bits());
        }
        let n = cpu.take_rebaselines();
        assert_eq!(fed.take_rebaselines(), n);
        rebaselined += n;
        at = end;
    }
    // Both gated detectors re-baselined every sensor, and the device failed some batches.
    assert!(
        rebaselined >= 2 * u64::from(sensors),
        "{rebaselined} re-baselinings"
    );
    let r = engine.reports();
    assert!(
        r.len() == 2 && r[0].batches > 10 && r[1].errors > 10,
        "{r:?}"
    );
}
