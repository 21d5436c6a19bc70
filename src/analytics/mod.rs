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
//! environment task publishes with `crate::server::Event::new(o.event_type, o.data,
//! Some(environment_id))`. Decision rules and measured figures: `docs/analytics.md`.

pub mod activity;
pub mod eval;
pub mod events;
pub mod fall;
pub mod occupancy;
pub mod window;

use serde_json::Value;

use crate::server::EventType;
use crate::track::detection::class;
use crate::track::{Detection, TrackError, TrackEventKind, Tracker, TrackerConfig};

use activity::{ActivityConfig, ActivityStage};
use fall::{FallConfig, FallDetector};
use occupancy::Occupancy;
use window::{FrameSample, Window};

/// One message to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub event_type: EventType,
    pub data: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    pub tracker: TrackerConfig,
    pub activity: ActivityConfig,
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
    pub config: EngineConfig,
    pub tracker: Tracker,
    pub activity: ActivityStage,
    pub fall: FallDetector,
    pub occupancy: Occupancy,
    pub window: Window,
    last_trajectory: Option<f64>,
}

/// Typed outputs of one frame, for tests and evaluation.
#[derive(Debug, Clone, Default)]
pub struct FrameOutputs {
    pub tracks: Vec<crate::track::TrackEvent>,
    pub activities: Vec<activity::ActivityChange>,
    pub falls: Vec<fall::FallEvent>,
    pub occupancy: Vec<occupancy::OccupancyChange>,
    pub windows: Vec<window::WindowMetrics>,
}

impl Engine {
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
