//! The registry topic's message format (`[registry] topic`, docs/registry.md), and the change
//! log line a live run records for each change it applied (the `changes` file format, so a
//! replay can read it back).
//!
//! A message is one registry row, as in a compacted topic: the key is the sensor id, or
//! `["from", "to"]` (JSON) for an edge; the value is the whole new row as a JSON object, and
//! a null (or empty) value deletes the row. The header `effective-time` says from when it
//! holds (ms since the epoch or RFC 3339); without it, from when it is read.

use super::load::{edge_key, row, time_of};
use super::{Change, Key, Schema, Value};
use serde_json::{Map, Value as Json};

/// The header that carries a change's effective time.
pub const EFFECTIVE_TIME: &str = "effective-time";

/// A decoded registry message: the row it is about, its new value (`None`: deleted), and its
/// effective time when the message carries one.
pub type Decoded = (Key, Option<Value>, Option<i64>);

/// Decodes one registry message; the error says what is wrong with it.
pub fn decode(
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    effective: Option<&[u8]>,
    schema: &Schema,
) -> Result<Decoded, String> {
    let key = match key {
        None | Some([]) => {
            return Err(
                "the message has no key (the sensor id, or [\"from\", \"to\"] for an edge)".into(),
            );
        }
        Some(k) => std::str::from_utf8(k).map_err(|_| "the key is not UTF-8 text".to_string())?,
    };
    let key = if key.trim_start().starts_with('[') {
        let j: Json = serde_json::from_str(key)
            .map_err(|e| format!("the key {key:?} starts with `[` but is not a JSON array: {e}"))?;
        edge_key(&j).map_err(|e| format!("the key {key:?}: {e}"))?
    } else {
        Key::Sensor(key.to_string())
    };
    let time = match effective {
        None => None,
        Some(t) => {
            let text = std::str::from_utf8(t)
                .map_err(|_| format!("header `{EFFECTIVE_TIME}` is not UTF-8 text"))?;
            Some(
                time_of(&Json::String(text.to_string()))
                    .map_err(|e| format!("header `{EFFECTIVE_TIME}` {e}"))?,
            )
        }
    };
    let value = match payload {
        None | Some([]) => None,
        Some(p) => match serde_json::from_slice::<Json>(p) {
            Ok(Json::Null) => None,
            Ok(Json::Object(o)) => Some(o),
            Ok(_) => {
                return Err(
                    "the value is a JSON object (the whole new row) or null (a delete)".into(),
                );
            }
            Err(e) => return Err(format!("the value is not JSON: {e}")),
        },
    };
    let value = row(&key, value.as_ref(), schema)?;
    Ok((key, value, time))
}

/// `c` as a line of a `changes` file (without the newline).
pub fn to_line(c: &Change, schema: &Schema) -> String {
    let mut line = Map::new();
    line.insert("time".into(), Json::from(c.time));
    match &c.key {
        Key::Sensor(s) => line.insert("sensor".into(), Json::from(s.as_str())),
        Key::Edge(f, t) => line.insert("edge".into(), Json::from(vec![f.as_str(), t.as_str()])),
    };
    let value = match &c.value {
        None => Json::Null,
        Some(Value::Sensor(e)) => {
            let mut v = Map::new();
            for (name, text) in [
                ("asset", &e.asset),
                ("segment", &e.segment),
                ("class", &e.class),
                ("unit", &e.unit),
            ] {
                if !text.is_empty() {
                    v.insert(name.into(), Json::from(text.as_str()));
                }
            }
            v.insert("enabled".into(), Json::from(e.enabled));
            for (i, name) in schema.names.iter().enumerate() {
                let Some(bits) = e.attrs.get(i).copied().flatten() else {
                    continue;
                };
                let x = f64::from_bits(bits);
                let j = if schema.is_bool[i] {
                    Json::from(x != 0.0)
                } else {
                    Json::from(x)
                };
                v.insert(name.clone(), j);
            }
            Json::Object(v)
        }
        Some(Value::Edge(e)) => {
            let mut v = Map::new();
            if !e.kind.is_empty() {
                v.insert("kind".into(), Json::from(e.kind.as_str()));
            }
            v.insert("directed".into(), Json::from(e.directed));
            if e.travel_ms > 0 {
                v.insert(
                    "travel-time".into(),
                    Json::from(format!("{}ms", e.travel_ms)),
                );
            }
            Json::Object(v)
        }
    };
    line.insert("value".into(), value);
    Json::Object(line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::example()
    }

    #[test]
    fn sensor_and_edge_messages_with_and_without_an_effective_time() {
        let s = schema();
        let (k, v, t) = decode(
            Some(b"m01-temp"),
            Some(br#"{"asset": "m01", "max_temp": 80.5, "critical": true}"#),
            Some(b"2024-03-04T00:05:00Z"),
            &s,
        )
        .unwrap();
        assert_eq!(k, Key::Sensor("m01-temp".into()));
        assert_eq!(t, Some(1_709_510_700_000));
        let Some(Value::Sensor(e)) = v else {
            panic!("{v:?}")
        };
        assert_eq!((e.asset.as_str(), e.attr(0), e.attr(1)), ("m01", 80.5, 1.0));
        let (k, v, t) = decode(
            Some(br#"["d01", "d02"]"#),
            Some(br#"{"kind": "road", "travel-time": "45s"}"#),
            Some(b"1709510700000"),
            &s,
        )
        .unwrap();
        assert_eq!(k, Key::Edge("d01".into(), "d02".into()));
        assert_eq!(t, Some(1_709_510_700_000));
        assert!(matches!(
            v,
            Some(Value::Edge(EdgeInfo {
                travel_ms: 45_000,
                directed: true,
                ..
            }))
        ));
        // Deletes: no value, an empty one, or JSON null.
        for payload in [None, Some(&b""[..]), Some(&b"null"[..])] {
            let (_, v, t) = decode(Some(b"m01-temp"), payload, None, &s).unwrap();
            assert_eq!((v, t), (None, None));
        }
    }

    use super::super::EdgeInfo;

    #[test]
    fn bad_messages_say_what_is_wrong() {
        let s = schema();
        for (key, payload, time, want) in [
            (None, Some(&b"{}"[..]), None, "has no key"),
            (Some(&b"[\"a\""[..]), None, None, "not a JSON array"),
            (
                Some(&b"[\"a\", \"a\"]"[..]),
                None,
                None,
                "two different ids",
            ),
            (Some(&b"m01"[..]), Some(&b"{bad"[..]), None, "not JSON"),
            (Some(&b"m01"[..]), Some(&b"[1]"[..]), None, "a JSON object"),
            (
                Some(&b"m01"[..]),
                Some(&br#"{"max_temp": "hot"}"#[..]),
                None,
                "is a number",
            ),
            (
                Some(&b"m01"[..]),
                Some(&br#"{"colour": 1}"#[..]),
                None,
                "unknown",
            ),
            (
                Some(&b"m01"[..]),
                None,
                Some(&b"soon"[..]),
                "effective-time",
            ),
            (Some(&b"\xff"[..]), None, None, "UTF-8"),
        ] {
            let e = decode(key, payload, time, &s).unwrap_err();
            assert!(e.contains(want), "{e:?} lacks {want:?}");
        }
    }

    #[test]
    fn a_recorded_line_reads_back_as_the_same_change() {
        let s = schema();
        let path = std::env::temp_dir().join(format!("hyflow-topic-{}.jsonl", std::process::id()));
        let mut text = String::new();
        let mut want = Vec::new();
        for (i, (key, payload)) in [
            (
                "m01-temp",
                Some(r#"{"asset": "m01", "unit": "C", "max_temp": 0.1, "critical": false}"#),
            ),
            ("m02-temp", Some(r#"{"enabled": false}"#)),
            ("m01-temp", None),
            (
                r#"["a", "b"]"#,
                Some(r#"{"directed": false, "travel-time": "1.5s"}"#),
            ),
            (r#"["a", "c"]"#, None),
        ]
        .into_iter()
        .enumerate()
        {
            let (key, value, _) =
                decode(Some(key.as_bytes()), payload.map(str::as_bytes), None, &s).unwrap();
            let c = Change {
                time: 1_000 + i as i64,
                key,
                value,
            };
            text.push_str(&to_line(&c, &s));
            text.push('\n');
            want.push(c);
        }
        std::fs::write(&path, text).unwrap();
        let back = super::super::load::changes_jsonl(&path, &s).unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(back, want);
    }
}
