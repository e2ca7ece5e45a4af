//! `hyflow validate`: each class of mistake is reported with file:line:column and a message.

use hyflow::config::{ConfigError, Diagnostic};
use hyflow::plan;
use std::path::Path;

const BASE: &str = r#"name = "t"

[source]
kind = "parquet"
path = "fixtures/bench.parquet"

[window]
kind = "tumbling"
size = "10s"

[features]
compute = ["count", "mean", "max", "slope"]

[[rules]]
name = "hot"
when = "max > 95 and slope > 0.5"
severity = "critical"

[[sink]]
name = "alerts"
kind = "parquet"
output = "alerts"
path = "out/t/alerts"
"#;

fn errors(text: &str) -> Vec<Diagnostic> {
    match plan::parse(Path::new("p.toml"), text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(ConfigError::Invalid(d)) => d,
        Err(e) => panic!("unexpected {e}"),
    }
}

fn one(text: &str) -> Diagnostic {
    let d = errors(text);
    assert_eq!(d.len(), 1, "{d:#?}");
    d.into_iter().next().unwrap_or_else(|| unreachable!())
}

/// (line, column) of the first occurrence of `needle` in `text`, 1-based.
fn pos(text: &str, needle: &str) -> (usize, usize) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in text"));
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[test]
fn the_base_and_shipped_pipelines_are_valid() {
    plan::parse(Path::new("p.toml"), BASE).expect("base is valid");
    for p in [
        "manufacturing",
        "manufacturing-live",
        "traffic",
        "bench",
        "nab",
    ] {
        plan::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("pipelines/{p}.toml")))
            .unwrap_or_else(|e| panic!("{p}: {e}"));
    }
}

#[test]
fn unknown_key() {
    let text = BASE.replace("size = \"10s\"", "size = \"10s\"\nsizee = \"5s\"");
    let d = one(&text);
    assert_eq!((d.line, d.column), pos(&text, "sizee"));
    assert!(d.message.contains("unknown field `sizee`"), "{}", d.message);
    assert!(d.hint.is_some());
    assert!(
        d.to_string()
            .starts_with(&format!("p.toml:{}:{}: error:", d.line, d.column))
    );
}

#[test]
fn wrong_type() {
    let text = BASE.replace("kind = \"tumbling\"", "kind = 3");
    let d = one(&text);
    assert_eq!((d.line, d.column), pos(&text, "3\n"));
    assert!(d.message.contains("invalid type"), "{}", d.message);
}

#[test]
fn bad_duration() {
    let text = BASE.replace("size = \"10s\"", "size = \"10 sec\"");
    let d = one(&text);
    assert_eq!((d.line, d.column), pos(&text, "\"10 sec\""));
    assert!(
        d.message.contains("invalid duration \"10 sec\""),
        "{}",
        d.message
    );
}

#[test]
fn slide_larger_than_window() {
    let text = BASE.replace(
        "kind = \"tumbling\"\nsize = \"10s\"",
        "kind = \"sliding\"\nsize = \"10s\"\nslide = \"20s\"",
    );
    let d = one(&text);
    assert_eq!((d.line, d.column), pos(&text, "\"20s\""));
    assert!(
        d.message
            .contains("slide 20s is larger than the window size 10s"),
        "{}",
        d.message
    );
}

#[test]
fn rule_naming_a_feature_that_is_not_computed() {
    let text = BASE.replace("max > 95 and slope > 0.5", "max > 95 and kurtosis > 0.5");
    let d = one(&text);
    assert_eq!((d.line, d.column), pos(&text, "kurtosis"));
    assert!(
        d.message.contains("unknown feature `kurtosis`"),
        "{}",
        d.message
    );
}

#[test]
fn every_unknown_name_of_a_rule_is_reported_even_beside_a_schema_error() {
    // Two unknown names in one rule: both, each at its column.
    let text = BASE.replace("max > 95 and slope > 0.5", "maxx > 95 and slop > 0.5");
    let d = errors(&text);
    assert_eq!(d.len(), 2, "{d:#?}");
    assert_eq!((d[0].line, d[0].column), pos(&text, "maxx"));
    assert_eq!((d[1].line, d[1].column), pos(&text, "slop "));
    assert!(d[1].message.contains("unknown feature `slop`"), "{d:#?}");
    // A mistake in another section (a schema error, found before the rules are compiled)
    // does not hide them.
    let text = text.replace("size = \"10s\"", "size = \"10 sec\"");
    let d = errors(&text);
    assert_eq!(d.len(), 3, "{d:#?}");
    assert_eq!((d[0].line, d[0].column), pos(&text, "\"10 sec\""));
    assert!(d[1].message.contains("unknown feature `maxx`"), "{d:#?}");
    assert!(d[2].message.contains("unknown feature `slop`"), "{d:#?}");
    // An unknown name and a syntax error after it: both.
    let text = BASE.replace("max > 95 and slope > 0.5", "maxx > 95 and slope >");
    let d = errors(&text);
    assert_eq!(d.len(), 2, "{d:#?}");
    assert!(d[1].message.contains("ends too early"), "{d:#?}");
}

#[test]
fn rule_syntax_error_points_at_the_column() {
    let text = BASE.replace("max > 95 and slope > 0.5", "max > and slope > 0.5");
    let d = one(&text);
    assert_eq!((d.line, d.column), pos(&text, "and slope"));
}

#[test]
fn unknown_feature_and_detector_feature() {
    let text = BASE.replace("\"slope\"]", "\"slope\", \"medain\"]")
        + "\n[[detect.detector]]\nkind = \"ewma-z\"\nfeatures = [\"std\"]\n";
    let d = errors(&text);
    assert_eq!(d.len(), 2, "{d:#?}");
    assert_eq!((d[0].line, d[0].column), pos(&text, "\"medain\""));
    assert_eq!((d[1].line, d[1].column), pos(&text, "\"std\""));
    assert!(d[1].message.contains("not computed"));
}

#[test]
fn detector_options_that_the_kind_does_not_use_are_located() {
    let text = BASE.to_string()
        + "\n[[detect.detector]]\nkind = \"level-z\"\nfeatures = [\"mean\"]\nseason = \"hour-of-day\"\n"
        + "\n[[detect.detector]]\nkind = \"mahalanobis\"\nfeatures = [\"mean\"]\n"
        + "\n[[detect.detector]]\nkind = \"spectral-residual\"\nfeatures = [\"max\"]\nhistory = 4\n"
        + "\n[[detect.detector]]\nkind = \"dropout\"\nwindows = 3\n";
    let d = errors(&text);
    assert_eq!(d.len(), 3, "{d:#?}");
    assert_eq!((d[0].line, d[0].column), pos(&text, "\"hour-of-day\""));
    assert!(
        d[0].message
            .contains("`season` does not apply to a level-z detector"),
        "{}",
        d[0].message
    );
    assert_eq!(d[0].hint.as_deref(), Some("it is an option of: seasonal-z"));
    assert_eq!((d[1].line, d[1].column), pos(&text, "\"mahalanobis\""));
    assert!(d[1].message.contains("at least two features"));
    assert_eq!((d[2].line, d[2].column), pos(&text, "4\n"));
    assert!(d[2].message.contains("history 4 must be in 16..=4096"));
}

#[test]
fn an_asset_detector_needs_the_asset_delimiter() {
    let det = "\n[[detect.detector]]\nkind = \"asset-mahalanobis\"\nfeatures = [\"mean\"]\n";
    let text = BASE.to_string() + det;
    let d = one(&text);
    assert_eq!((d.line, d.column), pos(&text, "\"asset-mahalanobis\""));
    assert!(
        d.message.contains("needs to know the assets"),
        "{}",
        d.message
    );
    let text = BASE.to_string() + "\n[detect]\nasset-delimiter = \"-\"\n" + det;
    plan::parse(Path::new("p.toml"), &text).expect("valid with a delimiter");
}

#[test]
fn every_section_reports_its_own_error() {
    let text = BASE
        .replace("size = \"10s\"", "size = \"10 sec\"")
        .replacen("kind = \"parquet\"", "kind = \"parquet\"\nbogus = 1", 1);
    let d = errors(&text);
    assert_eq!(d.len(), 2, "{d:#?}");
    assert!(d.iter().any(|x| x.message.contains("bogus")));
    assert!(d.iter().any(|x| x.message.contains("10 sec")));
}

#[test]
fn tumbling_with_slide_fuse_order_and_device() {
    let text = BASE.replace("size = \"10s\"", "size = \"10s\"\nslide = \"5s\"")
        + "\n[fuse]\nopen = 0.4\nclose = 0.6\n\n[compute]\ndevice = \"tpu\"\n";
    let d = errors(&text);
    let msgs: Vec<&str> = d.iter().map(|x| x.message.as_str()).collect();
    assert_eq!(d.len(), 3, "{msgs:?}");
    assert!(msgs[0].contains("tumbling window has no slide"));
    assert!(msgs[1].contains("fuse close must be in [0, open]"));
    assert!(msgs[2].contains("unknown device \"tpu\""));
    assert_eq!(d[2].line, pos(&text, "\"tpu\"").0);
}

#[test]
fn syntax_error() {
    let text = BASE.replace("name = \"hot\"", "name = \"hot");
    let d = errors(&text);
    assert_eq!(d[0].line, pos(&text, "name = \"hot").0);
}

#[test]
fn missing_section() {
    let text = BASE.replace("[window]\nkind = \"tumbling\"\nsize = \"10s\"\n", "");
    let d = errors(&text);
    assert!(
        d.iter()
            .any(|x| x.message.contains("missing field `window`")),
        "{d:#?}"
    );
}

#[test]
fn defaults_do_not_depend_on_whether_a_section_is_written() {
    let without = plan::parse(Path::new("p.toml"), BASE).expect("valid");
    let with = plan::parse(
        Path::new("p.toml"),
        &format!("{BASE}\n[clean]\n[fuse]\n[detect]\n[compute]\n"),
    )
    .expect("valid");
    let a = serde_json::to_value(&without.config).expect("json");
    let b = serde_json::to_value(&with.config).expect("json");
    assert_eq!(a, b);
}

#[test]
fn sinks_and_classes_are_located() {
    let text = format!(
        "{BASE}\n[[clean.class]]\nmatch = \"[bad\"\n\n[[sink]]\nname = \"../up\"\nkind = \"parquet\"\noutput = \"windows\"\npath = \"out/w\"\n\n[[sink]]\nname = \"w2\"\nkind = \"parquet\"\noutput = \"alerts\"\npath = \"out/./w\"\n"
    );
    let d = errors(&text);
    let msgs: Vec<&str> = d.iter().map(|x| x.message.as_str()).collect();
    assert_eq!(d.len(), 3, "{msgs:?}");
    assert_eq!((d[0].line, d[0].column), pos(&text, "\"[bad\""));
    assert!(msgs[0].contains("not a valid glob"));
    assert_eq!((d[1].line, d[1].column), pos(&text, "\"../up\""));
    assert!(msgs[1].contains("letters, digits"));
    assert_eq!((d[2].line, d[2].column), pos(&text, "\"out/./w\""));
    assert!(msgs[2].contains("like another sink"));
}

#[test]
fn a_band_may_not_take_the_name_of_a_windows_column() {
    for name in ["fused", "score_level"] {
        let text = BASE.replace(
            "compute = [\"count\", \"mean\", \"max\", \"slope\"]",
            &format!(
                "compute = [\"count\", \"mean\", \"max\", \"slope\"]\n\n[[features.band]]\nname = \"{name}\"\nlow-hz = 1.0\nhigh-hz = 2.0"
            ),
        );
        let d = one(&text);
        assert_eq!((d.line, d.column), pos(&text, &format!("\"{name}\"")));
        assert!(
            d.message.contains("is a column of the windows output"),
            "{}",
            d.message
        );
    }
}
