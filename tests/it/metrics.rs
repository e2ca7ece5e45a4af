//! The Prometheus endpoint during a live run: scraped with a real HTTP client and parsed by
//! prometheus_client's OpenMetrics parser (tests/scrape_metrics.py), its counters equal the
//! run's summary, its per-partition gauges and offset commits are there, and `/health` is ok.

use crate::common;

use crate::common::kafka::*;
use hyflow::config::MessageFormat;
use hyflow::stages::sink::kafka::Producer;
use rdkafka::mocking::MockCluster;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn scrape(addr: std::net::SocketAddr) -> Value {
    let o = std::process::Command::new("python3")
        .arg(common::root().join("tests/scrape_metrics.py"))
        .arg(format!("http://{addr}"))
        .output()
        .expect("python3 runs (scripts/test.sh installs prometheus-client)");
    assert!(
        o.status.success(),
        "scrape failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("json")
}

/// The sum of a sample over its label sets (0 when absent).
fn total(v: &Value, sample: &str) -> f64 {
    v["metrics"][sample]
        .as_object()
        .map_or(0.0, |m| m.values().filter_map(Value::as_f64).sum())
}

#[test]
fn metrics_scraped_during_a_live_run_equal_its_summary() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = fixture(tmp.path());
    let c = MockCluster::new(1).expect("mock cluster");
    for (t, n) in [("readings", 2), ("alerts", 1), ("dlq", 1)] {
        c.create_topic(t, n, 1).expect("topic");
    }
    let brokers = c.bootstrap_servers();
    let sent = produce_fixture(&brokers, &input, MessageFormat::Json);
    let producer = Producer::new(&brokers, &BTreeMap::new()).expect("producer");
    for junk in [&b"{\"sensor_id\": \"d00"[..], b"\x89PNG"] {
        producer
            .send_to("readings", 0, Some("junk"), junk)
            .expect("send");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
    let text = live_pipeline(
        &brokers,
        "json",
        "dead-letter-topic = \"dlq\"\ncommit-interval = \"200ms\"\nidle-timeout = \"300ms\"",
    );
    let running = start_live(
        &text,
        tmp.path(),
        Some("127.0.0.1:0".parse().expect("addr")),
    );
    let addr = running.metrics_addr().expect("serving");
    // While it runs: every message read and the lag drained; then a reading a day later on
    // each partition closes the fixture's windows, so their offsets are committed.
    let wait_for = |read: u64, commits: bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = scrape(addr);
            let lags = v["metrics"]["hyflow_consumer_lag"]
                .as_object()
                .map(|m| m.len());
            let done = total(&v, "hyflow_rows_read_total") as u64 == read
                && lags == Some(2)
                && total(&v, "hyflow_consumer_lag") == 0.0
                && (!commits || total(&v, "hyflow_offset_commits_total") > 0.0);
            if done || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let first = wait_for(sent + 2, false);
    let last = first["metrics"]["hyflow_partition_watermark_timestamp_seconds"]
        .as_object()
        .and_then(|m| m.values().filter_map(Value::as_f64).reduce(f64::max))
        .expect("watermarks");
    let later = (last as i64 + 86_400) * 1000;
    for p in 0..2 {
        // A minute apart: a duplicate would be rejected only when its window closes, which
        // may be after the scrape, and the row counters would not be final.
        let ts = later + i64::from(p) * 60_000;
        let v = format!(r#"{{"sensor_id": "d00-speed", "ts": {ts}, "value": 50}}"#);
        producer
            .send_to("readings", p, Some("d00-speed"), v.as_bytes())
            .expect("send");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
    let during = wait_for(sent + 4, true);
    assert!(!running.is_done(), "the run is still going");
    assert_eq!(during["health"], serde_json::json!([200, "ok\n"]));
    let m = &during["metrics"];
    assert_eq!(
        total(&during, "hyflow_rows_read_total") as u64,
        sent + 4,
        "{m}"
    );
    assert_eq!(total(&during, "hyflow_consumer_lag"), 0.0, "{m}");
    assert!(total(&during, "hyflow_offset_commits_total") > 0.0, "{m}");
    assert_eq!(total(&during, "hyflow_dead_letters_total"), 2.0, "{m}");
    for p in ["partition=0,topic=readings", "partition=1,topic=readings"] {
        let age = m["hyflow_partition_watermark_age_seconds"][p].as_f64();
        assert!(age.is_some_and(|a| a > 0.0), "watermark lag of {p}: {m}");
    }
    assert!(
        m["hyflow_window_close_lag_seconds_count"][""].as_f64() > Some(0.0),
        "{m}"
    );
    assert!(total(&during, "hyflow_batch_seconds_count") > 0.0, "{m}");
    running.request_stop();
    let s = running.wait().expect("run");
    // Nothing more was read after the scrape: the row counters are final and equal the
    // summary's; windows and alerts may grow as the stop closes the last windows.
    assert_eq!(s.rows_in, total(&during, "hyflow_rows_read_total") as u64);
    assert_eq!(
        s.accepted,
        total(&during, "hyflow_readings_accepted_total") as u64
    );
    assert_eq!(
        s.rejected,
        total(&during, "hyflow_rows_rejected_total") as u64
    );
    assert_eq!(s.late, total(&during, "hyflow_rows_late_total") as u64);
    // By reason too.
    for (kind, n) in &s.rejected_by {
        let label = format!("reason={}", kind.code());
        assert_eq!(
            m["hyflow_rows_rejected_total"][&label].as_f64(),
            Some(*n as f64),
            "{m}"
        );
    }
    assert_eq!(
        m["hyflow_rows_rejected_total"]["reason=undecodable"].as_f64(),
        Some(2.0),
        "{m}"
    );
    let windows = total(&during, "hyflow_windows_closed_total") as u64;
    assert!(
        windows > 0 && windows <= s.windows,
        "{windows} vs {}",
        s.windows
    );
    let alerts = total(&during, "hyflow_alert_events_total") as u64;
    assert!(alerts <= s.alert_events, "{alerts} vs {}", s.alert_events);
}
