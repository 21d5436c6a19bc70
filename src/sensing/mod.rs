//! Sensing people from the channel itself, on any device: motion, presence (moving or
//! breathing) and breathing rate, with no model and no training.
//!
//! In: an environment's CSI frames, any antenna layout (1x1 ESP32 and Nexmon, 2- and
//! 3-antenna cards). Out: a [`SensingState`] per frame that the pipeline puts in every
//! `pose_data` (`metadata.motion_level`, `motion_detected`, `presence`...) and uses to
//! decide whether anyone is in the room at all. Stateful per environment; cheap (a few
//! hundred multiplications a packet, one small FFT batch every half second).
//!
//! [`chains`] takes out the receive chains' quarter-turn phase steps some cards make, and
//! [`gains`] the gain steps of others;
//! [`features`] turns each packet into values in which the card's per-packet offsets
//! cancel; [`sensor`] measures change against the noise measured in the same packets
//! (its motion ratios in `motion`);
//! [`localizer`] places what moves on the floor, its map computed eight frames at a time
//! by [`frame_block`].

pub mod background;
pub mod bank;
pub mod breathing_line;
pub mod chains;
pub mod features;
pub mod frame_block;
pub mod gains;
pub mod localizer;
mod motion;
pub mod sensor;
pub mod window_features;

pub use bank::SensorBank;
pub use chains::ChainAligner;
pub use features::{FeatureLayout, FeatureMode};
pub use localizer::{
    fused_log_map, Fix, LinkGeometry, Lobe, Localizer, LocalizerConfig, MapTracker, MultiLocalizer,
};
pub use sensor::{Band, Calibration, CalibrationOutcome, SensingState, Sensor, SensorConfig};
pub use window_features::WindowFeatures;
