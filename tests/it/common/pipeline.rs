//! A pipeline for a test, built in named steps instead of a TOML template per test file: a
//! Parquet source (`sensor_id`, `ts`, `value`) at the given input, tumbling 10 s windows,
//! `count` and `mean`, and Parquet sinks of the outputs asked for; each step changes one
//! part, and [`Pipeline::text`] writes the file (validated when a run loads it, so a wrong
//! step fails as a user's file would).

use std::fmt::Write as _;
use std::path::Path;

/// The parts of a test pipeline (see the module doc).
#[derive(Clone, Debug)]
pub struct Pipeline {
    name: String,
    input: String,
    kind: &'static str,
    source: Vec<String>,
    clean: Vec<String>,
    window: String,
    features: Vec<String>,
    sections: Vec<String>,
    sinks: Vec<String>,
}

impl Pipeline {
    /// A pipeline `name` reading Parquet files matching `input`; no sinks yet.
    pub fn parquet(name: &str, input: impl AsRef<Path>) -> Self {
        Self {
            name: name.into(),
            input: input.as_ref().display().to_string(),
            kind: "parquet",
            source: Vec::new(),
            clean: Vec::new(),
            window: "kind = \"tumbling\"\nsize = \"10s\"".into(),
            features: vec!["count".into(), "mean".into()],
            sections: Vec::new(),
            sinks: Vec::new(),
        }
    }

    /// Adds a line (`key = value`) to `[source]`.
    pub fn source(mut self, line: &str) -> Self {
        if !line.is_empty() {
            self.source.push(line.into());
        }
        self
    }

    /// Adds a line to `[clean]`.
    pub fn clean(mut self, line: &str) -> Self {
        self.clean.push(line.into());
        self
    }

    /// The `[window]` table's body.
    pub fn window(mut self, body: &str) -> Self {
        self.window = body.into();
        self
    }

    /// The features computed.
    pub fn features(mut self, names: &[&str]) -> Self {
        self.features = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Appends TOML as written (a table such as `[[clean.class]]`, `[clean.fill]`, a detector).
    pub fn with(mut self, toml: &str) -> Self {
        if !toml.is_empty() {
            self.sections.push(toml.into());
        }
        self
    }

    /// A Parquet sink of `output`, named as the output, at `out/NAME` (`--out` moves it).
    pub fn sink(self, output: &str) -> Self {
        self.sink_with(output, output, "")
    }

    /// A Parquet sink of each output.
    pub fn sinks(self, outputs: &[&str]) -> Self {
        outputs.iter().fold(self, |p, o| p.sink(o))
    }

    /// A sink `name` of `output` with extra lines (`kind`, `roll-rows`, `partition`, ...;
    /// Parquet unless they say otherwise).
    pub fn sink_with(mut self, name: &str, output: &str, extra: &str) -> Self {
        let kind = if extra.contains("kind =") {
            String::new()
        } else {
            "kind = \"parquet\"\n".into()
        };
        self.sinks.push(format!(
            "[[sink]]\nname = \"{name}\"\n{kind}output = \"{output}\"\npath = \"out/{name}\"\n{extra}"
        ));
        self
    }

    /// The pipeline file.
    pub fn text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "name = \"{}\"\n", self.name);
        let _ = writeln!(
            t,
            "[source]\nkind = \"{}\"\npath = \"{}\"",
            self.kind, self.input
        );
        for l in &self.source {
            let _ = writeln!(t, "{l}");
        }
        if !self.clean.is_empty() {
            let _ = writeln!(t, "\n[clean]\n{}", self.clean.join("\n"));
        }
        let _ = writeln!(t, "\n[window]\n{}", self.window);
        let features: Vec<String> = self.features.iter().map(|f| format!("{f:?}")).collect();
        let _ = writeln!(t, "\n[features]\ncompute = [{}]", features.join(", "));
        for s in self.sections.iter().chain(&self.sinks) {
            let _ = writeln!(t, "\n{s}");
        }
        t
    }
}

/// The shipped pipeline `pipelines/NAME.toml` changed by `edit` through the config types and
/// validated, written back out as TOML (for the commands and helpers that take a file): what
/// a test needs instead of editing the file's text.
pub fn shipped(name: &str, edit: impl FnOnce(&mut hyflow::config::PipelineConfig)) -> String {
    let path = super::root().join(format!("pipelines/{name}.toml"));
    let plan = hyflow::plan::load_with(&path, edit).unwrap_or_else(|e| panic!("{e}"));
    toml::to_string(&plan.config).expect("a pipeline serializes")
}

#[test]
fn every_shipped_pipeline_survives_being_written_back() {
    for e in std::fs::read_dir(super::root().join("pipelines")).expect("pipelines") {
        let path = e.expect("entry").path();
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let name = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .to_string();
        let text = shipped(&name, |_| {});
        let again = hyflow::plan::parse(&path, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let want = hyflow::plan::load(&path).expect("valid");
        let explain = |p: &hyflow::plan::Plan| hyflow::dataflow::explain::explain(p, 2);
        assert_eq!(explain(&again), explain(&want), "{name}");
        assert_eq!(again.config.test.len(), want.config.test.len(), "{name}");
    }
}
