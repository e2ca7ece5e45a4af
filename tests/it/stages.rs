//! One stage at a time through the stage harness (`common::stage`): what each output of a
//! stage carries, and the events it emits, without a whole run.

use crate::common::{root, stage::drive};
use hyflow::batch::{ReadingBatch, RejectKind};
use hyflow::dataflow::window::window_stage;
use hyflow::output::OutRecord;
use std::sync::Arc;
use timely::dataflow::operators::{Concat, vec::Map};

#[test]
fn the_window_stage_sends_windows_one_way_and_duplicates_the_other() {
    // Tumbling 10 s windows, dedup on.
    let plan =
        Arc::new(hyflow::plan::load(&root().join("pipelines/manufacturing.toml")).expect("valid"));
    assert_eq!(plan.window.size, 10_000);
    let names = Arc::new(vec![Arc::<str>::from("m00-temp")]);
    let mut b = ReadingBatch::new(0, names);
    for (t, v) in [(1_000, 1.0), (2_000, 2.0), (2_000, 3.0), (12_000, 4.0)] {
        b.push(0, t, v);
    }
    let (out, counts) = drive(vec![(0, vec![b])], move |readings| {
        let (windows, side) = window_stage(readings, plan, Default::default(), None);
        windows.map(Ok).concat(side.map(Err))
    });
    let windows: Vec<(i64, i64, usize)> = out
        .iter()
        .filter_map(|(t, o)| o.as_ref().ok().map(|w| (*t, w.end[0], w.values.len())))
        .collect();
    // Each batch of windows at its end; the duplicate reading is not in its window.
    assert_eq!(windows, vec![(10_000, 10_000, 2), (20_000, 20_000, 1)]);
    let rejects: Vec<(i64, RejectKind)> = out
        .iter()
        .filter_map(|(t, o)| match o {
            Err(OutRecord::Reject(r)) => Some((*t, r.kind)),
            _ => None,
        })
        .collect();
    // The duplicate, on the side output at the end of its window; and its event was counted.
    assert_eq!(rejects, vec![(10_000, RejectKind::Duplicate)]);
    assert_eq!(counts.rejected_by, vec![(RejectKind::Duplicate, 1)]);
}
