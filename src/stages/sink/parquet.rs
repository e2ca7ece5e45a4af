//! The Parquet sink: rolling files (by rows and by event-time span), optional `date=`/`hour=`
//! directories, zstd by default. Each file is written under a hidden temporary name and renamed
//! when complete, so readers never see half a file.

use super::{Sink, SinkError};
use crate::config::{Compression, Partitioning};
use crate::plan::ParquetTarget;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as PqCompression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::fs::File;
use std::path::{Path, PathBuf};

struct OpenFile {
    writer: ArrowWriter<File>,
    /// Rows go to the writer in fixed-size chunks, so the file's bytes do not depend on how
    /// they arrived (see [`super::chunk`]).
    chunks: super::chunk::Chunker,
    tmp: PathBuf,
    path: PathBuf,
    rows: usize,
    first_time: i64,
    key: String,
}

/// A rolling Parquet writer for one output.
pub struct ParquetSink {
    dir: PathBuf,
    schema: SchemaRef,
    props: WriterProperties,
    partition: Partitioning,
    roll_rows: usize,
    roll_ms: Option<i64>,
    seq: u64,
    current: Option<OpenFile>,
    done: Vec<PathBuf>,
}

impl ParquetSink {
    /// Creates the directory and removes part files a previous run left there; with `append`
    /// (a live run continuing an earlier one) it keeps them and numbers new files after them,
    /// removing only unfinished temporaries.
    pub fn new(
        t: &ParquetTarget,
        schema: SchemaRef,
        append: bool,
        metadata: Vec<(String, String)>,
    ) -> Result<Self, SinkError> {
        let dir = t.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| SinkError::io(&dir, e))?;
        let next = old_parts(&dir, !append).map_err(|e| SinkError::io(&dir, e))?;
        let compression = match t.compression {
            Compression::Zstd => PqCompression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()),
            Compression::Snappy => PqCompression::SNAPPY,
            Compression::None => PqCompression::UNCOMPRESSED,
        };
        // Float columns (features, scores) are nearly all distinct: dictionary encoding them
        // costs a hash per value and falls back to plain anyway (9% of a manufacturing replay).
        let metadata = metadata
            .into_iter()
            .map(|(k, v)| parquet::file::metadata::KeyValue::new(k, v))
            .collect();
        let mut props = WriterProperties::builder()
            .set_key_value_metadata(Some(metadata))
            .set_compression(compression)
            .set_max_row_group_row_count(Some(131_072));
        for f in schema.fields() {
            if f.data_type() == &arrow_schema::DataType::Float64 {
                let column = parquet::schema::types::ColumnPath::from(f.name().as_str());
                props = props.set_column_dictionary_enabled(column, false);
            }
        }
        let props = props.build();
        Ok(Self {
            dir,
            schema,
            props,
            partition: t.partition,
            roll_rows: t.roll_rows.max(1),
            roll_ms: t.roll_ms,
            seq: next,
            current: None,
            done: Vec::new(),
        })
    }

    /// A sink going on from a checkpoint: the parts numbered below `next` (listed in `files`)
    /// stay, every later one (written after the cut) and every temporary is removed, and new
    /// parts are numbered from `next`. Part numbers only grow, and a checkpoint is taken
    /// right after its part is closed, so the parts below its number hold exactly the rows
    /// before its cut.
    pub fn resume(
        t: &ParquetTarget,
        schema: SchemaRef,
        metadata: Vec<(String, String)>,
        next: u64,
        files: Vec<PathBuf>,
    ) -> Result<Self, SinkError> {
        let mut sink = Self::new(t, schema, true, metadata)?;
        remove_parts_from(&sink.dir, next).map_err(|e| SinkError::io(&sink.dir, e))?;
        if let Some(missing) = files.iter().find(|f| !f.exists()) {
            return Err(SinkError::io(
                missing,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "a part file the checkpoint counts as written is gone",
                ),
            ));
        }
        sink.seq = next;
        sink.done = files;
        Ok(sink)
    }

    fn open(&mut self, key: &str, first_time: i64) -> Result<(), SinkError> {
        let dir = if key.is_empty() {
            self.dir.clone()
        } else {
            self.dir.join(key)
        };
        std::fs::create_dir_all(&dir).map_err(|e| SinkError::io(&dir, e))?;
        let name = format!("part-{:05}.parquet", self.seq);
        self.seq += 1;
        let tmp = dir.join(format!(".{name}.tmp"));
        let path = dir.join(name);
        let file = File::create(&tmp).map_err(|e| SinkError::io(&tmp, e))?;
        let writer = ArrowWriter::try_new(file, self.schema.clone(), Some(self.props.clone()))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                SinkError::Parquet {
                    path: tmp.clone(),
                    source: e,
                }
            })?;
        self.current = Some(OpenFile {
            writer,
            chunks: Default::default(),
            tmp,
            path,
            rows: 0,
            first_time,
            key: key.to_string(),
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), SinkError> {
        if let Some(mut f) = self.current.take() {
            let (tmp, path) = (f.tmp.clone(), f.path.clone());
            let writer = &mut f.writer;
            let closed = f
                .chunks
                .flush(|b| writer.write(b))
                .and_then(|_| f.writer.close().map(|_| ()))
                .map_err(|e| SinkError::Parquet {
                    path: tmp.clone(),
                    source: e,
                })
                .and_then(|_| {
                    super::durable::publish(&tmp, &path).map_err(|e| SinkError::io(&path, e))
                });
            if let Err(e) = closed {
                // A file that could not be completed (a full disk, say) is never left behind.
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            self.done.push(path);
        }
        Ok(())
    }

    fn key(&self, t: i64) -> String {
        match self.partition {
            Partitioning::None => String::new(),
            Partitioning::Date => {
                let (y, m, d, _) = civil(t);
                format!("date={y:04}-{m:02}-{d:02}")
            }
            Partitioning::Hour => {
                let (y, m, d, h) = civil(t);
                format!("date={y:04}-{m:02}-{d:02}/hour={h:02}")
            }
        }
    }
}

impl Sink for ParquetSink {
    fn write(&mut self, batch: &RecordBatch, times: &[i64]) -> Result<(), SinkError> {
        let mut i = 0;
        while i < batch.num_rows() {
            let key = self.key(times[i]);
            let fits = |f: &OpenFile| {
                f.key == key
                    && f.rows < self.roll_rows
                    && self.roll_ms.is_none_or(|ms| times[i] - f.first_time < ms)
            };
            if !self.current.as_ref().is_some_and(fits) {
                self.close()?;
                self.open(&key, times[i])?;
            }
            let cur = self.current.as_ref().map_or(0, |f| f.rows);
            let first = self.current.as_ref().map_or(times[i], |f| f.first_time);
            // Longest run of rows from i that stays in this file.
            let mut j = i + 1;
            let room = self.roll_rows - cur;
            while j < batch.num_rows()
                && j - i < room
                && self.key(times[j]) == key
                && self.roll_ms.is_none_or(|ms| times[j] - first < ms)
            {
                j += 1;
            }
            if let Some(f) = self.current.as_mut() {
                let writer = &mut f.writer;
                f.chunks
                    .push(batch.slice(i, j - i), |b| writer.write(b))
                    .map_err(|e| SinkError::Parquet {
                        path: f.tmp.clone(),
                        source: e,
                    })?;
                f.rows += j - i;
            }
            i = j;
        }
        Ok(())
    }

    fn make_durable(&mut self) -> Result<bool, SinkError> {
        self.close()?;
        Ok(true)
    }

    fn finish(&mut self) -> Result<Vec<PathBuf>, SinkError> {
        if self.current.is_none() && self.done.is_empty() {
            // No rows at all: still leave one (empty) file so readers find the schema.
            self.open("", 0)?;
        }
        self.close()?;
        Ok(std::mem::take(&mut self.done))
    }

    fn position(&self) -> Option<(u64, Vec<PathBuf>)> {
        Some((self.seq, self.done.clone()))
    }

    fn abort(&mut self) {
        if let Some(f) = self.current.take() {
            drop(f.writer);
            let _ = std::fs::remove_file(&f.tmp);
        }
    }
}

/// Removes leftover temporaries under `dir` and, with `remove`, the `part-*.parquet` files of an
/// earlier run; returns the number after the largest part number kept (0 when none).
fn old_parts(dir: &Path, remove: bool) -> std::io::Result<u64> {
    let mut next = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        let path = entry.path();
        if entry.file_type()?.is_dir() && (name.starts_with("date=") || name.starts_with("hour=")) {
            next = next.max(old_parts(&path, remove)?);
            let _ = std::fs::remove_dir(&path); // only if now empty
        } else if name.starts_with(".part-") && name.ends_with(".tmp") {
            std::fs::remove_file(&path)?;
        } else if let Some(n) = name
            .strip_prefix("part-")
            .and_then(|r| r.strip_suffix(".parquet"))
        {
            if remove {
                std::fs::remove_file(&path)?;
            } else if let Ok(n) = n.parse::<u64>() {
                next = next.max(n + 1);
            }
        }
    }
    Ok(next)
}

/// Removes the `part-N.parquet` files under `dir` (and its `date=`/`hour=` directories)
/// numbered `next` or above.
fn remove_parts_from(dir: &Path, next: u64) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        let path = entry.path();
        if entry.file_type()?.is_dir() && (name.starts_with("date=") || name.starts_with("hour=")) {
            remove_parts_from(&path, next)?;
            let _ = std::fs::remove_dir(&path); // only if now empty
        } else if let Some(n) = name
            .strip_prefix("part-")
            .and_then(|r| r.strip_suffix(".parquet"))
            .and_then(|n| n.parse::<u64>().ok())
            && n >= next
        {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// (year, month, day, hour) in UTC of a time in ms since the epoch.
pub fn civil(ms: i64) -> (i64, u32, u32, u32) {
    let days = ms.div_euclid(86_400_000);
    let hour = (ms.rem_euclid(86_400_000) / 3_600_000) as u32;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, hour)
}

#[cfg(test)]
mod tests {
    use super::civil;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0));
        assert_eq!(civil(1_700_000_000_000), (2023, 11, 14, 22));
        assert_eq!(civil(-1), (1969, 12, 31, 23));
    }
}
