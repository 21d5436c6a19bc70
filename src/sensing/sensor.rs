//! One environment's sensor: motion, presence and breathing from the channel itself.
//!
//! In: every frame of the environment, any layout ([`super::features`]). Out: a
//! [`SensingState`] after each frame. No model, no training: each figure is a ratio of
//! measured power to the noise power measured in the same packets, so it means the same
//! on every card and needs no calibration to start (a calibration makes it stricter where
//! the room is not quiet, see [`Calibration`]).
//!
//! - **Noise**: consecutive packets' feature difference `d = z[t] - z[t-1]`. People change
//!   the channel smoothly across neighbouring subcarriers (a path's phase turns by
//!   `2 pi df tau`, a small fraction of a radian between neighbours for indoor delays),
//!   noise does not: the second difference of `d` across subcarriers is almost pure
//!   noise, and `E|d[k+1] - 2 d[k] + d[k-1]|^2 = 12 sigma^2` for white noise of power
//!   `sigma^2` per feature. So the noise is measured in the very packets being judged.
//! - **Motion**: `ratio = mean|d|^2 / (2 sigma^2)`, smoothed over ~0.25 s: 1 in a still
//!   room, far above it when anything moves (walking changes the features by a large
//!   fraction every packet). Slower motion shows in the same ratio over 0.04 s
//!   sub-blocks' second difference, and on one-antenna links at 2.4 GHz over 0.08 s
//!   sub-blocks as well (a body's Doppler halves with the carrier); the ratios are
//!   computed in `motion.rs`. `motion_level` maps ratio 1..30 to 0..1 (log scale).
//! - **Presence**: a still person breathes; the chest's millimetres move a path by
//!   0.9-2.6 rad of phase at 5 GHz (`../shared/design/sensing.md`). The features are
//!   averaged into 0.1 s blocks (and, with two or more chains, over pairs of neighbouring
//!   subcarriers). `presence_score` is the larger of two ratios of measured power to what
//!   the measured noise puts there, each about 1 in an empty room: the last 2 s's trend
//!   and curvature (projections on polynomials of degree 1-3: found 2 s after the start
//!   or the last motion), and the strongest 0.1-0.7 Hz bin of every block since the last
//!   motion (6.4 s growing to 25.6 s, detrended, windowed, Fourier transformed: a weak
//!   breather's line grows out of the noise with the window). A person is present while
//!   motion was seen within `hold_s` or the score is above its threshold.
//!   Nothing here is a background that a still person could be absorbed into: the score
//!   asks for change in the breathing band, which an empty room does not make.
//! - **Breathing rate**: over the blocks since the last motion (12.8 to 25.6 s), when the
//!   band's strongest line (all features' power summed) stands out; fidget steps the
//!   motion detector missed are bridged first. With complex features the rate is the
//!   band bin that keeps the most power once the directions of the band's other bins are
//!   projected out of it ([`super::breathing_line`]: a standing body's sway, summed over
//!   the features, outshines the breathing line, but the sway is broadband and its
//!   neighbours' directions take it away); with amplitude features, the summed
//!   spectrum's line, or a clear line at half its frequency (the chest may show at twice
//!   its rate).
use std::collections::VecDeque;
use std::sync::Arc;

use ndarray::Array3;
use num_complex::Complex32;
use rustfft::{Fft, FftPlanner};
use serde::{Deserialize, Serialize};

use super::background::{self, Background, BackgroundConfig, ProfileBlocks};
use super::breathing_line;
use super::chains::ChainAligner;
use super::features::{FeatureLayout, FeatureMode};
use super::motion::MotionRatios;

/// The radio band a link's frames are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Band {
    /// No frame or profile said (injected arrays, Intel 5300 files).
    #[default]
    Unknown,
    /// 2.4 GHz, channels 1-14.
    Ghz2_4,
    /// 5 GHz, channels 32-177.
    Ghz5,
}

impl Band {
    /// The band of an 802.11 channel number. A 6 GHz channel's number repeats 2.4 and 5
    /// GHz ones and no reader tells them apart, so numbers are read as 2.4 or 5 GHz, and
    /// any other as unknown.
    pub fn of_channel(channel: Option<u16>) -> Band {
        match channel {
            Some(1..=14) => Band::Ghz2_4,
            Some(32..=177) => Band::Ghz5,
            _ => Band::Unknown,
        }
    }
}

/// The sensor's settings. The defaults are the uncalibrated thresholds; a calibration can
/// only raise them.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorConfig {
    /// Motion ratio (measured change over noise) above which motion is reported.
    pub motion_threshold: f64,
    /// Breathing-band score (band power over noise) above which a still person is present.
    pub presence_threshold: f64,
    /// Presence is held this long after the last motion, seconds.
    pub hold_s: f64,
    /// Smoothing time constant of the motion ratio, seconds.
    pub motion_tau_s: f64,
    /// Length of the sub-blocks of the slow motion ratio, seconds.
    pub slow_block_s: f64,
    /// On one-antenna links at 2.4 GHz, a second slow motion ratio runs at this many
    /// times the sub-blocks' length and the smoothing time (the larger ratio counts).
    /// A body's Doppler scales with the carrier: at 2.4 GHz a walker's amplitudes change
    /// at half the rate they do at 5 GHz, below where the first slow ratio's second
    /// difference passes them. Not at 5 GHz, where the longer time scale reads
    /// breathing and sway as motion (`docs/sensing.md`, "Motion at 2.4 GHz").
    pub long_wave_scale: f64,
    /// Length of the blocks the features are averaged over, seconds.
    pub block_s: f64,
    /// Blocks of the short presence window (20 x 0.1 s = 2 s): the change of the features'
    /// trend and curvature over it, so a still person is found 2 s after the sensor starts
    /// or the last motion ends.
    pub short_blocks: usize,
    /// Still blocks (nothing moved in them) the long presence window needs at least
    /// (64 x 0.1 s = 6.4 s); it grows with the still time up to `breathing_blocks`.
    pub presence_blocks: usize,
    /// Blocks in the breathing-rate window at most (256 x 0.1 s = 25.6 s), and in the long
    /// presence window.
    pub breathing_blocks: usize,
    /// Still blocks a breathing rate needs at least (128 x 0.1 s = 12.8 s). Chosen on the
    /// tuning seeds: rates from 12.8-20 s of stillness were right as often as the later ones
    /// on 3-antenna links (0.83 of those reported, against 0.79) and a little less often on
    /// one antenna (Nexmon 0.72 against 0.79, ESP32 0.62 against 0.65); from 10 s they fell
    /// to 0.76 / 0.65 / 0.47 (`docs/sensing.md`, "A breathing rate after 12.8 s of stillness").
    pub breathing_min_blocks: usize,
    /// In the antenna- and chain-pair modes, neighbouring features averaged into one for
    /// the presence and breathing stages (their noise power halves; a person's change is
    /// alike on neighbouring subcarriers).
    pub pair_group: usize,
    /// The breathing-rate window's peak over the noise above which a breathing line is
    /// found (a rate is reported, and someone is present).
    pub breathing_threshold: f64,
    /// The breathing band, Hz.
    pub band_hz: [f64; 2],
    /// How a calibration's static background is learned and judged
    /// ([`super::background`]).
    pub background: BackgroundConfig,
    /// Take the receive chains' quarter-turn steps out of a source that shows them
    /// ([`super::chains`]). Off only to see what a stepping card looks like without it.
    pub align_chains: bool,
}

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig {
            motion_threshold: 1.5,
            presence_threshold: 1.8,
            hold_s: 2.0,
            motion_tau_s: 0.25,
            slow_block_s: 0.04,
            long_wave_scale: 2.0,
            block_s: 0.1,
            short_blocks: 20,
            presence_blocks: 64,
            breathing_blocks: 256,
            breathing_min_blocks: 128,
            pair_group: 2,
            breathing_threshold: 2.0,
            band_hz: [0.1, 0.7],
            background: BackgroundConfig::default(),
            align_chains: true,
        }
    }
}

/// What an empty room looked like: the thresholds it implies. Made by
/// [`Sensor::calibrate`]; serializable, so a calibration can be saved and given back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Seconds of source time it was measured over.
    pub seconds: f64,
    /// Frames it was measured over.
    pub frames: u64,
    /// The feature mode it holds for ([`FeatureMode::as_str`]).
    pub mode: String,
    /// The CSI shape `(n_tx, n_rx, n_sub)` it holds for: frames of another shape make
    /// other features, so the calibration is dropped when they arrive.
    pub shape: [usize; 3],
    /// Median of the motion ratio in the empty room (about 1; the floor `motion_level`
    /// is measured from).
    pub motion_median: f64,
    /// 99.9th percentile of the motion ratio in the empty room: the quiet room's
    /// worst moment, which the motion threshold is set above.
    pub motion_p999: f64,
    /// Largest breathing-band score in the empty room.
    pub presence_max: f64,
    /// The motion threshold in force after it: the default or 1.5 x `motion_p999`,
    /// whichever is larger (a calibration only makes the sensor stricter).
    pub motion_threshold: f64,
    /// The presence threshold in force after it: the default or 1.5 x `presence_max`,
    /// whichever is larger.
    pub presence_threshold: f64,
    /// The empty room's static channel: its mean amplitude profile (each packet's
    /// amplitudes over their mean, every chain, antenna and subcarrier in the frame's
    /// order), against which a still person shows ([`super::background`]). Absent from
    /// calibrations made before it, which set thresholds only.
    #[serde(default)]
    pub background: Option<Vec<f32>>,
    /// The largest share of the background's power by which one of the calibration's 1 s
    /// blocks differed from the others.
    #[serde(default)]
    pub static_max: Option<f64>,
    /// The share above which a block says someone is there: a margin over `static_max`.
    #[serde(default)]
    pub static_threshold: Option<f64>,
}

impl Calibration {
    /// Whether its static background fits its own CSI shape and its numbers are sane (a
    /// calibration given back by a user may have been edited or truncated).
    pub fn validate(&self) -> Result<(), String> {
        let values = self.shape.iter().product::<usize>();
        if let Some(reference) = &self.background {
            if reference.len() != values {
                return Err(format!(
                    "the calibration's background has {} values; CSI shaped {:?} has {values}",
                    reference.len(),
                    self.shape
                ));
            }
            if reference.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return Err("the calibration's background holds a value that is not a finite, non-negative amplitude".into());
            }
        }
        if let Some(t) = self.static_threshold {
            if !(t.is_finite() && t > 0.0) {
                return Err(format!(
                    "the calibration's static_threshold must be a finite number above 0, got {t}"
                ));
            }
        }
        Ok(())
    }
}

/// How a calibration ended: taken, or refused and why.
#[derive(Debug, Clone, PartialEq)]
pub enum CalibrationOutcome {
    /// Taken and in force from this frame on.
    Done(Calibration),
    /// Not taken: the thresholds are unchanged.
    Refused {
        /// What was seen (the motion ratio's median and 99.9th percentile) and what to
        /// do, in words for the user.
        reason: String,
    },
}

/// The sensor's view after a frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SensingState {
    /// Source time of the frame, seconds.
    pub t: f64,
    /// 0 (still) to 1 (strong motion): the motion ratio over the room's floor (1, or a
    /// calibration's median), on a log scale that reaches 1 at 30 times the floor.
    pub motion_level: f64,
    /// The smoothed motion ratio is above the motion threshold.
    pub motion_detected: bool,
    /// The smoothed motion ratio (1 = noise only).
    pub motion_ratio: f64,
    /// Someone is in the room (moving now or lately, or breathing).
    pub presence: bool,
    /// The presence score (1 = noise only): the larger of the 2 s window's and the still
    /// window's (see the module docs); None until 2 s were seen.
    pub presence_score: Option<f64>,
    /// Breathing rate of a still room's occupant, breaths per minute, when measurable.
    pub breathing_rate_bpm: Option<f64>,
    /// The last 25.6 s breathing window's strongest band bin over the noise (None while
    /// something moved in it).
    pub breathing_score: Option<f64>,
    /// A calibration is in force (the thresholds are the room's, not the defaults).
    pub calibrated: bool,
    /// The last 1 s block's change from the calibrated empty room's static channel over
    /// its threshold (present above 1); None without a calibration's background.
    pub static_score: Option<f64>,
    /// The feature mode of the frames ([`FeatureMode::as_str`]), `none` before a frame
    /// with a usable subcarrier.
    pub mode: &'static str,
}

struct Block {
    mean: Vec<Complex32>,
    /// Noise power per feature of the block mean.
    noise: f64,
    /// Whether motion was detected in the block.
    moving: bool,
}

/// How long (seconds) the static channel must have said someone was there before its
/// return to the empty room's restarts the breathing windows (see `static_step`).
const STATIC_STAY_S: f64 = 5.0;
/// Shorter gaps in the static channel's "someone is there" are bridged (someone walking
/// out flickers about the threshold for a second or two).
const STATIC_GAP_S: f64 = 3.0;

/// Motion ratios a calibration keeps at most.
const MAX_CALIBRATION_SAMPLES: usize = 200_000;

struct CalibrationRun {
    seconds: f64,
    started: Option<f64>,
    ratios: Vec<f32>,
    scores: Vec<f32>,
    frames: u64,
    /// 1 s amplitude profiles of the empty room (at most
    /// [`background::MAX_CALIBRATION_BLOCKS`]).
    profiles: Vec<Vec<f32>>,
}

/// The sensor of one environment (see the module docs).
pub struct Sensor {
    config: SensorConfig,
    defaults: SensorConfig,
    calibration: Option<Calibration>,
    layout: Option<FeatureLayout>,
    z: Vec<Complex32>,
    prev: Vec<Complex32>,
    motion: MotionRatios,
    block_sum: Vec<Complex32>,
    block_n: u32,
    block_noise: f64,
    block_moving: bool,
    /// The grid origin of the blocks and the index of the block being filled.
    block_start: Option<f64>,
    block_index: f64,
    blocks: VecDeque<Block>,
    /// Trailing blocks in which nothing moved (the long windows' length).
    still_blocks: usize,
    /// When the motion ratios last read warm (the cold-reading hold counts from it).
    last_warm_t: Option<f64>,
    /// Block features averaged over this many neighbours (see [`SensorConfig::pair_group`]).
    group: usize,
    /// The short window's orthonormal polynomial basis (degrees 1-3), `short_blocks` each.
    poly: Vec<[f32; 3]>,
    blocks_since_eval: usize,
    blocks_since_breathing: usize,
    last_motion_t: Option<f64>,
    /// The last motion of the ratios the presence and breathing windows start over on.
    last_window_motion_t: Option<f64>,
    presence_score: Option<f64>,
    /// Added to the presence and motion thresholds while other links of the room are
    /// heard too ([`Sensor::set_margins`]).
    presence_margin: f64,
    motion_margin: f64,
    breathing: Option<f64>,
    breathing_score: Option<f64>,
    calibrating: Option<CalibrationRun>,
    /// 1 s amplitude profiles of the frames, for the calibration and the background.
    profiles: ProfileBlocks,
    /// The calibrated empty room's static channel, when a calibration gave one.
    background: Option<Background>,
    /// Why a calibration in force was dropped (frames of another CSI shape), until taken.
    dropped: Option<String>,
    /// The band the frames are on, where a frame or the device profile said.
    band: Band,
    /// Since when, and until when last, the static channel said someone was there
    /// (gaps shorter than [`STATIC_GAP_S`] bridged).
    static_since: Option<(f64, f64)>,
    /// Takes out the receive chains' quarter-turn phase steps ([`super::chains`]).
    chains: ChainAligner,
    planner: FftPlanner<f32>,
    state: SensingState,
}

impl Default for Sensor {
    fn default() -> Self {
        Sensor::new(SensorConfig::default())
    }
}

impl Sensor {
    /// A sensor with no frame seen, uncalibrated: `config`'s thresholds are in force
    /// and are what a calibration may raise or clearing one restores.
    pub fn new(config: SensorConfig) -> Self {
        Sensor {
            motion: MotionRatios::new(&config),
            defaults: config.clone(),
            config,
            calibration: None,
            layout: None,
            z: Vec::new(),
            prev: Vec::new(),
            block_sum: Vec::new(),
            block_n: 0,
            block_noise: 0.0,
            block_moving: false,
            block_start: None,
            block_index: 0.0,
            blocks: VecDeque::new(),
            still_blocks: 0,
            last_warm_t: None,
            group: 1,
            poly: Vec::new(),
            blocks_since_eval: 0,
            blocks_since_breathing: 0,
            last_motion_t: None,
            last_window_motion_t: None,
            presence_score: None,
            presence_margin: 0.0,
            motion_margin: 0.0,
            breathing: None,
            breathing_score: None,
            calibrating: None,
            profiles: ProfileBlocks::default(),
            background: None,
            dropped: None,
            band: Band::Unknown,
            static_since: None,
            chains: ChainAligner::default(),
            planner: FftPlanner::new(),
            state: SensingState {
                t: 0.0,
                motion_level: 0.0,
                motion_detected: false,
                motion_ratio: 1.0,
                presence: false,
                presence_score: None,
                breathing_rate_bpm: None,
                breathing_score: None,
                calibrated: false,
                static_score: None,
                mode: FeatureMode::Amplitude.as_str(),
            },
        }
    }

    /// Raises the presence score's threshold by `presence` and the motion ratio's by
    /// `motion` (both 0 alone). A room heard by several links is present, or moving, when
    /// any one of them says so, so each link's chance excursions add up; the bank raises
    /// every link's bars with the number of links ([`super::bank`]). A measured breathing
    /// rate is not affected.
    pub fn set_margins(&mut self, presence: f64, motion: f64) {
        self.presence_margin = presence.max(0.0);
        self.motion_margin = motion.max(0.0);
    }

    /// The margins in force, presence and motion ([`Sensor::set_margins`]).
    pub fn margins(&self) -> (f64, f64) {
        (self.presence_margin, self.motion_margin)
    }

    /// The state after the last frame.
    pub fn state(&self) -> &SensingState {
        &self.state
    }

    /// The calibration in force, if any (None also after frames of another CSI shape
    /// than it was made for dropped it).
    pub fn calibration(&self) -> Option<&Calibration> {
        self.calibration.as_ref()
    }

    /// Starts learning the empty room over the next `seconds` of source time. The room
    /// must be empty meanwhile; a calibration that sees motion is refused.
    pub fn calibrate(&mut self, seconds: f64) {
        self.calibrating = Some(CalibrationRun {
            seconds: seconds.max(self.config.block_s * self.config.presence_blocks as f64),
            started: None,
            ratios: Vec::new(),
            scores: Vec::new(),
            frames: 0,
            profiles: Vec::new(),
        });
    }

    /// Applies a saved calibration (thresholds, and the static background when it has
    /// one). Refused when it was made for another CSI shape than the frames seen so far,
    /// or its background does not fit its shape.
    pub fn set_calibration(&mut self, c: Option<Calibration>) -> Result<(), String> {
        if let (Some(c), Some(l)) = (&c, &self.layout) {
            if c.shape != l.shape {
                return Err(format!(
                    "the calibration was made for CSI shaped {:?}, this environment receives {:?}",
                    c.shape, l.shape
                ));
            }
        }
        self.background = match &c {
            Some(c) => Self::background_of(c, &self.config.background)?,
            None => None,
        };
        self.config.motion_threshold = c
            .as_ref()
            .map_or(self.defaults.motion_threshold, |c| c.motion_threshold);
        self.config.presence_threshold = c
            .as_ref()
            .map_or(self.defaults.presence_threshold, |c| c.presence_threshold);
        self.calibration = c;
        self.state.calibrated = self.calibration.is_some();
        Ok(())
    }

    /// After each background block: whether the static channel has just come clearly back
    /// to the empty room's (under half its threshold) after saying for at least
    /// [`STATIC_STAY_S`] that someone was there — someone who stayed has left.
    fn static_step(&mut self, t: f64, present: bool) -> bool {
        let score = self.background.as_ref().and_then(|b| b.score);
        if present {
            let since = self.static_since.map_or(t, |(s, _)| s);
            self.static_since = Some((since, t));
            return false;
        }
        let Some((since, last)) = self.static_since else {
            return false;
        };
        if score.is_some_and(|s| s < 0.5) && last - since >= STATIC_STAY_S {
            self.static_since = None;
            return true;
        }
        if t - last > STATIC_GAP_S {
            self.static_since = None;
        }
        false
    }

    /// The live background a calibration describes, if it has one.
    fn background_of(
        c: &Calibration,
        config: &BackgroundConfig,
    ) -> Result<Option<Background>, String> {
        c.validate()?;
        Ok(match (&c.background, c.static_threshold) {
            (Some(reference), Some(threshold)) => Some(Background::new(
                config.clone(),
                reference.clone(),
                threshold,
            )),
            _ => None,
        })
    }

    /// Why the calibration in force was dropped since the last call, if it was.
    pub fn take_dropped(&mut self) -> Option<String> {
        self.dropped.take()
    }

    /// Tells the sensor which band its frames are on (from their channel number; see
    /// [`Band::of_channel`]). It decides how a one-antenna link reads a breathing rate.
    pub fn set_band(&mut self, band: Band) {
        if band != self.band {
            self.motion.restart_long_wave();
        }
        self.band = band;
    }

    /// The band set by [`Sensor::set_band`] (unknown until then).
    pub fn band(&self) -> Band {
        self.band
    }

    /// Whether a calibration is being measured.
    pub fn calibrating(&self) -> bool {
        self.calibrating.is_some()
    }

    /// One frame at source time `t`. Returns a calibration's outcome when one ends here.
    pub fn push(&mut self, t: f64, csi: &Array3<Complex32>) -> Option<CalibrationOutcome> {
        if !t.is_finite() {
            return None;
        }
        let csi = if self.config.align_chains {
            self.chains.align(csi)
        } else {
            std::borrow::Cow::Borrowed(csi)
        };
        let csi = csi.as_ref();
        if self.chains.take_began_stepping() && self.layout.is_some() {
            // The frames so far were read with the card's phase steps in them: they looked
            // like motion. Start over as for a new layout (a calibration is kept), and a
            // calibration under way starts its seconds again.
            self.reset_layout(csi)?;
            self.last_motion_t = None;
            self.last_window_motion_t = None;
            if let Some(seconds) = self.calibrating.as_ref().map(|run| run.seconds) {
                self.calibrate(seconds);
            }
        }
        let shape = {
            let (a, b, c) = csi.dim();
            [a, b, c]
        };
        if self.layout.as_ref().is_none_or(|l| l.shape != shape) {
            self.reset_layout(csi)?;
        }
        let layout = self.layout.as_ref()?;
        let mut z = std::mem::take(&mut self.z);
        if !layout.extract(csi, &mut z) {
            self.z = z;
            return None;
        }
        let long_wave = layout.mode == FeatureMode::Amplitude && self.band == Band::Ghz2_4;
        let reading = self.motion.push(t, &z, &self.prev, &layout.runs, long_wave);
        std::mem::swap(&mut self.prev, &mut z);
        self.z = z;
        let threshold = self.config.motion_threshold + self.motion_margin;
        // The presence and breathing windows start over after motion of the fast and slow
        // ratios only. The long-wave ratio finds a slow walker at 2.4 GHz that they miss;
        // such weak motion barely reaches the breathing band, and what it leaves there is
        // a person: starting the windows over on it would lose one-antenna links' still
        // people after each walk, which their weak breathing line rarely finds again
        // (held-out daily clips: presence accuracy 0.838 -> 0.792, `docs/sensing.md`).
        let window_motion = reading.base > threshold && reading.warm;
        if window_motion {
            self.last_window_motion_t = Some(t);
        }
        self.accumulate_block(t, window_motion);
        let ratio = reading.ratio;
        // Cold ratios (just after a gap, a packet a hair out of order, or a new layout)
        // cannot call motion either way yet: the motion last called stands until they can,
        // if it was called within the hold. Calling it over would read as the person
        // settling, and the rest posture would be read from that false end (a walker was
        // `lying` for a second at each lap of a repeating simulation whose next run's
        // first packet was stamped 0.3 ms before the last run's last).
        let moving = if reading.warm {
            ratio > threshold
        } else {
            // Measured from the last warm reading, so cold readings do not renew it.
            self.state.motion_detected
                && self
                    .last_warm_t
                    .is_some_and(|w| (t - w).abs() <= self.config.hold_s)
        };
        if reading.warm {
            self.last_warm_t = Some(t);
        }
        if moving {
            self.last_motion_t = Some(t);
        }
        // Profiles only where something reads them: an uncalibrated room pays nothing.
        let profile = if self.calibrating.is_some() || self.background.is_some() {
            self.profiles.push(
                t,
                csi.iter().map(|c| c.norm()),
                self.config.background.block_s,
            )
        } else {
            None
        };
        let outcome = self.calibration_step(t, ratio, profile.as_deref());
        let floor = self
            .calibration
            .as_ref()
            .map_or(1.0, |c| c.motion_median.max(1.0));
        let recent =
            |last: Option<f64>| last.is_some_and(|m| t - m <= self.config.hold_s && t >= m);
        let recent_motion = recent(self.last_motion_t);
        // A rate is from windows since the last motion that started them over; until the
        // next evaluation after such motion it is stale, and not reported.
        let rate_stale = recent(self.last_window_motion_t);
        let breathing_present = self
            .presence_score
            .is_some_and(|s| s > self.config.presence_threshold + self.presence_margin)
            || (self.breathing.is_some() && !rate_stale);
        if let (Some(p), Some(bg)) = (&profile, self.background.as_mut()) {
            bg.push(t, p, recent_motion, breathing_present);
        }
        let static_present = self.background.as_ref().is_some_and(Background::present);
        let mut breathing_present = breathing_present;
        if profile.is_some() && self.static_step(t, static_present) {
            // The room's static channel is back to the empty room's after someone stayed
            // a while: they left, perhaps too slowly for the motion detector (ESP32 at
            // 2.4 GHz). Their departure is a step in the breathing band; the long window
            // must not read it as a breather, so it starts afresh as it does after motion.
            self.still_blocks = 0;
            self.presence_score = None;
            self.breathing = None;
            breathing_present = false;
        }
        self.state = SensingState {
            t,
            motion_level: ((ratio / floor).max(1.0).ln() / 30f64.ln()).clamp(0.0, 1.0),
            motion_detected: moving,
            motion_ratio: ratio,
            presence: recent_motion || breathing_present || static_present,
            presence_score: self.presence_score,
            breathing_rate_bpm: self.breathing.filter(|_| !rate_stale),
            breathing_score: self.breathing_score,
            calibrated: self.calibration.is_some(),
            static_score: self.background.as_ref().and_then(|b| b.score),
            mode: self.layout.as_ref().map_or("none", |l| l.mode.as_str()),
        };
        outcome
    }

    fn reset_layout(&mut self, csi: &Array3<Complex32>) -> Option<()> {
        let layout = FeatureLayout::for_frame(csi)?;
        if let Some(c) = &self.calibration {
            if c.shape != layout.shape {
                // A calibration of another shape means nothing for these frames; said
                // once (`take_dropped`), not silently.
                self.dropped = Some(format!(
                    "the calibration in force was made for CSI shaped {:?}; frames shaped {:?} \
                     arrived, so it was dropped: calibrate again for this device",
                    c.shape, layout.shape
                ));
                self.calibration = None;
                self.background = None;
                self.config = self.defaults.clone();
            }
        }
        self.prev.clear();
        self.profiles = ProfileBlocks::default();
        self.motion.reset();
        self.block_sum = vec![Complex32::default(); layout.len()];
        self.block_n = 0;
        self.block_noise = 0.0;
        self.block_start = None;
        self.block_index = 0.0;
        self.blocks.clear();
        self.still_blocks = 0;
        self.group = if layout.mode == FeatureMode::Amplitude {
            1
        } else {
            self.config.pair_group.max(1)
        };
        self.poly = poly_basis(self.config.short_blocks);
        self.presence_score = None;
        self.breathing = None;
        self.breathing_score = None;
        self.layout = Some(layout);
        Some(())
    }

    fn accumulate_block(&mut self, t: f64, moving: bool) {
        // Blocks on a fixed grid of source time, so each spans exactly `block_s` whatever
        // the packet timing (a threshold on the time since the block's first packet drifts:
        // 10 or 11 packets at 100 Hz, depending on rounding).
        let origin = *self.block_start.get_or_insert(t);
        let index = ((t - origin) / self.config.block_s + 1e-6).floor();
        if index != self.block_index || t < origin {
            if self.block_n > 0 {
                // Neighbouring features averaged in groups (a trailing partial group is
                // left out, so every block feature has the same noise).
                let g = self.group;
                let n = (self.block_n as usize * g) as f32;
                let mean: Vec<Complex32> = self
                    .block_sum
                    .chunks_exact(g)
                    .map(|c| c.iter().sum::<Complex32>() / n)
                    .collect();
                let noise = self.block_noise / (self.block_n as f64).powi(2) / g as f64;
                self.still_blocks = if self.block_moving {
                    0
                } else {
                    self.still_blocks + 1
                };
                self.blocks.push_back(Block {
                    mean,
                    noise,
                    moving: self.block_moving,
                });
                let keep = self
                    .config
                    .breathing_blocks
                    .max(self.config.presence_blocks);
                while self.blocks.len() > keep {
                    self.blocks.pop_front();
                }
                self.blocks_since_eval += 1;
                self.blocks_since_breathing += 1;
                self.evaluate_windows();
            }
            self.block_sum
                .iter_mut()
                .for_each(|v| *v = Complex32::default());
            self.block_n = 0;
            self.block_noise = 0.0;
            self.block_moving = false;
            if t < origin {
                self.block_start = Some(t);
                self.block_index = 0.0;
            } else {
                self.block_index = index;
            }
        }
        for (s, v) in self.block_sum.iter_mut().zip(&self.prev) {
            *s += v;
        }
        self.block_n += 1;
        self.block_noise += self.motion.noise_per_packet();
        self.block_moving |= moving;
    }

    /// Presence score every 0.5 s, breathing rate every 2 s.
    ///
    /// The presence score is the larger of two, each about 1 with noise alone: the short
    /// window's (the last 2 s, moving blocks included: it finds a still person 2 s after
    /// the sensor starts or motion ends) and the long window's (every block since the last
    /// motion, 6.4 to 25.6 s: a weak breather's line grows out of the noise with the
    /// window's length). The long window starts afresh after motion, so someone who
    /// walks out leaves no breathing behind in it.
    fn evaluate_windows(&mut self) {
        let short = self.config.short_blocks;
        if self.blocks_since_eval >= 5 && self.blocks.len() >= short.max(3) {
            self.blocks_since_eval = 0;
            let mut score = self.short_score(short);
            let n = self.still_blocks.min(self.config.breathing_blocks);
            if n >= self.config.presence_blocks.max(8) {
                let (band, noise) = self.band_power(n, n.next_power_of_two());
                if noise > 0.0 {
                    score = score.max(band / noise);
                }
            }
            self.presence_score = score.is_finite().then_some(score);
        }
        if self.blocks_since_breathing >= 20 {
            self.blocks_since_breathing = 0;
            self.breathing_score = None;
            let m = self.still_blocks.min(self.config.breathing_blocks);
            self.breathing = if m >= self.config.breathing_min_blocks.max(8) {
                self.breathing_rate(m)
            } else {
                None
            };
        }
    }

    /// The short window's score: each feature's projection on the orthonormal polynomials
    /// of degree 1 to 3 over the last `n` blocks (a trend and two curvatures: over 2 s a
    /// breathing chest is part of one breath), their power over what noise puts there
    /// (each projection of white noise of power `s` holds `s`).
    fn short_score(&self, n: usize) -> f64 {
        let blocks: Vec<&Block> = self.blocks.iter().skip(self.blocks.len() - n).collect();
        let n_feat = blocks[0].mean.len();
        let mut power = 0f64;
        for f in 0..n_feat {
            let mut c = [Complex32::default(); 3];
            for (b, q) in blocks.iter().zip(&self.poly) {
                let v = b.mean[f];
                for (ci, qi) in c.iter_mut().zip(q) {
                    *ci += v * *qi;
                }
            }
            power += c.iter().map(|c| c.norm_sqr() as f64).sum::<f64>();
        }
        let noise = blocks.iter().map(|b| b.noise).sum::<f64>() / n as f64;
        power / (3.0 * noise * n_feat as f64)
    }

    /// The strongest breathing-band bin of the last `n` blocks' features (Hann window,
    /// linear trend removed, FFT of `n_fft` points) and the power the noise alone puts in
    /// one bin.
    fn band_power(&mut self, n: usize, n_fft: usize) -> (f64, f64) {
        let spectrum = self.spectrum(n, n_fft);
        let [lo, hi] = self.band_bins(n_fft);
        // The strongest bin, not the band's sum: breathing is one line (and its
        // harmonics), so the peak stands further above the noise than the band's mean.
        let peak = (lo..=hi).map(|k| spectrum.power[k]).fold(0.0, f64::max);
        (peak, spectrum.noise_per_bin)
    }

    fn band_bins(&self, n_fft: usize) -> [usize; 2] {
        let df = 1.0 / (n_fft as f64 * self.config.block_s);
        let lo = ((self.config.band_hz[0] / df).ceil() as usize).max(1);
        let hi = ((self.config.band_hz[1] / df).floor() as usize).max(lo);
        [lo, hi.min(n_fft / 2 - 1)]
    }

    /// Summed power spectrum of every feature over the last `n` blocks, folded to
    /// non-negative frequencies (positive and negative bins added).
    fn spectrum(&mut self, n: usize, n_fft: usize) -> Spectrum {
        let skip = self.blocks.len() - n;
        let noise_mean = self.blocks.iter().skip(skip).map(|b| b.noise).sum::<f64>() / n as f64;
        let means: Vec<&[Complex32]> = self
            .blocks
            .iter()
            .skip(skip)
            .map(|b| b.mean.as_slice())
            .collect();
        spectrum_of(&mut self.planner, &means, noise_mean, n_fft)
    }

    /// The breathing rate over the last `m` blocks, when nothing moved in them and the
    /// band holds a clear peak well above the noise.
    ///
    /// A fidget the motion detector missed (an arm moved slowly for a second or two) is a
    /// step far larger than breathing makes between blocks; its broad low-frequency
    /// residue can bury the breathing line. Blocks around such steps are bridged by
    /// linear interpolation, feature by feature, before the spectrum (at most a fifth of
    /// the window; more is not a still person).
    fn breathing_rate(&mut self, m: usize) -> Option<f64> {
        let skip = self.blocks.len() - m;
        if self.blocks.iter().skip(skip).any(|b| b.moving) {
            return None;
        }
        let mut means: Vec<Vec<Complex32>> = self
            .blocks
            .iter()
            .skip(skip)
            .map(|b| b.mean.clone())
            .collect();
        let noise_mean = self.blocks.iter().skip(skip).map(|b| b.noise).sum::<f64>() / m as f64;
        if !bridge_steps(&mut means, noise_mean) {
            return None;
        }
        let n_fft = 1024;
        let refs: Vec<&[Complex32]> = means.iter().map(|v| v.as_slice()).collect();
        let spectrum = spectrum_of(&mut self.planner, &refs, noise_mean, n_fft);
        let [lo, hi] = self.band_bins(n_fft);
        // The strongest local maximum inside the band: a band edge holding the band's
        // largest value is the flank of something outside it (a fidget's slow residue
        // below 0.1 Hz), and a line standing beside it is still a rate.
        let p = &spectrum.power;
        let (k, peak) = (lo.max(1) + 1..hi.min(p.len() - 2))
            .filter(|&k| p[k] >= p[k - 1] && p[k] >= p[k + 1])
            .map(|k| (k, p[k]))
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        // Zero padding spreads one bin's noise over n_fft / m neighbours: compare the
        // peak with the noise expected in one padded bin, and with the band's median.
        let mut band: Vec<f64> = (lo..=hi).map(|k| spectrum.power[k]).collect();
        band.sort_by(f64::total_cmp);
        let median = band[band.len() / 2];
        self.breathing_score = Some(peak / spectrum.noise_per_bin);
        if peak < self.config.breathing_threshold * spectrum.noise_per_bin || peak < 2.0 * median {
            return None;
        }
        // The line may be breathing's second harmonic: a chest swinging a path's phase by
        // a radian or more while that path is in phase with the static channel changes the
        // amplitude (all a one-antenna card has) at twice the breathing rate, and the
        // fundamental nearly vanishes. A clear line at half the frequency (within 0.04
        // Hz) and at least a quarter of the peak's power is taken for the rate instead.
        // Complex features (two or more chains) keep the fundamental whatever the phase,
        // so there the strongest line stands.
        let amplitude = self
            .layout
            .as_ref()
            .is_some_and(|l| l.mode == FeatureMode::Amplitude);
        // Which of the two ways below reads the rate. Complex features: the line against
        // the band's other directions. Amplitudes at 5 GHz: the same, though it reads a
        // deep breather's second harmonic where the half-frequency rule would not: on 24
        // held-out Nexmon clips it took 30 s windows within 1 bpm from 0.45 to 0.52
        // (standing people 0.23 -> 0.40), one clip lost among five gained. Amplitudes at
        // 2.4 GHz or on an unknown band: the summed spectrum and the half-frequency rule,
        // since on ESP32 the line lost in two sets of clips of three (`docs/sensing.md`,
        // "Standing people: breathing beneath sway").
        let by_line = !amplitude || self.band == Band::Ghz5;
        let p = &spectrum.power;
        let k = if by_line {
            k
        } else {
            let half = k / 2;
            let sub = (half.saturating_sub(4).max(lo + 1)..(half + 5).min(hi))
                .filter(|&j| p[j] >= p[j - 1] && p[j] >= p[j + 1])
                .max_by(|a, b| p[*a].total_cmp(&p[*b]));
            match sub {
                Some(j)
                    if p[j] >= 0.25 * peak
                        && p[j] >= self.config.breathing_threshold * spectrum.noise_per_bin =>
                {
                    j
                }
                _ => k,
            }
        };
        // The line's way: the rate is the band bin that keeps the most power once the
        // directions of the band's other bins are projected out of it (`breathing_line`):
        // a standing body's sway, summed over the features, outshines the breathing line,
        // but it is broadband, and its neighbours' directions take it away.
        let line = if by_line {
            breathing_line::find(
                &mut self.planner,
                &means,
                self.config.block_s,
                self.config.band_hz,
                [lo, hi],
                n_fft,
            )
        } else {
            None
        };
        let (k, p) = match &line {
            Some(l) => (l.bin, &l.power),
            None => (k, &spectrum.power),
        };
        // Parabolic interpolation of the peak between its neighbours.
        let (a, b, c) = (p[k - 1], p[k], p[k + 1]);
        let denom = a - 2.0 * b + c;
        let offset = if denom.abs() > 0.0 {
            (0.5 * (a - c) / denom).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        let hz = (k as f64 + offset) / (n_fft as f64 * self.config.block_s);

        Some(60.0 * hz)
    }

    fn calibration_step(
        &mut self,
        t: f64,
        ratio: f64,
        profile: Option<&[f32]>,
    ) -> Option<CalibrationOutcome> {
        let run = self.calibrating.as_mut()?;
        let started = *run.started.get_or_insert(t);
        run.frames += 1;
        if let Some(p) = profile {
            // A block that began before the calibration did is not the empty room's.
            let most = background::MAX_CALIBRATION_BLOCKS
                .min(background::MAX_CALIBRATION_VALUES / p.len().max(1));
            if t - started >= self.config.background.block_s && run.profiles.len() < most {
                run.profiles.push(p.to_vec());
            }
        }
        // Bounded: an hour at 1,000 packets/s would be 3.6 M samples; the percentiles
        // come from the first MAX_CALIBRATION_SAMPLES, plenty for a 99.9th.
        if run.ratios.len() < MAX_CALIBRATION_SAMPLES {
            run.ratios.push(ratio as f32);
        }
        if self.blocks_since_eval == 0 {
            if let Some(s) = self.presence_score {
                run.scores.push(s as f32);
            }
        }
        if t - started < run.seconds {
            return None;
        }
        let run = self.calibrating.take()?;
        let layout = self.layout.as_ref()?;
        let mut ratios = run.ratios;
        ratios.sort_by(f32::total_cmp);
        let q = |p: f64| ratios[((ratios.len() - 1) as f64 * p) as usize] as f64;
        let (median, p999) = (q(0.5), q(0.999));
        let presence_max = run.scores.iter().fold(0f32, |m, s| m.max(*s)) as f64;
        let learned = background::learn(&run.profiles);
        let bc = &self.config.background;
        // An empty room's motion ratio sits near 1; far above it, something moved.
        if median > 2.0 * self.defaults.motion_threshold || p999 > 20.0 * median.max(1.0) {
            return Some(CalibrationOutcome::Refused {
                reason: format!(
                    "motion was seen while calibrating (motion ratio median {median:.2}, \
                     99.9th percentile {p999:.1}; an empty, still room gives about 1): \
                     calibrate again with the room empty"
                ),
            });
        }
        let c = Calibration {
            seconds: t - started,
            frames: run.frames,
            mode: layout.mode.as_str().to_string(),
            shape: layout.shape,
            motion_median: median,
            motion_p999: p999,
            presence_max,
            motion_threshold: self.defaults.motion_threshold.max(1.5 * p999),
            presence_threshold: self.defaults.presence_threshold.max(1.5 * presence_max),
            static_max: learned.as_ref().map(|l| l.1),
            static_threshold: learned.as_ref().map(|l| (bc.margin * l.1).max(bc.floor)),
            background: learned.map(|l| l.0),
        };
        self.set_calibration(Some(c.clone())).ok()?;
        Some(CalibrationOutcome::Done(c))
    }
}

struct Spectrum {
    power: Vec<f64>,
    noise_per_bin: f64,
}

/// Summed power spectrum of every feature of `blocks` (block means, oldest first; linear
/// trend removed, Hann window, FFT of `n_fft` points), folded to non-negative frequencies,
/// and the power white noise of `noise` per feature per block puts in one bin.
fn spectrum_of(
    planner: &mut FftPlanner<f32>,
    blocks: &[&[Complex32]],
    noise_mean: f64,
    n_fft: usize,
) -> Spectrum {
    let n = blocks.len();
    let n_feat = blocks[0].len();
    let window = breathing_line::hann(n);
    let w2: f64 = window.iter().map(|w| (*w as f64).powi(2)).sum();
    let fft: Arc<dyn Fft<f32>> = planner.plan_fft_forward(n_fft);
    let mut power = vec![0f64; n_fft / 2 + 1];
    let mut buf = vec![Complex32::default(); n_fft];
    for f in 0..n_feat {
        let (mean, slope, c) = breathing_line::linear_trend(n, |i| blocks[i][f]);
        buf.fill(Complex32::default());
        for (i, ((v, b), w)) in buf.iter_mut().zip(blocks).zip(&window).enumerate() {
            *v = (b[f] - mean - slope * (i as f32 - c)) * w;
        }
        fft.process(&mut buf);
        power
            .iter_mut()
            .zip(breathing_line::fold(&buf))
            .for_each(|(p, q)| *p += q);
    }
    // White noise of power s per feature per block gives E|X_k|^2 = s * sum(w^2) per
    // bin, twice that once the two signs are folded together.
    Spectrum {
        power,
        noise_per_bin: 2.0 * noise_mean * w2 * n_feat as f64,
    }
}

/// A step between consecutive blocks counts as a transient above this many times the
/// window's median step (or the noise's, if larger).
const STEP_OUTLIER: f64 = 8.0;

/// Bridges the transients of `blocks` (block means, oldest first): every block within two
/// of a step above [`STEP_OUTLIER`] times the median step is replaced, feature by feature,
/// by the straight line between the nearest kept blocks. False when more than a fifth of
/// the window would be bridged (then it is no still window).
fn bridge_steps(blocks: &mut [Vec<Complex32>], noise: f64) -> bool {
    let n = blocks.len();
    if n < 3 {
        return true;
    }
    let n_feat = blocks[0].len();
    let steps: Vec<f64> = blocks
        .windows(2)
        .map(|w| {
            w[1].iter()
                .zip(&w[0])
                .map(|(a, b)| (a - b).norm_sqr() as f64)
                .sum()
        })
        .collect();
    let mut sorted = steps.clone();
    sorted.sort_by(f64::total_cmp);
    // A step of pure noise holds 2 * noise per feature.
    let floor = sorted[sorted.len() / 2].max(2.0 * noise * n_feat as f64);
    let mut bad = vec![false; n];
    for (i, e) in steps.iter().enumerate() {
        // Step i is between blocks i and i + 1.
        if *e > STEP_OUTLIER * floor {
            bad[i.saturating_sub(1)..(i + 3).min(n)]
                .iter_mut()
                .for_each(|b| *b = true);
        }
    }
    let n_bad = bad.iter().filter(|b| **b).count();
    if n_bad == 0 {
        return true;
    }
    if n_bad * 5 > n {
        return false;
    }
    let mut i = 0;
    while i < n {
        if !bad[i] {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < n && bad[j] {
            j += 1;
        }
        // Blocks i..j are bridged between i - 1 and j (held flat at an end).
        let a = blocks[i.checked_sub(1).unwrap_or(j)].clone();
        let b = if j < n { blocks[j].clone() } else { a.clone() };
        let span = (j - i + 1) as f32;
        for (o, block) in blocks[i..j].iter_mut().enumerate() {
            let u = (o + 1) as f32 / span;
            for ((v, a), b) in block.iter_mut().zip(&a).zip(&b) {
                *v = a + (b - a) * u;
            }
        }
        i = j;
    }
    true
}

/// The polynomials of degree 1, 2 and 3 over `n` equally spaced points, orthonormal
/// (to each other and to the constant, which they therefore ignore); Gram-Schmidt on the
/// monomials of the centred abscissa.
fn poly_basis(n: usize) -> Vec<[f32; 3]> {
    let c = (n as f64 - 1.0) / 2.0;
    let mut basis: Vec<Vec<f64>> = vec![vec![1.0 / (n as f64).sqrt(); n]];
    for d in 1..=3 {
        let mut v: Vec<f64> = (0..n)
            .map(|i| ((i as f64 - c) / c.max(1.0)).powi(d))
            .collect();
        for q in &basis {
            let dot: f64 = v.iter().zip(q).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(q).for_each(|(a, b)| *a -= dot * b);
        }
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-12);
        basis.push(v.iter().map(|a| a / norm).collect());
    }
    (0..n)
        .map(|i| [basis[1][i] as f32, basis[2][i] as f32, basis[3][i] as f32])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Over the last 1000 frames (after 30 s at 100 Hz): a rate in more than 900, and at
    /// least `right` of them within 1 bpm of `bpm`.
    fn assert_rate_after_30_s(states: &[SensingState], bpm: f64, right: f64) {
        let rates: Vec<f64> = states[3000..]
            .iter()
            .filter_map(|s| s.breathing_rate_bpm)
            .collect();
        assert!(
            rates.len() > 900,
            "a rate in {} of 1000 frames",
            rates.len()
        );
        let wrong: Vec<f64> = rates
            .iter()
            .copied()
            .filter(|r| (r - bpm).abs() >= 1.0)
            .collect();
        assert!(
            wrong.len() as f64 <= (1.0 - right) * rates.len() as f64,
            "{} of {} rates wrong: {:?}",
            wrong.len(),
            rates.len(),
            &wrong[..wrong.len().min(5)]
        );
    }
    use rand::{Rng, SeedableRng};

    /// A 3x3x30 room: a static channel, a person's path whose phase follows `phase(t)`,
    /// white noise, and per-packet common phase and gain (cancelled by the features).
    fn room(
        person: Option<&dyn Fn(f64) -> f64>,
        seconds: f64,
        seed: u64,
    ) -> Vec<(f64, Array3<Complex32>)> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let n = (seconds * 100.0) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 * 0.01;
                let common = rng.gen::<f32>() * std::f32::consts::TAU;
                let gain = 1.0 + 0.05 * (rng.gen::<f32>() - 0.5);
                let phase = person.map(|p| p(t) as f32);
                let csi = Array3::from_shape_fn((3, 3, 30), |(a, r, k)| {
                    let stat = Complex32::from_polar(1.0, 0.2 * k as f32 + r as f32 + a as f32)
                        + Complex32::from_polar(0.5, -0.3 * k as f32 + 2.0 * r as f32);
                    let body = phase.map_or(Complex32::default(), |p| {
                        Complex32::from_polar(0.06, p + 0.05 * k as f32 + 0.8 * r as f32)
                    });
                    let noise =
                        Complex32::new(rng.gen::<f32>() - 0.5, rng.gen::<f32>() - 0.5) * 0.08;
                    (stat + body + noise) * Complex32::from_polar(gain, common)
                });
                (t, csi)
            })
            .collect()
    }

    fn run(sensor: &mut Sensor, frames: &[(f64, Array3<Complex32>)]) -> Vec<SensingState> {
        frames
            .iter()
            .map(|(t, c)| {
                sensor.push(*t, c);
                sensor.state().clone()
            })
            .collect()
    }

    /// The states of a sensor without margins and of one with these margins, same frames.
    fn plain_and_raised(
        frames: &[(f64, Array3<Complex32>)],
        presence: f64,
        motion: f64,
    ) -> (Vec<SensingState>, Vec<SensingState>) {
        let plain = run(&mut Sensor::default(), frames);
        let mut raised = Sensor::default();
        raised.set_margins(presence, motion);
        (plain, run(&mut raised, frames))
    }

    #[test]
    fn empty_room_reads_as_noise_and_nobody() {
        let mut s = Sensor::default();
        let states = run(&mut s, &room(None, 30.0, 1));
        let ratios: Vec<f64> = states[50..].iter().map(|s| s.motion_ratio).collect();
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        assert!((mean - 1.0).abs() < 0.1, "empty motion ratio {mean}");
        assert!(states.iter().all(|s| !s.presence && !s.motion_detected));
        let score = states.last().unwrap().presence_score.unwrap();
        assert!((0.6..1.6).contains(&score), "empty presence score {score}");
        assert_eq!(states.last().unwrap().breathing_rate_bpm, None);
    }

    #[test]
    fn breathing_person_is_present_and_its_rate_measured() {
        let bpm = 15.0;
        let breathe = move |t: f64| 1.5 * (2.0 * std::f64::consts::PI * bpm / 60.0 * t).sin();
        let mut s = Sensor::default();
        let states = run(&mut s, &room(Some(&breathe), 40.0, 2));
        // From the first full presence window on, present in every frame; never "moving".
        assert!(
            states[700..].iter().all(|s| s.presence),
            "still person lost"
        );
        assert!(states.iter().all(|s| !s.motion_detected));
        let rate = states.last().unwrap().breathing_rate_bpm.expect("a rate");
        assert!((rate - bpm).abs() < 1.0, "rate {rate} vs {bpm}");
    }

    #[test]
    fn a_still_person_is_found_two_seconds_after_the_start() {
        // The short window (2 s): without it nothing is said before 6.4 s.
        let breathe = |t: f64| 1.0 * (2.0 * std::f64::consts::PI * 0.2 * t).sin();
        let mut s = Sensor::default();
        let states = run(&mut s, &room(Some(&breathe), 10.0, 7));
        let first = states.iter().position(|s| s.presence).expect("never found");
        assert!((200..=260).contains(&first), "first present frame {first}");
        assert!(states[first..].iter().all(|s| s.presence), "lost again");
        let mut s = Sensor::default();
        let states = run(&mut s, &room(None, 10.0, 8));
        assert!(states.iter().all(|s| !s.presence));
    }

    #[test]
    fn a_presence_margin_raises_the_breathing_band_bar_and_not_motion() {
        // The bank raises a link's bar while other links of the room are heard: the same
        // still person (found 2 s in alone) is not present by the score under a margin
        // far above it, and still is by the breathing rate once one is measured (12.8 s).
        let breathe = |t: f64| 1.0 * (2.0 * std::f64::consts::PI * 0.2 * t).sin();
        let frames = room(Some(&breathe), 20.0, 7);
        let (plain, raised) = plain_and_raised(&frames, 1e9, 0.0);
        assert!(plain[300..1200].iter().all(|s| s.presence));
        assert!(
            raised[..1200].iter().all(|s| !s.presence),
            "present under the margin"
        );
        assert!(
            raised.last().unwrap().presence && raised.last().unwrap().breathing_rate_bpm.is_some()
        );
        assert!(plain
            .iter()
            .zip(&raised)
            .all(|(a, b)| a.presence_score == b.presence_score
                && a.motion_detected == b.motion_detected));
    }

    #[test]
    fn a_weak_breather_is_found_as_the_still_window_grows() {
        // Too weak for the 2 s and 6.4 s windows (scores about 1.1 against 1.8),
        // found once the window has grown (2.0 at 12 s, 2.7 at 25 s).
        let bpm = 18.0;
        let breathe = move |t: f64| 0.03 * (2.0 * std::f64::consts::PI * bpm / 60.0 * t).sin();
        let mut s = Sensor::default();
        let states = run(&mut s, &room(Some(&breathe), 30.0, 9));
        assert!(
            states[..600].iter().all(|s| !s.presence),
            "the short windows already find it: make it weaker"
        );
        assert!(
            states[1800..].iter().all(|s| s.presence),
            "weak breather lost"
        );
        let rate = states.last().unwrap().breathing_rate_bpm.expect("a rate");
        assert!((rate - bpm).abs() < 1.0, "rate {rate} vs {bpm}");
    }

    #[test]
    fn a_breathing_line_beneath_stronger_broadband_sway_gives_the_rate() {
        // Postural sway as real bodies sway: broadband, power falling as 1/f^2 over
        // 0.05-1 Hz, three times the breathing's power in all but spread over 80 lines;
        // the breathing is one line (12.5 bpm).
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let comps: Vec<(f64, f64, f64)> = (0..80)
            .map(|_| {
                let f = 0.05 * 20f64.powf(rng.gen::<f64>());
                (f, 1.0 / f, std::f64::consts::TAU * rng.gen::<f64>())
            })
            .collect();
        let rms = (comps.iter().map(|c| c.1 * c.1).sum::<f64>() / 2.0).sqrt();
        let (breath_amp, sway_rms) = (0.5, 0.5 * 3f64.sqrt() / 2f64.sqrt());
        let bpm = 12.5;
        let phase = move |t: f64| {
            let sway: f64 = comps
                .iter()
                .map(|(f, a, p)| a / rms * sway_rms * (std::f64::consts::TAU * f * t + p).sin())
                .sum();
            breath_amp * (std::f64::consts::TAU * bpm / 60.0 * t).sin() + sway
        };
        let mut s = Sensor::default();
        let states = run(&mut s, &room(Some(&phase), 40.0, 12));
        // Sway and breathing on one path (one scatterer) share one spatial signature, so
        // the band's components cannot hold them apart (`breathing_line`): one of the five
        // rates measured in these 10 s is a sway lump's. The summed spectrum had all five
        // here, but on the simulator's bodies, whose sway moves every limb and breathing
        // the chest, the components are right more often (`docs/sensing.md`, "Standing
        // people: breathing beneath sway"); `breathing_line`'s own test has that case.
        assert_rate_after_30_s(&states, bpm, 0.75);
    }

    #[test]
    fn steps_far_above_breathing_are_bridged_and_breathing_is_left_alone() {
        // Block means: a strong breathing line (never bridged: its steps vary by a factor
        // of a few around their median) and a 0.3 s jump of a fidget (bridged).
        let line = |i: usize| {
            let x = (std::f32::consts::TAU * 0.25 * i as f32 * 0.1).sin();
            vec![Complex32::new(x, 0.5 * x); 4]
        };
        let mut means: Vec<Vec<Complex32>> = (0..256).map(line).collect();
        let clean = means.clone();
        assert!(bridge_steps(&mut means, 1e-6));
        assert_eq!(means, clean, "breathing alone was bridged");
        for m in &mut means[100..103] {
            m.iter_mut().for_each(|v| *v += Complex32::new(20.0, 0.0));
        }
        assert!(bridge_steps(&mut means, 1e-6));
        let worst = (0..256)
            .map(|i| (means[i][0] - clean[i][0]).norm())
            .fold(0f32, f32::max);
        // The bridge is a straight line across 0.7 s of a 4 s breath: close, not exact.
        assert!(worst < 0.5, "the jump was not bridged: {worst}");
        // A window that is mostly transients is no still window.
        let mut noisy: Vec<Vec<Complex32>> = (0..100)
            .map(|i| vec![Complex32::new(if i % 7 == 0 { 50.0 } else { 0.0 }, 0.0); 4])
            .collect();
        assert!(!bridge_steps(&mut noisy, 1e-6));
        // End to end, a fidget the motion detector misses leaves the rate right.
        let bpm = 15.0;
        let fidget = |t: f64| {
            let u = (t - 25.0) / 1.5;
            if (0.0..=1.0).contains(&u) {
                2.0 * (1.0 - (std::f64::consts::TAU * u).cos())
            } else {
                0.0
            }
        };
        let phase = move |t: f64| 0.3 * (std::f64::consts::TAU * bpm / 60.0 * t).sin() + fidget(t);
        let mut s = Sensor::default();
        let states = run(&mut s, &room(Some(&phase), 40.0, 13));
        assert!(states.iter().all(|s| !s.motion_detected));
        assert!(states[3000..]
            .iter()
            .all(|s| s.breathing_rate_bpm.is_some_and(|r| (r - bpm).abs() < 1.0)));
    }

    /// A 1x1x64 link: a static channel, a breathing chest's path (phase +-0.3 rad at
    /// `bpm`) and a swaying body's stronger path whose phase wanders over the whole band
    /// (20 log-spaced lines, power falling as 1 / f^2), each path at its own delay.
    fn one_antenna_swaying(bpm: f64, seconds: f64, seed: u64) -> Vec<(f64, Array3<Complex32>)> {
        let tau = std::f64::consts::TAU;
        let lines = super::breathing_line::tests::wander_lines();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..(seconds * 100.0) as usize)
            .map(|i| {
                let t = i as f64 * 0.01;
                let breath = 0.3 * (tau * bpm / 60.0 * t).sin();
                let sway: f64 = lines
                    .iter()
                    .map(|(fj, a, ph)| 0.25 * a * (tau * fj * t + ph).sin())
                    .sum();
                let common = rng.gen::<f32>() * std::f32::consts::TAU;
                let csi = Array3::from_shape_fn((1, 1, 64), |(_, _, k)| {
                    let k = k as f32;
                    let stat = Complex32::from_polar(1.0 + 0.3 * (0.2 * k).sin(), 0.1 * k);
                    let chest = Complex32::from_polar(0.04, breath as f32 + 0.35 * k + 0.7);
                    let body = Complex32::from_polar(0.12, sway as f32 - 0.22 * k + 2.0);
                    let noise =
                        Complex32::new(rng.gen::<f32>() - 0.5, rng.gen::<f32>() - 0.5) * 0.01;
                    (stat + chest + body + noise) * Complex32::from_polar(1.0, common)
                });
                (t, csi)
            })
            .collect()
    }

    #[test]
    fn at_5_ghz_one_antenna_finds_the_breathing_line_beneath_a_stronger_sway() {
        // The sway's amplitude signature leads the summed spectrum; at 5 GHz the rate is
        // the band bin left strongest once the other bins' directions are projected out.
        let bpm = 20.0;
        let frames = one_antenna_swaying(bpm, 40.0, 21);
        let mut at_5 = Sensor::default();
        at_5.set_band(Band::Ghz5);
        assert_rate_after_30_s(&run(&mut at_5, &frames), bpm, 0.9);
        // The same frames on an unknown band (or at 2.4 GHz): the summed spectrum.
        let mut unknown = Sensor::default();
        let misled = run(&mut unknown, &frames)[3000..]
            .iter()
            .filter(|s| s.breathing_rate_bpm.is_some_and(|r| (r - bpm).abs() >= 1.0))
            .count();
        assert!(misled > 500, "the sum should be misled: {misled} of 1000");
    }

    /// One antenna at 100 Hz for `seconds`: a static channel, white noise, and what
    /// `body(t, k)` adds at time `t` on subcarrier `k`.
    fn one_antenna(
        seconds: f64,
        seed: u64,
        body: impl Fn(f64, usize) -> Complex32,
    ) -> Vec<(f64, Array3<Complex32>)> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..(seconds * 100.0) as usize)
            .map(|i| {
                let t = i as f64 * 0.01;
                let common = rng.gen::<f32>() * std::f32::consts::TAU;
                let csi = Array3::from_shape_fn((1, 1, 64), |(_, _, k)| {
                    let stat =
                        Complex32::from_polar(1.0 + 0.3 * (0.2 * k as f32).sin(), 0.1 * k as f32);
                    let noise =
                        Complex32::new(rng.gen::<f32>() - 0.5, rng.gen::<f32>() - 0.5) * 0.1;
                    (stat + body(t, k) + noise) * Complex32::from_polar(1.0, common)
                });
                (t, csi)
            })
            .collect()
    }

    /// A body's path of `amplitude` whose length changes at `hz` wavelengths a second (a
    /// slow walker) or, with `breathing`, swings by +-2 rad at `hz`.
    fn body_path(hz: f64, amplitude: f32, breathing: bool) -> impl Fn(f64, usize) -> Complex32 {
        move |t, k| {
            let turn = std::f64::consts::TAU * hz * t;
            let phi = if breathing { 2.0 * turn.sin() } else { turn } as f32;
            Complex32::from_polar(amplitude, phi + 0.15 * k as f32)
        }
    }

    /// [`one_antenna`] for 20 s with one [`body_path`].
    fn one_antenna_body(
        hz: f64,
        amplitude: f32,
        breathing: bool,
        seed: u64,
    ) -> Vec<(f64, Array3<Complex32>)> {
        one_antenna(20.0, seed, body_path(hz, amplitude, breathing))
    }

    #[test]
    fn at_2_4_ghz_one_antenna_sees_a_slow_walker_and_not_breathing() {
        let moving = |band: Band, frames: &[(f64, Array3<Complex32>)]| {
            let mut s = Sensor::default();
            s.set_band(band);
            let states = run(&mut s, frames);
            states[200..].iter().filter(|s| s.motion_detected).count() as f64 / 1800.0
        };
        // A path 2 % of the static channel's, 3 wavelengths a second (a body at 0.19 m/s
        // towards the link at 2.4 GHz): below the 0.04 s sub-blocks' second difference in
        // this noise, inside the 0.08 s one's.
        let walker = one_antenna_body(3.0, 0.02, false, 5);
        let at_2_4 = moving(Band::Ghz2_4, &walker);
        assert!(
            at_2_4 > 0.5,
            "the slow walker moved in {at_2_4} of frames at 2.4 GHz"
        );
        for band in [Band::Unknown, Band::Ghz5] {
            let other = moving(band, &walker);
            assert!(other < 0.05, "{band:?}: moved in {other} of frames");
        }
        // A chest's path fifteen times as strong, swinging +-2 rad at 0.25 Hz: no motion.
        let chest = one_antenna_body(0.25, 0.3, true, 6);
        assert_eq!(moving(Band::Ghz2_4, &chest), 0.0);
    }

    #[test]
    fn weak_motion_seen_only_at_2_4_ghz_leaves_the_breathing_rate_reported() {
        // A breather at 15 breaths a minute, and from 32 s to 35 s a weak slow walker
        // that only the long-wave ratio sees: motion is reported, and the breathing rate
        // with it (its windows were not started over, so it is not stale).
        let chest = body_path(0.25, 0.3, true);
        let walker = body_path(3.0, 0.02, false);
        let frames = one_antenna(36.0, 7, |t, k| {
            chest(t, k)
                + if (32.0..35.0).contains(&t) {
                    walker(t, k)
                } else {
                    Complex32::default()
                }
        });
        let mut s = Sensor::default();
        s.set_band(Band::Ghz2_4);
        let states = run(&mut s, &frames);
        let burst = &states[3300..3500];
        let moving = burst.iter().filter(|s| s.motion_detected).count();
        assert!(moving > 100, "motion in {moving} of 200 frames of the walk");
        let rated = burst
            .iter()
            .filter(|s| s.motion_detected)
            .filter(|s| s.breathing_rate_bpm.is_some_and(|r| (r - 15.0).abs() < 1.0))
            .count();
        assert_eq!(
            rated, moving,
            "the rate is reported through the weak motion"
        );
    }

    #[test]
    fn a_channel_number_gives_its_band() {
        assert_eq!(Band::of_channel(Some(6)), Band::Ghz2_4);
        assert_eq!(Band::of_channel(Some(14)), Band::Ghz2_4);
        assert_eq!(Band::of_channel(Some(36)), Band::Ghz5);
        assert_eq!(Band::of_channel(Some(165)), Band::Ghz5);
        assert_eq!(Band::of_channel(Some(0)), Band::Unknown);
        assert_eq!(Band::of_channel(Some(20)), Band::Unknown);
        assert_eq!(Band::of_channel(Some(233)), Band::Unknown);
        assert_eq!(Band::of_channel(None), Band::Unknown);
    }

    #[test]
    fn one_antenna_breathing_seen_at_its_second_harmonic_gives_the_rate() {
        // 1x1 (amplitude only): the chest's path swings by +-2 rad about a phase near the
        // static channel's, so |H| moves mostly as cos(2 sin wt), at twice the breathing
        // rate (the line at the rate itself holds about half that power). The rate
        // reported is the breathing's, not twice it.
        let bpm = 12.0;
        let mut rng = rand::rngs::StdRng::seed_from_u64(14);
        let frames: Vec<(f64, Array3<Complex32>)> = (0..4000)
            .map(|i| {
                let t = i as f64 * 0.01;
                let phi = 2.0 * (std::f64::consts::TAU * bpm / 60.0 * t).sin() as f32;
                let common = rng.gen::<f32>() * std::f32::consts::TAU;
                let csi = Array3::from_shape_fn((1, 1, 64), |(_, _, k)| {
                    let stat =
                        Complex32::from_polar(1.0 + 0.3 * (0.2 * k as f32).sin(), 0.1 * k as f32);
                    // 0.4 rad off the static channel's phase, on one side or the other
                    // of it: the amplitude's second harmonic has the two signs on the two
                    // halves (so it is no common gain the normalisation takes out).
                    let off = if k < 32 {
                        0.4
                    } else {
                        0.4 + std::f32::consts::PI
                    };
                    let body = Complex32::from_polar(0.05, phi + 0.1 * k as f32 + off);
                    let noise =
                        Complex32::new(rng.gen::<f32>() - 0.5, rng.gen::<f32>() - 0.5) * 0.03;
                    (stat + body + noise) * Complex32::from_polar(1.0, common)
                });
                (t, csi)
            })
            .collect();
        let mut s = Sensor::default();
        let states = run(&mut s, &frames);
        assert_rate_after_30_s(&states, bpm, 1.0);
    }

    #[test]
    fn walking_is_motion_and_presence_ends_after_the_hold() {
        // Walking at 1 m/s: the path length changes by ~1.4 m/s, 25 Hz of Doppler at 5 GHz.
        let walk = |t: f64| {
            if t < 10.0 {
                2.0 * std::f64::consts::PI * 25.0 * t
            } else {
                0.0
            }
        };
        let frames: Vec<_> = room(Some(&walk), 10.0, 3)
            .into_iter()
            .chain(room(None, 12.0, 4).into_iter().map(|(t, c)| (t + 10.0, c)))
            .collect();
        let mut s = Sensor::default();
        let states = run(&mut s, &frames);
        assert!(states[100..1000]
            .iter()
            .all(|s| s.motion_detected && s.motion_level > 0.3));
        assert!(
            states[1000 + 800..].iter().all(|s| !s.presence),
            "presence lingers"
        );
    }

    #[test]
    fn a_packet_out_of_order_or_a_short_gap_does_not_end_motion() {
        // A walker throughout. Packet 500 stamped 0.3 ms before packet 499 (a repeating
        // simulation's next run did that), and 0.6 s lost at packet 700: the ratios start
        // over at each, and the motion called before stands while they warm up again.
        let walk = |t: f64| 2.0 * std::f64::consts::PI * 25.0 * t;
        let mut frames = room(Some(&walk), 10.0, 3);
        frames[500].0 = frames[499].0 - 3e-4;
        for f in &mut frames[700..] {
            f.0 += 0.6;
        }
        let mut s = Sensor::default();
        let states = run(&mut s, &frames);
        assert!(states[100..].iter().all(|s| s.motion_detected));
        // After a gap longer than the hold, nothing is held: the first half second of
        // cold ratios calls no motion.
        let mut frames = room(Some(&walk), 6.0, 3);
        for f in &mut frames[300..] {
            f.0 += 5.0;
        }
        let mut s = Sensor::default();
        let states = run(&mut s, &frames);
        assert!(states[100..300].iter().all(|s| s.motion_detected));
        assert!(states[300..340].iter().all(|s| !s.motion_detected));
        assert!(states[360..].iter().all(|s| s.motion_detected));
    }

    #[test]
    fn packets_out_of_order_again_and_again_do_not_hold_motion_on() {
        // A walker for 5 s, then nobody moves; every 40th packet stamped just before the
        // one it follows. Each restarts the ratios cold: the hold must not renew itself.
        let walk = |t: f64| {
            if t < 5.0 {
                2.0 * std::f64::consts::PI * 25.0 * t
            } else {
                0.0
            }
        };
        let mut frames = room(Some(&walk), 15.0, 3);
        for k in (40..frames.len()).step_by(40) {
            frames[k].0 = frames[k - 1].0 - 1e-4;
        }
        let mut s = Sensor::default();
        let states = run(&mut s, &frames);
        assert!(states[1000..].iter().all(|s| !s.motion_detected));
    }

    #[test]
    fn a_motion_margin_raises_the_motion_bar() {
        // Walking that reads 25 Hz of Doppler: motion under no margin, none under one far
        // above its ratio (the bank's, with many links heard), the ratio itself the same.
        let walk = |t: f64| 2.0 * std::f64::consts::PI * 25.0 * t;
        let frames = room(Some(&walk), 5.0, 3);
        let (plain, raised) = plain_and_raised(&frames, 0.0, 1e9);
        assert!(plain[100..].iter().all(|s| s.motion_detected));
        assert!(raised.iter().all(|s| !s.motion_detected));
        assert!(plain
            .iter()
            .zip(&raised)
            .all(|(a, b)| a.motion_ratio == b.motion_ratio));
    }

    #[test]
    fn calibration_raises_thresholds_and_refuses_motion() {
        let mut s = Sensor::default();
        s.calibrate(8.0);
        let mut outcome = None;
        for (t, c) in room(None, 10.0, 5) {
            outcome = outcome.or(s.push(t, &c));
        }
        let Some(CalibrationOutcome::Done(c)) = outcome else {
            panic!("no calibration: {outcome:?}")
        };
        assert!(s.state().calibrated && c.motion_median < 1.5 && c.shape == [3, 3, 30]);
        let walk = |t: f64| 2.0 * std::f64::consts::PI * 25.0 * t;
        let mut s = Sensor::default();
        s.calibrate(5.0);
        let mut outcome = None;
        for (t, c) in room(Some(&walk), 8.0, 6) {
            outcome = outcome.or(s.push(t, &c));
        }
        assert!(
            matches!(outcome, Some(CalibrationOutcome::Refused { .. })),
            "{outcome:?}"
        );
        assert!(!s.state().calibrated);
    }
}
