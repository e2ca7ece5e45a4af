//! The score stage: detectors, rules, fusion and the alert lifecycle, per sensor in window
//! order. With asset detectors (`asset-mahalanobis`) the windows of one time are held until
//! the input frontier passes it, so that every sensor of an asset is there when the asset is
//! scored; windows arrive at their end time, and windows are exchanged by asset then.

use super::operators::Stage;
use super::{Metrics, Shared};
use crate::compute::{FeatureBatch, WindowBatch};
use crate::config::Pipeline;
use crate::detect::asset::{AssetScorer, asset_of};
use crate::detect::{
    Contribution, EpisodeConfig, Episodes, Scorer, WindowMeta, episode::WindowInfo,
};
use crate::output::{OutRecord, WindowRow};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline as Pipe;
use timely::dataflow::operators::{Capability, Operator};

/// Windows held per time until the frontier passes it, with the capability to emit them at.
type Stash = BTreeMap<i64, (Capability<i64>, Vec<(WindowBatch, FeatureBatch)>)>;

/// The members (sensor, batch, row) of each (asset, window start).
type Groups<'a> = BTreeMap<(&'a str, i64), Vec<(&'a str, usize, usize)>>;

/// Everything the stage keeps between calls.
struct Scoring {
    pipeline: Arc<Pipeline>,
    shared: Arc<Shared>,
    scorer: Scorer,
    assets: Option<AssetScorer>,
    episodes: Episodes,
}

/// Scores windows; see the module doc.
pub fn score_stage<'s>(
    stream: StreamVec<'s, i64, Stage>,
    pipeline: Arc<Pipeline>,
    shared: Arc<Shared>,
) -> StreamVec<'s, i64, OutRecord> {
    stream.unary_frontier::<CapacityContainerBuilder<Vec<OutRecord>>, _, _, _>(
        Pipe,
        "Score",
        move |_cap, _info| {
            let cfg = &pipeline.config;
            let mut st = Scoring {
                scorer: Scorer::new(
                    pipeline.detectors.clone(),
                    pipeline.rules.clone(),
                    cfg.detect.warmup,
                    cfg.fuse.clone(),
                    pipeline.window.slide,
                    pipeline.tz_offset_ms,
                ),
                assets: AssetScorer::new(
                    &pipeline.detectors,
                    cfg.fuse.calibration,
                    cfg.fuse.tail_history,
                    cfg.detect.warmup,
                ),
                episodes: Episodes::new(EpisodeConfig::from(&cfg.fuse)),
                pipeline: pipeline.clone(),
                shared: shared.clone(),
            };
            let mut stash = Stash::new();
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    let mut out = Vec::new();
                    for s in data.drain(..) {
                        match s {
                            Stage::Features(w, f) if st.assets.is_some() => {
                                let Some(c) = cap.retain_least(output.output_index()) else {
                                    continue;
                                };
                                stash
                                    .entry(*c.time())
                                    .or_insert_with(|| (c, Vec::new()))
                                    .1
                                    .push((w, f));
                            }
                            Stage::Features(w, f) => st.score_batch(&w, &f, None, &mut out),
                            Stage::Out(r) => out.push(r),
                            Stage::Windows(_) => unreachable!("features stage runs first"),
                        }
                    }
                    if !out.is_empty() {
                        output.session(&cap).give_iterator(out.into_iter());
                    }
                });
                let ready: Vec<i64> = stash
                    .keys()
                    .copied()
                    .filter(|t| !frontier.less_equal(t))
                    .collect();
                for t in ready {
                    let Some((cap, batches)) = stash.remove(&t) else {
                        continue;
                    };
                    let mut out = Vec::new();
                    st.score_time(&batches, &mut out);
                    output.session(&cap).give_iterator(out.into_iter());
                }
            }
        },
    )
}

impl Scoring {
    /// Scores all windows of one time, asset by asset first.
    fn score_time(&mut self, batches: &[(WindowBatch, FeatureBatch)], out: &mut Vec<OutRecord>) {
        let delim = self
            .pipeline
            .config
            .detect
            .asset_delimiter
            .as_ref()
            .map_or("", |d| d.get_ref().as_str());
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
        if let Some(assets) = self.assets.as_mut() {
            for ((asset, _), members) in groups.iter_mut() {
                members.sort_unstable_by_key(|m| m.0);
                let rows: Vec<(&str, &[f64])> = members
                    .iter()
                    .map(|&(s, b, i)| (s, batches[b].1.row(i)))
                    .collect();
                let c = assets.score(asset, &rows);
                for &(_, b, i) in members.iter() {
                    contributions[b].insert(i, c.clone());
                }
            }
        }
        for (b, (w, f)) in batches.iter().enumerate() {
            self.score_batch(w, f, Some(&contributions[b]), out);
        }
    }

    /// Scores one batch of windows (with the asset contributions of its windows, if any).
    fn score_batch(
        &mut self,
        w: &WindowBatch,
        f: &FeatureBatch,
        asset: Option<&HashMap<usize, Vec<Contribution>>>,
        out: &mut Vec<OutRecord>,
    ) {
        let names = &self.pipeline.features.names;
        Metrics::add(&self.shared.metrics.windows, w.len() as u64);
        for i in 0..w.len() {
            let row = f.row(i);
            let meta = WindowMeta {
                start: w.start[i],
                values: w.offsets[i + 1] - w.offsets[i],
                filled: w.filled[i],
            };
            let extra = asset.and_then(|a| a.get(&i)).map_or(&[][..], Vec::as_slice);
            let sc = self.scorer.score(w.slot[i], &w.sensor[i], meta, row, extra);
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
            let info = WindowInfo {
                sensor: &w.sensor[i],
                start: w.start[i],
                end: w.end[i],
                rules: rules.clone(),
                rule_severity,
                top_features: top,
            };
            if let Some(a) = self.episodes.step(w.slot[i], &sc, info) {
                Metrics::add(&self.shared.metrics.alert_events, 1);
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
            }));
        }
    }
}
