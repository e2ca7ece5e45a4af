//! Arrow schemas of the four outputs and the conversion of rows into record batches.
//! These schemas are the documented output contract (README, docs/outputs.md).

use crate::batch::{LateRow, RejectRow};
use crate::output::{AlertRow, AssetRow, IncidentRow, WindowRow};
use crate::stages::features::{Feature, FeatureSet};
use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch, TimestampMillisecondArray};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::Arc;

/// Version of every output file's schema, in its `hyflow.schema_version` metadata: 2 since the
/// time columns are timestamps (1: int64 ms, still written with `times = "int64"`).
pub const FILE_SCHEMA_VERSION: i64 = 2;

/// `schema` with its time (timestamp) columns as int64.
pub fn int64_times(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if matches!(f.data_type(), DataType::Timestamp(..)) {
                f.as_ref().clone().with_data_type(DataType::Int64)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// `batch` with its time columns as int64 (the same values), of `schema` ([`int64_times`]).
pub fn with_int64_times(
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, ArrowError> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    let cols = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Timestamp(TimeUnit::Millisecond, _) => Arc::new(
                c.as_primitive::<arrow_array::types::TimestampMillisecondType>()
                    .reinterpret_cast::<arrow_array::types::Int64Type>(),
            ) as ArrayRef,
            _ => c.clone(),
        })
        .collect();
    RecordBatch::try_new(schema.clone(), cols)
}

/// Version of the alert schema (bumped on any incompatible change).
pub const ALERT_SCHEMA_VERSION: i64 = 1;

fn f(name: &str, dt: DataType, nullable: bool) -> Field {
    Field::new(name, dt, nullable)
}

/// The type of every time column: milliseconds since the epoch, in UTC, as a timestamp that
/// pyarrow, polars and DuckDB read as one (not a bare int64).
pub fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn ts(name: &str, nullable: bool) -> Field {
    Field::new(name, time_type(), nullable)
}

/// The prefix of the windows output's per-detector score columns.
pub const DETECTOR_COLUMN_PREFIX: &str = "score_";

/// The windows output's column of a detector's calibrated score.
pub fn detector_column(detector: &str) -> String {
    format!("{DETECTOR_COLUMN_PREFIX}{detector}")
}

/// Schema of the windows output for a feature set and the pipeline's detectors (by name).
pub fn windows_schema(features: &FeatureSet, detectors: &[&str]) -> SchemaRef {
    let mut fields = vec![
        f("sensor_id", DataType::Utf8, false),
        ts("window_start", false),
        ts("window_end", false),
    ];
    for (name, kind) in features.names.iter().zip(&features.kinds) {
        let dt = if *kind == Feature::Count {
            DataType::Int64
        } else {
            DataType::Float64
        };
        fields.push(f(name, dt, false));
    }
    fields.extend([
        f("filled", DataType::Int64, false),
        f("score", DataType::Float64, false),
        f("ai_score", DataType::Float64, false),
        f("rule_score", DataType::Float64, false),
        f("fused", DataType::Float64, false),
        f("alert", DataType::Boolean, false),
        f("rules", DataType::Utf8, false),
        f("rebaselined", DataType::Utf8, false),
    ]);
    fields.extend(
        detectors
            .iter()
            .map(|d| f(&detector_column(d), DataType::Float64, false)),
    );
    Arc::new(Schema::new(fields))
}

/// Schema of the alerts output.
pub fn alerts_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        f("schema_version", DataType::Int64, false),
        f("pipeline", DataType::Utf8, false),
        f("event_id", DataType::Utf8, false),
        f("sensor_id", DataType::Utf8, false),
        f("episode", DataType::Int64, false),
        f("state", DataType::Utf8, false),
        ts("window_start", false),
        ts("window_end", false),
        ts("opened_at", false),
        f("fused", DataType::Float64, false),
        f("peak", DataType::Float64, false),
        f("score", DataType::Float64, false),
        f("ai_score", DataType::Float64, false),
        f("rule_score", DataType::Float64, false),
        f("rules", DataType::Utf8, false),
        f("severity", DataType::Utf8, false),
        f("top_features", DataType::Utf8, false),
    ]))
}

/// Schema of the assets output.
pub fn assets_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        f("asset", DataType::Utf8, false),
        ts("window_start", false),
        ts("window_end", false),
        f("score", DataType::Float64, false),
        f("ai_score", DataType::Float64, false),
        f("alert", DataType::Boolean, false),
        f("top_sensors", DataType::Utf8, false),
        f("episode", DataType::Int64, false),
        f("state", DataType::Utf8, false),
    ]))
}

/// Asset rows as a record batch of [`assets_schema`].
pub fn assets_batch(rows: &[&AssetRow]) -> Result<RecordBatch, ArrowError> {
    let mut alert = BooleanBuilder::new();
    rows.iter().for_each(|r| alert.append_value(r.alert));
    RecordBatch::try_new(
        assets_schema(),
        vec![
            strings(rows.iter().map(|r| r.asset.as_str())),
            times(rows.iter().map(|r| r.start)),
            times(rows.iter().map(|r| r.end)),
            floats(rows.iter().map(|r| r.score)),
            floats(rows.iter().map(|r| r.ai_score)),
            Arc::new(alert.finish()),
            strings(rows.iter().map(|r| r.top_sensors.as_str())),
            ints(rows.iter().map(|r| r.episode as i64)),
            strings(rows.iter().map(|r| r.state.as_str())),
        ],
    )
}

/// Version of the incidents output's schema (docs/alerts.md).
pub const INCIDENT_SCHEMA_VERSION: i64 = 1;

/// Schema of the incidents output.
pub fn incidents_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        f("schema_version", DataType::Int64, false),
        f("pipeline", DataType::Utf8, false),
        f("incident_id", DataType::Utf8, false),
        f("state", DataType::Utf8, false),
        ts("time", false),
        ts("start", false),
        ts("end", true),
        f("members", DataType::Utf8, false),
        f("size", DataType::Int64, false),
        f("root_cause", DataType::Utf8, false),
        f("upstream", DataType::Utf8, false),
        f("peak", DataType::Float64, false),
        f("related", DataType::Utf8, false),
    ]))
}

/// Incident rows as a record batch of [`incidents_schema`].
pub fn incidents_batch(pipeline: &str, rows: &[&IncidentRow]) -> Result<RecordBatch, ArrowError> {
    RecordBatch::try_new(
        incidents_schema(),
        vec![
            ints(rows.iter().map(|_| INCIDENT_SCHEMA_VERSION)),
            strings(rows.iter().map(|_| pipeline)),
            strings(rows.iter().map(|r| r.incident.as_str())),
            strings(rows.iter().map(|r| r.state.as_str())),
            times(rows.iter().map(|r| r.time)),
            times(rows.iter().map(|r| r.start)),
            times_opt(rows.iter().map(|r| r.end)),
            strings(rows.iter().map(|r| r.members.as_str())),
            ints(rows.iter().map(|r| i64::from(r.size))),
            strings(rows.iter().map(|r| r.root_cause.as_str())),
            strings(rows.iter().map(|r| r.upstream.as_str())),
            floats(rows.iter().map(|r| r.peak)),
            strings(rows.iter().map(|r| r.related.as_str())),
        ],
    )
}

/// Schema of the rejects output.
pub fn rejects_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        f("source", DataType::Utf8, false),
        f("row", DataType::Int64, true),
        f("sensor_id", DataType::Utf8, true),
        ts("time", true),
        f("value", DataType::Float64, true),
        f("reason", DataType::Utf8, false),
    ]))
}

/// Schema of the late output.
pub fn late_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        f("source", DataType::Utf8, false),
        f("row", DataType::Int64, false),
        f("sensor_id", DataType::Utf8, false),
        ts("time", false),
        f("value", DataType::Float64, false),
        ts("watermark", false),
        f("reason", DataType::Utf8, false),
    ]))
}

fn strings<S: AsRef<str>>(it: impl Iterator<Item = S>) -> ArrayRef {
    let mut b = StringBuilder::new();
    it.for_each(|s| b.append_value(s));
    Arc::new(b.finish())
}
fn ints(it: impl Iterator<Item = i64>) -> ArrayRef {
    let mut b = Int64Builder::new();
    it.for_each(|v| b.append_value(v));
    Arc::new(b.finish())
}
fn times(it: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from_iter_values(it).with_timezone("UTC"))
}
fn times_opt(it: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from_iter(it).with_timezone("UTC"))
}
fn floats(it: impl Iterator<Item = f64>) -> ArrayRef {
    let mut b = Float64Builder::new();
    it.for_each(|v| b.append_value(v));
    Arc::new(b.finish())
}

/// Window rows as a record batch of [`windows_schema`].
pub fn windows_batch(
    schema: &SchemaRef,
    features: &FeatureSet,
    rows: &[&WindowRow],
) -> Result<RecordBatch, ArrowError> {
    let mut cols = vec![
        strings(rows.iter().map(|r| r.sensor.as_str())),
        times(rows.iter().map(|r| r.start)),
        times(rows.iter().map(|r| r.end)),
    ];
    for (j, kind) in features.kinds.iter().enumerate() {
        cols.push(if *kind == Feature::Count {
            ints(rows.iter().map(|r| r.features[j] as i64))
        } else {
            floats(rows.iter().map(|r| r.features[j]))
        });
    }
    cols.push(ints(rows.iter().map(|r| i64::from(r.filled))));
    cols.push(floats(rows.iter().map(|r| r.score)));
    cols.push(floats(rows.iter().map(|r| r.ai_score)));
    cols.push(floats(rows.iter().map(|r| r.rule_score)));
    cols.push(floats(rows.iter().map(|r| r.fused)));
    let mut alert = BooleanBuilder::new();
    rows.iter().for_each(|r| alert.append_value(r.alert));
    cols.push(Arc::new(alert.finish()));
    cols.push(strings(rows.iter().map(|r| r.rules.as_str())));
    cols.push(strings(rows.iter().map(|r| r.rebaselined.as_str())));
    // One column per detector: the columns the schema has after the fixed ones.
    let detectors = schema.fields().len().saturating_sub(cols.len());
    for d in 0..detectors {
        cols.push(floats(
            rows.iter()
                .map(|r| r.detector_scores.get(d).copied().unwrap_or(0.0)),
        ));
    }
    RecordBatch::try_new(schema.clone(), cols)
}

/// Alert rows as a record batch of [`alerts_schema`].
pub fn alerts_batch(pipeline: &str, rows: &[&AlertRow]) -> Result<RecordBatch, ArrowError> {
    RecordBatch::try_new(
        alerts_schema(),
        vec![
            ints(rows.iter().map(|_| ALERT_SCHEMA_VERSION)),
            strings(rows.iter().map(|_| pipeline)),
            strings(rows.iter().map(|r| r.event_id())),
            strings(rows.iter().map(|r| r.sensor.as_str())),
            ints(rows.iter().map(|r| r.episode as i64)),
            strings(rows.iter().map(|r| r.state.as_str())),
            times(rows.iter().map(|r| r.window_start)),
            times(rows.iter().map(|r| r.window_end)),
            times(rows.iter().map(|r| r.opened_at)),
            floats(rows.iter().map(|r| r.fused)),
            floats(rows.iter().map(|r| r.peak)),
            floats(rows.iter().map(|r| r.score)),
            floats(rows.iter().map(|r| r.ai_score)),
            floats(rows.iter().map(|r| r.rule_score)),
            strings(rows.iter().map(|r| r.rules.as_str())),
            strings(rows.iter().map(|r| r.severity.as_str())),
            strings(rows.iter().map(|r| r.top_features.as_str())),
        ],
    )
}

/// Reject rows as a record batch of [`rejects_schema`].
pub fn rejects_batch(rows: &[&RejectRow]) -> Result<RecordBatch, ArrowError> {
    let mut row = Int64Builder::new();
    let mut sensor = StringBuilder::new();
    let mut value = Float64Builder::new();
    for r in rows {
        row.append_option(r.row.map(|v| v as i64));
        sensor.append_option(r.sensor.as_deref());
        value.append_option(r.value);
    }
    RecordBatch::try_new(
        rejects_schema(),
        vec![
            strings(rows.iter().map(|r| r.source.as_str())),
            Arc::new(row.finish()),
            Arc::new(sensor.finish()),
            times_opt(rows.iter().map(|r| r.time)),
            Arc::new(value.finish()),
            strings(rows.iter().map(|r| r.reason.as_str())),
        ],
    )
}

/// Late rows as a record batch of [`late_schema`].
pub fn late_batch(rows: &[&LateRow]) -> Result<RecordBatch, ArrowError> {
    RecordBatch::try_new(
        late_schema(),
        vec![
            strings(rows.iter().map(|r| r.source.as_str())),
            ints(rows.iter().map(|r| r.row as i64)),
            strings(rows.iter().map(|r| r.sensor.as_str())),
            times(rows.iter().map(|r| r.time)),
            floats(rows.iter().map(|r| r.value)),
            times(rows.iter().map(|r| r.watermark)),
            strings(rows.iter().map(|r| r.reason.as_str())),
        ],
    )
}
