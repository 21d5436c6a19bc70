//! The multi-person tracker: predict every track to the frame time, associate
//! detections by a gated Hungarian assignment on Mahalanobis distance, update the
//! matched tracks, step every track's lifecycle, and start tentative tracks from the
//! unmatched detections.

use std::collections::VecDeque;

use super::detection::{Detection, N_ACTIVITIES};
use super::error::{check, TrackError};
use super::hungarian::assign;
use super::kalman::Kalman;
use super::lifecycle::{Lifecycle, LifecycleConfig, TrackState, Transition};

/// The tracker's settings; [`TrackerConfig::validate`] checks their ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerConfig {
    /// Room width and depth, metres (the detections' unit square maps onto it).
    pub room_size: [f64; 2],
    /// Detections with a lower presence score are ignored.
    pub min_score: f64,
    /// Measurement noise of a detection's position, metres (per axis).
    pub meas_std_m: f64,
    /// White-acceleration spectral density of the motion model, m^2/s^3.
    pub accel_psd: f64,
    /// Gate on the squared Mahalanobis distance (chi-square, 2 dof; 13.8 = 99.9 %).
    pub gate_chi2: f64,
    /// Gate on plain distance, metres, whatever the uncertainty.
    pub gate_max_m: f64,
    /// An unmatched detection this close to a confirmed track does not start a track
    /// (a duplicate of that person).
    pub duplicate_radius_m: f64,
    /// Closer than this to a wall counts as at an exit.
    pub exit_margin_m: f64,
    /// How much path each track keeps, seconds.
    pub history_s: f64,
    /// A newly confirmed track takes the `person_id` of a track that ended within
    /// this many seconds ...
    pub reid_window_s: f64,
    /// ... this close to where the new track started, metres.
    pub reid_radius_m: f64,
    /// When tracks confirm, go lost and end.
    pub lifecycle: LifecycleConfig,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            room_size: [6.0, 5.0],
            min_score: 0.3,
            meas_std_m: 0.12,
            accel_psd: 2.0,
            gate_chi2: 13.8,
            gate_max_m: 1.2,
            duplicate_radius_m: 0.4,
            exit_margin_m: 0.5,
            history_s: 3.0,
            reid_window_s: 10.0,
            reid_radius_m: 1.0,
            lifecycle: LifecycleConfig::default(),
        }
    }
}

impl TrackerConfig {
    /// Checks every value against its range.
    pub fn validate(&self) -> Result<(), TrackError> {
        check("room_size[0]", self.room_size[0], 0.1, 1000.0)?;
        check("room_size[1]", self.room_size[1], 0.1, 1000.0)?;
        check("min_score", self.min_score, 0.0, 1.0)?;
        check("meas_std_m", self.meas_std_m, 1e-4, 10.0)?;
        check("accel_psd", self.accel_psd, 1e-6, 1e3)?;
        check("gate_chi2", self.gate_chi2, 0.1, 1e4)?;
        check("gate_max_m", self.gate_max_m, 0.01, 100.0)?;
        check("duplicate_radius_m", self.duplicate_radius_m, 0.0, 10.0)?;
        check("exit_margin_m", self.exit_margin_m, 0.0, 10.0)?;
        check("history_s", self.history_s, 0.0, 600.0)?;
        check("reid_window_s", self.reid_window_s, 0.0, 3600.0)?;
        check("reid_radius_m", self.reid_radius_m, 0.0, 100.0)?;
        self.lifecycle.validate()
    }
}

/// One point of a track's path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathPoint {
    /// Frame time, seconds.
    pub t: f64,
    /// Estimated position, metres.
    pub position: [f64; 2],
    /// The track's smoothed presence confidence then.
    pub confidence: f64,
}

/// One track, as the analytics stages see it.
#[derive(Debug, Clone)]
pub struct Track {
    /// Unique for the tracker's life, never reused; one continuous track.
    pub track_id: u64,
    /// The person: carried over from a recently ended track nearby (re-identification
    /// across a break), otherwise new. 0 while tentative.
    pub person_id: u64,
    /// Its lifecycle.
    pub life: Lifecycle,
    /// Its motion filter (position and velocity, metres).
    pub kf: Kalman,
    /// Presence confidence, smoothed over the track's detections.
    pub confidence: f64,
    /// Hit (true) or miss per frame over the last `history_s`.
    recent: VecDeque<(f64, bool)>,
    /// Its path over the last `history_s`.
    pub path: VecDeque<PathPoint>,
    /// This frame's detection, when one was matched.
    pub detection: Option<Detection>,
    /// Where the track started (for re-identification).
    start: [f64; 2],
}

impl Track {
    /// The lifecycle state.
    pub(crate) fn state(&self) -> TrackState {
        self.life.state
    }
    /// Estimated position, metres.
    pub fn position(&self) -> [f64; 2] {
        self.kf.position()
    }
    /// Estimated velocity, metres per second.
    pub(crate) fn velocity(&self) -> [f64; 2] {
        self.kf.velocity()
    }
    /// Estimated speed, metres per second.
    pub(crate) fn speed(&self) -> f64 {
        self.kf.speed()
    }
    /// Frame time of the first detection, seconds.
    pub(crate) fn first_seen(&self) -> f64 {
        self.life.first_hit
    }
    /// Share of recent frames with a detection.
    pub(crate) fn hit_ratio(&self) -> f64 {
        if self.recent.is_empty() {
            return 0.0;
        }
        self.recent.iter().filter(|r| r.1).count() as f64 / self.recent.len() as f64
    }
    /// Track quality in `[0, 1]`: the recent hit ratio times how well the position is
    /// known (1 at the measurement noise, falling as the filter coasts).
    pub fn quality(&self, meas_std_m: f64) -> f64 {
        let sharp = (meas_std_m / self.kf.position_std().max(meas_std_m)).clamp(0.0, 1.0);
        (self.hit_ratio() * sharp.sqrt()).clamp(0.0, 1.0)
    }
    /// Counted as a person in the room: confirmed, or lost but not walking out.
    pub fn is_active(&self) -> bool {
        matches!(self.life.state, TrackState::Confirmed | TrackState::Lost)
    }
    /// Head-to-feet extent of this frame's detection, metres.
    pub(crate) fn extension(&self, room: [f64; 2]) -> Option<f64> {
        self.detection.as_ref().and_then(|d| d.extension_m(room))
    }
    /// Activity class scores of this frame's detection, in [`crate::track::ACTIVITIES`] order.
    pub(crate) fn activity_scores(&self) -> Option<[f64; N_ACTIVITIES]> {
        self.detection.as_ref().map(|d| d.activity)
    }
}

/// The lifecycle changes reported in `tracking_update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackEventKind {
    /// The track confirmed: a new person.
    Started,
    /// The person went unseen.
    Lost,
    /// The person was seen again.
    Recovered,
    /// The person is gone.
    Ended,
}

impl TrackEventKind {
    /// The `event` field of `tracking_update`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrackEventKind::Started => "track_started",
            TrackEventKind::Lost => "track_lost",
            TrackEventKind::Recovered => "track_recovered",
            TrackEventKind::Ended => "track_ended",
        }
    }
}

/// A lifecycle change worth telling clients about.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackEvent {
    /// What happened.
    pub kind: TrackEventKind,
    /// Frame time, seconds.
    pub t: f64,
    /// The track.
    pub track_id: u64,
    /// The person (kept across re-identification).
    pub person_id: u64,
    /// Estimated position, metres.
    pub position: [f64; 2],
    /// Smoothed presence confidence.
    pub confidence: f64,
    /// Track quality in `[0, 1]` ([`Track::quality`]).
    pub quality: f64,
    /// Frame time of the track's first detection, seconds.
    pub first_detection: f64,
}

/// The multi-person tracker (see the module's description); one per environment.
#[derive(Debug, Clone)]
pub struct Tracker {
    /// Its settings.
    pub config: TrackerConfig,
    tracks: Vec<Track>,
    next_track_id: u64,
    next_person_id: u64,
    /// Ended confirmed tracks: (end time, last position, person_id).
    ended: VecDeque<(f64, [f64; 2], u64)>,
    last_t: Option<f64>,
    /// Valid detections above `min_score` seen so far.
    pub detections_seen: u64,
}

impl Tracker {
    /// A tracker with `config`, checked now.
    pub fn new(config: TrackerConfig) -> Result<Self, TrackError> {
        config.validate()?;
        Ok(Tracker {
            config,
            tracks: Vec::new(),
            next_track_id: 1,
            next_person_id: 1,
            ended: VecDeque::new(),
            last_t: None,
            detections_seen: 0,
        })
    }

    /// Every live track (tentative, confirmed, lost), in creation order.
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// The tracks counted as people (see [`Track::is_active`]).
    pub(crate) fn active(&self) -> impl Iterator<Item = &Track> {
        self.tracks.iter().filter(|t| t.is_active())
    }

    fn near_exit(&self, p: [f64; 2]) -> bool {
        let m = self.config.exit_margin_m;
        let [w, d] = self.config.room_size;
        p[0] < m || p[1] < m || p[0] > w - m || p[1] > d - m
    }

    fn event(&self, kind: TrackEventKind, t: f64, tr: &Track) -> TrackEvent {
        TrackEvent {
            kind,
            t,
            track_id: tr.track_id,
            person_id: tr.person_id,
            position: tr.position(),
            confidence: tr.confidence,
            quality: tr.quality(self.config.meas_std_m),
            first_detection: tr.first_seen(),
        }
    }

    /// One frame: the detections seen at time `t` (seconds). Frames must come in time
    /// order; a frame older than the last one, or a non-finite time, is ignored.
    /// Invalid detections and those below `min_score` are skipped.
    #[allow(clippy::needless_range_loop)]
    pub fn update(&mut self, t: f64, detections: &[Detection]) -> Vec<TrackEvent> {
        if !t.is_finite() || self.last_t.is_some_and(|l| t < l) {
            return Vec::new();
        }
        let dt = self.last_t.map_or(0.0, |l| t - l);
        self.last_t = Some(t);
        let cfg = self.config.clone();
        let room = cfg.room_size;
        let r = cfg.meas_std_m * cfg.meas_std_m;
        let dets: Vec<(&Detection, [f64; 2])> = detections
            .iter()
            .filter(|d| d.is_valid() && d.score >= cfg.min_score)
            .map(|d| (d, d.position_m(room)))
            .collect();
        self.detections_seen += dets.len() as u64;

        for tr in &mut self.tracks {
            tr.kf.predict(dt);
            tr.kf.confine(room);
            tr.detection = None;
        }
        // Cost: Mahalanobis distance; tentative tracks pay a premium so established
        // tracks win contested detections.
        let cost: Vec<Vec<f64>> = self
            .tracks
            .iter()
            .map(|tr| {
                dets.iter()
                    .map(|(_, z)| {
                        let p = tr.position();
                        let dist = (z[0] - p[0]).hypot(z[1] - p[1]);
                        let m2 = tr.kf.mahalanobis2(*z, r);
                        if dist > cfg.gate_max_m || m2 > cfg.gate_chi2 {
                            f64::INFINITY
                        } else if tr.state() == TrackState::Tentative {
                            m2 + cfg.gate_chi2
                        } else {
                            m2
                        }
                    })
                    .collect()
            })
            .collect();
        let pairs = assign(&cost, 2.0 * cfg.gate_chi2);
        let mut det_used = vec![false; dets.len()];
        let mut track_hit = vec![false; self.tracks.len()];
        for &(ti, di) in &pairs {
            det_used[di] = true;
            track_hit[ti] = true;
        }

        let mut events = Vec::new();
        for ti in 0..self.tracks.len() {
            let transition = if track_hit[ti] {
                let di = pairs.iter().find(|p| p.0 == ti).map(|p| p.1).unwrap_or(0);
                let (d, z) = dets[di];
                let tr = &mut self.tracks[ti];
                tr.kf.update(z, r);
                tr.kf.confine(room);
                tr.confidence = 0.8 * tr.confidence + 0.2 * d.score;
                tr.detection = Some(d.clone());
                tr.recent.push_back((t, true));
                tr.life.hit(t, &cfg.lifecycle)
            } else {
                let exit = self.near_exit(self.tracks[ti].position());
                let tr = &mut self.tracks[ti];
                tr.recent.push_back((t, false));
                tr.life.miss(t, &cfg.lifecycle, exit)
            };
            let tr = &mut self.tracks[ti];
            while tr.recent.front().is_some_and(|f| t - f.0 > cfg.history_s) {
                tr.recent.pop_front();
            }
            if track_hit[ti] {
                tr.path.push_back(PathPoint {
                    t,
                    position: tr.kf.position(),
                    confidence: tr.confidence,
                });
            }
            while tr.path.front().is_some_and(|f| t - f.t > cfg.history_s) {
                tr.path.pop_front();
            }
            match transition {
                Some(Transition::Started) => {
                    let start = self.tracks[ti].start;
                    let pid = self.reidentify(t, start);
                    self.tracks[ti].person_id = pid;
                    events.push(self.event(TrackEventKind::Started, t, &self.tracks[ti]));
                }
                Some(Transition::Lost) => {
                    events.push(self.event(TrackEventKind::Lost, t, &self.tracks[ti]))
                }
                Some(Transition::Recovered) => {
                    events.push(self.event(TrackEventKind::Recovered, t, &self.tracks[ti]))
                }
                Some(Transition::Ended) => {
                    let tr = &self.tracks[ti];
                    self.ended.push_back((t, tr.position(), tr.person_id));
                    events.push(self.event(TrackEventKind::Ended, t, tr));
                }
                Some(Transition::Dropped) | None => {}
            }
        }
        self.tracks.retain(|tr| tr.state() != TrackState::Ended);
        while self
            .ended
            .front()
            .is_some_and(|e| t - e.0 > cfg.reid_window_s)
        {
            self.ended.pop_front();
        }

        // New tentative tracks from unmatched detections that are not duplicates.
        for (di, (d, z)) in dets.iter().enumerate() {
            if det_used[di] {
                continue;
            }
            let dup = self.tracks.iter().any(|tr| {
                let p = tr.position();
                tr.is_active() && (z[0] - p[0]).hypot(z[1] - p[1]) < cfg.duplicate_radius_m
            });
            if dup {
                continue;
            }
            let mut recent = VecDeque::new();
            recent.push_back((t, true));
            let mut path = VecDeque::new();
            path.push_back(PathPoint {
                t,
                position: *z,
                confidence: d.score,
            });
            self.tracks.push(Track {
                track_id: self.next_track_id,
                person_id: 0,
                life: Lifecycle::new(t),
                kf: Kalman::new(*z, r, 1.0, cfg.accel_psd),
                confidence: d.score,
                recent,
                path,
                detection: Some((*d).clone()),
                start: *z,
            });
            self.next_track_id += 1;
            // A lifecycle that confirms on one hit.
            if cfg.lifecycle.confirm_hits <= 1 {
                if let Some(tr) = self.tracks.last_mut() {
                    tr.life.state = TrackState::Confirmed;
                }
                let pid = self.reidentify(t, *z);
                let n = self.tracks.len() - 1;
                self.tracks[n].person_id = pid;
                events.push(self.event(TrackEventKind::Started, t, &self.tracks[n]));
            }
        }
        events
    }

    /// The person_id for a track confirmed at `t` that started at `p`: the most recent
    /// ended person within the window and radius whose id is not in use, else a new one.
    fn reidentify(&mut self, t: f64, p: [f64; 2]) -> u64 {
        let cfg = &self.config;
        let in_use: Vec<u64> = self.tracks.iter().map(|tr| tr.person_id).collect();
        let found = self
            .ended
            .iter()
            .enumerate()
            .rev()
            .find(|(_, e)| {
                t - e.0 <= cfg.reid_window_s
                    && (e.1[0] - p[0]).hypot(e.1[1] - p[1]) <= cfg.reid_radius_m
                    && !in_use.contains(&e.2)
            })
            .map(|(i, e)| (i, e.2));
        if let Some((i, pid)) = found {
            self.ended.remove(i);
            return pid;
        }
        let pid = self.next_person_id;
        self.next_person_id += 1;
        pid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::detection::N_KEYPOINTS;

    fn det_at(x: f64, y: f64) -> Detection {
        let (u, v) = (x / 6.0, y / 5.0);
        Detection {
            keypoints: [[u, v, 0.9]; N_KEYPOINTS],
            bbox: [u - 0.02, v - 0.02, u + 0.02, v + 0.02],
            score: 0.9,
            activity: [0.2; 5],
            dense: None,
        }
    }

    #[test]
    fn two_crossing_people_keep_their_ids_and_ghosts_never_start() {
        let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
        let mut started = Vec::new();
        let dt = 0.05;
        for n in 0..200 {
            let t = n as f64 * dt;
            // A walks right along y=2.4, B walks left along y=2.6 (both inside the 6 m
            // room throughout): they pass at t=4.
            let a = [1.0 + 0.5 * t, 2.4];
            let b = [5.0 - 0.5 * t, 2.6];
            let mut dets = vec![det_at(a[0], a[1]), det_at(b[0], b[1])];
            if n % 7 == 3 {
                dets.remove(0); // a missed frame now and then
            }
            if n % 11 == 5 {
                dets.push(det_at(0.5 + (n % 5) as f64, 4.5)); // one-frame ghosts
            }
            for e in tr.update(t, &dets) {
                if e.kind == TrackEventKind::Started {
                    started.push(e.track_id);
                }
                assert_ne!(e.kind, TrackEventKind::Ended, "{e:?}");
            }
            if n > 10 {
                let active: Vec<_> = tr.active().collect();
                assert_eq!(
                    active.len(),
                    2,
                    "frame {n} {:?}",
                    tr.tracks()
                        .iter()
                        .map(|x| (x.track_id, x.state(), x.position()))
                        .collect::<Vec<_>>()
                );
                // Track 1 is A (the first detection of the first frame).
                let ta = active.iter().find(|x| x.track_id == 1).unwrap();
                assert!(
                    (ta.position()[0] - a[0]).abs() < 0.3,
                    "frame {n} {:?} {:?} {:?}",
                    ta.position(),
                    a,
                    started
                );
                assert!((ta.position()[1] - 2.4).abs() < 0.15, "frame {n}");
            }
        }
        assert_eq!(started.len(), 2);
        let v = tr.active().next().unwrap().velocity();
        assert!((v[0].abs() - 0.5).abs() < 0.15, "{v:?}");
    }

    #[test]
    fn person_leaving_ends_quickly_and_returning_keeps_person_id() {
        let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
        let mut log = Vec::new();
        for n in 0..400 {
            let t = n as f64 * 0.05;
            let dets = if (100..140).contains(&n) {
                vec![] // unseen for 2 s in the middle of the room
            } else {
                vec![det_at(3.0, 2.5)]
            };
            log.extend(tr.update(t, &dets));
        }
        let kinds: Vec<_> = log.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![
                TrackEventKind::Started,
                TrackEventKind::Lost,
                TrackEventKind::Recovered
            ]
        );
        // Walking out at the wall: ended within a second of the last sighting.
        let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
        let mut ended_at = None;
        for n in 0..200 {
            let t = n as f64 * 0.05;
            let dets = if n < 100 {
                vec![det_at(5.8, 2.5)]
            } else {
                vec![]
            };
            for e in tr.update(t, &dets) {
                if e.kind == TrackEventKind::Ended {
                    ended_at = Some(t);
                }
            }
        }
        let e = ended_at.expect("ended");
        assert!(e > 4.95 && e < 5.8, "{e}");
        // Coming back in at the same place within the window: same person, new track.
        let mut ids = Vec::new();
        for n in 200..300 {
            let t = n as f64 * 0.05;
            for e in tr.update(t, &[det_at(5.7, 2.5)]) {
                ids.push((e.track_id, e.person_id));
            }
        }
        assert_eq!(ids, vec![(2, 1)]);
    }

    #[test]
    fn a_track_coasting_toward_a_wall_stays_in_the_room() {
        let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
        // Walking fast toward the x = 6 wall, then no more detections.
        for i in 0..20 {
            let t = i as f64 * 0.1;
            tr.update(t, &[det_at(4.0 + 1.5 * t, 2.5)]);
        }
        let mut seen = Vec::new();
        for i in 20..60 {
            for e in tr.update(i as f64 * 0.1, &[]) {
                seen.push(e.position);
            }
            seen.extend(tr.tracks().iter().map(Track::position));
        }
        assert!(!seen.is_empty());
        for p in seen {
            assert!(
                (0.0..=6.0).contains(&p[0]) && (0.0..=5.0).contains(&p[1]),
                "{p:?}"
            );
        }
    }

    #[test]
    fn bad_input_is_ignored() {
        let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
        let mut d = det_at(1.0, 1.0);
        d.keypoints[0][0] = f64::NAN;
        assert!(tr.update(0.0, &[d]).is_empty());
        assert!(tr.tracks().is_empty());
        assert!(tr.update(f64::NAN, &[det_at(1.0, 1.0)]).is_empty());
        tr.update(1.0, &[det_at(1.0, 1.0)]);
        assert!(tr.update(0.5, &[det_at(1.0, 1.0)]).is_empty()); // out of order
        assert_eq!(tr.tracks().len(), 1);
        assert!(Tracker::new(TrackerConfig {
            room_size: [0.0, 5.0],
            ..Default::default()
        })
        .is_err());
    }
}
