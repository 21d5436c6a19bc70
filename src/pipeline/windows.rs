//! Model input windows, built frame by frame from a live stream.
//!
//! The model contract (`docs/model.md`) wants, per window, the last [`WINDOW`] packets
//! of conditioned CSI as `(2, WINDOW, FEATURES)`: channel 0 normalized amplitude, channel
//! 1 sanitized phase, features = the first transmit chain's 3 receive links x 30
//! subcarriers. This is the streaming twin of `wifi_densepose.features`
//! (`windows_from_recording`, which the model was trained on): the same
//! [`Conditioner`] settings, the same feature order, NaN replaced by 0 and infinities by
//! the largest finite value as `numpy.nan_to_num` does. A test checks the two agree
//! value for value on a recording.
use ndarray::s;

use crate::csi::CsiFrame;
use crate::dsp::stream::{Conditioner, ConditionerConfig};
use crate::model::contract::{CHANNELS, FEATURES, WINDOW};

/// Receive antennas the contract's features come from.
pub const LINKS: usize = 3;
/// Subcarriers per link after resampling.
pub const SUBCARRIERS: usize = FEATURES / LINKS;

/// Why a frame could not become features.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowError {
    /// The frame's shape cannot feed the model (e.g. a 1-antenna ESP32).
    Unsupported(String),
    /// Conditioning refused the frame (non-finite CSI...): it is skipped.
    Frame(String),
}

impl std::fmt::Display for WindowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WindowError::Unsupported(m) | WindowError::Frame(m) => f.write_str(m),
        }
    }
}

/// The conditioning the bundled model was trained with (`features.condition_recording`).
pub fn model_conditioning() -> ConditionerConfig {
    ConditionerConfig {
        n_subcarriers: Some(SUBCARRIERS),
        motion_window: 0,
        ..ConditionerConfig::default()
    }
}

/// Conditions frames and keeps the last [`WINDOW`] of them as model features.
pub struct WindowBuilder {
    conditioner: Conditioner,
    shape: Option<[usize; 3]>,
    /// Frames in a row of another shape than `shape` (a stray frame, or a new device).
    other: Option<([usize; 3], usize)>,
    /// `WINDOW` rows of `CHANNELS * FEATURES` values (amplitude then phase), a ring.
    ring: Vec<f32>,
    next: usize,
    filled: usize,
}

const ROW: usize = CHANNELS * FEATURES;

impl Default for WindowBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl WindowBuilder {
    /// An empty window, conditioning as the bundled model was trained
    /// ([`model_conditioning`]).
    pub fn new() -> Self {
        WindowBuilder {
            // The configuration is a constant that validates (a unit test checks it).
            conditioner: Conditioner::new(model_conditioning())
                .unwrap_or_else(|e| unreachable!("model conditioning is valid: {e}")),
            shape: None,
            other: None,
            ring: vec![0.0; WINDOW * ROW],
            next: 0,
            filled: 0,
        }
    }

    /// Conditions one frame; returns whether a full window is ready. A frame of another
    /// shape than the last (a different device) starts the window over.
    pub fn push(&mut self, frame: &CsiFrame) -> Result<bool, WindowError> {
        let dims = [frame.n_tx(), frame.n_rx(), frame.n_subcarriers()];
        if dims[1] != LINKS || dims[0] == 0 || dims[2] < 2 {
            return Err(WindowError::Unsupported(format!(
                "the model needs CSI from {LINKS} receive antennas (n_tx, {LINKS}, n_sub >= 2); \
                 this source sends frames of shape {dims:?}"
            )));
        }
        if self.shape.is_some() && self.shape != Some(dims) {
            // A stray frame of another shape (Intel 5300 logs carry a 3-antenna or
            // 1-chain frame now and then) is skipped; only a whole window of the new
            // shape in a row means the device changed, and starts the window over.
            let run = match self.other {
                Some((shape, n)) if shape == dims => n + 1,
                _ => 1,
            };
            if run < WINDOW {
                self.other = Some((dims, run));
                return Err(WindowError::Frame(format!(
                    "a frame of shape {dims:?} among frames of shape {:?} was skipped",
                    self.shape.unwrap_or_default()
                )));
            }
        }
        self.other = None;
        if self.shape != Some(dims) {
            self.conditioner.reset();
            self.filled = 0;
            self.next = 0;
            self.shape = Some(dims);
        }
        // The first transmit chain only, as in training.
        let first_tx = frame.csi.slice(s![0..1, .., ..]);
        // Training conditioned without RSSI (robust z-score amplitude): so does this.
        let out = self
            .conditioner
            .push(first_tx, None)
            .map_err(|e| WindowError::Frame(e.to_string()))?;
        let row = &mut self.ring[self.next * ROW..(self.next + 1) * ROW];
        let (amp, phase) = row.split_at_mut(FEATURES);
        for (dst, src) in amp.iter_mut().zip(out.amplitude.iter()) {
            *dst = nan_to_num(*src);
        }
        for (dst, src) in phase.iter_mut().zip(out.phase.iter()) {
            *dst = nan_to_num(*src);
        }
        self.next = (self.next + 1) % WINDOW;
        self.filled = (self.filled + 1).min(WINDOW);
        Ok(self.ready())
    }

    /// Whether [`WINDOW`] frames are in.
    pub fn ready(&self) -> bool {
        self.filled == WINDOW
    }

    /// Appends the current window, `(CHANNELS, WINDOW, FEATURES)` row-major, oldest
    /// packet first, to `out`.
    pub fn write_window(&self, out: &mut Vec<f32>) {
        out.reserve(WINDOW * ROW);
        for channel in 0..CHANNELS {
            for i in 0..WINDOW {
                let slot = (self.next + i) % WINDOW; // `next` is the oldest once full
                let row = &self.ring[slot * ROW..(slot + 1) * ROW];
                out.extend_from_slice(&row[channel * FEATURES..(channel + 1) * FEATURES]);
            }
        }
    }
}

/// `numpy.nan_to_num` for float32: NaN to 0, infinities to the largest finite values.
fn nan_to_num(x: f32) -> f32 {
    if x.is_nan() {
        0.0
    } else if x == f32::INFINITY {
        f32::MAX
    } else if x == f32::NEG_INFINITY {
        f32::MIN
    } else {
        x
    }
}

/// Every window of a recording `(n, n_tx, 3, n_sub)`, hop 1: `(n - WINDOW + 1)` windows
/// of `(CHANNELS, WINDOW, FEATURES)`, flat. For tests and for comparing with the Python
/// feature code.
pub fn recording_windows(frames: &[CsiFrame]) -> Result<Vec<f32>, WindowError> {
    let mut builder = WindowBuilder::new();
    let mut out = Vec::new();
    for frame in frames {
        if builder.push(frame)? {
            builder.write_window(&mut out);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csi::CsiFormat;
    use ndarray::{Array3, Array4, Axis};
    use num_complex::Complex32;

    fn recording(n: usize, n_tx: usize, n_sub: usize) -> Vec<CsiFrame> {
        (0..n)
            .map(|t| {
                let csi = Array3::from_shape_fn((n_tx, LINKS, n_sub), |(a, b, k)| {
                    let x = (t as f32 * 0.07 + a as f32 + 2.0 * b as f32 + 0.3 * k as f32).sin();
                    Complex32::new(1.5 + x, 0.4 * k as f32 - 0.1 * t as f32)
                });
                CsiFrame::from_csi(t as f64 * 0.01, csi, CsiFormat::Simulated)
            })
            .collect()
    }

    #[test]
    fn conditioning_is_valid() {
        assert!(model_conditioning().validate().is_ok());
    }

    #[test]
    fn windows_match_the_batch_conditioning() {
        let frames = recording(40, 2, 56);
        let windows = recording_windows(&frames).unwrap();
        assert_eq!(
            windows.len(),
            (40 - WINDOW + 1) * CHANNELS * WINDOW * FEATURES
        );
        // Batch twin: condition the first tx of the whole recording, then cut windows.
        let stacked =
            Array4::from_shape_fn((40, 1, LINKS, 56), |(t, _, b, k)| frames[t].csi[[0, b, k]]);
        let (amp, ph, _) =
            crate::dsp::stream::condition(stacked.view(), None, &model_conditioning()).unwrap();
        let per = CHANNELS * WINDOW * FEATURES;
        for (w, window) in windows.chunks_exact(per).enumerate() {
            for i in 0..WINDOW {
                let t = w + i;
                let a: Vec<f32> = amp.index_axis(Axis(0), t).iter().copied().collect();
                let p: Vec<f32> = ph.index_axis(Axis(0), t).iter().copied().collect();
                let got_a = &window[i * FEATURES..(i + 1) * FEATURES];
                let got_p = &window[(WINDOW + i) * FEATURES..(WINDOW + i + 1) * FEATURES];
                for (x, y) in got_a.iter().zip(&a).chain(got_p.iter().zip(&p)) {
                    assert!((x - nan_to_num(*y)).abs() <= 1e-5, "window {w} row {i}");
                }
            }
        }
    }

    #[test]
    fn wrong_antenna_count_is_refused_and_shape_change_restarts() {
        let mut b = WindowBuilder::new();
        let one = CsiFrame::from_csi(
            0.0,
            Array3::from_elem((1, 1, 64), Complex32::new(1.0, 0.0)),
            CsiFormat::Simulated,
        );
        assert!(
            matches!(b.push(&one), Err(WindowError::Unsupported(m)) if m.contains("(1, 1, 64)") || m.contains("[1, 1, 64]"))
        );
        for f in recording(WINDOW, 1, 30) {
            b.push(&f).unwrap();
        }
        assert!(b.ready());
        // One stray frame of another shape is skipped; the window stays.
        assert!(matches!(
            b.push(&recording(1, 2, 30)[0]),
            Err(WindowError::Frame(_))
        ));
        assert!(b.ready());
        b.push(&recording(1, 1, 30)[0]).unwrap();
        assert!(b.ready());
        // A whole window of a new shape is a new device: the window starts over.
        let new = recording(WINDOW, 1, 56);
        for f in &new[..WINDOW - 1] {
            assert!(b.push(f).is_err());
        }
        assert!(!b.push(&new[WINDOW - 1]).unwrap());
        assert!(!b.ready(), "a new device shape starts a new window");
    }

    #[test]
    fn non_finite_frames_are_skipped_with_an_error() {
        let mut b = WindowBuilder::new();
        let mut f = recording(1, 1, 30).remove(0);
        f.csi[[0, 0, 3]] = Complex32::new(f32::NAN, 0.0);
        assert!(matches!(b.push(&f), Err(WindowError::Frame(_))));
        assert!(!b.ready());
    }
}
