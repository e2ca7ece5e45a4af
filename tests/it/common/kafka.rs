//! Kafka helpers shared by the mock-cluster and the tansu tests.

use hyflow::config::{ColumnMapping, MessageFormat, PipelineConfig, TimeUnit};
use hyflow::dataflow::{self, RunOptions};
use hyflow::stages::sink::kafka::Producer;
use hyflow::tools::fixture::produce::{Pace, ProduceSpec, produce};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// A traffic pipeline reading `readings` from `brokers`, alerts also to the `alerts` topic;
/// `extra_source` adds lines to its `[source.kafka]` table.
pub fn live_pipeline(brokers: &str, format: &str, extra_source: &str) -> String {
    live_pipeline_with(brokers, format, extra_source, |_| {})
}

/// [`live_pipeline`], changed by `edit` through the config types (validated).
pub fn live_pipeline_with(
    brokers: &str,
    format: &str,
    extra_source: &str,
    edit: impl FnOnce(&mut PipelineConfig),
) -> String {
    super::pipeline::shipped("traffic", |c| {
        let source = format!(
            r#"kind = "kafka"
columns = {{ sensor = "sensor_id", time = "ts", value = "value" }}
max-out-of-orderness = "1m"

[kafka]
brokers = "{brokers}"
topics = ["readings"]
format = "{format}"
group-id = "test-group"
{extra_source}
"#
        );
        c.source = toml::from_str(&source).unwrap_or_else(|e| panic!("{e}\n{source}"));
        // The readings are produced as they are: no classes, no range checks.
        c.clean = Default::default();
        // An Arrow IPC file is complete only at the end, which would hold periodic commits
        // back.
        c.sink.retain(|s| s.name.get_ref() != "alerts-arrow");
        // Tests declared in the shipped file replay fixtures; they are not what this checks.
        c.test.clear();
        c.sink.push(
            toml::from_str(
                "name = \"alerts-kafka\"\nkind = \"kafka\"\noutput = \"alerts\"\nkafka = { topic = \"alerts\" }",
            )
            .expect("sink"),
        );
        edit(c);
    })
}

/// A small traffic fixture: 9 sensors (3 stations) over 2 days, incidents included.
pub fn fixture(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("traffic.parquet");
    let ds = hyflow::tools::fixture::traffic::generate(9, 2 * 86_400_000, 21);
    hyflow::tools::fixture::write(ds, &path).expect("fixture");
    path
}

pub fn produce_fixture(brokers: &str, path: &Path, format: MessageFormat) -> u64 {
    produce_fixture_with(brokers, path, format, &BTreeMap::new())
}

/// As [`produce_fixture`], with producer properties.
pub fn produce_fixture_with(
    brokers: &str,
    path: &Path,
    format: MessageFormat,
    props: &BTreeMap<String, String>,
) -> u64 {
    let producer = Producer::new(brokers, props).expect("producer");
    let columns = ColumnMapping::default();
    let spec = ProduceSpec {
        topic: "readings",
        partitions: producer.partitions("readings").expect("partitions"),
        format,
        columns: &columns,
        csv_fields: None,
        time_unit: TimeUnit::Ms,
        pace: Pace::Max,
        limit: None,
    };
    produce(path, &producer, &spec).expect("produce")
}

pub fn run_live(text: &str, out: &Path, workers: usize) -> dataflow::Summary {
    let file = out.with_extension("toml");
    std::fs::write(&file, text).expect("write pipeline");
    let p = super::load(&file, None, out);
    dataflow::run(
        p,
        &RunOptions {
            workers,
            until_end: true,
            ..RunOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("live run: {e}"))
}

pub fn replay(text: &str, input: &Path, out: &Path) -> dataflow::Summary {
    let file = out.with_extension("toml");
    std::fs::write(&file, text).expect("write pipeline");
    let p = super::load(&file, Some(&input.display().to_string()), out);
    dataflow::run(
        p,
        &RunOptions {
            workers: 1,
            ..RunOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("replay: {e}"))
}

/// The messages of `topic` from the beginning: waits for `expect` of them, then one second
/// more for any extra.
pub fn consume_all(
    brokers: &str,
    topic: &str,
    expect: usize,
) -> Vec<rdkafka::message::OwnedMessage> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{topic}"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    c.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let mut deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut extra = false;
    while std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            out.push(m.detach());
        }
        if out.len() >= expect && !extra {
            extra = true;
            deadline = std::time::Instant::now() + Duration::from_secs(1);
        }
    }
    out
}

/// As [`consume_all`], reading every partition of `topic` by assignment from its beginning
/// (no group coordination: tansu takes many seconds to form a group).
pub fn consume_assigned(
    brokers: &str,
    topic: &str,
    expect: usize,
) -> Vec<rdkafka::message::OwnedMessage> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let meta = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for t in meta.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), rdkafka::Offset::Beginning)
                .expect("offset");
        }
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let mut deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut extra = false;
    while std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            out.push(m.detach());
        }
        if out.len() >= expect && !extra {
            extra = true;
            deadline = std::time::Instant::now() + Duration::from_secs(1);
        }
    }
    out
}

/// Starts an unbounded live run of pipeline `text` (written to DIR/p.toml) on 2 workers, its
/// outputs in DIR/out, serving `/metrics` on `metrics` when given.
pub fn start_live(
    text: &str,
    dir: &Path,
    metrics: Option<std::net::SocketAddr>,
) -> dataflow::Running {
    let file = dir.join("p.toml");
    std::fs::write(&file, text).expect("write");
    let p = super::load(&file, None, &dir.join("out"));
    dataflow::start(
        p,
        &RunOptions {
            workers: 2,
            metrics,
            ..RunOptions::default()
        },
    )
    .expect("start")
}
