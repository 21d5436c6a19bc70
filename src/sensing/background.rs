//! The empty room's static channel, learned by a calibration: a still person is present
//! where the channel's static shape has moved away from it.
//!
//! Motion and breathing find people by what changes while they are there; a person who
//! sits still and whose breathing the link cannot see (a chest moving square to the
//! link's paths, a lying chest far below the devices, `docs/sensing.md`) changes neither.
//! They still shadow and scatter the room's paths: the channel's *static* shape differs
//! from the empty room's. Measured in the simulator within one session (the card's
//! per-session gains and offsets fixed, as a card that is not restarted keeps them),
//! the empty room's 1 s mean amplitude profile stays within about -51 dB of its own power
//! from second to second, and a still person moves it by -25 dB on the median, -42 dB in
//! the weakest 5 % (`docs/sensing.md`, "The empty room's static channel").
//!
//! - **Profile**: each packet's amplitudes over every transmit chain, receive antenna and
//!   subcarrier, divided by their mean (the card's gain control, which scales the whole
//!   packet, cancels), averaged over 1 s blocks. Amplitudes only: every device has them,
//!   and phases carry per-packet offsets.
//! - **Calibration**: the blocks of an empty room; the background is their mean, and the
//!   threshold a margin over the largest share any of them differs from the mean of the
//!   others by (how still this room's empty channel is).
//! - **Presence**: the last block's `share = |p - background|^2 / |background|^2` over the
//!   threshold.
//! - **Slow change**: while nobody is present by any measure, the background follows the
//!   blocks with a time constant of `follow_tau_s` (temperature, a slowly moving door).
//!   A change that stays with nothing moving and no breathing for `relearn_s` (a chair
//!   moved, a door left open) becomes the background: the sensor cannot tell it from a
//!   person who stays perfectly still and whose breathing it cannot see, and says so by
//!   counting it (`relearned`).

/// How the static background is learned and judged.
#[derive(Debug, Clone, PartialEq)]
pub struct BackgroundConfig {
    /// Length of a profile block, seconds.
    pub block_s: f64,
    /// The threshold is this many times the calibration's largest block share.
    pub margin: f64,
    /// The least threshold (share of the background's power).
    pub floor: f64,
    /// Time constant with which the background follows an empty room, seconds.
    pub follow_tau_s: f64,
    /// A change held this long with no motion and no breathing becomes the background.
    pub relearn_s: f64,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        BackgroundConfig {
            block_s: 1.0,
            margin: 4.0,
            floor: 1e-5,
            follow_tau_s: 300.0,
            relearn_s: 600.0,
        }
    }
}

/// Profile blocks a calibration keeps at most (an hour of 1 s blocks).
pub const MAX_CALIBRATION_BLOCKS: usize = 3600;

/// Profile values a calibration keeps at most (64 MB): a wide frame (4 x 4 x 2048
/// PicoScenes) keeps fewer blocks than an hour's worth, the rest of the run is not kept.
pub const MAX_CALIBRATION_VALUES: usize = 16 << 20;

/// 1 s mean amplitude profiles of a stream of frames.
#[derive(Debug, Clone, Default)]
pub struct ProfileBlocks {
    origin: Option<f64>,
    index: f64,
    sum: Vec<f64>,
    n: u32,
    scratch: Vec<f64>,
}

impl ProfileBlocks {
    /// One frame's amplitudes (any order, the same every frame) at time `t`; returns the
    /// block that ended before it, if one did. A frame with a non-finite or all-zero
    /// amplitude is left out; a gap of a whole block or more starts afresh.
    pub fn push(
        &mut self,
        t: f64,
        amplitudes: impl Iterator<Item = f32>,
        block_s: f64,
    ) -> Option<Vec<f32>> {
        self.scratch.clear();
        self.scratch.extend(amplitudes.map(f64::from));
        let mean = self.scratch.iter().sum::<f64>() / self.scratch.len().max(1) as f64;
        if !(mean > 0.0 && mean.is_finite()) {
            return None;
        }
        let origin = *self.origin.get_or_insert(t);
        let index = ((t - origin) / block_s + 1e-6).floor();
        let mut done = None;
        if index != self.index || t < origin || self.sum.len() != self.scratch.len() {
            if self.n > 0 && index == self.index + 1.0 && self.sum.len() == self.scratch.len() {
                let n = self.n as f64;
                done = Some(self.sum.iter().map(|s| (s / n) as f32).collect());
            }
            self.sum.clear();
            self.sum.resize(self.scratch.len(), 0.0);
            self.n = 0;
            if t < origin {
                self.origin = Some(t);
                self.index = 0.0;
            } else {
                self.index = index;
            }
        }
        for (s, a) in self.sum.iter_mut().zip(&self.scratch) {
            *s += a / mean;
        }
        self.n += 1;
        done
    }
}

/// The share of `reference`'s power by which `profile` differs from it.
pub fn share(profile: &[f32], reference: &[f32]) -> f64 {
    let (mut d, mut r) = (0f64, 0f64);
    for (&p, &q) in profile.iter().zip(reference) {
        let e = f64::from(p) - f64::from(q);
        d += e * e;
        r += f64::from(q) * f64::from(q);
    }
    if r > 0.0 {
        d / r
    } else {
        f64::INFINITY
    }
}

/// What a calibration's blocks say: the background (their mean) and the largest share
/// by which one differs from the mean of the others. None with fewer than 3 blocks or
/// blocks of different lengths.
pub fn learn(blocks: &[Vec<f32>]) -> Option<(Vec<f32>, f64)> {
    let n = blocks.len();
    let len = blocks.first()?.len();
    if n < 3 || len == 0 || blocks.iter().any(|b| b.len() != len) {
        return None;
    }
    let mut total = vec![0f64; len];
    for b in blocks {
        for (t, v) in total.iter_mut().zip(b) {
            *t += f64::from(*v);
        }
    }
    let mean: Vec<f32> = total.iter().map(|t| (t / n as f64) as f32).collect();
    let mut largest = 0f64;
    for b in blocks {
        let others: Vec<f32> = total
            .iter()
            .zip(b)
            .map(|(t, v)| ((t - f64::from(*v)) / (n - 1) as f64) as f32)
            .collect();
        largest = largest.max(share(b, &others));
    }
    largest.is_finite().then_some((mean, largest))
}

/// The live background of one sensor: judges each block and follows slow change.
#[derive(Debug, Clone)]
pub struct Background {
    config: BackgroundConfig,
    reference: Vec<f32>,
    threshold: f64,
    /// The last block's share over the threshold (present above 1).
    pub score: Option<f64>,
    /// Since when the change has stood with nothing moving and no breathing.
    unexplained_since: Option<f64>,
    /// How often a standing change became the background.
    pub relearned: u64,
}

impl Background {
    /// A background `reference` judged at `threshold` (share of its power).
    pub fn new(config: BackgroundConfig, reference: Vec<f32>, threshold: f64) -> Self {
        Background {
            config,
            reference,
            threshold,
            score: None,
            unexplained_since: None,
            relearned: 0,
        }
    }

    /// Whether the last block differed from the background by more than the threshold.
    pub fn present(&self) -> bool {
        self.score.is_some_and(|s| s > 1.0)
    }

    /// One block ending at `t`. `moving`: motion was seen within the sensor's hold;
    /// `breathing`: a breathing line says someone is there.
    pub fn push(&mut self, t: f64, profile: &[f32], moving: bool, breathing: bool) {
        if profile.len() != self.reference.len() {
            self.score = None;
            return;
        }
        let score = share(profile, &self.reference) / self.threshold;
        self.score = score.is_finite().then_some(score);
        let present = self.present();
        if !present && !moving && !breathing {
            // An empty room: follow its slow change.
            let a = (self.config.block_s / self.config.follow_tau_s).clamp(0.0, 1.0) as f32;
            for (r, p) in self.reference.iter_mut().zip(profile) {
                *r += a * (p - *r);
            }
        }
        if present && !moving && !breathing {
            let since = *self.unexplained_since.get_or_insert(t);
            if t - since >= self.config.relearn_s {
                self.reference = profile.to_vec();
                self.relearned += 1;
                self.unexplained_since = None;
                self.score = Some(0.0);
            }
        } else {
            self.unexplained_since = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(level: f32, bump: f32) -> Vec<f32> {
        (0..90)
            .map(|i| {
                level * (1.0 + 0.3 * ((i as f32) * 0.2).sin()) + if i == 40 { bump } else { 0.0 }
            })
            .collect()
    }

    #[test]
    fn blocks_are_gain_free_means_over_whole_seconds() {
        let mut blocks = ProfileBlocks::default();
        let mut done = Vec::new();
        for k in 0..250 {
            let t = k as f64 * 0.01;
            // The card's gain doubles halfway through a block: the profile must not see it.
            let gain = if k < 50 { 1.0 } else { 2.0 };
            if let Some(b) = blocks.push(t, profile(gain, 0.0).into_iter(), 1.0) {
                done.push(b);
            }
        }
        assert_eq!(done.len(), 2);
        let first = &done[0];
        let again = &done[1];
        assert!(share(first, again) < 1e-10, "{}", share(first, again));
        let m: f32 = first.iter().sum::<f32>() / first.len() as f32;
        assert!((m - 1.0).abs() < 1e-5);
    }

    #[test]
    fn a_gap_of_a_block_or_more_drops_the_partial_block() {
        let mut blocks = ProfileBlocks::default();
        assert!(blocks
            .push(0.0, profile(1.0, 0.0).into_iter(), 1.0)
            .is_none());
        assert!(blocks
            .push(0.5, profile(1.0, 0.0).into_iter(), 1.0)
            .is_none());
        // Next frame 3 s later: the block [0, 1) never ended cleanly, nothing comes out.
        assert!(blocks
            .push(3.2, profile(1.0, 0.0).into_iter(), 1.0)
            .is_none());
        assert!(blocks
            .push(4.1, profile(1.0, 0.0).into_iter(), 1.0)
            .is_some());
        // Non-finite or dark frames are skipped.
        assert!(blocks.push(4.2, [f32::NAN, 1.0].into_iter(), 1.0).is_none());
        assert!(blocks.push(4.3, [0.0, 0.0].into_iter(), 1.0).is_none());
    }

    #[test]
    fn a_change_far_above_the_empty_rooms_own_is_present_until_it_goes() {
        let empty: Vec<Vec<f32>> = (0..10)
            .map(|k| profile(1.0, 1e-3 * (k as f32 - 5.0)))
            .collect();
        let (reference, largest) = learn(&empty).unwrap();
        assert!(largest > 0.0);
        let mut bg = Background::new(BackgroundConfig::default(), reference, 4.0 * largest);
        bg.push(1.0, &profile(1.0, 0.0), false, false);
        assert!(!bg.present());
        bg.push(2.0, &profile(1.0, 0.3), false, false);
        assert!(bg.present(), "{:?}", bg.score);
        bg.push(3.0, &profile(1.0, 0.0), false, false);
        assert!(!bg.present());
        // Too few blocks, or blocks of different lengths, learn nothing.
        assert!(learn(&empty[..2]).is_none());
        assert!(learn(&[profile(1.0, 0.0), profile(1.0, 0.0), vec![1.0; 3]]).is_none());
    }

    #[test]
    fn an_unexplained_change_becomes_the_background_but_a_breathing_one_does_not() {
        let empty: Vec<Vec<f32>> = (0..10)
            .map(|k| profile(1.0, 1e-3 * (k as f32 - 5.0)))
            .collect();
        let (reference, largest) = learn(&empty).unwrap();
        let config = BackgroundConfig {
            relearn_s: 60.0,
            ..Default::default()
        };
        let moved = profile(1.0, 0.3);
        let mut breathing = Background::new(config.clone(), reference.clone(), 4.0 * largest);
        let mut chair = Background::new(config, reference, 4.0 * largest);
        for s in 0..120 {
            breathing.push(s as f64, &moved, false, true);
            chair.push(s as f64, &moved, false, false);
        }
        assert!(breathing.present() && breathing.relearned == 0);
        assert!(!chair.present() && chair.relearned == 1);
    }
}
