//! Cross-validation of detection settings over labelled NAB files: leave one group (a NAB
//! category) out, choose the candidate pipeline and its threshold on the other groups, score
//! the left-out group with that choice. Every file is then scored by settings chosen without
//! its group; the pooled score of those held-out results is the number to report, never a
//! candidate's in-sample score.

use super::{Profile, ScoredFile, raw_at, sweep};

/// A labelled file scored by one candidate.
#[derive(Clone, Debug)]
pub struct Labelled {
    /// The group it is held out with (its NAB category).
    pub group: String,
    /// Its rows and scores.
    pub file: ScoredFile,
    /// Label windows of the file.
    pub windows: usize,
}

/// One fold: the group held out and what was chosen without it.
#[derive(Clone, Debug)]
pub struct Fold {
    /// The held-out group.
    pub group: String,
    /// Index of the candidate chosen on the other groups.
    pub chosen: usize,
    /// The threshold chosen with it.
    pub threshold: f64,
    /// The chosen candidate's normalised score on the other groups (in-sample for them).
    pub train: f64,
    /// Raw NAB score of the held-out group at that threshold.
    pub raw: f64,
    /// The held-out group's normalised score (None when it has no label window: NAB's
    /// normalisation is undefined there, its false positives still count in the pooled score).
    pub held_out: Option<f64>,
}

/// The result of a cross-validation.
#[derive(Clone, Debug)]
pub struct CvReport {
    /// Per held-out group, in name order.
    pub folds: Vec<Fold>,
    /// The held-out results of every fold scored together, normalised over all files.
    pub pooled: f64,
}

fn normalised(raw: f64, files: &[&Labelled], p: &Profile) -> Option<f64> {
    let perfect = p.tp * files.iter().map(|f| f.windows as f64).sum::<f64>();
    let null = -p.fn_
        * files
            .iter()
            .map(|f| f.file.live_windows() as f64)
            .sum::<f64>();
    (perfect > null).then(|| 100.0 * (raw - null) / (perfect - null))
}

/// Leave-one-group-out over `candidates` (each the same files, in the same order, scored by
/// one candidate setting) for profile `p`.
pub fn leave_one_group_out(candidates: &[Vec<Labelled>], p: &Profile) -> CvReport {
    let Some(first) = candidates.first() else {
        return CvReport {
            folds: Vec::new(),
            pooled: 0.0,
        };
    };
    let mut groups: Vec<&str> = first.iter().map(|l| l.group.as_str()).collect();
    groups.sort_unstable();
    groups.dedup();
    let mut folds = Vec::new();
    let mut pooled_raw = 0.0;
    for g in groups {
        let mut best: Option<(usize, f64, f64)> = None; // (candidate, threshold, train score)
        for (ci, files) in candidates.iter().enumerate() {
            let train: Vec<&Labelled> = files.iter().filter(|l| l.group != g).collect();
            let scored: Vec<ScoredFile> = train.iter().map(|l| l.file.clone()).collect();
            let (thr, raw) = sweep(&scored, p);
            let score = normalised(raw, &train, p).unwrap_or(f64::NEG_INFINITY);
            if best.is_none_or(|b| score > b.2) {
                best = Some((ci, thr, score));
            }
        }
        let (chosen, threshold, train) = best.unwrap_or((0, f64::INFINITY, 0.0));
        let test: Vec<&Labelled> = candidates[chosen].iter().filter(|l| l.group == g).collect();
        let scored: Vec<ScoredFile> = test.iter().map(|l| l.file.clone()).collect();
        let raw = raw_at(&scored, threshold, p);
        pooled_raw += raw;
        folds.push(Fold {
            group: g.to_string(),
            chosen,
            threshold,
            train,
            raw,
            held_out: normalised(raw, &test, p),
        });
    }
    let all: Vec<&Labelled> = first.iter().collect();
    CvReport {
        folds,
        pooled: normalised(pooled_raw, &all, p).unwrap_or(0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::eval::PROFILES;

    /// A file of 100 rows with one window at rows 60-69 and a detection at `hit` (None: none).
    fn file(group: &str, hit: Option<usize>, noise_at: Option<usize>) -> Labelled {
        let times: Vec<i64> = (0..100).collect();
        let mut scores = vec![0.0; 100];
        if let Some(h) = hit {
            scores[h] = 0.9;
        }
        if let Some(n) = noise_at {
            scores[n] = 0.95;
        }
        Labelled {
            group: group.into(),
            file: ScoredFile::new(&times, scores, &[(60, 69)]).expect("layout"),
            windows: 1,
        }
    }

    #[test]
    fn the_choice_is_made_without_the_held_out_group() {
        let p = &PROFILES[0];
        // Candidate 0 finds every window; candidate 1 fires a false positive above the window
        // score in group "b" only, and misses "a"'s window.
        let c0 = vec![
            file("a", Some(60), None),
            file("b", Some(60), None),
            file("c", Some(60), None),
        ];
        let c1 = vec![
            file("a", None, None),
            file("b", Some(60), Some(30)),
            file("c", Some(60), None),
        ];
        let r = leave_one_group_out(&[c0.clone(), c1], p);
        assert_eq!(r.folds.len(), 3);
        assert!(r.folds.iter().all(|f| f.chosen == 0), "{:?}", r.folds);
        assert!((r.pooled - 100.0).abs() < 1e-9, "{}", r.pooled);
        // The held-out group is scored at the threshold chosen on the others: a file whose
        // scores sit below it earns nothing, even though its own best threshold is perfect.
        let mut low = file("d", None, None);
        let times: Vec<i64> = (0..100).collect();
        let mut s = vec![0.0; 100];
        s[60] = 0.5;
        low.file = ScoredFile::new(&times, s, &[(60, 69)]).expect("layout");
        let mut c = c0;
        c.push(low);
        let r = leave_one_group_out(&[c], p);
        let d = r.folds.iter().find(|f| f.group == "d").expect("fold d");
        assert_eq!(d.threshold, 0.9);
        assert_eq!(d.held_out, Some(0.0));
        assert!(r.pooled < 100.0 && r.pooled > 70.0, "{}", r.pooled);
    }
}
