//! The schema of `[registry]`: what the plant or road network looks like (sensors, their
//! assets and attributes, the topology between them), where it is read from, and what to do
//! with readings of sensors it does not know.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toml::Spanned;

/// The type of a registry attribute, as rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AttributeType {
    /// A number (`mean > registry.max_temp`).
    Number,
    /// `true` or `false` (`registry.critical and max > 90`).
    Bool,
}

/// What happens to the windows of a sensor the registry does not hold (as of the window's end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownSensors {
    /// Score them, with the attributes of the first `[[registry.class]]` that matches (none:
    /// every attribute is missing, and a rule comparing one is false).
    #[default]
    Accept,
    /// Do not score them: each window goes to the rejects output (reason
    /// `unregistered`, one row per window) and to a Kafka rejects sink if there is one.
    Reject,
}

/// Attribute values for sensors whose id matches a glob: the defaults of sensors the registry
/// does not hold (`unknown-sensors = "accept"`) and of attributes a registry row leaves empty.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RegistryClass {
    /// Sensor id glob (`*-temp`).
    #[serde(rename = "match")]
    #[schemars(with = "String")]
    pub pattern: Spanned<String>,
    /// Attribute values (names declared in `[registry] attributes`).
    #[serde(default = "no_entries::<AttributeValue>")]
    #[schemars(with = "BTreeMap<String, f64>")]
    pub attributes: Spanned<BTreeMap<String, AttributeValue>>,
}

/// A default attribute value: a number or a boolean.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum AttributeValue {
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
}

/// `[registry]`: the sensor registry and topology (docs/registry.md).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RegistryConfig {
    /// The sensors at start: a CSV file with a header line (`sensor` and any of `asset`,
    /// `segment`, `class`, `unit`, `enabled` and the declared attributes), a Parquet file with
    /// those columns, or a TOML file of `[[sensor]]` and `[[edge]]` tables. Relative to the
    /// current directory.
    #[serde(default = "super::schema::empty")]
    #[schemars(with = "String")]
    pub sensors: Spanned<String>,
    /// The topology at start: a CSV file with a header line (`from`, `to` and any of `kind`,
    /// `directed`, `travel-time`), one edge per line, a Parquet file with those columns, or a
    /// TOML file of `[[edge]]` tables with those keys. A directed edge runs downstream, from `from` to `to`.
    #[serde(default = "super::schema::empty")]
    #[schemars(with = "String")]
    pub edges: Spanned<String>,
    /// Changes after the start: a JSON-lines file, one change per line, each with a `time`
    /// (RFC 3339 or ms since the epoch) and either a `sensor` or an `edge` (`["from", "to"]`)
    /// and a `value` (the whole new row; `null` deletes it). This is the registry topic's
    /// contents with their times, so a replay applies what a live run applied.
    #[serde(default = "super::schema::empty")]
    #[schemars(with = "String")]
    pub changes: Spanned<String>,
    /// Live changes: a Kafka topic (compacted) on the source's brokers, read from its beginning
    /// when a live run (`[source] kind = "kafka"`) starts and followed while it runs. Key: the
    /// sensor id, or `["from", "to"]` (JSON) for an edge; value: the whole new row as a JSON
    /// object (null or empty deletes it); header `effective-time`: the event time it holds
    /// from (ms since the epoch or RFC 3339; without it, the time it is read: every window not
    /// yet scored). A live run reads the topic instead of `changes`; a replay reads `changes`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub topic: Option<Spanned<String>>,
    /// A live run with `topic` writes every change it applied, with the time it took effect
    /// from, to this JSON-lines file (the `changes` format, appended): the change log that
    /// makes a replay of the run's readings equal the run.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub record: Option<Spanned<String>>,
    /// The attributes a registry row may carry and rules may name as `registry.NAME`, with
    /// their types (`{ max_temp = "number", critical = "bool" }`).
    #[serde(default = "no_entries::<AttributeType>")]
    #[schemars(with = "BTreeMap<String, AttributeType>")]
    pub attributes: Spanned<BTreeMap<String, AttributeType>>,
    /// What happens to windows of sensors the registry does not hold.
    #[serde(default)]
    pub unknown_sensors: UnknownSensors,
    /// Default attribute values by sensor id glob (the first match counts).
    #[serde(default)]
    pub class: Vec<RegistryClass>,
    /// Incidents: a sensor whose episode resolves stays a member of its incident for this
    /// much more event time (default "0s": it leaves at once). An incident whose members'
    /// episodes break up and open again within the grace stays one incident, and an incident
    /// resolves this long after its last episode did.
    #[serde(default)]
    pub incident_grace: crate::config::duration::Duration,
}

fn no_entries<T>() -> Spanned<BTreeMap<String, T>> {
    Spanned::new(0..0, BTreeMap::new())
}
