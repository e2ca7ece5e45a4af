//! Kafka message payloads → readings. A message holds one reading (a JSON object, a CSV
//! line) or several (a JSON array, an Arrow IPC stream). A message that cannot be decoded as a
//! whole goes to the dead-letter output with the reason; none of its readings is used, so
//! replaying dead letters after a fix cannot duplicate readings. The result is one Arrow batch
//! (sensor Utf8, time Timestamp(ms, UTC), value Float64[, quality Boolean]) for the
//! [`super::Decoder`], which cleans and routes it like a file's batch.

use super::{arrow_cast_f64, sensor_strings, time_ms};
use crate::config::{ColumnMapping, MessageFormat, TimeUnit};
use arrow_array::builder::{
    BooleanBuilder, Float64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit as ArrowUnit};
use serde_json::Value;
use std::sync::Arc;

/// A message to decode.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    /// Offset in its partition.
    pub offset: i64,
    /// The Kafka timestamp (ms), when the message has one.
    pub timestamp: Option<i64>,
    /// The payload (None for a tombstone).
    pub payload: Option<&'a [u8]>,
}

/// Messages decoded into one batch.
#[derive(Debug)]
pub struct Decoded {
    /// The readings; `offsets[i]` is the offset of the message row i came from.
    pub batch: RecordBatch,
    /// Message offset per row.
    pub offsets: Vec<u64>,
    /// (offset, reason) of every message that could not be decoded.
    pub errors: Vec<(i64, String)>,
}

/// Decodes payloads in a pipeline's message format and field mapping.
#[derive(Clone, Debug)]
pub struct MessageDecoder {
    format: MessageFormat,
    columns: ColumnMapping,
    csv_fields: Vec<String>,
    time_unit: TimeUnit,
    zone: crate::timefmt::Zone,
    /// A reading more than this ahead of its message's Kafka timestamp is refused (a clock
    /// years off would otherwise push the watermark past everything to come).
    max_ahead_ms: i64,
    /// Accepted event times (`[clean] min-time` .. `max-time`): a message holding a reading
    /// outside them is refused whole (to the dead-letter topic), like any undecodable one.
    time_range: (i64, i64),
}

/// Event time more than this ahead of the Kafka timestamp is an error.
pub const MAX_AHEAD_MS: i64 = 3_600_000;

struct Rows {
    sensor: StringBuilder,
    time: TimestampMillisecondBuilder,
    value: Float64Builder,
    quality: BooleanBuilder,
    offsets: Vec<u64>,
}

/// One reading before it is appended.
struct Reading {
    sensor: Option<String>,
    time: Option<i64>,
    value: Option<f64>,
    quality: Option<bool>,
}

impl MessageDecoder {
    /// A decoder for `format` with the source's column names, CSV field order (None: sensor,
    /// time, value), integer time unit and time zone.
    pub fn new(
        format: MessageFormat,
        columns: ColumnMapping,
        csv_fields: Option<Vec<String>>,
        time_unit: TimeUnit,
        zone: crate::timefmt::Zone,
    ) -> Self {
        let csv_fields = csv_fields.unwrap_or_else(|| {
            vec![
                columns.sensor.clone(),
                columns.time.clone(),
                columns.value.clone(),
            ]
        });
        Self {
            format,
            columns,
            csv_fields,
            time_unit,
            zone,
            max_ahead_ms: MAX_AHEAD_MS,
            time_range: (0, 7_258_118_400_000),
        }
    }

    /// Accepts event times in `[lo, hi)` only (default: 1970-01-01 to 2200-01-01).
    pub fn with_time_range(mut self, lo: i64, hi: i64) -> Self {
        self.time_range = (lo, hi);
        self
    }

    /// Decodes messages in offset order.
    pub fn decode(&self, messages: &[Message<'_>]) -> Decoded {
        let mut rows = Rows {
            sensor: StringBuilder::new(),
            time: TimestampMillisecondBuilder::new(),
            value: Float64Builder::new(),
            quality: BooleanBuilder::new(),
            offsets: Vec::new(),
        };
        let mut errors = Vec::new();
        for m in messages {
            match self.readings(m) {
                Ok(readings) => {
                    for r in readings {
                        rows.sensor.append_option(r.sensor);
                        rows.time.append_option(r.time);
                        rows.value.append_option(r.value);
                        rows.quality.append_value(r.quality.unwrap_or(true));
                        rows.offsets.push(m.offset.max(0) as u64);
                    }
                }
                Err(e) => errors.push((m.offset, e)),
            }
        }
        let mut fields = vec![
            Field::new("sensor", DataType::Utf8, true),
            Field::new(
                "time",
                DataType::Timestamp(ArrowUnit::Millisecond, Some("+00:00".into())),
                true,
            ),
            Field::new("value", DataType::Float64, true),
        ];
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(rows.sensor.finish()),
            Arc::new(rows.time.finish().with_timezone("+00:00")),
            Arc::new(rows.value.finish()),
        ];
        if self.columns.quality.is_some() {
            fields.push(Field::new("quality", DataType::Boolean, true));
            cols.push(Arc::new(rows.quality.finish()));
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
            .unwrap_or_else(|e| unreachable!("columns built to the schema: {e}"));
        Decoded {
            batch,
            offsets: rows.offsets,
            errors,
        }
    }

    /// The readings of one message, or why it cannot be decoded.
    fn readings(&self, m: &Message<'_>) -> Result<Vec<Reading>, String> {
        let payload = m.payload.ok_or("empty message (no payload)")?;
        if payload.is_empty() {
            return Err("empty message".into());
        }
        let readings = match self.format {
            MessageFormat::Json => self.json(payload)?,
            MessageFormat::Csv => vec![self.csv(payload)?],
            MessageFormat::ArrowIpc => self.ipc(payload)?,
        };
        if let Some(ts) = m.timestamp {
            for (i, r) in readings.iter().enumerate() {
                if let Some(t) = r.time
                    && t > ts.saturating_add(self.max_ahead_ms)
                {
                    return Err(format!(
                        "reading {i}: time {t} is {} s ahead of the message's Kafka timestamp {ts} (at most {} s allowed)",
                        t.saturating_sub(ts) / 1000,
                        self.max_ahead_ms / 1000
                    ));
                }
            }
        }
        let (lo, hi) = self.time_range;
        for (i, r) in readings.iter().enumerate() {
            if let Some(t) = r.time
                && !(lo..hi).contains(&t)
            {
                return Err(format!(
                    "reading {i}: time {t} ms is outside the accepted range {lo} .. {hi} ms ([clean] min-time, max-time)"
                ));
            }
        }
        Ok(readings)
    }

    fn json(&self, payload: &[u8]) -> Result<Vec<Reading>, String> {
        let v: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
        match v {
            Value::Object(_) => Ok(vec![self.json_reading(&v).map_err(|e| e.to_string())?]),
            Value::Array(items) => {
                if items.is_empty() {
                    return Err("an empty JSON array".into());
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| {
                        self.json_reading(x)
                            .map_err(|e| format!("element {i}: {e}"))
                    })
                    .collect()
            }
            other => Err(format!(
                "expected a JSON object or array of objects, got {}",
                kind(&other)
            )),
        }
    }

    fn json_reading(&self, v: &Value) -> Result<Reading, String> {
        let Value::Object(o) = v else {
            return Err(format!("expected an object, got {}", kind(v)));
        };
        let c = &self.columns;
        let sensor = match o.get(&c.sensor) {
            None => return Err(format!("no field {:?}", c.sensor)),
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            Some(Value::Null) => None,
            Some(x) => return Err(format!("{:?} is {}, not a sensor id", c.sensor, kind(x))),
        };
        let time = match o.get(&c.time) {
            None => return Err(format!("no field {:?}", c.time)),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(t) => Some(super::to_ms(t, self.time_unit)),
                None => return Err(format!("{:?} = {n} is not an integer time", c.time)),
            },
            Some(Value::String(s)) => Some(self.text_time(s, &c.time)?),
            Some(Value::Null) => None,
            Some(x) => return Err(format!("{:?} is {}, not a time", c.time, kind(x))),
        };
        let value = match o.get(&c.value) {
            None => return Err(format!("no field {:?}", c.value)),
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => Some(number(s, &c.value)?),
            Some(Value::Null) => None,
            Some(x) => return Err(format!("{:?} is {}, not a number", c.value, kind(x))),
        };
        let quality = match c.quality.as_ref().and_then(|q| o.get(q)) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::Number(n)) => Some(n.as_i64() == Some(0)),
            Some(x) => return Err(format!("quality is {}, not a flag", kind(x))),
        };
        Ok(Reading {
            sensor,
            time,
            value,
            quality,
        })
    }

    fn csv(&self, payload: &[u8]) -> Result<Reading, String> {
        let line = std::str::from_utf8(payload).map_err(|_| "not UTF-8 text".to_string())?;
        let line = line.trim_end_matches(['\r', '\n']);
        let parts: Vec<&str> = line.split(',').map(str::trim).collect();
        if parts.len() != self.csv_fields.len() {
            return Err(format!(
                "{} fields, expected {} ({})",
                parts.len(),
                self.csv_fields.len(),
                self.csv_fields.join(",")
            ));
        }
        let c = &self.columns;
        let mut r = Reading {
            sensor: None,
            time: None,
            value: None,
            quality: None,
        };
        for (name, text) in self.csv_fields.iter().zip(parts) {
            if text.is_empty() {
                continue;
            }
            if *name == c.sensor {
                r.sensor = Some(text.to_string());
            } else if *name == c.time {
                r.time = Some(match text.parse::<i64>() {
                    Ok(t) => super::to_ms(t, self.time_unit),
                    Err(_) => self.text_time(text, name)?,
                });
            } else if *name == c.value {
                r.value = Some(number(text, name)?);
            } else if c.quality.as_ref() == Some(name) {
                r.quality = Some(matches!(text, "true" | "0"));
            }
        }
        Ok(r)
    }

    fn ipc(&self, payload: &[u8]) -> Result<Vec<Reading>, String> {
        // arrow-ipc panics on some damaged streams (a buffer offset beyond the message, found
        // by fuzzing): such a message is undecodable like any other, never a crashed worker.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.ipc_unchecked(payload)))
            .unwrap_or_else(|p| {
                Err(format!(
                    "damaged Arrow IPC stream: {}",
                    super::panic_text(p.as_ref())
                ))
            })
    }

    fn ipc_unchecked(&self, payload: &[u8]) -> Result<Vec<Reading>, String> {
        let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(payload), None)
            .map_err(|e| format!("not an Arrow IPC stream: {e}"))?;
        let c = &self.columns;
        let mut out = Vec::new();
        for batch in reader {
            let b = batch.map_err(|e| format!("Arrow IPC stream: {e}"))?;
            let col = |name: &str| {
                b.column_by_name(name)
                    .cloned()
                    .ok_or_else(|| format!("Arrow IPC stream has no column {name:?}"))
            };
            let sensors = sensor_strings(&col(&c.sensor)?);
            let times = time_ms(&col(&c.time)?, self.time_unit, &self.zone);
            let vcol = col(&c.value)?;
            if !vcol.data_type().is_numeric() {
                return Err(format!(
                    "column {:?} is {}, not numeric",
                    c.value,
                    vcol.data_type()
                ));
            }
            let values = arrow_cast_f64(&vcol);
            for i in 0..b.num_rows() {
                out.push(Reading {
                    sensor: sensors[i].clone(),
                    time: times[i],
                    value: values[i],
                    quality: None,
                });
            }
        }
        if out.is_empty() {
            return Err("Arrow IPC stream with no rows".into());
        }
        Ok(out)
    }

    /// A text timestamp (`YYYY-MM-DD HH:MM:SS[.fff]`, local in the source's zone) as UTC ms.
    fn text_time(&self, s: &str, field: &str) -> Result<i64, String> {
        self.zone
            .parse_text(s)
            .ok_or_else(|| format!("{field:?} = {s:?} is not a time"))
    }
}

/// A number written as text: decimal, or NaN / inf (which cleaning then judges).
fn number(s: &str, field: &str) -> Result<f64, String> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "nan" => Ok(f64::NAN),
        "inf" | "+inf" | "infinity" => Ok(f64::INFINITY),
        "-inf" | "-infinity" => Ok(f64::NEG_INFINITY),
        _ => t
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{field:?} = {s:?} is not a number")),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
