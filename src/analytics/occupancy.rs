//! Occupancy: the number of people in the room, reported on every change and only on
//! a change.
//!
//! The count is the number of active tracks ([`Track::is_active`]: confirmed, or lost
//! for less than the lifecycle's end time). Tentative tracks never count, so a ghost
//! never changes it; a lost track keeps counting, so a missed frame never does. A
//! person is counted about `confirm_hits` frames after appearing and stops counting
//! when their track ends (0.6 s after walking out near a wall, 3 s when they vanish in
//! the middle of the room).

use crate::track::Track;

/// One person's part in an occupancy change.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonStatus {
    /// The person.
    pub person_id: u64,
    /// Their current track.
    pub track_id: u64,
    /// "new" (joined with this change), "active", "lost" (briefly unseen), "left".
    pub status: &'static str,
}

/// The number of people in the room changed.
#[derive(Debug, Clone, PartialEq)]
pub struct OccupancyChange {
    /// Frame time, seconds.
    pub t: f64,
    /// People now.
    pub current: usize,
    /// People before.
    pub previous: usize,
    /// "person_entered" or "person_left".
    pub change_type: &'static str,
    /// Mean quality of the active tracks, in `[0, 1]`.
    pub confidence: f64,
    /// Every person counted now or just gone.
    pub persons: Vec<PersonStatus>,
}

/// The occupancy count of one environment (see the module's description).
#[derive(Debug, Clone, Default)]
pub struct Occupancy {
    count: usize,
    members: Vec<(u64, u64)>,
}

impl Occupancy {
    /// An empty room.
    pub fn new() -> Self {
        Self::default()
    }

    /// People in the room now.
    pub(crate) fn current(&self) -> usize {
        self.count
    }

    /// Counts the active tracks at frame time `t`; returns the change (none when the count
    /// did not change).
    pub fn update(&mut self, t: f64, tracks: &[Track], meas_std_m: f64) -> Vec<OccupancyChange> {
        let active: Vec<&Track> = tracks.iter().filter(|t| t.is_active()).collect();
        let now: Vec<(u64, u64)> = active.iter().map(|t| (t.track_id, t.person_id)).collect();
        let n = now.len();
        let mut out = Vec::new();
        if n != self.count {
            let mut persons: Vec<PersonStatus> = active
                .iter()
                .map(|tr| PersonStatus {
                    person_id: tr.person_id,
                    track_id: tr.track_id,
                    status: if !self.members.iter().any(|m| m.0 == tr.track_id) {
                        "new"
                    } else if tr.state() == crate::track::TrackState::Lost {
                        "lost"
                    } else {
                        "active"
                    },
                })
                .collect();
            for m in &self.members {
                if !now.iter().any(|x| x.0 == m.0) {
                    persons.push(PersonStatus {
                        person_id: m.1,
                        track_id: m.0,
                        status: "left",
                    });
                }
            }
            let confidence = if active.is_empty() {
                // An empty room is as sure as the tracks that just ended were.
                0.9
            } else {
                active.iter().map(|t| t.quality(meas_std_m)).sum::<f64>() / active.len() as f64
            };
            out.push(OccupancyChange {
                t,
                current: n,
                previous: self.count,
                change_type: if n > self.count {
                    "person_entered"
                } else {
                    "person_left"
                },
                confidence: confidence.clamp(0.0, 1.0),
                persons,
            });
            self.count = n;
        }
        self.members = now;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::{Detection, Tracker, TrackerConfig, N_KEYPOINTS};

    fn det(x: f64, y: f64) -> Detection {
        Detection {
            keypoints: [[x / 6.0, y / 5.0, 0.9]; N_KEYPOINTS],
            bbox: [0.0, 0.0, 1.0, 1.0],
            score: 0.9,
            activity: [0.2; 5],
            dense: None,
        }
    }

    #[test]
    fn messages_only_on_change() {
        let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
        let mut occ = Occupancy::new();
        let mut msgs = Vec::new();
        for n in 0..300 {
            let t = n as f64 * 0.05;
            let mut dets = vec![det(2.0, 2.0)];
            if (60..200).contains(&n) {
                dets.push(det(4.0, 3.0));
            }
            if n % 9 == 0 {
                dets.pop(); // misses
            }
            if n % 13 == 0 {
                dets.push(det(1.0 + (n % 4) as f64, 4.0)); // ghosts
            }
            tr.update(t, &dets);
            msgs.extend(occ.update(t, tr.tracks(), 0.12));
        }
        let seq: Vec<(usize, usize, &str)> = msgs
            .iter()
            .map(|m| (m.previous, m.current, m.change_type))
            .collect();
        assert_eq!(
            seq,
            vec![
                (0, 1, "person_entered"),
                (1, 2, "person_entered"),
                (2, 1, "person_left")
            ]
        );
        assert_eq!(
            msgs[1].persons.iter().filter(|p| p.status == "new").count(),
            1
        );
        assert_eq!(
            msgs[2]
                .persons
                .iter()
                .filter(|p| p.status == "left")
                .count(),
            1
        );
    }
}
