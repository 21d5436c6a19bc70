//! The room: an axis-aligned box `[0, W] x [0, D] x [0, H]` (metres; x along the width,
//! y along the depth, z up, floor at z = 0), walls, floor and ceiling with amplitude
//! reflection coefficients, and optional static point reflectors (furniture).
//!
//! First-order reflections come from the image method: the transmitter mirrored in a
//! surface plane, `x -> 2 x_s - x`; the path length is the image-to-receiver distance
//! and the specular point is where that straight line meets the plane.

use super::error::{check_finite, check_range, SimError};
use super::geom::{dist, lerp, V3};

/// A static point reflector (furniture).
#[derive(Debug, Clone, PartialEq)]
pub struct StaticObject {
    /// Position in the room frame, metres.
    pub position: V3,
    /// Radar cross-section, m^2.
    pub rcs_m2: f64,
}

/// The room's box, surfaces and static objects (see the module notes).
#[derive(Debug, Clone, PartialEq)]
pub struct Room {
    /// Width (x), depth (y), height (z), metres.
    pub size: V3,
    /// Amplitude reflection coefficient of the four walls, 0..1.
    pub wall_reflectivity: f64,
    /// Amplitude reflection coefficient of the floor, 0..1.
    pub floor_reflectivity: f64,
    /// Amplitude reflection coefficient of the ceiling, 0..1.
    pub ceiling_reflectivity: f64,
    /// Static point reflectors; an object a background event moves becomes a moving
    /// scatterer instead.
    pub objects: Vec<StaticObject>,
}

impl Default for Room {
    fn default() -> Self {
        Room {
            size: [6.0, 5.0, 3.0],
            wall_reflectivity: 0.5,
            floor_reflectivity: 0.3,
            ceiling_reflectivity: 0.3,
            objects: Vec::new(),
        }
    }
}

/// What kind of static path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// The direct path.
    LineOfSight,
    /// First-order reflection off surface `0..6`: x=0, x=W, y=0, y=D, floor, ceiling.
    Surface(u8),
    /// Single bounce off static object `i`.
    Object(usize),
}

/// One static path between a transmit and a receive point.
#[derive(Debug, Clone)]
pub struct StaticPath {
    /// Which path it is.
    pub kind: PathKind,
    /// Polyline from the transmitter to the receiver (2 or 3 vertices).
    pub vertices: Vec<V3>,
    /// Total length, metres.
    pub length: f64,
    /// Amplitude factor besides free-space spreading: the reflection coefficient, or for
    /// an object `sqrt(rcs / 4 pi) / (d1 d2)` times `d1 + d2` (so that the caller's
    /// `lambda / (4 pi length)` gives the bistatic radar equation).
    pub gain: f64,
}

/// The most static objects a room holds: every frame traces a path off each (a few
/// dozen pieces of furniture is a furnished room; thousands made one frame take seconds).
pub const MAX_OBJECTS: usize = 256;

impl Room {
    /// Checks the size (0.5 to 100 m per side), reflectivities and objects, naming the
    /// field.
    pub(crate) fn validate(&self) -> Result<(), SimError> {
        for (i, name) in ["room.size[0]", "room.size[1]", "room.size[2]"]
            .iter()
            .enumerate()
        {
            check_range(name, self.size[i], 0.5, 100.0)?;
        }
        check_range("room.wall_reflectivity", self.wall_reflectivity, 0.0, 1.0)?;
        check_range("room.floor_reflectivity", self.floor_reflectivity, 0.0, 1.0)?;
        check_range(
            "room.ceiling_reflectivity",
            self.ceiling_reflectivity,
            0.0,
            1.0,
        )?;
        if self.objects.len() > MAX_OBJECTS {
            return Err(SimError::invalid(
                "room.objects",
                format!("at most {MAX_OBJECTS}, not {}", self.objects.len()),
            ));
        }
        for (i, o) in self.objects.iter().enumerate() {
            for (a, v) in o.position.iter().enumerate() {
                check_finite(&format!("room.objects[{i}].position[{a}]"), *v, false)?;
            }
            check_range(&format!("room.objects[{i}].rcs_m2"), o.rcs_m2, 0.0, 100.0)?;
        }
        Ok(())
    }

    /// Whether a point is inside the room (walls inclusive).
    pub fn contains(&self, p: V3) -> bool {
        (0..3).all(|a| p[a] >= 0.0 && p[a] <= self.size[a])
    }

    fn surface(&self, s: u8) -> (usize, f64, f64) {
        // (axis, plane coordinate, reflection coefficient)
        let [w, d, h] = self.size;
        match s {
            0 => (0, 0.0, self.wall_reflectivity),
            1 => (0, w, self.wall_reflectivity),
            2 => (1, 0.0, self.wall_reflectivity),
            3 => (1, d, self.wall_reflectivity),
            4 => (2, 0.0, self.floor_reflectivity),
            _ => (2, h, self.ceiling_reflectivity),
        }
    }

    /// Length of the first-order reflection off surface `s` between `tx` and `rx`.
    pub fn image_length(&self, s: u8, tx: V3, rx: V3) -> f64 {
        let (axis, c, _) = self.surface(s);
        let mut img = tx;
        img[axis] = 2.0 * c - tx[axis];
        dist(img, rx)
    }

    /// The line-of-sight path, the six first-order surface reflections (those with a
    /// non-zero coefficient) and one bounce off each static object.
    pub fn static_paths(&self, tx: V3, rx: V3) -> Vec<StaticPath> {
        let mut out = vec![StaticPath {
            kind: PathKind::LineOfSight,
            vertices: vec![tx, rx],
            length: dist(tx, rx),
            gain: 1.0,
        }];
        for s in 0..6u8 {
            let (axis, c, gamma) = self.surface(s);
            if gamma <= 0.0 {
                continue;
            }
            let mut img = tx;
            img[axis] = 2.0 * c - tx[axis];
            let denom = rx[axis] - img[axis];
            if denom.abs() < 1e-12 {
                continue;
            }
            let t = (c - img[axis]) / denom;
            let p = lerp(img, rx, t);
            out.push(StaticPath {
                kind: PathKind::Surface(s),
                vertices: vec![tx, p, rx],
                length: dist(img, rx),
                gain: gamma,
            });
        }
        for (i, o) in self.objects.iter().enumerate() {
            let d1 = dist(tx, o.position).max(0.05);
            let d2 = dist(o.position, rx).max(0.05);
            let g = (o.rcs_m2 / (4.0 * std::f64::consts::PI)).sqrt() * (d1 + d2) / (d1 * d2);
            out.push(StaticPath {
                kind: PathKind::Object(i),
                vertices: vec![tx, o.position, rx],
                length: d1 + d2,
                gain: g,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_method_lengths() {
        let room = Room::default();
        let tx = [1.0, 2.0, 1.5];
        let rx = [4.0, 3.0, 1.0];
        let paths = room.static_paths(tx, rx);
        assert_eq!(paths.len(), 7);
        for p in &paths {
            // The polyline through the specular point has the image length.
            let poly: f64 = p.vertices.windows(2).map(|w| dist(w[0], w[1])).sum();
            assert!((poly - p.length).abs() < 1e-9, "{:?}", p.kind);
        }
        // Wall x = 0: image at (-1, 2, 1.5).
        let expect = dist([-1.0, 2.0, 1.5], rx);
        assert!((room.image_length(0, tx, rx) - expect).abs() < 1e-12);
        // Floor: image at z = -1.5.
        let expect = dist([1.0, 2.0, -1.5], rx);
        assert!((paths[5].length - expect).abs() < 1e-12);
    }
}
