//! Registry files in TOML: `[[sensor]]` tables (key `sensor`, the id, then the columns of a
//! sensors CSV: `asset`, `segment`, `class`, `unit`, `enabled`, the declared attributes) and
//! `[[edge]]` tables (`from`, `to`, then `kind`, `directed`, `travel-time`), read as changes
//! at the start of time. Every mistake names the file and the line of its table.

use super::load::{LoadError, read, set_edge_field, set_sensor_field};
use super::{Change, EdgeInfo, Entry, Key, Schema, Value};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use toml::Spanned;

type Table = Spanned<BTreeMap<String, toml::Value>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    sensor: Vec<Table>,
    #[serde(default)]
    edge: Vec<Table>,
}

/// A TOML value as the text a CSV field would hold.
fn text(name: &str, v: &toml::Value) -> Result<String, String> {
    Ok(match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(x) => x.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        _ => {
            return Err(format!(
                "`{name}` is not a plain value (text, number or boolean)"
            ));
        }
    })
}

/// An id-like key of a table (`sensor`, `from`, `to`): non-empty text.
fn id(t: &BTreeMap<String, toml::Value>, name: &str) -> Result<String, String> {
    match t.get(name) {
        Some(toml::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(_) => Err(format!("`{name}` is a non-empty string")),
        None => Err(format!("the table has no `{name}`")),
    }
}

/// The rows of a TOML registry file; `sensors` false: `[[edge]]` tables only (an `edges` file).
pub fn toml_file(path: &Path, schema: &Schema, sensors: bool) -> Result<Vec<Change>, LoadError> {
    let src = read(path)?;
    toml_text(&path.display().to_string(), &src, schema, sensors)
}

/// [`toml_file`] of the text `src` of file `file`.
pub fn toml_text(
    file: &str,
    src: &str,
    schema: &Schema,
    sensors: bool,
) -> Result<Vec<Change>, LoadError> {
    let file = file.to_string();
    let line_of = |offset: usize| src[..offset.min(src.len())].matches('\n').count() + 1;
    let at = |offset: usize, message: String| LoadError {
        file: file.clone(),
        line: line_of(offset),
        message,
    };
    let parsed: File = toml::from_str(src).map_err(|e| {
        let start = e.span().map_or(0, |s| s.start);
        at(start, e.message().trim().to_string())
    })?;
    if let (false, Some(first)) = (sensors, parsed.sensor.first()) {
        return Err(at(
            first.span().start,
            "an edges file holds [[edge]] tables only (sensors go in the `sensors` file)".into(),
        ));
    }
    let mut out = Vec::with_capacity(parsed.sensor.len() + parsed.edge.len());
    let mut seen = HashMap::new();
    for t in &parsed.sensor {
        let here = t.span().start;
        let fail = |m: String| at(here, m);
        let name = id(t.get_ref(), "sensor").map_err(fail)?;
        if let Some(first) = seen.insert(name.clone(), line_of(here)) {
            return Err(fail(format!(
                "sensor {name:?} is listed twice (first on line {first})"
            )));
        }
        let mut e = Entry {
            enabled: true,
            attrs: vec![None; schema.names.len()],
            ..Entry::default()
        };
        for (k, v) in t.get_ref().iter().filter(|(k, _)| *k != "sensor") {
            let v = text(k, v).map_err(fail)?;
            set_sensor_field(&mut e, schema, k, &v).map_err(fail)?;
        }
        out.push(Change {
            time: i64::MIN,
            key: Key::Sensor(name),
            value: Some(Value::Sensor(e)),
        });
    }
    let mut seen = HashMap::new();
    for t in &parsed.edge {
        let here = t.span().start;
        let fail = |m: String| at(here, m);
        let (from, to) = (
            id(t.get_ref(), "from").map_err(fail)?,
            id(t.get_ref(), "to").map_err(fail)?,
        );
        if from == to {
            return Err(fail(format!(
                "an edge needs two different ends, got {from:?} twice"
            )));
        }
        if let Some(first) = seen.insert((from.clone(), to.clone()), line_of(here)) {
            return Err(fail(format!(
                "the edge {from} → {to} is listed twice (first on line {first}); an edge is one table"
            )));
        }
        let mut e = EdgeInfo {
            directed: true,
            ..EdgeInfo::default()
        };
        for (k, v) in t
            .get_ref()
            .iter()
            .filter(|(k, _)| *k != "from" && *k != "to")
        {
            let v = text(k, v).map_err(fail)?;
            set_edge_field(&mut e, k, &v).map_err(fail)?;
        }
        out.push(Change {
            time: i64::MIN,
            key: Key::Edge(from, to),
            value: Some(Value::Edge(e)),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn schema() -> Schema {
        Schema::example()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn sensor_and_edge_tables_read_as_the_csv_columns_do() {
        let f = file(
            r#"
[[sensor]]
sensor = "m01-temp"
asset = "m01"
max_temp = 80
critical = true

[[sensor]]
sensor = "m02-temp"
enabled = false

[[edge]]
from = "m01"
to = "m02"
travel-time = "30s"
directed = false
"#,
        );
        let rows = toml_file(f.path(), &schema(), true).unwrap();
        assert_eq!(rows.len(), 3);
        let Some(Value::Sensor(e)) = &rows[0].value else {
            panic!("{rows:?}")
        };
        assert_eq!(
            (e.asset.as_str(), e.attr(0), e.attr(1), e.enabled),
            ("m01", 80.0, 1.0, true)
        );
        let Some(Value::Sensor(e)) = &rows[1].value else {
            panic!("{rows:?}")
        };
        assert!(!e.enabled && e.attr(0).is_nan());
        assert_eq!(rows[2].key, Key::Edge("m01".into(), "m02".into()));
        assert_eq!(
            rows[2].value,
            Some(Value::Edge(EdgeInfo {
                kind: String::new(),
                directed: false,
                travel_ms: 30_000
            }))
        );
        assert!(rows.iter().all(|c| c.time == i64::MIN));
    }

    #[test]
    fn mistakes_name_the_file_and_the_line_of_their_table() {
        let s = schema();
        for (text, sensors, line, want) in [
            ("[[sensor]]\nasset = \"m01\"\n", true, 1, "no `sensor`"),
            (
                "\n[[sensor]]\nsensor = \"a\"\nmax_temp = \"hot\"\n",
                true,
                2,
                "is a number",
            ),
            (
                "[[sensor]]\nsensor = \"a\"\ncolour = 1\n",
                true,
                1,
                "unknown",
            ),
            (
                "[[sensor]]\nsensor = \"a\"\n[[sensor]]\nsensor = \"a\"\n",
                true,
                3,
                "listed twice (first on line 1)",
            ),
            (
                "[[edge]]\nfrom = \"a\"\nto = \"a\"\n",
                true,
                1,
                "two different ends",
            ),
            (
                "[[edge]]\nfrom = \"a\"\nto = \"b\"\ntravel-time = \"soon\"\n",
                true,
                1,
                "not a duration",
            ),
            (
                "[[sensor]]\nsensor = \"a\"\n",
                false,
                1,
                "[[edge]] tables only",
            ),
            (
                "[[sensors]]\nsensor = \"a\"\n",
                true,
                1,
                "unknown field `sensors`",
            ),
            (
                "[[sensor]]\nsensor = \"a\"\nasset = [1]\n",
                true,
                1,
                "not a plain value",
            ),
            ("[[sensor]\n", true, 1, ""),
        ] {
            let f = file(text);
            let e = toml_file(f.path(), &s, sensors).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.message.contains(want), "{text}: {e}");
            assert_eq!(e.file, f.path().display().to_string());
        }
    }
}
