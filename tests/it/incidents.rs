//! Incidents: sensors with open alert episodes, connected through the registry's topology,
//! are one incident that grows, splits and resolves as the episodes do, with a stable id.

use crate::common::pipeline::Pipeline;
use crate::common::{dump, write_readings};
use std::path::Path;

const T0: i64 = 1_709_510_400_000;
const MIN: i64 = 60_000;

/// Speed detectors d01 → d02 → d03 along a road (directed edges, downstream), and d09
/// elsewhere: 50 km/h, or 10 while jammed (minutes `from..to` after T0).
fn road(dir: &Path) -> (String, String, std::path::PathBuf) {
    road_with(dir, "2m")
}

/// [`road`], the edges with travel time `travel`.
fn road_with(dir: &Path, travel: &str) -> (String, String, std::path::PathBuf) {
    let jams: &[(&str, i64, i64)] = &[
        ("d03-speed", 2, 8),
        ("d02-speed", 3, 5),
        ("d01-speed", 4, 8),
        ("d09-speed", 3, 4),
    ];
    let mut rows = Vec::new();
    for k in 0..600 {
        let t = T0 + k * 1000;
        for (s, from, to) in jams {
            let jammed = t >= T0 + from * MIN && t < T0 + to * MIN;
            rows.push((Some(*s), Some(t), Some(if jammed { 10.0 } else { 50.0 })));
        }
    }
    let input = dir.join("road.parquet");
    write_readings(&input, &rows);
    let sensors = dir.join("sensors.csv");
    std::fs::write(
        &sensors,
        "sensor,asset,segment\nd01-speed,d01,a1\nd02-speed,d02,a1\nd03-speed,d03,a1\nd09-speed,d09,b7\n",
    )
    .unwrap();
    let edges = dir.join("edges.csv");
    std::fs::write(
        &edges,
        format!("from,to,kind,travel-time\nd01,d02,road,{travel}\nd02,d03,road,{travel}\n"),
    )
    .unwrap();
    (
        sensors.display().to_string(),
        edges.display().to_string(),
        input,
    )
}

fn pipeline(dir: &Path) -> String {
    let (sensors, edges, input) = road(dir);
    Pipeline::parquet("road", &input)
        .with(&format!("[registry]\nsensors = {sensors:?}\nedges = {edges:?}"))
        .with("[[rules]]\nname = \"jam\"\nwhen = \"mean < 20\"\nseverity = \"critical\"")
        .with("[fuse]\nai-weight = 0.0\nrules-weight = 1.0\nopen = 0.5\nclose = 0.3\nquiet-windows = 1")
        .sinks(&["alerts", "incidents"])
        .sink_with("incidents-kafka-shape", "incidents", "kind = \"arrow-ipc\"\nformat = \"stream\"")
        .text()
}

/// (time in minutes and seconds after T0, incident, state, members, related, upstream).
type Event = (String, String, String, String, String, String);

fn events(out: &Path) -> Vec<Event> {
    let csv = dump(&out.join("incidents"));
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).expect(n);
    let cols = [
        col("time"),
        col("incident_id"),
        col("state"),
        col("members"),
        col("related"),
        col("upstream"),
    ];
    lines
        .map(|l| {
            // Members hold commas: they are quoted.
            let f = split_csv(l);
            let t: i64 = f[cols[0]].parse().expect("time");
            let at = format!("{}:{:02}", (t - T0) / MIN, (t - T0) % MIN / 1000);
            (
                at,
                f[cols[1]].clone(),
                f[cols[2]].clone(),
                f[cols[3]].clone(),
                f[cols[4]].clone(),
                f[cols[5]].clone(),
            )
        })
        .collect()
}

fn split_csv(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().expect("field").push(c),
        }
    }
    out
}

fn e(at: &str, id: &str, state: &str, members: &str, related: &str, up: &str) -> Event {
    (
        at.into(),
        id.into(),
        state.into(),
        members.into(),
        related.into(),
        up.into(),
    )
}

#[test]
fn a_jam_spreading_along_a_road_is_one_incident_that_grows_splits_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let toml = pipeline(dir.path());
    let mut first = None;
    for workers in [1, 2] {
        let out = dir.path().join(format!("out{workers}"));
        let s = crate::common::replay_text(&toml, workers, &out).unwrap_or_else(|e| panic!("{e}"));
        s.check_accounting().expect("accounting");
        let got = events(&out);
        let want = vec![
            // The jam starts at d03: an incident under its episode's id.
            e("2:10", "d03-speed#1", "open", "d03-speed", "", ""),
            // It spreads upstream to d02; d09, elsewhere, is an incident of its own.
            e(
                "3:10",
                "d03-speed#1",
                "update",
                "d02-speed,d03-speed",
                "",
                "d02-speed",
            ),
            e("3:10", "d09-speed#1", "open", "d09-speed", "", ""),
            // d01 joins: the most upstream member is d01, the root-cause candidate stays d03.
            e(
                "4:10",
                "d03-speed#1",
                "update",
                "d01-speed,d02-speed,d03-speed",
                "",
                "d01-speed",
            ),
            e("4:10", "d09-speed#1", "resolved", "d09-speed", "", ""),
            // d02 clears: d01 is no longer connected to d03, and splits off under its own id.
            e(
                "5:10",
                "d01-speed#1",
                "open",
                "d01-speed",
                "d03-speed#1",
                "",
            ),
            e("5:10", "d03-speed#1", "update", "d03-speed", "", ""),
            e("8:10", "d01-speed#1", "resolved", "d01-speed", "", ""),
            e("8:10", "d03-speed#1", "resolved", "d03-speed", "", ""),
        ];
        assert_eq!(got, want, "{workers} workers");
        // The same rows in the Arrow IPC stream (what a Kafka sink writes, as JSON).
        let ipc = dump(&out.join("incidents-kafka-shape.arrows"));
        assert_eq!(ipc, dump(&out.join("incidents")));
        match &first {
            None => first = Some(got),
            Some(f) => assert_eq!(f, &got),
        }
    }
}

#[test]
fn two_jams_that_meet_merge_into_the_older_incident() {
    merge_test("2m");
}

#[test]
fn jams_further_apart_than_the_travel_time_are_incidents_of_their_own() {
    merge_test("30s");
}

fn merge_test(travel: &str) {
    let dir = tempfile::tempdir().unwrap();
    // d01 and d03 jam apart first; d02 between them joins both.
    let mut rows = Vec::new();
    let jams: &[(&str, i64, i64)] = &[
        ("d01-speed", 1, 6),
        ("d03-speed", 2, 6),
        ("d02-speed", 3, 6),
    ];
    for k in 0..480 {
        let t = T0 + k * 1000;
        for (s, from, to) in jams {
            let jammed = t >= T0 + from * MIN && t < T0 + to * MIN;
            rows.push((Some(*s), Some(t), Some(if jammed { 10.0 } else { 50.0 })));
        }
    }
    let (sensors, edges, _) = road_with(dir.path(), travel);
    let input = dir.path().join("merge.parquet");
    write_readings(&input, &rows);
    let toml = Pipeline::parquet("road", &input)
        .with(&format!("[registry]\nsensors = {sensors:?}\nedges = {edges:?}"))
        .with("[[rules]]\nname = \"jam\"\nwhen = \"mean < 20\"\nseverity = \"critical\"")
        .with("[fuse]\nai-weight = 0.0\nrules-weight = 1.0\nopen = 0.5\nclose = 0.3\nquiet-windows = 1")
        .sink("incidents")
        .text();
    let out = dir.path().join("out");
    crate::common::replay_text(&toml, 2, &out).unwrap_or_else(|e| panic!("{e}"));
    let got = events(&out);
    if travel == "30s" {
        // d02 opens a minute after d03 and two after d01: more than 30 s plus a window.
        assert_eq!(
            got,
            vec![
                e("1:10", "d01-speed#1", "open", "d01-speed", "", ""),
                e("2:10", "d03-speed#1", "open", "d03-speed", "", ""),
                e("3:10", "d02-speed#1", "open", "d02-speed", "", ""),
                e("6:10", "d01-speed#1", "resolved", "d01-speed", "", ""),
                e("6:10", "d02-speed#1", "resolved", "d02-speed", "", ""),
                e("6:10", "d03-speed#1", "resolved", "d03-speed", "", ""),
            ]
        );
        return;
    }
    assert_eq!(
        got,
        vec![
            e("1:10", "d01-speed#1", "open", "d01-speed", "", ""),
            e("2:10", "d03-speed#1", "open", "d03-speed", "", ""),
            e(
                "3:10",
                "d01-speed#1",
                "update",
                "d01-speed,d02-speed,d03-speed",
                "",
                "d01-speed"
            ),
            e(
                "3:10",
                "d03-speed#1",
                "merged-into",
                "d03-speed",
                "d01-speed#1",
                ""
            ),
            e(
                "6:10",
                "d01-speed#1",
                "resolved",
                "d01-speed,d02-speed,d03-speed",
                "",
                "d01-speed"
            ),
        ]
    );
}

#[test]
fn with_a_grace_period_a_member_stays_after_its_episode_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let toml =
        pipeline(dir.path()).replace("[registry]\n", "[registry]\nincident-grace = \"90s\"\n");
    assert!(toml.contains("incident-grace"));
    let out = dir.path().join("out");
    crate::common::replay_text(&toml, 2, &out).unwrap_or_else(|e| panic!("{e}"));
    // As without a grace (above), each leave 90 s later: d09 resolves at 5:40, d02's
    // leaving splits d01 off at 6:40, and the rest resolves at 9:40.
    let want = vec![
        e("2:10", "d03-speed#1", "open", "d03-speed", "", ""),
        e(
            "3:10",
            "d03-speed#1",
            "update",
            "d02-speed,d03-speed",
            "",
            "d02-speed",
        ),
        e("3:10", "d09-speed#1", "open", "d09-speed", "", ""),
        e(
            "4:10",
            "d03-speed#1",
            "update",
            "d01-speed,d02-speed,d03-speed",
            "",
            "d01-speed",
        ),
        e("5:40", "d09-speed#1", "resolved", "d09-speed", "", ""),
        e(
            "6:40",
            "d01-speed#1",
            "open",
            "d01-speed",
            "d03-speed#1",
            "",
        ),
        e("6:40", "d03-speed#1", "update", "d03-speed", "", ""),
        e("9:40", "d01-speed#1", "resolved", "d01-speed", "", ""),
        e("9:40", "d03-speed#1", "resolved", "d03-speed", "", ""),
    ];
    assert_eq!(events(&out), want);
}

#[test]
fn a_grace_period_keeps_an_incident_whole_while_an_episode_breaks_up() {
    let dir = tempfile::tempdir().unwrap();
    // d03's jam breaks for 30 s (its episode resolves and a second one opens); d02's lasts.
    let mut rows = Vec::new();
    let jams: &[(&str, i64, i64)] = &[
        ("d03-speed", 2 * MIN, 4 * MIN),
        ("d03-speed", 4 * MIN + 30_000, 7 * MIN),
        ("d02-speed", 3 * MIN, 7 * MIN),
    ];
    for k in 0..600 {
        let t = T0 + k * 1000;
        for s in ["d02-speed", "d03-speed"] {
            let jammed = jams
                .iter()
                .any(|(j, from, to)| *j == s && t >= T0 + from && t < T0 + to);
            rows.push((Some(s), Some(t), Some(if jammed { 10.0 } else { 50.0 })));
        }
    }
    let (sensors, edges, _) = road_with(dir.path(), "2m");
    let input = dir.path().join("break.parquet");
    write_readings(&input, &rows);
    let run = |grace: &str| {
        let toml = Pipeline::parquet("road", &input)
            .with(&format!(
                "[registry]\nsensors = {sensors:?}\nedges = {edges:?}\nincident-grace = {grace:?}"
            ))
            .with("[[rules]]\nname = \"jam\"\nwhen = \"mean < 20\"\nseverity = \"critical\"")
            .with("[fuse]\nai-weight = 0.0\nrules-weight = 1.0\nopen = 0.5\nclose = 0.3\nquiet-windows = 1")
            .sink("incidents")
            .text();
        let out = dir.path().join(format!("out-{grace}"));
        crate::common::replay_text(&toml, 2, &out).unwrap_or_else(|e| panic!("{e}"));
        events(&out)
    };
    let joined = |at: &str, state: &str| {
        e(
            at,
            "d03-speed#1",
            state,
            "d02-speed,d03-speed",
            "",
            "d02-speed",
        )
    };
    // Without a grace, d03 leaves while its jam breaks and comes back with its second episode.
    assert_eq!(
        run("0s"),
        vec![
            e("2:10", "d03-speed#1", "open", "d03-speed", "", ""),
            joined("3:10", "update"),
            e("4:10", "d03-speed#1", "update", "d02-speed", "", ""),
            joined("4:40", "update"),
            joined("7:10", "resolved"),
        ]
    );
    // With a minute's grace d03 never leaves: its second episode joins before its first one
    // goes, and that change of episodes shows nothing new, so no update is sent for it.
    assert_eq!(
        run("1m"),
        vec![
            e("2:10", "d03-speed#1", "open", "d03-speed", "", ""),
            joined("3:10", "update"),
            joined("8:10", "resolved"),
        ]
    );
}
