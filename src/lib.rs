//! hyflow: a streaming engine for real-time sensor analytics.
//!
//! Readings flow through a timely dataflow (see ARCHITECTURE.md): a source decodes, cleans and
//! routes columnar batches; windows close on event time; a compute engine extracts features;
//! detectors, rules and fusion score each window; sinks write windows, alerts, rejects and
//! late readings.
#![warn(missing_docs)]

pub mod batch;
pub mod checkpoint;
pub mod compute;
pub mod config;
pub mod dataflow;
pub mod energy;
pub mod events;
pub mod output;
pub mod plan;
pub mod stages;
pub mod timefmt;
pub mod tools;
