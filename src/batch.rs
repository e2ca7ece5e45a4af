//! The batches that flow between the stages, with their split and concatenation: readings
//! ([`ReadingBatch`], source → window), closed windows ([`WindowBatch`], window → features, the
//! layout the kernels take) and their features ([`FeatureBatch`], features → score); and the
//! rows of the side outputs (rejects, late readings).
//!
//! A [`ReadingBatch`] is a struct of arrays with a sensor dictionary: sensor ids are interned
//! once at the source and travel as dense `u32` indices into the dictionary, which is shared
//! (an `Arc`) between batches in one process and serialized with them across processes.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Readings of many sensors, as columns.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReadingBatch {
    /// The worker this batch is for (exchange key).
    pub dest: u32,
    /// Sensor dictionary: `sensor[i]` indexes it.
    pub names: Arc<Vec<Arc<str>>>,
    /// Sensor of each reading, an index into `names`.
    pub sensor: Vec<u32>,
    /// Event time of each reading, ms since the Unix epoch (UTC).
    pub time: Vec<i64>,
    /// Value of each reading (finite, scaled).
    pub value: Vec<f64>,
    /// For sliding windows only (empty otherwise): the partition's watermark when each reading
    /// was read. A reading joins only windows ending after it; the windows ending at or before
    /// it had closed for its partition.
    pub watermark: Vec<i64>,
}

impl ReadingBatch {
    /// An empty batch for `dest` over dictionary `names`.
    pub fn new(dest: u32, names: Arc<Vec<Arc<str>>>) -> Self {
        Self {
            dest,
            names,
            ..Default::default()
        }
    }
    /// Number of readings.
    pub fn len(&self) -> usize {
        self.time.len()
    }
    /// True when there are no readings.
    pub fn is_empty(&self) -> bool {
        self.time.is_empty()
    }
    /// Appends one reading with the watermark it was read at.
    #[inline]
    pub fn push_seen(&mut self, sensor: u32, time: i64, value: f64, watermark: i64) {
        self.push(sensor, time, value);
        self.watermark.push(watermark);
    }
    /// Appends one reading.
    #[inline]
    pub fn push(&mut self, sensor: u32, time: i64, value: f64) {
        self.sensor.push(sensor);
        self.time.push(time);
        self.value.push(value);
    }
}

/// Why a row was refused, as a category: the run summary counts rejects by it, so that every
/// row in is accounted for (rows in = windowed + rejected + late + dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RejectKind {
    /// A null or unreadable sensor id, time or value.
    Unreadable,
    /// An event time outside `[clean] min-time` .. `max-time`.
    TimeOutOfRange,
    /// A sensor that no `[[clean.class]]` matches, with `known-sensors-only`.
    UnknownSensor,
    /// A bad quality flag.
    BadQuality,
    /// NaN or infinity.
    NonFinite,
    /// A value outside its class's valid range.
    OutOfRange,
    /// A Kafka message that could not be decoded (one row per message).
    Undecodable,
    /// A second reading of a sensor at the same event time.
    Duplicate,
    /// An input file skipped with `on-bad-file = "skip"` (one row per file; its rows are not
    /// counted as read).
    FileSkipped,
    /// A window of a sensor the registry does not hold, with `unknown-sensors = "reject"` (one
    /// row per window; its readings count as windowed, and it is counted as a window
    /// refused, not as rejected rows).
    Unregistered,
    /// A registry topic message that could not be read (one row per message; not a reading,
    /// so not counted among rejected rows: `hyflow_registry_changes_rejected_total`).
    RegistryChange,
}

impl RejectKind {
    /// Every kind, in summary order.
    pub const ALL: [RejectKind; 11] = [
        RejectKind::Unreadable,
        RejectKind::TimeOutOfRange,
        RejectKind::UnknownSensor,
        RejectKind::BadQuality,
        RejectKind::NonFinite,
        RejectKind::OutOfRange,
        RejectKind::Undecodable,
        RejectKind::Duplicate,
        RejectKind::FileSkipped,
        RejectKind::Unregistered,
        RejectKind::RegistryChange,
    ];
    /// Its name in metrics (the `reason` label of `hyflow_rows_rejected_total`).
    pub fn code(self) -> &'static str {
        match self {
            RejectKind::Unreadable => "unreadable",
            RejectKind::TimeOutOfRange => "time_out_of_range",
            RejectKind::UnknownSensor => "unknown_sensor",
            RejectKind::BadQuality => "bad_quality",
            RejectKind::NonFinite => "non_finite",
            RejectKind::OutOfRange => "out_of_range",
            RejectKind::Undecodable => "undecodable",
            RejectKind::Duplicate => "duplicate",
            RejectKind::FileSkipped => "file_skipped",
            RejectKind::Unregistered => "unregistered",
            RejectKind::RegistryChange => "registry_change",
        }
    }
    /// Its name in the summary.
    pub fn label(self) -> &'static str {
        match self {
            RejectKind::Unreadable => "null or unreadable",
            RejectKind::TimeOutOfRange => "time out of range",
            RejectKind::UnknownSensor => "unknown sensor",
            RejectKind::BadQuality => "bad quality",
            RejectKind::NonFinite => "NaN or infinite",
            RejectKind::OutOfRange => "value out of range",
            RejectKind::Undecodable => "undecodable message",
            RejectKind::Duplicate => "duplicate",
            RejectKind::FileSkipped => "file skipped",
            RejectKind::Unregistered => "window of an unregistered sensor",
            RejectKind::RegistryChange => "unreadable registry change",
        }
    }
}

/// A reading (or a whole file) that cleaning refused, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RejectRow {
    /// Input it came from (file path), or the stage that refused it.
    pub source: String,
    /// Row number in that input (0-based), when known.
    pub row: Option<u64>,
    /// Sensor id, when it could be read.
    pub sensor: Option<String>,
    /// Event time (ms), when it could be read.
    pub time: Option<i64>,
    /// Value as read (before scaling), when it could be read.
    pub value: Option<f64>,
    /// Why it was refused.
    pub reason: String,
    /// The reason's category (not written to the outputs; counted in the summary).
    pub kind: RejectKind,
}

/// A reading that arrived after every window it belongs to had been computed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LateRow {
    /// Input it came from.
    pub source: String,
    /// Row number in that input (0-based).
    pub row: u64,
    /// Sensor id.
    pub sensor: String,
    /// Event time (ms).
    pub time: i64,
    /// Value (scaled).
    pub value: f64,
    /// The source watermark when it arrived (ms): windows ending at or before it were closed.
    pub watermark: i64,
    /// Why it is late, in words.
    pub reason: String,
}

/// A stable 64-bit hash (FNV-1a) of a sensor id: the same in every process and run, so the
/// exchange by sensor sends a sensor to the same worker everywhere.
pub fn sensor_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Closed windows of many sensors, values concatenated in time order.
#[derive(Clone, Debug, Default)]
pub struct WindowBatch {
    /// Worker-local sensor slot of each window.
    pub slot: Vec<u32>,
    /// Sensor id of each window.
    pub sensor: Vec<Arc<str>>,
    /// Window start (ms, inclusive).
    pub start: Vec<i64>,
    /// Window end (ms, exclusive).
    pub end: Vec<i64>,
    /// Values filled in by gap filling, per window.
    pub filled: Vec<u32>,
    /// `offsets[i]..offsets[i + 1]` are window i's values; `offsets.len() == windows + 1`.
    pub offsets: Vec<u32>,
    /// Event times of all values.
    pub times: Vec<i64>,
    /// All values.
    pub values: Vec<f64>,
    /// Each window's registry view as of its end (`dataflow/registry.rs`); empty when the
    /// pipeline has no registry, `None` for a sensor it rejects as not registered.
    pub registry: Vec<crate::stages::registry::View>,
}

impl WindowBatch {
    /// Number of windows.
    pub fn len(&self) -> usize {
        self.start.len()
    }
    /// True when it holds no window.
    pub fn is_empty(&self) -> bool {
        self.start.is_empty()
    }
    /// Begins a window; push its times and values, then call [`Self::finish_window`].
    pub fn push_window(&mut self, slot: u32, sensor: Arc<str>, start: i64, end: i64) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.slot.push(slot);
        self.sensor.push(sensor);
        self.start.push(start);
        self.end.push(end);
    }
    /// Ends the window begun last.
    pub fn finish_window(&mut self, filled: u32) {
        self.filled.push(filled);
        self.offsets.push(self.values.len() as u32);
    }
    /// Values of window `i`.
    pub fn window(&self, i: usize) -> (&[i64], &[f64]) {
        let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        (&self.times[a..b], &self.values[a..b])
    }
}

/// One row of features per window, row-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeatureBatch {
    /// Features per row.
    pub width: usize,
    /// `rows × width` values.
    pub data: Vec<f64>,
}

impl FeatureBatch {
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.width..(i + 1) * self.width]
    }

    /// Rows `keep` (in that order), as a batch of their own.
    pub fn select(&self, keep: &[usize]) -> FeatureBatch {
        FeatureBatch {
            width: self.width,
            data: keep.iter().flat_map(|&i| self.row(i)).copied().collect(),
        }
    }

    /// Rows `from..from + n`, as a batch of their own.
    pub fn rows(&self, from: usize, n: usize) -> FeatureBatch {
        FeatureBatch {
            width: self.width,
            data: self.data[from * self.width..(from + n) * self.width].to_vec(),
        }
    }
}

impl WindowBatch {
    /// The windows of `parts` in one batch, in order.
    pub fn concat<'a>(parts: impl Iterator<Item = &'a WindowBatch> + Clone) -> WindowBatch {
        let mut all = WindowBatch::default();
        let (windows, values) = parts
            .clone()
            .fold((0, 0), |(w, v), b| (w + b.len(), v + b.values.len()));
        all.times.reserve(values);
        all.values.reserve(values);
        all.offsets.reserve(windows + 1);
        for b in parts {
            b.append_to(&mut all, 0..b.len());
        }
        all
    }

    /// Windows `keep` (in that order), as a batch of their own.
    pub fn select(&self, keep: &[usize]) -> WindowBatch {
        let mut b = WindowBatch::default();
        for &k in keep {
            self.append_to(&mut b, k..k + 1);
        }
        b
    }

    /// This batch as batches of at most `max` windows, in order.
    pub fn split(self, max: usize) -> Vec<WindowBatch> {
        if self.len() <= max {
            return vec![self];
        }
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.len() {
            let j = (i + max).min(self.len());
            let mut b = WindowBatch::default();
            self.append_to(&mut b, i..j);
            out.push(b);
            i = j;
        }
        out
    }

    /// Appends windows `range` of this batch to `to`.
    fn append_to(&self, to: &mut WindowBatch, range: std::ops::Range<usize>) {
        for k in range {
            to.push_window(
                self.slot[k],
                self.sensor[k].clone(),
                self.start[k],
                self.end[k],
            );
            let (ts, vs) = self.window(k);
            to.times.extend_from_slice(ts);
            to.values.extend_from_slice(vs);
            to.finish_window(self.filled[k]);
            if let Some(v) = self.registry.get(k) {
                to.registry.push(v.clone());
            }
        }
    }
}
