//! The posture a person came to rest in, read from the motion that ended.
//!
//! One link cannot tell standing, sitting and lying apart from a still channel
//! (`docs/sensing.md`, "Posture from the channel"), but the seconds before the stillness
//! say something: a walk that stops keeps the localizer's place moving to the end, a
//! sit-down or lie-down happens in place, and they last and fade differently. At each end
//! of motion (the sensor's `motion_detected` going false) six features of the seconds
//! before are computed ([`Features`]) and a three-class logistic regression, fitted on
//! simulated tuning episodes (`python benches/rest_posture.py --fit`, which prints the
//! constants below), gives standing / sitting / lying probabilities. They stand until the
//! person moves again.
//!
//! Held out (`python benches/rest_posture.py`): balanced accuracy 0.56 over the ends of
//! 80 held-out clips, against 0.33 by chance; figures in `docs/sensing.md`, "Posture
//! from the motion that ended it".
//!
//! Where the localizer places nobody (one antenna, no placement, or fewer than four places
//! in the last 2.5 s) the two displacement features are missing (NaN) and a second
//! regression on the other four decides, fitted on such links of every simulated device
//! (`python benches/rest_posture.py --unplaced --fit`).
//!
//! While the channel moves, the same six features over the seconds up to now say whether
//! the person walks or only sways, shifts or fidgets where they are (a standing body sets
//! off the motion detector in most of its frames, `docs/sensing.md`, "End to end"): a
//! two-class logistic regression gives the probability of walking
//! ([`RestPosture::walking`]), fitted on simulated tuning days by
//! `python benches/walking_or_sway.py --fit` (and `--unplaced --fit` for links that place
//! nobody).
use std::collections::VecDeque;

/// Seconds of history kept: the longest feature span (the walking features' 5 s) and a
/// margin.
const HISTORY_S: f64 = 5.5;
/// The longer span the walking features also read: walking keeps the channel moving for
/// seconds on end, a swaying or fidgeting body sets it off now and then.
const WALK_SPAN_S: f64 = 5.0;
/// The span over which the localizer's place is read for the displacement features.
const PLACE_SPAN_S: f64 = 2.5;
/// Places needed in that span (else the displacement features are missing).
const MIN_PLACES: usize = 4;
/// The longest motion run counted (a run is the time since motion last began).
const MAX_RUN_S: f64 = 60.0;

/// Samples kept at most, whatever the clock says: a source stamping every frame with one
/// time would otherwise keep them all (5.5 s is 550 frames at 100 a second).
const MAX_SAMPLES: usize = 4096;
/// A step back of the clock larger than this restarts (a simulation run restarted).
const RESTART_S: f64 = 0.5;

/// The number of features.
pub const N_FEATURES: usize = 6;

/// What the seconds before a motion end looked like.
///
/// `[run, level_3_2, level_2_1, level_1_0, displacement, spread]`: the length of the
/// motion run that ended (s, at most 60); the mean `motion_level` 3-2 s, 2-1 s and the
/// last second before the end (0 where no frame fell); the distance between the
/// medians (per axis) of the first and second half of the localizer's places over the
/// last 2.5 s, and the length of their per-axis standard deviations (m; both NaN with
/// fewer than four places).
pub type Features = [f64; N_FEATURES];

/// Standardization of the features (mean, standard deviation) and the logistic
/// regression's weights (one row per feature, then the bias; columns standing, sitting,
/// lying), from `python benches/rest_posture.py --fit`.
const MEAN: Features = [3.58449, 0.485756, 0.538805, 0.355395, 0.870213, 0.844115];
const STD: Features = [2.28536, 0.306979, 0.28998, 0.12031, 0.900501, 0.650529];
const WEIGHTS: [[f64; 3]; N_FEATURES + 1] = [
    [-0.419746, -0.00996314, 0.429709],
    [-0.399201, 0.538006, -0.138805],
    [0.407699, -0.500389, 0.0926899],
    [0.177671, -0.198225, 0.0205534],
    [0.32707, -0.260155, -0.0669151],
    [-0.260796, 0.0030044, 0.257792],
    [0.00208054, -0.0303953, 0.0283148],
];

/// The features the unplaced regression reads: the run and the three levels.
const N_UNPLACED: usize = 4;
/// From `python benches/rest_posture.py --unplaced --fit`.
const UNPLACED_MEAN: [f64; N_UNPLACED] = [2.95462, 0.403082, 0.445151, 0.301776];
const UNPLACED_STD: [f64; N_UNPLACED] = [2.45644, 0.346426, 0.341603, 0.145584];
const UNPLACED_WEIGHTS: [[f64; 3]; N_UNPLACED + 1] = [
    [-0.559453, 0.0530355, 0.506417],
    [-0.621447, 1.01485, -0.393403],
    [0.803329, -1.08238, 0.279051],
    [0.0664638, 0.12552, -0.191984],
    [-0.00595751, -0.0490599, 0.0550174],
];

/// The number of walking features.
pub const N_WALK: usize = 10;

/// What the seconds up to a moving frame looked like: the six [`Features`] (the run so
/// far, the levels and the places up to the frame), then over the last 5 s the share of
/// frames with motion, their mean `motion_level`, how many times motion began, and the
/// distance between the medians of the two halves of the localizer's places (NaN with
/// fewer than four places, as the places' features 4 and 5).
pub type WalkFeatures = [f64; N_WALK];

/// The walking features the unplaced regression reads (those that need no place).
const UNPLACED_WALK: [usize; 7] = [0, 1, 2, 3, 6, 7, 8];

/// Walking against swaying in place while the channel moves: standardization and the
/// two-class regression's weights (one per feature, then the bias; positive is walking),
/// from `python benches/walking_or_sway.py --fit`.
const WALK_MEAN: WalkFeatures = [
    4.42465, 0.403583, 0.485579, 0.565825, 0.972502, 0.797872, 0.66646, 0.422979, 0.891502, 1.315,
];
const WALK_STD: WalkFeatures = [
    4.96687, 0.341527, 0.323018, 0.268423, 1.09819, 0.642769, 0.316998, 0.261018, 0.812268, 1.29885,
];
const WALK_WEIGHTS: [f64; N_WALK + 1] = [
    0.351849, 0.184309, -0.145024, 0.0778014, 0.393994, -0.303921, 1.05084, -0.322175, 0.452476,
    -0.0412967, -0.0367159,
];
/// From `python benches/walking_or_sway.py --unplaced --fit`, on the features
/// `UNPLACED_WALK` names.
const UNPLACED_WALK_MEAN: [f64; 7] = [
    4.78653, 0.403734, 0.48239, 0.559335, 0.653744, 0.425004, 1.00075,
];
const UNPLACED_WALK_STD: [f64; 7] = [
    6.01899, 0.361553, 0.348085, 0.298945, 0.320364, 0.290384, 1.01826,
];
const UNPLACED_WALK_WEIGHTS: [f64; 7 + 1] = [
    0.464134, 0.206807, -0.129385, 0.165013, 0.944145, -0.547006, 0.505524, -0.0109993,
];

#[derive(Clone, Copy, Debug)]
struct Sample {
    t: f64,
    moving: bool,
    level: f64,
    place: Option<[f64; 2]>,
}

/// Per environment: watches the sensor's frames and holds the posture of the last rest.
#[derive(Debug, Default)]
pub struct RestPosture {
    history: VecDeque<Sample>,
    in_motion: bool,
    run_start: Option<f64>,
    /// Standing, sitting, lying, from the last motion end; None while moving or before
    /// any motion ended.
    current: Option<[f64; 3]>,
    /// The last motion end's posture, kept while the person moves again (they may only
    /// be fidgeting in it).
    last_rest: Option<[f64; 3]>,
    /// The walking features up to the latest frame while it moves; None while still.
    moving: Option<WalkFeatures>,
}

impl RestPosture {
    /// One frame of the sensor at `t` (seconds, the source's clock; a clock that goes
    /// back by more than half a second starts afresh) with the localizer's place, if any. Returns the features when
    /// this frame ends a motion run (the first still frame after motion).
    pub fn update(
        &mut self,
        t: f64,
        motion_detected: bool,
        motion_level: f64,
        place: Option<[f64; 2]>,
    ) -> Option<Features> {
        if !t.is_finite() {
            return None;
        }
        // Several nodes' frames reach a room a few milliseconds out of order on its clock:
        // those count as the latest time; only a real step back is a restart.
        let t = match self.history.back() {
            Some(last) if t < last.t - RESTART_S => {
                *self = Self::default();
                t
            }
            Some(last) => t.max(last.t),
            None => t,
        };
        let place = place.filter(|p| p.iter().all(|v| v.is_finite()));
        let level = if motion_level.is_finite() {
            motion_level
        } else {
            0.0
        };
        let mut ended = None;
        if motion_detected {
            if !self.in_motion {
                self.run_start = Some(t);
            }
            self.current = None;
            self.moving = Some(self.walk_features(t));
        } else {
            self.moving = None;
            if self.in_motion {
                let f = self.features(t);
                self.current = Some(classify(&f));
                self.last_rest = self.current;
                ended = Some(f);
            }
        }
        self.in_motion = motion_detected;
        self.history.push_back(Sample {
            t,
            moving: motion_detected,
            level,
            place,
        });
        while self.history.front().is_some_and(|s| t - s.t > HISTORY_S)
            || self.history.len() > MAX_SAMPLES
        {
            self.history.pop_front();
        }
        ended
    }

    /// Standing, sitting, lying probabilities of the person at rest since the last motion
    /// end; None while moving or before a motion run was seen to end.
    pub fn posture(&self) -> Option<[f64; 3]> {
        self.current
    }

    /// While the channel moves: the walking features of the seconds up to the latest
    /// frame. None while still.
    pub fn moving_features(&self) -> Option<WalkFeatures> {
        self.moving
    }

    /// While the channel moves: the probability that the person walks rather than sways
    /// or fidgets in place. None while still.
    pub fn walking(&self) -> Option<f64> {
        self.moving.as_ref().map(walking_probability)
    }

    /// The posture read at the last motion end (standing, sitting, lying), kept while the
    /// person moves again; None before any motion ended.
    pub fn last_rest(&self) -> Option<[f64; 3]> {
        self.last_rest
    }

    fn features(&self, end: f64) -> Features {
        let run = self
            .run_start
            .map_or(0.0, |s| (end - s).clamp(0.0, MAX_RUN_S));
        let mut f = [run, 0.0, 0.0, 0.0, 0.0, 0.0];
        for (k, (a, b)) in [(-3.0, -2.0), (-2.0, -1.0), (-1.0, 0.0)]
            .into_iter()
            .enumerate()
        {
            let (sum, n) = self
                .history
                .iter()
                .filter(|s| s.t >= end + a && s.t < end + b)
                .fold((0.0, 0usize), |(sum, n), s| (sum + s.level, n + 1));
            if n > 0 {
                f[1 + k] = sum / n as f64;
            }
        }
        let places = self.places(end, PLACE_SPAN_S);
        if places.len() < MIN_PLACES {
            f[4] = f64::NAN;
            f[5] = f64::NAN;
        } else {
            f[4] = halves_apart(&places);
            let sd = |k: usize| {
                let m = places.iter().map(|p| p[k]).sum::<f64>() / places.len() as f64;
                (places.iter().map(|p| (p[k] - m).powi(2)).sum::<f64>() / places.len() as f64)
                    .sqrt()
            };
            f[5] = sd(0).hypot(sd(1));
        }
        f
    }

    /// The localizer's places in the `span` seconds before `end`.
    fn places(&self, end: f64, span: f64) -> Vec<[f64; 2]> {
        self.history
            .iter()
            .filter(|s| s.t >= end - span && s.t < end)
            .filter_map(|s| s.place)
            .collect()
    }

    fn walk_features(&self, now: f64) -> WalkFeatures {
        let mut w = [0.0; N_WALK];
        w[..N_FEATURES].copy_from_slice(&self.features(now));
        // One pass, no copy: this runs at every moving frame.
        let (mut n, mut moving, mut level, mut onsets) = (0usize, 0usize, 0.0, 0usize);
        let mut before: Option<bool> = None;
        for s in self
            .history
            .iter()
            .filter(|s| s.t >= now - WALK_SPAN_S && s.t < now)
        {
            n += 1;
            moving += usize::from(s.moving);
            level += s.level;
            onsets += usize::from(s.moving && before == Some(false));
            before = Some(s.moving);
        }
        if n > 0 {
            w[6] = moving as f64 / n as f64;
            w[7] = level / n as f64;
            w[8] = onsets as f64;
        }
        let places = self.places(now, WALK_SPAN_S);
        w[9] = if places.len() < MIN_PLACES {
            f64::NAN
        } else {
            halves_apart(&places)
        };
        w
    }
}

/// The three probabilities (standing, sitting, lying) the regression gives `f`: the
/// placed one, or the unplaced one on the first four features where the displacement
/// features are missing.
pub fn classify(f: &Features) -> [f64; 3] {
    let placed = f[4].is_finite() && f[5].is_finite();
    let n = if placed { N_FEATURES } else { N_UNPLACED };
    let (mean, std) = if placed {
        (&MEAN[..], &STD[..])
    } else {
        (&UNPLACED_MEAN[..], &UNPLACED_STD[..])
    };
    let weights = |k: usize| {
        if placed {
            WEIGHTS[k]
        } else {
            UNPLACED_WEIGHTS[k]
        }
    };
    let mut z = weights(n);
    for (k, v) in f.iter().take(n).enumerate() {
        let x = if v.is_finite() {
            (v - mean[k]) / std[k]
        } else {
            0.0
        };
        let w = weights(k);
        for c in 0..3 {
            z[c] += x * w[c];
        }
    }
    let top = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e = z.map(|v| (v - top).exp());
    let sum: f64 = e.iter().sum();
    e.map(|v| v / sum)
}

/// The probability of walking that the two-class regression gives the features of a
/// moving channel: the placed one, or the unplaced one where the displacement features are
/// missing.
pub fn walking_probability(f: &WalkFeatures) -> f64 {
    let placed = [4, 5, 9].iter().all(|&k| f[k].is_finite());
    let all: [usize; N_WALK] = std::array::from_fn(|k| k);
    let (cols, mean, std, weights): (&[usize], &[f64], &[f64], &[f64]) = if placed {
        (&all, &WALK_MEAN, &WALK_STD, &WALK_WEIGHTS)
    } else {
        (
            &UNPLACED_WALK,
            &UNPLACED_WALK_MEAN,
            &UNPLACED_WALK_STD,
            &UNPLACED_WALK_WEIGHTS,
        )
    };
    let z = cols
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let v = f[k];
            if v.is_finite() {
                (v - mean[i]) / std[i] * weights[i]
            } else {
                0.0
            }
        })
        .sum::<f64>()
        + weights[cols.len()];
    1.0 / (1.0 + (-z.clamp(-50.0, 50.0)).exp())
}

/// The distance between the per-axis medians of the first and the second half of
/// `places` (at least two).
fn halves_apart(places: &[[f64; 2]]) -> f64 {
    let (a, b) = places.split_at(places.len() / 2);
    let (ma, mb) = (median_xy(a), median_xy(b));
    (ma[0] - mb[0]).hypot(ma[1] - mb[1])
}

/// Median of each axis (the mean of the two middle values for an even count, as numpy).
fn median_xy(points: &[[f64; 2]]) -> [f64; 2] {
    // A selection, not a sort: this runs at every moving frame over up to 5 s of places.
    let median = |k: usize| {
        let mut v: Vec<f64> = points.iter().map(|p| p[k]).collect();
        let n = v.len();
        if n == 0 {
            return f64::NAN;
        }
        let (lower, upper, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
        let upper = *upper;
        if n % 2 == 1 {
            upper
        } else {
            let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (below + upper) / 2.0
        }
    };
    [median(0), median(1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds 30 frames a second: `moving` for `[0, run)`, still after, the place moving
    /// at `speed` m/s along x while moving and staying put after.
    fn episode(run: f64, level: f64, speed: f64) -> (RestPosture, Option<Features>) {
        let mut r = RestPosture::default();
        let mut out = None;
        for i in 0..((run + 2.0) * 30.0) as usize {
            let t = i as f64 / 30.0;
            let moving = t < run;
            let x = 1.0 + speed * t.min(run);
            if let Some(f) = r.update(t, moving, if moving { level } else { 0.0 }, Some([x, 2.0])) {
                assert!(out.is_none(), "one motion run, one end");
                out = Some(f);
            }
        }
        (r, out)
    }

    #[test]
    fn a_motion_end_gives_the_run_its_levels_and_the_walk_s_displacement() {
        let (r, f) = episode(4.0, 0.6, 1.0);
        let f = f.expect("the run ended");
        assert!((f[0] - 4.0).abs() < 0.05, "run {}", f[0]);
        for (k, level) in f.iter().enumerate().take(4).skip(1) {
            assert!((level - 0.6).abs() < 1e-9, "level {k}: {level}");
        }
        // 2.5 s of a 1 m/s walk: the halves' medians 1.25 m apart.
        assert!((f[4] - 1.25).abs() < 0.05, "displacement {}", f[4]);
        assert!(f[5] > 0.5, "spread {}", f[5]);
        let p = r.posture().expect("at rest");
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_motion_in_place_has_no_displacement_and_moving_again_forgets_the_posture() {
        let (mut r, f) = episode(2.0, 0.3, 0.0);
        let f = f.expect("the run ended");
        assert_eq!((f[4], f[5]), (0.0, 0.0));
        // Only 2 s of run: the span 3-2 s before the end saw no motion (level 0).
        assert_eq!(f[1], 0.0);
        assert!(r.posture().is_some());
        assert!(r.update(10.0, true, 0.5, None).is_none());
        assert!(r.posture().is_none(), "moving again: no rest posture");
    }

    #[test]
    fn without_places_the_unplaced_regression_and_bad_values_stay_finite() {
        let mut r = RestPosture::default();
        let mut ended = None;
        for i in 0..90 {
            let t = i as f64 / 30.0;
            ended = ended.or(r.update(t, i < 60, 0.4, Some([f64::NAN, 1.0])));
        }
        let f = ended.expect("the run ended");
        assert!(
            f[4].is_nan() && f[5].is_nan(),
            "no valid place: no displacement"
        );
        assert!(f[..4].iter().all(|v| v.is_finite()));
        let p = r.posture().expect("a posture from the run and the levels");
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        // Its own regression: the displacement features' weights play no part.
        let mut g = f;
        (g[4], g[5]) = (0.0, 0.0);
        assert_ne!(classify(&g), p);
        let mut r = RestPosture::default();
        let mut ended = None;
        for i in 0..90 {
            let t = i as f64 / 30.0;
            ended = ended.or(r.update(t, i < 60, f64::NAN, Some([1.0, 1.0])));
        }
        assert!(ended.expect("places").iter().all(|v| v.is_finite()));
        assert!(r.update(f64::NAN, false, 0.0, None).is_none());
        // A clock that goes back starts afresh: no motion run to end.
        assert!(r.update(0.5, false, 0.0, None).is_none());
        assert!(r.posture().is_none());
    }

    #[test]
    fn frames_a_little_out_of_order_are_one_run() {
        // Three nodes' frames, each node's instants 3 ms apart, interleaved as they arrive.
        let mut r = RestPosture::default();
        let mut ends = 0;
        for i in 0..300 {
            let t = (i / 3) as f64 / 30.0 + [0.003, 0.0, 0.006][i % 3];
            let moving = t < 2.0;
            let place = Some([1.0 + 0.5 * t.min(2.0), 2.0]);
            ends += usize::from(
                r.update(t, moving, if moving { 0.5 } else { 0.0 }, place)
                    .is_some(),
            );
        }
        assert_eq!(ends, 1, "one motion run, one end");
        assert!(r.posture().is_some());
    }

    #[test]
    fn a_clock_that_stands_still_keeps_a_bounded_history() {
        let mut r = RestPosture::default();
        for i in 0..20_000 {
            r.update(5.0, i % 2 == 0, 0.5, Some([1.0, 1.0]));
        }
        assert!(r.history.len() <= MAX_SAMPLES);
    }

    /// Feeds 30 frames a second for `secs`: motion as `moving(t)` says, at `level` while
    /// moving, the place at `place(t)`; returns the walking probability of the last frame.
    fn walking_after(
        secs: f64,
        moving: impl Fn(f64) -> bool,
        level: f64,
        place: impl Fn(f64) -> Option<[f64; 2]>,
    ) -> (RestPosture, Option<f64>) {
        let mut r = RestPosture::default();
        for i in 0..(secs * 30.0) as usize {
            let t = i as f64 / 30.0;
            let m = moving(t);
            r.update(t, m, if m { level } else { 0.0 }, place(t));
        }
        let p = r.walking();
        (r, p)
    }

    #[test]
    fn a_sustained_walk_is_walking_and_flickers_in_place_are_not() {
        let (r, walk) = walking_after(8.0, |_| true, 0.6, |t| Some([0.5 + t, 2.0]));
        let f = r.moving_features().expect("moving");
        assert!(
            (f[6] - 1.0).abs() < 1e-9,
            "share of the last 5 s moving {}",
            f[6]
        );
        assert_eq!(f[8], 0.0, "no new onset within the run");
        // 5 s of a 1 m/s walk: the halves' medians 2.5 m apart.
        assert!((f[9] - 2.5).abs() < 0.1, "displacement over 5 s {}", f[9]);
        let walk = walk.expect("moving");
        // A body that sets off the motion detector for 1 s in every 3, where it stands.
        let sway_motion = |t: f64| t % 3.0 > 2.0;
        let (_, sway) = walking_after(8.9, sway_motion, 0.1, |_| Some([2.0, 2.0]));
        let sway = sway.expect("the last frame moves");
        // The regression is soft (held out it tells the two apart in 0.71 of the frames,
        // balanced), but it orders these two clearly.
        assert!(
            walk > 0.6 && sway < 0.5 && walk - sway > 0.15,
            "walk {walk}, sway {sway}"
        );
        // Without places: the unplaced regression orders them too.
        let (_, walk) = walking_after(8.0, |_| true, 0.6, |_| None);
        let (_, sway) = walking_after(8.9, sway_motion, 0.1, |_| None);
        let (walk, sway) = (walk.expect("moving"), sway.expect("moving"));
        assert!(
            walk > 0.6 && sway < 0.5 && walk - sway > 0.15,
            "unplaced: walk {walk}, sway {sway}"
        );
        // Still: no walking probability, and the posture is kept through the next motion.
        let (mut r, _) = walking_after(6.0, |t| t < 3.0, 0.5, |_| None);
        assert!(r.walking().is_none() && r.moving_features().is_none());
        let rest = r.posture().expect("at rest");
        r.update(6.1, true, 0.5, None);
        assert!(r.posture().is_none());
        assert_eq!(r.last_rest(), Some(rest));
        assert!(r.walking().is_some());
    }

    #[test]
    fn medians_are_numpy_s() {
        let pts = |v: &[f64]| v.iter().map(|&a| [a, -a]).collect::<Vec<_>>();
        assert_eq!(median_xy(&pts(&[3.0, 1.0, 2.0])), [2.0, -2.0]);
        assert_eq!(median_xy(&pts(&[4.0, 1.0, 3.0, 2.0])), [2.5, -2.5]);
        assert_eq!(median_xy(&pts(&[5.0])), [5.0, -5.0]);
        assert!(median_xy(&[]).iter().all(|v| v.is_nan()));
    }

    #[test]
    fn classify_gives_probabilities() {
        for f in [
            [0.0; 6],
            [60.0, 1.0, 1.0, 1.0, 3.0, 2.0],
            [1e9, -1e9, 0.0, 0.0, 0.0, 0.0],
            [5.0, 0.5, 0.5, 0.5, f64::NAN, f64::NAN],
            [f64::NAN; 6],
        ] {
            let p = classify(&f);
            assert!(p.iter().all(|v| v.is_finite() && *v >= 0.0));
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
        for f in [
            [0.0; N_WALK],
            [1e9; N_WALK],
            [-1e9; N_WALK],
            [f64::NAN; N_WALK],
            [
                5.0,
                0.5,
                0.5,
                0.5,
                f64::NAN,
                f64::NAN,
                1.0,
                0.5,
                1.0,
                f64::NAN,
            ],
        ] {
            let p = walking_probability(&f);
            assert!(p.is_finite() && (0.0..=1.0).contains(&p), "{p}");
        }
    }
}
