//! Activity per track, smoothed over time.
//!
//! Per frame the model's five class scores (when the track has a detection) are
//! blended with what the track's motion and shape say, then smoothed with an
//! exponential moving average (time constant `tau_s`, so the smoothing is the same at
//! any frame rate). The reported activity changes only when another class has led the
//! smoothed scores by `margin` for `min_dwell_s`: one noisy frame never flips it.
//!
//! Motion and shape evidence: speed above `walk_speed` (m/s) supports walking, below
//! it standing and sitting; a head-to-feet extent above `lying_extension_m` supports
//! lying. `falling` comes from the model's scores only; the fall decision itself is
//! [`super::fall`]'s.

use std::collections::HashMap;

use crate::track::detection::{argmax, class, N_ACTIVITIES};
use crate::track::Track;

/// How activity is smoothed and decided (see the module's description).
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityConfig {
    /// Time constant of the exponential smoothing, seconds.
    pub tau_s: f64,
    /// How far another class must lead the smoothed scores to take over.
    pub margin: f64,
    /// How long it must lead, seconds, before the reported activity changes.
    pub min_dwell_s: f64,
    /// Weight of the model's scores against the motion/shape evidence.
    pub model_weight: f64,
    /// Speed (m/s) above which motion supports walking, below which standing and sitting.
    pub walk_speed: f64,
    /// Head-to-feet extent (metres) above which shape supports lying.
    pub lying_extension_m: f64,
}

impl Default for ActivityConfig {
    fn default() -> Self {
        ActivityConfig {
            tau_s: 0.6,
            margin: 0.05,
            min_dwell_s: 0.5,
            model_weight: 0.6,
            walk_speed: 0.4,
            lying_extension_m: 1.0,
        }
    }
}

/// A change of a person's reported activity.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityChange {
    /// Frame time, seconds.
    pub t: f64,
    /// The track.
    pub track_id: u64,
    /// The person.
    pub person_id: u64,
    /// `None` for a new track's first activity.
    pub from: Option<usize>,
    /// The new activity (an index into [`crate::track::ACTIVITIES`]).
    pub to: usize,
    /// Its smoothed score, in `[0, 1]`.
    pub confidence: f64,
}

#[derive(Debug, Clone)]
struct State {
    smoothed: [f64; N_ACTIVITIES],
    current: Option<usize>,
    candidate: usize,
    candidate_since: f64,
    last_t: f64,
}

/// Activity per track, for every track of one environment.
#[derive(Debug, Clone, Default)]
pub struct ActivityStage {
    /// Its settings.
    pub config: ActivityConfig,
    states: HashMap<u64, State>,
}

impl ActivityStage {
    /// A stage with `config` and no tracks yet.
    pub fn new(config: ActivityConfig) -> Self {
        ActivityStage {
            config,
            states: HashMap::new(),
        }
    }

    /// The reported activity (index into `ACTIVITIES`) and its smoothed score.
    pub(crate) fn current(&self, track_id: u64) -> Option<(usize, f64)> {
        let s = self.states.get(&track_id)?;
        s.current.map(|c| (c, s.smoothed[c]))
    }

    /// Evidence for one frame: the blend of model scores and motion/shape.
    fn evidence(&self, tr: &Track, room: [f64; 2]) -> Option<[f64; N_ACTIVITIES]> {
        let model = tr.activity_scores()?;
        let c = &self.config;
        let mut kin = [0.0; N_ACTIVITIES];
        match tr.extension(room) {
            Some(e) if e > c.lying_extension_m => kin[class::LYING] = 1.0,
            _ if tr.speed() > c.walk_speed => kin[class::WALKING] = 1.0,
            _ => {
                kin[class::STANDING] = 0.5;
                kin[class::SITTING] = 0.5;
            }
        }
        let sum: f64 = model.iter().sum::<f64>().max(1e-9);
        let mut out = [0.0; N_ACTIVITIES];
        for i in 0..N_ACTIVITIES {
            out[i] = c.model_weight * model[i] / sum + (1.0 - c.model_weight) * kin[i];
        }
        Some(out)
    }

    /// One frame over the tracker's tracks (confirmed and lost ones are followed).
    #[allow(clippy::needless_range_loop)]
    pub fn update(&mut self, t: f64, tracks: &[Track], room: [f64; 2]) -> Vec<ActivityChange> {
        let mut out = Vec::new();
        let live: Vec<u64> = tracks.iter().map(|t| t.track_id).collect();
        self.states.retain(|id, _| live.contains(id));
        for tr in tracks.iter().filter(|t| t.is_active()) {
            let Some(ev) = self.evidence(tr, room) else {
                continue;
            };
            let cfg = self.config.clone();
            let st = self.states.entry(tr.track_id).or_insert(State {
                smoothed: ev,
                current: None,
                candidate: argmax(&ev),
                candidate_since: t,
                last_t: t,
            });
            let dt = (t - st.last_t).max(0.0);
            st.last_t = t;
            let a = 1.0 - (-dt / cfg.tau_s.max(1e-6)).exp();
            for i in 0..N_ACTIVITIES {
                st.smoothed[i] += a * (ev[i] - st.smoothed[i]);
            }
            let best = argmax(&st.smoothed);
            if best != st.candidate {
                st.candidate = best;
                st.candidate_since = t;
            }
            let leads = match st.current {
                None => true,
                Some(c) => st.smoothed[best] >= st.smoothed[c] + cfg.margin,
            };
            let held = t - st.candidate_since >= cfg.min_dwell_s || st.current.is_none();
            if Some(best) != st.current && leads && held {
                out.push(ActivityChange {
                    t,
                    track_id: tr.track_id,
                    person_id: tr.person_id,
                    from: st.current,
                    to: best,
                    confidence: st.smoothed[best].clamp(0.0, 1.0),
                });
                st.current = Some(best);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::{Detection, Tracker, TrackerConfig, N_KEYPOINTS};
    use rand::{Rng, SeedableRng};

    #[test]
    fn noisy_scores_give_a_steady_activity() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
        let mut st = ActivityStage::new(ActivityConfig::default());
        let mut changes = Vec::new();
        for n in 0..400 {
            let t = n as f64 * 0.05;
            // Sitting for 10 s, then lying; scores right only 60 % of the time.
            let truth = if t < 10.0 {
                class::SITTING
            } else {
                class::LYING
            };
            let ext = if t < 10.0 { 0.3 } else { 1.6 };
            let mut activity = [0.1; N_ACTIVITIES];
            let shown = if rng.gen_bool(0.6) {
                truth
            } else {
                rng.gen_range(0..N_ACTIVITIES)
            };
            activity[shown] = 0.6;
            let mut keypoints = [[0.5, 0.5, 0.9]; N_KEYPOINTS];
            for k in &mut keypoints[0..5] {
                k[0] = (3.0 + ext) / 6.0;
            }
            let d = Detection {
                keypoints,
                bbox: [0.45, 0.45, 0.55, 0.55],
                score: 0.9,
                activity,
                dense: None,
            };
            tr.update(t, &[d]);
            changes.extend(st.update(t, tr.tracks(), [6.0, 5.0]));
        }
        let to: Vec<usize> = changes.iter().map(|c| c.to).collect();
        assert_eq!(to, vec![class::SITTING, class::LYING], "{changes:?}");
        assert!(changes[1].t > 10.0 && changes[1].t < 11.5);
    }
}
