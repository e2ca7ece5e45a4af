//! NAB-style evaluation (`hyflow eval`): the Numenta Anomaly Benchmark's scoring, as described
//! in ../shared/data/nab-dev/README.md and implemented independently by
//! ../shared/tools/nab_score.py (a test checks that both agree). Per profile: the earliest
//! detection in a window earns up to A_TP (scaled sigmoid of its position), a missed window
//! costs A_FN, a detection outside windows costs up to A_FP (less just after a window); the
//! first min(15 %, 750) rows of each file are never scored; one threshold for the whole corpus
//! is chosen by sweeping every distinct score; the score is normalised to 100 = perfect,
//! 0 = never firing.

/// A NAB application profile (cost matrix).
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    /// Profile name.
    pub name: &'static str,
    /// Weight of a true positive.
    pub tp: f64,
    /// Weight of a false positive.
    pub fp: f64,
    /// Weight of a missed window.
    pub fn_: f64,
}

/// NAB's three profiles.
pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "standard",
        tp: 1.0,
        fp: 0.11,
        fn_: 1.0,
    },
    Profile {
        name: "reward_low_FP_rate",
        tp: 1.0,
        fp: 0.22,
        fn_: 1.0,
    },
    Profile {
        name: "reward_low_FN_rate",
        tp: 1.0,
        fp: 0.11,
        fn_: 2.0,
    },
];

fn sigma(y: f64) -> f64 {
    if y > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

/// One file's rows with what a detection there would be worth.
#[derive(Clone, Debug)]
pub struct ScoredFile {
    scores: Vec<f64>,
    /// (row, window index or None, unweighted value)
    rows: Vec<(usize, Option<usize>, f64)>,
    live_windows: Vec<usize>,
}

impl ScoredFile {
    /// Lays out a file: row times (ms), scores, and its windows as (start, end) times, both
    /// of which must be row times.
    pub fn new(times: &[i64], scores: Vec<f64>, windows: &[(i64, i64)]) -> Result<Self, String> {
        let index = |t: i64| {
            times
                .iter()
                .position(|&x| x == t)
                .ok_or_else(|| format!("window boundary {t} is not a row time"))
        };
        let mut spans = Vec::new();
        for &(a, b) in windows {
            spans.push((index(a)?, index(b)?));
        }
        spans.sort_unstable();
        if spans.windows(2).any(|w| w[1].0 <= w[0].1) {
            return Err("overlapping windows".into());
        }
        let n = times.len();
        let probation = ((0.15 * n as f64).floor() as usize).min(750);
        let left_edge = sigma(-1.0);
        let mut rows = Vec::new();
        let (mut k, mut prev): (usize, Option<(usize, usize)>) = (0, None);
        for i in 0..n {
            while k < spans.len() && spans[k].1 < i {
                prev = Some(spans[k]);
                k += 1;
            }
            if i < probation {
                continue;
            }
            if k < spans.len() && spans[k].0 <= i && i <= spans[k].1 {
                let (l, r) = spans[k];
                let width = (r - l + 1) as f64;
                rows.push((i, Some(k), sigma(-((r - i + 1) as f64) / width) / left_edge));
            } else {
                let f = prev.map_or(-1.0, |(l, r)| {
                    sigma((i - r) as f64 / ((r - l + 1) as f64 - 1.0).max(1.0))
                });
                rows.push((i, None, f));
            }
        }
        let mut live: Vec<usize> = rows.iter().filter_map(|r| r.1).collect();
        live.dedup();
        Ok(Self {
            scores,
            rows,
            live_windows: live,
        })
    }

    /// Windows that can be scored (have a row after the probation).
    pub fn live_windows(&self) -> usize {
        self.live_windows.len()
    }

    /// (windows detected, detections outside windows) at `threshold`.
    pub fn counts(&self, threshold: f64) -> (usize, usize) {
        let mut hit = vec![false; self.live_windows.iter().max().map_or(0, |m| m + 1)];
        let mut fp = 0;
        for &(i, w, _) in &self.rows {
            if self.scores[i] >= threshold {
                match w {
                    Some(w) => hit[w] = true,
                    None => fp += 1,
                }
            }
        }
        (hit.iter().filter(|h| **h).count(), fp)
    }
}

/// The best corpus-wide threshold and its raw score (ties keep the higher threshold;
/// `f64::INFINITY` = never fire).
pub fn sweep(files: &[ScoredFile], p: &Profile) -> (f64, f64) {
    let mut total: f64 = -p.fn_
        * files
            .iter()
            .map(|f| f.live_windows.len() as f64)
            .sum::<f64>();
    // (score, (file, window) or None for a false positive, weighted value)
    type Event = (f64, Option<(usize, usize)>, f64);
    let mut events: Vec<Event> = Vec::new();
    for (fi, f) in files.iter().enumerate() {
        for &(i, w, fac) in &f.rows {
            events.push(match w {
                Some(w) => (f.scores[i], Some((fi, w)), p.tp * fac),
                None => (f.scores[i], None, p.fp * fac),
            });
        }
    }
    events.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut window_val: std::collections::HashMap<(usize, usize), f64> =
        std::collections::HashMap::new();
    let (mut best_thr, mut best) = (f64::INFINITY, total);
    let mut j = 0;
    while j < events.len() {
        let thr = events[j].0;
        while j < events.len() && events[j].0 == thr {
            let (_, key, v) = events[j];
            match key {
                None => total += v,
                Some(key) => {
                    let cur = window_val.get(&key).copied().unwrap_or(-p.fn_);
                    if v > cur {
                        total += v - cur;
                        window_val.insert(key, v);
                    }
                }
            }
            j += 1;
        }
        if total > best {
            best_thr = thr;
            best = total;
        }
    }
    (best_thr, best)
}

/// 100 · (raw − null) / (perfect − null).
pub fn normalise(raw: f64, files: &[ScoredFile], windows_in_labels: usize, p: &Profile) -> f64 {
    let perfect = p.tp * windows_in_labels as f64;
    let null = -p.fn_
        * files
            .iter()
            .map(|f| f.live_windows.len() as f64)
            .sum::<f64>();
    100.0 * (raw - null) / (perfect - null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_detection_and_false_positives() {
        let times: Vec<i64> = (0..100).collect();
        let mut scores = vec![0.0; 100];
        scores[40] = 0.9; // first row of the window [40, 49]
        scores[80] = 0.5; // far from the window: a full false positive
        let f = ScoredFile::new(&times, scores, &[(40, 49)]).expect("layout");
        let p = &PROFILES[0];
        let (thr, raw) = sweep(std::slice::from_ref(&f), p);
        assert_eq!(thr, 0.9);
        assert!((raw - 1.0).abs() < 1e-12, "{raw}");
        assert_eq!(f.counts(0.5), (1, 1));
        assert!((normalise(raw, &[f], 1, p) - 100.0).abs() < 1e-9);
    }
}
