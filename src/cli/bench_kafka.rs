//! `hyflow bench-kafka`: the live benchmarks of docs/performance.md.
//!
//! - `throughput`: produces the benchmark workload's readings into the source topic while the
//!   pipeline runs live, and reports readings consumed and processed per second (time from the
//!   start until every reading was read, windowed and scored), beside the produce rate.
//! - `latency`: produces live readings (event time = now) at a fixed rate, with a spike now
//!   and then, into a pipeline with 1 s windows, and reports the event-to-alert latency: when
//!   the alert reached a consumer of the alert topic minus the end of its window (the latest
//!   event time the window can hold).
//!
//! Both use an embedded broker (librdkafka's mock cluster) unless `--brokers` names one (for
//! tansu: topics created beforehand, see docs/performance.md).

use anyhow::{Context, Result, bail};
use hyflow::batch::sensor_hash;
use hyflow::config::MessageFormat;
use hyflow::dataflow::{self, RunOptions};
use hyflow::plan;
use hyflow::stages::sink::kafka::Producer;
use hyflow::tools::fixture::produce::{Pace, ProduceSpec, produce};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What to measure.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Mode {
    /// Readings/s consumed and processed.
    Throughput,
    /// Event-to-alert latency at a fixed rate.
    Latency,
    /// The delay from a registry change's arrival to its effect, at a fixed rate: the
    /// pipeline gets a registry topic and the rule `mean > registry.limit`; once a second the
    /// limit of a sensor without an open episode drops to 0 (no effective time: from the windows not yet scored), and the
    /// delay runs from sending the change to receiving the alert the rule opens.
    Registry,
}

/// Arguments of `hyflow bench-kafka`.
#[derive(clap::Args)]
pub struct BenchKafkaArgs {
    /// What to measure: `throughput`, `latency` or `registry` (see below).
    #[arg(value_enum)]
    mode: Mode,
    /// Pipeline (a Kafka source; its brokers are replaced).
    #[arg(default_value = "pipelines/bench-live.toml")]
    pipeline: PathBuf,
    /// Brokers (default: an embedded broker with the topics created).
    #[arg(long)]
    brokers: Option<String>,
    /// Message format (overrides the pipeline's).
    #[arg(long, value_enum)]
    format: Option<super::live::Format>,
    /// throughput: readings to produce (from the generated benchmark input).
    #[arg(long, default_value_t = 2_000_000)]
    readings: u64,
    /// latency: readings per second.
    #[arg(long, default_value_t = 100_000.0)]
    rate: f64,
    /// latency: seconds of load.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Worker threads.
    #[arg(short = 'w', long, default_value_t = 1)]
    workers: usize,
    /// Partitions of the readings topic on the embedded broker.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// throughput: produce everything before the pipeline starts (measures consumption
    /// alone; needs a broker that keeps it all, not the embedded one).
    #[arg(long)]
    produce_first: bool,
    /// Producer properties, `key=value` (e.g. batch.num.messages=1 for tansu 0.6).
    #[arg(short = 'X')]
    property: Vec<String>,
}

/// `hyflow bench-kafka`.
pub fn run(a: BenchKafkaArgs) -> Result<ExitCode> {
    let p = plan::load(&a.pipeline)?;
    let mut props = BTreeMap::new();
    for kv in &a.property {
        let (k, v) = kv.split_once('=').context("-X takes key=value")?;
        props.insert(k.to_string(), v.to_string());
    }
    let cluster = match &a.brokers {
        Some(_) => None,
        None => Some(rdkafka::mocking::MockCluster::new(1).context("embedded broker")?),
    };
    let brokers = a
        .brokers
        .clone()
        .or_else(|| cluster.as_ref().map(|c| c.bootstrap_servers()))
        .unwrap_or_default();
    if p.config.source.kafka.is_none() {
        bail!("{}: needs a kafka source", a.pipeline.display());
    }
    // The brokers, the format and, for latency, 1 s windows instead of 10 s, validated again.
    let out = hyflow::tools::scoring::scratch_dir("bench-kafka");
    let p = p.with_config(|c| {
        c.set_out_dir(&out);
        if let Some(k) = c.source.kafka.as_mut() {
            *k.brokers.get_mut() = brokers.clone();
            if let Some(f) = a.format {
                k.format = f.into();
            }
        }
        if matches!(a.mode, Mode::Latency | Mode::Registry) && c.window.size.get_ref().ms == 10_000
        {
            c.window.size = toml::Spanned::new(0..0, hyflow::config::Duration::from_ms(1_000));
        }
        if matches!(a.mode, Mode::Registry) {
            c.registry = toml::from_str(REGISTRY).ok();
            c.rules.extend(toml::from_str(RULE).ok());
        }
    })?;
    if matches!(a.mode, Mode::Registry) && p.registry.is_none() {
        bail!("bench-kafka registry: the pipeline with a registry topic did not validate");
    }
    let k = p.config.source.kafka.clone().context("a kafka source")?;
    let topic = k.topics.get_ref()[0].clone();
    let alert_topic = p
        .config
        .sink
        .iter()
        .find_map(|s| s.kafka.as_ref().map(|k| k.topic.get_ref().clone()));
    if let Some(c) = &cluster {
        c.create_topic(&topic, a.partitions, 1)?;
        if matches!(a.mode, Mode::Registry) {
            c.create_topic(REGISTRY_TOPIC, 1, 1)?;
        }
        if let Some(t) = &alert_topic {
            c.create_topic(t, 1, 1)?;
        }
    }
    let producer = Producer::new(&brokers, &props).map_err(anyhow::Error::msg)?;
    let partitions = producer.partitions(&topic).map_err(anyhow::Error::msg)?;
    let pipeline = Arc::new(p);
    let start = || {
        dataflow::start(
            pipeline.clone(),
            &RunOptions {
                workers: a.workers,
                ..RunOptions::default()
            },
        )
    };
    let format = k.format;
    let fmt_name = format!("{format:?}").to_lowercase();
    match a.mode {
        Mode::Throughput => {
            // The workload's 1000 sensors at 10 readings/s, just long enough for `readings`.
            let secs = (a.readings.div_ceil(10_000)).max(1) as i64;
            let input = super::bench::ensure_input(1000, secs)?;
            let started = Instant::now();
            let columns = pipeline.config.source.columns.clone();
            let n = a.readings;
            let unit = pipeline.config.source.time_unit;
            let first = a.produce_first;
            let running = if first { None } else { Some(start()?) };
            let producing = std::thread::spawn(move || -> Result<(u64, f64)> {
                let spec = ProduceSpec {
                    topic: &topic,
                    partitions,
                    format,
                    columns: &columns,
                    csv_fields: None,
                    time_unit: unit,
                    pace: Pace::Max,
                    limit: Some(n),
                };
                let t = Instant::now();
                let sent = produce(&input, &producer, &spec).map_err(anyhow::Error::msg)?;
                Ok((sent, t.elapsed().as_secs_f64()))
            });
            let (running, started) = match running {
                Some(r) => (r, started),
                None => {
                    // Everything is in the topic first; time the pipeline alone.
                    while !producing.is_finished() {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    (start()?, Instant::now())
                }
            };
            while running.counts().rows_in < n {
                if running.is_done() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            let consumed = started.elapsed().as_secs_f64();
            running.request_stop();
            let summary = running.wait()?;
            let (sent, produce_secs) = producing
                .join()
                .map_err(|_| anyhow::anyhow!("producer panicked"))??;
            println!(
                "bench-kafka throughput: {sent} readings ({fmt_name}, {partitions} partitions, {} worker(s), broker {})",
                a.workers,
                if cluster.is_some() {
                    "embedded"
                } else {
                    brokers.as_str()
                }
            );
            println!(
                "  produced in {produce_secs:.2} s = {:.2} M readings/s",
                sent as f64 / produce_secs / 1e6
            );
            let from = if first {
                "from the pipeline's start, everything produced before"
            } else {
                "from the first produce"
            };
            println!(
                "  consumed and processed in {consumed:.2} s = {:.2} M readings/s ({from}, to the last reading scored; {} windows)",
                summary.rows_in as f64 / consumed / 1e6,
                summary.windows
            );
        }
        Mode::Registry => {
            let running = start()?;
            let alert_topic = alert_topic.context("the pipeline needs a kafka alerts sink")?;
            let done = Arc::new(AtomicBool::new(false));
            let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
            let received = {
                let (b, t, d, s) = (
                    brokers.clone(),
                    alert_topic.clone(),
                    done.clone(),
                    seen.clone(),
                );
                std::thread::spawn(move || alerts_received(&b, &t, &d, &s))
            };
            std::thread::sleep(Duration::from_secs(2)); // the consumer is assigned
            let changes = {
                let (b, props, secs, s) = (brokers.clone(), props.clone(), a.seconds, seen.clone());
                std::thread::spawn(move || send_changes(&b, &props, secs, &s))
            };
            let columns = pipeline.config.source.columns.clone();
            let sent = live_load(
                &producer, &topic, partitions, format, &columns, a.rate, a.seconds,
            )?;
            let changes = changes
                .join()
                .map_err(|_| anyhow::anyhow!("registry producer panicked"))??;
            std::thread::sleep(Duration::from_secs(3));
            running.request_stop();
            let summary = running.wait()?;
            std::thread::sleep(Duration::from_secs(1));
            done.store(true, Ordering::SeqCst);
            received
                .join()
                .map_err(|_| anyhow::anyhow!("consumer panicked"))?;
            let alerts = std::mem::take(&mut *seen.lock().expect("alerts received"));
            // Each change's delay: to the first alert of its sensor that the rule opened.
            let mut l: Vec<f64> = changes
                .iter()
                .filter_map(|(sensor, at)| {
                    alerts
                        .iter()
                        .filter(|x| &x.sensor == sensor && x.over_limit && x.received >= *at)
                        .map(|x| (x.received - at) as f64)
                        .reduce(f64::min)
                })
                .collect();
            let missing = changes.len() - l.len();
            println!(
                "bench-kafka registry: {sent} readings at {:.0}/s for {} s ({fmt_name}, 1 s windows, {} worker(s)); {} registry changes; {} windows, {} alert events",
                a.rate,
                a.seconds,
                a.workers,
                changes.len(),
                summary.windows,
                summary.alert_events
            );
            match quantiles(&mut l) {
                Some((p50, p99, max)) => println!(
                    "  change-to-effect delay (alert received - change sent): p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms over {} changes{}",
                    l.len(),
                    if missing > 0 {
                        format!("; {missing} without an alert")
                    } else {
                        String::new()
                    }
                ),
                _ => println!("  no change took effect"),
            }
            // What the consumer saw of a sensor whose change had no visible effect.
            for (sensor, at) in &changes {
                let of: Vec<&Received> = alerts.iter().filter(|x| &x.sensor == sensor).collect();
                if !of.iter().any(|x| x.over_limit && x.received >= *at) {
                    let seen: Vec<String> = of
                        .iter()
                        .map(|x| {
                            let rule = if x.over_limit { " over-limit" } else { "" };
                            format!("{}{rule} at {:+} ms", x.state, x.received - at)
                        })
                        .collect();
                    println!(
                        "  {sensor}: no alert of the rule after its change; its events: [{}]",
                        seen.join(", ")
                    );
                }
            }
        }
        Mode::Latency => {
            let running = start()?;
            let alert_topic = alert_topic.context("the pipeline needs a kafka alerts sink")?;
            let done = Arc::new(AtomicBool::new(false));
            let lat = {
                let (b, t, d) = (brokers.clone(), alert_topic.clone(), done.clone());
                std::thread::spawn(move || alert_latencies(&b, &t, &d))
            };
            std::thread::sleep(Duration::from_secs(2)); // the consumer is assigned
            let columns = pipeline.config.source.columns.clone();
            let load_start = hyflow::timefmt::now_ms();
            let sent = live_load(
                &producer, &topic, partitions, format, &columns, a.rate, a.seconds,
            )?;
            // Windows of this load (a broker may hold older alerts) that ended before it
            // stopped; later ones close only at the stop.
            let load_end = hyflow::timefmt::now_ms();
            std::thread::sleep(Duration::from_secs(3));
            running.request_stop();
            let summary = running.wait()?;
            std::thread::sleep(Duration::from_secs(1));
            done.store(true, Ordering::SeqCst);
            let all = lat
                .join()
                .map_err(|_| anyhow::anyhow!("consumer panicked"))?;
            let mut l: Vec<f64> = all
                .iter()
                .filter(|(end, _)| *end > load_start && *end <= load_end - 1000)
                .map(|(_, ms)| *ms)
                .collect();
            println!(
                "bench-kafka latency: {sent} readings at {:.0}/s for {} s ({fmt_name}, 1 s windows, {} worker(s)); {} windows, {} alert events",
                a.rate, a.seconds, a.workers, summary.windows, summary.alert_events
            );
            match quantiles(&mut l) {
                Some((p50, p99, max)) => println!(
                    "  event-to-alert latency (alert received - window end): p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms over {} alerts",
                    l.len()
                ),
                _ => println!("  no alerts received"),
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    Ok(ExitCode::SUCCESS)
}

/// Produces `rate` readings/s with event time = now for `seconds`: 1000 sensors, normal values
/// with a spike in one reading of 5000 (the alerts whose latency is measured).
fn live_load(
    producer: &Producer,
    topic: &str,
    partitions: i32,
    format: MessageFormat,
    columns: &hyflow::config::ColumnMapping,
    rate: f64,
    seconds: u64,
) -> Result<u64> {
    let mut rng = hyflow::tools::fixture::Rng::new(42);
    let sensors: Vec<String> = (0..1000).map(|i| format!("s{i:04}")).collect();
    let tick = Duration::from_millis(10);
    let per_tick = (rate / 100.0).round().max(1.0) as usize;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut next = 0usize;
    let mut k = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        let due = tick * k as u32;
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        k += 1;
        let now = hyflow::timefmt::now_ms();
        let mut by_part: Vec<Vec<(String, i64, f64)>> = vec![Vec::new(); partitions as usize];
        for _ in 0..per_tick {
            let s = &sensors[next % sensors.len()];
            next += 1;
            let spike = rng.below(5000) == 0;
            let v = 10.0 + rng.normal() + if spike { 50.0 } else { 0.0 };
            by_part[(sensor_hash(s) % partitions as u64) as usize].push((s.clone(), now, v));
        }
        for (part, rows) in by_part.iter_mut().enumerate() {
            let spec = ProduceSpec {
                topic,
                partitions,
                format,
                columns,
                csv_fields: None,
                time_unit: hyflow::config::TimeUnit::Ms,
                pace: Pace::Max,
                limit: None,
            };
            sent += rows.len() as u64;
            hyflow::tools::fixture::produce::send_rows(producer, &spec, part as i32, rows)
                .map_err(anyhow::Error::msg)?;
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .map_err(anyhow::Error::msg)?;
    Ok(sent)
}

/// p50, p99 and the largest of `l` (sorted in place); `None` when it is empty.
fn quantiles(l: &mut [f64]) -> Option<(f64, f64, f64)> {
    l.sort_by(f64::total_cmp);
    let q = |p: f64| l[((l.len() as f64 - 1.0) * p).round() as usize];
    let max = *l.last()?;
    Some((q(0.5), q(0.99), max))
}

/// The registry topic of `bench-kafka registry`.
const REGISTRY_TOPIC: &str = "bench-registry";
/// Its `[registry]`: every sensor's limit 1e9 until a change lowers it.
const REGISTRY: &str = r#"topic = "bench-registry"
attributes = { limit = "number" }

[[class]]
match = "*"
attributes = { limit = 1e9 }
"#;
/// The rule a lowered limit fires.
const RULE: &str = r#"name = "over-limit"
when = "mean > registry.limit"
severity = "warning"
"#;

/// Once a second, after 7 s (the detectors' warm-up of 5 windows), lowers one sensor's limit
/// to 0 on the registry topic, with no effective time: (sensor, wall ms when sent).
///
/// The sensor is one without an open episode in the alerts `seen` so far: in an open episode
/// the rule's firing changes no event (it escalates nothing), so its effect could not be seen.
fn send_changes(
    brokers: &str,
    props: &BTreeMap<String, String>,
    seconds: u64,
    seen: &std::sync::Mutex<Vec<Received>>,
) -> Result<Vec<(String, i64)>> {
    let producer = Producer::new(brokers, props).map_err(anyhow::Error::msg)?;
    let mut out: Vec<(String, i64)> = Vec::new();
    std::thread::sleep(Duration::from_secs(7));
    let mut candidates = (0..1000u64).map(|k| format!("s{:04}", (k * 37) % 1000));
    for _ in 0..seconds.saturating_sub(9) {
        let open: std::collections::HashSet<String> = {
            let seen = seen.lock().expect("alerts received");
            let mut last = std::collections::HashMap::new();
            for r in seen.iter() {
                last.insert(r.sensor.clone(), r.resolved);
            }
            last.into_iter()
                .filter(|(_, resolved)| !resolved)
                .map(|(s, _)| s)
                .collect()
        };
        let Some(sensor) = candidates.find(|s| !open.contains(s)) else {
            break;
        };
        let now = hyflow::timefmt::now_ms();
        producer
            .send(REGISTRY_TOPIC, Some(&sensor), Some(br#"{"limit": 0}"#), &[])
            .map_err(anyhow::Error::msg)?;
        producer
            .flush(Duration::from_secs(10))
            .map_err(anyhow::Error::msg)?;
        out.push((sensor, now));
        std::thread::sleep(Duration::from_secs(1));
    }
    Ok(out)
}

/// An alert event as a consumer of the alert topic received it.
struct Received {
    sensor: String,
    received: i64,
    over_limit: bool,
    /// The event resolves its episode.
    resolved: bool,
    /// Its state (`open`, `update`, `resolved`).
    state: String,
}

/// Every alert event on `topic` until `done`, appended to `out` as it arrives.
fn alerts_received(
    brokers: &str,
    topic: &str,
    done: &AtomicBool,
    out: &std::sync::Mutex<Vec<Received>>,
) {
    consume_alerts(brokers, topic, done, |v, now| {
        out.lock().expect("alerts received").push(Received {
            sensor: v["sensor_id"].as_str().unwrap_or_default().to_string(),
            received: now,
            over_limit: v["rules"].to_string().contains("over-limit"),
            resolved: v["state"] == "resolved",
            state: v["state"].as_str().unwrap_or_default().to_string(),
        });
    });
}

/// (window end, receive time minus window end in ms) of every alert on `topic` until `done`.
fn alert_latencies(brokers: &str, topic: &str, done: &AtomicBool) -> Vec<(i64, f64)> {
    let mut out = Vec::new();
    consume_alerts(brokers, topic, done, |v, now| {
        if let Some(end) = v["window_end"].as_i64() {
            out.push((end, (now - end) as f64));
        }
    });
    out
}

/// Reads `topic` from its current end until `done`, calling `each` with every alert event and
/// the wall-clock ms it was received.
fn consume_alerts(
    brokers: &str,
    topic: &str,
    done: &AtomicBool,
    mut each: impl FnMut(&serde_json::Value, i64),
) {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let Ok(c) = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "hyflow-bench-latency")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .create::<BaseConsumer>()
    else {
        return;
    };
    // Assigned, not subscribed: no group to join, reading from the current end.
    let mut tpl = rdkafka::TopicPartitionList::new();
    if tpl
        .add_partition_offset(topic, 0, rdkafka::Offset::End)
        .and_then(|()| c.assign(&tpl))
        .is_err()
    {
        return;
    }
    while !done.load(Ordering::Relaxed) {
        let Some(Ok(m)) = c.poll(Duration::from_millis(20)) else {
            continue;
        };
        let now = hyflow::timefmt::now_ms();
        let Some(Ok(v)) = m.payload().map(serde_json::from_slice::<serde_json::Value>) else {
            continue;
        };
        each(&v, now);
    }
}
