//! Per-reading cleaning at the source: quality, NaN/Inf policy, unit scaling, valid ranges,
//! and the per-partition event-time watermark that decides which readings are late.
//! Duplicate removal and gap filling need a sensor's whole series and live in `window`.

use crate::batch::RejectKind;
use crate::stages::window::WindowSpec;

/// A compiled `[[clean.class]]`.
#[derive(Clone, Debug)]
pub struct ClassRule {
    /// Glob on the sensor id.
    pub pattern: glob::Pattern,
    /// Smallest valid (scaled) value.
    pub min: Option<f64>,
    /// Largest valid (scaled) value.
    pub max: Option<f64>,
    /// value = raw * scale + offset.
    pub scale: f64,
    /// value = raw * scale + offset.
    pub offset: f64,
}

/// The sensor classes of a pipeline, first match wins.
#[derive(Clone, Debug, Default)]
pub struct Classes {
    rules: Vec<ClassRule>,
}

impl Classes {
    /// Classes in file order.
    pub fn new(rules: Vec<ClassRule>) -> Self {
        Self { rules }
    }
    /// The class of a sensor id.
    pub fn find(&self, sensor: &str) -> Option<&ClassRule> {
        self.rules.iter().find(|r| r.pattern.matches(sensor))
    }
    /// Index of the class of a sensor id.
    pub fn index_of(&self, sensor: &str) -> Option<u16> {
        self.rules
            .iter()
            .position(|r| r.pattern.matches(sensor))
            .map(|i| i as u16)
    }
    /// Number of classes.
    pub fn len(&self) -> usize {
        self.rules.len()
    }
    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
    /// The class at `index`.
    pub fn get(&self, index: u16) -> &ClassRule {
        &self.rules[index as usize]
    }
}

/// What cleaning decided for one reading.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Keep it, with this (scaled) value.
    Keep(f64),
    /// Reject it for this reason.
    Reject(RejectKind, String),
    /// Drop it silently (counted).
    Drop,
}

/// What happens to a NaN or infinite value (`[clean] non-finite`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonFinitePolicy {
    /// To the rejects output, with the reason.
    Reject,
    /// Dropped and counted.
    Drop,
}

/// Checks one reading's value against quality, the non-finite policy and its class.
#[inline]
pub fn check_value(
    raw: f64,
    good_quality: bool,
    class: Option<&ClassRule>,
    policy: NonFinitePolicy,
    reject_bad_quality: bool,
) -> Verdict {
    if !good_quality && reject_bad_quality {
        return Verdict::Reject(RejectKind::BadQuality, "bad quality flag".into());
    }
    if !raw.is_finite() {
        return match policy {
            NonFinitePolicy::Reject => Verdict::Reject(
                RejectKind::NonFinite,
                if raw.is_nan() {
                    "value is NaN".into()
                } else {
                    "value is infinite".into()
                },
            ),
            NonFinitePolicy::Drop => Verdict::Drop,
        };
    }
    let Some(c) = class else {
        return Verdict::Keep(raw);
    };
    let v = raw * c.scale + c.offset;
    if let Some(lo) = c.min
        && v < lo
    {
        return Verdict::Reject(
            RejectKind::OutOfRange,
            format!(
                "value {v} below the valid minimum {lo} of class {}",
                c.pattern
            ),
        );
    }
    if let Some(hi) = c.max
        && v > hi
    {
        return Verdict::Reject(
            RejectKind::OutOfRange,
            format!(
                "value {v} above the valid maximum {hi} of class {}",
                c.pattern
            ),
        );
    }
    Verdict::Keep(v)
}

/// The event-time watermark of one input partition (a file): the largest event time seen,
/// minus the out-of-orderness and the allowed lateness. Windows ending at or before it are
/// closed for this partition, so a reading all of whose windows end there is late.
#[derive(Clone, Debug)]
pub struct Watermark {
    max_seen: i64,
    delay: i64,
}

impl Watermark {
    /// A watermark trailing the largest time seen by `delay` ms.
    pub fn new(delay: i64) -> Self {
        Self {
            max_seen: i64::MIN,
            delay,
        }
    }
    /// The current watermark (i64::MIN before any reading).
    #[inline]
    pub fn get(&self) -> i64 {
        self.max_seen.saturating_sub(self.delay)
    }
    /// True when every window containing `t` has closed.
    #[inline]
    pub fn is_late(&self, t: i64, spec: &WindowSpec) -> bool {
        spec.last_end(t) <= self.get()
    }
    /// The largest time seen (None before any): what a checkpoint keeps, and a restored
    /// watermark starts from ([`Self::observe`]).
    pub fn seen(&self) -> Option<i64> {
        (self.max_seen != i64::MIN).then_some(self.max_seen)
    }
    /// Raises the watermark to at least `w` (a partition that was idle rejoins at the time
    /// the others reached: what it sends from before that is late).
    pub fn raise_to(&mut self, w: i64) {
        let seen = w.saturating_add(self.delay);
        if seen > self.max_seen {
            self.max_seen = seen;
        }
    }
    /// Advances with the time of a reading (every reading with a readable time counts, rejected
    /// ones too: they show that event time has moved on).
    #[inline]
    pub fn observe(&mut self, t: i64) {
        if t > self.max_seen {
            self.max_seen = t;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let class = ClassRule {
            pattern: glob::Pattern::new("*-temp").unwrap(),
            min: Some(-40.0),
            max: Some(150.0),
            scale: 0.1,
            offset: 0.0,
        };
        assert_eq!(
            check_value(250.0, true, Some(&class), NonFinitePolicy::Reject, true),
            Verdict::Keep(25.0)
        );
        assert!(
            matches!(check_value(2000.0, true, Some(&class), NonFinitePolicy::Reject, true), Verdict::Reject(_, r) if r.contains("above"))
        );
        assert!(
            matches!(check_value(f64::NAN, true, None, NonFinitePolicy::Reject, true), Verdict::Reject(_, r) if r.contains("NaN"))
        );
        assert_eq!(
            check_value(f64::INFINITY, true, None, NonFinitePolicy::Drop, true),
            Verdict::Drop
        );
        assert!(matches!(
            check_value(1.0, false, None, NonFinitePolicy::Drop, true),
            Verdict::Reject(..)
        ));
    }

    #[test]
    fn lateness_follows_window_ends() {
        let spec = WindowSpec::new(10, 10);
        let mut w = Watermark::new(5);
        w.observe(30); // watermark 25: windows ending <= 25 closed
        assert!(w.is_late(19, &spec));
        assert!(!w.is_late(20, &spec)); // window [20,30) still open
        let sliding = WindowSpec::new(10, 5);
        assert!(w.is_late(19, &sliding)); // in [10,20) and [15,25): both closed
        assert!(!w.is_late(20, &sliding)); // [20,30) is open
    }
}
