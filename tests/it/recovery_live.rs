//! Checkpoints of live runs, on librdkafka's mock cluster (the traffic fixture, 120 sensors
//! over a day, in 4 partitions; 2 workers): resumed from each of its checkpoints, and stopped
//! (as SIGTERM stops `hyflow run`) and started again several times, a run writes exactly the
//! rows of one never stopped, and its alert topic holds exactly that run's events, none twice.

use crate::common::kafka::{consume_all, live_pipeline_with, produce_fixture};
use crate::recovery::copy_dir;
use hyflow::checkpoint::{Checkpoint, SourceCut};
use hyflow::config::{MessageFormat, OutputKind, RecoveryConfig};
use hyflow::dataflow::{self, RunOptions, Running, checkpoint::CheckpointOptions};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const OUTPUTS: [&str; 4] = ["windows", "alerts", "rejects", "late"];

/// A mock cluster holding the fixture in `readings`, and a directory for the runs.
struct Live {
    _cluster: MockCluster<'static, DefaultProducerContext>,
    brokers: String,
    /// Messages in `readings`.
    sent: u64,
    tmp: tempfile::TempDir,
}

impl Live {
    /// Large enough that the sources read it in several polls, held back by backpressure, so
    /// that cuts complete before the end.
    fn new(alert_topics: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("tmp");
        let input = tmp.path().join("traffic.parquet");
        let ds = hyflow::tools::fixture::traffic::generate(120, 86_400_000, 21);
        hyflow::tools::fixture::write(ds, &input).expect("fixture");
        let c = MockCluster::new(1).expect("mock cluster");
        c.create_topic("readings", 4, 1).expect("topic");
        for t in alert_topics {
            c.create_topic(t, 1, 1).expect("topic");
        }
        let brokers = c.bootstrap_servers();
        let sent = produce_fixture(&brokers, &input, MessageFormat::Json);
        // Every message is in the topic before a bounded run takes its end offsets.
        let probe = consumer(&brokers, "probe");
        let deadline = Instant::now() + Duration::from_secs(60);
        while (0..4).map(|p| high(&probe, p)).sum::<i64>() < sent as i64
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            _cluster: c,
            brokers,
            sent,
            tmp,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// The live traffic pipeline (CPU, no incidents sink: not saved yet) in group `group`, its
    /// alert events to `topic`, with a checkpoint every `every` ms into DIR/checkpoints.
    fn text(&self, group: &str, topic: &str, every: Option<i64>) -> String {
        let cps = self.path("checkpoints");
        live_pipeline_with(&self.brokers, "json", "", |c| {
            c.sink.retain(|s| s.output != OutputKind::Incidents);
            c.sink.retain(|s| s.name.get_ref() != "alerts-kafka");
            c.sink.push(
                toml::from_str(&format!(
                    "name = \"alerts-kafka\"\nkind = \"kafka\"\noutput = \"alerts\"\nkafka = {{ topic = \"{topic}\" }}"
                ))
                .expect("sink"),
            );
            c.set_device("cpu");
            if let Some(k) = c.source.kafka.as_mut() {
                k.group_id = Some(group.to_string());
            }
            if let Some(ms) = every {
                c.recovery = Some(RecoveryConfig {
                    dir: Some(cps.display().to_string()),
                    checkpoint_interval: hyflow::config::Duration::from_ms(ms),
                    keep: 1000,
                    enabled: true,
                });
            }
        })
    }

    /// Starts `text` writing to `out`, to the topics' current ends when `until_end`.
    fn start(
        &self,
        text: &str,
        out: &Path,
        until_end: bool,
        resume: Option<Checkpoint>,
    ) -> Running {
        let file = out.with_extension("toml");
        std::fs::write(&file, text).expect("write pipeline");
        let p = crate::common::load(&file, None, out);
        let checkpoints = p.recovery.as_ref().map(CheckpointOptions::of);
        dataflow::start(
            p,
            &RunOptions {
                workers: 2,
                until_end,
                checkpoints,
                resume: resume.map(Arc::new),
                ..RunOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("live run: {e}"))
    }

    fn run(&self, text: &str, out: &Path, resume: Option<Checkpoint>) -> hyflow::dataflow::Summary {
        self.start(text, out, true, resume)
            .wait()
            .unwrap_or_else(|e| panic!("live run: {e}"))
    }
}

fn consumer(brokers: &str, group: &str) -> BaseConsumer {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .expect("consumer")
}

fn high(c: &BaseConsumer, partition: i32) -> i64 {
    c.fetch_watermarks("readings", partition, Duration::from_secs(5))
        .map_or(0, |w| w.1)
}

/// `hyflow run FILE --out OUT ARGS...`, to be given its output handling and started.
fn hyflow_run(file: &Path, out: &Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hyflow"));
    c.arg("run").arg(file).arg("--out").arg(out).args(args);
    c
}

fn dumps(out: &Path) -> Vec<String> {
    OUTPUTS
        .iter()
        .map(|o| crate::common::dump(&out.join(o)))
        .collect()
}

fn assert_same(want: &[String], out: &Path, what: &str) {
    let got = dumps(out);
    for (k, o) in OUTPUTS.iter().enumerate() {
        if got[k] != want[k] {
            let first = got[k]
                .lines()
                .zip(want[k].lines().chain(std::iter::repeat("(none)")))
                .find(|(g, w)| g != w);
            panic!(
                "{what}: {o} differ from the run never stopped ({} rows against {}); first \
                 difference (got, want): {first:?}",
                got[k].lines().count(),
                want[k].lines().count()
            );
        }
    }
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                v.extend(parquet_files(&p));
            } else {
                v.push(p);
            }
        }
    }
    v
}

/// A checkpoint's offsets, per partition of `readings`.
fn offsets(c: &Checkpoint) -> Vec<(i32, i64)> {
    let mut v: Vec<(i32, i64)> = c
        .sources
        .iter()
        .map(|s| match s {
            SourceCut::Kafka {
                partition, offset, ..
            } => (*partition, *offset),
            other => panic!("not a Kafka position: {other:?}"),
        })
        .collect();
    v.sort();
    v
}

/// The offsets group `group` has committed for `readings` (-1: none).
fn committed(brokers: &str, group: &str) -> Vec<(i32, i64)> {
    let c = consumer(brokers, group);
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..4 {
        tpl.add_partition("readings", p);
    }
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    let mut v: Vec<(i32, i64)> = got
        .elements()
        .iter()
        .map(|e| (e.partition(), e.offset().to_raw().unwrap_or(-1)))
        .collect();
    v.sort();
    v
}

/// A live run (bounded by `--until-end`) taking a checkpoint every millisecond writes the
/// rows of one taking none; resumed from each of its checkpoints, with the parts written
/// later still on disk, it writes them again exactly.
// It found a cut that falls on a window's end (the window was closed before the state was
// saved, but its row, at the cut, was not yet written: lost on resume); live cuts land on
// window ends often, replays rarely.
#[test]
fn a_live_run_resumed_from_each_of_its_checkpoints_writes_the_rows_of_one_never_stopped() {
    let l = Live::new(&["alerts"]);
    let plain = l.path("plain");
    let s = l.run(&l.text("group-plain", "alerts", None), &plain, None);
    assert_eq!(s.rows_in, l.sent);
    let want = dumps(&plain);
    assert!(want[1].lines().count() > 1, "the fixture has alerts");
    let out = l.path("out");
    let text = l.text("group-cp", "alerts", Some(1));
    let s = l.run(&text, &out, None);
    assert_eq!(s.rows_in, l.sent);
    assert_same(&want, &out, "a live run taking checkpoints");
    let cps = l.path("checkpoints");
    let saved = l.path("saved");
    copy_dir(&cps, &saved);
    let all = hyflow::checkpoint::list(&saved);
    // A bounded live run reads its topic quickly: few cuts complete before the end.
    assert!(!all.is_empty(), "no checkpoint taken");
    // Every checkpoint but the start's is counted, and the size of the last is its file's.
    assert_eq!(
        s.events.counter("hyflow_checkpoints_total") as usize,
        all.len() - 1
    );
    if let Some((_, newest)) = all.first().filter(|_| all.len() > 1) {
        let size = std::fs::metadata(newest).expect("checkpoint").len();
        assert_eq!(
            s.events.gauge("hyflow_checkpoint_bytes", &[]),
            Some(size as f64)
        );
    }
    let done = l.path("done");
    copy_dir(&out, &done);
    for (id, path) in all.iter().rev() {
        let _ = std::fs::remove_dir_all(&out);
        copy_dir(&done, &out);
        let _ = std::fs::remove_dir_all(&cps);
        let cp = hyflow::checkpoint::read(path).expect("checkpoint");
        let read: i64 = offsets(&cp).iter().map(|o| o.1).sum();
        let start = cp.at == i64::MIN;
        let s = l.run(&text, &out, Some(cp));
        // It reads only what follows the checkpoint's offsets.
        assert_eq!(s.rows_in + read as u64, l.sent, "checkpoint {id}");
        // The checkpoint of the run's start (a run killed before its first checkpoint goes
        // on from it) holds the offsets it started at.
        assert!(
            (read > 0) != start,
            "checkpoint {id} (the start: {start}): {read} read"
        );
        assert_same(&want, &out, &format!("resumed from checkpoint {id}"));
    }
}

/// A live run asked to stop (what SIGTERM and SIGINT do to `hyflow run`) with checkpoints on
/// takes one last checkpoint, commits its offsets and ends without flushing its open windows
/// (they are in the checkpoint); started again from it, four times at points spread over the
/// run, it ends with exactly the rows of a run never stopped, and its alert topic with exactly
/// that run's events (none twice, none missing, none different).
#[test]
fn a_live_run_stopped_and_started_again_writes_the_rows_and_alert_events_of_one_never_stopped() {
    let l = Live::new(&["alerts-plain", "alerts-stopped"]);
    let plain = l.path("plain");
    let started = Instant::now();
    let s = l.run(&l.text("plain", "alerts-plain", None), &plain, None);
    let took = started.elapsed();
    assert_eq!(s.rows_in, l.sent);
    let want = dumps(&plain);
    assert!(want[1].lines().count() > 1, "the fixture has alerts");
    // Checkpoints only when stopped: each run's last is the one it stopped at.
    let text = l.text("stopped", "alerts-stopped", Some(3_600_000));
    let out = l.path("out");
    let cps = l.path("checkpoints");
    let mut stops = 0;
    // Every message counted once in all: each stopped run's rows less those it read after its
    // cut (which the next run reads again), and the last run's rows.
    let (mut counted, mut again) = (0, 0);
    for fraction in [0.1, 0.35, 0.6, 0.85] {
        let resume = hyflow::checkpoint::latest(&cps).0.map(|(_, c)| c);
        let before = resume.as_ref().map(|c| c.id);
        let running = l.start(&text, &out, false, resume);
        std::thread::sleep(took.mul_f64(fraction));
        running.request_stop();
        let s = running
            .wait()
            .unwrap_or_else(|e| panic!("stopped at {fraction}: {e}"));
        let (last, damaged) = hyflow::checkpoint::latest(&cps);
        assert!(damaged.is_empty(), "{damaged:?}");
        let Some((_, last)) = last else {
            panic!("stopped at {fraction}: no checkpoint, not even the run's start");
        };
        let read_again = s
            .read_again
            .unwrap_or_else(|| panic!("stopped at {fraction}: no count of what is read again"));
        counted += s.rows_in - read_again;
        again += read_again;
        eprintln!(
            "stopped at {fraction}: {} rows read ({read_again} after the cut), {} windows, {} \
             rejected; checkpoint {} at {}, offsets {:?}, sensors buffered per worker {:?}",
            s.rows_in,
            s.windows,
            s.rejected,
            last.id,
            last.at,
            offsets(&last),
            last.state
                .iter()
                .map(|w| w.windows.len())
                .collect::<Vec<_>>()
        );
        if last.at == i64::MIN {
            assert_eq!(
                s.rows_in, 0,
                "stopped at {fraction}: read, but no checkpoint"
            );
        } else if Some(last.id) != before {
            stops += 1;
        }
        // Nothing after the cut was written: every part that holds a row is the
        // checkpoint's (an output with none below the cut gets an empty part at the end).
        let listed: Vec<PathBuf> = last.sinks.iter().flat_map(|s| s.files.clone()).collect();
        for f in OUTPUTS.iter().flat_map(|o| parquet_files(&out.join(o))) {
            let rows: usize = hyflow::tools::inspect::read(&f)
                .expect("read part")
                .iter()
                .map(|b| b.num_rows())
                .sum();
            assert!(
                rows == 0 || listed.contains(&f),
                "stopped at {fraction}: {} was written after the last checkpoint",
                f.display()
            );
        }
        // The group's offsets are the last checkpoint's: never ahead of the state saved.
        assert_eq!(
            committed(&l.brokers, "stopped"),
            offsets(&last),
            "stopped at {fraction}"
        );
    }
    assert!(stops >= 2, "only {stops} stop(s) took a checkpoint");
    let resume = hyflow::checkpoint::latest(&cps).0.map(|(_, c)| c);
    counted += l.run(&text, &out, resume).rows_in;
    assert_eq!(
        counted, l.sent,
        "rows in, less what each stopped run read after its cut ({again} in all), against the \
         messages"
    );
    assert_same(&want, &out, "stopped four times and started again");
    let events = |topic: &str, expect: usize| {
        let mut v: Vec<(Vec<u8>, Vec<u8>)> = consume_all(&l.brokers, topic, expect)
            .into_iter()
            .map(|m| {
                use rdkafka::Message;
                (
                    m.key().unwrap_or_default().to_vec(),
                    m.payload().unwrap_or_default().to_vec(),
                )
            })
            .collect();
        v.sort();
        v
    };
    // The alerts output: a header, then one row per event.
    let a = events("alerts-plain", want[1].lines().count() - 1);
    let b = events("alerts-stopped", a.len());
    assert!(!a.is_empty() && a.windows(2).all(|w| w[0] != w[1]));
    assert!(
        a == b,
        "the alert topic holds {} messages against {} of the run never stopped",
        b.len(),
        a.len()
    );
}

/// `hyflow run` processes against a real broker (tansu): one never stopped (`--until-end`);
/// then one with `[recovery]` killed with SIGKILL at five points of its run (each started
/// again, resuming by itself from its newest checkpoint), stopped once with SIGTERM (exit 0)
/// and finally run to the end. Its Parquet outputs equal the run never stopped, row for row,
/// and its alert topic, duplicates dropped by `event_id` (every copy identical), holds exactly
/// that run's events.
#[test]
fn hyflow_run_killed_five_times_against_tansu_writes_the_rows_and_events_of_one_never_stopped() {
    use crate::kafka_tansu::{create_topic, start_broker};
    use std::process::Stdio;
    let broker = start_broker();
    create_topic(&broker, "readings", 4);
    create_topic(&broker, "alerts-plain", 1);
    create_topic(&broker, "alerts-killed", 1);
    let brokers = broker.url.trim_start_matches("tcp://").to_string();
    let tmp = tempfile::tempdir().expect("tmp");
    let input = tmp.path().join("traffic.parquet");
    let ds = hyflow::tools::fixture::traffic::generate(48, 86_400_000, 21);
    hyflow::tools::fixture::write(ds, &input).expect("fixture");
    // (tansu answers ListOffsets(latest) with the base offset of the last batch + 1: one
    // message per batch makes that the end, for `--until-end`.)
    let one_per_batch = [("batch.num.messages".to_string(), "1".to_string())].into();
    crate::common::kafka::produce_fixture_with(
        &brokers,
        &input,
        MessageFormat::Json,
        &one_per_batch,
    );
    let pipeline = |name: &str, topic: &str, recovery: bool| {
        let text = live_pipeline_with(&brokers, "json", "", |c| {
            c.sink.retain(|s| s.output != OutputKind::Incidents);
            c.sink.retain(|s| s.name.get_ref() != "alerts-kafka");
            c.sink.push(
                toml::from_str(&format!(
                    "name = \"alerts-kafka\"\nkind = \"kafka\"\noutput = \"alerts\"\nkafka = {{ topic = \"{topic}\" }}"
                ))
                .expect("sink"),
            );
            c.set_device("cpu");
            if let Some(k) = c.source.kafka.as_mut() {
                k.group_id = Some(name.to_string());
            }
            if recovery {
                c.recovery = Some(RecoveryConfig {
                    dir: Some(tmp.path().join("checkpoints").display().to_string()),
                    checkpoint_interval: hyflow::config::Duration::from_ms(20),
                    keep: 3,
                    enabled: true,
                });
            } else {
                // The run never stopped takes no checkpoints (`hyflow run` would by default).
                c.recovery = Some(RecoveryConfig {
                    enabled: false,
                    ..Default::default()
                });
            }
        });
        let file = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&file, text).expect("write pipeline");
        file
    };
    let run = |file: &Path, out: &Path, until_end: bool| {
        let mut c = hyflow_run(file, out, &["-w", "2", "-q"]);
        if until_end {
            c.arg("--until-end");
        }
        c.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "hyflow=debug");
        c.spawn().expect("start hyflow run")
    };
    let plain = tmp.path().join("plain");
    let started = Instant::now();
    let o = run(&pipeline("plain", "alerts-plain", false), &plain, true)
        .wait_with_output()
        .expect("run");
    let took = started.elapsed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = dumps(&plain);
    assert!(want[1].lines().count() > 1, "the fixture has alerts");
    let file = pipeline("killed", "alerts-killed", true);
    let out = tmp.path().join("out");
    // Five SIGKILLs, each some milliseconds after the run wrote a new checkpoint (or 3 s
    // after it started), each run resuming from the newest.
    let cps = tmp.path().join("checkpoints");
    let newest = || {
        hyflow::checkpoint::latest(&cps)
            .0
            .map_or((0, i64::MIN), |(_, c)| (c.id, c.at))
    };
    let mut progressed = 0;
    for delay_ms in [30, 170, 90, 250, 10] {
        let before = newest();
        let mut child = run(&file, &out, false);
        let t = Instant::now();
        // (A fresh run's first checkpoint is of its start.)
        let wanted = before.0 + if before.0 == 0 { 2 } else { 1 };
        while newest().0 < wanted && t.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        if newest().1 > before.1 {
            progressed += 1;
        }
    }
    // Once everything is read, a live run takes no more checkpoints (a cut goes above every
    // time read, which an idle stream never reaches: docs/recovery.md), so the later kills
    // may find nothing new.
    assert!(progressed >= 1, "no killed run got past its start");
    let child = run(&file, &out, false);
    std::thread::sleep(took.mul_f64(0.5));
    crate::common::signal(child.id(), "TERM");
    let o = child.wait_with_output().expect("wait");
    assert!(
        o.status.success(),
        "after SIGTERM: {:?}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(&file, &out, true).wait_with_output().expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same(
        &want,
        &out,
        "killed five times, stopped once and started again",
    );
    let events = |topic: &str, expect: usize| -> Vec<(String, Vec<u8>)> {
        crate::common::kafka::consume_assigned(&brokers, topic, expect)
            .into_iter()
            .map(|m| {
                use rdkafka::Message;
                let payload = m.payload().unwrap_or_default().to_vec();
                let v: serde_json::Value = serde_json::from_slice(&payload).expect("JSON");
                let id = v["event_id"].as_str().expect("event_id").to_string();
                (id, payload)
            })
            .collect()
    };
    let mut a = events("alerts-plain", want[1].lines().count() - 1);
    a.sort();
    let mut b = events("alerts-killed", a.len());
    b.sort();
    b.dedup_by(|x, y| {
        let same = x.0 == y.0;
        assert!(!same || x.1 == y.1, "two different events with id {}", x.0);
        same
    });
    assert!(
        a == b,
        "the alert topic holds {} distinct events against {} of the run never stopped",
        b.len(),
        a.len()
    );
}

/// `hyflow run` takes checkpoints by default: a pipeline without `[recovery]` started as a
/// process (no `--until-end`) says where they go, stops at a last checkpoint on SIGTERM (three
/// times, each time started again and resuming by itself, once with another worker count), and
/// a last bounded run then ends with the rows of a run never stopped. A bounded run (`--until-end`) takes none unless asked.
#[test]
fn hyflow_run_takes_checkpoints_by_default_and_resumes_from_them() {
    use std::process::Stdio;
    let l = Live::new(&["alerts-plain", "alerts-default"]);
    let plain = l.path("plain");
    let started = Instant::now();
    l.run(&l.text("plain", "alerts-plain", None), &plain, None);
    let took = started.elapsed();
    let want = dumps(&plain);
    let text = l.text("default", "alerts-default", None);
    assert!(!text.contains("[recovery]"), "{text}");
    let out = l.path("out");
    let file = l.path("default.toml");
    std::fs::write(&file, &text).expect("write pipeline");
    let hyflow = |workers: &str, extra: &[&str]| {
        hyflow_run(&file, &out, &["-w", workers])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hyflow run")
    };
    let cps = out.join("checkpoints");
    // A number in the summary: the first on the line starting with `label`.
    let figure = |summary: &str, label: &str| -> u64 {
        summary
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.trim_start()[label.len()..].split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {label:?} in\n{summary}"))
    };
    // Every message is counted once in all: each stopped run's rows less those it read after
    // its cut (read again by the next run), and the last run's rows.
    let mut counted = 0;
    // The third run has another worker count: the state is dealt out to its one worker, and
    // back to two for the last run.
    for (k, (fraction, workers)) in [(0.3, "2"), (0.6, "2"), (0.3, "1")].into_iter().enumerate() {
        let child = hyflow(workers, &[]);
        std::thread::sleep(Duration::from_secs(2) + took.mul_f64(fraction));
        crate::common::signal(child.id(), "TERM");
        let o = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "stop {k}: {:?}\n{err}", o.status);
        let summary = String::from_utf8_lossy(&o.stdout);
        assert!(
            summary.contains("stopped at a checkpoint (")
                && summary.contains("what was read after the cut is read again by the next run"),
            "stop {k}: {summary}"
        );
        counted += figure(&summary, "rows in") - figure(&summary, "read again");
        let said = format!(
            "checkpoints every 30 s in {} (the default for `hyflow run`",
            cps.display()
        );
        assert!(err.contains(&said), "stop {k}: {err}");
        assert_eq!(err.contains("resuming from"), k > 0, "stop {k}: {err}");
        assert_eq!(
            err.contains("taken by a run of 2 worker(s): its sensors' state is dealt out to 1"),
            workers == "1",
            "stop {k}: {err}"
        );
        let (last, _) = hyflow::checkpoint::latest(&cps);
        assert!(
            last.is_some(),
            "stop {k}: no checkpoint in {}",
            cps.display()
        );
    }
    // A bounded run takes checkpoints only when asked (here: a [recovery] section made by
    // --set), and then goes on from the last one.
    let o = hyflow("2", &["--until-end", "--set", "recovery.keep=1000"])
        .wait_with_output()
        .expect("wait");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("resuming from"), "{err}");
    counted += figure(&String::from_utf8_lossy(&o.stdout), "rows in");
    assert_eq!(
        counted, l.sent,
        "the runs' rows in, less what each stopped run read again, against the messages"
    );
    assert_same(
        &want,
        &out,
        "stopped three times by SIGTERM with default checkpoints, once with one worker",
    );
}

/// SIGHUP with a changed rule: `hyflow run` reads its pipeline file again, stops at a
/// checkpoint and goes on from it with the new rule, state carried over: every window ending
/// before that checkpoint's cut was scored by the old rules, every one ending after it by the
/// new, and the windows are those of a run never switched. A change that would not fit the
/// state (a window size) is refused and the run goes on. (The fixture's first 12 hours are in
/// the topic at the switch, its last 11 after it: the switch falls inside the run.)
#[test]
fn sighup_switches_a_live_run_to_changed_rules_at_a_checkpoint() {
    use std::process::Stdio;
    let tmp = tempfile::tempdir().expect("tmp");
    let generate = || hyflow::tools::fixture::traffic::generate(120, 86_400_000, 21);
    let start = generate().rows.iter().map(|r| r.ts).min().expect("rows");
    let half = |keep: &dyn Fn(i64) -> bool, name: &str| {
        let mut part = generate();
        part.rows.retain(|r| keep(r.ts - start));
        let path = tmp.path().join(name);
        hyflow::tools::fixture::write(part, &path).expect("fixture");
        path
    };
    let first = half(&|t| t < 12 * 3_600_000, "first.parquet");
    let last = half(&|t| t >= 13 * 3_600_000, "last.parquet");
    let c = MockCluster::new(1).expect("mock cluster");
    c.create_topic("readings", 4, 1).expect("topic");
    for t in ["alerts-plain", "alerts-reload"] {
        c.create_topic(t, 1, 1).expect("topic");
    }
    let brokers = c.bootstrap_servers();
    let sent = produce_fixture(&brokers, &first, MessageFormat::Json);
    let l = Live {
        _cluster: c,
        brokers,
        sent,
        tmp,
    };
    let text = l.text("reload", "alerts-reload", None);
    let file = l.path("reload.toml");
    std::fs::write(&file, &text).expect("write pipeline");
    let out = l.path("out");
    let log = l.path("run.log");
    let keep = ["--set", "recovery.keep=1000"];
    let child = hyflow_run(&file, &out, &["-w", "2"])
        .args(keep)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start hyflow run");
    let logged = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains(what) {
                return text;
            }
            assert!(Instant::now() < deadline, "never logged {what:?}:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let hup = || crate::common::signal(child.id(), "HUP");
    logged("starting from the beginning");
    // A changed window size: refused, the run goes on.
    assert!(
        text.contains("size = \"15m\"") && text.contains("\n[[rules]]\n"),
        "{text}"
    );
    std::fs::write(&file, text.replace("size = \"15m\"", "size = \"30m\"")).expect("write");
    hup();
    logged(
        "SIGHUP: not switching: window.size differs, and only rules and compute may change while it runs; the run goes on with the pipeline it started with",
    );
    // A file that does not validate (a misspelt key): named, with where; the run goes on.
    std::fs::write(&file, format!("{text}\nwindoww = 1\n")).expect("write");
    hup();
    let said = logged("does not validate:");
    let why = said.split("does not validate:").nth(1).unwrap_or_default();
    assert!(
        why.contains("windoww")
            && why.contains("the run goes on with the pipeline it started with"),
        "{said}"
    );
    // A new rule that fires on every window.
    let changed = format!(
        "{text}\n[[rules]]\nname = \"reloaded\"\nwhen = \"count > 0\"\nseverity = \"info\"\n"
    );
    std::fs::write(&file, &changed).expect("write");
    hup();
    let text_log = logged("SIGHUP: switched to the changed pipeline at checkpoint ");
    let id: u64 = text_log
        .split("SIGHUP: switched to the changed pipeline at checkpoint ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("checkpoint id");
    produce_fixture(&l.brokers, &last, MessageFormat::Json);
    std::thread::sleep(Duration::from_millis(500));
    crate::common::signal(child.id(), "TERM");
    let o = child.wait_with_output().expect("wait");
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(o.status.success(), "{:?}\n{err}", o.status);
    // To the end, with the changed file (it resumes from its own last checkpoint).
    let o = hyflow_run(&file, &out, &["-w", "2", "--until-end"])
        .args(keep)
        .output()
        .expect("hyflow run --until-end");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cps = out.join("checkpoints");
    let cut = hyflow::checkpoint::list(&cps)
        .into_iter()
        .find(|(i, _)| *i == id)
        .map(|(_, p)| hyflow::checkpoint::read(&p).expect("read").at)
        .expect("the switch's checkpoint");
    assert!(
        cut > i64::MIN,
        "the switch went through a checkpoint of its own"
    );
    let (mut before, mut after) = (0, 0);
    for b in hyflow::tools::inspect::read(&out.join("windows")).expect("windows") {
        use arrow_array::cast::AsArray;
        let end = b
            .column_by_name("window_end")
            .and_then(|c| hyflow::tools::inspect::millis(c.as_ref()))
            .expect("window_end");
        let rules = b.column_by_name("rules").expect("rules").as_string::<i32>();
        for i in 0..b.num_rows() {
            let fired = rules.value(i).split(',').any(|r| r == "reloaded");
            if end[i] < cut {
                assert!(!fired, "a window ending before the cut has the new rule");
                before += 1;
            } else if end[i] > cut {
                assert!(fired, "a window ending after the cut lacks the new rule");
                after += 1;
            }
        }
    }
    assert!(
        before > 0 && after > 0,
        "{before} windows before, {after} after"
    );
    // Every window of a run never switched, once.
    let plain = l.path("plain");
    l.run(&l.text("plain", "alerts-plain", None), &plain, None);
    let want = crate::common::dump(&plain.join("windows"));
    let windows = crate::common::dump(&out.join("windows"));
    assert_eq!(windows.lines().count(), want.lines().count());
}
