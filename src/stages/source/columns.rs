//! Reading Arrow columns as sensor ids, times in ms, values and quality flags, in place where
//! the column already has the right type.

use super::*;
use crate::config::TimeUnit;
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit as ArrowUnit};

/// A sensor id column (string, dictionary of strings, or integer) as strings.
pub fn sensor_strings(col: &ArrayRef) -> Vec<Option<String>> {
    match col.data_type() {
        DataType::Utf8 => col
            .as_string::<i32>()
            .iter()
            .map(|s| s.map(str::to_string))
            .collect(),
        DataType::LargeUtf8 => col
            .as_string::<i64>()
            .iter()
            .map(|s| s.map(str::to_string))
            .collect(),
        DataType::Utf8View => col
            .as_string_view()
            .iter()
            .map(|s| s.map(str::to_string))
            .collect(),
        DataType::Dictionary(_, _) => {
            let d = col.as_any_dictionary();
            let values = sensor_strings(d.values());
            d.normalized_keys()
                .into_iter()
                .enumerate()
                .map(|(i, k)| {
                    if col.is_valid(i) {
                        values.get(k).cloned().flatten()
                    } else {
                        None
                    }
                })
                .collect()
        }
        _ => arrow_cast_int(col)
            .into_iter()
            .map(|v| v.map(|x| x.to_string()))
            .collect(),
    }
}

/// Calls `put(row, text)` for every non-null row of a string column (Utf8, LargeUtf8,
/// Utf8View); false when the column holds no strings.
pub(super) fn each_str(col: &dyn Array, mut put: impl FnMut(usize, &str)) -> bool {
    macro_rules! rows {
        ($s:expr) => {{
            let s = $s;
            for i in 0..s.len() {
                if s.is_valid(i) {
                    put(i, s.value(i));
                }
            }
        }};
    }
    match col.data_type() {
        DataType::Utf8 => rows!(col.as_string::<i32>()),
        DataType::LargeUtf8 => rows!(col.as_string::<i64>()),
        DataType::Utf8View => rows!(col.as_string_view()),
        _ => return false,
    }
    true
}

/// Event times in ms read in place: an int64 column in ms (or a UTC ms timestamp) without nulls.
pub(super) fn fast_ms(col: &ArrayRef, unit: TimeUnit) -> Option<&[i64]> {
    if col.null_count() > 0 {
        return None;
    }
    match col.data_type() {
        DataType::Int64 if unit == TimeUnit::Ms => Some(col.as_primitive::<Int64Type>().values()),
        DataType::Timestamp(ArrowUnit::Millisecond, Some(_)) => {
            Some(col.as_primitive::<TimestampMillisecondType>().values())
        }
        _ => None,
    }
}

/// Values read in place: a float64 column without nulls.
pub(super) fn fast_f64(col: &ArrayRef) -> Option<&[f64]> {
    (col.null_count() == 0 && *col.data_type() == DataType::Float64)
        .then(|| col.as_primitive::<Float64Type>().values().as_ref())
}

pub(super) fn arrow_cast_int(col: &ArrayRef) -> Vec<Option<i64>> {
    macro_rules! ints {
        ($t:ty) => {
            col.as_primitive::<$t>()
                .iter()
                .map(|v| v.map(|x| x as i64))
                .collect()
        };
    }
    match col.data_type() {
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => col
            .as_primitive::<UInt64Type>()
            .iter()
            .map(|v| v.and_then(|x| i64::try_from(x).ok()))
            .collect(),
        DataType::Boolean => col.as_boolean().iter().map(|v| v.map(i64::from)).collect(),
        _ => vec![None; col.len()],
    }
}

/// A numeric column as f64 values (None for nulls and unsupported types).
pub fn arrow_cast_f64(col: &ArrayRef) -> Vec<Option<f64>> {
    match col.data_type() {
        DataType::Float64 => col.as_primitive::<Float64Type>().iter().collect(),
        DataType::Float32 => col
            .as_primitive::<Float32Type>()
            .iter()
            .map(|v| v.map(f64::from))
            .collect(),
        DataType::Float16 => col
            .as_primitive::<Float16Type>()
            .iter()
            .map(|v| v.map(f64::from))
            .collect(),
        DataType::UInt64 => col
            .as_primitive::<UInt64Type>()
            .iter()
            .map(|v| v.map(|x| x as f64))
            .collect(),
        _ => arrow_cast_int(col)
            .into_iter()
            .map(|v| v.map(|x| x as f64))
            .collect(),
    }
}

/// A time column as ms since the epoch (integers in `unit`; naive timestamps shifted by
/// `zone`; None where that is out of range).
pub fn time_ms(col: &ArrayRef, unit: TimeUnit, zone: &crate::timefmt::Zone) -> Vec<Option<i64>> {
    match col.data_type() {
        DataType::Timestamp(u, tz) => {
            let unit = unit_of(*u);
            let naive = tz.is_none();
            let raw = match u {
                ArrowUnit::Second => col
                    .as_primitive::<TimestampSecondType>()
                    .iter()
                    .collect::<Vec<_>>(),
                ArrowUnit::Millisecond => col
                    .as_primitive::<TimestampMillisecondType>()
                    .iter()
                    .collect(),
                ArrowUnit::Microsecond => col
                    .as_primitive::<TimestampMicrosecondType>()
                    .iter()
                    .collect(),
                ArrowUnit::Nanosecond => col
                    .as_primitive::<TimestampNanosecondType>()
                    .iter()
                    .collect(),
            };
            raw.into_iter()
                .map(|v| {
                    let ms = to_ms(v?, unit);
                    if naive {
                        zone.local_to_utc(ms)
                    } else {
                        Some(ms)
                    }
                })
                .collect()
        }
        _ => arrow_cast_int(col)
            .into_iter()
            .map(|v| v.map(|x| to_ms(x, unit)))
            .collect(),
    }
}

pub(super) fn quality_flags(col: &ArrayRef) -> Vec<bool> {
    match col.data_type() {
        DataType::Boolean => col
            .as_boolean()
            .iter()
            .map(|v| v.unwrap_or(false))
            .collect(),
        _ => arrow_cast_int(col)
            .into_iter()
            .map(|v| v == Some(0))
            .collect(),
    }
}
