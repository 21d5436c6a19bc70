//! The event vocabulary every stage speaks, below the stages and the server.
//!
//! In: what a stage has to say (a pose frame, a fall, a source that stopped). Out: an
//! [`Event`] handed to a [`Publisher`]. The stages (`pipeline`, `analytics`) depend on this
//! module only; the WebSocket server implements [`EventSink`] (serializing once, fanning
//! out to sessions), and so can anything else that wants a pipeline's events — a test, or
//! `wifi_densepose.analyze`, which collects them in order ([`Collector`]).
//!
//! Guarantees: an [`Event`] always names its environment in `data.environment_id` when it
//! has one, so every consumer sees which room it is about.

mod kind;
mod time;

use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;

pub use kind::{Delivery, EventType};
pub use time::{now_rfc3339, rfc3339, rfc3339_from_unix};

/// One event as a stage produced it: its type, its environment and its `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What kind of event it is.
    pub event_type: EventType,
    /// The room it is about (None: about the node).
    pub environment_id: Option<String>,
    /// The message's `data` object.
    pub data: Value,
}

impl Event {
    /// Builds an event. `environment_id` is written into `data` when `data` lacks it, so
    /// the wire always says which room an event is about; an event without one takes the
    /// one `data` names, if any.
    pub fn new(event_type: EventType, mut data: Value, environment_id: Option<String>) -> Self {
        let environment_id = environment_id.or_else(|| {
            data.get("environment_id")
                .and_then(Value::as_str)
                .map(String::from)
        });
        if let (Some(env), Some(obj)) = (&environment_id, data.as_object_mut()) {
            obj.entry("environment_id")
                .or_insert_with(|| Value::from(env.clone()));
        }
        Event {
            event_type,
            environment_id,
            data,
        }
    }
}

/// Where a stage's events go.
pub trait EventSink: Send + Sync {
    /// Takes one event; must not block for long (stages call it on their tasks).
    fn publish(&self, event: Event);
}

/// The handle stages hold: cheap to clone, shared by every source and stage of a server.
pub type Publisher = Arc<dyn EventSink>;

/// An [`EventSink`] that keeps every event in order, each with the time it was published
/// (RFC 3339). `analyze` uses it to return what the server would have published.
#[derive(Default)]
pub struct Collector {
    events: Mutex<Vec<(String, Event)>>,
}

impl Collector {
    /// An empty collector, shared.
    pub fn new() -> Arc<Self> {
        Arc::new(Collector::default())
    }

    /// Takes every event collected so far, oldest first.
    pub fn take(&self) -> Vec<(String, Event)> {
        std::mem::take(&mut *self.events.lock())
    }

    /// Events collected and not yet taken.
    pub fn len(&self) -> usize {
        self.events.lock().len()
    }

    /// Whether no event waits to be taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl EventSink for Collector {
    fn publish(&self, event: Event) {
        self.events.lock().push((now_rfc3339(), event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn environment_is_written_into_data_and_read_back_from_it() {
        let e = Event::new(
            EventType::SystemEvent,
            json!({"event": "x"}),
            Some("a".into()),
        );
        assert_eq!(e.data["environment_id"], "a");
        let e = Event::new(EventType::SystemEvent, json!({"environment_id": "b"}), None);
        assert_eq!(e.environment_id.as_deref(), Some("b"));
        let e = Event::new(EventType::PerformanceUpdate, json!({}), None);
        assert_eq!(e.environment_id, None);
        assert_eq!(e.data, json!({}));
    }

    #[test]
    fn collector_keeps_publish_order() {
        let c = Collector::new();
        let sink: Publisher = c.clone();
        for i in 0..3 {
            sink.publish(Event::new(EventType::PoseData, json!({"i": i}), None));
        }
        let got: Vec<i64> = c
            .take()
            .iter()
            .map(|(_, e)| e.data["i"].as_i64().unwrap())
            .collect();
        assert_eq!(got, vec![0, 1, 2]);
        assert!(c.is_empty());
    }
}
