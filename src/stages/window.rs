//! Event-time windows: assignment (tumbling and sliding, aligned to the epoch) and the
//! per-sensor buffers of one worker, which close windows once the timely frontier has passed
//! their end. Closing also removes duplicate (sensor, time) readings and fills gaps.

use crate::batch::{ReadingBatch, RejectKind, RejectRow};
use crate::compute::WindowBatch;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Window assignment: windows `[k·slide, k·slide + size)` for every integer k.
///
/// ```
/// use hyflow::stages::window::WindowSpec;
/// // Sliding windows of 10 s every 5 s: a reading at 12 s is in [5 s, 15 s) and [10 s, 20 s).
/// let w = WindowSpec::new(10_000, 5_000);
/// assert_eq!((w.first_start(12_000), w.last_start(12_000)), (5_000, 10_000));
/// assert_eq!(w.last_end(12_000), 20_000);
/// // Tumbling windows are aligned to the epoch, before it too.
/// let t = WindowSpec::new(10_000, 10_000);
/// assert_eq!((t.first_start(-1), t.last_start(-1), t.last_end(-1)), (-10_000, -10_000, 0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    /// Window length, ms.
    pub size: i64,
    /// Distance between starts, ms (== size for tumbling windows).
    pub slide: i64,
}

impl WindowSpec {
    /// A spec; both arguments must be positive, slide <= size.
    pub fn new(size: i64, slide: i64) -> Self {
        Self { size, slide }
    }
    /// Start of the last window containing `t`.
    #[inline]
    pub fn last_start(&self, t: i64) -> i64 {
        t.div_euclid(self.slide) * self.slide
    }
    /// End of the last window containing `t`.
    #[inline]
    pub fn last_end(&self, t: i64) -> i64 {
        self.last_start(t).saturating_add(self.size)
    }
    /// Start of the first window containing `t`.
    #[inline]
    pub fn first_start(&self, t: i64) -> i64 {
        (t - self.size).div_euclid(self.slide) * self.slide + self.slide
    }
}

/// How gaps in a sensor's series are filled before features are computed (`[clean.fill]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FillMethod {
    /// No filling.
    #[default]
    None,
    /// Repeat the last reading.
    Hold,
    /// Interpolate linearly between the readings around the gap.
    Linear,
}

/// Gap filling on a regular grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Fill {
    /// How.
    pub method: FillMethod,
    /// The nominal sampling interval (ms): a gap is a stretch longer than this.
    pub interval_ms: i64,
    /// Gaps longer than this (ms) are left unfilled.
    pub max_gap_ms: i64,
}

struct Series {
    name: Arc<str>,
    /// Readings not yet past every window they belong to (unsorted between closes).
    /// Each as (time, value, watermark): a reading joins only the windows that end after its
    /// partition's watermark when it was read, so a reading that is late for some of its
    /// sliding windows joins the same ones in every run.
    pending: Vec<(i64, f64, i64)>,
    /// Smallest time in `pending` (i64::MAX when empty).
    min_t: i64,
    /// `pending` is in (time, value) order (readings mostly arrive in order: no sort then).
    sorted: bool,
    /// Smallest window start not yet emitted.
    next_start: i64,
    /// The last reading dropped from `pending`, for gap filling across windows.
    prev: Option<(i64, f64)>,
}

/// The open windows of all sensors on one worker.
pub struct WindowState {
    spec: WindowSpec,
    fill: Fill,
    dedup: bool,
    series: Vec<Series>,
    slots: HashMap<Arc<str>, u32>,
    /// Slots with pending readings.
    active: Vec<u32>,
    is_active: Vec<bool>,
}

impl WindowState {
    /// Empty state.
    pub fn new(spec: WindowSpec, fill: Fill, dedup: bool) -> Self {
        Self {
            spec,
            fill,
            dedup,
            series: Vec::new(),
            slots: HashMap::new(),
            active: Vec::new(),
            is_active: Vec::new(),
        }
    }

    /// Number of readings buffered.
    pub fn buffered(&self) -> usize {
        self.active
            .iter()
            .map(|&s| self.series[s as usize].pending.len())
            .sum()
    }

    /// Buffers a batch of (non-late) readings.
    pub fn insert(&mut self, batch: &ReadingBatch) {
        let mut map = vec![u32::MAX; batch.names.len()];
        for i in 0..batch.len() {
            let local = batch.sensor[i] as usize;
            let mut slot = map[local];
            if slot == u32::MAX {
                slot = self.slot(&batch.names[local]);
                map[local] = slot;
            }
            let s = slot as usize;
            let seen = batch.watermark.get(i).copied().unwrap_or(i64::MIN);
            let series = &mut self.series[s];
            let (t, v) = (batch.time[i], batch.value[i]);
            if let Some(last) = series.pending.last() {
                series.sorted &= last.0 < t || (last.0 == t && last.1 <= v);
            }
            series.pending.push((t, v, seen));
            series.min_t = series.min_t.min(batch.time[i]);
            if !self.is_active[s] {
                self.is_active[s] = true;
                self.active.push(slot);
            }
        }
    }

    fn slot(&mut self, name: &Arc<str>) -> u32 {
        if let Some(&s) = self.slots.get(name) {
            return s;
        }
        let s = self.series.len() as u32;
        self.series.push(Series {
            name: name.clone(),
            pending: Vec::new(),
            min_t: i64::MAX,
            sorted: true,
            next_start: i64::MIN,
            prev: None,
        });
        self.is_active.push(false);
        self.slots.insert(name.clone(), s);
        s
    }

    /// Closes every window ending at or before `upto` (all readings before it have arrived),
    /// returning the windows grouped by their end, and duplicates as rejects.
    /// Within a sensor, windows come out in start order.
    pub fn close(
        &mut self,
        upto: i64,
        rejects: &mut Vec<(i64, RejectRow)>,
    ) -> BTreeMap<i64, WindowBatch> {
        let mut out: BTreeMap<i64, WindowBatch> = BTreeMap::new();
        let spec = self.spec;
        let mut still = Vec::with_capacity(self.active.len());
        let active = std::mem::take(&mut self.active);
        for slot in active {
            let s = &mut self.series[slot as usize];
            // Quick exit: nothing can close unless the earliest window containing the
            // earliest reading ends by `upto`.
            let min_t = s.min_t;
            if spec
                .first_start(min_t)
                .max(s.next_start)
                .saturating_add(spec.size)
                > upto
            {
                still.push(slot);
                continue;
            }
            if !s.sorted {
                s.pending
                    .sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
                s.sorted = true;
            }
            if self.dedup {
                dedup(&mut s.pending, &s.name, rejects);
            }
            let mut start = spec.first_start(s.pending[0].0).max(s.next_start);
            let mut lo = 0; // first pending index with t >= start
            while start.saturating_add(spec.size) <= upto {
                while lo < s.pending.len() && s.pending[lo].0 < start {
                    lo += 1;
                }
                if lo == s.pending.len() {
                    break;
                }
                let end = start + spec.size;
                let hi = lo + s.pending[lo..].partition_point(|r| r.0 < end);
                let eligible = |r: &&(i64, f64, i64)| r.2 < end;
                if s.pending[lo..hi].iter().any(|r| eligible(&r)) {
                    let before = if lo > 0 {
                        Some((s.pending[lo - 1].0, s.pending[lo - 1].1))
                    } else {
                        s.prev
                    };
                    let batch = out.entry(end).or_default();
                    batch.push_window(slot, s.name.clone(), start, end);
                    let readings = s.pending[lo..hi]
                        .iter()
                        .filter(eligible)
                        .map(|r| (r.0, r.1));
                    let filled = fill_window(&self.fill, before, readings, batch);
                    batch.finish_window(filled);
                    start += spec.slide;
                } else {
                    // Jump to the first window holding the next reading.
                    start = spec.first_start(s.pending[lo].0).max(start + spec.slide);
                }
            }
            s.next_start = start;
            // Drop readings no future window needs.
            let keep_from = s.pending.partition_point(|r| r.0 < start);
            if keep_from > 0 {
                s.prev = Some((s.pending[keep_from - 1].0, s.pending[keep_from - 1].1));
                s.pending.drain(..keep_from);
            }
            s.min_t = s.pending.first().map_or(i64::MAX, |r| r.0);
            if s.pending.is_empty() {
                self.is_active[slot as usize] = false;
            } else {
                still.push(slot);
            }
        }
        self.active = still;
        out
    }
}

/// One sensor's open windows, as a checkpoint keeps them.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SeriesSnapshot {
    /// Sensor id.
    pub name: String,
    /// Buffered readings: (time, value, watermark when read); packed in a checkpoint
    /// (`checkpoint::packed`).
    #[serde(with = "crate::checkpoint::packed")]
    pub pending: Vec<(i64, f64, i64)>,
    /// Smallest window start not yet emitted.
    pub next_start: i64,
    /// The last reading dropped, for gap filling across windows.
    pub prev: Option<(i64, f64)>,
}

impl WindowState {
    /// Every sensor's open windows, in slot order (the scorer's state is indexed by the same
    /// slots, so a restored worker numbers its sensors as before).
    pub fn snapshot(&self) -> Vec<SeriesSnapshot> {
        self.series
            .iter()
            .map(|s| SeriesSnapshot {
                name: s.name.to_string(),
                pending: s.pending.clone(),
                next_start: s.next_start,
                prev: s.prev,
            })
            .collect()
    }

    /// The state a [`Self::snapshot`] was taken of (into an empty state).
    pub fn restore(&mut self, series: Vec<SeriesSnapshot>) {
        for snap in series {
            let slot = self.slot(&Arc::from(snap.name.as_str())) as usize;
            let s = &mut self.series[slot];
            s.min_t = snap.pending.iter().map(|r| r.0).min().unwrap_or(i64::MAX);
            s.sorted = snap
                .pending
                .windows(2)
                .all(|w| w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 <= w[1].1));
            s.pending = snap.pending;
            s.next_start = snap.next_start;
            s.prev = snap.prev;
            if !s.pending.is_empty() && !self.is_active[slot] {
                self.is_active[slot] = true;
                self.active.push(slot as u32);
            }
        }
    }
}

fn dedup(pending: &mut Vec<(i64, f64, i64)>, name: &Arc<str>, rejects: &mut Vec<(i64, RejectRow)>) {
    let mut w = 0;
    for r in 0..pending.len() {
        if w > 0 && pending[w - 1].0 == pending[r].0 {
            let (t, v, _) = pending[r];
            rejects.push((
                t,
                RejectRow {
                    source: "window".into(),
                    row: None,
                    sensor: Some(name.to_string()),
                    time: Some(t),
                    value: Some(v),
                    reason: format!(
                        "duplicate reading for sensor at time {t} (kept value {})",
                        pending[w - 1].1
                    ),
                    kind: RejectKind::Duplicate,
                },
            ));
            continue;
        }
        pending[w] = pending[r];
        w += 1;
    }
    pending.truncate(w);
}

/// Appends the window's readings to `batch`, filling gaps on the configured grid.
/// Returns how many values were filled in.
fn fill_window(
    fill: &Fill,
    before: Option<(i64, f64)>,
    readings: impl Iterator<Item = (i64, f64)>,
    batch: &mut WindowBatch,
) -> u32 {
    if fill.method == FillMethod::None {
        for (t, v) in readings {
            batch.times.push(t);
            batch.values.push(v);
        }
        return 0;
    }
    let start = batch.start[batch.start.len() - 1];
    let mut filled = 0;
    let mut prev = before;
    for (t, v) in readings {
        if let Some((pt, pv)) = prev {
            let gap = t - pt;
            if gap > fill.interval_ms && gap <= fill.max_gap_ms {
                let mut ft = pt + fill.interval_ms;
                while ft < t {
                    if ft >= start {
                        let fv = match fill.method {
                            FillMethod::Linear => pv + (v - pv) * ((ft - pt) as f64 / gap as f64),
                            _ => pv,
                        };
                        batch.times.push(ft);
                        batch.values.push(fv);
                        filled += 1;
                    }
                    ft += fill.interval_ms;
                }
            }
        }
        batch.times.push(t);
        batch.values.push(v);
        prev = Some((t, v));
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(rows: &[(&str, i64, f64)]) -> ReadingBatch {
        let mut names: Vec<Arc<str>> = Vec::new();
        let mut b = ReadingBatch::default();
        for (n, t, v) in rows {
            let i = names.iter().position(|x| &**x == *n).unwrap_or_else(|| {
                names.push(Arc::from(*n));
                names.len() - 1
            });
            b.push(i as u32, *t, *v);
        }
        b.names = Arc::new(names);
        b
    }

    /// Closes windows up to each of `cuts` in turn; between `cuts[k]` and the rest the state
    /// is (optionally) saved and restored into a fresh one. Windows as text, and rejects.
    fn run_with_restore(restore_after: Option<usize>) -> (Vec<String>, usize) {
        let fill = Fill {
            method: FillMethod::Linear,
            interval_ms: 2,
            max_gap_ms: 20,
        };
        let new = || WindowState::new(WindowSpec::new(10, 5), fill, true);
        let mut w = new();
        let (mut seen, mut rejects) = (Vec::new(), Vec::new());
        for k in 0..8i64 {
            let rows: Vec<(&str, i64, f64)> = (0..12)
                .map(|i| {
                    let t = k * 10 + (i * 7 + k * 3) % 13;
                    (["a", "b", "c"][(i % 3) as usize], t, (t * i) as f64)
                })
                .collect();
            w.insert(&batch(&rows));
            for (end, b) in w.close(k * 10, &mut rejects) {
                seen.push(format!(
                    "{end} {:?} {:?} {:?} {:?}",
                    b.start, b.times, b.values, b.filled
                ));
            }
            if restore_after == Some(k as usize) {
                let snap = w.snapshot();
                w = new();
                w.restore(snap);
            }
        }
        for (end, b) in w.close(i64::MAX, &mut rejects) {
            seen.push(format!(
                "{end} {:?} {:?} {:?} {:?}",
                b.start, b.times, b.values, b.filled
            ));
        }
        (seen, rejects.len())
    }

    #[test]
    fn a_restored_state_closes_the_same_windows() {
        let whole = run_with_restore(None);
        assert!(whole.0.len() > 10 && whole.1 > 0, "{whole:?}");
        for k in 0..8 {
            assert_eq!(run_with_restore(Some(k)), whole, "restored after step {k}");
        }
    }

    #[test]
    fn assignment() {
        let s = WindowSpec::new(10, 5);
        assert_eq!(
            (s.first_start(12), s.last_start(12), s.last_end(12)),
            (5, 10, 20)
        );
        assert_eq!((s.first_start(-3), s.last_start(-3)), (-10, -5));
    }

    #[test]
    fn tumbling_closes_by_frontier_and_dedups() {
        let mut w = WindowState::new(WindowSpec::new(10, 10), Fill::default(), true);
        w.insert(&batch(&[
            ("a", 1, 1.0),
            ("a", 12, 2.0),
            ("b", 3, 5.0),
            ("a", 1, 0.5),
        ]));
        let mut rej = Vec::new();
        assert!(w.close(9, &mut rej).is_empty());
        let out = w.close(10, &mut rej);
        let b = &out[&10];
        assert_eq!(b.len(), 2);
        assert_eq!(rej.len(), 1);
        assert_eq!(rej[0].1.value, Some(1.0)); // the larger value is the duplicate
        assert_eq!(w.buffered(), 1);
        let out = w.close(i64::MAX, &mut rej);
        assert_eq!(out[&20].values, vec![2.0]);
    }

    #[test]
    fn sliding_windows_share_readings() {
        let mut w = WindowState::new(WindowSpec::new(10, 5), Fill::default(), false);
        w.insert(&batch(&[("a", 7, 1.0), ("a", 12, 2.0)]));
        let out = w.close(i64::MAX, &mut Vec::new());
        let got: Vec<(i64, Vec<f64>)> = out
            .values()
            .map(|b| (b.start[0], b.values.clone()))
            .collect();
        assert_eq!(
            got,
            vec![(0, vec![1.0]), (5, vec![1.0, 2.0]), (10, vec![2.0])]
        );
    }

    #[test]
    fn linear_fill_within_max_gap() {
        let fill = Fill {
            method: FillMethod::Linear,
            interval_ms: 1,
            max_gap_ms: 3,
        };
        let mut w = WindowState::new(WindowSpec::new(100, 100), fill, true);
        w.insert(&batch(&[("a", 0, 0.0), ("a", 3, 3.0), ("a", 10, 0.0)]));
        let out = w.close(i64::MAX, &mut Vec::new());
        let b = &out[&100];
        assert_eq!(b.values, vec![0.0, 1.0, 2.0, 3.0, 0.0]);
        assert_eq!(b.filled, vec![2]);
    }
}
