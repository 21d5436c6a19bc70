//! Environments and the sources that feed them.
//!
//! Each environment (a room) is one tokio task that receives [`CsiFrame`]s from any number
//! of sources: frames injected by a caller, a recording replayed at real time or N×
//! speed, ESP32 nodes streaming over UDP. The task keeps per-source health (sequence gaps,
//! reordering, stalls) and reports it as `hardware_event`s; the server's monitor reports
//! measured `performance_update`s. The later stages of the data flow (condition, infer,
//! track, analyse) plug in where `Environment::on_frame` hands the frame on.
//!
//! [`CsiFrame`]: crate::csi::CsiFrame

mod analysis;
mod environment;
mod monitor;
mod replay;
mod sequence;
mod settings;
mod simulate;
mod udp;

pub use environment::{
    unix_now, EnvironmentHandle, EnvironmentStats, Input, Oracle, SourceStats, ORACLE_MODEL,
};
pub use monitor::{spawn_monitor, MonitorSource, ProcessSample};
pub use replay::{spawn_replay, ReplayProgress};
pub use sequence::SequenceTracker;
pub use settings::{RuntimeSettings, SharedSettings, SETTINGS};
pub use simulate::spawn_simulation;
pub use udp::{spawn_udp, UdpStats};
