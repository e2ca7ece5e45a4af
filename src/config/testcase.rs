//! The schema of `[[test]]` blocks: pipeline tests declared beside the pipeline (run by
//! `hyflow test`, src/tools/pipeline_test.rs).

use super::duration::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A pipeline test: readings in, expected windows and alerts out.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TestConfig {
    /// What the test checks, in words.
    pub name: String,
    /// A fixture to replay (Parquet or CSV, as the source kind says) instead of `series`.
    #[serde(default)]
    pub input: Option<String>,
    /// Regular series of readings, written inline.
    #[serde(default)]
    pub series: Vec<SeriesConfig>,
    /// Windows that must be in the output, with the given values.
    #[serde(default)]
    pub expect_window: Vec<ExpectWindow>,
    /// Alert events that must be in the output.
    #[serde(default)]
    pub expect_alert: Vec<ExpectAlert>,
    /// When true, the test fails if any alert event is produced.
    #[serde(default)]
    pub expect_no_alerts: bool,
}

/// Readings of one sensor at a fixed interval: `values` (repeated `repeat` times).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SeriesConfig {
    /// Sensor id.
    pub sensor: String,
    /// Time of the first reading, `YYYY-MM-DD HH:MM:SS` (UTC).
    #[schemars(with = "String")]
    pub start: toml::Spanned<String>,
    /// Time between readings.
    pub every: Duration,
    /// The values, in order (NaN allowed as `nan`).
    pub values: Vec<f64>,
    /// How many times `values` is repeated.
    #[serde(default = "super::schema::one_u32")]
    pub repeat: u32,
}

/// An expected window row.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExpectWindow {
    /// Sensor id.
    pub sensor: String,
    /// Window start, `YYYY-MM-DD HH:MM:SS` (UTC).
    #[schemars(with = "String")]
    pub start: toml::Spanned<String>,
    /// Expected feature values (relative tolerance 1e-9), by column name.
    #[serde(default)]
    pub features: std::collections::BTreeMap<String, f64>,
    /// Expected alert flag.
    #[serde(default)]
    pub alert: Option<bool>,
    /// Expected fired rules, comma-separated as in the output.
    #[serde(default)]
    pub rules: Option<String>,
}

/// An expected alert event.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExpectAlert {
    /// Sensor id.
    pub sensor: String,
    /// `open`, `update` or `resolved`.
    pub state: String,
    /// End of the window that caused it, `YYYY-MM-DD HH:MM:SS` (UTC); any when absent.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub window_end: Option<toml::Spanned<String>>,
    /// Expected severity; any when absent.
    #[serde(default)]
    pub severity: Option<String>,
}
