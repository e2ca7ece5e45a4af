//! hyflow: a streaming engine for real-time sensor analytics.
//!
//! Readings flow through a timely dataflow (see ARCHITECTURE.md): a source decodes, cleans and
//! routes columnar batches; windows close on event time; a compute engine extracts features;
//! detectors, rules and fusion score each window; sinks write windows, alerts, rejects and
//! late readings.
#![warn(missing_docs)]

pub mod batch;
pub mod clean;
pub mod compute;
pub mod config;
pub mod dataflow;
pub mod detect;
pub mod energy;
pub mod events;
pub mod features;
pub mod output;
pub mod plan;
pub mod rules;
pub mod sink;
pub mod source;
pub mod timefmt;
pub mod tools;
pub mod window;
