//! Small 3-D vector helpers (room frame, metres). Kept free of any crate so the hot
//! loops stay transparent to the optimiser.

/// A point or vector in the room frame, metres.
pub type V3 = [f64; 3];

#[inline]
pub(crate) fn add(a: V3, b: V3) -> V3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
#[inline]
pub(crate) fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
#[inline]
pub(crate) fn scale(a: V3, s: f64) -> V3 {
    [a[0] * s, a[1] * s, a[2] * s]
}
#[inline]
pub(crate) fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
#[inline]
pub(crate) fn norm(a: V3) -> f64 {
    dot(a, a).sqrt()
}
#[inline]
pub(crate) fn dist(a: V3, b: V3) -> f64 {
    norm(sub(a, b))
}
#[inline]
pub(crate) fn lerp(a: V3, b: V3, t: f64) -> V3 {
    add(a, scale(sub(b, a), t))
}
#[inline]
pub(crate) fn mid(a: V3, b: V3) -> V3 {
    lerp(a, b, 0.5)
}
/// `a / |a|`, or `fallback` for a (near) zero vector.
#[inline]
pub(crate) fn normalize_or(a: V3, fallback: V3) -> V3 {
    let n = norm(a);
    if n > 1e-12 {
        scale(a, 1.0 / n)
    } else {
        fallback
    }
}

/// Cross product `a x b`.
#[inline]
pub(crate) fn cross(a: V3, b: V3) -> V3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// Squared distance between segments `p0-p1` and `q0-q1` (Ericson, Real-Time
/// Collision Detection, 5.1.9), robust to degenerate segments.
pub(crate) fn seg_seg_dist2(p0: V3, p1: V3, q0: V3, q1: V3) -> f64 {
    let d1 = sub(p1, p0);
    let d2 = sub(q1, q0);
    let r = sub(p0, q0);
    let a = dot(d1, d1);
    let e = dot(d2, d2);
    let f = dot(d2, r);
    const EPS: f64 = 1e-12;
    let (s, t);
    if a <= EPS && e <= EPS {
        return dot(r, r);
    }
    if a <= EPS {
        s = 0.0;
        t = (f / e).clamp(0.0, 1.0);
    } else {
        let c = dot(d1, r);
        if e <= EPS {
            t = 0.0;
            s = (-c / a).clamp(0.0, 1.0);
        } else {
            let b = dot(d1, d2);
            let denom = a * e - b * b;
            let mut s0 = if denom > EPS {
                ((b * f - c * e) / denom).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let mut t0 = (b * s0 + f) / e;
            if t0 < 0.0 {
                t0 = 0.0;
                s0 = (-c / a).clamp(0.0, 1.0);
            } else if t0 > 1.0 {
                t0 = 1.0;
                s0 = ((b - c) / a).clamp(0.0, 1.0);
            }
            s = s0;
            t = t0;
        }
    }
    let c1 = add(p0, scale(d1, s));
    let c2 = add(q0, scale(d2, t));
    let w = sub(c1, c2);
    dot(w, w)
}

/// Rotation of `p` about the z axis by `yaw` radians.
#[inline]
pub(crate) fn rot_z(p: V3, yaw: f64) -> V3 {
    let (s, c) = yaw.sin_cos();
    [c * p[0] - s * p[1], s * p[0] + c * p[1], p[2]]
}

/// Rotation of `p` about the y axis by `pitch` radians, positive tipping +z towards +x.
#[inline]
pub(crate) fn rot_y(p: V3, pitch: f64) -> V3 {
    let (s, c) = pitch.sin_cos();
    [c * p[0] + s * p[2], p[1], -s * p[0] + c * p[2]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_distances() {
        // Crossing segments at distance 1 in z.
        let d = seg_seg_dist2(
            [-1.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, -1.0, 1.0],
            [0.0, 1.0, 1.0],
        );
        assert!((d - 1.0).abs() < 1e-12);
        // Parallel, offset by 2, overlapping.
        let d = seg_seg_dist2(
            [0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.5, 2.0, 0.0],
            [3.0, 2.0, 0.0],
        );
        assert!((d - 4.0).abs() < 1e-12);
        // Point to segment end.
        let d = seg_seg_dist2(
            [0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0],
            [3.0, 4.0, 0.0],
            [6.0, 4.0, 0.0],
        );
        assert!((d - 25.0).abs() < 1e-12);
    }

    #[test]
    fn rotations() {
        let p = rot_y([0.0, 0.0, 1.0], std::f64::consts::FRAC_PI_2);
        assert!((p[0] - 1.0).abs() < 1e-12 && p[2].abs() < 1e-12);
        let p = rot_z([1.0, 0.0, 0.0], std::f64::consts::FRAC_PI_2);
        assert!((p[1] - 1.0).abs() < 1e-12 && p[0].abs() < 1e-12);
    }
}
