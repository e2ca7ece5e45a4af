//! Resuming a checkpoint with another worker count. A checkpoint keeps its state per worker,
//! but everything in it belongs to one sensor (open windows, detectors, calibration, recent
//! scores, episodes) or one asset (asset detectors and episodes), and a sensor's worker is a
//! function of its id (or its asset's) and the worker count: the exchange's routing
//! ([`crate::stages::source::destination`]). So the state of a run of N workers is taken apart
//! by sensor and asset and dealt out again as a run of M workers would hold it. Source
//! positions and sink positions are kept by partition and sink, not by worker, and are not
//! touched.

use super::{AssetScorerStateBox, Checkpoint, ScoringState, WorkerState};
use crate::stages::detect::EpisodesState;
use crate::stages::detect::asset::AssetScorerState;
use crate::stages::detect::episode::SlotEpisodes;
use crate::stages::detect::{ScorerState, SensorScoring};
use crate::stages::source::{destination, route_key};
use crate::stages::window::SeriesSnapshot;

/// What one new worker is given, built up sensor by sensor.
#[derive(Default)]
struct Dealt {
    windows: Vec<SeriesSnapshot>,
    scorer: Vec<SensorScoring>,
    episodes: Vec<SlotEpisodes>,
    assets: Vec<(String, crate::stages::detect::asset::OneAsset)>,
    asset_slots: Vec<(String, u32)>,
    asset_episodes: Vec<SlotEpisodes>,
}

/// `c` with its state dealt out to `workers` workers, routed as a run of that many routes
/// readings (`asset_delimiter`: the pipeline's, when it scores assets); the state is moved,
/// not copied. Fails, naming what, when a worker's parts do not fit together (a damaged or
/// hand-made checkpoint).
pub fn regroup(
    mut c: Checkpoint,
    workers: usize,
    asset_delimiter: Option<&str>,
) -> Result<Checkpoint, String> {
    let workers = workers.max(1);
    let peers = workers as u32;
    let mut dealt: Vec<Dealt> = (0..workers).map(|_| Dealt::default()).collect();
    let any_scoring = c.state.iter().any(|w| w.scoring.is_some());
    let any_assets = c
        .state
        .iter()
        .any(|w| w.scoring.as_ref().is_some_and(|s| s.assets.is_some()));
    for (k, w) in std::mem::take(&mut c.state).into_iter().enumerate() {
        let scoring = w.scoring.unwrap_or_default();
        let mut scorer = scoring.scorer.into_slots().into_iter();
        let mut episodes = scoring.episodes.into_slots().into_iter();
        if scorer.len() > w.windows.len() || episodes.len() > w.windows.len() {
            return Err(format!(
                "worker {k} holds {} window series but scores for {} sensors and episodes for {}",
                w.windows.len(),
                scorer.len(),
                episodes.len()
            ));
        }
        for snap in w.windows {
            let to =
                &mut dealt[destination(route_key(&snap.name, asset_delimiter), peers) as usize];
            to.windows.push(snap);
            to.scorer.push(scorer.next().unwrap_or_default());
            to.episodes.push(episodes.next().unwrap_or_default());
        }
        if let Some(a) = scoring.assets {
            for (asset, state) in a.0.into_assets() {
                dealt[destination(&asset, peers) as usize]
                    .assets
                    .push((asset, state));
            }
        }
        let mut by_slot: Vec<Option<SlotEpisodes>> = scoring
            .asset_episodes
            .into_slots()
            .into_iter()
            .map(Some)
            .collect();
        let mut slots = scoring.asset_slots;
        slots.sort_by_key(|(_, s)| *s);
        for (asset, slot) in slots {
            let state = by_slot
                .get_mut(slot as usize)
                .and_then(Option::take)
                .unwrap_or_default();
            let to = &mut dealt[destination(&asset, peers) as usize];
            to.asset_slots.push((asset, to.asset_episodes.len() as u32));
            to.asset_episodes.push(state);
        }
    }
    c.workers = workers;
    c.state = dealt
        .into_iter()
        .map(|d| WorkerState {
            windows: d.windows,
            scoring: any_scoring.then(|| ScoringState {
                scorer: ScorerState::from_slots(d.scorer),
                episodes: EpisodesState::from_slots(d.episodes),
                assets: any_assets
                    .then(|| AssetScorerStateBox(AssetScorerState::from_assets(d.assets))),
                asset_episodes: EpisodesState::from_slots(d.asset_episodes),
                asset_slots: d.asset_slots,
            }),
        })
        .collect();
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(name: &str) -> SeriesSnapshot {
        SeriesSnapshot {
            name: name.into(),
            pending: vec![(1, 1.0, 0)],
            next_start: 0,
            prev: None,
        }
    }

    /// A checkpoint of two workers holding `names` (sensor `a.b`: asset `a`), routed as a
    /// run of two workers routes them, each asset with an asset slot on its worker.
    fn two_workers(names: &[&str]) -> Checkpoint {
        let mut state = vec![WorkerState::default(), WorkerState::default()];
        for n in names {
            let w = destination(route_key(n, Some(".")), 2) as usize;
            state[w].windows.push(snap(n));
            let scoring = state[w].scoring.get_or_insert_with(ScoringState::default);
            let asset = route_key(n, Some(".")).to_string();
            if !scoring.asset_slots.iter().any(|(a, _)| *a == asset) {
                let slot = scoring.asset_slots.len() as u32;
                scoring.asset_slots.push((asset, slot));
            }
        }
        Checkpoint {
            id: 1,
            at: 0,
            pipeline_hash: 0,
            definition: String::new(),
            pipeline: "p".into(),
            workers: 2,
            written_ms: 0,
            sources: Vec::new(),
            state,
            sinks: Vec::new(),
            incidents: None,
        }
    }

    fn held(c: &Checkpoint) -> Vec<(usize, String)> {
        let mut v: Vec<(usize, String)> = c
            .state
            .iter()
            .enumerate()
            .flat_map(|(w, s)| s.windows.iter().map(move |x| (w, x.name.clone())))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn each_sensor_goes_to_its_assets_worker_and_comes_back() {
        let names: Vec<String> = (0..40).map(|i| format!("m{}.s{}", i / 4, i % 4)).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let c = two_workers(&names);
        let three = regroup(c.clone(), 3, Some(".")).expect("regroup");
        assert_eq!(three.workers, 3);
        assert_eq!(three.state.len(), 3);
        for (w, s) in three.state.iter().enumerate() {
            assert!(!s.windows.is_empty(), "worker {w} got nothing");
            for x in &s.windows {
                assert_eq!(
                    destination(route_key(&x.name, Some(".")), 3) as usize,
                    w,
                    "{}",
                    x.name
                );
            }
            // Asset slots are numbered afresh on each worker, each asset on its sensors'.
            let scoring = s.scoring.as_ref().expect("scoring");
            let slots: Vec<u32> = scoring.asset_slots.iter().map(|(_, s)| *s).collect();
            assert_eq!(slots, (0..slots.len() as u32).collect::<Vec<_>>());
            for (a, _) in &scoring.asset_slots {
                assert_eq!(destination(a, 3) as usize, w, "{a}");
            }
        }
        assert_eq!(held(&three).len(), 40);
        assert_eq!(held(&regroup(three, 2, Some(".")).expect("back")), held(&c));
        // A worker whose scores outnumber its window series is not dealt out.
        let mut bad = c.clone();
        let n = bad.state[0].windows.len() + 1;
        let s = bad.state[0].scoring.as_mut().expect("scoring");
        s.scorer = ScorerState::from_slots(vec![SensorScoring::default(); n]);
        let e = regroup(bad, 3, Some(".")).expect_err("refused");
        assert!(e.contains("worker 0"), "{e}");
    }
}
