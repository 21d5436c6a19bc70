//! Background changes that are not people: a door swinging on its hinge and a piece of
//! furniture moved. They change the channel as a person would (moving reflectors), and
//! the truth marks them as not people: a sensing stage must not count them.
//!
//! - **Door**: a leaf `width_m` x `height_m` standing on the floor, rotating about a
//!   vertical hinge at `hinge` from heading `from_deg` to `to_deg` (degrees from +x, the
//!   direction from the hinge to the free edge) over `duration_s` (default 1 s, smooth
//!   start and stop), starting at `at_s`; with `return_at_s` it swings back then. The
//!   leaf scatters from a 4 x 6 grid of points sharing `rcs_m2` (default 1.5 m^2); it
//!   does not block paths.
//! - **Move object**: static object `object` (an index into `room.objects`) slides to
//!   `to` over `duration_s` (default 1 s, smooth), starting at `at_s`. An object that
//!   any event moves is a moving scatterer for the whole run instead of a static path
//!   (the same bistatic radar amplitude either way).

use serde::{Deserialize, Serialize};

use super::channel::{Body, Scatterer};
use super::error::{check_finite, check_range, SimError};
use super::geom::{lerp, V3};
use super::room::Room;

/// One scheduled background change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EventSpec {
    /// A door leaf swinging about a vertical hinge (see the module notes).
    Door {
        /// When the swing starts, seconds from the start of the run.
        at_s: f64,
        /// Floor position of the hinge (x, y), metres.
        hinge: [f64; 2],
        /// Leaf heading before the swing, degrees from +x (hinge to free edge).
        from_deg: f64,
        /// Leaf heading after the swing, degrees from +x.
        to_deg: f64,
        /// Length of the swing, seconds (default 1).
        #[serde(default)]
        duration_s: Option<f64>,
        /// When it swings back to `from_deg`, seconds; None: it stays open.
        #[serde(default)]
        return_at_s: Option<f64>,
        /// Leaf width, metres (default 0.9).
        #[serde(default = "door_width")]
        width_m: f64,
        /// Leaf height, metres (default 2).
        #[serde(default = "door_height")]
        height_m: f64,
        /// Radar cross-section of the whole leaf, m² (default 1.5).
        #[serde(default = "door_rcs")]
        rcs_m2: f64,
    },
    /// A static object of the room sliding to a new place.
    MoveObject {
        /// When the move starts, seconds from the start of the run.
        at_s: f64,
        /// Index of the object in `room.objects`.
        object: usize,
        /// Where it ends, room frame, metres.
        to: [f64; 3],
        /// Length of the move, seconds (default 1).
        #[serde(default)]
        duration_s: Option<f64>,
    },
}

fn door_width() -> f64 {
    0.9
}
fn door_height() -> f64 {
    2.0
}
fn door_rcs() -> f64 {
    1.5
}

const DEFAULT_DURATION_S: f64 = 1.0;

/// Event kind of a door in the truth arrays (`Dataset::events` column 0).
pub const EVENT_DOOR: f64 = 0.0;
/// Event kind of a moved object in the truth arrays.
pub const EVENT_MOVE_OBJECT: f64 = 1.0;

fn smooth(u: f64) -> f64 {
    let u = u.clamp(0.0, 1.0);
    u * u * (3.0 - 2.0 * u)
}

#[derive(Debug, Clone)]
struct Door {
    hinge: [f64; 2],
    from: f64,
    to: f64,
    at: f64,
    dur: f64,
    back: Option<f64>,
    width: f64,
    height: f64,
    amp: f64,
}

impl Door {
    fn angle(&self, t: f64) -> f64 {
        let mut a = self.from + (self.to - self.from) * smooth((t - self.at) / self.dur);
        if let Some(b) = self.back {
            a += (self.from - self.to) * smooth((t - b) / self.dur);
        }
        a
    }

    fn body(&self, t: f64) -> Body {
        let (s, c) = self.angle(t).sin_cos();
        let mut scat = Vec::with_capacity(24);
        for i in 0..4 {
            let r = self.width * (i as f64 + 0.5) / 4.0;
            for k in 0..6 {
                let z = self.height * (k as f64 + 0.5) / 6.0;
                scat.push(Scatterer {
                    pos: [self.hinge[0] + r * c, self.hinge[1] + r * s, z],
                    amp: self.amp,
                });
            }
        }
        Body::new(scat, Vec::new())
    }
}

#[derive(Debug, Clone)]
struct Mover {
    start: V3,
    amp: f64,
    /// (start, duration, destination), by start time.
    moves: Vec<(f64, f64, V3)>,
}

impl Mover {
    fn position(&self, t: f64) -> V3 {
        let mut p = self.start;
        for &(at, dur, to) in &self.moves {
            if t < at {
                break;
            }
            if t >= at + dur {
                p = to;
            } else {
                return lerp(p, to, smooth((t - at) / dur));
            }
        }
        p
    }
}

/// The scheduled background changes of a run.
#[derive(Debug, Clone, Default)]
pub struct Events {
    doors: Vec<Door>,
    movers: Vec<Mover>,
    /// `(kind, start, end)` of every movement, for the truth.
    spans: Vec<(f64, f64, f64)>,
    /// Indices of the room's objects that move (not static paths).
    pub moved_objects: Vec<usize>,
}

impl Events {
    /// Schedules `specs` in `room`; fails on a field out of range or an object index
    /// the room does not have.
    pub fn new(specs: &[EventSpec], room: &Room) -> Result<Self, SimError> {
        let mut ev = Events::default();
        let mut moves: Vec<(usize, f64, f64, V3)> = Vec::new();
        for (i, e) in specs.iter().enumerate() {
            let f = |name: &str| format!("events[{i}].{name}");
            match e {
                EventSpec::Door {
                    at_s,
                    hinge,
                    from_deg,
                    to_deg,
                    duration_s,
                    return_at_s,
                    width_m,
                    height_m,
                    rcs_m2,
                } => {
                    check_range(&f("at_s"), *at_s, -1e6, 1e6)?;
                    for (a, v) in hinge.iter().enumerate() {
                        check_range(&f(&format!("hinge[{a}]")), *v, 0.0, room.size[a])?;
                    }
                    check_finite(&f("from_deg"), *from_deg, false)?;
                    check_finite(&f("to_deg"), *to_deg, false)?;
                    let dur = check_range(
                        &f("duration_s"),
                        duration_s.unwrap_or(DEFAULT_DURATION_S),
                        0.05,
                        60.0,
                    )?;
                    if let Some(b) = return_at_s {
                        check_range(&f("return_at_s"), *b, at_s + dur, 1e6)?;
                    }
                    check_range(&f("width_m"), *width_m, 0.2, 3.0)?;
                    check_range(&f("height_m"), *height_m, 0.2, room.size[2])?;
                    check_range(&f("rcs_m2"), *rcs_m2, 0.0, 100.0)?;
                    ev.doors.push(Door {
                        hinge: *hinge,
                        from: from_deg.to_radians(),
                        to: to_deg.to_radians(),
                        at: *at_s,
                        dur,
                        back: *return_at_s,
                        width: *width_m,
                        height: *height_m,
                        amp: (rcs_m2 / 24.0).sqrt(),
                    });
                    ev.spans.push((EVENT_DOOR, *at_s, at_s + dur));
                    if let Some(b) = return_at_s {
                        ev.spans.push((EVENT_DOOR, *b, b + dur));
                    }
                }
                EventSpec::MoveObject {
                    at_s,
                    object,
                    to,
                    duration_s,
                } => {
                    check_range(&f("at_s"), *at_s, -1e6, 1e6)?;
                    if *object >= room.objects.len() {
                        return Err(SimError::invalid(
                            f("object"),
                            format!("room has {} objects", room.objects.len()),
                        ));
                    }
                    for (a, v) in to.iter().enumerate() {
                        check_range(&f(&format!("to[{a}]")), *v, 0.0, room.size[a])?;
                    }
                    let dur = check_range(
                        &f("duration_s"),
                        duration_s.unwrap_or(DEFAULT_DURATION_S),
                        0.05,
                        60.0,
                    )?;
                    moves.push((*object, *at_s, dur, *to));
                    ev.spans.push((EVENT_MOVE_OBJECT, *at_s, at_s + dur));
                }
            }
        }
        moves.sort_by(|a, b| a.1.total_cmp(&b.1));
        let mut objs: Vec<usize> = moves.iter().map(|m| m.0).collect();
        objs.sort_unstable();
        objs.dedup();
        for &o in &objs {
            let obj = &room.objects[o];
            ev.movers.push(Mover {
                start: obj.position,
                amp: obj.rcs_m2.sqrt(),
                moves: moves
                    .iter()
                    .filter(|m| m.0 == o)
                    .map(|m| (m.1, m.2, m.3))
                    .collect(),
            });
        }
        ev.moved_objects = objs;
        Ok(ev)
    }

    /// Whether nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.doors.is_empty() && self.movers.is_empty()
    }

    /// The moving reflectors at `t`, appended to `bodies`.
    pub fn bodies(&self, t: f64, bodies: &mut Vec<Body>) {
        for d in &self.doors {
            bodies.push(d.body(t));
        }
        if !self.movers.is_empty() {
            let scat = self
                .movers
                .iter()
                .map(|m| Scatterer {
                    pos: m.position(t),
                    amp: m.amp,
                })
                .collect();
            bodies.push(Body::new(scat, Vec::new()));
        }
    }

    /// Whether any background change is under way at `t`.
    pub fn moving(&self, t: f64) -> bool {
        self.spans.iter().any(|&(_, a, b)| t >= a && t <= b)
    }

    /// `(kind, start, end)` of every movement ([`EVENT_DOOR`], [`EVENT_MOVE_OBJECT`]).
    pub fn spans(&self) -> &[(f64, f64, f64)] {
        &self.spans
    }

    /// The door's leaf heading at `t` (radians), for tests.
    pub fn door_angle(&self, i: usize, t: f64) -> Option<f64> {
        self.doors.get(i).map(|d| d.angle(t))
    }

    /// Where moved object `i` (in `moved_objects` order) is at `t`.
    pub fn object_position(&self, i: usize, t: f64) -> Option<V3> {
        self.movers.get(i).map(|m| m.position(t))
    }
}
