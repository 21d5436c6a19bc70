//! Environments and the sources that feed them.
//!
//! Each environment (a room) is one tokio task that receives [`CsiFrame`]s from any number
//! of sources: frames injected by a caller, a recording replayed at real time or N×
//! speed, ESP32 nodes streaming over UDP or printing
//! `CSI_DATA` lines on a serial port. The task keeps per-source health (sequence gaps,
//! reordering, stalls) and reports it as `hardware_event`s; the server's monitor reports
//! measured `performance_update`s. The later stages of the data flow (condition, infer,
//! track, analyse) follow: [`windows`] conditions frames into model windows, the shared
//! inference worker ([`InferenceService`]) batches the windows of every environment due
//! at once, and each environment's analysis stage tracks the detections that come back.
//! Without a model, an environment reports sources and rates only; a simulator in oracle
//! mode feeds detections from its ground truth instead. [`offline`] runs the same
//! environment over a recording as fast as it goes and collects its events
//! (`wifi_densepose.analyze`).
//!
//! [`CsiFrame`]: crate::csi::CsiFrame

mod analysis;
mod clocks;
mod environment;
pub mod geometry;
mod health;
mod inference;
mod model_stage;
mod monitor;
pub mod offline;
pub mod placing;
mod replay;
mod sequence;
mod serial;
mod settings;
mod simulate;
mod udp;
pub mod windows;

pub use environment::{
    unix_now, EnvironmentContext, EnvironmentHandle, EnvironmentStats, Input, Oracle, PlacingStats,
    SourceStats, DEFAULT_ROOM, ORACLE_MODEL,
};
pub use health::{EnvironmentTick, ModelTick};
pub use inference::InferenceService;
pub use model_stage::{ModelSlot, ModelStats};
pub use monitor::{spawn_monitor, InferenceTotals, MonitorSource};
pub use offline::{
    analyze, analyze_tagged, OfflineError, OfflineFrame, OfflineOptions, OFFLINE_ENVIRONMENT,
};
pub use replay::{spawn_replay, ReplayProgress};
pub use sequence::SequenceTracker;
pub use serial::{spawn_serial, SerialError, SerialHandle, SerialStats};
pub use settings::{RuntimeSettings, SharedSettings, SETTINGS};
pub use simulate::spawn_simulation;
pub use udp::{normalize_mac, spawn_udp, Route, UdpRoutes, UdpStats};
