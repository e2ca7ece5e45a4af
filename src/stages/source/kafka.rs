//! Kafka client plumbing for the live source: the consumer configuration, the plan of a run
//! (every (topic, partition) in a fixed order, where each starts, and where a bounded run
//! ends), the per-worker consumer with its assigned partitions, and committing offsets once
//! the outputs that depend on them are durable.

use super::SourceError;
use crate::config::{KafkaSource, StartAt};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(15);

/// What every worker of a run agrees on.
#[derive(Clone, Debug)]
pub struct KafkaPlan {
    /// Every (topic, partition), sorted; worker w of W reads those at positions p ≡ w (mod W).
    pub parts: Vec<(String, i32)>,
    /// First offset to read per partition.
    pub starts: Vec<i64>,
    /// For a bounded run (`--until-end`): the end offset (high watermark at start) per
    /// partition; the run stops once every partition got there.
    pub ends: Option<Vec<i64>>,
    /// The consumer group.
    pub group: String,
}

fn err(what: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Open {
        file: format!("kafka: {what}"),
        message: e.to_string(),
    }
}

/// The consumer configuration of a source: brokers, group, no automatic commits, plus the
/// pipeline's properties.
pub fn consumer_config(k: &KafkaSource, group: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", k.brokers.get_ref())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set(
            "auto.offset.reset",
            match k.start {
                StartAt::Earliest => "earliest",
                StartAt::Latest => "latest",
            },
        );
    for (key, v) in &k.properties {
        cfg.set(key, v);
    }
    cfg
}

/// A consumer of the source's brokers for `group`; an error never quotes a secret property.
fn create_consumer(k: &KafkaSource, group: &str) -> Result<BaseConsumer, SourceError> {
    consumer_config(k, group).create().map_err(|e| {
        err(
            "creating a consumer",
            crate::config::kafka::redact(&e.to_string(), &k.properties),
        )
    })
}

/// The group id of a pipeline's source.
pub fn group_of(k: &KafkaSource, pipeline: &str) -> String {
    k.group_id
        .clone()
        .unwrap_or_else(|| format!("hyflow-{pipeline}"))
}

/// The partitions of `topic`, asked of the source's brokers.
fn partitions_of(
    consumer: &BaseConsumer,
    k: &KafkaSource,
    topic: &str,
) -> Result<Vec<i32>, SourceError> {
    let md = consumer.fetch_metadata(Some(topic), TIMEOUT).map_err(|e| {
        err(
            &format!("metadata of topic {topic:?} from {}", k.brokers.get_ref()),
            e,
        )
    })?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| err(&format!("topic {topic:?}"), "not in the metadata"))?;
    if let Some(e) = t.error() {
        return Err(err(&format!("topic {topic:?}"), format!("{e:?}")));
    }
    if t.partitions().is_empty() {
        return Err(err(
            &format!("topic {topic:?}"),
            "has no partitions (does it exist?)",
        ));
    }
    let mut parts: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    parts.sort_unstable();
    Ok(parts)
}

/// The registry topic of a live run (`[registry] topic`): its partitions, and where each
/// ended when the run started (what every window waits for: the registry as it stood then).
#[derive(Clone, Debug)]
pub struct RegistryTopic {
    /// The topic.
    pub topic: String,
    /// Its partitions, sorted.
    pub partitions: Vec<i32>,
    /// Per partition: its end offset (high watermark) when the run started.
    pub ends: Vec<i64>,
}

/// Asks the source's brokers for the registry topic's partitions and current ends.
pub fn registry_topic(
    k: &KafkaSource,
    topic: &str,
    pipeline: &str,
) -> Result<RegistryTopic, SourceError> {
    let consumer = create_consumer(k, &format!("{}-registry", group_of(k, pipeline)))?;
    let partitions = partitions_of(&consumer, k, topic).map_err(|e| err("[registry] topic", e))?;
    let mut ends = Vec::new();
    for p in &partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, *p, TIMEOUT)
            .map_err(|e| err(&format!("offsets of {topic}/{p}"), e))?;
        ends.push(high);
    }
    Ok(RegistryTopic {
        topic: topic.to_string(),
        partitions,
        ends,
    })
}

/// A consumer of every partition of the registry topic from its beginning (a compacted topic
/// read whole: no offsets are committed for it).
pub fn registry_consumer(
    k: &KafkaSource,
    t: &RegistryTopic,
    pipeline: &str,
) -> Result<BaseConsumer, SourceError> {
    let consumer = create_consumer(k, &format!("{}-registry", group_of(k, pipeline)))?;
    let mut tpl = TopicPartitionList::new();
    for p in &t.partitions {
        tpl.add_partition_offset(&t.topic, *p, Offset::Beginning)
            .map_err(|e| err(&format!("{}/{p}", t.topic), e))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| err("assigning the registry topic's partitions", e))?;
    Ok(consumer)
}

/// Asks the brokers for the partitions of the source's topics, the group's committed offsets
/// and (for a bounded run) the current end of each partition.
pub fn plan(k: &KafkaSource, pipeline: &str, bounded: bool) -> Result<KafkaPlan, SourceError> {
    let group = group_of(k, pipeline);
    let consumer = create_consumer(k, &group)?;
    let mut parts = Vec::new();
    for topic in k.topics.get_ref() {
        parts.extend(
            partitions_of(&consumer, k, topic)?
                .into_iter()
                .map(|p| (topic.clone(), p)),
        );
    }
    parts.sort();
    let mut tpl = TopicPartitionList::new();
    for (t, p) in &parts {
        tpl.add_partition(t, *p);
    }
    let committed = consumer
        .committed_offsets(tpl, TIMEOUT)
        .map_err(|e| err(&format!("committed offsets of group {group:?}"), e))?;
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    for (t, p) in &parts {
        let (low, high) = consumer
            .fetch_watermarks(t, *p, TIMEOUT)
            .map_err(|e| err(&format!("offsets of {t}/{p}"), e))?;
        let done = committed
            .find_partition(t, *p)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            });
        let start = match (done, k.start) {
            (Some(o), _) => o.clamp(low, high),
            (None, StartAt::Earliest) => low,
            (None, StartAt::Latest) => high,
        };
        starts.push(start);
        ends.push(high);
    }
    Ok(KafkaPlan {
        parts,
        starts,
        ends: bounded.then_some(ends),
        group,
    })
}

/// A consumer assigned the partitions `mine` (indices into the plan) at their start offsets.
pub fn assigned_consumer(
    k: &KafkaSource,
    plan: &KafkaPlan,
    mine: &[usize],
) -> Result<BaseConsumer, SourceError> {
    let consumer = create_consumer(k, &plan.group)?;
    let mut tpl = TopicPartitionList::new();
    for &i in mine {
        let (t, p) = &plan.parts[i];
        tpl.add_partition_offset(t, *p, Offset::Offset(plan.starts[i]))
            .map_err(|e| err(&format!("{t}/{p}"), e))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| err("assigning partitions", e))?;
    Ok(consumer)
}

/// Commits `positions` (topic, partition, next offset) for the source's group: called once
/// every output that depends on the messages before them is durable.
pub fn commit(
    k: &KafkaSource,
    group: &str,
    positions: &[(String, i32, i64)],
) -> Result<(), SourceError> {
    if positions.is_empty() {
        return Ok(());
    }
    let consumer = create_consumer(k, group)?;
    let mut tpl = TopicPartitionList::new();
    for (t, p, o) in positions {
        tpl.add_partition_offset(t, *p, Offset::Offset(*o))
            .map_err(|e| err(&format!("{t}/{p}"), e))?;
    }
    consumer
        .commit(&tpl, CommitMode::Sync)
        .map_err(|e| err(&format!("committing offsets of group {group:?}"), e))
}

/// The high watermark of a partition as librdkafka last fetched it (no round trip to the
/// broker), or `None` before the first fetch.
pub fn cached_high_watermark(consumer: &BaseConsumer, topic: &str, partition: i32) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is live for the consumer's lifetime; the topic is a valid
    // NUL-terminated string, and the out-pointers point at two live i64s.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some(high)
}
