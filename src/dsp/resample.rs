//! Resampling to a fixed subcarrier grid.
//!
//! Devices report 30 (Intel 5300 groups), 52/56 (20 MHz), 64, 114 (40 MHz), 242/256 (80 MHz)
//! subcarriers. A model wants one shape, so every link is interpolated onto `n_out`
//! equally spaced positions spanning the same band: `u_j = x_0 + j (x_{n-1} - x_0)/(n_out-1)`,
//! where `x` are the input subcarrier positions (`0..n` or given indices). Real inputs
//! (amplitudes, sanitized phases) are interpolated linearly (as `numpy.interp`). Complex
//! CSI is interpolated in polar form: the amplitude `|H|` and the unwrapped phase
//! `unwrap(arg H)` separately, then recombined, because a linear blend of two complex
//! values whose phases differ by a large step (a timing offset rotates the phase by up to
//! `pi` per subcarrier) shrinks the magnitude.

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use num_complex::Complex32;

use super::error::{check_finite, check_finite_c, empty, param, shape, Result};
use super::phase::{fast_atan2, unwrap_in_place};
use super::with_slice;

/// Precomputed interpolation weights from one grid to another.
#[derive(Debug, Clone)]
pub struct Resampler {
    n_in: usize,
    /// Per output position: left input index and weight of the right neighbour.
    taps: Vec<(usize, f64)>,
    scratch_a: Vec<f64>,
    scratch_p: Vec<f64>,
}

impl Resampler {
    /// Interpolates `n_in` subcarriers (at `indices`, or `0..n_in`) onto `n_out` evenly spaced ones.
    pub fn new(n_in: usize, n_out: usize, indices: Option<&[f32]>) -> Result<Self> {
        const STEP: &str = "resample_subcarriers";
        if n_in < 2 {
            return Err(shape(
                STEP,
                format!("need at least 2 input subcarriers, got {n_in}"),
            ));
        }
        if n_out < 2 {
            return Err(param(
                STEP,
                "n_out",
                format!("need at least 2 output subcarriers, got {n_out}"),
            ));
        }
        if n_out > 1 << 20 {
            return Err(param(
                STEP,
                "n_out",
                format!("{n_out} is unreasonably large"),
            ));
        }
        let x: Vec<f64> = match indices {
            Some(ix) => {
                if ix.len() != n_in {
                    return Err(param(
                        STEP,
                        "subcarrier_indices",
                        format!("has {} entries for {} subcarriers", ix.len(), n_in),
                    ));
                }
                check_finite(STEP, ix)?;
                if ix.windows(2).any(|w| w[1] <= w[0]) {
                    return Err(param(
                        STEP,
                        "subcarrier_indices",
                        "must be strictly increasing",
                    ));
                }
                ix.iter().map(|&v| v as f64).collect()
            }
            None => (0..n_in).map(|k| k as f64).collect(),
        };
        let (x0, x1) = (x[0], x[n_in - 1]);
        let mut taps = Vec::with_capacity(n_out);
        let mut i = 0usize;
        for j in 0..n_out {
            let u = if j == n_out - 1 {
                x1
            } else {
                x0 + (x1 - x0) * j as f64 / (n_out - 1) as f64
            };
            while i + 2 < n_in && x[i + 1] <= u {
                i += 1;
            }
            let w = ((u - x[i]) / (x[i + 1] - x[i])).clamp(0.0, 1.0);
            taps.push((i, w));
        }
        Ok(Resampler {
            n_in,
            taps,
            scratch_a: vec![0.0; n_in],
            scratch_p: vec![0.0; n_in],
        })
    }

    /// The number of input subcarriers.
    pub(crate) fn n_in(&self) -> usize {
        self.n_in
    }

    /// The number of output subcarriers.
    pub fn n_out(&self) -> usize {
        self.taps.len()
    }

    /// One real link.
    pub fn real(&self, x: &[f32], out: &mut [f32]) {
        for (o, &(i, w)) in out.iter_mut().zip(&self.taps) {
            *o = ((1.0 - w) * x[i] as f64 + w * x[i + 1] as f64) as f32;
        }
    }

    /// One complex link, in polar form.
    pub fn complex(&mut self, x: &[Complex32], out: &mut [Complex32]) {
        for (k, z) in x.iter().enumerate() {
            self.scratch_a[k] = (z.re * z.re + z.im * z.im).sqrt() as f64;
            self.scratch_p[k] = fast_atan2(z.im, z.re) as f64;
        }
        unwrap_in_place(&mut self.scratch_p);
        let (a, p) = (&self.scratch_a, &self.scratch_p);
        for (o, &(i, w)) in out.iter_mut().zip(&self.taps) {
            let m = (1.0 - w) * a[i] + w * a[i + 1];
            let ph = (1.0 - w) * p[i] + w * p[i + 1];
            *o = Complex32::new((m * ph.cos()) as f32, (m * ph.sin()) as f32);
        }
    }
}

fn out_dims(step: &'static str, dims: &[usize], n_out: usize) -> Result<Vec<usize>> {
    if dims.is_empty() {
        return Err(shape(step, "a 0-d array has no subcarrier axis"));
    }
    if dims.contains(&0) {
        return Err(empty(step, format!("shape {dims:?}")));
    }
    let mut o = dims.to_vec();
    let nd = o.len();
    o[nd - 1] = n_out;
    Ok(o)
}

/// Resamples real values (last axis subcarriers) to `n_out` subcarriers.
pub(crate) fn resample_real(
    x: ArrayViewD<'_, f32>,
    n_out: usize,
    indices: Option<&[f32]>,
) -> Result<ArrayD<f32>> {
    const STEP: &str = "resample_subcarriers";
    let dims = x.shape().to_vec();
    let odims = out_dims(STEP, &dims, n_out)?;
    let r = Resampler::new(dims[dims.len() - 1], n_out, indices)?;
    let mut out = vec![0f32; x.len() / r.n_in() * n_out];
    with_slice(&x, |s| {
        check_finite(STEP, s)?;
        for (xi, o) in s.chunks_exact(r.n_in()).zip(out.chunks_exact_mut(n_out)) {
            r.real(xi, o);
        }
        Ok(())
    })?;
    ArrayD::from_shape_vec(IxDyn(&odims), out).map_err(|e| shape(STEP, e.to_string()))
}

/// Resamples complex CSI (last axis subcarriers) to `n_out` subcarriers, in polar form.
#[cfg_attr(not(feature = "python"), allow(dead_code))] // used by the Python binding only
pub(crate) fn resample_complex(
    x: ArrayViewD<'_, Complex32>,
    n_out: usize,
    indices: Option<&[f32]>,
) -> Result<ArrayD<Complex32>> {
    const STEP: &str = "resample_subcarriers";
    let dims = x.shape().to_vec();
    let odims = out_dims(STEP, &dims, n_out)?;
    let mut r = Resampler::new(dims[dims.len() - 1], n_out, indices)?;
    let n_in = r.n_in();
    let mut out = vec![Complex32::new(0.0, 0.0); x.len() / n_in * n_out];
    with_slice(&x, |s| {
        check_finite_c(STEP, s)?;
        for (xi, o) in s.chunks_exact(n_in).zip(out.chunks_exact_mut(n_out)) {
            r.complex(xi, o);
        }
        Ok(())
    })?;
    ArrayD::from_shape_vec(IxDyn(&odims), out).map_err(|e| shape(STEP, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_function_is_reproduced() {
        let x = ndarray::Array2::from_shape_fn((2, 30), |(r, k)| 2.0 * k as f32 + r as f32);
        let y = resample_real(x.view().into_dyn(), 57, None).unwrap();
        assert_eq!(y.shape(), &[2, 57]);
        for r in 0..2 {
            for j in 0..57 {
                let u = 29.0 * j as f32 / 56.0;
                assert!((y[[r, j]] - (2.0 * u + r as f32)).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn complex_keeps_magnitude_under_steep_phase() {
        let x = ndarray::Array1::from_shape_fn(64, |k| Complex32::from_polar(3.0, 2.9 * k as f32));
        let y = resample_complex(x.view().into_dyn(), 100, None).unwrap();
        assert!(y.iter().all(|z| (z.norm() - 3.0).abs() < 1e-3));
    }

    #[test]
    fn rejects_bad_input() {
        let x = ArrayD::<f32>::zeros(IxDyn(&[3, 1]));
        assert!(resample_real(x.view(), 10, None).is_err());
        let x = ArrayD::<f32>::zeros(IxDyn(&[3, 4]));
        assert!(resample_real(x.view(), 1, None).is_err());
        assert!(resample_real(x.view(), 8, Some(&[0.0, 2.0, 1.0, 3.0])).is_err());
    }
}
