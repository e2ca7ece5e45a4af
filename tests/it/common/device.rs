//! What the device tests share: the manufacturing pipeline set up for comparing devices, and
//! the comparison of two runs' outputs.

use super::dump;
use std::path::Path;

/// The manufacturing pipeline over `input` on `device`, with batches of at most 16 windows
/// (edited through the config types and validated; see `common::pipeline::shipped`).
pub fn pipeline(input: &Path, device: &str) -> String {
    super::pipeline::shipped("manufacturing", |c| {
        c.set_input(&input.display().to_string());
        c.set_device(device);
        c.compute.cross_check = 0.5;
        c.compute.max_batch_delay = hyflow::config::Duration::from_ms(10_000);
        c.compute.max_batch_windows = 16;
        // Two things compare values exactly, so the last bit of a window's mean (the kernel
        // sums in another order than the reference) can change them: the mean-crossing rate
        // (a value equal to the mean) and the stuck detector on `mean` (two windows with the
        // same mean by coincidence: seen with seed 6). They are left out here; the kernel's
        // crossing rate is checked against the reference in tests/kernel_emulation.rs.
        c.features
            .compute
            .get_mut()
            .retain(|f| f.get_ref() != "mean-crossing-rate");
        let stuck = c
            .detect
            .detector
            .iter_mut()
            .find(|d| *d.kind.get_ref() == hyflow::config::DetectorKind::Stuck)
            .expect("a stuck detector");
        stuck.features = vec![toml::Spanned::new(0..0, "std".to_string())];
        // The level detector gated (the pipeline's gate and relearn), so that the device runs
        // a learn policy too: its decisions must equal the CPU's.
        let level = c
            .detect
            .detector
            .iter_mut()
            .find(|d| d.name.as_deref() == Some("level"))
            .expect("a level detector");
        level.learn = Some(toml::Spanned::new(0..0, hyflow::config::LearnPolicy::Gated));
    })
}

/// Every output of two runs equal, row for row; numbers within rounding (the kernel sums in
/// another order than the reference).
pub fn same_outputs(want: &Path, got: &Path) {
    for sink in ["windows", "alerts", "rejects", "late"] {
        let file = |root: &Path| root.join(sink).join("part-00000.parquet");
        let (a, b) = (dump(&file(want)), dump(&file(got)));
        assert!(
            a.lines().count() > 1 || sink != "windows",
            "{sink} has rows"
        );
        assert_eq!(a.lines().count(), b.lines().count(), "{sink}: rows");
        for (n, (x, y)) in a.lines().zip(b.lines()).enumerate() {
            assert!(
                same_row(x, y),
                "{sink} row {n} differs:\n  want {x}\n  got  {y}"
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
