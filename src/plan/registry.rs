//! `[registry]`: the attribute schema, class defaults, the unknown-sensor policy, and the
//! registry files read and checked (the registry is part of what a pipeline means, so
//! `hyflow validate` reports a bad row with its file and line, as it does a bad setting).

use super::validate::Checker;
use crate::config::registry::{AttributeType, AttributeValue, RegistryConfig, UnknownSensors};
use crate::config::schema::{OutputKind, PipelineConfig};
use crate::stages::registry::{Change, Defaults, Key, Schema, Unknown, load, parquet, tables};
use std::path::Path;
use std::sync::Arc;

/// The registry a pipeline runs with.
#[derive(Clone, Debug)]
pub struct RegistryPlan {
    /// Attributes rules may name.
    pub schema: Schema,
    /// Class defaults.
    pub defaults: Defaults,
    /// Windows of sensors the registry does not hold.
    pub unknown: Unknown,
    /// Every change in time order: the rows of the files at `i64::MIN`, then the change log.
    pub changes: Arc<Vec<Change>>,
    /// Rows of the sensors and edges files, and changes in the change log.
    pub counts: (usize, usize, usize),
    /// The registry topic a live run reads instead of the change log.
    pub topic: Option<String>,
    /// Where a live run records the changes it applied from the topic.
    pub record: Option<std::path::PathBuf>,
    /// Incidents: how long a member stays after its episode resolves, ms.
    pub incident_grace_ms: i64,
}

impl RegistryPlan {
    /// What a run starts from: every change (a replay), or only the rows of the sensors and
    /// edges files (a live run that reads the topic instead of the change log).
    pub fn at_start(&self, reads_topic: bool) -> &[Change] {
        if reads_topic {
            // The files' rows are at i64::MIN, so they sort before every logged change.
            &self.changes[..self.counts.0 + self.counts.1]
        } else {
            &self.changes
        }
    }
}

/// Reads one registry file (true: it is TOML).
type Loader<'a> = dyn Fn(&Path, Format) -> Result<Vec<Change>, load::LoadError> + 'a;

/// A registry file's format, by its extension.
#[derive(Clone, Copy)]
enum Format {
    Csv,
    Parquet,
    Toml,
    Jsonl,
}

/// Names a registry row has whatever the schema says.
const FIXED: [&str; 6] = ["sensor", "asset", "segment", "class", "unit", "enabled"];

/// The attribute schema of `[registry]` (empty without one); checked by [`registry`].
pub(super) fn schema(registry: Option<&RegistryConfig>) -> Option<Schema> {
    let r = registry?;
    let attrs = r.attributes.get_ref();
    Some(Schema {
        names: attrs.keys().cloned().collect(),
        is_bool: attrs.values().map(|t| *t == AttributeType::Bool).collect(),
    })
}

/// `[registry]`, and sinks that need one.
pub(super) fn registry(c: &mut Checker, config: &PipelineConfig) -> Option<RegistryPlan> {
    let Some(r) = &config.registry else {
        if let Some(s) = config
            .sink
            .iter()
            .find(|s| s.output == OutputKind::Incidents)
        {
            c.at(
                &s.name,
                format!(
                    "sink {:?} writes incidents, which follow the registry's topology, but the pipeline has no [registry]",
                    s.name.get_ref()
                ),
                Some("add [registry] with `sensors` (assets) and `edges` (the topology)"),
            );
        }
        return None;
    };
    let schema = schema(Some(r)).unwrap_or_default();
    let errs_before = c.errs.len();
    for name in r.attributes.get_ref().keys() {
        let ident = name
            .chars()
            .next()
            .is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '_')
            && name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        if !ident {
            c.at(
                &r.attributes,
                format!("registry attribute {name:?}: a name is letters, digits and `_`"),
                Some("rules name it as registry.NAME"),
            );
        } else if FIXED.contains(&name.as_str()) {
            c.at(
                &r.attributes,
                format!("registry attribute {name:?} is a column every registry row has"),
                None,
            );
        }
    }
    let defaults = defaults(c, r, &schema);
    let mut changes = Vec::new();
    let read =
        |c: &mut Checker, key: &toml::Spanned<String>, what: &str, f: &Loader| -> Vec<Change> {
            let path = key.get_ref();
            if path.is_empty() {
                return Vec::new();
            }
            let ext = Path::new(path).extension().and_then(|e| e.to_str());
            let format = match (what, ext) {
                ("changes", Some("jsonl" | "json")) => Some(Format::Jsonl),
                ("changes", _) => None,
                (_, Some("csv")) => Some(Format::Csv),
                (_, Some("toml")) => Some(Format::Toml),
                (_, Some("parquet")) => Some(Format::Parquet),
                _ => None,
            };
            let Some(format) = format else {
                let want = if what == "changes" {
                    ".jsonl"
                } else {
                    ".csv, .parquet or .toml"
                };
                c.at(
                    key,
                    format!("registry {what} {path:?}: hyflow reads {what} from {want} files"),
                    None,
                );
                return Vec::new();
            };
            match f(Path::new(path), format) {
                Ok(v) => v,
                Err(e) => {
                    c.at(key, format!("registry {what}: {e}"), None);
                    Vec::new()
                }
            }
        };
    let rows = read(c, &r.sensors, "sensors", &|p, format| match format {
        Format::Toml => tables::toml_file(p, &schema, true),
        Format::Parquet => parquet::sensors(p, &schema),
        Format::Csv | Format::Jsonl => load::sensors_csv(p, &schema),
    });
    let edges = read(c, &r.edges, "edges", &|p, format| match format {
        Format::Toml => tables::toml_file(p, &schema, false),
        Format::Parquet => parquet::edges(p),
        Format::Csv | Format::Jsonl => load::edges_csv(p),
    });
    let log = read(c, &r.changes, "changes", &|p, _| {
        load::changes_jsonl(p, &schema)
    });
    // (A TOML sensors file may hold edges too.)
    let sensor_rows = rows
        .iter()
        .filter(|ch| matches!(ch.key, Key::Sensor(_)))
        .count();
    let counts = (
        sensor_rows,
        rows.len() - sensor_rows + edges.len(),
        log.len(),
    );
    // An edge given in both files: the edges file's row holds (it comes later).
    changes.extend(rows);
    changes.extend(edges);
    changes.extend(log);
    if let (Some(record), None) = (&r.record, &r.topic) {
        c.at(
            record,
            "[registry] record: only a live run that reads a registry `topic` records changes",
            Some("topic = \"registry\""),
        );
    }
    if r.topic
        .as_ref()
        .is_some_and(|t| t.get_ref().trim().is_empty())
    {
        c.at(
            r.topic.as_ref().expect("checked"),
            "[registry] topic is empty",
            None,
        );
    }
    if c.errs.len() > errs_before {
        return None;
    }
    // Rows at start first, then the log (each part is already in time order).
    changes.sort_by_key(|ch| ch.time);
    Some(RegistryPlan {
        schema,
        defaults,
        unknown: match r.unknown_sensors {
            UnknownSensors::Accept => Unknown::Accept,
            UnknownSensors::Reject => Unknown::Reject,
        },
        changes: Arc::new(changes),
        counts,
        topic: r.topic.as_ref().map(|t| t.get_ref().clone()),
        record: r.record.as_ref().map(|p| p.get_ref().into()),
        incident_grace_ms: r.incident_grace.ms,
    })
}

fn defaults(c: &mut Checker, r: &RegistryConfig, schema: &Schema) -> Defaults {
    let mut classes = Vec::new();
    for class in &r.class {
        let pattern = match glob::Pattern::new(class.pattern.get_ref()) {
            Ok(p) => p,
            Err(e) => {
                c.at(
                    &class.pattern,
                    format!(
                        "registry class match {:?} is not a valid glob: {e}",
                        class.pattern.get_ref()
                    ),
                    None,
                );
                continue;
            }
        };
        let mut values = vec![None; schema.names.len()];
        for (name, v) in class.attributes.get_ref() {
            let Some((i, is_bool)) = schema.index_of(name) else {
                c.at(
                    &class.attributes,
                    format!(
                        "registry class {:?}: unknown attribute `{name}`",
                        class.pattern.get_ref()
                    ),
                    Some("declare it in [registry] attributes"),
                );
                continue;
            };
            let x = match (v, is_bool) {
                (AttributeValue::Number(x), false) if x.is_finite() => *x,
                (AttributeValue::Bool(b), true) => f64::from(*b),
                _ => {
                    c.at(
                        &class.attributes,
                        format!(
                            "registry class {:?}: attribute `{name}` is a {}",
                            class.pattern.get_ref(),
                            if is_bool { "boolean" } else { "finite number" }
                        ),
                        None,
                    );
                    continue;
                }
            };
            values[i] = Some(x.to_bits());
        }
        classes.push((pattern, values));
    }
    Defaults {
        classes,
        width: schema.names.len(),
    }
}
