//! The rule expression language: `max > 95 and slope > 0.5`.
//!
//! Grammar (lowest precedence first): `or`, `and`, `not`, comparisons (`> >= < <= == !=`),
//! `+ -`, `* /`, unary `-`, atoms (numbers, feature names, `abs(x)`, `min(a, b)`, `max(a, b)`,
//! parentheses; `registry.NAME`, a registry attribute of the window's sensor, as of the
//! window's end: a number, or a boolean used as a condition; a missing one is NaN, so every
//! comparison with it is false). Rules are parsed and type-checked at validation time; errors carry the
//! character column of the mistake within the expression. A [`CompiledRule`] is a rule ready
//! to evaluate: its name, [`Severity`], condition and the sensors it applies to.

use crate::stages::features::FeatureSet;

/// Rule severity.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Severity {
    /// Worth a look (rule score 0.2).
    Info,
    /// Needs attention (rule score 0.6).
    Warning,
    /// Act now (rule score 1.0).
    Critical,
}

impl Severity {
    /// The rule score a fired rule of this severity contributes.
    pub fn weight(self) -> f64 {
        match self {
            Severity::Info => 0.2,
            Severity::Warning => 0.6,
            Severity::Critical => 1.0,
        }
    }
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// A rule ready to evaluate.
#[derive(Clone, Debug)]
pub struct CompiledRule {
    /// Its name.
    pub name: String,
    /// Its severity.
    pub severity: Severity,
    /// The condition.
    pub condition: Condition,
    /// Sensors it applies to (all when None).
    pub sensors: Option<glob::Pattern>,
}

impl CompiledRule {
    /// True when the rule applies to `sensor`.
    pub fn applies_to(&self, sensor: &str) -> bool {
        self.sensors.as_ref().is_none_or(|p| p.matches(sensor))
    }
}

/// A compiled rule condition.
#[derive(Clone, Debug)]
pub struct Condition {
    root: Node,
}

#[derive(Clone, Debug)]
enum Node {
    Num(f64),
    Feat(usize),
    /// A numeric registry attribute.
    Attr(usize),
    /// A boolean registry attribute (true when 1).
    AttrBool(usize),
    Neg(Box<Node>),
    Arith(char, Box<Node>, Box<Node>),
    Cmp(Cmp, Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Abs(Box<Node>),
    Min(Box<Node>, Box<Node>),
    Max(Box<Node>, Box<Node>),
    Bool(bool),
}

#[derive(Clone, Copy, Debug)]
enum Cmp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

/// A mistake in a rule, at a character offset of the expression.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleError {
    /// 0-based character offset in the expression.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Ty {
    Num,
    Bool,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    End,
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, RuleError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || chars[i] == '.'
                    || ((chars[i] == '-' || chars[i] == '+') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let n = text.parse::<f64>().map_err(|_| RuleError {
                offset: start,
                message: format!("invalid number {text:?}"),
            })?;
            out.push((Tok::Num(n), start));
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            // `registry.NAME` is one name.
            if chars[start..i].iter().copied().eq("registry".chars())
                && chars.get(i) == Some(&'.')
                && chars
                    .get(i + 1)
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == '_')
            {
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            out.push((Tok::Ident(chars[start..i].iter().collect()), start));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op = match two.as_str() {
            ">=" => Some(">="),
            "<=" => Some("<="),
            "==" => Some("=="),
            "!=" => Some("!="),
            "&&" => Some("and"),
            "||" => Some("or"),
            _ => None,
        };
        if let Some(op) = op {
            out.push((Tok::Op(op), start));
            i += 2;
            continue;
        }
        let tok = match c {
            '>' => Tok::Op(">"),
            '<' => Tok::Op("<"),
            '+' => Tok::Op("+"),
            '-' => Tok::Op("-"),
            '*' => Tok::Op("*"),
            '/' => Tok::Op("/"),
            '!' => Tok::Op("not"),
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '=' => {
                return Err(RuleError {
                    offset: start,
                    message: "use `==` to compare".into(),
                });
            }
            _ => {
                return Err(RuleError {
                    offset: start,
                    message: format!("unexpected character {c:?}"),
                });
            }
        };
        out.push((tok, start));
        i += 1;
    }
    out.push((Tok::End, chars.len()));
    Ok(out)
}

/// How deeply a rule may nest parentheses, `not`, `-` and function calls. The parser, the
/// evaluator and dropping the tree all recurse, so nesting must be bounded to bound the stack.
pub const MAX_NESTING: usize = 64;
/// How many tokens a rule may have: bounds the depth of long chains such as `a + a + …`.
pub const MAX_TOKENS: usize = 4096;

struct Parser<'a> {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    features: &'a FeatureSet,
    registry: Option<&'a crate::stages::registry::Schema>,
    depth: usize,
    /// Unknown names met so far: each is reported, and parsing goes on as if it were a
    /// number, so that one rule's every unknown name is reported at once.
    unknown: Vec<RuleError>,
}

impl Parser<'_> {
    /// Records an unknown name at `offset` (`message` says which) and stands a number in for
    /// it, so that parsing goes on.
    fn unknown_name(&mut self, offset: usize, message: String) -> Result<(Node, Ty), RuleError> {
        self.unknown.push(RuleError { offset, message });
        Ok((Node::Num(f64::NAN), Ty::Num))
    }
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }
    fn at(&self) -> usize {
        self.toks[self.pos].1
    }
    fn is_word(&self, w: &str) -> bool {
        match self.peek() {
            Tok::Ident(s) => s == w,
            Tok::Op(o) => *o == w,
            _ => false,
        }
    }
    /// Runs `f` one nesting level deeper, refusing to go past [`MAX_NESTING`].
    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, RuleError>,
    ) -> Result<T, RuleError> {
        if self.depth >= MAX_NESTING {
            return self.err(
                self.at(),
                format!("the expression nests deeper than {MAX_NESTING} levels (parentheses, `not`, `-`, function calls)"),
            );
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }
    fn err<T>(&self, offset: usize, message: impl Into<String>) -> Result<T, RuleError> {
        Err(RuleError {
            offset,
            message: message.into(),
        })
    }
    fn expect(&self, node: (Node, Ty), want: Ty, at: usize, what: &str) -> Result<Node, RuleError> {
        if node.1 == want {
            Ok(node.0)
        } else {
            let (w, g) = if want == Ty::Num {
                ("a number", "a condition")
            } else {
                ("a condition", "a number")
            };
            self.err(at, format!("{what} needs {w} here, found {g}"))
        }
    }

    fn or(&mut self) -> Result<(Node, Ty), RuleError> {
        let at = self.at();
        let mut left = self.and()?;
        while self.is_word("or") {
            self.pos += 1;
            let rat = self.at();
            let l = self.expect(left, Ty::Bool, at, "`or`")?;
            let r = self.and()?;
            let r = self.expect(r, Ty::Bool, rat, "`or`")?;
            left = (Node::Or(Box::new(l), Box::new(r)), Ty::Bool);
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<(Node, Ty), RuleError> {
        let at = self.at();
        let mut left = self.not()?;
        while self.is_word("and") {
            self.pos += 1;
            let rat = self.at();
            let l = self.expect(left, Ty::Bool, at, "`and`")?;
            let r = self.not()?;
            let r = self.expect(r, Ty::Bool, rat, "`and`")?;
            left = (Node::And(Box::new(l), Box::new(r)), Ty::Bool);
        }
        Ok(left)
    }
    fn not(&mut self) -> Result<(Node, Ty), RuleError> {
        if self.is_word("not") {
            self.pos += 1;
            let at = self.at();
            let inner = self.nested(Self::not)?;
            let inner = self.expect(inner, Ty::Bool, at, "`not`")?;
            return Ok((Node::Not(Box::new(inner)), Ty::Bool));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Result<(Node, Ty), RuleError> {
        let at = self.at();
        let left = self.sum()?;
        let op = match self.peek() {
            Tok::Op(">") => Cmp::Gt,
            Tok::Op(">=") => Cmp::Ge,
            Tok::Op("<") => Cmp::Lt,
            Tok::Op("<=") => Cmp::Le,
            Tok::Op("==") => Cmp::Eq,
            Tok::Op("!=") => Cmp::Ne,
            _ => return Ok(left),
        };
        self.pos += 1;
        let rat = self.at();
        let l = self.expect(left, Ty::Num, at, "a comparison")?;
        let r = self.sum()?;
        let r = self.expect(r, Ty::Num, rat, "a comparison")?;
        if matches!(self.peek(), Tok::Op(">" | ">=" | "<" | "<=" | "==" | "!=")) {
            return self.err(self.at(), "comparisons do not chain; join them with `and`");
        }
        Ok((Node::Cmp(op, Box::new(l), Box::new(r)), Ty::Bool))
    }
    fn sum(&mut self) -> Result<(Node, Ty), RuleError> {
        self.arith(&["+", "-"], Self::product)
    }
    fn product(&mut self) -> Result<(Node, Ty), RuleError> {
        self.arith(&["*", "/"], Self::unary)
    }
    fn arith(
        &mut self,
        ops: &[&str],
        next: fn(&mut Self) -> Result<(Node, Ty), RuleError>,
    ) -> Result<(Node, Ty), RuleError> {
        let at = self.at();
        let mut left = next(self)?;
        while let Tok::Op(op) = self.peek().clone() {
            if !ops.contains(&op) {
                break;
            }
            self.pos += 1;
            let rat = self.at();
            let l = self.expect(left, Ty::Num, at, "arithmetic")?;
            let r = next(self)?;
            let r = self.expect(r, Ty::Num, rat, "arithmetic")?;
            let c = op.chars().next().unwrap_or('+');
            left = (Node::Arith(c, Box::new(l), Box::new(r)), Ty::Num);
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<(Node, Ty), RuleError> {
        if self.peek() == &Tok::Op("-") {
            self.pos += 1;
            let at = self.at();
            let inner = self.nested(Self::unary)?;
            let inner = self.expect(inner, Ty::Num, at, "`-`")?;
            return Ok((Node::Neg(Box::new(inner)), Ty::Num));
        }
        self.atom()
    }
    fn atom(&mut self) -> Result<(Node, Ty), RuleError> {
        let at = self.at();
        match self.peek().clone() {
            Tok::Num(n) => {
                self.pos += 1;
                Ok((Node::Num(n), Ty::Num))
            }
            Tok::LParen => {
                self.pos += 1;
                let inner = self.nested(Self::or)?;
                if self.peek() != &Tok::RParen {
                    return self.err(self.at(), "expected `)`");
                }
                self.pos += 1;
                Ok(inner)
            }
            Tok::Ident(name) => {
                self.pos += 1;
                if self.peek() == &Tok::LParen {
                    return self.nested(|p| p.call(&name, at));
                }
                match name.as_str() {
                    "true" => return Ok((Node::Bool(true), Ty::Bool)),
                    "false" => return Ok((Node::Bool(false), Ty::Bool)),
                    "and" | "or" | "not" => {
                        return self.err(at, format!("`{name}` needs something before it"));
                    }
                    _ => {}
                }
                if let Some(attr) = name.strip_prefix("registry.") {
                    let Some(schema) = self.registry else {
                        return self.err(
                            at,
                            format!("`{name}` names a registry attribute, but the pipeline has no [registry]"),
                        );
                    };
                    return match schema.index_of(attr) {
                        Some((i, false)) => Ok((Node::Attr(i), Ty::Num)),
                        Some((i, true)) => Ok((Node::AttrBool(i), Ty::Bool)),
                        None if schema.names.is_empty() => self.unknown_name(
                            at,
                                format!("unknown registry attribute `{attr}`: [registry] attributes declares none"),
                        ),
                        None => self.unknown_name(
                            at,
                                format!(
                                    "unknown registry attribute `{attr}`: [registry] attributes declares {}",
                                    schema.names.join(", ")
                                ),
                        ),
                    };
                }
                match self.features.index_of(&name) {
                    Some(i) => Ok((Node::Feat(i), Ty::Num)),
                    None => self.unknown_name(
                        at,
                        format!(
                            "unknown feature `{name}`: this pipeline computes {}",
                            self.features.names.join(", ")
                        ),
                    ),
                }
            }
            Tok::End => self.err(at, "the expression ends too early"),
            other => self.err(at, format!("unexpected {}", describe(&other))),
        }
    }
    fn call(&mut self, name: &str, at: usize) -> Result<(Node, Ty), RuleError> {
        self.pos += 1; // (
        let mut args = Vec::new();
        loop {
            let aat = self.at();
            let a = self.or()?;
            args.push(self.expect(a, Ty::Num, aat, "a function argument")?);
            match self.peek() {
                Tok::Comma => self.pos += 1,
                Tok::RParen => {
                    self.pos += 1;
                    break;
                }
                _ => return self.err(self.at(), "expected `,` or `)`"),
            }
        }
        let mut it = args.into_iter().map(Box::new);
        let node = match (name, it.len()) {
            ("abs", 1) => Node::Abs(it.next().unwrap_or_default()),
            ("min", 2) => Node::Min(it.next().unwrap_or_default(), it.next().unwrap_or_default()),
            ("max", 2) => Node::Max(it.next().unwrap_or_default(), it.next().unwrap_or_default()),
            ("abs" | "min" | "max", n) => {
                return self.err(
                    at,
                    format!(
                        "`{name}` takes {} argument(s), got {n}",
                        if name == "abs" { 1 } else { 2 }
                    ),
                );
            }
            _ => {
                return self.err(
                    at,
                    format!("unknown function `{name}`: use abs, min or max"),
                );
            }
        };
        Ok((node, Ty::Num))
    }
}

impl Default for Node {
    fn default() -> Self {
        Node::Num(0.0)
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Op(o) => format!("`{o}`"),
        Tok::RParen => "`)`".into(),
        Tok::Comma => "`,`".into(),
        Tok::LParen => "`(`".into(),
        Tok::Num(n) => format!("number {n}"),
        Tok::Ident(s) => format!("`{s}`"),
        Tok::End => "end".into(),
    }
}

impl Condition {
    /// Parses and type-checks a rule against the features a pipeline computes.
    ///
    /// ```
    /// use hyflow::stages::features::{Feature, FeatureSet};
    /// use hyflow::stages::rules::Condition;
    /// let mut features = FeatureSet::default();
    /// features.push("max", Feature::Max);
    /// features.push("slope", Feature::Slope);
    /// let rule = Condition::parse("max > 95 and abs(slope) > 0.5", &features).unwrap();
    /// assert!(rule.eval(&[96.0, -1.0]));
    /// assert!(!rule.eval(&[96.0, 0.1]));
    /// // A mistake names what is wrong and where (0-based character offset).
    /// let e = Condition::parse("max > 95 and speed > 1", &features).unwrap_err();
    /// assert_eq!(e.offset, 13);
    /// assert!(e.message.contains("speed"), "{}", e.message);
    /// // A rule must be a condition, not a number.
    /// assert!(Condition::parse("max + 1", &features).is_err());
    /// ```
    pub fn parse(src: &str, features: &FeatureSet) -> Result<Self, RuleError> {
        Self::parse_with(src, features, None)
    }

    /// [`Self::parse`], with the registry attributes a rule may name as `registry.NAME`.
    pub fn parse_with(
        src: &str,
        features: &FeatureSet,
        registry: Option<&crate::stages::registry::Schema>,
    ) -> Result<Self, RuleError> {
        Self::parse_all(src, features, registry).map_err(|mut e| e.swap_remove(0))
    }

    /// [`Condition::parse_with`], reporting every unknown name of the expression (then, if
    /// the rest parsed, nothing more), or its one other mistake; errors in text order.
    pub fn parse_all(
        src: &str,
        features: &FeatureSet,
        registry: Option<&crate::stages::registry::Schema>,
    ) -> Result<Self, Vec<RuleError>> {
        let mut p = Self::parser(src, features, registry).map_err(|e| vec![e])?;
        let parsed = p.whole();
        let mut errs = std::mem::take(&mut p.unknown);
        match parsed {
            Ok(root) if errs.is_empty() => return Ok(Self { root }),
            Ok(_) => {}
            Err(e) if errs.is_empty() => errs.push(e),
            // Unknown names stand in as numbers, so a type mismatch may be theirs: only a
            // mistake of another kind (syntax) is added to them.
            Err(e)
                if !(e.message.contains("found a number")
                    || e.message.contains("not a number")) =>
            {
                errs.push(e)
            }
            Err(_) => {}
        }
        errs.sort_by_key(|e| e.offset);
        Err(errs)
    }

    fn parser<'a>(
        src: &str,
        features: &'a FeatureSet,
        registry: Option<&'a crate::stages::registry::Schema>,
    ) -> Result<Parser<'a>, RuleError> {
        let toks = lex(src)?;
        if toks.len() > MAX_TOKENS {
            return Err(RuleError {
                offset: toks[MAX_TOKENS].1,
                message: format!(
                    "the expression is too long ({} tokens; at most {MAX_TOKENS})",
                    toks.len() - 1
                ),
            });
        }
        Ok(Parser {
            toks,
            pos: 0,
            features,
            registry,
            depth: 0,
            unknown: Vec::new(),
        })
    }
}

impl Parser<'_> {
    /// The whole expression: a condition and nothing after it.
    fn whole(&mut self) -> Result<Node, RuleError> {
        let p = self;
        let (root, ty) = p.or()?;
        if p.peek() != &Tok::End {
            return p.err(
                p.at(),
                format!(
                    "unexpected {} after a complete expression",
                    describe(p.peek())
                ),
            );
        }
        if ty != Ty::Bool {
            return p.err(
                0,
                "a rule must be a condition (e.g. `max > 95`), not a number",
            );
        }
        Ok(root)
    }
}

impl Condition {
    /// Evaluates the rule on one feature row. Comparisons with NaN are false.
    pub fn eval(&self, row: &[f64]) -> bool {
        truth(&self.root, row, &[])
    }

    /// Evaluates the rule on one feature row and the sensor's registry attributes (schema
    /// order; NaN where missing, and every attribute missing when `attrs` is shorter).
    pub fn eval_with(&self, row: &[f64], attrs: &[f64]) -> bool {
        truth(&self.root, row, attrs)
    }
}

fn num(n: &Node, row: &[f64], at: &[f64]) -> f64 {
    match n {
        Node::Num(v) => *v,
        Node::Feat(i) => row[*i],
        Node::Attr(i) => at.get(*i).copied().unwrap_or(f64::NAN),
        Node::Neg(a) => -num(a, row, at),
        Node::Arith(op, a, b) => {
            let (a, b) = (num(a, row, at), num(b, row, at));
            match op {
                '+' => a + b,
                '-' => a - b,
                '*' => a * b,
                _ => a / b,
            }
        }
        Node::Abs(a) => num(a, row, at).abs(),
        Node::Min(a, b) => num(a, row, at).min(num(b, row, at)),
        Node::Max(a, b) => num(a, row, at).max(num(b, row, at)),
        _ => f64::NAN,
    }
}

fn truth(n: &Node, row: &[f64], at: &[f64]) -> bool {
    match n {
        Node::Bool(b) => *b,
        Node::AttrBool(i) => at.get(*i) == Some(&1.0),
        Node::And(a, b) => truth(a, row, at) && truth(b, row, at),
        Node::Or(a, b) => truth(a, row, at) || truth(b, row, at),
        Node::Not(a) => !truth(a, row, at),
        Node::Cmp(op, a, b) => {
            let (a, b) = (num(a, row, at), num(b, row, at));
            match op {
                Cmp::Gt => a > b,
                Cmp::Ge => a >= b,
                Cmp::Lt => a < b,
                Cmp::Le => a <= b,
                Cmp::Eq => a == b,
                Cmp::Ne => a != b,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::features::{Feature, FeatureSet};

    fn fs() -> FeatureSet {
        let mut f = FeatureSet::default();
        f.push("max", Feature::Max);
        f.push("slope", Feature::Slope);
        f.push("peak-to-peak", Feature::PeakToPeak);
        f
    }

    #[test]
    fn registry_attributes_are_typed_and_missing_ones_compare_false() {
        let schema = crate::stages::registry::Schema {
            names: vec!["max_temp".into(), "critical".into()],
            is_bool: vec![false, true],
        };
        let c = Condition::parse_with("max > registry.max_temp", &fs(), Some(&schema)).unwrap();
        assert!(c.eval_with(&[90.0, 0.0, 0.0], &[80.0, 0.0]));
        assert!(!c.eval_with(&[70.0, 0.0, 0.0], &[80.0, 0.0]));
        assert!(
            !c.eval_with(&[90.0, 0.0, 0.0], &[f64::NAN, 0.0]),
            "missing: false"
        );
        assert!(!c.eval(&[90.0, 0.0, 0.0]), "no attributes at all: false");
        let c =
            Condition::parse_with("registry.critical and max > 1", &fs(), Some(&schema)).unwrap();
        assert!(c.eval_with(&[2.0, 0.0, 0.0], &[0.0, 1.0]));
        assert!(!c.eval_with(&[2.0, 0.0, 0.0], &[0.0, 0.0]));
        assert!(!c.eval_with(&[2.0, 0.0, 0.0], &[0.0, f64::NAN]));
        for (rule, registry, offset, what) in [
            (
                "max > registry.min_temp",
                Some(&schema),
                6,
                "unknown registry attribute `min_temp`: [registry] attributes declares max_temp, critical",
            ),
            (
                "max > registry.max_temp",
                None,
                6,
                "the pipeline has no [registry]",
            ),
            (
                "registry.critical > 1",
                Some(&schema),
                0,
                "a comparison needs a number here",
            ),
            (
                "registry.max_temp",
                Some(&schema),
                0,
                "a rule must be a condition",
            ),
            (
                "max > registry",
                Some(&schema),
                6,
                "unknown feature `registry`",
            ),
        ] {
            let e = Condition::parse_with(rule, &fs(), registry).unwrap_err();
            assert_eq!(e.offset, offset, "{rule}: {}", e.message);
            assert!(e.message.contains(what), "{rule}: {}", e.message);
        }
    }

    #[test]
    fn evaluates_precedence_and_functions() {
        let c = Condition::parse(
            "max > 95 and slope > 0.5 or not (peak_to_peak < 2*3)",
            &fs(),
        )
        .unwrap();
        assert!(c.eval(&[96.0, 1.0, 0.0]));
        assert!(!c.eval(&[96.0, 0.0, 1.0]));
        assert!(c.eval(&[0.0, 0.0, 7.0]));
        let c = Condition::parse("abs(slope) >= 1e-1 && max(max, 3) == 3", &fs()).unwrap();
        assert!(c.eval(&[1.0, -0.2, 0.0]));
        assert!(!c.eval(&[f64::NAN, f64::NAN, 0.0]));
    }

    #[test]
    fn errors_point_at_the_mistake() {
        let e = Condition::parse("max > 95 and slop > 0.5", &fs()).unwrap_err();
        assert_eq!(e.offset, 13);
        assert!(e.message.contains("unknown feature `slop`"));
        let e = Condition::parse("max > ", &fs()).unwrap_err();
        assert_eq!(e.offset, 6);
        let e = Condition::parse("max + 1", &fs()).unwrap_err();
        assert!(e.message.contains("must be a condition"));
        let e = Condition::parse("max = 3", &fs()).unwrap_err();
        assert_eq!((e.offset, e.message.as_str()), (4, "use `==` to compare"));
        let e = Condition::parse("max > 1 and 3", &fs()).unwrap_err();
        assert_eq!(e.offset, 12);
        let e = Condition::parse("1 < max < 3", &fs()).unwrap_err();
        assert!(e.message.contains("do not chain"));
    }

    #[test]
    fn hostile_nesting_is_a_located_error_not_a_stack_overflow() {
        let deep = |open: &str, close: &str, n: usize| {
            format!("{}max{} > 1", open.repeat(n), close.repeat(n))
        };
        for (src, what) in [
            (deep("(", ")", 3500), "too long"),
            (deep("(", ")", 1500), "nests deeper"),
            (format!("{}max > 1", "not ".repeat(100_000)), "too long"),
            (format!("{}max > 1", "not ".repeat(1000)), "nests deeper"),
            (deep("abs(", ")", 20_000), "too long"),
            (deep("abs(", ")", 1000), "nests deeper"),
            (format!("{}max > 1", "-".repeat(5000)), "too long"),
            (format!("{} > 1", vec!["max"; 3000].join(" + ")), "too long"),
        ] {
            let e = Condition::parse(&src, &fs()).unwrap_err();
            assert!(e.message.contains(what), "{}: {}", &src[..20], e.message);
            assert!(e.offset <= src.chars().count());
        }
        // Within the limits, it parses and evaluates.
        let ok = deep("(", ")", MAX_NESTING - 1);
        assert!(Condition::parse(&ok, &fs()).unwrap().eval(&[2.0, 0.0, 0.0]));
        let long = format!("{} > 1", vec!["max"; 1000].join(" + "));
        assert!(
            Condition::parse(&long, &fs())
                .unwrap()
                .eval(&[1.0, 0.0, 0.0])
        );
    }
}
