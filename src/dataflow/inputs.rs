//! The input partitions of a replay: files opened before the run starts, put in time order and
//! dealt to workers.

use crate::plan::Plan;
use crate::stages::source::{Partition, SourceError, csv::CsvPartition, parquet::ParquetFile};
use std::path::PathBuf;
use std::sync::Arc;

/// Every input partition in a fixed order (by the first event time it can emit, then files
/// sorted, then row groups), from which worker `i` of `peers` takes partitions
/// `i, i + peers, ...`.
/// Also returns the initial emission bound of every partition (for backpressure).
pub(super) fn worker_parts(
    files: &[Input],
    pipeline: &Plan,
    delay: i64,
    index: usize,
    peers: usize,
) -> (Vec<IndexedPartition>, Arc<Vec<i64>>) {
    let src = &pipeline.source;
    let (batch_rows, split) = (src.batch_rows, src.split_row_groups);
    let mut all: Vec<Box<dyn Partition>> = Vec::new();
    for f in files {
        let failed = |name: String, e: SourceError| {
            Box::new(FailedPartition {
                name,
                error: Some(e),
            }) as Box<dyn Partition>
        };
        match f {
            Input::Parquet(file) => all.extend(
                file.partitions(batch_rows, split)
                    .into_iter()
                    .map(|p| Box::new(p) as Box<dyn Partition>),
            ),
            Input::Csv(path) => {
                match CsvPartition::open(path, &src.columns, &src.csv, &pipeline.zone, batch_rows) {
                    Ok(p) => all.push(Box::new(p)),
                    Err(e) => all.push(failed(path.display().to_string(), e)),
                }
            }
            Input::Failed(name, e) => all.push(failed(name.clone(), e.clone())),
        }
    }
    // Time order (by initial bound, then file order): a worker's earlier partitions never
    // wait on its later ones, so backpressure cannot deadlock when file names and times
    // disagree.
    let mut all: Vec<(i64, Box<dyn Partition>)> = all
        .into_iter()
        .map(|p| (super::file_source::initial_bound(p.as_ref(), delay), p))
        .collect();
    all.sort_by_key(|(bound, _)| *bound);
    let bounds = Arc::new(all.iter().map(|(b, _)| *b).collect());
    let mine = all
        .into_iter()
        .map(|(_, p)| p)
        .enumerate()
        .filter(|(i, _)| i % peers == index)
        .collect();
    (mine, bounds)
}

/// A partition with its index in the global partition order.
pub(super) type IndexedPartition = (usize, Box<dyn Partition>);

/// An input file, opened (and checked) before the run starts.
pub(super) enum Input {
    Parquet(Arc<ParquetFile>),
    Csv(PathBuf),
    Failed(String, SourceError),
}

/// A file that could not be opened, in skip mode: yields its error once, as a reject.
struct FailedPartition {
    name: String,
    error: Option<SourceError>,
}

impl Partition for FailedPartition {
    fn name(&self) -> &str {
        &self.name
    }
    fn min_time(&self) -> Option<i64> {
        None
    }
    fn next_batch(&mut self) -> Option<Result<(u64, arrow_array::RecordBatch), SourceError>> {
        self.error.take().map(Err)
    }
}
