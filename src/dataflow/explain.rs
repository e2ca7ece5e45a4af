//! `hyflow explain`: the dataflow a pipeline builds, stage by stage, with exchanges and devices.

use crate::config::{FillMethod, WindowKind};
use crate::plan::Plan;
use std::fmt::Write as _;

/// Describes the dataflow of `p` for `workers` workers.
pub fn explain(p: &Plan, workers: usize) -> String {
    let c = &p.config;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "pipeline {:?} ({}), {workers} worker(s)",
        c.name,
        p.file.display()
    );
    let files = crate::source::expand(c.source.path.get_ref())
        .map(|f| f.len())
        .unwrap_or(0);
    let cols = &c.source.columns;
    let _ = writeln!(
        s,
        "  1. source    [cpu] {:?} {:?} ({files} file(s) now); partitions (files, by first event time) dealt to workers in turn",
        c.source.kind,
        c.source.path.get_ref()
    );
    let _ = writeln!(
        s,
        "               columns: sensor={} time={} value={}{}; time unit {:?}, zone {}",
        cols.sensor,
        cols.time,
        cols.value,
        cols.quality
            .as_ref()
            .map(|q| format!(" quality={q}"))
            .unwrap_or_default(),
        c.source.time_unit,
        c.source.time_zone.get_ref()
    );
    let _ = writeln!(
        s,
        "     clean     [cpu] non-finite: {:?}; {} sensor class(es) (range, scaling); bad quality rejected: {}",
        c.clean.non_finite,
        c.clean.class.len(),
        c.clean.reject_bad_quality
    );
    let _ = writeln!(
        s,
        "     watermark per file: max event time - {} out-of-orderness - {} allowed lateness",
        c.source.max_out_of_orderness, c.window.allowed_lateness
    );
    let _ = writeln!(
        s,
        "               side outputs: rejects, late  ──exchange──▶ worker 0 (sinks)"
    );
    match &c.detect.asset_delimiter {
        Some(d) => {
            let _ = writeln!(
                s,
                "  2. exchange  readings by hash(asset: sensor id up to the last {:?}) % {workers}",
                d.get_ref()
            );
        }
        None => {
            let _ = writeln!(s, "  2. exchange  readings by hash(sensor id) % {workers}");
        }
    }
    let kind = match c.window.kind {
        WindowKind::Tumbling => format!("tumbling {}", c.window.size.get_ref()),
        WindowKind::Sliding => format!(
            "sliding {} every {}",
            c.window.size.get_ref(),
            crate::config::Duration::from_ms(p.window.slide)
        ),
    };
    let fill = match c.clean.fill.method {
        FillMethod::None => "no gap filling".to_string(),
        m => format!(
            "gap filling {m:?} every {} up to {}",
            c.clean.fill.interval, c.clean.fill.max_gap
        ),
    };
    let _ = writeln!(
        s,
        "  3. window    [cpu] {kind}, epoch-aligned; dedup: {}; {fill}; a window closes when the frontier passes its end",
        c.clean.dedup
    );
    if c.clean.dedup {
        let _ = writeln!(
            s,
            "               side output: duplicate rejects  ──exchange──▶ worker 0 (sinks)"
        );
    }
    let _ = writeln!(
        s,
        "  4. features  [{}] {} (batches of at most {} windows)",
        p.device,
        p.features.names.join(", "),
        c.compute.max_batch_windows
    );
    if p.device != crate::plan::Device::Cpu {
        let _ = writeln!(
            s,
            "               on a GPU: a warp per window when a batch averages at most {} values per window, else a block",
            crate::compute::WARP_MAX_VALUES
        );
    }
    let dets: Vec<String> = p
        .detectors
        .iter()
        .map(|d| {
            format!(
                "{} = {}({}){}",
                d.name,
                d.kind.as_str(),
                d.features
                    .iter()
                    .map(|&i| p.features.names[i].as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                options(d)
            )
        })
        .collect();
    let on_device: Vec<&str> = p
        .detectors
        .iter()
        .filter(|d| crate::detect::cell::on_cells(d).is_some())
        .map(|d| d.name.as_str())
        .collect();
    let rules: Vec<String> = p
        .rules
        .iter()
        .map(|r| format!("{} ({})", r.name, r.severity.as_str()))
        .collect();
    let _ = writeln!(
        s,
        "  5. score     [cpu] detectors: {}; warm-up {} windows",
        if dets.is_empty() {
            "none".into()
        } else {
            dets.join("; ")
        },
        c.detect.warmup
    );
    if p.device != crate::plan::Device::Cpu && !on_device.is_empty() {
        let rest = if on_device.len() < p.detectors.len() {
            "; the other detectors on the CPU"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "               on a GPU: {} (cuda/score.cu, state kept on the device, mirrored here){rest}",
            on_device.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "               rules: {}",
        if rules.is_empty() {
            "none".into()
        } else {
            rules.join(", ")
        }
    );
    let _ = writeln!(
        s,
        "               fuse: {:?} calibration; min(1, {} * ai + {} * rules){}; alert above {}; episodes open after {} window(s), resolve after {} at or below {}",
        c.fuse.calibration,
        c.fuse.ai_weight.get_ref(),
        c.fuse.rules_weight.get_ref(),
        if c.fuse.refractory > 0 {
            format!(
                ", halved unless a new high in {} windows",
                c.fuse.refractory
            )
        } else {
            String::new()
        },
        c.fuse.open.get_ref(),
        c.fuse.min_windows,
        c.fuse.quiet_windows,
        c.fuse.close.get_ref()
    );
    let _ = writeln!(s, "  6. exchange  all output rows ──▶ worker 0");
    let _ = writeln!(
        s,
        "  7. sinks     [cpu] rows ordered canonically once their time is complete:"
    );
    for k in &c.sink {
        let _ = writeln!(
            s,
            "               {:<10} {:?} → {:?} {} ({:?}, partition {:?})",
            k.name, k.output, k.kind, k.path, k.compression, k.partition
        );
    }
    s
}

/// The settings of a detector that change what it does, as `explain` shows them.
fn options(d: &crate::detect::DetectorSpec) -> String {
    use crate::detect::DetectorKind as K;
    use crate::detect::Learn;
    let mut o = String::new();
    let learns = crate::detect::DetectorSpec::learns(d.kind);
    let plain = matches!(d.learn, Learn::Reference { .. })
        && matches!(d.kind, K::Mahalanobis | K::AssetMahalanobis);
    if learns && !plain {
        o += &format!(" alpha {}", d.alpha);
    }
    if matches!(d.kind, K::Mahalanobis | K::AssetMahalanobis) {
        o += match d.statistic {
            crate::detect::Statistic::T2 => " statistic t2",
            crate::detect::Statistic::Spe => " statistic spe",
        };
    }
    if d.kind == K::Context {
        let c = d.context;
        o += &format!(
            " range from {} windows, margin {}, rest {}",
            c.range_windows, c.range_margin, c.rest
        );
    }
    if learns {
        o += &match d.learn {
            Learn::Always => String::new(),
            Learn::Gated { gate, relearn } => {
                format!(", learn gated (gate {gate}, relearn {relearn})")
            }
            Learn::Reference { windows } => {
                format!(", learn reference ({windows} windows, then frozen)")
            }
        };
    }
    o
}
