//! `[[rules]]` (compiled against the features) and `[fuse]`.

use super::validate::Checker;
use crate::config::schema::*;
use crate::stages::features::FeatureSet;
use crate::stages::rules::CompiledRule;
use crate::stages::rules::Condition;
use std::collections::HashSet;

/// `[[rules]]`; returns the compiled rules in file order.
pub(super) fn rules(
    c: &mut Checker,
    rules: &[crate::config::detect::RuleConfig],
    fs: &FeatureSet,
    registry: Option<&crate::stages::registry::Schema>,
) -> Vec<CompiledRule> {
    let mut compiled = Vec::new();
    let mut names = HashSet::new();
    for r in rules {
        if !names.insert(r.name.clone()) {
            c.at(
                &r.when,
                format!("rule name {:?} is used twice", r.name),
                None,
            );
        }
        let sensors = match r.sensors.as_deref().map(glob::Pattern::new).transpose() {
            Ok(p) => p,
            Err(e) => {
                c.at(
                    &r.when,
                    format!("rule {:?}: `sensors` is not a valid glob: {e}", r.name),
                    None,
                );
                None
            }
        };
        match Condition::parse_all(r.when.get_ref(), fs, registry) {
            Ok(condition) => compiled.push(CompiledRule {
                name: r.name.clone(),
                severity: super::vocabulary::severity(r.severity),
                condition,
                sensors,
            }),
            Err(errs) => {
                let start = r.when.span().start;
                let quote = if loc_text_starts_with_triple(c.loc, start) {
                    3
                } else {
                    1
                };
                for e in errs {
                    let byte = r
                        .when
                        .get_ref()
                        .char_indices()
                        .nth(e.offset)
                        .map_or(r.when.get_ref().len(), |(b, _)| b);
                    c.errs.push(c.loc.at(
                        start + quote + byte,
                        format!("rule {:?}: {}", r.name, e.message),
                        None,
                    ));
                }
            }
        }
    }
    compiled
}

/// `[fuse]`.
pub(super) fn fuse(c: &mut Checker, config: &PipelineConfig) {
    let f = &config.fuse;
    let (open, close) = (*f.open.get_ref(), *f.close.get_ref());
    if !(0.0..=1.0).contains(&open) {
        c.at(&f.open, "fuse open must be in [0, 1]", None);
    }
    if !(0.0..=open).contains(&close) {
        c.at(
            &f.close,
            "fuse close must be in [0, open]",
            Some("close is the hysteresis level below which an open episode starts to resolve"),
        );
    }
    for (key, s) in [
        ("ai-weight", &f.ai_weight),
        ("rules-weight", &f.rules_weight),
    ] {
        let w = *s.get_ref();
        if !(w.is_finite() && w >= 0.0) {
            c.at(
                s,
                format!("fuse {key} {w} must be a finite number >= 0"),
                Some("a NaN or infinite weight makes every fused score NaN, and nothing can alert"),
            );
        }
    }
    if *f.ai_weight.get_ref() == 0.0 && *f.rules_weight.get_ref() == 0.0 {
        c.at(
            &f.ai_weight,
            "fuse ai-weight and rules-weight are both 0: every fused score would be 0",
            None,
        );
    }
    if f.min_windows == 0 || f.quiet_windows == 0 {
        c.top(
            "fuse min-windows and quiet-windows must be at least 1",
            None,
        );
    }
}

fn loc_text_starts_with_triple(loc: &crate::config::Locator, at: usize) -> bool {
    let t = &loc.text[at.min(loc.text.len())..];
    t.starts_with("\"\"\"") || t.starts_with("'''")
}
