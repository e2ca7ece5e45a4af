//! The commands shown in README.md and docs/*.md are ones hyflow takes, and those that need
//! nothing outside the repository run (in the spirit of `trycmd`, which clap and cargo use).
//!
//! A doc command is a line of a ```sh or ```console block that starts (after a `$ ` prompt and
//! `NAME=value` environment settings) with `hyflow`, `target/release/hyflow` or `cargo run
//! --release --`; a trailing `\` joins the next line, a `# comment` is dropped, `$(…)` is
//! dropped (a shell substitution), and `[…]` optional parts are kept without their brackets.
//!
//! - Every such line is parsed by the program itself (`HYFLOW_CHECK_ARGS=1`: clap's whole
//!   check, nothing run) and must be accepted; a file or directory of the repository that it
//!   names must exist.
//! - The lines whose command reads only the repository (`validate`, `explain`, `test`,
//!   `replay`, `cat`, `report`, `score`, `gen`, `eval` without `../shared`, and `demo`, whose
//!   broker is in the process) are run in order,
//!   in a sandbox that links the repository's pipelines, fixtures and benches, with `/tmp/`
//!   paths moved into it and a `gen` into `fixtures/` written to the sandbox instead; each
//!   must exit 0.
//! - The `produce` and `run` lines are run in order against a tansu broker (`HYFLOW_BROKERS`
//!   names it; the live pipeline reads its brokers from it): `produce` must exit 0, and `run`
//!   must write outputs (or answer on its `--metrics` port) and exit 0 on SIGTERM (a cluster's
//!   `--hosts` file is written with two local processes, the second one started too, and the
//!   SIGTERM to the first must stop both).
//! - A ```console block shows output: `$ command` lines followed by what it prints (stdout,
//!   then stderr); a line `...` stands for any number of lines. It is run and compared.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One command line of a doc.
#[derive(Debug, Clone)]
struct DocCommand {
    /// `doc.md:line`.
    at: String,
    /// The arguments after `hyflow`.
    args: Vec<String>,
    /// For a ```console block: the output it shows (None: not shown).
    shown: Option<Vec<String>>,
}

fn docs() -> Vec<PathBuf> {
    let root = crate::common::root();
    let mut docs = vec![root.join("README.md")];
    let mut more: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

/// The line without a trailing `# comment` (a `#` after white space, outside quotes).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double, mut prev_space) = (false, false, true);
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_space => return &line[..i],
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// `$(…)` substitutions removed (balanced parentheses).
fn drop_substitutions(line: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek() == Some(&'(') {
            chars.next();
            depth += 1;
        } else if depth > 0 && c == '(' {
            depth += 1;
        } else if depth > 0 && c == ')' {
            depth -= 1;
        } else if depth == 0 {
            out.push(c);
        }
    }
    out
}

/// The arguments after the program when `line` invokes hyflow.
fn hyflow_args(line: &str) -> Option<Vec<String>> {
    let line = drop_substitutions(strip_comment(line)).replace(['[', ']'], " ");
    let words = shlex::split(&line)?;
    let mut rest = words.iter().skip_while(|w| {
        w.contains('=') && !w.starts_with('-') && w.chars().next().is_some_and(char::is_uppercase)
    });
    let first = rest.next()?;
    let args: Vec<String> = match first.as_str() {
        "hyflow" | "target/release/hyflow" | "./target/release/hyflow" => rest.cloned().collect(),
        "cargo" => {
            let w: Vec<&String> = rest.collect();
            let at = w.iter().position(|a| a.as_str() == "--")?;
            if w.first()?.as_str() != "run" {
                return None;
            }
            w[at + 1..].iter().map(|s| s.to_string()).collect()
        }
        _ => return None,
    };
    Some(args)
}

/// Every hyflow command line of every doc, in order (README first, then docs/ by name).
fn doc_commands() -> Vec<DocCommand> {
    let root = crate::common::root();
    let mut out = Vec::new();
    for doc in docs() {
        let name = doc
            .strip_prefix(&root)
            .unwrap_or(&doc)
            .display()
            .to_string();
        let text = std::fs::read_to_string(&doc).expect("doc");
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let lang = lines[i].strip_prefix("```").map(str::trim);
            i += 1;
            let Some(lang) = lang else { continue };
            let console = lang == "console";
            let code = console || matches!(lang, "sh" | "bash" | "shell");
            let start = i;
            while i < lines.len() && !lines[i].starts_with("```") {
                i += 1;
            }
            let block = &lines[start..i];
            i += 1; // the closing fence
            if !code {
                continue;
            }
            let mut k = 0;
            while k < block.len() {
                let at = format!("{name}:{}", start + k + 1);
                let mut line = block[k].to_string();
                k += 1;
                if console {
                    let Some(cmd) = line.strip_prefix("$ ") else {
                        continue;
                    };
                    line = cmd.to_string();
                }
                while line.ends_with('\\') && k < block.len() {
                    line.pop();
                    line.push(' ');
                    line.push_str(block[k]);
                    k += 1;
                }
                let shown = console.then(|| {
                    let mut shown = Vec::new();
                    while k < block.len() && !block[k].starts_with("$ ") {
                        shown.push(block[k].to_string());
                        k += 1;
                    }
                    shown
                });
                if let Some(args) = hyflow_args(&line) {
                    out.push(DocCommand { at, args, shown });
                }
            }
        }
    }
    out
}

fn hyflow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hyflow"))
}

/// The repository paths an argument names (`pipelines/…`, `fixtures/…`, …; globs expanded).
fn repo_paths(arg: &str) -> Option<String> {
    let value = arg.split_once('=').map_or(arg, |(_, v)| v);
    [
        "pipelines/",
        "fixtures/",
        "benches/",
        "scripts/",
        "docs/",
        "tests/",
    ]
    .iter()
    .any(|p| value.starts_with(p))
    .then(|| value.to_string())
}

#[test]
fn every_command_in_the_docs_is_one_hyflow_takes() {
    let root = crate::common::root();
    let commands = doc_commands();
    // The docs show about forty; finding few means the extraction broke, not the docs.
    assert!(commands.len() >= 30, "{} commands found", commands.len());
    let mut wrong = Vec::new();
    for c in &commands {
        let out = hyflow()
            .current_dir(&root)
            .env("HYFLOW_CHECK_ARGS", "1")
            .args(&c.args)
            .output()
            .expect("hyflow");
        if !out.status.success() {
            wrong.push(format!(
                "{}: hyflow {}\n{}",
                c.at,
                c.args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let is_output = |i: usize| {
            i > 0
                && matches!(
                    c.args[i - 1].as_str(),
                    "--out" | "--out-file" | "--results-dir"
                )
        };
        for (i, a) in c.args.iter().enumerate() {
            let Some(p) = repo_paths(a) else { continue };
            if is_output(i) {
                continue;
            }
            let found = glob::glob(&root.join(&p).to_string_lossy())
                .map(|g| g.count() > 0)
                .unwrap_or(false);
            if !found {
                wrong.push(format!("{}: {p} does not exist", c.at));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Commands that need something outside the repository, or minutes, and why; they are only
/// parsed (above).
fn not_run(c: &DocCommand) -> Option<&'static str> {
    let cmd = c.args.iter().find(|a| !a.starts_with('-'))?.as_str();
    match cmd {
        // `demo` runs: its broker is librdkafka's mock cluster, inside the process.
        "run" | "produce" => Some("needs a Kafka broker: run against tansu (the test below)"),
        "bench-kafka" => Some("a benchmark: minutes, and its figures are in docs/performance.md"),
        "bench" => Some("a benchmark: minutes, and its figures are in docs/performance.md"),
        _ if c.args.iter().any(|a| a.contains("../shared")) => {
            Some("reads ../shared, which a checkout of the repository does not have")
        }
        // Its pipeline is written by a `sed` line just before it in the doc.
        _ if c.args.iter().any(|a| a == "/tmp/m-cpu.toml") => {
            Some("its pipeline is made by a shell line of the doc")
        }
        "gen" if c.args.iter().any(|a| a == "bench") => {
            Some("a million readings: minutes in a debug build")
        }
        "gen" if c.args.iter().any(|a| a.contains("target/")) => {
            Some("512 sensors for 2 hours: minutes in a debug build")
        }
        _ => None,
    }
}

/// `args` for the sandbox: `/tmp/` paths moved into it, and what a `gen` would write into the
/// repository's fixtures written there instead.
fn sandboxed(args: &[String], sandbox: &Path) -> Vec<String> {
    let tmp = sandbox.join("tmp");
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let mut a = a.replace("/tmp/", &format!("{}/", tmp.display()));
        if i > 0 && args[i - 1] == "--out-file" && a.starts_with("fixtures/") {
            a = format!("{}/{}", tmp.display(), a.replace('/', "_"));
        }
        out.push(a);
    }
    out
}

/// Lines of `shown` match `got`; a `...` line matches any number of lines.
fn matches(shown: &[String], got: &[&str]) -> bool {
    match shown.split_first() {
        None => got.is_empty(),
        Some((s, rest)) if s == "..." => (0..=got.len()).any(|k| matches(rest, &got[k..])),
        Some((s, rest)) => got.first().is_some_and(|g| g == s) && matches(rest, &got[1..]),
    }
}

#[test]
fn the_docs_commands_that_need_only_the_repository_run_and_print_what_they_show() {
    let root = crate::common::root();
    let sandbox = tempfile::tempdir().expect("sandbox");
    std::fs::create_dir(sandbox.path().join("tmp")).expect("tmp");
    for dir in ["pipelines", "fixtures", "benches", "cuda", "tests", "docs"] {
        std::os::unix::fs::symlink(root.join(dir), sandbox.path().join(dir)).expect("link");
    }
    let (mut ran, mut skipped, mut wrong) = (0, Vec::new(), Vec::new());
    for c in doc_commands() {
        if let Some(why) = not_run(&c) {
            skipped.push(format!("{}: {why}", c.at));
            continue;
        }
        let args = sandboxed(&c.args, sandbox.path());
        let out = hyflow()
            .current_dir(sandbox.path())
            .args(&args)
            .output()
            .expect("hyflow");
        ran += 1;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if let Some(shown) = &c.shown {
            let got: Vec<&str> = stdout.lines().chain(stderr.lines()).collect();
            if !matches(shown, &got) {
                wrong.push(format!(
                    "{}: hyflow {} printed\n{}\nthe doc shows\n{}",
                    c.at,
                    c.args.join(" "),
                    got.join("\n"),
                    shown.join("\n")
                ));
            }
        } else if !out.status.success() {
            wrong.push(format!(
                "{}: hyflow {} exited {:?}\n{stderr}",
                c.at,
                c.args.join(" "),
                out.status.code()
            ));
        }
    }
    eprintln!(
        "ran {ran} doc commands; not run:\n  {}",
        skipped.join("\n  ")
    );
    assert!(ran >= 15, "only {ran} doc commands ran");
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// The topics of `pipelines/manufacturing-live.toml`, the one live pipeline the docs run.
const LIVE_TOPICS: [(&str, u32); 3] = [
    ("sensor-readings", 4),
    ("hyflow-alerts", 1),
    ("hyflow-dead-letters", 1),
];

/// The consumer group of `pipelines/manufacturing-live.toml`.
const LIVE_GROUP: &str = "hyflow-manufacturing";

/// Commits offset 0 for every partition of the live pipeline's input topic in its group, so
/// that the next run reads the whole topic as a newly deployed one would. (Else it starts
/// where the run before it stopped: that run, which stops at a checkpoint taken where it has
/// read to, may have read to the end, and a run with nothing after a few last readings never
/// closes a window.)
fn read_again_from_the_start(brokers: &str) {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    let (topic, partitions) = LIVE_TOPICS[0];
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", LIVE_GROUP)
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Offset(0))
            .expect("offset");
    }
    consumer
        .commit(&tpl, CommitMode::Sync)
        .expect("commit offset 0");
}

/// Waits until `ready()` or the child exits; then SIGTERM, and returns the child's output. When
/// it is not ready in 120 s, or ends by itself before, the child is stopped and the error says
/// so with what it wrote to stderr (the only clue to why).
fn run_until(
    mut child: std::process::Child,
    what: &str,
    ready: impl Fn() -> bool,
) -> Result<std::process::Output, String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !ready() {
        if let Some(st) = child.try_wait().expect("try_wait") {
            let o = child.wait_with_output().expect("output");
            return Err(format!(
                "{what} ended by itself ({st:?}) before it was ready\n{}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        if std::time::Instant::now() >= deadline {
            crate::common::signal(child.id(), "TERM");
            let o = child.wait_with_output().expect("output");
            return Err(format!(
                "{what}: not ready in 120 s\n{}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    crate::common::signal(child.id(), "TERM");
    Ok(child.wait_with_output().expect("wait"))
}

/// The body of `GET path` on 127.0.0.1:`port`, when something answers there.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text)
}

/// Files under `dir`, at any depth.
fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() { files_under(&p) } else { 1 }
        })
        .sum()
}

#[test]
fn the_docs_kafka_commands_run_against_a_broker() {
    let live: Vec<DocCommand> = doc_commands()
        .into_iter()
        .filter(|c| {
            let cmd = c.args.iter().find(|a| !a.starts_with('-'));
            matches!(cmd.map(String::as_str), Some("run" | "produce"))
        })
        .collect();
    // README's produce, run and cluster, docs/observability.md's run with --metrics.
    assert!(live.len() >= 4, "{} live commands found", live.len());
    for c in &live {
        assert!(
            c.args
                .iter()
                .any(|a| a == "pipelines/manufacturing-live.toml"),
            "{}: this test creates the topics of manufacturing-live.toml only; add this \
             pipeline's topics",
            c.at
        );
    }
    let root = crate::common::root();
    let live_text = std::fs::read_to_string(root.join("pipelines/manufacturing-live.toml"))
        .expect("manufacturing-live.toml");
    assert!(
        live_text.contains(&format!("group-id = \"{LIVE_GROUP}\"")),
        "manufacturing-live.toml's group is no longer {LIVE_GROUP}: change LIVE_GROUP"
    );
    let broker = crate::kafka_tansu::start_broker();
    for (topic, partitions) in LIVE_TOPICS {
        crate::kafka_tansu::create_topic(&broker, topic, partitions);
    }
    let brokers = broker.url.trim_start_matches("tcp://").to_string();
    let sandbox = tempfile::tempdir().expect("sandbox");
    for dir in ["pipelines", "fixtures"] {
        std::os::unix::fs::symlink(root.join(dir), sandbox.path().join(dir)).expect("link");
    }
    let outputs = sandbox.path().join("out/manufacturing-live");
    for c in &live {
        let is_run = c.args.iter().any(|a| a == "run");
        if is_run {
            // Each run is an example of its own: it starts without the earlier one's outputs,
            // checkpoints (whose worker count it might not share) and committed offsets; the
            // topics stay.
            let _ = std::fs::remove_dir_all(sandbox.path().join("out"));
            read_again_from_the_start(&brokers);
        }
        let mut cmd = hyflow();
        cmd.current_dir(sandbox.path())
            .env("HYFLOW_BROKERS", &brokers)
            .args(&c.args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let what = format!("{}: hyflow {}", c.at, c.args.join(" "));
        let o = if c.args.iter().any(|a| a == "produce") {
            cmd.output().expect("hyflow produce")
        } else if let Some(i) = c.args.iter().position(|a| a == "--hosts") {
            // A cluster of two processes on this host: the doc's command is process 0, and
            // process 1 is started alike.
            let port = || {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .expect("a free port")
                    .port()
            };
            let hosts = format!("127.0.0.1:{}\n127.0.0.1:{}\n", port(), port());
            std::fs::write(sandbox.path().join(&c.args[i + 1]), hosts).expect("hosts file");
            let p = c
                .args
                .iter()
                .position(|a| a == "--process")
                .expect("--process");
            assert_eq!(c.args[p + 1], "0", "{what}");
            let mut other = c.args.clone();
            other[p + 1] = "1".into();
            let mut one = hyflow()
                .current_dir(sandbox.path())
                .env("HYFLOW_BROKERS", &brokers)
                .args(&other)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("hyflow run --process 1");
            let zero = cmd.spawn().expect("hyflow run --process 0");
            // SIGTERM to process 0 alone stops the whole cluster.
            let o = match run_until(zero, &what, || files_under(&outputs.join("windows")) > 0) {
                Ok(o) => o,
                Err(e) => {
                    crate::common::signal(one.id(), "TERM");
                    let o1 = one.wait_with_output().expect("process 1");
                    panic!(
                        "{e}\n(process 1, stopped too, exited {:?}:)\n{}",
                        o1.status,
                        String::from_utf8_lossy(&o1.stderr)
                    )
                }
            };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while one.try_wait().expect("try_wait").is_none() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{what}: process 1 still running 60 s after process 0 was stopped"
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let o1 = one.wait_with_output().expect("process 1");
            assert!(
                o1.status.success(),
                "{what} (process 1) exited {:?}\n{}",
                o1.status,
                String::from_utf8_lossy(&o1.stderr)
            );
            o
        } else if let Some(i) = c.args.iter().position(|a| a == "--metrics") {
            let port: u16 = c.args[i + 1].parse().expect("a port");
            let child = cmd.spawn().expect("hyflow run");
            run_until(child, &what, || {
                http_get(port, "/metrics").is_some_and(|m| m.contains("# TYPE hyflow_"))
            })
            .unwrap_or_else(|e| panic!("{e}"))
        } else {
            let child = cmd.spawn().expect("hyflow run");
            run_until(child, &what, || files_under(&outputs.join("windows")) > 0)
                .unwrap_or_else(|e| panic!("{e}"))
        };
        assert!(
            o.status.success(),
            "{what} exited {:?}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // The last run stopped at a checkpoint (`hyflow run` takes them by default).
    assert!(
        hyflow::checkpoint::latest(&outputs.join("checkpoints"))
            .0
            .is_some()
    );
}

#[test]
fn the_extraction_reads_prompts_continuations_comments_and_substitutions() {
    assert_eq!(
        hyflow_args("RUST_LOG=debug hyflow replay p.toml -q   # a comment").unwrap(),
        ["replay", "p.toml", "-q"]
    );
    assert_eq!(
        hyflow_args("hyflow eval p.toml --cv category $(for f in a; do echo $f; done)").unwrap(),
        ["eval", "p.toml", "--cv", "category"]
    );
    assert_eq!(
        hyflow_args("hyflow bench-kafka throughput [--format json] --input 'a b#c'").unwrap(),
        [
            "bench-kafka",
            "throughput",
            "--format",
            "json",
            "--input",
            "a b#c"
        ]
    );
    assert_eq!(
        hyflow_args("cargo run --release -- replay x.toml").unwrap(),
        ["replay", "x.toml"]
    );
    assert!(hyflow_args("cargo build --release").is_none());
    assert!(hyflow_args("kcat -b 127.0.0.1:9092 -t hyflow-alerts").is_none());
    let shown: Vec<String> = ["a", "...", "d"].iter().map(|s| s.to_string()).collect();
    assert!(matches(&shown, &["a", "b", "c", "d"]));
    assert!(matches(&shown, &["a", "d"]));
    assert!(!matches(&shown, &["a", "b"]));
}
