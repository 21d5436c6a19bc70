//! Motion and presence statistics over windows of conditioned features.
//!
//! Both take features `x_{t,f}` (time on axis 0; `f` every other axis, e.g. the normalized
//! amplitude of each subcarrier of each link) and windows `W_j` of `window` frames starting
//! every `hop` frames.
//!
//! - Motion: the share of the window's feature energy that varies over time,
//!   `M_j = sum_f sum_{t in W_j} (x_{t,f} - mean_{W_j} x_f)^2 / sum_f sum_{t in W_j} x_{t,f}^2`,
//!   in `[0, 1]` (0 for an all-zero window). A static scene leaves only noise in the
//!   numerator; a moving body changes the multipath and so every subcarrier's amplitude.
//!   It is invariant to a global gain, so the features must already be per-frame
//!   normalized (AGC removed).
//! - Presence: how far the window's mean profile is from an empty-room baseline `b_f`,
//!   `P_j = sum_f (mean_{W_j} x_f - b_f)^2 / sum_f b_f^2`. A still person changes the static
//!   multipath (and so the mean) without moving it.

use ndarray::ArrayViewD;

use super::error::{check_finite, empty, param, shape, Result};
use super::with_slice;

/// Largest accepted streaming window, in frames (bounds the state of [`MotionStream`]).
pub(crate) const MAX_WINDOW: usize = 1 << 16;

fn check_window(step: &'static str, n: usize, window: usize, hop: usize) -> Result<usize> {
    if window < 2 {
        return Err(param(
            step,
            "window",
            format!("must be at least 2 frames, got {window}"),
        ));
    }
    if hop == 0 {
        return Err(param(step, "hop", "must be at least 1"));
    }
    if n < window {
        return Err(shape(
            step,
            format!("{n} frames along time is fewer than one window of {window}"),
        ));
    }
    Ok((n - window) / hop + 1)
}

fn dims_ok(step: &'static str, dims: &[usize]) -> Result<()> {
    if dims.is_empty() {
        return Err(shape(step, "a 0-d array has no time axis"));
    }
    if dims.contains(&0) {
        return Err(empty(step, format!("shape {dims:?}")));
    }
    Ok(())
}

/// The motion statistic of one window given per-feature sums.
fn motion_from(x: &[f32], n_feat: usize, rows: std::ops::Range<usize>) -> f64 {
    let w = rows.len() as f64;
    let mut num = 0.0;
    let mut den = 0.0;
    for f in 0..n_feat {
        let mut s1 = 0.0;
        for t in rows.clone() {
            s1 += x[t * n_feat + f] as f64;
        }
        let m = s1 / w;
        for t in rows.clone() {
            let v = x[t * n_feat + f] as f64;
            num += (v - m) * (v - m);
            den += v * v;
        }
    }
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

/// Motion statistic `M_j` of every window (see the module docs).
pub(crate) fn motion_statistic(
    x: ArrayViewD<'_, f32>,
    window: usize,
    hop: usize,
) -> Result<Vec<f64>> {
    const STEP: &str = "motion_statistic";
    let dims = x.shape().to_vec();
    dims_ok(STEP, &dims)?;
    let n_win = check_window(STEP, dims[0], window, hop)?;
    let nf = x.len() / dims[0];
    with_slice(&x, |s| {
        check_finite(STEP, s)?;
        Ok((0..n_win)
            .map(|j| motion_from(s, nf, j * hop..j * hop + window))
            .collect())
    })
}

/// Presence statistic `P_j` of every window against `baseline` (shape `x.shape()[1..]`).
#[cfg_attr(not(feature = "python"), allow(dead_code))] // used by the Python binding only
pub(crate) fn presence_statistic(
    x: ArrayViewD<'_, f32>,
    baseline: ArrayViewD<'_, f32>,
    window: usize,
    hop: usize,
) -> Result<Vec<f64>> {
    const STEP: &str = "presence_statistic";
    let dims = x.shape().to_vec();
    dims_ok(STEP, &dims)?;
    if baseline.shape() != &dims[1..] {
        return Err(shape(
            STEP,
            format!(
                "baseline shape {:?} must be the frame shape {:?}",
                baseline.shape(),
                &dims[1..]
            ),
        ));
    }
    let n_win = check_window(STEP, dims[0], window, hop)?;
    let nf = x.len() / dims[0];
    let b: Vec<f64> = with_slice(&baseline, |b| {
        check_finite(STEP, b)?;
        Ok(b.iter().map(|&v| v as f64).collect::<Vec<f64>>())
    })?;
    let bb: f64 = b.iter().map(|v| v * v).sum();
    if bb <= 0.0 {
        return Err(param(STEP, "baseline", "is all zeros"));
    }
    with_slice(&x, |s| {
        check_finite(STEP, s)?;
        Ok((0..n_win)
            .map(|j| {
                let mut d = 0.0;
                for (f, bf) in b.iter().enumerate() {
                    let m = (j * hop..j * hop + window)
                        .map(|t| s[t * nf + f] as f64)
                        .sum::<f64>()
                        / window as f64;
                    d += (m - bf) * (m - bf);
                }
                d / bb
            })
            .collect())
    })
}

/// The motion statistic frame by frame over the last `window` frames (a sliding window,
/// hop 1): a ring of `window` frames and per-feature running sums, re-summed exactly every
/// `window` frames so rounding cannot drift.
#[derive(Debug, Clone)]
pub struct MotionStream {
    window: usize,
    n_features: usize,
    ring: Vec<f32>,
    s1: Vec<f64>,
    s2: Vec<f64>,
    received: usize,
}

impl MotionStream {
    /// A motion statistic over frames of `n_features` values and `window` frames (`2..=MAX_WINDOW`).
    pub fn new(n_features: usize, window: usize) -> Result<Self> {
        if !(2..=MAX_WINDOW).contains(&window) {
            return Err(param(
                "MotionStream",
                "window",
                format!("must be 2..={MAX_WINDOW} frames, got {window}"),
            ));
        }
        if n_features == 0 {
            return Err(empty("MotionStream", "zero features per frame"));
        }
        Ok(MotionStream {
            window,
            n_features,
            ring: vec![0.0; window * n_features],
            s1: vec![0.0; n_features],
            s2: vec![0.0; n_features],
            received: 0,
        })
    }

    /// Forgets the past: the next frame starts a new window.
    pub fn reset(&mut self) {
        self.received = 0;
        self.s1.iter_mut().for_each(|v| *v = 0.0);
        self.s2.iter_mut().for_each(|v| *v = 0.0);
    }

    /// Adds a frame; once `window` frames are in, returns `M` of the last `window`.
    pub fn push(&mut self, frame: &[f32]) -> Result<Option<f64>> {
        let nf = self.n_features;
        if frame.len() != nf {
            return Err(shape(
                "MotionStream",
                format!("frame has {} values, expected {nf}", frame.len()),
            ));
        }
        check_finite("MotionStream", frame)?;
        let slot = (self.received % self.window) * nf;
        let full = self.received >= self.window;
        for (f, &x) in frame.iter().enumerate() {
            let new = x as f64;
            if full {
                let old = self.ring[slot + f] as f64;
                self.s1[f] -= old;
                self.s2[f] -= old * old;
            }
            self.s1[f] += new;
            self.s2[f] += new * new;
        }
        self.ring[slot..slot + nf].copy_from_slice(frame);
        self.received += 1;
        if self.received.is_multiple_of(self.window) {
            // exact re-sum of the ring
            self.s1.iter_mut().for_each(|v| *v = 0.0);
            self.s2.iter_mut().for_each(|v| *v = 0.0);
            for row in self.ring.chunks_exact(nf) {
                for ((&x, s1), s2) in row.iter().zip(self.s1.iter_mut()).zip(self.s2.iter_mut()) {
                    let v = x as f64;
                    *s1 += v;
                    *s2 += v * v;
                }
            }
        }
        if self.received < self.window {
            return Ok(None);
        }
        let w = self.window as f64;
        let mut num = 0.0;
        let mut den = 0.0;
        for f in 0..nf {
            num += (self.s2[f] - self.s1[f] * self.s1[f] / w).max(0.0);
            den += self.s2[f];
        }
        Ok(Some(if den > 0.0 { num / den } else { 0.0 }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn static_is_zero_and_moving_is_not() {
        let still = Array2::from_shape_fn((40, 5), |(_, f)| 1.0 + f as f32);
        let m = motion_statistic(still.view().into_dyn(), 10, 5).unwrap();
        assert_eq!(m.len(), 7);
        assert!(m.iter().all(|v| v.abs() < 1e-12));
        // x = 1 + sin: per-feature variance 1/2 (full periods), energy 1 + 1/2.
        let moving = Array2::from_shape_fn((40, 5), |(t, _)| {
            1.0 + (2.0 * std::f32::consts::PI * t as f32 / 10.0).sin()
        });
        let m = motion_statistic(moving.view().into_dyn(), 10, 10).unwrap();
        assert!(m.iter().all(|v| (v - 1.0 / 3.0).abs() < 1e-6), "{m:?}");
    }

    #[test]
    fn stream_matches_batch() {
        let x = Array2::from_shape_fn((100, 3), |(t, f)| {
            2.0 + ((t * 31 + f * 7) % 17) as f32 * 0.1
        });
        let want = motion_statistic(x.view().into_dyn(), 12, 1).unwrap();
        let mut s = MotionStream::new(3, 12).unwrap();
        let got: Vec<f64> = x
            .rows()
            .into_iter()
            .filter_map(|r| s.push(&r.to_vec()).unwrap())
            .collect();
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-9 * b.abs().max(1e-3));
        }
    }

    #[test]
    fn presence_against_baseline() {
        let b = ndarray::Array1::from_elem(4, 2.0f32);
        let x = Array2::from_shape_fn((20, 4), |(t, _)| if t < 10 { 2.0 } else { 3.0 });
        let p = presence_statistic(x.view().into_dyn(), b.view().into_dyn(), 10, 10).unwrap();
        assert!(p[0].abs() < 1e-12 && (p[1] - 0.25).abs() < 1e-12);
        let bad = ndarray::Array1::from_elem(3, 2.0f32);
        assert!(presence_statistic(x.view().into_dyn(), bad.view().into_dyn(), 10, 10).is_err());
    }
}
