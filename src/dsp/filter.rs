//! Butterworth filters over time, as second-order sections.
//!
//! Design follows the textbook (and `scipy.signal.butter`) route: analog prototype poles
//! `p_m = -exp(i*pi*(2m - N + 1)/(2N))`, `m = 0..N`, frequency transform to low-pass,
//! high-pass or band-pass at the pre-warped edges `w = 4 tan(pi f / fs)` (for a bilinear
//! transform at `fs = 2` after normalizing by Nyquist), then the bilinear transform
//! `z = (4 + s)/(4 - s)`. Poles are paired with their conjugates into sections; the
//! zeros (at `z = -1` for low-pass, `z = +1` for high-pass, both for band-pass) go one pair
//! per section and the overall gain into the first.
//!
//! Filtering is the direct form II transposed cascade (`scipy.signal.sosfilt`). Causal
//! filtering starts from the steady state for a constant input equal to the first sample
//! (`sosfilt(sos, x, zi=sosfilt_zi(sos) * x[0])`), so it has no start-up transient and a
//! live stream can do the same with the first frame. Zero-phase filtering is
//! `scipy.signal.sosfiltfilt` with its defaults: odd extension by
//! `3 * (2 * n_sections + 1 - min(#b2==0, #a2==0))` samples, forward pass from the steady
//! state of the first extended sample, backward pass from that of the last output.

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use num_complex::Complex64;
use std::f64::consts::PI;

use super::error::{check_finite, empty, param, shape, Result};
use super::with_slice;

const STEP: &str = "butter_filter";

/// The nearest a cutoff may come to 0 or to fs/2, as a share of fs/2 (at 100 Hz
/// sampling: 0.0005 Hz).
pub const MIN_CUTOFF_SHARE: f64 = 1e-5;

/// A cascade of second-order sections, each `[b0, b1, b2, 1, a1, a2]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sos {
    /// The sections, applied in order.
    pub sections: Vec<[f64; 6]>,
}

/// Butterworth design: `low` only is a high-pass at `low`, `high` only a low-pass at
/// `high`, both a band-pass `low..high` (Hz, `0 < low < high < fs/2`). `order` is the
/// prototype order `N` (1..=12); a band-pass has `2N` poles, like scipy.
pub fn butter(order: usize, fs: f64, low: Option<f64>, high: Option<f64>) -> Result<Sos> {
    if !(1..=12).contains(&order) {
        return Err(param(STEP, "order", format!("must be 1..=12, got {order}")));
    }
    if !(fs.is_finite() && fs > 0.0) {
        return Err(param(
            STEP,
            "fs",
            format!("must be finite and > 0, got {fs}"),
        ));
    }
    let nyq = fs / 2.0;
    let check = |name: &'static str, f: f64| -> Result<f64> {
        if !(f.is_finite() && f > 0.0 && f < nyq) {
            return Err(param(
                STEP,
                name,
                format!("{f} Hz is not inside (0, fs/2 = {nyq})"),
            ));
        }
        // Closer to 0 or to fs/2 than this share of fs/2, the sections' poles round onto
        // the unit circle in f64 and the filter's output is NaN.
        let edge = MIN_CUTOFF_SHARE * nyq;
        if f < edge || f > nyq - edge {
            return Err(param(
                STEP,
                name,
                format!(
                    "{f} Hz is too close to 0 or to fs/2 = {nyq} for a stable filter \
                     (keep it within [{edge}, {}])",
                    nyq - edge
                ),
            ));
        }
        Ok(4.0 * (PI * (f / nyq) / 2.0).tan())
    };
    let n = order as i64;
    let proto: Vec<Complex64> = (0..n)
        .map(|m| -Complex64::from_polar(1.0, PI * (2 * m - n + 1) as f64 / (2 * n) as f64))
        .collect();
    // Analog poles, digital zeros (+1 / -1 counts) and analog gain after the transform.
    let (poles, n_zero_pos, n_zero_neg, mut k, zeros_analog_at_origin): (
        Vec<Complex64>,
        usize,
        usize,
        f64,
        usize,
    ) = match (low, high) {
        (None, Some(h)) => {
            let w = check("high", h)?;
            (
                proto.iter().map(|p| p * w).collect(),
                0,
                order,
                w.powi(order as i32),
                0,
            )
        }
        (Some(l), None) => {
            let w = check("low", l)?;
            // lp2hp: poles w/p, zeros at s = 0 (N of them), gain 1/prod(-p) = 1.
            let prod: Complex64 = proto.iter().map(|p| -p).product();
            (
                proto.iter().map(|p| w / p).collect(),
                order,
                0,
                1.0 / prod.re,
                order,
            )
        }
        (Some(l), Some(h)) => {
            if l >= h {
                return Err(param(
                    STEP,
                    "low",
                    format!("must be below high ({l} >= {h})"),
                ));
            }
            let (w1, w2) = (check("low", l)?, check("high", h)?);
            let bw = w2 - w1;
            let wo2 = w1 * w2;
            let mut ps = Vec::with_capacity(2 * order);
            for p in &proto {
                let pl = p * (bw / 2.0);
                let d = (pl * pl - wo2).sqrt();
                ps.push(pl + d);
                ps.push(pl - d);
            }
            (ps, order, order, bw.powi(order as i32), order)
        }
        (None, None) => return Err(param(STEP, "low/high", "give at least one cutoff")),
    };
    // Bilinear transform at fs = 2 (fs2 = 4).
    let fs2 = 4.0;
    let num: Complex64 = (0..zeros_analog_at_origin)
        .map(|_| Complex64::new(fs2, 0.0))
        .product();
    let den: Complex64 = poles.iter().map(|p| fs2 - p).product();
    k *= (num / den).re;
    let mut zp: Vec<Complex64> = poles.iter().map(|p| (fs2 + p) / (fs2 - p)).collect();
    // Pair poles: complex ones (upper half) with their conjugates, reals two by two.
    zp.sort_by(|a, b| a.norm().total_cmp(&b.norm()));
    let scale = zp.iter().map(|p| p.norm()).fold(1.0, f64::max);
    let tol = 1e-9 * scale;
    let mut a_secs: Vec<[f64; 3]> = Vec::new();
    let mut reals: Vec<f64> = Vec::new();
    for p in &zp {
        if p.im > tol {
            a_secs.push([1.0, -2.0 * p.re, p.norm_sqr()]);
        } else if p.im.abs() <= tol {
            reals.push(p.re);
        }
    }
    for c in reals.chunks(2) {
        if c.len() == 2 {
            a_secs.push([1.0, -(c[0] + c[1]), c[0] * c[1]]);
        } else {
            a_secs.push([1.0, -c[0], 0.0]);
        }
    }
    // Zeros: one pair per section, preferring (+1, -1) pairs for band-pass.
    let (mut zpos, mut zneg) = (n_zero_pos, n_zero_neg);
    let mut sections = Vec::with_capacity(a_secs.len());
    for a in &a_secs {
        let second_order = a[2] != 0.0;
        let want = if second_order { 2 } else { 1 };
        let mut b = [1.0, 0.0, 0.0];
        let mut deg = 0;
        let take = |root: f64, b: &mut [f64; 3], deg: &mut usize| {
            // multiply b (degree deg) by (1 - root z^-1)
            let mut nb = *b;
            for i in 1..=(*deg + 1).min(2) {
                nb[i] = b[i] - root * b[i - 1];
            }
            *b = nb;
            *deg += 1;
        };
        while deg < want && (zpos > 0 || zneg > 0) {
            if zpos > 0 && (zpos >= zneg || deg == 1 && zneg == 0) {
                take(1.0, &mut b, &mut deg);
                zpos -= 1;
            } else {
                take(-1.0, &mut b, &mut deg);
                zneg -= 1;
            }
        }
        sections.push([b[0], b[1], b[2], a[0], a[1], a[2]]);
    }
    if let Some(s) = sections.first_mut() {
        s[0] *= k;
        s[1] *= k;
        s[2] *= k;
    }
    Ok(Sos { sections })
}

impl Sos {
    /// How many second-order sections the cascade has.
    pub(crate) fn n_sections(&self) -> usize {
        self.sections.len()
    }

    /// Steady-state section states for a unit constant input (`scipy.signal.sosfilt_zi`).
    pub(crate) fn zi(&self) -> Vec<[f64; 2]> {
        let mut scale = 1.0;
        self.sections
            .iter()
            .map(|s| {
                let (b0, b1, b2, a1, a2) = (s[0], s[1], s[2], s[4], s[5]);
                let (c0, c1) = (b1 - a1 * b0, b2 - a2 * b0);
                let z0 = (c0 + c1) / (1.0 + a1 + a2);
                let z1 = c1 - a2 * z0;
                let zi = [scale * z0, scale * z1];
                scale *= (b0 + b1 + b2) / (1.0 + a1 + a2);
                zi
            })
            .collect()
    }

    /// `scipy.signal.sosfiltfilt`'s default pad length.
    pub(crate) fn padlen(&self) -> usize {
        let nb = self.sections.iter().filter(|s| s[2] == 0.0).count();
        let na = self.sections.iter().filter(|s| s[5] == 0.0).count();
        3 * (2 * self.n_sections() + 1 - nb.min(na))
    }

    /// One sample through the cascade with states `z`.
    #[inline]
    pub(crate) fn step(&self, z: &mut [[f64; 2]], x: f64) -> f64 {
        let mut v = x;
        for (s, zz) in self.sections.iter().zip(z.iter_mut()) {
            let y = s[0] * v + zz[0];
            zz[0] = s[1] * v - s[4] * y + zz[1];
            zz[1] = s[2] * v - s[5] * y;
            v = y;
        }
        v
    }

    /// Filters `x` in place starting from states `zi * x0`.
    pub fn filter_from(&self, x: &mut [f64], x0: f64) {
        let mut z: Vec<[f64; 2]> = self.zi().iter().map(|s| [s[0] * x0, s[1] * x0]).collect();
        for v in x.iter_mut() {
            *v = self.step(&mut z, *v);
        }
    }

    /// Causal filtering of one series, from the steady state of its first sample.
    pub fn filter_causal(&self, x: &mut [f64]) {
        if let Some(&x0) = x.first() {
            self.filter_from(x, x0);
        }
    }

    /// Zero-phase filtering of one series (`scipy.signal.sosfiltfilt` defaults).
    pub fn filtfilt(&self, x: &[f64]) -> Result<Vec<f64>> {
        let n = x.len();
        let edge = self.padlen();
        if n <= edge {
            return Err(shape(
                STEP,
                format!("zero-phase filtering needs more than {edge} samples (3 per filter coefficient) along time, got {n}"),
            ));
        }
        let mut ext = Vec::with_capacity(n + 2 * edge);
        ext.extend((1..=edge).rev().map(|i| 2.0 * x[0] - x[i]));
        ext.extend_from_slice(x);
        ext.extend((1..=edge).map(|i| 2.0 * x[n - 1] - x[n - 1 - i]));
        let x0 = ext[0];
        self.filter_from(&mut ext, x0);
        ext.reverse();
        let y0 = ext[0];
        self.filter_from(&mut ext, y0);
        ext.reverse();
        Ok(ext[edge..edge + n].to_vec())
    }
}

/// Section states for `f` parallel series, updated one time step (row) at a time.
#[derive(Debug, Clone)]
struct RowState {
    sections: Vec<[f64; 6]>,
    zi: Vec<[f64; 2]>,
    f: usize,
    /// `z0`, `z1` of section `s` for every feature: `z[s][0..f]`, `z[s][f..2f]`.
    z: Vec<Vec<f64>>,
}

impl RowState {
    fn new(sos: &Sos, f: usize) -> Self {
        RowState {
            sections: sos.sections.clone(),
            zi: sos.zi(),
            f,
            z: vec![vec![0.0; 2 * f]; sos.n_sections()],
        }
    }

    /// Steady state for a constant input equal to `x0` (per feature).
    fn start(&mut self, x0: &[f64]) {
        for (z, zi) in self.z.iter_mut().zip(&self.zi) {
            let (z0, z1) = z.split_at_mut(self.f);
            for ((a, b), &x) in z0.iter_mut().zip(z1.iter_mut()).zip(x0) {
                *a = zi[0] * x;
                *b = zi[1] * x;
            }
        }
    }

    /// Filters one row in place (direct form II transposed, section by section).
    #[inline]
    fn step(&mut self, v: &mut [f64]) {
        for (s, z) in self.sections.iter().zip(self.z.iter_mut()) {
            let (b0, b1, b2, a1, a2) = (s[0], s[1], s[2], s[4], s[5]);
            let (z0, z1) = z.split_at_mut(self.f);
            for ((x, a), b) in v.iter_mut().zip(z0.iter_mut()).zip(z1.iter_mut()) {
                let xv = *x;
                let out = b0 * xv + *a;
                *a = b1 * xv - a1 * out + *b;
                *b = b2 * xv - a2 * out;
                *x = out;
            }
        }
    }
}

/// Butterworth filtering along axis 0 (time) of `x`, every other axis an independent
/// series. See [`butter`] for the cutoffs and the module docs for the two modes.
pub fn butter_filter(
    x: ArrayViewD<'_, f32>,
    fs: f64,
    low: Option<f64>,
    high: Option<f64>,
    order: usize,
    zero_phase: bool,
) -> Result<ArrayD<f32>> {
    let sos = butter(order, fs, low, high)?;
    let dims = x.shape().to_vec();
    if dims.is_empty() {
        return Err(shape(STEP, "a 0-d array has no time axis"));
    }
    if x.is_empty() {
        return Err(empty(STEP, format!("shape {dims:?}")));
    }
    let n = dims[0];
    let f = x.len() / n;
    let edge = if zero_phase { sos.padlen() } else { 0 };
    if zero_phase && n <= edge {
        return Err(shape(
            STEP,
            format!("zero-phase filtering needs more than {edge} samples (3 per filter coefficient) along time, got {n}"),
        ));
    }
    let out = with_slice(&x, |s| {
        check_finite(STEP, s)?;
        // Rows of the (odd-extended) record, all features of a time step side by side, so
        // every section update runs over a contiguous row (vectorized across features).
        let m = n + 2 * edge;
        let mut ext = vec![0f64; m * f];
        let row = |i: usize| &s[i * f..(i + 1) * f];
        for e in 0..edge {
            // ext[e] = 2 x[0] - x[edge - e];  ext[edge + n + e] = 2 x[n-1] - x[n-2-e]
            let (a, b) = (row(0), row(edge - e));
            for ((d, &x0), &xi) in ext[e * f..(e + 1) * f].iter_mut().zip(a).zip(b) {
                *d = 2.0 * x0 as f64 - xi as f64;
            }
            let (a, b) = (row(n - 1), row(n - 2 - e));
            let dst = (edge + n + e) * f;
            for ((d, &x0), &xi) in ext[dst..dst + f].iter_mut().zip(a).zip(b) {
                *d = 2.0 * x0 as f64 - xi as f64;
            }
        }
        for (d, &v) in ext[edge * f..(edge + n) * f].iter_mut().zip(s) {
            *d = v as f64;
        }
        let mut state = RowState::new(&sos, f);
        state.start(&ext[..f]);
        for r in ext.chunks_exact_mut(f) {
            state.step(r);
        }
        if zero_phase {
            state.start(&ext[(m - 1) * f..]);
            for r in ext.chunks_exact_mut(f).rev() {
                state.step(r);
            }
        }
        Ok(ext[edge * f..(edge + n) * f]
            .iter()
            .map(|&v| v as f32)
            .collect::<Vec<f32>>())
    })?;
    ArrayD::from_shape_vec(IxDyn(&dims), out).map_err(|e| shape(STEP, e.to_string()))
}

/// Causal Butterworth filtering frame by frame: bounded state (two values per section per
/// feature), initialized from the first frame's steady state, equal to
/// [`butter_filter`] with `zero_phase = false` on the whole record.
#[derive(Debug, Clone)]
pub struct SosStream {
    sos: Sos,
    zi: Vec<[f64; 2]>,
    n_features: usize,
    state: Vec<[f64; 2]>,
    started: bool,
    out: Vec<f32>,
}

impl SosStream {
    /// A causal filter over frames of `n_features` values, each feature filtered on its own.
    pub fn new(sos: Sos, n_features: usize) -> Result<Self> {
        if n_features == 0 {
            return Err(empty("SosStream", "zero features per frame"));
        }
        let ns = sos.n_sections();
        Ok(SosStream {
            zi: sos.zi(),
            sos,
            n_features,
            state: vec![[0.0; 2]; ns * n_features],
            started: false,
            out: vec![0.0; n_features],
        })
    }

    /// Forgets the past: the next frame restarts the filter in its steady state for that
    /// frame's values.
    pub fn reset(&mut self) {
        self.started = false;
    }

    /// Filters one frame; returns the filtered frame (same length).
    pub fn push(&mut self, frame: &[f32]) -> Result<&[f32]> {
        if frame.len() != self.n_features {
            return Err(shape(
                "SosStream",
                format!(
                    "frame has {} values, expected {}",
                    frame.len(),
                    self.n_features
                ),
            ));
        }
        check_finite("SosStream", frame)?;
        let ns = self.sos.n_sections();
        if !self.started {
            for (j, &x0) in frame.iter().enumerate() {
                for (s, zi) in self.zi.iter().enumerate() {
                    self.state[j * ns + s] = [zi[0] * x0 as f64, zi[1] * x0 as f64];
                }
            }
            self.started = true;
        }
        for (j, &x) in frame.iter().enumerate() {
            let z = &mut self.state[j * ns..(j + 1) * ns];
            self.out[j] = self.sos.step(z, x as f64) as f32;
        }
        Ok(&self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// |H(e^{jw})| of the cascade at frequency f.
    fn gain(sos: &Sos, f: f64, fs: f64) -> f64 {
        let z = Complex64::from_polar(1.0, -2.0 * PI * f / fs);
        sos.sections
            .iter()
            .map(|s| {
                let num = s[0] + s[1] * z + s[2] * z * z;
                let den = s[3] + s[4] * z + s[5] * z * z;
                (num / den).norm()
            })
            .product()
    }

    #[test]
    fn butterworth_magnitudes() {
        let fs = 100.0;
        let lp = butter(4, fs, None, Some(10.0)).unwrap();
        assert!((gain(&lp, 0.0, fs) - 1.0).abs() < 1e-9);
        assert!((gain(&lp, 10.0, fs) - 0.5f64.sqrt()).abs() < 1e-9);
        assert!(gain(&lp, 40.0, fs) < 1e-3);
        let lp3 = butter(3, fs, None, Some(10.0)).unwrap();
        assert_eq!(lp3.n_sections(), 2);
        assert!((gain(&lp3, 10.0, fs) - 0.5f64.sqrt()).abs() < 1e-9);
        let hp = butter(5, fs, Some(5.0), None).unwrap();
        assert!((gain(&hp, 50.0, fs) - 1.0).abs() < 1e-9);
        assert!((gain(&hp, 5.0, fs) - 0.5f64.sqrt()).abs() < 1e-9);
        let bp = butter(3, fs, Some(5.0), Some(15.0)).unwrap();
        assert_eq!(bp.n_sections(), 3);
        assert!((gain(&bp, 5.0, fs) - 0.5f64.sqrt()).abs() < 1e-9);
        assert!((gain(&bp, 15.0, fs) - 0.5f64.sqrt()).abs() < 1e-9);
        assert!(gain(&bp, 0.0, fs) < 1e-9);
    }

    #[test]
    fn stream_matches_batch_and_constant_passes() {
        let n = 80;
        let x = ndarray::Array2::from_shape_fn((n, 2), |(i, j)| {
            3.0 + (i as f32 * 0.7 + j as f32).sin()
        });
        let want = butter_filter(x.view().into_dyn(), 50.0, None, Some(5.0), 4, false).unwrap();
        let mut s = SosStream::new(butter(4, 50.0, None, Some(5.0)).unwrap(), 2).unwrap();
        for i in 0..n {
            let row: Vec<f32> = x.row(i).to_vec();
            let got = s.push(&row).unwrap();
            assert_eq!(got, &want.as_slice().unwrap()[i * 2..i * 2 + 2]);
        }
        let c = ndarray::ArrayD::from_elem(IxDyn(&[40]), 2.5f32);
        for zp in [false, true] {
            let y = butter_filter(c.view(), 50.0, None, Some(5.0), 4, zp).unwrap();
            assert!(y.iter().all(|v| (v - 2.5).abs() < 1e-5));
        }
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(butter(0, 100.0, None, Some(10.0)).is_err());
        assert!(butter(4, 100.0, None, Some(50.0)).is_err());
        assert!(butter(4, 100.0, Some(20.0), Some(10.0)).is_err());
        assert!(butter(4, f64::NAN, None, Some(10.0)).is_err());
        assert!(butter(4, 100.0, None, None).is_err());
        let short = ndarray::ArrayD::<f32>::zeros(IxDyn(&[10]));
        assert!(butter_filter(short.view(), 100.0, None, Some(10.0), 4, true).is_err());
    }
}
