//! Small motions of people who are not going anywhere: breathing, postural sway and
//! fidgets. They are what makes a still person different from an empty room: a
//! breathing chest moves 4-12 mm, a path-length change of up to twice that, which is
//! most of a radian of phase at 5 GHz.
//!
//! - **Breathing** (every person, whatever they do): the torso's scattering points move
//!   along the chest normal by `d(t) = depth * (1 - cos(2 pi f t + phi)) / 2`, so the
//!   chest wall travels `depth` peak to peak once per breath. For a person lying face
//!   down the back rises instead (the normal is then straight up). The rib cage also
//!   widens (the lower ribs' "bucket handle" motion): each flank's points move outward,
//!   away from the other flank, by [`FLANK_SHARE`] of `d(t)`. A chest that only moved
//!   along one normal was invisible to every link whose bisector is square to it. The
//!   rate and depth are drawn per person from the seed (uniform 6-30 breaths/min and
//!   4-12 mm) unless the scenario gives them; the keypoints do not move (millimetres).
//! - **Postural sway** (standing still): an inverted pendulum about the ankles, the body
//!   leaning by `s(t) * z / height` at height `z`. Measured human sway is broadband, its
//!   power falling roughly as `1 / f^2`, not a few lines: so `s` is, per horizontal
//!   axis, a sum of [`SWAY_COMPONENTS`] sinusoids, one drawn in each of as many equal
//!   log-frequency slices of 0.1-1 Hz (spacing about 5 %, finer than a 30 s window
//!   resolves), with Rayleigh amplitudes whose mean square falls as `1 / f` (log-spaced
//!   lines, so the power density falls as `1 / f^2`), scaled to an RMS head displacement
//!   drawn in 5-15 mm per axis. (Until this round it was four sinusoids: four lines as
//!   narrow as breathing's and stronger, `docs/sensing.md`.) It fades in and out over
//!   half a second at the start and end of a still period, and the keypoints move with
//!   it.
//! - **Fidgets** (sitting or lying still): at Poisson times (mean interval drawn in
//!   15-40 s), a 1-3 s raised-cosine excursion of one arm (shoulder and elbow), one leg
//!   (hip and knee) or, sitting, the trunk lean (lying: both arms), returning to the
//!   rest posture.
//!
//! All draws come from the person's own stream, so people do not change each other's
//! motions and a frame can still be generated alone.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::error::{check_range, SimError};
use super::geom::{add, dot, normalize_or, scale, sub, V3};
use super::motion::{Activity, State};
use super::skeleton::{Pose, Posture};

/// Per-person overrides of the small motions (`None`: drawn from the seed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MicroSpec {
    /// Breaths per minute (default: uniform 6-30).
    pub breathing_rate_bpm: Option<f64>,
    /// Chest displacement peak to peak, mm (default: uniform 4-12; 0: no breathing).
    pub breathing_depth_mm: Option<f64>,
    /// RMS head sway per horizontal axis while standing still, mm (default: uniform
    /// 5-15; 0: none).
    pub sway_mm: Option<f64>,
    /// Mean interval between fidgets while sitting or lying, s (default: uniform 15-40;
    /// 0: none).
    pub fidget_interval_s: Option<f64>,
}

impl MicroSpec {
    /// Checks every given value's range; `field` prefixes the field names in errors.
    pub(crate) fn validate(&self, field: &str) -> Result<(), SimError> {
        if let Some(v) = self.breathing_rate_bpm {
            check_range(&format!("{field}.breathing_rate_bpm"), v, 1.0, 90.0)?;
        }
        if let Some(v) = self.breathing_depth_mm {
            check_range(&format!("{field}.breathing_depth_mm"), v, 0.0, 50.0)?;
        }
        if let Some(v) = self.sway_mm {
            check_range(&format!("{field}.sway_mm"), v, 0.0, 100.0)?;
        }
        if let Some(v) = self.fidget_interval_s {
            check_range(&format!("{field}.fidget_interval_s"), v, 0.0, 1e6)?;
        }
        Ok(())
    }
}

/// One fidget: a posture excursion `delta` peaking halfway through `[t0, t0 + dur]`.
#[derive(Debug, Clone, Copy)]
struct Fidget {
    t0: f64,
    dur: f64,
    delta: Posture,
}

/// A person's small motions, drawn once.
#[derive(Debug, Clone)]
pub struct Micro {
    /// Breathing rate, Hz (breaths per second).
    pub breathing_rate_hz: f64,
    /// Peak-to-peak chest displacement, metres.
    pub breathing_depth_m: f64,
    breathing_phase: f64,
    /// (frequency Hz, amplitude m at the head, phase) per axis.
    sway: [Vec<(f64, f64, f64)>; 2],
    /// RMS head sway per horizontal axis while standing still, metres (0: none).
    pub sway_rms_m: f64,
    /// Mean interval between fidgets while sitting or lying, seconds (0: none).
    pub fidget_interval_s: f64,
    fidgets: Vec<Fidget>,
}

/// Sinusoids per horizontal axis of a standing person's sway, one per log-frequency
/// slice of 0.1-1 Hz.
pub const SWAY_COMPONENTS: usize = 48;

/// How far each flank moves outward while breathing, as a share of the chest wall's
/// forward travel: the chest widens by as much as it deepens.
pub const FLANK_SHARE: f64 = 0.5;

const ZERO_POSTURE: Posture = Posture {
    hip: [0.0, 0.0],
    knee: [0.0, 0.0],
    lean: 0.0,
    shoulder: [0.0, 0.0],
    elbow: [0.0, 0.0],
    pitch: 0.0,
};

impl Micro {
    /// Nothing moves: no breathing, sway or fidgets.
    pub fn none() -> Self {
        Micro {
            breathing_rate_hz: 0.25,
            breathing_depth_m: 0.0,
            breathing_phase: 0.0,
            sway: [Vec::new(), Vec::new()],
            sway_rms_m: 0.0,
            fidget_interval_s: 0.0,
            fidgets: Vec::new(),
        }
    }

    /// Draws a person's small motions for a run of `duration` seconds. Every draw is
    /// made whether or not the scenario overrides it, so an override changes only its
    /// own quantity.
    pub fn draw<R: Rng + ?Sized>(spec: &MicroSpec, duration: f64, rng: &mut R) -> Self {
        let rate_bpm = 6.0 + 24.0 * rng.gen::<f64>();
        let depth_mm = 4.0 + 8.0 * rng.gen::<f64>();
        let breathing_phase = std::f64::consts::TAU * rng.gen::<f64>();
        let sway_mm = 5.0 + 10.0 * rng.gen::<f64>();
        let interval = 15.0 + 25.0 * rng.gen::<f64>();
        let rate_bpm = spec.breathing_rate_bpm.unwrap_or(rate_bpm);
        let depth_mm = spec.breathing_depth_mm.unwrap_or(depth_mm);
        let sway_rms_m = spec.sway_mm.unwrap_or(sway_mm) * 1e-3;
        let fidget_interval_s = spec.fidget_interval_s.unwrap_or(interval);

        // The sway draws from its own stream, seeded from the 16 draws the four-sinusoid
        // sway of earlier versions took here: the fidgets after it keep their draws, so
        // a seed's sitting and lying people fidget when they always did.
        let sway_seed = (0..16).fold(0u64, |h, _| h.rotate_left(7) ^ rng.gen::<u64>());
        let mut sway_rng = StdRng::seed_from_u64(sway_seed);
        let mut sway: [Vec<(f64, f64, f64)>; 2] = [Vec::new(), Vec::new()];
        for axis in sway.iter_mut() {
            let comps: Vec<(f64, f64, f64)> = (0..SWAY_COMPONENTS)
                .map(|i| {
                    // One line in each equal log slice of 0.1..1 Hz, placed at random in it.
                    let u = (i as f64 + sway_rng.gen::<f64>()) / SWAY_COMPONENTS as f64;
                    let f = 0.1 * 10f64.powf(u);
                    let ph = std::f64::consts::TAU * sway_rng.gen::<f64>();
                    // Rayleigh amplitude with mean square 1 / f: a Gaussian process's line.
                    let rayleigh = (-(1.0 - sway_rng.gen::<f64>()).ln()).sqrt();
                    (f, rayleigh / f.sqrt(), ph)
                })
                .collect();
            // The RMS of a sum of sinusoids at distinct frequencies: sqrt(sum a^2 / 2).
            let rms = (comps.iter().map(|c| c.1 * c.1).sum::<f64>() / 2.0).sqrt();
            *axis = comps
                .into_iter()
                .map(|(f, a, ph)| (f, a / rms * sway_rms_m, ph))
                .collect();
        }

        let mut fidgets = Vec::new();
        if fidget_interval_s > 0.0 {
            let mut t = 0.0;
            // Bounded: at most one fidget per 0.5 s of run even for tiny intervals.
            let cap = (duration / 0.5).ceil() as usize + 1;
            while fidgets.len() < cap {
                let u: f64 = 1.0 - rng.gen::<f64>();
                t += -u.ln() * fidget_interval_s;
                if t > duration {
                    break;
                }
                let dur = 1.0 + 2.0 * rng.gen::<f64>();
                let kind = rng.gen_range(0..3u8);
                let side = rng.gen_range(0..2usize);
                let sign = if rng.gen::<bool>() { 1.0 } else { -1.0 };
                let mag = 0.5 + 0.5 * rng.gen::<f64>();
                let d = std::f64::consts::PI / 180.0;
                let mut delta = ZERO_POSTURE;
                match kind {
                    0 => {
                        delta.shoulder[side] = 25.0 * d * mag;
                        delta.elbow[side] = 35.0 * d * mag * sign;
                    }
                    1 => {
                        delta.hip[side] = 12.0 * d * mag;
                        delta.knee[side] = 15.0 * d * mag * sign;
                    }
                    _ => delta.lean = 6.0 * d * mag * sign,
                }
                fidgets.push(Fidget { t0: t, dur, delta });
            }
        }
        Micro {
            breathing_rate_hz: rate_bpm / 60.0,
            breathing_depth_m: depth_mm * 1e-3,
            breathing_phase,
            sway,
            sway_rms_m,
            fidget_interval_s,
            fidgets,
        }
    }

    /// Chest displacement along the chest normal at `t`, metres (0 .. depth).
    #[inline]
    pub fn breath(&self, t: f64) -> f64 {
        let (_, c) = super::channel::sincos_turns(
            self.breathing_rate_hz * t + self.breathing_phase / std::f64::consts::TAU,
        );
        0.5 * self.breathing_depth_m * (1.0 - c)
    }

    /// Head sway at `t` (x, y), metres, before the still-period fade.
    pub fn sway(&self, t: f64) -> [f64; 2] {
        let mut out = [0.0; 2];
        for (o, comps) in out.iter_mut().zip(&self.sway) {
            for &(f, a, ph) in comps {
                *o += a * super::channel::sincos_turns(f * t + ph / std::f64::consts::TAU).0;
            }
        }
        out
    }

    /// Times the fidgets start, seconds.
    pub fn fidget_times(&self) -> Vec<f64> {
        self.fidgets.iter().map(|f| f.t0).collect()
    }

    /// The posture with any fidget active at `t` added, weighted by `w` (0..1).
    pub fn fidget(&self, posture: &Posture, t: f64, w: f64) -> Posture {
        let mut p = *posture;
        if w <= 0.0 {
            return p;
        }
        // Fidgets last at most 3 s: only those starting in (t - 3, t] can be active.
        let hi = self.fidgets.partition_point(|f| f.t0 <= t);
        let lo = self.fidgets.partition_point(|f| f.t0 <= t - 3.0);
        for f in &self.fidgets[lo..hi] {
            let u = (t - f.t0) / f.dur;
            if !(0.0..=1.0).contains(&u) {
                continue;
            }
            let k = w * 0.5 * (1.0 - (std::f64::consts::TAU * u).cos());
            for s in 0..2 {
                p.hip[s] += k * f.delta.hip[s];
                p.knee[s] += k * f.delta.knee[s];
                p.shoulder[s] += k * f.delta.shoulder[s];
                p.elbow[s] += k * f.delta.elbow[s];
            }
            // A lying body's trunk lean would push it into the floor: the trunk fidget
            // moves both arms instead.
            if p.pitch < 1.0 {
                p.lean += k * f.delta.lean;
            } else {
                p.shoulder[0] += 2.0 * k * f.delta.lean.abs();
                p.shoulder[1] += 2.0 * k * f.delta.lean.abs();
            }
        }
        p
    }

    /// The posture a person holds at `t`, fidgets included.
    pub fn posture(&self, s: &State, t: f64) -> Posture {
        let w = match s.activity {
            Activity::Sitting | Activity::Lying => s.still,
            _ => 0.0,
        };
        self.fidget(&s.posture, t, w)
    }

    /// Leans a posed standing body by the sway at `t` (inverted pendulum about the
    /// ankles: the displacement grows with height).
    pub fn apply_sway(&self, pose: &mut Pose, s: &State, t: f64, height: f64) {
        if s.activity != Activity::Standing || s.still <= 0.0 || self.sway_rms_m <= 0.0 {
            return;
        }
        let [sx, sy] = self.sway(t);
        let k = s.still / height;
        let shift = |p: &mut V3| {
            let z = p[2].max(0.0);
            p[0] += sx * k * z;
            p[1] += sy * k * z;
        };
        for q in pose.keypoints.iter_mut() {
            shift(q);
        }
        for c in pose.capsules.iter_mut() {
            shift(&mut c.a);
            shift(&mut c.b);
        }
    }

    /// Where the torso's scattering points are displaced at `t`, left flank then right:
    /// along the chest normal (straight up for a body lying face down: its back rises),
    /// each flank also outward by [`FLANK_SHARE`] of it.
    pub fn chest_offsets(&self, pose: &Pose, t: f64) -> [V3; 2] {
        if self.breathing_depth_m <= 0.0 {
            return [[0.0; 3]; 2];
        }
        let n = if pose.forward[2] < -0.7 {
            [0.0, 0.0, 1.0]
        } else {
            pose.forward
        };
        // Outward for the left flank: from the right shoulder to the left, square to
        // the chest normal.
        let across = sub(pose.keypoints[5], pose.keypoints[6]);
        let left = normalize_or(sub(across, scale(n, dot(across, n))), [0.0; 3]);
        let d = self.breath(t);
        let front = scale(n, d);
        let side = scale(left, FLANK_SHARE * d);
        [add(front, side), sub(front, side)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_fall_in_the_documented_ranges() {
        for seed in 0..200 {
            let m = Micro::draw(
                &MicroSpec::default(),
                600.0,
                &mut StdRng::seed_from_u64(seed),
            );
            let bpm = m.breathing_rate_hz * 60.0;
            assert!((6.0..=30.0).contains(&bpm), "{bpm}");
            assert!((0.004..=0.012).contains(&m.breathing_depth_m));
            assert!((0.005..=0.015).contains(&m.sway_rms_m));
            // The chest travels exactly `depth` peak to peak.
            let d: Vec<f64> = (0..2000).map(|i| m.breath(i as f64 * 0.01)).collect();
            let (lo, hi) = d
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            assert!(lo >= -1e-12 && hi <= m.breathing_depth_m + 1e-12);
        }
        let m = Micro::draw(
            &MicroSpec {
                breathing_rate_bpm: Some(12.0),
                breathing_depth_mm: Some(8.0),
                ..Default::default()
            },
            60.0,
            &mut StdRng::seed_from_u64(1),
        );
        assert_eq!(m.breathing_rate_hz, 0.2);
        assert!((m.breathing_depth_m - 0.008).abs() < 1e-15);
        // Period 5 s: back where it was after one breath, at full depth half-way.
        let t0 = 1.234;
        assert!((m.breath(t0) - m.breath(t0 + 5.0)).abs() < 1e-12);
        let peak = (0..500)
            .map(|i| m.breath(i as f64 * 0.01))
            .fold(0.0, f64::max);
        assert!((peak - 0.008).abs() < 1e-6);
    }

    #[test]
    fn sway_is_broadband_with_power_falling_as_one_over_f_squared() {
        // Per axis, over 400 s at 20 Hz: the power of each octave of 0.1-0.8 Hz about
        // half the octave below it (a 1/f^2 density), and no line holding much of an
        // octave (four sinusoids, as before, put most of an octave in one or two bins).
        use rustfft::num_complex::Complex;
        let (secs, fps) = (400.0, 20.0);
        let n = (secs * fps) as usize;
        let mut ratios = Vec::new();
        for seed in 0..6 {
            let m = Micro::draw(
                &MicroSpec::default(),
                secs,
                &mut StdRng::seed_from_u64(seed),
            );
            for axis in 0..2 {
                let mut buf: Vec<Complex<f64>> = (0..n)
                    .map(|i| {
                        let hann = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos();
                        Complex::new(m.sway(i as f64 / fps)[axis] * hann, 0.0)
                    })
                    .collect();
                rustfft::FftPlanner::new()
                    .plan_fft_forward(n)
                    .process(&mut buf);
                let octave = |lo: f64| -> (f64, f64) {
                    let bins: Vec<f64> = (1..n / 2)
                        .filter(|&i| (lo..2.0 * lo).contains(&(i as f64 * fps / n as f64)))
                        .map(|i| buf[i].norm_sqr())
                        .collect();
                    let total: f64 = bins.iter().sum();
                    (total, bins.iter().cloned().fold(0.0, f64::max) / total)
                };
                let (p1, top1) = octave(0.1);
                let (p2, top2) = octave(0.2);
                let (p3, top3) = octave(0.4);
                for top in [top1, top2, top3] {
                    assert!(top < 0.35, "seed {seed} axis {axis}: one bin holds {top}");
                }
                ratios.push(p2 / p1);
                ratios.push(p3 / p2);
            }
        }
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        assert!((0.35..=0.7).contains(&mean), "octave power ratio {mean}");
    }

    #[test]
    fn the_chest_deepens_and_widens() {
        use super::super::skeleton::{BodyShape, Posture};
        let m = Micro::draw(
            &MicroSpec {
                breathing_rate_bpm: Some(12.0),
                breathing_depth_mm: Some(10.0),
                ..Default::default()
            },
            60.0,
            &mut StdRng::seed_from_u64(3),
        );
        // Full breath: the chest wall is 10 mm forward.
        let t = (0..500)
            .map(|i| i as f64 * 0.01)
            .max_by(|a, b| m.breath(*a).total_cmp(&m.breath(*b)))
            .unwrap();
        let shape = BodyShape::default();
        for (posture, heading) in [(Posture::STANDING, 0.7), (Posture::SITTING, -2.0)] {
            let pose = shape.pose(&posture, [2.0, 2.0], heading);
            let [l, r] = m.chest_offsets(&pose, t);
            let n = pose.forward;
            let left = sub(pose.keypoints[5], pose.keypoints[6]);
            // Both flanks forward by the depth; apart by the depth across the body.
            assert!((dot(l, n) - 0.010).abs() < 1e-6 && (dot(r, n) - 0.010).abs() < 1e-6);
            let apart = dot(sub(l, r), left) / dot(left, left).sqrt();
            assert!((apart - 2.0 * FLANK_SHARE * 0.010).abs() < 1e-6, "{apart}");
        }
        // A link square to the chest normal still sees the breath: the flanks move along it.
        let pose = shape.pose(&Posture::STANDING, [2.0, 2.0], 0.0);
        let [l, _] = m.chest_offsets(&pose, t);
        let square = normalize_or(sub(pose.keypoints[5], pose.keypoints[6]), [0.0; 3]);
        assert!(dot(l, square) > 0.004);
        // No breathing, no motion.
        let still = Micro::none();
        assert_eq!(still.chest_offsets(&pose, t), [[0.0; 3]; 2]);
    }
}
