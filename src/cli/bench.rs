//! `hyflow bench`: end-to-end replay throughput and peak memory on the benchmark workload
//! (../shared/bench/WORKLOAD.md), plus the source stage alone.

use anyhow::{Context, Result};
use hyflow::dataflow::{self, RunOptions};
use hyflow::plan;
use hyflow::stages::source::{Decoder, Partition, parquet::ParquetFile};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// Arguments of `hyflow bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// The benchmark pipeline.
    #[arg(default_value = "pipelines/bench.toml")]
    pipeline: PathBuf,
    /// Input Parquet (default: generated into target/bench/ once).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Sensors of the generated input.
    #[arg(long, default_value_t = 1000)]
    sensors: usize,
    /// Seconds of the generated input (1000 s × 1000 sensors × 10 Hz = 10 M readings).
    #[arg(long, default_value_t = 1000)]
    seconds: i64,
    /// Worker threads.
    #[arg(short = 'w', long, default_value_t = 1)]
    workers: usize,
    /// Compute device instead of the pipeline's `[compute] device` (`auto`, `cpu`, `cuda:N`).
    #[arg(long)]
    device: Option<String>,
    /// Timed runs (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Serve `/metrics` while running (a port on 127.0.0.1, or HOST:PORT), to measure what
    /// the endpoint costs.
    #[arg(long, value_name = "ADDR", value_parser = hyflow::events::endpoint::parse_addr)]
    metrics: Option<std::net::SocketAddr>,
}

fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The generated benchmark input for `sensors` × `seconds` (generated once into target/bench/).
pub fn ensure_input(sensors: usize, seconds: i64) -> Result<PathBuf> {
    let p = PathBuf::from(format!(
        "target/bench/readings_{sensors}x{seconds}s.parquet"
    ));
    if !p.exists() {
        eprintln!("generating {} ...", p.display());
        hyflow::tools::fixture::bench::write(sensors, seconds, 42, &p)?;
    }
    Ok(p)
}

pub fn run(a: BenchArgs) -> Result<ExitCode> {
    let input = match a.input {
        Some(p) => p,
        None => ensure_input(a.sensors, a.seconds)?,
    };
    if let Some(d) = &a.device {
        plan::device_option(d).map_err(anyhow::Error::msg)?;
    }
    let out = tempdir()?;
    let pipeline = plan::load_with(&a.pipeline, |c| {
        if let Some(d) = &a.device {
            c.set_device(d);
        }
        c.set_input(&input.display().to_string());
        c.set_out_dir(&out);
    })?;
    let pipeline = Arc::new(pipeline);
    let rss_before = peak_rss_mib();

    // Source stage alone: decode + clean + route, one thread.
    let src = &pipeline.source;
    let t = Instant::now();
    let file = Arc::new(ParquetFile::open(
        &input,
        &src.columns,
        src.time_unit,
        &pipeline.zone,
        pipeline.time_range,
    )?);
    let mut rows = 0u64;
    for mut part in file.partitions(src.batch_rows, src.split_row_groups) {
        let mut dec = Decoder::new(pipeline.clone(), a.workers, part.watermark_seed());
        while let Some(b) = part.next_batch() {
            let (first, b) = b?;
            rows += b.num_rows() as u64;
            let _ = dec.decode(part.name(), first, &b, i64::MIN);
        }
    }
    let source_secs = t.elapsed().as_secs_f64();

    let mut secs = Vec::new();
    let mut last = None;
    for run in 0..a.runs.max(1) {
        let opts = RunOptions {
            workers: a.workers,
            cluster: None,
            until_end: false,
            metrics: a.metrics,
            ..Default::default()
        };
        let s = dataflow::run(pipeline.clone(), &opts).with_context(|| format!("run {run}"))?;
        eprintln!(
            "run {}: {:.3} s, {:.2} M rows/s",
            run + 1,
            s.elapsed.as_secs_f64(),
            s.rows_per_sec() / 1e6
        );
        secs.push(s.elapsed.as_secs_f64());
        last = Some(s);
    }
    secs.sort_by(f64::total_cmp);
    let median = secs[secs.len() / 2];
    let s = last.context("no run")?;
    println!(
        "hyflow bench: {} ({} rows), pipeline {}, {} worker(s), {} run(s)",
        input.display(),
        s.rows_in,
        a.pipeline.display(),
        a.workers,
        secs.len()
    );
    println!(
        "  end to end  median {:.3} s  = {:.2} M readings/s  (windows {}, alert events {})",
        median,
        s.rows_in as f64 / median / 1e6,
        s.windows,
        s.alert_events
    );
    println!(
        "  source only {:.3} s  = {:.2} M readings/s  (one thread: parquet decode, clean, route)",
        source_secs,
        rows as f64 / source_secs / 1e6
    );
    super::replay::print_cost_report(&s);
    match (rss_before, peak_rss_mib()) {
        (Some(b), Some(p)) => println!("  peak RSS    {p:.0} MiB (before runs {b:.0} MiB)"),
        _ => println!("  peak RSS    unavailable (no /proc/self/status)"),
    }
    let _ = std::fs::remove_dir_all(&out);
    Ok(ExitCode::SUCCESS)
}

fn tempdir() -> Result<PathBuf> {
    let p = std::env::temp_dir().join(format!("hyflow-bench-{}", std::process::id()));
    std::fs::create_dir_all(&p)?;
    Ok(p)
}
