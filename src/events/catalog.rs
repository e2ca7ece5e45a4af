//! Every metric a run reports: its name, type, labels and meaning. `/metrics` takes the help
//! text from here, and docs/observability.md lists the same table (a test keeps them equal).

/// A metric's type, as OpenMetrics names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// A current value.
    Gauge,
    /// Observations in buckets of seconds.
    Histogram,
}

impl Kind {
    /// The OpenMetrics type name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric of the catalog.
#[derive(Clone, Copy, Debug)]
pub struct MetricInfo {
    /// Its name (counters end in `_total`).
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Its labels.
    pub labels: &'static [&'static str],
    /// What it counts or measures.
    pub help: &'static str,
}

const fn m(
    name: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricInfo {
    MetricInfo {
        name,
        kind,
        labels,
        help,
    }
}

use Kind::{Counter as C, Gauge as G, Histogram as H};

/// Every metric, in the order of the dataflow.
pub const CATALOG: &[MetricInfo] = &[
    m(
        "hyflow_rows_read_total",
        C,
        &[],
        "Input rows read (an undecodable Kafka message counts as one).",
    ),
    m(
        "hyflow_readings_accepted_total",
        C,
        &[],
        "Readings the sources handed to the windows (duplicates among them are rejected there).",
    ),
    m(
        "hyflow_rows_rejected_total",
        C,
        &["reason"],
        "Rows (or whole files) rejected, by reason.",
    ),
    m(
        "hyflow_rows_late_total",
        C,
        &[],
        "Rows that arrived after every window they belong to had closed.",
    ),
    m(
        "hyflow_rows_dropped_total",
        C,
        &[],
        "Rows dropped by the non-finite policy (`non-finite = \"drop\"`).",
    ),
    m(
        "hyflow_dead_letters_total",
        C,
        &["topic"],
        "Undecodable Kafka messages sent to the dead-letter topic.",
    ),
    m(
        "hyflow_partition_watermark_timestamp_seconds",
        G,
        &["topic", "partition"],
        "A Kafka partition's watermark (event time, seconds since the epoch); its age is the watermark lag.",
    ),
    m(
        "hyflow_consumer_lag",
        G,
        &["topic", "partition"],
        "Messages in a Kafka partition not read yet (the broker's high watermark as last fetched, minus the position).",
    ),
    m("hyflow_windows_closed_total", C, &[], "Windows computed."),
    m(
        "hyflow_windows_unregistered_total",
        C,
        &[],
        "Windows of sensors the registry does not hold, rejected (`unknown-sensors = \"reject\"`).",
    ),
    m(
        "hyflow_registry_changes_total",
        C,
        &[],
        "Registry changes a live run applied from the registry topic (`[registry] topic`).",
    ),
    m(
        "hyflow_registry_changes_late_total",
        C,
        &[],
        "Registry changes whose effective time had passed when they were read: applied from the windows not yet scored.",
    ),
    m(
        "hyflow_registry_changes_rejected_total",
        C,
        &[],
        "Registry topic messages that could not be read (each in the rejects output).",
    ),
    m(
        "hyflow_window_close_lag_seconds",
        H,
        &[],
        "Live runs: wall-clock time from the end of a batch of windows (windows that end together) to its scoring.",
    ),
    m(
        "hyflow_batches_routed_total",
        C,
        &["stage", "engine", "route"],
        "Routing decisions: batches sent to an engine, by why (probe: measuring its cost; cost: predicted soonest; dedicated: the configured device; cpu-only: no accelerator left).",
    ),
    m(
        "hyflow_batch_seconds",
        H,
        &["stage", "engine"],
        "Busy time of each batch an engine computed (stage: features or detect); its count is the batches, its sum the busy time.",
    ),
    m(
        "hyflow_batch_windows_total",
        C,
        &["stage", "engine"],
        "Windows in the batches an engine computed.",
    ),
    m(
        "hyflow_batches_spilled_total",
        C,
        &["engine"],
        "Feature batches an accelerator had no room for, computed on the CPU instead.",
    ),
    m(
        "hyflow_batch_failures_total",
        C,
        &["stage", "engine"],
        "Batches an engine failed (they are recomputed on the CPU).",
    ),
    m(
        "hyflow_devices_lost_total",
        C,
        &["stage", "engine"],
        "Engines taken out of a run (device lost, or 3 failures in a row).",
    ),
    m(
        "hyflow_cross_checks_total",
        C,
        &["stage", "engine"],
        "Accelerator batches compared with the CPU reference.",
    ),
    m(
        "hyflow_cross_check_mismatches_total",
        C,
        &["stage", "engine"],
        "Cross-checked batches that differed from the CPU beyond tolerance.",
    ),
    m(
        "hyflow_alert_events_total",
        C,
        &["state", "severity"],
        "Alert episode events (open, update, resolved).",
    ),
    m(
        "hyflow_rebaselines_total",
        C,
        &[],
        "Baselines restarted after a lasting shift (`learn = \"gated\"`).",
    ),
    m(
        "hyflow_sink_durable_total",
        C,
        &[],
        "Times the sinks made their outputs durable (files closed and renamed, producers flushed).",
    ),
    m(
        "hyflow_sink_durable_timestamp_seconds",
        G,
        &[],
        "When the outputs were last made durable (seconds since the epoch); its age says how much a crash would redo.",
    ),
    m(
        "hyflow_checkpoints_total",
        C,
        &[],
        "Checkpoints written (`[recovery]`): state, source positions and durable outputs at a cut.",
    ),
    m(
        "hyflow_checkpoint_cut_seconds",
        G,
        &[],
        "The cut of the last checkpoint written (event time, seconds since the epoch): a restarted run goes on from there.",
    ),
    m(
        "hyflow_checkpoint_bytes",
        G,
        &[],
        "The size of the last checkpoint file written.",
    ),
    m(
        "hyflow_checkpoint_write_seconds",
        H,
        &[],
        "Time each checkpoint file took to encode, write and flush, on a thread of its own while the run goes on (the sinks wait only for their outputs to be made durable: the `held` field of the `checkpoint written` log line).",
    ),
    m(
        "hyflow_offset_commits_total",
        C,
        &["topic", "partition"],
        "Offset commits sent for a Kafka partition.",
    ),
    m(
        "hyflow_committed_offset",
        G,
        &["topic", "partition"],
        "The last offset committed for a Kafka partition (the next to read).",
    ),
];

/// The catalog entry of a metric.
pub fn find(name: &str) -> Option<&'static MetricInfo> {
    CATALOG.iter().find(|m| m.name == name)
}

/// The catalog as a Markdown table (docs/observability.md holds it).
pub fn markdown_table() -> String {
    let mut s = String::from("| metric | type | labels | what it says |\n|---|---|---|---|\n");
    for m in CATALOG {
        let labels = m
            .labels
            .iter()
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", ");
        s.push_str(&format!(
            "| `{}` | {} | {labels} | {} |\n",
            m.name,
            m.kind.as_str(),
            m.help.replace('|', "\\|")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/observability.md lists exactly the catalog (`HYFLOW_BLESS=1` rewrites it).
    #[test]
    fn the_docs_list_every_metric() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/observability.md");
        let doc = std::fs::read_to_string(&path).expect("docs/observability.md");
        let (begin, end) = ("<!-- metrics:begin -->\n", "<!-- metrics:end -->");
        let a = doc.find(begin).expect("begin marker") + begin.len();
        let b = doc.find(end).expect("end marker");
        let want = markdown_table();
        if std::env::var_os("HYFLOW_BLESS").is_some() {
            let new = format!("{}{want}{}", &doc[..a], &doc[b..]);
            std::fs::write(&path, new).expect("write");
            return;
        }
        assert_eq!(
            &doc[a..b],
            want,
            "docs/observability.md is not the catalog (HYFLOW_BLESS=1 rewrites it)"
        );
    }

    #[test]
    fn every_metric_is_named_for_its_type() {
        for m in CATALOG {
            assert!(m.name.starts_with("hyflow_"), "{}", m.name);
            assert_eq!(
                m.kind == Kind::Counter,
                m.name.ends_with("_total"),
                "{}",
                m.name
            );
        }
    }
}
