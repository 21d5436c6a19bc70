//! One packet's CSI to the features the sensor watches, for any antenna layout.
//!
//! In: a frame's complex CSI `(n_tx, n_rx, n_sub)`. Out: a fixed-length vector of complex
//! features, grouped in *runs* of neighbouring subcarriers of one link.
//! Guarantee: every per-packet impairment a card adds that is common to its chains
//! (carrier frequency offset, timing offset, automatic gain) cancels, so what changes from
//! packet to packet is the channel and noise:
//! - two or more receive antennas ([`FeatureMode::AntennaPairs`]): the conjugate product
//!   `H[tx, rx, k] * conj(H[tx, 0, k])` of each antenna with the first, divided by the
//!   first antenna's mean power over the subcarriers. The common phase and phase slope
//!   cancel in the product and the gain in the division; the angle of arrival and the
//!   Doppler of each path survive (`../shared/design/sensing.md`). Unlike a plain ratio it
//!   does not blow up in a deep fade of the reference antenna.
//! - one receive antenna and several transmit chains ([`FeatureMode::ChainPairs`]): the
//!   same between transmit chains.
//! - one antenna each way ([`FeatureMode::Amplitude`], ESP32, Nexmon): the log of the
//!   amplitude `|H[k]|` over its RMS across the subcarriers (floored at 0.3), less the
//!   packet's mean log. The phase of a single chain carries a fresh random offset and slope
//!   every packet; amplitude is what is left. Logs, because a relative change then weighs
//!   the same on every subcarrier: on the one real ESP32 capture here, linear amplitudes
//!   made the background's packet-to-packet change look like motion (motion ratio 13.6
//!   where noise alone gives 1; a crossing 17.8); with logs it is 1.6 against 4.6
//!   (`docs/sensing.md`, "One real ESP32 capture"). The floor keeps a subcarrier fading to
//!   nothing for a packet from weighing as minus infinity (0.1 let simulated empty ESP32
//!   rooms report someone in 4 % of frames on the tuning seeds; 0.2-0.5 did not).
//!
//! Subcarriers whose reference power is far below the link's median (guards, nulls, DC)
//! are left out, and at most [`MAX_SUBCARRIERS`] features per link are formed: beyond
//! that, each feature is the mean over a group of neighbouring subcarriers (a 256-subcarrier
//! Nexmon frame gives 58 features of 4 subcarriers each). Averaging neighbours rather than
//! keeping every fourth keeps all the packet's energy: the person's paths change
//! neighbouring subcarriers alike, the noise does not, so each feature's noise power drops
//! by the group size (held-out still people found by Nexmon: see `docs/sensing.md`).
use ndarray::Array3;
use num_complex::Complex32;

/// Subcarriers kept per link at most.
pub const MAX_SUBCARRIERS: usize = 64;

/// How the features of a layout are formed (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureMode {
    /// Two or more receive antennas: each antenna's CSI times the conjugate of the first
    /// antenna's, per transmit chain. Keeps phase (angle of arrival, Doppler).
    AntennaPairs,
    /// One receive antenna, several transmit chains: the same product between chains.
    ChainPairs,
    /// One chain each way (ESP32, Nexmon): normalised amplitude only, since a lone
    /// chain's phase is scrambled every packet.
    Amplitude,
}

impl FeatureMode {
    /// The name reported in `pose_data`'s `metadata.sensing_mode` and the Python
    /// sensing results: `antenna_pairs`, `chain_pairs` or `amplitude`.
    pub fn as_str(self) -> &'static str {
        match self {
            FeatureMode::AntennaPairs => "antenna_pairs",
            FeatureMode::ChainPairs => "chain_pairs",
            FeatureMode::Amplitude => "amplitude",
        }
    }
}

/// The least normalized amplitude a log feature takes (a subcarrier that fades to nothing
/// for one packet must not weigh as minus infinity).
const LOG_FLOOR: f32 = 0.3;

/// The feature layout of one CSI shape: which (link, subcarrier) each feature is.
#[derive(Debug, Clone)]
pub struct FeatureLayout {
    /// How the features are formed, chosen from the antenna counts.
    pub mode: FeatureMode,
    /// The CSI shape `(n_tx, n_rx, n_sub)` the layout was built for; a frame of any
    /// other shape does not fit it (the sensor then starts over with a new layout).
    pub shape: [usize; 3],
    /// `(a, b, k)`: term = `H[a] * conj(H[b])` at subcarrier `k` (antenna-pair modes, `a`
    /// and `b` flat `(tx, rx)` chain indices), or `|H[a]|` (amplitude, `b == a`).
    pairs: Vec<(usize, usize, usize)>,
    /// Terms averaged into each feature (neighbouring subcarriers of one pair), in order.
    group: usize,
    /// Feature index ranges of neighbouring subcarriers (for the noise estimate).
    pub runs: Vec<std::ops::Range<usize>>,
    /// Per pair's reference chain: the subcarriers used for its mean power.
    references: Vec<usize>,
}

impl FeatureLayout {
    /// The layout for frames shaped like `csi`, its subcarriers chosen from this frame's
    /// reference power. None when the frame has no usable subcarrier.
    pub fn for_frame(csi: &Array3<Complex32>) -> Option<Self> {
        let (n_tx, n_rx, n_sub) = csi.dim();
        if n_tx == 0 || n_rx == 0 || n_sub < 3 {
            return None;
        }
        let mode = if n_rx >= 2 {
            FeatureMode::AntennaPairs
        } else if n_tx >= 2 {
            FeatureMode::ChainPairs
        } else {
            FeatureMode::Amplitude
        };
        // (measured chain, reference chain) pairs, chains flattened as tx * n_rx + rx.
        let chain_pairs: Vec<(usize, usize)> = match mode {
            FeatureMode::AntennaPairs => (0..n_tx)
                .flat_map(|t| (1..n_rx).map(move |r| (t * n_rx + r, t * n_rx)))
                .collect(),
            FeatureMode::ChainPairs => (1..n_tx).map(|t| (t, 0)).collect(),
            FeatureMode::Amplitude => vec![(0, 0)],
        };
        let flat = csi.as_slice()?;
        let power = |chain: usize, k: usize| flat[chain * n_sub + k].norm_sqr();
        let mut pairs = Vec::new();
        let mut runs = Vec::new();
        let mut references = Vec::new();
        let mut group: Option<usize> = None;
        for &(a, b) in &chain_pairs {
            let mut p: Vec<f32> = (0..n_sub).map(|k| power(b, k)).collect();
            let mut sorted = p.clone();
            sorted.sort_by(f32::total_cmp);
            let median = sorted[n_sub / 2];
            if !(median.is_finite() && median > 0.0) {
                continue;
            }
            // Guards and nulls read exactly zero; a deep fade is still a subcarrier.
            for v in p.iter_mut() {
                *v /= median;
            }
            let usable: Vec<usize> = (0..n_sub).filter(|&k| p[k] > 1e-4).collect();
            // The same group size for every pair of the layout (so every feature has the
            // same noise); the first pair decides it.
            let g = *group.get_or_insert(usable.len().div_ceil(MAX_SUBCARRIERS).max(1));
            // Contiguous stretches of usable subcarriers (a null or guard in between starts
            // a new one), each cut into whole groups: a run of features.
            let mut i = 0;
            while i < usable.len() {
                let mut j = i + 1;
                while j < usable.len() && usable[j] == usable[j - 1] + 1 {
                    j += 1;
                }
                let start = pairs.len() / g;
                for chunk in usable[i..j].chunks_exact(g) {
                    pairs.extend(chunk.iter().map(|&k| (a, b, k)));
                }
                runs.push(start..pairs.len() / g);
                i = j;
            }
            references.push(b);
        }
        let group = group.unwrap_or(1);
        runs.retain(|r| r.len() >= 3);
        if runs.is_empty() {
            return None;
        }
        Some(FeatureLayout {
            mode,
            shape: [n_tx, n_rx, n_sub],
            pairs,
            group,
            runs,
            references,
        })
    }

    /// Features per frame.
    pub fn len(&self) -> usize {
        self.pairs.len() / self.group
    }

    /// Neighbouring subcarriers averaged into each feature.
    pub fn group(&self) -> usize {
        self.group
    }

    /// True when the layout forms no feature (no pair had a usable subcarrier).
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Features of one frame into `out` (resized to [`Self::len`]). False when the frame
    /// does not fit the layout or holds a non-finite value.
    pub fn extract(&self, csi: &Array3<Complex32>, out: &mut Vec<Complex32>) -> bool {
        let (n_tx, n_rx, n_sub) = csi.dim();
        if [n_tx, n_rx, n_sub] != self.shape {
            return false;
        }
        let Some(flat) = csi.as_slice() else {
            return false;
        };
        out.clear();
        // Mean power of each reference chain over the kept subcarriers: the gain to divide.
        let n_chains = n_tx * n_rx;
        let mut scale = vec![0f32; n_chains];
        let mut counts = vec![0u32; n_chains];
        for &(_, b, k) in &self.pairs {
            scale[b] += flat[b * n_sub + k].norm_sqr();
            counts[b] += 1;
        }
        for &b in &self.references {
            if counts[b] == 0 || scale[b].partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                return false;
            }
            scale[b] /= counts[b] as f32;
        }
        let amplitude = self.mode == FeatureMode::Amplitude;
        for terms in self.pairs.chunks_exact(self.group) {
            let b = terms[0].1;
            let s = if amplitude { scale[b].sqrt() } else { scale[b] } * self.group as f32;
            let mut v = Complex32::default();
            for &(a, b, k) in terms {
                v += if amplitude {
                    Complex32::new(flat[a * n_sub + k].norm(), 0.0)
                } else {
                    flat[a * n_sub + k] * flat[b * n_sub + k].conj()
                };
            }
            let v = if amplitude {
                // Log amplitude: a relative change weighs the same on a weak subcarrier as
                // on a strong one (see the module docs).
                Complex32::new((v.re / s).max(LOG_FLOOR).ln(), 0.0)
            } else {
                v / s
            };
            if !(v.re.is_finite() && v.im.is_finite()) {
                return false;
            }
            out.push(v);
        }
        if amplitude && !out.is_empty() {
            // The packet's mean log amplitude is its gain: taken out, as the RMS was.
            let mean = out.iter().map(|v| v.re).sum::<f32>() / out.len() as f32;
            out.iter_mut().for_each(|v| v.re -= mean);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::PI;

    fn frame(
        n_tx: usize,
        n_rx: usize,
        n_sub: usize,
        common_phase: f32,
        slope: f32,
        gain: f32,
    ) -> Array3<Complex32> {
        Array3::from_shape_fn((n_tx, n_rx, n_sub), |(t, r, k)| {
            // A fixed two-path channel per chain, then the per-packet impairments.
            let chan = Complex32::from_polar(1.0, 0.3 * k as f32 + r as f32 + 0.5 * t as f32)
                + Complex32::from_polar(0.4, -0.7 * k as f32 + 2.0 * r as f32);
            chan * Complex32::from_polar(gain, common_phase + slope * k as f32)
        })
    }

    #[test]
    fn per_packet_offsets_cancel_in_every_mode() {
        for (n_tx, n_rx) in [(3, 3), (1, 2), (2, 1), (1, 1)] {
            let a = frame(n_tx, n_rx, 30, 0.0, 0.0, 1.0);
            let b = frame(n_tx, n_rx, 30, 2.1, -0.4 * PI / 30.0, 3.7);
            let layout = FeatureLayout::for_frame(&a).unwrap();
            let (mut fa, mut fb) = (Vec::new(), Vec::new());
            assert!(layout.extract(&a, &mut fa) && layout.extract(&b, &mut fb));
            for (x, y) in fa.iter().zip(&fb) {
                assert!((x - y).norm() < 1e-4, "{n_tx}x{n_rx}: {x} vs {y}");
            }
        }
    }

    #[test]
    fn modes_feature_counts_and_nulls() {
        let l = FeatureLayout::for_frame(&frame(3, 3, 30, 0.0, 0.0, 1.0)).unwrap();
        assert_eq!((l.mode, l.len()), (FeatureMode::AntennaPairs, 3 * 2 * 30));
        // 256 subcarriers: 64 features, each the mean of 4 neighbours (not every fourth).
        let f256 = frame(1, 1, 256, 0.0, 0.0, 1.0);
        let l = FeatureLayout::for_frame(&f256).unwrap();
        assert_eq!(
            (l.mode, l.len(), l.group()),
            (FeatureMode::Amplitude, 64, 4)
        );
        let mut out = Vec::new();
        assert!(l.extract(&f256, &mut out));
        // Each feature: the log of its group's mean amplitude over the packet's RMS
        // (floored), less the packet's mean of those logs.
        let rms = (f256.iter().map(|v| v.norm_sqr()).sum::<f32>() / 256.0).sqrt();
        let log_of = |g: usize| {
            let a = (4 * g..4 * g + 4)
                .map(|k| f256[[0, 0, k]].norm())
                .sum::<f32>()
                / 4.0
                / rms;
            a.max(LOG_FLOOR).ln()
        };
        let mean = (0..64).map(log_of).sum::<f32>() / 64.0;
        let want = log_of(1) - mean;
        assert!((out[1].re - want).abs() < 1e-4, "{} vs {want}", out[1].re);
        assert!(out.iter().map(|v| v.re).sum::<f32>().abs() < 1e-3);
        // A packet at another gain gives the same features.
        let louder = f256.mapv(|v| v * 5.0);
        let mut again = Vec::new();
        assert!(l.extract(&louder, &mut again));
        assert!(out.iter().zip(&again).all(|(a, b)| (a - b).norm() < 1e-4));
        // Zeroed guard subcarriers and a DC null are left out and split the runs.
        let mut f = frame(1, 1, 64, 0.0, 0.0, 1.0);
        for k in [0, 1, 2, 32, 61, 62, 63] {
            f[[0, 0, k]] = Complex32::new(0.0, 0.0);
        }
        let l = FeatureLayout::for_frame(&f).unwrap();
        assert_eq!(l.len(), 57);
        assert_eq!(l.runs.len(), 2);
        // A frame of another shape or with NaN is refused.
        let mut out = Vec::new();
        assert!(!l.extract(&frame(1, 1, 30, 0.0, 0.0, 1.0), &mut out));
        f[[0, 0, 10]] = Complex32::new(f32::NAN, 0.0);
        assert!(!l.extract(&f, &mut out));
    }
}
