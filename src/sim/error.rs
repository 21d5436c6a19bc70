//! The simulator's one error type.

use thiserror::Error;

/// Everything that can go wrong building or running a simulation. Messages name the
/// offending field (`people[1].actions[0].speed`, `device`, `duration_s`...).
#[derive(Debug, Error)]
pub enum SimError {
    /// A field of a scenario description has a value the simulator cannot use.
    #[error("invalid scenario field `{field}`: {message}")]
    Invalid {
        /// The field's path in the description (`people[1].actions[0].speed`).
        field: String,
        /// What is wrong with its value.
        message: String,
    },
    /// A device profile name that is not one of [`super::device::DEVICE_NAMES`].
    #[error("unknown device {name:?}; expected one of {expected}")]
    UnknownDevice {
        /// The name given.
        name: String,
        /// The names accepted, comma-separated.
        expected: String,
    },
    /// A scenario name that is not one of [`super::scenario::SCENARIO_NAMES`].
    #[error("unknown scenario {name:?}; expected one of {expected}")]
    UnknownScenario {
        /// The name given.
        name: String,
        /// The names accepted, comma-separated.
        expected: String,
    },
    /// A scenario description that is not valid JSON or does not have the expected shape.
    #[error("scenario description: {0}")]
    Parse(String),
}

impl SimError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        SimError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Checks that a value is finite, and positive when `positive`.
pub(crate) fn check_finite(field: &str, v: f64, positive: bool) -> Result<f64, SimError> {
    if !v.is_finite() {
        return Err(SimError::invalid(field, format!("must be finite, got {v}")));
    }
    if positive && v <= 0.0 {
        return Err(SimError::invalid(field, format!("must be > 0, got {v}")));
    }
    Ok(v)
}

/// Checks `lo <= v <= hi` (and finiteness).
pub(crate) fn check_range(field: &str, v: f64, lo: f64, hi: f64) -> Result<f64, SimError> {
    check_finite(field, v, false)?;
    if v < lo || v > hi {
        return Err(SimError::invalid(
            field,
            format!("must be in [{lo}, {hi}], got {v}"),
        ));
    }
    Ok(v)
}
