//! The Kafka parts of a pipeline definition: `[source.kafka]` (a `kind = "kafka"` source) and
//! the options of `kind = "kafka"` sinks. Like schema.rs, these types are the schema.

use super::duration::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toml::Spanned;

/// Reading from Kafka topics.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KafkaSource {
    /// Bootstrap servers, `host:port[,host:port...]`.
    #[schemars(with = "String")]
    pub brokers: Spanned<String>,
    /// Topics to read. Every partition of every topic is assigned to one worker, by its
    /// position in (topic, partition) order modulo the number of workers of the whole cluster:
    /// no consumer-group rebalancing, so a live run reads like a replay.
    #[schemars(with = "Vec<String>")]
    pub topics: Spanned<Vec<String>>,
    /// Message format: `json`, `csv` or `arrow-ipc`.
    #[serde(default)]
    pub format: MessageFormat,
    /// `csv` format: the fields of a line, in order, named as in `[source.columns]` (default:
    /// sensor, time, value).
    #[serde(default)]
    pub csv_fields: Option<Vec<String>>,
    /// Consumer group whose committed offsets record progress (for monitoring tools and
    /// restarts); default `hyflow-<pipeline name>`.
    #[serde(default)]
    pub group_id: Option<String>,
    /// Where to start in a partition the group has no committed offset for.
    #[serde(default)]
    pub start: StartAt,
    /// A partition with no message for this long stops holding the watermark back.
    #[serde(default = "default_idle")]
    pub idle_timeout: Duration,
    /// How often the outputs are made durable (Parquet files closed, Kafka messages
    /// acknowledged) and the offsets they cover committed to the group; also at a clean stop.
    #[serde(default = "default_commit")]
    pub commit_interval: Duration,
    /// Topic that undecodable messages (readings, and `[registry] topic` messages) are
    /// copied to, with the error and their topic, partition and offset in headers (they
    /// always go to the `rejects` output too).
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// librdkafka properties passed through to the consumer and producers (SASL, SSL, ...),
    /// e.g. `{ "security.protocol" = "SASL_SSL", "sasl.mechanism" = "PLAIN" }`.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

fn default_commit() -> Duration {
    Duration::from_ms(30_000)
}
fn default_idle() -> Duration {
    Duration::from_ms(10_000)
}

/// How readings are encoded in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MessageFormat {
    /// A JSON object per reading (`{"sensor_id": "m01-temp", "ts": 1709510400000, "value":
    /// 61.2}`, field names from `[source.columns]`), or a JSON array of such objects. The
    /// sensor id is a string, or an integer read as its decimal text (`7` is sensor `"7"`; a
    /// fractional number is refused); the time an integer in `time-unit` or RFC 3339 text.
    #[default]
    Json,
    /// One reading per message as a CSV line, fields as `csv-fields` says.
    Csv,
    /// An Arrow IPC stream per message, with the `[source.columns]` columns: the compact
    /// format for high-rate gateways.
    ArrowIpc,
}

/// Where a partition without a committed offset starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StartAt {
    /// The oldest message kept.
    #[default]
    Earliest,
    /// Only messages produced from now on.
    Latest,
}

/// Options of a `kind = "kafka"` sink.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KafkaSink {
    /// Topic the sink writes to.
    #[schemars(with = "String")]
    pub topic: Spanned<String>,
    /// Bootstrap servers (default: the source's).
    #[serde(default)]
    pub brokers: Option<String>,
    /// librdkafka producer properties (the source's `properties` apply first).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// True for librdkafka properties that hold secrets (`*password*`, `*secret*`, `sasl.*`,
/// `ssl.key*`): their values are never printed.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password")
        || k.contains("secret")
        || k.starts_with("sasl.")
        || k.starts_with("ssl.key")
}

/// `text` with the value of every secret property in `properties` replaced by `[redacted]`:
/// for any message that may quote configuration (librdkafka's errors quote the value they
/// reject).
pub fn redact(text: &str, properties: &BTreeMap<String, String>) -> String {
    let mut secrets: Vec<&str> = properties
        .iter()
        .filter(|(k, v)| is_secret(k) && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect();
    // Longest first, so a secret that contains another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in secrets {
        out = out.replace(s, "[redacted]");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_redacted_and_others_kept() {
        let props: BTreeMap<String, String> = [
            ("ssl.key.password", "SslKeyPass-555"),
            ("sasl.password", "hunter2"),
            ("sasl.jaas.config", "user=a password=hunter2-long"),
            ("client.id", "plant-7"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let msg = "Client config error: Invalid value for ssl.key.password SslKeyPass-555; sasl.jaas.config user=a password=hunter2-long; client.id plant-7";
        let r = redact(msg, &props);
        assert!(
            !r.contains("SslKeyPass-555") && !r.contains("hunter2"),
            "{r}"
        );
        assert!(
            r.contains("ssl.key.password [redacted]") && r.contains("plant-7"),
            "{r}"
        );
        for k in [
            "ssl.key.pem",
            "SASL.USERNAME",
            "oauth.client.secret",
            "ssl.keystore.password",
        ] {
            assert!(is_secret(k), "{k}");
        }
        assert!(!is_secret("ssl.ca.location") && !is_secret("bootstrap.servers"));
    }
}
