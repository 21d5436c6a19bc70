//! Doppler spectrogram: a short-time Fourier transform over time of every CSI series,
//! averaged over series.
//!
//! A person moving at radial speed `v` shifts the frequency of the paths they reflect by
//! `f_D = 2 v / lambda`, so the power of the CSI time series at frequency `f` measures
//! how much reflected energy moves at that speed. For window `j` (frames
//! `t = j*hop .. j*hop + L`) and series `s` (a subcarrier of a link, any trailing axes):
//!
//! `P_j(f) = 1/S * sum_s |FFT_nfft( w_t * (x_s(t) - mean_t x_s) )(f)|^2 / (fs * sum_t w_t^2)`
//!
//! with `w` the periodic Hann window of length `L`. Removing each window's mean drops the
//! static paths (the zero-Doppler line). This is the power spectral density that
//! `scipy.signal.spectrogram(..., window='hann', detrend='constant', scaling='density')`
//! returns, averaged over series: two-sided with frequencies ascending from `-fs/2` for
//! complex input (the sign of a Doppler shift is kept), one-sided with the non-DC,
//! non-Nyquist bins doubled for real input. Window `j` is stamped at its centre,
//! `(j*hop + L/2)/fs`.

use std::sync::Arc;

use ndarray::{Array2, ArrayViewD};
use num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

use super::error::{check_finite, check_finite_c, empty, param, shape, Result};
use super::with_slice;

const STEP: &str = "doppler_spectrogram";

/// Largest accepted window, in frames (bounds the state of [`SpectrogramStream`]).
pub(crate) const MAX_WINDOW: usize = 1 << 16;

/// A spectrogram: `power[j, i]` at `times[j]` (s) and `freqs[i]` (Hz).
#[derive(Debug, Clone)]
pub struct Spectrogram {
    /// Power, one row per segment and one column per frequency.
    pub power: Array2<f32>,
    /// The frequency of each column (Hz).
    pub freqs: Vec<f64>,
    /// The centre time of each row (s).
    pub times: Vec<f64>,
}

/// One STFT column computer, reused for every window.
#[derive(Clone)]
pub struct StftPlan {
    fs: f64,
    len: usize,
    hop: usize,
    nfft: usize,
    onesided: bool,
    win: Vec<f32>,
    scale: f64,
    fft: Arc<dyn Fft<f32>>,
    buf: Vec<Complex32>,
    scratch: Vec<Complex32>,
    acc: Vec<f64>,
}

impl std::fmt::Debug for StftPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StftPlan")
            .field("len", &self.len)
            .field("hop", &self.hop)
            .field("nfft", &self.nfft)
            .finish()
    }
}

impl StftPlan {
    /// `window` frames per column, a column every `hop` frames, FFT length `nfft`
    /// (`>= window`, `None` for `window`); `onesided` for real input.
    pub fn new(
        fs: f64,
        window: usize,
        hop: usize,
        nfft: Option<usize>,
        onesided: bool,
    ) -> Result<Self> {
        if !(fs.is_finite() && fs > 0.0) {
            return Err(param(
                STEP,
                "fs",
                format!("must be finite and > 0, got {fs}"),
            ));
        }
        if !(2..=MAX_WINDOW).contains(&window) {
            return Err(param(
                STEP,
                "window",
                format!("must be 2..={MAX_WINDOW} frames, got {window}"),
            ));
        }
        if hop == 0 {
            return Err(param(STEP, "hop", "must be at least 1"));
        }
        let nfft = nfft.unwrap_or(window);
        if nfft < window || nfft > 1 << 20 {
            return Err(param(
                STEP,
                "nfft",
                format!("must be in window..=2^20 ({window}..), got {nfft}"),
            ));
        }
        let win: Vec<f32> = (0..window)
            .map(|t| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * t as f64 / window as f64).cos()) as f32
            })
            .collect();
        let wss: f64 = win.iter().map(|&w| (w as f64) * (w as f64)).sum();
        let fft = FftPlanner::<f32>::new().plan_fft_forward(nfft);
        let scratch = vec![Complex32::new(0.0, 0.0); fft.get_inplace_scratch_len()];
        Ok(StftPlan {
            fs,
            len: window,
            hop,
            nfft,
            onesided,
            win,
            scale: 1.0 / (fs * wss),
            fft,
            buf: vec![Complex32::new(0.0, 0.0); nfft],
            scratch,
            acc: vec![0.0; nfft],
        })
    }

    /// Segment length in frames.
    pub fn window(&self) -> usize {
        self.len
    }

    /// Frames between segment starts.
    pub fn hop(&self) -> usize {
        self.hop
    }

    /// Frequencies per segment: `nfft / 2 + 1` for real input, `nfft` for complex.
    pub(crate) fn n_freqs(&self) -> usize {
        if self.onesided {
            self.nfft / 2 + 1
        } else {
            self.nfft
        }
    }

    /// Frequencies (Hz) of a column's bins, ascending.
    pub fn freqs(&self) -> Vec<f64> {
        let n = self.nfft;
        let df = self.fs / n as f64;
        if self.onesided {
            (0..=n / 2).map(|k| k as f64 * df).collect()
        } else {
            (0..n).map(|i| (i as f64 - (n / 2) as f64) * df).collect()
        }
    }

    /// One column from a time-major segment of `window * n_series` values.
    pub fn column(&mut self, seg: &[Complex32], n_series: usize, out: &mut [f32]) {
        let (l, n) = (self.len, self.nfft);
        self.acc.iter_mut().for_each(|a| *a = 0.0);
        for s in 0..n_series {
            let mut mean = Complex32::new(0.0, 0.0);
            for t in 0..l {
                mean += seg[t * n_series + s];
            }
            mean /= l as f32;
            for t in 0..l {
                self.buf[t] = (seg[t * n_series + s] - mean) * self.win[t];
            }
            self.buf[l..]
                .iter_mut()
                .for_each(|b| *b = Complex32::new(0.0, 0.0));
            self.fft
                .process_with_scratch(&mut self.buf, &mut self.scratch);
            for (a, z) in self.acc.iter_mut().zip(&self.buf) {
                *a += z.norm_sqr() as f64;
            }
        }
        let c = self.scale / n_series as f64;
        if self.onesided {
            let last = n / 2;
            for (k, o) in out.iter_mut().enumerate().take(last + 1) {
                let double = k > 0 && (k < last || n % 2 == 1);
                *o = (self.acc[k] * c * if double { 2.0 } else { 1.0 }) as f32;
            }
        } else {
            let h = n / 2;
            for (i, o) in out.iter_mut().enumerate().take(n) {
                *o = (self.acc[(i + n - h) % n] * c) as f32;
            }
        }
    }
}

fn spectrogram_of(
    seg_all: &[Complex32],
    dims: &[usize],
    plan: &mut StftPlan,
) -> Result<Spectrogram> {
    let n = dims[0];
    let s = seg_all.len() / n;
    if n < plan.len {
        return Err(shape(
            STEP,
            format!(
                "{n} frames along time is fewer than one window of {}",
                plan.len
            ),
        ));
    }
    let n_win = (n - plan.len) / plan.hop + 1;
    let nf = plan.n_freqs();
    let mut power = Array2::<f32>::zeros((n_win, nf));
    for (j, mut row) in power.rows_mut().into_iter().enumerate() {
        let start = j * plan.hop * s;
        let seg = &seg_all[start..start + plan.len * s];
        if let Some(o) = row.as_slice_mut() {
            plan.column(seg, s, o);
        }
    }
    let times = (0..n_win)
        .map(|j| (j * plan.hop) as f64 / plan.fs + plan.len as f64 / 2.0 / plan.fs)
        .collect();
    Ok(Spectrogram {
        power,
        freqs: plan.freqs(),
        times,
    })
}

fn check_dims(dims: &[usize]) -> Result<()> {
    if dims.is_empty() {
        return Err(shape(STEP, "a 0-d array has no time axis"));
    }
    if dims.contains(&0) {
        return Err(empty(STEP, format!("shape {dims:?}")));
    }
    Ok(())
}

/// Two-sided spectrogram of complex series, time on axis 0.
pub fn doppler_spectrogram_complex(
    x: ArrayViewD<'_, Complex32>,
    fs: f64,
    window: usize,
    hop: usize,
    nfft: Option<usize>,
) -> Result<Spectrogram> {
    let dims = x.shape().to_vec();
    check_dims(&dims)?;
    let mut plan = StftPlan::new(fs, window, hop, nfft, false)?;
    with_slice(&x, |v| {
        check_finite_c(STEP, v)?;
        spectrogram_of(v, &dims, &mut plan)
    })
}

/// One-sided spectrogram of real series, time on axis 0.
#[cfg_attr(not(feature = "python"), allow(dead_code))] // used by the Python binding only
pub(crate) fn doppler_spectrogram_real(
    x: ArrayViewD<'_, f32>,
    fs: f64,
    window: usize,
    hop: usize,
    nfft: Option<usize>,
) -> Result<Spectrogram> {
    let dims = x.shape().to_vec();
    check_dims(&dims)?;
    let mut plan = StftPlan::new(fs, window, hop, nfft, true)?;
    with_slice(&x, |v| {
        check_finite(STEP, v)?;
        let c: Vec<Complex32> = v.iter().map(|&r| Complex32::new(r, 0.0)).collect();
        spectrogram_of(&c, &dims, &mut plan)
    })
}

/// The spectrogram frame by frame: a ring of `window` frames; every `hop` frames once it
/// is full, one column, equal to the batch column of the same window.
#[derive(Debug, Clone)]
pub struct SpectrogramStream {
    plan: StftPlan,
    n_series: usize,
    ring: Vec<Complex32>,
    seg: Vec<Complex32>,
    received: usize,
    out: Vec<f32>,
}

impl SpectrogramStream {
    /// A spectrogram of `n_series` series (summed over them) with `plan`'s segments.
    pub fn new(plan: StftPlan, n_series: usize) -> Result<Self> {
        if n_series == 0 {
            return Err(empty(STEP, "zero series per frame"));
        }
        let l = plan.len;
        let nf = plan.n_freqs();
        Ok(SpectrogramStream {
            plan,
            n_series,
            ring: vec![Complex32::new(0.0, 0.0); l * n_series],
            seg: vec![Complex32::new(0.0, 0.0); l * n_series],
            received: 0,
            out: vec![0.0; nf],
        })
    }

    /// The frequency of each output value (Hz).
    pub fn freqs(&self) -> Vec<f64> {
        self.plan.freqs()
    }

    /// Forgets the past: the next frame starts a new segment.
    pub fn reset(&mut self) {
        self.received = 0;
    }

    /// Adds one frame (one value per series); returns a segment's power when one completes.
    pub fn push(&mut self, frame: &[Complex32]) -> Result<Option<&[f32]>> {
        if frame.len() != self.n_series {
            return Err(shape(
                STEP,
                format!(
                    "frame has {} values, expected {}",
                    frame.len(),
                    self.n_series
                ),
            ));
        }
        check_finite_c(STEP, frame)?;
        let (l, s) = (self.plan.len, self.n_series);
        let slot = (self.received % l) * s;
        self.ring[slot..slot + s].copy_from_slice(frame);
        self.received += 1;
        if self.received < l || !(self.received - l).is_multiple_of(self.plan.hop) {
            return Ok(None);
        }
        let first = self.received - l;
        for t in 0..l {
            let src = ((first + t) % l) * s;
            self.seg[t * s..(t + 1) * s].copy_from_slice(&self.ring[src..src + s]);
        }
        self.plan.column(&self.seg, s, &mut self.out);
        Ok(Some(&self.out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn finds_a_known_tone() {
        let fs = 100.0;
        let f0 = -12.5; // negative Doppler: the sign must survive
        let x = Array2::from_shape_fn((256, 3), |(t, s)| {
            Complex32::from_polar(
                1.0 + s as f32,
                (2.0 * std::f64::consts::PI * f0 * t as f64 / fs) as f32,
            ) + Complex32::new(5.0, 1.0)
        });
        let sp = doppler_spectrogram_complex(x.view().into_dyn(), fs, 64, 16, Some(128)).unwrap();
        assert_eq!(sp.power.shape(), &[13, 128]);
        for row in sp.power.rows() {
            let imax = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0;
            assert!(
                (sp.freqs[imax] - f0).abs() < 1e-9,
                "peak at {}",
                sp.freqs[imax]
            );
        }
        let real = x.mapv(|z| z.re);
        let sr = doppler_spectrogram_real(real.view().into_dyn(), fs, 64, 16, Some(128)).unwrap();
        assert_eq!(sr.power.shape(), &[13, 65]);
        let imax = sr
            .power
            .row(0)
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert!((sr.freqs[imax] - 12.5).abs() < 1e-9);
    }

    #[test]
    fn stream_matches_batch() {
        let x = Array2::from_shape_fn((50, 4), |(t, s)| {
            Complex32::new((t as f32 * 0.3 + s as f32).sin(), (t * s) as f32 * 0.01)
        });
        let want = doppler_spectrogram_complex(x.view().into_dyn(), 20.0, 16, 5, None).unwrap();
        let mut st =
            SpectrogramStream::new(StftPlan::new(20.0, 16, 5, None, false).unwrap(), 4).unwrap();
        let mut cols = Vec::new();
        for row in x.rows() {
            if let Some(c) = st.push(&row.to_vec()).unwrap() {
                cols.push(c.to_vec());
            }
        }
        assert_eq!(cols.len(), want.power.nrows());
        for (j, c) in cols.iter().enumerate() {
            assert_eq!(c.as_slice(), want.power.row(j).as_slice().unwrap());
        }
    }

    #[test]
    fn rejects_bad_input() {
        let x = ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[10, 2]));
        assert!(doppler_spectrogram_real(x.view(), 10.0, 16, 4, None).is_err());
        assert!(doppler_spectrogram_real(x.view(), 10.0, 4, 0, None).is_err());
        assert!(doppler_spectrogram_real(x.view(), 10.0, 4, 1, Some(2)).is_err());
        assert!(doppler_spectrogram_real(x.view(), 0.0, 4, 1, None).is_err());
    }
}
