//! Durations in pipeline files: `"250ms"`, `"10s"`, `"5m"`, `"1h"`, `"1d"`, stored as milliseconds.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A span of event time, written as a number and a unit: `ms`, `s`, `m`, `h` or `d` (e.g. `"10s"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    /// Milliseconds.
    pub ms: i64,
}

impl Duration {
    /// A duration of `ms` milliseconds.
    pub const fn from_ms(ms: i64) -> Self {
        Self { ms }
    }
}

/// Parses `"10s"`-style durations; the error says what was expected.
///
/// ```
/// use hyflow::config::duration::parse_duration;
/// assert_eq!(parse_duration("250ms").unwrap().ms, 250);
/// assert_eq!(parse_duration("5m").unwrap().ms, 300_000);
/// assert_eq!(parse_duration("90s").unwrap().to_string(), "90s");
/// assert_eq!(parse_duration("120s").unwrap().to_string(), "2m");
/// let e = parse_duration("10 sec").unwrap_err();
/// assert!(e.starts_with("invalid duration \"10 sec\""), "{e}");
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let hint =
        "write a whole number and a unit with no space: \"250ms\", \"10s\", \"5m\", \"1h\", \"1d\"";
    if num.is_empty() {
        return Err(format!("invalid duration {text:?}: {hint}"));
    }
    let n: i64 = num
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: number too large"))?;
    let scale = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "invalid duration {text:?}: unknown unit {unit:?}; {hint}"
            ));
        }
    };
    n.checked_mul(scale)
        .map(Duration::from_ms)
        .ok_or_else(|| format!("invalid duration {text:?}: too large"))
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.ms;
        for (unit, scale) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if ms != 0 && ms % scale == 0 {
                return write!(f, "{}{unit}", ms / scale);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]+(ms|s|m|h|d)$",
            "description": "A duration: a whole number and a unit (ms, s, m, h, d), e.g. \"10s\"."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_rejects_spaces() {
        assert_eq!(parse_duration("250ms").unwrap().ms, 250);
        assert_eq!(parse_duration("10s").unwrap().ms, 10_000);
        assert_eq!(parse_duration("2h").unwrap().ms, 7_200_000);
        assert!(
            parse_duration("10 sec")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_duration("s").is_err());
        assert_eq!(Duration::from_ms(90_000).to_string(), "90s");
        assert_eq!(Duration::from_ms(60_000).to_string(), "1m");
    }
}
