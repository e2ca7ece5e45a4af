use super::*;

fn sample(id: u64) -> Checkpoint {
    Checkpoint {
        id,
        at: 1_700_000_000_000 + id as i64,
        pipeline_hash: 42,
        definition: "{}".into(),
        pipeline: "p".into(),
        workers: 2,
        written_ms: 0,
        sources: vec![
            SourceCut::File {
                name: "a.parquet".into(),
                row: 17,
                seen: Some(5),
            },
            SourceCut::FileDone {
                name: "b.parquet".into(),
            },
        ],
        state: vec![
            WorkerState {
                windows: vec![SeriesSnapshot {
                    name: "s1".into(),
                    pending: vec![(1, f64::NAN, 0), (2, 3.5, 1)],
                    next_start: -10,
                    prev: Some((0, -0.0)),
                }],
                scoring: Some(ScoringState::default()),
            },
            WorkerState::default(),
        ],
        sinks: vec![SinkPosition {
            name: "windows".into(),
            next_part: Some(3),
            files: vec!["out/part-00000.parquet".into()],
        }],
        incidents: None,
    }
}

#[test]
fn a_written_checkpoint_reads_back_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let c = sample(1);
    let path = write(dir.path(), &c, 3).unwrap();
    assert_eq!(path.file_name().unwrap(), "checkpoint-0000000001.hfck");
    let back = read(&path).unwrap();
    // NaN and -0.0 survive (compared as bits).
    assert_eq!(encode(&back), encode(&c));
    let p = &back.state[0].windows[0];
    assert!(p.pending[0].1.is_nan() && p.prev.unwrap().1.is_sign_negative());
    let text = describe(&path, &back);
    assert!(text.contains("a.parquet: from row 17"), "{text}");
    assert!(text.contains("b.parquet: read to its end"), "{text}");
    assert!(text.contains("windows: 1 file(s), next part 3"), "{text}");
}

#[test]
fn only_the_newest_are_kept_and_the_newest_whole_one_is_used() {
    let dir = tempfile::tempdir().unwrap();
    for id in 1..=5 {
        write(dir.path(), &sample(id), 3).unwrap();
    }
    let ids: Vec<u64> = list(dir.path()).iter().map(|(i, _)| *i).collect();
    assert_eq!(ids, vec![5, 4, 3]);
    // The newest is cut short (a crash while writing it would leave a temporary instead, but
    // a disk can lose a tail): the one before it is used, and the damage is reported.
    let newest = dir.path().join(file_name(5));
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() - 7]).unwrap();
    // One bit flipped in the next.
    let next = dir.path().join(file_name(4));
    let mut bytes = std::fs::read(&next).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&next, bytes).unwrap();
    let (found, bad) = latest(dir.path());
    let (path, c) = found.expect("checkpoint 3 is whole");
    assert_eq!((c.id, path), (3, dir.path().join(file_name(3))));
    let msgs: Vec<String> = bad.iter().map(ToString::to_string).collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(
        msgs[0].contains("checkpoint-0000000005.hfck: cut short"),
        "{msgs:?}"
    );
    assert!(
        msgs[1].contains("checkpoint-0000000004.hfck: the state does not match its checksum"),
        "{msgs:?}"
    );
}

#[test]
fn a_file_that_is_not_a_checkpoint_or_of_another_format_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(file_name(9));
    std::fs::write(&p, b"PAR1 not this").unwrap();
    let e = read(&p).unwrap_err().to_string();
    assert!(
        e.contains("checkpoint-0000000009.hfck: not a hyflow checkpoint"),
        "{e}"
    );
    let mut bytes = encode(&sample(9));
    bytes[8] = 7;
    std::fs::write(&p, bytes).unwrap();
    let e = read(&p).unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "checkpoint format 7, this hyflow reads format {FORMAT_VERSION}"
        )),
        "{e}"
    );
    // A temporary left by a crash while writing is not a checkpoint.
    std::fs::write(dir.path().join(".checkpoint-0000000010.hfck.tmp"), b"x").unwrap();
    assert_eq!(list(dir.path()).len(), 1);
}

#[test]
fn the_pipeline_hash_ignores_the_description_but_not_the_detectors() {
    let a = crate::plan::load(std::path::Path::new("pipelines/manufacturing.toml"))
        .unwrap()
        .config;
    let mut b = a.clone();
    b.description = "another text".into();
    assert_eq!(pipeline_hash(&a), pipeline_hash(&b));
    let w = b.window.size.get_mut();
    w.ms += 1000;
    assert_ne!(pipeline_hash(&a), pipeline_hash(&b));
}

#[test]
fn inspect_says_what_the_parts_of_a_checkpoint_take() {
    use crate::stages::detect::{DetectorKind, DetectorSpec, Fuse, Scorer, WindowMeta};
    let detectors = vec![
        DetectorSpec::new(DetectorKind::EwmaZ, vec![0]),
        DetectorSpec::new(DetectorKind::SeasonalZ, vec![0]),
    ];
    let mut scorer = Scorer::new(
        detectors,
        Vec::new(),
        0,
        Fuse::default(),
        1000,
        crate::timefmt::Zone::UTC,
    );
    for i in 0..50 {
        for slot in 0..3 {
            let meta = WindowMeta {
                start: i * 3_600_000,
                values: 1,
                filled: 0,
            };
            scorer.score(slot, "s", meta, &[f64::from(slot) + i as f64], &[]);
        }
    }
    let saved = scorer.save();
    // The parts add up to the whole (less the length of the sensors' list).
    let z = saved.sizes();
    let whole = bincode::serialized_size(&saved).unwrap();
    assert_eq!(
        z.detectors.iter().sum::<u64>() + z.calibration + z.other,
        whole - 8
    );
    assert!(
        z.detectors[1] > 10 * z.detectors[0],
        "24 buckets against one mean: {z:?}"
    );
    let mut c = sample(1);
    c.state[0].scoring.as_mut().unwrap().scorer = saved;
    let text = describe(Path::new("c.hfck"), &c);
    let at = |t: &str, s: &str| t.find(s).unwrap_or_else(|| panic!("{s} in {t}"));
    // Largest first; the definition ("{}") names no detector, so they go by index.
    assert!(at(&text, "encoded sizes:") < at(&text, "open windows 0.0 MB"));
    assert!(at(&text, "detector #1: 0.0") < at(&text, "detector #0: 0.0"));
    assert!(at(&text, "calibration histories") > at(&text, "detector #0"));
    // Named from the definition the checkpoint holds.
    c.definition =
        r#"{"detect":{"detector":[{"kind":"ewma-z","name":null},{"kind":"seasonal-z","name":"daily"}]}}"#.into();
    let text = describe(Path::new("c.hfck"), &c);
    assert!(at(&text, "detector daily (seasonal-z): ") < at(&text, "detector ewma-z: "));
}
