//! The score stage: detectors, rules, fusion and the alert lifecycle, per sensor in window
//! order. With asset detectors (`asset-mahalanobis`) the windows of one time are held until
//! the input frontier passes it, so that every sensor of an asset is there when the asset is
//! scored; windows arrive at their end time, and windows are exchanged by asset then.
//!
//! With a GPU device the cell detectors (`ewma-z`, `level-z`, `seasonal-z`, `cusum`, `stuck`)
//! are scored by
//! [`DetectEngine`] (cuda/score.cu, state kept on the device), all windows that arrived
//! together in one call; the rest of the scoring stays here, on the CPU.

use super::Shared;
use super::checkpoint::{Cut, Holding};
use super::features::Featured;
use super::stage::{Arrived, Emit, Stage, least, unary};
use crate::compute::detect::DetectEngine;
use crate::compute::{FeatureBatch, WindowBatch};
use crate::events::{Alerted, Event as _, Rebaselined, WindowsClosed};
use crate::output::{OutRecord, WindowRow};
use crate::plan::Plan;
use crate::stages::detect::asset::{AssetScorer, asset_of};
use crate::stages::detect::{
    Contribution, EpisodeConfig, Episodes, Scorer, WindowMeta, episode::WindowInfo,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline as Pipe;
use timely::dataflow::operators::Capability;
use timely::progress::frontier::AntichainRef;

/// Windows held per time until the frontier passes it, with the capability to emit them at.
type Stash = BTreeMap<i64, (Capability<i64>, Vec<(WindowBatch, FeatureBatch)>)>;

/// The members (sensor, batch, row) of each (asset, window start).
type Groups<'a> = BTreeMap<(&'a str, i64), Vec<(&'a str, usize, usize)>>;

/// The engine's raw scores of several batches, handed out batch by batch.
struct CellScores {
    raw: Vec<f64>,
    per_window: usize,
    at: usize,
}

impl CellScores {
    /// The scores of the next `windows` windows.
    fn next(&mut self, windows: usize) -> &[f64] {
        let (a, b) = (self.at, self.at + windows * self.per_window);
        self.at = b;
        &self.raw[a..b]
    }
}

/// Everything the stage keeps between calls.
struct Scoring {
    pipeline: Arc<Plan>,
    shared: Arc<Shared>,
    scorer: Scorer,
    assets: Option<AssetScorer>,
    episodes: Episodes,
    /// Alert episodes of assets (the `assets` output), by asset slot.
    asset_episodes: Episodes,
    asset_slots: HashMap<String, u32>,
    /// The cell detectors' engine on a device (None: the scorer runs them on the CPU).
    engine: Option<DetectEngine>,
}

/// The score stage's state on one worker: the scoring, and what waits to be scored.
struct ScoreStage {
    st: Scoring,
    worker: usize,
    /// Windows at or after a checkpoint's cut, held back until the state is saved.
    holding: Holding<(Capability<i64>, Featured)>,
    /// Windows of asset pipelines, held per time until the frontier passes it.
    stash: Stash,
    /// With a device: the batches that arrived in this activation, scored together.
    arrived: Vec<(Capability<i64>, (WindowBatch, FeatureBatch))>,
}

impl ScoreStage {
    /// Takes in what arrived at `cap`: scored now, or kept for the frontier (assets, device).
    fn take(&mut self, cap: &Capability<i64>, s: Featured, rows: &mut Vec<OutRecord>) {
        let st = &mut self.st;
        let s = match s {
            Ok((w, f)) if !w.registry.is_empty() => match admit(w, f, rows) {
                Some(b) => Ok(b),
                None => return,
            },
            s => s,
        };
        match s {
            // A failure upstream: on to the sinks.
            Err(failure) => rows.push(OutRecord::Failure(failure)),
            // On the CPU alone there is no device call to gather for.
            Ok((w, f)) if st.assets.is_none() && st.engine.is_none() => {
                st.score_batch(&w, &f, None, None, rows)
            }
            Ok((w, f)) if st.assets.is_some() => self
                .stash
                .entry(*cap.time())
                .or_insert_with(|| (cap.clone(), Vec::new()))
                .1
                .push((w, f)),
            Ok(b) => self.arrived.push((cap.clone(), b)),
        }
    }

    /// Takes in what was held back for a checkpoint and may now be.
    fn release(&mut self, cut: Option<Cut>, out: &mut Emit<OutRecord>) {
        for (_, (cap, s)) in self.holding.release(cut) {
            let mut rows = Vec::new();
            self.take(&cap, s, &mut rows);
            out.give(&cap, rows);
        }
    }

    /// Scores what was kept for the frontier: everything that arrived with a device, and the
    /// asset stash's times below `upto`.
    fn score_kept(&mut self, upto: i64, out: &mut Emit<OutRecord>) {
        let st = &mut self.st;
        if !self.arrived.is_empty() {
            let arrived = std::mem::take(&mut self.arrived);
            let batches: Vec<_> = arrived.iter().map(|(_, b)| b).collect();
            let mut cells = st.cell_scores(&batches);
            for (cap, (w, f)) in &arrived {
                let mut rows = Vec::new();
                let mine = cells.as_mut().map(|c| c.next(w.len()));
                st.score_batch(w, f, None, mine, &mut rows);
                out.give(cap, rows);
            }
        }
        let ready: Vec<i64> = self.stash.range(..upto).map(|(t, _)| *t).collect();
        for t in ready {
            let Some((cap, batches)) = self.stash.remove(&t) else {
                continue;
            };
            let mut rows = Vec::new();
            st.score_time(&batches, &mut rows);
            out.give(&cap, rows);
        }
    }
}

impl Stage for ScoreStage {
    type In = Featured;
    type Out = OutRecord;

    fn on_input(&mut self, at: &Arrived<'_>, data: &mut Vec<Featured>, out: &mut Emit<OutRecord>) {
        let Some(cap) = at.retain() else {
            data.clear();
            return;
        };
        let cut = self.st.shared.checkpoints.as_ref().and_then(|c| c.armed());
        let mut rows = Vec::new();
        for s in data.drain(..) {
            if let Some(s) = self.holding.hold(cut, *cap.time(), (cap.clone(), s)) {
                self.take(&cap, s.1, &mut rows);
            }
        }
        out.give(&cap, rows);
    }

    fn on_frontier(&mut self, frontier: AntichainRef<'_, i64>, out: &mut Emit<OutRecord>) {
        let upto = least(frontier);
        let shared = self.st.shared.clone();
        if let Some(c) = shared.checkpoints.as_ref() {
            let cut = c.armed();
            self.release(cut, out);
            if let (Some(id), Some((_, at))) = (self.holding.due(cut, upto), cut) {
                // Everything below the cut has arrived: score it, save, then go on.
                self.score_kept(at, out);
                c.put_scoring(self.worker, id, self.st.save());
                self.holding.saved(id);
                self.release(cut, out);
            }
        }
        self.score_kept(upto, out);
        let st = &mut self.st;
        if frontier.is_empty()
            && let Some(e) = st.engine.take()
        {
            st.shared.add_engine_reports(e.reports());
        }
    }
}

/// Scores windows; see the module doc.
pub fn score_stage<'s>(
    stream: StreamVec<'s, i64, Featured>,
    pipeline: Arc<Plan>,
    shared: Arc<Shared>,
    resume: Option<Arc<crate::checkpoint::Checkpoint>>,
) -> StreamVec<'s, i64, OutRecord> {
    let worker = stream.scope().index();
    unary(stream, Pipe, "score", move |_| {
        let engine = match DetectEngine::for_device(
            pipeline.device,
            &pipeline.detectors,
            pipeline.zone.clone(),
            pipeline.compute.cross_check,
        ) {
            Ok(mut e) => {
                if let Some(e) = e.as_mut() {
                    e.share_costs(&shared.costs);
                }
                e
            }
            Err(e) => {
                shared.fail(super::Failure::Engine {
                    device: pipeline.device.to_string(),
                    detectors: true,
                    message: e.to_string(),
                });
                None
            }
        };
        let st = Scoring {
            engine,
            scorer: Scorer::new(
                pipeline.detectors.clone(),
                pipeline.rules.clone(),
                pipeline.warmup,
                pipeline.fuse.clone(),
                pipeline.window.slide,
                pipeline.zone.clone(),
            ),
            assets: AssetScorer::new(
                &pipeline.detectors,
                crate::stages::detect::Calibrator::of(&pipeline.fuse),
                pipeline.warmup,
            ),
            episodes: Episodes::new(EpisodeConfig::from(&pipeline.fuse)),
            asset_episodes: Episodes::new(EpisodeConfig::from(&pipeline.fuse)),
            asset_slots: HashMap::new(),
            pipeline: pipeline.clone(),
            shared: shared.clone(),
        };
        let mut st = st;
        if let Some(saved) = resume.and_then(|r| r.state.get(worker).cloned()?.scoring) {
            st.restore(saved);
        }
        ScoreStage {
            st,
            worker,
            holding: Holding::default(),
            stash: Stash::new(),
            arrived: Vec::new(),
        }
    })
}

/// The `assets` row of one (asset, window start): the asset detector that scored highest, and
/// the sensors behind it.
fn asset_row(
    asset: &str,
    start: i64,
    size: i64,
    open: f64,
    contributions: &[Contribution],
    shares: &[Vec<(String, f64)>],
) -> crate::output::AssetRow {
    let best = contributions.iter().enumerate().max_by(|a, b| {
        a.1.score
            .total_cmp(&b.1.score)
            .then(a.1.raw.total_cmp(&b.1.raw))
    });
    let (score, ai, top) = match best {
        Some((k, c)) => (
            c.raw,
            c.score,
            shares
                .get(k)
                .map(|s| {
                    s.iter()
                        .take(3)
                        .map(|(name, share)| format!("{name}:{share:.2}"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default(),
        ),
        None => (0.0, 0.0, String::new()),
    };
    crate::output::AssetRow {
        asset: asset.to_string(),
        start,
        end: start + size,
        score,
        ai_score: ai,
        alert: ai > open,
        top_sensors: top,
        episode: 0,
        state: String::new(),
    }
}

/// The windows of `w` whose sensors the registry holds (or accepts); each other window goes
/// to `rows` as a reject. None when no window is left.
fn admit(
    w: WindowBatch,
    f: FeatureBatch,
    rows: &mut Vec<OutRecord>,
) -> Option<(WindowBatch, FeatureBatch)> {
    let keep: Vec<usize> = (0..w.len()).filter(|&i| w.registry[i].is_some()).collect();
    if keep.len() == w.len() {
        return Some((w, f));
    }
    for i in (0..w.len()).filter(|&i| w.registry[i].is_none()) {
        rows.push(OutRecord::Reject(crate::batch::RejectRow {
            source: "registry".into(),
            row: None,
            sensor: Some(w.sensor[i].to_string()),
            time: Some(w.start[i]),
            value: None,
            reason: format!(
                "the registry does not hold sensor {:?} as of {} (unknown-sensors = \"reject\"): its window [{}, {}) of {} readings was not scored",
                &*w.sensor[i],
                crate::timefmt::format_timestamp(w.end[i]),
                crate::timefmt::format_timestamp(w.start[i]),
                crate::timefmt::format_timestamp(w.end[i]),
                w.offsets[i + 1] - w.offsets[i]
            ),
            kind: crate::batch::RejectKind::Unregistered,
        }));
    }
    crate::events::WindowsUnregistered {
        windows: (w.len() - keep.len()) as u64,
    }
    .emit();
    (!keep.is_empty()).then(|| (w.select(&keep), f.select(&keep)))
}

impl Scoring {
    /// Scores all windows of one time, asset by asset first.
    fn score_time(&mut self, batches: &[(WindowBatch, FeatureBatch)], out: &mut Vec<OutRecord>) {
        let delim = self
            .pipeline
            .source
            .asset_delimiter
            .as_deref()
            .unwrap_or("");
        // (asset, start) -> members (sensor, batch, row), scored in sensor order.
        let mut groups = Groups::new();
        for (b, (w, _)) in batches.iter().enumerate() {
            for i in 0..w.len() {
                let sensor: &str = &w.sensor[i];
                groups
                    .entry((asset_of(sensor, delim), w.start[i]))
                    .or_default()
                    .push((sensor, b, i));
            }
        }
        let mut contributions: Vec<HashMap<usize, Vec<Contribution>>> =
            vec![HashMap::new(); batches.len()];
        let asset_rows = self
            .pipeline
            .sinks
            .iter()
            .any(|s| s.output == crate::config::OutputKind::Assets);
        let open = self.pipeline.fuse.open;
        let size = self.pipeline.window.size;
        if let Some(assets) = self.assets.as_mut() {
            for ((asset, start), members) in groups.iter_mut() {
                members.sort_unstable_by_key(|m| m.0);
                let rows: Vec<(&str, &[f64])> = members
                    .iter()
                    .map(|&(s, b, i)| (s, batches[b].1.row(i)))
                    .collect();
                let c = assets.score(asset, &rows);
                if asset_rows {
                    let mut row = asset_row(asset, *start, size, open, &c, assets.last_shares());
                    let next = self.asset_slots.len() as u32;
                    let slot = *self.asset_slots.entry(asset.to_string()).or_insert(next);
                    let judged = crate::stages::detect::Scored {
                        score: row.score,
                        ai: row.ai_score,
                        fused: row.ai_score,
                        alert: row.alert,
                        ..Default::default()
                    };
                    let info = crate::stages::detect::episode::WindowInfo {
                        sensor: asset,
                        start: row.start,
                        end: row.end,
                        rules: String::new(),
                        rule_severity: None,
                        top_features: row.top_sensors.clone(),
                    };
                    if let Some(event) = self.asset_episodes.step(slot, &judged, info) {
                        row.episode = event.episode;
                        row.state = event.state.as_str().to_string();
                    }
                    out.push(OutRecord::Asset(row));
                }
                for &(_, b, i) in members.iter() {
                    contributions[b].insert(i, c.clone());
                }
            }
        }
        let mut cells = self.cell_scores(&batches.iter().collect::<Vec<_>>());
        for (b, (w, f)) in batches.iter().enumerate() {
            let mine = cells.as_mut().map(|c| c.next(w.len()));
            self.score_batch(w, f, Some(&contributions[b]), mine, out);
        }
    }

    /// The state a checkpoint keeps.
    fn save(&self) -> crate::checkpoint::ScoringState {
        let mut asset_slots: Vec<(String, u32)> = self
            .asset_slots
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        asset_slots.sort();
        let mut scorer = self.scorer.save();
        if let Some(e) = &self.engine {
            // The cell detectors' state is the engine's (its mirror is current).
            e.save_into(&mut scorer);
        }
        crate::checkpoint::ScoringState {
            scorer,
            episodes: self.episodes.save(),
            assets: self
                .assets
                .as_ref()
                .map(|a| crate::checkpoint::AssetScorerStateBox(a.save())),
            asset_episodes: self.asset_episodes.save(),
            asset_slots,
        }
    }

    /// Restores what [`Self::save`] returned.
    fn restore(&mut self, saved: crate::checkpoint::ScoringState) {
        if let Some(e) = self.engine.as_mut() {
            e.restore_from(&saved.scorer);
        }
        self.scorer.restore(saved.scorer);
        self.episodes.restore(saved.episodes);
        if let (Some(a), Some(s)) = (self.assets.as_mut(), saved.assets) {
            a.restore(s.0);
        }
        self.asset_episodes.restore(saved.asset_episodes);
        self.asset_slots = saved.asset_slots.into_iter().collect();
    }

    /// The cell detectors' raw scores of every window of `batches`, in order, from the engine
    /// (None without one).
    fn cell_scores(&mut self, batches: &[&(WindowBatch, FeatureBatch)]) -> Option<CellScores> {
        let engine = self.engine.as_mut()?;
        let slots: Vec<u32> = batches
            .iter()
            .flat_map(|(w, _)| w.slot.iter().copied())
            .collect();
        let x = engine.gather(
            batches
                .iter()
                .flat_map(|(w, f)| (0..w.len()).map(move |i| (w.start[i], f.row(i)))),
        );
        Some(CellScores {
            raw: engine.score(&slots, &x, &self.scorer),
            per_window: engine.watches().len(),
            at: 0,
        })
    }

    /// Scores one batch of windows (with the asset contributions of its windows, if any).
    fn score_batch(
        &mut self,
        w: &WindowBatch,
        f: &FeatureBatch,
        asset: Option<&HashMap<usize, Vec<Contribution>>>,
        cells: Option<&[f64]>,
        out: &mut Vec<OutRecord>,
    ) {
        let n_cells = cells.map_or(0, |c| c.len() / w.len().max(1));
        let names = &self.pipeline.features.names;
        let live = self.shared.live.load(std::sync::atomic::Ordering::Relaxed);
        WindowsClosed {
            windows: w.len() as u64,
            lag_seconds: (live && !w.is_empty())
                .then(|| (crate::timefmt::now_ms() - w.end[0]).max(0) as f64 / 1000.0),
        }
        .emit();
        for i in 0..w.len() {
            let row = f.row(i);
            let meta = WindowMeta {
                start: w.start[i],
                values: w.offsets[i + 1] - w.offsets[i],
                filled: w.filled[i],
            };
            let extra = asset.and_then(|a| a.get(&i)).map_or(&[][..], Vec::as_slice);
            let mine = cells.map(|c| &c[i * n_cells..(i + 1) * n_cells]);
            let view = w.registry.get(i).and_then(Option::as_ref);
            let attrs = view.map(|v| v.values()).unwrap_or_default();
            let mut sc =
                self.scorer
                    .score_with(w.slot[i], &w.sensor[i], meta, row, extra, mine, &attrs);
            // A sensor disabled in the registry does not alert, and its episode ends now.
            let disabled = view.is_some_and(|v| !v.enabled);
            if disabled {
                sc.alert = false;
            }
            let rules = sc
                .fired
                .iter()
                .map(|&k| self.scorer.rules()[k].name.as_str())
                .collect::<Vec<_>>()
                .join(",");
            let rule_severity = sc
                .fired
                .iter()
                .map(|&k| self.scorer.rules()[k].severity)
                .max();
            let top = sc
                .contributions
                .iter()
                .take(3)
                .filter(|c| c.score > 0.0)
                .map(|c| {
                    let d = &self.scorer.detectors()[c.detector].name;
                    match c.feature {
                        Some(k) => format!("{d}:{}={:.2}", names[k], c.score),
                        None => format!("{d}={:.2}", c.score),
                    }
                })
                .collect::<Vec<_>>()
                .join(",");
            let mut rebaselined: Vec<&str> = sc
                .contributions
                .iter()
                .filter(|c| c.rebaselined)
                .map(|c| self.scorer.detectors()[c.detector].name.as_str())
                .collect();
            rebaselined.sort_unstable();
            let mut detector_scores = vec![0.0; self.scorer.detectors().len()];
            for c in &sc.contributions {
                if let Some(s) = detector_scores.get_mut(c.detector) {
                    *s = f64::max(*s, c.score);
                }
            }
            let info = WindowInfo {
                sensor: &w.sensor[i],
                start: w.start[i],
                end: w.end[i],
                rules: rules.clone(),
                rule_severity,
                top_features: top,
            };
            let event = if disabled {
                self.episodes.resolve(w.slot[i], &sc, info)
            } else {
                self.episodes.step(w.slot[i], &sc, info)
            };
            if let Some(a) = event {
                Alerted {
                    state: a.state.as_str(),
                    severity: &a.severity,
                    sensor: &a.sensor,
                    episode: a.episode,
                }
                .emit();
                out.push(OutRecord::Alert(a));
            }
            out.push(OutRecord::Window(WindowRow {
                sensor: w.sensor[i].to_string(),
                start: w.start[i],
                end: w.end[i],
                features: row.to_vec(),
                filled: w.filled[i],
                score: sc.score,
                ai_score: sc.ai,
                rule_score: sc.rule,
                fused: sc.fused,
                alert: sc.alert,
                rules,
                detector_scores,
                rebaselined: rebaselined.join(","),
            }));
        }
        let rebaselined = self.scorer.take_rebaselines()
            + self.assets.as_mut().map_or(0, |a| a.take_rebaselines());
        Rebaselined { count: rebaselined }.emit();
    }
}
