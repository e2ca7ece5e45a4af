//! Checks of the Kafka parts of a pipeline: `[source.kafka]` and `kind = "kafka"` sinks.

use super::validate::Checker;
use crate::config::kafka::KafkaSource;
use crate::config::schema::*;

/// `[source.kafka]` must be there, name topics and brokers, and map CSV fields it knows.
pub(super) fn kafka_source(c: &mut Checker, src: &SourceConfig) {
    let Some(k) = &src.kafka else {
        c.top(
            "a kafka source needs [source.kafka]",
            Some("[source.kafka]\nbrokers = \"127.0.0.1:9092\"\ntopics = [\"readings\"]"),
        );
        return;
    };
    if k.brokers.get_ref().trim().is_empty() {
        c.at(
            &k.brokers,
            "brokers is empty",
            Some("\"host:port[,host:port]\""),
        );
    }
    if k.topics.get_ref().is_empty() || k.topics.get_ref().iter().any(|t| t.trim().is_empty()) {
        c.at(
            &k.topics,
            "topics must name at least one topic, none empty",
            None,
        );
    }
    if let Some(fields) = &k.csv_fields {
        let cols = &src.columns;
        let known = [&cols.sensor, &cols.time, &cols.value];
        for f in fields {
            if !known.contains(&f) && cols.quality.as_ref() != Some(f) && f != "_" {
                c.at(
                    &k.topics,
                    format!("csv-fields names {f:?}, which is not a [source.columns] column"),
                    Some(&format!(
                        "use {}, {}, {}, a quality column, or \"_\" to skip a field",
                        cols.sensor, cols.time, cols.value
                    )),
                );
            }
        }
    }
    if src.path.get_ref().trim() != "" {
        c.at(
            &src.path,
            "a kafka source reads topics, not `path`",
            Some("remove `path`"),
        );
    }
}

/// A Kafka sink needs a topic, brokers (its own or the source's) and an output it can carry.
pub(super) fn kafka_sink(c: &mut Checker, s: &SinkConfig, source: Option<&KafkaSource>) {
    let name = s.name.get_ref();
    let Some(k) = &s.kafka else {
        c.at(
            &s.name,
            format!("kafka sink {name:?} needs a topic"),
            Some("kafka = { topic = \"alerts\" }"),
        );
        return;
    };
    if k.topic.get_ref().trim().is_empty() {
        c.at(&k.topic, "the topic is empty", None);
    }
    if k.brokers.is_none() && source.is_none() {
        c.at(
            &s.name,
            format!("kafka sink {name:?} has no brokers (and the source is not Kafka)"),
            Some("kafka = { topic = \"alerts\", brokers = \"host:port\" }"),
        );
    }
    if s.output == OutputKind::Windows {
        c.at(
            &s.name,
            format!("kafka sink {name:?}: windows do not go to Kafka"),
            Some("write windows to a parquet sink; alerts, rejects and late rows can go to Kafka"),
        );
    }
    if s.path.get_ref().trim() != "" {
        c.at(
            &s.path,
            "a kafka sink writes a topic, not `path`",
            Some("remove `path`"),
        );
    }
}
