//! The asynchronous accelerator path end to end, without a GPU: the manufacturing pipeline with
//! `device = "emu:0"` (cuda/features.cu emulated on the host, on a thread of its own, two
//! batches in flight per worker, small batches gathered across window ends) gives the same
//! windows and alerts as `device = "cpu"`. scripts/test.sh runs it with the feature on.
#![cfg(feature = "kernel-emulation")]

mod common;

use std::path::Path;

/// The manufacturing pipeline over `input` on `device`, with batches of at most 16 windows.
fn pipeline(input: &Path, device: &str) -> String {
    let text = std::fs::read_to_string(common::root().join("pipelines/manufacturing.toml"))
        .expect("manufacturing.toml");
    let text = text
        .replace(
            "fixtures/manufacturing.parquet",
            &input.display().to_string(),
        )
        .replace(
            "device = \"auto\"",
            &format!("device = \"{device}\"\ncross-check = 0.5\nmax-batch-delay = \"10s\""),
        )
        .replace("max-batch-windows = 4096", "max-batch-windows = 16");
    assert!(
        text.contains("emu:0") || device != "emu:0",
        "device setting replaced"
    );
    text
}

#[test]
fn the_emulated_device_gives_the_cpu_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("m.parquet");
    let ds = hyflow::fixture::manufacturing::generate(4, 5 * 60_000, 5);
    hyflow::fixture::write(ds, &input).expect("fixture");
    let (cpu_out, emu_out) = (dir.path().join("cpu"), dir.path().join("emu"));
    let cpu = common::replay_text(&pipeline(&input, "cpu"), 2, &cpu_out).expect("cpu run");
    let emu = common::replay_text(&pipeline(&input, "emu:0"), 2, &emu_out).expect("emu run");

    // The emulated engine did the work, in several batches, and was cross-checked.
    let on_emu = emu.engines.iter().filter(|e| e.name == "emu:0");
    let (batches, windows, checked, diff) = on_emu.fold((0, 0, 0, 0.0f64), |a, e| {
        (
            a.0 + e.batches,
            a.1 + e.windows,
            a.2 + e.cross_checked,
            a.3.max(e.max_rel_diff),
        )
    });
    assert!(windows > 50, "windows on emu:0: {windows}");
    assert_eq!(windows, cpu.windows, "every window on the emulated device");
    assert!(batches >= 4, "batches: {batches}");
    assert!(
        checked > 0 && diff < 1e-9,
        "cross-checked {checked}, max diff {diff}"
    );
    assert!(cpu.alert_events > 0, "the input has anomalies");
    assert_eq!(emu.alert_events, cpu.alert_events);

    // Same outputs, row for row; numbers equal within rounding (the kernel sums in another
    // order than the reference).
    for sink in ["windows", "alerts", "rejects", "late"] {
        let file = |root: &Path| root.join(sink).join("part-00000.parquet");
        let (a, b) = (common::dump(&file(&cpu_out)), common::dump(&file(&emu_out)));
        assert!(
            a.lines().count() > 1 || sink != "windows",
            "{sink} has rows"
        );
        assert_eq!(a.lines().count(), b.lines().count(), "{sink}: rows");
        for (n, (x, y)) in a.lines().zip(b.lines()).enumerate() {
            assert!(
                same_row(x, y),
                "{sink} row {n} differs:\n  cpu   {x}\n  emu:0 {y}"
            );
        }
    }
}

/// CSV rows equal field by field, numbers within 1e-9 relative (1e-12 absolute near 0).
fn same_row(x: &str, y: &str) -> bool {
    let (xs, ys): (Vec<&str>, Vec<&str>) = (x.split(',').collect(), y.split(',').collect());
    xs.len() == ys.len()
        && xs.iter().zip(&ys).all(|(a, b)| {
            a == b
                || match (a.parse::<f64>(), b.parse::<f64>()) {
                    (Ok(a), Ok(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-3),
                    _ => false,
                }
        })
}
