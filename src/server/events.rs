//! The server's view of the event vocabulary: the types live below the stages
//! ([`crate::events`]); the pose quality presets are the server's own.
pub use crate::events::{Delivery, EventType};

/// The pose data presets of the spec's data-rate table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quality {
    Low,
    High,
}

impl Quality {
    pub fn parse(s: &str) -> Option<Quality> {
        match s {
            "low" => Some(Quality::Low),
            "high" => Some(Quality::High),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Low => "low",
            Quality::High => "high",
        }
    }
    /// (max frames per second, buffer size in frames)
    pub fn preset(self) -> (f64, usize) {
        match self {
            Quality::Low => (10.0, 5),
            Quality::High => (30.0, 1),
        }
    }
}

/// The highest frame rate any pose subscription may ask for (the high-quality preset).
pub const MAX_POSE_FPS: f64 = 30.0;
