//! An environment's analysis stage: detections in; tracking and analytics events and
//! `pose_data` frames (built from the tracks) out.
//!
//! Its detections come from the pose model (through the shared inference worker) or,
//! in oracle mode, from the simulator's ground truth (see [`super::environment::Oracle`]);
//! both take the same path and only `model_version` differs.
use serde_json::{json, Value};

use super::settings::RuntimeSettings;
use crate::analytics::rest_posture::RestPosture;
use crate::analytics::{Engine, EngineConfig};
use crate::events::{Event, EventType, Publisher};
use crate::sensing::SensingState;
use crate::sim::skeleton::KEYPOINT_NAMES;
use crate::track::detection::class::{FALLING, LYING, SITTING, STANDING, WALKING};
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
    /// Whether the sensing-only path last said someone was in the room.
    sensed_present: Option<bool>,
    /// Whether the tracker runs in single-person mode (see `on_detections`).
    single: bool,
    /// A classifier model's latest answer (see `on_classes`).
    classified: Option<Classified>,
    /// The posture the sensed person came to rest in (see `on_detections`).
    rest: RestPosture,
}

/// A classifier model's answer for the latest window.
#[derive(Clone, Debug)]
struct Classified {
    class: String,
    confidence: f64,
    model_version: String,
    /// The class is a fall (`fall` or `falling`, any case).
    fall: bool,
}

/// Whether a classifier's class name means a fall (an event, not a state).
pub fn is_fall_class(name: &str) -> bool {
    name.eq_ignore_ascii_case("fall") || name.eq_ignore_ascii_case("falling")
}

impl Analysis {
    /// One frame's detections at time `t` (seconds of the source's clock), in the
    /// normalized floor frame of a room `room_size` metres wide and deep, made by
    /// `model_version`. `sensing` is the environment's sensor at that time: when it says
    /// nobody is in the room, the model's detections are dropped (the sensor measures
    /// presence against the noise of the same packets; the model alone cannot tell an
    /// empty room, `docs/model.md`). Oracle detections come with no sensing.
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
        sensing: Option<&SensingState>,
        position: Option<[f64; 2]>,
    ) {
        let threshold = settings.confidence_threshold;
        // The one person the sensor finds (one person at most, someone present): the
        // model's most confident detection is theirs whatever its score, which says little
        // (the model cannot tell an empty room, docs/model.md). Dropping it below the
        // threshold left the person unreported while present and broke their track in
        // two, with a person_left and a person_entered, every few seconds.
        let sensed_one = sensing.is_some_and(|s| s.presence) && settings.max_persons == 1;
        if sensed_one {
            if let Some(best) = detections
                .iter()
                .enumerate()
                .filter(|(_, d)| d.score.is_finite())
                .max_by(|a, b| a.1.score.total_cmp(&b.1.score))
                .map(|(i, _)| i)
            {
                detections.swap(0, best);
                detections.truncate(1);
                detections[0].score = detections[0].score.max(threshold).max(min_tracked());
            }
        } else {
            detections.retain(|d| d.score >= threshold);
        }
        if let Some(s) = sensing {
            self.rest
                .update(t, s.motion_detected, s.motion_level, position);
            if s.presence {
                // The most confident first; the model's count is not trusted past
                // `max_persons` (see RuntimeSettings::max_persons).
                detections.sort_by(|a, b| b.score.total_cmp(&a.score));
                detections.truncate(settings.max_persons);
                // The model does not tell activities apart (docs/model.md); the channel's
                // motion, read for walking or swaying, and the posture read at its last end
                // do better, held out (docs/sensing.md, "Posture from the motion that ended
                // it" and "Walking, or swaying in place").
                match (s.motion_detected, self.rest.posture()) {
                    (true, _) => {
                        let walking = self.rest.walking().unwrap_or(1.0);
                        let rest = self.rest.last_rest();
                        detections
                            .iter_mut()
                            .for_each(|d| d.activity = moving_evidence(walking, rest));
                    }
                    (false, Some(p)) => detections.iter_mut().for_each(|d| at_rest(d, p)),
                    (false, None) => detections.iter_mut().for_each(still_channel),
                }
            } else {
                detections.clear();
            }
        }
        // The localizer's place (the link's geometry, `docs/sensing.md`) stands in for
        // the model's for the one person the sensor admits: held out, it is the better
        // of the two (benches/position.py).
        if let (Some(p), 1) = (position, settings.max_persons) {
            if let Some(d) = detections.first_mut() {
                d.moved_to(p, room_size);
            }
        }
        // A new room, or a source clock that went back (a simulation run restarted):
        // the old tracks mean nothing any more.
        let restart = self.last_t.is_some_and(|last| t < last);
        // One person at most (`detection.max_persons` 1): every detection belongs to the
        // one track, however far it jumps from the last, so a jittery model cannot split
        // one person into several tracks.
        let single = sensing.is_some() && settings.max_persons == 1;
        if self.engine.is_none() || self.room != room_size || restart || self.single != single {
            let mut tracker = TrackerConfig {
                room_size,
                ..Default::default()
            };
            if single {
                tracker.gate_chi2 = 1e4;
                tracker.gate_max_m = 100.0;
            }
            self.single = single;
            let config = EngineConfig {
                tracker,
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
        let data = pose_frame(
            engine,
            self.frame_id,
            env,
            model_version,
            t,
            sensing,
            self.room,
        );
        publisher.publish(Event::new(EventType::PoseData, data, Some(env.to_string())));
    }

    /// A frame that no model looks at (no model loaded, or a layout the model does not
    /// take: one antenna, two antennas): the sensor alone reports. pose_data (30 a second
    /// of source time) carries the sensor's metadata and, while someone is present, one
    /// person without position or keypoints (`localized: false`: one link of this layout
    /// cannot place them); occupancy_update says when the room becomes occupied or empty.
    /// The sensor cannot count: "occupied" is reported as one person.
    /// A classifier model's answer for the window ending at `t`: the most probable class
    /// becomes the activity of the sensed person in the next pose_data frames, and the
    /// moment a fall class becomes the most probable one, a `fall_detected`
    /// activity_event goes out (one per fall: the class must leave and come back).
    #[allow(clippy::too_many_arguments)]
    pub fn on_classes(
        &mut self,
        t: f64,
        classes: &[String],
        probs: &[f32],
        model_version: &str,
        publisher: &Publisher,
        env: &str,
    ) {
        if classes.len() != probs.len() || classes.is_empty() {
            return; // an answer of a model that has since been replaced
        }
        let best = (0..probs.len())
            .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
            .unwrap_or(0);
        let confidence = if probs[best].is_finite() {
            (probs[best] as f64).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let fall = is_fall_class(&classes[best]);
        let was_fall = self.classified.as_ref().is_some_and(|c| c.fall);
        if fall && !was_fall {
            publisher.publish(Event::new(
                EventType::ActivityEvent,
                json!({
                    "event_type": "fall_detected",
                    "severity": "high",
                    "person_id": 0,
                    "track_id": null,
                    "confidence": round3(confidence),
                    "location": null,
                    "details": {
                        "source": "classifier",
                        "class": classes[best],
                        "model_version": model_version,
                        "source_time": t,
                    },
                    "actions": ["alert_triggered"],
                }),
                Some(env.to_string()),
            ));
        }
        self.classified = Some(Classified {
            class: classes[best].clone(),
            confidence,
            model_version: model_version.to_string(),
            fall,
        });
    }

    /// One frame the sensor reports alone (no pose model looked): presence, the
    /// localizer's `position` (metres in the room frame) when there is one, and the
    /// classifier's latest class. `room` is the room's floor size in metres; it goes into
    /// `metadata.room_size` of frames that carry a position, so a viewer can place the
    /// person without keypoints (`docs/protocol.md`). With a `classifier` loaded, the
    /// person's activity is its class alone (none before its first answer): the sensor's
    /// own activity is for rooms without one.
    pub fn on_sensing_only(
        &mut self,
        s: &SensingState,
        position: Option<[f64; 2]>,
        room: [f64; 2],
        classifier: bool,
        publisher: &Publisher,
        env: &str,
    ) {
        let t = s.t;
        // Several nodes' frames arrive a little out of order on the room's clock (each
        // samples at its own jittered instant): only a real step back is a restart.
        let restart = self.last_t.is_some_and(|last| t < last - 0.5);
        if restart {
            self.next_pose = None; // the source clock restarted
        }
        self.last_t = Some(match self.last_t {
            Some(last) if !restart => last.max(t),
            _ => t,
        });
        self.rest
            .update(t, s.motion_detected, s.motion_level, position);
        if self.sensed_present != Some(s.presence) {
            let previous = usize::from(self.sensed_present == Some(true));
            let current = usize::from(s.presence);
            if self.sensed_present.is_some() || s.presence {
                publisher.publish(Event::new(
                    EventType::OccupancyUpdate,
                    json!({
                        "current_occupancy": current,
                        "previous_occupancy": previous,
                        "change_type": if s.presence { "person_entered" } else { "person_left" },
                        "confidence": round3(presence_confidence(s)),
                        "persons": [],
                        "source": "sensing",
                    }),
                    Some(env.to_string()),
                ));
            }
            self.sensed_present = Some(s.presence);
        }
        if self.next_pose.is_some_and(|due| t + 1e-3 < due) {
            return;
        }
        let period = 1.0 / POSE_FPS;
        self.next_pose = Some(match self.next_pose {
            Some(due) => (due + period).max(t),
            None => t + period,
        });
        self.frame_id += 1;
        let persons = if s.presence {
            let mut p = json!({"person_id": 0, "confidence": round3(presence_confidence(s)),
                               "localized": position.is_some()});
            if let Some([x, y]) = position {
                // Placed by the localizer alone: a floor position, no keypoints.
                p["position"] = json!({"x": round3(x), "y": round3(y)});
            }
            if let Some(b) = s.breathing_rate_bpm {
                p["breathing_rate_bpm"] = json!(round3(b));
            }
            if let Some(c) = &self.classified {
                p["activity"] = json!({"type": c.class, "confidence": round3(c.confidence)});
            } else if let Some((kind, confidence)) = self.sensed_activity(s).filter(|_| !classifier)
            {
                p["activity"] = json!({"type": kind, "confidence": round3(confidence)});
            }
            vec![p]
        } else {
            Vec::new()
        };
        let version = self
            .classified
            .as_ref()
            .map_or(SENSING_ONLY, |c| c.model_version.as_str());
        let mut metadata = json!({"model_version": version, "source_time": t});
        if let Some(c) = &self.classified {
            // The class stands even when the sensor sees nobody (a class may be "empty").
            metadata["classification"] =
                json!({"type": c.class, "confidence": round3(c.confidence)});
        }
        if s.presence && position.is_some() {
            metadata["room_size"] = json!([round3(room[0]), round3(room[1])]);
        }
        add_sensing(&mut metadata, Some(s));
        let data = json!({
            "frame_id": self.frame_id,
            "environment_id": env,
            "persons": persons,
            "metadata": metadata,
        });
        publisher.publish(Event::new(EventType::PoseData, data, Some(env.to_string())));
    }
}

impl Analysis {
    /// Forgets the people tracked so far (a simulated scenario starting over): the next
    /// detection starts a new track, as in a new room.
    pub fn start_over(&mut self) {
        self.engine = None;
        self.rest = RestPosture::default();
        self.next_pose = None;
    }

    /// The activity of the person the sensor reports alone: while the channel moves,
    /// walking or the last rest's posture (`moving_evidence`), else the posture read at
    /// the last end of motion (the evidence `on_detections` gives the activity filter, its
    /// most probable class, unfiltered). While still, None before a motion was seen to end.
    fn sensed_activity(&self, s: &SensingState) -> Option<(&'static str, f64)> {
        let evidence = if s.motion_detected {
            let walking = self.rest.walking().unwrap_or(1.0);
            moving_evidence(walking, self.rest.last_rest())
        } else {
            let p = self.rest.posture()?;
            [p[0], 0.0, p[1], p[2], 0.0]
        };
        let best = (0..ACTIVITIES.len()).max_by(|&a, &b| evidence[a].total_cmp(&evidence[b]))?;
        Some((ACTIVITIES[best], evidence[best]))
    }
}

/// How much of the model's `walking` score is kept while the sensor sees no motion.
const WALKING_KEPT_WHEN_STILL: f64 = 0.0;

/// The lowest score the tracker takes a detection at.
fn min_tracked() -> f64 {
    TrackerConfig::default().min_score
}

/// A detection made while the sensor sees no motion in the channel: nobody there is
/// walking, whatever the model says (it calls almost everything walking,
/// `docs/model.md`), so its walking score is mostly taken away and the other classes'
/// scores decide.
fn still_channel(d: &mut Detection) {
    d.activity[WALKING] *= WALKING_KEPT_WHEN_STILL;
}

/// The postures (standing, sitting, lying) of a moving person whom no motion end has
/// been read for yet: mostly upright.
const UNREAD_REST: [f64; 3] = [0.6, 0.2, 0.2];

/// The activity evidence (standing, walking, sitting, lying, falling) while the channel
/// shows motion, whatever the model says (it called almost everything walking): walking
/// with the probability the rest posture's walking regression gives the seconds up to
/// now, else still in the posture read at the last rest (a swaying or fidgeting body
/// sets off the motion detector; docs/sensing.md, "Walking, or swaying in place").
fn moving_evidence(walking: f64, rest: Option<[f64; 3]>) -> [f64; 5] {
    // A probability that is not one (never from the regression) counts as walking, the
    // rule before it.
    let walking = if walking.is_finite() {
        walking.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let rest = rest.unwrap_or(UNREAD_REST);
    let still = 0.84 * (1.0 - walking);
    [
        0.03 + still * rest[0],
        0.03 + 0.84 * walking,
        0.03 + still * rest[1],
        0.03 + still * rest[2],
        0.04,
    ]
}

/// A detection of a person at rest since a motion end the rest posture read
/// (standing, sitting, lying probabilities `p`).
fn at_rest(d: &mut Detection, p: [f64; 3]) {
    let mut a = [0.0; 5];
    a[STANDING] = 0.95 * p[0];
    a[SITTING] = 0.95 * p[1];
    a[LYING] = 0.95 * p[2];
    a[FALLING] = 0.05;
    d.activity = a;
}

/// The `model_version` of pose_data made by the sensor alone (no model looked).
pub const SENSING_ONLY: &str = "sensing";

/// How sure the sensor is that someone is there: 1 while moving; otherwise from the
/// breathing score's margin over its threshold (log scale), at least 0.5 when present.
fn presence_confidence(s: &SensingState) -> f64 {
    if s.motion_detected {
        return 1.0;
    }
    let score = s.presence_score.unwrap_or(0.0).max(1.0);
    let c = 0.5 + score.log10() / 4.0;
    if s.presence {
        c.clamp(0.5, 1.0)
    } else {
        c.clamp(0.0, 0.49)
    }
}

/// The sensor's fields in a pose_data's metadata (`docs/protocol.md`).
fn add_sensing(metadata: &mut Value, s: Option<&SensingState>) {
    let Some(s) = s else { return };
    metadata["motion_level"] = json!(round3(s.motion_level));
    metadata["motion_detected"] = json!(s.motion_detected);
    metadata["presence"] = json!(s.presence);
    metadata["calibrated"] = json!(s.calibrated);
    metadata["sensing_mode"] = json!(s.mode);
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
    sensing: Option<&SensingState>,
    room: [f64; 2],
) -> Value {
    let mut persons: Vec<Value> = engine
        .tracker
        .tracks()
        .iter()
        .filter(|t| t.is_active())
        .map(|t| {
            // The track's filter can coast past a wall; nobody stands outside the room.
            let [x, y] = t.position();
            let (x, y) = (x.clamp(0.0, room[0]), y.clamp(0.0, room[1]));
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
    // The breathing rate belongs to a person only when there is one to give it to.
    if let (Some(b), [p]) = (
        sensing.and_then(|s| s.breathing_rate_bpm),
        persons.as_mut_slice(),
    ) {
        p["breathing_rate_bpm"] = json!(round3(b));
    }
    let mut metadata = json!({"model_version": model_version, "coordinates": "floor_normalized",
                              "source_time": source_time});
    add_sensing(&mut metadata, sensing);
    json!({
        "frame_id": frame_id,
        "environment_id": env,
        "persons": persons,
        "metadata": metadata,
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn best(a: [f64; 5]) -> usize {
        (0..5).max_by(|&x, &y| a[x].total_cmp(&a[y])).unwrap()
    }

    #[test]
    fn moving_evidence_is_walking_or_the_posture_of_the_last_rest() {
        let sitting = Some([0.1, 0.8, 0.1]);
        assert_eq!(best(moving_evidence(0.9, sitting)), WALKING);
        assert_eq!(best(moving_evidence(0.1, sitting)), SITTING);
        assert_eq!(best(moving_evidence(0.1, None)), STANDING);
        for w in [0.0, 0.5, 1.0, -3.0, 7.0, f64::NAN] {
            let a = moving_evidence(w, sitting);
            assert!(a.iter().all(|v| v.is_finite() && *v > 0.0), "{w}: {a:?}");
            assert!((a.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{w}: {a:?}");
        }
    }
}
