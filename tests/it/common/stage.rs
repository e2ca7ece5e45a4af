//! A stage harness: drives one stage of the dataflow on one worker, without a run. Batches go
//! in at their times, the input closes, and what came out comes back with its times, together
//! with the counts the stage's events left in a recorder of its own.

use hyflow::events::{Counts, Recorder};
use std::sync::{Arc, Mutex};
use timely::dataflow::operators::{Input, Inspect, Probe};
use timely::dataflow::{ProbeHandle, StreamVec};

/// Runs `build` (the stage, wired onto the input stream) over `batches` (time, records), the
/// times in order; returns every (time, output record) in the order they came out, and the
/// counts of the events the stage emitted.
pub fn drive<I, O>(
    batches: Vec<(i64, Vec<I>)>,
    build: impl for<'s> FnOnce(StreamVec<'s, i64, I>) -> StreamVec<'s, i64, O> + Send + Sync + 'static,
) -> (Vec<(i64, O)>, Counts)
where
    I: Clone + Send + Sync + 'static,
    O: Clone + Send + 'static,
{
    let recorder = Recorder::default();
    let _metrics = recorder.install();
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    timely::execute_directly(move |worker| {
        let probe = ProbeHandle::new();
        let mut input = worker.dataflow::<i64, _, _>(|scope| {
            let (input, stream) = scope.new_input::<Vec<I>>();
            build(stream)
                .inspect_core(move |event| {
                    if let Ok((stamp, data)) = event {
                        let t = *stamp.least().expect("a stamped batch has a time");
                        let mut seen = seen.lock().unwrap();
                        seen.extend(data.iter().map(|o| (t, o.clone())));
                    }
                })
                .probe_with(&probe);
            input
        });
        for (t, records) in batches {
            input.advance_to(t);
            for r in records {
                input.send(r);
            }
        }
        input.close();
        while probe.less_than(&i64::MAX) {
            worker.step();
        }
    });
    let out = std::mem::take(&mut *got.lock().unwrap());
    (out, recorder.counts())
}
