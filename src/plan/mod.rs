//! The plan: a pipeline file validated into what the dataflow runs. [`load`] reads the file
//! (`config`, the schema), checks every section (`validate.rs`; detector options in
//! `detectors.rs`, Kafka settings in `kafka.rs`), and derives what the stages need: the
//! feature set, compiled rules, detector specs, sensor classes, the time zone and range, the
//! device and the watermark delay. Everything wrong is reported at once, each with its file,
//! line and column.

mod detectors;
mod features;
mod input;
mod io;
mod kafka;
mod outputs;
mod registry;
mod rules;
mod testcases;
mod validate;
mod vocabulary;
mod window;

use crate::config::{ConfigError, Locator, PipelineConfig};
use crate::stages::clean::Classes;
use crate::stages::detect::DetectorSpec;
use crate::stages::features::FeatureSet;
use crate::stages::rules::CompiledRule;
use crate::stages::window::WindowSpec;
use std::path::{Path, PathBuf};

pub use io::{Feed, FileKind, ParquetTarget, SinkPlan, SinkTarget, SourcePlan};
pub use registry::RegistryPlan;

/// Reads, parses and validates a pipeline file, reporting every mistake found.
pub fn load(path: &Path) -> Result<Plan, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    parse(path, &text)
}

/// Reads and parses a pipeline file, lets `edit` change it (command-line overrides such as
/// `--device`), then validates the result: an override is checked as the file is.
pub fn load_with(path: &Path, edit: impl FnOnce(&mut PipelineConfig)) -> Result<Plan, ConfigError> {
    load_with_sets(path, &[], edit)
}

/// [`load_with`], with `--set KEY.PATH=VALUE` settings (`config::set`) applied first.
pub fn load_with_sets(
    path: &Path,
    sets: &[(String, String)],
    edit: impl FnOnce(&mut PipelineConfig),
) -> Result<Plan, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let text = expand(path, &text)?;
    let loc = Locator::new(path, &text);
    let mut config: PipelineConfig =
        crate::config::set::from_toml_with(&loc, sets).map_err(|e| with_rules(&loc, e))?;
    edit(&mut config);
    validate::validate(&loc, config).map_err(ConfigError::Invalid)
}

/// Parses and validates pipeline text; `path` is used for messages.
pub fn parse(path: &Path, text: &str) -> Result<Plan, ConfigError> {
    let text = expand(path, text)?;
    let loc = Locator::new(path, &text);
    let config: PipelineConfig = crate::config::from_toml(&loc).map_err(|e| with_rules(&loc, e))?;
    validate::validate(&loc, config).map_err(ConfigError::Invalid)
}

/// A file whose sections did not all parse: its parse errors, and the mistakes of its rules
/// (when `[features]` and `[[rules]]` parse), in file order.
fn with_rules(loc: &Locator, e: ConfigError) -> ConfigError {
    match e {
        ConfigError::Invalid(mut errs) => {
            errs.extend(validate::rules_alone(loc));
            errs.sort_by_key(|d| (d.line, d.column));
            errs.dedup_by(|a, b| {
                a.line == b.line && a.column == b.column && a.message == b.message
            });
            ConfigError::Invalid(errs)
        }
        other => other,
    }
}

/// Pipeline text with its environment variables substituted (`${VAR}`, `${VAR:-default}`,
/// `$$`; `config/vars.rs`). Later messages point into the substituted text.
fn expand(path: &Path, text: &str) -> Result<String, ConfigError> {
    let loc = Locator::new(path, text);
    crate::config::vars::substitute(&loc, |name| std::env::var(name).ok())
        .map_err(ConfigError::Invalid)
}

/// The most windows one reading may belong to (window size / slide).
pub const MAX_WINDOWS_PER_READING: i64 = 1000;

/// A `[compute] device` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// `cpu`.
    Cpu,
    /// `cuda:N`.
    Cuda(usize),
    /// `auto`: routing between the CPU and cuda:0 by cost (the CPU alone without CUDA).
    Auto,
    /// `emu:N` (tests; builds with `kernel-emulation`): the kernels run on the host as a device.
    Emu(usize),
    /// `auto-emu` (tests): routing between the CPU and `emu:0` by cost.
    AutoEmu,
}

impl Device {
    /// The setting `dev`, if hyflow knows it.
    pub fn parse(dev: &str) -> Option<Self> {
        let numbered = |prefix: &str| dev.strip_prefix(prefix)?.parse::<usize>().ok();
        match dev {
            "cpu" => Some(Device::Cpu),
            "auto" => Some(Device::Auto),
            "auto-emu" => Some(Device::AutoEmu),
            _ => numbered("cuda:")
                .map(Device::Cuda)
                .or_else(|| numbered("emu:").map(Device::Emu)),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
            Device::Auto => write!(f, "auto"),
            Device::Emu(n) => write!(f, "emu:{n}"),
            Device::AutoEmu => write!(f, "auto-emu"),
        }
    }
}

/// Checks a `--device` option (the settings `[compute] device` takes), before it overrides
/// the file's.
pub fn device_option(device: &str) -> Result<(), String> {
    if known_device(device) {
        Ok(())
    } else {
        Err(format!(
            "unknown device {device:?}: use \"auto\", \"cpu\" or \"cuda:N\""
        ))
    }
}

/// True for the `[compute] device` settings hyflow knows: `auto`, `cpu`, `cuda:N`, and for
/// tests `emu:N` and `auto-emu`.
pub fn known_device(dev: &str) -> bool {
    Device::parse(dev).is_some()
}

/// The per-reading checks of `[clean]` besides classes, non-finite values and the time range.
#[derive(Clone, Debug)]
pub struct CleanPlan {
    /// Readings whose quality flag says bad are rejected.
    pub reject_bad_quality: bool,
    /// A second reading of a sensor at the same time is rejected.
    pub dedup: bool,
    /// Readings of sensors no class matches are rejected.
    pub known_sensors_only: bool,
    /// `min-time` and `max-time` as written (for reject messages).
    pub time_range_text: (String, String),
}

/// `[compute]` besides the device.
#[derive(Clone, Copy, Debug)]
pub struct ComputePlan {
    /// The most windows in one accelerator batch.
    pub max_batch_windows: usize,
    /// How long a batch for an accelerator may wait for more windows (ms).
    pub max_batch_delay_ms: i64,
    /// The fraction of an accelerator's batches recomputed on the CPU.
    pub cross_check: f64,
    /// The relative difference of features the cross-check accepts silently.
    pub cross_check_tolerance: f64,
}

/// Checkpoints, resolved (`[recovery]`).
#[derive(Clone, Debug)]
pub struct RecoveryPlan {
    /// Where checkpoint files go.
    pub dir: PathBuf,
    /// How often one is taken (ms, wall clock).
    pub every_ms: i64,
    /// How many are kept.
    pub keep: usize,
}

/// A validated pipeline: the parsed file plus everything derived from it. The dataflow is
/// built from a plan alone.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The sensor registry and topology (`[registry]`), read and checked.
    pub registry: Option<RegistryPlan>,
    /// The pipeline's name.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// The text of the file (diagnostics of [`Plan::with_config`] point into it).
    pub text: std::sync::Arc<str>,
    /// `[compute] device`, parsed.
    pub device: Device,
    /// How windows are batched for the engines and cross-checked (`[compute]`).
    pub compute: ComputePlan,
    /// Checkpoints (`[recovery]`), when taken.
    pub recovery: Option<RecoveryPlan>,
    /// The file turns checkpoints off (`[recovery] enabled = false`): `recovery` is None and
    /// `hyflow run` takes none by default either.
    pub checkpoints_off: bool,
    /// Where readings come from.
    pub source: SourcePlan,
    /// Where outputs go, one per `[[sink]]`.
    pub sinks: Vec<SinkPlan>,
    /// How far a partition's watermark trails the largest event time it has read (ms):
    /// `[source] max-out-of-orderness` + `[window] allowed-lateness`.
    pub watermark_delay: i64,
    /// How far (event time, ms) a source may read ahead of what the sinks have finished
    /// before it waits (backpressure): 4 × (window size + watermark delay).
    pub lead: i64,
    /// The definition as written (with defaults filled in).
    pub config: PipelineConfig,
    /// Features in row order.
    pub features: FeatureSet,
    /// Rules in file order.
    pub rules: Vec<CompiledRule>,
    /// Window assignment.
    pub window: WindowSpec,
    /// Detectors with feature indices resolved.
    pub detectors: Vec<DetectorSpec>,
    /// Gap filling (`[clean.fill]`).
    pub fill: crate::stages::window::Fill,
    /// What happens to NaN and infinite values (`[clean] non-finite`).
    pub non_finite: crate::stages::clean::NonFinitePolicy,
    /// Fusion, calibration and episode settings (`[fuse]`).
    pub fuse: crate::stages::detect::Fuse,
    /// Sensor classes for range checks and unit scaling.
    pub classes: Classes,
    /// The zone of naive timestamps (`[source] time-zone`).
    pub zone: crate::timefmt::Zone,
    /// Event times accepted: `[clean] min-time` (inclusive) to `max-time` (exclusive), ms.
    pub time_range: (i64, i64),
    /// The rest of `[clean]`.
    pub clean: CleanPlan,
    /// Windows a detector sees before it may score (`[detect] warmup`).
    pub warmup: u32,
}

impl Plan {
    /// True when a run tracks incidents: a registry (the topology) and an incidents sink.
    pub fn tracks_incidents(&self) -> bool {
        self.registry.is_some()
            && self
                .sinks
                .iter()
                .any(|k| k.output == crate::config::OutputKind::Incidents)
    }

    /// The checkpoints `hyflow run` takes when the file has no `[recovery]` section: its
    /// defaults, resolved as a section would be.
    pub fn default_recovery(&self) -> RecoveryPlan {
        let mut c = self.config.clone();
        c.recovery = Some(Default::default());
        io::recovery(&c).expect("an enabled section resolves")
    }

    /// This plan's pipeline changed by `edit` (overrides of a run made by the library: test
    /// and scoring sinks, brokers), validated again as a whole, so nothing derived can go
    /// stale and an override is checked as the file is.
    pub fn with_config(&self, edit: impl FnOnce(&mut PipelineConfig)) -> Result<Plan, ConfigError> {
        let mut config = self.config.clone();
        edit(&mut config);
        let loc = Locator::new(&self.file, &self.text);
        validate::validate(&loc, config).map_err(ConfigError::Invalid)
    }
}
