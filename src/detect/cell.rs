//! The flat state of the per-feature detectors that can run on a GPU (`ewma-z`, `level-z`,
//! `cusum`, `stuck`): one [`Cell`] per (sensor, watched detector feature), the layout
//! cuda/score.cu keeps on the device, and [`step`], the CPU reference that kernel must equal
//! bit for bit. `step` runs the detectors' own code ([`Ewma`], [`Level`], [`Cusum`], [`Stuck`])
//! on the cell, so the arithmetic lives in one place on the host.

use super::DetectorSpec;
use super::baseline::{Ewma, Level};
use super::change::{Cusum, CusumParams, Stuck};
use crate::config::DetectorKind;

/// One detector feature's state. Fields by kind (as `HfCell` in cuda/score.cu): ewma-z
/// (`n`, `a` mean, `b` variance); level-z (`n`, `a` level, `b` mean absolute residual); cusum
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
}

impl CellKind {
    /// The cell kind of a detector kind, if it keeps its state in cells.
    pub fn of(kind: DetectorKind) -> Option<Self> {
        match kind {
            DetectorKind::EwmaZ => Some(CellKind::Ewma),
            DetectorKind::LevelZ => Some(CellKind::Level),
            DetectorKind::Cusum => Some(CellKind::Cusum),
            DetectorKind::Stuck => Some(CellKind::Stuck),
            _ => None,
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
    /// `z_alert · run / windows`). Unused ones are 0.
    pub params: [f64; 4],
}

/// The watched pairs of every cell detector, detector by detector, feature by feature: the
/// order in which [`super::Scorer::score_with`] takes their raw scores.
pub fn watches(detectors: &[DetectorSpec]) -> Vec<Watch> {
    let mut out = Vec::new();
    for (di, d) in detectors.iter().enumerate() {
        let Some(kind) = CellKind::of(d.kind) else {
            continue;
        };
        let params = match kind {
            CellKind::Ewma => [d.alpha, 0.0, 0.0, 0.0],
            CellKind::Level => [d.alpha, d.spread_alpha, 0.0, 0.0],
            CellKind::Cusum => [d.alpha, d.spread_alpha, d.drift, d.threshold],
            CellKind::Stuck => [d.z_alert, f64::from(d.windows.max(1)), 0.0, 0.0],
        };
        for &feature in &d.features {
            out.push(Watch {
                detector: di,
                feature,
                kind,
                params,
            });
        }
    }
    out
}

/// Scores `x` against `cell` and learns it, exactly as the detector of `w.kind` does; returns
/// the raw score [`super::Scorer`] takes for the feature.
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
        CellKind::Level => {
            let mut l = Level {
                n: cell.n,
                level: cell.a,
                mad: cell.b,
            };
            let z = l.score_and_update(x, p[0], p[1]);
            (cell.n, cell.a, cell.b) = (l.n, l.level, l.mad);
            z
        }
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_round_trip_every_detector_state() {
        let mut rng = crate::fixture::Rng::new(4);
        let detectors: Vec<DetectorSpec> = [
            DetectorKind::EwmaZ,
            DetectorKind::LevelZ,
            DetectorKind::Cusum,
            DetectorKind::Stuck,
        ]
        .into_iter()
        .map(|k| DetectorSpec::new(k, vec![0]))
        .collect();
        let ws = watches(&detectors);
        assert_eq!(ws.len(), 4);
        for w in &ws {
            let spec = &detectors[w.detector];
            let mut cell = Cell::default();
            let (mut e, mut l, mut c, mut s) = (
                Ewma::default(),
                Level::default(),
                Cusum::default(),
                Stuck::default(),
            );
            for i in 0..500 {
                // Repeats (stuck runs), a shift (cusum re-baselines), NaN and inf.
                let x = match i % 50 {
                    0 => f64::NAN,
                    1 => f64::INFINITY,
                    2..=8 => 7.0,
                    _ => (i / 200) as f64 * 5.0 + rng.normal(),
                };
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
                };
                let got = step(w, &mut cell, x);
                assert_eq!(want.to_bits(), got.to_bits(), "{:?} window {i}", w.kind);
            }
        }
    }
}
