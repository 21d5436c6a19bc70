//! Settings that can change while the server runs (`Server::configure`), read by every
//! environment's analysis stage on each frame.
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::{Map, Value};

/// The runtime-changeable settings, with the names `config_update` reports them by.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeSettings {
    /// `analytics.enable_fall_detection`: when false, no fall alert is raised.
    pub fall_detection: bool,
    /// `detection.confidence_threshold`: detections scored below it are not tracked.
    pub confidence_threshold: f64,
    /// `detection.max_persons`: at most this many of a window's detections (the most
    /// confident) are tracked while the sensor says someone is present. 1 by default:
    /// the bundled model's person count is measured worse than a constant
    /// (`docs/sensing.md`), so it places the one person it is surest of; a model that
    /// counts well deserves more (up to 16).
    pub max_persons: usize,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            fall_detection: true,
            confidence_threshold: 0.5,
            max_persons: 1,
        }
    }
}

/// The settings every environment of a server reads, changed by `update_config`.
pub type SharedSettings = Arc<RwLock<RuntimeSettings>>;

/// Names accepted by [`RuntimeSettings::apply`].
pub const SETTINGS: [&str; 3] = [
    "analytics.enable_fall_detection",
    "detection.confidence_threshold",
    "detection.max_persons",
];

impl RuntimeSettings {
    /// Checks every change first, then applies them all (or none). Returns the values
    /// that changed, by name; the error names the setting and the reason.
    pub fn apply(&mut self, changes: &Map<String, Value>) -> Result<Map<String, Value>, String> {
        let mut next = self.clone();
        for (key, value) in changes {
            match key.as_str() {
                "analytics.enable_fall_detection" => {
                    next.fall_detection = value
                        .as_bool()
                        .ok_or_else(|| format!("setting `{key}` must be true or false"))?;
                }
                "detection.confidence_threshold" => {
                    next.confidence_threshold = value
                        .as_f64()
                        .filter(|x| (0.0..=1.0).contains(x))
                        .ok_or_else(|| format!("setting `{key}` must be a number from 0 to 1"))?;
                }
                "detection.max_persons" => {
                    next.max_persons =
                        value
                            .as_u64()
                            .filter(|x| (1..=16).contains(x))
                            .ok_or_else(|| {
                                format!("setting `{key}` must be a whole number from 1 to 16")
                            })? as usize;
                }
                _ => {
                    return Err(format!(
                        "unknown setting `{key}` (runtime settings: {})",
                        SETTINGS.join(", ")
                    ))
                }
            }
        }
        let mut changed = Map::new();
        if next.fall_detection != self.fall_detection {
            changed.insert(SETTINGS[0].into(), next.fall_detection.into());
        }
        if next.confidence_threshold != self.confidence_threshold {
            changed.insert(SETTINGS[1].into(), next.confidence_threshold.into());
        }
        if next.max_persons != self.max_persons {
            changed.insert(SETTINGS[2].into(), next.max_persons.into());
        }
        *self = next;
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn all_or_nothing_and_only_changes_reported() {
        let mut s = RuntimeSettings::default();
        let bad = json!({"detection.confidence_threshold": 0.9, "analytics.x": 1});
        assert!(s
            .apply(bad.as_object().unwrap())
            .unwrap_err()
            .contains("analytics.x"));
        assert_eq!(s, RuntimeSettings::default());
        let ok =
            json!({"detection.confidence_threshold": 0.9, "analytics.enable_fall_detection": true});
        let changed = s.apply(ok.as_object().unwrap()).unwrap();
        assert_eq!(changed.len(), 1);
        assert_eq!(s.confidence_threshold, 0.9);
    }
}
