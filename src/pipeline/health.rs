//! Component health: each monitor tick judges the pipeline's components from what was
//! measured over the tick, and a change of state (healthy, degraded, unhealthy) is
//! published once as a `system_event` — never again while the state holds.
//!
//! Rules (thresholds with hysteresis so a value hovering at a threshold does not flap):
//! - `environment:<id>`: degraded when its input queue is at least 80% full, healthy
//!   again below 50%.
//! - `model`: unhealthy when inference calls failed during the tick; degraded when the
//!   inference worker was busy more than 90% of the tick (it cannot keep up for long),
//!   healthy again below 70% with no failures.
use std::collections::BTreeMap;

use serde_json::{json, Value};

/// A component's state, published as a `system_event` when it changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Working within its limits.
    Healthy,
    /// Working, but close to a limit (a queue filling, a busy worker).
    Degraded,
    /// Failing (inference calls failed during the tick).
    Unhealthy,
}

impl Status {
    /// The state as the `system_event` spells it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Status::Healthy => "healthy",
            Status::Degraded => "degraded",
            Status::Unhealthy => "unhealthy",
        }
    }

    fn severity(self) -> &'static str {
        match self {
            Status::Healthy => "info",
            Status::Degraded => "warning",
            Status::Unhealthy => "error",
        }
    }
}

/// What one tick measured about an environment.
pub struct EnvironmentTick {
    /// The environment's id.
    pub id: String,
    /// Inputs waiting in its queue at the tick.
    pub queue_len: usize,
    /// Inputs its queue holds.
    pub queue_capacity: usize,
}

/// What one tick measured about the inference worker.
pub struct ModelTick {
    /// Share of the tick the worker spent inside the model, 0 to 1.
    pub busy: f64,
    /// Failed calls during the tick.
    pub failures: u64,
}

/// The last published state of every component.
#[derive(Default)]
pub struct Health {
    states: BTreeMap<String, Status>,
}

impl Health {
    /// Judges one tick; returns the `system_event` data of every change.
    pub fn update(&mut self, envs: &[EnvironmentTick], model: Option<&ModelTick>) -> Vec<Value> {
        let mut changes = Vec::new();
        for e in envs {
            let fill = e.queue_len as f64 / e.queue_capacity.max(1) as f64;
            let name = format!("environment:{}", e.id);
            let was = self.state(&name);
            let now = if fill >= 0.8 || (was != Status::Healthy && fill >= 0.5) {
                Status::Degraded
            } else {
                Status::Healthy
            };
            let msg = format!(
                "input queue {} of {} frames ({:.0}% full)",
                e.queue_len,
                e.queue_capacity,
                100.0 * fill
            );
            self.set(&name, now, msg, &mut changes);
        }
        if let Some(m) = model {
            let was = self.state("model");
            let (now, msg) = if m.failures > 0 {
                (
                    Status::Unhealthy,
                    format!("{} inference calls failed", m.failures),
                )
            } else if m.busy > 0.9 || (was != Status::Healthy && m.busy >= 0.7) {
                (
                    Status::Degraded,
                    format!(
                        "inference worker busy {:.0}% of the time: environments wait for it",
                        100.0 * m.busy
                    ),
                )
            } else {
                (
                    Status::Healthy,
                    format!("inference worker busy {:.0}% of the time", 100.0 * m.busy),
                )
            };
            self.set("model", now, msg, &mut changes);
        }
        changes
    }

    fn state(&self, name: &str) -> Status {
        self.states.get(name).copied().unwrap_or(Status::Healthy)
    }

    fn set(&mut self, name: &str, now: Status, message: String, changes: &mut Vec<Value>) {
        let was = self.state(name);
        if was == now {
            return;
        }
        self.states.insert(name.to_string(), now);
        changes.push(json!({
            "event": "component_health",
            "component": name,
            "status": now.name(),
            "previous_status": was.name(),
            "severity": now.severity(),
            "message": message,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(len: usize) -> EnvironmentTick {
        EnvironmentTick {
            id: "a".into(),
            queue_len: len,
            queue_capacity: 100,
        }
    }

    #[test]
    fn changes_are_reported_once_with_hysteresis() {
        let mut h = Health::default();
        assert!(
            h.update(&[env(10)], None).is_empty(),
            "healthy from the start: silent"
        );
        let c = h.update(&[env(85)], None);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0]["status"], "degraded");
        assert_eq!(c[0]["previous_status"], "healthy");
        assert!(
            h.update(&[env(90)], None).is_empty(),
            "no repeat while it holds"
        );
        assert!(
            h.update(&[env(60)], None).is_empty(),
            "hysteresis: still degraded at 60%"
        );
        let c = h.update(&[env(20)], None);
        assert_eq!(c[0]["status"], "healthy");
        assert_eq!(c[0]["component"], "environment:a");
    }

    #[test]
    fn model_failures_and_saturation() {
        let mut h = Health::default();
        let tick = |busy, failures| ModelTick { busy, failures };
        assert!(h.update(&[], Some(&tick(0.5, 0))).is_empty());
        assert_eq!(h.update(&[], Some(&tick(0.95, 0)))[0]["status"], "degraded");
        assert_eq!(h.update(&[], Some(&tick(0.2, 3)))[0]["status"], "unhealthy");
        let c = h.update(&[], Some(&tick(0.2, 0)));
        assert_eq!(c[0]["status"], "healthy");
        assert_eq!(c[0]["previous_status"], "unhealthy");
    }
}
