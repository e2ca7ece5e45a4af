//! Examples in the docs that show what hyflow writes are what it writes: each is compared with
//! a run of the command the doc names.

use std::process::Command;

/// The first ```json block after `marker` in `doc` (under the repository root), parsed.
fn json_example(doc: &str, marker: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(crate::common::root().join(doc)).expect("doc");
    let from = text
        .find(marker)
        .unwrap_or_else(|| panic!("{doc}: no {marker:?}"));
    let block = text[from..]
        .split("```json\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap_or_else(|| panic!("{doc}: no json block after {marker:?}"));
    serde_json::from_str(block).unwrap_or_else(|e| panic!("{doc}: the example is not JSON: {e}"))
}

/// docs/alerts.md's alert event is the one the demo's pipeline publishes for that episode:
/// every field, exactly (the replay of the demo's pipeline and fixture writes its Kafka sink
/// as Parquet; `row_json` is what the Kafka sink sends for a row).
#[test]
fn the_alert_event_in_alerts_md_is_what_the_demo_pipeline_publishes() {
    let example = json_example(
        "docs/alerts.md",
        "Example: the event `hyflow demo` publishes",
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let st = Command::new(env!("CARGO_BIN_EXE_hyflow"))
        .current_dir(crate::common::root())
        .args(["replay", "-q", "pipelines/manufacturing-live.toml"])
        .args(["--input", "fixtures/manufacturing.parquet", "--out"])
        .arg(tmp.path())
        .status()
        .expect("replay");
    assert!(st.success());
    let batches = hyflow::tools::inspect::read(&tmp.path().join("alerts-kafka")).expect("read");
    let id = example["event_id"].as_str().expect("event_id");
    let event = batches
        .iter()
        .flat_map(|b| (0..b.num_rows()).map(move |i| hyflow::stages::sink::kafka::row_json(b, i)))
        .find(|o| o["event_id"] == id)
        .unwrap_or_else(|| panic!("no event {id} in the demo pipeline's alerts"));
    assert_eq!(serde_json::Value::Object(event), example);
}
