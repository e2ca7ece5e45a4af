//! Publishing a finished output file: its contents flushed to disk (fsync), then renamed from
//! its temporary name to its own, then the directory flushed, so that a file that has its own
//! name after a crash (power loss included) is complete, and a file the sinks reported as
//! durable stays there.

use std::fs::File;
use std::io;
use std::path::Path;

/// Makes `tmp` durable under the name `path` (same directory).
pub fn publish(tmp: &Path, path: &Path) -> io::Result<()> {
    File::open(tmp)?.sync_all()?;
    std::fs::rename(tmp, path)?;
    sync_dir(path)
}

/// Flushes the directory that holds `path` (its entries: a rename or a new file).
pub fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_file_has_its_name_and_no_temporary_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join(".part-0.parquet.tmp");
        let path = dir.path().join("part-0.parquet");
        std::fs::write(&tmp, b"rows").unwrap();
        publish(&tmp, &path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"rows");
        assert!(!tmp.exists());
        // A temporary that is not there is an error, and nothing appears.
        let e = publish(&tmp, &dir.path().join("part-1.parquet")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(!dir.path().join("part-1.parquet").exists());
    }
}
