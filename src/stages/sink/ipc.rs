//! The Arrow IPC sink: one file (random-access format) or stream, written under a temporary
//! name and renamed when the run ends.

use super::{Sink, SinkError};
use crate::config::IpcFormat;
use arrow_array::RecordBatch;
use arrow_ipc::writer::{FileWriter, StreamWriter};
use arrow_schema::SchemaRef;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

enum Writer {
    File(FileWriter<BufWriter<File>>),
    Stream(StreamWriter<BufWriter<File>>),
}

/// Writes one output to an Arrow IPC file.
pub struct IpcSink {
    writer: Option<Writer>,
    /// Record batches of a fixed row count, whatever sizes rows arrive in.
    chunks: super::chunk::Chunker,
    tmp: PathBuf,
    path: PathBuf,
}

impl IpcSink {
    /// Opens `path` (through a temporary name).
    pub fn new(path: PathBuf, schema: SchemaRef, format: IpcFormat) -> Result<Self, SinkError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| SinkError::io(dir, e))?;
        }
        let name = path
            .file_name()
            .map_or("out".into(), |n| n.to_string_lossy().to_string());
        let tmp = path.with_file_name(format!(".{name}.tmp"));
        let file = BufWriter::new(File::create(&tmp).map_err(|e| SinkError::io(&tmp, e))?);
        let writer = match format {
            IpcFormat::File => Writer::File(
                FileWriter::try_new(file, &schema).map_err(|e| SinkError::arrow(&tmp, e))?,
            ),
            IpcFormat::Stream => Writer::Stream(
                StreamWriter::try_new(file, &schema).map_err(|e| SinkError::arrow(&tmp, e))?,
            ),
        };
        Ok(Self {
            writer: Some(writer),
            chunks: Default::default(),
            tmp,
            path,
        })
    }
}

fn write_to(
    writer: &mut Option<Writer>,
    batch: &RecordBatch,
) -> Result<(), arrow_schema::ArrowError> {
    match writer.as_mut() {
        Some(Writer::File(w)) => w.write(batch),
        Some(Writer::Stream(w)) => w.write(batch),
        None => Ok(()),
    }
}

impl Sink for IpcSink {
    fn write(&mut self, batch: &RecordBatch, _times: &[i64]) -> Result<(), SinkError> {
        let writer = &mut self.writer;
        self.chunks
            .push(batch.clone(), |b| write_to(writer, b))
            .map_err(|e| SinkError::arrow(&self.tmp, e))
    }

    fn finish(&mut self) -> Result<Vec<PathBuf>, SinkError> {
        if self.writer.is_none() {
            return Ok(Vec::new());
        }
        let writer = &mut self.writer;
        let done = self
            .chunks
            .flush(|b| write_to(writer, b))
            .and_then(|_| match self.writer.take() {
                Some(Writer::File(mut w)) => w.finish(),
                Some(Writer::Stream(mut w)) => w.finish(),
                None => Ok(()),
            })
            .map_err(|e| SinkError::arrow(&self.tmp, e))
            .and_then(|_| {
                super::durable::publish(&self.tmp, &self.path)
                    .map_err(|e| SinkError::io(&self.path, e))
            });
        if let Err(e) = done {
            // Never leave an unfinished file behind (a full disk, say).
            self.abort();
            return Err(e);
        }
        Ok(vec![self.path.clone()])
    }

    fn abort(&mut self) {
        self.writer = None;
        let _ = std::fs::remove_file(&self.tmp);
    }
}
