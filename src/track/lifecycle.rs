//! A track's life: tentative until it has been seen often enough, confirmed while
//! seen, lost while briefly unseen, ended when gone.
//!
//! ```text
//! Tentative --confirm_hits hits, no gap > tentative_max_gap_s--> Confirmed  (track_started)
//! Tentative --gap > tentative_max_gap_s--> Ended, silently (a ghost never becomes a person)
//! Confirmed --unseen > lost_after_s--> Lost                                  (track_lost)
//! Lost      --seen again--> Confirmed                                        (track_recovered)
//! Lost      --unseen > end_after_s (exit_end_after_s near a wall)--> Ended   (track_ended)
//! ```
//!
//! Times are in seconds of frame time, so the rules hold at any frame rate.

use super::error::{check, TrackError};

/// Where a track is in its life (see the module's diagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackState {
    /// Seen, but not yet often enough to be a person.
    Tentative,
    /// A person, seen recently.
    Confirmed,
    /// A person, briefly unseen (still counted in the room).
    Lost,
    /// Gone; the track is removed.
    Ended,
}

impl TrackState {
    /// The state's name in `tracking_update` messages.
    pub fn as_str(self) -> &'static str {
        match self {
            TrackState::Tentative => "tentative",
            TrackState::Confirmed => "confirmed",
            TrackState::Lost => "lost",
            TrackState::Ended => "ended",
        }
    }
}

/// What a step changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Tentative to confirmed.
    Started,
    /// Confirmed to lost.
    Lost,
    /// Lost to confirmed.
    Recovered,
    /// Confirmed or lost to ended.
    Ended,
    /// A tentative track that never confirmed (not reported).
    Dropped,
}

/// When a track confirms, goes lost and ends (seconds of frame time).
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleConfig {
    /// Hits needed to confirm a tentative track.
    pub confirm_hits: u32,
    /// A tentative track unseen for longer than this is dropped.
    pub tentative_max_gap_s: f64,
    /// A confirmed track unseen for longer than this is lost.
    pub lost_after_s: f64,
    /// A lost track unseen for longer than this (since its last hit) ends.
    pub end_after_s: f64,
    /// The same, for a track last seen near a wall (someone walking out).
    pub exit_end_after_s: f64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            confirm_hits: 4,
            tentative_max_gap_s: 0.25,
            lost_after_s: 0.3,
            end_after_s: 3.0,
            exit_end_after_s: 0.6,
        }
    }
}

impl LifecycleConfig {
    /// Checks every value against its range.
    pub fn validate(&self) -> Result<(), TrackError> {
        check("confirm_hits", self.confirm_hits as f64, 1.0, 1000.0)?;
        check("tentative_max_gap_s", self.tentative_max_gap_s, 0.0, 60.0)?;
        check("lost_after_s", self.lost_after_s, 0.0, 60.0)?;
        check("end_after_s", self.end_after_s, self.lost_after_s, 3600.0)?;
        check(
            "exit_end_after_s",
            self.exit_end_after_s,
            0.0,
            self.end_after_s,
        )?;
        Ok(())
    }
}

/// One track's lifecycle state and hit record.
#[derive(Debug, Clone, PartialEq)]
pub struct Lifecycle {
    /// The current state.
    pub state: TrackState,
    /// Frames with a matched detection so far.
    pub hits: u32,
    /// Frame time of the first hit, seconds.
    pub first_hit: f64,
    /// Frame time of the latest hit, seconds.
    pub last_hit: f64,
}

impl Lifecycle {
    /// A tentative track first seen at `t`.
    pub fn new(t: f64) -> Self {
        Lifecycle {
            state: TrackState::Tentative,
            hits: 1,
            first_hit: t,
            last_hit: t,
        }
    }

    /// The track was seen at `t`.
    pub(crate) fn hit(&mut self, t: f64, cfg: &LifecycleConfig) -> Option<Transition> {
        self.hits = self.hits.saturating_add(1);
        self.last_hit = t;
        match self.state {
            TrackState::Tentative if self.hits >= cfg.confirm_hits => {
                self.state = TrackState::Confirmed;
                Some(Transition::Started)
            }
            TrackState::Lost => {
                self.state = TrackState::Confirmed;
                Some(Transition::Recovered)
            }
            _ => None,
        }
    }

    /// The track was not seen at `t`; `near_exit` when its last position was near a wall.
    pub fn miss(&mut self, t: f64, cfg: &LifecycleConfig, near_exit: bool) -> Option<Transition> {
        let gap = t - self.last_hit;
        match self.state {
            TrackState::Tentative if gap > cfg.tentative_max_gap_s => {
                self.state = TrackState::Ended;
                Some(Transition::Dropped)
            }
            TrackState::Confirmed if gap > cfg.lost_after_s => {
                self.state = TrackState::Lost;
                Some(Transition::Lost)
            }
            TrackState::Lost => {
                let limit = if near_exit {
                    cfg.exit_end_after_s
                } else {
                    cfg.end_after_s
                };
                if gap > limit {
                    self.state = TrackState::Ended;
                    Some(Transition::Ended)
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ghost_never_confirms_and_one_miss_never_ends() {
        let cfg = LifecycleConfig::default();
        // A one-frame ghost at 20 fps.
        let mut g = Lifecycle::new(0.0);
        assert_eq!(g.miss(0.05, &cfg, false), None);
        assert_eq!(g.miss(0.30, &cfg, false), Some(Transition::Dropped));
        assert_eq!(g.state, TrackState::Ended);
        // A person: confirmed on the 4th hit, one missed frame changes nothing.
        let mut p = Lifecycle::new(0.0);
        assert_eq!(p.hit(0.05, &cfg), None);
        assert_eq!(p.hit(0.10, &cfg), None);
        assert_eq!(p.hit(0.15, &cfg), Some(Transition::Started));
        assert_eq!(p.miss(0.20, &cfg, false), None);
        assert_eq!(p.state, TrackState::Confirmed);
        assert_eq!(p.hit(0.25, &cfg), None);
        // Unseen: lost after 0.3 s, recovered when seen, ended after 3 s.
        assert_eq!(p.miss(0.60, &cfg, false), Some(Transition::Lost));
        assert_eq!(p.hit(0.65, &cfg), Some(Transition::Recovered));
        assert_eq!(p.miss(1.0, &cfg, false), Some(Transition::Lost));
        assert_eq!(p.miss(3.0, &cfg, false), None);
        assert_eq!(p.miss(3.7, &cfg, false), Some(Transition::Ended));
        // Near a wall it ends sooner.
        let mut q = Lifecycle::new(0.0);
        for t in [0.05, 0.1, 0.15] {
            q.hit(t, &cfg);
        }
        assert_eq!(q.miss(0.5, &cfg, true), Some(Transition::Lost));
        assert_eq!(q.miss(0.8, &cfg, true), Some(Transition::Ended));
    }

    #[test]
    fn config_is_checked() {
        assert!(LifecycleConfig::default().validate().is_ok());
        let bad = LifecycleConfig {
            end_after_s: 0.1,
            ..Default::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("end_after_s"));
    }
}
