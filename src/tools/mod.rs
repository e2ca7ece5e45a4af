//! What is not the engine: synthetic fixtures and the benchmark input (`fixture`), NAB and
//! episode evaluation with cross-validation (`eval`), scoring one input row by row
//! (`scoring`), reading outputs back (`inspect`), the HTML report of a run's outputs
//! (`report`), the pipeline tests declared beside a pipeline (`pipeline_test`) and the fuzz
//! targets' bodies (`fuzzing`). They drive the engine
//! through its public API (`plan`, `dataflow`); the engine never calls them.

pub mod eval;
pub mod fixture;
pub mod fuzzing;
pub mod inspect;
pub mod pipeline_test;
pub mod report;
pub mod scoring;

/// What can go wrong in a tool (the engine's own errors, carried as they are).
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A Parquet file could not be read or written.
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Arrow data could not be read or built.
    #[error(transparent)]
    Arrow(#[from] arrow_schema::ArrowError),
    /// JSON could not be read or written.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A pipeline, or an edit of one, is not valid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A run failed.
    #[error(transparent)]
    Run(#[from] crate::dataflow::RunError),
    /// The input or an output is not what the tool needs (the message says what and where).
    #[error("{0}")]
    Invalid(String),
}

/// A tool's result.
pub type Result<T> = std::result::Result<T, ToolError>;

/// An `Option` that must hold a value: `None` becomes [`ToolError::Invalid`] naming `what`.
pub(crate) trait Needed<T> {
    fn needed(self, what: impl std::fmt::Display) -> Result<T>;
}

impl<T> Needed<T> for Option<T> {
    fn needed(self, what: impl std::fmt::Display) -> Result<T> {
        self.ok_or_else(|| ToolError::Invalid(format!("missing {what}")))
    }
}

/// Fails with [`ToolError::Invalid`].
macro_rules! invalid {
    ($($t:tt)*) => {
        return Err($crate::tools::ToolError::Invalid(format!($($t)*)))
    };
}
pub(crate) use invalid;
