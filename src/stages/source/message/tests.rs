//! Message decoding: every format, and every kind of malformed message.

use super::*;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMillisecondType};

fn decoder(format: MessageFormat) -> MessageDecoder {
    MessageDecoder::new(
        format,
        ColumnMapping::default(),
        None,
        TimeUnit::Ms,
        crate::timefmt::Zone::UTC,
    )
}

fn msg(offset: i64, payload: &[u8]) -> Message<'_> {
    Message {
        offset,
        timestamp: Some(1_700_000_000_000),
        payload: Some(payload),
    }
}

fn rows(d: &Decoded) -> Vec<(Option<String>, Option<i64>, Option<f64>)> {
    let b = &d.batch;
    let s = b.column(0).as_string::<i32>();
    let t = b.column(1).as_primitive::<TimestampMillisecondType>();
    let v = b.column(2).as_primitive::<Float64Type>();
    (0..b.num_rows())
        .map(|i| {
            (
                (!s.is_null(i)).then(|| s.value(i).to_string()),
                (!t.is_null(i)).then(|| t.value(i)),
                (!v.is_null(i)).then(|| v.value(i)),
            )
        })
        .collect()
}

#[test]
fn json_objects_arrays_and_text_values() {
    let d = decoder(MessageFormat::Json).decode(&[
        msg(5, br#"{"sensor_id": "a", "ts": 1700000000000, "value": 1.5}"#),
        msg(
            6,
            br#"[{"sensor_id": "b", "ts": 1700000001000, "value": 2}, {"sensor_id": 7, "ts": "2023-11-14 22:13:22", "value": "NaN"}]"#,
        ),
        msg(7, br#"{"sensor_id": "c", "ts": 1700000002000, "value": null}"#),
    ]);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    let r = rows(&d);
    assert_eq!(r.len(), 4);
    assert_eq!(r[0], (Some("a".into()), Some(1_700_000_000_000), Some(1.5)));
    assert_eq!(r[1], (Some("b".into()), Some(1_700_000_001_000), Some(2.0)));
    assert_eq!(r[2].0.as_deref(), Some("7"));
    assert_eq!(r[2].1, Some(1_700_000_002_000));
    assert!(
        r[2].2.is_some_and(f64::is_nan),
        "NaN text is a NaN value for cleaning to judge"
    );
    assert_eq!(r[3], (Some("c".into()), Some(1_700_000_002_000), None));
    assert_eq!(d.offsets, vec![5, 6, 6, 7]);
    // An integer sensor id is its decimal text (documented); a fractional one is refused.
    let d = decoder(MessageFormat::Json).decode(&[
        msg(
            8,
            br#"{"sensor_id": 12345678901234567890, "ts": 1700000000000, "value": 1}"#,
        ),
        msg(9, br#"{"sensor_id": 7.5, "ts": 1700000000000, "value": 1}"#),
        msg(10, br#"{"sensor_id": -3, "ts": 1700000000000, "value": 1}"#),
    ]);
    let r = rows(&d);
    assert_eq!(r[0].0.as_deref(), Some("12345678901234567890"));
    assert_eq!(r[1].0.as_deref(), Some("-3"));
    assert_eq!(d.errors.len(), 1);
    assert!(d.errors[0].1.contains("not a sensor id"), "{:?}", d.errors);
}

#[test]
fn malformed_messages_are_errors_with_a_reason_and_the_rest_is_kept() {
    let good = br#"{"sensor_id": "a", "ts": 1700000000000, "value": 1}"#;
    let bad: Vec<(&[u8], &str)> = vec![
        (br#"{"sensor_id": "a", "ts": 17000"#, "not JSON"),
        (
            br#"{"sensor_id": "a", "ts": "soon", "value": 1}"#,
            "is not a time",
        ),
        (
            br#"{"sensor_id": "a", "ts": 1700000000000, "value": "hot"}"#,
            "is not a number",
        ),
        (
            br#"{"sensor_id": "a", "ts": 1700000000000, "value": 1e400}"#,
            "not JSON",
        ),
        (
            br#"{"sensor_id": "a", "ts": 1700000000000, "value": [1]}"#,
            "an array, not a number",
        ),
        (
            br#"{"sensor_id": {}, "ts": 1700000000000, "value": 1}"#,
            "not a sensor id",
        ),
        (
            br#"{"ts": 1700000000000, "value": 1}"#,
            "no field \"sensor_id\"",
        ),
        (
            br#"{"sensor_id": "a", "ts": 99999999999999, "value": 1}"#,
            "ahead of the message's Kafka timestamp",
        ),
        (b"", "empty message"),
        (b"\x00\xff\xfe junk", "not JSON"),
        (
            br#"[{"sensor_id": "a", "ts": 1700000000000, "value": 1}, 3]"#,
            "element 1: expected an object",
        ),
        (b"[]", "empty JSON array"),
        (b"42", "got a number"),
    ];
    let mut messages = vec![msg(0, good)];
    for (i, (p, _)) in bad.iter().enumerate() {
        messages.push(msg(i as i64 + 1, p));
    }
    messages.push(msg(100, good));
    let d = decoder(MessageFormat::Json).decode(&messages);
    assert_eq!(
        d.offsets,
        vec![0, 100],
        "only the good messages give readings"
    );
    assert_eq!(d.errors.len(), bad.len());
    for ((offset, reason), (i, (_, want))) in d.errors.iter().zip(bad.iter().enumerate()) {
        assert_eq!(*offset, i as i64 + 1);
        assert!(
            reason.contains(want),
            "message {offset}: {reason:?} lacks {want:?}"
        );
    }
}

#[test]
fn csv_lines_in_the_configured_order() {
    let d = MessageDecoder::new(
        MessageFormat::Csv,
        ColumnMapping::default(),
        Some(vec!["ts".into(), "sensor_id".into(), "value".into()]),
        TimeUnit::S,
        crate::timefmt::Zone::UTC,
    )
    .decode(&[
        msg(0, b"1700000000,m1,3.25\n"),
        msg(1, b"1700000000,m1"),
        msg(2, b"1700000000,m1,abc"),
        msg(3, b"2023-11-14 22:13:20,m2,-inf"),
    ]);
    let r = rows(&d);
    assert_eq!(
        r[0],
        (Some("m1".into()), Some(1_700_000_000_000), Some(3.25))
    );
    assert_eq!(r[1].2, Some(f64::NEG_INFINITY));
    assert_eq!(d.errors.len(), 2);
    assert!(
        d.errors[0].1.contains("2 fields, expected 3"),
        "{:?}",
        d.errors
    );
    assert!(d.errors[1].1.contains("is not a number"), "{:?}", d.errors);
}

#[test]
fn arrow_ipc_streams() {
    use arrow_array::{Float32Array, Int64Array, StringArray};
    let schema = Arc::new(Schema::new(vec![
        Field::new("sensor_id", DataType::Utf8, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("value", DataType::Float32, false),
    ]));
    let b = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["x", "y"])),
            Arc::new(Int64Array::from(vec![1_700_000_000_000, 1_700_000_000_500])),
            Arc::new(Float32Array::from(vec![0.5, 1.5])),
        ],
    )
    .unwrap();
    let mut buf = Vec::new();
    {
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut buf, &schema).unwrap();
        w.write(&b).unwrap();
        w.finish().unwrap();
    }
    let d = decoder(MessageFormat::ArrowIpc).decode(&[msg(3, &buf), msg(4, b"junk")]);
    assert_eq!(
        rows(&d),
        vec![
            (Some("x".into()), Some(1_700_000_000_000), Some(0.5)),
            (Some("y".into()), Some(1_700_000_000_500), Some(1.5)),
        ]
    );
    assert_eq!(d.offsets, vec![3, 3]);
    assert_eq!(d.errors.len(), 1);
    assert!(d.errors[0].1.contains("not an Arrow IPC stream"));
}
