//! Kafka outputs: a [`Producer`] with idempotence on and delivery reports checked (a message
//! that cannot be delivered after librdkafka's retries is an error, never a silent drop), and
//! the [`KafkaSink`] that writes an output's rows as JSON objects keyed by sensor id: the
//! alert events of docs/alerts.md, or rejects as a dead-letter feed.

use super::{Sink, SinkError};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};
use rdkafka::{ClientContext, Message as _};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Delivery reports: how many messages failed and the first reasons.
#[derive(Default)]
struct Deliveries {
    failed: Mutex<(u64, Vec<String>)>,
}

struct Context(Arc<Deliveries>);

impl ClientContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, m)) = result {
            let mut f = self.0.failed.lock().unwrap_or_else(|p| p.into_inner());
            f.0 += 1;
            if f.1.len() < 5 {
                f.1.push(format!("{}[{}]: {e}", m.topic(), m.partition()));
            }
        }
    }
}

/// An idempotent producer whose failed deliveries are reported by [`Producer::flush`].
pub struct Producer {
    inner: ThreadedProducer<Context>,
    deliveries: Arc<Deliveries>,
    brokers: String,
}

impl Producer {
    /// A producer for `brokers` with extra librdkafka `properties` (SASL, SSL, ...).
    pub fn new(brokers: &str, properties: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "120000");
        for (k, v) in properties {
            cfg.set(k, v);
        }
        let deliveries = Arc::new(Deliveries::default());
        let inner = cfg
            .create_with_context(Context(deliveries.clone()))
            .map_err(|e| {
                crate::config::kafka::redact(
                    &format!("Kafka producer for {brokers}: {e}"),
                    properties,
                )
            })?;
        Ok(Self {
            inner,
            deliveries,
            brokers: brokers.to_string(),
        })
    }

    /// Queues a message; waits while librdkafka's queue is full.
    pub fn send(
        &self,
        topic: &str,
        key: Option<&str>,
        payload: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Result<(), String> {
        let mut h = OwnedHeaders::new();
        for (k, v) in headers {
            h = h.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut record = BaseRecord::to(topic).headers(h);
        if let Some(p) = payload {
            record = record.payload(p);
        }
        if let Some(k) = key {
            record = record.key(k);
        }
        self.enqueue(record)
    }

    /// Queues a message for one partition; waits while librdkafka's queue is full.
    pub fn send_to(
        &self,
        topic: &str,
        partition: i32,
        key: Option<&str>,
        payload: &[u8],
    ) -> Result<(), String> {
        let mut record = BaseRecord::to(topic).payload(payload).partition(partition);
        if let Some(k) = key {
            record = record.key(k);
        }
        self.enqueue(record)
    }

    /// Hands a record to librdkafka, waiting while its queue is full.
    fn enqueue(&self, mut record: BaseRecord<'_, str, [u8]>) -> Result<(), String> {
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    r,
                )) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, r)) => {
                    let part = r.partition.map_or(String::new(), |p| format!("[{p}]"));
                    return Err(format!("{}{part} on {}: {e}", r.topic, self.brokers));
                }
            }
        }
    }

    /// The number of partitions of `topic`.
    pub fn partitions(&self, topic: &str) -> Result<i32, String> {
        let md = self
            .inner
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(15))
            .map_err(|e| format!("metadata of {topic} from {}: {e}", self.brokers))?;
        let n = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(0, |t| t.partitions().len());
        if n == 0 {
            return Err(format!(
                "topic {topic} has no partitions on {} (does it exist?)",
                self.brokers
            ));
        }
        Ok(n as i32)
    }

    /// Waits until every queued message is delivered or failed; an error names the failures.
    pub fn flush(&self, timeout: Duration) -> Result<(), String> {
        self.inner
            .flush(timeout)
            .map_err(|e| format!("flushing to {}: {e}", self.brokers))?;
        let f = self
            .deliveries
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if f.0 > 0 {
            return Err(format!(
                "{} message(s) could not be delivered to {}: {}",
                f.0,
                self.brokers,
                f.1.join("; ")
            ));
        }
        Ok(())
    }
}

/// An output written to a Kafka topic, a JSON object per row.
pub struct KafkaSink {
    producer: Producer,
    topic: String,
    /// Written after each row's columns (e.g. nothing), in order.
    sent: u64,
}

impl KafkaSink {
    /// A sink to `topic`.
    pub fn new(
        topic: &str,
        brokers: &str,
        properties: &BTreeMap<String, String>,
    ) -> Result<Self, SinkError> {
        let producer = Producer::new(brokers, properties).map_err(|e| SinkError::Kafka {
            topic: topic.to_string(),
            message: e,
        })?;
        Ok(Self {
            producer,
            topic: topic.to_string(),
            sent: 0,
        })
    }
}

/// Row `i` of `batch` as a JSON object (column name → value; nulls as null).
pub fn row_json(batch: &RecordBatch, i: usize) -> Map<String, Value> {
    let mut o = Map::new();
    for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
        let v = if col.is_null(i) {
            Value::Null
        } else {
            match col.data_type() {
                DataType::Int64 => Value::from(col.as_primitive::<Int64Type>().value(i)),
                // Times stay ms since the epoch in the JSON (docs/alerts.md).
                DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, _) => {
                    Value::from(col.as_primitive::<TimestampMillisecondType>().value(i))
                }
                DataType::Float64 => {
                    let x = col.as_primitive::<Float64Type>().value(i);
                    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
                }
                DataType::Utf8 => Value::from(col.as_string::<i32>().value(i)),
                DataType::Boolean => Value::from(col.as_boolean().value(i)),
                other => Value::from(format!("<{other}>")),
            }
        };
        o.insert(field.name().clone(), v);
    }
    o
}

impl Sink for KafkaSink {
    fn write(&mut self, batch: &RecordBatch, _times: &[i64]) -> Result<(), SinkError> {
        for i in 0..batch.num_rows() {
            let o = row_json(batch, i);
            // Keyed by sensor (assets: by asset; incidents: by incident), so one key's
            // events stay in order.
            let key = o
                .get("incident_id")
                .or_else(|| o.get("sensor_id"))
                .or_else(|| o.get("asset"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let payload = Value::Object(o).to_string();
            self.producer
                .send(&self.topic, key.as_deref(), Some(payload.as_bytes()), &[])
                .map_err(|e| SinkError::Kafka {
                    topic: self.topic.clone(),
                    message: e,
                })?;
            self.sent += 1;
        }
        Ok(())
    }

    fn make_durable(&mut self) -> Result<bool, SinkError> {
        self.producer
            .flush(Duration::from_secs(120))
            .map_err(|e| SinkError::Kafka {
                topic: self.topic.clone(),
                message: e,
            })?;
        Ok(true)
    }

    fn finish(&mut self) -> Result<Vec<PathBuf>, SinkError> {
        self.producer
            .flush(Duration::from_secs(120))
            .map_err(|e| SinkError::Kafka {
                topic: self.topic.clone(),
                message: e,
            })?;
        Ok(vec![PathBuf::from(format!(
            "kafka:{} ({} messages)",
            self.topic, self.sent
        ))])
    }

    fn abort(&mut self) {
        let _ = self.producer.flush(Duration::from_secs(10));
    }
}
