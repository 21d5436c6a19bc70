//! Errors of the tracking and analytics stages.

use thiserror::Error;

/// Why a tracker or analytics engine refused its configuration or input.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum TrackError {
    /// A configuration value outside its range (field name, reason).
    #[error("invalid tracking configuration: {field}: {reason}")]
    Config {
        /// The setting's name.
        field: String,
        /// Its range and the value given.
        reason: String,
    },
    /// Input arrays of the wrong shape.
    #[error("invalid detections: {0}")]
    Input(String),
}

impl TrackError {
    /// A [`TrackError::Config`] for `field`.
    pub fn config(field: &str, reason: impl Into<String>) -> Self {
        TrackError::Config {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

/// `Ok(v)` when `lo <= v <= hi` and finite.
pub fn check(field: &str, v: f64, lo: f64, hi: f64) -> Result<f64, TrackError> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(v)
    } else {
        Err(TrackError::config(
            field,
            format!("{v} is not in [{lo}, {hi}]"),
        ))
    }
}
