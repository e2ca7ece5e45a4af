//! The rows hyflow outputs: windows (features and scores), alert lifecycle events, rejects and
//! late readings. Plain data; `sink::arrow` turns them into Arrow record batches.

use crate::batch::{LateRow, RejectRow};
use serde::{Deserialize, Serialize};

/// Features and scores of one (sensor, window).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowRow {
    /// Sensor id.
    pub sensor: String,
    /// Window start, ms (inclusive).
    pub start: i64,
    /// Window end, ms (exclusive).
    pub end: i64,
    /// Feature values in the pipeline's feature order.
    pub features: Vec<f64>,
    /// Values filled in by gap filling.
    pub filled: u32,
    /// Largest detector z-score (raw, uncalibrated); 0 when no detector is configured.
    pub score: f64,
    /// Calibrated learned score in [0, 1] (0 during warm-up).
    pub ai_score: f64,
    /// Rule score in [0, 1]: the weight of the most severe rule that fired.
    pub rule_score: f64,
    /// Fused score in [0, 1].
    pub fused: f64,
    /// True when the fused score is above the pipeline's `open` threshold.
    pub alert: bool,
    /// Names of the rules that fired, comma-separated.
    pub rules: String,
    /// Each detector's calibrated score in [0, 1] (the largest over its features), in the
    /// pipeline's detector order: the windows output's `score_<detector>` columns.
    pub detector_scores: Vec<f64>,
    /// Names of the detectors that re-baselined at this window (`learn = "gated"`: a shift
    /// held for `relearn` windows is taken as the new normal), comma-separated.
    pub rebaselined: String,
}

/// An asset's score for one window start (the `assets` output).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssetRow {
    /// The asset (the sensor ids up to the `asset-delimiter`).
    pub asset: String,
    /// Window start, ms (inclusive).
    pub start: i64,
    /// Window end, ms (exclusive).
    pub end: i64,
    /// Raw score of the asset detector that scored highest (a normal-equivalent z).
    pub score: f64,
    /// Its calibrated score in [0, 1] (0 during warm-up).
    pub ai_score: f64,
    /// True when the calibrated score is above the pipeline's `open` threshold.
    pub alert: bool,
    /// The sensors that contribute most to the score, with their share of it:
    /// `d03-speed:0.71,d03-flow:0.22` (at most three; empty when nothing was scored).
    pub top_sensors: String,
    /// The asset's alert episode this window belongs to, when it is an event of one (0 when
    /// not): episodes open, update and resolve as sensor episodes do (`[fuse]` settings).
    pub episode: u64,
    /// `open`, `update` or `resolved` when this window is such an event of the asset's
    /// episode; empty otherwise.
    pub state: String,
}

/// State of an alert episode carried by an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AlertState {
    /// The episode opened.
    Open,
    /// The episode is still open (rate-limited).
    Update,
    /// The episode ended.
    Resolved,
}

impl AlertState {
    /// Lower-case name as written in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Open => "open",
            AlertState::Update => "update",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One event in an alert episode's lifecycle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRow {
    /// Sensor id.
    pub sensor: String,
    /// Episode number for this sensor (1, 2, ...).
    pub episode: u64,
    /// open / update / resolved.
    pub state: AlertState,
    /// Start of the window that caused this event.
    pub window_start: i64,
    /// End of that window (the event's time).
    pub window_end: i64,
    /// When the episode opened (end of its first window).
    pub opened_at: i64,
    /// Fused score of the window.
    pub fused: f64,
    /// Largest fused score of the episode so far.
    pub peak: f64,
    /// Largest raw detector score of the window.
    pub score: f64,
    /// Learned (calibrated detector) score of the window, in [0, 1].
    pub ai_score: f64,
    /// Rule score of the window.
    pub rule_score: f64,
    /// Rules fired in the window.
    pub rules: String,
    /// info / warning / critical.
    pub severity: String,
    /// The (up to three) detectors with the highest calibrated scores, `name:feature=score`.
    pub top_features: String,
}

impl AlertRow {
    /// The event's id, the same in every run over the same readings (a restarted or replayed
    /// run included): `SENSOR@OPENED_AT/STATE@WINDOW_END`, times in ms. A consumer drops a
    /// message whose id it has seen.
    pub fn event_id(&self) -> String {
        format!(
            "{}@{}/{}@{}",
            self.sensor,
            self.opened_at,
            self.state.as_str(),
            self.window_end
        )
    }
}

/// State of an incident carried by an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IncidentState {
    /// A new incident: a sensor's episode opened with no open neighbour, or a part split off
    /// (`related` names the incident it split from).
    Open,
    /// Its members changed.
    Update,
    /// It joined an older incident (`related`), which goes on under that one's id.
    MergedInto,
    /// Its last member episode resolved.
    Resolved,
}

impl IncidentState {
    /// Name as written in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::Update => "update",
            IncidentState::MergedInto => "merged-into",
            IncidentState::Resolved => "resolved",
        }
    }
}

/// One event in an incident's lifecycle (the `incidents` output): a connected set of sensors
/// (or assets) with open alert episodes, connected through the registry's topology.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentRow {
    /// The incident's id: its earliest member episode, `sensor#episode`. Stable: it survives
    /// merges (the merged incident has the older id) and splits (the part that holds that
    /// episode keeps it).
    pub incident: String,
    /// open / update / merged-into / resolved.
    pub state: IncidentState,
    /// Event time (ms): the end of the window that caused the change.
    pub time: i64,
    /// When its earliest member episode opened.
    pub start: i64,
    /// When it ended (resolved or merged); None while open.
    pub end: Option<i64>,
    /// Member sensors (or assets) with open episodes, sorted, comma-separated (a resolved
    /// incident lists the members it had last).
    pub members: String,
    /// Number of members.
    pub size: u32,
    /// Root-cause candidate: the member whose episode opened first.
    pub root_cause: String,
    /// The most upstream member along directed edges (empty when no directed edge joins
    /// two members).
    pub upstream: String,
    /// Largest fused score of its members' episodes so far.
    pub peak: f64,
    /// merged-into: the incident it joined; open after a split: the one it split from.
    pub related: String,
}

/// Anything that goes to a sink.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OutRecord {
    /// A window row.
    Window(WindowRow),
    /// An alert event.
    Alert(AlertRow),
    /// A rejected reading or file.
    Reject(RejectRow),
    /// A late reading.
    Late(LateRow),
    /// An asset's score.
    Asset(AssetRow),
    /// An incident event.
    Incident(IncidentRow),
    /// A failure on some worker (any process): the sinks give up instead of finishing.
    Failure(crate::dataflow::Failure),
}
