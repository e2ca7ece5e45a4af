//! NAB-style evaluation (`hyflow eval`): the Numenta Anomaly Benchmark's scoring, as described
//! in ../shared/data/nab-dev/README.md and implemented independently by
//! ../shared/tools/nab_score.py (a test checks that both agree). Per profile: the earliest
//! detection in a window earns up to A_TP (scaled sigmoid of its position), a missed window
//! costs A_FN, a detection outside windows costs up to A_FP (less just after a window); the
//! first min(15 %, 750) rows of each file are never scored; one threshold for the whole corpus
//! is chosen by sweeping every distinct score; the score is normalised to 100 = perfect,
//! 0 = never firing.

pub mod cv;
pub mod incidents;

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

/// The raw score of `files` at a fixed `threshold` (one chosen elsewhere, e.g. on the other
/// folds of a cross-validation).
pub fn raw_at(files: &[ScoredFile], threshold: f64, p: &Profile) -> f64 {
    let mut total = 0.0;
    for f in files {
        let mut best: std::collections::HashMap<usize, f64> = std::collections::HashMap::new();
        for &(i, w, fac) in &f.rows {
            if f.scores[i] < threshold {
                continue;
            }
            match w {
                None => total += p.fp * fac,
                Some(w) => {
                    let v = best.entry(w).or_insert(-p.fn_);
                    *v = v.max(p.tp * fac);
                }
            }
        }
        total += best.values().sum::<f64>();
        total -= p.fn_ * (f.live_windows.len() - best.len()) as f64;
    }
    total
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
        // The raw score at the swept threshold is the sweep's.
        assert!((raw_at(std::slice::from_ref(&f), thr, p) - raw).abs() < 1e-12);
        assert!((raw_at(std::slice::from_ref(&f), f64::INFINITY, p) + 1.0).abs() < 1e-12);
        assert!((normalise(raw, &[f], 1, p) - 100.0).abs() < 1e-9);
    }
}

/// A labelled anomaly of one sensor (the `FILE.labels.json` that `hyflow gen` writes).
#[derive(Clone, Debug, serde::Deserialize)]
pub struct SensorLabel {
    /// Sensor id.
    pub sensor: String,
    /// Start, ms.
    pub start: i64,
    /// End, ms (exclusive).
    pub end: i64,
}

/// Episode-level quality of alerts against sensor labels.
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeReport {
    /// Alert episodes that overlap a label of their sensor.
    pub true_episodes: usize,
    /// Alert episodes that overlap none.
    pub false_episodes: usize,
    /// Labels with at least one episode.
    pub detected: usize,
    /// Labels whose first episode opened before the label's end (not in the window after it,
    /// where the step back to normal of a slow fault can open one).
    pub detected_while_on: usize,
    /// Labels.
    pub labels: usize,
    /// Median delay from a label's start to its first episode, in windows (slides).
    pub median_delay_windows: Option<f64>,
}

impl EpisodeReport {
    /// Episodes that overlap a label / all episodes (1 when there is none).
    pub fn precision(&self) -> f64 {
        let all = self.true_episodes + self.false_episodes;
        if all == 0 {
            1.0
        } else {
            self.true_episodes as f64 / all as f64
        }
    }
    /// Labels detected / labels (1 when there is none).
    pub fn recall(&self) -> f64 {
        if self.labels == 0 {
            1.0
        } else {
            self.detected as f64 / self.labels as f64
        }
    }
    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

/// Matches episode openings `(sensor, opened_at)` to labels: an episode counts for a label of
/// its sensor when it opens between the label's start and one window after its end (an
/// episode opens at the end of a window). Delays are in units of `slide_ms`.
pub fn episodes(
    labels: &[SensorLabel],
    opens: &[(String, i64)],
    window_ms: i64,
    slide_ms: i64,
) -> EpisodeReport {
    let hits = |l: &SensorLabel, (s, t): &(String, i64)| {
        *s == l.sensor && *t > l.start && *t <= l.end + window_ms
    };
    let true_episodes = opens
        .iter()
        .filter(|o| labels.iter().any(|l| hits(l, o)))
        .count();
    let mut delays = Vec::new();
    let mut detected = 0;
    let mut detected_while_on = 0;
    for l in labels {
        if let Some(first) = opens.iter().filter(|o| hits(l, o)).map(|o| o.1).min() {
            detected += 1;
            detected_while_on += usize::from(first <= l.end);
            delays.push(((first - l.start) as f64 / slide_ms.max(1) as f64).max(0.0));
        }
    }
    delays.sort_by(f64::total_cmp);
    let median = (!delays.is_empty()).then(|| {
        let m = delays.len() / 2;
        if delays.len() % 2 == 1 {
            delays[m]
        } else {
            (delays[m - 1] + delays[m]) / 2.0
        }
    });
    EpisodeReport {
        true_episodes,
        false_episodes: opens.len() - true_episodes,
        detected,
        detected_while_on,
        labels: labels.len(),
        median_delay_windows: median,
    }
}

/// An alert event of one sensor: (sensor, window end, opens: true for `open`, false for
/// `resolved`; updates are left out).
pub type SensorEvent = (String, i64, bool);

/// The labels and episode openings of [`episodes`] by asset (`asset-delimiter`): a label of any
/// sensor is a label of its asset (overlapping ones merged), and an asset's episode opens when
/// one of its sensors opens an episode while none of its others has one open. This scores a
/// pipeline as an operator sees a machine, and does not count an asset detector's score, which
/// every sensor of the asset carries, as many false episodes.
pub fn by_asset(
    labels: &[SensorLabel],
    events: &[SensorEvent],
    delimiter: &str,
) -> (Vec<SensorLabel>, Vec<(String, i64)>) {
    use std::collections::BTreeMap;
    let asset = |s: &str| crate::stages::detect::asset::asset_of(s, delimiter).to_string();
    let mut spans: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for l in labels {
        spans
            .entry(asset(&l.sensor))
            .or_default()
            .push((l.start, l.end));
    }
    let mut merged = Vec::new();
    for (a, mut v) in spans {
        v.sort_unstable();
        let mut cur: Option<(i64, i64)> = None;
        for (s, e) in v {
            cur = match cur {
                Some((cs, ce)) if s < ce => Some((cs, ce.max(e))),
                Some(c) => {
                    merged.push(SensorLabel {
                        sensor: a.clone(),
                        start: c.0,
                        end: c.1,
                    });
                    Some((s, e))
                }
                None => Some((s, e)),
            };
        }
        if let Some(c) = cur {
            merged.push(SensorLabel {
                sensor: a.clone(),
                start: c.0,
                end: c.1,
            });
        }
    }
    let mut sorted: Vec<&SensorEvent> = events.iter().collect();
    // Resolves before opens at one time: a hand-over between sensors is one asset episode
    // only when they overlap.
    sorted.sort_by_key(|(s, t, open)| (*t, *open, s.clone()));
    let mut open_now: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    let mut opens = Vec::new();
    for (s, t, open) in sorted {
        let set = open_now.entry(asset(s)).or_default();
        if *open {
            if set.is_empty() {
                opens.push((asset(s), *t));
            }
            set.insert(s.clone());
        } else {
            set.remove(s);
        }
    }
    (merged, opens)
}

#[cfg(test)]
mod episode_tests {
    use super::*;

    #[test]
    fn precision_recall_and_delay() {
        let labels = vec![
            SensorLabel {
                sensor: "a".into(),
                start: 100,
                end: 200,
            },
            SensorLabel {
                sensor: "b".into(),
                start: 100,
                end: 200,
            },
            SensorLabel {
                sensor: "c".into(),
                start: 0,
                end: 50,
            },
        ];
        let opens = vec![
            ("a".to_string(), 130),
            ("a".to_string(), 500),
            ("b".to_string(), 110),
            ("c".to_string(), 60),
        ];
        let r = episodes(&labels, &opens, 10, 10);
        assert_eq!(
            (r.true_episodes, r.false_episodes, r.detected, r.labels),
            (3, 1, 3, 3)
        );
        assert_eq!(r.median_delay_windows, Some(3.0)); // delays 3, 1, 6
        // c's episode opened in the window after its end: detected, but not while it lasted.
        assert_eq!(r.detected_while_on, 2);
        assert!((r.f1() - 2.0 * 0.75 / 1.75).abs() < 1e-12);
    }

    #[test]
    fn by_asset_merges_labels_and_overlapping_episodes() {
        let l = |s: &str, a, b| SensorLabel {
            sensor: s.into(),
            start: a,
            end: b,
        };
        let labels = vec![
            l("m1-cur", 100, 200),
            l("m1-pres", 150, 300),
            l("m2-cur", 500, 600),
        ];
        let e = |s: &str, t, o| (s.to_string(), t, o);
        let events = vec![
            e("m1-cur", 110, true),
            e("m1-pres", 120, true), // m1 already open: same asset episode
            e("m1-cur", 130, false),
            e("m1-pres", 140, false),
            e("m1-temp", 140, true), // after m1-pres resolved at the same time: a new one
            e("m2-cur", 50, true),
        ];
        let (merged, opens) = by_asset(&labels, &events, "-");
        assert_eq!(merged.len(), 2);
        assert_eq!((merged[0].start, merged[0].end), (100, 300));
        assert_eq!(merged[0].sensor, "m1");
        assert_eq!(
            opens,
            vec![
                ("m2".to_string(), 50),
                ("m1".to_string(), 110),
                ("m1".to_string(), 140)
            ]
        );
        let r = episodes(&merged, &opens, 10, 10);
        assert_eq!((r.true_episodes, r.false_episodes, r.detected), (2, 1, 1));
    }
}
