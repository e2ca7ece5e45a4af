//! The command line's conventions (src/cli/mod.rs), checked on every subcommand's help as
//! `hyflow` prints it: the pipeline is the first positional argument (after `bench-kafka`'s
//! mode); `--out` is a directory and a file is `--out-file`; `-w` has one default; `-q` is
//! everywhere; help never points outside the repository nor speaks Rust. Then the exit
//! statuses (0, 1, 2, 64), `-q`, and the shell completions.

use std::process::Command;

fn hyflow(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hyflow"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .env_remove("HYFLOW_LOG")
        .output()
        .expect("run hyflow");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The subcommands `hyflow --help` lists (without `help`).
fn subcommands() -> Vec<String> {
    let (code, out, err) = hyflow(&["--help"]);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// The description of option `flag` (e.g. `--out`) in a long help text, if it has one.
fn option_help(help: &str, flag: &str) -> Option<String> {
    let mut lines = help.lines();
    lines.find(|l| {
        let t = l.trim_start();
        t.starts_with(&format!("{flag} ")) || t.contains(&format!(", {flag} ")) || t == flag
    })?;
    // Its lines (description, possible values, default) run to the next option or section.
    Some(
        lines
            .take_while(|l| {
                l.is_empty() || (l.starts_with(' ') && !l.trim_start().starts_with('-'))
            })
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

#[test]
fn every_subcommand_follows_the_conventions() {
    let commands = subcommands();
    assert!(commands.len() >= 15, "{commands:?}");
    for c in &commands {
        let (code, help, err) = hyflow(&[c, "--help"]);
        assert_eq!(code, 0, "{c}: {err}");
        let usage = help
            .lines()
            .find(|l| l.starts_with("Usage: "))
            .unwrap_or_else(|| panic!("{c}: no usage line:\n{help}"));
        // Positional arguments in order: <X>, [X] or <X>... (not [OPTIONS]).
        let mut positional: Vec<&str> = Vec::new();
        let mut value_of_flag = false;
        for t in usage.split_whitespace().skip(3) {
            if std::mem::take(&mut value_of_flag) {
                continue;
            }
            if t.trim_start_matches('[').starts_with('-') {
                value_of_flag = !t.contains('<');
            } else if t != "[OPTIONS]" {
                positional.push(t);
            }
        }
        if usage.contains("PIPELINE") {
            let at = positional
                .iter()
                .position(|p| p.contains("PIPELINE"))
                .unwrap_or_else(|| panic!("{c}: the pipeline is not positional: {usage}"));
            let first = if c == "bench-kafka" { 1 } else { 0 };
            assert_eq!(
                at, first,
                "{c}: the pipeline is not the first positional: {usage}"
            );
        }
        assert!(
            !help.contains("--pipeline"),
            "{c}: the pipeline is a positional argument, not --pipeline"
        );
        if let Some(out) = option_help(&help, "--out") {
            assert!(
                out.contains("DIR") || out.contains("director"),
                "{c}: --out is a directory: {out}"
            );
        }
        if let Some(out) = option_help(&help, "--out-file") {
            assert!(!out.contains("DIR"), "{c}: --out-file is a file: {out}");
        }
        if let Some(w) = option_help(&help, "--workers") {
            assert!(w.contains("[default: 1]"), "{c}: -w defaults to 1: {w}");
        }
        assert!(
            help.contains("-q, --quiet"),
            "{c}: no -q in its help:\n{help}"
        );
        for outside in ["../", "shared/", "/work/"] {
            assert!(!help.contains(outside), "{c}: help points at {outside}");
        }
        for rust in [
            "Option<", "Some(", "Vec<", "PathBuf", "usize", "u32", "i64", "f64",
        ] {
            assert!(!help.contains(rust), "{c}: help speaks Rust ({rust})");
        }
    }
}

#[test]
fn exit_statuses_say_what_went_wrong() {
    // Usage errors: 64, with clap's message on stderr.
    for args in [
        &["no-such-command"][..],
        &["replay"],
        &["replay", "pipelines/traffic.toml", "--no-such-flag"],
        &["replay", "pipelines/traffic.toml", "-w", "many"],
        &["completions", "powershell-7"],
        &[],
    ] {
        let (code, _, err) = hyflow(args);
        assert_eq!(code, 64, "{args:?}: {err}");
        assert!(
            err.contains("error:") || err.contains("Usage:"),
            "{args:?}: {err}"
        );
    }
    // A glob the shell expanded (several files where one is expected): a hint to quote it.
    let (code, _, err) = hyflow(&[
        "replay",
        "pipelines/nab-replay.toml",
        "--input",
        "fixtures/nab/nyc_taxi.parquet",
        "fixtures/nab/speed_7578.parquet",
    ]);
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("hint: \"fixtures/nab/speed_7578.parquet\" is a file")
            && err.contains("quote it"),
        "{err}"
    );
    // Help and version: 0, on stdout.
    for args in [&["--help"][..], &["--version"], &["replay", "--help"]] {
        let (code, out, err) = hyflow(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(!out.is_empty(), "{args:?}");
    }
    let (_, help, _) = hyflow(&["--help"]);
    assert!(
        help.contains("Exit status: 0 success, 1 the command failed, 2 an invalid pipeline file, 64 a usage error"),
        "{help}"
    );
    // An invalid pipeline: 2, in every command that reads one.
    let tmp = tempfile::tempdir().expect("tmp");
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\n[window]\nsize = \"10 sec\"\n").expect("write");
    let bad = bad.display().to_string();
    for args in [
        &["validate", &bad][..],
        &["replay", &bad],
        &["explain", &bad],
        &["test", &bad],
    ] {
        let (code, _, err) = hyflow(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("bad.toml:3:8"), "{args:?}: {err}");
    }
    // A run that fails: 1.
    let out = tmp.path().join("out").display().to_string();
    let (code, _, err) = hyflow(&[
        "replay",
        "pipelines/traffic.toml",
        "--input",
        "no-such-file.parquet",
        "--out",
        &out,
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no input file matches"), "{err}");
}

#[test]
fn quiet_prints_nothing_but_errors() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out").display().to_string();
    // Before or after the command's name alike.
    for args in [
        &["-q", "replay", "pipelines/traffic.toml", "--out", &out][..],
        &["replay", "pipelines/traffic.toml", "--out", &out, "--quiet"],
        &["validate", "-q", "pipelines/traffic.toml"],
        &["test", "-q", "pipelines/traffic.toml"],
    ] {
        let (code, stdout, stderr) = hyflow(args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert_eq!((stdout.as_str(), stderr.as_str()), ("", ""), "{args:?}");
    }
    // Without it, the same replay says what it did.
    let (code, stdout, _) = hyflow(&["replay", "pipelines/traffic.toml", "--out", &out]);
    assert_eq!(code, 0);
    assert!(stdout.contains("rows in"), "{stdout}");
    // Errors still come out.
    let (code, stdout, stderr) = hyflow(&[
        "replay",
        "-q",
        "pipelines/traffic.toml",
        "--input",
        "no-such-file.parquet",
    ]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("error: no input file matches"), "{stderr}");
}

#[test]
fn completions_for_bash_zsh_and_fish_name_the_commands() {
    for (shell, marker) in [
        ("bash", "_hyflow()"),
        ("zsh", "#compdef hyflow"),
        ("fish", "complete -c hyflow"),
    ] {
        let (code, out, err) = hyflow(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains(marker), "{shell}: {out}");
        for c in ["replay", "validate", "bench-kafka", "out-file", "quiet"] {
            assert!(out.contains(c), "{shell}: no {c}");
        }
    }
}
