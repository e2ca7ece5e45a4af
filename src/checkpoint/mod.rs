//! Checkpoints: what a run saves so that a restarted run goes on exactly where it stopped, and
//! the files that hold them. A checkpoint is taken at a *cut* `at` (event time): every output
//! row with a time below `at` is in the outputs, every source partition's position is the
//! first input row that emits at `at` or later, and each worker's state (open windows,
//! detectors, calibration, episodes) is what it was after all input below the cut and none
//! above. The dataflow side (choosing the cut, collecting the parts) is
//! `dataflow/checkpoint.rs`; this module knows nothing of timely.
//!
//! # The file
//! `checkpoint-<id, 10 digits>.hfck` in the recovery directory: an envelope (the magic
//! `HYFLOWCK`, the format version, the pipeline hash, the payload's length and its checksum,
//! FNV-1a over 64-bit words), then the payload in bincode (serde's compact binary encoding,
//! already in the dependency tree through timely; floats bit for bit, NaN included, which
//! JSON cannot carry; the open windows' readings packed, [`packed`]). Written under a
//! temporary name, flushed, renamed and the directory flushed: a file
//! with its own name is complete. The newest `keep` are kept.

mod compat;
pub use compat::{CARRIED_OVER, carry_over};
pub mod packed;
mod regroup;
pub use regroup::regroup;

use crate::stages::detect::asset::AssetScorerState;
use crate::stages::detect::{EpisodesState, ScorerState};
use crate::stages::window::SeriesSnapshot;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The version of the checkpoint format this build writes and reads.
pub const FORMAT_VERSION: u32 = 5;
const MAGIC: &[u8; 8] = b"HYFLOWCK";
/// Envelope: magic, version (u32), pipeline hash (u64), payload length (u64), checksum (u64).
const HEADER: usize = 8 + 4 + 8 + 8 + 8;

/// Everything a run needs to go on from a cut.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Sequence number (1, 2, ...; a resumed run goes on counting).
    pub id: u64,
    /// The cut: event time (ms) below which every output row is written.
    pub at: i64,
    /// The pipeline's hash ([`pipeline_hash`]).
    pub pipeline_hash: u64,
    /// The definition the hash is of ([`definition`], JSON): what `--from-checkpoint`
    /// compares with a changed pipeline ([`carry_over`]).
    pub definition: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// Worker threads of the run that wrote it (state is kept per worker).
    pub workers: usize,
    /// When it was written (ms since the epoch, wall clock).
    pub written_ms: i64,
    /// Every source partition's position at the cut, in the run's partition order.
    pub sources: Vec<SourceCut>,
    /// Each worker's state, by worker index.
    pub state: Vec<WorkerState>,
    /// Each sink's durable position, by sink name.
    pub sinks: Vec<SinkPosition>,
    /// The incidents' state (pipelines with an incidents sink; None otherwise, and in the
    /// checkpoint of a run's start).
    pub incidents: Option<IncidentsState>,
}

/// The incidents' state at the cut: the episodes in the incidents' collection (the
/// differential computation is rebuilt from them and from the registry, which is read again)
/// and the tracker that turns membership changes into incident events.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IncidentsState {
    /// Every episode in the collection at the cut, with its sensor and when it leaves it: None
    /// while open; `Some(t)`: resolved before the cut and leaving at `t` (at or after the cut),
    /// after `[registry] incident-grace`.
    pub episodes: Vec<(String, crate::stages::incidents::Episode, Option<i64>)>,
    /// The tracker's incidents, ids, members and peaks.
    pub tracker: crate::stages::incidents::Tracker,
}

/// Where a source partition goes on from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SourceCut {
    /// A file partition (or row group): its name, the first row not yet read, and the largest
    /// event time its watermark has seen (None: nothing yet).
    File {
        /// The partition's name (its file path).
        name: String,
        /// The first row to read.
        row: u64,
        /// The watermark's largest time seen.
        seen: Option<i64>,
    },
    /// A file partition read to its end.
    FileDone {
        /// The partition's name.
        name: String,
    },
    /// A Kafka partition: the next offset and its watermark's largest time seen.
    Kafka {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The next offset to read.
        offset: i64,
        /// The watermark's largest time seen.
        seen: Option<i64>,
    },
}

impl SourceCut {
    /// The partition's name (file path, or `topic/partition`).
    pub fn name(&self) -> String {
        match self {
            SourceCut::File { name, .. } | SourceCut::FileDone { name } => name.clone(),
            SourceCut::Kafka {
                topic, partition, ..
            } => format!("{topic}/{partition}"),
        }
    }
}

/// One worker's state at the cut.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkerState {
    /// Open windows, per sensor, in slot order.
    pub windows: Vec<SeriesSnapshot>,
    /// The scoring state (None: the worker's score stage saved nothing).
    pub scoring: Option<ScoringState>,
}

/// The score stage's state on one worker.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ScoringState {
    /// Detectors, calibration and recent scores per sensor slot.
    pub scorer: ScorerState,
    /// Alert episodes per sensor slot.
    pub episodes: EpisodesState,
    /// Asset detectors (pipelines with `asset-mahalanobis`).
    pub assets: Option<AssetScorerStateBox>,
    /// Asset alert episodes, by asset slot.
    pub asset_episodes: EpisodesState,
    /// Asset slots: (asset, slot).
    pub asset_slots: Vec<(String, u32)>,
}

/// [`AssetScorerState`] (a wrapper so that [`ScoringState`] can derive `Debug`).
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct AssetScorerStateBox(pub AssetScorerState);

impl std::fmt::Debug for AssetScorerStateBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AssetScorerState")
    }
}

/// A sink's durable position at the cut.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SinkPosition {
    /// The sink's name.
    pub name: String,
    /// Parquet: the next part number; every `part-N.parquet` with N below it holds rows below
    /// the cut, and none at or above it exists yet. None for sinks that cannot be rolled back
    /// (Kafka: messages after the cut are sent again, with the same event ids).
    pub next_part: Option<u64>,
    /// The files written up to the cut.
    pub files: Vec<PathBuf>,
}

/// Why a checkpoint file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a checkpoint, is cut short, or its contents do not match its checksum.
    #[error("{path}: {what}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Written by a format this build does not read.
    #[error("{path}: checkpoint format {found}, this hyflow reads format {FORMAT_VERSION}")]
    Version {
        /// The file.
        path: PathBuf,
        /// Its format.
        found: u32,
    },
}

/// FNV-1a, 64 bits.
fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The hash a checkpoint is tied to: of the pipeline's [`definition`]. A run resumes only
/// from a checkpoint of the same hash, unless `--from-checkpoint` carries the state of
/// another version over ([`carry_over`]).
pub fn pipeline_hash(config: &crate::config::PipelineConfig) -> u64 {
    fnv(definition(config).as_bytes())
}

/// The pipeline definition as written, defaults filled in, less its description, tests and
/// `[recovery]` settings, as JSON.
pub fn definition(config: &crate::config::PipelineConfig) -> String {
    let mut c = config.clone();
    c.description.clear();
    c.test.clear();
    c.recovery = None;
    serde_json::to_string(&c).unwrap_or_default()
}

/// The file name of checkpoint `id`.
pub fn file_name(id: u64) -> String {
    format!("checkpoint-{id:010}.hfck")
}

/// The payload's checksum: FNV-1a over its 64-bit little-endian words (the bytes of a last,
/// partial word one by one), eight times fewer steps than over bytes: a checkpoint of 100 k
/// sensors is a few hundred MB.
fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h ^= u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    for b in words.remainder() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The encoded file: envelope and payload, encoded in one pass into a buffer sized like the
/// last checkpoint this process encoded (it grows if this one is larger); the payload's
/// length and checksum are filled in after.
pub fn encode(c: &Checkpoint) -> Vec<u8> {
    static LAST: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let hint = LAST.load(std::sync::atomic::Ordering::Relaxed);
    let mut out = Vec::with_capacity(HEADER + hint + hint / 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&c.pipeline_hash.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    bincode::serialize_into(&mut out, c).expect("checkpoint state encodes");
    let size = out.len() - HEADER;
    LAST.store(size, std::sync::atomic::Ordering::Relaxed);
    out[HEADER - 16..HEADER - 8].copy_from_slice(&(size as u64).to_le_bytes());
    let sum = checksum(&out[HEADER..]);
    out[HEADER - 8..HEADER].copy_from_slice(&sum.to_le_bytes());
    out
}

/// Decodes a file's bytes; `path` names it in errors.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    let damaged = |what: String| CheckpointError::Damaged {
        path: path.to_path_buf(),
        what,
    };
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(damaged(format!(
            "not a hyflow checkpoint ({} bytes, no HYFLOWCK header)",
            bytes.len()
        )));
    }
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap_or([0; 8]));
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or([0; 4]));
    if version != FORMAT_VERSION {
        return Err(CheckpointError::Version {
            path: path.to_path_buf(),
            found: version,
        });
    }
    let len = u64_at(20);
    let sum = u64_at(28);
    let payload = &bytes[HEADER..];
    if payload.len() as u64 != len {
        return Err(damaged(format!(
            "cut short or padded: the header says {len} bytes of state, the file has {}",
            payload.len()
        )));
    }
    if checksum(payload) != sum {
        return Err(damaged("the state does not match its checksum".into()));
    }
    let c: Checkpoint = bincode::deserialize(payload)
        .map_err(|e| damaged(format!("the state cannot be decoded: {e}")))?;
    if c.pipeline_hash != u64_at(12) {
        return Err(damaged("the header and the state disagree".into()));
    }
    Ok(c)
}

/// Reads one checkpoint file.
pub fn read(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|e| CheckpointError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    decode(path, &bytes)
}

/// Writes `c` into `dir` durably (temporary, flush, rename, flush the directory), then removes
/// all but the newest `keep` checkpoints. Returns the file written.
pub fn write(dir: &Path, c: &Checkpoint, keep: usize) -> Result<PathBuf, CheckpointError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CheckpointError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(file_name(c.id));
    let tmp = dir.join(format!(".{}.tmp", file_name(c.id)));
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    if let Err(e) = f.write_all(&encode(c)) {
        drop(f);
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    drop(f);
    if let Err(e) = crate::stages::sink::durable::publish(&tmp, &path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&path)(e));
    }
    for (_, old) in list(dir).into_iter().skip(keep.max(1)) {
        let _ = std::fs::remove_file(old);
    }
    Ok(path)
}

/// The checkpoint files in `dir`, newest (largest id) first. Temporaries are not listed.
pub fn list(dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let id = name
                .strip_prefix("checkpoint-")?
                .strip_suffix(".hfck")?
                .parse()
                .ok()?;
            Some((id, e.path()))
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found
}

/// Where a checkpoint's cut stands, for messages: `cut at <RFC 3339>`, or `the start of the run`
/// for the checkpoint a run writes before its first cut (`at` = `i64::MIN`).
pub fn cut_text(at: i64) -> String {
    if at == i64::MIN {
        "the start of the run".to_string()
    } else {
        format!("cut at {}", crate::timefmt::format_rfc3339(at))
    }
}

/// The newest checkpoint in `dir` that reads back whole, and the errors of newer ones that
/// did not (each to be reported: the run then goes on from an older one).
pub fn latest(dir: &Path) -> (Option<(PathBuf, Checkpoint)>, Vec<CheckpointError>) {
    let mut bad = Vec::new();
    for (_, path) in list(dir) {
        match read(&path) {
            Ok(c) => return (Some((path, c)), bad),
            Err(e) => bad.push(e),
        }
    }
    (None, bad)
}

/// What `hyflow checkpoint inspect` prints: a summary of a checkpoint.
pub fn describe(path: &Path, c: &Checkpoint) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let at = crate::timefmt::format_rfc3339(c.at);
    let _ = writeln!(s, "{}", path.display());
    let _ = writeln!(
        s,
        "  checkpoint {} of pipeline {:?} (hash {:016x}), format {FORMAT_VERSION}",
        c.id, c.pipeline, c.pipeline_hash
    );
    if c.at == i64::MIN {
        let _ = writeln!(
            s,
            "  the start of a run (nothing read yet: a run killed before its first checkpoint goes on from here); {} worker(s)",
            c.workers
        );
    } else {
        let _ = writeln!(
            s,
            "  cut at {at}: every output row before it is written; {} worker(s)",
            c.workers
        );
    }
    let _ = writeln!(s, "  sources ({} partitions):", c.sources.len());
    for p in &c.sources {
        let line = match p {
            SourceCut::File { name, row, seen } => format!(
                "{name}: from row {row} (watermark seen {})",
                seen.map_or("nothing".into(), crate::timefmt::format_rfc3339)
            ),
            SourceCut::FileDone { name } => format!("{name}: read to its end"),
            SourceCut::Kafka {
                topic,
                partition,
                offset,
                seen,
            } => format!(
                "{topic}/{partition}: from offset {offset} (watermark seen {})",
                seen.map_or("nothing".into(), crate::timefmt::format_rfc3339)
            ),
        };
        let _ = writeln!(s, "    {line}");
    }
    let sensors: usize = c.state.iter().map(|w| w.windows.len()).sum();
    let buffered: usize = c
        .state
        .iter()
        .flat_map(|w| &w.windows)
        .map(|s| s.pending.len())
        .sum();
    let scored: usize = c
        .state
        .iter()
        .filter_map(|w| w.scoring.as_ref())
        .map(|s| s.scorer.len())
        .sum();
    let _ = writeln!(
        s,
        "  state: {sensors} sensor(s) with {buffered} buffered reading(s); detector state of {scored} sensor(s)"
    );
    let _ = writeln!(s, "  encoded sizes:");
    for line in sizes(c) {
        let _ = writeln!(s, "    {line}");
    }
    if let Some(i) = &c.incidents {
        let leaving = i.episodes.iter().filter(|e| e.2.is_some()).count();
        let _ = writeln!(
            s,
            "  incidents: {} open, over {} episode(s) ({leaving} resolved and leaving after the grace)",
            i.tracker.open(),
            i.episodes.len()
        );
    }
    let _ = writeln!(s, "  sinks:");
    for k in &c.sinks {
        let pos = match k.next_part {
            Some(n) => format!("{} file(s), next part {n}", k.files.len()),
            None => "not rolled back on resume (sent again from the cut)".into(),
        };
        let _ = writeln!(s, "    {}: {pos}", k.name);
    }
    s
}

/// What the parts of a checkpoint take encoded, largest first among the detectors (what
/// `describe` lists under "encoded sizes").
fn sizes(c: &Checkpoint) -> Vec<String> {
    fn size<T: Serialize>(v: &T) -> u64 {
        bincode::serialized_size(v).unwrap_or(0)
    }
    let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
    let windows: u64 = c.state.iter().map(|w| size(&w.windows)).sum();
    let mut detectors: Vec<u64> = Vec::new();
    let (mut calibration, mut other) = (0, 0);
    let mut rest = 0;
    for sc in c.state.iter().filter_map(|w| w.scoring.as_ref()) {
        let z = sc.scorer.sizes();
        if detectors.len() < z.detectors.len() {
            detectors.resize(z.detectors.len(), 0);
        }
        for (d, b) in z.detectors.iter().enumerate() {
            detectors[d] += b;
        }
        calibration += z.calibration;
        other += z.other;
        rest += size(&sc.episodes) + size(&sc.assets) + size(&sc.asset_episodes);
    }
    // Detector names from the definition the checkpoint holds (its index where it cannot be
    // read).
    let definition = serde_json::from_str::<serde_json::Value>(&c.definition).unwrap_or_default();
    let names: Vec<String> = definition["detect"]["detector"]
        .as_array()
        .map(|ds| {
            ds.iter()
                .map(|d| {
                    let kind = d["kind"].as_str().unwrap_or("?");
                    match d["name"].as_str() {
                        Some(n) if n != kind => format!("{n} ({kind})"),
                        _ => kind.to_string(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = vec![format!("open windows {}", mb(windows))];
    let mut order: Vec<usize> = (0..detectors.len()).collect();
    order.sort_by_key(|&d| std::cmp::Reverse(detectors[d]));
    for d in order {
        let name = names.get(d).cloned().unwrap_or_else(|| format!("#{d}"));
        out.push(format!("detector {name}: {}", mb(detectors[d])));
    }
    out.push(format!("calibration histories {}", mb(calibration)));
    out.push(format!(
        "episodes, asset state and the rest {}",
        mb(other + rest + size(&c.incidents))
    ));
    out
}

#[cfg(test)]
mod tests;
