//! `hyflow replay`: runs a pipeline over its Parquet input with a progress bar on a terminal
//! (plain log lines otherwise) and a summary at the end.

use anyhow::Result;
use hyflow::dataflow::{self, RunOptions, Summary};
use hyflow::energy::GpuEnergy;
use hyflow::plan;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `hyflow replay`.
#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Pipeline file.
    pipeline: PathBuf,
    /// Change one setting of the pipeline before it is validated: KEY.PATH=VALUE, e.g.
    /// `--set window.size=30s` or `--set source.kafka.brokers=kafka:9092` (the value is TOML,
    /// or else a string). May be given several times.
    #[arg(long = "set", value_name = "KEY.PATH=VALUE", value_parser = hyflow::config::set::parse_set)]
    set: Vec<(String, String)>,
    /// Input file or glob instead of the pipeline's.
    #[arg(long)]
    input: Option<String>,
    /// Write sink NAME to DIR/NAME instead of the configured paths.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Worker threads.
    #[arg(short = 'w', long, default_value_t = 1)]
    workers: usize,
    /// Compute device instead of the pipeline's `[compute] device` (`auto`, `cpu`, `cuda:N`).
    #[arg(long)]
    device: Option<String>,
    /// Cluster: a file listing every process's `host:port`, one per line (the same file for
    /// all processes). Every process reads the inputs; process 0 writes the outputs.
    #[arg(long, requires = "process")]
    hosts: Option<PathBuf>,
    /// Cluster: this process's index in the hosts file.
    #[arg(long, requires = "hosts")]
    process: Option<usize>,
    /// Write the pipeline's Kafka sinks to their brokers too. Without it, a replay writes
    /// each Kafka sink as a Parquet sink beside the others (and says where): replaying a live
    /// pipeline must not publish to a production topic by accident.
    #[arg(long)]
    kafka_sinks: bool,
    /// Succeed even when no window was computed from a non-empty input (every row rejected,
    /// late or dropped); without it such a run exits with status 1.
    #[arg(long)]
    allow_empty: bool,
    /// Serve Prometheus metrics (`/metrics`, OpenMetrics text) and `/health` while running:
    /// a port (on 127.0.0.1) or HOST:PORT; another interface only when named. See
    /// docs/observability.md.
    #[arg(long, value_name = "ADDR", value_parser = hyflow::events::endpoint::parse_addr)]
    metrics: Option<std::net::SocketAddr>,
    /// Go on from the newest checkpoint in the pipeline's `[recovery]` directory (taken by
    /// the same pipeline, with as many workers) instead of starting over: the outputs then
    /// hold exactly the rows of a replay that was never stopped. Without a checkpoint yet,
    /// starts from the beginning.
    #[arg(long)]
    resume: bool,
    /// With --resume: also go on from a checkpoint of another version of the pipeline when
    /// only its rules or `[compute]` changed (they keep no state); any other change is
    /// refused, naming the settings that differ.
    #[arg(long, requires = "resume")]
    from_checkpoint: bool,
}

pub fn run(a: ReplayArgs, quiet: bool) -> Result<ExitCode> {
    if let Some(d) = &a.device {
        plan::device_option(d).map_err(anyhow::Error::msg)?;
    }
    // The overrides change the file before it is validated.
    let mut redirected = Vec::new();
    let pipeline = plan::load_with_sets(&a.pipeline, &a.set, |c| {
        if let Some(d) = &a.device {
            c.set_device(d);
        }
        if !a.kafka_sinks {
            redirected = c.redirect_kafka_sinks();
        }
        if let Some(input) = &a.input {
            c.set_input(input);
        }
        if let Some(dir) = &a.out {
            c.set_out_dir(dir);
        }
    })?;
    if let plan::Feed::Kafka(_) = pipeline.source.feed {
        anyhow::bail!(
            "{}: this pipeline reads Kafka, and a replay reads files: give --input FILE (Parquet or CSV), or use `hyflow run` to read the topics",
            a.pipeline.display()
        );
    }
    for (name, _) in redirected.into_iter().filter(|_| !quiet) {
        let Some(plan::SinkTarget::Parquet(t)) = pipeline
            .sinks
            .iter()
            .find(|s| s.name == name)
            .map(|s| &s.target)
        else {
            continue;
        };
        eprintln!(
            "note: Kafka sink {name:?} is written to {} (Parquet) in this replay; pass --kafka-sinks to publish to its topic",
            t.dir.display()
        );
    }
    let pipeline = Arc::new(pipeline);
    let cluster = cluster_of(a.hosts.as_deref(), a.process)?;
    let resume = if a.resume {
        super::checkpoint::choose(&pipeline, &a.pipeline, a.from_checkpoint, quiet)?
    } else {
        None
    };
    let checkpoints = pipeline
        .recovery
        .as_ref()
        .map(dataflow::checkpoint::CheckpointOptions::of);
    let opts = RunOptions {
        workers: a.workers,
        cluster,
        until_end: false,
        metrics: a.metrics,
        checkpoints,
        resume,
    };
    let running = dataflow::start(pipeline.clone(), &opts)?;
    let total = running.total_rows;
    let tty = std::io::stderr().is_terminal() && !quiet;
    let bar = tty.then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {human_pos}/{human_len} rows  {msg}  ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let started = Instant::now();
    let mut last_log = Instant::now();
    let mut last_draw = Instant::now();
    while !quiet && !running.is_done() {
        std::thread::sleep(Duration::from_millis(5));
        if last_draw.elapsed() < Duration::from_millis(100) {
            continue;
        }
        last_draw = Instant::now();
        let counts = running.counts();
        let rows = counts.rows_in;
        if let Some(b) = &bar {
            b.set_position(rows);
            b.set_message(format!(
                "{:.1} M rows/s  {} windows",
                rows as f64 / started.elapsed().as_secs_f64().max(1e-9) / 1e6,
                counts.windows
            ));
        } else if !quiet && last_log.elapsed() > Duration::from_secs(5) {
            last_log = Instant::now();
            let rate = rows as f64 / started.elapsed().as_secs_f64();
            tracing::info!("{rows}/{total} rows, {rate:.0} rows/s");
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let summary = running.wait()?;
    if !quiet {
        print_summary(&pipeline.name, &summary);
    }
    verdict(&summary, opts.cluster.is_some(), a.allow_empty)
}

/// A finished run's exit status: failure when its counts do not add up (one process's counts
/// only add up within a single-process run: a cluster exchanges readings between processes),
/// or when it kept nothing from a non-empty input and `allow_empty` is not set.
pub fn verdict(s: &Summary, cluster: bool, allow_empty: bool) -> Result<ExitCode> {
    if !cluster {
        s.check_accounting().map_err(anyhow::Error::msg)?;
    }
    if let Some(why) = s.kept_nothing().filter(|_| !allow_empty && !cluster) {
        anyhow::bail!("{why}; the run is failed (pass --allow-empty if this is expected)");
    }
    Ok(ExitCode::SUCCESS)
}

/// The cluster a `--hosts FILE --process I` pair describes (None without them).
pub fn cluster_of(
    hosts: Option<&std::path::Path>,
    process: Option<usize>,
) -> Result<Option<(usize, Vec<String>)>> {
    let (Some(file), Some(process)) = (hosts, process) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("reading hosts file {}: {e}", file.display()))?;
    let addresses: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if process >= addresses.len() {
        anyhow::bail!(
            "--process {process} but {} lists {} process(es)",
            file.display(),
            addresses.len()
        );
    }
    Ok(Some((process, addresses)))
}

pub fn print_summary(name: &str, s: &Summary) {
    let what = if s.live {
        format!("read {} Kafka partition(s)", s.files_in)
    } else {
        format!("replayed {} file(s)", s.files_in)
    };
    println!(
        "pipeline {name}: {what} in {:.2} s",
        s.elapsed.as_secs_f64()
    );
    println!(
        "  rows in      {:>12}  ({:.2} M rows/s)",
        s.rows_in,
        s.rows_per_sec() / 1e6
    );
    println!("  windowed     {:>12}", s.windowed());
    println!("  rejected     {:>12}", s.rejected);
    for (kind, n) in &s.rejected_by {
        println!("    {:<22} {n:>8}", kind.label());
    }
    println!("  dropped      {:>12}", s.dropped);
    println!("  late         {:>12}", s.late);
    println!("  windows      {:>12}", s.windows);
    if s.windows_unregistered > 0 {
        println!(
            "  windows refused {:>9}  (sensors the registry does not hold; in the rejects output)",
            s.windows_unregistered
        );
    }
    println!("  alert events {:>12}", s.alert_events);
    if s.rebaselines > 0 {
        println!(
            "  re-baselined {:>12}  (lasting shifts accepted as normal)",
            s.rebaselines
        );
    }
    if let Some(at) = s.stopped_at {
        let cut = hyflow::checkpoint::cut_text(at);
        println!(
            "  stopped at a checkpoint ({cut}): its open windows are in it, and what was read after the cut is read again by the next run"
        );
        if let Some(n) = s.read_again {
            println!("  read again   {n:>12}  (messages after the cut, among the rows in)");
        }
    }
    for (sink, files) in &s.outputs {
        let shown: Vec<String> = files
            .iter()
            .take(3)
            .map(|f| f.display().to_string())
            .collect();
        let more = if files.len() > 3 {
            format!(" (+{} more)", files.len() - 3)
        } else {
            String::new()
        };
        println!("  sink {sink}: {}{more}", shown.join(", "));
    }
    print_cost_report(s);
}

/// The cost report: per compute engine, batches, values, busy time, cross-check, and energy
/// where the hardware exposes it (absent counters say so).
pub fn print_cost_report(s: &Summary) {
    println!("  compute engines:");
    for e in &s.engines {
        let check = if e.cross_checked > 0 {
            format!(
                ", cross-checked {} (max diff {:.1e} rel, {:.1e} abs)",
                e.cross_checked, e.max_rel_diff, e.max_abs_diff
            )
        } else {
            String::new()
        };
        let errors = if e.errors > 0 {
            format!(", {} failed (recomputed on the CPU)", e.errors)
        } else {
            String::new()
        };
        let spilled = if e.spilled > 0 {
            format!(", {} sent to the CPU instead (queue full)", e.spilled)
        } else {
            String::new()
        };
        println!(
            "    {:<8} {} batches, {} windows, {} values, busy {:.3} s{spilled}{errors}{check}",
            e.name, e.batches, e.windows, e.values, e.busy_secs
        );
    }
    println!("  {}", energy_line(s));
}

/// The cost report's energy line: each counter, absent ones said to be absent, and joules per
/// million readings of the engine that computed them.
fn energy_line(s: &Summary) -> String {
    let per_million = |j: f64, readings: u64| j / (readings.max(1) as f64 / 1e6);
    let cpu = match s.cpu_joules {
        Some(j) => format!(
            "CPU package {j:.1} J = {:.2} J per million readings (RAPL)",
            per_million(j, s.rows_in)
        ),
        None => "CPU counter absent (RAPL not readable here)".to_string(),
    };
    let gpu = match &s.gpu_energy {
        GpuEnergy::NotUsed => "no GPU used".to_string(),
        GpuEnergy::Absent(why) => format!("GPU counter absent ({why})"),
        GpuEnergy::Measured { ordinal, joules } => {
            let on_gpu: u64 = s
                .engines
                .iter()
                .filter(|e| e.name == format!("cuda:{ordinal}"))
                .map(|e| e.values)
                .sum();
            let detectors = s
                .engines
                .iter()
                .any(|e| e.name == format!("cuda:{ordinal} detectors") && e.batches > 0);
            if on_gpu == 0 {
                let only = if detectors {
                    " (only detectors ran there)"
                } else {
                    ""
                };
                format!(
                    "GPU cuda:{ordinal} {joules:.1} J, no readings' features computed on it{only} (NVML, whole device)"
                )
            } else {
                format!(
                    "GPU cuda:{ordinal} {joules:.1} J = {:.2} J per million readings it computed (NVML, whole device)",
                    per_million(*joules, on_gpu)
                )
            }
        }
    };
    format!("energy: {cpu}; {gpu}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyflow::compute::cost::EngineReport;

    fn engine(name: &str, batches: u64, values: u64) -> EngineReport {
        EngineReport {
            name: name.into(),
            batches,
            values,
            ..Default::default()
        }
    }

    #[test]
    fn a_live_run_stopped_at_a_checkpoint_before_its_first_window_kept_its_rows() {
        let mut s = Summary {
            rows_in: 120,
            accepted: 120,
            live: true,
            ..Default::default()
        };
        // Flushed at the end, no window from 120 rows is a loss; kept open in the last
        // checkpoint, it is not.
        assert!(verdict(&s, false, false).is_err());
        s.stopped_at = Some(1_700_000_000_000);
        assert!(verdict(&s, false, false).is_ok());
        // Every row rejected is a failure either way.
        s.rejected = 120;
        s.accepted = 0;
        s.rejected_by = vec![(hyflow::batch::RejectKind::TimeOutOfRange, 120)];
        assert!(verdict(&s, false, false).is_err());
    }

    #[test]
    fn the_energy_line_counts_only_what_the_gpu_computed() {
        let mut s = Summary {
            rows_in: 2_000_000,
            ..Default::default()
        };
        assert!(
            energy_line(&s).contains("CPU counter absent"),
            "{}",
            energy_line(&s)
        );
        assert!(energy_line(&s).ends_with("no GPU used"));
        s.gpu_energy = GpuEnergy::Measured {
            ordinal: 0,
            joules: 50.0,
        };
        s.engines = vec![engine("cpu", 4, 1_000_000), engine("cuda:0", 4, 500_000)];
        assert!(
            energy_line(&s).contains("50.0 J = 100.00 J per million readings it computed"),
            "{}",
            energy_line(&s)
        );
        // Features all on the CPU, detectors on the GPU: no per-reading figure.
        s.engines = vec![
            engine("cpu", 8, 2_000_000),
            engine("cuda:0 detectors", 8, 40),
        ];
        let line = energy_line(&s);
        assert!(
            line.contains("no readings' features computed on it (only detectors ran there)")
                && !line.contains("per million readings it"),
            "{line}"
        );
    }
}
