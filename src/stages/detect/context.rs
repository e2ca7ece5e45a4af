//! `context`: the contextual anomaly detector of CAD-OSE (Smirnov, 2016; NAB's `contextOSE`),
//! rebuilt from its published algorithm. A window's watched features are coded as a few
//! "facts" (the bits of the value's level among 8 levels of a learned range); a context pairs
//! the facts and active contexts of the previous window (left) with the facts of this one
//! (right). The score is high when few of the contexts that the previous window selects come
//! true now and many new contexts have to be made: the sequence is new to this sensor. After a
//! score of at least [`BASE`], the detector rests (scores 0) for `rest` windows, as CAD-OSE
//! does.
//!
//! Unlike CAD-OSE, which is given the minimum and maximum of the whole series before it
//! starts, the range is learned from the sensor's first `range-windows` windows, widened by
//! `range-margin` times its width on each side; values outside it get codes of their own
//! (more bits, or a "below" fact), so they are new by construction. The state is a dictionary
//! of contexts, which is why this detector runs on the CPU only (docs/gpu.md). At most
//! [`MAX_CONTEXTS`] contexts are kept per sensor; after that no new ones are made (and a new
//! sequence scores at most 0.5), which bounds memory on a long run.

use std::collections::{HashMap, HashSet, VecDeque};

/// Bits of a value's level: 2³ = 8 levels over the learned range (CAD-OSE's default).
const BITS: u32 = 3;
/// A score at least this starts a rest period (CAD-OSE's `baseThreshold`).
pub const BASE: f64 = 0.75;
/// Partly matched left semi-contexts longer than this do not make new contexts.
const MAX_LEFT: usize = 7;
/// Active contexts (the most used) carried into the next window's left facts.
const MAX_ACTIVE: usize = 15;
/// Contexts one sensor's detector may hold.
pub const MAX_CONTEXTS: usize = 1 << 18;
/// Marks a fact that names an active context rather than a value's bit.
const NEURON: u64 = 1 << 63;
/// The range is set when a sensor has seen range-windows / d windows, for each d.
const RANGE_STEPS: [usize; 4] = [8, 4, 2, 1];
/// Fact numbers reserved per watched feature: in-range levels, then levels above and below
/// the range (128 each: 64 bits of a level, two facts per bit).
const PER_FEATURE: u64 = 384;
const ABOVE: u64 = 128;
const BELOW: u64 = 256;

/// The options of a `context` detector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ContextParams {
    /// Windows whose values set the range (scores are 0 until then).
    pub range_windows: u32,
    /// The range is widened by this times its width on each side.
    pub range_margin: f64,
    /// Windows of rest after a score of at least [`BASE`] (0: none).
    pub rest: u32,
}

impl Default for ContextParams {
    fn default() -> Self {
        Self {
            range_windows: 400,
            range_margin: 1.0,
            rest: 100,
        }
    }
}

/// A set of facts that is one side of contexts.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Semi {
    /// Its facts that the last crossing found.
    matched: Vec<u64>,
    /// Its number of facts.
    len: usize,
    /// Left side: (right side, context), in the order they were made.
    contexts: Vec<(usize, usize)>,
    /// Left side: context by right side.
    index: HashMap<usize, usize>,
}

/// One context: how often it came true, whether it was seen as a whole (not only made by
/// crossing), and its two sides.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Ctx {
    count: u64,
    zero: bool,
    left: usize,
    right: usize,
}

/// CAD-OSE's context memory (`ContextOperator`).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Operator {
    /// Per side: fact -> semi-contexts holding it.
    facts: [HashMap<u64, Vec<usize>>; 2],
    /// Per side: facts -> semi-context.
    ids: [HashMap<Vec<u64>, usize>; 2],
    semis: [Vec<Semi>; 2],
    /// Per side: semi-contexts with at least one fact in the last crossing, by id.
    crossed: [Vec<usize>; 2],
    contexts: Vec<Ctx>,
    /// The context the current window's whole (zero-level) context made, if new.
    new_context: Option<usize>,
}

impl Operator {
    fn semi(&mut self, side: usize, facts: &[u64]) -> usize {
        if let Some(&id) = self.ids[side].get(facts) {
            return id;
        }
        let id = self.semis[side].len();
        self.ids[side].insert(facts.to_vec(), id);
        self.semis[side].push(Semi {
            len: facts.len(),
            ..Semi::default()
        });
        for &f in facts {
            self.facts[side].entry(f).or_default().push(id);
        }
        id
    }

    /// Finds or makes the context `left` -> `right`; true when it is new. A `zero` (whole)
    /// context that exists is marked whole.
    fn context(&mut self, left: &[u64], right: &[u64], zero: bool) -> bool {
        let full = self.contexts.len() >= MAX_CONTEXTS;
        if full {
            let (Some(&l), Some(&r)) = (self.ids[0].get(left), self.ids[1].get(right)) else {
                return false;
            };
            if let Some(&c) = self.semis[0][l].index.get(&r)
                && zero
            {
                self.contexts[c].zero = true;
            }
            return false;
        }
        let l = self.semi(0, left);
        let r = self.semi(1, right);
        if let Some(&c) = self.semis[0][l].index.get(&r) {
            if zero {
                self.contexts[c].zero = true;
            }
            return false;
        }
        let c = self.contexts.len();
        self.semis[0][l].index.insert(r, c);
        self.semis[0][l].contexts.push((r, c));
        self.contexts.push(Ctx {
            count: 0,
            zero,
            left: l,
            right: r,
        });
        if zero {
            self.new_context = Some(c);
        }
        true
    }

    /// Marks, on one side, which facts of each semi-context are among `facts`.
    fn cross(&mut self, side: usize, facts: &[u64]) {
        for &id in &self.crossed[side] {
            self.semis[side][id].matched.clear();
        }
        let mut touched = Vec::new();
        for &f in facts {
            if let Some(ids) = self.facts[side].get(&f) {
                for &id in ids {
                    let s = &mut self.semis[side][id];
                    if s.matched.is_empty() {
                        touched.push(id);
                    }
                    s.matched.push(f);
                }
            }
        }
        touched.sort_unstable();
        self.crossed[side] = touched;
    }

    /// After crossing the right side: the contexts that came true (counted), the number of
    /// contexts whose left side matched, and the partly matched contexts worth making.
    #[allow(clippy::type_complexity)]
    fn active(
        &mut self,
    ) -> (
        Vec<(u64, usize, usize, usize)>,
        usize,
        Vec<(Vec<u64>, Vec<u64>)>,
    ) {
        let mut active = Vec::new();
        let mut selected = 0;
        let mut potential = Vec::new();
        for &l in &self.crossed[0] {
            let ls = &self.semis[0][l];
            let l_crossed = ls.matched.len();
            for &(r, c) in &ls.contexts {
                if self.new_context == Some(c) {
                    continue;
                }
                let rs = &self.semis[1][r];
                let r_crossed = rs.matched.len();
                let cv = &mut self.contexts[c];
                if ls.len == l_crossed {
                    selected += 1;
                    if r_crossed > 0 {
                        if rs.len == r_crossed {
                            cv.count += 1;
                            active.push((cv.count, cv.left, cv.right, c));
                        } else if cv.zero && r_crossed < rs.len {
                            potential.push((ls.matched.clone(), rs.matched.clone()));
                        }
                    }
                } else if cv.zero
                    && rs.len == r_crossed
                    && l_crossed < ls.len
                    && l_crossed <= MAX_LEFT
                {
                    potential.push((ls.matched.clone(), rs.matched.clone()));
                }
            }
        }
        self.new_context = None;
        (active, selected, potential)
    }
}

/// One sensor's `context` detector.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Context {
    /// The first `range-windows` windows' values (rows of the watched features).
    head: Vec<f64>,
    /// Per feature: (lowest value of level 0, width of a level).
    scale: Vec<(f64, f64)>,
    op: Operator,
    /// The previous window's facts and active contexts.
    left: Vec<u64>,
    /// The last `rest` scores before rest (the first is 1: CAD-OSE rests at the start).
    recent: VecDeque<f64>,
    /// Scratch: this window's facts.
    facts: Vec<u64>,
}

impl Context {
    /// The raw score of the window whose watched features are `xs` (in [0, 1]), then learns it.
    pub fn score_and_update(&mut self, xs: &[f64], p: ContextParams) -> f64 {
        let n = xs.len().max(1);
        let last = p.range_windows.max(1) as usize;
        if self.head.len() / n < last {
            self.head.extend_from_slice(xs);
            let seen = self.head.len() / n;
            // The range is set at 1/8, 1/4, 1/2 and all of range-windows: each time the
            // memory is rebuilt by learning the windows so far again.
            if RANGE_STEPS.iter().any(|&d| seen == (last / d).max(1)) {
                return self.rerange(n, p);
            }
            if self.scale.is_empty() {
                return 0.0;
            }
        }
        self.step(xs, p)
    }

    /// Sets the range from the windows so far, forgets the memory and learns them again;
    /// the score of the newest.
    fn rerange(&mut self, n: usize, p: ContextParams) -> f64 {
        let head = std::mem::take(&mut self.head);
        self.scale = (0..n)
            .map(|f| scale_of(head.iter().skip(f).step_by(n).copied(), p.range_margin))
            .collect();
        self.op = Operator::default();
        self.left.clear();
        self.recent.clear();
        self.recent.push_back(1.0);
        let mut last = 0.0;
        for row in head.chunks(n) {
            last = self.step(row, p);
        }
        self.head = head;
        last
    }

    /// Contexts held (for tests and memory accounting).
    pub fn contexts(&self) -> usize {
        self.op.contexts.len()
    }

    fn step(&mut self, xs: &[f64], p: ContextParams) -> f64 {
        let mut facts = std::mem::take(&mut self.facts);
        facts.clear();
        for (f, (&x, &(lo, width))) in xs.iter().zip(&self.scale).enumerate() {
            code(x, lo, width, f as u64 * PER_FEATURE, &mut facts);
        }
        if facts.is_empty() {
            self.facts = facts;
            return 0.0;
        }
        facts.sort_unstable();
        facts.dedup();
        let (active, added) = self.learn(&facts);
        self.facts = facts;
        let current = (1.0 - active + added) / 2.0;
        if p.rest == 0 {
            return current;
        }
        let resting = self.recent.iter().any(|&s| s >= BASE);
        self.recent.push_back(current);
        while self.recent.len() > p.rest as usize {
            self.recent.pop_front();
        }
        if resting { 0.0 } else { current }
    }

    /// CAD-OSE's `step`: the share of selected contexts that came true, and the share of new
    /// contexts among the potential ones.
    fn learn(&mut self, facts: &[u64]) -> (f64, f64) {
        let op = &mut self.op;
        let zero = !self.left.is_empty();
        let made = zero && op.context(&self.left, facts, true);
        op.cross(1, facts);
        let (mut active, selected, potential) = op.active();
        let mut unique: HashSet<(&[u64], &[u64])> =
            potential.iter().map(|(l, r)| (&l[..], &r[..])).collect();
        if zero {
            unique.insert((&self.left[..], facts));
        }
        let unique = unique.len();
        let share_active = if selected > 0 {
            active.len() as f64 / selected as f64
        } else {
            0.0
        };
        active.sort_unstable();
        let mut left: Vec<u64> = facts.to_vec();
        left.extend(
            active
                .iter()
                .rev()
                .take(MAX_ACTIVE)
                .map(|&(_, _, _, c)| NEURON | c as u64),
        );
        left.sort_unstable();
        left.dedup();
        let mut new = potential
            .iter()
            .filter(|(l, r)| op.context(l, r, false))
            .count();
        op.cross(0, &left);
        self.left = left;
        new += usize::from(made);
        let share_added = if new > 0 && unique > 0 {
            new as f64 / unique as f64
        } else {
            0.0
        };
        (share_active, share_added)
    }
}

/// (lowest value of level 0, width of a level) of values, widened by `margin` of the range.
fn scale_of(values: impl Iterator<Item = f64>, margin: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for x in values.filter(|x| x.is_finite()) {
        lo = lo.min(x);
        hi = hi.max(x);
    }
    if lo > hi {
        return (0.0, 1.0);
    }
    let range = hi - lo;
    let (lo, range) = (lo - margin * range, range * (1.0 + 2.0 * margin));
    let levels = f64::from((1u32 << BITS) - 1);
    let width = range / levels;
    if width > 0.0 && width.is_finite() {
        (lo, width)
    } else {
        (lo, 1.0)
    }
}

/// Appends the facts of value `x`: bit i of its level n in 0..8 is fact 2i + bit; a level
/// above or below the range is coded as the bits of n (or -n) in facts of their own, so that
/// no context of in-range values matches part of it.
fn code(x: f64, lo: f64, width: f64, base: u64, out: &mut Vec<u64>) {
    if !x.is_finite() {
        return;
    }
    let n = ((x - lo) / width).floor() as i64;
    let levels = 1i64 << BITS;
    let (m, side) = if n < 0 {
        (n.unsigned_abs(), BELOW)
    } else if n >= levels {
        (n as u64, ABOVE)
    } else {
        (n as u64, 0)
    };
    let bits = (64 - m.leading_zeros()).max(BITS);
    for i in 0..bits {
        out.push(base + side + 2 * u64::from(i) + ((m >> i) & 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(xs: &[f64], p: ContextParams) -> (Vec<f64>, Context) {
        let mut c = Context::default();
        let s = xs.iter().map(|&x| c.score_and_update(&[x], p)).collect();
        (s, c)
    }

    #[test]
    fn a_value_is_coded_as_the_bits_of_its_level() {
        let mut f = Vec::new();
        code(5.5, 0.0, 1.0, 0, &mut f); // level 5 = 0b101
        assert_eq!(f, vec![1, 2, 5]);
        f.clear();
        code(9.0, 0.0, 1.0, 384, &mut f); // level 9 = 0b1001, above: facts of their own
        assert_eq!(f, vec![384 + 129, 384 + 130, 384 + 132, 384 + 135]);
        f.clear();
        code(-2.5, 0.0, 1.0, 0, &mut f); // level -3: bits of 3, below
        assert_eq!(f, vec![257, 259, 260]);
        f.clear();
        code(f64::NAN, 0.0, 1.0, 0, &mut f);
        assert!(f.is_empty());
    }

    #[test]
    fn the_range_is_widened_by_the_margin() {
        let (lo, w) = scale_of([0.0, 7.0, 3.0].into_iter(), 0.5);
        assert_eq!(lo, -3.5);
        assert!((w - 2.0).abs() < 1e-12);
        assert_eq!(scale_of([4.0, 4.0].into_iter(), 0.5), (4.0, 1.0));
        assert_eq!(scale_of([f64::NAN].into_iter(), 0.5), (0.0, 1.0));
    }

    /// 600 windows of a repeating up-and-down pattern, then `after`.
    fn pattern_then(after: &[f64]) -> Vec<f64> {
        let pattern = [0.0, 2.0, 4.0, 6.0, 4.0, 2.0];
        let mut xs: Vec<f64> = pattern.iter().cycle().take(600).copied().collect();
        xs.extend_from_slice(after);
        xs
    }

    fn params(rest: u32) -> ContextParams {
        ContextParams {
            range_windows: 40,
            range_margin: 0.5,
            rest,
        }
    }

    #[test]
    fn a_repeating_pattern_becomes_quiet_and_a_new_value_scores_high() {
        let p = params(0);
        let xs = pattern_then(&[40.0]);
        let (s, c) = run(&xs, p);
        assert!(s[..4].iter().all(|&x| x == 0.0), "no score before a range");
        let tail = &s[500..600];
        assert!(tail.iter().all(|&x| x < 0.3), "learned pattern: {tail:?}");
        assert!(s[600] >= BASE, "new value: {}", s[600]);
        assert!(c.contexts() > 0);
    }

    #[test]
    fn after_a_high_score_the_detector_rests() {
        let p = params(20);
        let xs = pattern_then(&[40.0, -30.0, 40.0, -30.0, 55.0]);
        let (s, _) = run(&xs, p);
        assert!(s[600] >= BASE);
        assert!(s[601..].iter().all(|&x| x == 0.0), "{:?}", &s[601..]);
    }

    #[test]
    fn the_range_is_set_again_until_range_windows_and_then_kept() {
        let p = ContextParams {
            range_windows: 80,
            range_margin: 0.0,
            rest: 0,
        };
        let mut c = Context::default();
        for i in 0..9 {
            c.score_and_update(&[f64::from(i)], p);
        }
        assert!(c.scale.is_empty());
        // At window 10 the range 0..=9 is set (levels of 9/7); at 20, 40 and 80 it is set again.
        c.score_and_update(&[9.0], p);
        assert!((c.scale[0].1 - 9.0 / 7.0).abs() < 1e-12);
        for _ in 10..80 {
            c.score_and_update(&[70.0], p);
        }
        assert!((c.scale[0].1 - 10.0).abs() < 1e-12, "{:?}", c.scale);
        c.score_and_update(&[700.0], p);
        assert!(
            (c.scale[0].1 - 10.0).abs() < 1e-12,
            "kept after range-windows"
        );
    }

    #[test]
    fn memory_stops_growing_at_the_cap() {
        let mut op = Operator::default();
        for i in 0..(MAX_CONTEXTS as u64 + 10) {
            op.context(&[i], &[i + 1], false);
        }
        assert_eq!(op.contexts.len(), MAX_CONTEXTS);
    }
}
