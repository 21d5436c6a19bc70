//! Motions: what each person does over time, as a list of actions played in order.
//!
//! A [`Track`] turns a person's actions into timed segments once; its
//! [`Track::state`] then gives position, heading, [`Posture`] and activity at any time,
//! in any order (so frames can be generated in parallel). After the last action the
//! person holds the final state.
//!
//! Walking follows the waypoints at constant speed with a gait cycle of
//! `0.55 + 0.3 * speed` Hz (0.91 Hz, stride 1.3 m at 1.2 m/s), swing ramping up and
//! down over the first and last half second, heading smoothed over 0.3 m around
//! corners. A fall tips the body forward about the ankles with an accelerating profile
//! (angle proportional to the square of time, impact at the end of the descent), the
//! knees buckling on the way down. Entering and leaving are walks from or to a point
//! outside the room: a person is present while the pelvis is inside the room.

use serde::{Deserialize, Serialize};

use super::error::{check_finite, check_range, SimError};
use super::skeleton::Posture;

/// Per-person activity label (`-1` in arrays: absent or padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// Upright and not walking.
    Standing = 0,
    /// Following a walk's waypoints.
    Walking = 1,
    /// Sitting, including the second half of sitting down.
    Sitting = 2,
    /// Lying on the floor, after lying down or after a fall's impact.
    Lying = 3,
    /// A fall's descent, from its start to the impact.
    Falling = 4,
}

/// The label names, indexed by `Activity as usize` (the one list lives with the detections).
pub use crate::track::ACTIVITIES as ACTIVITY_NAMES;

/// One step of a person's script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Walk through the waypoints (floor x, y in metres) from where the person is.
    Walk {
        /// The waypoints, in order.
        to: Vec<[f64; 2]>,
        /// Walking speed, m/s (default 1.2).
        #[serde(default = "default_speed")]
        speed: f64,
    },
    /// Stand still where the person is.
    Stand {
        /// How long, seconds.
        duration_s: f64,
    },
    /// From standing to sitting, on the spot.
    SitDown {
        /// How long the movement takes, seconds (default 1.5).
        #[serde(default)]
        duration_s: Option<f64>,
    },
    /// Stay seated.
    Sit {
        /// How long, seconds.
        duration_s: f64,
    },
    /// From sitting to standing.
    StandUp {
        /// How long the movement takes, seconds (default 1.5).
        #[serde(default)]
        duration_s: Option<f64>,
    },
    /// From standing down to lying face down, through a crouch (deliberately, not a fall).
    LieDown {
        /// How long the movement takes, seconds (default 3).
        #[serde(default)]
        duration_s: Option<f64>,
    },
    /// Stay lying.
    Lie {
        /// How long, seconds.
        duration_s: f64,
    },
    /// A forward fall: descent of `duration_s` (default 0.8 s) ending in the impact.
    Fall {
        /// Descent time, seconds (default 0.8).
        #[serde(default)]
        duration_s: Option<f64>,
    },
    /// From lying back to standing, through a crouch (default 3 s).
    GetUp {
        /// How long the movement takes, seconds (default 3).
        #[serde(default)]
        duration_s: Option<f64>,
    },
}

fn default_speed() -> f64 {
    1.2
}

#[derive(Debug, Clone)]
enum Kind {
    Walk {
        pts: Vec<[f64; 2]>,
        cum: Vec<f64>,
        speed: f64,
        gait_hz: f64,
        heading0: f64,
    },
    Hold {
        posture: Posture,
        activity: Activity,
        /// Whether stillness fades in at the start / out at the end (false where the
        /// neighbouring segment holds the same activity).
        fade: (bool, bool),
    },
    Transition {
        from: Posture,
        via: Option<Posture>,
        to: Posture,
        labels: (Activity, Activity),
        fall: bool,
    },
}

#[derive(Debug, Clone)]
struct Segment {
    t0: f64,
    t1: f64,
    xy: [f64; 2],
    heading: f64,
    kind: Kind,
}

/// A person's state at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// Floor position of the pelvis (x, y), metres.
    pub xy: [f64; 2],
    /// Facing direction, radians from +x towards +y.
    pub heading: f64,
    /// Joint angles.
    pub posture: Posture,
    /// The label at this instant.
    pub activity: Activity,
    /// How still the person is holding a posture, 0..1: 1 inside a hold (stand, sit,
    /// lie), fading to 0 over half a second towards a walk or transition, 0 while
    /// moving. Sway and fidgets are weighted by it.
    pub still: f64,
}

/// Seconds over which stillness fades in and out at the ends of a hold.
const STILL_FADE_S: f64 = 0.5;

/// A fall in the script: descent start and impact, seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FallEvent {
    /// When the descent starts, seconds from the start of the run.
    pub start: f64,
    /// When the body hits the floor, seconds from the start of the run.
    pub impact: f64,
    /// When the person was standing again, if they got up.
    pub recovered: Option<f64>,
}

/// A person's script turned into timed segments.
#[derive(Debug, Clone)]
pub struct Track {
    segments: Vec<Segment>,
    /// The falls in the script, in order.
    pub falls: Vec<FallEvent>,
}

fn smooth(u: f64) -> f64 {
    let u = u.clamp(0.0, 1.0);
    u * u * (3.0 - 2.0 * u)
}

fn angle_lerp(a: f64, b: f64, t: f64) -> f64 {
    let d = (b - a + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI;
    a + d * t
}

impl Track {
    /// Plays `actions` from `start` (floor position), `heading` (radians) and an
    /// initial posture/activity. `field` prefixes error messages (`people[0]`).
    pub fn new(
        field: &str,
        start: [f64; 2],
        heading: f64,
        initial: (Posture, Activity),
        actions: &[Action],
    ) -> Result<Self, SimError> {
        check_finite(&format!("{field}.start[0]"), start[0], false)?;
        check_finite(&format!("{field}.start[1]"), start[1], false)?;
        check_finite(&format!("{field}.heading_deg"), heading, false)?;
        let mut segs: Vec<Segment> = Vec::new();
        let mut falls = Vec::new();
        let mut t = 0.0;
        let mut xy = start;
        let mut hd = heading;
        let (mut posture, mut act) = initial;
        let dur = |i: usize, name: &str, v: Option<f64>, def: f64| -> Result<f64, SimError> {
            let f = format!("{field}.actions[{i}].{name}");
            check_range(&f, v.unwrap_or(def), 1e-3, 1e6)
        };
        for (i, a) in actions.iter().enumerate() {
            let (kind, d, next): (Kind, f64, Option<(Posture, Activity)>) = match a {
                Action::Walk { to, speed } => {
                    let speed =
                        check_range(&format!("{field}.actions[{i}].speed"), *speed, 0.05, 10.0)?;
                    if to.is_empty() {
                        return Err(SimError::invalid(
                            format!("{field}.actions[{i}].to"),
                            "needs at least one waypoint",
                        ));
                    }
                    let mut pts = vec![xy];
                    for (w, p) in to.iter().enumerate() {
                        for (c, v) in p.iter().enumerate() {
                            check_range(
                                &format!("{field}.actions[{i}].to[{w}][{c}]"),
                                *v,
                                -1e3,
                                1e3,
                            )?;
                        }
                        pts.push(*p);
                    }
                    let mut cum = vec![0.0];
                    for w in pts.windows(2) {
                        let l = ((w[1][0] - w[0][0]).powi(2) + (w[1][1] - w[0][1]).powi(2)).sqrt();
                        cum.push(cum.last().copied().unwrap_or(0.0) + l);
                    }
                    let len = cum.last().copied().unwrap_or(0.0);
                    let d = (len / speed).max(1e-3);
                    let end = *pts.last().unwrap_or(&xy);
                    let kind = Kind::Walk {
                        pts,
                        cum,
                        speed,
                        gait_hz: 0.55 + 0.3 * speed,
                        heading0: hd,
                    };
                    let seg = Segment {
                        t0: t,
                        t1: t + d,
                        xy,
                        heading: hd,
                        kind,
                    };
                    hd = walk_heading(&seg, t + d);
                    xy = end;
                    segs.push(seg);
                    t += d;
                    posture = Posture::STANDING;
                    act = Activity::Standing;
                    continue;
                }
                Action::Stand { duration_s } => (
                    Kind::Hold {
                        posture: Posture::STANDING,
                        activity: Activity::Standing,
                        fade: (true, true),
                    },
                    dur(i, "duration_s", Some(*duration_s), 0.0)?,
                    Some((Posture::STANDING, Activity::Standing)),
                ),
                Action::Sit { duration_s } => (
                    Kind::Hold {
                        posture: Posture::SITTING,
                        activity: Activity::Sitting,
                        fade: (true, true),
                    },
                    dur(i, "duration_s", Some(*duration_s), 0.0)?,
                    Some((Posture::SITTING, Activity::Sitting)),
                ),
                Action::Lie { duration_s } => {
                    // Lying keeps a fallen posture; from upright it is the plain one.
                    let p = if posture.pitch > 1.0 {
                        posture
                    } else {
                        Posture::LYING
                    };
                    (
                        Kind::Hold {
                            posture: p,
                            activity: Activity::Lying,
                            fade: (true, true),
                        },
                        dur(i, "duration_s", Some(*duration_s), 0.0)?,
                        Some((p, Activity::Lying)),
                    )
                }
                Action::SitDown { duration_s } => (
                    Kind::Transition {
                        from: posture,
                        via: None,
                        to: Posture::SITTING,
                        labels: (act, Activity::Sitting),
                        fall: false,
                    },
                    dur(i, "duration_s", *duration_s, 1.5)?,
                    Some((Posture::SITTING, Activity::Sitting)),
                ),
                Action::StandUp { duration_s } => (
                    Kind::Transition {
                        from: posture,
                        via: None,
                        to: Posture::STANDING,
                        labels: (act, Activity::Standing),
                        fall: false,
                    },
                    dur(i, "duration_s", *duration_s, 1.5)?,
                    Some((Posture::STANDING, Activity::Standing)),
                ),
                Action::LieDown { duration_s } => (
                    Kind::Transition {
                        from: posture,
                        via: Some(Posture::CROUCH),
                        to: Posture::LYING,
                        labels: (act, Activity::Lying),
                        fall: false,
                    },
                    dur(i, "duration_s", *duration_s, 3.0)?,
                    Some((Posture::LYING, Activity::Lying)),
                ),
                Action::Fall { duration_s } => {
                    let d = dur(i, "duration_s", *duration_s, 0.8)?;
                    falls.push(FallEvent {
                        start: t,
                        impact: t + d,
                        recovered: None,
                    });
                    (
                        Kind::Transition {
                            from: posture,
                            via: None,
                            to: Posture::FALLEN,
                            labels: (Activity::Falling, Activity::Lying),
                            fall: true,
                        },
                        d,
                        Some((Posture::FALLEN, Activity::Lying)),
                    )
                }
                Action::GetUp { duration_s } => {
                    let d = dur(i, "duration_s", *duration_s, 3.0)?;
                    if let Some(f) = falls.last_mut() {
                        if f.recovered.is_none() {
                            f.recovered = Some(t + d);
                        }
                    }
                    (
                        Kind::Transition {
                            from: posture,
                            via: Some(Posture::CROUCH),
                            to: Posture::STANDING,
                            labels: (act, Activity::Standing),
                            fall: false,
                        },
                        d,
                        Some((Posture::STANDING, Activity::Standing)),
                    )
                }
            };
            segs.push(Segment {
                t0: t,
                t1: t + d,
                xy,
                heading: hd,
                kind,
            });
            t += d;
            if let Some((p, a)) = next {
                posture = p;
                act = a;
            }
        }
        // Hold the final state for ever.
        segs.push(Segment {
            t0: t,
            t1: f64::INFINITY,
            xy,
            heading: hd,
            kind: Kind::Hold {
                posture,
                activity: act,
                fade: (true, false),
            },
        });
        // Back-to-back holds of one activity are one still period: no fade between.
        for i in 1..segs.len() {
            let same = match (&segs[i - 1].kind, &segs[i].kind) {
                (Kind::Hold { activity: a, .. }, Kind::Hold { activity: b, .. }) => a == b,
                _ => false,
            };
            if same {
                if let Kind::Hold { fade, .. } = &mut segs[i - 1].kind {
                    fade.1 = false;
                }
                if let Kind::Hold { fade, .. } = &mut segs[i].kind {
                    fade.0 = false;
                }
            }
        }
        Ok(Track {
            segments: segs,
            falls,
        })
    }

    /// When the last action ends, seconds.
    pub fn script_end(&self) -> f64 {
        self.segments.last().map(|s| s.t0).unwrap_or(0.0)
    }

    /// The person at `t` seconds from the start (the final state after the script).
    pub fn state(&self, t: f64) -> State {
        let i = self
            .segments
            .partition_point(|s| s.t1 <= t)
            .min(self.segments.len() - 1);
        let s = &self.segments[i];
        let tau = (t - s.t0).max(0.0);
        match &s.kind {
            Kind::Hold {
                posture,
                activity,
                fade,
            } => {
                let a = if fade.0 && s.t0 > 0.0 {
                    smooth(tau / STILL_FADE_S)
                } else {
                    1.0
                };
                let b = if fade.1 {
                    smooth((s.t1 - t) / STILL_FADE_S)
                } else {
                    1.0
                };
                State {
                    xy: s.xy,
                    heading: s.heading,
                    posture: *posture,
                    activity: *activity,
                    still: a.min(b),
                }
            }
            Kind::Transition {
                from,
                via,
                to,
                labels,
                fall,
            } => {
                let u = (tau / (s.t1 - s.t0)).clamp(0.0, 1.0);
                let posture = if *fall {
                    let mut p = Posture::lerp(from, to, u * u);
                    let buckle = 30.0f64.to_radians() * (std::f64::consts::PI * u).sin();
                    p.knee[0] += buckle;
                    p.knee[1] += buckle;
                    p
                } else if let Some(v) = via {
                    if u < 0.5 {
                        Posture::lerp(from, v, smooth(2.0 * u))
                    } else {
                        Posture::lerp(v, to, smooth(2.0 * u - 1.0))
                    }
                } else {
                    Posture::lerp(from, to, smooth(u))
                };
                let activity = if *fall || u < 0.5 { labels.0 } else { labels.1 };
                State {
                    xy: s.xy,
                    heading: s.heading,
                    posture,
                    activity,
                    still: 0.0,
                }
            }
            Kind::Walk {
                pts,
                cum,
                speed,
                gait_hz,
                ..
            } => {
                let total = s.t1 - s.t0;
                let dist = (tau * speed).min(*cum.last().unwrap_or(&0.0));
                let xy = point_at(pts, cum, dist);
                let amp = (tau / 0.5).min((total - tau) / 0.5).clamp(0.0, 1.0);
                let phase = std::f64::consts::TAU * gait_hz * tau;
                State {
                    xy,
                    heading: walk_heading(s, t),
                    posture: Posture::gait(phase, amp),
                    activity: Activity::Walking,
                    still: 0.0,
                }
            }
        }
    }
}

fn point_at(pts: &[[f64; 2]], cum: &[f64], s: f64) -> [f64; 2] {
    let n = pts.len();
    if n == 1 {
        return pts[0];
    }
    let i = cum.partition_point(|&c| c <= s).clamp(1, n - 1);
    let l = cum[i] - cum[i - 1];
    let u = if l > 1e-12 {
        ((s - cum[i - 1]) / l).clamp(0.0, 1.0)
    } else {
        1.0
    };
    [
        pts[i - 1][0] + (pts[i][0] - pts[i - 1][0]) * u,
        pts[i - 1][1] + (pts[i][1] - pts[i - 1][1]) * u,
    ]
}

fn walk_heading(seg: &Segment, t: f64) -> f64 {
    let Kind::Walk {
        pts,
        cum,
        speed,
        heading0,
        ..
    } = &seg.kind
    else {
        return seg.heading;
    };
    let len = *cum.last().unwrap_or(&0.0);
    if len < 1e-9 {
        return *heading0;
    }
    let tau = (t - seg.t0).max(0.0);
    let s = (tau * speed).min(len);
    let a = point_at(pts, cum, (s - 0.3).max(0.0));
    let b = point_at(pts, cum, (s + 0.3).min(len));
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let path = if dx.abs() + dy.abs() > 1e-9 {
        dy.atan2(dx)
    } else {
        *heading0
    };
    // Turn from the previous heading over the first 0.4 s.
    angle_lerp(*heading0, path, (tau / 0.4).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_moves_at_speed_and_ends_standing() {
        let tr = Track::new(
            "p",
            [1.0, 1.0],
            0.0,
            (Posture::STANDING, Activity::Standing),
            &[Action::Walk {
                to: vec![[4.0, 1.0], [4.0, 3.0]],
                speed: 1.0,
            }],
        )
        .unwrap();
        assert!((tr.script_end() - 5.0).abs() < 1e-9);
        let s = tr.state(2.0);
        assert!((s.xy[0] - 3.0).abs() < 1e-9 && (s.xy[1] - 1.0).abs() < 1e-9);
        assert_eq!(s.activity, Activity::Walking);
        assert!(s.heading.abs() < 1e-9);
        let s = tr.state(4.5);
        assert!((s.heading - std::f64::consts::FRAC_PI_2).abs() < 1e-6);
        let s = tr.state(9.0);
        assert_eq!(s.activity, Activity::Standing);
        assert_eq!(s.xy, [4.0, 3.0]);
    }

    #[test]
    fn fall_is_labelled_and_timed() {
        let tr = Track::new(
            "p",
            [2.0, 2.0],
            0.0,
            (Posture::STANDING, Activity::Standing),
            &[
                Action::Stand { duration_s: 1.0 },
                Action::Fall { duration_s: None },
                Action::Lie { duration_s: 2.0 },
                Action::GetUp { duration_s: None },
            ],
        )
        .unwrap();
        assert_eq!(tr.falls.len(), 1);
        let f = tr.falls[0];
        assert!((f.start - 1.0).abs() < 1e-9 && (f.impact - 1.8).abs() < 1e-9);
        assert!((f.recovered.unwrap() - 6.8).abs() < 1e-9);
        assert_eq!(tr.state(1.4).activity, Activity::Falling);
        assert_eq!(tr.state(2.5).activity, Activity::Lying);
        assert!((tr.state(2.5).posture.pitch - std::f64::consts::FRAC_PI_2).abs() < 1e-9);
        assert_eq!(tr.state(7.0).activity, Activity::Standing);
    }

    #[test]
    fn bad_actions_name_the_field() {
        let e = Track::new(
            "people[1]",
            [0.0, 0.0],
            0.0,
            (Posture::STANDING, Activity::Standing),
            &[
                Action::Stand { duration_s: 1.0 },
                Action::Walk {
                    to: vec![[1.0, 1.0]],
                    speed: -1.0,
                },
            ],
        )
        .unwrap_err();
        assert!(e.to_string().contains("people[1].actions[1].speed"), "{e}");
    }
}
