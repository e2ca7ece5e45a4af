//! The stages of a pipeline, in the order readings flow through them, each knowing nothing of
//! timely (the operators that run them are in `dataflow/`, one per stage) and nothing of the
//! config schema (the plan hands them their own types):
//!
//! 1. [`source`]: partitions of files or Kafka messages decoded into batches of readings;
//! 2. [`clean`]: per-reading checks, sensor classes, the watermark;
//! 3. [`window`]: window assignment, per-sensor buffers, dedup, gap filling;
//! 4. [`features`]: the feature catalog (computed by `compute/`, on the CPU or a device);
//! 5. [`detect`] and [`rules`]: detectors, calibration, fusion with the rules, alert episodes;
//! 6. [`registry`]: the sensor registry and topology (rows as of a time, class defaults);
//!    [`incidents`]: connected open episodes, their lifecycle;
//! 7. [`sink`]: the outputs (Parquet, Arrow IPC, Kafka) in a canonical order.

pub mod clean;
pub mod detect;
pub mod features;
pub mod incidents;
pub mod registry;
pub mod rules;
pub mod sink;
pub mod source;
pub mod window;
