//! `--set KEY.PATH=VALUE`: one setting of a pipeline changed from the command line, before the
//! file is validated (as `--device` is). The value is TOML (`4`, `0.5`, `true`, `"text"`,
//! `["a", "b"]`), or else taken as a string (`--set compute.device=cuda:0`). The path names
//! tables and a key (`source.kafka.brokers`, `window.size`); a missing table is made.
//!
//! The file is parsed with its spans, the values are set in that parsed form, and the result
//! is deserialized into the config types: every other key keeps its place in the file for
//! messages, and an error in a set value is reported against the `--set` that gave it.

use super::{ConfigError, Diagnostic, Locator, PipelineConfig};
use serde::Deserialize;
use std::borrow::Cow;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Splits a `--set` argument into its key path and value.
pub fn parse_set(arg: &str) -> Result<(String, String), String> {
    let (path, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("--set {arg:?}: expected KEY.PATH=VALUE, e.g. window.size=30s"))?;
    let path = path.trim();
    let valid = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if !path.split('.').all(valid) {
        return Err(format!(
            "--set {arg:?}: {path:?} is not a key path (names of tables and a key, joined by dots, e.g. source.kafka.brokers)"
        ));
    }
    Ok((path.to_string(), value.trim().to_string()))
}

/// The config of `loc`'s text with `sets` applied (see the module doc).
pub(crate) fn from_toml_with(
    loc: &Locator<'_>,
    sets: &[(String, String)],
) -> Result<PipelineConfig, ConfigError> {
    if sets.is_empty() {
        return super::from_toml(loc);
    }
    // A file that does not parse is reported as without --set.
    let Ok(root) = DeTable::parse(loc.text) else {
        return super::from_toml(loc);
    };
    let span = root.span();
    let mut table = root.into_inner();
    let mut errs: Vec<Diagnostic> = Vec::new();
    for (path, value) in sets {
        if let Err(msg) = set(&mut table, path, value) {
            errs.push(loc.at(0, format!("--set {path}={value}: {msg}"), None));
        }
    }
    if !errs.is_empty() {
        return Err(ConfigError::Invalid(errs));
    }
    let de = toml::de::Deserializer::from(Spanned::new(span, table));
    PipelineConfig::deserialize(de).map_err(|e| {
        // An error in a set value has no place in the file: name the --set instead.
        let at = e.span().map_or(0, |s| s.start);
        let given = sets
            .iter()
            .map(|(p, v)| format!("--set {p}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        if at == usize::MAX {
            let msg = format!("{} (in {given})", e.message());
            ConfigError::Invalid(vec![loc.at(0, msg, None)])
        } else {
            ConfigError::Invalid(vec![loc.at(at.min(loc.text.len()), e.message(), None)])
        }
    })
}

/// Sets `path` to `value` in `table`.
fn set<'i>(table: &mut DeTable<'i>, path: &'i str, value: &'i str) -> Result<(), String> {
    let keys: Vec<&str> = path.split('.').collect();
    let (last, tables) = keys.split_last().ok_or("an empty key path")?;
    let mut t = table;
    for k in tables {
        let entry = t
            .entry(Spanned::new(usize::MAX..usize::MAX, Cow::Borrowed(*k)))
            .or_insert_with(|| {
                Spanned::new(usize::MAX..usize::MAX, DeValue::Table(DeTable::new()))
            });
        match entry.get_mut() {
            DeValue::Table(inner) => t = inner,
            _ => return Err(format!("{k} is not a table")),
        }
    }
    let parsed = DeValue::parse(value)
        .map(Spanned::into_inner)
        .unwrap_or_else(|_| DeValue::String(Cow::Borrowed(value)));
    // The value has no place in the file: a span past its end marks it (see from_toml_with).
    let nowhere = usize::MAX..usize::MAX;
    t.insert(
        Spanned::new(nowhere.clone(), Cow::Borrowed(*last)),
        Spanned::new(nowhere, parsed),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const FILE: &str = "name = \"p\"\n[source]\nkind = \"parquet\"\npath = \"in.parquet\"\n[window]\nkind = \"tumbling\"\nsize = \"10s\"\n";

    fn with(text: &str, sets: &[(&str, &str)]) -> Result<PipelineConfig, ConfigError> {
        let loc = Locator::new(Path::new("p.toml"), text);
        let sets: Vec<(String, String)> = sets
            .iter()
            .map(|(p, v)| (p.to_string(), v.to_string()))
            .collect();
        from_toml_with(&loc, &sets)
    }

    #[test]
    fn values_replace_keys_and_make_missing_tables() {
        let c = with(
            FILE,
            &[
                ("window.size", "30s"),
                ("detect.warmup", "5"),
                ("compute.device", "cuda:1"),
                ("features.compute", "[\"mean\", \"max\"]"),
            ],
        )
        .expect("valid");
        assert_eq!(c.window.size.get_ref().ms, 30_000);
        assert_eq!(c.detect.warmup, 5);
        assert_eq!(
            c.compute.device.get_ref(),
            "cuda:1",
            "a bare word is a string"
        );
        let features: Vec<&str> = c
            .features
            .compute
            .get_ref()
            .iter()
            .map(|f| f.get_ref().as_str())
            .collect();
        assert_eq!(features, ["mean", "max"]);
    }

    #[test]
    fn errors_name_the_set_or_keep_their_place_in_the_file() {
        let Err(ConfigError::Invalid(d)) = with(FILE, &[("window.size", "10")]) else {
            panic!("an integer is not a duration");
        };
        assert!(
            d[0].message.contains("(in --set window.size=10)"),
            "{:?}",
            d[0]
        );
        // A mistake in the file is still located there.
        let bad = FILE.replace("kind = \"tumbling\"", "kind = \"round\"");
        let Err(ConfigError::Invalid(d)) = with(&bad, &[("window.size", "30s")]) else {
            panic!("an unknown window kind");
        };
        assert_eq!((d[0].line, d[0].column), (6, 8), "{:?}", d[0]);
        assert_eq!(parse_set("a.b=c d"), Ok(("a.b".into(), "c d".into())));
        assert!(parse_set("a b=c").is_err() && parse_set("novalue").is_err());
        assert!(parse_set("a..b=1").is_err());
    }
}
