//! Scoring: per-sensor learned detectors over window features, their calibration to [0, 1],
//! rule evaluation, fusion into one score, and the alert episode lifecycle. State is indexed
//! by the worker-local sensor slot; windows of one sensor must be scored in start order.
//! Every detector is streaming: a window's score depends only on that sensor's windows up to
//! it. Formulas and what they scored: docs/detection.md.

pub mod asset;
pub mod baseline;
pub mod cell;
pub mod change;
pub mod context;
pub mod episode;
mod kinds;
pub mod likelihood;
pub mod multivariate;
pub mod spectral;
pub mod tail;

pub use baseline::Ewma;
pub use episode::{EpisodeConfig, Episodes, EpisodesState};

use crate::stages::rules::CompiledRule;
pub use crate::stages::rules::Severity;
use baseline::{Level, Seasonal};
use cell::Cell;
use change::{Cusum, CusumParams, Dropout, Stuck};
use context::{Context, ContextParams};
pub use kinds::{Calibration, DetectorKind, Fuse, Season, Statistic};
use multivariate::Mahalanobis;
use spectral::SpectralResidual;
use std::collections::VecDeque;

/// A detector with its features resolved to row indices and its options filled in.
#[derive(Clone, Debug)]
pub struct DetectorSpec {
    /// Kind.
    pub kind: DetectorKind,
    /// Name reported in alerts.
    pub name: String,
    /// Feature indices watched.
    pub features: Vec<usize>,
    /// EWMA weight.
    pub alpha: f64,
    /// z at which the ratio-calibrated score is 0.5.
    pub z_alert: f64,
    /// EWMA weight of spread estimates.
    pub spread_alpha: f64,
    /// seasonal-z buckets.
    pub season: Season,
    /// seasonal-z: windows per bucket before it scores.
    pub bucket_warmup: u32,
    /// spectral-residual history.
    pub history: usize,
    /// cusum allowance.
    pub drift: f64,
    /// cusum re-baseline level.
    pub threshold: f64,
    /// stuck / dropout: windows at which the score is 0.5.
    pub windows: u32,
    /// context: range and rest.
    pub context: ContextParams,
    /// mahalanobis, asset-mahalanobis: the statistic.
    pub statistic: multivariate::Statistic,
    /// What its baseline learns from.
    pub learn: Learn,
}

/// What a detector's baseline learns from (`learn`, resolved).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Learn {
    /// Every window.
    Always,
    /// Windows whose raw score is at most `gate`; after `relearn` gated windows in a row
    /// (0: never) the baseline starts again from the current window.
    Gated {
        /// Raw score above which a window is not learned.
        gate: f64,
        /// Gated windows in a row that make a new normal.
        relearn: u32,
    },
    /// The first `windows` windows; then frozen.
    Reference {
        /// Windows learned.
        windows: u32,
    },
}

impl Learn {
    /// Whether a window whose raw score is `raw`, the sensor's `seen`-th (0-based), after
    /// `gated` gated windows in a row, is learned; and whether it starts a new baseline.
    pub fn decide(self, raw: f64, seen: u32, gated: u32) -> (bool, bool) {
        match self {
            Learn::Always => (true, false),
            Learn::Reference { windows } => (seen < windows, false),
            Learn::Gated { gate, relearn } => {
                if raw.is_nan() || raw <= gate {
                    (true, false)
                } else if relearn > 0 && gated.saturating_add(1) >= relearn {
                    (true, true)
                } else {
                    (false, false)
                }
            }
        }
    }
}

impl DetectorSpec {
    /// A detector of `kind` on `features` with every option at its default.
    pub fn new(kind: DetectorKind, features: Vec<usize>) -> Self {
        Self {
            kind,
            name: kind.as_str().to_string(),
            features,
            alpha: 0.1,
            z_alert: 4.0,
            spread_alpha: 0.01,
            season: Season::HourOfDay,
            bucket_warmup: 3,
            history: 64,
            drift: 0.5,
            threshold: 8.0,
            windows: if kind == DetectorKind::Dropout { 2 } else { 6 },
            context: ContextParams::default(),
            statistic: multivariate::Statistic::T2,
            learn: Learn::Always,
        }
    }

    /// True for the kinds whose baseline a learn policy governs.
    pub fn learns(kind: DetectorKind) -> bool {
        matches!(
            kind,
            DetectorKind::EwmaZ
                | DetectorKind::LevelZ
                | DetectorKind::SeasonalZ
                | DetectorKind::Cusum
                | DetectorKind::Mahalanobis
                | DetectorKind::AssetMahalanobis
        )
    }

    /// True for detectors whose raw score is a statistic worth calibrating against its own
    /// history; stuck and dropout count windows and always use the ratio.
    pub fn statistical(&self) -> bool {
        !matches!(
            self.kind,
            DetectorKind::Stuck | DetectorKind::Dropout | DetectorKind::Context
        )
    }

    /// True for detectors whose raw score is already a score in [0, 1] (`context`).
    pub fn scores_itself(&self) -> bool {
        self.kind == DetectorKind::Context
    }
}

/// Maps a z-score to [0, 1): z² / (z² + z_alert²), which is 0.5 at z = z_alert.
#[inline]
pub fn calibrate(z: f64, z_alert: f64) -> f64 {
    let z2 = z * z;
    if z2.is_finite() {
        z2 / (z2 + z_alert * z_alert)
    } else {
        1.0
    }
}

/// How raw scores become learned scores: `[fuse] calibration` and its settings.
#[derive(Clone, Copy, Debug)]
pub struct Calibrator {
    /// The method.
    pub method: Calibration,
    /// Raw scores (tail) or means (likelihood) of history.
    pub history: usize,
    /// Raw scores in a likelihood mean.
    pub window: usize,
}

impl Calibrator {
    /// The calibration a pipeline's `[fuse]` asks for.
    pub fn of(fuse: &Fuse) -> Self {
        Self {
            method: fuse.calibration,
            history: fuse.tail_history as usize,
            window: fuse.likelihood_window as usize,
        }
    }

    /// The learned score of detector `d`'s raw score in [0, 1] (0 until `warm`); `learned`
    /// says whether the detector learned this window, and so whether the calibration may.
    pub fn calibrate(
        &self,
        d: &DetectorSpec,
        tail: &mut tail::Tail,
        like: &mut likelihood::Likelihood,
        raw: f64,
        warm: bool,
        learned: bool,
    ) -> f64 {
        let learn = warm && learned;
        let tail_score = |t: &mut tail::Tail| {
            t.calibrate(raw, self.history, tail::MIN_HISTORY, warm, learn)
                .unwrap_or(0.0)
        };
        let like_score = |l: &mut likelihood::Likelihood| {
            l.score(raw, self.window, self.history, warm, learn)
                .unwrap_or(0.0)
        };
        let cal = match self.method {
            _ if d.scores_itself() => raw.clamp(0.0, 1.0),
            _ if !d.statistical() => calibrate(raw, d.z_alert),
            Calibration::Ratio => calibrate(raw, d.z_alert),
            Calibration::Tail => tail_score(tail),
            Calibration::Likelihood => like_score(like),
            Calibration::TailLikelihood => tail_score(tail).max(like_score(like)),
        };
        if warm { cal } else { 0.0 }
    }
}

/// What the scorer needs to know about a window besides its features.
#[derive(Clone, Copy, Debug, Default)]
pub struct WindowMeta {
    /// Window start, ms since the epoch (UTC).
    pub start: i64,
    /// Values in the window (including filled ones).
    pub values: u32,
    /// Values filled in by gap filling.
    pub filled: u32,
}

/// One detector's part in a window's score.
#[derive(Clone, Debug, PartialEq)]
pub struct Contribution {
    /// Index of the detector.
    pub detector: usize,
    /// The watched feature with the largest raw score (None for vector detectors).
    pub feature: Option<usize>,
    /// Raw score (z, CUSUM sum, saliency ratio, ...).
    pub raw: f64,
    /// Calibrated score in [0, 1] (0 until warm).
    pub score: f64,
    /// The detector's baseline started again from this window (`learn = "gated"`).
    pub rebaselined: bool,
}

/// The result of scoring one window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scored {
    /// Largest raw score over all detectors.
    pub score: f64,
    /// Learned score: the largest calibrated detector score (0 until warm).
    pub ai: f64,
    /// Rule score.
    pub rule: f64,
    /// Fused score in [0, 1].
    pub fused: f64,
    /// fused > open.
    pub alert: bool,
    /// Indices of the rules that fired.
    pub fired: Vec<usize>,
    /// One per detector, highest calibrated score first.
    pub contributions: Vec<Contribution>,
}

/// Learned state of one detector for one sensor.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum State {
    Ewma(Vec<Ewma>),
    Level(Vec<Level>),
    Seasonal(Vec<Seasonal>),
    Mahalanobis(Mahalanobis),
    Spectral(Vec<VecDeque<f64>>),
    Cusum(Vec<Cusum>),
    Stuck(Vec<Stuck>),
    Dropout(Dropout),
    Context(Box<Context>),
    /// Scored per asset by [`asset::AssetScorer`], not per sensor.
    Asset,
}

impl State {
    fn new(d: &DetectorSpec) -> Self {
        let n = d.features.len();
        match d.kind {
            DetectorKind::EwmaZ => State::Ewma(vec![Ewma::default(); n]),
            DetectorKind::LevelZ => State::Level(vec![Level::default(); n]),
            DetectorKind::SeasonalZ => State::Seasonal(vec![Seasonal::default(); n]),
            DetectorKind::Mahalanobis => State::Mahalanobis(Mahalanobis::default()),
            DetectorKind::SpectralResidual => State::Spectral(vec![VecDeque::new(); n]),
            DetectorKind::Cusum => State::Cusum(vec![Cusum::default(); n]),
            DetectorKind::Stuck => State::Stuck(vec![Stuck::default(); n]),
            DetectorKind::Dropout => State::Dropout(Dropout::default()),
            DetectorKind::Context => State::Context(Box::default()),
            DetectorKind::AssetMahalanobis => State::Asset,
        }
    }
}

/// All state of one sensor.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Sensor {
    windows: u32,
    detectors: Vec<State>,
    /// Per detector: gated windows in a row (`learn = "gated"`).
    gated: Vec<u32>,
    tails: Vec<tail::Tail>,
    likes: Vec<likelihood::Likelihood>,
    /// Raw fused scores of the last `refractory` windows.
    recent: VecDeque<f64>,
}

/// A [`Scorer`]'s learned state (every sensor's detectors, calibration and recent scores, by
/// slot), as a checkpoint keeps it.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ScorerState {
    sensors: Vec<Sensor>,
}

/// How many bytes the parts of a [`ScorerState`] take encoded (bincode, as in a checkpoint).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateSizes {
    /// Each detector's learned state (baselines, buffers, context memories), summed over the
    /// sensors, by detector index.
    pub detectors: Vec<u64>,
    /// The calibration histories (tail and likelihood) of every detector and sensor.
    pub calibration: u64,
    /// The rest: window counts, gated counts, recent fused scores, lengths.
    pub other: u64,
}

impl ScorerState {
    /// The encoded size of each part (for `hyflow checkpoint inspect`).
    pub fn sizes(&self) -> StateSizes {
        fn size<T: serde::Serialize>(v: &T) -> u64 {
            bincode::serialized_size(v).unwrap_or(0)
        }
        let mut out = StateSizes::default();
        let mut total = 0u64;
        for st in &self.sensors {
            total += size(st);
            if out.detectors.len() < st.detectors.len() {
                out.detectors.resize(st.detectors.len(), 0);
            }
            for (d, state) in st.detectors.iter().enumerate() {
                out.detectors[d] += size(state);
            }
            out.calibration +=
                st.tails.iter().map(size).sum::<u64>() + st.likes.iter().map(size).sum::<u64>();
        }
        out.other = total.saturating_sub(out.detectors.iter().sum::<u64>() + out.calibration);
        out
    }

    /// Writes the cell detectors' state of sensor `slot` from its block of cells `cells`, as
    /// a device engine keeps it ([`cell::watches`] `ws` give the layout).
    pub fn put_cells(&mut self, ws: &[cell::Watch], slot: u32, cells: &[Cell]) {
        if let Some(st) = self.sensors.get_mut(slot as usize) {
            cell::into_states(ws, cells, &mut st.detectors);
        }
    }

    /// The block of `block` cells that sensor `slot`'s cell detectors' state stands for
    /// (zeros where it holds none).
    pub fn cells(&self, ws: &[cell::Watch], slot: u32, block: usize) -> Vec<Cell> {
        let mut out = vec![Cell::default(); block];
        if let Some(st) = self.sensors.get(slot as usize) {
            cell::from_states(ws, &st.detectors, &mut out);
        }
        out
    }

    /// Sensors held.
    pub fn len(&self) -> usize {
        self.sensors.len()
    }
    /// True when no sensor is held.
    pub fn is_empty(&self) -> bool {
        self.sensors.is_empty()
    }

    /// Each slot's state, in slot order (for moving sensors between workers).
    pub fn into_slots(self) -> Vec<SensorScoring> {
        self.sensors.into_iter().map(SensorScoring).collect()
    }

    /// The state of sensors numbered by their place in `slots`.
    pub fn from_slots(slots: Vec<SensorScoring>) -> Self {
        Self {
            sensors: slots.into_iter().map(|s| s.0).collect(),
        }
    }
}

/// One sensor's part of a [`ScorerState`]: its detectors, calibration and recent scores
/// (the default: a sensor not scored yet).
#[derive(Clone, Debug, Default)]
pub struct SensorScoring(Sensor);

/// Detector state for all sensors of a worker.
pub struct Scorer {
    detectors: Vec<DetectorSpec>,
    rules: Vec<CompiledRule>,
    warmup: u32,
    fuse: Fuse,
    slide_ms: i64,
    zone: crate::timefmt::Zone,
    spectral: Vec<Option<SpectralResidual>>,
    state: Vec<Sensor>,
    scratch: Vec<f64>,
    rebaselines: u64,
}

impl Scorer {
    /// A scorer for a pipeline's detectors, rules and fusion settings; `slide_ms` is the
    /// window slide (for dropouts), `zone` turns UTC into local time (for seasons).
    pub fn new(
        detectors: Vec<DetectorSpec>,
        rules: Vec<CompiledRule>,
        warmup: u32,
        fuse: Fuse,
        slide_ms: i64,
        zone: crate::timefmt::Zone,
    ) -> Self {
        let spectral = detectors
            .iter()
            .map(|d| {
                (d.kind == DetectorKind::SpectralResidual).then(|| SpectralResidual::new(d.history))
            })
            .collect();
        Self {
            detectors,
            rules,
            warmup,
            fuse,
            slide_ms,
            zone,
            spectral,
            state: Vec::new(),
            scratch: Vec::new(),
            rebaselines: 0,
        }
    }

    /// The learned state of every sensor, by slot, for a checkpoint.
    pub fn save(&self) -> ScorerState {
        ScorerState {
            sensors: self.state.clone(),
        }
    }

    /// Restores what [`Self::save`] returned (into a scorer of the same detectors).
    pub fn restore(&mut self, saved: ScorerState) {
        self.state = saved.sensors;
    }

    /// Scores the next window of sensor `slot`, whose feature row is `row`; `asset` holds the
    /// contributions of the asset detectors for this window (empty when there are none).
    pub fn score(
        &mut self,
        slot: u32,
        sensor: &str,
        meta: WindowMeta,
        row: &[f64],
        asset: &[Contribution],
    ) -> Scored {
        self.score_with(slot, sensor, meta, row, asset, None, &[])
    }

    /// [`Self::score`], with the raw scores of the cell detectors (`ewma-z`, `level-z`,
    /// `seasonal-z`, `cusum`, `stuck`) computed elsewhere (on a GPU, by `compute::detect`): `cells` holds
    /// one per watched pair, in the order of [`cell::watches`]. Those detectors' state here is
    /// then left untouched: whoever computed the scores keeps it (and applied their learn
    /// policies from this scorer's counts, which this call counts on: see
    /// [`crate::compute::detect::Counters`]). `attrs` are the sensor's registry attributes for
    /// rules that name them (NaN where missing).
    #[allow(clippy::too_many_arguments)]
    pub fn score_with(
        &mut self,
        slot: u32,
        sensor: &str,
        meta: WindowMeta,
        row: &[f64],
        asset: &[Contribution],
        cells: Option<&[f64]>,
        attrs: &[f64],
    ) -> Scored {
        let s = slot as usize;
        if self.state.len() <= s {
            self.state.resize(s + 1, Sensor::default());
        }
        let st = &mut self.state[s];
        if st.detectors.len() != self.detectors.len() {
            st.detectors = self.detectors.iter().map(State::new).collect();
            st.tails = vec![tail::Tail::default(); self.detectors.len()];
            st.likes = vec![likelihood::Likelihood::default(); self.detectors.len()];
            st.gated = vec![0; self.detectors.len()];
        }
        let warm = st.windows >= self.warmup;
        let seen = st.windows;
        st.windows = st.windows.saturating_add(1);
        let mut out = Scored::default();
        let mut taken = 0;
        for (di, d) in self.detectors.iter().enumerate() {
            if d.kind == DetectorKind::AssetMahalanobis {
                continue;
            }
            // Cell detectors whose scores were computed elsewhere keep their state there (the
            // engine decided as below, from the same raw score and counts).
            let elsewhere = cells.is_some() && cell::on_cells(d).is_some();
            // A learn policy other than `always` keeps the state as it was before the window
            // unless the window is learned.
            let before = (d.learn != Learn::Always && !elsewhere).then(|| st.detectors[di].clone());
            let mut rebaselined = false;
            let (feature, raw) = match cells {
                Some(c) if elsewhere => {
                    let n = d.features.len();
                    taken += n;
                    pick(d, c[taken - n..taken].iter().copied())
                }
                _ => raw_score(
                    d,
                    &mut st.detectors[di],
                    self.spectral[di].as_mut(),
                    &mut self.scratch,
                    meta,
                    row,
                    self.slide_ms,
                    &self.zone,
                ),
            };
            // A gated multivariate model learns every window until it has settled (1/alpha
            // windows; see asset.rs): a covariance still near zero would gate everything.
            let settling = matches!(d.learn, Learn::Gated { .. })
                && matches!(&st.detectors[di], State::Mahalanobis(m)
                    if f64::from(m.learned()) < 1.0 / d.alpha);
            let (learned, rebaseline) = if settling {
                (true, false)
            } else {
                d.learn.decide(raw, seen, st.gated[di])
            };
            if d.learn != Learn::Always {
                let held = st.gated[di].saturating_add(1);
                st.gated[di] = if learned { 0 } else { held };
                if rebaseline {
                    // The shift lasted: start a new baseline from this window.
                    if !elsewhere {
                        let mut fresh = State::new(d);
                        raw_score(
                            d,
                            &mut fresh,
                            None,
                            &mut self.scratch,
                            meta,
                            row,
                            self.slide_ms,
                            &self.zone,
                        );
                        st.detectors[di] = fresh;
                    }
                    self.rebaselines += 1;
                    rebaselined = true;
                    tracing::info!(
                        sensor,
                        detector = d.name.as_str(),
                        window_start = meta.start,
                        "re-baselined: a shift held for {held} windows is the new normal",
                    );
                } else if let Some(before) = before.filter(|_| !learned) {
                    st.detectors[di] = before;
                }
            }
            let cal = Calibrator::of(&self.fuse).calibrate(
                d,
                &mut st.tails[di],
                &mut st.likes[di],
                raw,
                warm,
                learned,
            );
            let cal = if warm { cal } else { 0.0 };
            out.score = out.score.max(raw);
            out.ai = out.ai.max(cal);
            out.contributions.push(Contribution {
                detector: di,
                feature,
                raw,
                score: cal,
                rebaselined,
            });
        }
        for c in asset {
            out.score = out.score.max(c.raw);
            out.ai = out.ai.max(c.score);
            out.contributions.push(c.clone());
        }
        out.contributions
            .sort_by(|a, b| b.score.total_cmp(&a.score).then(b.raw.total_cmp(&a.raw)));
        for (i, r) in self.rules.iter().enumerate() {
            if r.applies_to(sensor) && r.condition.eval_with(row, attrs) {
                out.fired.push(i);
                out.rule = out.rule.max(r.severity.weight());
            }
        }
        let fused =
            (self.fuse.ai_weight * out.ai + self.fuse.rules_weight * out.rule).clamp(0.0, 1.0);
        out.fused = fused;
        let k = self.fuse.refractory as usize;
        if k > 0 {
            if st.recent.iter().any(|&p| p >= fused) {
                out.fused = fused / 2.0;
            }
            st.recent.push_back(fused);
            if st.recent.len() > k {
                st.recent.pop_front();
            }
        }
        out.alert = out.fused > self.fuse.open;
        out
    }

    /// Re-baselinings since the last call (`learn = "gated"`: a shift accepted as normal).
    pub fn take_rebaselines(&mut self) -> u64 {
        std::mem::take(&mut self.rebaselines)
    }

    /// The compiled rules (for names and severities).
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// The detectors (for names).
    pub fn detectors(&self) -> &[DetectorSpec] {
        &self.detectors
    }
}

impl crate::compute::detect::Counters for Scorer {
    fn seen(&self, slot: u32) -> u32 {
        self.state.get(slot as usize).map_or(0, |st| st.windows)
    }

    fn gated(&self, slot: u32, detector: usize) -> u32 {
        self.state
            .get(slot as usize)
            .and_then(|st| st.gated.get(detector).copied())
            .unwrap_or(0)
    }
}

/// One detector's raw score of a window and the feature that gave it.
#[allow(clippy::too_many_arguments)]
fn raw_score(
    d: &DetectorSpec,
    state: &mut State,
    sr: Option<&mut SpectralResidual>,
    scratch: &mut Vec<f64>,
    meta: WindowMeta,
    row: &[f64],
    slide_ms: i64,
    zone: &crate::timefmt::Zone,
) -> (Option<usize>, f64) {
    match state {
        State::Ewma(e) => pick(
            d,
            each(d, row, e).map(|(x, e)| e.score_and_update(x, d.alpha)),
        ),
        State::Level(l) => pick(
            d,
            each(d, row, l).map(|(x, l)| l.score_and_update(x, d.alpha, d.spread_alpha)),
        ),
        State::Seasonal(s) => {
            let b = baseline::bucket(d.season, zone.utc_to_local(meta.start));
            let nb = baseline::buckets(d.season);
            pick(
                d,
                each(d, row, s).map(|(x, s)| {
                    s.score_and_update(x, b, nb, d.alpha, d.spread_alpha, d.bucket_warmup)
                }),
            )
        }
        State::Mahalanobis(m) => {
            scratch.clear();
            scratch.extend(d.features.iter().map(|&f| row[f]));
            let z = m.score(scratch, d.statistic);
            learn_multivariate(d, m, scratch);
            (None, z)
        }
        State::Spectral(bufs) => match sr {
            Some(sr) => pick(
                d,
                each(d, row, bufs).map(|(x, buf)| sr.score_and_update(buf, x)),
            ),
            None => (None, 0.0),
        },
        State::Cusum(c) => {
            let p = CusumParams {
                alpha: d.alpha,
                spread_alpha: d.spread_alpha,
                drift: d.drift,
                threshold: d.threshold,
            };
            pick(d, each(d, row, c).map(|(x, c)| c.score_and_update(x, p)))
        }
        State::Stuck(s) => pick(
            d,
            each(d, row, s).map(|(x, s)| d.z_alert * s.update(x) as f64 / d.windows.max(1) as f64),
        ),
        State::Dropout(o) => {
            let missing = o.update(meta.start, slide_ms, meta.values, meta.filled);
            (None, d.z_alert * missing / d.windows.max(1) as f64)
        }
        State::Context(c) => {
            scratch.clear();
            scratch.extend(d.features.iter().map(|&f| row[f]));
            (None, c.score_and_update(scratch, d.context))
        }
        State::Asset => (None, 0.0),
    }
}

/// Learns a multivariate detector's vector: with `alpha`, or under a reference period with the
/// plain weight (its mean and covariance are those of the reference windows), freezing the
/// model after the last of them.
pub(crate) fn learn_multivariate(d: &DetectorSpec, m: &mut Mahalanobis, x: &[f64]) -> Vec<usize> {
    match d.learn {
        Learn::Reference { windows } => {
            if m.is_frozen() {
                return Vec::new();
            }
            let w = m.plain_weight();
            m.learn(x, w);
            if m.learned() >= windows {
                return m.freeze();
            }
            Vec::new()
        }
        Learn::Gated { .. } => {
            // Plain weights until 1/alpha windows: a settled start (see asset.rs).
            let w = d.alpha.max(m.plain_weight());
            m.learn(x, w);
            Vec::new()
        }
        Learn::Always => {
            m.learn(x, d.alpha);
            Vec::new()
        }
    }
}

/// Each watched feature's value in `row`, with that feature's state.
fn each<'a, T>(
    d: &'a DetectorSpec,
    row: &'a [f64],
    states: &'a mut [T],
) -> impl Iterator<Item = (f64, &'a mut T)> + 'a {
    d.features
        .iter()
        .map(move |&f| row[f])
        .zip(states.iter_mut())
}

/// The largest of a detector's per-feature raw scores (in feature order) and its feature.
fn pick(d: &DetectorSpec, raws: impl Iterator<Item = f64>) -> (Option<usize>, f64) {
    let mut best = (None, 0.0f64);
    for (f, z) in raws.enumerate() {
        if z > best.1 || best.0.is_none() {
            best = (Some(d.features[f]), z.max(best.1));
        }
    }
    best
}

#[cfg(test)]
mod tests;
