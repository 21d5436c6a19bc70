//! Hampel outlier filter over time.
//!
//! For sample `x_i` and its window `W_i` (centred: `i-k ..= i+k`, causal: `i-2k ..= i`,
//! both truncated at the ends of the record), with `m_i = median(W_i)` and
//! `S_i = 1.4826 * median(|W_i - m_i|)` (the MAD scaled to a Gaussian sigma), the output is
//! `m_i` when `|x_i - m_i| > n_sigmas * S_i` and `x_i` otherwise. Medians of an even
//! number of values average the two middle ones (as `numpy.median`). Time is axis 0; every
//! other axis is an independent series.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::error::{check_finite, empty, param, shape, Result};
use super::with_slice;

/// Largest accepted half-width (bounds the state of [`HampelStream`]).
pub(crate) const MAX_HALF_WINDOW: usize = 4096;

/// Gaussian consistency constant of the MAD, `1 / Phi^-1(3/4)`.
pub(crate) const MAD_SCALE: f64 = 1.482_602_218_505_602;

fn sort_small(v: &mut [f64]) {
    if v.len() <= 24 {
        for i in 1..v.len() {
            let x = v[i];
            let mut j = i;
            while j > 0 && v[j - 1] > x {
                v[j] = v[j - 1];
                j -= 1;
            }
            v[j] = x;
        }
    } else {
        v.sort_unstable_by(f64::total_cmp);
    }
}

fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Median and MAD-sigma of `w` (reordered in place).
pub(crate) fn median_sigma(w: &mut [f64]) -> (f64, f64) {
    sort_small(w);
    let m = median_sorted(w);
    for v in w.iter_mut() {
        *v = (*v - m).abs();
    }
    sort_small(w);
    (m, MAD_SCALE * median_sorted(w))
}

/// Windows up to this many samples use the rank method of [`WindowStats`].
const RANK_MAX: usize = 16;

/// Per-feature median and MAD-sigma of a window of rows, vectorized across features.
///
/// For short windows every sample's rank within its feature's window is counted
/// (`rank_i = #{j < i: w_j <= w_i} + #{j > i: w_j < w_i}`, a permutation even with ties),
/// and the median is the sample(s) of middle rank; the MAD likewise on `|w - median|`.
/// That is `O(L^2)` per feature but branch-free over contiguous rows, which beats sorting
/// for the `L = 2k+1 <= 16` of a Hampel filter. Longer windows sort per feature.
#[derive(Debug, Clone)]
pub(crate) struct WindowStats {
    nf: usize,
    pub med: Vec<f64>,
    pub sig: Vec<f64>,
    rank: Vec<f64>,
    lo: Vec<f64>,
    dev: Vec<f64>,
    col: Vec<f64>,
}

impl WindowStats {
    pub fn new(nf: usize, max_len: usize) -> Self {
        WindowStats {
            nf,
            med: vec![0.0; nf],
            sig: vec![0.0; nf],
            rank: vec![0.0; nf],
            lo: vec![0.0; nf],
            dev: vec![0.0; nf * max_len.min(RANK_MAX)],
            col: Vec::with_capacity(max_len),
        }
    }

    /// Middle-rank selection of `w` (`len` rows of `nf`) into `out`.
    fn select_median(
        nf: usize,
        w: &[f64],
        len: usize,
        rank: &mut [f64],
        lo: &mut [f64],
        out: &mut [f64],
    ) {
        let hi_rank = (len / 2) as f64;
        let even = len.is_multiple_of(2);
        let lo_rank = hi_rank - 1.0;
        for i in 0..len {
            let wi = &w[i * nf..(i + 1) * nf];
            rank.iter_mut().for_each(|r| *r = 0.0);
            for j in 0..len {
                let wj = &w[j * nf..(j + 1) * nf];
                if j < i {
                    for ((r, &a), &b) in rank.iter_mut().zip(wj).zip(wi) {
                        *r += if a <= b { 1.0 } else { 0.0 };
                    }
                } else if j > i {
                    for ((r, &a), &b) in rank.iter_mut().zip(wj).zip(wi) {
                        *r += if a < b { 1.0 } else { 0.0 };
                    }
                }
            }
            for ((o, &r), &v) in out.iter_mut().zip(rank.iter()).zip(wi) {
                if r == hi_rank {
                    *o = v;
                }
            }
            if even {
                for ((l, &r), &v) in lo.iter_mut().zip(rank.iter()).zip(wi) {
                    if r == lo_rank {
                        *l = v;
                    }
                }
            }
        }
        if even {
            for (o, &l) in out.iter_mut().zip(lo.iter()) {
                *o = 0.5 * (l + *o);
            }
        }
    }

    /// Statistics of the `len` rows in `w` (row-major, `nf` per row).
    pub fn compute(&mut self, w: &[f64], len: usize) {
        let nf = self.nf;
        if len <= RANK_MAX {
            Self::select_median(nf, w, len, &mut self.rank, &mut self.lo, &mut self.med);
            for (drow, wrow) in self
                .dev
                .chunks_exact_mut(nf)
                .zip(w.chunks_exact(nf))
                .take(len)
            {
                for ((d, &v), &m) in drow.iter_mut().zip(wrow).zip(self.med.iter()) {
                    *d = (v - m).abs();
                }
            }
            Self::select_median(
                nf,
                &self.dev[..len * nf],
                len,
                &mut self.rank,
                &mut self.lo,
                &mut self.sig,
            );
            self.sig.iter_mut().for_each(|s| *s *= MAD_SCALE);
        } else {
            for f in 0..nf {
                self.col.clear();
                self.col.extend((0..len).map(|t| w[t * nf + f]));
                let (m, sg) = median_sigma(&mut self.col);
                self.med[f] = m;
                self.sig[f] = sg;
            }
        }
    }
}

fn validate(step: &'static str, half_window: usize, n_sigmas: f32) -> Result<()> {
    if half_window == 0 {
        return Err(param(step, "window", "the half-width must be at least 1"));
    }
    if half_window > MAX_HALF_WINDOW {
        return Err(param(
            step,
            "window",
            format!("{half_window} is above the limit of {MAX_HALF_WINDOW}"),
        ));
    }
    if !n_sigmas.is_finite() || n_sigmas < 0.0 {
        return Err(param(
            step,
            "n_sigmas",
            format!("must be finite and >= 0, got {n_sigmas}"),
        ));
    }
    Ok(())
}

/// Window bounds (inclusive) of sample `i` in a record of `n`.
#[inline]
fn bounds(i: usize, n: usize, k: usize, causal: bool) -> (usize, usize) {
    if causal {
        (i.saturating_sub(2 * k), i)
    } else {
        (i.saturating_sub(k), (i + k).min(n - 1))
    }
}

/// Hampel filter along axis 0 of `x` (`(n_time, ...)`), window half-width `half_window`
/// (`k`; the window holds `2k+1` samples). Returns the filtered array and the number of
/// samples replaced.
pub fn hampel(
    x: ArrayViewD<'_, f32>,
    half_window: usize,
    n_sigmas: f32,
    causal: bool,
) -> Result<(ArrayD<f32>, usize)> {
    const STEP: &str = "hampel";
    validate(STEP, half_window, n_sigmas)?;
    let dims = x.shape().to_vec();
    if dims.is_empty() {
        return Err(shape(STEP, "a 0-d array has no time axis"));
    }
    if x.is_empty() {
        return Err(empty(STEP, format!("shape {dims:?}")));
    }
    let n = dims[0];
    let f = x.len() / n;
    let mut out = vec![0f32; x.len()];
    let mut replaced = 0usize;
    with_slice(&x, |s| {
        check_finite(STEP, s)?;
        let data: Vec<f64> = s.iter().map(|&v| v as f64).collect();
        let mut st = WindowStats::new(f, 2 * half_window + 1);
        let ns = n_sigmas as f64;
        for i in 0..n {
            let (lo, hi) = bounds(i, n, half_window, causal);
            st.compute(&data[lo * f..(hi + 1) * f], hi - lo + 1);
            let row = &data[i * f..(i + 1) * f];
            for (((o, &v), &m), &sg) in out[i * f..(i + 1) * f]
                .iter_mut()
                .zip(row)
                .zip(&st.med)
                .zip(&st.sig)
            {
                let bad = (v - m).abs() > ns * sg;
                replaced += bad as usize;
                *o = if bad { m } else { v } as f32;
            }
        }
        Ok(())
    })?;
    let a = ArrayD::from_shape_vec(IxDyn(&dims), out).map_err(|e| shape(STEP, e.to_string()))?;
    Ok((a, replaced))
}

/// The Hampel filter frame by frame with bounded state (`2k+1` frames). Causal mode emits
/// each frame as it arrives; centred mode emits frame `t-k` when frame `t` arrives and the
/// last `k` frames on [`HampelStream::flush`]. Either way the output equals [`hampel`] on
/// the whole record.
#[derive(Debug, Clone)]
pub struct HampelStream {
    k: usize,
    n_sigmas: f64,
    causal: bool,
    n_features: usize,
    cap: usize,
    ring: Vec<f64>,
    received: usize,
    emitted: usize,
    out: Vec<f32>,
    window: Vec<f64>,
    stats: WindowStats,
    replaced: usize,
}

impl HampelStream {
    /// A Hampel filter over frames of `n_features` values, half-width `half_window`,
    /// threshold `n_sigmas` scaled MADs; `causal` judges a sample against the window ending at it.
    pub fn new(n_features: usize, half_window: usize, n_sigmas: f32, causal: bool) -> Result<Self> {
        const STEP: &str = "HampelStream";
        validate(STEP, half_window, n_sigmas)?;
        if n_features == 0 {
            return Err(empty(STEP, "zero features per frame"));
        }
        let cap = 2 * half_window + 1;
        Ok(HampelStream {
            k: half_window,
            n_sigmas: n_sigmas as f64,
            causal,
            n_features,
            cap,
            ring: vec![0.0; cap * n_features],
            received: 0,
            emitted: 0,
            out: vec![0.0; n_features],
            window: vec![0.0; cap * n_features],
            stats: WindowStats::new(n_features, cap),
            replaced: 0,
        })
    }

    /// Frames of delay between input and output: 0 causal, `k` centred.
    pub fn latency(&self) -> usize {
        if self.causal {
            0
        } else {
            self.k
        }
    }

    /// Samples replaced so far.
    pub fn replaced(&self) -> usize {
        self.replaced
    }

    /// Forgets the past: the next frame starts a new record.
    pub fn reset(&mut self) {
        self.received = 0;
        self.emitted = 0;
        self.replaced = 0;
    }

    /// Filters sample time `c` over window `lo..=hi` (all in the ring) into `self.out`.
    fn eval(&mut self, c: usize, lo: usize, hi: usize) {
        let f = self.n_features;
        let len = hi - lo + 1;
        for (m, t) in (lo..=hi).enumerate() {
            let src = (t % self.cap) * f;
            self.window[m * f..(m + 1) * f].copy_from_slice(&self.ring[src..src + f]);
        }
        self.stats.compute(&self.window[..len * f], len);
        let cslot = (c % self.cap) * f;
        let x = &self.ring[cslot..cslot + f];
        for (((o, &v), &m), &sg) in self
            .out
            .iter_mut()
            .zip(x)
            .zip(&self.stats.med)
            .zip(&self.stats.sig)
        {
            let bad = (v - m).abs() > self.n_sigmas * sg;
            self.replaced += bad as usize;
            *o = if bad { m } else { v } as f32;
        }
    }

    /// Adds one frame (`n_features` values); returns the next output frame if one is due.
    pub fn push(&mut self, frame: &[f32]) -> Result<Option<&[f32]>> {
        const STEP: &str = "HampelStream";
        if frame.len() != self.n_features {
            return Err(shape(
                STEP,
                format!(
                    "frame has {} values, expected {}",
                    frame.len(),
                    self.n_features
                ),
            ));
        }
        check_finite(STEP, frame)?;
        let t = self.received;
        let f = self.n_features;
        let slot = (t % self.cap) * f;
        for (r, &v) in self.ring[slot..slot + f].iter_mut().zip(frame) {
            *r = v as f64;
        }
        self.received += 1;
        if self.causal {
            self.eval(t, t.saturating_sub(2 * self.k), t);
        } else if t >= self.k {
            let c = t - self.k;
            self.eval(c, c.saturating_sub(self.k), t);
        } else {
            return Ok(None);
        }
        self.emitted += 1;
        Ok(Some(&self.out))
    }

    /// Emits the frames still held back (centred mode), with windows truncated at the end
    /// of the record. The stream can then be [`reset`](Self::reset) for a new record.
    pub fn flush(&mut self) -> Vec<Vec<f32>> {
        let mut rest = Vec::new();
        while self.emitted < self.received {
            let c = self.emitted;
            self.eval(c, c.saturating_sub(self.k), self.received - 1);
            rest.push(self.out.clone());
            self.emitted += 1;
        }
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn signal(n: usize, f: usize) -> Array2<f32> {
        Array2::from_shape_fn((n, f), |(i, j)| {
            ((i as f32) * 0.3 + j as f32).sin() + 0.01 * ((i * 7919 + j * 104729) % 13) as f32
        })
    }

    #[test]
    fn removes_planted_outliers() {
        let clean = signal(200, 3);
        let mut x = clean.clone();
        let planted = [(10, 0), (57, 1), (120, 2), (199, 0), (0, 1)];
        for &(i, j) in &planted {
            x[[i, j]] += 25.0;
        }
        for causal in [false, true] {
            let (y, n) = hampel(x.view().into_dyn(), 3, 3.0, causal).unwrap();
            assert!(n >= planted.len() - causal as usize, "replaced {n}");
            // A causal window at i = 0 or 1 holds no history to judge by.
            for &(i, j) in planted.iter().filter(|p| !causal || p.0 >= 2) {
                assert!(
                    (y[[i, j]] - clean[[i, j]]).abs() < 1.0,
                    "causal={causal} ({i},{j}) -> {}",
                    y[[i, j]]
                );
            }
        }
    }

    #[test]
    fn stream_matches_batch() {
        let mut x = signal(60, 4);
        x[[5, 2]] = 40.0;
        x[[58, 1]] = -40.0;
        for causal in [false, true] {
            let (want, _) = hampel(x.view().into_dyn(), 2, 2.5, causal).unwrap();
            let mut s = HampelStream::new(4, 2, 2.5, causal).unwrap();
            let mut got: Vec<Vec<f32>> = Vec::new();
            for row in x.rows() {
                if let Some(o) = s.push(row.as_slice().unwrap()).unwrap() {
                    got.push(o.to_vec());
                }
            }
            got.extend(s.flush());
            assert_eq!(got.len(), 60);
            for (i, g) in got.iter().enumerate() {
                assert_eq!(g.as_slice(), want.row_slice(i), "causal={causal} row {i}");
            }
        }
    }

    trait RowSlice {
        fn row_slice(&self, i: usize) -> &[f32];
    }
    impl RowSlice for ArrayD<f32> {
        fn row_slice(&self, i: usize) -> &[f32] {
            let f = self.len() / self.shape()[0];
            &self.as_slice().unwrap()[i * f..(i + 1) * f]
        }
    }

    #[test]
    fn rejects_bad_input() {
        let x = ArrayD::<f32>::zeros(IxDyn(&[0, 3]));
        assert!(hampel(x.view(), 3, 3.0, false).is_err());
        let x = ArrayD::<f32>::from_elem(IxDyn(&[4]), f32::NAN);
        assert!(hampel(x.view(), 3, 3.0, false).is_err());
        let x = ArrayD::<f32>::zeros(IxDyn(&[4]));
        assert!(hampel(x.view(), 0, 3.0, false).is_err());
        assert!(hampel(x.view(), 1, -1.0, false).is_err());
        let mut s = HampelStream::new(3, 1, 3.0, true).unwrap();
        assert!(s.push(&[1.0, 2.0]).is_err());
    }
}
