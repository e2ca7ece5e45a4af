//! The alert episode lifecycle of each sensor: an episode opens after `min-windows`
//! consecutive anomalous windows, is updated at most every `update-every` of event time while
//! it lasts, and resolves after `quiet-windows` consecutive windows at or below `close`.

use super::Scored;
use super::kinds::Fuse;
use crate::output::{AlertRow, AlertState};
use crate::stages::rules::Severity;

/// Lifecycle settings.
#[derive(Clone, Debug)]
pub struct EpisodeConfig {
    /// Hysteresis level.
    pub close: f64,
    /// Windows to open.
    pub min_windows: u32,
    /// Windows to resolve.
    pub quiet_windows: u32,
    /// Least ms between updates.
    pub update_every: i64,
}

impl From<&Fuse> for EpisodeConfig {
    fn from(f: &Fuse) -> Self {
        Self {
            close: f.close,
            min_windows: f.min_windows,
            quiet_windows: f.quiet_windows,
            update_every: f.update_every_ms,
        }
    }
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
enum Phase {
    #[default]
    Idle,
    Pending {
        run: u32,
    },
    Open {
        opened_at: i64,
        last_update: i64,
        quiet: u32,
        peak: f64,
        severity: Severity,
    },
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct SensorEpisodes {
    phase: Phase,
    count: u64,
}

/// [`Episodes`]' state (each sensor's phase and episode count, by slot), as a checkpoint
/// keeps it.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct EpisodesState {
    state: Vec<SensorEpisodes>,
}

/// One sensor's (or asset's) part of an [`EpisodesState`] (the default: no episode yet).
#[derive(Clone, Debug, Default)]
pub struct SlotEpisodes(SensorEpisodes);

impl EpisodesState {
    /// Each slot's state, in slot order (for moving sensors between workers).
    pub fn into_slots(self) -> Vec<SlotEpisodes> {
        self.state.into_iter().map(SlotEpisodes).collect()
    }

    /// The state of sensors numbered by their place in `slots`.
    pub fn from_slots(slots: Vec<SlotEpisodes>) -> Self {
        Self {
            state: slots.into_iter().map(|s| s.0).collect(),
        }
    }
}

/// Episode state of all sensors of a worker, by slot.
pub struct Episodes {
    cfg: EpisodeConfig,
    state: Vec<SensorEpisodes>,
}

/// What the caller knows about the window being judged.
pub struct WindowInfo<'a> {
    /// Sensor id.
    pub sensor: &'a str,
    /// Window start.
    pub start: i64,
    /// Window end.
    pub end: i64,
    /// Fired rule names, comma-separated.
    pub rules: String,
    /// Most severe fired rule.
    pub rule_severity: Option<Severity>,
    /// Top contributing features, `name=z`.
    pub top_features: String,
}

impl Episodes {
    /// Empty state.
    pub fn new(cfg: EpisodeConfig) -> Self {
        Self {
            cfg,
            state: Vec::new(),
        }
    }

    /// Every sensor's episode state, by slot, for a checkpoint.
    pub fn save(&self) -> EpisodesState {
        EpisodesState {
            state: self.state.clone(),
        }
    }

    /// Restores what [`Self::save`] returned.
    pub fn restore(&mut self, saved: EpisodesState) {
        self.state = saved.state;
    }

    /// Ends sensor `slot`'s open episode now (its sensor was disabled in the registry): the
    /// `resolved` event, if an episode was open; a pending one is forgotten.
    pub fn resolve(&mut self, slot: u32, s: &Scored, w: WindowInfo) -> Option<AlertRow> {
        let st = self.state.get_mut(slot as usize)?;
        let Phase::Open {
            opened_at,
            peak,
            severity,
            ..
        } = st.phase
        else {
            st.phase = Phase::Idle;
            return None;
        };
        st.phase = Phase::Idle;
        Some(event_row(
            &w,
            s,
            AlertState::Resolved,
            opened_at,
            peak,
            st.count,
            severity,
        ))
    }

    /// Advances sensor `slot` by one scored window; returns the event it causes, if any.
    pub fn step(&mut self, slot: u32, s: &Scored, w: WindowInfo) -> Option<AlertRow> {
        let i = slot as usize;
        if self.state.len() <= i {
            self.state.resize(i + 1, SensorEpisodes::default());
        }
        let cfg = &self.cfg;
        let st = &mut self.state[i];
        let severity = {
            let ai = if s.fused >= 0.9 {
                Severity::Critical
            } else {
                Severity::Warning
            };
            w.rule_severity.map_or(ai, |r| r.max(ai))
        };
        let event =
            |state: AlertState, opened_at: i64, peak: f64, episode: u64, severity: Severity| {
                event_row(&w, s, state, opened_at, peak, episode, severity)
            };
        match &mut st.phase {
            Phase::Idle | Phase::Pending { .. } => {
                if !s.alert {
                    st.phase = Phase::Idle;
                    return None;
                }
                let run = match st.phase {
                    Phase::Pending { run } => run + 1,
                    _ => 1,
                };
                if run < cfg.min_windows {
                    st.phase = Phase::Pending { run };
                    return None;
                }
                st.count += 1;
                st.phase = Phase::Open {
                    opened_at: w.end,
                    last_update: w.end,
                    quiet: 0,
                    peak: s.fused,
                    severity,
                };
                Some(event(AlertState::Open, w.end, s.fused, st.count, severity))
            }
            Phase::Open {
                opened_at,
                last_update,
                quiet,
                peak,
                severity: sev,
            } => {
                *peak = peak.max(s.fused);
                if s.fused > cfg.close {
                    *quiet = 0;
                    let escalated = severity > *sev;
                    if escalated || w.end - *last_update >= cfg.update_every {
                        *last_update = w.end;
                        *sev = (*sev).max(severity);
                        return Some(event(AlertState::Update, *opened_at, *peak, st.count, *sev));
                    }
                    return None;
                }
                *quiet += 1;
                if *quiet < cfg.quiet_windows {
                    return None;
                }
                let row = event(AlertState::Resolved, *opened_at, *peak, st.count, *sev);
                st.phase = Phase::Idle;
                Some(row)
            }
        }
    }
}

/// The event of window `w` (scored `s`) in an episode.
fn event_row(
    w: &WindowInfo,
    s: &Scored,
    state: AlertState,
    opened_at: i64,
    peak: f64,
    episode: u64,
    severity: Severity,
) -> AlertRow {
    AlertRow {
        sensor: w.sensor.to_string(),
        episode,
        state,
        window_start: w.start,
        window_end: w.end,
        opened_at,
        fused: s.fused,
        peak,
        score: s.score,
        ai_score: s.ai,
        rule_score: s.rule,
        rules: w.rules.clone(),
        severity: severity.as_str().to_string(),
        top_features: w.top_features.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(fused: f64) -> Scored {
        Scored {
            fused,
            alert: fused > 0.5,
            ..Default::default()
        }
    }
    fn info(end: i64) -> WindowInfo<'static> {
        WindowInfo {
            sensor: "s",
            start: end - 10,
            end,
            rules: String::new(),
            rule_severity: None,
            top_features: String::new(),
        }
    }

    #[test]
    fn lifecycle_with_hysteresis_and_rate_limit() {
        let mut e = Episodes::new(EpisodeConfig {
            close: 0.3,
            min_windows: 2,
            quiet_windows: 2,
            update_every: 30,
        });
        let seq = [0.9, 0.1, 0.7, 0.8, 0.4, 0.6, 0.6, 0.2, 0.2, 0.9];
        let got: Vec<(i64, &str)> = seq
            .iter()
            .enumerate()
            .filter_map(|(k, f)| {
                e.step(0, &scored(*f), info(10 * (k as i64 + 1)))
                    .map(|a| (a.window_end, a.state.as_str()))
            })
            .collect();
        // 0.9 alone does not open (min 2); 0.7,0.8 open at 40; 0.4 keeps it (above close);
        // update at 70 (30 after 40); two quiet windows resolve at 90.
        assert_eq!(got, vec![(40, "open"), (70, "update"), (90, "resolved")]);
    }

    #[test]
    fn event_ids_name_the_episode_and_the_event_and_repeat_in_a_second_run() {
        let run = || {
            let mut e = Episodes::new(EpisodeConfig {
                close: 0.3,
                min_windows: 1,
                quiet_windows: 1,
                update_every: 10,
            });
            [0.9, 0.9, 0.1, 0.9, 0.1]
                .iter()
                .enumerate()
                .filter_map(|(k, f)| e.step(0, &scored(*f), info(10 * (k as i64 + 1))))
                .map(|a| a.event_id())
                .collect::<Vec<_>>()
        };
        let ids = run();
        assert_eq!(
            ids,
            [
                "s@10/open@10",
                "s@10/update@20",
                "s@10/resolved@30",
                "s@40/open@40",
                "s@40/resolved@50"
            ]
        );
        assert_eq!(ids, run());
    }
}
