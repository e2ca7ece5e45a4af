//! What the file source (`operators::source_stage`) and the Kafka source
//! (`kafka_source::kafka_source_stage`) share: backpressure against the sinks, and the emission
//! of a decoded batch (counted as an event; readings at the batch's bound, each side row at its
//! own time). The sources keep what differs: which partition to read next, polling, idleness,
//! offsets.

use super::operators::Msg;
use crate::events::{Event as _, RowsDecoded};
use crate::output::OutRecord;
use crate::source::Decoded;
use timely::dataflow::ProbeHandle;

/// Holds a source back while it is far ahead of what the sinks have finished.
pub(super) struct Backpressure {
    /// The sources' frontier (what they have sent).
    progress: ProbeHandle<i64>,
    /// The sinks' frontier (what they have finished).
    done: ProbeHandle<i64>,
    /// How far (event time, ms) a source may read ahead of the sinks: 4 × (window size +
    /// watermark delay).
    lead: i64,
}

fn least(p: &ProbeHandle<i64>) -> i64 {
    p.with_frontier(|f| f.iter().copied().min())
        .unwrap_or(i64::MAX)
}

impl Backpressure {
    pub(super) fn new(progress: ProbeHandle<i64>, done: ProbeHandle<i64>, lead: i64) -> Self {
        Self {
            progress,
            done,
            lead,
        }
    }
    /// The least time the sources may still send at.
    pub(super) fn sent(&self) -> i64 {
        least(&self.progress)
    }
    /// True when a source about to emit at `bound` should wait: it is more than `lead` ahead
    /// of what the sinks have finished, unless the sinks have finished everything the sources
    /// sent (then waiting cannot help: another partition holds the frontier back).
    pub(super) fn should_wait(&self, bound: i64) -> bool {
        let finished = least(&self.done);
        bound > finished.saturating_add(self.lead) && finished < self.sent()
    }
}

/// Emits one decoded batch of `partition` through `give(time, message)`: its readings at `at`,
/// its reject and late rows each at its own time raised to `floor`; and counts it.
pub(super) fn emit_decoded(
    partition: &str,
    rows: u64,
    d: Decoded,
    at: i64,
    floor: i64,
    mut give: impl FnMut(i64, Vec<Msg>),
) {
    RowsDecoded {
        partition,
        rows,
        accepted: d.accepted(),
        rejects: &d.rejects,
        late: d.late.len() as u64,
        dropped: d.dropped,
    }
    .emit();
    if !d.batches.is_empty() {
        give(at, d.batches.into_iter().map(Msg::Readings).collect());
    }
    let rejects = d
        .rejects
        .into_iter()
        .map(|(t, r)| (t, OutRecord::Reject(r)));
    let late = d.late.into_iter().map(|(t, r)| (t, OutRecord::Late(r)));
    for (t, r) in rejects.chain(late) {
        give(t.max(floor), vec![Msg::Side(r)]);
    }
}
