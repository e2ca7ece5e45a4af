//! Incidents under load (issue #15): 10 k open episodes on a topology of 100 k edges
//! (50 k sensors in a chain plus random edges), then episodes opening and resolving one at a
//! time: the time from one episode's alert event entering the dataflow to its incident
//! events being complete (p50, p99, max), and the process's peak resident memory.
//! `cargo bench --bench incidents` (one worker; figures in docs/performance.md).

use hyflow::output::{AlertRow, AlertState, OutRecord};
use hyflow::plan::RegistryPlan;
use hyflow::stages::registry::{Change, Defaults, EdgeInfo, Key, Schema, Unknown, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::{Input, Inspect, Probe};

/// The sizes of a measurement (`cargo bench` passes `--bench`); `cargo test` runs the same
/// code at a tenth of the size as a smoke test, whose figures mean nothing.
fn sizes() -> (u64, usize, usize, i64) {
    if std::env::args().any(|a| a == "--bench") {
        (50_000, 100_000, 10_000, 2_000)
    } else {
        (5_000, 10_000, 1_000, 200)
    }
}

struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn name(i: u64) -> String {
    format!("s{i:05}")
}

fn alert(sensor: u64, opened_at: i64, state: AlertState, t: i64) -> OutRecord {
    OutRecord::Alert(AlertRow {
        sensor: name(sensor),
        episode: 1,
        state,
        window_start: t - 10,
        window_end: t,
        opened_at,
        fused: 0.9,
        peak: 0.9,
        score: 5.0,
        ai_score: 0.9,
        rule_score: 0.0,
        rules: String::new(),
        severity: "critical".into(),
        top_features: String::new(),
    })
}

fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() {
    let (sensors, edges_wanted, open_wanted, rounds) = sizes();
    let mut rng = Lcg(7);
    let mut edges = HashSet::new();
    for i in 0..sensors - 1 {
        edges.insert((i, i + 1));
    }
    while edges.len() < edges_wanted {
        let (a, b) = (rng.below(sensors), rng.below(sensors));
        if a != b {
            edges.insert((a, b));
        }
    }
    let mut edges: Vec<(u64, u64)> = edges.into_iter().collect();
    edges.sort_unstable();
    let changes: Vec<Change> = edges
        .iter()
        .map(|&(a, b)| Change {
            time: i64::MIN,
            key: Key::Edge(name(a), name(b)),
            value: Some(Value::Edge(EdgeInfo {
                kind: "road".into(),
                directed: true,
                travel_ms: 0,
            })),
        })
        .collect();
    let plan = RegistryPlan {
        schema: Schema::default(),
        defaults: Defaults::default(),
        unknown: Unknown::Accept,
        changes: Arc::new(changes),
        counts: (0, edges_wanted, 0),
        topic: None,
        record: None,
        incident_grace_ms: 0,
    };
    let plan = Arc::new(plan);
    let events = Arc::new(AtomicU64::new(0));
    let seen = events.clone();
    timely::execute_directly(move |worker| {
        let probe = ProbeHandle::new();
        let mut input = worker.dataflow::<i64, _, _>(|scope| {
            let (input, alerts) = scope.new_input::<Vec<OutRecord>>();
            let shared = Arc::new(hyflow::dataflow::Shared::default());
            let reg = hyflow::dataflow::registry::registry(
                scope,
                plan.clone(),
                None,
                hyflow::dataflow::registry_changes::WindowsFrontier::new(),
                None,
                shared.clone(),
            );
            hyflow::dataflow::incidents::incidents(&alerts, &reg, 0, 0, shared, None)
                .inspect(move |_| {
                    seen.fetch_add(1, Ordering::Relaxed);
                })
                .probe_with(&probe);
            input
        });
        // Load: the topology and 10 k open episodes at time 1.
        let start = Instant::now();
        let mut open: Vec<(u64, i64)> = Vec::new();
        let mut is_open = HashSet::new();
        input.advance_to(1);
        while open.len() < open_wanted {
            let s = rng.below(sensors);
            if is_open.insert(s) {
                input.send(alert(s, 1, AlertState::Open, 1));
                open.push((s, 1));
            }
        }
        input.advance_to(2);
        while probe.less_than(&2) {
            worker.step();
        }
        let load = start.elapsed();
        let loaded_events = events.load(Ordering::Relaxed);
        // One change per time: alternately an episode resolves and a new one opens.
        let mut lat = Vec::new();
        for r in 0..rounds {
            let t = 2 + r;
            if r % 2 == 0 {
                let k = rng.below(open.len() as u64) as usize;
                let (s, at) = open.swap_remove(k);
                is_open.remove(&s);
                input.send(alert(s, at, AlertState::Resolved, t));
            } else {
                let s = loop {
                    let s = rng.below(sensors);
                    if !is_open.contains(&s) {
                        break s;
                    }
                };
                is_open.insert(s);
                open.push((s, t));
                input.send(alert(s, t, AlertState::Open, t));
            }
            let start = Instant::now();
            input.advance_to(t + 1);
            while probe.less_than(&(t + 1)) {
                worker.step();
            }
            lat.push(start.elapsed());
        }
        lat.sort_unstable();
        let q = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "incidents: {sensors} sensors, {edges_wanted} edges, {open_wanted} open episodes: loaded in {:.2} s ({loaded_events} incident events)",
            load.as_secs_f64()
        );
        println!(
            "  one episode opening or resolving, {rounds} times: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} incident events)",
            ms(q(0.5)),
            ms(q(0.99)),
            ms(lat[lat.len() - 1]),
            events.load(Ordering::Relaxed) - loaded_events
        );
        if let Some(m) = peak_rss_mib() {
            println!("  peak resident memory {m:.0} MiB");
        }
    });
}
