//! Fixed-size row chunks: a file sink hands its writer batches of exactly [`CHUNK_ROWS`] rows
//! (the last of a file shorter), whatever sizes the rows arrived in. Rows reach the sinks in a
//! canonical order but in batches that depend on scheduling (which times completed together);
//! Parquet page boundaries and Arrow IPC batches follow the writer's calls, so without this
//! a file's bytes would differ between runs with the same rows.

use arrow_array::RecordBatch;
use std::collections::VecDeque;

/// Rows per batch handed to a file writer: a multiple of parquet's mini-batch (1024 rows) and
/// a divisor of the row group size (131,072 rows).
pub const CHUNK_ROWS: usize = 8192;

/// Rows waiting to make up a whole chunk.
#[derive(Default)]
pub struct Chunker {
    pending: VecDeque<RecordBatch>,
    rows: usize,
}

impl Chunker {
    /// Queues `batch`, then hands every whole chunk to `write`.
    pub fn push<E>(
        &mut self,
        batch: RecordBatch,
        mut write: impl FnMut(&RecordBatch) -> Result<(), E>,
    ) -> Result<(), E> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.rows += batch.num_rows();
        self.pending.push_back(batch);
        while self.rows >= CHUNK_ROWS {
            let chunk = self.take(CHUNK_ROWS);
            write(&chunk)?;
        }
        Ok(())
    }

    /// Hands what is left (less than a chunk) to `write`.
    pub fn flush<E>(
        &mut self,
        mut write: impl FnMut(&RecordBatch) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.rows > 0 {
            let rest = self.take(self.rows);
            write(&rest)?;
        }
        Ok(())
    }

    /// The first `n` queued rows as one batch (copied only when they span several batches).
    fn take(&mut self, n: usize) -> RecordBatch {
        let mut parts = Vec::new();
        let mut need = n;
        while need > 0 {
            let Some(front) = self.pending.pop_front() else {
                break;
            };
            if front.num_rows() <= need {
                need -= front.num_rows();
                parts.push(front);
            } else {
                parts.push(front.slice(0, need));
                self.pending
                    .push_front(front.slice(need, front.num_rows() - need));
                need = 0;
            }
        }
        self.rows -= n - need;
        if parts.len() == 1 {
            return parts.pop().unwrap_or_else(|| unreachable!());
        }
        let schema = parts[0].schema();
        arrow_select::concat::concat_batches(&schema, &parts)
            .unwrap_or_else(|e| unreachable!("batches of one schema: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Int64Array};
    use std::sync::Arc;

    fn batch(from: i64, n: i64) -> RecordBatch {
        RecordBatch::try_from_iter([(
            "x",
            Arc::new(Int64Array::from_iter_values(from..from + n)) as _,
        )])
        .unwrap()
    }

    #[test]
    fn chunks_do_not_depend_on_how_rows_arrive() {
        let run = |sizes: &[i64]| {
            let mut c = Chunker::default();
            let mut out: Vec<Vec<i64>> = Vec::new();
            let mut put = |b: &RecordBatch| -> Result<(), ()> {
                let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                out.push(a.values().to_vec());
                Ok(())
            };
            let mut at = 0;
            for &n in sizes {
                c.push(batch(at, n), &mut put).unwrap();
                at += n;
            }
            c.flush(&mut put).unwrap();
            out
        };
        let total = 3 * CHUNK_ROWS as i64 + 17;
        let one = run(&[total]);
        assert_eq!(
            one.iter().map(Vec::len).collect::<Vec<_>>(),
            [CHUNK_ROWS, CHUNK_ROWS, CHUNK_ROWS, 17]
        );
        assert_eq!(run(&[1, 8000, 500, 0, 16000, total - 24501]), one);
        assert_eq!(run(&vec![1; total as usize]), one);
        assert!(run(&[]).is_empty());
        let flat: Vec<i64> = one.concat();
        assert_eq!(flat, (0..total).collect::<Vec<_>>());
        assert!(one.iter().all(|c| !c.is_empty()) && batch(0, 1).column(0).len() == 1);
    }
}
