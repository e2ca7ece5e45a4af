//! `hyflow explain`: the dataflow a plan builds, stage by stage, with exchanges and devices.
//! It reads the validated [`Plan`] alone (the same values `dataflow::start` builds the graph
//! from), and names settings as a pipeline file writes them.

use crate::plan::{Feed, FileKind, Plan, SinkTarget};
use std::fmt::Write as _;

/// A setting's name in a pipeline file (the schema's kebab-case words).
fn word<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "?".into(),
    }
}

fn dur(ms: i64) -> crate::config::Duration {
    crate::config::Duration::from_ms(ms)
}

/// Describes the dataflow of `p` for `workers` workers.
pub fn explain(p: &Plan, workers: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "pipeline {:?} ({}), {workers} worker(s)",
        p.name,
        p.file.display()
    );
    let src = &p.source;
    match &src.feed {
        Feed::Files { pattern, kind } => {
            let files = crate::stages::source::expand(pattern).map_or(0, |f| f.len());
            let kind = match kind {
                FileKind::Parquet if src.split_row_groups => "parquet (a partition per row group)",
                FileKind::Parquet => "parquet",
                FileKind::Csv => "csv",
            };
            let _ = writeln!(
                s,
                "  1. source    [cpu] {kind} {pattern:?} ({files} file(s) now); partitions (by first event time) dealt to workers in turn"
            );
        }
        Feed::Kafka(k) => {
            let _ = writeln!(
                s,
                "  1. source    [cpu] kafka topics {:?} at {} ({} messages); partitions dealt to workers in turn",
                k.topics.get_ref(),
                k.brokers.get_ref(),
                word(&k.format)
            );
        }
    }
    let cols = &src.columns;
    let _ = writeln!(
        s,
        "               columns: sensor={} time={} value={}{}; time unit {}, zone {}",
        cols.sensor,
        cols.time,
        cols.value,
        cols.quality
            .as_ref()
            .map(|q| format!(" quality={q}"))
            .unwrap_or_default(),
        word(&src.time_unit),
        src.time_zone
    );
    let non_finite = match p.non_finite {
        crate::stages::clean::NonFinitePolicy::Reject => "reject",
        crate::stages::clean::NonFinitePolicy::Drop => "drop",
    };
    let _ = writeln!(
        s,
        "     clean     [cpu] non-finite: {non_finite}; {} sensor class(es) (range, scaling); bad quality rejected: {}{}",
        p.classes.len(),
        p.clean.reject_bad_quality,
        if p.clean.known_sensors_only {
            "; unknown sensors rejected"
        } else {
            ""
        }
    );
    let ooo = src.max_out_of_orderness.ms;
    let _ = writeln!(
        s,
        "     watermark per partition: max event time - {} out-of-orderness - {} allowed lateness",
        dur(ooo),
        dur(p.watermark_delay - ooo)
    );
    let _ = writeln!(
        s,
        "               side outputs: rejects, late  ──exchange──▶ worker 0 (sinks)"
    );
    match &src.asset_delimiter {
        Some(d) => {
            let _ = writeln!(
                s,
                "  2. exchange  readings by hash(asset: sensor id up to the last {d:?}) % {workers}"
            );
        }
        None => {
            let _ = writeln!(s, "  2. exchange  readings by hash(sensor id) % {workers}");
        }
    }
    let w = p.window;
    let kind = if w.slide == w.size {
        format!("tumbling {}", dur(w.size))
    } else {
        format!("sliding {} every {}", dur(w.size), dur(w.slide))
    };
    let fill = match p.fill.method {
        crate::stages::window::FillMethod::None => "no gap filling".to_string(),
        m => format!(
            "gap filling {} every {} up to {}",
            match m {
                crate::stages::window::FillMethod::Hold => "hold",
                _ => "linear",
            },
            dur(p.fill.interval_ms),
            dur(p.fill.max_gap_ms)
        ),
    };
    let _ = writeln!(
        s,
        "  3. window    [cpu] {kind}, epoch-aligned; dedup: {}; {fill}; a window closes when the frontier passes its end",
        p.clean.dedup
    );
    if p.clean.dedup {
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
        p.compute.max_batch_windows
    );
    if p.device != crate::plan::Device::Cpu {
        let _ = writeln!(
            s,
            "               on a GPU: a warp per window when a batch averages at most {} values per window, else a block; {} of its batches cross-checked on the CPU",
            crate::compute::WARP_MAX_VALUES,
            p.compute.cross_check
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
        .filter(|d| crate::stages::detect::cell::on_cells(d).is_some())
        .map(|d| d.name.as_str())
        .collect();
    let rules: Vec<String> = p
        .rules
        .iter()
        .map(|r| format!("{} ({})", r.name, r.severity.as_str()))
        .collect();
    if let Some(r) = &p.registry {
        let _ = writeln!(
            s,
            "     registry  [cpu] {} sensor row(s), {} edge(s), {} change(s); each window reads its sensor's row as of its end (differential arrangement, exchanged as windows are); unknown sensors: {}; attributes: {}",
            r.counts.0,
            r.counts.1,
            r.counts.2,
            match r.unknown {
                crate::stages::registry::Unknown::Accept => "accept",
                crate::stages::registry::Unknown::Reject => "reject",
            },
            if r.schema.names.is_empty() {
                "none".to_string()
            } else {
                r.schema.names.join(", ")
            }
        );
        if let Some(t) = &r.topic {
            let live = matches!(p.source.feed, crate::plan::Feed::Kafka(_));
            let _ = writeln!(
                s,
                "               live: topic {t:?} {}{}",
                if live {
                    "read from its beginning (the change log is not read); windows wait for what it held at start, then changes count from their effective time or the windows not yet scored"
                } else {
                    "is read by live runs only: this replay reads the change log"
                },
                match &r.record {
                    Some(path) if live =>
                        format!("; changes applied recorded to {}", path.display()),
                    _ => String::new(),
                }
            );
        }
    }
    let _ = writeln!(
        s,
        "  5. score     [cpu] detectors: {}; warm-up {} windows",
        if dets.is_empty() {
            "none".into()
        } else {
            dets.join("; ")
        },
        p.warmup
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
    let f = &p.fuse;
    let _ = writeln!(
        s,
        "               fuse: {} calibration; min(1, {} * ai + {} * rules){}; alert above {}; episodes open after {} window(s), resolve after {} at or below {}",
        f.calibration.as_str(),
        f.ai_weight,
        f.rules_weight,
        if f.refractory > 0 {
            format!(", halved unless a new high in {} windows", f.refractory)
        } else {
            String::new()
        },
        f.open,
        f.min_windows,
        f.quiet_windows,
        f.close
    );
    if p.sinks
        .iter()
        .any(|k| k.output == crate::config::OutputKind::Incidents)
    {
        let _ = writeln!(
            s,
            "     incidents [cpu] open episodes of sensors connected through the registry's edges (a sensor stands for its asset), components by label propagation (differential); events on worker 0"
        );
    }
    let _ = writeln!(s, "  6. exchange  all output rows ──▶ worker 0");
    let _ = writeln!(
        s,
        "  7. sinks     [cpu] rows ordered canonically once their time is complete:"
    );
    for k in &p.sinks {
        let target = match &k.target {
            SinkTarget::Parquet(t) => format!(
                "parquet {} ({}, partition {}, a file per {} rows{})",
                t.dir.display(),
                word(&t.compression),
                word(&t.partition),
                t.roll_rows,
                t.roll_ms
                    .map(|ms| format!(" or {}", dur(ms)))
                    .unwrap_or_default()
            ),
            SinkTarget::ArrowIpc { path, format } => {
                format!("arrow-ipc {} ({})", path.display(), word(format))
            }
            SinkTarget::Kafka { topic, brokers, .. } => format!("kafka topic {topic} at {brokers}"),
        };
        let _ = writeln!(
            s,
            "               {:<10} {} → {target}",
            k.name,
            word(&k.output)
        );
    }
    let _ = writeln!(s, "  8. checkpoints {}", checkpoints(p));
    s
}

/// What checkpoints a run of `p` takes (docs/recovery.md).
fn checkpoints(p: &Plan) -> String {
    let every = |r: &crate::plan::RecoveryPlan| {
        format!(
            "every {} into {}, the newest {} kept",
            dur(r.every_ms),
            r.dir.display(),
            r.keep
        )
    };
    let live = matches!(p.source.feed, Feed::Kafka(_));
    if p.checkpoints_off {
        return "none ([recovery] enabled = false)".into();
    }
    if let Some(what) = super::checkpoints_unsupported(p, false) {
        let then = if live && p.recovery.is_none() {
            "`hyflow run` runs without them and says so"
        } else {
            "a run asking for them is refused"
        };
        return format!("none: not implemented yet for {what}; {then}");
    }
    match &p.recovery {
        Some(r) => format!(
            "{} (`--resume` goes on from the newest; `hyflow run` on start)",
            every(r)
        ),
        None if live => format!(
            "{} (the default of `hyflow run`; not with --until-end)",
            every(&p.default_recovery())
        ),
        None => "none (a replay takes them with a [recovery] section)".into(),
    }
}

/// The settings of a detector that change what it does, as `explain` shows them.
fn options(d: &crate::stages::detect::DetectorSpec) -> String {
    use crate::stages::detect::DetectorKind as K;
    use crate::stages::detect::Learn;
    let mut o = String::new();
    let learns = crate::stages::detect::DetectorSpec::learns(d.kind);
    let plain = matches!(d.learn, Learn::Reference { .. })
        && matches!(d.kind, K::Mahalanobis | K::AssetMahalanobis);
    if learns && !plain {
        o += &format!(" alpha {}", d.alpha);
    }
    if matches!(d.kind, K::Mahalanobis | K::AssetMahalanobis) {
        o += match d.statistic {
            crate::stages::detect::Statistic::T2 => " statistic t2",
            crate::stages::detect::Statistic::Spe => " statistic spe",
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
