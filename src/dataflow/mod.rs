//! Builds and runs a pipeline's timely dataflow: assigns input partitions to workers, wires
//! the stages of `operators`, and collects counters, output files and the first error.

pub mod checkpoint;
mod control;
pub mod explain;
mod failure;
pub mod features;
mod file_source;
pub mod incidents;
mod inputs;
pub mod kafka_source;
pub mod registry;
pub mod registry_changes;
pub mod score;
mod shared;
pub mod sink;
mod source_driver;
mod stage;
pub mod window;

pub use crate::events::Counts;
pub use failure::{Failure, OutputStep};
use inputs::{Input, worker_parts};
pub use shared::Shared;

use crate::compute::cost::EngineReport;
use crate::plan::{FileKind, Plan, SinkTarget};
use crate::stages::sink::{SinkError, SinkSet};
use crate::stages::source::{self, SourceError, csv::CsvPartition, parquet::ParquetFile};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::{Concat, Probe};

/// How to run a pipeline.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Worker threads (at least 1). (What is read and where outputs go is the plan's:
    /// `--input` and `--out` change the pipeline before it is validated.)
    pub workers: usize,
    /// Run as process `process` of a cluster whose processes listen at `addresses`
    /// (`host:port`, one per process, the same list everywhere). Every process reads the
    /// inputs (a shared file system); process 0 writes the outputs.
    pub cluster: Option<(usize, Vec<String>)>,
    /// Kafka source: stop at the end offsets the partitions had when the run started
    /// (a bounded run: tests, backfills) instead of running until stopped.
    pub until_end: bool,
    /// Serve `/metrics` and `/health` on this address while the run lasts.
    pub metrics: Option<std::net::SocketAddr>,
    /// Take checkpoints (`[recovery]`).
    pub checkpoints: Option<checkpoint::CheckpointOptions>,
    /// Go on from this checkpoint (its pipeline hash already checked by the caller).
    pub resume: Option<Arc<crate::checkpoint::Checkpoint>>,
}

/// What a finished run did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Input files (Kafka: partitions).
    pub files_in: usize,
    /// True for a live (Kafka) run.
    pub live: bool,
    /// Input rows (a Kafka message that cannot be decoded counts as one).
    pub rows_in: u64,
    /// Readings the sources handed to the windows (before duplicates were removed).
    pub accepted: u64,
    /// Rejected rows (and skipped files).
    pub rejected: u64,
    /// Rejected rows (and skipped files) by kind; kinds with none left out.
    pub rejected_by: Vec<(crate::batch::RejectKind, u64)>,
    /// Dropped rows.
    pub dropped: u64,
    /// Late rows.
    pub late: u64,
    /// Windows computed.
    pub windows: u64,
    /// Windows of sensors the registry does not hold, rejected (in the rejects output).
    pub windows_unregistered: u64,
    /// Alert events.
    pub alert_events: u64,
    /// Baselines restarted after a lasting shift (`learn = "gated"`).
    pub rebaselines: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// A live run asked to stop that ended at a last checkpoint: its cut. The open windows
    /// are in the checkpoint, not flushed (so "rows read, no window" is not a loss), and what
    /// was read after the cut is counted here and read again by the next run.
    pub stopped_at: Option<i64>,
    /// Such a run's Kafka messages read after that cut (each partition's position at the
    /// stop less its position at the cut, summed): counted in `rows_in` here and read again
    /// by the next run, so that the runs' `rows_in` less this add up to what was produced.
    pub read_again: Option<u64>,
    /// Output files per sink.
    pub outputs: Vec<(String, Vec<PathBuf>)>,
    /// What each compute engine did.
    pub engines: Vec<EngineReport>,
    /// CPU package energy over the run (joules), when RAPL is readable.
    pub cpu_joules: Option<f64>,
    /// GPU energy over the run, when a GPU was used and its counter is readable.
    pub gpu_energy: crate::energy::GpuEnergy,
    /// The run's metrics, as its events left them (what `/metrics` served): tests assert on
    /// them, e.g. that an event was emitted ([`crate::events::Recorder::counter_with`]).
    pub events: Arc<crate::events::Recorder>,
}

impl Summary {
    /// Rejected rows of one kind.
    pub fn rejected_of(&self, kind: crate::batch::RejectKind) -> u64 {
        self.rejected_by
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }
    /// Readings that went into windows: accepted by the sources, less the duplicates.
    pub fn windowed(&self) -> u64 {
        self.accepted
            .saturating_sub(self.rejected_of(crate::batch::RejectKind::Duplicate))
    }
    /// Checks that every row in is accounted for: rows in = windowed + rejected (skipped files
    /// aside: their rows were never read) + late + dropped. A mismatch is a bug in hyflow.
    pub fn check_accounting(&self) -> Result<(), String> {
        let rejected = self.rejected - self.rejected_of(crate::batch::RejectKind::FileSkipped);
        let out = self.windowed() + rejected + self.late + self.dropped;
        if out == self.rows_in {
            return Ok(());
        }
        Err(format!(
            "the run's counts do not add up: {} rows in, but {} windowed + {rejected} rejected + {} late + {} dropped = {out} (a bug in hyflow: please report it)",
            self.rows_in,
            self.windowed(),
            self.late,
            self.dropped
        ))
    }
    /// Why a run that kept nothing from its input should not pass as a success (None when it
    /// kept something, or read nothing).
    pub fn kept_nothing(&self) -> Option<String> {
        if self.rows_in == 0 || self.windows > 0 {
            return None;
        }
        if self.windows_unregistered > 0 {
            return Some(format!(
                "every one of the {} windows was refused: the registry holds none of their sensors (unknown-sensors = \"reject\"; see the rejects output)",
                self.windows_unregistered
            ));
        }
        let rows_rejected = self.rejected - self.rejected_of(crate::batch::RejectKind::FileSkipped);
        if rows_rejected == self.rows_in {
            let (kind, n) = self
                .rejected_by
                .iter()
                .copied()
                .max_by_key(|(_, n)| *n)
                .unwrap_or((crate::batch::RejectKind::Unreadable, 0));
            return Some(format!(
                "every one of the {} rows read was rejected (most as {:?}: {n}); see the rejects output for each row's reason",
                self.rows_in,
                kind.label()
            ));
        }
        if self.stopped_at.is_some() {
            return None;
        }
        Some(format!(
            "{} rows were read but no window was computed ({} rejected, {} late, {} dropped)",
            self.rows_in, self.rejected, self.late, self.dropped
        ))
    }
    /// Input rows per second of wall time.
    pub fn rows_per_sec(&self) -> f64 {
        self.rows_in as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl Drop for Running {
    /// A run dropped without `wait` (a caller that gave up, a panicking test) is asked to stop,
    /// so that joining its workers ends.
    fn drop(&mut self) {
        if self.guards.is_some() {
            self.shared.request_stop();
        }
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// An input problem.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An output problem.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A problem found before the workers started (workers, device, cluster, endpoint).
    #[error("{0}")]
    Failed(String),
    /// A stage stopped the run.
    #[error(transparent)]
    Stopped(#[from] Failure),
}

/// A run in progress: poll it for progress, then wait for its summary.
pub struct Running {
    shared: Arc<Shared>,
    guards: Option<timely::communication::initialize::WorkerGuards<()>>,
    started: Instant,
    energy: Option<crate::energy::RaplReading>,
    gpu_energy: Option<Result<crate::energy::GpuMeter, String>>,
    workers: usize,
    files_in: usize,
    /// Total input rows, from the file footers (for progress and ETA).
    pub total_rows: u64,
    /// A Kafka source's settings and group: its positions are committed after the run.
    commit: Option<(crate::config::KafkaSource, String)>,
    /// The `/metrics` endpoint, stopped when the run is waited for.
    endpoint: Option<crate::events::endpoint::Endpoint>,
}

impl Running {
    /// Counts so far (from the run's recorder, as the summary and `/metrics`).
    pub fn counts(&self) -> Counts {
        self.shared.recorder.counts()
    }
    /// Where `/metrics` is served, when it is.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.endpoint
            .as_ref()
            .map(crate::events::endpoint::Endpoint::addr)
    }
    /// Asks a live run to stop reading and finish cleanly (what it read is written, offsets
    /// are committed).
    pub fn request_stop(&self) {
        self.shared.request_stop();
    }
    /// True when every worker is done, or one panicked (the run is then over: [`Self::wait`]
    /// returns its error).
    pub fn is_done(&self) -> bool {
        self.shared.finished_workers.load(Ordering::SeqCst) >= self.workers
            || self.shared.panicked.load(Ordering::SeqCst)
    }
    /// Waits for the end of the run.
    pub fn wait(mut self) -> Result<Summary, RunError> {
        // A worker that panicked holds its capabilities forever, so the others may never
        // finish: return its error without joining them (the process is about to exit).
        while !self.is_done() {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        if self.shared.panicked.load(Ordering::SeqCst) {
            std::mem::forget(self.guards.take());
        }
        let results = self.guards.take().map(|g| g.join()).unwrap_or_default();
        if let Some(e) = self
            .shared
            .error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Err(RunError::Stopped(e));
        }
        for r in results {
            r.map_err(RunError::Failed)?;
        }
        // Every sink has finished (files renamed, alerts acknowledged): the offsets read are
        // safe to commit.
        let mut read_again = None;
        if let Some((k, group)) = &self.commit {
            let mut positions = std::mem::take(
                &mut *self
                    .shared
                    .positions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()),
            );
            // Stopped at a last checkpoint: its positions (what was read after its cut is
            // read again by the run that resumes from it).
            if let Some(last) = self
                .shared
                .checkpoints
                .as_ref()
                .and_then(|c| c.final_positions())
            {
                let last: Vec<(String, i32, i64)> = last
                    .into_iter()
                    .filter_map(|c| match c {
                        crate::checkpoint::SourceCut::Kafka {
                            topic,
                            partition,
                            offset,
                            ..
                        } => Some((topic, partition, offset)),
                        _ => None,
                    })
                    .collect();
                read_again = Some(
                    positions
                        .iter()
                        .map(|(t, p, read)| {
                            let cut = last
                                .iter()
                                .find(|(lt, lp, _)| lt == t && lp == p)
                                .map_or(*read, |c| c.2);
                            (read - cut).max(0) as u64
                        })
                        .sum(),
                );
                positions = last;
            }
            source::kafka::commit(k, group, &positions)?;
        }
        let m = self.shared.recorder.counts();
        Ok(Summary {
            files_in: self.files_in,
            live: self.commit.is_some(),
            rows_in: m.rows_in,
            accepted: m.accepted,
            rejected: m.rejected,
            rejected_by: m.rejected_by,
            dropped: m.dropped,
            late: m.late,
            windows: m.windows,
            windows_unregistered: m.windows_unregistered,
            alert_events: m.alert_events,
            rebaselines: m.rebaselines,
            elapsed: self.started.elapsed(),
            stopped_at: self
                .shared
                .checkpoints
                .as_ref()
                .filter(|c| c.final_positions().is_some())
                .and_then(|c| c.final_cut()),
            read_again,
            outputs: std::mem::take(
                &mut *self.shared.files.lock().unwrap_or_else(|p| p.into_inner()),
            ),
            engines: std::mem::take(
                &mut *self
                    .shared
                    .engines
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()),
            ),
            cpu_joules: self.energy.and_then(crate::energy::rapl_joules_since),
            gpu_energy: crate::energy::gpu_finish(&self.gpu_energy),
            events: self.shared.recorder.clone(),
        })
    }
}

/// Where a run's readings come from.
enum Feed {
    /// Input files, opened.
    Files(Arc<Vec<Input>>),
    /// Kafka partitions, live, and the registry topic when `[registry] topic` names one.
    Kafka(
        Box<crate::config::KafkaSource>,
        Arc<source::kafka::KafkaPlan>,
        Option<Arc<source::kafka::RegistryTopic>>,
    ),
}

/// Starts a pipeline: replays its input files through its dataflow, or reads its Kafka
/// topics live.
pub fn start(pipeline: Arc<Plan>, opts: &RunOptions) -> Result<Running, RunError> {
    let src = &pipeline.source;
    let (pattern, kind) = match &src.feed {
        crate::plan::Feed::Kafka(k) => {
            let mut plan = source::kafka::plan(k, &pipeline.name, opts.until_end)?;
            // Resuming: every partition goes on from its offset in the checkpoint, not from
            // the group's committed one.
            if let Some(r) = &opts.resume {
                for c in &r.sources {
                    if let crate::checkpoint::SourceCut::Kafka {
                        topic,
                        partition,
                        offset,
                        ..
                    } = c
                        && let Some(i) = plan
                            .parts
                            .iter()
                            .position(|(t, p)| t == topic && p == partition)
                    {
                        plan.starts[i] = *offset;
                    }
                }
            }
            let parts = plan.parts.len();
            let registry = match pipeline.registry.as_ref().and_then(|r| r.topic.as_ref()) {
                Some(t) => Some(Arc::new(source::kafka::registry_topic(
                    k,
                    t,
                    &pipeline.name,
                )?)),
                None => None,
            };
            let feed = Feed::Kafka(Box::new(k.clone()), Arc::new(plan), registry);
            return launch(pipeline, opts, feed, parts, 0);
        }
        crate::plan::Feed::Files { pattern, kind } => (pattern, *kind),
    };
    let paths = source::expand(pattern)?;
    // Open every footer now: a missing column or an unreadable file fails before any output
    // is touched (or, with on-bad-file = "skip", becomes a reject row).
    let mut files = Vec::new();
    for p in &paths {
        let opened = match kind {
            FileKind::Csv => {
                CsvPartition::open(p, &src.columns, &src.csv, &pipeline.zone, src.batch_rows)
                    .map(|_| Input::Csv(p.clone()))
            }
            FileKind::Parquet => ParquetFile::open(
                p,
                &src.columns,
                src.time_unit,
                &pipeline.zone,
                pipeline.time_range,
            )
            .map(|f| Input::Parquet(Arc::new(f))),
        };
        match opened {
            Ok(input) => files.push(input),
            Err(e) if src.skip_bad_files => {
                tracing::error!("skipping {}: {e}", p.display());
                files.push(Input::Failed(p.display().to_string(), e));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let total_rows = files
        .iter()
        .map(|f| {
            if let Input::Parquet(f) = f {
                f.rows()
            } else {
                0
            }
        })
        .sum();
    let files_in = paths.len();
    launch(
        pipeline,
        opts,
        Feed::Files(Arc::new(files)),
        files_in,
        total_rows,
    )
}

/// The most worker threads a run on `cores` cores may have: 4 per core, at least 16.
pub fn max_workers(cores: usize) -> usize {
    (cores * 4).max(16)
}

/// Opens the sinks and starts the workers.
fn launch(
    pipeline: Arc<Plan>,
    opts: &RunOptions,
    feed: Feed,
    files_in: usize,
    total_rows: u64,
) -> Result<Running, RunError> {
    let process = opts.cluster.as_ref().map_or(0, |c| c.0);
    let workers = opts.workers.max(1);
    let coordinator = checkpoints_for(&pipeline, opts, &feed, workers)?;
    let resume = match &opts.resume {
        // A checkpoint of another worker count: its state is per sensor and asset, dealt out
        // again as this run routes them.
        Some(r) if r.workers != workers => {
            let delimiter = pipeline.source.asset_delimiter.as_deref();
            let regrouped = crate::checkpoint::regroup((**r).clone(), workers, delimiter)
                .map_err(|e| RunError::Failed(format!("checkpoint {}: {e}", r.id)))?;
            tracing::info!(
                "checkpoint {} was taken by a run of {} worker(s): its sensors' state is dealt out to {workers}",
                r.id,
                r.workers
            );
            Some(Arc::new(regrouped))
        }
        r => r.clone(),
    };
    let sinks = if process == 0 {
        let at = resume.as_ref().map_or(&[][..], |r| &r.sinks[..]);
        Some(SinkSet::open_at(
            &pipeline,
            matches!(feed, Feed::Kafka(..)),
            at,
        )?)
    } else {
        None
    };
    // A live run that starts fresh records where it starts (see `Coordinator::write_start`).
    if let (Some(c), Some(set), None, Feed::Kafka(..)) = (&coordinator, &sinks, &resume, &feed) {
        c.write_start(set.positions()).map_err(|e| {
            RunError::Stopped(Failure::Output {
                step: OutputStep::Checkpoint,
                message: e.to_string(),
            })
        })?;
    }
    let sinks = Arc::new(Mutex::new(sinks));
    let shared = Arc::new(Shared {
        checkpoints: coordinator,
        ..Default::default()
    });
    shared.durable.store(i64::MIN, Ordering::SeqCst);
    shared.live_max.store(i64::MIN, Ordering::SeqCst);
    if let Feed::Kafka(k, ..) = &feed {
        shared.live.store(true, Ordering::SeqCst);
        shared
            .checkpoint_ms
            .store(k.commit_interval.ms.max(1), Ordering::SeqCst);
        for s in &pipeline.sinks {
            if let SinkTarget::ArrowIpc { .. } = s.target {
                tracing::warn!(
                    "sink {}: an Arrow IPC file is complete only at the end of the run, so offsets are committed only then (not every {})",
                    s.name,
                    k.commit_interval
                );
            }
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if workers > max_workers(cores) {
        return Err(RunError::Failed(format!(
            "-w {workers}: this machine has {cores} core(s), and a run takes at most {} worker threads (4 per core, at least 16); each worker keeps its own buffers and state, so more only costs memory",
            max_workers(cores)
        )));
    }
    if let crate::plan::Device::Cuda(n) = pipeline.device
        && !crate::compute::cuda::available()
    {
        return Err(RunError::Failed(format!(
            "compute device \"cuda:{n}\": no CUDA driver (libcuda) or NVRTC (libnvrtc) can be loaded on this machine; use \"auto\" or \"cpu\""
        )));
    }
    let energy = crate::energy::rapl_now();
    let gpu_energy = crate::energy::gpu_start(&pipeline.device.to_string());
    let started = Instant::now();
    let commit = match &feed {
        Feed::Kafka(k, plan, _) => Some((k.as_ref().clone(), plan.group.clone())),
        Feed::Files(_) => None,
    };
    let sh = shared.clone();
    let until_end = opts.until_end;
    let config = match &opts.cluster {
        None => timely::Config::process(workers),
        Some((process, addresses)) => timely::Config {
            communication: timely::CommunicationConfig::Cluster {
                threads: workers,
                process: *process,
                addresses: addresses.clone(),
                report: false,
                zerocopy: false,
            },
            worker: timely::WorkerConfig::default(),
        },
    };
    // The endpoint first: an address that cannot be bound fails the run before it starts.
    let endpoint = match opts.metrics {
        Some(addr) => {
            let sh = shared.clone();
            let health: crate::events::endpoint::Health = Arc::new(move || {
                if sh.aborted() {
                    let e = sh.error.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    Err(e.map_or_else(|| "the run failed".into(), |e| e.to_string()))
                } else {
                    Ok(())
                }
            });
            let e = crate::events::endpoint::serve(addr, shared.recorder.clone(), health)
                .map_err(|e| RunError::Failed(format!("--metrics {addr}: {e}")))?;
            Some(e)
        }
        None => None,
    };
    let clustered = opts.cluster.is_some();
    let guards = timely::execute(config, move |worker| {
        let index = worker.index();
        let _done = shared::WorkerDone(sh.clone(), index);
        // This worker's events reach the run's recorder; its logs carry the worker.
        let _metrics = sh.recorder.install();
        let _span = tracing::info_span!("worker", index).entered();
        let peers = worker.peers();
        let delay = pipeline.watermark_delay;
        let sink_set = if index == 0 {
            sinks.lock().unwrap_or_else(|p| p.into_inner()).take()
        } else {
            None
        };
        let probe = ProbeHandle::new();
        let p = pipeline.clone();
        let s = sh.clone();
        let mut stop = clustered.then(|| control::StopChannel::install(worker, sh.clone()));
        worker.dataflow::<i64, _, _>(|scope| {
            let progress = ProbeHandle::new();
            // Typed streams: readings to the windows; rejects, late rows and failures
            // straight to the sinks, as are the windows' duplicate rejects.
            let (readings, source_side) = match &feed {
                Feed::Files(files) => {
                    let (parts, bounds) = worker_parts(files, &p, delay, index, peers);
                    file_source::file_source(
                        scope,
                        p.clone(),
                        parts,
                        bounds,
                        progress.clone(),
                        probe.clone(),
                        s.clone(),
                        resume.clone(),
                    )
                }
                Feed::Kafka(k, plan, _) => kafka_source::kafka_source(
                    scope,
                    p.clone(),
                    k.as_ref().clone(),
                    plan.clone(),
                    progress.clone(),
                    probe.clone(),
                    s.clone(),
                    resume.clone(),
                ),
            };
            // The sources' frontier (both outputs are held at the same time).
            let readings = readings.probe_with(&progress);
            let (windows, window_side) =
                window::window_stage(readings, p.clone(), s.clone(), resume.clone());
            let mut feats = features::features_stage(windows, p.clone(), s.clone());
            let reg = p.registry.as_ref().map(|plan| {
                let plan = Arc::new(plan.clone());
                let windows = registry_changes::WindowsFrontier::new();
                let live = match &feed {
                    Feed::Kafka(k, _, Some(topic)) => Some(registry_changes::Live {
                        kafka: k.as_ref().clone(),
                        topic: topic.clone(),
                        pipeline: p.name.clone(),
                        bounded: until_end,
                    }),
                    _ => None,
                };
                let delimiter = p.source.asset_delimiter.clone();
                let reg = registry::registry(
                    scope,
                    plan.clone(),
                    delimiter,
                    windows.clone(),
                    live,
                    s.clone(),
                );
                feats = registry::enrich(feats.clone(), &reg.sensors, plan, windows);
                reg
            });
            let scored = score::score_stage(feats, p.clone(), s.clone(), resume.clone());
            let scored = match &reg {
                Some(reg) if p.tracks_incidents() => {
                    let grace = p.registry.as_ref().map_or(0, |r| r.incident_grace_ms);
                    let found = incidents::incidents(
                        &scored,
                        reg,
                        p.window.size,
                        grace,
                        s.clone(),
                        resume.clone(),
                    );
                    scored.concat(found)
                }
                _ => scored,
            };
            let rows = scored.concat(source_side).concat(window_side);
            let rows = match reg {
                Some(reg) => rows.concat(reg.side),
                None => rows,
            };
            let resumed_at = resume.as_ref().map_or(i64::MIN, |r| r.at);
            sink::sink_stage(rows, sink_set, s.clone(), resumed_at).probe_with(&probe);
        });
        match stop.as_mut() {
            None => while worker.step_or_park(None) {},
            Some(stop) => loop {
                stop.tend(probe.done());
                if !worker.step_or_park(stop.park()) {
                    break;
                }
            },
        }
    })
    .map_err(RunError::Failed)?;
    Ok(Running {
        endpoint,
        shared,
        guards: Some(guards),
        started,
        energy,
        gpu_energy,
        workers,
        files_in,
        total_rows,
        commit,
    })
}

/// What checkpoints cannot save yet in a run of `pipeline` (`cluster`: one of several
/// processes), named; None when they can. A run asked for checkpoints refuses these; `hyflow
/// run`, which takes them by default, runs without them and says why.
pub fn checkpoints_unsupported(pipeline: &Plan, cluster: bool) -> Option<String> {
    let live = matches!(pipeline.source.feed, crate::plan::Feed::Kafka(_));
    if live
        && pipeline
            .registry
            .as_ref()
            .is_some_and(|r| r.topic.is_some())
    {
        return Some("a registry topic (its changes are not saved yet)".into());
    }
    if cluster {
        return Some("clusters of several processes".into());
    }
    // A registry read from files is rebuilt as it was from the same files (every change at
    // its own time); incidents are rebuilt from the episodes saved (dataflow/incidents.rs).
    if let Some(s) = pipeline
        .sinks
        .iter()
        .find(|s| matches!(s.target, SinkTarget::ArrowIpc { .. }))
    {
        return Some(format!(
            "Arrow IPC sinks (sink {}: its one file is complete only at the end)",
            s.name
        ));
    }
    None
}

/// The checkpoint coordinator of a run that takes checkpoints or resumes from one, after
/// checking that it can: what is not saved yet is refused here, by name, rather than
/// checkpointed wrongly.
fn checkpoints_for(
    pipeline: &Arc<Plan>,
    opts: &RunOptions,
    feed: &Feed,
    workers: usize,
) -> Result<Option<checkpoint::Coordinator>, RunError> {
    if opts.checkpoints.is_none() && opts.resume.is_none() {
        return Ok(None);
    }
    if let Some(what) = checkpoints_unsupported(pipeline, opts.cluster.is_some()) {
        return Err(RunError::Failed(format!(
            "checkpoints ([recovery]) are not implemented yet for {what}; run without them"
        )));
    }
    let initial: Vec<crate::checkpoint::SourceCut> = match feed {
        Feed::Files(files) => {
            let (all, _) = worker_parts(files, pipeline, pipeline.watermark_delay, 0, 1);
            all.iter()
                .map(|(_, p)| crate::checkpoint::SourceCut::File {
                    name: p.name().to_string(),
                    row: 0,
                    seen: None,
                })
                .collect()
        }
        // (The plan's starts are the checkpoint's offsets when resuming: see `start`.)
        Feed::Kafka(_, plan, _) => plan
            .parts
            .iter()
            .zip(&plan.starts)
            .map(
                |((topic, partition), &offset)| crate::checkpoint::SourceCut::Kafka {
                    topic: topic.clone(),
                    partition: *partition,
                    offset,
                    seen: None,
                },
            )
            .collect(),
    };
    let mut after = (0, i64::MIN);
    if let Some(r) = &opts.resume {
        let names: Vec<String> = r.sources.iter().map(|c| c.name()).collect();
        let now: Vec<String> = initial.iter().map(|c| c.name()).collect();
        if names != now {
            return Err(RunError::Failed(format!(
                "checkpoint {} was taken over other input partitions ({} then, {} now; the first that differs: {:?}): the input must be the same to resume",
                r.id,
                names.len(),
                now.len(),
                names
                    .iter()
                    .zip(&now)
                    .find(|(a, b)| a != b)
                    .map_or_else(|| "one more or fewer".to_string(), |(a, _)| a.clone())
            )));
        }
        after = (r.id, r.at);
    }
    let Some(o) = opts.checkpoints.clone() else {
        return Ok(None);
    };
    // Ids go on past every checkpoint in the directory (of this pipeline or an earlier
    // version), so that the newest is always this run's.
    if let Some((newest, _)) = crate::checkpoint::list(&o.dir).first() {
        after.0 = after.0.max(*newest);
    }
    // A resumed run goes on from its checkpoint's positions: partitions it had finished stay
    // finished in later checkpoints.
    let initial = match &opts.resume {
        Some(r) => r.sources.clone(),
        None => initial,
    };
    Ok(Some(checkpoint::Coordinator::new(
        o, pipeline, workers, initial, after,
    )))
}

/// Runs a pipeline to the end.
pub fn run(pipeline: Arc<Plan>, opts: &RunOptions) -> Result<Summary, RunError> {
    start(pipeline, opts)?.wait()
}
