//! Multi-person tracking over the pose model's detections.
//!
//! Data flow: the model gives, per frame, a list of [`Detection`]s (17 keypoints, a
//! box, a presence score and activity scores in the top-down unit square). The
//! [`Tracker`] converts each to a floor position in metres, predicts every track to the
//! frame time with its constant-velocity [`kalman::Kalman`] filter, associates
//! detections to tracks with a gated minimum-cost assignment ([`hungarian::assign`] on
//! the Mahalanobis distance, gated at chi-square 99.9 % and 1.2 m), updates the matched
//! tracks, and steps every track's [`lifecycle`] (tentative, confirmed, lost, ended).
//! Unmatched detections start tentative tracks. Lifecycle changes come out as
//! [`TrackEvent`]s (`track_started`, `track_lost`, `track_recovered`, `track_ended`); the
//! tracks themselves ([`Tracker::tracks`]) carry position, velocity, path, confidence,
//! quality and this frame's detection, which [`crate::analytics`] reads.
//!
//! Identity: `track_id` names one continuous track and is never reused. `person_id`
//! names the person as the room sees them: a track confirmed within `reid_window_s`
//! (10 s) and `reid_radius_m` (1 m) of where a confirmed track ended inherits that
//! track's `person_id` (someone missed for longer than the track could coast, or who
//! stepped out of the door and back); otherwise it gets a new one. There is no
//! appearance model, so two people who swap places while unseen can swap `person_id`s.
//!
//! [`synth`] makes detections from the simulator's ground truth with a seeded error
//! model, for tests and the evaluation (`examples/analytics_eval.rs`).

pub mod detection;
pub mod error;
pub mod hungarian;
pub mod kalman;
pub mod lifecycle;
pub mod synth;
pub mod tracker;

pub use detection::{Detection, ACTIVITIES, N_ACTIVITIES, N_KEYPOINTS};
pub use error::TrackError;
pub use lifecycle::{LifecycleConfig, TrackState};
pub use tracker::{PathPoint, Track, TrackEvent, TrackEventKind, Tracker, TrackerConfig};
