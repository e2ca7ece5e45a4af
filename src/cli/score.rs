//! `hyflow score`: one output row per input row, `timestamp,value,anomaly_score` (the NAB
//! results layout; timestamps RFC 3339 in UTC unless `--timestamps input`), with `sensor_id` (and `asset`) columns for input that holds several
//! sensors; see `hyflow::tools::scoring`.

use anyhow::Result;
use hyflow::plan;
use hyflow::tools::scoring::Timestamps;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `hyflow score`.
#[derive(clap::Args)]
pub struct ScoreArgs {
    /// Pipeline file.
    pipeline: PathBuf,
    /// The input file (CSV or Parquet, as the pipeline's source kind says).
    #[arg(long)]
    input: PathBuf,
    /// Output CSV: timestamp,value,anomaly_score; with a sensor column in the input,
    /// timestamp,sensor_id[,asset],value,anomaly_score.
    #[arg(long)]
    out_file: PathBuf,
    /// Worker threads.
    #[arg(short = 'w', long, default_value_t = 1)]
    workers: usize,
    /// The timestamp column: `rfc3339` (UTC, `2014-04-01T00:05:00Z`, as `hyflow cat` prints
    /// times) or `input` (the CSV input's own text; NAB's results layout).
    #[arg(long, value_enum, default_value_t = TimestampsArg::Rfc3339)]
    timestamps: TimestampsArg,
}

/// `--timestamps`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum TimestampsArg {
    Rfc3339,
    Input,
}

pub fn run(a: ScoreArgs, quiet: bool) -> Result<ExitCode> {
    let p = plan::load(&a.pipeline)?;
    let (rows, windows) = hyflow::tools::scoring::score_file(&p, &a.input, a.workers)?;
    let delim = p
        .config
        .detect
        .asset_delimiter
        .as_ref()
        .map(|d| d.get_ref().as_str());
    let timestamps = match a.timestamps {
        TimestampsArg::Rfc3339 => Timestamps::Rfc3339,
        TimestampsArg::Input => Timestamps::Input,
    };
    hyflow::tools::scoring::write_csv(&a.out_file, &rows, delim, timestamps)?;
    if quiet {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "scored {} rows ({windows} windows) into {}",
        rows.len(),
        a.out_file.display()
    );
    Ok(ExitCode::SUCCESS)
}
