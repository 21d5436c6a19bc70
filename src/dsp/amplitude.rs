//! Amplitude normalization: remove the per-packet gain that automatic gain control (AGC)
//! applies, so that amplitude changes over time reflect the channel, not the receiver.
//!
//! - With RSSI (dBm, the received power the card reports after accounting for its AGC):
//!   every amplitude of a frame is scaled so that the frame's mean power equals the RSSI,
//!   `a'_{t,l,k} = a_{t,l,k} * sqrt(10^(rssi_t/10) / mean_{l,k}(a_{t,l,k}^2))`, in units of
//!   `sqrt(mW)`. An all-zero frame stays zero.
//! - Without RSSI: a robust z-score per link (one `(tx, rx)` pair of one frame) across
//!   subcarriers, `z_k = (a_k - median(a)) / (1.4826 * MAD(a))`. A gain `g` multiplies the
//!   median and the MAD alike, so `z` does not depend on it. When the MAD is zero the
//!   scale falls back to `1.2533 * mean|a - median(a)|`, and when that is zero too the
//!   link is all zeros.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::error::{check_finite, empty, param, shape, Result};
use super::hampel::MAD_SCALE;
use super::with_slice;

/// `sqrt(pi/2)`: the mean absolute deviation to sigma factor for a Gaussian.
const MEAN_AD_SCALE: f64 = 1.253_314_137_315_500_3;

/// An `i32` whose order is the total order of `f32` (as [`f32::total_cmp`]): negative
/// values get their magnitude bits flipped.
#[inline]
fn order_key(x: f32) -> i32 {
    let i = x.to_bits() as i32;
    i ^ (((i >> 31) as u32) >> 1) as i32
}

/// Median of `v` (reordered), as `numpy.median` (mean of the two middle values when even).
fn median_in_place(v: &mut [f32]) -> f64 {
    let n = v.len();
    let mid = n / 2;
    let (left, m, _) = v.select_nth_unstable_by(mid, f32::total_cmp);
    let m = *m as f64;
    if n % 2 == 1 {
        m
    } else {
        let below = left.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        0.5 * (below + m)
    }
}

/// Median of a sorted slice, as `numpy.median`.
fn median_sorted(s: &[f32]) -> f64 {
    let n = s.len();
    let m = s[n / 2] as f64;
    if n % 2 == 1 {
        m
    } else {
        0.5 * (s[n / 2 - 1] as f64 + m)
    }
}

/// Links up to this long take [`median_mad_short`].
const SHORT_LINK: usize = 64;

/// Robust z-score of one link's amplitudes in place (`scratch` is used for links longer
/// than 64 values).
#[inline(always)]
pub(crate) fn robust_z_link(a: &mut [f32], scratch: &mut Vec<f32>) {
    let n = a.len();
    if n == 0 {
        return;
    }
    let (med, mad) = if n <= SHORT_LINK {
        median_mad_short(a)
    } else {
        scratch.clear();
        scratch.extend_from_slice(a);
        let med = median_in_place(scratch);
        for (s, &v) in scratch.iter_mut().zip(a.iter()) {
            *s = (v as f64 - med).abs() as f32;
        }
        (med, median_in_place(scratch))
    };
    let mut scale = MAD_SCALE * mad;
    if scale <= 0.0 {
        let sum_ad: f64 = a.iter().map(|&v| (v as f64 - med).abs()).sum();
        scale = MEAN_AD_SCALE * (sum_ad / n as f64);
    }
    if scale <= 0.0 {
        a.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    let inv = 1.0 / scale;
    for v in a.iter_mut() {
        *v = ((*v as f64 - med) * inv) as f32;
    }
}

/// Median and MAD (unscaled) of 1 to 64 values, with one sort and no allocation.
///
/// The sort is a rank sort: each value's rank is the number of values below it, counted
/// with comparisons that vectorize, and the value is stored at its rank (equal values
/// share one rank; the places after it are filled with the same value). For the 30 to 64
/// values of a link that beats a comparison sort, which branches. With the values
/// sorted, the absolute deviations `|a - median|` of the lower half walked downwards and
/// of the upper half walked upwards are two ascending runs, and the median deviation is
/// read off them (see below) instead of a second selection. Both medians are those of
/// `numpy.median`.
#[inline(always)]
fn median_mad_short(a: &[f32]) -> (f64, f64) {
    let n = a.len();
    debug_assert!(n > 0 && n <= SHORT_LINK);
    // Keys padded with the largest key, which never counts as below another.
    let mut keys = [i32::MAX; SHORT_LINK];
    for (k, &v) in keys.iter_mut().zip(a) {
        *k = order_key(v);
    }
    let padded = n.next_multiple_of(8).min(SHORT_LINK);
    let mut rank = [0i32; SHORT_LINK];
    let mut seen = 0u64;
    for (r, &ki) in rank[..n].iter_mut().zip(&keys[..n]) {
        // A fixed-length count over the padded keys: it vectorizes.
        let mut below = 0i32;
        for &kj in &keys[..padded] {
            below += (kj < ki) as i32;
        }
        *r = below;
        seen |= 1 << (below as usize % SHORT_LINK);
    }
    let mut sorted = [0f32; SHORT_LINK];
    for (&r, &v) in rank[..n].iter().zip(a) {
        sorted[(r as usize).min(SHORT_LINK - 1)] = v;
    }
    if seen.count_ones() as usize != n {
        // Equal values share their group's first rank (the count of smaller values); the
        // group's other places are the holes after it, filled with the same value.
        for p in 1..n {
            if seen & (1 << p) == 0 {
                sorted[p] = sorted[p - 1];
            }
        }
    }
    let sorted = &sorted[..n];
    let med = median_sorted(sorted);
    // The lower half (all <= the median) walked downwards and the upper half (all >=)
    // walked upwards give ascending deviations, runs `lo` and `hi`. The k-th smallest
    // (0-based) of two sorted runs is min over i of max(lo[i - 1], hi[k - i]), with
    // lo[-1] = hi[-1] = -inf and +inf past either end: taking the first i of one run and
    // k + 1 - i of the other covers at least k + 1 values up to that max, and the right
    // i covers exactly the k + 1 smallest. Both needed order statistics are then one
    // elementwise max and a min over arrays, without a sequential merge.
    let half = n / 2;
    const H: usize = SHORT_LINK / 2 + 2;
    // p[i] = lo[i - 1]; q[i] = hi[k - i] for k = half.
    let mut p = [f32::INFINITY; H];
    let mut q = [f32::INFINITY; H + 1];
    p[0] = f32::NEG_INFINITY;
    for (d, &v) in p[1..].iter_mut().zip(sorted[..half].iter().rev()) {
        *d = (v as f64 - med).abs() as f32;
    }
    // hi[t] for t = half down to 0 lands at q[half - t]; q[half + 1] = hi[-1].
    for (t, &v) in sorted[half..].iter().enumerate().take(half + 1) {
        q[half - t] = (v as f64 - med).abs() as f32;
    }
    q[half + 1] = f32::NEG_INFINITY;
    // The half-th smallest: i = 0..=half + 1 with q[i]; the (half - 1)-th: q[i + 1].
    let mut cur = f32::INFINITY;
    let mut prev = f32::INFINITY;
    for i in 0..=half + 1 {
        cur = cur.min(p[i].max(q[i]));
    }
    for i in 0..=half {
        prev = prev.min(p[i].max(q[i + 1]));
    }
    let mad = if n % 2 == 1 {
        cur as f64
    } else {
        0.5 * (prev as f64 + cur as f64)
    };
    (med, mad)
}

/// Scales one frame's amplitudes so that their mean power is `10^(rssi_dbm/10)` mW.
pub(crate) fn rssi_scale_frame(a: &mut [f32], rssi_dbm: f32) {
    if a.is_empty() {
        return;
    }
    let p = a.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / a.len() as f64;
    if p <= 0.0 {
        return;
    }
    let g = (10f64.powf(rssi_dbm as f64 / 10.0) / p).sqrt();
    for v in a.iter_mut() {
        *v = (*v as f64 * g) as f32;
    }
}

/// Normalizes amplitudes whose last axis is subcarriers. Without `rssi`: robust z-score of
/// every link, any shape. With `rssi` (dBm, one per frame): the input is a frame
/// `(n_tx, n_rx, n_sub)` (one RSSI) or a batch `(n, n_tx, n_rx, n_sub)` (`n` values).
pub fn normalize_amplitude(amp: ArrayViewD<'_, f32>, rssi: Option<&[f32]>) -> Result<ArrayD<f32>> {
    const STEP: &str = "normalize_amplitude";
    let dims = amp.shape().to_vec();
    if dims.is_empty() {
        return Err(shape(STEP, "a 0-d array has no subcarrier axis"));
    }
    if amp.is_empty() {
        return Err(empty(STEP, format!("shape {dims:?}")));
    }
    let mut out: Vec<f32> = with_slice(&amp, |s| {
        check_finite(STEP, s)?;
        Ok(s.to_vec())
    })?;
    match rssi {
        None => {
            let n_sub = dims[dims.len() - 1];
            let mut scratch = Vec::with_capacity(n_sub);
            for link in out.chunks_exact_mut(n_sub) {
                robust_z_link(link, &mut scratch);
            }
        }
        Some(r) => {
            let n_frames = match dims.len() {
                3 => 1,
                4 => dims[0],
                d => {
                    return Err(shape(
                        STEP,
                        format!("with rssi the input must be (n_tx, n_rx, n_sub) or (n, n_tx, n_rx, n_sub), got {d} dimensions"),
                    ))
                }
            };
            if r.len() != n_frames {
                return Err(param(
                    STEP,
                    "rssi",
                    format!("has {} values for {} frame(s)", r.len(), n_frames),
                ));
            }
            check_finite(STEP, r)?;
            let per = out.len() / n_frames;
            for (frame, &db) in out.chunks_exact_mut(per).zip(r) {
                rssi_scale_frame(frame, db);
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(&dims), out).map_err(|e| shape(STEP, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn z_score_is_gain_invariant() {
        let a = Array3::from_shape_fn((1, 2, 30), |(_, r, k)| 1.0 + ((k * 7 + r) % 11) as f32);
        let b = a.mapv(|v| v * 37.5);
        let za = normalize_amplitude(a.view().into_dyn(), None).unwrap();
        let zb = normalize_amplitude(b.view().into_dyn(), None).unwrap();
        for (x, y) in za.iter().zip(zb.iter()) {
            assert!((x - y).abs() < 1e-5);
        }
        // median of each link maps to zero
        let mut link: Vec<f32> = za.iter().take(30).copied().collect();
        link.sort_by(f32::total_cmp);
        assert!((0.5 * (link[14] + link[15])).abs() < 1e-6);
    }

    #[test]
    fn rssi_sets_mean_power() {
        let a = Array3::from_shape_fn((2, 3, 8), |(t, r, k)| (t + r + k) as f32 * 0.1 + 0.5);
        let out = normalize_amplitude(a.view().into_dyn(), Some(&[-40.0])).unwrap();
        let p = out.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / out.len() as f64;
        assert!((10.0 * p.log10() + 40.0).abs() < 1e-4);
        assert!(normalize_amplitude(a.view().into_dyn(), Some(&[-40.0, -41.0])).is_err());
    }

    /// The reference: both medians by sorting, as numpy computes them.
    fn median_mad_by_sorting(a: &[f32]) -> (f64, f64) {
        let med = |v: &mut Vec<f32>| {
            v.sort_by(f32::total_cmp);
            let n = v.len();
            if n % 2 == 1 {
                v[n / 2] as f64
            } else {
                0.5 * (v[n / 2 - 1] as f64 + v[n / 2] as f64)
            }
        };
        let m = med(&mut a.to_vec());
        let mut d: Vec<f32> = a.iter().map(|&v| (v as f64 - m).abs() as f32).collect();
        (m, med(&mut d))
    }

    #[test]
    fn short_links_match_sorting_with_ties_signs_and_every_length() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..4000 {
            let n = 1 + round % SHORT_LINK;
            let a: Vec<f32> = (0..n)
                .map(|_| {
                    let r = next();
                    match round % 4 {
                        // Few distinct values (integer CSI gives many equal amplitudes).
                        0 => (r % 5) as f32,
                        1 => ((r % 7) as f32 - 3.0) * 0.5,
                        2 => [0.0, -0.0, 1.0, -1.0][(r % 4) as usize],
                        _ => (r >> 40) as f32 / 1e4 - 500.0,
                    }
                })
                .collect();
            let (m, d) = median_mad_short(&a);
            let (rm, rd) = median_mad_by_sorting(&a);
            assert_eq!((m, d), (rm, rd), "n {n}: {a:?}");
        }
    }

    #[test]
    fn constant_link_is_zero() {
        let a = ndarray::ArrayD::from_elem(IxDyn(&[4]), 3.0f32);
        let z = normalize_amplitude(a.view(), None).unwrap();
        assert!(z.iter().all(|v| *v == 0.0));
    }
}
