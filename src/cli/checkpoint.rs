//! `hyflow checkpoint inspect`; choosing the checkpoint a run goes on from (`--resume`,
//! `hyflow run`, `--from-checkpoint`); `hyflow run`'s default checkpoints, and whether a
//! SIGHUP can switch a live run to its changed pipeline file.

use anyhow::{Result, bail};
use hyflow::checkpoint::{self, Checkpoint};
use hyflow::plan::Plan;
use hyflow::{dataflow, plan};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// What `hyflow checkpoint` does.
#[derive(clap::Subcommand)]
pub enum CheckpointCommand {
    /// Print what a checkpoint holds: its cut, every source partition's position, the state
    /// kept and the sinks' positions. PATH is a checkpoint file or a recovery directory (its
    /// newest checkpoint that reads back whole).
    Inspect {
        /// Checkpoint file or directory.
        path: std::path::PathBuf,
    },
}

pub fn run(c: CheckpointCommand) -> Result<ExitCode> {
    match c {
        CheckpointCommand::Inspect { path } => {
            let (file, c) = if path.is_dir() {
                let (found, bad) = checkpoint::latest(&path);
                for e in &bad {
                    eprintln!("warning: {e}");
                }
                match found {
                    Some(f) => f,
                    None => bail!("{}: no checkpoint that reads back whole", path.display()),
                }
            } else {
                (path.clone(), checkpoint::read(&path)?)
            };
            print!("{}", checkpoint::describe(&file, &c));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The checkpoint a `--resume` replay of `plan` goes on from: the newest in its `[recovery]`
/// directory that reads back whole (damaged newer ones are named), which must be of the same
/// pipeline (or, `from_checkpoint`, of one whose state carries over). None (and a note) when
/// there is none yet: the run starts from the beginning.
pub fn choose(
    plan: &Plan,
    pipeline_file: &Path,
    from_checkpoint: bool,
    quiet: bool,
) -> Result<Option<Arc<Checkpoint>>> {
    if plan.recovery.is_none() {
        bail!(
            "{}: --resume goes on from a checkpoint, and this pipeline takes none: add a [recovery] section (without enabled = false)",
            pipeline_file.display()
        );
    }
    pick(plan, pipeline_file, quiet, true, from_checkpoint)
}

/// The checkpoint `hyflow run` goes on from: as [`choose`], but a checkpoint of another
/// version of the pipeline is not an error without `from_checkpoint`: the run starts from the
/// consumer group's committed offsets, fresh, and says so. None without checkpoints.
pub fn choose_live(
    plan: &Plan,
    pipeline_file: &Path,
    from_checkpoint: bool,
    quiet: bool,
) -> Result<Option<Arc<Checkpoint>>> {
    if plan.recovery.is_none() {
        if from_checkpoint {
            bail!(
                "{}: --from-checkpoint goes on from a checkpoint, and this run takes none",
                pipeline_file.display()
            );
        }
        return Ok(None);
    }
    pick(plan, pipeline_file, quiet, false, from_checkpoint)
}

fn pick(
    plan: &Plan,
    pipeline_file: &Path,
    quiet: bool,
    strict: bool,
    from_checkpoint: bool,
) -> Result<Option<Arc<Checkpoint>>> {
    let Some(r) = &plan.recovery else {
        return Ok(None);
    };
    let (found, bad) = checkpoint::latest(&r.dir);
    for e in &bad {
        eprintln!("warning: {e}; trying an older checkpoint");
    }
    let Some((file, c)) = found else {
        if !quiet {
            eprintln!(
                "note: no checkpoint in {}: starting from the beginning",
                r.dir.display()
            );
        }
        return Ok(None);
    };
    let now = checkpoint::pipeline_hash(&plan.config);
    let mut carried = false;
    if c.pipeline_hash != now {
        let fits = checkpoint::carry_over(&c.definition, &plan.config);
        let allowed = checkpoint::CARRIED_OVER.join(", ");
        match (from_checkpoint, fits) {
            (true, Ok(())) => carried = true,
            (true, Err(differ)) => bail!(
                "{}: taken by another version of the pipeline, and its state would not fit {}: {} differ{} (only {allowed} may change for --from-checkpoint)",
                file.display(),
                pipeline_file.display(),
                differ.join(", "),
                if differ.len() == 1 { "s" } else { "" }
            ),
            (false, fits) if !strict => {
                let hint = if fits.is_ok() {
                    " (only its rules or [compute] changed: --from-checkpoint carries the state over)"
                } else {
                    ""
                };
                eprintln!(
                    "note: {} was taken by another version of the pipeline (hash {:016x}, {} now has {now:016x}): starting fresh from the consumer group's committed offsets, without its state{hint}",
                    file.display(),
                    c.pipeline_hash,
                    pipeline_file.display()
                );
                return Ok(None);
            }
            (false, fits) => {
                let why = if fits.is_ok() {
                    "only its rules or [compute] changed: --from-checkpoint carries the state over (or start over"
                } else {
                    "its state would not fit. Start over"
                };
                bail!(
                    "{}: taken by another version of the pipeline (hash {:016x}, {} now has {now:016x}); {why} without --resume, and remove {} to keep the checkpoints apart{}",
                    file.display(),
                    c.pipeline_hash,
                    pipeline_file.display(),
                    r.dir.display(),
                    if fits.is_ok() { ")" } else { "" }
                )
            }
        }
    }
    if !quiet {
        let at = if c.at == i64::MIN {
            "the start of a run: nothing read yet".to_string()
        } else {
            format!("cut at {}", hyflow::timefmt::format_rfc3339(c.at))
        };
        let how = if carried {
            ", carrying its state over to the changed rules or [compute]"
        } else {
            ""
        };
        eprintln!("resuming from {} ({at}){how}", file.display());
    }
    Ok(Some(Arc::new(c)))
}

/// `hyflow run` takes checkpoints by default: a pipeline without a `[recovery]` section gets
/// its defaults (every 30 s, `checkpoints` beside the first Parquet sink's directory), unless
/// checkpoints cannot save what it holds yet; then it runs without them and says why. A
/// section with `enabled = false` turns them off. A bounded run (`--until-end`) is a batch:
/// it flushes every window at the end and commits the end offsets, so it takes them only
/// when the section asks.
pub fn with_default_checkpoints(
    pipeline: Arc<Plan>,
    cluster: bool,
    until_end: bool,
) -> Result<Arc<Plan>> {
    if pipeline.recovery.is_some() || pipeline.checkpoints_off || until_end {
        return Ok(pipeline);
    }
    if let Some(what) = dataflow::checkpoints_unsupported(&pipeline, cluster) {
        tracing::warn!(
            "running without checkpoints: they are not implemented yet for {what} (a restart goes on from the committed offsets with detector state learned anew; add [recovery] with enabled = false to silence this)"
        );
        return Ok(pipeline);
    }
    let p = pipeline.with_config(|c| c.recovery = Some(Default::default()))?;
    if let Some(r) = &p.recovery {
        tracing::info!(
            "checkpoints every {:.0} s in {} (the default for `hyflow run`; [recovery] sets them, enabled = false turns them off)",
            r.every_ms as f64 / 1000.0,
            r.dir.display()
        );
    }
    Ok(Arc::new(p))
}

/// What a live run needs to read its pipeline file again on SIGHUP.
pub struct Reload<'a> {
    /// The pipeline file.
    pub file: &'a Path,
    /// The run's `--set`s.
    pub sets: &'a [(String, String)],
    /// The run's `--out`.
    pub out: Option<&'a Path>,
    /// A bounded run (`--until-end`).
    pub until_end: bool,
    /// One process of several.
    pub cluster: bool,
}

impl Reload<'_> {
    /// The pipeline file, read again, when the run of `current` can switch to it without
    /// losing state; else why not (`Ok(None)`: nothing changed).
    pub fn check(&self, current: &Plan) -> Result<Option<Arc<Plan>>, String> {
        let Some(r) = &current.recovery else {
            return Err(
                "switching takes a checkpoint, and this run takes none (see docs/recovery.md)"
                    .into(),
            );
        };
        let next = plan::load_with_sets(self.file, self.sets, |c| {
            if let Some(dir) = self.out {
                c.set_out_dir(dir);
            }
        })
        .map_err(|e| format!("{} does not validate:\n{e:#}", self.file.display()))?;
        let next = with_default_checkpoints(Arc::new(next), self.cluster, self.until_end)
            .map_err(|e| format!("{e:#}"))?;
        if next.recovery.as_ref().map(|n| &n.dir) != Some(&r.dir) {
            return Err("its checkpoints ([recovery]) would go elsewhere".into());
        }
        let then = hyflow::checkpoint::definition(&current.config);
        if then == hyflow::checkpoint::definition(&next.config) {
            return Ok(None);
        }
        hyflow::checkpoint::carry_over(&then, &next.config).map_err(|differ| {
            format!(
                "{} differ{}, and only {} may change while it runs",
                differ.join(", "),
                if differ.len() == 1 { "s" } else { "" },
                hyflow::checkpoint::CARRIED_OVER.join(" and ")
            )
        })?;
        Ok(Some(next))
    }
}
