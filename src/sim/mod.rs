//! A physical CSI simulator with exact ground truth.
pub mod channel;
pub mod device;
pub mod error;
pub mod geom;
pub mod motion;
pub mod room;
pub mod skeleton;
