//! The [`Decoder`]: turns one partition's record batches into cleaned, routed
//! [`ReadingBatch`]es plus reject and late rows; owns the partition's sensor dictionary and
//! watermark.

use super::columns::*;
use crate::batch::{LateRow, ReadingBatch, RejectKind, RejectRow, sensor_hash};
use crate::plan::Plan;
use crate::stages::clean::{Verdict, Watermark, check_value};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use std::collections::HashMap;
use std::sync::Arc;

/// Per-dictionary-entry facts, computed once per distinct sensor.
#[derive(Clone, Copy)]
struct SensorInfo {
    dest: u32,
    class: Option<u16>,
}

/// What a sensor's readings are exchanged by: the sensor id, or its asset when the pipeline
/// scores assets (`asset_delimiter`: all sensors of an asset must meet on one worker).
pub fn route_key<'n>(name: &'n str, asset_delimiter: Option<&str>) -> &'n str {
    match asset_delimiter {
        Some(d) => crate::stages::detect::asset::asset_of(name, d),
        None => name,
    }
}

/// The worker (of `peers`) that windows and scores everything routed by `key`
/// ([`route_key`]).
pub fn destination(key: &str, peers: u32) -> u32 {
    (sensor_hash(key) % u64::from(peers.max(1))) as u32
}

/// Cleans and routes the readings of one partition. Owns the partition's sensor dictionary
/// and watermark.
pub struct Decoder {
    pipeline: Arc<Plan>,
    peers: u32,
    names: Arc<Vec<Arc<str>>>,
    index: HashMap<Arc<str>, u32>,
    info: Vec<SensorInfo>,
    /// The partition's watermark.
    pub watermark: Watermark,
}

/// What one record batch turned into.
#[derive(Default)]
pub struct Decoded {
    /// Readings per destination worker (empty batches omitted).
    pub batches: Vec<ReadingBatch>,
    /// Rejected rows, each with the timely time to emit it at (see [`Decoder::decode`]).
    pub rejects: Vec<(i64, RejectRow)>,
    /// Late rows, each with the timely time to emit it at.
    pub late: Vec<(i64, LateRow)>,
    /// Rows dropped by policy.
    pub dropped: u64,
}

impl Decoded {
    /// Readings handed on to the windows.
    pub fn accepted(&self) -> u64 {
        self.batches.iter().map(|b| b.len() as u64).sum()
    }
}

impl Decoder {
    /// A decoder for one partition of `pipeline`, routing to `peers` workers.
    /// Its watermark starts from `seed` (see [`Partition::watermark_seed`]).
    pub fn new(pipeline: Arc<Plan>, peers: usize, seed: Option<i64>) -> Self {
        let delay = pipeline.watermark_delay;
        let mut watermark = Watermark::new(delay);
        if let Some(t) = seed {
            watermark.observe(t);
        }
        Self {
            pipeline,
            peers: peers.max(1) as u32,
            names: Arc::new(Vec::new()),
            index: HashMap::new(),
            info: Vec::new(),
            watermark,
        }
    }

    /// What readings are exchanged by: the sensor id, or its asset when the pipeline scores
    /// assets (all sensors of an asset must meet on one worker).
    fn route_key<'n>(&self, name: &'n str) -> &'n str {
        route_key(name, self.pipeline.source.asset_delimiter.as_deref())
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        let name: Arc<str> = Arc::from(name);
        Arc::make_mut(&mut self.names).push(name.clone());
        self.index.insert(name.clone(), i);
        let class = self.pipeline.classes.index_of(&name);
        self.info.push(SensorInfo {
            dest: destination(self.route_key(&name), self.peers),
            class,
        });
        i
    }

    /// Sensor dictionary ids of each row (u32::MAX for null): strings, Arrow dictionaries of
    /// strings with any key type, or integers (as their decimal text).
    fn sensor_ids(&mut self, col: &ArrayRef) -> Vec<u32> {
        let n = col.len();
        let mut ids = vec![u32::MAX; n];
        if let Some(dict) = col.as_any_dictionary_opt() {
            // Each distinct id is interned once per batch.
            let values = dict.values();
            let map = self.sensor_ids(values);
            let nulls = col.nulls();
            for (i, (id, k)) in ids.iter_mut().zip(dict.normalized_keys()).enumerate() {
                if nulls.is_none_or(|n| n.is_valid(i)) {
                    *id = map.get(k).copied().unwrap_or(u32::MAX);
                }
            }
            return ids;
        }
        if each_str(col.as_ref(), |i, s| ids[i] = self.intern(s)) {
            return ids;
        }
        {
            let c = arrow_cast_int(col);
            for (i, id) in ids.iter_mut().enumerate() {
                if let Some(v) = c[i] {
                    *id = self.intern(&v.to_string());
                }
            }
        }
        ids
    }

    /// The first row of `batch` (columns as [`Self::decode`] takes them) after which this
    /// partition's watermark would be at `at` or above; None when it stays below through the
    /// batch. Rows before it emit below `at`, the rest at `at` or later (a checkpoint's cut).
    pub fn crossing(&self, batch: &RecordBatch, at: i64) -> Option<usize> {
        let p = &self.pipeline;
        let (lo, hi) = p.time_range;
        let tfast = fast_ms(batch.column(1), p.source.time_unit);
        let tslow = if tfast.is_none() {
            time_ms(batch.column(1), p.source.time_unit, &p.zone)
        } else {
            Vec::new()
        };
        let mut w = self.watermark.clone();
        for i in 0..batch.num_rows() {
            let t = match tfast {
                Some(s) => Some(s[i]),
                None => tslow[i],
            };
            // As in `decode_rows`: every readable time in the accepted range moves it.
            if let Some(t) = t
                && (lo..hi).contains(&t)
            {
                w.observe(t);
                if w.get() >= at {
                    return Some(i);
                }
            }
        }
        None
    }

    /// Decodes, cleans and routes one batch whose columns are (sensor, time, value[, quality]).
    ///
    /// Reject and late rows carry the timely time to emit them at: the partition's watermark at
    /// that row, raised to `floor` (a lower bound of the input's event times, minus the
    /// watermark delay). Both depend only on the input's row order, not on how it is split into
    /// partitions and batches, so the sinks order these rows the same way in every run.
    pub fn decode(
        &mut self,
        source: &str,
        first_row: u64,
        batch: &RecordBatch,
        floor: i64,
    ) -> Decoded {
        self.decode_rows(source, |i| first_row + i as u64, batch, floor)
    }

    /// As [`Self::decode`], with the input row number of each batch row given by `row_of`
    /// (Kafka: the offset of the message a reading came from).
    pub fn decode_rows(
        &mut self,
        source: &str,
        row_of: impl Fn(usize) -> u64,
        batch: &RecordBatch,
        floor: i64,
    ) -> Decoded {
        let p = self.pipeline.clone();
        let n = batch.num_rows();
        let ids = self.sensor_ids(batch.column(0));
        // Fast paths (no nulls, the common types) read Arrow's buffers in place; the general
        // path converts to Options first.
        let tfast = fast_ms(batch.column(1), p.source.time_unit);
        let tslow = if tfast.is_none() {
            time_ms(batch.column(1), p.source.time_unit, &p.zone)
        } else {
            Vec::new()
        };
        let vfast = fast_f64(batch.column(2));
        let vslow = if vfast.is_none() {
            arrow_cast_f64(batch.column(2))
        } else {
            Vec::new()
        };
        let time_at = |i: usize| match tfast {
            Some(s) => Some(s[i]),
            None => tslow[i],
        };
        let value_at = |i: usize| match vfast {
            Some(s) => Some(s[i]),
            None => vslow[i],
        };
        let quality = batch.columns().get(3).map(quality_flags);
        let mut out = Decoded::default();
        let mut per_dest: Vec<ReadingBatch> = (0..self.peers)
            .map(|d| ReadingBatch::new(d, self.names.clone()))
            .collect();
        let spec = p.window;
        // Tumbling windows need no per-reading watermark: an on-time reading's one window
        // always ends after it.
        let sliding = spec.slide < spec.size;
        let reject = |row: usize,
                      sensor: Option<String>,
                      time: Option<i64>,
                      value: Option<f64>,
                      kind: RejectKind,
                      reason: String| RejectRow {
            source: source.to_string(),
            row: Some(row_of(row)),
            sensor,
            time,
            value,
            reason,
            kind,
        };
        let (lo, hi) = p.time_range;
        for i in 0..n {
            let id = ids[i];
            let name = || (id != u32::MAX).then(|| self.names[id as usize].to_string());
            let (time, value) = (time_at(i), value_at(i));
            // A time outside the accepted range neither moves the watermark nor reaches a
            // window (whose arithmetic it could overflow).
            if let Some(t) = time
                && !(lo..hi).contains(&t)
            {
                out.rejects.push((
                    self.watermark.get().max(floor),
                    reject(
                        i,
                        name(),
                        time,
                        value,
                        RejectKind::TimeOutOfRange,
                        format!(
                            "time {t} ms is outside the accepted range {} .. {} ([clean] min-time, max-time)",
                            p.clean.time_range_text.0, p.clean.time_range_text.1
                        ),
                    ),
                ));
                continue;
            }
            let (Some(t), Some(raw)) = (time, value) else {
                let what = if id == u32::MAX {
                    "sensor id"
                } else if time.is_none() {
                    "time"
                } else {
                    "value"
                };
                if let Some(t) = time {
                    self.watermark.observe(t);
                }
                out.rejects.push((
                    self.watermark.get().max(floor),
                    reject(
                        i,
                        name(),
                        time,
                        value,
                        RejectKind::Unreadable,
                        format!("{what} is null or unreadable"),
                    ),
                ));
                continue;
            };
            if id == u32::MAX {
                self.watermark.observe(t);
                out.rejects.push((
                    self.watermark.get().max(floor),
                    reject(
                        i,
                        None,
                        Some(t),
                        Some(raw),
                        RejectKind::Unreadable,
                        "sensor id is null".into(),
                    ),
                ));
                continue;
            }
            let info = self.info[id as usize];
            if info.class.is_none() && p.clean.known_sensors_only {
                self.watermark.observe(t);
                out.rejects.push((
                    self.watermark.get().max(floor),
                    reject(
                        i,
                        name(),
                        Some(t),
                        Some(raw),
                        RejectKind::UnknownSensor,
                        "unknown sensor: no [[clean.class]] matches its id".into(),
                    ),
                ));
                continue;
            }
            let class = info.class.map(|c| p.classes.get(c));
            let good = quality.as_ref().is_none_or(|q| q[i]);
            match check_value(raw, good, class, p.non_finite, p.clean.reject_bad_quality) {
                Verdict::Keep(v) => {
                    let wm = self.watermark.get();
                    let late = self.watermark.is_late(t, &spec);
                    self.watermark.observe(t);
                    if late {
                        out.late.push((wm.max(floor), LateRow {
                            source: source.to_string(),
                            row: row_of(i),
                            sensor: self.names[id as usize].to_string(),
                            time: t,
                            value: v,
                            watermark: wm,
                            reason: format!("every window containing {t} ended by the watermark {wm} (latest window end {})", spec.last_end(t)),
                        }));
                        continue;
                    }
                    if sliding {
                        per_dest[info.dest as usize].push_seen(id, t, v, wm);
                    } else {
                        per_dest[info.dest as usize].push(id, t, v);
                    }
                }
                Verdict::Reject(kind, reason) => {
                    self.watermark.observe(t);
                    out.rejects.push((
                        self.watermark.get().max(floor),
                        reject(i, name(), Some(t), Some(raw), kind, reason),
                    ));
                }
                Verdict::Drop => {
                    self.watermark.observe(t);
                    out.dropped += 1;
                }
            }
        }
        out.batches = per_dest.into_iter().filter(|b| !b.is_empty()).collect();
        out
    }
}
