//! Environment variables in a pipeline file, substituted before it is parsed (as Vector does):
//! `${VAR}` is the variable's value, `${VAR:-default}` the default when it is unset or empty,
//! and `$$` a literal `$`. A `$` followed by anything else stays as it is. An unset variable
//! without a default is an error located at its `${`, naming it; so is a `${` without its `}`
//! or with a name that is not letters, digits and `_`.

use super::{Diagnostic, Locator};

/// `text` with every variable substituted, looking each up with `lookup`; or every mistake,
/// located in the file.
pub fn substitute(
    loc: &Locator<'_>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<Diagnostic>> {
    let text = loc.text;
    let mut out = String::with_capacity(text.len());
    let mut errs = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let at = text.len() - rest.len() + i;
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(end) = body
            .find(['}', '\n'])
            .filter(|&e| body.as_bytes()[e] == b'}')
        else {
            errs.push(loc.at(
                at,
                "`${` without its closing `}`",
                Some("write ${NAME} or ${NAME:-default}; $$ is a literal $".into()),
            ));
            rest = body;
            continue;
        };
        let (name, default) = match body[..end].split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (&body[..end], None),
        };
        rest = &body[end + 1..];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            errs.push(loc.at(
                at,
                format!("{:?} is not a variable name", name),
                Some("a name is letters, digits and _, e.g. ${KAFKA_BROKERS}".into()),
            ));
            continue;
        }
        match (lookup(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => errs.push(loc.at(
                at,
                format!("environment variable {name} is not set"),
                Some(format!("set it, or give a default: ${{{name}:-value}}")),
            )),
        }
    }
    out.push_str(rest);
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn sub(text: &str) -> Result<String, Vec<Diagnostic>> {
        let loc = Locator::new(Path::new("p.toml"), text);
        substitute(&loc, |n| match n {
            "BROKERS" => Some("kafka:9092".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        })
    }

    #[test]
    fn variables_defaults_and_literal_dollars() {
        let got = sub(
            "brokers = \"${BROKERS}\"\ngroup = \"${GROUP:-hyflow}\"\nx = \"$$5 $x ${EMPTY:-e}\"",
        );
        assert_eq!(
            got.expect("substituted"),
            "brokers = \"kafka:9092\"\ngroup = \"hyflow\"\nx = \"$5 $x e\""
        );
        assert_eq!(sub("no variables").expect("same"), "no variables");
    }

    #[test]
    fn an_unset_variable_is_a_located_error_naming_it() {
        let errs =
            sub("name = \"p\"\nbrokers = \"${KAFKA_BROKERS}\" # ${BAD NAME}\nx = \"${OPEN\"")
                .expect_err("errors");
        let all: Vec<String> = errs
            .iter()
            .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
            .collect();
        assert_eq!(
            all,
            [
                "2:12 environment variable KAFKA_BROKERS is not set",
                "2:32 \"BAD NAME\" is not a variable name",
                "3:6 `${` without its closing `}`",
            ]
        );
        assert!(
            errs[0]
                .hint
                .as_deref()
                .is_some_and(|h| h.contains("${KAFKA_BROKERS:-value}"))
        );
    }
}
