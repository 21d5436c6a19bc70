//! Detections made from the simulator's ground truth with a realistic error model:
//! keypoint noise (a shared body offset plus per-keypoint jitter), missed detections,
//! ghosts (false positives anywhere in the room), uncertain presence scores and noisy
//! activity scores. Seeded: the same seed gives the same detections. Used by the tests
//! and the evaluation until the pose model exists.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr_lite::normal;

use super::detection::{Detection, N_ACTIVITIES, N_KEYPOINTS};
use crate::sim::room::Room;
use crate::sim::truth::{bounding_box, keypoints_2d, FrameTruth};

/// The error model.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseModel {
    /// Whole-body position error per frame, metres (standard deviation per axis).
    pub body_sigma_m: f64,
    /// Extra per-keypoint error, metres.
    pub keypoint_sigma_m: f64,
    /// Probability that a present person is not detected in a frame.
    pub miss_rate: f64,
    /// Expected ghost detections per frame.
    pub ghost_rate: f64,
    /// Logit given to the true activity class; other classes get 0.
    pub activity_logit: f64,
    /// Standard deviation of the per-class logit noise.
    pub activity_noise: f64,
}

impl Default for NoiseModel {
    fn default() -> Self {
        NoiseModel {
            body_sigma_m: 0.06,
            keypoint_sigma_m: 0.05,
            miss_rate: 0.1,
            ghost_rate: 0.05,
            activity_logit: 2.0,
            activity_noise: 1.0,
        }
    }
}

impl NoiseModel {
    /// The worse detector of `docs/analytics.md` (`hard`): twice the position noise, a
    /// quarter of the people missed, 0.2 ghosts per frame, weaker activity scores.
    pub fn hard() -> Self {
        NoiseModel {
            body_sigma_m: 0.12,
            keypoint_sigma_m: 0.08,
            miss_rate: 0.25,
            ghost_rate: 0.2,
            activity_logit: 1.5,
            activity_noise: 1.2,
        }
    }
}

/// Tiny Gaussian sampler (Box-Muller), so no new crate is needed.
mod rand_distr_lite {
    use rand::Rng;
    pub(crate) fn normal<R: Rng>(rng: &mut R, sigma: f64) -> f64 {
        let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
        let u2: f64 = rng.gen_range(0.0..1.0);
        sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// A seeded detection generator.
pub struct Synth {
    /// The noise, misses and ghosts it adds to the truth.
    pub noise: NoiseModel,
    rng: StdRng,
}

fn softmax(logits: [f64; N_ACTIVITIES]) -> [f64; N_ACTIVITIES] {
    let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut e = logits.map(|l| (l - m).exp());
    let s: f64 = e.iter().sum();
    for x in &mut e {
        *x /= s;
    }
    e
}

impl Synth {
    /// A generator with `noise`, reproducible from `seed`.
    pub fn new(noise: NoiseModel, seed: u64) -> Self {
        Synth {
            noise,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn activity_scores(&mut self, true_class: Option<usize>) -> [f64; N_ACTIVITIES] {
        let mut logits = [0.0; N_ACTIVITIES];
        for (i, l) in logits.iter_mut().enumerate() {
            if Some(i) == true_class {
                *l += self.noise.activity_logit;
            }
            *l += normal(&mut self.rng, self.noise.activity_noise);
        }
        softmax(logits)
    }

    /// The detections for one frame of truth.
    pub fn detections(&mut self, room: &Room, truth: &FrameTruth) -> Vec<Detection> {
        let (w, d) = (room.size[0], room.size[1]);
        let mut out = Vec::new();
        for p in truth.people.iter().filter(|p| p.present) {
            if self.rng.gen_bool(self.noise.miss_rate.clamp(0.0, 1.0)) {
                continue;
            }
            let kp = keypoints_2d(room, &p.pose);
            let bx = normal(&mut self.rng, self.noise.body_sigma_m);
            let by = normal(&mut self.rng, self.noise.body_sigma_m);
            let mut keypoints = [[0.0; 3]; N_KEYPOINTS];
            for (o, k) in keypoints.iter_mut().zip(&kp) {
                let jx = normal(&mut self.rng, self.noise.keypoint_sigma_m);
                let jy = normal(&mut self.rng, self.noise.keypoint_sigma_m);
                let conf = self.rng.gen_range(0.5..1.0);
                *o = [k[0] + (bx + jx) / w, k[1] + (by + jy) / d, conf];
            }
            let mut bbox = bounding_box(room, &p.pose);
            bbox[0] += bx / w;
            bbox[2] += bx / w;
            bbox[1] += by / d;
            bbox[3] += by / d;
            let activity = self.activity_scores(Some(p.activity as usize));
            out.push(Detection {
                keypoints,
                bbox,
                score: self.rng.gen_range(0.55..1.0),
                activity,
                dense: None,
            });
        }
        // Ghosts: Poisson-like count (at most 3 per frame).
        let mut budget = self.noise.ghost_rate.max(0.0);
        while budget > 0.0 && out.len() < truth.people.len() + 3 {
            let p = budget.min(1.0);
            budget -= 1.0;
            if !self.rng.gen_bool(p) {
                continue;
            }
            let cu = self.rng.gen_range(0.05..0.95);
            let cv = self.rng.gen_range(0.05..0.95);
            let mut keypoints = [[0.0; 3]; N_KEYPOINTS];
            for k in keypoints.iter_mut() {
                *k = [
                    cu + normal(&mut self.rng, 0.15) / w,
                    cv + normal(&mut self.rng, 0.15) / d,
                    self.rng.gen_range(0.2..0.8),
                ];
            }
            let activity = self.activity_scores(None);
            out.push(Detection {
                keypoints,
                bbox: [cu - 0.3 / w, cv - 0.3 / d, cu + 0.3 / w, cv + 0.3 / d],
                score: self.rng.gen_range(0.3..0.8),
                activity,
                dense: None,
            });
        }
        out
    }
}
