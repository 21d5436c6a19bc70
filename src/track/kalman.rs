//! A constant-velocity Kalman filter on the floor plane.
//!
//! State `[x, y, vx, vy]` in metres and metres per second (room frame); measurements
//! are positions. Process noise is white acceleration of spectral density `q`
//! (m^2/s^3), so the uncertainty grows with the time since the last update whatever the
//! frame rate.

// Index loops read best in matrix code.
#![allow(clippy::needless_range_loop)]

type M4 = [[f64; 4]; 4];

/// A constant-velocity Kalman filter on the floor plane.
#[derive(Debug, Clone, PartialEq)]
pub struct Kalman {
    /// State `[x, y, vx, vy]`: metres and metres per second.
    pub x: [f64; 4],
    /// State covariance.
    pub p: M4,
    /// White-acceleration spectral density, m^2/s^3.
    pub q: f64,
}

impl Kalman {
    /// Starts at `pos` with zero velocity: position variance `pos_var`, velocity
    /// variance `vel_var`.
    pub fn new(pos: [f64; 2], pos_var: f64, vel_var: f64, q: f64) -> Self {
        let mut p = [[0.0; 4]; 4];
        p[0][0] = pos_var;
        p[1][1] = pos_var;
        p[2][2] = vel_var;
        p[3][3] = vel_var;
        Kalman {
            x: [pos[0], pos[1], 0.0, 0.0],
            p,
            q,
        }
    }

    /// Estimated position, metres.
    pub fn position(&self) -> [f64; 2] {
        [self.x[0], self.x[1]]
    }

    /// Estimated velocity, metres per second.
    pub(crate) fn velocity(&self) -> [f64; 2] {
        [self.x[2], self.x[3]]
    }

    /// Estimated speed, metres per second.
    pub(crate) fn speed(&self) -> f64 {
        self.x[2].hypot(self.x[3])
    }

    /// Where the filter expects the person `dt` seconds ahead (no state change).
    pub(crate) fn position_in(&self, dt: f64) -> [f64; 2] {
        [self.x[0] + self.x[2] * dt, self.x[1] + self.x[3] * dt]
    }

    /// Position standard deviation (mean of the two axes), metres.
    pub(crate) fn position_std(&self) -> f64 {
        (0.5 * (self.p[0][0] + self.p[1][1])).max(0.0).sqrt()
    }

    /// Keeps the position inside `[0, w] x [0, d]`: a coordinate past a wall is put on
    /// the wall and its velocity toward the wall stopped (people do not walk through
    /// walls; a track coasting on a bad velocity otherwise leaves the room).
    pub(crate) fn confine(&mut self, room: [f64; 2]) {
        for axis in 0..2 {
            let (lo, hi) = (0.0, room[axis]);
            if self.x[axis] < lo {
                self.x[axis] = lo;
                self.x[axis + 2] = self.x[axis + 2].max(0.0);
            } else if self.x[axis] > hi {
                self.x[axis] = hi;
                self.x[axis + 2] = self.x[axis + 2].min(0.0);
            }
        }
    }

    /// Advances the state by `dt` seconds (negative or non-finite `dt` is ignored).
    pub fn predict(&mut self, dt: f64) {
        if !(dt.is_finite() && dt > 0.0) {
            return;
        }
        let x = &mut self.x;
        x[0] += x[2] * dt;
        x[1] += x[3] * dt;
        // P = F P F^T + Q with F = [[I, dt I], [0, I]].
        let p = self.p;
        let mut n = p;
        for i in 0..2 {
            for j in 0..2 {
                n[i][j] = p[i][j] + dt * (p[i + 2][j] + p[i][j + 2]) + dt * dt * p[i + 2][j + 2];
                n[i][j + 2] = p[i][j + 2] + dt * p[i + 2][j + 2];
                n[i + 2][j] = p[i + 2][j] + dt * p[i + 2][j + 2];
            }
        }
        let (q3, q2, q1) = (
            self.q * dt.powi(3) / 3.0,
            self.q * dt * dt / 2.0,
            self.q * dt,
        );
        for i in 0..2 {
            n[i][i] += q3;
            n[i][i + 2] += q2;
            n[i + 2][i] += q2;
            n[i + 2][i + 2] += q1;
        }
        self.p = n;
    }

    /// Innovation `z - Hx` and its covariance `S = H P H^T + r I`.
    pub(crate) fn innovation(&self, z: [f64; 2], r: f64) -> ([f64; 2], [[f64; 2]; 2]) {
        let y = [z[0] - self.x[0], z[1] - self.x[1]];
        let s = [
            [self.p[0][0] + r, self.p[0][1]],
            [self.p[1][0], self.p[1][1] + r],
        ];
        (y, s)
    }

    /// Squared Mahalanobis distance of a measurement (chi-square with 2 degrees of
    /// freedom under the model); infinite when the covariance is degenerate.
    pub(crate) fn mahalanobis2(&self, z: [f64; 2], r: f64) -> f64 {
        let (y, s) = self.innovation(z, r);
        let det = s[0][0] * s[1][1] - s[0][1] * s[1][0];
        if !(det.is_finite() && det > 1e-18) {
            return f64::INFINITY;
        }
        let inv = [
            [s[1][1] / det, -s[0][1] / det],
            [-s[1][0] / det, s[0][0] / det],
        ];
        let d = y[0] * (inv[0][0] * y[0] + inv[0][1] * y[1])
            + y[1] * (inv[1][0] * y[0] + inv[1][1] * y[1]);
        if d.is_finite() {
            d.max(0.0)
        } else {
            f64::INFINITY
        }
    }

    /// Folds in a position measurement with variance `r` (m^2) per axis.
    pub fn update(&mut self, z: [f64; 2], r: f64) {
        if !(z[0].is_finite() && z[1].is_finite() && r.is_finite() && r > 0.0) {
            return;
        }
        let (y, s) = self.innovation(z, r);
        let det = s[0][0] * s[1][1] - s[0][1] * s[1][0];
        if !(det.is_finite() && det > 1e-18) {
            return;
        }
        let inv = [
            [s[1][1] / det, -s[0][1] / det],
            [-s[1][0] / det, s[0][0] / det],
        ];
        // K = P H^T S^-1 (4x2).
        let mut k = [[0.0; 2]; 4];
        for (i, row) in k.iter_mut().enumerate() {
            for (j, kij) in row.iter_mut().enumerate() {
                *kij = self.p[i][0] * inv[0][j] + self.p[i][1] * inv[1][j];
            }
        }
        for (i, row) in k.iter().enumerate() {
            self.x[i] += row[0] * y[0] + row[1] * y[1];
        }
        // P = (I - K H) P, then symmetrised.
        let p = self.p;
        let mut n = p;
        for i in 0..4 {
            for j in 0..4 {
                n[i][j] = p[i][j] - (k[i][0] * p[0][j] + k[i][1] * p[1][j]);
            }
        }
        for i in 0..4 {
            for j in (i + 1)..4 {
                let m = 0.5 * (n[i][j] + n[j][i]);
                n[i][j] = m;
                n[j][i] = m;
            }
        }
        self.p = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn tracks_constant_velocity_through_noise() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut k = Kalman::new([0.0, 0.0], 0.1, 1.0, 0.02);
        let dt = 0.05;
        let v = [1.2, -0.4];
        for n in 1..200 {
            let t = n as f64 * dt;
            k.predict(dt);
            let z = [
                v[0] * t + rng.gen_range(-0.1..0.1),
                v[1] * t + rng.gen_range(-0.1..0.1),
            ];
            k.update(z, 0.0033);
        }
        let t = 199.0 * dt;
        assert!(
            (k.velocity()[0] - v[0]).abs() < 0.15,
            "{:?} {:?}",
            k.velocity(),
            k.p
        );
        assert!((k.velocity()[1] - v[1]).abs() < 0.15, "{:?}", k.velocity());
        assert!((k.position()[0] - v[0] * t).abs() < 0.1);
        // Prediction extrapolates the velocity.
        let ahead = k.position_in(1.0);
        assert!((ahead[0] - (v[0] * (t + 1.0))).abs() < 0.25);
    }

    #[test]
    fn uncertainty_grows_when_coasting_and_gates_far_points() {
        let mut k = Kalman::new([1.0, 1.0], 0.01, 0.25, 1.0);
        let s0 = k.position_std();
        k.predict(1.0);
        assert!(k.position_std() > s0);
        assert!(k.mahalanobis2([1.0, 1.0], 0.01) < 1.0);
        assert!(k.mahalanobis2([5.0, 1.0], 0.01) > 9.21);
        // Bad input leaves the state alone.
        let before = k.clone();
        k.update([f64::NAN, 0.0], 0.01);
        k.predict(-1.0);
        k.predict(f64::NAN);
        assert_eq!(k, before);
    }
}
