//! Phase sanitization: unwrap along subcarriers, remove the least-squares line per link,
//! and the conjugate product between receive antennas.
//!
//! The measured phase of subcarrier `k` on one link is
//! `phi_k = theta_k + 2*pi*m_k*dt/N + beta + noise`, where `m_k` is the subcarrier index,
//! `dt` the timing (sampling/packet-detection) offset and `beta` the carrier phase offset.
//! After unwrapping, fitting `a*m_k + b` by least squares and subtracting it removes the
//! slope (timing) and constant (carrier) terms; what is left is the part of the channel
//! phase that is not linear in frequency.

use std::f64::consts::PI;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use num_complex::Complex32;

use super::error::{check_finite, check_finite_c, empty, param, shape, Result};
use super::with_slice;

/// Unwraps a phase sequence in place, exactly as `numpy.unwrap` (period `2*pi`,
/// discontinuity `pi`): each step larger than `pi` in magnitude is shifted by a multiple
/// of `2*pi` into `[-pi, pi]`.
pub(crate) fn unwrap_in_place(phase: &mut [f64]) {
    const TWO_PI: f64 = 2.0 * PI;
    let mut prev_raw = match phase.first() {
        Some(&p) => p,
        None => return,
    };
    // The correction is a whole number of turns while every step is below 2pi (always, for
    // phases wrapped to [-pi, pi]); an integer running count keeps the loop-carried
    // dependency to one integer add. Larger steps take numpy's general formula.
    let mut turns: i64 = 0;
    let mut extra = 0.0;
    for p in phase.iter_mut().skip(1) {
        let raw = *p;
        let dd = raw - prev_raw;
        prev_raw = raw;
        if dd.abs() < TWO_PI {
            // numpy: mod(dd + pi, 2pi) - pi is dd - 2pi above pi, dd + 2pi below -pi
            turns += (dd < -PI) as i64 - (dd > PI) as i64;
        } else {
            let mut ddmod = (dd + PI).rem_euclid(TWO_PI) - PI;
            if ddmod == -PI && dd > 0.0 {
                ddmod = PI;
            }
            extra += ddmod - dd;
        }
        *p = raw + (turns as f64 * TWO_PI + extra);
    }
}

/// [`unwrap_in_place`] of `f32` phases (any values) into `out`, with the same result.
///
/// Steps between two `f32` values are exact in `f64`, so the decisions of the scalar loop
/// can be taken for all steps at once (a loop that vectorizes); only the running count
/// of turns is sequential. A link with a step of `2*pi` or more (never, for phases
/// wrapped to `[-pi, pi]`) takes [`unwrap_in_place`] itself.
#[inline(always)]
pub(crate) fn unwrap_wrapped(wrapped: &[f32], out: &mut [f64]) {
    const TWO_PI: f64 = 2.0 * PI;
    const MAX: usize = 256;
    let n = wrapped.len().min(out.len());
    if n == 0 {
        return;
    }
    if n > MAX {
        for (o, &w) in out.iter_mut().zip(wrapped) {
            *o = w as f64;
        }
        return unwrap_in_place(&mut out[..n]);
    }
    let mut steps = [0i32; MAX];
    let mut large = false;
    for (st, w) in steps[1..n].iter_mut().zip(wrapped.windows(2)) {
        let dd = w[1] as f64 - w[0] as f64;
        large |= dd.abs() >= TWO_PI;
        *st = (dd < -PI) as i32 - (dd > PI) as i32;
    }
    if large {
        for (o, &w) in out.iter_mut().zip(wrapped) {
            *o = w as f64;
        }
        return unwrap_in_place(&mut out[..n]);
    }
    // The first value stays as it is; then raw + turns * 2pi, as unwrap_in_place adds
    // (turns * 2pi + 0.0).
    out[0] = wrapped[0] as f64;
    let mut turns = 0i32;
    for ((o, &w), &st) in out[1..n].iter_mut().zip(&wrapped[1..n]).zip(&steps[1..n]) {
        turns += st;
        *o = w as f64 + turns as f64 * TWO_PI;
    }
}

/// Coefficients of `atan(t) ~ t * P(t^2)` on `[0, 1]` (degree-7 `P`, fitted to minimise the
/// maximum error; 3.7e-8 rad exactly, 1.3e-7 rad evaluated in `f32`, about one `f32` ulp
/// of `pi`).
const ATAN_P: [f32; 8] = [
    0.999_999_34,
    -0.333_298_6,
    0.199_465_66,
    -0.139_086_29,
    0.096_421_95,
    -0.055_912_3,
    0.021_862_936,
    -0.004_054_561,
];

/// `atan2(y, x)` without a libm call (branch-free, so loops of it vectorize). Within 5e-7
/// rad (two `f32` ulps of `pi`) of the exact value for finite inputs; `atan2(0, 0) = 0`.
#[inline(always)]
pub(crate) fn fast_atan2(y: f32, x: f32) -> f32 {
    let (ax, ay) = (x.abs(), y.abs());
    let mx = ax.max(ay);
    let mn = ax.min(ay);
    let t = if mx > 0.0 { mn / mx } else { 0.0 };
    let s = t * t;
    // Estrin's scheme: the same polynomial in three levels of multiply-adds instead of
    // seven (Horner), so that the latency of one evaluation stays short.
    let c = &ATAN_P;
    let s2 = s * s;
    let s4 = s2 * s2;
    let p01 = c[0] + c[1] * s;
    let p23 = c[2] + c[3] * s;
    let p45 = c[4] + c[5] * s;
    let p67 = c[6] + c[7] * s;
    let p = (p01 + p23 * s2) + (p45 + p67 * s2) * s4;
    let mut r = t * p;
    r = if ay > ax {
        std::f32::consts::FRAC_PI_2 - r
    } else {
        r
    };
    r = if x < 0.0 { std::f32::consts::PI - r } else { r };
    if y.is_sign_negative() {
        -r
    } else {
        r
    }
}

/// Amplitudes and (wrapped) phases of a slice, in a vectorizable loop.
#[inline(always)]
pub(crate) fn polar(h: &[Complex32], amp: &mut [f32], phase: &mut [f32]) {
    for ((z, a), p) in h.iter().zip(amp.iter_mut()).zip(phase.iter_mut()) {
        let (re, im) = (z.re, z.im);
        *a = (re * re + im * im).sqrt();
        *p = fast_atan2(im, re);
    }
}

/// Least-squares line removal over one fixed subcarrier grid. Built once per grid and
/// reused for every link and frame.
#[derive(Debug, Clone)]
pub struct PhaseSanitizer {
    /// Subcarrier positions minus their mean.
    centered: Vec<f64>,
    /// `sum(centered^2)`; zero when there is a single subcarrier.
    sxx: f64,
    /// Scratch for one link's unwrapped phase.
    scratch: Vec<f64>,
}

impl PhaseSanitizer {
    /// `n_sub` subcarriers at positions `indices` (strictly increasing, e.g. the Intel 5300
    /// grouping -28, -26, ..., 28), or `0..n_sub` when `None`.
    pub fn new(n_sub: usize, indices: Option<&[f32]>) -> Result<Self> {
        const STEP: &str = "sanitize";
        if n_sub == 0 {
            return Err(empty(STEP, "no subcarriers"));
        }
        let pos: Vec<f64> = match indices {
            Some(ix) => {
                if ix.len() != n_sub {
                    return Err(param(
                        STEP,
                        "subcarrier_indices",
                        format!("has {} entries for {} subcarriers", ix.len(), n_sub),
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
            None => (0..n_sub).map(|k| k as f64).collect(),
        };
        let mean = pos.iter().sum::<f64>() / n_sub as f64;
        let centered: Vec<f64> = pos.iter().map(|p| p - mean).collect();
        let sxx = centered.iter().map(|c| c * c).sum();
        Ok(PhaseSanitizer {
            centered,
            sxx,
            scratch: vec![0.0; n_sub],
        })
    }

    /// The number of subcarriers a frame must have.
    pub fn n_sub(&self) -> usize {
        self.centered.len()
    }

    /// One link: amplitude `|H_k|` and sanitized phase into the output slices (all of
    /// length `n_sub`). Returns the fitted `(slope, mean phase)` in centred coordinates.
    pub fn sanitize_link(
        &mut self,
        h: &[Complex32],
        amp: &mut [f32],
        phase: &mut [f32],
    ) -> (f64, f64) {
        let n = self.centered.len();
        polar(&h[..n], &mut amp[..n], &mut phase[..n]);
        self.detrend(&mut phase[..n])
    }

    /// Unwraps one link's wrapped phase in place and removes its least-squares line;
    /// returns `(slope, mean)`.
    #[inline(always)]
    fn detrend(&mut self, phase: &mut [f32]) -> (f64, f64) {
        let n = self.centered.len();
        let s = &mut self.scratch[..n];
        let centered = &self.centered[..n];
        unwrap_wrapped(&phase[..n], s);
        // The least-squares sums in four interleaved lanes (numpy sums pairwise too, not
        // in one running sum), so that the loop vectorizes.
        let mut sy = [0.0f64; 4];
        let mut sxy = [0.0f64; 4];
        let (s4, s_rest) = s.as_chunks::<4>();
        let (c4, c_rest) = centered.as_chunks::<4>();
        for (v, c) in s4.iter().zip(c4) {
            for l in 0..4 {
                sy[l] += v[l];
                sxy[l] += c[l] * v[l];
            }
        }
        for (l, (&v, &c)) in s_rest.iter().zip(c_rest).enumerate() {
            sy[l] += v;
            sxy[l] += c * v;
        }
        let sy = (sy[0] + sy[1]) + (sy[2] + sy[3]);
        let sxy = (sxy[0] + sxy[1]) + (sxy[2] + sxy[3]);
        let mean = sy / n as f64;
        let slope = if self.sxx > 0.0 { sxy / self.sxx } else { 0.0 };
        for ((p, &v), &c) in phase[..n].iter_mut().zip(s.iter()).zip(centered) {
            *p = (v - mean - slope * c) as f32;
        }
        (slope, mean)
    }

    /// Every link of a contiguous block of links (`h.len()` a multiple of `n_sub`).
    /// Amplitudes and wrapped phases are computed for the whole block in one loop (the
    /// wrapped phases in `phase` itself), then each link is unwrapped and detrended.
    #[inline(always)]
    pub(crate) fn sanitize_links(&mut self, h: &[Complex32], amp: &mut [f32], phase: &mut [f32]) {
        let n = self.n_sub();
        let total = h.len() / n * n;
        polar(&h[..total], &mut amp[..total], &mut phase[..total]);
        for pl in phase[..total].chunks_exact_mut(n) {
            self.detrend(pl);
        }
    }
}

/// Amplitude and sanitized phase of CSI whose last axis is subcarriers: a frame
/// `(n_tx, n_rx, n_sub)`, a batch `(n, n_tx, n_rx, n_sub)`, or any other leading shape.
/// Both outputs have the input's shape.
pub fn sanitize(
    csi: ArrayViewD<'_, Complex32>,
    indices: Option<&[f32]>,
) -> Result<(ArrayD<f32>, ArrayD<f32>)> {
    const STEP: &str = "sanitize";
    let dims = csi.shape().to_vec();
    if dims.is_empty() {
        return Err(shape(STEP, "a 0-d array has no subcarrier axis"));
    }
    if csi.is_empty() {
        return Err(empty(STEP, format!("shape {dims:?}")));
    }
    let n_sub = dims[dims.len() - 1];
    let mut san = PhaseSanitizer::new(n_sub, indices)?;
    let total = csi.len();
    let mut amp = vec![0f32; total];
    let mut ph = vec![0f32; total];
    with_slice(&csi, |h| {
        check_finite_c(STEP, h)?;
        san.sanitize_links(h, &mut amp, &mut ph);
        Ok(())
    })?;
    let a = ArrayD::from_shape_vec(IxDyn(&dims), amp).map_err(|e| shape(STEP, e.to_string()))?;
    let p = ArrayD::from_shape_vec(IxDyn(&dims), ph).map_err(|e| shape(STEP, e.to_string()))?;
    Ok((a, p))
}

/// Receive-antenna pairs `(i, j)`, `i < j`, in the order [`conjugate_product`] emits them
/// (the order of Python's `itertools.combinations(range(n_rx), 2)`).
/// The most receive antennas [`conjugate_product`] pairs (its output holds
/// `n_rx (n_rx - 1) / 2` pairs for each input's `n_rx` rows).
pub(crate) const MAX_PAIRED_ANTENNAS: usize = 64;

#[cfg_attr(not(feature = "python"), allow(dead_code))] // used by the Python binding only
pub(crate) fn antenna_pairs(n_rx: usize) -> Vec<(usize, usize)> {
    let mut pairs = Vec::with_capacity(n_rx * n_rx.saturating_sub(1) / 2);
    for i in 0..n_rx {
        for j in i + 1..n_rx {
            pairs.push((i, j));
        }
    }
    pairs
}

/// Conjugate product `H_i * conj(H_j)` between receive antennas `i < j` of the same
/// transmit antenna and packet. The axes are `(..., n_rx, n_sub)`; the output is
/// `(..., n_pairs, n_sub)` with pairs ordered as [`antenna_pairs`]. Timing, carrier and
/// sampling offsets that all receive chains of one card share multiply every `H_i` by the
/// same unit phasor, which the product cancels.
#[cfg_attr(not(feature = "python"), allow(dead_code))] // used by the Python binding only
pub(crate) fn conjugate_product(csi: ArrayViewD<'_, Complex32>) -> Result<ArrayD<Complex32>> {
    const STEP: &str = "conjugate_product";
    let dims = csi.shape().to_vec();
    if dims.len() < 2 {
        return Err(shape(
            STEP,
            format!("need (..., n_rx, n_sub), got {} dimension(s)", dims.len()),
        ));
    }
    if csi.is_empty() {
        return Err(empty(STEP, format!("shape {dims:?}")));
    }
    let n_sub = dims[dims.len() - 1];
    let n_rx = dims[dims.len() - 2];
    if n_rx < 2 {
        return Err(shape(
            STEP,
            format!("need at least 2 receive antennas (axis -2), got {n_rx}"),
        ));
    }
    // Pairs grow as the square of the antennas: 100,000 "antennas" in a 3 MB input asked
    // for 80 GB and aborted the process. No card has more than a few dozen.
    if n_rx > MAX_PAIRED_ANTENNAS {
        return Err(shape(
            STEP,
            format!("{n_rx} receive antennas (axis -2): at most {MAX_PAIRED_ANTENNAS} are paired"),
        ));
    }
    let pairs = antenna_pairs(n_rx);
    let block = n_rx * n_sub;
    let n_blocks = csi.len() / block;
    let mut out = Vec::with_capacity(n_blocks * pairs.len() * n_sub);
    with_slice(&csi, |h| {
        check_finite_c(STEP, h)?;
        for b in h.chunks_exact(block) {
            for &(i, j) in &pairs {
                let hi = &b[i * n_sub..(i + 1) * n_sub];
                let hj = &b[j * n_sub..(j + 1) * n_sub];
                out.extend(hi.iter().zip(hj).map(|(a, c)| a * c.conj()));
            }
        }
        Ok(())
    })?;
    let mut odims = dims.clone();
    let nd = odims.len();
    odims[nd - 2] = pairs.len();
    ArrayD::from_shape_vec(IxDyn(&odims), out).map_err(|e| shape(STEP, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn fast_atan2_matches_std() {
        let mut worst = 0f32;
        for i in 0..20_000 {
            let a = i as f32 * 0.000_314_159_27 * 1.000_1 - std::f32::consts::PI;
            for r in [1e-3f32, 1.0, 37.0, 3e4] {
                let (y, x) = (r * a.sin(), r * a.cos());
                worst =
                    worst.max((fast_atan2(y, x) as f64 - (y as f64).atan2(x as f64)).abs() as f32);
            }
        }
        assert!(worst < 5e-7, "max error {worst}");
        assert_eq!(fast_atan2(0.0, 0.0), 0.0);
        assert_eq!(fast_atan2(0.0, -1.0), std::f32::consts::PI);
        assert_eq!(fast_atan2(-1.0, 0.0), -std::f32::consts::FRAC_PI_2);
    }

    #[test]
    fn unwrap_fast_path_matches_numpy_formula() {
        // the general numpy formula, step by step
        fn reference(p: &[f64]) -> Vec<f64> {
            let mut out = p.to_vec();
            let mut c = 0.0;
            for i in 1..p.len() {
                let dd = p[i] - p[i - 1];
                let mut m = (dd + PI).rem_euclid(2.0 * PI) - PI;
                if m == -PI && dd > 0.0 {
                    m = PI;
                }
                if dd.abs() >= PI {
                    c += m - dd;
                }
                out[i] = p[i] + c;
            }
            out
        }
        let p: Vec<f64> = (0..500)
            .map(|i| {
                ((i * 7919 % 1000) as f64 / 1000.0 * 2.0 - 1.0)
                    * PI
                    * if i % 50 == 0 { 3.0 } else { 1.0 }
            })
            .collect();
        let mut q = p.clone();
        unwrap_in_place(&mut q);
        for (a, b) in q.iter().zip(reference(&p)) {
            assert!((a - b).abs() < 1e-12);
        }
        let mut edge = vec![0.0, PI, 0.0, -PI, 0.0];
        unwrap_in_place(&mut edge);
        assert_eq!(edge, reference(&[0.0, PI, 0.0, -PI, 0.0]));
    }

    #[test]
    fn unwrap_matches_definition() {
        let mut p = vec![0.0, 3.0, -3.0, 0.5, 3.1, -3.1];
        unwrap_in_place(&mut p);
        for w in p.windows(2) {
            assert!((w[1] - w[0]).abs() <= PI + 1e-12, "{p:?}");
        }
        assert!((p[2] - (-3.0 + 2.0 * PI)).abs() < 1e-12);
    }

    #[test]
    fn removes_known_slope_and_offset() {
        // phase = 0.4*k - 1.3 + small non-linear part; wraps many times.
        let n = 30;
        let nl: Vec<f64> = (0..n).map(|k| 0.05 * ((k as f64) * 0.7).sin()).collect();
        let csi = Array3::from_shape_fn((2, 3, n), |(t, r, k)| {
            let ph = (0.4 + 0.1 * t as f64) * k as f64 - 1.3 + r as f64 + nl[k];
            Complex32::from_polar(2.0, ph as f32)
        });
        let (amp, ph) = sanitize(csi.view().into_dyn(), None).unwrap();
        // residual must equal the de-meaned, de-trended non-linear part
        let mean = nl.iter().sum::<f64>() / n as f64;
        let xm = (n as f64 - 1.0) / 2.0;
        let sxx: f64 = (0..n).map(|k| (k as f64 - xm).powi(2)).sum();
        let slope: f64 = (0..n).map(|k| (k as f64 - xm) * nl[k]).sum::<f64>() / sxx;
        for t in 0..2 {
            for r in 0..3 {
                for k in 0..n {
                    let want = nl[k] - mean - slope * (k as f64 - xm);
                    assert!((ph[[t, r, k]] as f64 - want).abs() < 2e-5);
                    assert!((amp[[t, r, k]] - 2.0).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    fn rejects_bad_input() {
        let z = ArrayD::<Complex32>::zeros(IxDyn(&[2, 0]));
        assert!(matches!(
            sanitize(z.view(), None),
            Err(super::super::DspError::Empty { .. })
        ));
        let mut x = ArrayD::<Complex32>::zeros(IxDyn(&[1, 2, 4]));
        x[[0, 1, 2]] = Complex32::new(f32::NAN, 0.0);
        assert!(matches!(
            sanitize(x.view(), None),
            Err(super::super::DspError::NonFinite { index: 6, .. })
        ));
        assert!(sanitize(
            ArrayD::zeros(IxDyn(&[1, 4])).view(),
            Some(&[0.0, 1.0, 1.0, 2.0])
        )
        .is_err());
        assert!(conjugate_product(ArrayD::zeros(IxDyn(&[3, 1, 4])).view()).is_err());
    }

    #[test]
    fn conjugate_product_cancels_common_offset() {
        let n = 8;
        let base = Array3::from_shape_fn((1, 3, n), |(_, r, k)| {
            Complex32::from_polar(1.0 + r as f32, 0.3 * (r * k) as f32)
        });
        let shifted = Array3::from_shape_fn((1, 3, n), |(t, r, k)| {
            base[[t, r, k]] * Complex32::from_polar(1.0, 0.9 * k as f32 + 2.0)
        });
        let a = conjugate_product(base.view().into_dyn()).unwrap();
        let b = conjugate_product(shifted.view().into_dyn()).unwrap();
        assert_eq!(a.shape(), &[1, 3, n]);
        for (x, y) in a.iter().zip(b.iter()) {
            assert!((x - y).norm() < 1e-4);
        }
    }
}
