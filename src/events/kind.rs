//! The event types, and the delivery class each belongs to.
//!
//! One place defines every event a client can subscribe to: its wire name, the aliases
//! accepted for it, and how it is delivered when a client falls behind. The stages name
//! what they produce with it; the server decides delivery from it.
/// Every event type a client can subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// People's poses in one frame (`pose_data`).
    PoseData,
    /// Recent pose history of the tracks (`pose_data_trajectory`).
    PoseDataTrajectory,
    /// A track started, ended or changed identity (`tracking_update`).
    TrackingUpdate,
    /// The server's or an environment's state changed (`system_event`).
    SystemEvent,
    /// A source connected, stopped, lost packets… (`hardware_event`).
    HardwareEvent,
    /// An activity or a fall was detected (`activity_event`).
    ActivityEvent,
    /// How many people are in a room or zone (`occupancy_update`).
    OccupancyUpdate,
    /// The node's measured throughput and latency (`performance_update`).
    PerformanceUpdate,
    /// Run-time settings changed (`config_update`).
    ConfigUpdate,
    /// Windowed analytics of a room (`analytics_stream`).
    AnalyticsStream,
}

/// How an event type behaves when a client cannot keep up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Frames: throttled to `max_fps`, and the oldest waiting frame is dropped (and counted)
    /// when more than `buffer_size` wait.
    Frames,
    /// Rate-limited streams (system and analytics): at most `per_minute` delivered, at most
    /// `buffer` waiting; past either, events are dropped and counted.
    Limited {
        /// The most delivered per minute.
        per_minute: u32,
        /// The most waiting per client.
        buffer: usize,
    },
    /// Alerts are never dropped: a client that cannot keep up is disconnected with reason
    /// `slow_consumer` and can resume from its last sequence.
    Alert,
}

impl EventType {
    /// Every event type, in the order the spec lists them.
    pub const ALL: [EventType; 10] = [
        EventType::PoseData,
        EventType::PoseDataTrajectory,
        EventType::TrackingUpdate,
        EventType::SystemEvent,
        EventType::HardwareEvent,
        EventType::ActivityEvent,
        EventType::OccupancyUpdate,
        EventType::PerformanceUpdate,
        EventType::ConfigUpdate,
        EventType::AnalyticsStream,
    ];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PoseData => "pose_data",
            EventType::PoseDataTrajectory => "pose_data_trajectory",
            EventType::TrackingUpdate => "tracking_update",
            EventType::SystemEvent => "system_event",
            EventType::HardwareEvent => "hardware_event",
            EventType::ActivityEvent => "activity_event",
            EventType::OccupancyUpdate => "occupancy_update",
            EventType::PerformanceUpdate => "performance_update",
            EventType::ConfigUpdate => "config_update",
            EventType::AnalyticsStream => "analytics_stream",
        }
    }

    /// Parses a wire name. `analytics_update` (the spec's message table) is an alias of
    /// `analytics_stream` (the spec's example); the server always sends `analytics_stream`.
    pub fn parse(name: &str) -> Option<EventType> {
        if name == "analytics_update" {
            return Some(EventType::AnalyticsStream);
        }
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// How events of this type are delivered to a client that falls behind.
    pub fn delivery(self) -> Delivery {
        match self {
            EventType::PoseData | EventType::PoseDataTrajectory => Delivery::Frames,
            EventType::ActivityEvent | EventType::OccupancyUpdate | EventType::TrackingUpdate => {
                Delivery::Alert
            }
            EventType::SystemEvent
            | EventType::HardwareEvent
            | EventType::ConfigUpdate
            | EventType::PerformanceUpdate => Delivery::Limited {
                per_minute: 100,
                buffer: 10,
            },
            EventType::AnalyticsStream => Delivery::Limited {
                per_minute: 60,
                buffer: 5,
            },
        }
    }

    /// Whether events of this type belong to one environment (and so honour the
    /// `environment_id` filter and the token's environment grant).
    pub fn is_per_environment(self) -> bool {
        !matches!(self, EventType::PerformanceUpdate | EventType::ConfigUpdate)
    }

    /// Whether this is `pose_data` (the frames a subscription's pose view shapes).
    pub fn is_pose(self) -> bool {
        matches!(self, EventType::PoseData)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_and_alias_parses() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(
            EventType::parse("analytics_update"),
            Some(EventType::AnalyticsStream)
        );
        assert_eq!(EventType::parse("pose"), None);
    }
}
