//! The commands: the only place that prints for humans.
//!
//! Conventions every command follows (tests/it/cli_conventions.rs checks them on the help
//! texts): the pipeline is the first positional argument (after the mode of `bench-kafka`);
//! `--out` is a directory, `--out-file` a file; `-w/--workers` defaults to 1 (outputs do not
//! depend on it; more workers use more cores); `-q/--quiet` prints nothing but errors (what a
//! command exists to print, such as `cat`'s CSV, still goes to stdout); exit status 0 success,
//! 1 the command failed, 2 an invalid pipeline file, 64 a usage error.

mod bench;
mod bench_kafka;
mod checkpoint;
mod eval;
mod live;
mod replay;
mod score;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use hyflow::config;
use hyflow::plan;
use std::path::PathBuf;
use std::process::ExitCode;

/// hyflow: streaming sensor analytics on the CPU and the GPU.
#[derive(Parser)]
#[command(name = "hyflow", version, about)]
#[command(
    after_help = "Exit status: 0 success, 1 the command failed, 2 an invalid pipeline file, 64 a usage error."
)]
struct Cli {
    /// Print nothing but errors: no log lines below `error` (unless RUST_LOG says otherwise),
    /// no progress, notes or summaries. What a command exists to print (`cat`, `schema`,
    /// `explain`, `bench`, `eval`, `completions`) still goes to stdout.
    #[arg(short = 'q', long, global = true)]
    quiet: bool,
    /// Log lines as text (colours only on a terminal) or one JSON object per line, with the
    /// events' fields. Levels and targets follow RUST_LOG (e.g. `RUST_LOG=hyflow=debug`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (timestamp, level, fields, spans).
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Check pipeline files; prints every error with file:line:column and a hint.
    Validate {
        /// Pipeline files.
        #[arg(required = true, value_name = "PIPELINE")]
        pipelines: Vec<PathBuf>,
    },
    /// Replay the pipeline's input files (Parquet or CSV) as fast as the machine allows.
    Replay(replay::ReplayArgs),
    /// Run a pipeline on its Kafka topics until SIGINT/SIGTERM (or to their end with
    /// --until-end); offsets are committed once the outputs are complete.
    Run(live::RunArgs),
    /// Replay a fixture into a Kafka topic in a pipeline's message format.
    Produce(live::ProduceArgs),
    /// No infrastructure: an embedded Kafka broker, a fixture produced into it, the pipeline
    /// live, and its alerts printed as they arrive.
    Demo(live::DemoArgs),
    /// Checkpoints (`[recovery]`): inspect what one holds.
    #[command(subcommand)]
    Checkpoint(checkpoint::CheckpointCommand),
    /// Print the dataflow a pipeline builds: stages, exchanges, devices.
    Explain {
        /// Pipeline file.
        pipeline: PathBuf,
        /// Workers to explain for.
        #[arg(short = 'w', long, default_value_t = 1)]
        workers: usize,
    },
    /// Print the JSON Schema of pipeline files.
    Schema,
    /// Generate a fixture with labelled anomalies (Parquet with a `label` column +
    /// FILE.labels.json; `bench`, the benchmark's input, has no labels).
    Gen(GenArgs),
    /// Print an output (Parquet directory or file, Arrow IPC file) as CSV.
    Cat {
        /// Output path.
        path: PathBuf,
    },
    /// Measure replay throughput and peak memory on the benchmark workload.
    Bench(bench::BenchArgs),
    /// Measure live Kafka throughput, or event-to-alert latency at a fixed rate.
    BenchKafka(bench_kafka::BenchKafkaArgs),
    /// Score every input row: timestamp,value,anomaly_score (the NAB results layout).
    Score(score::ScoreArgs),
    /// Score labelled series (NAB layout) and report NAB-style scores for the three profiles.
    Eval(eval::EvalArgs),
    /// Run the `[[test]]` blocks of pipeline files; prints pass/fail and what differed.
    Test {
        /// Pipeline files.
        #[arg(required = true, value_name = "PIPELINE")]
        pipelines: Vec<PathBuf>,
    },
    /// Write one self-contained HTML report of a run's outputs: a summary, and per sensor its
    /// signal and scores over time with alert episodes shaded and rule firings marked.
    Report {
        /// The run's output directory (holding `windows`, and `alerts`, `rejects`, `late` when
        /// written): the replay's `--out DIR`.
        dir: PathBuf,
        /// Plot the sensors this glob matches (quote it: `--sensors 'm01-*'`); default: the
        /// sensors longest in alert.
        #[arg(long)]
        sensors: Option<String>,
        /// Only windows ending at or after this time (RFC 3339 or `YYYY-MM-DD`).
        #[arg(long)]
        from: Option<String>,
        /// Only windows ending before this time (RFC 3339 or `YYYY-MM-DD`).
        #[arg(long)]
        to: Option<String>,
        /// Plot at most this many sensors.
        #[arg(long, default_value_t = 12)]
        max_sensors: usize,
        /// The HTML file to write.
        #[arg(long)]
        out_file: PathBuf,
    },
    /// Print a shell completion script: `hyflow completions bash > /etc/bash_completion.d/hyflow`
    /// (zsh: into a directory of `$fpath` as `_hyflow`; fish: `~/.config/fish/completions/hyflow.fish`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum GenKind {
    /// Machines: temperature, vibration, current, pressure.
    Manufacturing,
    /// Loop detectors: flow, occupancy, speed.
    Traffic,
    /// The throughput benchmark's input: sensors at 10 Hz, no anomalies and no labels
    /// (docs/performance.md).
    Bench,
    /// Convert a NAB CSV series (give --input and --nab-windows).
    Nab,
}

#[derive(clap::Args)]
struct GenArgs {
    /// What to generate.
    kind: GenKind,
    /// Number of sensors.
    #[arg(long, default_value_t = 32)]
    sensors: usize,
    /// Duration, e.g. "30m", "7d".
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    duration: config::Duration,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output Parquet file (the labels go beside it as FILE.labels.json).
    #[arg(long)]
    out_file: PathBuf,
    /// Manufacturing: machines whose sensors share a load, with faults of 30 minutes or more
    /// (level shift, drift, broken relation, valve step) instead of the short ones.
    #[arg(long)]
    long_faults: bool,
    /// NAB: the CSV series.
    #[arg(long)]
    input: Option<PathBuf>,
    /// NAB: combined_windows.json.
    #[arg(long)]
    nab_windows: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<config::Duration, String> {
    config::duration::parse_duration(s)
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    // tests/it/docs_commands.rs: every command line shown in the docs is one hyflow takes.
    if std::env::var_os("HYFLOW_CHECK_ARGS").is_some() {
        println!("ok: the command line is valid (HYFLOW_CHECK_ARGS is set: nothing was run)");
        return ExitCode::SUCCESS;
    }
    init_logging(cli.log_format, cli.quiet);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            // An invalid pipeline file exits 2 in every command, as `validate` does.
            let invalid = e
                .chain()
                .any(|c| matches!(c.downcast_ref(), Some(config::ConfigError::Invalid(_))));
            ExitCode::from(if invalid { 2 } else { 1 })
        }
    }
}

/// Help and version go to stdout with status 0; a command line clap cannot read is a usage
/// error: its message on stderr and status 64 (EX_USAGE), never confused with a failed run (1)
/// or an invalid pipeline (2).
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let _ = e.print();
    // A file where no argument is expected is most often a glob the shell expanded.
    if e.kind() == ErrorKind::UnknownArgument
        && let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg)
        && !arg.starts_with('-')
        && std::path::Path::new(arg).exists()
    {
        eprintln!(
            "hint: {arg:?} is a file: if the shell expanded a glob (`*`) into several files, quote it (e.g. --input 'data/*.parquet') so that hyflow expands it"
        );
    }
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
        _ => ExitCode::from(64),
    }
}

fn init_logging(format: LogFormat, quiet: bool) {
    // RUST_LOG as everywhere in Rust (e.g. `RUST_LOG=debug`, `RUST_LOG=hyflow=debug`);
    // HYFLOW_LOG, the older name, when RUST_LOG is not set; else info (error with -q).
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_env("HYFLOW_LOG"))
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(if quiet { "error" } else { "info" })
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        // Colour codes only on a terminal, never in log files.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

fn run(cli: Cli) -> Result<ExitCode> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Validate { pipelines } => {
            let mut ok = true;
            for f in pipelines {
                match plan::load(&f) {
                    Ok(_) if quiet => {}
                    Ok(p) => println!(
                        "{}: ok ({} features, {} rules, {} sinks)",
                        f.display(),
                        p.features.len(),
                        p.rules.len(),
                        p.config.sink.len()
                    ),
                    Err(e) => {
                        ok = false;
                        eprintln!("{e}");
                    }
                }
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Replay(args) => replay::run(args, quiet),
        Command::Run(args) => live::run(args, quiet),
        Command::Produce(args) => live::produce_cmd(args, quiet),
        Command::Demo(args) => live::demo(args),
        Command::Checkpoint(c) => checkpoint::run(c),
        Command::Explain { pipeline, workers } => {
            let p = plan::load(&pipeline)?;
            print!("{}", hyflow::dataflow::explain::explain(&p, workers.max(1)));
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema => {
            let schema = schemars::schema_for!(config::PipelineConfig);
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Gen(a) => generate(a, quiet),
        Command::Cat { path } => {
            let batches = hyflow::tools::inspect::read(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            // A reader that stops early (`| head`) closes the pipe: that is not an error.
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            match out.write_all(hyflow::tools::inspect::to_csv(&batches).as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(ExitCode::SUCCESS),
            }
        }
        Command::Bench(a) => bench::run(a),
        Command::BenchKafka(a) => bench_kafka::run(a),
        Command::Score(a) => score::run(a, quiet),
        Command::Eval(a) => eval::run(a),
        Command::Test { pipelines } => {
            let scratch = hyflow::tools::scoring::scratch_dir("test");
            let (mut passed, mut failed) = (0, 0);
            for f in pipelines {
                let p = plan::load(&f)?;
                for o in hyflow::tools::pipeline_test::run_all(&p, &scratch)? {
                    if o.failures.is_empty() {
                        passed += 1;
                        if !quiet {
                            println!("{}: test {:?} ... ok", f.display(), o.name);
                        }
                    } else {
                        failed += 1;
                        println!("{}: test {:?} ... FAILED", f.display(), o.name);
                        for x in &o.failures {
                            println!("    {x}");
                        }
                    }
                }
            }
            let _ = std::fs::remove_dir_all(&scratch);
            if !quiet || failed > 0 {
                println!("{passed} passed, {failed} failed");
            }
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Report {
            dir,
            sensors,
            from,
            to,
            max_sensors,
            out_file,
        } => {
            let time = |flag: &str, v: Option<String>| -> Result<Option<i64>> {
                v.map(|s| {
                    hyflow::timefmt::parse_timestamp(&s).with_context(|| {
                        format!("--{flag} {s:?} is not a time (RFC 3339, or YYYY-MM-DD)")
                    })
                })
                .transpose()
            };
            let opts = hyflow::tools::report::Options {
                sensors: sensors
                    .map(|g| glob::Pattern::new(&g).with_context(|| format!("--sensors {g:?}")))
                    .transpose()?,
                from: time("from", from)?,
                to: time("to", to)?,
                max_sensors,
            };
            let r = hyflow::tools::report::build(&dir, &opts).map_err(anyhow::Error::msg)?;
            if r.windows == 0 {
                anyhow::bail!("{}: no window in the selected time range", dir.display());
            }
            let title = format!("hyflow report: {}", dir.display());
            std::fs::write(&out_file, hyflow::tools::report::html(&r, &title))
                .with_context(|| format!("writing {}", out_file.display()))?;
            if !quiet {
                println!(
                    "wrote {}: {} windows, {} alert episodes, {} sensor(s) plotted",
                    out_file.display(),
                    r.windows,
                    r.episode_count,
                    r.plotted.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "hyflow", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn generate(a: GenArgs, quiet: bool) -> Result<ExitCode> {
    use hyflow::tools::fixture;
    let ms = a.duration.ms;
    match a.kind {
        GenKind::Manufacturing if a.long_faults => fixture::write(
            fixture::long_faults::generate(a.sensors, ms, a.seed),
            &a.out_file,
        )?,
        GenKind::Manufacturing => fixture::write(
            fixture::manufacturing::generate(a.sensors, ms, a.seed),
            &a.out_file,
        )?,
        GenKind::Traffic => fixture::write(
            fixture::traffic::generate(a.sensors, ms, a.seed),
            &a.out_file,
        )?,
        GenKind::Bench => {
            let rows = fixture::bench::write(a.sensors, ms / 1000, a.seed, &a.out_file)?;
            if !quiet {
                println!("wrote {}: {rows} rows", a.out_file.display());
            }
            return Ok(ExitCode::SUCCESS);
        }
        GenKind::Nab => {
            let (Some(input), Some(windows)) = (a.input, a.nab_windows) else {
                anyhow::bail!(
                    "gen nab needs --input SERIES.csv and --nab-windows combined_windows.json"
                );
            };
            let key = format!(
                "{}/{}",
                input
                    .parent()
                    .and_then(|p| p.file_name())
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default(),
                input
                    .file_name()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default()
            );
            fixture::write(fixture::nab::convert(&input, &windows, &key)?, &a.out_file)?;
        }
    }
    if quiet {
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "wrote {} and {}",
        a.out_file.display(),
        a.out_file.with_extension("labels.json").display()
    );
    Ok(ExitCode::SUCCESS)
}
