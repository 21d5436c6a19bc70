//! Signal conditioning: raw CSI frames in, clean features out.
//!
//! This stage sits between [`crate::csi`] (readers and live sources, which yield one
//! [`crate::csi::CsiFrame`] per packet) and the model / analytics stages. Raw CSI phase is
//! dominated by hardware offsets (timing, carrier frequency) and raw amplitude by the
//! receiver's automatic gain control, so nothing downstream should look at raw CSI. The
//! steps, each in its own file, are:
//!
//! - [`phase`]: unwrap along subcarriers and remove the least-squares line (timing offset
//!   slope and carrier offset constant) per antenna link; the conjugate product between
//!   receive antennas, which cancels the offsets the chains of one card share.
//! - [`hampel`]: Hampel outlier filter over time (centred or causal window).
//! - [`amplitude`]: per-packet gain removal, by RSSI where the format reports it, by a
//!   robust z-score across subcarriers otherwise.
//! - [`resample`]: interpolation to a fixed subcarrier grid, so models see one shape
//!   whatever the device.
//! - [`filter`]: Butterworth low/high/band-pass over time, zero-phase offline
//!   (forward-backward) or causal live.
//! - [`spectrogram`]: windowed STFT over time (Doppler spectrogram).
//! - [`motion`]: motion and presence statistics over windows.
//! - [`stream`]: the same steps frame by frame with bounded state ([`stream::Conditioner`]),
//!   which agree with the batch functions on a whole recording.
//!
//! Conventions: time is axis 0 of batch arrays, subcarriers the last axis; a frame is
//! `(n_tx, n_rx, n_sub)`. Inputs are `f32` / `Complex32`; internal accumulations that
//! need it are `f64`. Every function validates its input and returns [`DspError`] rather
//! than panicking. Formulas and parameters: `docs/dsp.md`.

pub mod amplitude;
pub mod error;
pub mod filter;
pub mod hampel;
pub mod motion;
pub mod phase;
pub mod resample;
pub mod spectrogram;
pub mod stream;

pub use error::{DspError, Result};

use ndarray::ArrayViewD;

/// Runs `f` on the elements of `x` in logical (C) order, without a copy when `x` is
/// already contiguous.
pub(crate) fn with_slice<T: Copy, R>(x: &ArrayViewD<'_, T>, f: impl FnOnce(&[T]) -> R) -> R {
    match x.as_slice() {
        Some(s) => f(s),
        None => {
            let v: Vec<T> = x.iter().copied().collect();
            f(&v)
        }
    }
}
