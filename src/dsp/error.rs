//! The one error type of the conditioning stage.

use thiserror::Error;

/// Why a conditioning step refused its input. Every step validates shapes, parameters
/// and values up front and returns one of these instead of panicking.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DspError {
    /// The input has no elements (or an axis the step needs has length zero).
    #[error("{step}: empty input ({detail})")]
    Empty {
        /// The step that refused (`"hampel"`, `"SosStream"`...).
        step: &'static str,
        /// What was empty.
        detail: String,
    },
    /// The input has the wrong number of dimensions or an axis of the wrong length.
    #[error("{step}: bad shape: {detail}")]
    Shape {
        /// The step that refused.
        step: &'static str,
        /// The shape expected and the shape given.
        detail: String,
    },
    /// A parameter is out of range (window, cutoff, order, sampling rate...).
    #[error("{step}: invalid parameter `{name}`: {detail}")]
    Parameter {
        /// The step that refused.
        step: &'static str,
        /// The parameter's name, as the caller spells it.
        name: &'static str,
        /// The accepted range and the value given.
        detail: String,
    },
    /// The input holds NaN or an infinity.
    #[error("{step}: input holds a non-finite value (NaN or infinity) at flat index {index}")]
    NonFinite {
        /// The step that refused.
        step: &'static str,
        /// Where the first such value is, counting the input's elements in memory order.
        index: usize,
    },
}

/// The result of a conditioning step.
pub type Result<T> = std::result::Result<T, DspError>;

pub(crate) fn param(step: &'static str, name: &'static str, detail: impl Into<String>) -> DspError {
    DspError::Parameter {
        step,
        name,
        detail: detail.into(),
    }
}

pub(crate) fn shape(step: &'static str, detail: impl Into<String>) -> DspError {
    DspError::Shape {
        step,
        detail: detail.into(),
    }
}

pub(crate) fn empty(step: &'static str, detail: impl Into<String>) -> DspError {
    DspError::Empty {
        step,
        detail: detail.into(),
    }
}

/// Fails on the first NaN or infinity in a real slice.
pub(crate) fn check_finite(step: &'static str, x: &[f32]) -> Result<()> {
    if all_finite(x) {
        return Ok(());
    }
    match x.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(DspError::NonFinite { step, index }),
        None => Ok(()),
    }
}

/// Whether `x` is neither NaN nor infinite (exponent bits not all set).
#[inline]
fn finite_bits(x: f32) -> bool {
    x.to_bits() & 0x7f80_0000 != 0x7f80_0000
}

/// Whether every value is finite: a loop without early exit, which vectorizes (the
/// position of a bad value is looked for only when there is one).
fn all_finite(x: &[f32]) -> bool {
    !x.iter().fold(false, |bad, &v| bad | !finite_bits(v))
}

/// Fails on the first NaN or infinity in a complex slice.
#[inline(always)]
pub(crate) fn check_finite_c(step: &'static str, x: &[num_complex::Complex32]) -> Result<()> {
    let bad = x.iter().fold(false, |bad, v| {
        bad | !finite_bits(v.re) | !finite_bits(v.im)
    });
    if !bad {
        return Ok(());
    }
    match x
        .iter()
        .position(|v| !(v.re.is_finite() && v.im.is_finite()))
    {
        Some(index) => Err(DspError::NonFinite { step, index }),
        None => Ok(()),
    }
}
