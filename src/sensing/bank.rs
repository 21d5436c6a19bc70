//! Several sources in one room: one [`Sensor`] per source, their states fused.
//!
//! In: frames tagged with their source (an ESP32 node, a receiver, a replayed file). Out:
//! one [`SensingState`] for the room. Each link is sensed on its own — its own feature
//! layout, noise and calibration — because packets of two links interleaved in one stream
//! would look like a channel jumping between two rooms (motion that is not there). The
//! room state is the union of the links that are *fresh* (a frame within [`STALE_S`] of
//! the newest frame of any source): someone moving or present on any link is moving or
//! present in the room; a silent link drops out of the fusion, so it degrades the estimate
//! and never holds a stale "present" (or invents one).
//!
//! Sources need not share a clock (ESP32 nodes stamp frames with their own): each joins
//! the room's clock — the first source's — at the moment it appears, and a source whose
//! clock goes back rejoins. Freshness and the room state's `t` are on that clock.
//!
//! With one source the room state is that sensor's state, unchanged.
use ndarray::Array3;
use num_complex::Complex32;

use super::sensor::{Band, Calibration, CalibrationOutcome, SensingState, Sensor};

/// Sources sensed separately at most; frames of further sources are not sensed (counted).
pub const MAX_SOURCES: usize = 16;
/// A source silent for this many seconds (of the newest source's clock) leaves the fusion.
pub const STALE_S: f64 = 2.0;
/// Added to each link's presence threshold per other fresh link of the room. The room is
/// present when any link's breathing-band score clears its bar, so with N links an empty
/// room's chance excursions have N chances: on the tuning seeds (24 empty rooms of 40 s)
/// three Nexmon links reported someone in 0.44 % of frames at the single link's 1.8 and
/// none at 2.0, two links 0.05 % at 1.8 and none at 1.9, while still people were found as
/// often (0.998 / 0.993); ESP32 paid 0.784 -> 0.759 of still frames with three links,
/// Intel 5300 nothing (`docs/sensing.md`, "Several sources in one room").
pub const PRESENCE_MARGIN_PER_LINK: f64 = 0.1;
/// The same for each link's motion threshold (1.5 alone): three ESP32 links' empty rooms
/// reported motion-held presence in 0.23 % of frames at 1.5 and none at 1.6 on the tuning
/// seeds, motion F1 0.880 -> 0.873 (Nexmon 0.889 -> 0.893, Intel 0.908 -> 0.911).
pub const MOTION_MARGIN_PER_LINK: f64 = 0.05;

struct Link {
    source: String,
    sensor: Sensor,
    /// Added to this source's timestamps to put them on the room's clock (the first
    /// source's): nodes stamp frames with their own clocks.
    offset: f64,
    /// The last frame's time on the room's clock.
    last_t: f64,
    /// The outcome of this link's calibration, once it ended.
    outcome: Option<CalibrationOutcome>,
}

/// The room's sensors (see the module docs).
#[derive(Default)]
pub struct SensorBank {
    links: Vec<Link>,
    state: Option<SensingState>,
    /// A calibration asked for: its length, until every link in it has ended.
    calibrating: Option<f64>,
    /// The saved calibration given last: links that appear later take it too.
    pending: Option<Calibration>,
    /// Frames of sources beyond [`MAX_SOURCES`].
    pub frames_unsensed: u64,
}

impl SensorBank {
    /// The room's state after the last frame (a fresh sensor's before any frame).
    pub fn state(&self) -> SensingState {
        match &self.state {
            Some(s) => s.clone(),
            None => Sensor::default().state().clone(),
        }
    }

    /// Sources sensed so far.
    pub fn sources(&self) -> Vec<&str> {
        self.links.iter().map(|l| l.source.as_str()).collect()
    }

    /// The first source still fresh: the one the pose model follows.
    pub fn primary(&self) -> Option<&str> {
        let newest = self.newest()?;
        self.links
            .iter()
            .find(|l| newest - l.last_t <= STALE_S)
            .map(|l| l.source.as_str())
    }

    fn newest(&self) -> Option<f64> {
        self.links.iter().map(|l| l.last_t).reduce(f64::max)
    }

    /// Links other than `i` that are fresh (a frame within [`STALE_S`] of the newest).
    fn fresh_others(&self, i: usize) -> usize {
        let Some(newest) = self.newest() else {
            return 0;
        };
        (self.links.iter().enumerate())
            .filter(|&(j, l)| j != i && newest - l.last_t <= STALE_S)
            .count()
    }

    /// One frame of `source` at source time `t`, on `channel` where the frame or the
    /// environment's device profile says (it sets the link's [`Band`]; a frame without
    /// one leaves the band as it was); returns a calibration's outcome once every link
    /// that was calibrating has ended (see [`SensorBank::calibrate`]).
    pub fn push(
        &mut self,
        source: &str,
        t: f64,
        csi: &Array3<Complex32>,
        channel: Option<u16>,
    ) -> Option<CalibrationOutcome> {
        let i = match self.links.iter().position(|l| l.source == source) {
            Some(i) => i,
            None if self.links.len() < MAX_SOURCES => {
                let mut sensor = Sensor::default();
                // A fresh sensor has no layout to refuse it with.
                let _ = sensor.set_calibration(self.pending.clone());
                if let Some(seconds) = self.calibrating {
                    sensor.calibrate(seconds);
                }
                // Joins the room's clock now (the first source defines it).
                let offset = self.newest().map_or(0.0, |now| now - t);
                self.links.push(Link {
                    source: source.to_string(),
                    sensor,
                    offset,
                    last_t: t + offset,
                    outcome: None,
                });
                self.links.len() - 1
            }
            None => {
                self.frames_unsensed += 1;
                return None;
            }
        };
        if channel.is_some() {
            self.links[i].sensor.set_band(Band::of_channel(channel));
        }
        let others = self.fresh_others(i) as f64;
        self.links[i].sensor.set_margins(
            PRESENCE_MARGIN_PER_LINK * others,
            MOTION_MARGIN_PER_LINK * others,
        );
        let outcome = self.links[i].sensor.push(t, csi);
        if t.is_finite() {
            let link = &mut self.links[i];
            if t + link.offset < link.last_t - 1.0 && self.links.len() > 1 {
                // This source's clock went back (a node rebooted): it rejoins now.
                let now = self.links.iter().map(|l| l.last_t).fold(f64::MIN, f64::max);
                self.links[i].offset = now - t;
            }
            let link = &mut self.links[i];
            link.last_t = t + link.offset;
        }
        if let Some(o) = outcome {
            self.links[i].outcome = Some(o);
        }
        self.state = Some(self.fuse(i));
        self.calibration_outcome()
    }

    /// The room state: link `i`'s (it just took a frame), joined with every other fresh
    /// link's.
    fn fuse(&self, i: usize) -> SensingState {
        let mut s = self.links[i].sensor.state().clone();
        s.t += self.links[i].offset; // on the room's clock (the first source's: offset 0)
        let newest = self.newest().unwrap_or(s.t);
        let mut best_breathing = s
            .breathing_rate_bpm
            .map(|_| s.breathing_score.unwrap_or(0.0));
        for (j, link) in self.links.iter().enumerate() {
            if j == i || newest - link.last_t > STALE_S {
                continue;
            }
            let o = link.sensor.state();
            s.motion_detected |= o.motion_detected;
            s.motion_level = s.motion_level.max(o.motion_level);
            s.motion_ratio = s.motion_ratio.max(o.motion_ratio);
            s.presence |= o.presence;
            s.presence_score = match (s.presence_score, o.presence_score) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            s.calibrated &= o.calibrated;
            s.static_score = match (s.static_score, o.static_score) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            if let Some(rate) = o.breathing_rate_bpm {
                let score = o.breathing_score.unwrap_or(0.0);
                if best_breathing.is_none_or(|b| score > b) {
                    best_breathing = Some(score);
                    s.breathing_rate_bpm = Some(rate);
                    s.breathing_score = o.breathing_score;
                }
            }
        }
        s
    }

    /// Starts learning the empty room on every link (and on links that appear meanwhile).
    pub fn calibrate(&mut self, seconds: f64) {
        self.calibrating = Some(seconds);
        for link in &mut self.links {
            link.outcome = None;
            link.sensor.calibrate(seconds);
        }
    }

    /// When every calibrating link has ended: the primary link's calibration if all were
    /// taken, else the first refusal (naming its source when there are several).
    fn calibration_outcome(&mut self) -> Option<CalibrationOutcome> {
        self.calibrating?;
        if self.links.is_empty() || self.links.iter().any(|l| l.outcome.is_none()) {
            return None;
        }
        self.calibrating = None;
        let several = self.links.len() > 1;
        let mut first_done = None;
        for link in &mut self.links {
            match link.outcome.take() {
                Some(CalibrationOutcome::Refused { reason }) => {
                    let reason = if several {
                        format!("{}: {reason}", link.source)
                    } else {
                        reason
                    };
                    return Some(CalibrationOutcome::Refused { reason });
                }
                Some(CalibrationOutcome::Done(c)) => {
                    first_done.get_or_insert(c);
                }
                None => {}
            }
        }
        first_done.map(CalibrationOutcome::Done)
    }

    /// Applies a saved calibration to every link whose CSI it fits (all links when none
    /// has sent a frame yet); refused when it fits none.
    pub fn set_calibration(&mut self, c: Option<Calibration>) -> Result<(), String> {
        if let Some(c) = &c {
            c.validate()?; // refused now, not when the first frame finds it broken
        }
        self.pending = c.clone();
        if self.links.is_empty() {
            return Ok(()); // each link takes it when its source appears
        }
        let mut errors = Vec::new();
        let mut applied = 0;
        for link in &mut self.links {
            match link.sensor.set_calibration(c.clone()) {
                Ok(()) => applied += 1,
                Err(e) => errors.push(format!("{}: {e}", link.source)),
            }
        }
        if applied == 0 {
            return Err(errors.join("; "));
        }
        Ok(())
    }

    /// Why a link dropped the calibration in force since the last call (frames of
    /// another CSI shape), naming the link when there are several.
    pub fn take_dropped(&mut self) -> Option<String> {
        let several = self.links.len() > 1;
        self.links.iter_mut().find_map(|l| {
            let reason = l.sensor.take_dropped()?;
            Some(if several {
                format!("{}: {reason}", l.source)
            } else {
                reason
            })
        })
    }

    /// The primary link's calibration in force.
    pub fn calibration(&self) -> Option<&Calibration> {
        let primary = self.primary();
        match self
            .links
            .iter()
            .find(|l| Some(l.source.as_str()) == primary)
            .or(self.links.first())
        {
            Some(l) => l.sensor.calibration(),
            None => self.pending.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link whose channel is still (`moving` false) or has a path sweeping at 1 Hz.
    fn frame(t: f64, link: usize, moving: bool) -> Array3<Complex32> {
        Array3::from_shape_fn((1, 3, 30), |(_, r, k)| {
            // Each link its own static channel (another slope and antenna pattern).
            let slope = 0.2 + 0.5 * link as f32;
            let base =
                Complex32::from_polar(1.0, slope * k as f32 + r as f32 * (0.7 + link as f32));
            let sweep = if moving {
                Complex32::from_polar(
                    0.5,
                    (2.0 * std::f64::consts::PI * 1.3 * t) as f32 + 0.05 * k as f32 + r as f32,
                )
            } else {
                Complex32::new(0.0, 0.0)
            };
            base + sweep
        })
    }

    #[test]
    fn one_source_is_that_sensors_state() {
        let (mut bank, mut alone) = (SensorBank::default(), Sensor::default());
        for i in 0..600 {
            let t = i as f64 * 0.01;
            bank.push("a", t, &frame(t, 0, i > 300), None);
            alone.push(t, &frame(t, 0, i > 300));
            assert_eq!(&bank.state(), alone.state());
        }
    }

    #[test]
    fn interleaved_still_links_are_still_and_a_moving_one_moves_the_room() {
        // Two still links interleaved: each is sensed on its own, so no false motion
        // (one sensor fed both would see the channel jump every packet).
        let mut bank = SensorBank::default();
        let mut mixed = Sensor::default();
        let (mut bank_motion, mut mixed_motion) = (0, 0);
        for i in 0..1000 {
            let t = i as f64 * 0.005;
            let link = i % 2;
            bank.push(["a", "b"][link], t, &frame(t, link, false), None);
            mixed.push(t, &frame(t, link, false));
            bank_motion += usize::from(bank.state().motion_detected);
            mixed_motion += usize::from(mixed.state().motion_detected);
        }
        assert_eq!(bank_motion, 0);
        assert!(
            mixed_motion > 500,
            "the single sensor is fooled: {mixed_motion}"
        );
        // Link b starts moving: the room moves.
        for i in 1000..1600 {
            let t = i as f64 * 0.005;
            let link = i % 2;
            bank.push(["a", "b"][link], t, &frame(t, link, link == 1), None);
        }
        assert!(bank.state().motion_detected && bank.state().presence);
        assert_eq!(bank.sources(), vec!["a", "b"]);
    }

    #[test]
    fn each_link_s_bars_rise_with_the_other_fresh_links() {
        let mut bank = SensorBank::default();
        for n in 0..300 {
            let t = n as f64 * 0.01;
            for (k, source) in ["a", "b", "c"].into_iter().enumerate() {
                bank.push(source, t, &frame(t, k, false), None);
            }
        }
        let margins: Vec<(f64, f64)> = bank.links.iter().map(|l| l.sensor.margins()).collect();
        let two = (2.0 * PRESENCE_MARGIN_PER_LINK, 2.0 * MOTION_MARGIN_PER_LINK);
        assert_eq!(margins, vec![two; 3]);
        // "c" goes silent: once it is stale, the others' bars come down by one link.
        for n in 300..600 {
            let t = n as f64 * 0.01;
            for (k, source) in ["a", "b"].into_iter().enumerate() {
                bank.push(source, t, &frame(t, k, false), None);
            }
        }
        let one = (PRESENCE_MARGIN_PER_LINK, MOTION_MARGIN_PER_LINK);
        assert_eq!(bank.links[0].sensor.margins(), one);
        assert_eq!(bank.links[1].sensor.margins(), one);
    }

    #[test]
    fn a_silent_link_leaves_the_fusion_and_the_primary_moves_on() {
        let mut bank = SensorBank::default();
        for i in 0..600 {
            let t = i as f64 * 0.01;
            bank.push("a", t, &frame(t, 0, true), None);
            bank.push("b", t, &frame(t, 1, false), None);
        }
        assert!(bank.state().motion_detected);
        assert_eq!(bank.primary(), Some("a"));
        // a goes silent; b alone, still, for longer than STALE_S and the hold.
        for i in 600..1200 {
            let t = i as f64 * 0.01;
            bank.push("b", t, &frame(t, 1, false), None);
        }
        assert_eq!(bank.primary(), Some("b"));
        assert!(
            !bank.state().motion_detected,
            "a stale link holds no motion"
        );
    }

    #[test]
    fn sources_with_their_own_clocks_are_fused_on_the_rooms() {
        // Node b's clock reads 5000 s more than a's: it is still fresh beside a, and the
        // room state stays on a's clock.
        let mut bank = SensorBank::default();
        for i in 0..600 {
            let t = i as f64 * 0.01;
            bank.push("a", t, &frame(t, 0, false), None);
            bank.push("b", 5000.0 + t, &frame(t, 1, i > 200), None);
            assert!((bank.state().t - t).abs() < 1e-9);
        }
        assert!(bank.state().motion_detected, "b's motion reaches the room");
        assert_eq!(bank.primary(), Some("a"));
        // b reboots (its clock restarts at 0): it rejoins, still fresh and moving.
        for i in 600..700 {
            let t = i as f64 * 0.01;
            bank.push("a", t, &frame(t, 0, false), None);
            bank.push("b", t - 6.0, &frame(t, 1, true), None);
        }
        assert!(bank.state().motion_detected);
    }

    #[test]
    fn calibration_ends_when_every_link_has_and_sources_are_bounded() {
        let mut bank = SensorBank::default();
        bank.push("a", 0.0, &frame(0.0, 0, false), None);
        bank.push("b", 0.0, &frame(0.0, 1, false), None);
        bank.calibrate(6.4);
        let mut outcome = None;
        for i in 1..1500 {
            let t = i as f64 * 0.01;
            for (link, source) in ["a", "b"].iter().enumerate() {
                if let Some(o) = bank.push(source, t, &frame(t, link, false), None) {
                    assert!(outcome.is_none(), "one outcome for the room");
                    outcome = Some(o);
                }
            }
        }
        assert!(
            matches!(outcome, Some(CalibrationOutcome::Done(_))),
            "{outcome:?}"
        );
        assert!(bank.calibration().is_some());
        for n in 0..MAX_SOURCES + 3 {
            bank.push(&format!("n{n}"), 20.0, &frame(20.0, 0, false), None);
        }
        assert_eq!(bank.sources().len(), MAX_SOURCES);
        assert_eq!(bank.frames_unsensed, 5);
    }

    #[test]
    fn each_link_takes_the_band_its_frames_say_and_keeps_it_through_frames_that_do_not() {
        let mut bank = SensorBank::default();
        bank.push("a", 0.0, &frame(0.0, 0, false), Some(36));
        bank.push("b", 0.0, &frame(0.0, 1, false), Some(6));
        bank.push("a", 0.01, &frame(0.01, 0, false), None);
        bank.push("c", 0.01, &frame(0.01, 0, false), None);
        let band = |s: &str| {
            bank.links
                .iter()
                .find(|l| l.source == s)
                .unwrap()
                .sensor
                .band()
        };
        assert_eq!(band("a"), Band::Ghz5);
        assert_eq!(band("b"), Band::Ghz2_4);
        assert_eq!(band("c"), Band::Unknown);
    }
}
