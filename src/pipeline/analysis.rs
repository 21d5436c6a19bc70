//! An environment's analysis stage: detections in; tracking and analytics events and
//! `pose_data` frames (built from the tracks) out.
//!
//! Today its detections come from the simulator's ground truth (oracle mode, see
//! [`Oracle`]); when the pose model lands, its detections take the same path, and only
//! `model_version` changes.
use serde_json::{json, Value};

use super::environment::{Oracle, ORACLE_MODEL};
use super::settings::RuntimeSettings;
use crate::analytics::{Engine, EngineConfig};
use crate::server::{Event, EventType, Publisher};
use crate::sim::skeleton::KEYPOINT_NAMES;
use crate::track::detection::MIN_KEYPOINT_CONF;
use crate::track::{TrackerConfig, ACTIVITIES};

/// pose_data frames per second at most: the highest rate any subscription may ask for.
const POSE_FPS: f64 = 30.0;

/// Tracking and analytics of one environment.
#[derive(Default)]
pub struct Analysis {
    engine: Option<Engine>,
    room: [f64; 2],
    last_t: Option<f64>,
    last_pose: Option<f64>,
    frame_id: u64,
}

impl Analysis {
    /// One frame's detections at time `t` (seconds of the source's clock).
    pub fn on_detections(
        &mut self,
        t: f64,
        mut oracle: Oracle,
        settings: &RuntimeSettings,
        publisher: &Publisher,
        env: &str,
    ) {
        let threshold = settings.confidence_threshold;
        oracle.detections.retain(|d| d.score >= threshold);
        // A new room, or a source clock that went back (a simulation run restarted):
        // the old tracks mean nothing any more.
        let restart = self.last_t.is_some_and(|last| t < last);
        if self.engine.is_none() || self.room != oracle.room_size || restart {
            let config = EngineConfig {
                tracker: TrackerConfig {
                    room_size: oracle.room_size,
                    ..Default::default()
                },
                ..Default::default()
            };
            match Engine::new(config) {
                Ok(engine) => self.engine = Some(engine),
                Err(e) => {
                    publisher.publish(Event::new(
                        EventType::SystemEvent,
                        json!({"event": "component_error", "component": "tracker",
                               "severity": "error", "message": e.to_string()}),
                        Some(env.to_string()),
                    ));
                    return;
                }
            }
            self.room = oracle.room_size;
            self.last_pose = None;
        }
        self.last_t = Some(t);
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        for out in engine.update(t, &oracle.detections) {
            let is_fall = out.event_type == EventType::ActivityEvent
                && out
                    .data
                    .get("event_type")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.starts_with("fall_"));
            if is_fall && !settings.fall_detection {
                continue; // analytics.enable_fall_detection is off
            }
            publisher.publish(Event::new(out.event_type, out.data, Some(env.to_string())));
        }
        self.frame_id += 1;
        if self
            .last_pose
            .is_some_and(|last| t - last < 1.0 / POSE_FPS - 1e-6)
        {
            return;
        }
        self.last_pose = Some(t);
        let data = pose_frame(engine, self.frame_id, env);
        publisher.publish(Event::new(EventType::PoseData, data, Some(env.to_string())));
    }
}

/// The spec's pose_data for the engine's active tracks. Coordinates are the model's
/// frame: the floor seen from above, normalized to the unit square (`docs/simulator.md`);
/// `position` and `velocity` are in metres and metres per second.
fn pose_frame(engine: &Engine, frame_id: u64, env: &str) -> Value {
    let persons: Vec<Value> = engine
        .tracker
        .tracks()
        .iter()
        .filter(|t| t.is_active())
        .map(|t| {
            let [x, y] = t.position();
            let [vx, vy] = t.velocity();
            let mut p = json!({
                "person_id": t.person_id,
                "track_id": t.track_id,
                "confidence": round3(t.confidence),
                "position": {"x": round3(x), "y": round3(y)},
                "velocity": {"x": round3(vx), "y": round3(vy)},
            });
            if let Some(d) = &t.detection {
                let [u0, v0, u1, v1] = d.bbox;
                p["bounding_box"] = json!({"x": round3(u0), "y": round3(v0),
                                           "width": round3(u1 - u0), "height": round3(v1 - v0)});
                p["keypoints"] = d
                    .keypoints
                    .iter()
                    .zip(KEYPOINT_NAMES)
                    .map(|(k, name)| {
                        json!({"name": name, "x": round3(k[0]), "y": round3(k[1]),
                               "confidence": round3(k[2]), "visible": k[2] >= MIN_KEYPOINT_CONF})
                    })
                    .collect();
            }
            if let Some((class, conf)) = engine.activity.current(t.track_id) {
                p["activity"] = json!({"type": ACTIVITIES[class], "confidence": round3(conf),
                                       "velocity": {"x": round3(vx), "y": round3(vy)}});
            }
            p
        })
        .collect();
    json!({
        "frame_id": frame_id,
        "environment_id": env,
        "persons": persons,
        "metadata": {"model_version": ORACLE_MODEL, "coordinates": "floor_normalized"},
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
