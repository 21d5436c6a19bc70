//! People as 3-D skeletons: the 17 COCO keypoints from a small set of joint angles,
//! and the body as capsules around the limbs (for scattering, blocking and the
//! dense-pose labels).
//!
//! Build order: a local frame at the pelvis (mid-hip), x forward, y left, z up; legs,
//! torso, head and arms from the [`Posture`] angles and segment lengths proportional
//! to the height (Drillis and Contini's fractions); then the whole body tips forward by
//! `pitch` about the mid-ankle point (falling, lying), turns by the heading about z,
//! moves to its floor position, and drops so that its lowest capsule touches the floor.
//! That last rule also gives walking its vertical bob.

use super::channel::{Blocker, Body, Scatterer};
use super::geom::{add, dist, mid, normalize_or, rot_y, rot_z, scale, sub, V3};

/// Keypoints of a skeleton (the COCO set).
pub const N_KEYPOINTS: usize = 17;

/// COCO keypoint order.
pub const KEYPOINT_NAMES: [&str; N_KEYPOINTS] = [
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
];

/// One skeleton's keypoints in [`KEYPOINT_NAMES`] order, room frame, metres.
pub type Keypoints = [V3; N_KEYPOINTS];

/// Joint angles, radians. Index 0 is left, 1 right. Hip flexion swings the thigh
/// forward from hanging straight down; knee flexion bends the shin back from the
/// thigh; shoulder flexion swings the arm forward; `lean` tips the torso forward;
/// `pitch` tips the whole body forward about the ankles (pi/2: lying face down).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Posture {
    /// Hip flexion (left, right): the thigh swung forward from hanging down.
    pub hip: [f64; 2],
    /// Knee flexion (left, right): the shin bent back from the thigh.
    pub knee: [f64; 2],
    /// Torso tipped forward from upright.
    pub lean: f64,
    /// Shoulder flexion (left, right): the arm swung forward from hanging down.
    pub shoulder: [f64; 2],
    /// Elbow flexion (left, right): the forearm bent forward from the upper arm.
    pub elbow: [f64; 2],
    /// The whole body tipped forward about the ankles (pi/2: lying face down).
    pub pitch: f64,
}

const D: f64 = std::f64::consts::PI / 180.0;

impl Posture {
    /// Standing upright, knees and elbows slightly bent.
    pub const STANDING: Posture = Posture {
        hip: [0.0, 0.0],
        knee: [3.0 * D, 3.0 * D],
        lean: 0.0,
        shoulder: [0.0, 0.0],
        elbow: [10.0 * D, 10.0 * D],
        pitch: 0.0,
    };
    /// Sitting: hips and knees at 90°, forearms forward.
    pub const SITTING: Posture = Posture {
        hip: [90.0 * D, 90.0 * D],
        knee: [90.0 * D, 90.0 * D],
        lean: 5.0 * D,
        shoulder: [25.0 * D, 25.0 * D],
        elbow: [60.0 * D, 60.0 * D],
        pitch: 0.0,
    };
    /// Crouching, the way up from the floor after a fall (`get_up`).
    pub const CROUCH: Posture = Posture {
        hip: [110.0 * D, 110.0 * D],
        knee: [130.0 * D, 130.0 * D],
        lean: 45.0 * D,
        shoulder: [40.0 * D, 40.0 * D],
        elbow: [30.0 * D, 30.0 * D],
        pitch: 0.0,
    };
    /// Lying face down, arms along the body.
    pub const LYING: Posture = Posture {
        hip: [0.0, 0.0],
        knee: [5.0 * D, 5.0 * D],
        lean: 0.0,
        shoulder: [0.0, 0.0],
        elbow: [10.0 * D, 10.0 * D],
        pitch: 90.0 * D,
    };
    /// Lying face down after a forward fall, arms stretched ahead.
    pub const FALLEN: Posture = Posture {
        hip: [0.0, 0.0],
        knee: [10.0 * D, 5.0 * D],
        lean: 0.0,
        shoulder: [175.0 * D, 165.0 * D],
        elbow: [10.0 * D, 15.0 * D],
        pitch: 90.0 * D,
    };

    /// Walking at gait `phase` (radians, one cycle per stride) with swing amplitude
    /// `amp` in 0..1 (ramps at the start and end of a walk).
    pub fn gait(phase: f64, amp: f64) -> Posture {
        let (s, c) = phase.sin_cos();
        let hip = 25.0 * D * amp * s;
        let swing_l = c.max(0.0);
        let swing_r = (-c).max(0.0);
        Posture {
            hip: [hip, -hip],
            knee: [
                5.0 * D + 55.0 * D * amp * swing_l * swing_l,
                5.0 * D + 55.0 * D * amp * swing_r * swing_r,
            ],
            lean: 3.0 * D * amp,
            shoulder: [-20.0 * D * amp * s, 20.0 * D * amp * s],
            elbow: [(12.0 + 10.0 * amp) * D, (12.0 + 10.0 * amp) * D],
            pitch: 0.0,
        }
    }

    /// Every angle linearly between `a` (t = 0) and `b` (t = 1).
    pub fn lerp(a: &Posture, b: &Posture, t: f64) -> Posture {
        let l = |x: f64, y: f64| x + (y - x) * t;
        let l2 = |x: [f64; 2], y: [f64; 2]| [l(x[0], y[0]), l(x[1], y[1])];
        Posture {
            hip: l2(a.hip, b.hip),
            knee: l2(a.knee, b.knee),
            lean: l(a.lean, b.lean),
            shoulder: l2(a.shoulder, b.shoulder),
            elbow: l2(a.elbow, b.elbow),
            pitch: l(a.pitch, b.pitch),
        }
    }
}

/// Body parts as capsules, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The head, a short vertical capsule above the shoulders.
    Head,
    /// Left half of the torso, hip to shoulder.
    TorsoLeft,
    /// Right half of the torso, hip to shoulder.
    TorsoRight,
    /// Left upper arm, shoulder to elbow.
    UpperArmLeft,
    /// Right upper arm, shoulder to elbow.
    UpperArmRight,
    /// Left forearm, elbow to wrist.
    ForearmLeft,
    /// Right forearm, elbow to wrist.
    ForearmRight,
    /// Left hand, beyond the wrist (scatters, does not block).
    HandLeft,
    /// Right hand, beyond the wrist (scatters, does not block).
    HandRight,
    /// Left thigh, hip to knee.
    ThighLeft,
    /// Right thigh, hip to knee.
    ThighRight,
    /// Left shin, knee to ankle.
    ShinLeft,
    /// Right shin, knee to ankle.
    ShinRight,
    /// Left foot, forward from the ankle (scatters, does not block).
    FootLeft,
    /// Right foot, forward from the ankle (scatters, does not block).
    FootRight,
}

/// Capsules of a body: one per [`Part`].
pub const N_CAPSULES: usize = 15;

impl Part {
    /// Every part, in capsule order.
    pub const ALL: [Part; N_CAPSULES] = [
        Part::Head,
        Part::TorsoLeft,
        Part::TorsoRight,
        Part::UpperArmLeft,
        Part::UpperArmRight,
        Part::ForearmLeft,
        Part::ForearmRight,
        Part::HandLeft,
        Part::HandRight,
        Part::ThighLeft,
        Part::ThighRight,
        Part::ShinLeft,
        Part::ShinRight,
        Part::FootLeft,
        Part::FootRight,
    ];

    /// DensePose part ids (1..=24) for the (back, front) surface; the same id twice for
    /// hands and feet. For the head: (right side, left side) = (23, 24).
    pub fn densepose_ids(self) -> (u8, u8) {
        match self {
            Part::TorsoLeft | Part::TorsoRight => (1, 2),
            Part::HandRight => (3, 3),
            Part::HandLeft => (4, 4),
            Part::FootLeft => (5, 5),
            Part::FootRight => (6, 6),
            Part::ThighRight => (7, 9),
            Part::ThighLeft => (8, 10),
            Part::ShinRight => (11, 13),
            Part::ShinLeft => (12, 14),
            Part::UpperArmLeft => (15, 17),
            Part::UpperArmRight => (16, 18),
            Part::ForearmLeft => (19, 21),
            Part::ForearmRight => (20, 22),
            Part::Head => (23, 24),
        }
    }

    /// Radius at 1.75 m height, metres.
    fn radius(self) -> f64 {
        match self {
            Part::Head => 0.09,
            Part::TorsoLeft | Part::TorsoRight => 0.1,
            Part::UpperArmLeft | Part::UpperArmRight => 0.045,
            Part::ForearmLeft | Part::ForearmRight => 0.04,
            Part::HandLeft | Part::HandRight => 0.04,
            Part::ThighLeft | Part::ThighRight => 0.075,
            Part::ShinLeft | Part::ShinRight => 0.055,
            Part::FootLeft | Part::FootRight => 0.045,
        }
    }
}

/// One body part: a segment with a radius, room frame, metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capsule {
    /// Which part it is.
    pub part: Part,
    /// One end of the axis (the proximal joint for limbs).
    pub a: V3,
    /// The other end of the axis.
    pub b: V3,
    /// Radius, metres (scaled with the body's height).
    pub radius: f64,
}

/// A posed body: keypoints, capsules, and its facing direction (unit, world frame) and
/// up direction of the torso, for the dense-pose front/back choice.
#[derive(Debug, Clone)]
pub struct Pose {
    /// The 17 COCO keypoints, room frame, metres.
    pub keypoints: Keypoints,
    /// The body's capsules, in [`Part::ALL`] order.
    pub capsules: [Capsule; N_CAPSULES],
    /// Unit vector the body faces.
    pub forward: V3,
    /// Unit vector along the torso, hips to shoulders.
    pub up: V3,
}

/// Height and total radar cross-section of a person.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BodyShape {
    /// Body height, metres; segment lengths and radii scale with it.
    pub height: f64,
    /// Total radar cross-section, m^2, shared among the capsules by surface area.
    pub rcs_m2: f64,
}

impl Default for BodyShape {
    fn default() -> Self {
        BodyShape {
            height: 1.75,
            rcs_m2: 1.0,
        }
    }
}

fn limb(angle: f64, lateral: f64) -> V3 {
    // Hanging straight down, swung forward by `angle` about y, tilted sideways a little.
    [angle.sin(), lateral, -angle.cos()]
}

impl BodyShape {
    /// Poses the body at floor position `xy`, facing `heading` (radians from +x).
    pub fn pose(&self, p: &Posture, xy: [f64; 2], heading: f64) -> Pose {
        let h = self.height;
        let (thigh, shin) = (0.245 * h, 0.246 * h);
        let torso = 0.288 * h;
        let (upper_arm, forearm, hand) = (0.186 * h, 0.146 * h, 0.065 * h);
        let (hip_half, sh_half) = (0.057 * h, 0.103 * h);
        let foot = 0.12 * h;

        let mut k = [[0.0; 3]; N_KEYPOINTS];
        let hips = [[0.0, hip_half, 0.0], [0.0, -hip_half, 0.0]];
        let mut ankles = [[0.0; 3]; 2];
        for s in 0..2 {
            let knee = add(hips[s], scale(limb(p.hip[s], 0.0), thigh));
            let ankle = add(knee, scale(limb(p.hip[s] - p.knee[s], 0.0), shin));
            k[11 + s] = hips[s];
            k[13 + s] = knee;
            k[15 + s] = ankle;
            ankles[s] = ankle;
        }
        let (ls, lc) = p.lean.sin_cos();
        let up = [ls, 0.0, lc];
        let fwd = [lc, 0.0, -ls];
        let mid_sh = scale(up, torso);
        let head_c = add(mid_sh, scale(up, 0.10 * h));
        k[0] = add(head_c, scale(fwd, 0.055 * h));
        for (s, side) in [1.0f64, -1.0].iter().enumerate() {
            k[1 + s] = add(
                add(head_c, scale(fwd, 0.045 * h)),
                add(scale(up, 0.02 * h), [0.0, side * 0.018 * h, 0.0]),
            );
            k[3 + s] = add(head_c, [0.0, side * 0.04 * h, 0.0]);
            let sh = add(mid_sh, [0.0, side * sh_half, 0.0]);
            let a1 = p.shoulder[s] + p.lean;
            let elbow = add(
                sh,
                scale(normalize_or(limb(a1, side * 0.14), up), upper_arm),
            );
            let wrist = add(
                elbow,
                scale(normalize_or(limb(a1 + p.elbow[s], side * 0.1), up), forearm),
            );
            k[5 + s] = sh;
            k[7 + s] = elbow;
            k[9 + s] = wrist;
        }
        // Capsules in the local frame.
        let foot_dir = [1.0, 0.0, 0.0];
        let hand_dir = |s: usize| normalize_or(sub(k[9 + s], k[7 + s]), [0.0, 0.0, -1.0]);
        let head_a = add(mid_sh, scale(up, 0.07 * h));
        let head_b = add(mid_sh, scale(up, 0.13 * h));
        let hs = h / 1.75;
        let ends: [(V3, V3); N_CAPSULES] = [
            (head_a, head_b),
            (k[11], k[5]),
            (k[12], k[6]),
            (k[5], k[7]),
            (k[6], k[8]),
            (k[7], k[9]),
            (k[8], k[10]),
            (k[9], add(k[9], scale(hand_dir(0), hand))),
            (k[10], add(k[10], scale(hand_dir(1), hand))),
            (k[11], k[13]),
            (k[12], k[14]),
            (k[13], k[15]),
            (k[14], k[16]),
            (k[15], add(k[15], scale(foot_dir, foot))),
            (k[16], add(k[16], scale(foot_dir, foot))),
        ];
        // Tip about the mid-ankle, turn, place, drop to the floor.
        let pivot = mid(ankles[0], ankles[1]);
        let (ps, pc) = p.pitch.sin_cos();
        let (hs_, hc) = heading.sin_cos();
        let place = |q: V3| -> V3 {
            let v = sub(q, pivot);
            // rot_y(pitch) then rot_z(heading), with the sines computed once.
            let r = [
                pivot[0] + pc * v[0] + ps * v[2],
                pivot[1] + v[1],
                pivot[2] - ps * v[0] + pc * v[2],
            ];
            [
                hc * r[0] - hs_ * r[1] + xy[0],
                hs_ * r[0] + hc * r[1] + xy[1],
                r[2],
            ]
        };
        let mut caps = [Capsule {
            part: Part::Head,
            a: [0.0; 3],
            b: [0.0; 3],
            radius: 0.0,
        }; N_CAPSULES];
        let mut zmin = f64::INFINITY;
        for (i, part) in Part::ALL.iter().enumerate() {
            let c = Capsule {
                part: *part,
                a: place(ends[i].0),
                b: place(ends[i].1),
                radius: part.radius() * hs,
            };
            zmin = zmin.min(c.a[2].min(c.b[2]) - c.radius);
            caps[i] = c;
        }
        for q in k.iter_mut() {
            *q = place(*q);
            q[2] -= zmin;
        }
        for c in caps.iter_mut() {
            c.a[2] -= zmin;
            c.b[2] -= zmin;
        }
        let forward = rot_z(rot_y(fwd, p.pitch), heading);
        let upw = rot_z(rot_y(up, p.pitch), heading);
        Pose {
            keypoints: k,
            capsules: caps,
            forward,
            up: upw,
        }
    }

    /// The scattering points and blockers of a posed body. Each capsule gets one point
    /// per 25 cm of axis (at least one), sharing the body's cross-section by area.
    pub fn body(&self, pose: &Pose) -> Body {
        self.body_breathing(pose, [[0.0; 3]; 2])
    }

    /// [`Self::body`] with the torso's scattering points displaced by `chest`, left
    /// flank then right (the breathing chest wall, see [`super::micro`]); blockers stay
    /// on the axes.
    pub fn body_breathing(&self, pose: &Pose, chest: [V3; 2]) -> Body {
        let mut scat = Vec::with_capacity(24);
        let areas: Vec<f64> = pose
            .capsules
            .iter()
            .map(|c| 2.0 * std::f64::consts::PI * c.radius * (dist(c.a, c.b) + 2.0 * c.radius))
            .collect();
        let total: f64 = areas.iter().sum();
        for (c, area) in pose.capsules.iter().zip(&areas) {
            let n = ((dist(c.a, c.b) / 0.25).round() as usize).max(1);
            let amp = (self.rcs_m2 * area / total / n as f64).sqrt();
            let off = match c.part {
                Part::TorsoLeft => chest[0],
                Part::TorsoRight => chest[1],
                _ => [0.0; 3],
            };
            for m in 0..n {
                let t = (m as f64 + 0.5) / n as f64;
                scat.push(Scatterer {
                    pos: add(add(c.a, scale(sub(c.b, c.a), t)), off),
                    amp,
                });
            }
        }
        let blockers = pose
            .capsules
            .iter()
            .filter(|c| {
                !matches!(
                    c.part,
                    Part::HandLeft | Part::HandRight | Part::FootLeft | Part::FootRight
                )
            })
            .map(|c| Blocker {
                a: c.a,
                b: c.b,
                radius: c.radius,
            })
            .collect();
        Body::new(scat, blockers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standing_body_proportions() {
        let shape = BodyShape::default();
        let pose = shape.pose(&Posture::STANDING, [2.0, 1.0], 0.0);
        let k = &pose.keypoints;
        // Head near the top, ankles near the floor, left on +y when facing +x.
        assert!(k[0][2] > 1.5 && k[0][2] < 1.75, "nose at {}", k[0][2]);
        assert!(k[15][2] < 0.1 && k[16][2] < 0.1);
        assert!(k[5][1] > k[6][1] && k[11][1] > k[12][1]);
        let top = pose
            .capsules
            .iter()
            .map(|c| c.a[2].max(c.b[2]) + c.radius)
            .fold(0.0, f64::max);
        assert!((top - 1.75).abs() < 0.08, "top of head at {top}");
        let lowest = pose
            .capsules
            .iter()
            .map(|c| c.a[2].min(c.b[2]) - c.radius)
            .fold(f64::INFINITY, f64::min);
        assert!(lowest.abs() < 1e-12);
        // Facing +y instead turns the left side to -x.
        let turned = shape.pose(&Posture::STANDING, [2.0, 1.0], std::f64::consts::FRAC_PI_2);
        assert!(turned.keypoints[5][0] < turned.keypoints[6][0]);
    }

    #[test]
    fn sitting_and_lying_heights() {
        let shape = BodyShape::default();
        let sit = shape.pose(&Posture::SITTING, [2.0, 2.0], 0.0);
        let hip_z = sit.keypoints[11][2];
        assert!(hip_z > 0.35 && hip_z < 0.55, "sitting hip at {hip_z}");
        let lie = shape.pose(&Posture::LYING, [2.0, 2.0], 0.0);
        let zmax = lie.keypoints.iter().map(|k| k[2]).fold(0.0, f64::max);
        assert!(zmax < 0.3, "lying body reaches {zmax}");
        // Fell forward along +x: the head lies beyond the feet.
        assert!(lie.keypoints[0][0] > lie.keypoints[15][0] + 1.2);
    }

    #[test]
    fn scatterers_share_the_cross_section() {
        let shape = BodyShape {
            height: 1.8,
            rcs_m2: 0.8,
        };
        let body = shape.body(&shape.pose(&Posture::gait(1.0, 1.0), [1.0, 1.0], 0.3));
        let total: f64 = body.scatterers.iter().map(|s| s.amp * s.amp).sum();
        assert!((total - 0.8).abs() < 1e-9);
        assert!(body.scatterers.len() >= 15);
        assert_eq!(body.blockers.len(), 11);
    }
}
