//! Carrying a checkpoint's state over to a changed pipeline (`--from-checkpoint`, and a live
//! run's reload on SIGHUP): allowed when the change leaves the saved state's meaning intact,
//! i.e. touches only what keeps no state.

/// The top-level keys of a pipeline that may differ: rules are evaluated window by window
/// and keep nothing; `[compute]` chooses who computes (with checkpoints, detector state is
/// kept on the CPU whatever the device). Everything else (source, cleaning, windows,
/// features, detectors, fusion, registry, sinks, the name) shapes the state or the outputs'
/// positions and must be the same.
pub const CARRIED_OVER: &[&str] = &["rules", "compute"];

/// Whether state saved under the pipeline `definition` (a checkpoint's
/// [`definition`](super::Checkpoint::definition)) may go on in `now`: Ok, or the settings that
/// differ (dotted paths such as `window.size`, at most 8) and would not fit it.
pub fn carry_over(
    definition: &str,
    now: &crate::config::PipelineConfig,
) -> Result<(), Vec<String>> {
    let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
    let (Some(mut then), Some(mut now)) = (parse(definition), parse(&super::definition(now)))
    else {
        return Err(vec![
            "(the checkpoint does not hold its pipeline's definition)".into(),
        ]);
    };
    for v in [&mut then, &mut now] {
        if let Some(o) = v.as_object_mut() {
            for k in CARRIED_OVER {
                o.remove(*k);
            }
        }
    }
    let mut differ = Vec::new();
    diff("", &then, &now, &mut differ);
    if differ.is_empty() {
        Ok(())
    } else {
        Err(differ)
    }
}

/// Appends the dotted paths at which `a` and `b` differ (leaves, or whole arrays).
fn diff(at: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    if a == b || out.len() >= 8 {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                let null = Value::Null;
                diff(
                    &path,
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        _ => out.push(at.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> crate::config::PipelineConfig {
        let loc = crate::config::Locator::new(std::path::Path::new("p.toml"), text);
        crate::config::from_toml(&loc).expect("config")
    }

    const BASE: &str = r#"
name = "p"
[source]
kind = "parquet"
path = "in.parquet"
[window]
kind = "tumbling"
size = "10s"
[[rules]]
name = "hot"
when = "max > 90"
severity = "warning"
"#;

    fn definition_of(text: &str) -> String {
        super::super::definition(&config(text))
    }

    #[test]
    fn rules_and_compute_may_change_the_rest_may_not() {
        let c = definition_of(BASE);
        assert_eq!(carry_over(&c, &config(BASE)), Ok(()));
        let rules = BASE.replace("max > 90", "max > 95");
        assert_eq!(carry_over(&c, &config(&rules)), Ok(()));
        let compute = format!("{BASE}\n[compute]\ndevice = \"cpu\"\n");
        assert_eq!(carry_over(&c, &config(&compute)), Ok(()));
        let window = BASE.replace("size = \"10s\"", "size = \"20s\"");
        assert_eq!(
            carry_over(&c, &config(&window)),
            Err(vec!["window.size".to_string()])
        );
        let both = window
            .replace("max > 90", "max > 95")
            .replace("in.parquet", "b.parquet");
        assert_eq!(
            carry_over(&c, &config(&both)),
            Err(vec!["source.path".to_string(), "window.size".to_string()])
        );
    }
}
