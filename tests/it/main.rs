//! hyflow's integration tests, in one binary (one link instead of twenty): a module per area,
//! helpers shared in `common` (pipelines run from files or text, fixtures, Kafka, devices).
//! `tests/gpu.rs` is apart: it is the binary `scripts/gpu-check.sh` takes to a GPU machine.
//!
//! Run one area with `cargo test --features kernel-emulation --test it kafka_mock::`.

mod common;

mod bad_input;
mod cli;
mod cli_conventions;
mod cluster;
mod csv_source;
mod determinism;
mod docs_commands;
mod docs_examples;
mod emulated_device;
mod eval;
mod fake_cuda;
mod golden;
mod hostile;
mod incidents;
mod kafka_mock;
mod kafka_tansu;
mod kernel_emulation;
mod metrics;
mod nvrtc_compile;
mod pipeline_tests;
mod pyarrow_outputs;
mod recovery;
mod recovery_live;
mod registry;
mod registry_live;
mod report;
mod sinks;
mod source_types;
mod stages;
mod validate;
