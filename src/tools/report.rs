//! `hyflow report`: one self-contained HTML file about a run's outputs (no script, no network
//! at view time; plots are inline SVG written here). A summary table (windows, sensors,
//! rejects by reason, late rows, alert episodes by severity, the sensors longest in alert),
//! then per selected sensor its signal, its scores and each detector's score over time (the
//! windows output's `score_<detector>` columns), alert episodes shaded and
//! rule firings marked, and the incidents (from an `incidents` output) with the sensors they
//! joined. Reads the outputs as `hyflow cat` does (`inspect`).

use super::inspect::{millis, read};
use crate::timefmt::format_rfc3339;
use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// What to report on.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Sensors to plot (a glob); `None`: the sensors longest in alert (or the first ones).
    pub sensors: Option<glob::Pattern>,
    /// Window ends from (inclusive), ms.
    pub from: Option<i64>,
    /// Window ends to (exclusive), ms.
    pub to: Option<i64>,
    /// Plots at most this many sensors.
    pub max_sensors: usize,
}

/// One window of one sensor, as plotted.
#[derive(Clone, Debug)]
struct Point {
    end: i64,
    signal: f64,
    fused: f64,
    ai: f64,
    rule: f64,
    fired: bool,
    /// Each detector's calibrated score, in the order of [`Report::detectors`].
    detectors: Vec<f64>,
}

/// An alert episode: sensor, start and end (ms), its highest severity.
#[derive(Clone, Debug)]
struct Episode {
    start: i64,
    end: i64,
    severity: String,
}

/// An incident, gathered from its events.
#[derive(Clone, Debug)]
struct Incident {
    id: String,
    start: i64,
    /// When it resolved or merged; `None` while open at the end of the outputs.
    end: Option<i64>,
    /// Its last state (`open`, `update`, `merged-into`, `resolved`).
    state: String,
    /// `merged-into`: the incident it joined.
    related: String,
    /// Every sensor that was a member at some event.
    members: std::collections::BTreeSet<String>,
    /// The most members at one time.
    size: i64,
    root_cause: String,
    upstream: String,
    peak: f64,
}

/// What the report shows, read from the outputs.
#[derive(Debug, Default)]
pub struct Report {
    signal_name: String,
    /// The detectors whose scores the windows output holds (its `score_<detector>` columns).
    detectors: Vec<String>,
    points: BTreeMap<String, Vec<Point>>,
    episodes: BTreeMap<String, Vec<Episode>>,
    rejects: BTreeMap<String, u64>,
    late: u64,
    /// Windows in the selected time range.
    pub windows: u64,
    /// Alert episodes that overlap the time range.
    pub episode_count: u64,
    /// The sensors plotted, in order.
    pub plotted: Vec<String>,
    /// Incidents that overlap the time range, by start (empty without an incidents output).
    incidents: Vec<Incident>,
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a dyn Array, String> {
    b.column_by_name(name)
        .map(|c| c.as_ref())
        .ok_or_else(|| format!("no column {name}"))
}

fn floats(b: &RecordBatch, name: &str) -> Result<Vec<f64>, String> {
    let c = column(b, name)?;
    match c.data_type() {
        DataType::Float64 => Ok(c.as_primitive::<Float64Type>().values().to_vec()),
        _ => Err(format!("column {name} is not a float64")),
    }
}

fn strings(b: &RecordBatch, name: &str) -> Result<Vec<String>, String> {
    let c = column(b, name)?;
    match c.data_type() {
        DataType::Utf8 => Ok(c
            .as_string::<i32>()
            .iter()
            .map(|s| s.unwrap_or_default().to_string())
            .collect()),
        _ => Err(format!("column {name} is not text")),
    }
}

fn times(b: &RecordBatch, name: &str) -> Result<Vec<Option<i64>>, String> {
    let c = column(b, name)?;
    let v = millis(c).ok_or_else(|| format!("column {name} is not a time"))?;
    Ok((0..c.len()).map(|i| c.is_valid(i).then(|| v[i])).collect())
}

/// Reads the outputs under `dir` (its `windows` output is needed; `alerts`, `rejects` and
/// `late` are used when present).
pub fn build(dir: &Path, opts: &Options) -> Result<Report, String> {
    let in_range = |t: i64| opts.from.is_none_or(|f| t >= f) && opts.to.is_none_or(|e| t < e);
    let load = |name: &str| -> Result<Vec<RecordBatch>, String> {
        read(&dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()))
    };
    let mut r = Report::default();
    for b in load("windows")? {
        // The signal: the window mean when the pipeline computes it, else the first feature.
        if r.signal_name.is_empty() {
            let s = b.schema();
            r.signal_name = s
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .find(|n| *n == "mean")
                .or_else(|| {
                    s.fields()
                        .iter()
                        .skip(3)
                        .find(|f| f.data_type() == &DataType::Float64)
                        .map(|f| f.name().as_str())
                })
                .unwrap_or("fused")
                .to_string();
        }
        let (sensor, end) = (strings(&b, "sensor_id")?, times(&b, "window_end")?);
        let signal = floats(&b, &r.signal_name)?;
        let (fused, ai, rule) = (
            floats(&b, "fused")?,
            floats(&b, "ai_score")?,
            floats(&b, "rule_score")?,
        );
        let rules = strings(&b, "rules")?;
        if r.detectors.is_empty() {
            r.detectors = b
                .schema()
                .fields()
                .iter()
                .filter_map(|f| {
                    f.name()
                        .strip_prefix(crate::stages::sink::arrow::DETECTOR_COLUMN_PREFIX)
                        .map(String::from)
                })
                .collect();
        }
        let detectors = r
            .detectors
            .iter()
            .map(|d| floats(&b, &crate::stages::sink::arrow::detector_column(d)))
            .collect::<Result<Vec<_>, _>>()?;
        for i in 0..b.num_rows() {
            let Some(end) = end[i].filter(|t| in_range(*t)) else {
                continue;
            };
            r.windows += 1;
            r.points.entry(sensor[i].clone()).or_default().push(Point {
                end,
                signal: signal[i],
                fused: fused[i],
                ai: ai[i],
                rule: rule[i],
                fired: !rules[i].is_empty(),
                detectors: detectors.iter().map(|d| d[i]).collect(),
            });
        }
    }
    if dir.join("alerts").exists() {
        // Episodes from their events: open .. resolved (or the last event seen).
        let mut open: BTreeMap<(String, i64), Episode> = BTreeMap::new();
        for b in load("alerts")? {
            let (sensor, severity) = (strings(&b, "sensor_id")?, strings(&b, "severity")?);
            let (start, end) = (times(&b, "window_start")?, times(&b, "window_end")?);
            let ep = column(&b, "episode")?;
            if ep.data_type() != &DataType::Int64 {
                return Err("column episode is not an int64".into());
            }
            let ep = ep.as_primitive::<arrow_array::types::Int64Type>().values();
            for i in 0..b.num_rows() {
                let (Some(s), Some(e)) = (start[i], end[i]) else {
                    continue;
                };
                let x = open.entry((sensor[i].clone(), ep[i])).or_insert(Episode {
                    start: s,
                    end: e,
                    severity: severity[i].clone(),
                });
                x.end = x.end.max(e);
                if rank(&severity[i]) > rank(&x.severity) {
                    x.severity = severity[i].clone();
                }
            }
        }
        for ((sensor, _), e) in open {
            if opts.to.is_none_or(|t| e.start < t) && opts.from.is_none_or(|f| e.end >= f) {
                r.episode_count += 1;
                r.episodes.entry(sensor).or_default().push(e);
            }
        }
    }
    if dir.join("incidents").exists() {
        r.incidents = incidents(&load("incidents")?, opts)?;
    }
    if dir.join("rejects").exists() {
        for b in load("rejects")? {
            let t = times(&b, "time")?;
            for (i, reason) in strings(&b, "reason")?.into_iter().enumerate() {
                if t[i].is_none_or(in_range) {
                    *r.rejects.entry(reason_kind(&reason)).or_default() += 1;
                }
            }
        }
    }
    if dir.join("late").exists() {
        for b in load("late")? {
            r.late += times(&b, "time")?
                .into_iter()
                .filter(|t| t.is_some_and(in_range))
                .count() as u64;
        }
    }
    // Sensors to plot: those the glob names, else the longest in alert, else the first ones.
    let mut candidates: Vec<(i64, String)> = r
        .points
        .keys()
        .filter(|s| opts.sensors.as_ref().is_none_or(|g| g.matches(s)))
        .map(|s| (-alert_time(r.episodes.get(s)), s.clone()))
        .collect();
    if opts.sensors.is_none() {
        candidates.sort();
    }
    r.plotted = candidates
        .into_iter()
        .take(opts.max_sensors.max(1))
        .map(|(_, s)| s)
        .collect();
    Ok(r)
}

/// Incidents from their events (in event order), those overlapping the time range, by start.
fn incidents(batches: &[RecordBatch], opts: &Options) -> Result<Vec<Incident>, String> {
    let mut by_id: BTreeMap<String, Incident> = BTreeMap::new();
    for b in batches {
        let (id, state) = (strings(b, "incident_id")?, strings(b, "state")?);
        let (start, end) = (times(b, "start")?, times(b, "end")?);
        let (members, related) = (strings(b, "members")?, strings(b, "related")?);
        let (root, upstream) = (strings(b, "root_cause")?, strings(b, "upstream")?);
        let peak = floats(b, "peak")?;
        let size = column(b, "size")?;
        if size.data_type() != &DataType::Int64 {
            return Err("column size is not an int64".into());
        }
        let size = size
            .as_primitive::<arrow_array::types::Int64Type>()
            .values();
        for i in 0..b.num_rows() {
            let x = by_id.entry(id[i].clone()).or_insert_with(|| Incident {
                id: id[i].clone(),
                start: start[i].unwrap_or(i64::MAX),
                end: None,
                state: String::new(),
                related: String::new(),
                members: Default::default(),
                size: 0,
                root_cause: String::new(),
                upstream: String::new(),
                peak: 0.0,
            });
            x.start = x.start.min(start[i].unwrap_or(i64::MAX));
            x.end = end[i];
            x.state = state[i].clone();
            x.related = related[i].clone();
            x.members.extend(
                members[i]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(String::from),
            );
            x.size = x.size.max(size[i]);
            x.root_cause = root[i].clone();
            x.upstream = upstream[i].clone();
            x.peak = x.peak.max(peak[i]);
        }
    }
    let mut v: Vec<Incident> = by_id
        .into_values()
        .filter(|x| {
            opts.to.is_none_or(|t| x.start < t)
                && opts.from.is_none_or(|f| x.end.is_none_or(|e| e >= f))
        })
        .collect();
    v.sort_by(|a, b| a.start.cmp(&b.start).then(a.id.cmp(&b.id)));
    Ok(v)
}

fn rank(severity: &str) -> u8 {
    match severity {
        "critical" => 3,
        "warning" => 2,
        "info" => 1,
        _ => 0,
    }
}

/// A reject reason without its particulars (`value 1e9 outside [-1e6, 1e6]` → `value ...
/// outside`): the words before the first number or quote.
fn reason_kind(reason: &str) -> String {
    let cut = reason
        .find(|c: char| c.is_ascii_digit() || c == '"' || c == '(' || c == ':')
        .unwrap_or(reason.len());
    let k = reason[..cut].trim().trim_end_matches([',', '=']).trim();
    if k.is_empty() { reason } else { k }.to_string()
}

fn alert_time(episodes: Option<&Vec<Episode>>) -> i64 {
    episodes.map_or(0, |v| v.iter().map(|e| e.end - e.start).sum())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 900.0;
const H: f64 = 150.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;

/// One plot: `series` (label, colour, values) over `ends`, y from `lo` to `hi`, episodes
/// shaded, `marks` (x positions of rule firings) as ticks.
fn svg(
    ends: &[i64],
    series: &[(&str, &str, Vec<f64>)],
    (lo, hi): (f64, f64),
    episodes: &[Episode],
    marks: &[i64],
) -> String {
    let (t0, t1) = (ends[0], *ends.last().unwrap_or(&ends[0]));
    let span = (t1 - t0).max(1) as f64;
    let x = |t: i64| LEFT + (t - t0) as f64 / span * (W - LEFT - RIGHT);
    let range = if hi > lo { hi - lo } else { 1.0 };
    let y = |v: f64| TOP + (1.0 - (v - lo) / range) * (H - TOP - BOTTOM);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img">"#
    );
    let _ = write!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="#fafafa" stroke="#ccc"/>"##,
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    );
    for e in episodes {
        let (a, b) = (x(e.start.max(t0)), x(e.end.min(t1)));
        let colour = if e.severity == "critical" {
            "#f4b6b6"
        } else {
            "#f8dcaa"
        };
        let _ = write!(
            s,
            r#"<rect class="episode" x="{a:.1}" y="{TOP}" width="{:.1}" height="{}" fill="{colour}" opacity="0.7"><title>{} episode {} .. {}</title></rect>"#,
            (b - a).max(1.0),
            H - TOP - BOTTOM,
            esc(&e.severity),
            format_rfc3339(e.start),
            format_rfc3339(e.end)
        );
    }
    for t in marks {
        let _ = write!(
            s,
            r##"<line class="rule" x1="{0:.1}" x2="{0:.1}" y1="{1}" y2="{2}" stroke="#7b1fa2" stroke-width="1"/>"##,
            x(*t),
            H - BOTTOM - 6.0,
            H - BOTTOM
        );
    }
    for (label, colour, v) in series {
        let mut d = String::new();
        for (i, (t, val)) in ends.iter().zip(v).enumerate() {
            if !val.is_finite() {
                continue;
            }
            let _ = write!(
                d,
                "{}{:.1},{:.1}",
                if i == 0 || d.is_empty() { "M" } else { "L" },
                x(*t),
                y(*val)
            );
        }
        let _ = write!(
            s,
            r#"<path class="series" d="{d}" fill="none" stroke="{colour}" stroke-width="1.2"><title>{}</title></path>"#,
            esc(label)
        );
    }
    for (v, anchor) in [(hi, TOP + 4.0), (lo, H - BOTTOM)] {
        let _ = write!(
            s,
            r##"<text x="{}" y="{anchor}" font-size="10" text-anchor="end" fill="#555">{}</text>"##,
            LEFT - 4.0,
            short(v)
        );
    }
    for (t, anchor) in [(t0, "start"), (t1, "end")] {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{}" font-size="10" text-anchor="{anchor}" fill="#555">{}</text>"##,
            x(t),
            H - 6.0,
            format_rfc3339(t)
        );
    }
    s.push_str("</svg>");
    s
}

fn short(v: f64) -> String {
    if v.abs() >= 1000.0 || (v != 0.0 && v.abs() < 0.01) {
        format!("{v:.2e}")
    } else {
        format!("{v:.2}")
    }
}

/// At most `n` points: each bucket of windows becomes its last end, the mean of the signal
/// and the largest scores (a short spike stays visible), fired if any fired.
fn thin(points: &[Point], n: usize) -> Vec<Point> {
    if points.len() <= n {
        return points.to_vec();
    }
    points
        .chunks(points.len().div_ceil(n))
        .map(|c| {
            let max = |f: fn(&Point) -> f64| c.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
            Point {
                end: c[c.len() - 1].end,
                signal: c.iter().map(|p| p.signal).sum::<f64>() / c.len() as f64,
                fused: max(|p| p.fused),
                ai: max(|p| p.ai),
                rule: max(|p| p.rule),
                fired: c.iter().any(|p| p.fired),
                detectors: (0..c[0].detectors.len())
                    .map(|d| {
                        c.iter()
                            .map(|p| p.detectors[d])
                            .fold(f64::NEG_INFINITY, f64::max)
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The report as one HTML document.
pub fn html(r: &Report, title: &str) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0}</title><style>body{{font-family:sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse;margin:8px 0 20px}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}td.n{{text-align:right}}h2{{margin-top:28px}}.legend span{{margin-right:14px}}</style></head><body>\n<h1>{0}</h1>\n",
        esc(title)
    );
    let mut severities: BTreeMap<&str, u64> = BTreeMap::new();
    for e in r.episodes.values().flatten() {
        *severities.entry(e.severity.as_str()).or_default() += 1;
    }
    h.push_str("<h2>Summary</h2><table id=\"summary\">");
    let row = |h: &mut String, k: &str, v: String| {
        let _ = write!(
            h,
            "<tr><th>{}</th><td class=\"n\">{}</td></tr>",
            esc(k),
            esc(&v)
        );
    };
    row(&mut h, "windows", r.windows.to_string());
    row(&mut h, "sensors", r.points.len().to_string());
    row(
        &mut h,
        "rejected readings",
        r.rejects.values().sum::<u64>().to_string(),
    );
    for (reason, n) in &r.rejects {
        row(&mut h, &format!("rejected: {reason}"), n.to_string());
    }
    row(&mut h, "late readings", r.late.to_string());
    row(&mut h, "alert episodes", r.episode_count.to_string());
    for (s, n) in &severities {
        row(&mut h, &format!("alert episodes: {s}"), n.to_string());
    }
    if !r.incidents.is_empty() {
        row(&mut h, "incidents", r.incidents.len().to_string());
        let mut states: BTreeMap<&str, u64> = BTreeMap::new();
        for x in &r.incidents {
            *states.entry(x.state.as_str()).or_default() += 1;
        }
        for (s, n) in &states {
            row(&mut h, &format!("incidents: last {s}"), n.to_string());
        }
    }
    h.push_str("</table>\n<h2>Sensors longest in alert</h2><table id=\"top\"><tr><th>sensor</th><th>episodes</th><th>time in alert</th></tr>");
    let mut top: Vec<(i64, &String)> = r
        .episodes
        .iter()
        .map(|(s, e)| (alert_time(Some(e)), s))
        .collect();
    top.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    for (t, s) in top.iter().take(10) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.0} s</td></tr>",
            esc(s),
            r.episodes[*s].len(),
            *t as f64 / 1000.0
        );
    }
    h.push_str("</table>\n");
    incidents_table(&mut h, &r.incidents);
    h.push_str("<p class=\"legend\"><span style=\"color:#1565c0\">&#9632; signal</span><span style=\"color:#c62828\">&#9632; fused score</span><span style=\"color:#2e7d32\">&#9632; learned (ai) score</span><span style=\"color:#ef6c00\">&#9632; rule score</span><span style=\"color:#7b1fa2\">| rule fired</span><span style=\"background:#f4b6b6\">critical episode</span> <span style=\"background:#f8dcaa\">other episode</span></p>\n");
    for s in &r.plotted {
        let pts = thin(&r.points[s], 1500);
        let ends: Vec<i64> = pts.iter().map(|p| p.end).collect();
        let eps = r.episodes.get(s).cloned().unwrap_or_default();
        let marks: Vec<i64> = pts.iter().filter(|p| p.fired).map(|p| p.end).collect();
        let sig: Vec<f64> = pts.iter().map(|p| p.signal).collect();
        let (lo, hi) = sig
            .iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (0.0, 1.0) };
        let _ = write!(
            h,
            "<section class=\"sensor\" id=\"sensor-{0}\"><h2>{0}</h2><p>{1} windows, {2} alert episode(s); the signal is each window's <code>{3}</code>; below it the scores, in [0, 1]</p>",
            esc(s),
            r.points[s].len(),
            eps.len(),
            esc(&r.signal_name),
        );
        let joined: Vec<&str> = r
            .incidents
            .iter()
            .filter(|x| x.members.contains(s))
            .map(|x| x.id.as_str())
            .collect();
        if !joined.is_empty() {
            let _ = write!(
                h,
                "<p class=\"joined\">member of incident(s): {}</p>",
                esc(&joined.join(", "))
            );
        }
        h.push_str(&svg(
            &ends,
            &[(&r.signal_name, "#1565c0", sig)],
            (lo, hi),
            &eps,
            &[],
        ));
        h.push_str(&svg(
            &ends,
            &[
                (
                    "fused score",
                    "#c62828",
                    pts.iter().map(|p| p.fused).collect(),
                ),
                (
                    "learned (ai) score",
                    "#2e7d32",
                    pts.iter().map(|p| p.ai).collect(),
                ),
                (
                    "rule score",
                    "#ef6c00",
                    pts.iter().map(|p| p.rule).collect(),
                ),
            ],
            (0.0, 1.0),
            &eps,
            &marks,
        ));
        if !r.detectors.is_empty() {
            let series: Vec<(&str, &str, Vec<f64>)> = r
                .detectors
                .iter()
                .enumerate()
                .map(|(d, name)| {
                    (
                        name.as_str(),
                        PALETTE[d % PALETTE.len()],
                        pts.iter().map(|p| p.detectors[d]).collect(),
                    )
                })
                .collect();
            h.push_str("<p class=\"legend\">each detector's calibrated score: ");
            for (name, colour, _) in &series {
                let _ = write!(
                    h,
                    "<span style=\"color:{colour}\">&#9632; {}</span>",
                    esc(name)
                );
            }
            h.push_str("</p>");
            h.push_str(&svg(&ends, &series, (0.0, 1.0), &eps, &[]));
        }
        h.push_str("</section>\n");
    }
    h.push_str("</body></html>\n");
    h
}

/// Line colours of the detectors' scores (repeated past eight detectors).
const PALETTE: [&str; 8] = [
    "#00838f", "#6a1b9a", "#ad1457", "#558b2f", "#4e342e", "#283593", "#f9a825", "#37474f",
];

/// Incidents shown in the table at most (the summary counts them all).
const MAX_INCIDENT_ROWS: usize = 50;

/// The incidents table: one row per incident, by start.
fn incidents_table(h: &mut String, incidents: &[Incident]) {
    if incidents.is_empty() {
        return;
    }
    h.push_str("<h2>Incidents</h2><table id=\"incidents\"><tr><th>incident</th><th>start</th><th>end</th><th>last state</th><th>most members</th><th>members (all)</th><th>root cause</th><th>most upstream</th><th>peak</th></tr>");
    for x in incidents.iter().take(MAX_INCIDENT_ROWS) {
        let state = if x.related.is_empty() || x.state != "merged-into" {
            x.state.clone()
        } else {
            format!("merged into {}", x.related)
        };
        let members: Vec<&str> = x.members.iter().map(String::as_str).collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{:.3}</td></tr>",
            esc(&x.id),
            esc(&format_rfc3339(x.start)),
            esc(&x.end.map_or("open".to_string(), format_rfc3339)),
            esc(&state),
            x.size,
            esc(&members.join(", ")),
            esc(&x.root_cause),
            esc(&x.upstream),
            x.peak
        );
    }
    h.push_str("</table>\n");
    if incidents.len() > MAX_INCIDENT_ROWS {
        let _ = writeln!(
            h,
            "<p>The first {MAX_INCIDENT_ROWS} of {} incidents; <code>hyflow cat DIR/incidents</code> prints all.</p>",
            incidents.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_lose_their_particulars() {
        assert_eq!(reason_kind("value is NaN"), "value is NaN");
        assert_eq!(reason_kind("value 1e9 outside [-1e6, 1e6]"), "value");
        assert_eq!(reason_kind("duplicate of row 12"), "duplicate of row");
    }

    #[test]
    fn thinning_keeps_spikes_and_firings() {
        let pts: Vec<Point> = (0..10_000)
            .map(|i| Point {
                end: i,
                signal: 1.0,
                fused: if i == 5_003 { 0.9 } else { 0.0 },
                ai: 0.0,
                rule: 0.0,
                fired: i == 7_001,
                detectors: vec![if i == 9_000 { 0.7 } else { 0.1 }],
            })
            .collect();
        let t = thin(&pts, 100);
        assert!(t.len() <= 100);
        assert!(t.iter().any(|p| p.fused == 0.9));
        assert_eq!(t.iter().filter(|p| p.fired).count(), 1);
        assert!(t.iter().all(|p| p.signal == 1.0));
        assert!(t.iter().any(|p| p.detectors == [0.7]));
    }
}
