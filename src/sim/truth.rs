//! Ground truth per frame, in the frame the model predicts.
//!
//! **Coordinate frame.** 3-D keypoints are in the room frame: metres, origin at a floor
//! corner, x along the room's width, y along its depth, z up. The 2-D frame is the
//! top-down view of the floor: `u = x / width`, `v = y / depth`, both in `[0, 1]` for
//! anything inside the room (height dropped). Boxes are `[u_min, v_min, u_max, v_max]`
//! in that frame, around the body's capsules (not only its keypoints). The dense-pose
//! map is a `grid x grid` raster of the same floor square (row = v, column = u): per
//! cell the DensePose part (1..=24, 0 background) of the highest body surface above the
//! cell centre, the person index (-1 background), and `U` (along the limb, 0 at its
//! proximal joint) and `V` (across it, 0..1 from the limb's right edge to its left as
//! seen from above).
//!
//! Absent people (outside the room) and padding slots have zero keypoints and boxes,
//! `present = false` and activity `-1`.

use super::geom::{cross, sub, V3};
use super::motion::Activity;
use super::room::Room;
use super::skeleton::{Part, Pose, N_KEYPOINTS};

/// One person in one frame.
#[derive(Debug, Clone)]
pub struct PersonTruth {
    /// Whether the pelvis is inside the room.
    pub present: bool,
    /// What the person is doing.
    pub activity: Activity,
    /// The posed body, room frame.
    pub pose: Pose,
}

/// Everything true about one frame.
#[derive(Debug, Clone)]
pub struct FrameTruth {
    /// When the channel was sampled (the frame's timestamp), seconds.
    pub time: f64,
    /// Packet number in the run (before loss).
    pub sequence: u64,
    /// Every person of the scenario, in order, present or not.
    pub people: Vec<PersonTruth>,
}

impl FrameTruth {
    /// People present.
    pub fn occupancy(&self) -> usize {
        self.people.iter().filter(|p| p.present).count()
    }
}

/// Top-down projection of a room point into `[0, 1]^2`.
#[inline]
pub fn project(room: &Room, p: V3) -> [f64; 2] {
    [p[0] / room.size[0], p[1] / room.size[1]]
}

/// The pose's keypoints projected top-down into `[0, 1]^2` ([`project`]).
pub fn keypoints_2d(room: &Room, pose: &Pose) -> [[f64; 2]; N_KEYPOINTS] {
    let mut out = [[0.0; 2]; N_KEYPOINTS];
    for (o, k) in out.iter_mut().zip(&pose.keypoints) {
        *o = project(room, *k);
    }
    out
}

/// `[u_min, v_min, u_max, v_max]` around the capsules.
pub fn bounding_box(room: &Room, pose: &Pose) -> [f64; 4] {
    let mut b = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for c in &pose.capsules {
        for p in [c.a, c.b] {
            b[0] = b[0].min((p[0] - c.radius) / room.size[0]);
            b[1] = b[1].min((p[1] - c.radius) / room.size[1]);
            b[2] = b[2].max((p[0] + c.radius) / room.size[0]);
            b[3] = b[3].max((p[1] + c.radius) / room.size[1]);
        }
    }
    b
}

/// Writes one frame's dense-pose map (`grid * grid` cells each) for the present people.
pub fn dense_pose(
    room: &Room,
    people: &[PersonTruth],
    grid: usize,
    part: &mut [u8],
    person: &mut [i8],
    u: &mut [f32],
    v: &mut [f32],
) {
    part.fill(0);
    person.fill(-1);
    u.fill(0.0);
    v.fill(0.0);
    let n = grid * grid;
    let mut top = vec![f64::NEG_INFINITY; n];
    let (w, d) = (room.size[0], room.size[1]);
    for (pi, pt) in people.iter().enumerate() {
        if !pt.present {
            continue;
        }
        let pose = &pt.pose;
        let left = cross(pose.up, pose.forward); // up x forward = left
        for c in &pose.capsules {
            let (x0, x1) = (c.a[0].min(c.b[0]) - c.radius, c.a[0].max(c.b[0]) + c.radius);
            let (y0, y1) = (c.a[1].min(c.b[1]) - c.radius, c.a[1].max(c.b[1]) + c.radius);
            let col0 = ((x0 / w * grid as f64).floor().max(0.0)) as usize;
            let col1 = ((x1 / w * grid as f64).ceil().min(grid as f64)) as usize;
            let row0 = ((y0 / d * grid as f64).floor().max(0.0)) as usize;
            let row1 = ((y1 / d * grid as f64).ceil().min(grid as f64)) as usize;
            let axis = sub(c.b, c.a);
            let (ax, ay) = (axis[0], axis[1]);
            let l2 = ax * ax + ay * ay;
            let (back, front) = c.part.densepose_ids();
            for row in row0..row1 {
                let y = (row as f64 + 0.5) / grid as f64 * d;
                for col in col0..col1 {
                    let x = (col as f64 + 0.5) / grid as f64 * w;
                    // Closest point of the floor-projected axis.
                    let t = if l2 > 1e-12 {
                        (((x - c.a[0]) * ax + (y - c.a[1]) * ay) / l2).clamp(0.0, 1.0)
                    } else {
                        0.0
                    };
                    let (px, py) = (c.a[0] + t * ax, c.a[1] + t * ay);
                    let (ox, oy) = (x - px, y - py);
                    let r2 = ox * ox + oy * oy;
                    if r2 > c.radius * c.radius {
                        continue;
                    }
                    let z = c.a[2] + t * axis[2] + (c.radius * c.radius - r2).sqrt();
                    let cell = row * grid + col;
                    if z <= top[cell] {
                        continue;
                    }
                    top[cell] = z;
                    // Surface normal seen from above: horizontal offset plus up.
                    let hz = (c.radius * c.radius - r2).sqrt();
                    let nrm = [ox, oy, hz];
                    let id = match c.part {
                        Part::Head => {
                            if nrm[0] * left[0] + nrm[1] * left[1] + nrm[2] * left[2] >= 0.0 {
                                front
                            } else {
                                back
                            }
                        }
                        _ => {
                            let f = pose.forward;
                            if nrm[0] * f[0] + nrm[1] * f[1] + nrm[2] * f[2] >= 0.0 {
                                front
                            } else {
                                back
                            }
                        }
                    };
                    // Signed lateral offset: positive to the left of the axis seen from above.
                    let lat = if l2 > 1e-12 {
                        (ax * oy - ay * ox) / l2.sqrt()
                    } else {
                        ox
                    };
                    part[cell] = id;
                    person[cell] = pi as i8;
                    u[cell] = t as f32;
                    v[cell] = (0.5 + 0.5 * lat / c.radius).clamp(0.0, 1.0) as f32;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::skeleton::{BodyShape, Posture};

    #[test]
    fn projection_boxes_and_dense_pose() {
        let room = Room::default();
        let shape = BodyShape::default();
        let pose = shape.pose(&Posture::LYING, [2.0, 2.5], 0.0);
        let k2 = keypoints_2d(&room, &pose);
        for (k3, k) in pose.keypoints.iter().zip(&k2) {
            assert!((k[0] * 6.0 - k3[0]).abs() < 1e-12 && (k[1] * 5.0 - k3[1]).abs() < 1e-12);
        }
        let b = bounding_box(&room, &pose);
        // Lying along x: the box is about body-length wide in u, narrow in v.
        assert!(
            (b[2] - b[0]) * 6.0 > 1.6 && (b[3] - b[1]) * 5.0 < 0.8,
            "{b:?}"
        );
        let g = 64;
        let (mut part, mut person, mut u, mut v) = (
            vec![0u8; g * g],
            vec![0i8; g * g],
            vec![0f32; g * g],
            vec![0f32; g * g],
        );
        let people = vec![PersonTruth {
            present: true,
            activity: Activity::Lying,
            pose: pose.clone(),
        }];
        dense_pose(&room, &people, g, &mut part, &mut person, &mut u, &mut v);
        let covered = part.iter().filter(|&&p| p > 0).count();
        // Roughly the lying body's footprint: ~1.7 m x ~0.4 m over 6 x 5 m at 64 x 64.
        let cell = (6.0 / 64.0) * (5.0 / 64.0);
        let area = covered as f64 * cell;
        assert!(area > 0.25 && area < 1.2, "dense-pose footprint {area} m^2");
        // Face down: the torso shows its back (id 1), never its front.
        assert!(part.contains(&1) && !part.contains(&2));
        assert!(part
            .iter()
            .zip(&person)
            .all(|(p, q)| (*p == 0) == (*q == -1)));
        // Nothing inside the box is outside it.
        for r in 0..g {
            for c in 0..g {
                if part[r * g + c] > 0 {
                    let (cu, cv) = ((c as f64 + 0.5) / g as f64, (r as f64 + 0.5) / g as f64);
                    assert!(cu >= b[0] && cu <= b[2] && cv >= b[1] && cv <= b[3]);
                }
            }
        }
    }
}
