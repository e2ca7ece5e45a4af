//! The `[[test]]` blocks of the shipped pipelines pass, and a wrong expectation is reported
//! with what differed.

use hyflow::plan;
use std::path::Path;

#[test]
fn shipped_pipeline_tests_pass() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut ran = 0;
    for name in ["manufacturing", "traffic", "bench", "nab", "nab-replay"] {
        let p = plan::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("pipelines/{name}.toml")),
        )
        .expect("valid");
        for o in
            hyflow::tools::pipeline_test::run_all(&p, &tmp.path().join(name)).expect("tests run")
        {
            assert!(
                o.failures.is_empty(),
                "{name}: {:?} failed: {:#?}",
                o.name,
                o.failures
            );
            ran += 1;
        }
    }
    assert!(ran >= 4, "the shipped pipelines carry tests");
}

#[test]
fn wrong_expectations_fail_with_details() {
    let tmp = tempfile::tempdir().expect("tmp");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/pipelines/manufacturing.toml"
    ))
    .expect("read");
    let text = text
        .replace(
            "features = { count = 10, mean = 60.04, max = 60.2 }",
            "features = { count = 10, mean = 61.0, max = 60.2 }",
        )
        .replace(
            "window-end = \"2024-03-04 00:05:10\"",
            "window-end = \"2024-03-04 00:05:30\"",
        );
    let file = tmp.path().join("m.toml");
    std::fs::write(&file, text).expect("write");
    let p = plan::load(&file).expect("valid");
    let outcomes =
        hyflow::tools::pipeline_test::run_all(&p, &tmp.path().join("s")).expect("tests run");
    assert_eq!(outcomes.len(), 2);
    assert_eq!(
        outcomes[0].failures,
        vec![
            "window \"m90-temp\" 2024-03-04 00:00:00: mean = 60.040000000000006, expected 61"
                .to_string()
        ]
    );
    assert_eq!(outcomes[1].failures.len(), 1);
    assert!(outcomes[1].failures[0].starts_with("no open alert for \"m91-temp\" at 2024-03-04 00:05:30; alerts seen: [m91-temp open at 2024-03-04 00:05:10"), "{:?}", outcomes[1].failures);
}

#[test]
fn invalid_tests_are_validation_errors() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/bench.toml"))
            .expect("read");
    let text = text.replace(
        "features = { count = 80, mean = 20.05 }",
        "features = { count = 80, median = 20.05 }",
    );
    let err = plan::parse(Path::new("b.toml"), &text)
        .expect_err("invalid")
        .to_string();
    assert!(
        err.contains("expects feature \"median\", which is not computed"),
        "{err}"
    );
}
