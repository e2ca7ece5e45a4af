//! The live commands: `hyflow run` (a pipeline on its Kafka topics until SIGINT/SIGTERM, or to
//! the current end with `--until-end`), `hyflow produce` (a fixture into a topic) and
//! `hyflow demo` (all of it against an embedded broker, no infrastructure).

use anyhow::{Context, Result, bail};
use hyflow::config::{ColumnMapping, MessageFormat, TimeUnit};
use hyflow::dataflow::{self, RunOptions, Running};
use hyflow::plan;
use hyflow::plan::Plan;
use hyflow::stages::sink::kafka::Producer;
use hyflow::tools::fixture::produce::{Pace, ProduceSpec, produce};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Arguments of `hyflow run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Pipeline file (a `kind = "kafka"` source).
    pipeline: PathBuf,
    /// Change one setting of the pipeline before it is validated: KEY.PATH=VALUE, e.g.
    /// `--set window.size=30s` or `--set source.kafka.brokers=kafka:9092` (the value is TOML,
    /// or else a string). May be given several times.
    #[arg(long = "set", value_name = "KEY.PATH=VALUE", value_parser = hyflow::config::set::parse_set)]
    set: Vec<(String, String)>,
    /// Worker threads.
    #[arg(short = 'w', long, default_value_t = 1)]
    workers: usize,
    /// Write sink NAME to DIR/NAME instead of the configured paths.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Stop at the end offsets the partitions have now, instead of running until stopped.
    #[arg(long)]
    until_end: bool,
    /// Go on from the newest checkpoint also when it was taken by another version of the
    /// pipeline, if only its rules or `[compute]` changed (they keep no state); any other
    /// change is refused, naming the settings that differ. Without it, a changed pipeline
    /// starts afresh from the committed offsets.
    #[arg(long)]
    from_checkpoint: bool,
    /// Cluster: a file listing every process's `host:port`, one per line (the same file for
    /// all processes). Partitions are dealt over all workers of all processes; process 0
    /// writes the outputs.
    #[arg(long, requires = "process")]
    hosts: Option<PathBuf>,
    /// Cluster: this process's index in the hosts file.
    #[arg(long, requires = "hosts")]
    process: Option<usize>,
    /// Succeed even when no window was computed from the readings read (every one rejected,
    /// late or dropped); without it such a run exits with status 1.
    #[arg(long)]
    allow_empty: bool,
    /// After SIGINT/SIGTERM, how long to let in-flight work finish before exiting anyway
    /// (status 1; offsets past the last durable outputs stay uncommitted, so nothing is
    /// lost). A second signal exits at once.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    stop_timeout: Duration,
    /// Serve Prometheus metrics (`/metrics`, OpenMetrics text) and `/health` while running:
    /// a port (on 127.0.0.1) or HOST:PORT; another interface only when named. See
    /// docs/observability.md.
    #[arg(long, value_name = "ADDR", value_parser = hyflow::events::endpoint::parse_addr)]
    metrics: Option<std::net::SocketAddr>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    hyflow::config::duration::parse_duration(s).and_then(|d| {
        u64::try_from(d.ms)
            .map(Duration::from_millis)
            .map_err(|_| "a duration must not be negative".into())
    })
}

/// SIGINT/SIGTERM and SIGHUP, as flags: installed before a run starts, so that a signal that
/// comes while it starts stops it cleanly too (rather than by the default action).
struct Signals {
    stop: Arc<AtomicBool>,
    hangup: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        for s in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(s, stop.clone()).context("installing a signal handler")?;
        }
        // SIGHUP asks for the pipeline file to be read again. Switching to it without losing
        // state is not built: the run says so and goes on with the pipeline it started with
        // (SIGHUP's default action ended it, status 129, with unfinished `.tmp` parts left
        // behind).
        let hangup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, hangup.clone())
            .context("installing a signal handler")?;
        Ok(Self { stop, hangup })
    }
}

/// `hyflow run`.
pub fn run(a: RunArgs, quiet: bool) -> Result<ExitCode> {
    let signals = Signals::install()?;
    let pipeline = Arc::new(plan::load_with_sets(&a.pipeline, &a.set, |c| {
        if let Some(dir) = &a.out {
            c.set_out_dir(dir);
        }
    })?);
    if !matches!(pipeline.source.feed, plan::Feed::Kafka(_)) {
        bail!(
            "{}: `hyflow run` reads Kafka; this pipeline's source is a file (use `hyflow replay`)",
            a.pipeline.display()
        );
    }
    let cluster = super::replay::cluster_of(a.hosts.as_deref(), a.process)?;
    let mut pipeline =
        super::checkpoint::with_default_checkpoints(pipeline, cluster.is_some(), a.until_end)?;
    // With checkpoints, a run goes on from the newest checkpoint of the same pipeline.
    let mut resume =
        super::checkpoint::choose_live(&pipeline, &a.pipeline, a.from_checkpoint, quiet)?;
    let reload = super::checkpoint::Reload {
        file: &a.pipeline,
        sets: &a.set,
        out: a.out.as_deref(),
        until_end: a.until_end,
        cluster: cluster.is_some(),
    };
    loop {
        let checkpoints = pipeline
            .recovery
            .as_ref()
            .map(dataflow::checkpoint::CheckpointOptions::of);
        let opts = RunOptions {
            workers: a.workers,
            until_end: a.until_end,
            metrics: a.metrics,
            cluster: cluster.clone(),
            checkpoints,
            resume,
        };
        let running = dataflow::start(pipeline.clone(), &opts)?;
        let watched = watch(
            running,
            &pipeline,
            &signals,
            None,
            Some(&reload),
            a.stop_timeout,
            quiet,
        )?;
        let Some(next) = watched.switch_to else {
            return super::replay::verdict(&watched.summary, cluster.is_some(), a.allow_empty);
        };
        // The run stopped at a last checkpoint; the changed pipeline goes on from it.
        let dir = &next.recovery.as_ref().expect("checked by Reload").dir;
        let (found, bad) = hyflow::checkpoint::latest(dir);
        for e in &bad {
            eprintln!("warning: {e}; trying an older checkpoint");
        }
        let taken = found.as_ref().map(|(_, c)| (c.id, c.at));
        if let Some(older) = after_switch(watched.summary.stopped_at, taken, dir)? {
            eprintln!("warning: {older}");
        }
        resume = found.map(|(_, c)| Arc::new(c));
        tracing::info!(
            "SIGHUP: switched to the changed pipeline at checkpoint {} ({} readings before the switch; the summary at the end counts those after it)",
            resume.as_ref().map_or(0, |c| c.id),
            watched.summary.rows_in
        );
        pipeline = next;
    }
}

/// Checks the checkpoint a run switching pipelines goes on from (`taken`: the newest readable
/// one in `dir`, its id and cut) against the cut the stopped run ended at (`stopped_at`).
/// None: it is that one (or the run ended without one, and its outputs are complete). A
/// warning: an older one, since the newer could not be read (correct: the outputs after it
/// are replaced and what was read since is read again). An error: none at all, where going on
/// would start from the committed offsets without the open windows the checkpoint held.
fn after_switch(
    stopped_at: Option<i64>,
    taken: Option<(u64, i64)>,
    dir: &std::path::Path,
) -> Result<Option<String>> {
    let Some(cut) = stopped_at else {
        return Ok(None);
    };
    // (A run that stopped before its first cut stands at the checkpoint of its start.)
    let cut_text = hyflow::checkpoint::cut_text(cut);
    match taken {
        None => bail!(
            "SIGHUP: the run stopped at a checkpoint ({cut_text}) to switch pipelines, and no checkpoint in {} can be read now: not going on without its open windows (the offsets committed are the checkpoint's; start again once the checkpoint directory is readable)",
            dir.display()
        ),
        Some((_, at)) if at == cut => Ok(None),
        Some((id, at)) => Ok(Some(format!(
            "SIGHUP: the checkpoint taken to switch pipelines ({cut_text}) cannot be read; going on from the older checkpoint {id} ({}): what was read since is read again",
            hyflow::checkpoint::cut_text(at)
        ))),
    }
}

/// How [`watch`] ended: the run's summary, and the pipeline to go on with after a SIGHUP.
struct Watched {
    summary: hyflow::dataflow::Summary,
    switch_to: Option<Arc<Plan>>,
}

/// Waits for a run, logging progress every few seconds; SIGINT or SIGTERM (or `stop`) asks
/// it to stop cleanly, and a run that has not stopped `grace` later (or at a second signal)
/// ends the process with status 1: a busy or stuck dataflow cannot make a signal go unheard.
/// SIGHUP reads the pipeline file again (`reload`): when the run can switch to it without
/// losing state, the run stops at a last checkpoint and [`Watched::switch_to`] says what to go
/// on with; otherwise the run goes on and the log says why. Prints the summary unless `quiet`
/// or switching.
fn watch(
    running: Running,
    pipeline: &Plan,
    signals: &Signals,
    stop: Option<&AtomicBool>,
    reload: Option<&super::checkpoint::Reload<'_>>,
    grace: Duration,
    quiet: bool,
) -> Result<Watched> {
    let Signals {
        stop: signal,
        hangup,
    } = signals;
    let started = Instant::now();
    let mut last = Instant::now();
    let mut asked: Option<Instant> = None;
    let mut switch_to = None;
    while !running.is_done() {
        std::thread::sleep(Duration::from_millis(20));
        let signalled = signal.swap(false, Ordering::Relaxed);
        if hangup.swap(false, Ordering::Relaxed) && asked.is_none() {
            let keep = "the run goes on with the pipeline it started with";
            match reload.map(|r| r.check(pipeline)) {
                None => tracing::warn!("SIGHUP: this command does not reload its pipeline; {keep}"),
                Some(Ok(None)) => {
                    tracing::info!("SIGHUP: the pipeline file has not changed; {keep}")
                }
                Some(Err(why)) => tracing::warn!("SIGHUP: not switching: {why}; {keep}"),
                Some(Ok(Some(next))) => {
                    tracing::info!(
                        "SIGHUP: switching to the changed pipeline: taking a checkpoint, then going on from it"
                    );
                    switch_to = Some(next);
                    asked = Some(Instant::now());
                    running.request_stop();
                }
            }
        }
        let wanted = signalled || stop.is_some_and(|s| s.load(Ordering::Relaxed));
        if signalled && switch_to.is_some() {
            // A stop asked while switching: stop there, and do not go on.
            switch_to = None;
            continue;
        }
        if let Some(at) = asked
            && (signalled || at.elapsed() > grace)
        {
            let why = if signalled {
                "a second signal".to_string()
            } else {
                format!("{:.0} s after the stop was asked", grace.as_secs_f64())
            };
            eprintln!(
                "error: the run did not finish its in-flight work; exiting at {why} (offsets past the last durable outputs are not committed: the next run reads them again)"
            );
            std::process::exit(1);
        }
        if wanted && asked.is_none() {
            asked = Some(Instant::now());
            if pipeline.recovery.is_some() {
                tracing::info!(
                    "stopping: taking a last checkpoint (open windows are saved, not flushed), then committing its offsets"
                );
            } else {
                tracing::info!("stopping: finishing what was read, then committing offsets");
            }
            running.request_stop();
        }
        if last.elapsed() > Duration::from_secs(5) {
            last = Instant::now();
            let m = running.counts();
            tracing::info!(
                "{} readings in {:.0} s, {} windows, {} alert events, {} rejected, {} late",
                m.rows_in,
                started.elapsed().as_secs_f64(),
                m.windows,
                m.alert_events,
                m.rejected,
                m.late,
            );
        }
    }
    let summary = running.wait()?;
    if !quiet && switch_to.is_none() {
        super::replay::print_summary(&pipeline.name, &summary);
    }
    Ok(Watched { summary, switch_to })
}

/// Arguments of `hyflow produce`.
#[derive(clap::Args)]
pub struct ProduceArgs {
    /// Pipeline whose source gives the message format, field names and brokers (without it:
    /// `--format`, and `--brokers` or 127.0.0.1:9092).
    pipeline: Option<PathBuf>,
    /// Fixture to replay (Parquet with columns sensor_id, ts (ms), value).
    #[arg(long)]
    fixture: PathBuf,
    /// Topic to write.
    #[arg(long)]
    topic: String,
    /// Bootstrap servers (default: the pipeline's, else 127.0.0.1:9092).
    #[arg(long)]
    brokers: Option<String>,
    /// Message format when no pipeline is given.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Readings per second.
    #[arg(long, conflicts_with = "speed")]
    rate: Option<f64>,
    /// Replay event time this many times faster than it happened.
    #[arg(long)]
    speed: Option<f64>,
}

/// A message format on the command line.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// JSON objects.
    Json,
    /// CSV lines.
    Csv,
    /// Arrow IPC streams.
    ArrowIpc,
}

impl From<Format> for MessageFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Json => MessageFormat::Json,
            Format::Csv => MessageFormat::Csv,
            Format::ArrowIpc => MessageFormat::ArrowIpc,
        }
    }
}

/// `hyflow produce`.
pub fn produce_cmd(a: ProduceArgs, quiet: bool) -> Result<ExitCode> {
    let pipeline = a.pipeline.as_deref().map(plan::load).transpose()?;
    let kafka = pipeline
        .as_ref()
        .and_then(|p| p.config.source.kafka.clone());
    let brokers = a
        .brokers
        .clone()
        .or_else(|| kafka.as_ref().map(|k| k.brokers.get_ref().clone()))
        .unwrap_or_else(|| "127.0.0.1:9092".into());
    let props = kafka
        .as_ref()
        .map(|k| k.properties.clone())
        .unwrap_or_default();
    let producer = Producer::new(&brokers, &props).map_err(anyhow::Error::msg)?;
    let columns = pipeline
        .as_ref()
        .map(|p| p.config.source.columns.clone())
        .unwrap_or_default();
    let format = match (&kafka, a.format) {
        (Some(k), _) => k.format,
        (None, Format::Json) => MessageFormat::Json,
        (None, Format::Csv) => MessageFormat::Csv,
        (None, Format::ArrowIpc) => MessageFormat::ArrowIpc,
    };
    let pace = match (a.rate, a.speed) {
        (Some(r), _) => Pace::Rate(r),
        (_, Some(x)) => Pace::Speed(x),
        _ => Pace::Max,
    };
    let started = Instant::now();
    let sent = produce_to(
        &producer,
        &a.fixture,
        &a.topic,
        format,
        &columns,
        kafka.as_ref().and_then(|k| k.csv_fields.clone()),
        pipeline
            .as_ref()
            .map_or(TimeUnit::Ms, |p| p.config.source.time_unit),
        pace,
    )?;
    let secs = started.elapsed().as_secs_f64();
    if quiet {
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "produced {sent} readings from {} to {} on {brokers} in {secs:.2} s ({:.0} readings/s)",
        a.fixture.display(),
        a.topic,
        sent as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
fn produce_to(
    producer: &Producer,
    fixture: &std::path::Path,
    topic: &str,
    format: MessageFormat,
    columns: &ColumnMapping,
    csv_fields: Option<Vec<String>>,
    time_unit: TimeUnit,
    pace: Pace,
) -> Result<u64> {
    let spec = ProduceSpec {
        topic,
        partitions: producer.partitions(topic).map_err(anyhow::Error::msg)?,
        format,
        columns,
        csv_fields: csv_fields.as_deref(),
        time_unit,
        pace,
        limit: None,
    };
    produce(fixture, producer, &spec).map_err(anyhow::Error::msg)
}

/// Arguments of `hyflow demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// A pipeline with a Kafka source (its brokers are replaced by the embedded broker's).
    #[arg(default_value = "pipelines/manufacturing-live.toml")]
    pipeline: PathBuf,
    /// Fixture produced into the source topic.
    #[arg(long, default_value = "fixtures/manufacturing.parquet")]
    fixture: PathBuf,
    /// Event time replayed this many times faster than it happened.
    #[arg(long, default_value_t = 120.0)]
    speed: f64,
    /// Worker threads.
    #[arg(short = 'w', long, default_value_t = 1)]
    workers: usize,
    /// Write sink NAME to DIR/NAME.
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
}

/// `hyflow demo`: an embedded broker (librdkafka's mock cluster), the fixture produced at
/// `speed`, the pipeline live, and the alert topic printed as it fills.
pub fn demo(a: DemoArgs) -> Result<ExitCode> {
    let signals = Signals::install()?;
    let p = plan::load(&a.pipeline)?;
    if p.config.source.kafka.is_none() {
        bail!(
            "{}: the demo needs a pipeline with a kafka source",
            a.pipeline.display()
        );
    }
    let cluster = rdkafka::mocking::MockCluster::new(1).context("starting the embedded broker")?;
    let brokers = cluster.bootstrap_servers();
    let mut alert_topics = Vec::new();
    // Everything to the embedded broker, validated again with it.
    let p = p.with_config(|c| {
        if let Some(k) = c.source.kafka.as_mut() {
            *k.brokers.get_mut() = brokers.clone();
        }
        c.set_out_dir(&a.out);
        for s in &mut c.sink {
            if let Some(sk) = s.kafka.as_mut() {
                sk.brokers = None;
                alert_topics.push(sk.topic.get_ref().clone());
            }
        }
    })?;
    let k = p.config.source.kafka.clone().context("a kafka source")?;
    for t in k.topics.get_ref() {
        cluster.create_topic(t, 4, 1).context("creating a topic")?;
    }
    for t in alert_topics.iter().chain(k.dead_letter_topic.iter()) {
        cluster.create_topic(t, 1, 1).context("creating a topic")?;
    }
    println!(
        "embedded Kafka broker at {brokers}; topics {:?} -> {alert_topics:?}",
        k.topics.get_ref()
    );
    let pipeline = Arc::new(p);
    // Alerts as they arrive.
    let done = Arc::new(AtomicBool::new(false));
    let printer = {
        let (brokers, topics, done) = (brokers.clone(), alert_topics.clone(), done.clone());
        std::thread::spawn(move || print_alerts(&brokers, &topics, &done))
    };
    let running = dataflow::start(
        pipeline.clone(),
        &RunOptions {
            workers: a.workers,
            ..RunOptions::default()
        },
    )?;
    // Produce, then let the pipeline drain and stop it.
    let stop = Arc::new(AtomicBool::new(false));
    let producer_thread = {
        let (brokers, k, stop, fixture, speed) = (
            brokers.clone(),
            k.clone(),
            stop.clone(),
            a.fixture.clone(),
            a.speed,
        );
        let columns = pipeline.config.source.columns.clone();
        let unit = pipeline.config.source.time_unit;
        std::thread::spawn(move || -> Result<u64> {
            let producer = Producer::new(&brokers, &BTreeMap::new()).map_err(anyhow::Error::msg)?;
            let topic = &k.topics.get_ref()[0];
            let n = produce_to(
                &producer,
                &fixture,
                topic,
                k.format,
                &columns,
                k.csv_fields.clone(),
                unit,
                Pace::Speed(speed),
            )?;
            // The idle timeout lets the last windows close; then stop.
            std::thread::sleep(Duration::from_millis(k.idle_timeout.ms as u64 + 2000));
            stop.store(true, Ordering::SeqCst);
            Ok(n)
        })
    };
    let code = watch(
        running,
        &pipeline,
        &signals,
        Some(&stop),
        None,
        Duration::from_secs(30),
        false,
    )
    .and_then(|w| super::replay::verdict(&w.summary, false, false));
    let produced = producer_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the producer thread panicked"))??;
    std::thread::sleep(Duration::from_millis(500));
    done.store(true, Ordering::SeqCst);
    let _ = printer.join();
    println!(
        "demo: produced {produced} readings; outputs in {}",
        a.out.display()
    );
    code
}

/// Prints alert events from `topics` until `done`.
fn print_alerts(brokers: &str, topics: &[String], done: &AtomicBool) {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let Ok(c) = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "hyflow-demo-printer")
        .set("auto.offset.reset", "earliest")
        .create::<BaseConsumer>()
    else {
        return;
    };
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    if c.subscribe(&names).is_err() {
        return;
    }
    while !done.load(Ordering::Relaxed) {
        let Some(Ok(m)) = c.poll(Duration::from_millis(100)) else {
            continue;
        };
        let Some(Ok(v)) = m.payload().map(serde_json::from_slice::<serde_json::Value>) else {
            continue;
        };
        println!(
            "alert {:<8} {:<14} {:<8} fused {:.2}  {}  {}",
            v["state"].as_str().unwrap_or("?"),
            v["sensor_id"].as_str().unwrap_or("?"),
            v["severity"].as_str().unwrap_or("?"),
            v["fused"].as_f64().unwrap_or(0.0),
            v["rules"].as_str().unwrap_or(""),
            v["top_features"].as_str().unwrap_or(""),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::after_switch;
    use std::path::Path;

    #[test]
    fn a_switch_goes_on_from_its_own_checkpoint_warns_for_an_older_and_stops_without_any() {
        let dir = Path::new("out/checkpoints");
        let cut = 1_709_510_400_000;
        assert_eq!(after_switch(Some(cut), Some((7, cut)), dir).unwrap(), None);
        // Ended without a checkpoint: its outputs are complete, any checkpoint will do.
        assert_eq!(after_switch(None, None, dir).unwrap(), None);
        assert_eq!(after_switch(None, Some((3, 5)), dir).unwrap(), None);
        let older = after_switch(Some(cut), Some((6, cut - 30_000)), dir)
            .unwrap()
            .expect("a warning");
        assert!(
            older.contains("(cut at 2024-03-04T00:00:00Z) cannot be read")
                && older.contains("older checkpoint 6 (cut at 2024-03-03T23:59:30Z)"),
            "{older}"
        );
        let first = after_switch(Some(cut), Some((1, i64::MIN)), dir)
            .unwrap()
            .expect("a warning");
        assert!(
            first.contains("older checkpoint 1 (the start of the run)"),
            "{first}"
        );
        assert_eq!(
            after_switch(Some(i64::MIN), Some((1, i64::MIN)), dir).unwrap(),
            None
        );
        let none = after_switch(Some(cut), None, dir).unwrap_err().to_string();
        assert!(
            none.contains("cut at 2024-03-04T00:00:00Z") && none.contains("out/checkpoints"),
            "{none}"
        );
    }
}
