//! A physical CSI simulator with exact ground truth.
//!
//! In the data flow it stands beside [`crate::csi`]: a source. A [`Simulator`] yields
//! the same [`crate::csi::CsiFrame`] as the readers (format `Simulated`), so DSP,
//! inference, tracking and analytics run on it unchanged, and next to every frame a
//! [`truth::FrameTruth`] with what really happened: 3-D keypoints, their top-down
//! projection, boxes, dense-pose labels, activities, falls and occupancy. It feeds
//! training (the batch generator, [`Simulator::generate`]), tests of tracking and fall
//! detection against truth, and the demo on a laptop without a WiFi card.
//!
//! The physics, in order: a [`room`] with first-order reflections by the image method;
//! a [`device`] profile (carrier, subcarriers, antenna arrays); people as COCO
//! [`skeleton`]s with limb capsules, moved by [`motion`] scripts; the [`channel`] path
//! sum, where every path's length gives its phase on every subcarrier (Doppler and
//! multipath follow from the geometry); hardware [`impairments`]; [`scenario`]
//! descriptions (serde/JSON, named scenarios); [`truth`] labels; [`dataset`] assembly.
//! All randomness comes from the seed. See `docs/simulator.md` for the model, its
//! assumptions and limits.

pub mod channel;
pub mod dataset;
pub mod device;
pub mod error;
pub mod events;
pub mod geom;
pub mod impairments;
pub mod micro;
pub mod motion;
pub mod room;
pub mod scenario;
pub mod skeleton;
pub mod truth;

pub use dataset::{BatchOptions, Dataset, Frames, Simulator};
pub use error::SimError;
pub use scenario::{build_spec, Spec, SCENARIO_NAMES};
