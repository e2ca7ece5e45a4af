//! Pipeline files: the TOML types (the schema: one file per section family) and parsing with
//! located errors. Depends on nothing else in the crate; `plan` validates a parsed file into
//! what the dataflow runs.

pub mod detect;
pub mod duration;
pub mod kafka;
mod overrides;
pub mod registry;
pub mod schema;
pub mod set;
pub mod sink;
pub mod testcase;
pub(crate) mod vars;

pub use detect::*;
pub use duration::Duration;
pub use kafka::*;
pub use registry::*;
pub use schema::*;

use serde::Deserialize;
use serde::de::IgnoredAny;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a pipeline file, located by line and column.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// Everything wrong with a pipeline file (at least one entry).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read pipeline {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why (in the message, not a `source()`: said once when the chain is printed).
        error: std::io::Error,
    },
    /// The file has mistakes.
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render(diags: &[Diagnostic]) -> String {
    let mut s = String::new();
    for d in diags {
        s.push_str(&d.to_string());
        s.push('\n');
    }
    s.push_str(&format!("{} error(s)", diags.len()));
    s
}

/// Locates byte offsets of one source text.
pub(crate) struct Locator<'a> {
    pub(crate) file: &'a Path,
    pub(crate) text: &'a str,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        Self { file, text }
    }

    /// A diagnostic at byte offset `at`.
    pub(crate) fn at(
        &self,
        at: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        let at = at.min(self.text.len());
        let before = &self.text[..at];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            message: message.into(),
            hint,
        }
    }

    pub(crate) fn span(
        &self,
        span: Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        self.at(span.start, message, hint)
    }

    fn toml(&self, e: toml::de::Error) -> Diagnostic {
        let start = e.span().map_or(0, |s| s.start);
        let mut msg = plain_words(e.message().trim());
        if msg.starts_with("wanted ") {
            msg = format!("invalid type: {msg}");
        }
        let hint = hint_for(&msg);
        self.at(start, msg, hint)
    }
}

/// serde's message in the user's words: Rust type names (`expected u32`, `f64`) become what
/// the key takes (`a whole number, 0 or more`, `a number`).
fn plain_words(msg: &str) -> String {
    let mut out = msg.replace("floating point `", "number `");
    for (rust, plain) in [
        ("usize", "a whole number, 0 or more"),
        ("u64", "a whole number, 0 or more"),
        ("u32", "a whole number, 0 or more"),
        ("u16", "a whole number, 0 or more"),
        ("u8", "a whole number, 0 or more"),
        ("i64", "a whole number"),
        ("i32", "a whole number"),
        ("f64", "a number"),
        ("f32", "a number"),
    ] {
        // Only the type after "expected " (a key or value that merely contains the letters is
        // left alone).
        let word = format!("expected {rust}");
        let mut from = 0;
        while let Some(i) = out[from..].find(&word).map(|i| i + from) {
            let end = i + word.len();
            let boundary = out[end..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_');
            if boundary {
                out.replace_range(i..end, &format!("expected {plain}"));
                from = i + "expected ".len() + plain.len();
            } else {
                from = end;
            }
        }
    }
    out
}

fn hint_for(msg: &str) -> Option<String> {
    if msg.starts_with("unknown field") {
        Some(
            "check the spelling against docs/pipeline.md or `hyflow schema`; keys are kebab-case"
                .into(),
        )
    } else if msg.contains("invalid duration") {
        Some("durations are strings such as \"10s\"".into())
    } else if msg.starts_with("missing field") {
        Some("this key is required; see docs/pipeline.md".into())
    } else if msg.starts_with("invalid type") {
        Some("see docs/pipeline.md for the type this key takes".into())
    } else {
        None
    }
}

/// Parses pipeline text (as `loc` holds it) into its types, reporting every section that
/// does not parse.
pub(crate) fn from_toml(loc: &Locator) -> Result<PipelineConfig, ConfigError> {
    toml::from_str(loc.text)
        .map_err(|first| ConfigError::Invalid(collect_parse_errors(loc, loc.text, first)))
}

/// serde stops at the first error; to report one error per section, each section is parsed
/// again on its own with the others ignored.
fn collect_parse_errors(loc: &Locator, text: &str, first: toml::de::Error) -> Vec<Diagnostic> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct TopLevel {
        name: IgnoredAny,
        #[serde(default)]
        description: Option<IgnoredAny>,
        source: IgnoredAny,
        #[serde(default)]
        clean: Option<IgnoredAny>,
        window: IgnoredAny,
        #[serde(default)]
        features: Option<IgnoredAny>,
        #[serde(default)]
        detect: Option<IgnoredAny>,
        #[serde(default)]
        rules: Option<IgnoredAny>,
        #[serde(default)]
        fuse: Option<IgnoredAny>,
        #[serde(default)]
        registry: Option<IgnoredAny>,
        #[serde(default)]
        sink: Option<IgnoredAny>,
        #[serde(default)]
        compute: Option<IgnoredAny>,
        #[serde(default)]
        test: Option<IgnoredAny>,
    }
    macro_rules! section {
        ($errs:ident, $field:ident: $ty:ty) => {{
            #[derive(Deserialize)]
            #[allow(dead_code)]
            struct Only {
                #[serde(default)]
                $field: Option<$ty>,
                #[serde(flatten)]
                _rest: std::collections::BTreeMap<String, IgnoredAny>,
            }
            if let Err(e) = toml::from_str::<Only>(text) {
                $errs.push(loc.toml(e));
            }
        }};
    }
    let mut errs = Vec::new();
    if let Err(e) = toml::from_str::<TopLevel>(text) {
        errs.push(loc.toml(e));
    }
    if errs
        .first()
        .is_some_and(|d| d.message.contains("expected") && d.message.contains("key"))
    {
        return errs; // a syntax error: the sections cannot be read either
    }
    section!(errs, source: SourceConfig);
    section!(errs, clean: CleanConfig);
    section!(errs, window: WindowConfig);
    section!(errs, features: FeaturesConfig);
    section!(errs, detect: DetectConfig);
    section!(errs, rules: Vec<RuleConfig>);
    section!(errs, fuse: FuseConfig);
    section!(errs, registry: RegistryConfig);
    section!(errs, sink: Vec<SinkConfig>);
    section!(errs, compute: ComputeConfig);
    section!(errs, test: Vec<TestConfig>);
    errs.dedup_by(|a, b| a.line == b.line && a.column == b.column && a.message == b.message);
    if errs.is_empty() {
        errs.push(loc.toml(first));
    }
    errs
}

#[cfg(test)]
mod words {
    #[test]
    fn rust_type_names_become_what_the_key_takes() {
        assert_eq!(
            super::plain_words("invalid type: floating point `1.5`, expected u32"),
            "invalid type: number `1.5`, expected a whole number, 0 or more"
        );
        assert_eq!(
            super::plain_words("invalid type: string \"x\", expected f64"),
            "invalid type: string \"x\", expected a number"
        );
        assert_eq!(
            super::plain_words("invalid value: integer `-3`, expected usize"),
            "invalid value: integer `-3`, expected a whole number, 0 or more"
        );
        // Not a type name: left alone.
        assert_eq!(
            super::plain_words("unknown field `u32x`, expected u32x_or"),
            "unknown field `u32x`, expected u32x_or"
        );
    }
}

#[cfg(test)]
mod layout {
    /// `config` is the schema only: it depends on nothing else in the crate (plan depends on
    /// it, not the other way round).
    #[test]
    fn config_imports_nothing_else_of_the_crate() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config");
        // Spelled in two parts so that this test does not find itself.
        let needle = ["crate", "::"].concat();
        let mut seen = 0;
        for e in std::fs::read_dir(&dir).expect("src/config") {
            let path = e.expect("entry").path();
            assert!(
                path.is_file(),
                "{}: config has no submodule folders",
                path.display()
            );
            let text = std::fs::read_to_string(&path).expect("read");
            seen += 1;
            for (i, line) in text.lines().enumerate() {
                let mut rest = line;
                while let Some(at) = rest.find(&needle) {
                    let after = &rest[at + needle.len()..];
                    assert!(
                        after.starts_with("config"),
                        "{}:{}: config uses the crate's {}",
                        path.display(),
                        i + 1,
                        after
                            .split(|c: char| !c.is_alphanumeric() && c != '_')
                            .next()
                            .unwrap_or("")
                    );
                    rest = after;
                }
            }
        }
        assert!(seen >= 5, "read {seen} files of src/config");
    }

    /// The domain modules own their types and take them from the plan, not the schema.
    #[test]
    fn domain_modules_do_not_import_config() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/stages");
        let needle = ["crate", "::", "config"].concat();
        let mut files: Vec<std::path::PathBuf> =
            ["clean.rs", "window.rs", "features.rs", "rules.rs"]
                .iter()
                .map(|m| root.join(m))
                .collect();
        for e in std::fs::read_dir(root.join("detect")).expect("src/stages/detect") {
            files.push(e.expect("entry").path());
        }
        assert!(files.len() > 10, "{files:?}");
        for f in files {
            let text = std::fs::read_to_string(&f).expect("read");
            assert!(
                !text.contains(&needle),
                "{} imports the config schema",
                f.display()
            );
        }
    }

    /// Errors are typed (thiserror) in the library; the dynamic error crate (spelled in two
    /// parts below, so that this file does not name it) only in the command line.
    #[test]
    fn dynamic_errors_only_in_the_command_line() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let needle = ["any", "how"].concat();
        let mut seen = 0;
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for e in std::fs::read_dir(&dir).expect("src") {
                let path = e.expect("entry").path();
                if path.is_dir() {
                    if path != root.join("cli") {
                        dirs.push(path);
                    }
                    continue;
                }
                seen += 1;
                let text = std::fs::read_to_string(&path).expect("read");
                assert!(!text.contains(&needle), "{} uses {needle}", path.display());
            }
        }
        assert!(seen >= 80, "read {seen} files");
    }

    /// The stages know nothing of timely: their operators (`dataflow/`) drive them.
    #[test]
    fn stages_know_nothing_of_timely() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/stages");
        let needle = ["timely", "::"].concat();
        let mut seen = 0;
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for e in std::fs::read_dir(&dir).expect("src/stages") {
                let path = e.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                seen += 1;
                let text = std::fs::read_to_string(&path).expect("read");
                assert!(!text.contains(&needle), "{} uses timely", path.display());
            }
        }
        assert!(seen >= 25, "read {seen} files");
    }

    /// The dataflow, the sources and the sinks are built from the plan's typed fields: none
    /// of them reads the parsed file (`Plan::config`) behind the plan's back.
    #[test]
    fn the_engine_reads_the_plan_not_the_config() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let needle = [".config", "."].concat();
        let mut seen = 0;
        for dir in [
            "dataflow",
            "stages/source",
            "stages/sink",
            "compute",
            "compute/detect",
        ] {
            for e in std::fs::read_dir(root.join(dir)).expect("src dir") {
                let path = e.expect("entry").path();
                if !path.is_file() {
                    continue;
                }
                seen += 1;
                let text = std::fs::read_to_string(&path).expect("read");
                for (i, line) in text.lines().enumerate() {
                    assert!(
                        !line.contains(&needle) && !line.trim_start().starts_with(".config"),
                        "{}:{}: reads the config, not the plan: {}",
                        path.display(),
                        i + 1,
                        line.trim()
                    );
                }
            }
        }
        assert!(seen >= 20, "read {seen} files");
    }
}
