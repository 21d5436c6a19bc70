//! Activity per track: a filter with memory over the frames' evidence.
//!
//! Per frame the model's five class scores (when the track has a detection) are blended
//! with what the track's motion and shape say. The blend is not averaged: it updates a
//! belief over the five activities, as a hidden Markov model's forward filter does
//! (predict: each activity is left at its own rate per second; update: the belief is
//! multiplied by the evidence, raised to `evidence_power` and floored at
//! `evidence_floor`). Why a filter and not a moving average with a fixed dwell: strong,
//! consistent evidence moves the belief in a few frames, weak or contradictory evidence
//! needs many, so a good detector's changes are reported within a fraction of a second
//! and a noisy one's stay steady. A moving average pays the same lag either way; with
//! the old one (τ 0.6 s, 0.5 s dwell) a fall's descent (0.6-1 s) was never reported as
//! `falling`, and most misses of every class were the 0.5-1 s after a true change.
//!
//! The reported activity changes when another class's belief leads the reported one's by
//! `margin` for `min_dwell_s`.
//!
//! Motion and shape evidence: a head-to-feet extent growing faster than
//! `falling_rate_mps` supports falling; an extent above `lying_extension_m` supports
//! lying; speed above `walk_speed` (m/s) supports walking, below it standing and sitting.
//! The fall *decision* (one alert per fall) is [`super::fall`]'s, not this stage's.

use std::collections::{HashMap, VecDeque};

use crate::track::detection::{argmax, class, N_ACTIVITIES};
use crate::track::Track;

/// How activity is filtered and decided (see the module's description).
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityConfig {
    /// How often (per second) a person is expected to change activity, a priori; falling
    /// is left at `falling_exit_hz` instead (a descent lasts about a second).
    pub switch_hz: f64,
    /// The rate at which the belief leaves `falling`, per second.
    pub falling_exit_hz: f64,
    /// The power each frame's evidence is raised to (below 1: frames are not independent).
    pub evidence_power: f64,
    /// The least evidence any class gets in a frame, so one frame never rules a class out.
    pub evidence_floor: f64,
    /// How far another class's belief must lead to take over.
    pub margin: f64,
    /// How long it must lead, seconds, before the reported activity changes.
    pub min_dwell_s: f64,
    /// Weight of the model's scores against the motion/shape evidence.
    pub model_weight: f64,
    /// Speed (m/s) above which motion supports walking, below which standing and sitting.
    pub walk_speed: f64,
    /// Head-to-feet extent (metres) above which shape supports lying.
    pub lying_extension_m: f64,
    /// Growth of the extent (m/s, least squares over `rate_window_s`) that supports
    /// falling.
    pub falling_rate_mps: f64,
    /// The span the extent's growth is fitted over, seconds.
    pub rate_window_s: f64,
}

impl Default for ActivityConfig {
    fn default() -> Self {
        ActivityConfig {
            switch_hz: 0.5,
            falling_exit_hz: 1.5,
            evidence_power: 0.5,
            evidence_floor: 0.02,
            margin: 0.2,
            min_dwell_s: 0.0,
            model_weight: 0.8,
            walk_speed: 0.4,
            lying_extension_m: 1.0,
            falling_rate_mps: 1.0,
            rate_window_s: 0.3,
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
    /// Its belief, in `[0, 1]`.
    pub confidence: f64,
}

/// The most extent samples a track keeps for its growth rate (30 frames a second over
/// the default 0.3 s is 10; a faster caller is cut here, not grown without bound).
const MAX_EXTENT_SAMPLES: usize = 64;

#[derive(Debug, Clone)]
struct State {
    belief: [f64; N_ACTIVITIES],
    current: Option<usize>,
    candidate: usize,
    candidate_since: f64,
    last_t: f64,
    extents: VecDeque<(f64, f64)>,
}

impl State {
    /// The extent's least-squares growth over the samples kept, m/s.
    fn extent_rate(&self) -> Option<f64> {
        let n = self.extents.len();
        if n < 3 {
            return None;
        }
        let mt = self.extents.iter().map(|p| p.0).sum::<f64>() / n as f64;
        let me = self.extents.iter().map(|p| p.1).sum::<f64>() / n as f64;
        let (mut num, mut den) = (0.0, 0.0);
        for &(t, e) in &self.extents {
            num += (t - mt) * (e - me);
            den += (t - mt) * (t - mt);
        }
        (den > 1e-9).then(|| num / den)
    }
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

    /// The reported activity (index into `ACTIVITIES`) and its belief.
    pub(crate) fn current(&self, track_id: u64) -> Option<(usize, f64)> {
        let s = self.states.get(&track_id)?;
        s.current.map(|c| (c, s.belief[c]))
    }

    /// Evidence for one frame: the blend of model scores and motion/shape.
    fn evidence(
        c: &ActivityConfig,
        tr: &Track,
        extension: Option<f64>,
        extent_rate: Option<f64>,
    ) -> Option<[f64; N_ACTIVITIES]> {
        let model = tr.activity_scores()?;
        let mut kin = [0.0; N_ACTIVITIES];
        match extension {
            _ if extent_rate.is_some_and(|r| r > c.falling_rate_mps) => kin[class::FALLING] = 1.0,
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

    /// The filter's step: the belief carried over `dt` seconds, then weighed by `ev`.
    fn filter(
        c: &ActivityConfig,
        belief: &mut [f64; N_ACTIVITIES],
        dt: f64,
        ev: &[f64; N_ACTIVITIES],
    ) {
        let leave: [f64; N_ACTIVITIES] = std::array::from_fn(|i| {
            let rate = if i == class::FALLING {
                c.falling_exit_hz
            } else {
                c.switch_hz
            };
            (1.0 - (-rate.max(0.0) * dt).exp()) * belief[i]
        });
        let left: f64 = leave.iter().sum();
        let mut total = 0.0;
        for i in 0..N_ACTIVITIES {
            // What leaves one activity goes evenly to the other four.
            let arrive = (left - leave[i]) / (N_ACTIVITIES - 1) as f64;
            let weight = ev[i].max(c.evidence_floor).powf(c.evidence_power);
            belief[i] = (belief[i] - leave[i] + arrive) * weight;
            total += belief[i];
        }
        if total > 0.0 && total.is_finite() {
            belief.iter_mut().for_each(|b| *b /= total);
        } else {
            *belief = [1.0 / N_ACTIVITIES as f64; N_ACTIVITIES];
        }
    }

    /// One frame over the tracker's tracks (confirmed and lost ones are followed).
    pub fn update(&mut self, t: f64, tracks: &[Track], room: [f64; 2]) -> Vec<ActivityChange> {
        let mut out = Vec::new();
        let live: Vec<u64> = tracks.iter().map(|t| t.track_id).collect();
        self.states.retain(|id, _| live.contains(id));
        let cfg = &self.config;
        for tr in tracks.iter().filter(|t| t.is_active()) {
            let extension = tr.extension(room);
            let st = self.states.entry(tr.track_id).or_insert(State {
                belief: [1.0 / N_ACTIVITIES as f64; N_ACTIVITIES],
                current: None,
                candidate: 0,
                candidate_since: t,
                last_t: t,
                extents: VecDeque::new(),
            });
            if let Some(e) = extension.filter(|e| e.is_finite()) {
                st.extents.push_back((t, e));
            }
            while st
                .extents
                .front()
                .is_some_and(|&(t0, _)| t - t0 > cfg.rate_window_s)
                || st.extents.len() > MAX_EXTENT_SAMPLES
            {
                st.extents.pop_front();
            }
            let Some(ev) = Self::evidence(cfg, tr, extension, st.extent_rate()) else {
                continue;
            };
            let dt = (t - st.last_t).max(0.0);
            st.last_t = t;
            Self::filter(cfg, &mut st.belief, dt, &ev);
            let best = argmax(&st.belief);
            if best != st.candidate {
                st.candidate = best;
                st.candidate_since = t;
            }
            let leads = match st.current {
                None => true,
                Some(c) => st.belief[best] >= st.belief[c] + cfg.margin,
            };
            let held = t - st.candidate_since >= cfg.min_dwell_s || st.current.is_none();
            if Some(best) != st.current && leads && held {
                out.push(ActivityChange {
                    t,
                    track_id: tr.track_id,
                    person_id: tr.person_id,
                    from: st.current,
                    to: best,
                    confidence: st.belief[best].clamp(0.0, 1.0),
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

    /// One person still at the room's centre for 20 s at 20 frames a second: `frame(t)`
    /// gives that frame's activity scores and head-to-feet extent (metres).
    fn run_stage(mut frame: impl FnMut(f64) -> ([f64; N_ACTIVITIES], f64)) -> Vec<ActivityChange> {
        let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
        let mut st = ActivityStage::new(ActivityConfig::default());
        let mut changes = Vec::new();
        for n in 0..400 {
            let t = n as f64 * 0.05;
            let (activity, ext) = frame(t);
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
        changes
    }

    fn scores(class: usize, p: f64) -> [f64; N_ACTIVITIES] {
        let mut s = [(1.0 - p) / (N_ACTIVITIES - 1) as f64; N_ACTIVITIES];
        s[class] = p;
        s
    }

    #[test]
    fn clear_evidence_is_followed_within_a_few_frames() {
        // Sitting, then standing up at 10 s (the extent barely changes, so only the
        // scores tell): the old moving average took 0.8 s, the filter a few frames.
        let changes = run_stage(|t| {
            let c = if t < 10.0 {
                class::SITTING
            } else {
                class::STANDING
            };
            (scores(c, 0.9), 0.3)
        });
        let to: Vec<usize> = changes.iter().map(|c| c.to).collect();
        assert_eq!(to, vec![class::SITTING, class::STANDING], "{changes:?}");
        assert!(changes[1].t >= 10.0 && changes[1].t <= 10.3, "{changes:?}");
    }

    #[test]
    fn a_fast_growing_extent_is_reported_as_falling() {
        // Standing, then the extent grows 0.3 -> 1.6 m over 0.8 s (a fall's descent) and
        // stays; the scores say standing, are unsure during the descent, then say lying:
        // the shape alone shows the descent.
        let changes = run_stage(|t| {
            let ext = 0.3 + 1.3 * ((t - 10.0) / 0.8).clamp(0.0, 1.0);
            let s = match t {
                _ if t < 10.0 => scores(class::STANDING, 0.6),
                _ if t < 10.8 => scores(class::FALLING, 0.2),
                _ => scores(class::LYING, 0.6),
            };
            (s, ext)
        });
        let to: Vec<usize> = changes.iter().map(|c| c.to).collect();
        assert_eq!(
            to,
            vec![class::STANDING, class::FALLING, class::LYING],
            "{changes:?}"
        );
        assert!(changes[1].t > 10.0 && changes[1].t < 10.8, "{changes:?}");
    }

    #[test]
    fn noisy_scores_give_a_steady_activity() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let changes = run_stage(|t| {
            // Sitting for 10 s, then lying; scores right only 60 % of the time.
            let truth = if t < 10.0 {
                class::SITTING
            } else {
                class::LYING
            };
            let mut activity = [0.1; N_ACTIVITIES];
            let shown = if rng.gen_bool(0.6) {
                truth
            } else {
                rng.gen_range(0..N_ACTIVITIES)
            };
            activity[shown] = 0.6;
            (activity, if t < 10.0 { 0.3 } else { 1.6 })
        });
        let to: Vec<usize> = changes.iter().map(|c| c.to).collect();
        assert_eq!(to, vec![class::SITTING, class::LYING], "{changes:?}");
        assert!(changes[1].t > 10.0 && changes[1].t < 11.5);
    }
}
