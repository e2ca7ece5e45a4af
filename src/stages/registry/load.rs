//! Reading the registry files: sensors and edges as CSV with a header line (or as Parquet,
//! `parquet.rs`, whose cells are read as the text a CSV field would hold), and the change log
//! as JSON lines. Every mistake names the file, the line and what is wrong; a file with
//! mistakes is refused whole (a registry half read would enrich windows wrongly without a
//! word).

use super::{Change, EdgeInfo, Entry, Key, Schema, Value};
use serde_json::Value as Json;
use std::path::Path;

/// A mistake in a registry file.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct LoadError {
    /// The file.
    pub file: String,
    /// 1-based line, in a Parquet file the 1-based row (0: the file as a whole, or a Parquet
    /// file's columns).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, place(&self.file)) {
            (0, _) => write!(f, "{}: {}", self.file, self.message),
            (n, "row") => write!(f, "{}: row {n}: {}", self.file, self.message),
            (n, _) => write!(f, "{}:{n}: {}", self.file, self.message),
        }
    }
}

/// What a file's rows are numbered as: `row` in a Parquet file, `line` in a text file.
pub(super) fn place(file: &str) -> &'static str {
    if file.ends_with(".parquet") {
        "row"
    } else {
        "line"
    }
}

/// Where a header mistake is: line 1 of a text file, the whole of a Parquet file.
fn header_line(file: &str) -> usize {
    usize::from(place(file) == "line")
}

pub(super) fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|e| LoadError {
        file: path.display().to_string(),
        line: 0,
        message: format!("cannot read the registry file: {e}"),
    })
}

/// A CSV line's fields (quotes around a field are removed; no field holds a comma).
fn split(line: &str) -> Vec<&str> {
    line.split(',')
        .map(|f| f.trim().trim_matches('"').trim())
        .collect()
}

/// The lines of a CSV file after its header, with their 1-based numbers, and the header's
/// column names.
/// A table's column names, and its rows (1-based line or row number, fields as text).
pub(super) type Csv = (Vec<String>, Vec<(usize, Vec<String>)>);

fn csv(path: &Path, text: &str) -> Result<Csv, LoadError> {
    let file = path.display().to_string();
    let mut lines = text.lines().enumerate();
    let header: Vec<String> = match lines.next() {
        Some((_, h)) => split(h.trim_start_matches('\u{feff}'))
            .into_iter()
            .map(str::to_string)
            .collect(),
        None => {
            return Err(LoadError {
                file,
                line: 0,
                message: "empty file: a registry CSV needs a header line".into(),
            });
        }
    };
    let mut rows = Vec::new();
    for (i, l) in lines {
        if l.trim().is_empty() {
            continue;
        }
        let f: Vec<String> = split(l).into_iter().map(str::to_string).collect();
        if f.len() != header.len() {
            return Err(LoadError {
                file,
                line: i + 1,
                message: format!(
                    "{} fields, but the header has {} ({})",
                    f.len(),
                    header.len(),
                    header.join(",")
                ),
            });
        }
        rows.push((i + 1, f));
    }
    Ok((header, rows))
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// A travel time: a number of `ms`, `s`, `m` or `h` (a bare number is seconds).
fn parse_travel(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num.trim().parse().ok()?;
    let ms = match unit {
        "ms" => 1.0,
        "s" => 1e3,
        "m" | "min" => 60e3,
        "h" => 3600e3,
        _ => return None,
    };
    (n.is_finite() && n >= 0.0).then(|| (n * ms).round() as i64)
}

/// Sets one field of a sensor row from text; `Err` says what is wrong with it.
pub(super) fn set_sensor_field(
    e: &mut Entry,
    schema: &Schema,
    name: &str,
    v: &str,
) -> Result<(), String> {
    match name {
        "asset" => e.asset = v.into(),
        "segment" => e.segment = v.into(),
        "class" => e.class = v.into(),
        "unit" => e.unit = v.into(),
        "enabled" => {
            e.enabled = if v.is_empty() {
                true
            } else {
                parse_bool(v).ok_or_else(|| format!("`enabled` is {v:?}: use true or false"))?
            }
        }
        _ => {
            let Some((i, is_bool)) = schema.index_of(name) else {
                return Err(unknown_field(name, schema));
            };
            if v.is_empty() {
                return Ok(());
            }
            let x = if is_bool {
                parse_bool(v)
                    .map(f64::from)
                    .ok_or_else(|| format!("attribute `{name}` is a boolean, not {v:?}"))?
            } else {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| format!("attribute `{name}` is a number, not {v:?}"))?
            };
            e.attrs[i] = Some(x.to_bits());
        }
    }
    Ok(())
}

fn unknown_field(name: &str, schema: &Schema) -> String {
    let mut known = vec!["asset", "segment", "class", "unit", "enabled"];
    known.extend(schema.names.iter().map(String::as_str));
    format!(
        "unknown column `{name}`: a sensor row has {} (declare attributes in [registry] attributes)",
        known.join(", ")
    )
}

/// The sensors of a registry CSV (column `sensor`, then any of `asset`, `segment`, `class`,
/// `unit`, `enabled` and the schema's attributes), as changes at the start of time.
pub fn sensors_csv(path: &Path, schema: &Schema) -> Result<Vec<Change>, LoadError> {
    let text = read(path)?;
    sensors_table(path, csv(path, &text)?, schema)
}

/// The sensors of a table (`sensors_csv`'s columns; a header mistake is on line 1).
pub(super) fn sensors_table(
    path: &Path,
    (header, rows): Csv,
    schema: &Schema,
) -> Result<Vec<Change>, LoadError> {
    let file = path.display().to_string();
    let Some(id) = header.iter().position(|h| h == "sensor") else {
        return Err(LoadError {
            line: header_line(&file),
            file,
            message: "no `sensor` column in the header".into(),
        });
    };
    for h in &header {
        if h != "sensor"
            && let Err(m) = set_sensor_field(&mut Entry::default(), schema, h, "")
        {
            return Err(LoadError {
                line: header_line(&file),
                file,
                message: m,
            });
        }
    }
    let mut seen = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for (line, f) in rows {
        let at = |message: String| LoadError {
            file: file.clone(),
            line,
            message,
        };
        if f[id].is_empty() {
            return Err(at("the sensor id is empty".into()));
        }
        if let Some(first) = seen.insert(f[id].clone(), line) {
            return Err(at(format!(
                "sensor {:?} is listed twice (first on {} {first})",
                f[id],
                place(&file)
            )));
        }
        let mut e = Entry {
            enabled: true,
            attrs: vec![None; schema.names.len()],
            ..Entry::default()
        };
        for (h, v) in header.iter().zip(&f) {
            if h != "sensor" {
                set_sensor_field(&mut e, schema, h, v).map_err(at)?;
            }
        }
        out.push(Change {
            time: i64::MIN,
            key: Key::Sensor(f[id].clone()),
            value: Some(Value::Sensor(e)),
        });
    }
    Ok(out)
}

pub(super) fn set_edge_field(e: &mut EdgeInfo, name: &str, v: &str) -> Result<(), String> {
    match name {
        "kind" => e.kind = v.into(),
        "directed" => {
            e.directed = v.is_empty()
                || parse_bool(v).ok_or_else(|| format!("`directed` is {v:?}: use true or false"))?
        }
        "travel-time" => {
            e.travel_ms = if v.is_empty() {
                0
            } else {
                parse_travel(v).ok_or_else(|| {
                    format!("`travel-time` {v:?} is not a duration (e.g. 45s, 2m, 500ms)")
                })?
            }
        }
        _ => {
            return Err(format!(
                "unknown column `{name}`: an edge has from, to, kind, directed, travel-time"
            ));
        }
    }
    Ok(())
}

/// The edges of a topology CSV (columns `from`, `to`, then any of `kind`, `directed` (default
/// true), `travel-time`), as changes at the start of time.
pub fn edges_csv(path: &Path) -> Result<Vec<Change>, LoadError> {
    let text = read(path)?;
    edges_table(path, csv(path, &text)?)
}

/// The edges of a table (`edges_csv`'s columns).
pub(super) fn edges_table(path: &Path, (header, rows): Csv) -> Result<Vec<Change>, LoadError> {
    let file = path.display().to_string();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(from), Some(to)) = (col("from"), col("to")) else {
        return Err(LoadError {
            line: header_line(&file),
            file,
            message: "an edges file needs `from` and `to` columns".into(),
        });
    };
    for h in &header {
        if h != "from"
            && h != "to"
            && let Err(message) = set_edge_field(&mut EdgeInfo::default(), h, "")
        {
            return Err(LoadError {
                line: header_line(&file),
                file,
                message,
            });
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    let mut seen = std::collections::HashMap::new();
    for (line, f) in rows {
        let at = |message: String| LoadError {
            file: file.clone(),
            line,
            message,
        };
        if let Some(first) = seen.insert((f[from].clone(), f[to].clone()), line) {
            return Err(at(format!(
                "the edge {} → {} is listed twice (first on {} {first}); an edge is one row",
                f[from],
                f[to],
                place(&file)
            )));
        }
        if f[from].is_empty() || f[to].is_empty() || f[from] == f[to] {
            return Err(at(format!(
                "an edge needs two different ends, got {:?} → {:?}",
                f[from], f[to]
            )));
        }
        let mut e = EdgeInfo {
            directed: true,
            ..EdgeInfo::default()
        };
        for (h, v) in header.iter().zip(&f) {
            if h != "from" && h != "to" {
                set_edge_field(&mut e, h, v).map_err(at)?;
            }
        }
        out.push(Change {
            time: i64::MIN,
            key: Key::Edge(f[from].clone(), f[to].clone()),
            value: Some(Value::Edge(e)),
        });
    }
    Ok(out)
}

/// A JSON value as the text a CSV field would hold.
fn json_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        Json::Null => Some(String::new()),
        _ => None,
    }
}

/// An event time in a change: ms since the epoch, or RFC 3339 text.
pub(super) fn time_of(v: &Json) -> Result<i64, String> {
    match v {
        Json::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("{n} is not a whole number of ms")),
        Json::String(s) => crate::timefmt::parse_timestamp(s)
            .or_else(|| s.trim().parse().ok())
            .ok_or_else(|| format!("{s:?} is not an RFC 3339 time or ms since the epoch")),
        _ => Err("is ms since the epoch or RFC 3339 text".into()),
    }
}

/// An edge's key: `["from", "to"]`, two different ids.
pub(super) fn edge_key(v: &Json) -> Result<Key, String> {
    match v {
        Json::Array(a) => match a.as_slice() {
            [Json::String(f), Json::String(t)] if f != t && !f.is_empty() && !t.is_empty() => {
                Ok(Key::Edge(f.clone(), t.clone()))
            }
            _ => Err("`edge` is [\"from\", \"to\"], two different ids".into()),
        },
        _ => Err("`edge` is [\"from\", \"to\"], two different ids".into()),
    }
}

/// The row of `key` that a JSON object describes (`None`: a delete).
pub(super) fn row(
    key: &Key,
    value: Option<&serde_json::Map<String, Json>>,
    schema: &Schema,
) -> Result<Option<Value>, String> {
    Ok(match (value, key) {
        (None, _) => None,
        (Some(v), Key::Sensor(_)) => {
            let mut e = Entry {
                enabled: true,
                attrs: vec![None; schema.names.len()],
                ..Entry::default()
            };
            for (k, x) in v {
                let t = json_text(x).ok_or_else(|| format!("`{k}` is not a plain value"))?;
                set_sensor_field(&mut e, schema, k, &t)?;
            }
            Some(Value::Sensor(e))
        }
        (Some(v), Key::Edge(..)) => {
            let mut e = EdgeInfo {
                directed: true,
                ..EdgeInfo::default()
            };
            for (k, x) in v {
                let t = json_text(x).ok_or_else(|| format!("`{k}` is not a plain value"))?;
                set_edge_field(&mut e, k, &t)?;
            }
            Some(Value::Edge(e))
        }
    })
}

/// One change-log line (a registry topic message as a live run records it).
pub fn change(line: &str, schema: &Schema) -> Result<Change, String> {
    let j: Json = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Json::Object(obj) = j else {
        return Err("a change is a JSON object with time, sensor or edge, and value".into());
    };
    for k in obj.keys() {
        if !matches!(k.as_str(), "time" | "sensor" | "edge" | "value") {
            return Err(format!(
                "unknown key `{k}`: a change has time, sensor or edge, and value"
            ));
        }
    }
    let time = match obj.get("time") {
        Some(t) => time_of(t).map_err(|e| format!("`time` {e}"))?,
        None => {
            return Err(
                "`time` is missing: a change needs the event time from which it holds".into(),
            );
        }
    };
    let value = match obj.get("value") {
        None => return Err("`value` is missing (null deletes the row)".into()),
        Some(Json::Null) => None,
        Some(Json::Object(v)) => Some(v),
        Some(_) => return Err("`value` is an object (the whole new row) or null".into()),
    };
    let key = match (obj.get("sensor"), obj.get("edge")) {
        (Some(Json::String(s)), None) if !s.is_empty() => Key::Sensor(s.clone()),
        (None, Some(e @ Json::Array(_))) => edge_key(e)?,
        _ => return Err("a change names one `sensor` (an id) or one `edge` ([from, to])".into()),
    };
    let value = row(&key, value, schema)?;
    Ok(Change { time, key, value })
}

/// The changes of a JSON-lines change log, in time order (changes of one time in file order).
pub fn changes_jsonl(path: &Path, schema: &Schema) -> Result<Vec<Change>, LoadError> {
    let text = read(path)?;
    let file = path.display().to_string();
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        out.push(change(l, schema).map_err(|message| LoadError {
            file: file.clone(),
            line: i + 1,
            message,
        })?);
    }
    out.sort_by_key(|c| c.time);
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
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn sensors_with_attributes_and_defaults_for_empty_fields() {
        let f = file(
            "sensor,asset,max_temp,critical,enabled\nm01-temp,m01,80,true,\nm02-temp,m02,,0,false\n",
        );
        let c = sensors_csv(f.path(), &schema()).unwrap();
        assert_eq!(c.len(), 2);
        let Some(Value::Sensor(e)) = &c[0].value else {
            panic!()
        };
        assert_eq!((e.asset.as_str(), e.enabled), ("m01", true));
        assert_eq!(e.values(), vec![80.0, 1.0]);
        let Some(Value::Sensor(e)) = &c[1].value else {
            panic!()
        };
        assert!(!e.enabled && e.attr(0).is_nan() && e.attr(1) == 0.0);
    }

    #[test]
    fn mistakes_name_the_file_line_and_what() {
        for (text, line, what) in [
            ("asset\nm01\n", 1, "no `sensor` column"),
            ("sensor,colour\nm01,red\n", 1, "unknown column `colour`"),
            ("sensor,max_temp\nm01,hot\n", 2, "is a number, not \"hot\""),
            ("sensor,critical\nm01,maybe\n", 2, "is a boolean"),
            (
                "sensor,asset\nm01,a\nm01,b\n",
                3,
                "listed twice (first on line 2)",
            ),
            ("sensor,asset\nm01\n", 2, "1 fields, but the header has 2"),
            ("sensor\n\n,\n", 3, "2 fields"),
            ("", 0, "empty file"),
        ] {
            let f = file(text);
            let e = sensors_csv(f.path(), &schema()).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(what), "{text:?}: {e}");
            assert!(e.to_string().starts_with(&f.path().display().to_string()));
        }
    }

    #[test]
    fn edges_with_direction_and_travel_time() {
        let f =
            file("from,to,kind,travel-time,directed\nd02,d01,road,45s,\nm01,m02,utility,,false\n");
        let c = edges_csv(f.path()).unwrap();
        assert_eq!(c[0].key, Key::Edge("d02".into(), "d01".into()));
        assert_eq!(
            c[0].value,
            Some(Value::Edge(EdgeInfo {
                kind: "road".into(),
                directed: true,
                travel_ms: 45_000
            }))
        );
        let Some(Value::Edge(e)) = &c[1].value else {
            panic!()
        };
        assert!(!e.directed);
        for (text, what) in [
            ("from\na\n", "needs `from` and `to`"),
            ("from,to\na,a\n", "two different ends"),
            ("from,to,travel-time\na,b,soon\n", "not a duration"),
            ("from,to,weight\na,b,1\n", "unknown column `weight`"),
            ("from,to\na,b\nb,c\na,b\n", "listed twice (first on line 2)"),
        ] {
            let e = edges_csv(file(text).path()).unwrap_err();
            assert!(e.message.contains(what), "{text:?}: {e}");
        }
    }

    #[test]
    fn change_log_in_time_order_with_deletes_and_located_mistakes() {
        let f = file(concat!(
            r#"{"time": "2024-03-04T01:00:00Z", "sensor": "m01-temp", "value": {"asset": "m01", "max_temp": 70}}"#,
            "\n",
            r#"{"time": 5, "edge": ["m01", "m02"], "value": null}"#,
            "\n",
        ));
        let c = changes_jsonl(f.path(), &schema()).unwrap();
        assert_eq!(c[0].time, 5);
        assert_eq!(c[0].value, None);
        assert_eq!(c[1].time, 1_709_514_000_000);
        for (line, what) in [
            (r#"{"sensor": "a", "value": null}"#, "`time` is missing"),
            (r#"{"time": 1, "value": null}"#, "names one `sensor`"),
            (r#"{"time": 1, "sensor": "a"}"#, "`value` is missing"),
            (
                r#"{"time": "soon", "sensor": "a", "value": null}"#,
                "not an RFC 3339",
            ),
            (
                r#"{"time": 1, "sensor": "a", "value": {"max_temp": "x"}}"#,
                "is a number",
            ),
            (
                r#"{"time": 1, "sensor": "a", "value": {"colour": 1}}"#,
                "unknown column `colour`",
            ),
            (
                r#"{"time": 1, "edge": ["a"], "value": null}"#,
                "two different ids",
            ),
            (
                r#"{"time": 1, "sensor": "a", "value": null, "why": 1}"#,
                "unknown key `why`",
            ),
            ("not json", "not JSON"),
        ] {
            let f = file(&format!("\n{line}\n"));
            let e = changes_jsonl(f.path(), &schema()).unwrap_err();
            assert_eq!(e.line, 2, "{line}: {e}");
            assert!(e.message.contains(what), "{line}: {e}");
        }
    }

    #[test]
    fn travel_times() {
        assert_eq!(parse_travel("45"), Some(45_000));
        assert_eq!(parse_travel("500ms"), Some(500));
        assert_eq!(parse_travel("2m"), Some(120_000));
        assert_eq!(parse_travel("-1s"), None);
        assert_eq!(parse_travel("1d"), None);
    }
}
