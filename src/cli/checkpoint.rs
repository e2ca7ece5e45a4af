//! `hyflow checkpoint inspect`, and choosing the checkpoint a `--resume` goes on from.

use anyhow::{Result, bail};
use hyflow::checkpoint::{self, Checkpoint};
use hyflow::plan::Plan;
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
/// pipeline. None (and a note) when there is none yet: the run starts from the beginning.
pub fn choose(plan: &Plan, pipeline_file: &Path, quiet: bool) -> Result<Option<Arc<Checkpoint>>> {
    if plan.recovery.is_none() {
        bail!(
            "{}: --resume goes on from a checkpoint, and this pipeline takes none: add a [recovery] section (without enabled = false)",
            pipeline_file.display()
        );
    }
    pick(plan, pipeline_file, quiet, true)
}

/// The checkpoint `hyflow run` goes on from: as [`choose`], but a checkpoint of another
/// version of the pipeline is not an error: the run starts from the consumer group's committed
/// offsets, fresh, and says so. None without `[recovery]`.
pub fn choose_live(
    plan: &Plan,
    pipeline_file: &Path,
    quiet: bool,
) -> Result<Option<Arc<Checkpoint>>> {
    if plan.recovery.is_none() {
        return Ok(None);
    }
    pick(plan, pipeline_file, quiet, false)
}

fn pick(
    plan: &Plan,
    pipeline_file: &Path,
    quiet: bool,
    strict: bool,
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
    if c.pipeline_hash != now && !strict {
        eprintln!(
            "note: {} was taken by another version of the pipeline (hash {:016x}, {} now has {now:016x}): starting fresh from the consumer group's committed offsets, without its state",
            file.display(),
            c.pipeline_hash,
            pipeline_file.display()
        );
        return Ok(None);
    }
    if c.pipeline_hash != now {
        bail!(
            "{}: taken by another version of the pipeline (hash {:016x}, {} now has {now:016x}); its state would not fit. Start over without --resume (and remove {} to keep the checkpoints apart)",
            file.display(),
            c.pipeline_hash,
            pipeline_file.display(),
            r.dir.display()
        );
    }
    if !quiet {
        let at = if c.at == i64::MIN {
            "the start of a run: nothing read yet".to_string()
        } else {
            format!("cut at {}", hyflow::timefmt::format_rfc3339(c.at))
        };
        eprintln!("resuming from {} ({at})", file.display());
    }
    Ok(Some(Arc::new(c)))
}
