//! A second of CSI to a fixed-length description of how the channel moved in it, for any
//! antenna layout: what a trained classifier (`wifi-densepose train`) reads, live and in
//! training alike.
//!
//! In: frames of one device (any `(n_tx, n_rx, n_sub)`), turned into the sensor's
//! per-packet features ([`FeatureLayout`]: antenna-pair products, chain pairs or
//! normalized amplitude). Out: every `hop_s` seconds of source clock, [`LEN`] numbers
//! describing the last `window_s` seconds ([`NAMES`], in groups):
//! - `level`: how much the features varied and changed packet to packet, over the noise
//!   measured across neighbouring subcarriers in the same packets (log ratios);
//! - `peak`: the largest packet-to-packet change over the median one (bursts vs steady);
//! - `bands`: the share of the variation in eleven bands of fluctuation rate (0.1 to
//!   32 Hz: breathing, gestures, walking), the Doppler profile of the window;
//! - `quarters`: the variation in each quarter of the window over their mean, sorted
//!   (a fall is a burst then stillness; walking is even);
//! - `eigen`: the shares of the four strongest independent patterns of change (one body
//!   moving one way vs many paths changing at once);
//! - `amplitude_angle`: how much the features' magnitude and angle varied.
//!
//! None of them is the channel's static profile: that identifies the room and the session
//! (`docs/model.md`), not the activity. Which groups a model uses is its own choice (the
//! classifier graph selects them); this module always computes all of them, so one
//! implementation serves every model and training and serving cannot drift apart.
//!
//! A frame whose shape differs from the current layout's is skipped (Intel 5300 logs carry
//! a stray 3-antenna frame now and then); the layout is rebuilt only once frames of the
//! new shape have come for a whole window. Windows are cut on the source's clock, so a
//! recording replayed flat out gives the same vectors as live.
use std::collections::VecDeque;

use ndarray::Array3;
use num_complex::Complex32;
use rustfft::num_complex::Complex64;

use super::features::FeatureLayout;

/// The version of this description; a classifier names the one it was trained on.
pub const FEATURE_SET: &str = "wdp-window-v1";

/// Fluctuation-rate bands of the `bands` group, Hz.
const BANDS: [(f64, f64); 11] = [
    (0.1, 0.5),
    (0.5, 1.0),
    (1.0, 2.0),
    (2.0, 3.0),
    (3.0, 4.0),
    (4.0, 6.0),
    (6.0, 8.0),
    (8.0, 12.0),
    (12.0, 16.0),
    (16.0, 24.0),
    (24.0, 32.0),
];

/// Independent patterns of change kept in the `eigen` group.
const EIGEN: usize = 4;

/// Every feature's name, in the order of the vector.
pub const NAMES: [&str; 24] = [
    "level.variance_over_noise",
    "level.change_over_noise",
    "peak.change_peak_over_median",
    "bands.0.1-0.5hz",
    "bands.0.5-1hz",
    "bands.1-2hz",
    "bands.2-3hz",
    "bands.3-4hz",
    "bands.4-6hz",
    "bands.6-8hz",
    "bands.8-12hz",
    "bands.12-16hz",
    "bands.16-24hz",
    "bands.24-32hz",
    "quarters.1",
    "quarters.2",
    "quarters.3",
    "quarters.4",
    "eigen.1",
    "eigen.2",
    "eigen.3",
    "eigen.4",
    "amplitude_angle.amplitude",
    "amplitude_angle.angle",
];

/// Values in one description.
pub const LEN: usize = NAMES.len();

/// The groups, as `train --features` names them.
pub const GROUPS: [&str; 6] = [
    "level",
    "peak",
    "bands",
    "quarters",
    "eigen",
    "amplitude_angle",
];

/// Packets a window needs before it is described.
pub const MIN_FRAMES: usize = 8;
/// Packets a window holds at most (the oldest go first): bounds memory and the cost of
/// the `eigen` group on a fast source.
pub const MAX_FRAMES: usize = 256;

/// The indices of the features in `groups` (each one of [`GROUPS`]).
pub fn indices(groups: &[&str]) -> Result<Vec<usize>, String> {
    for g in groups {
        if !GROUPS.contains(g) {
            return Err(format!("unknown feature group {g:?}; known: {GROUPS:?}"));
        }
    }
    Ok(NAMES
        .iter()
        .enumerate()
        .filter(|(_, n)| groups.iter().any(|g| n.split('.').next() == Some(*g)))
        .map(|(i, _)| i)
        .collect())
}

/// Why [`WindowFeatures::new`] refused its settings.
pub fn check_settings(window_s: f64, hop_s: f64) -> Result<(), String> {
    if !(window_s.is_finite() && (0.2..=60.0).contains(&window_s)) {
        return Err(format!(
            "window_s must be 0.2 to 60 seconds, not {window_s}"
        ));
    }
    if !(hop_s.is_finite() && hop_s >= 0.01 && hop_s <= window_s) {
        return Err(format!(
            "hop_s must be at least 0.01 s and at most window_s ({window_s}), not {hop_s}"
        ));
    }
    Ok(())
}

/// The streaming describer: frames in, a description every `hop_s` seconds.
pub struct WindowFeatures {
    window_s: f64,
    hop_s: f64,
    layout: Option<FeatureLayout>,
    ring: VecDeque<(f64, Vec<Complex32>)>,
    /// Since when frames have come in this layout (the window is full a window later).
    since: Option<f64>,
    next_due: Option<f64>,
    /// When a frame of another shape than the layout's first came, and its shape.
    other_shape: Option<(f64, [usize; 3])>,
    last_t: Option<f64>,
    /// Frames left out (another shape, non-finite values).
    pub skipped: u64,
    scratch: Vec<Complex32>,
    /// Takes out the receive chains' quarter-turn phase steps ([`super::chains`]).
    chains: super::chains::ChainAligner,
}

impl WindowFeatures {
    /// A describer of the last `window_s` seconds every `hop_s` seconds.
    pub fn new(window_s: f64, hop_s: f64) -> Result<Self, String> {
        check_settings(window_s, hop_s)?;
        Ok(WindowFeatures {
            window_s,
            hop_s,
            layout: None,
            ring: VecDeque::new(),
            since: None,
            next_due: None,
            other_shape: None,
            last_t: None,
            skipped: 0,
            scratch: Vec::new(),
            chains: Default::default(),
        })
    }

    /// Seconds of source time each description covers (a model's stage compares it
    /// with the loaded classifier's, to know whether this describer still fits).
    pub fn window_s(&self) -> f64 {
        self.window_s
    }

    /// Seconds of source time between descriptions.
    pub fn hop_s(&self) -> f64 {
        self.hop_s
    }

    fn reset(&mut self) {
        self.layout = None;
        self.ring.clear();
        self.since = None;
        self.next_due = None;
        self.other_shape = None;
    }

    /// Takes one frame at `t` seconds; returns the window's description when one is due.
    pub fn push(&mut self, t: f64, csi: &Array3<Complex32>) -> Option<[f32; LEN]> {
        if !t.is_finite() {
            self.skipped += 1;
            return None;
        }
        if self.last_t.is_some_and(|last| t < last - 1.0) {
            self.reset(); // the source clock went back: a new run
        }
        self.last_t = Some(t);
        let shape = {
            let (a, b, c) = csi.dim();
            [a, b, c]
        };
        if self.layout.as_ref().is_some_and(|l| l.shape != shape) {
            match self.other_shape {
                Some((t0, s)) if s == shape && t - t0 >= self.window_s => self.reset(),
                Some((_, s)) if s == shape => {
                    self.skipped += 1;
                    return None;
                }
                _ => {
                    self.other_shape = Some((t, shape));
                    self.skipped += 1;
                    return None;
                }
            }
        }
        if self.layout.is_none() {
            match FeatureLayout::for_frame(csi) {
                Some(l) => self.layout = Some(l),
                None => {
                    self.skipped += 1;
                    return None;
                }
            }
        }
        let csi = self.chains.align(csi);
        let layout = self.layout.as_ref()?;
        let mut values = std::mem::take(&mut self.scratch);
        if !layout.extract(&csi, &mut values) {
            self.scratch = values;
            self.skipped += 1;
            return None;
        }
        self.other_shape = None;
        // Reuse the buffer of the frame that leaves the window.
        while self
            .ring
            .front()
            .is_some_and(|(t0, _)| *t0 <= t - self.window_s)
            || self.ring.len() >= MAX_FRAMES
        {
            if let Some((_, v)) = self.ring.pop_front() {
                self.scratch = v;
            }
        }
        self.ring.push_back((t, values));
        let since = *self.since.get_or_insert(t);
        // Full once a whole window has passed since the first frame (1 ms of slack).
        if t + 1e-3 < since + self.window_s {
            return None;
        }
        if self.next_due.is_some_and(|due| t + 1e-3 < due) {
            return None;
        }
        self.next_due = Some(match self.next_due {
            Some(due) => (due + self.hop_s).max(t),
            None => t + self.hop_s,
        });
        if self.ring.len() < MIN_FRAMES {
            return None;
        }
        Some(describe(&self.ring, &layout.runs))
    }
}

/// The description of one window of per-packet features (see the module docs).
pub fn describe(
    ring: &VecDeque<(f64, Vec<Complex32>)>,
    runs: &[std::ops::Range<usize>],
) -> [f32; LEN] {
    let n = ring.len();
    let l = ring.front().map_or(0, |(_, v)| v.len());
    let tiny = 1e-12;
    // Centre each feature over the window.
    let mut mean = vec![Complex64::new(0.0, 0.0); l];
    for (_, v) in ring {
        for (m, x) in mean.iter_mut().zip(v) {
            *m += Complex64::new(x.re as f64, x.im as f64);
        }
    }
    for m in &mut mean {
        *m /= n as f64;
    }
    let centred: Vec<Vec<Complex64>> = ring
        .iter()
        .map(|(_, v)| {
            v.iter()
                .zip(&mean)
                .map(|(x, m)| Complex64::new(x.re as f64, x.im as f64) - m)
                .collect()
        })
        .collect();
    let per_packet_var: Vec<f64> = centred
        .iter()
        .map(|row| row.iter().map(|x| x.norm_sqr()).sum::<f64>())
        .collect();
    let variance = per_packet_var.iter().sum::<f64>() / (n * l).max(1) as f64 + tiny;
    // Packet-to-packet change energy.
    let change: Vec<f64> = ring
        .iter()
        .zip(ring.iter().skip(1))
        .map(|((_, a), (_, b))| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (y - x).norm_sqr() as f64)
                .sum()
        })
        .collect();
    let mean_change = change.iter().sum::<f64>() / change.len().max(1) as f64;
    // Noise: second difference across neighbouring subcarriers of one link.
    let (mut noise, mut noise_n) = (0.0f64, 0usize);
    for (_, v) in ring {
        for run in runs {
            for k in run.start + 1..run.end.saturating_sub(1) {
                let d = v[k + 1] - v[k] * 2.0 + v[k - 1];
                noise += d.norm_sqr() as f64;
                noise_n += 1;
            }
        }
    }
    let noise = noise / noise_n.max(1) as f64 + tiny;
    let mut out = [0f32; LEN];
    out[0] = (variance / noise).ln() as f32;
    out[1] = (mean_change / noise + tiny).ln() as f32;
    let median = {
        let mut c = change.clone();
        c.sort_by(f64::total_cmp);
        c.get(c.len() / 2).copied().unwrap_or(0.0)
    };
    let peak = change.iter().copied().fold(0.0, f64::max);
    out[2] = (peak / (median + tiny) + tiny).ln() as f32;
    // Bands: Hann-windowed FFT over time of every feature, power summed over features.
    let times: Vec<f64> = ring.iter().map(|(t, _)| *t).collect();
    let dt = {
        let mut d: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        d.sort_by(f64::total_cmp);
        d.get(d.len() / 2)
            .copied()
            .filter(|x| *x > 0.0)
            .unwrap_or(0.01)
    };
    let fft = rustfft::FftPlanner::<f64>::new().plan_fft_forward(n);
    let hann: Vec<f64> = (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (n - 1).max(1) as f64).cos())
        .collect();
    let mut power = vec![0.0f64; n];
    let mut buf = vec![Complex64::new(0.0, 0.0); n];
    for j in 0..l {
        for (b, (row, w)) in buf.iter_mut().zip(centred.iter().zip(&hann)) {
            *b = row[j] * w;
        }
        fft.process(&mut buf);
        for (p, b) in power.iter_mut().zip(&buf) {
            *p += b.norm_sqr();
        }
    }
    let freq = |i: usize| {
        let f = if i <= (n - 1) / 2 {
            i as f64
        } else {
            i as f64 - n as f64
        };
        f.abs() / (n as f64 * dt)
    };
    let total: f64 = (0..n)
        .filter(|&i| freq(i) > 0.0)
        .map(|i| power[i])
        .sum::<f64>()
        + tiny;
    for (b, (lo, hi)) in BANDS.iter().enumerate() {
        let share: f64 = (0..n)
            .filter(|&i| (*lo..*hi).contains(&freq(i)))
            .map(|i| power[i])
            .sum::<f64>()
            / total;
        out[3 + b] = (share + 1e-4).ln() as f32;
    }
    // Quarters: the variation in each quarter over their mean, sorted.
    let mut quarters = [0f64; 4];
    for (q, slot) in quarters.iter_mut().enumerate() {
        let (a, b) = (q * n / 4, ((q + 1) * n / 4).max(q * n / 4 + 1).min(n));
        *slot = per_packet_var[a..b].iter().sum::<f64>() / (b - a).max(1) as f64;
    }
    let qmean = quarters.iter().sum::<f64>() / 4.0;
    let mut qlog: Vec<f64> = quarters
        .iter()
        .map(|q| (q / (qmean + tiny) + 1e-6).ln())
        .collect();
    qlog.sort_by(f64::total_cmp);
    for (i, q) in qlog.iter().enumerate() {
        out[14 + i] = *q as f32;
    }
    // Eigen: the strongest patterns' shares of the variation, from the packets' Gram matrix.
    let gram: Vec<f64> = (0..n * n)
        .map(|ij| {
            let (i, j) = (ij / n, ij % n);
            centred[i]
                .iter()
                .zip(&centred[j])
                .map(|(a, b)| a.re * b.re + a.im * b.im)
                .sum()
        })
        .collect();
    let trace: f64 = (0..n).map(|i| gram[i * n + i]).sum::<f64>() + tiny;
    for (e, value) in top_eigenvalues(gram, n, EIGEN).into_iter().enumerate() {
        out[18 + e] = (value / trace + 1e-6).ln() as f32;
    }
    // Amplitude and angle variation (angle against the window's mean feature).
    let (mut amp_var, mut amp_pow, mut ang_var) = (0.0f64, 0.0f64, 0.0f64);
    for j in 0..l {
        let (mut s, mut s2, mut a, mut a2) = (0.0, 0.0, 0.0, 0.0);
        for (_, v) in ring {
            let x = Complex64::new(v[j].re as f64, v[j].im as f64);
            let m = x.norm();
            s += m;
            s2 += m * m;
            let angle = (x * mean[j].conj()).arg();
            a += angle;
            a2 += angle * angle;
        }
        let k = n as f64;
        amp_var += (s2 / k - (s / k).powi(2)).max(0.0);
        amp_pow += s2 / k;
        ang_var += (a2 / k - (a / k).powi(2)).max(0.0);
    }
    let lf = l.max(1) as f64;
    out[22] = ((amp_var / lf + tiny) / (amp_pow / lf + tiny)).ln() as f32;
    out[23] = (ang_var / lf + tiny).ln() as f32;
    for v in &mut out {
        if !v.is_finite() {
            *v = 0.0;
        }
    }
    out
}

/// The `k` largest eigenvalues of the symmetric positive semi-definite `n x n` matrix
/// `m` (row-major), by power iteration with deflation; deterministic (fixed start).
fn top_eigenvalues(mut m: Vec<f64>, n: usize, k: usize) -> Vec<f64> {
    let mut values = Vec::with_capacity(k);
    for e in 0..k {
        if e >= n {
            values.push(0.0);
            continue;
        }
        let mut v: Vec<f64> = (0..n)
            .map(|i| 1.0 + ((i * 7 + e * 3) % 11) as f64 * 0.1)
            .collect();
        let mut lambda = 0.0;
        for _ in 0..300 {
            let mut w = vec![0.0; n];
            for (i, wi) in w.iter_mut().enumerate() {
                *wi = m[i * n..(i + 1) * n]
                    .iter()
                    .zip(&v)
                    .map(|(a, b)| a * b)
                    .sum();
            }
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm <= 1e-300 {
                lambda = 0.0;
                break;
            }
            for x in &mut w {
                *x /= norm;
            }
            let delta: f64 = w.iter().zip(&v).map(|(a, b)| (a - b).abs()).sum();
            v = w;
            let converged = (norm - lambda).abs() <= 1e-10 * norm && delta < 1e-8;
            lambda = norm;
            if converged {
                break;
            }
        }
        values.push(lambda);
        for i in 0..n {
            for j in 0..n {
                m[i * n + j] -= lambda * v[i] * v[j];
            }
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(t: f64, n_rx: usize, moving: bool) -> Array3<Complex32> {
        Array3::from_shape_fn((1, n_rx, 30), |(_, r, k)| {
            let path = if moving {
                Complex32::from_polar(
                    0.5,
                    (2.0 * std::f64::consts::PI * 3.5 * t) as f32 + 0.2 * k as f32,
                )
            } else {
                Complex32::new(0.0, 0.0)
            };
            Complex32::from_polar(1.0, 0.1 * k as f32 + r as f32) + path * (r as f32 + 1.0)
        })
    }

    #[test]
    fn a_window_every_hop_once_full() {
        let mut w = WindowFeatures::new(1.0, 0.25).unwrap();
        let due: Vec<usize> = (0..300)
            .filter(|&i| {
                w.push(i as f64 * 0.01, &frame(i as f64 * 0.01, 2, true))
                    .is_some()
            })
            .collect();
        assert_eq!(
            due.first(),
            Some(&100),
            "full one window after the first frame"
        );
        assert!(due.windows(2).all(|p| p[1] - p[0] == 25), "{due:?}");
    }

    #[test]
    fn motion_at_3_5_hz_lands_in_its_band_and_stillness_does_not() {
        let run = |moving: bool| {
            let mut w = WindowFeatures::new(2.0, 0.5).unwrap();
            let mut last = None;
            for i in 0..250 {
                let t = i as f64 * 0.01;
                if let Some(v) = w.push(t, &frame(t, 3, moving)) {
                    last = Some(v);
                }
            }
            last.unwrap()
        };
        let moving = run(true);
        let band = NAMES.iter().position(|n| *n == "bands.3-4hz").unwrap();
        let best = (3..14)
            .max_by(|&a, &b| moving[a].total_cmp(&moving[b]))
            .unwrap();
        assert_eq!(best, band, "{moving:?}");
        assert!(
            moving[0] > run(false)[0] + 5.0,
            "variance over noise rises with motion"
        );
        assert!(moving.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn stray_shapes_are_skipped_and_a_lasting_change_relayouts() {
        let mut w = WindowFeatures::new(0.5, 0.1).unwrap();
        for i in 0..40 {
            w.push(i as f64 * 0.01, &frame(i as f64 * 0.01, 2, true));
        }
        w.push(0.40, &frame(0.4, 3, true));
        assert_eq!(w.skipped, 1);
        let out: Vec<bool> = (41..200)
            .map(|i| {
                w.push(i as f64 * 0.01, &frame(i as f64 * 0.01, 3, true))
                    .is_some()
            })
            .collect();
        assert!(
            out.iter().any(|x| *x),
            "the new shape is described after a window"
        );
    }

    #[test]
    fn groups_select_indices_and_settings_are_checked() {
        assert_eq!(indices(&["eigen"]).unwrap(), vec![18, 19, 20, 21]);
        assert_eq!(indices(&["level", "peak"]).unwrap(), vec![0, 1, 2]);
        assert!(indices(&["nope"]).is_err());
        assert!(WindowFeatures::new(0.0, 0.1).is_err());
        assert!(WindowFeatures::new(1.0, 2.0).is_err());
        assert!(WindowFeatures::new(f64::NAN, 0.1).is_err());
    }

    #[test]
    fn eigenvalues_of_a_known_matrix() {
        // diag(5, 3, 1) rotated stays 5, 3, 1.
        let m = vec![4.0, 1.0, 0.0, 1.0, 4.0, 0.0, 0.0, 0.0, 1.0];
        let v = top_eigenvalues(m, 3, 3);
        for (a, b) in v.iter().zip([5.0, 3.0, 1.0]) {
            assert!((a - b).abs() < 1e-6, "{v:?}");
        }
    }
}
