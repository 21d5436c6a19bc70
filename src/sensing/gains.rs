//! Receive chains whose gains step between packets, held to their slow level.
//!
//! In: a source's frames `(n_tx, n_rx, n_sub)`, in order. Out: the same frames, with each
//! receive chain of a source whose chain gains step scaled so that its power against the
//! other chains' stays at its slow level (a source that does not step is left exactly as it
//! is).
//!
//! Why: on the real Atheros and QCA9300 recordings here, one receive chain's power against
//! the others changes by 3 and 5 dB on the median between packets 2 ms and 0.12 ms apart,
//! by 18-25 dB at the 99th percentile, while the shape of its amplitude across subcarriers
//! stays the same (correlation 0.995-0.998 at the 5th percentile where it jumps): gain
//! stages switching per chain, not a body, which cannot change a chain's power by decibels
//! in a tenth of a millisecond without changing its shape. Everything that reads the chains
//! against each other (the sensor's antenna-pair products, the localizer's steering, the
//! window features) read those steps as motion: motion ratios of 250 and 485 on those
//! recordings (`benches/chain_gains.py`, `docs/sensing.md`, "Receive chains' gain steps").
//! (The two-antenna Intel 5300 captures' jumps are something else, their antennas trading
//! places, put right at the environment's entry: `crate::csi::intel5300::put_in_antenna_order`.)
//!
//! A frame steps when some chain's power against the mean of the chains' (in decibels)
//! changed by `STEP_DB` or more since the previous frame while every chain's amplitude
//! profile kept a correlation of `SAME_SHAPE` or more with its previous one. A source steps
//! once `STEPPING_AFTER` of its last 64 frames did: the real Atheros and QCA9300 recordings
//! show 34-57 such frames in every 64; the simulator, whose chains do not step, at most 3
//! in 72 held-out days. Its only near miss is a body's hard-edged shadow on one antenna (a
//! jump of 3-8 dB with the shape kept at 0.95 on the median, 0.998 at most), which reached
//! 28 in 64 at a looser 0.9 shape rule. From then on each chain is scaled to its slow level: an average of its
//! relative power over about `FOLLOW_FRAMES` frames. What is lost for a stepping source is
//! a chain's fast power change against the others; the shape across subcarriers and the
//! phases between chains are kept.

use std::borrow::Cow;

use ndarray::Array3;
use num_complex::Complex32;

/// A chain's power against the chains' mean must change by this much between two frames
/// to count as a step, dB.
const STEP_DB: f64 = 2.5;
/// ... while its amplitude profile's correlation with the previous frame's stays at least
/// this (a gain changes the level, not the shape).
const SAME_SHAPE: f64 = 0.995;
/// Frames with a step among the last 64 that make a source a stepping one.
const STEPPING_AFTER: u32 = 16;
/// How many frames a chain's slow level averages over (4 s at 100 packets/s).
const FOLLOW_FRAMES: f64 = 400.0;

/// Per receive chain: its power against the chains' mean, dB, and its amplitude profile in
/// the last frame; the slow level it is held to once the source steps.
#[derive(Debug, Clone, Default)]
pub struct ChainGains {
    shape: [usize; 3],
    relative_db: Vec<f64>,
    profiles: Vec<Vec<f32>>,
    level_db: Vec<f64>,
    /// Reused from frame to frame: the chains' relative powers being computed.
    scratch: Vec<f64>,
    /// The last 64 frames, newest in bit 0: whether some chain's gain stepped.
    recent: u64,
    stepping: bool,
    began_stepping: bool,
    /// Frames scaled.
    pub scaled_frames: u64,
}

impl ChainGains {
    /// Whether this source's receive chains' gains have been seen to step.
    pub fn stepping(&self) -> bool {
        self.stepping
    }

    /// Whether the last frame was the one that showed the source's gains step (once).
    pub fn take_began_stepping(&mut self) -> bool {
        std::mem::take(&mut self.began_stepping)
    }

    /// The frame with each receive chain held to its slow level (borrowed when the source
    /// does not step, or has one receive chain).
    pub fn hold<'a>(&mut self, csi: Cow<'a, Array3<Complex32>>) -> Cow<'a, Array3<Complex32>> {
        let (n_tx, n_rx, n_sub) = csi.dim();
        if n_rx < 2 {
            return csi;
        }
        let shape = [n_tx, n_rx, n_sub];
        if self.shape != shape {
            self.shape = shape;
            self.relative_db.clear();
            self.profiles = vec![Vec::new(); n_rx];
            self.level_db.clear();
        }
        // One pass per chain: its power, and its amplitude profile's correlation with the
        // last frame's, the profile overwritten in place (this runs on every packet of
        // every source, three times: nothing is allocated once the layout is known).
        let first = self.relative_db.len() == n_rx;
        let mut relative = std::mem::take(&mut self.scratch);
        relative.clear();
        let mut same_shape = first;
        for rx in 0..n_rx {
            let profile = &mut self.profiles[rx];
            let known = profile.len() == n_tx * n_sub;
            profile.resize(n_tx * n_sub, 0.0);
            let (mut sum, mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64, 0f64);
            for tx in 0..n_tx {
                for k in 0..n_sub {
                    let v = csi[[tx, rx, k]];
                    let amp = v.norm();
                    let slot = &mut profile[tx * n_sub + k];
                    sum += v.norm_sqr() as f64;
                    ab += amp as f64 * *slot as f64;
                    aa += (amp as f64).powi(2);
                    bb += (*slot as f64).powi(2);
                    *slot = amp;
                }
            }
            let correlation = if known && aa > 0.0 && bb > 0.0 {
                ab / (aa * bb).sqrt()
            } else {
                0.0
            };
            same_shape &= correlation >= SAME_SHAPE;
            relative.push(10.0 * (sum / (n_tx * n_sub) as f64).log10());
        }
        if relative.iter().any(|p| !p.is_finite()) {
            self.scratch = relative;
            return csi; // a silent or broken chain: nothing to judge by
        }
        let mean = relative.iter().sum::<f64>() / n_rx as f64;
        relative.iter_mut().for_each(|p| *p -= mean);
        // A step: some chain's level against the others changed by decibels while no
        // chain's shape changed (a body that moves one chain's level reshapes it too).
        let level_jump = first
            && relative
                .iter()
                .zip(&self.relative_db)
                .any(|(now, before)| (now - before).abs() >= STEP_DB);
        let step_seen = level_jump && same_shape;
        self.relative_db.clear();
        self.relative_db.extend_from_slice(&relative);
        if self.level_db.len() != n_rx {
            self.level_db = relative.clone();
        } else {
            for (level, r) in self.level_db.iter_mut().zip(&relative) {
                *level += (r - *level) / FOLLOW_FRAMES;
            }
        }
        self.scratch = relative;
        self.recent = (self.recent << 1) | u64::from(step_seen);
        if !self.stepping && self.recent.count_ones() >= STEPPING_AFTER {
            self.stepping = true;
            self.began_stepping = true;
        }
        if !self.stepping {
            return csi;
        }
        self.scaled_frames += 1;
        let mut out = csi.into_owned();
        for rx in 0..n_rx {
            let gain = 10f64.powf((self.level_db[rx] - self.relative_db[rx]) / 20.0) as f32;
            for tx in 0..n_tx {
                for k in 0..n_sub {
                    out[[tx, rx, k]] *= gain;
                }
            }
        }
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A still two-chain channel with a little noise; `gain_db(i)` per receive chain 1.
    fn frames(n: usize, gain_db: impl Fn(usize) -> f64) -> Vec<Array3<Complex32>> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let base: Vec<Complex32> = (0..2 * 2 * 30)
            .map(|_| Complex32::new(rng.gen_range(0.5..1.5), rng.gen_range(-1.0..1.0)))
            .collect();
        (0..n)
            .map(|i| {
                let g = 10f64.powf(gain_db(i) / 20.0) as f32;
                Array3::from_shape_fn((2, 2, 30), |(tx, rx, k)| {
                    let v = base[(tx * 2 + rx) * 30 + k]
                        + Complex32::new(rng.gen_range(-0.01..0.01), rng.gen_range(-0.01..0.01));
                    if rx == 1 {
                        v * g
                    } else {
                        v
                    }
                })
            })
            .collect()
    }

    fn chain_ratio_db(h: &Array3<Complex32>) -> f64 {
        let p = |rx: usize| -> f64 {
            h.slice(ndarray::s![.., rx, ..])
                .iter()
                .map(|v| v.norm_sqr() as f64)
                .sum()
        };
        10.0 * (p(1) / p(0)).log10()
    }

    #[test]
    fn gain_steps_are_held_to_the_chain_s_level() {
        // Chain 1 switches between two gain states 9 dB apart every other frame or so, as
        // the real Atheros card's chains do.
        let input = frames(300, |i| if (i * 7 / 5) % 2 == 0 { 9.0 } else { 0.0 });
        let mut g = ChainGains::default();
        let out: Vec<Array3<Complex32>> = input
            .iter()
            .map(|h| g.hold(Cow::Borrowed(h)).into_owned())
            .collect();
        assert!(g.stepping());
        assert!(g.take_began_stepping() && !g.take_began_stepping());
        // Once found (within the first 64 frames), chain 1 against chain 0 moves by well
        // under a decibel from frame to frame; it moved by 9 dB before.
        let jumps: Vec<f64> = out[64..]
            .windows(2)
            .map(|w| (chain_ratio_db(&w[1]) - chain_ratio_db(&w[0])).abs())
            .collect();
        assert!(
            jumps.iter().all(|&j| j < 0.5),
            "{:?}",
            jumps.iter().cloned().fold(0.0, f64::max)
        );
        // The phases between chains are kept.
        for (a, b) in input.iter().zip(&out).skip(64) {
            let pa = (a[[0, 1, 3]] * a[[0, 0, 3]].conj()).arg();
            let pb = (b[[0, 1, 3]] * b[[0, 0, 3]].conj()).arg();
            assert!((pa - pb).abs() < 1e-5);
        }
    }

    #[test]
    fn a_channel_without_gain_steps_is_left_alone() {
        // A slow drift of 6 dB over 300 frames, and one body-like change that alters the
        // shape as well as the level, are not gain steps.
        let input = frames(300, |i| 6.0 * i as f64 / 300.0);
        let mut g = ChainGains::default();
        for h in &input {
            assert!(matches!(g.hold(Cow::Borrowed(h)), Cow::Borrowed(_)));
        }
        assert!(!g.stepping());
        let mut g = ChainGains::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for (i, h) in input.iter().enumerate() {
            let mut h = h.clone();
            if i % 10 == 0 {
                // Chain 1 both louder and reshaped: a body, not a gain.
                h.slice_mut(ndarray::s![.., 1, ..])
                    .mapv_inplace(|v| v * Complex32::new(rng.gen_range(0.0f32..4.0).powi(2), 0.0));
            }
            g.hold(Cow::Owned(h));
        }
        assert!(!g.stepping());
        // One receive chain: nothing to hold against.
        let one = Array3::from_elem((1, 1, 8), Complex32::new(1.0, 0.0));
        assert!(matches!(
            ChainGains::default().hold(Cow::Borrowed(&one)),
            Cow::Borrowed(_)
        ));
    }
}
