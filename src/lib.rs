//! WiFi-DensePose: WiFi channel state information (CSI) in, live human pose, tracks,
//! activities and occupancy out, streamed over a WebSocket API.
//!
//! The stages, in data-flow order (see `docs/architecture.md`):
//! - [`csi`]: one [`csi::CsiFrame`] type, readers for every recording format, live sources.
//! - [`dsp`]: conditioning that turns raw frames into features a model can use.
//! - [`pipeline`]: environments (one task per room) and the sources that feed them.
//! - [`sim`]: a physical CSI simulator with ground truth.
//! - [`sensing`]: motion, presence and breathing from the channel itself, any device.
//! - [`model`]: inference through ONNX Runtime.
//! - [`track`]: multi-person tracking.
//! - [`analytics`]: activity, falls, occupancy, windowed metrics.
//! - [`events`]: the event vocabulary the stages speak, below them and the server.
//! - [`server`]: the event bus and the WebSocket API server; it knows no stage.
//! - [`app`]: the application layer: the server and the stages composed into a running
//!   node (environments, their sources, the model).
//!
//! The pyo3 bindings live in `python` (feature `python`) and only convert and delegate.

// Every public item is documented (issue 16); CI's `-D warnings` (clippy, rustdoc) makes
// the lint binding.
#![warn(missing_docs)]

pub mod analytics;
pub mod app;
pub mod csi;
pub mod dsp;
pub mod events;
pub mod model;
pub mod pipeline;
pub mod sensing;
pub mod server;
pub mod sim;
pub mod track;

#[cfg(feature = "python")]
mod python;
