//! `hyflow eval`: scores labelled series row by row through a pipeline and reports NAB-style
//! scores for the three profiles (the NAB corpus layout: a labels JSON keyed by
//! `category/file.csv`, windows as [start, end] timestamps).

use anyhow::{Context, Result, bail};
use hyflow::config;
use hyflow::eval::{PROFILES, ScoredFile, normalise, sweep};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `hyflow eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// Pipeline file.
    pipeline: PathBuf,
    /// NAB windows JSON (`combined_windows.json` or a subset).
    #[arg(long)]
    labels: PathBuf,
    /// Directory holding the labelled files (`category/file.csv`, or flat `file.csv`).
    #[arg(long)]
    data_dir: PathBuf,
    /// Also write the per-row scores in the NAB results layout (for ../shared/tools/nab_score.py).
    #[arg(long)]
    results_dir: Option<PathBuf>,
    /// Worker threads.
    #[arg(short = 'w', long, default_value_t = 1)]
    workers: usize,
}

pub fn run(a: EvalArgs) -> Result<ExitCode> {
    let p = config::load(&a.pipeline)?;
    let text = std::fs::read_to_string(&a.labels)
        .with_context(|| format!("reading {}", a.labels.display()))?;
    let labels: std::collections::BTreeMap<String, Vec<(String, String)>> =
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: expected {{\"category/file.csv\": [[start, end], ...]}}",
                a.labels.display()
            )
        })?;
    let mut files = Vec::new();
    let mut n_windows = 0;
    for (key, windows) in &labels {
        let nested = a.data_dir.join(key);
        let flat = a.data_dir.join(key.rsplit('/').next().unwrap_or(key));
        let input = if nested.exists() { nested } else { flat };
        let (rows, _) = hyflow::scoring::score_file(&p, &input, a.workers)
            .with_context(|| format!("scoring {}", input.display()))?;
        if let Some(dir) = &a.results_dir {
            hyflow::scoring::write_csv(&dir.join(key), &rows)?;
        }
        let times: Vec<i64> = rows
            .iter()
            .map(|r| {
                r.time.with_context(|| {
                    format!(
                        "{}: unreadable timestamp {:?}",
                        input.display(),
                        r.timestamp
                    )
                })
            })
            .collect::<Result<_>>()?;
        let mut spans = Vec::new();
        for (s, e) in windows {
            let parse = |t: &str| {
                hyflow::timefmt::parse_timestamp(t)
                    .with_context(|| format!("{key}: bad window time {t:?}"))
            };
            spans.push((parse(s)?, parse(e)?));
        }
        n_windows += windows.len();
        let f = ScoredFile::new(&times, rows.iter().map(|r| r.score).collect(), &spans)
            .map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
        files.push(f);
    }
    if files.is_empty() {
        bail!("{} lists no files", a.labels.display());
    }
    println!(
        "NAB scores for {} ({} files, {n_windows} windows)",
        a.pipeline.display(),
        files.len()
    );
    println!(
        "{:<20} {:>8} {:>11} {:>11} {:>9} {:>8}",
        "profile", "score", "raw", "threshold", "win_det", "fp_rows"
    );
    for prof in &PROFILES {
        let (thr, raw) = sweep(&files, prof);
        let score = normalise(raw, &files, n_windows, prof);
        let (det, fp) = files
            .iter()
            .map(|f| f.counts(thr))
            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
        let live: usize = files.iter().map(ScoredFile::live_windows).sum();
        let thr = if thr.is_finite() {
            format!("{thr:.6}")
        } else {
            "none".into()
        };
        println!(
            "{:<20} {:>8.3} {:>11.4} {:>11} {:>9} {:>8}",
            prof.name,
            score,
            raw,
            thr,
            format!("{det}/{live}"),
            fp
        );
    }
    Ok(ExitCode::SUCCESS)
}
