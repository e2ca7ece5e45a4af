//! What is not the engine: synthetic fixtures and the benchmark input (`fixture`), NAB and
//! episode evaluation with cross-validation (`eval`), scoring one input row by row
//! (`scoring`), reading outputs back (`inspect`), the pipeline tests declared beside a
//! pipeline (`pipeline_test`) and the fuzz targets' bodies (`fuzzing`). They drive the engine
//! through its public API (`plan`, `dataflow`); the engine never calls them.

pub mod eval;
pub mod fixture;
pub mod fuzzing;
pub mod inspect;
pub mod pipeline_test;
pub mod scoring;
