//! The spec's payloads (`/work/shared/spec/websocket-api.md`) as `serde_json::Value`,
//! ready for `crate::events::Event::new(event_type, data, environment)`.
//!
//! Positions are floor coordinates in metres in the room frame (origin at a floor
//! corner, x along the width, y along the depth); velocities in m/s; times inside
//! payloads are RFC 3339 from the frame time (Unix seconds).

use serde_json::{json, Value};

use super::activity::ActivityChange;
use super::fall::{FallEvent, FallEventKind};
use super::occupancy::OccupancyChange;
use super::window::WindowMetrics;
use crate::events::rfc3339_from_unix;
use crate::track::{Track, TrackEvent, ACTIVITIES};

fn r3(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

fn pos(p: [f64; 2]) -> Value {
    json!({"x": r3(p[0]), "y": r3(p[1])})
}

/// `tracking_update`.
pub fn tracking_update(e: &TrackEvent, velocity: [f64; 2]) -> Value {
    json!({
        "track_id": e.track_id,
        "person_id": e.person_id,
        "event": e.kind.as_str(),
        "position": pos(e.position),
        "confidence": r3(e.confidence),
        "metadata": {
            "first_detection": rfc3339_from_unix(e.first_detection),
            "track_quality": r3(e.quality),
            "velocity": pos(velocity),
        }
    })
}

/// `pose_data_trajectory`: the recent path (at most `max_points`, evenly thinned) and
/// the filter's prediction `horizon_s` ahead.
pub fn trajectory(tr: &Track, meas_std_m: f64, max_points: usize, horizon_s: f64) -> Value {
    let n = tr.path.len();
    let step = n.div_ceil(max_points.max(1)).max(1);
    let mut pts: Vec<Value> = tr
        .path
        .iter()
        .rev()
        .step_by(step)
        .map(|p| {
            json!({
                "timestamp": rfc3339_from_unix(p.t),
                "position": pos(p.position),
                "confidence": r3(p.confidence),
            })
        })
        .collect();
    pts.reverse();
    // Prediction confidence falls with the predicted position's spread.
    let mut kf = tr.kf.clone();
    kf.predict(horizon_s);
    let conf = tr.confidence * (meas_std_m / kf.position_std().max(meas_std_m));
    json!({
        "track_id": tr.track_id,
        "person_id": tr.person_id,
        "trajectory": pts,
        "velocity": pos(tr.velocity()),
        "prediction": {
            "next_position": pos(tr.kf.position_in(horizon_s)),
            "confidence": r3(conf.clamp(0.0, 1.0)),
            "time_horizon": horizon_s,
        }
    })
}

/// `activity_event` for a fall or a recovery.
pub fn fall_event(e: &FallEvent) -> Value {
    let (event_type, actions) = match e.kind {
        FallEventKind::Detected => ("fall_detected", json!(["alert_triggered"])),
        FallEventKind::Recovered => ("fall_recovered", json!([])),
    };
    let mut details = json!({
        "fall_duration": r3(e.fall_duration),
        "impact_severity": r3(e.impact_severity),
        "recovery_detected": e.recovery_detected,
        "impact_time": rfc3339_from_unix(e.impact),
    });
    if let Some(tof) = e.time_on_floor {
        details["time_on_floor"] = json!(r3(tof));
    }
    json!({
        "event_type": event_type,
        "severity": if e.kind == FallEventKind::Detected { e.severity } else { "info" },
        "person_id": e.person_id,
        "track_id": e.track_id,
        "confidence": r3(e.confidence),
        "location": pos(e.position),
        "details": details,
        "actions": actions,
    })
}

/// `activity_event` for a change of a person's activity.
pub fn activity_change(c: &ActivityChange, position: [f64; 2]) -> Value {
    json!({
        "event_type": "activity_changed",
        "severity": "info",
        "person_id": c.person_id,
        "track_id": c.track_id,
        "confidence": r3(c.confidence),
        "location": pos(position),
        "details": {
            "activity": ACTIVITIES.get(c.to).copied().unwrap_or("unknown"),
            "previous_activity": c.from.and_then(|f| ACTIVITIES.get(f).copied()),
        },
        "actions": [],
    })
}

/// `occupancy_update`.
pub fn occupancy_update(c: &OccupancyChange) -> Value {
    json!({
        "current_occupancy": c.current,
        "previous_occupancy": c.previous,
        "change_type": c.change_type,
        "confidence": r3(c.confidence),
        "persons": c.persons.iter().map(|p| json!({
            "person_id": p.person_id,
            "track_id": p.track_id,
            "status": p.status,
        })).collect::<Vec<_>>(),
    })
}

/// `analytics_stream`.
pub fn analytics_stream(m: &WindowMetrics) -> Value {
    json!({
        "window": m.window_name(),
        "metrics": {
            "occupancy": {
                "current": m.occupancy_current,
                "average": r3(m.occupancy_average),
                "peak": m.occupancy_peak,
            },
            "activity": {
                "movement_events": m.movement_events,
                "stationary_time": r3(m.stationary_time_s),
                "activity_level": r3(m.activity_level),
            },
            "detection": {
                "total_detections": m.total_detections,
                "average_confidence": r3(m.average_confidence),
                "tracking_accuracy": r3(m.tracking_quality),
            }
        },
        "trends": {
            "occupancy_trend": m.occupancy_trend,
            "activity_trend": m.activity_trend,
            "confidence_trend": m.confidence_trend,
        }
    })
}
