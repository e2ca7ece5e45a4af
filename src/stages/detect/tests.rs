//! Scorer tests: warm-up, calibration, fusion, refractory period, contributions.

use super::kinds::{Calibration, Fuse};
use super::*;

fn scorer(detectors: Vec<DetectorSpec>, warmup: u32, fuse: Fuse) -> Scorer {
    Scorer::new(
        detectors,
        Vec::new(),
        warmup,
        fuse,
        1000,
        crate::timefmt::Zone::UTC,
    )
}

fn meta(i: i64) -> WindowMeta {
    WindowMeta {
        start: i * 1000,
        values: 10,
        filled: 0,
    }
}

#[test]
fn ewma_z_keeps_the_workload_semantics() {
    let mut s = scorer(
        vec![DetectorSpec::new(DetectorKind::EwmaZ, vec![0])],
        0,
        Fuse::default(),
    );
    let mut e = Ewma::default();
    let mut rng = crate::tools::fixture::Rng::new(8);
    for i in 0..100 {
        let x = rng.normal();
        let sc = s.score(0, "a", meta(i), &[x], &[]);
        let z = e.score_and_update(x, 0.1);
        assert_eq!(sc.score, z);
        assert_eq!(sc.ai, calibrate(z, 4.0));
    }
    assert!((calibrate(4.0, 4.0) - 0.5).abs() < 1e-12);
}

#[test]
fn nothing_scores_during_warm_up() {
    let mut s = scorer(
        vec![DetectorSpec::new(DetectorKind::LevelZ, vec![0])],
        10,
        Fuse::default(),
    );
    for i in 0..10 {
        let x = if i % 2 == 0 { 0.0 } else { 1e6 };
        let sc = s.score(0, "a", meta(i), &[x], &[]);
        assert_eq!(sc.ai, 0.0, "window {i}");
    }
    // Window 11 may: a jump far beyond the learned spread.
    let sc = s.score(0, "a", meta(10), &[1e9], &[]);
    assert!(sc.ai > 0.5, "{sc:?}");
}

#[test]
fn tail_calibration_makes_sensors_of_any_scale_comparable() {
    let fuse = Fuse {
        calibration: Calibration::Tail,
        tail_history: 500,
        ..Fuse::default()
    };
    let mut s = scorer(
        vec![DetectorSpec::new(DetectorKind::LevelZ, vec![0])],
        100,
        fuse,
    );
    let mut rng = crate::tools::fixture::Rng::new(12);
    for i in 0..1000 {
        let x = rng.normal();
        let a = s.score(0, "small", meta(i), &[x], &[]);
        let b = s.score(1, "large", meta(i), &[1e4 * x + 5e6], &[]);
        assert!(
            (a.ai - b.ai).abs() < 1e-9,
            "window {i}: {} vs {}",
            a.ai,
            b.ai
        );
    }
    let a = s.score(0, "small", meta(1000), &[15.0], &[]);
    assert!(a.ai > 0.5 && a.ai <= 1.0, "{a:?}");
}

#[test]
fn refractory_halves_a_score_that_is_not_a_new_high() {
    let fuse = Fuse {
        refractory: 3,
        ..Fuse::default()
    };
    let mut d = DetectorSpec::new(DetectorKind::Stuck, vec![0]);
    d.windows = 1;
    let mut s = scorer(vec![d], 0, fuse);
    let fused: Vec<f64> = [1.0, 1.0, 1.0, 1.0, 2.0, 2.0]
        .iter()
        .enumerate()
        .map(|(i, &x)| s.score(0, "a", meta(i as i64), &[x], &[]).fused)
        .collect();
    // Runs 0, 1, 2, 3, 0, 1: raw fused 0, .5, .8, .9, 0, .5. Window 5 (0.5) is not above
    // window 3 (0.9, within the last 3), so it is halved; the rising ones are not.
    let raw = [0.0, 0.5, 0.8, 0.9, 0.0, 0.5];
    for (i, (&f, &r)) in fused.iter().zip(&raw).enumerate() {
        let want = if i == 4 || i == 5 { r / 2.0 } else { r };
        assert!((f - want).abs() < 1e-9, "window {i}: {f} vs {want}");
    }
}

#[test]
fn contributions_name_the_detector_that_fired_first() {
    let mut stuck = DetectorSpec::new(DetectorKind::Stuck, vec![1]);
    stuck.windows = 2;
    let mut s = scorer(
        vec![DetectorSpec::new(DetectorKind::LevelZ, vec![0]), stuck],
        0,
        Fuse::default(),
    );
    let mut rng = crate::tools::fixture::Rng::new(1);
    let mut last = Scored::default();
    for i in 0..20 {
        last = s.score(0, "a", meta(i), &[rng.normal(), 3.0], &[]);
    }
    assert_eq!(last.contributions.len(), 2);
    assert_eq!(last.contributions[0].detector, 1);
    assert_eq!(last.contributions[0].feature, Some(1));
    assert!(last.ai > 0.9);
}

#[test]
fn dropout_scores_missing_windows() {
    let mut s = scorer(
        vec![DetectorSpec::new(DetectorKind::Dropout, vec![])],
        0,
        Fuse::default(),
    );
    assert_eq!(s.score(0, "a", meta(0), &[1.0], &[]).ai, 0.0);
    assert_eq!(s.score(0, "a", meta(1), &[1.0], &[]).ai, 0.0);
    // Two windows missing (2 and 3): the default `windows` = 2 gives 0.5.
    let sc = s.score(0, "a", meta(4), &[1.0], &[]);
    assert!((sc.ai - 0.5).abs() < 1e-12, "{sc:?}");
}

#[test]
fn seasonal_z_uses_local_time() {
    // Bucket by hour of day in a zone 5 hours ahead: UTC 19:00 is local 00:00.
    let mut d = DetectorSpec::new(DetectorKind::SeasonalZ, vec![0]);
    d.bucket_warmup = 2;
    let mut s = Scorer::new(
        vec![d],
        Vec::new(),
        0,
        Fuse::default(),
        3_600_000,
        crate::timefmt::Zone::Fixed(5 * 3_600_000),
    );
    let hour = |h: i64| WindowMeta {
        start: h * 3_600_000,
        values: 1,
        filled: 0,
    };
    let mut rng = crate::tools::fixture::Rng::new(3);
    // Local midnight is busy (100), other hours quiet (0).
    for day in 0..20 {
        for h in 0..24 {
            let local = (h + 5) % 24;
            let x = if local == 0 { 100.0 } else { 0.0 } + rng.normal();
            s.score(0, "a", hour(day * 24 + h), &[x], &[]);
        }
    }
    let busy = s.score(0, "a", hour(20 * 24 + 19), &[100.0], &[]).ai;
    let quiet = s.score(0, "a", hour(20 * 24 + 20), &[100.0], &[]).ai;
    assert!(busy < 0.5, "{busy}");
    assert!(quiet > 0.9, "{quiet}");
}

/// Raw level-z scores of a series that shifts by +10 (noise 1) at window 300 and stays there
/// for 400 windows, under `learn`.
fn shifted(learn: Learn) -> (Vec<f64>, u64) {
    let (raw, at) = shifted_at(learn);
    (raw, at.len() as u64)
}

/// [`shifted`], with the windows whose contribution says the detector re-baselined there.
fn shifted_at(learn: Learn) -> (Vec<f64>, Vec<i64>) {
    let mut d = DetectorSpec::new(DetectorKind::LevelZ, vec![0]);
    d.alpha = 0.1;
    d.learn = learn;
    let mut s = scorer(vec![d], 10, Fuse::default());
    let mut rng = crate::tools::fixture::Rng::new(5);
    let mut raw = Vec::new();
    let mut at = Vec::new();
    let mut counted = 0;
    for i in 0..700 {
        let x = rng.normal() + if i >= 300 { 10.0 } else { 0.0 };
        let sc = s.score(0, "a", meta(i), &[x], &[]);
        raw.push(sc.score);
        if sc.contributions.iter().any(|c| c.rebaselined) {
            at.push(i);
        }
        counted += s.take_rebaselines();
    }
    assert_eq!(counted, at.len() as u64, "the count and the flags agree");
    (raw, at)
}

#[test]
fn a_long_shift_keeps_scoring_under_gated_and_reference_and_fades_under_always() {
    let late = |r: &[f64]| r[600..700].iter().sum::<f64>() / 100.0;
    let (always, _) = shifted(Learn::Always);
    let (gated, n) = shifted(Learn::Gated {
        gate: 4.0,
        relearn: 0,
    });
    let (reference, _) = shifted(Learn::Reference { windows: 200 });
    // Every policy sees the shift start.
    for r in [&always, &gated, &reference] {
        assert!(r[300] > 5.0, "{}", r[300]);
    }
    assert!(
        late(&always) < 2.0,
        "always learns the shift: {}",
        late(&always)
    );
    assert!(
        late(&gated) > 5.0,
        "gated keeps it anomalous: {}",
        late(&gated)
    );
    assert!(
        late(&reference) > 5.0,
        "reference keeps it: {}",
        late(&reference)
    );
    assert_eq!(n, 0);
    // Before the shift, gating changes nothing (no ordinary window is above the gate).
    assert_eq!(always[..300], gated[..300]);
}

#[test]
fn a_shift_gated_for_relearn_windows_becomes_the_new_normal() {
    let (raw, n) = shifted(Learn::Gated {
        gate: 4.0,
        relearn: 50,
    });
    assert_eq!(n, 1, "one re-baselining");
    // The window that re-baselined says so (the windows output's `rebaselined` column).
    let (_, at) = shifted_at(Learn::Gated {
        gate: 4.0,
        relearn: 50,
    });
    assert_eq!(at, vec![349]);
    // Anomalous for the first 49 windows of the shift, ordinary once re-learned.
    assert!(raw[300..349].iter().all(|&z| z > 4.0));
    let after = raw[400..700].iter().sum::<f64>() / 300.0;
    assert!(after < 2.0, "{after}");
}

#[test]
fn gated_windows_do_not_enter_the_tail_calibration() {
    // With tail calibration, a gated anomaly is judged but not learned: the score of the
    // shift's late windows stays high.
    let fuse = Fuse {
        calibration: Calibration::Tail,
        ..Fuse::default()
    };
    let run = |learn| {
        let mut d = DetectorSpec::new(DetectorKind::LevelZ, vec![0]);
        d.learn = learn;
        let mut s = scorer(vec![d], 10, fuse.clone());
        let mut rng = crate::tools::fixture::Rng::new(6);
        let mut ai = Vec::new();
        for i in 0..900 {
            let x = rng.normal() + if i >= 500 { 10.0 } else { 0.0 };
            ai.push(s.score(0, "a", meta(i), &[x], &[]).ai);
        }
        ai[850..].iter().sum::<f64>() / 50.0
    };
    let gated = run(Learn::Gated {
        gate: 4.0,
        relearn: 0,
    });
    let always = run(Learn::Always);
    assert!(gated > 0.4, "{gated}");
    assert!(always < 0.2, "{always}");
}

#[test]
fn a_context_score_is_fused_as_it_is_under_any_calibration() {
    for calibration in [
        Calibration::Ratio,
        Calibration::Tail,
        Calibration::Likelihood,
    ] {
        let fuse = Fuse {
            calibration,
            ..Fuse::default()
        };
        let mut s = scorer(
            vec![DetectorSpec::new(DetectorKind::Context, vec![0])],
            0,
            fuse,
        );
        let mut c = context::Context::default();
        let p = ContextParams::default();
        let pattern = [0.0, 2.0, 4.0, 6.0, 4.0, 2.0];
        let xs = pattern.iter().cycle().take(900).copied().chain([50.0]);
        let mut last = Scored::default();
        for (i, x) in xs.enumerate() {
            last = s.score(0, "a", meta(i as i64), &[x], &[]);
            let raw = c.score_and_update(&[x], p);
            assert_eq!(last.ai, raw, "window {i}");
            assert_eq!(last.contributions[0].raw, raw);
        }
        assert!(last.alert, "a value far outside the range opens: {last:?}");
    }
}

#[test]
fn a_gated_mahalanobis_settles_from_a_cold_start() {
    let mut d = DetectorSpec::new(DetectorKind::Mahalanobis, vec![0, 1]);
    d.alpha = 0.01;
    d.learn = Learn::Gated {
        gate: 6.0,
        relearn: 0,
    };
    let mut s = scorer(vec![d], 0, Fuse::default());
    let mut rng = crate::tools::fixture::Rng::new(14);
    let mut normal = 0.0f64;
    for i in 0..1500 {
        let a = rng.normal();
        let sc = s.score(0, "a", meta(i), &[a, 2.0 * a + 0.1 * rng.normal()], &[]);
        if i >= 200 {
            normal = normal.max(sc.score);
        }
    }
    assert!(normal < 6.0, "normal max {normal}");
    // Off the relation by 30 of its standard deviations: gated, and it keeps scoring.
    let mut late = Vec::new();
    for i in 1500..1700 {
        let a = rng.normal();
        let sc = s.score(
            0,
            "a",
            meta(i),
            &[a, 2.0 * a + 0.1 * rng.normal() + 3.0],
            &[],
        );
        if i >= 1650 {
            late.push(sc.score);
        }
    }
    late.sort_by(f64::total_cmp);
    assert!(late[25] > 6.0, "median of the last 50: {late:?}");
}

/// Scores 3 sensors × 120 windows with every per-sensor detector under tail-likelihood
/// calibration; after window `restore_after` the state goes through a checkpoint's encoding
/// into a fresh scorer (and episodes). Returns every score and alert event as text.
fn scored_with_restore(restore_after: Option<i64>) -> Vec<String> {
    let kinds = [
        DetectorKind::EwmaZ,
        DetectorKind::LevelZ,
        DetectorKind::SeasonalZ,
        DetectorKind::Mahalanobis,
        DetectorKind::SpectralResidual,
        DetectorKind::Cusum,
        DetectorKind::Stuck,
        DetectorKind::Dropout,
        DetectorKind::Context,
    ];
    let specs: Vec<DetectorSpec> = kinds
        .iter()
        .map(|&k| {
            let mut d = DetectorSpec::new(
                k,
                if k == DetectorKind::Dropout {
                    vec![]
                } else {
                    vec![0, 1]
                },
            );
            if k == DetectorKind::LevelZ {
                d.learn = Learn::Gated {
                    gate: 3.0,
                    relearn: 5,
                };
            }
            d
        })
        .collect();
    let fuse = Fuse {
        calibration: Calibration::TailLikelihood,
        ..Fuse::default()
    };
    let new = || {
        (
            scorer(specs.clone(), 5, fuse.clone()),
            Episodes::new(EpisodeConfig::from(&fuse)),
        )
    };
    let (mut s, mut e) = new();
    let mut rng = crate::tools::fixture::Rng::new(3);
    let mut out = Vec::new();
    for i in 0..120i64 {
        for (slot, name) in ["a", "b", "c"].iter().enumerate() {
            let shift = if (70..80).contains(&i) && slot == 1 {
                40.0
            } else {
                0.0
            };
            let row = [rng.normal() + shift, (i % 7) as f64 + rng.normal() * 0.1];
            let sc = s.score(slot as u32, name, meta(i * 3600), &row, &[]);
            let ev = e.step(
                slot as u32,
                &sc,
                episode::WindowInfo {
                    sensor: name,
                    start: i * 3_600_000,
                    end: (i + 1) * 3_600_000,
                    rules: String::new(),
                    rule_severity: None,
                    top_features: String::new(),
                },
            );
            out.push(format!("{i} {name} {sc:?} {ev:?}"));
        }
        if restore_after == Some(i) {
            let bytes = bincode::serialize(&(s.save(), e.save())).expect("encodes");
            let (saved, episodes): (ScorerState, EpisodesState) =
                bincode::deserialize(&bytes).expect("decodes");
            assert_eq!(saved.len(), 3);
            (s, e) = new();
            s.restore(saved);
            e.restore(episodes);
        }
    }
    out
}

#[test]
fn a_restored_scorer_scores_as_if_never_stopped() {
    let whole = scored_with_restore(None);
    assert!(
        whole.iter().any(|l| l.contains("Some(AlertRow")),
        "an alert is raised"
    );
    for k in [0, 4, 30, 72, 90] {
        let got = scored_with_restore(Some(k));
        let first = whole.iter().zip(&got).position(|(a, b)| a != b);
        assert_eq!(first, None, "restored after window {k}: first difference");
    }
}

/// A checkpoint of a scorer whose cell detectors ran on a device holds the device's cells
/// written into the detector states (`ScorerState::put_cells`), and a resumed device engine
/// reads them back (`ScorerState::cells`). Both ways, for every cell kind: a scorer given
/// another's cells scores on exactly as that one does.
#[test]
fn cell_detector_state_goes_through_a_block_of_cells_and_back() {
    let mut seasonal = DetectorSpec::new(DetectorKind::SeasonalZ, vec![0, 1]);
    seasonal.bucket_warmup = 1;
    let detectors = vec![
        DetectorSpec::new(DetectorKind::EwmaZ, vec![0, 1]),
        DetectorSpec::new(DetectorKind::LevelZ, vec![1]),
        seasonal,
        DetectorSpec::new(DetectorKind::Cusum, vec![0]),
        DetectorSpec::new(DetectorKind::Stuck, vec![1]),
    ];
    let ws = cell::watches(&detectors);
    let b = cell::block(&ws);
    let run = |s: &mut Scorer, rng: &mut crate::tools::fixture::Rng, from: i64, to: i64| {
        let mut raws = Vec::new();
        for i in from..to {
            for slot in 0..3u32 {
                let x = [rng.normal() + f64::from(slot), (i % 7) as f64];
                let m = WindowMeta {
                    start: i * 1_200_000,
                    values: 10,
                    filled: 0,
                };
                let mut c = s.score(slot, "s", m, &x, &[]).contributions;
                c.sort_by_key(|c| c.detector);
                raws.extend(c.iter().map(|c| c.raw.to_bits()));
            }
        }
        raws
    };
    let (mut rng_a, mut rng_b) = (
        crate::tools::fixture::Rng::new(1),
        crate::tools::fixture::Rng::new(2),
    );
    let (mut a, mut other) = (
        scorer(detectors.clone(), 0, Fuse::default()),
        scorer(detectors.clone(), 0, Fuse::default()),
    );
    run(&mut a, &mut rng_a, 0, 200);
    run(&mut other, &mut rng_b, 0, 200);
    // `other`'s state with `a`'s cells written in: it scores on as `a` does.
    let (from_a, mut into) = (a.save(), other.save());
    for slot in 0..3 {
        let cells = from_a.cells(&ws, slot, b);
        assert!(
            cells.iter().filter(|c| c.n > 0).count() > 20,
            "cells hold state"
        );
        into.put_cells(&ws, slot, &cells);
        assert!(
            into.cells(&ws, slot, b)
                .iter()
                .zip(&cells)
                .all(|(x, y)| x.same_bits(y))
        );
    }
    let mut b2 = scorer(detectors, 0, Fuse::default());
    b2.restore(into);
    let mut rng = crate::tools::fixture::Rng::new(3);
    let want = run(&mut a, &mut rng.clone(), 200, 300);
    assert_eq!(want, run(&mut b2, &mut rng, 200, 300));
}
