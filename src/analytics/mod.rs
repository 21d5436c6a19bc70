//! Analytics over the tracker's tracks: activity per person, fall detection,
//! occupancy, windowed metrics, and the spec's payloads.
//!
//! Data flow per frame: [`Engine::update`] feeds the frame's detections to the
//! [`crate::track::Tracker`], then its tracks to the [`activity::ActivityStage`]
//! (smoothed activity), the [`fall::FallDetector`] (one decision per fall), the
//! [`occupancy::Occupancy`] counter (a message only on change) and the
//! [`window::Window`] (an `analytics_stream` when a window closes). Each stage is a
//! plain struct with `update(t, ...)`, deterministic and unit-tested; [`events`] turns
//! their outputs into the WebSocket payloads. The engine returns [`Output`]s that the
//! environment task publishes with `crate::events::Event::new(o.event_type, o.data,
//! Some(environment_id))`. Decision rules and measured figures: `docs/analytics.md`.

pub mod activity;
pub mod eval;
pub mod events;
pub mod fall;
pub mod occupancy;
pub mod rest_posture;
pub mod window;

use serde_json::Value;

use crate::events::EventType;
use crate::track::detection::class;
use crate::track::{Detection, TrackError, TrackEventKind, Tracker, TrackerConfig};

use activity::{ActivityConfig, ActivityStage};
use fall::{FallConfig, FallDetector};
use occupancy::Occupancy;
use window::{FrameSample, Window};

/// One message to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The event type it is published as; its delivery class (alert or droppable)
    /// follows from it.
    pub event_type: EventType,
    /// The event's `data` object as `docs/protocol.md` specifies it for that type (no
    /// envelope: the publisher adds it).
    pub data: Value,
}

/// Every stage's settings for one environment's [`Engine`].
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Association, track lifecycle and the room (its size bounds positions and is
    /// what the occupancy, fall and activity stages measure against).
    pub tracker: TrackerConfig,
    /// Smoothing and hysteresis of the per-track activity.
    pub activity: ActivityConfig,
    /// The fall rules' thresholds.
    pub fall: FallConfig,
    /// `analytics_stream` window, seconds (default 60).
    pub window_s: f64,
    /// `pose_data_trajectory` per confirmed track at most this often, seconds.
    pub trajectory_interval_s: f64,
    /// Points in a trajectory message.
    pub trajectory_points: usize,
    /// How far ahead the trajectory's prediction looks, seconds.
    pub prediction_horizon_s: f64,
    /// Emit `activity_event`s with `event_type: "activity_changed"`.
    pub activity_events: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            tracker: TrackerConfig::default(),
            activity: ActivityConfig::default(),
            fall: FallConfig::default(),
            window_s: 60.0,
            trajectory_interval_s: 1.0,
            trajectory_points: 10,
            prediction_horizon_s: 1.0,
            activity_events: true,
        }
    }
}

/// Tracker and analytics for one environment.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) tracker: Tracker,
    pub(crate) activity: ActivityStage,
    pub(crate) fall: FallDetector,
    pub(crate) occupancy: Occupancy,
    pub(crate) window: Window,
    last_trajectory: Option<f64>,
}

/// Typed outputs of one frame, for tests and evaluation. Each list is empty on most
/// frames: the stages report changes, not state.
#[derive(Debug, Clone, Default)]
pub struct FrameOutputs {
    /// Tracks started, confirmed or ended this frame.
    pub tracks: Vec<crate::track::TrackEvent>,
    /// Reported activities that changed this frame (after smoothing and dwell).
    pub activities: Vec<activity::ActivityChange>,
    /// Falls decided this frame (one per fall, never repeated while the person is down).
    pub falls: Vec<fall::FallEvent>,
    /// The room's count when it changed this frame (at most one).
    pub occupancy: Vec<occupancy::OccupancyChange>,
    /// `analytics_stream` windows that closed this frame.
    pub windows: Vec<window::WindowMetrics>,
}

impl Engine {
    /// An engine with no tracks; fails with [`TrackError::Config`] when a tracker
    /// setting is outside its range ([`TrackerConfig::validate`]).
    pub fn new(config: EngineConfig) -> Result<Self, TrackError> {
        let tracker = Tracker::new(config.tracker.clone())?;
        Ok(Engine {
            activity: ActivityStage::new(config.activity.clone()),
            fall: FallDetector::new(config.fall.clone()),
            occupancy: Occupancy::new(),
            window: Window::new(config.window_s),
            tracker,
            config,
            last_trajectory: None,
        })
    }

    /// One frame, typed.
    pub fn step(&mut self, t: f64, detections: &[Detection]) -> FrameOutputs {
        let room = self.config.tracker.room_size;
        let meas = self.config.tracker.meas_std_m;
        let seen_before = self.tracker.detections_seen;
        let tracks_ev = self.tracker.update(t, detections);
        let tracks = self.tracker.tracks();
        let activities = self.activity.update(t, tracks, room);
        let falls = self.fall.update(t, tracks, room);
        let occupancy = self.occupancy.update(t, tracks, meas);
        let n_det = (self.tracker.detections_seen - seen_before) as usize;
        let scores: Vec<f64> = tracks
            .iter()
            .filter_map(|t| t.detection.as_ref().map(|d| d.score))
            .collect();
        let active: Vec<_> = tracks.iter().filter(|t| t.is_active()).collect();
        let sample = FrameSample {
            occupancy: self.occupancy.current(),
            activities: active
                .iter()
                .filter_map(|t| self.activity.current(t.track_id).map(|c| c.0))
                .collect(),
            movement_events: activities
                .iter()
                .filter(|c| c.to == class::WALKING && c.from.is_some())
                .count() as u64,
            // Detections the tracker accepted this frame: matched ones carry their score;
            // the rest (new tentative tracks) are counted at the mean score.
            detection_scores: {
                let mut s = scores.clone();
                let mean = if s.is_empty() {
                    0.0
                } else {
                    s.iter().sum::<f64>() / s.len() as f64
                };
                s.resize(n_det.max(s.len()), mean);
                s
            },
            qualities: active.iter().map(|t| t.quality(meas)).collect(),
        };
        let windows = self.window.update(t, &sample);
        FrameOutputs {
            tracks: tracks_ev,
            activities,
            falls,
            occupancy,
            windows,
        }
    }

    /// One frame: the messages to publish, in order.
    pub fn update(&mut self, t: f64, detections: &[Detection]) -> Vec<Output> {
        let f = self.step(t, detections);
        let meas = self.config.tracker.meas_std_m;
        let mut out = Vec::new();
        let mut push = |event_type, data| out.push(Output { event_type, data });
        for e in &f.tracks {
            let v = self
                .tracker
                .tracks()
                .iter()
                .find(|t| t.track_id == e.track_id)
                .map_or([0.0, 0.0], |t| t.velocity());
            let v = if e.kind == TrackEventKind::Ended {
                [0.0, 0.0]
            } else {
                v
            };
            push(EventType::TrackingUpdate, events::tracking_update(e, v));
        }
        for o in &f.occupancy {
            push(EventType::OccupancyUpdate, events::occupancy_update(o));
        }
        for e in &f.falls {
            push(EventType::ActivityEvent, events::fall_event(e));
        }
        if self.config.activity_events {
            for c in &f.activities {
                let p = self
                    .tracker
                    .tracks()
                    .iter()
                    .find(|t| t.track_id == c.track_id)
                    .map_or([0.0, 0.0], |t| t.position());
                push(EventType::ActivityEvent, events::activity_change(c, p));
            }
        }
        if self
            .last_trajectory
            .is_none_or(|l| t - l >= self.config.trajectory_interval_s)
            && t.is_finite()
        {
            self.last_trajectory = Some(t);
            for tr in self.tracker.tracks().iter().filter(|t| t.is_active()) {
                push(
                    EventType::PoseDataTrajectory,
                    events::trajectory(
                        tr,
                        meas,
                        self.config.trajectory_points,
                        self.config.prediction_horizon_s,
                    ),
                );
            }
        }
        for w in &f.windows {
            push(EventType::AnalyticsStream, events::analytics_stream(w));
        }
        out
    }
}

/// Runs a fresh engine over whole arrays (the Python binding's entry point): `times`
/// `(n,)` seconds; per frame up to `P` slots: `keypoints` `(n, P, 17, 3)`, `boxes`
/// `(n, P, 4)`, `scores` `(n, P)`, `activity` `(n, P, 5)`. A slot whose score is 0 or
/// not finite is empty (padding). Shape mismatches are errors; invalid detections are
/// skipped as in [`Tracker::update`].
pub fn run_arrays(
    config: EngineConfig,
    times: ndarray::ArrayView1<f64>,
    keypoints: ndarray::ArrayView4<f64>,
    boxes: ndarray::ArrayView3<f64>,
    scores: ndarray::ArrayView2<f64>,
    activity: ndarray::ArrayView3<f64>,
) -> Result<Vec<Output>, TrackError> {
    use crate::track::{N_ACTIVITIES, N_KEYPOINTS};
    let n = times.len();
    let p = scores.shape()[1];
    let bad = |what: &str, got: &[usize], want: String| {
        TrackError::Input(format!("{what} has shape {got:?}, expected {want}"))
    };
    if scores.shape()[0] != n {
        return Err(bad("scores", scores.shape(), format!("({n}, P)")));
    }
    if keypoints.shape() != [n, p, N_KEYPOINTS, 3] {
        return Err(bad(
            "keypoints",
            keypoints.shape(),
            format!("({n}, {p}, 17, 3)"),
        ));
    }
    if boxes.shape() != [n, p, 4] {
        return Err(bad("boxes", boxes.shape(), format!("({n}, {p}, 4)")));
    }
    if activity.shape() != [n, p, N_ACTIVITIES] {
        return Err(bad("activity", activity.shape(), format!("({n}, {p}, 5)")));
    }
    let mut engine = Engine::new(config)?;
    let mut out = Vec::new();
    for i in 0..n {
        let mut dets = Vec::with_capacity(p);
        for j in 0..p {
            let s = scores[[i, j]];
            if !(s.is_finite() && s > 0.0) {
                continue;
            }
            let mut kp = [[0.0; 3]; N_KEYPOINTS];
            for (k, row) in kp.iter_mut().enumerate() {
                for (c, v) in row.iter_mut().enumerate() {
                    *v = keypoints[[i, j, k, c]];
                }
            }
            let mut act = [0.0; N_ACTIVITIES];
            for (c, v) in act.iter_mut().enumerate() {
                *v = activity[[i, j, c]];
            }
            dets.push(Detection {
                keypoints: kp,
                bbox: [
                    boxes[[i, j, 0]],
                    boxes[[i, j, 1]],
                    boxes[[i, j, 2]],
                    boxes[[i, j, 3]],
                ],
                score: s,
                activity: act,
                dense: None,
            });
        }
        out.extend(engine.update(times[i], &dets));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2, Array3, Array4};

    #[test]
    fn arrays_in_events_out_and_shapes_checked() {
        let n = 100;
        let times = Array1::from_iter((0..n).map(|i| i as f64 * 0.05));
        let mut kp = Array4::<f64>::zeros((n, 2, 17, 3));
        let mut scores = Array2::<f64>::zeros((n, 2));
        for i in 0..n {
            for k in 0..17 {
                kp[[i, 0, k, 0]] = 0.5;
                kp[[i, 0, k, 1]] = 0.5;
                kp[[i, 0, k, 2]] = 0.9;
            }
            scores[[i, 0]] = 0.9; // slot 1 stays empty
        }
        let boxes = Array3::<f64>::from_elem((n, 2, 4), 0.5);
        let act = Array3::<f64>::from_elem((n, 2, 5), 0.2);
        let out = run_arrays(
            EngineConfig::default(),
            times.view(),
            kp.view(),
            boxes.view(),
            scores.view(),
            act.view(),
        )
        .unwrap();
        let occ: Vec<_> = out
            .iter()
            .filter(|o| o.event_type == EventType::OccupancyUpdate)
            .collect();
        assert_eq!(occ.len(), 1);
        assert_eq!(occ[0].data["current_occupancy"], 1);
        let e = run_arrays(
            EngineConfig::default(),
            times.view(),
            kp.view(),
            boxes.view(),
            scores.view(),
            Array3::<f64>::zeros((n, 2, 4)).view(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("activity"), "{e}");
    }
}
