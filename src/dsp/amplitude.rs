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

fn median_in_place(v: &mut [f32]) -> f64 {
    let n = v.len();
    let mid = n / 2;
    let (left, m, _) = v.select_nth_unstable_by(mid, |a, b| {
        a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal)
    });
    let m = *m as f64;
    if n % 2 == 1 {
        m
    } else {
        let below = left.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        0.5 * (below + m)
    }
}

/// Robust z-score of one link's amplitudes in place (`scratch` at least as long).
pub fn robust_z_link(a: &mut [f32], scratch: &mut Vec<f32>) {
    let n = a.len();
    if n == 0 {
        return;
    }
    scratch.clear();
    scratch.extend_from_slice(a);
    let med = median_in_place(scratch);
    let mut sum_ad = 0.0f64;
    for (s, &v) in scratch.iter_mut().zip(a.iter()) {
        let d = (v as f64 - med).abs();
        sum_ad += d;
        *s = d as f32;
    }
    let mean_ad = sum_ad / n as f64;
    let mut scale = MAD_SCALE * median_in_place(scratch);
    if scale <= 0.0 {
        scale = MEAN_AD_SCALE * mean_ad;
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

/// Scales one frame's amplitudes so that their mean power is `10^(rssi_dbm/10)` mW.
pub fn rssi_scale_frame(a: &mut [f32], rssi_dbm: f32) {
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

    #[test]
    fn constant_link_is_zero() {
        let a = ndarray::ArrayD::from_elem(IxDyn(&[4]), 3.0f32);
        let z = normalize_amplitude(a.view(), None).unwrap();
        assert!(z.iter().all(|v| *v == 0.0));
    }
}
