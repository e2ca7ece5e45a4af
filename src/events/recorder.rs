//! The metrics of one run: a [`metrics::Recorder`] that keeps counters, gauges and histograms
//! by name and labels, answers the run summary and the progress lines, and renders the
//! OpenMetrics text that `/metrics` serves.
//!
//! A run owns its recorder, and each of its worker threads installs it as the thread's local
//! recorder ([`Recorder::install`]): two runs in one process (tests, `hyflow eval`) never mix
//! their counts, and the `metrics` macros in the stages need no handle passed around.

use super::catalog::{self, Kind};
use metrics::{Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, SharedString, Unit};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Upper bounds of every histogram's buckets (seconds), then +Inf.
const BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A histogram with [`BUCKETS`]: counts per bucket (not cumulative), their sum and count.
#[derive(Default)]
struct Buckets {
    counts: [AtomicU64; BUCKETS.len() + 1],
    /// Sum of the observations, as `f64` bits.
    sum: AtomicU64,
}

impl HistogramFn for Buckets {
    fn record(&self, v: f64) {
        let k = BUCKETS
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[k].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some((f64::from_bits(s) + v).to_bits())
            });
    }
}

#[derive(Clone)]
enum Entry {
    Counter(Arc<AtomicU64>),
    /// `f64` bits.
    Gauge(Arc<AtomicU64>),
    Histogram(Arc<Buckets>),
}

/// Name and sorted labels: the identity of one series.
type Series = (String, Labels);
/// Label names and values, sorted by name.
type Labels = Vec<(String, String)>;

/// The metrics of one run.
#[derive(Default)]
pub struct Recorder {
    series: RwLock<BTreeMap<Series, Entry>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.series.read().map_or(0, |s| s.len());
        write!(f, "Recorder({n} series)")
    }
}

fn series_of(key: &Key) -> Series {
    let mut labels: Vec<(String, String)> = key
        .labels()
        .map(|l| (l.key().to_string(), l.value().to_string()))
        .collect();
    labels.sort();
    (key.name().to_string(), labels)
}

impl Recorder {
    /// Makes this recorder the one the `metrics` macros of the calling thread report to,
    /// until the guard is dropped.
    pub fn install(&self) -> metrics::LocalRecorderGuard<'_> {
        metrics::set_default_local_recorder(self)
    }

    fn entry(&self, key: &Key, make: impl FnOnce() -> Entry) -> Entry {
        let s = series_of(key);
        if let Some(e) = self
            .series
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&s)
        {
            return e.clone();
        }
        let mut all = self.series.write().unwrap_or_else(|p| p.into_inner());
        all.entry(s).or_insert_with(make).clone()
    }

    /// The sum of a counter over all its label sets (0 when never incremented).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters(name).into_iter().map(|(_, v)| v).sum()
    }

    /// A counter's value per label set.
    pub fn counters(&self, name: &str) -> Vec<(Labels, u64)> {
        let all = self.series.read().unwrap_or_else(|p| p.into_inner());
        all.iter()
            .filter(|((n, _), _)| n == name)
            .filter_map(|((_, labels), e)| match e {
                Entry::Counter(c) => Some((labels.clone(), c.load(Ordering::Relaxed))),
                _ => None,
            })
            .collect()
    }

    /// The sum of a counter over its label sets that carry every label of `labels` (other
    /// labels may vary): how a test checks that an event was emitted, and how often.
    pub fn counter_with(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.counters(name)
            .into_iter()
            .filter(|(l, _)| {
                labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// A gauge's value for one label set.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let all = self.series.read().unwrap_or_else(|p| p.into_inner());
        all.iter()
            .find(|((n, l), _)| {
                n == name
                    && l.len() == labels.len()
                    && l.iter().zip(labels).all(|(a, b)| a.0 == b.0 && a.1 == b.1)
            })
            .and_then(|(_, e)| match e {
                Entry::Gauge(g) => Some(f64::from_bits(g.load(Ordering::Relaxed))),
                _ => None,
            })
    }

    /// The OpenMetrics text of every series, in name order, each family with its type and
    /// help from the catalog; a gauge of a time (`*_timestamp_seconds`) is followed by its
    /// age now (`*_age_seconds`).
    pub fn render(&self) -> String {
        let now = crate::timefmt::now_seconds();
        let all = self.series.read().unwrap_or_else(|p| p.into_inner());
        let mut families: BTreeMap<&str, Vec<(&Labels, &Entry)>> = BTreeMap::new();
        for ((name, labels), e) in all.iter() {
            families.entry(name).or_default().push((labels, e));
        }
        let mut out = String::new();
        for (name, rows) in &families {
            let info = catalog::find(name);
            let kind = info.map_or(
                match rows[0].1 {
                    Entry::Counter(_) => Kind::Counter,
                    Entry::Gauge(_) => Kind::Gauge,
                    Entry::Histogram(_) => Kind::Histogram,
                },
                |i| i.kind,
            );
            let family = match kind {
                Kind::Counter => name.strip_suffix("_total").unwrap_or(name),
                _ => name,
            };
            let help = info.map_or("", |i| i.help);
            family_header(&mut out, family, kind, help);
            for (labels, e) in rows {
                match e {
                    Entry::Counter(c) => sample(
                        &mut out,
                        name,
                        labels,
                        None,
                        c.load(Ordering::Relaxed) as f64,
                    ),
                    Entry::Gauge(g) => sample(
                        &mut out,
                        name,
                        labels,
                        None,
                        f64::from_bits(g.load(Ordering::Relaxed)),
                    ),
                    Entry::Histogram(h) => {
                        let mut cumulative = 0;
                        for (k, c) in h.counts.iter().enumerate() {
                            cumulative += c.load(Ordering::Relaxed);
                            let le = BUCKETS.get(k).map_or("+Inf".to_string(), |b| b.to_string());
                            let bucket = format!("{name}_bucket");
                            sample(&mut out, &bucket, labels, Some(&le), cumulative as f64);
                        }
                        let sum = f64::from_bits(h.sum.load(Ordering::Relaxed));
                        sample(
                            &mut out,
                            &format!("{name}_count"),
                            labels,
                            None,
                            cumulative as f64,
                        );
                        sample(&mut out, &format!("{name}_sum"), labels, None, sum);
                    }
                }
            }
            if let Some(base) = name.strip_suffix("_timestamp_seconds") {
                let age = format!("{base}_age_seconds");
                family_header(&mut out, &age, Kind::Gauge, "Seconds since the time above.");
                for (labels, e) in rows {
                    if let Entry::Gauge(g) = e {
                        let at = f64::from_bits(g.load(Ordering::Relaxed));
                        sample(&mut out, &age, labels, None, (now - at).max(0.0));
                    }
                }
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

fn family_header(out: &mut String, family: &str, kind: Kind, help: &str) {
    let _ = writeln!(out, "# TYPE {family} {}", kind.as_str());
    if !help.is_empty() {
        let _ = writeln!(out, "# HELP {family} {}", escape(help, false));
    }
}

/// One sample line: `name{labels,le="x"} value`.
fn sample(out: &mut String, name: &str, labels: &[(String, String)], le: Option<&str>, v: f64) {
    out.push_str(name);
    let extra = le.map(|le| ("le", le));
    let all = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(extra);
    let mut first = true;
    for (k, v) in all {
        out.push(if first { '{' } else { ',' });
        first = false;
        let _ = write!(out, "{k}=\"{}\"", escape(v, true));
    }
    if !first {
        out.push('}');
    }
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = writeln!(out, " {}", v as i64);
    } else if v.is_nan() {
        out.push_str(" NaN\n");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { " +Inf\n" } else { " -Inf\n" });
    } else {
        let _ = writeln!(out, " {v}");
    }
}

/// OpenMetrics escaping: backslash and newline, and the double quote in label values.
fn escape(s: &str, quote: bool) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '"' if quote => o.push_str("\\\""),
            c => o.push(c),
        }
    }
    o
}

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        match self.entry(key, || Entry::Counter(Arc::default())) {
            Entry::Counter(c) => Counter::from_arc(c),
            _ => Counter::noop(),
        }
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        match self.entry(key, || Entry::Gauge(Arc::default())) {
            Entry::Gauge(g) => Gauge::from_arc(g),
            _ => Gauge::noop(),
        }
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        match self.entry(key, || Entry::Histogram(Arc::default())) {
            Entry::Histogram(h) => Histogram::from_arc(h),
            _ => Histogram::noop(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_reach_the_recorder_of_their_thread_only() {
        let (a, b) = (Recorder::default(), Recorder::default());
        {
            let _g = a.install();
            metrics::counter!("hyflow_rows_read_total").increment(3);
            metrics::counter!("hyflow_rows_rejected_total", "reason" => "duplicate").increment(2);
            metrics::counter!("hyflow_rows_rejected_total", "reason" => "bad_quality").increment(1);
        }
        {
            let _g = b.install();
            metrics::counter!("hyflow_rows_read_total").increment(5);
        }
        metrics::counter!("hyflow_rows_read_total").increment(7); // no recorder: dropped
        assert_eq!(
            (
                a.counter("hyflow_rows_read_total"),
                b.counter("hyflow_rows_read_total")
            ),
            (3, 5)
        );
        assert_eq!(a.counter("hyflow_rows_rejected_total"), 3);
        assert_eq!(a.counters("hyflow_rows_rejected_total").len(), 2);
    }

    #[test]
    fn renders_openmetrics_families_with_help_buckets_and_ages() {
        let r = Recorder::default();
        {
            let _g = r.install();
            metrics::counter!("hyflow_rows_rejected_total", "reason" => "a\"b").increment(2);
            metrics::histogram!("hyflow_window_close_lag_seconds").record(0.2);
            metrics::histogram!("hyflow_window_close_lag_seconds").record(100.0);
            metrics::gauge!("hyflow_sink_durable_timestamp_seconds").set(1.0);
        }
        let text = r.render();
        assert!(
            text.contains("# TYPE hyflow_rows_rejected counter\n"),
            "{text}"
        );
        assert!(text.contains("# HELP hyflow_rows_rejected "), "{text}");
        assert!(
            text.contains("hyflow_rows_rejected_total{reason=\"a\\\"b\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("hyflow_window_close_lag_seconds_bucket{le=\"0.25\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("hyflow_window_close_lag_seconds_bucket{le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("hyflow_window_close_lag_seconds_sum 100.2\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE hyflow_sink_durable_age_seconds gauge\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
        let age = text
            .lines()
            .find_map(|l| l.strip_prefix("hyflow_sink_durable_age_seconds "))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap();
        assert!(age > 1e9, "{age}");
    }
}
