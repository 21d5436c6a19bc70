//! Receive chains' quarter-turn phase steps, taken out packet by packet.
//!
//! In: a source's frames `(n_tx, n_rx, n_sub)`, in order. Out: the same frames with every
//! receive chain after the first turned by the multiple of a quarter turn that brings its
//! phase against the first chain back to where it was in the previous frame.
//!
//! Why: on the real Intel 5300 recordings here (`../shared/data/labelled/gi-z_csi-data`),
//! the phase of each receive chain against the first takes one of four values a quarter
//! turn apart, anew in almost every packet (some chain steps in 76-94 % of consecutive
//! packets, `benches/real_intel_still.py`); the step is the same for every transmit chain.
//! Left in, a step
//! of 90 or 180 degrees between two packets is, to everything that reads the phase between
//! antennas (the sensor's antenna-pair products, the localizer's steering), a change far
//! larger than any person makes: on those recordings a still subject read as motion in
//! 70-97 % of frames and no breathing rate was ever reported (`docs/sensing.md`, "Real
//! Intel 5300 cards").
//!
//! A chain's change from one frame to the next is the angle of its products' correlation
//! with the last frame's (every transmit chain and subcarrier). A source is taken to step
//! once 8 of its last 64 frames changed some chain by a quarter turn or more, within 8
//! degrees of a multiple of a quarter turn; from then on, for that source, each chain is
//! turned back by the quarter turns nearest its change. On the 27 real recordings every 64
//! frames hold 18 to 62 such steps; in the simulator, whose chains never step unless told
//! to, at most 2 (24 held-out clips, people walking close to the antennas included: a
//! person turns a chain by more than an eighth of a turn between packets in 0.04 % of
//! chain-packets, seldom near a multiple of a quarter turn; `benches/chain_steps.py`). Folding every frame would turn
//! a chain for good at each of those; a source that does not step is left exactly as it
//! is. A stepping source's first frames, until 8 steps are seen (about 11 frames), are read
//! with their steps; the sensor and the localizer start over when the steps are found
//! ([`ChainAligner::take_began_stepping`]).
//!
//! On a stepping card a person's fast change cannot be told from a step, and a chain turned
//! back by the wrong quarter would stay wrong. So each chain of a stepping source also has a
//! slow background of its aligned products (400 frames); a chain that sits a clean quarter
//! turn off it (within 20 degrees) for 5 frames in a row, once the person's change has
//! passed, is turned back again. In simulated daily rooms with 0-3 people (tuning clips,
//! through a numpy copy of this in `benches/chain_steps.py`), chain-frames off their usual
//! quarter went from 13.6 % to 2.2 %; end to end on the held-out days, the position median
//! from 0.73 to 0.68 m (0.66 m where the card does not step; `docs/sensing.md`, "Real Intel
//! 5300 cards").

use std::borrow::Cow;
use std::f64::consts::FRAC_PI_2;

use ndarray::Array3;
use num_complex::{Complex32, Complex64};

use super::gains::ChainGains;

/// Steps among the last 64 frames (`ChainAligner::recent`'s bits) that make a source a
/// stepping one.
const STEPPING_AFTER: u32 = 8;
/// How close to a multiple of a quarter turn a change must be to count as a step, radians.
const STEP_TOLERANCE: f64 = 8.0 * std::f64::consts::PI / 180.0;
/// A chain whose aligned products sit a clean quarter turn (within this) off its slow
/// background ...
const RELOCK_TOLERANCE: f64 = 20.0 * std::f64::consts::PI / 180.0;
/// ... for this many frames in a row was turned back by the wrong quarter: it is turned
/// back again.
const RELOCK_AFTER: u32 = 5;
/// How fast a chain's slow background follows its aligned products, per frame (400 frames:
/// 4 s at 100 packets/s).
const RELOCK_FOLLOW: f64 = 1.0 / 400.0;

/// A stepping chain's slow background, to catch a wrong turn.
#[derive(Debug, Clone, Default)]
struct Lock {
    background: Vec<Complex64>,
    quarter: u8,
    run: u32,
}

/// Per receive chain after the first, its products with the first chain (every transmit
/// chain and subcarrier) in the last frame, once aligned: what the next frame's are
/// compared with.
#[derive(Debug, Clone, Default)]
pub struct ChainAligner {
    shape: [usize; 3],
    reference: Vec<Vec<Complex64>>,
    products: Vec<Complex64>,
    locks: Vec<Lock>,
    /// Each chain's quarter turns in the frame being aligned.
    turns: Vec<u8>,
    /// Chains turned back again after a wrong turn.
    pub relocks: u64,
    /// The last 64 frames, newest in bit 0: whether some chain stepped.
    recent: u64,
    /// Whether this source's chains step (sticky: a card's property).
    stepping: bool,
    /// Set by the frame that showed the source steps, until taken.
    began_stepping: bool,
    /// Frames in which at least one chain was turned.
    pub stepped_frames: u64,
    /// The chains' gain steps, held after the turns ([`super::gains`]).
    gains: ChainGains,
}

impl ChainAligner {
    /// Whether this source's receive chains have been seen to step.
    pub fn stepping(&self) -> bool {
        self.stepping
    }

    /// Whether this source's receive chains' gains have been seen to step
    /// ([`super::gains`]).
    pub fn gains_stepping(&self) -> bool {
        self.gains.stepping()
    }

    /// Whether the last frame aligned was the one that showed the source steps, in phase
    /// or in gain (once): what was learned from the frames before it, read with their
    /// steps, is worth starting over.
    pub fn take_began_stepping(&mut self) -> bool {
        let phase = std::mem::take(&mut self.began_stepping);
        self.gains.take_began_stepping() || phase
    }

    /// The frame with its receive chains aligned to the previous frame's, then, for a
    /// source whose chain gains step, each chain held to its slow level
    /// ([`super::gains`]). Borrowed when nothing needed changing: one receive antenna, a
    /// source that steps in neither, or no step in this frame.
    pub fn align<'a>(&mut self, csi: &'a Array3<Complex32>) -> Cow<'a, Array3<Complex32>> {
        let turned = self.turn(csi);
        self.gains.hold(turned)
    }

    /// The quarter-turn steps taken out.
    fn turn<'a>(&mut self, csi: &'a Array3<Complex32>) -> Cow<'a, Array3<Complex32>> {
        let (n_tx, n_rx, n_sub) = csi.dim();
        if n_rx < 2 {
            return Cow::Borrowed(csi);
        }
        let shape = [n_tx, n_rx, n_sub];
        if self.shape != shape {
            // A new layout: no reference yet (whether the card steps is kept).
            self.shape = shape;
            self.reference = vec![Vec::new(); n_rx];
            self.locks = vec![Lock::default(); n_rx];
        }
        // Reused from frame to frame (this runs on every packet of every source).
        let mut turns = std::mem::take(&mut self.turns);
        turns.clear();
        turns.resize(n_rx, 0);
        let mut step_seen = false;
        for (rx, turn) in turns.iter_mut().enumerate().skip(1) {
            // The products' correlation with the last frame's, over every transmit chain and
            // subcarrier: its angle is the chain's change. Per subcarrier rather than of the
            // products' sums, which a person near the antennas can swing by more (0.15 % of
            // the simulator's chain-packets turn by over an eighth of a turn that way, 0.04 %
            // by correlation; benches/chain_steps.py).
            self.products.clear();
            for tx in 0..n_tx {
                for k in 0..n_sub {
                    let a = csi[[tx, rx, k]];
                    let b = csi[[tx, 0, k]];
                    self.products.push(
                        Complex64::new(a.re as f64, a.im as f64)
                            * Complex64::new(b.re as f64, -b.im as f64),
                    );
                }
            }
            if self
                .products
                .iter()
                .any(|p| !(p.re.is_finite() && p.im.is_finite()))
            {
                continue; // nothing to judge by; leave the chain as it is
            }
            let previous = &mut self.reference[rx];
            let change = if previous.len() == self.products.len() {
                let c: Complex64 = self
                    .products
                    .iter()
                    .zip(previous.iter())
                    .map(|(p, r)| p * r.conj())
                    .sum();
                if c.norm() > 0.0 {
                    c.arg()
                } else {
                    0.0
                }
            } else {
                0.0
            };
            let q = (change / FRAC_PI_2).round();
            step_seen |= q != 0.0 && (change - q * FRAC_PI_2).abs() < STEP_TOLERANCE;
            if self.stepping {
                *turn = (q as i64).rem_euclid(4) as u8;
            }
            let back = quarter_turns(-(*turn as i64));
            previous.clear();
            previous.extend(self.products.iter().map(|p| p * back));
            if self.stepping {
                // A person close to the antennas can turn a chain by an eighth of a turn or
                // more between two packets, which a stepping card's step hides: the chain
                // is then turned back by the wrong quarter. Once the person's change has
                // passed, the chain sits a clean quarter off its slow background; a few
                // frames of that, and it is turned back again.
                let lock = &mut self.locks[rx];
                if lock.background.len() != previous.len() {
                    lock.background = previous.clone();
                    lock.run = 0;
                } else {
                    let c: Complex64 = previous
                        .iter()
                        .zip(&lock.background)
                        .map(|(p, b)| p * b.conj())
                        .sum();
                    let phi = c.arg();
                    let q = (phi / FRAC_PI_2).round();
                    if c.norm() > 0.0 && q != 0.0 && (phi - q * FRAC_PI_2).abs() < RELOCK_TOLERANCE
                    {
                        let q = (q as i64).rem_euclid(4) as u8;
                        if lock.quarter == q {
                            lock.run += 1;
                        } else {
                            (lock.quarter, lock.run) = (q, 1);
                        }
                        if lock.run >= RELOCK_AFTER {
                            *turn = (*turn + q) % 4;
                            let again = quarter_turns(-(q as i64));
                            previous.iter_mut().for_each(|p| *p *= again);
                            lock.run = 0;
                            self.relocks += 1;
                        }
                    } else {
                        lock.run = 0;
                    }
                    for (b, p) in lock.background.iter_mut().zip(previous.iter()) {
                        *b += (p - *b) * RELOCK_FOLLOW;
                    }
                }
            }
        }
        self.recent = (self.recent << 1) | u64::from(step_seen);
        if !self.stepping && self.recent.count_ones() >= STEPPING_AFTER {
            self.stepping = true;
            self.began_stepping = true;
        }
        if turns.iter().all(|&q| q == 0) {
            self.turns = turns;
            return Cow::Borrowed(csi);
        }
        self.stepped_frames += 1;
        let mut out = csi.clone();
        for (rx, &q) in turns.iter().enumerate() {
            if q == 0 {
                continue;
            }
            let r = quarter_turns(-(q as i64));
            let r = Complex32::new(r.re as f32, r.im as f32);
            for tx in 0..n_tx {
                for k in 0..n_sub {
                    out[[tx, rx, k]] *= r;
                }
            }
        }
        self.turns = turns;
        Cow::Owned(out)
    }
}

/// `i^q`: `q` quarter turns, exactly (no rounding error from `exp`).
fn quarter_turns(q: i64) -> Complex64 {
    match q.rem_euclid(4) {
        0 => Complex64::new(1.0, 0.0),
        1 => Complex64::new(0.0, 1.0),
        2 => Complex64::new(-1.0, 0.0),
        _ => Complex64::new(0.0, -1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A still 2x3x30 channel whose chains 1 and 2 take a random quarter turn every
    /// packet, as the real Intel 5300 recordings do, plus a slow drift of chain 2 (0.06
    /// degrees a packet: the slow background that catches wrong turns, 400 packets long,
    /// lags it by 23 degrees, well inside the 70 it would need to misfire).
    fn stepped(n: usize, steps: bool) -> (Vec<Array3<Complex32>>, Vec<Array3<Complex32>>) {
        let mut clean = Vec::new();
        let mut seen = Vec::new();
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as i64
        };
        for p in 0..n {
            let drift = 0.001 * p as f32;
            let h = Array3::from_shape_fn((2, 3, 30), |(tx, rx, k)| {
                let phase = 0.3 * tx as f32
                    + 0.7 * rx as f32
                    + 0.05 * k as f32
                    + if rx == 2 { drift } else { 0.0 };
                Complex32::from_polar(1.0 + 0.1 * rx as f32, phase)
            });
            let mut s = h.clone();
            if steps {
                for rx in 1..3 {
                    let q = quarter_turns(next() % 4);
                    let q = Complex32::new(q.re as f32, q.im as f32);
                    for tx in 0..2 {
                        for k in 0..30 {
                            s[[tx, rx, k]] *= q;
                        }
                    }
                }
            }
            clean.push(h);
            seen.push(s);
        }
        (clean, seen)
    }

    fn pair_phase(h: &Array3<Complex32>, rx: usize) -> f32 {
        (h[[0, rx, 0]] * h[[0, 0, 0]].conj()).arg()
    }

    #[test]
    fn quarter_turn_steps_are_taken_out_and_a_slow_drift_kept() {
        let (clean, seen) = stepped(200, true);
        let mut a = ChainAligner::default();
        let out: Vec<_> = seen.iter().map(|h| a.align(h).into_owned()).collect();
        assert!(a.stepping());
        assert!(a.stepped_frames > 100, "{} frames turned", a.stepped_frames);
        // From the frame that showed the card steps (within its first 64 frames), every
        // frame differs from the clean channel by that frame's own step, and the drift
        // survives.
        for rx in 1..3 {
            let offset = pair_phase(&out[64], rx) - pair_phase(&clean[64], rx);
            for (o, c) in out.iter().zip(&clean).skip(64) {
                let d = Complex32::from_polar(1.0, pair_phase(o, rx) - pair_phase(c, rx) - offset);
                assert!(d.arg().abs() < 1e-3, "chain {rx}: {}", d.arg());
            }
        }
    }

    #[test]
    fn a_person_s_fast_phase_changes_are_not_taken_for_steps() {
        // A channel that never steps but whose chain 1 jumps by 50-80 degrees in one
        // packet of fifty, and once by exactly a quarter turn: left exactly as it is.
        let (_, mut seen) = stepped(400, false);
        let mut jump = 0.0f32;
        for (p, h) in seen.iter_mut().enumerate() {
            if p % 50 == 25 {
                jump += (50.0 + (p % 7) as f32 * 5.0).to_radians();
            }
            if p == 300 {
                jump += std::f32::consts::FRAC_PI_2;
            }
            for tx in 0..2 {
                for k in 0..30 {
                    h[[tx, 1, k]] *= Complex32::from_polar(1.0, jump);
                }
            }
        }
        let mut a = ChainAligner::default();
        for h in &seen {
            assert!(matches!(a.align(h), Cow::Borrowed(_)));
        }
        assert!(!a.stepping());
    }

    #[test]
    fn a_wrong_turn_after_a_fast_change_is_turned_back() {
        // A stepping card; at frames 150-152 a person close to the antennas swings chain
        // 1 by 50, 100 and 40 degrees and lets go. Changes of +50, +50, -60 and -40 degrees
        // between packets are read as +1, +1 and -1 quarter turns and none: the chain is
        // left a quarter off. Once the swing has passed it is back where it was and, within
        // a few frames, so is its alignment.
        let (clean, mut seen) = stepped(300, true);
        let swing = [50.0f32, 100.0, 40.0];
        for (i, deg) in swing.iter().enumerate() {
            for h in [&mut seen[150 + i]] {
                for tx in 0..2 {
                    for k in 0..30 {
                        h[[tx, 1, k]] *= Complex32::from_polar(1.0, deg.to_radians());
                    }
                }
            }
        }
        let mut a = ChainAligner::default();
        let out: Vec<_> = seen.iter().map(|h| a.align(h).into_owned()).collect();
        let offset = pair_phase(&out[100], 1) - pair_phase(&clean[100], 1);
        for (o, c) in out.iter().zip(&clean).skip(170) {
            let d = Complex32::from_polar(1.0, pair_phase(o, 1) - pair_phase(c, 1) - offset);
            assert!(d.arg().abs() < 1e-3, "chain 1 left {} off", d.arg());
        }
        assert_eq!(a.relocks, 1);
    }

    #[test]
    fn a_channel_without_steps_is_left_alone() {
        let (_, seen) = stepped(50, false);
        let mut a = ChainAligner::default();
        for h in &seen {
            assert!(matches!(a.align(h), Cow::Borrowed(_)));
        }
        assert_eq!(a.stepped_frames, 0);
        // One receive antenna: nothing to align.
        let one = Array3::from_elem((1, 1, 64), Complex32::new(1.0, 0.0));
        assert!(matches!(a.align(&one), Cow::Borrowed(_)));
    }
}
