//! Why a running pipeline stopped. One typed error for every stage: the stage that fails calls
//! `Shared::fail` (the run's control state: every operator stops, and the run's result is this
//! error) and, where the failure must reach process 0 of a cluster, sends it on its way to the
//! sinks as an `OutRecord::Failure` row, which fails the run there too. It crosses processes,
//! so it holds the causes' messages rather than the causes.

use serde::{Deserialize, Serialize};

/// What a sink was doing when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputStep {
    /// Writing rows.
    Write,
    /// Making the outputs durable (a live run's checkpoint).
    Durable,
    /// Finishing the files at the end of the run.
    Finish,
    /// Writing a checkpoint (`[recovery]`).
    Checkpoint,
}

impl OutputStep {
    fn as_str(self) -> &'static str {
        match self {
            OutputStep::Write => "writing output",
            OutputStep::Durable => "making output durable",
            OutputStep::Finish => "finishing output",
            OutputStep::Checkpoint => "writing a checkpoint",
        }
    }
}

/// Why a running pipeline stopped.
#[derive(Clone, Debug, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum Failure {
    /// An input file or partition could not be read.
    #[error("{0}")]
    Read(String),
    /// Kafka: the consumer could not start, or the dead-letter topic failed.
    #[error("{0}")]
    Kafka(String),
    /// The compute engine of a `[compute] device` could not start.
    #[error("compute device \"{device}\"{}: {message}", if *.detectors { " for the detectors" } else { "" })]
    Engine {
        /// The setting.
        device: String,
        /// The detector engine (else the features').
        detectors: bool,
        /// Why.
        message: String,
    },
    /// Features could not be computed, on the CPU reference either.
    #[error("computing features: {0}")]
    Compute(String),
    /// A sink failed.
    #[error("{}: {message}", .step.as_str())]
    Output {
        /// What it was doing.
        step: OutputStep,
        /// Why.
        message: String,
    },
    /// A worker panicked.
    #[error("worker {0} stopped by a panic (its message is above); the run is abandoned")]
    Panic(usize),
}
