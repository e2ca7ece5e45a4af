//! Entry points of the fuzz targets (`fuzz/`, cargo-fuzz) and of the regression test that
//! replays their corpus (`tests/it/hostile.rs`): the parsers that read untrusted input, each with
//! the invariants it must keep on any input. A panic here is a bug.

use crate::config::{ColumnMapping, MessageFormat, TimeUnit};
use crate::stages::features::FeatureSet;
use crate::stages::rules::Condition;
use crate::stages::source::message::{Message, MessageDecoder};
use crate::timefmt::{Zone, parse_text_time};
use std::path::Path;

/// Parses and validates a pipeline file; true when it is valid. An invalid one must come
/// with at least one located diagnostic.
pub fn pipeline_file(text: &str) -> bool {
    match crate::plan::parse(Path::new("fuzz.toml"), text) {
        Ok(_) => true,
        Err(crate::config::ConfigError::Invalid(d)) => {
            assert!(!d.is_empty(), "an invalid pipeline without a diagnostic");
            assert!(d.iter().all(|x| x.line >= 1 && x.column >= 1));
            false
        }
        Err(e) => panic!("parsing text gave a non-diagnostic error: {e}"),
    }
}

fn features() -> FeatureSet {
    let mut f = FeatureSet::default();
    for (n, k) in crate::stages::features::SCALAR_FEATURES {
        f.push(n, *k);
    }
    f
}

/// Parses a rule over every scalar feature; a rule that parses is evaluated on ordinary,
/// NaN and infinite rows; an error points inside the text.
pub fn rule(text: &str) {
    let fs = features();
    match Condition::parse(text, &fs) {
        Ok(c) => {
            for x in [1.0, 0.0, f64::NAN, f64::INFINITY, -1e308] {
                let _ = c.eval(&vec![x; fs.names.len()]);
            }
        }
        Err(e) => assert!(
            e.offset <= text.chars().count(),
            "error offset {} beyond the text",
            e.offset
        ),
    }
}

/// Decodes a payload as a message in every format (with a tombstone beside it): each message
/// yields readings or one error, never both, never neither.
pub fn kafka_message(payload: &[u8]) {
    for format in [
        MessageFormat::Json,
        MessageFormat::Csv,
        MessageFormat::ArrowIpc,
    ] {
        let d = MessageDecoder::new(
            format,
            ColumnMapping::default(),
            None,
            TimeUnit::Ms,
            Zone::UTC,
        );
        let msgs = [
            Message {
                offset: 0,
                timestamp: Some(1_700_000_000_000),
                payload: Some(payload),
            },
            Message {
                offset: 1,
                timestamp: None,
                payload: None,
            },
        ];
        let out = d.decode(&msgs);
        assert_eq!(out.offsets.len(), out.batch.num_rows());
        let with_rows = usize::from(!out.offsets.is_empty());
        assert_eq!(
            with_rows + out.errors.len(),
            msgs.len(),
            "a message gave both rows and an error, or neither: {out:?}"
        );
        assert!(
            out.errors.iter().any(|(o, _)| *o == 1),
            "the tombstone is an error"
        );
    }
}

/// Parses a text time in several zones; a time that parses keeps its offset whatever the
/// zone.
pub fn text_time(text: &str) {
    let zones = [
        Zone::UTC,
        Zone::Fixed(7_200_000),
        Zone::parse("Europe/Berlin").unwrap_or(Zone::UTC),
    ];
    let parsed = parse_text_time(text);
    for z in &zones {
        let t = z.parse_text(text);
        if let Some(p) = parsed
            && p.offset_ms.is_some()
        {
            assert_eq!(t, p.to_utc(&Zone::UTC), "an explicit offset must win");
        }
        if let Some(t) = t {
            let _ = z.utc_to_local(t);
        }
    }
}

/// The registry's parsers on one input: split at NUL bytes into a registry topic message's
/// key, value and `effective-time` header, then the whole text as a change-log line and as a
/// TOML registry file. A message that decodes is recorded as a change-log line that reads back
/// as the same change; whatever fails says so, with a line inside the text for a file.
pub fn registry(data: &[u8]) {
    use crate::stages::registry::{Change, Schema, load, tables, topic};
    let schema = Schema::example();
    let mut parts = data.splitn(3, |b| *b == 0);
    let key = parts.next();
    let payload = parts.next();
    let header = parts.next();
    if let Ok((key, value, time)) = topic::decode(key, payload, header, &schema) {
        let c = Change {
            time: time.unwrap_or(0),
            key,
            value,
        };
        let line = topic::to_line(&c, &schema);
        let back = load::change(&line, &schema)
            .unwrap_or_else(|e| panic!("a recorded change does not read back: {e}: {line}"));
        assert_eq!(back, c, "a recorded change reads back as another: {line}");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = load::change(text, &schema);
        for sensors in [true, false] {
            if let Err(e) = tables::toml_text("fuzz.toml", text, &schema, sensors) {
                assert!(
                    e.line >= 1 && e.line <= text.lines().count().max(1) + 1,
                    "line {} outside the text: {e}",
                    e.line
                );
            }
        }
    }
}
