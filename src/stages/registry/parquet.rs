//! Registry sensors and edges from Parquet: the columns are found by name (never by position),
//! and every cell is read as the text a CSV field of the same file would hold, so a Parquet
//! registry and its CSV twin give the same rows and the same mistakes (rows numbered from 1).
//! Strings, integers, floats, booleans and dictionary-encoded strings are read; a column of
//! another type is a mistake naming it. A null cell is an empty field (the row's default).

use super::load::{Csv, LoadError};
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchReader, cast::AsArray, types};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::Path;

/// The sensors of a Parquet file (the columns of [`super::load::sensors_csv`]).
pub fn sensors(path: &Path, schema: &super::Schema) -> Result<Vec<super::Change>, LoadError> {
    super::load::sensors_table(path, table(path)?, schema)
}

/// The edges of a Parquet file (the columns of [`super::load::edges_csv`]).
pub fn edges(path: &Path) -> Result<Vec<super::Change>, LoadError> {
    super::load::edges_table(path, table(path)?)
}

/// The columns and rows of a Parquet file, cells as text. The parquet crate can panic on a
/// corrupt file; that is a mistake in the file too.
pub(super) fn table(path: &Path) -> Result<Csv, LoadError> {
    std::panic::catch_unwind(|| read_table(path)).unwrap_or_else(|_| {
        Err(LoadError {
            file: path.display().to_string(),
            line: 0,
            message: "not a readable Parquet file (the reader failed on it)".into(),
        })
    })
}

fn read_table(path: &Path) -> Result<Csv, LoadError> {
    let file = path.display().to_string();
    let whole = |message: String| LoadError {
        file: file.clone(),
        line: 0,
        message,
    };
    let f = std::fs::File::open(path)
        .map_err(|e| whole(format!("cannot read the registry file: {e}")))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .and_then(|b| b.build())
        .map_err(|e| whole(format!("not a readable Parquet file: {e}")))?;
    let header: Vec<String> = reader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    for field in reader.schema().fields() {
        if !readable(field.data_type()) {
            return Err(whole(format!(
                "column `{}` is {}: a registry column is a string, a number or a boolean",
                field.name(),
                field.data_type()
            )));
        }
    }
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| LoadError {
            file: file.clone(),
            line: rows.len() + 1,
            message: format!("cannot decode the rows from here: {e}"),
        })?;
        append(&batch, &mut rows);
    }
    Ok((header, rows))
}

/// Whether a column of this type can be read as text.
fn readable(t: &DataType) -> bool {
    match t {
        DataType::Dictionary(_, v) => matches!(**v, DataType::Utf8 | DataType::LargeUtf8),
        _ => {
            t.is_integer()
                || t.is_floating()
                || matches!(
                    t,
                    DataType::Boolean | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                )
        }
    }
}

/// Appends `batch`'s rows, numbered on from `rows`.
fn append(batch: &RecordBatch, rows: &mut Vec<(usize, Vec<String>)>) {
    let first = rows.len();
    for i in 0..batch.num_rows() {
        rows.push((first + i + 1, Vec::with_capacity(batch.num_columns())));
    }
    for col in batch.columns() {
        for i in 0..batch.num_rows() {
            rows[first + i].1.push(cell(col, i));
        }
    }
}

/// One cell as text ("" for a null).
fn cell(a: &ArrayRef, i: usize) -> String {
    if a.is_null(i) {
        return String::new();
    }
    macro_rules! prim {
        ($t:ty) => {
            a.as_primitive::<$t>().value(i).to_string()
        };
    }
    match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(i).to_string(),
        DataType::LargeUtf8 => a.as_string::<i64>().value(i).to_string(),
        DataType::Utf8View => a.as_string_view().value(i).to_string(),
        DataType::Boolean => a.as_boolean().value(i).to_string(),
        DataType::Int8 => prim!(types::Int8Type),
        DataType::Int16 => prim!(types::Int16Type),
        DataType::Int32 => prim!(types::Int32Type),
        DataType::Int64 => prim!(types::Int64Type),
        DataType::UInt8 => prim!(types::UInt8Type),
        DataType::UInt16 => prim!(types::UInt16Type),
        DataType::UInt32 => prim!(types::UInt32Type),
        DataType::UInt64 => prim!(types::UInt64Type),
        DataType::Float16 => prim!(types::Float16Type),
        DataType::Float32 => prim!(types::Float32Type),
        DataType::Float64 => prim!(types::Float64Type),
        DataType::Dictionary(_, _) => {
            let d = a.as_any_dictionary();
            let k = d.normalized_keys()[i];
            cell(d.values(), k)
        }
        // `readable` refused every other type.
        t => unreachable!("registry column of type {t}"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::load::{edges_csv, edges_table, sensors_csv, sensors_table};
    use super::super::{Key, Schema};
    use super::*;
    use arrow_array::{BooleanArray, DictionaryArray, Float64Array, Int32Array, StringArray};
    use std::sync::Arc;

    fn write(dir: &Path, name: &str, cols: Vec<(&str, ArrayRef)>) -> std::path::PathBuf {
        let path = dir.join(name);
        let batch = RecordBatch::try_from_iter(cols).unwrap();
        let f = std::fs::File::create(&path).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        path
    }

    #[test]
    fn parquet_sensors_and_edges_equal_their_csv_twins() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Schema::example();
        let keys = Int32Array::from(vec![0, 1, 0]);
        let asset = DictionaryArray::new(keys, Arc::new(StringArray::from(vec!["m1", "m2"])));
        let pq = write(
            dir.path(),
            "s.parquet",
            vec![
                // Columns in another order than the CSV's: read by name.
                (
                    "max_temp",
                    Arc::new(Float64Array::from(vec![Some(80.5), None, Some(90.0)])),
                ),
                ("sensor", Arc::new(StringArray::from(vec!["a", "b", "c"]))),
                ("asset", Arc::new(asset)),
                (
                    "enabled",
                    Arc::new(BooleanArray::from(vec![true, false, true])),
                ),
            ],
        );
        let csv = dir.path().join("s.csv");
        std::fs::write(
            &csv,
            "sensor,asset,enabled,max_temp\na,m1,true,80.5\nb,m2,false,\nc,m1,true,90\n",
        )
        .unwrap();
        let from_pq = sensors_table(&pq, table(&pq).unwrap(), &schema).unwrap();
        assert_eq!(from_pq, sensors_csv(&csv, &schema).unwrap());
        assert_eq!(from_pq.len(), 3);

        let pq = write(
            dir.path(),
            "e.parquet",
            vec![
                ("from", Arc::new(StringArray::from(vec!["a", "b"]))),
                ("to", Arc::new(StringArray::from(vec!["b", "c"]))),
                (
                    "travel-time",
                    Arc::new(Int32Array::from(vec![Some(30), None])),
                ),
            ],
        );
        let csv = dir.path().join("e.csv");
        std::fs::write(&csv, "from,to,travel-time\na,b,30\nb,c,\n").unwrap();
        let from_pq = edges_table(&pq, table(&pq).unwrap()).unwrap();
        assert_eq!(from_pq, edges_csv(&csv).unwrap());
        assert!(matches!(&from_pq[1].key, Key::Edge(f, t) if f == "b" && t == "c"));
    }

    #[test]
    fn parquet_mistakes_name_the_file_the_row_and_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Schema::example();
        let path = write(
            dir.path(),
            "bad.parquet",
            vec![
                ("sensor", Arc::new(StringArray::from(vec!["a", "b", "a"]))),
                (
                    "max_temp",
                    Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0])),
                ),
            ],
        );
        let e = sensors_table(&path, table(&path).unwrap(), &schema).unwrap_err();
        assert_eq!(e.line, 3);
        let text = e.to_string();
        assert!(
            text.ends_with("bad.parquet: row 3: sensor \"a\" is listed twice (first on row 1)"),
            "{text}"
        );

        let path = write(
            dir.path(),
            "nosensor.parquet",
            vec![("id", Arc::new(StringArray::from(vec!["a"])) as ArrayRef)],
        );
        let e = sensors_table(&path, table(&path).unwrap(), &schema).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("nosensor.parquet: no `sensor` column in the header"),
            "{e}"
        );

        let path = write(
            dir.path(),
            "typed.parquet",
            vec![
                ("sensor", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
                (
                    "since",
                    Arc::new(arrow_array::TimestampMillisecondArray::from(vec![1])) as ArrayRef,
                ),
            ],
        );
        let e = table(&path).unwrap_err();
        assert!(e.to_string().contains("column `since` is Timestamp"), "{e}");

        let path = dir.path().join("corrupt.parquet");
        std::fs::write(&path, b"PAR1 this is not parquet").unwrap();
        let e = table(&path).unwrap_err();
        assert!(
            e.to_string()
                .contains("corrupt.parquet: not a readable Parquet file"),
            "{e}"
        );
    }
}
