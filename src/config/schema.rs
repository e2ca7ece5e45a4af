//! The pipeline definition types: these structs *are* the schema of a pipeline file.
//! `hyflow schema` turns their doc comments into a JSON Schema; docs/pipeline.md mirrors them.

use super::detect::{DetectConfig, FuseConfig, RuleConfig};
use super::duration::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

pub use super::sink::*;
pub use super::testcase::*;

/// A whole pipeline definition: where readings come from, how they are cleaned, windowed,
/// turned into features, scored, fused with rules, and where the results go.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PipelineConfig {
    /// The pipeline's name; it is written into every alert.
    pub name: String,
    /// Free text for people reading the file.
    #[serde(default)]
    pub description: String,
    /// Where readings come from.
    pub source: SourceConfig,
    /// Cleaning applied to every reading before windowing.
    #[serde(default)]
    pub clean: CleanConfig,
    /// Event-time windows.
    pub window: WindowConfig,
    /// Features computed for each (sensor, window).
    #[serde(default)]
    pub features: FeaturesConfig,
    /// Learned (statistical) detectors that score each window.
    #[serde(default)]
    pub detect: DetectConfig,
    /// Rules written by engineers over the features of a window.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// How detector scores and rules make one score, and when alert episodes open and resolve.
    #[serde(default)]
    pub fuse: FuseConfig,
    /// The sensor registry and topology: assets, attributes rules can name, which sensors
    /// are enabled, and the edges incidents follow (docs/registry.md).
    #[serde(default)]
    pub registry: Option<super::registry::RegistryConfig>,
    /// Outputs.
    #[serde(default)]
    pub sink: Vec<SinkConfig>,
    /// Which device computes features and the cell detectors (`ewma-z`, `level-z`,
    /// `seasonal-z`, `cusum`, `stuck`; the other detectors, rules and fusion run on the CPU),
    /// and how windows are batched for it.
    #[serde(default)]
    pub compute: ComputeConfig,
    /// Checkpoints, from which a run that was stopped or killed goes on exactly where it was
    /// (`[recovery]`; without it `hyflow run` takes them with the defaults below, where it
    /// can, and a replay takes none).
    #[serde(default)]
    pub recovery: Option<RecoveryConfig>,
    /// Pipeline tests (`hyflow test`): input readings and the windows and alerts they must give.
    #[serde(default)]
    pub test: Vec<TestConfig>,
}

/// The kind of source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// Parquet files (a path or a glob), replayed as fast as the machine allows.
    Parquet,
    /// CSV files with a header line (a path or a glob); see `[source.csv]`.
    Csv,
    /// Kafka topics, live; see `[source.kafka]`.
    Kafka,
}

/// How CSV timestamps are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CsvTime {
    /// RFC 3339 (`2024-05-06T08:00:07+02:00`, `...Z`), or without an offset
    /// (`YYYY-MM-DD HH:MM:SS[.ffffff]`, with a space or `T`): local time in `time-zone`.
    #[default]
    Iso,
    /// An integer in `time-unit` since the Unix epoch.
    Unix,
}

/// CSV input options.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CsvOptions {
    /// How the time column is written.
    #[serde(default)]
    pub time_format: CsvTime,
    /// Take the sensor id from the file name (without extension) instead of a column: for
    /// files holding one series, such as the NAB corpus.
    #[serde(default)]
    pub sensor_from_file_name: bool,
}

/// Unit of integer timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TimeUnit {
    /// Seconds.
    S,
    /// Milliseconds.
    #[default]
    Ms,
    /// Microseconds.
    Us,
    /// Nanoseconds.
    Ns,
}

/// What to do with an input file that cannot be read (corrupt, wrong schema).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnBadFile {
    /// Stop the run with an error naming the file and what is wrong.
    #[default]
    Fail,
    /// Write a reject row naming the file and the error, log it, and go on with the other files.
    Skip,
}

/// Where readings come from and how their fields map to sensor, time and value.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourceConfig {
    /// Source kind: `parquet`, `csv` or `kafka`.
    pub kind: SourceKind,
    /// Files: a path or a glob (`fixtures/*.parquet`), relative to the current directory.
    #[serde(default = "empty")]
    #[schemars(with = "String")]
    pub path: Spanned<String>,
    /// Kafka topics and message format (kind = "kafka").
    #[serde(default)]
    pub kafka: Option<super::kafka::KafkaSource>,
    /// Which input columns hold the sensor id, the event time, the value and the quality flag.
    #[serde(default)]
    pub columns: ColumnMapping,
    /// Unit of integer time columns (Timestamp columns carry their own unit).
    #[serde(default)]
    pub time_unit: TimeUnit,
    /// Time zone for timestamps without one: `UTC`, a fixed offset such as `+02:00`, or an
    /// IANA name such as `Europe/Berlin` (daylight saving followed). Timestamps that carry an
    /// offset (RFC 3339 `Z`, `+02:00`) keep it.
    #[serde(default = "default_tz")]
    #[schemars(with = "String")]
    pub time_zone: Spanned<String>,
    /// Largest expected disorder of event time within one input partition (file); the
    /// watermark trails the largest time seen by this much.
    #[serde(default)]
    pub max_out_of_orderness: Duration,
    /// Rows read per batch.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// What to do with a file that cannot be read.
    #[serde(default)]
    pub on_bad_file: OnBadFile,
    /// CSV options (kind = "csv").
    #[serde(default)]
    pub csv: CsvOptions,
    /// Read each Parquet row group as its own input partition, so several workers decode one
    /// file (the outputs are the same either way). Off by default: on the benchmark workload
    /// the cross-worker buffering costs more than parallel decoding gains (docs/performance.md).
    #[serde(default)]
    pub split_row_groups: bool,
}

pub(super) fn empty() -> Spanned<String> {
    Spanned::new(0..0, String::new())
}
fn default_tz() -> Spanned<String> {
    Spanned::new(0..0, "UTC".to_string())
}
fn default_batch_rows() -> usize {
    65_536
}

/// Input column names.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ColumnMapping {
    /// Column with the sensor id (string or integer).
    #[serde(default = "col_sensor")]
    pub sensor: String,
    /// Column with the event time (integer in `time-unit`, or an Arrow timestamp).
    #[serde(default = "col_time")]
    pub time: String,
    /// Column with the reading (any numeric type).
    #[serde(default = "col_value")]
    pub value: String,
    /// Optional column with a quality flag (boolean: true = good, or integer: 0 = good).
    #[serde(default)]
    pub quality: Option<String>,
}

impl Default for ColumnMapping {
    fn default() -> Self {
        Self {
            sensor: col_sensor(),
            time: col_time(),
            value: col_value(),
            quality: None,
        }
    }
}
fn col_sensor() -> String {
    "sensor_id".into()
}
fn col_time() -> String {
    "ts".into()
}
fn col_value() -> String {
    "value".into()
}

/// What to do with NaN or infinite values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NonFinitePolicy {
    /// Send the reading to the rejects output with the reason.
    #[default]
    Reject,
    /// Drop the reading and count it.
    Drop,
}

/// How gaps in a sensor's series are filled before features are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FillMethod {
    /// No filling.
    #[default]
    None,
    /// Repeat the last reading.
    Hold,
    /// Interpolate linearly between the readings around the gap.
    Linear,
}

/// Cleaning applied to every reading.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CleanConfig {
    /// NaN and infinite values.
    #[serde(default)]
    pub non_finite: NonFinitePolicy,
    /// Readings whose quality flag says bad are rejected when true.
    #[serde(default = "yes")]
    pub reject_bad_quality: bool,
    /// Keep one reading per (sensor, event time); the others go to rejects as duplicates.
    #[serde(default = "yes")]
    pub dedup: bool,
    /// Per sensor class: valid range and unit scaling. The first class whose pattern matches a
    /// sensor id applies.
    #[serde(default)]
    pub class: Vec<SensorClass>,
    /// The classes are the sensor registry: a reading of a sensor that no `[[clean.class]]`
    /// matches is rejected as an unknown sensor.
    #[serde(default)]
    pub known_sensors_only: bool,
    /// Gap filling.
    #[serde(default)]
    pub fill: FillConfig,
    /// Earliest event time accepted (`YYYY-MM-DD` or RFC 3339, UTC unless it has an offset);
    /// a reading before it is rejected (a Kafka message holding one goes to the dead-letter
    /// topic), so a broken clock cannot move the watermark.
    #[serde(default = "default_min_time")]
    #[schemars(with = "String")]
    pub min_time: Spanned<String>,
    /// First event time no longer accepted (exclusive bound, like `min-time`).
    #[serde(default = "default_max_time")]
    #[schemars(with = "String")]
    pub max_time: Spanned<String>,
}

fn default_min_time() -> Spanned<String> {
    Spanned::new(0..0, "1970-01-01".to_string())
}
fn default_max_time() -> Spanned<String> {
    Spanned::new(0..0, "2200-01-01".to_string())
}

fn yes() -> bool {
    true
}

impl Default for CleanConfig {
    fn default() -> Self {
        Self {
            non_finite: NonFinitePolicy::Reject,
            reject_bad_quality: true,
            dedup: true,
            class: Vec::new(),
            known_sensors_only: false,
            fill: FillConfig::default(),
            min_time: default_min_time(),
            max_time: default_max_time(),
        }
    }
}

/// A class of sensors chosen by a glob on the sensor id.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SensorClass {
    /// Glob on the sensor id (`*` any run of characters, `?` one character), e.g. `"*-temp"`.
    #[serde(rename = "match")]
    #[schemars(with = "String")]
    pub pattern: Spanned<String>,
    /// Smallest valid value (after scaling); smaller readings are rejected.
    #[serde(default)]
    pub min: Option<f64>,
    /// Largest valid value (after scaling); larger readings are rejected.
    #[serde(default)]
    pub max: Option<f64>,
    /// Unit scaling: value = raw * scale + offset.
    #[serde(default = "one")]
    pub scale: f64,
    /// Unit offset: value = raw * scale + offset.
    #[serde(default)]
    pub offset: f64,
}

pub(super) fn one_u32() -> u32 {
    1
}
fn one() -> f64 {
    1.0
}

/// Gap filling on a regular grid.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FillConfig {
    /// `none`, `hold` or `linear`.
    #[serde(default)]
    pub method: FillMethod,
    /// The sensor's nominal sampling interval: a gap is a stretch longer than this.
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// Gaps longer than this are left unfilled (the sensor was down, not sparse).
    #[serde(default = "default_max_gap")]
    pub max_gap: Duration,
}

impl Default for FillConfig {
    fn default() -> Self {
        Self {
            method: FillMethod::None,
            interval: default_interval(),
            max_gap: default_max_gap(),
        }
    }
}
fn default_interval() -> Duration {
    Duration::from_ms(1_000)
}
fn default_max_gap() -> Duration {
    Duration::from_ms(10_000)
}

/// Tumbling or sliding windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WindowKind {
    /// Back-to-back windows of `size`.
    Tumbling,
    /// Windows of `size` starting every `slide`.
    Sliding,
}

/// Event-time windows, aligned to the Unix epoch.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WindowConfig {
    /// `tumbling` or `sliding`.
    pub kind: WindowKind,
    /// Length of a window.
    #[schemars(with = "Duration")]
    pub size: Spanned<Duration>,
    /// Distance between window starts (sliding windows only; must not exceed `size`).
    #[serde(default)]
    #[schemars(with = "Option<Duration>")]
    pub slide: Option<Spanned<Duration>>,
    /// How long after its end (in event time, beyond the source's out-of-orderness) a window
    /// waits for readings before it is computed. Readings later than that go to the late output.
    #[serde(default)]
    pub allowed_lateness: Duration,
}

/// Features computed per (sensor, window).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FeaturesConfig {
    /// Which features: count, mean, std, min, max, rms, skewness, kurtosis, slope,
    /// peak-to-peak, mean-crossing-rate. Spectral bands are declared in `band`.
    #[serde(default = "default_features")]
    #[schemars(with = "Vec<String>")]
    pub compute: Spanned<Vec<Spanned<String>>>,
    /// Spectral band energies (power of the mean-removed window in a frequency band).
    #[serde(default)]
    pub band: Vec<BandConfig>,
}

impl Default for FeaturesConfig {
    fn default() -> Self {
        Self {
            compute: default_features(),
            band: Vec::new(),
        }
    }
}

fn default_features() -> Spanned<Vec<Spanned<String>>> {
    let names = ["count", "mean", "std", "min", "max"];
    Spanned::new(
        0..0,
        names
            .iter()
            .map(|n| Spanned::new(0..0, n.to_string()))
            .collect(),
    )
}

/// One spectral band.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BandConfig {
    /// The feature's name (usable in rules), e.g. `band_bearing`.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Lower edge in Hz (inclusive).
    pub low_hz: f64,
    /// Upper edge in Hz (exclusive).
    #[schemars(with = "f64")]
    pub high_hz: Spanned<f64>,
}

/// Checkpoints (`[recovery]`): every `checkpoint-interval` the run saves, at a cut in event
/// time, every source partition's position, every worker's open windows and detector,
/// calibration and episode state, the incidents' state, and the sinks' durable positions;
/// `--resume` goes on from the newest one (`hyflow run` on its own, with any number of
/// workers), and the outputs then hold exactly the rows of a run never stopped (see
/// docs/recovery.md for what is not covered yet). `hyflow run` takes them with these
/// defaults when the section is absent; a replay only with the section.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RecoveryConfig {
    /// `false`: no checkpoints, for `hyflow run` too (offsets are then committed as the
    /// outputs become durable, and a restart re-learns detector state from nothing).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Directory of the checkpoint files. Default: `checkpoints` beside the first Parquet
    /// sink's directory (`out/windows` → `out/checkpoints`).
    #[serde(default)]
    pub dir: Option<String>,
    /// How often a checkpoint is taken (wall clock).
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval: Duration,
    /// How many checkpoints are kept (the newest; at least 1). An older one is used when a
    /// newer one is damaged.
    #[serde(default = "default_keep")]
    pub keep: usize,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: None,
            checkpoint_interval: default_checkpoint_interval(),
            keep: default_keep(),
        }
    }
}

fn default_checkpoint_interval() -> Duration {
    Duration::from_ms(30_000)
}

fn default_keep() -> usize {
    3
}

/// Compute device.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ComputeConfig {
    /// `auto` (route each batch to the CPU or GPU 0 by measured cost, two batches in flight on
    /// the GPU per worker; the CPU alone when CUDA is absent), `cpu`, or `cuda:N` (GPU N, each
    /// failed batch recomputed on the CPU; the run fails to start when CUDA is absent). The
    /// cell detectors follow: on the device with their state kept there (cuda/score.cu), each
    /// batch of windows scored there or, by cost or after an error, on the CPU, with the same
    /// scores. For tests, in builds with the `kernel-emulation` feature only: `emu:N` runs
    /// cuda/features.cu and cuda/score.cu on the host as a device (like `cuda:N`), `auto-emu`
    /// routes between the CPU and `emu:0` (like `auto`).
    #[serde(default = "default_device")]
    #[schemars(with = "String")]
    pub device: Spanned<String>,
    /// With a GPU, windows closed at different times are gathered into one batch for it; the
    /// batch closes at this many windows... (On the CPU alone batches go as windows close.)
    #[serde(default = "default_batch_windows")]
    pub max_batch_windows: usize,
    /// ...or this long after its first window, whichever comes first.
    #[serde(default = "default_batch_delay")]
    pub max_batch_delay: Duration,
    /// Fraction of GPU batches (features, and detectors separately) recomputed on the CPU to
    /// check the GPU's results (0 = never). Detector scores must match exactly.
    #[serde(default = "default_cross_check")]
    pub cross_check: f64,
    /// Largest relative difference the cross-check accepts silently; larger ones are logged.
    #[serde(default = "default_cross_tol")]
    pub cross_check_tolerance: f64,
}

impl Default for ComputeConfig {
    fn default() -> Self {
        Self {
            device: default_device(),
            max_batch_windows: default_batch_windows(),
            max_batch_delay: default_batch_delay(),
            cross_check: default_cross_check(),
            cross_check_tolerance: default_cross_tol(),
        }
    }
}
fn default_device() -> Spanned<String> {
    Spanned::new(0..0, "auto".into())
}
fn default_batch_windows() -> usize {
    4096
}
fn default_cross_check() -> f64 {
    0.01
}
fn default_cross_tol() -> f64 {
    1e-9
}
fn default_batch_delay() -> Duration {
    Duration::from_ms(50)
}
