//! Evaluation against the simulator's ground truth: scenario runs through the
//! [`Engine`] and through a naive threshold baseline, scored for falls, occupancy and
//! identity. Used by `tests/analytics_eval.rs` (which asserts the acceptance criteria)
//! and `examples/analytics_eval.rs` (which prints the figures in `docs/analytics.md`).
//!
//! Detections come from [`crate::track::synth`] at `fps` frames per second; the truth
//! from [`Simulator::people_at`] at the same instants (no CSI is computed).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::{Engine, EngineConfig};
use crate::sim::truth::FrameTruth;
use crate::sim::{Simulator, Spec};
use crate::track::detection::{class, N_ACTIVITIES};
use crate::track::hungarian::assign;
use crate::track::synth::{NoiseModel, Synth};
use crate::track::Detection;

/// Alerts must come within this long after the impact.
pub const FALL_DEADLINE_S: f64 = 2.0;
/// Occupancy is scored from this long after the start of a run, and, when
/// `transition_grace_s` is used, outside that long after each true change.
pub(crate) const SETTLE_S: f64 = 1.0;

/// The naive baseline: per-frame thresholds, no tracking.
///
/// - occupancy: detections with presence score >= 0.5 this frame;
/// - fall: an alarm on every frame where some detection's `falling` score is >= 0.5
///   and none was on the previous frame (rising edge);
/// - identity: each detection takes the id of the nearest previous-frame detection
///   within 1 m (greedy, closest pairs first), else a new id.
#[derive(Debug, Clone, Default)]
pub(crate) struct Naive {
    prev: Vec<([f64; 2], u64)>,
    next_id: u64,
    falling_before: bool,
}

/// What the baseline reports for one frame.
pub(crate) struct NaiveFrame {
    /// Detections with presence score >= 0.5.
    pub occupancy: usize,
    /// Whether an alarm rose this frame.
    pub fall_alarm: bool,
    /// Each kept detection's position (metres) and id.
    pub ids: Vec<([f64; 2], u64)>,
}

impl Naive {
    /// Runs the baseline on one frame's detections.
    pub(crate) fn step(&mut self, dets: &[Detection], room: [f64; 2]) -> NaiveFrame {
        let kept: Vec<&Detection> = dets
            .iter()
            .filter(|d| d.is_valid() && d.score >= 0.5)
            .collect();
        let falling = kept.iter().any(|d| d.activity[class::FALLING] >= 0.5);
        let alarm = falling && !self.falling_before;
        self.falling_before = falling;
        let pos: Vec<[f64; 2]> = kept.iter().map(|d| d.position_m(room)).collect();
        let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
        for (i, p) in pos.iter().enumerate() {
            for (j, q) in self.prev.iter().enumerate() {
                let d = (p[0] - q.0[0]).hypot(p[1] - q.0[1]);
                if d < 1.0 {
                    pairs.push((d, i, j));
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut ids = vec![None; pos.len()];
        let mut used = vec![false; self.prev.len()];
        for (_, i, j) in pairs {
            if ids[i].is_none() && !used[j] {
                ids[i] = Some(self.prev[j].1);
                used[j] = true;
            }
        }
        let out: Vec<([f64; 2], u64)> = pos
            .iter()
            .zip(ids)
            .map(|(p, id)| {
                (
                    *p,
                    id.unwrap_or_else(|| {
                        self.next_id += 1;
                        self.next_id
                    }),
                )
            })
            .collect();
        self.prev = out.clone();
        NaiveFrame {
            occupancy: kept.len(),
            fall_alarm: alarm,
            ids: out,
        }
    }
}

/// Scores of one detector on one or more runs (sums; see the methods for rates).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Score {
    /// True falls.
    pub falls: usize,
    /// Falls with exactly one alert within [descent start, impact + 2 s].
    pub falls_detected_once: usize,
    /// Falls with at least one alert in that window.
    pub falls_detected: usize,
    /// Alerts outside every fall's window, or second alerts inside one.
    pub false_alarms: usize,
    /// Alerts given.
    pub alerts: usize,
    /// Alert latency after impact, seconds, per detected fall.
    pub latencies: Vec<f64>,
    /// Frames where occupancy was scored.
    pub occupancy_frames: usize,
    /// Of those, frames with the right count.
    pub occupancy_correct: usize,
    /// Frames scored outside the grace after each true change.
    pub occupancy_frames_grace: usize,
    /// Of those, frames with the right count.
    pub occupancy_correct_grace: usize,
    /// Times a person's reported id changed.
    pub id_switches: usize,
    /// Person-minutes of truth.
    pub person_minutes: f64,
    /// Hours of runs.
    pub hours: f64,
    /// Reported activity against the truth, per matched person and frame after
    /// the settling time (1 s): rows the true class, columns the reported one (indices into
    /// [`crate::track::ACTIVITIES`]). Only our engine reports activity.
    pub activity_confusion: [[usize; N_ACTIVITIES]; N_ACTIVITIES],
}

impl Score {
    /// Adds another run's sums to these.
    pub fn add(&mut self, o: &Score) {
        self.falls += o.falls;
        self.falls_detected_once += o.falls_detected_once;
        self.falls_detected += o.falls_detected;
        self.false_alarms += o.false_alarms;
        self.alerts += o.alerts;
        self.latencies.extend(&o.latencies);
        self.occupancy_frames += o.occupancy_frames;
        self.occupancy_correct += o.occupancy_correct;
        self.occupancy_frames_grace += o.occupancy_frames_grace;
        self.occupancy_correct_grace += o.occupancy_correct_grace;
        self.id_switches += o.id_switches;
        self.person_minutes += o.person_minutes;
        self.hours += o.hours;
        for (row, other) in self
            .activity_confusion
            .iter_mut()
            .zip(&o.activity_confusion)
        {
            for (a, b) in row.iter_mut().zip(other) {
                *a += b;
            }
        }
    }
    /// Recall of each true activity class (`None` where the class never occurred).
    pub fn activity_recall(&self) -> [Option<f64>; N_ACTIVITIES] {
        std::array::from_fn(|k| {
            let row = &self.activity_confusion[k];
            let n: usize = row.iter().sum();
            (n > 0).then(|| row[k] as f64 / n as f64)
        })
    }
    /// The mean recall over the classes that occurred.
    pub fn activity_balanced_accuracy(&self) -> f64 {
        let r: Vec<f64> = self.activity_recall().into_iter().flatten().collect();
        ratio(r.iter().sum(), r.len() as f64)
    }
    /// Detected falls over true falls.
    pub fn recall(&self) -> f64 {
        ratio(self.falls_detected as f64, self.falls as f64)
    }
    /// True alerts over all alerts.
    pub fn precision(&self) -> f64 {
        ratio(
            (self.alerts - self.false_alarms.min(self.alerts)) as f64,
            self.alerts as f64,
        )
    }
    /// False alarms per hour of runs.
    pub fn false_alarms_per_hour(&self) -> f64 {
        ratio(self.false_alarms as f64, self.hours)
    }
    /// Frames with the right count over frames scored.
    pub fn occupancy_accuracy(&self) -> f64 {
        ratio(self.occupancy_correct as f64, self.occupancy_frames as f64)
    }
    /// The same, outside the grace after each true change.
    pub fn occupancy_accuracy_grace(&self) -> f64 {
        ratio(
            self.occupancy_correct_grace as f64,
            self.occupancy_frames_grace as f64,
        )
    }
    /// Id switches per person-minute.
    pub fn switches_per_person_minute(&self) -> f64 {
        ratio(self.id_switches as f64, self.person_minutes)
    }
    /// The slowest alert after its impact, seconds (0 with none).
    pub fn max_latency(&self) -> f64 {
        self.latencies.iter().cloned().fold(0.0, f64::max)
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else if a == 0.0 {
        1.0
    } else {
        0.0
    }
}

/// Per-truth-person identity switch counter: an id assigned to a person that differs
/// from the id last assigned to that person is a switch.
#[derive(Default)]
struct Identity {
    last: Vec<Option<u64>>,
    switches: usize,
}

impl Identity {
    fn step(&mut self, truth: &[Option<[f64; 2]>], est: &[([f64; 2], u64)]) {
        if self.last.len() < truth.len() {
            self.last.resize(truth.len(), None);
        }
        let rows: Vec<usize> = (0..truth.len()).filter(|&i| truth[i].is_some()).collect();
        let cost: Vec<Vec<f64>> = rows
            .iter()
            .map(|&i| {
                let p = truth[i].unwrap_or([0.0, 0.0]);
                est.iter()
                    .map(|e| (e.0[0] - p[0]).hypot(e.0[1] - p[1]))
                    .collect()
            })
            .collect();
        for (r, c) in assign(&cost, 1.0) {
            let i = rows[r];
            let id = est[c].1;
            if self.last[i].is_some_and(|l| l != id) {
                self.switches += 1;
            }
            self.last[i] = Some(id);
        }
    }
}

/// The result of one run for both detectors.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// Our engine's scores.
    pub ours: Score,
    /// The naive baseline's scores.
    pub naive: Score,
    /// Our alerts: (time, person_id).
    pub alerts: Vec<(f64, u64)>,
    /// The `fall_recovered` events' times.
    pub recoveries: Vec<f64>,
    /// Occupancy messages sent.
    pub occupancy_messages: usize,
    /// True occupancy changes.
    pub occupancy_changes: usize,
    /// Messages the engine produced (tracks, falls, occupancy).
    pub engine_outputs: usize,
    /// Reported activity changes (flicker shows here).
    pub activity_changes: usize,
    /// True activity changes of people present, for comparison.
    pub truth_activity_changes: usize,
}

fn score_falls(s: &mut Score, falls: &[(f64, f64)], alerts: &[f64]) {
    s.falls += falls.len();
    s.alerts += alerts.len();
    let mut matched = vec![false; alerts.len()];
    for &(start, impact) in falls {
        let inside: Vec<usize> = (0..alerts.len())
            .filter(|&i| alerts[i] >= start && alerts[i] <= impact + FALL_DEADLINE_S)
            .collect();
        if !inside.is_empty() {
            s.falls_detected += 1;
            s.latencies.push(alerts[inside[0]] - impact);
            matched[inside[0]] = true;
        }
        if inside.len() == 1 {
            s.falls_detected_once += 1;
        }
    }
    s.false_alarms += matched.iter().filter(|m| !**m).count();
}

/// Each person's mid-hips on the floor (metres, room frame), `None` where absent: where
/// the evaluation places a true person.
pub fn mid_hips(people: &[crate::sim::truth::PersonTruth]) -> Vec<Option<[f64; 2]>> {
    people
        .iter()
        .map(|p| {
            p.present.then(|| {
                let (a, b) = (p.pose.keypoints[11], p.pose.keypoints[12]);
                [0.5 * (a[0] + b[0]), 0.5 * (a[1] + b[1])]
            })
        })
        .collect()
}

/// Tallies the engine's reported activity of each active track against the true
/// activity of the person it is matched to (mid-hips, within 1 m).
fn score_activity(s: &mut Score, engine: &Engine, truth: &FrameTruth, tpos: &[Option<[f64; 2]>]) {
    let rows: Vec<usize> = (0..tpos.len()).filter(|&i| tpos[i].is_some()).collect();
    let tracks: Vec<(&crate::track::Track, usize)> = engine
        .tracker
        .active()
        .filter_map(|tr| engine.activity.current(tr.track_id).map(|(c, _)| (tr, c)))
        .collect();
    let cost: Vec<Vec<f64>> = rows
        .iter()
        .map(|&i| {
            let p = tpos[i].unwrap_or([0.0, 0.0]);
            tracks
                .iter()
                .map(|(tr, _)| {
                    let q = tr.position();
                    (q[0] - p[0]).hypot(q[1] - p[1])
                })
                .collect()
        })
        .collect();
    for (r, c) in assign(&cost, 1.0) {
        let want = truth.people[rows[r]].activity as usize;
        s.activity_confusion[want][tracks[c].1] += 1;
    }
}

/// Runs `spec` (its own duration) with detections at `fps` from `noise` seeded by
/// `seed`. `grace_s`: frames this close after a true occupancy change are left out of
/// the "with grace" occupancy figure.
pub fn run(
    spec: Spec,
    fps: f64,
    noise: &NoiseModel,
    seed: u64,
    config: &EngineConfig,
    grace_s: f64,
) -> Result<RunResult, String> {
    let sim = Simulator::new(spec).map_err(|e| e.to_string())?;
    let room = [sim.room.size[0], sim.room.size[1]];
    let mut cfg = config.clone();
    cfg.tracker.room_size = room;
    let mut engine = Engine::new(cfg).map_err(|e| e.to_string())?;
    let mut naive = Naive::default();
    let mut synth = Synth::new(noise.clone(), seed);
    let duration = sim.spec.duration_s;
    let n = (duration * fps).floor() as usize;
    let mut res = RunResult::default();
    let mut ours_alerts = Vec::new();
    let mut naive_alerts = Vec::new();
    let (mut id_ours, mut id_naive) = (Identity::default(), Identity::default());
    let mut last_truth_occ = None;
    let mut last_change = f64::NEG_INFINITY;
    let mut last_activity: Vec<Option<usize>> = Vec::new();
    for k in 0..n {
        let t = k as f64 / fps;
        let (people, _) = sim.people_at(t);
        let truth = FrameTruth {
            time: t,
            sequence: k as u64,
            people,
        };
        last_activity.resize(truth.people.len(), None);
        for (last, p) in last_activity.iter_mut().zip(&truth.people) {
            let now = p.present.then_some(p.activity as usize);
            if now.is_some() && last.is_some() && now != *last {
                res.truth_activity_changes += 1;
            }
            *last = now;
        }
        let dets = synth.detections(&sim.room, &truth);
        let out = engine.step(t, &dets);
        res.engine_outputs += out.tracks.len() + out.falls.len() + out.occupancy.len();
        res.occupancy_messages += out.occupancy.len();
        res.activity_changes += out.activities.len();
        for f in &out.falls {
            match f.kind {
                super::fall::FallEventKind::Detected => {
                    ours_alerts.push(t);
                    res.alerts.push((t, f.person_id));
                }
                super::fall::FallEventKind::Recovered => res.recoveries.push(t),
            }
        }
        let nf = naive.step(&dets, room);
        if nf.fall_alarm {
            naive_alerts.push(t);
        }
        let occ = truth.occupancy();
        if last_truth_occ.is_some_and(|o| o != occ) {
            last_change = t;
            res.occupancy_changes += 1;
        }
        last_truth_occ = Some(occ);
        if t >= SETTLE_S {
            let ours_occ = engine.occupancy.current();
            for (s, est) in [(&mut res.ours, ours_occ), (&mut res.naive, nf.occupancy)] {
                s.occupancy_frames += 1;
                s.occupancy_correct += usize::from(est == occ);
                if t - last_change >= grace_s {
                    s.occupancy_frames_grace += 1;
                    s.occupancy_correct_grace += usize::from(est == occ);
                }
            }
        }
        // Identity: truth mid-hips against our active tracks' person_ids / naive ids.
        let tpos = mid_hips(&truth.people);
        let ours_ids: Vec<([f64; 2], u64)> = engine
            .tracker
            .active()
            .map(|tr| (tr.position(), tr.person_id))
            .collect();
        if t >= SETTLE_S {
            score_activity(&mut res.ours, &engine, &truth, &tpos);
        }
        id_ours.step(&tpos, &ours_ids);
        id_naive.step(&tpos, &nf.ids);
        let present = tpos.iter().filter(|p| p.is_some()).count() as f64;
        res.ours.person_minutes += present / fps / 60.0;
        res.naive.person_minutes += present / fps / 60.0;
    }
    let falls: Vec<(f64, f64)> = sim
        .falls()
        .iter()
        .filter(|(_, f)| f.impact + FALL_DEADLINE_S <= duration)
        .map(|(_, f)| (f.start, f.impact))
        .collect();
    score_falls(&mut res.ours, &falls, &ours_alerts);
    score_falls(&mut res.naive, &falls, &naive_alerts);
    res.ours.id_switches = id_ours.switches;
    res.naive.id_switches = id_naive.switches;
    res.ours.hours = duration / 3600.0;
    res.naive.hours = duration / 3600.0;
    Ok(res)
}

/// Scripted daily activity for `people` people over `duration_s`: walking between
/// random points, standing, sitting down and up, lying down and getting up, leaving
/// through the door and coming back, and (when `falls` is true) an occasional fall
/// with lying and getting up. Deterministic in `seed`.
pub fn daily_activity(seed: u64, people: usize, duration_s: f64, falls: bool) -> Spec {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_da11);
    let mut ps = Vec::new();
    let point =
        |rng: &mut StdRng| -> [f64; 2] { [rng.gen_range(0.8..5.2), rng.gen_range(0.8..4.2)] };
    for p in 0..people {
        let start = point(&mut rng);
        let mut acts: Vec<Value> = Vec::new();
        let mut t = 0.0;
        while t < duration_s {
            let r: f64 = rng.gen_range(0.0..1.0);
            let speed = rng.gen_range(0.7..1.4);
            let to = point(&mut rng);
            acts.push(json!({"type": "walk", "to": [to], "speed": speed}));
            t += 4.0;
            if falls && r < 0.12 {
                acts.push(json!({"type": "stand", "duration_s": rng.gen_range(0.5..2.0)}));
                acts.push(json!({"type": "fall"}));
                acts.push(json!({"type": "lie", "duration_s": rng.gen_range(3.0..8.0)}));
                acts.push(json!({"type": "get_up"}));
                t += 12.0;
            } else if r < 0.35 {
                let d = rng.gen_range(3.0..20.0);
                acts.push(json!({"type": "sit_down"}));
                acts.push(json!({"type": "sit", "duration_s": d}));
                acts.push(json!({"type": "stand_up"}));
                t += d + 3.0;
            } else if r < 0.5 {
                let d = rng.gen_range(3.0..20.0);
                acts.push(json!({"type": "lie_down"}));
                acts.push(json!({"type": "lie", "duration_s": d}));
                acts.push(json!({"type": "get_up"}));
                t += d + 6.0;
            } else if r < 0.6 {
                // Out of the door and back.
                let away = rng.gen_range(3.0..15.0);
                acts.push(json!({"type": "walk", "to": [[5.6, 4.0], [6.8, 4.0]], "speed": speed}));
                acts.push(json!({"type": "stand", "duration_s": away}));
                acts.push(
                    json!({"type": "walk", "to": [[5.6, 4.0], point(&mut rng)], "speed": speed}),
                );
                t += away + 8.0;
            } else {
                let d = rng.gen_range(1.0..8.0);
                acts.push(json!({"type": "stand", "duration_s": d}));
                t += d;
            }
        }
        let _ = p;
        ps.push(json!({"start": start, "height": rng.gen_range(1.55..1.9), "actions": acts}));
    }
    let v =
        json!({"name": "daily", "seed": seed, "duration_s": duration_s, "fps": 20.0, "people": ps});
    Spec::from_value(v).unwrap_or_default()
}
