//! The events spine: one type per thing that happens in a run (readings decoded, rejected,
//! late, dead-lettered; windows closed; batches routed, spilled, failed; devices lost;
//! cross-checks; offsets committed; outputs made durable; alert events). Emitting an event logs
//! it with structured fields (`tracing`) and updates its metrics through the `metrics` facade,
//! which reaches the run's [`Recorder`] (installed on each worker thread). The run summary,
//! the progress lines and the Prometheus endpoint ([`endpoint`]) all read that recorder.

pub mod catalog;
pub mod endpoint;
mod recorder;

pub use recorder::Recorder;

use crate::batch::{RejectKind, RejectRow};
use metrics::{counter, gauge, histogram};

/// Something that happened in a run.
pub trait Event {
    /// Logs it and updates its metrics.
    fn emit(self);
}

/// A batch of input rows decoded and cleaned by a source.
pub struct RowsDecoded<'a> {
    /// The partition (file or topic/partition) they came from.
    pub partition: &'a str,
    /// Rows read.
    pub rows: u64,
    /// Readings handed to the windows.
    pub accepted: u64,
    /// Rows rejected.
    pub rejects: &'a [(i64, RejectRow)],
    /// Late rows.
    pub late: u64,
    /// Rows dropped by the non-finite policy.
    pub dropped: u64,
}

impl Event for RowsDecoded<'_> {
    fn emit(self) {
        tracing::trace!(
            partition = self.partition,
            rows = self.rows,
            accepted = self.accepted,
            rejected = self.rejects.len(),
            late = self.late,
            dropped = self.dropped,
            "rows decoded"
        );
        counter!("hyflow_rows_read_total").increment(self.rows);
        counter!("hyflow_readings_accepted_total").increment(self.accepted);
        if self.late > 0 {
            counter!("hyflow_rows_late_total").increment(self.late);
        }
        if self.dropped > 0 {
            counter!("hyflow_rows_dropped_total").increment(self.dropped);
        }
        RowsRejected {
            rows: self.rejects.iter().map(|r| &r.1),
        }
        .emit();
    }
}

/// Rows refused, each with its reason.
pub struct RowsRejected<'a, I: Iterator<Item = &'a RejectRow>> {
    /// The rows.
    pub rows: I,
}

impl<'a, I: Iterator<Item = &'a RejectRow>> Event for RowsRejected<'a, I> {
    fn emit(self) {
        let mut by = [0u64; RejectKind::ALL.len()];
        for r in self.rows {
            let k = RejectKind::ALL.iter().position(|k| *k == r.kind);
            by[k.unwrap_or_default()] += 1;
            tracing::trace!(source = %r.source, row = r.row, reason = %r.reason, "row rejected");
        }
        for (kind, n) in RejectKind::ALL.iter().zip(by) {
            if n > 0 {
                counter!("hyflow_rows_rejected_total", "reason" => kind.code()).increment(n);
            }
        }
    }
}

/// An undecodable Kafka message sent to the dead-letter topic.
pub struct DeadLettered<'a> {
    /// The dead-letter topic.
    pub topic: &'a str,
    /// Where the message came from.
    pub from: &'a str,
    /// Its offset there.
    pub offset: i64,
    /// Why it could not be decoded.
    pub reason: &'a str,
}

impl Event for DeadLettered<'_> {
    fn emit(self) {
        tracing::debug!(
            topic = self.topic,
            from = self.from,
            offset = self.offset,
            reason = self.reason,
            "message dead-lettered"
        );
        counter!("hyflow_dead_letters_total", "topic" => self.topic.to_string()).increment(1);
    }
}

/// A Kafka partition's position: its watermark and what is left to read.
pub struct PartitionProgress<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Its watermark (event time, ms), when it has one.
    pub watermark_ms: Option<i64>,
    /// Messages not read yet, when the broker's high watermark is known.
    pub lag: Option<i64>,
}

impl Event for PartitionProgress<'_> {
    fn emit(self) {
        let (t, p) = (self.topic.to_string(), self.partition.to_string());
        if let Some(w) = self.watermark_ms {
            gauge!("hyflow_partition_watermark_timestamp_seconds", "topic" => t.clone(), "partition" => p.clone())
                .set(w as f64 / 1000.0);
        }
        if let Some(lag) = self.lag {
            gauge!("hyflow_consumer_lag", "topic" => t, "partition" => p).set(lag.max(0) as f64);
        }
    }
}

/// Windows computed and scored.
pub struct WindowsClosed {
    /// How many.
    pub windows: u64,
    /// Live runs: wall-clock seconds from the windows' end to now.
    pub lag_seconds: Option<f64>,
}

impl Event for WindowsClosed {
    fn emit(self) {
        counter!("hyflow_windows_closed_total").increment(self.windows);
        if let Some(lag) = self.lag_seconds {
            histogram!("hyflow_window_close_lag_seconds").record(lag);
        }
    }
}

/// Windows not scored because the registry does not hold their sensor
/// (`unknown-sensors = "reject"`); each went to the rejects output.
pub struct WindowsUnregistered {
    /// How many.
    pub windows: u64,
}

impl Event for WindowsUnregistered {
    fn emit(self) {
        if self.windows > 0 {
            tracing::debug!(
                windows = self.windows,
                "windows of unregistered sensors rejected"
            );
            counter!("hyflow_windows_unregistered_total").increment(self.windows);
        }
    }
}

/// Messages of the registry topic read by a live run.
pub struct RegistryChangesRead {
    /// Changes applied.
    pub applied: u64,
    /// Of those, changes whose effective time had passed (applied from the windows not yet
    /// scored).
    pub late: u64,
    /// Messages that could not be read (sent to the rejects output).
    pub rejected: u64,
}

impl Event for RegistryChangesRead {
    fn emit(self) {
        tracing::debug!(
            applied = self.applied,
            late = self.late,
            rejected = self.rejected,
            "registry changes read"
        );
        counter!("hyflow_registry_changes_total").increment(self.applied);
        counter!("hyflow_registry_changes_late_total").increment(self.late);
        counter!("hyflow_registry_changes_rejected_total").increment(self.rejected);
    }
}

/// Which stage an engine computed a batch for.
#[derive(Clone, Copy, Debug)]
pub enum Stage {
    /// Feature extraction (`compute::scheduler`).
    Features,
    /// Detector scoring (`compute::detect`).
    Detect,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Features => "features",
            Stage::Detect => "detect",
        }
    }
}

/// Why the router sent a batch where it did (`compute::router`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Measuring the engine's cost.
    Probe,
    /// The engine predicted to finish it soonest.
    Cost,
    /// The configured device (`cuda:N`).
    Dedicated,
    /// No accelerator is left: the CPU.
    CpuOnly,
}

impl Route {
    fn as_str(self) -> &'static str {
        match self {
            Route::Probe => "probe",
            Route::Cost => "cost",
            Route::Dedicated => "dedicated",
            Route::CpuOnly => "cpu-only",
        }
    }
}

/// A batch routed to an engine.
pub struct BatchRouted<'a> {
    /// The stage.
    pub stage: Stage,
    /// The engine chosen.
    pub engine: &'a str,
    /// Windows in the batch.
    pub windows: u64,
    /// Why.
    pub route: Route,
}

impl Event for BatchRouted<'_> {
    fn emit(self) {
        let (stage, engine, route) = (self.stage.as_str(), self.engine, self.route.as_str());
        tracing::trace!(stage, engine, route, windows = self.windows, "batch routed");
        counter!("hyflow_batches_routed_total", "stage" => stage, "engine" => engine.to_string(), "route" => route)
            .increment(1);
    }
}

/// A batch an engine computed.
pub struct BatchComputed<'a> {
    /// The stage.
    pub stage: Stage,
    /// The engine (`cpu`, `cuda:0`, `emu:0`).
    pub engine: &'a str,
    /// Windows in the batch.
    pub windows: u64,
    /// Busy seconds.
    pub seconds: f64,
}

impl Event for BatchComputed<'_> {
    fn emit(self) {
        let (s, e) = (self.stage.as_str(), self.engine.to_string());
        histogram!("hyflow_batch_seconds", "stage" => s, "engine" => e.clone())
            .record(self.seconds);
        counter!("hyflow_batch_windows_total", "stage" => s, "engine" => e).increment(self.windows);
    }
}

/// A feature batch an accelerator had no room for, computed on the CPU.
pub struct BatchSpilled<'a> {
    /// The accelerator.
    pub engine: &'a str,
    /// Windows in the batch.
    pub windows: u64,
}

impl Event for BatchSpilled<'_> {
    fn emit(self) {
        tracing::debug!(
            engine = self.engine,
            windows = self.windows,
            "batch spilled to the CPU"
        );
        counter!("hyflow_batches_spilled_total", "engine" => self.engine.to_string()).increment(1);
    }
}

/// A batch an engine failed; it is recomputed on the CPU.
pub struct BatchFailed<'a> {
    /// The stage.
    pub stage: Stage,
    /// The engine.
    pub engine: &'a str,
    /// Windows in the batch.
    pub windows: u64,
    /// The error.
    pub error: &'a dyn std::fmt::Display,
    /// The engine is lost with it (every later batch goes to the CPU).
    pub lost: bool,
}

impl Event for BatchFailed<'_> {
    fn emit(self) {
        let (stage, engine, windows) = (self.stage.as_str(), self.engine, self.windows);
        match self.stage {
            Stage::Features => tracing::warn!(
                stage,
                engine,
                windows,
                "{engine} failed a batch of {windows} windows, recomputing it on the CPU: {}",
                self.error
            ),
            Stage::Detect => tracing::warn!(
                stage,
                engine,
                windows,
                "{engine}: scoring detectors failed ({}); this batch is scored on the CPU{}",
                self.error,
                if self.lost {
                    ", and every later one"
                } else {
                    ""
                }
            ),
        }
        counter!("hyflow_batch_failures_total", "stage" => self.stage.as_str(), "engine" => self.engine.to_string())
            .increment(1);
    }
}

/// An engine taken out of the run.
pub struct DeviceLost<'a> {
    /// The stage.
    pub stage: Stage,
    /// The engine.
    pub engine: &'a str,
    /// Why.
    pub reason: &'a str,
}

impl Event for DeviceLost<'_> {
    fn emit(self) {
        tracing::error!(
            stage = self.stage.as_str(),
            engine = self.engine,
            "{} {}: routing everything to the CPU from now on",
            self.engine,
            self.reason
        );
        counter!("hyflow_devices_lost_total", "stage" => self.stage.as_str(), "engine" => self.engine.to_string())
            .increment(1);
    }
}

/// An accelerator batch compared with the CPU reference.
pub struct CrossChecked<'a> {
    /// The stage.
    pub stage: Stage,
    /// The engine.
    pub engine: &'a str,
    /// Windows in the batch.
    pub windows: u64,
    /// Largest absolute difference.
    pub max_abs: f64,
    /// Largest relative difference (features), when measured.
    pub max_rel: Option<f64>,
    /// True when the difference is beyond tolerance (or not bit-exact, for detectors).
    pub mismatch: bool,
}

impl Event for CrossChecked<'_> {
    fn emit(self) {
        let (s, e) = (self.stage.as_str(), self.engine.to_string());
        counter!("hyflow_cross_checks_total", "stage" => s, "engine" => e.clone()).increment(1);
        if !self.mismatch {
            return;
        }
        counter!("hyflow_cross_check_mismatches_total", "stage" => s, "engine" => e).increment(1);
        match (self.stage, self.max_rel) {
            (Stage::Features, Some(rel)) => tracing::warn!(
                stage = s,
                engine = self.engine,
                max_rel = rel,
                max_abs = self.max_abs,
                "cross-check: {} differs from the CPU by {rel:.3e} (relative), {:.3e} (absolute) on a batch of {} windows",
                self.engine,
                self.max_abs,
                self.windows
            ),
            _ => tracing::warn!(
                stage = s,
                engine = self.engine,
                max_abs = self.max_abs,
                "{}: detector scores or state differ from the CPU's (largest score difference {:e}); using the CPU's",
                self.engine,
                self.max_abs
            ),
        }
    }
}

/// Alert episode events and re-baselinings of one batch of windows.
pub struct Alerted<'a> {
    /// `open`, `update` or `resolved`.
    pub state: &'static str,
    /// `info`, `warning` or `critical`.
    pub severity: &'a str,
    /// The sensor.
    pub sensor: &'a str,
    /// The episode number.
    pub episode: u64,
}

impl Event for Alerted<'_> {
    fn emit(self) {
        tracing::debug!(
            sensor = self.sensor,
            episode = self.episode,
            state = self.state,
            severity = self.severity,
            "alert event"
        );
        counter!("hyflow_alert_events_total", "state" => self.state, "severity" => self.severity.to_string())
            .increment(1);
    }
}

/// Baselines restarted after a lasting shift.
pub struct Rebaselined {
    /// How many.
    pub count: u64,
}

impl Event for Rebaselined {
    fn emit(self) {
        if self.count > 0 {
            counter!("hyflow_rebaselines_total").increment(self.count);
        }
    }
}

/// The sinks made their outputs durable up to an event time.
pub struct SinkDurable {
    /// Every output row with a time below this is durable (ms).
    pub upto_ms: i64,
}

impl Event for SinkDurable {
    fn emit(self) {
        tracing::debug!(upto_ms = self.upto_ms, "outputs durable");
        counter!("hyflow_sink_durable_total").increment(1);
        gauge!("hyflow_sink_durable_timestamp_seconds").set(crate::timefmt::now_seconds());
    }
}

/// A checkpoint was written.
pub struct CheckpointWritten<'a> {
    /// Its id.
    pub id: u64,
    /// Its cut (event time, ms).
    pub at_ms: i64,
    /// Its file.
    pub path: &'a std::path::Path,
    /// The file's size.
    pub bytes: u64,
    /// How long the sinks were held for it: outputs made durable and the state handed to the
    /// writer thread (wall clock, seconds).
    pub held: f64,
    /// How long the writer thread took to encode, write and flush it while the run went on
    /// (wall clock, seconds).
    pub seconds: f64,
}

impl Event for CheckpointWritten<'_> {
    fn emit(self) {
        tracing::info!(
            id = self.id,
            cut = %crate::timefmt::format_rfc3339(self.at_ms),
            bytes = self.bytes,
            held = self.held,
            seconds = self.seconds,
            "checkpoint written: {}",
            self.path.display()
        );
        counter!("hyflow_checkpoints_total").increment(1);
        gauge!("hyflow_checkpoint_cut_seconds").set(self.at_ms as f64 / 1000.0);
        gauge!("hyflow_checkpoint_bytes").set(self.bytes as f64);
        histogram!("hyflow_checkpoint_write_seconds").record(self.seconds);
    }
}

/// Offsets committed for a Kafka partition.
pub struct OffsetsCommitted<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// The next offset to read.
    pub offset: i64,
}

impl Event for OffsetsCommitted<'_> {
    fn emit(self) {
        tracing::debug!(
            topic = self.topic,
            partition = self.partition,
            offset = self.offset,
            "offsets committed"
        );
        let (t, p) = (self.topic.to_string(), self.partition.to_string());
        counter!("hyflow_offset_commits_total", "topic" => t.clone(), "partition" => p.clone())
            .increment(1);
        gauge!("hyflow_committed_offset", "topic" => t, "partition" => p).set(self.offset as f64);
    }
}

/// The counts of a run so far, read from its recorder.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Input rows read.
    pub rows_in: u64,
    /// Readings handed to the windows.
    pub accepted: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// Rejected rows by kind (kinds with none left out), in [`RejectKind::ALL`] order.
    pub rejected_by: Vec<(RejectKind, u64)>,
    /// Rows dropped by the non-finite policy.
    pub dropped: u64,
    /// Late rows.
    pub late: u64,
    /// Windows computed.
    pub windows: u64,
    /// Windows of sensors the registry does not hold, rejected.
    pub windows_unregistered: u64,
    /// Alert events.
    pub alert_events: u64,
    /// Baselines restarted.
    pub rebaselines: u64,
}

impl Recorder {
    /// The run's counts so far.
    pub fn counts(&self) -> Counts {
        let by = self.counters("hyflow_rows_rejected_total");
        let rejected_by: Vec<(RejectKind, u64)> = RejectKind::ALL
            .iter()
            .map(|k| {
                let n = by
                    .iter()
                    .filter(|(l, _)| l.iter().any(|(_, v)| v == k.code()))
                    .map(|(_, n)| n)
                    .sum();
                (*k, n)
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        Counts {
            rows_in: self.counter("hyflow_rows_read_total"),
            accepted: self.counter("hyflow_readings_accepted_total"),
            rejected: rejected_by.iter().map(|(_, n)| n).sum(),
            rejected_by,
            dropped: self.counter("hyflow_rows_dropped_total"),
            late: self.counter("hyflow_rows_late_total"),
            windows: self.counter("hyflow_windows_closed_total"),
            windows_unregistered: self.counter("hyflow_windows_unregistered_total"),
            alert_events: self.counter("hyflow_alert_events_total"),
            rebaselines: self.counter("hyflow_rebaselines_total"),
        }
    }
}
