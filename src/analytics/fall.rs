//! Fall detection: its own decision over a track's history, not a per-frame score.
//!
//! The model's frame is the top-down floor view, so the body's height is not seen; its
//! horizontal head-to-feet extent `e` (metres, [`crate::track::Detection::extension_m`]) is: about
//! 0.1-0.4 m upright, the body length (1.5 m and more) lying. Per track:
//!
//! 1. **Armed** while upright (the median `e` of the last 0.3 s below `upright_m`,
//!    0.7 m) and for `armed_for_s` (1 s) after.
//! 2. **Fast descent**: the least-squares slope of `e` (after a causal median of three
//!    samples) over the last `slope_window_s` (0.3 s) reaches `min_descent_rate`
//!    (4 m/s) on its own, or `assisted_descent_rate` (1.6 m/s) when the model's mean
//!    `falling` score over the last `falling_window_s` (0.6 s) is at least
//!    `min_falling_score` (0.3). Measured peak slopes with the default noise: forward
//!    falls 2.3-3.9 m/s, deliberate lying down 1.6-2.6 m/s, so shape alone separates
//!    only the hardest falls and the model's falling score decides the overlap; a
//!    single frame's score never does. (At 3 m/s, a noisy lie-down's slope sometimes
//!    passed: 13 false alarms in 24 simulated hours of two people's days, 1 at 4 m/s,
//!    with every fall still alerted: `examples/fall_false_alarms.rs`.) Within `crowd_radius_m` (1 m) of another
//!    person the shape-only rule is off: there detections can swap between the two
//!    tracks, and a swap looks like an instant descent.
//! 3. **Impact**: within `max_descent_s` of the descent starting, `e` is above
//!    `lying_m` and the slope has dropped below `impact_rate` (the body stopped): the
//!    impact time.
//! 4. **Lying**: the median `e` over `confirm_s` after the impact stays above `lying_m`
//!    → one `fall_detected`. Any failure on the way returns to step 1 (when upright).
//! 5. **Recovery**: after an alert, upright again for `recovery_s` → one
//!    `fall_recovered` (`recovery_detected: true`). The person's next alert needs
//!    `cooldown_s` to have passed since this one *and* the person upright again.
//!
//! Reported: `fall_duration` = descent start to impact (s); `impact_severity` = peak
//! descent rate / `severe_rate`, clamped to `[0, 1]`; `severity` "high" when the impact
//! severity is at least 0.5, else "medium"; `confidence` from the margins of the rules
//! and the model's `falling` score.

use std::collections::{HashMap, VecDeque};

use crate::track::detection::class;
use crate::track::Track;

/// The thresholds of the fall rules (each named in the module's description; metres,
/// seconds and metres per second).
#[derive(Debug, Clone, PartialEq)]
pub struct FallConfig {
    /// Upright while the median head-to-feet extent is below this, metres.
    pub upright_m: f64,
    /// A descent counts only this soon after the track was last upright, seconds.
    pub armed_for_s: f64,
    /// Lying while the extent is above this, metres.
    pub lying_m: f64,
    /// The span the extent's slope is fitted over, seconds.
    pub slope_window_s: f64,
    /// A descent this fast (m/s) counts on shape alone.
    pub min_descent_rate: f64,
    /// A descent this fast (m/s) counts when the model's `falling` score agrees.
    pub assisted_descent_rate: f64,
    /// The mean `falling` score that counts as agreeing.
    pub min_falling_score: f64,
    /// The span that mean is taken over, seconds.
    pub falling_window_s: f64,
    /// Another person this close (metres) makes the shape-only rule unusable.
    pub crowd_radius_m: f64,
    /// The impact must come this soon after the descent starts, seconds.
    pub max_descent_s: f64,
    /// The slope (m/s) below which the body has stopped: the impact.
    pub impact_rate: f64,
    /// How long after the impact the person must stay lying, seconds.
    pub confirm_s: f64,
    /// How long upright again before `fall_recovered`, seconds.
    pub recovery_s: f64,
    /// The least time between two alerts for one person, seconds.
    pub cooldown_s: f64,
    /// The descent rate (m/s) that is an impact severity of 1.
    pub severe_rate: f64,
}

impl Default for FallConfig {
    fn default() -> Self {
        FallConfig {
            upright_m: 0.7,
            armed_for_s: 1.0,
            lying_m: 1.1,
            slope_window_s: 0.3,
            min_descent_rate: 4.0,
            assisted_descent_rate: 1.6,
            min_falling_score: 0.3,
            falling_window_s: 0.6,
            crowd_radius_m: 1.0,
            max_descent_s: 1.5,
            impact_rate: 0.8,
            confirm_s: 0.8,
            recovery_s: 1.0,
            cooldown_s: 5.0,
            severe_rate: 4.0,
        }
    }
}

/// Which fall message.
#[derive(Debug, Clone, PartialEq)]
pub enum FallEventKind {
    /// `fall_detected`.
    Detected,
    /// `fall_recovered`.
    Recovered,
}

/// A detected fall or a recovery from one.
#[derive(Debug, Clone, PartialEq)]
pub struct FallEvent {
    /// Which.
    pub kind: FallEventKind,
    /// Frame time, seconds.
    pub t: f64,
    /// The track.
    pub track_id: u64,
    /// The person.
    pub person_id: u64,
    /// Where, metres.
    pub position: [f64; 2],
    /// How sure, in `[0, 1]`, from the rules' margins and the model's `falling` score.
    pub confidence: f64,
    /// Descent start to impact, seconds.
    pub fall_duration: f64,
    /// Peak descent rate over `severe_rate`, in `[0, 1]`.
    pub impact_severity: f64,
    /// Whether this event is the recovery.
    pub recovery_detected: bool,
    /// `"high"` (impact severity at least 0.5) or `"medium"`.
    pub severity: &'static str,
    /// When the descent started, seconds.
    pub descent_start: f64,
    /// When the body stopped, seconds.
    pub impact: f64,
    /// For `Recovered`: seconds from impact to upright again.
    pub time_on_floor: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// Not upright since the last alert or failed attempt: waiting to be upright.
    Disarmed,
    Armed,
    Descending {
        start: f64,
        peak_rate: f64,
        falling: f64,
    },
    Down {
        start: f64,
        impact: f64,
        peak_rate: f64,
        falling: f64,
    },
    Alerted {
        start: f64,
        impact: f64,
        peak_rate: f64,
        upright_since: Option<f64>,
    },
}

#[derive(Debug, Clone)]
struct TrackFall {
    /// (t, extension, falling score)
    samples: VecDeque<(f64, f64, f64)>,
    phase: Phase,
    last_upright: Option<f64>,
}

/// Fall detection for every track of one environment.
#[derive(Debug, Clone, Default)]
pub struct FallDetector {
    /// Its thresholds.
    pub config: FallConfig,
    tracks: HashMap<u64, TrackFall>,
    /// person_id → time of the last alert.
    last_alert: HashMap<u64, f64>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

impl TrackFall {
    fn window(&self, t: f64, span: f64) -> impl Iterator<Item = &(f64, f64, f64)> {
        self.samples.iter().filter(move |s| t - s.0 <= span + 1e-9)
    }
    fn median_ext(&self, t: f64, span: f64) -> Option<f64> {
        median(self.window(t, span).map(|s| s.1).collect())
    }
    /// Least-squares slope over the window of the extension after a causal median of
    /// three (one swapped or wild detection cannot make a descent); needs 3 points.
    fn slope(&self, t: f64, span: f64) -> Option<f64> {
        let n = self.samples.len();
        let pts: Vec<(f64, f64)> = (0..n)
            .filter(|&i| t - self.samples[i].0 <= span + 1e-9)
            .map(|i| {
                let lo = i.saturating_sub(2);
                let m = median((lo..=i).map(|j| self.samples[j].1).collect()).unwrap_or(0.0);
                (self.samples[i].0, m)
            })
            .collect();
        if pts.len() < 3 {
            return None;
        }
        let n = pts.len() as f64;
        let mt = pts.iter().map(|p| p.0).sum::<f64>() / n;
        let me = pts.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = pts.iter().map(|p| (p.0 - mt).powi(2)).sum();
        let sxy: f64 = pts.iter().map(|p| (p.0 - mt) * (p.1 - me)).sum();
        (sxx > 1e-9).then(|| sxy / sxx)
    }
    fn mean_falling(&self, t: f64, span: f64) -> f64 {
        let v: Vec<f64> = self.window(t, span).map(|s| s.2).collect();
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    }
}

impl FallDetector {
    /// A detector with `config` and no tracks yet.
    pub fn new(config: FallConfig) -> Self {
        FallDetector {
            config,
            tracks: HashMap::new(),
            last_alert: HashMap::new(),
        }
    }

    /// Whether the track is on the floor after a detected fall (not yet recovered).
    pub fn is_fallen(&self, track_id: u64) -> bool {
        self.tracks
            .get(&track_id)
            .is_some_and(|f| matches!(f.phase, Phase::Alerted { .. }))
    }

    /// Steps every active track at frame time `t` in a room of `room` metres; returns the
    /// falls detected and recoveries seen this frame.
    pub fn update(&mut self, t: f64, tracks: &[Track], room: [f64; 2]) -> Vec<FallEvent> {
        let c = self.config.clone();
        let live: Vec<u64> = tracks.iter().map(|t| t.track_id).collect();
        self.tracks.retain(|id, _| live.contains(id));
        let mut out = Vec::new();
        for tr in tracks.iter().filter(|t| t.is_active()) {
            let Some(det) = tr.detection.as_ref() else {
                continue;
            };
            let Some(e) = det.extension_m(room) else {
                continue;
            };
            let f = self.tracks.entry(tr.track_id).or_insert(TrackFall {
                samples: VecDeque::new(),
                phase: Phase::Disarmed,
                last_upright: None,
            });
            f.samples.push_back((t, e, det.activity[class::FALLING]));
            let keep = c.max_descent_s + c.confirm_s + c.slope_window_s + 1.0;
            while f.samples.front().is_some_and(|s| t - s.0 > keep) {
                f.samples.pop_front();
            }
            let upright = f.median_ext(t, 0.3).is_some_and(|m| m < c.upright_m);
            if upright {
                f.last_upright = Some(t);
            }
            let armed = f.last_upright.is_some_and(|u| t - u <= c.armed_for_s);
            let slope = f.slope(t, c.slope_window_s);
            let falling = f.mean_falling(t, c.falling_window_s);
            let me = tr.position();
            let crowded = tracks.iter().any(|o| {
                o.track_id != tr.track_id
                    && o.is_active()
                    && (o.position()[0] - me[0]).hypot(o.position()[1] - me[1]) < c.crowd_radius_m
            });
            let descent = slope.is_some_and(|s| {
                (s >= c.min_descent_rate && !crowded)
                    || (s >= c.assisted_descent_rate && falling >= c.min_falling_score)
            });
            let make = |kind, f_start: f64, impact: f64, peak: f64, conf: f64, tof: Option<f64>| {
                let sev = (peak / c.severe_rate).clamp(0.0, 1.0);
                FallEvent {
                    kind,
                    t,
                    track_id: tr.track_id,
                    person_id: tr.person_id,
                    position: tr.position(),
                    confidence: conf,
                    fall_duration: (impact - f_start).max(0.0),
                    impact_severity: sev,
                    recovery_detected: tof.is_some(),
                    severity: if sev >= 0.5 { "high" } else { "medium" },
                    descent_start: f_start,
                    impact,
                    time_on_floor: tof,
                }
            };
            let next = match f.phase.clone() {
                Phase::Disarmed | Phase::Armed if descent && armed => {
                    // The descent began about half a window ago.
                    Phase::Descending {
                        start: t - c.slope_window_s,
                        peak_rate: slope.unwrap_or(0.0),
                        falling,
                    }
                }
                Phase::Disarmed | Phase::Armed => {
                    if armed {
                        Phase::Armed
                    } else {
                        Phase::Disarmed
                    }
                }
                Phase::Descending {
                    start,
                    peak_rate,
                    falling: fs,
                } => {
                    let peak = peak_rate.max(slope.unwrap_or(0.0));
                    let fs = fs.max(falling);
                    if t - start > c.max_descent_s {
                        Phase::Disarmed
                    } else if e > c.lying_m && slope.is_some_and(|s| s < c.impact_rate) {
                        Phase::Down {
                            start,
                            impact: t,
                            peak_rate: peak,
                            falling: fs,
                        }
                    } else {
                        Phase::Descending {
                            start,
                            peak_rate: peak,
                            falling: fs,
                        }
                    }
                }
                Phase::Down {
                    start,
                    impact,
                    peak_rate,
                    falling: fs,
                } => {
                    let m = f
                        .median_ext(t, (t - impact).min(c.confirm_s))
                        .unwrap_or(0.0);
                    if m <= c.lying_m {
                        Phase::Disarmed
                    } else if t - impact >= c.confirm_s {
                        let cooled = self
                            .last_alert
                            .get(&tr.person_id)
                            .is_none_or(|&l| t - l >= c.cooldown_s);
                        if cooled {
                            let rate_margin = ((peak_rate - c.assisted_descent_rate)
                                / (c.severe_rate - c.assisted_descent_rate))
                                .clamp(0.0, 1.0);
                            let lie_margin = ((m - c.lying_m) / 0.4).clamp(0.0, 1.0);
                            let conf = (0.5 + 0.2 * rate_margin + 0.15 * lie_margin + 0.15 * fs)
                                .clamp(0.0, 1.0);
                            self.last_alert.insert(tr.person_id, t);
                            out.push(make(
                                FallEventKind::Detected,
                                start,
                                impact,
                                peak_rate,
                                conf,
                                None,
                            ));
                        }
                        Phase::Alerted {
                            start,
                            impact,
                            peak_rate,
                            upright_since: None,
                        }
                    } else {
                        Phase::Down {
                            start,
                            impact,
                            peak_rate,
                            falling: fs,
                        }
                    }
                }
                Phase::Alerted {
                    start,
                    impact,
                    peak_rate,
                    upright_since,
                } => {
                    let since = if upright {
                        upright_since.or(Some(t))
                    } else {
                        None
                    };
                    match since {
                        Some(s) if t - s >= c.recovery_s => {
                            out.push(make(
                                FallEventKind::Recovered,
                                start,
                                impact,
                                peak_rate,
                                0.8,
                                Some(s - impact),
                            ));
                            Phase::Armed
                        }
                        _ => Phase::Alerted {
                            start,
                            impact,
                            peak_rate,
                            upright_since: since,
                        },
                    }
                }
            };
            if let Some(f) = self.tracks.get_mut(&tr.track_id) {
                f.phase = next;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::{Detection, Tracker, TrackerConfig, N_KEYPOINTS};

    /// A person at (3, 2.5) whose head is `ext` metres from the feet along x.
    fn det(ext: f64, falling: f64) -> Detection {
        let mut keypoints = [[3.0 / 6.0, 0.5, 0.9]; N_KEYPOINTS];
        for k in &mut keypoints[0..5] {
            k[0] = (3.0 + ext) / 6.0;
        }
        Detection {
            keypoints,
            bbox: [0.45, 0.45, 0.55, 0.55],
            score: 0.9,
            activity: [0.2, 0.2, 0.2, 0.2, falling],
            dense: None,
        }
    }

    /// Extension profile: upright, a descent of `descent_s` to 1.6 m, lying `lie_s`,
    /// then upright again.
    fn run(descent_s: f64, falling: f64, lie_s: f64, total: f64) -> Vec<FallEvent> {
        let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
        let mut fd = FallDetector::new(FallConfig::default());
        let mut out = Vec::new();
        let dt = 0.05;
        for n in 0..(total / dt) as usize {
            let t = n as f64 * dt;
            let (ext, f) = if t < 3.0 {
                (0.2, 0.05)
            } else if t < 3.0 + descent_s {
                let u = (t - 3.0) / descent_s;
                (0.2 + 1.4 * u * u, falling)
            } else if t < 3.0 + descent_s + lie_s {
                (1.6, 0.05)
            } else {
                (0.2, 0.05)
            };
            tr.update(t, &[det(ext, f)]);
            out.extend(fd.update(t, tr.tracks(), [6.0, 5.0]));
        }
        out
    }

    #[test]
    fn one_fall_one_alert_then_recovery() {
        let ev = run(0.8, 0.6, 5.0, 15.0);
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(ev[0].kind, FallEventKind::Detected);
        assert!(ev[0].t > 3.8 && ev[0].t < 3.8 + 2.0, "{}", ev[0].t);
        assert!(!ev[0].recovery_detected);
        assert!(ev[0].fall_duration > 0.2 && ev[0].fall_duration < 1.5);
        assert!(ev[0].impact_severity > 0.0 && ev[0].impact_severity <= 1.0);
        assert_eq!(ev[1].kind, FallEventKind::Recovered);
        assert!(ev[1].recovery_detected);
        assert!(ev[1].t > 8.8, "{}", ev[1].t);
    }

    #[test]
    fn slow_lying_down_and_lying_without_descent_are_not_falls() {
        // Lying down over 2 s, no falling score.
        assert!(run(2.0, 0.05, 5.0, 15.0).is_empty());
        // A fast "descent" that does not end lying (bending over, 0.5 s) is not a fall.
        assert!(run(0.5, 0.6, 0.3, 10.0).is_empty());
    }

    #[test]
    fn very_fast_descent_alone_is_enough() {
        // No help from the model's falling score: a 0.35 s descent (peak 8 m/s; 0.5 s,
        // peak 5.6 m/s, fits about 4 m/s over the slope window, the threshold itself).
        let ev = run(0.35, 0.05, 5.0, 12.0);
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(ev[0].kind, FallEventKind::Detected);
        assert!(ev[0].impact_severity > 0.7);
    }
}
