//! An environment's analysis stage: detections in; tracking and analytics events and
//! `pose_data` frames (built from the tracks) out.
//!
//! Its detections come from the pose model (through the shared inference worker) or,
//! in oracle mode, from the simulator's ground truth (see [`super::environment::Oracle`]);
//! both take the same path and only `model_version` differs.
use serde_json::{json, Value};

use super::settings::RuntimeSettings;
use crate::analytics::{Engine, EngineConfig};
use crate::events::{Event, EventType, Publisher};
use crate::sim::skeleton::KEYPOINT_NAMES;
use crate::track::detection::MIN_KEYPOINT_CONF;
use crate::track::{Detection, TrackerConfig, ACTIVITIES};

/// pose_data frames per second at most: the highest rate any subscription may ask for.
const POSE_FPS: f64 = 30.0;

/// Tracking and analytics of one environment.
#[derive(Default)]
pub struct Analysis {
    engine: Option<Engine>,
    room: [f64; 2],
    last_t: Option<f64>,
    /// When the next pose_data is due (source clock).
    next_pose: Option<f64>,
    frame_id: u64,
}

impl Analysis {
    /// One frame's detections at time `t` (seconds of the source's clock), in the
    /// normalized floor frame of a room `room_size` metres wide and deep, made by
    /// `model_version`.
    #[allow(clippy::too_many_arguments)]
    pub fn on_detections(
        &mut self,
        t: f64,
        mut detections: Vec<Detection>,
        room_size: [f64; 2],
        model_version: &str,
        settings: &RuntimeSettings,
        publisher: &Publisher,
        env: &str,
    ) {
        let threshold = settings.confidence_threshold;
        detections.retain(|d| d.score >= threshold);
        // A new room, or a source clock that went back (a simulation run restarted):
        // the old tracks mean nothing any more.
        let restart = self.last_t.is_some_and(|last| t < last);
        if self.engine.is_none() || self.room != room_size || restart {
            let config = EngineConfig {
                tracker: TrackerConfig {
                    room_size,
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
            self.room = room_size;
            self.next_pose = None;
        }
        self.last_t = Some(t);
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        for out in engine.update(t, &detections) {
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
        // A schedule rather than a minimum gap: detections every 30-40 ms (a 100 Hz
        // source inferred every third packet) still give 30 pose_data a second.
        if self.next_pose.is_some_and(|due| t + 1e-3 < due) {
            return;
        }
        let period = 1.0 / POSE_FPS;
        self.next_pose = Some(match self.next_pose {
            Some(due) => (due + period).max(t),
            None => t + period,
        });
        let data = pose_frame(engine, self.frame_id, env, model_version, t);
        publisher.publish(Event::new(EventType::PoseData, data, Some(env.to_string())));
    }
}

/// The spec's pose_data for the engine's active tracks. Coordinates are the model's
/// frame: the floor seen from above, normalized to the unit square (`docs/simulator.md`);
/// `position` and `velocity` are in metres and metres per second.
/// `source_time` is the source clock time of the newest CSI packet the frame used: Unix
/// seconds at reception for live sources, so a client can measure CSI-to-client latency.
fn pose_frame(
    engine: &Engine,
    frame_id: u64,
    env: &str,
    model_version: &str,
    source_time: f64,
) -> Value {
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
                if let Some(dense) = &d.dense {
                    // Only for subscriptions with include_dense_pose (the bus strips it).
                    let cells: Vec<Value> = dense
                        .cells
                        .iter()
                        .map(|&(r, c, part, u, v)| {
                            json!([r, c, part, round3(u as f64), round3(v as f64)])
                        })
                        .collect();
                    p["dense_pose"] = json!({"grid": dense.grid, "cells": cells});
                }
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
        "metadata": {"model_version": model_version, "coordinates": "floor_normalized",
                     "source_time": source_time},
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
