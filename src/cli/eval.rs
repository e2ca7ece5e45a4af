//! `hyflow eval`, two kinds of labels:
//! - NAB layout (a JSON object keyed by `category/file.csv`, windows as [start, end]
//!   timestamps): scores every row and reports NAB scores for the three profiles;
//! - hyflow's `FILE.labels.json` (a JSON array of {sensor, kind, start, end} in ms, as
//!   `hyflow gen` writes): replays the input and reports episode precision, recall, F1 and the
//!   median detection delay of the alert episodes.
//!
//! With NAB labels, `--cv category` cross-validates: the pipeline and every `--candidate`
//! score each file, and each NAB category is scored by the candidate and threshold chosen on
//! the other categories (`hyflow::tools::eval::cv`).

use anyhow::{Context, Result, bail};
use hyflow::plan;
use hyflow::tools::eval::cv::{Labelled, leave_one_group_out};
use hyflow::tools::eval::{PROFILES, ScoredFile, normalise, sweep};
use hyflow::tools::scoring::Timestamps;
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
    /// NAB labels: directory holding the labelled files (`category/file.csv`, or flat).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// hyflow labels: the input to replay (default: the pipeline's source path).
    #[arg(long)]
    input: Option<String>,
    /// Also write the per-row scores in the NAB results layout (what NAB's own scorer reads;
    /// timestamps as written in the data files).
    #[arg(long)]
    results_dir: Option<PathBuf>,
    /// Worker threads.
    #[arg(short = 'w', long, default_value_t = 1)]
    workers: usize,
    /// NAB labels: cross-validate instead of scoring in-sample. `category`: leave one NAB
    /// category out, choose among the pipeline and the `--candidate`s (and the threshold) on
    /// the others, score the one left out.
    #[arg(long, value_parser = ["category"])]
    cv: Option<String>,
    /// With --cv: another candidate pipeline (repeat for more).
    #[arg(long, requires = "cv")]
    candidate: Vec<PathBuf>,
}

pub fn run(a: EvalArgs) -> Result<ExitCode> {
    let p = plan::load(&a.pipeline)?;
    let text = std::fs::read_to_string(&a.labels)
        .with_context(|| format!("reading {}", a.labels.display()))?;
    if text.trim_start().starts_with('[') {
        return episodes(&a, p, &text);
    }
    let labels: std::collections::BTreeMap<String, Vec<(String, String)>> =
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: expected {{\"category/file.csv\": [[start, end], ...]}}",
                a.labels.display()
            )
        })?;
    // (label key, data file): every labelled file under --data-dir, or the one --input is.
    let mut inputs = Vec::new();
    match (&a.data_dir, &a.input) {
        (Some(dir), _) => {
            for key in labels.keys() {
                let nested = dir.join(key);
                let flat = dir.join(key.rsplit('/').next().unwrap_or(key));
                inputs.push((key.clone(), if nested.exists() { nested } else { flat }));
            }
        }
        (None, Some(input)) => {
            let input = std::path::PathBuf::from(input);
            let name = input.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let key = labels
                .keys()
                .find(|k| k.rsplit('/').next() == Some(name))
                .with_context(|| {
                    format!(
                        "{} has no windows for a file named {name:?}",
                        a.labels.display()
                    )
                })?;
            inputs.push((key.clone(), input.clone()));
        }
        (None, None) => {
            bail!("NAB labels need --data-dir DIR (every labelled file) or --input FILE")
        }
    }
    if a.cv.is_some() {
        return cross_validate(&a, p, &labels, &inputs);
    }
    let (files, n_windows) = nab_files(&a, &p, &labels, &inputs)?;
    let files: Vec<ScoredFile> = files.into_iter().map(|(_, f)| f).collect();
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

type NabLabels = std::collections::BTreeMap<String, Vec<(String, String)>>;

/// Leave-one-category-out cross-validation over the pipeline and the candidates.
fn cross_validate(
    a: &EvalArgs,
    p: plan::Plan,
    labels: &NabLabels,
    inputs: &[(String, PathBuf)],
) -> Result<ExitCode> {
    let mut names = vec![a.pipeline.display().to_string()];
    let mut pipelines = vec![p];
    for c in &a.candidate {
        names.push(c.display().to_string());
        pipelines.push(plan::load(c)?);
    }
    let mut candidates = Vec::new();
    for p in &pipelines {
        let (files, _) = nab_files(a, p, labels, inputs)?;
        candidates.push(
            files
                .into_iter()
                .map(|(key, file)| Labelled {
                    group: key.split('/').next().unwrap_or("").to_string(),
                    windows: labels[&key].len(),
                    file,
                })
                .collect::<Vec<_>>(),
        );
    }
    println!(
        "leave-one-category-out cross-validation over {} files, {} candidate(s):",
        inputs.len(),
        names.len()
    );
    for (i, n) in names.iter().enumerate() {
        println!("  [{i}] {n}");
    }
    for prof in &PROFILES {
        let r = leave_one_group_out(&candidates, prof);
        println!("{}: held-out (pooled) score {:.3}", prof.name, r.pooled);
        for f in &r.folds {
            println!(
                "  {:<24} chose [{}] thr {:>9} (score {:>6.1} on the others)  held out {}",
                f.group,
                f.chosen,
                if f.threshold.is_finite() {
                    format!("{:.6}", f.threshold)
                } else {
                    "none".into()
                },
                f.train,
                f.held_out.map_or_else(
                    || format!("(no window; raw {:.3})", f.raw),
                    |s| format!("{s:.1}")
                )
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Scores every labelled input with `p`: (label key, scored file) each, and the label windows.
fn nab_files(
    a: &EvalArgs,
    p: &plan::Plan,
    labels: &NabLabels,
    inputs: &[(String, PathBuf)],
) -> Result<(Vec<(String, ScoredFile)>, usize)> {
    let mut files = Vec::new();
    let mut n_windows = 0;
    for (key, input) in inputs {
        let windows = &labels[key];
        let (rows, _) = hyflow::tools::scoring::score_file(p, input, a.workers)
            .with_context(|| format!("scoring {}", input.display()))?;
        if let Some(dir) = &a.results_dir {
            hyflow::tools::scoring::write_csv(&dir.join(key), &rows, None, Timestamps::Input)?;
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
        files.push((key.clone(), f));
    }
    if files.is_empty() {
        bail!("{} lists no files", a.labels.display());
    }
    Ok((files, n_windows))
}

/// Episode-level evaluation of a replay against hyflow labels.
fn episodes(a: &EvalArgs, p: hyflow::plan::Plan, text: &str) -> Result<ExitCode> {
    use arrow_array::cast::AsArray;
    use hyflow::config::{OutputKind, SinkConfig};
    let labels: Vec<hyflow::tools::eval::SensorLabel> =
        serde_json::from_str(text).with_context(|| {
            format!(
                "{}: expected [{{\"sensor\", \"start\", \"end\"}}, ...]",
                a.labels.display()
            )
        })?;
    let tmp = hyflow::tools::scoring::scratch_dir("eval");
    let p = p.with_config(|c| {
        if let Some(input) = &a.input {
            c.set_input(input);
        }
        c.sink = vec![SinkConfig::internal_parquet(
            "alerts",
            OutputKind::Alerts,
            &tmp.join("alerts"),
        )];
        if c.registry.is_some() {
            c.sink.push(SinkConfig::internal_parquet(
                "incidents",
                OutputKind::Incidents,
                &tmp.join("incidents"),
            ));
        }
    })?;
    let units = units_of(&p);
    let (window_ms, slide_ms) = (p.window.size, p.window.slide);
    let p_delimiter = p.source.asset_delimiter.clone();
    let opts = hyflow::dataflow::RunOptions {
        workers: a.workers,
        cluster: None,
        until_end: false,
        metrics: None,
        ..Default::default()
    };
    let summary = hyflow::dataflow::run(std::sync::Arc::new(p), &opts)?;
    let mut opens = Vec::new();
    let mut events = Vec::new();
    for b in hyflow::tools::inspect::read(&tmp.join("alerts"))? {
        let sensor = b
            .column_by_name("sensor_id")
            .context("sensor_id")?
            .as_string::<i32>()
            .clone();
        let state = b
            .column_by_name("state")
            .context("state")?
            .as_string::<i32>()
            .clone();
        let end = b
            .column_by_name("window_end")
            .and_then(|c| hyflow::tools::inspect::millis(c.as_ref()))
            .context("window_end (a time column)")?;
        for i in 0..b.num_rows() {
            match state.value(i) {
                "open" => {
                    opens.push((sensor.value(i).to_string(), end[i]));
                    events.push((sensor.value(i).to_string(), end[i], true));
                }
                "resolved" => events.push((sensor.value(i).to_string(), end[i], false)),
                _ => {}
            }
        }
    }
    let found = if tmp.join("incidents").exists() {
        Some(found_incidents(&tmp.join("incidents"), &units)?)
    } else {
        None
    };
    let _ = std::fs::remove_dir_all(&tmp);
    let r = hyflow::tools::eval::episodes(&labels, &opens, window_ms, slide_ms);
    println!(
        "episodes for {} ({} rows, {} windows): {} labels, {} alert episodes",
        a.pipeline.display(),
        summary.rows_in,
        summary.windows,
        r.labels,
        opens.len()
    );
    print_report(&r);
    if let Some(d) = p_delimiter {
        let (asset_labels, asset_opens) = hyflow::tools::eval::by_asset(&labels, &events, &d);
        let r = hyflow::tools::eval::episodes(&asset_labels, &asset_opens, window_ms, slide_ms);
        println!(
            "by asset (asset-delimiter {d:?}; an asset's episode: from one of its sensors opening to none open): {} labels, {} episodes",
            r.labels,
            asset_opens.len()
        );
        print_report(&r);
    }
    let expected_path = a
        .labels
        .to_string_lossy()
        .strip_suffix(".labels.json")
        .map(|s| PathBuf::from(format!("{s}.incidents.json")));
    match (found, expected_path.filter(|p| p.exists())) {
        (Some(found), Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let expected: Vec<hyflow::tools::eval::incidents::ExpectedIncident> =
                serde_json::from_str(&text)
                    .with_context(|| format!("{}: expected incidents", path.display()))?;
            let r = hyflow::tools::eval::incidents::evaluate(&expected, &found, window_ms);
            println!(
                "incidents (against {}; members by registry asset): {} expected, {} found",
                path.display(),
                r.expected,
                r.found
            );
            println!(
                "  precision {:.3}  recall {:.3}  (found matching {}/{}, expected detected {}/{})",
                r.precision(),
                r.recall(),
                r.matching,
                r.found,
                r.detected,
                r.expected
            );
            println!(
                "  root cause right {}/{}; most upstream right {}/{}",
                r.root_right, r.detected, r.upstream_right, r.with_upstream
            );
        }
        (Some(found), None) => println!(
            "incidents: {} found (no FILE.incidents.json beside the labels to score them against)",
            found.len()
        ),
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Each registered sensor's asset (at the start), for comparing incidents by unit.
fn units_of(p: &hyflow::plan::Plan) -> std::collections::HashMap<String, String> {
    use hyflow::stages::registry::{Key, Value};
    let mut m = std::collections::HashMap::new();
    for c in p.registry.iter().flat_map(|r| r.changes.iter()) {
        if let (Key::Sensor(s), Some(Value::Sensor(e))) = (&c.key, &c.value)
            && c.time == i64::MIN
            && !e.asset.is_empty()
        {
            m.insert(s.clone(), e.asset.clone());
        }
    }
    m
}

/// The incidents of an `incidents` output, folded by id.
fn found_incidents(
    dir: &std::path::Path,
    units: &std::collections::HashMap<String, String>,
) -> Result<Vec<hyflow::tools::eval::incidents::FoundIncident>> {
    use arrow_array::cast::AsArray;
    use hyflow::tools::eval::incidents::{Event, fold};
    let batches = hyflow::tools::inspect::read(dir)?;
    let unit = |s: &str| units.get(s).cloned().unwrap_or_else(|| s.to_string());
    let mut events = Vec::new();
    for b in &batches {
        let s = |n: &str| -> Result<_> {
            Ok(b.column_by_name(n)
                .with_context(|| n.to_string())?
                .as_string::<i32>())
        };
        let i = |n: &str| -> Result<_> {
            b.column_by_name(n)
                .and_then(|c| hyflow::tools::inspect::millis(c.as_ref()))
                .with_context(|| format!("{n} (a time column)"))
        };
        let (id, members, root, up) = (
            s("incident_id")?,
            s("members")?,
            s("root_cause")?,
            s("upstream")?,
        );
        let (time, start) = (i("time")?, i("start")?);
        for k in 0..b.num_rows() {
            events.push(Event {
                id: id.value(k),
                time: time[k],
                start: start[k],
                members: members.value(k),
                root: root.value(k),
                upstream: up.value(k),
            });
        }
    }
    Ok(fold(events.into_iter(), &unit))
}

/// Precision, recall, F1, detected labels and the median delay of an episode report.
fn print_report(r: &hyflow::tools::eval::EpisodeReport) {
    println!(
        "  precision {:.3}  recall {:.3}  F1 {:.3}",
        r.precision(),
        r.recall(),
        r.f1()
    );
    println!(
        "  labels detected {}/{}, episodes outside labels {}",
        r.detected, r.labels, r.false_episodes
    );
    println!(
        "  labels detected while they last {}/{} (the others: in the window after their end)",
        r.detected_while_on, r.labels
    );
    match r.median_delay_windows {
        Some(d) => println!("  median detection delay {d:.1} windows"),
        None => println!("  median detection delay: nothing detected"),
    }
}
