//! The flat state of the per-feature detectors that can run on a GPU (`ewma-z`, `level-z`,
//! `cusum`, `stuck`, `seasonal-z`): [`Cell`]s per (sensor, watched detector feature), one or,
//! for `seasonal-z`, one per season bucket; the layout cuda/score.cu keeps on the device; and
//! [`step`], the CPU reference that kernel must equal bit for bit. `step` runs the detectors'
//! own code ([`Ewma`], [`Level`], [`Cusum`], [`Stuck`], [`Seasonal::score_bucket`]) on the
//! cell, so the arithmetic lives in one place on the host.

use super::baseline::{self, Ewma, Level, Seasonal};
use super::change::{Cusum, CusumParams, Stuck};
use super::kinds::{DetectorKind, Season};
use super::{DetectorSpec, Learn};

/// One cell of state. Fields by kind (as `HfCell` in cuda/score.cu): ewma-z (`n`, `a` mean,
/// `b` variance); level-z and each bucket of seasonal-z (`n`, `a` level, `b` mean absolute
/// residual); cusum
/// (`n`, `a` baseline, `b` mean absolute residual, `c` upper sum, `d` lower sum); stuck (`n` 1
/// once a value was seen, `a` previous value, `run`). All zero is every kind's initial state.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cell {
    /// See the type doc.
    pub a: f64,
    /// See the type doc.
    pub b: f64,
    /// See the type doc.
    pub c: f64,
    /// See the type doc.
    pub d: f64,
    /// Windows seen (stuck: 1 once a value was seen).
    pub n: u32,
    /// stuck: windows in a row with an unchanged value.
    pub run: u32,
}

impl Cell {
    /// True when both hold the same bits (NaN equal to itself): the device must match exactly.
    pub fn same_bits(&self, o: &Cell) -> bool {
        let bits = |c: &Cell| {
            (
                c.a.to_bits(),
                c.b.to_bits(),
                c.c.to_bits(),
                c.d.to_bits(),
                c.n,
                c.run,
            )
        };
        bits(self) == bits(o)
    }
}

/// The kind codes of cuda/score.cu (`HF_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum CellKind {
    /// `ewma-z`.
    Ewma = 0,
    /// `level-z`.
    Level = 1,
    /// `cusum`.
    Cusum = 2,
    /// `stuck`.
    Stuck = 3,
    /// `seasonal-z` (a cell per season bucket).
    Seasonal = 4,
}

impl CellKind {
    /// The cell kind of a detector kind, if it keeps its state in cells.
    pub fn of(kind: DetectorKind) -> Option<Self> {
        match kind {
            DetectorKind::EwmaZ => Some(CellKind::Ewma),
            DetectorKind::LevelZ => Some(CellKind::Level),
            DetectorKind::Cusum => Some(CellKind::Cusum),
            DetectorKind::Stuck => Some(CellKind::Stuck),
            DetectorKind::SeasonalZ => Some(CellKind::Seasonal),
            _ => None,
        }
    }
}

/// The cell kind a detector runs as, if it runs on cells (whatever its learn policy: the kernel
/// and [`crate::compute::detect::run_cpu`] decide per window as [`Learn::decide`] does).
pub fn on_cells(d: &DetectorSpec) -> Option<CellKind> {
    CellKind::of(d.kind)
}

/// The policy codes of cuda/score.cu (`HF_ALWAYS`, `HF_GATED`, `HF_REFERENCE`) and their
/// count (relearn, reference windows: the kernel reads the u32 back from the i32's bits) and
/// gate, for a watch's `learn` and `gate` arguments.
pub fn learn_code(learn: Learn) -> (i32, i32, f64) {
    let bits = |n: u32| i32::from_ne_bytes(n.to_ne_bytes());
    match learn {
        Learn::Always => (0, 0, 0.0),
        Learn::Gated { gate, relearn } => (1, bits(relearn), gate),
        Learn::Reference { windows } => (2, bits(windows), 0.0),
    }
}

/// What a window did to a policy detector's cells (cuda/score.cu `HF_LEARNED`, `HF_KEPT`,
/// `HF_REBASED`): learned it, kept them as they were (gated, or after the reference period), or
/// zeroed them all (every season bucket) and learned it as the first window of a new baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Fate {
    /// Learned (every window of `always`).
    Learned = 0,
    /// Not learned.
    Kept = 1,
    /// Re-baselined.
    Rebased = 2,
}

impl Fate {
    /// The fate of a [`Learn::decide`] outcome.
    pub fn of(learned: bool, rebaseline: bool) -> Self {
        match (learned, rebaseline) {
            (_, true) => Fate::Rebased,
            (true, false) => Fate::Learned,
            (false, false) => Fate::Kept,
        }
    }
}

/// One watched (detector, feature) pair of a cell detector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Watch {
    /// Index of the detector.
    pub detector: usize,
    /// Index of the feature in a window's feature row.
    pub feature: usize,
    /// Its kind.
    pub kind: CellKind,
    /// Parameters: ewma-z `[alpha]`; level-z `[alpha, spread_alpha]`; cusum `[alpha,
    /// spread_alpha, drift, threshold]`; stuck `[z_alert, windows]` (the raw score is
    /// `z_alert · run / windows`); seasonal-z `[alpha, spread_alpha, bucket_warmup]`. Unused
    /// ones are 0.
    pub params: [f64; 4],
    /// seasonal-z: its season (a window scores against its bucket's cell).
    pub season: Option<Season>,
    /// Where its cells start in a sensor's block of cells, and how many it has.
    pub at: usize,
    /// See `at`.
    pub cells: usize,
    /// Its detector's learn policy.
    pub learn: Learn,
}

impl Watch {
    /// The index, among its cells, of the one a window starting at `local_ms` (local time)
    /// scores against: its season bucket, else 0.
    pub fn bucket(&self, local_ms: i64) -> usize {
        self.season.map_or(0, |s| baseline::bucket(s, local_ms))
    }
}

/// The watched pairs of every cell detector, detector by detector, feature by feature: the
/// order in which [`super::Scorer::score_with`] takes their raw scores.
pub fn watches(detectors: &[DetectorSpec]) -> Vec<Watch> {
    let mut out: Vec<Watch> = Vec::new();
    for (di, d) in detectors.iter().enumerate() {
        let Some(kind) = on_cells(d) else {
            continue;
        };
        let params = match kind {
            CellKind::Ewma => [d.alpha, 0.0, 0.0, 0.0],
            CellKind::Level => [d.alpha, d.spread_alpha, 0.0, 0.0],
            CellKind::Cusum => [d.alpha, d.spread_alpha, d.drift, d.threshold],
            CellKind::Stuck => [d.z_alert, f64::from(d.windows.max(1)), 0.0, 0.0],
            CellKind::Seasonal => [d.alpha, d.spread_alpha, f64::from(d.bucket_warmup), 0.0],
        };
        let season = (kind == CellKind::Seasonal).then_some(d.season);
        let cells = season.map_or(1, baseline::buckets);
        for &feature in &d.features {
            let at = out.last().map_or(0, |w| w.at + w.cells);
            out.push(Watch {
                detector: di,
                feature,
                kind,
                params,
                season,
                at,
                cells,
                learn: d.learn,
            });
        }
    }
    out
}

/// Cells per sensor for `ws` (a sensor's block).
pub fn block(ws: &[Watch]) -> usize {
    ws.last().map_or(0, |w| w.at + w.cells)
}

/// Scores `x` against `cell` (for seasonal-z: the cell of the window's bucket) and learns it,
/// exactly as the detector of `w.kind` does; returns the raw score [`super::Scorer`] takes for
/// the feature.
pub fn step(w: &Watch, cell: &mut Cell, x: f64) -> f64 {
    let p = &w.params;
    match w.kind {
        CellKind::Ewma => {
            let mut e = Ewma {
                n: cell.n,
                m: cell.a,
                v: cell.b,
            };
            let z = e.score_and_update(x, p[0]);
            (cell.n, cell.a, cell.b) = (e.n, e.m, e.v);
            z
        }
        CellKind::Level => as_level(cell, |l| l.score_and_update(x, p[0], p[1])),
        CellKind::Cusum => {
            let mut c = Cusum::from_cell(cell);
            let params = CusumParams {
                alpha: p[0],
                spread_alpha: p[1],
                drift: p[2],
                threshold: p[3],
            };
            let z = c.score_and_update(x, params);
            *cell = c.to_cell();
            z
        }
        CellKind::Stuck => {
            let mut s = Stuck::from_cell(cell);
            let run = s.update(x);
            *cell = s.to_cell();
            p[0] * f64::from(run) / p[1]
        }
        CellKind::Seasonal => as_level(cell, |l| {
            Seasonal::score_bucket(l, x, p[0], p[1], p[2] as u32)
        }),
    }
}

/// Writes a sensor's block of cells, as a device engine keeps it, into the detector states
/// `states` (a [`super::Scorer`]'s, by detector), so that a checkpoint of the scorer holds the
/// cell detectors' state; a state of another kind than its watch (never, for one pipeline) is
/// left as it is.
pub(super) fn into_states(ws: &[Watch], cells: &[Cell], states: &mut [super::State]) {
    use super::State;
    for (j, w) in ws.iter().enumerate() {
        let k = feature_of(ws, j);
        let c = &cells[w.at..w.at + w.cells];
        match (states.get_mut(w.detector), w.kind) {
            (Some(State::Ewma(v)), CellKind::Ewma) if k < v.len() => {
                v[k] = Ewma {
                    n: c[0].n,
                    m: c[0].a,
                    v: c[0].b,
                }
            }
            (Some(State::Level(v)), CellKind::Level) if k < v.len() => v[k] = level_of(&c[0]),
            (Some(State::Seasonal(v)), CellKind::Seasonal) if k < v.len() => {
                v[k].set_levels(c.iter().map(level_of).collect())
            }
            (Some(State::Cusum(v)), CellKind::Cusum) if k < v.len() => {
                v[k] = Cusum::from_cell(&c[0])
            }
            (Some(State::Stuck(v)), CellKind::Stuck) if k < v.len() => {
                v[k] = Stuck::from_cell(&c[0])
            }
            _ => {}
        }
    }
}

/// The block of cells that the detector states `states` stand for ([`into_states`] the other
/// way round): zeros, every kind's initial state, where they hold none.
pub(super) fn from_states(ws: &[Watch], states: &[super::State], cells: &mut [Cell]) {
    use super::State;
    for (j, w) in ws.iter().enumerate() {
        let k = feature_of(ws, j);
        let c = &mut cells[w.at..w.at + w.cells];
        c.fill(Cell::default());
        match states.get(w.detector) {
            Some(State::Ewma(v)) if k < v.len() => {
                let e = &v[k];
                (c[0].n, c[0].a, c[0].b) = (e.n, e.m, e.v);
            }
            Some(State::Level(v)) if k < v.len() => c[0] = cell_of(&v[k]),
            Some(State::Seasonal(v)) if k < v.len() => {
                for (cell, l) in c.iter_mut().zip(v[k].levels()) {
                    *cell = cell_of(l);
                }
            }
            Some(State::Cusum(v)) if k < v.len() => c[0] = v[k].to_cell(),
            Some(State::Stuck(v)) if k < v.len() => c[0] = v[k].to_cell(),
            _ => {}
        }
    }
}

/// Which of its detector's features watch `j` is (the index into the detector's per-feature
/// states): a detector's watches are consecutive, in feature order.
fn feature_of(ws: &[Watch], j: usize) -> usize {
    let first = ws.iter().position(|v| v.detector == ws[j].detector);
    j - first.unwrap_or(j)
}

fn level_of(c: &Cell) -> Level {
    Level {
        n: c.n,
        level: c.a,
        mad: c.b,
    }
}

fn cell_of(l: &Level) -> Cell {
    Cell {
        n: l.n,
        a: l.level,
        b: l.mad,
        ..Cell::default()
    }
}

/// Runs `f` on the cell as a [`Level`] (level-z, a seasonal-z bucket).
fn as_level(cell: &mut Cell, f: impl FnOnce(&mut Level) -> f64) -> f64 {
    let mut l = Level {
        n: cell.n,
        level: cell.a,
        mad: cell.b,
    };
    let z = f(&mut l);
    (cell.n, cell.a, cell.b) = (l.n, l.level, l.mad);
    z
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_round_trip_every_detector_state() {
        let mut rng = crate::tools::fixture::Rng::new(4);
        let detectors: Vec<DetectorSpec> = [
            DetectorKind::EwmaZ,
            DetectorKind::LevelZ,
            DetectorKind::Cusum,
            DetectorKind::Stuck,
            DetectorKind::SeasonalZ,
        ]
        .into_iter()
        .map(|k| DetectorSpec::new(k, vec![0]))
        .collect();
        let ws = watches(&detectors);
        assert_eq!(ws.len(), 5);
        assert_eq!((ws[4].at, ws[4].cells, block(&ws)), (4, 24, 28));
        for w in &ws {
            let spec = &detectors[w.detector];
            let mut cells = vec![Cell::default(); w.cells];
            let (mut e, mut l, mut c, mut s, mut season) = (
                Ewma::default(),
                Level::default(),
                Cusum::default(),
                Stuck::default(),
                Seasonal::default(),
            );
            for i in 0..1500 {
                // Repeats (stuck runs), a shift (cusum re-baselines), NaN and inf; a window an
                // hour (the seasonal buckets turn).
                let x = match i % 50 {
                    0 => f64::NAN,
                    1 => f64::INFINITY,
                    2..=8 => 7.0,
                    _ => (i / 600) as f64 * 5.0 + (i % 24) as f64 + rng.normal(),
                };
                let bucket = w.bucket(i * 3_600_000);
                let want = match w.kind {
                    CellKind::Ewma => e.score_and_update(x, spec.alpha),
                    CellKind::Level => l.score_and_update(x, spec.alpha, spec.spread_alpha),
                    CellKind::Cusum => c.score_and_update(
                        x,
                        CusumParams {
                            alpha: spec.alpha,
                            spread_alpha: spec.spread_alpha,
                            drift: spec.drift,
                            threshold: spec.threshold,
                        },
                    ),
                    CellKind::Stuck => {
                        spec.z_alert * f64::from(s.update(x)) / f64::from(spec.windows)
                    }
                    CellKind::Seasonal => season.score_and_update(
                        x,
                        bucket,
                        24,
                        spec.alpha,
                        spec.spread_alpha,
                        spec.bucket_warmup,
                    ),
                };
                let got = step(w, &mut cells[bucket], x);
                assert_eq!(want.to_bits(), got.to_bits(), "{:?} window {i}", w.kind);
            }
        }
    }
}
