//! A timely cluster of two `hyflow replay` processes on this machine gives exactly the outputs
//! of one process; an unreadable input stops every process before the cluster starts. (A
//! failure while running travels to worker 0 as an `OutRecord::Failure` row, which makes the
//! writing process give up: the same path as within one process.)

use crate::common;

use std::process::{Command, Stdio};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn run_cluster(
    pipeline: &str,
    input: Option<&str>,
    out: &std::path::Path,
    hosts: &std::path::Path,
) -> Vec<std::process::Output> {
    let children: Vec<_> = (0..2)
        .map(|p| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_hyflow"));
            cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
                .args(["replay", "-q", "-w", "2", pipeline, "--out"])
                .arg(out.join(format!("p{p}")));
            cmd.args([
                "--hosts",
                &hosts.display().to_string(),
                "--process",
                &p.to_string(),
            ]);
            if let Some(i) = input {
                cmd.args(["--input", i]);
            }
            cmd.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect()
}

#[test]
fn two_processes_equal_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let hosts = tmp.path().join("hosts");
    std::fs::write(
        &hosts,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port()),
    )
    .expect("hosts");
    let outs = run_cluster("pipelines/traffic.toml", None, tmp.path(), &hosts);
    for (p, o) in outs.iter().enumerate() {
        assert!(
            o.status.success(),
            "process {p}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let single = tmp.path().join("single");
    common::replay("pipelines/traffic.toml", 1, None, &single).expect("one process");
    for sink in ["windows", "alerts", "rejects", "late"] {
        let a = common::dump(&single.join(sink));
        let b = common::dump(&tmp.path().join("p0").join(sink));
        assert!(
            a == b,
            "{sink} differs between one process and a cluster of two"
        );
    }
    assert!(
        !tmp.path().join("p1").exists(),
        "only process 0 writes outputs"
    );
}

#[test]
fn an_unreadable_input_stops_every_process_before_the_cluster_starts() {
    let tmp = tempfile::tempdir().expect("tmp");
    // Two files: one good, one corrupt. With 4 workers in all, one process reads each.
    common::write_readings(
        &tmp.path().join("a.parquet"),
        &[
            (Some("s"), Some(0), Some(1.0)),
            (Some("s"), Some(20_000), Some(2.0)),
        ],
    );
    std::fs::write(tmp.path().join("b.parquet"), b"PAR1 not really").expect("write");
    let hosts = tmp.path().join("hosts");
    std::fs::write(
        &hosts,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port()),
    )
    .expect("hosts");
    let glob = format!("{}/*.parquet", tmp.path().display());
    let outs = run_cluster("pipelines/bench.toml", Some(&glob), tmp.path(), &hosts);
    // The footer check runs in every process before the cluster starts: both refuse.
    for (p, o) in outs.iter().enumerate() {
        assert!(!o.status.success(), "process {p} should fail");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("b.parquet"),
            "process {p}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
