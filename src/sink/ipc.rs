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
            tmp,
            path,
        })
    }
}

impl Sink for IpcSink {
    fn write(&mut self, batch: &RecordBatch, _times: &[i64]) -> Result<(), SinkError> {
        let r = match self.writer.as_mut() {
            Some(Writer::File(w)) => w.write(batch),
            Some(Writer::Stream(w)) => w.write(batch),
            None => Ok(()),
        };
        r.map_err(|e| SinkError::arrow(&self.tmp, e))
    }

    fn finish(&mut self) -> Result<Vec<PathBuf>, SinkError> {
        let r = match self.writer.take() {
            Some(Writer::File(mut w)) => w.finish(),
            Some(Writer::Stream(mut w)) => w.finish(),
            None => return Ok(Vec::new()),
        };
        r.map_err(|e| SinkError::arrow(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| SinkError::io(&self.path, e))?;
        Ok(vec![self.path.clone()])
    }

    fn abort(&mut self) {
        self.writer = None;
        let _ = std::fs::remove_file(&self.tmp);
    }
}
