//! The event bus: an event is serialized once per distinct view and its bytes are shared
//! by every session that receives it.
//!
//! The pipeline (or `Server.publish`) hands an [`Event`] to [`Bus::publish`]; the bus
//! offers it to every session's subscriptions (see `session_state.rs`) and to the Python
//! callback queue. The per-connection part of the envelope (`metadata.client_id`,
//! `metadata.sequence`) is appended by each session's writer to the shared prefix, so no
//! session ever re-serializes an event.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::{Mutex, RwLock};
use serde_json::Value;

use super::broker::StreamId;
use super::envelope::now_rfc3339;
use super::events::{Delivery, EventType};
use super::session_state::{CloseReason, Offered, SessionShared};
use super::subscription::PoseView;

/// One event on its way to clients.
pub struct Event {
    pub event_type: EventType,
    pub environment_id: Option<Arc<str>>,
    pub timestamp: String,
    pub data: Value,
    /// Fields the filters look at, read once from `data` at publish.
    pub confidence: Option<f64>,
    pub severity: Option<String>,
    /// `data.event_type` or `data.event`: what the `event_types` filter matches.
    pub kind: Option<String>,
    pub published_at: Instant,
    /// The event's id in its environment's broker stream, when it came through a broker
    /// (`metadata.event_id` on the wire; a resume position on any node). None in-process.
    pub stream_id: Option<StreamId>,
    full: OnceLock<Bytes>,
    views: Mutex<Vec<(PoseView, Bytes)>>,
}

impl From<crate::events::Event> for Event {
    fn from(e: crate::events::Event) -> Self {
        Event::new(e.event_type, e.data, e.environment_id)
    }
}

impl Event {
    /// Builds an event. `environment_id` is written into `data` when `data` lacks it, so
    /// the wire always says which room an event is about.
    pub fn new(event_type: EventType, data: Value, environment_id: Option<String>) -> Self {
        // The stages' event fills in the environment the same way (one rule, in events/).
        let crate::events::Event {
            data,
            environment_id,
            ..
        } = crate::events::Event::new(event_type, data, environment_id);
        let confidence = data.get("confidence").and_then(Value::as_f64);
        let severity = data
            .get("severity")
            .and_then(Value::as_str)
            .map(String::from);
        let kind = data
            .get("event_type")
            .or_else(|| data.get("event"))
            .and_then(Value::as_str)
            .map(String::from);
        Event {
            event_type,
            environment_id: environment_id.map(Arc::from),
            timestamp: now_rfc3339(),
            data,
            confidence,
            severity,
            kind,
            published_at: Instant::now(),
            stream_id: None,
            full: OnceLock::new(),
            views: Mutex::new(Vec::new()),
        }
    }

    /// The envelope up to and including `"metadata":{`, for the given view. Built at most
    /// once per view and shared.
    pub fn prefix(&self, view: PoseView) -> Bytes {
        if view == PoseView::FULL || !self.event_type.is_pose() {
            return self.full.get_or_init(|| self.serialize(&self.data)).clone();
        }
        let mut views = self.views.lock();
        if let Some((_, b)) = views.iter().find(|(v, _)| *v == view) {
            return b.clone();
        }
        let bytes = self.serialize(&apply_pose_view(&self.data, view));
        views.push((view, bytes.clone()));
        bytes
    }

    fn serialize(&self, data: &Value) -> Bytes {
        let mut out = BytesMut::with_capacity(256).writer();
        out.get_mut().extend_from_slice(b"{\"type\":\"");
        out.get_mut()
            .extend_from_slice(self.event_type.as_str().as_bytes());
        out.get_mut().extend_from_slice(b"\",\"timestamp\":\"");
        out.get_mut().extend_from_slice(self.timestamp.as_bytes());
        out.get_mut().extend_from_slice(b"\",\"data\":");
        serde_json::to_writer(&mut out, data).expect("a serde_json::Value always serializes");
        out.get_mut().extend_from_slice(b",\"metadata\":{");
        if let Some(id) = self.stream_id {
            // Every writer appends `"client_id":...` next, so the comma is always followed.
            use std::io::Write as _;
            let _ = write!(out, "\"event_id\":\"{id}\",");
        }
        out.into_inner().freeze()
    }
}

/// Removes what a pose subscription did not ask for: persons under `min_confidence`,
/// and keypoints, dense pose and velocity unless included.
fn apply_pose_view(data: &Value, view: PoseView) -> Value {
    let mut data = data.clone();
    let min = view.min_confidence();
    if let Some(persons) = data.get_mut("persons").and_then(Value::as_array_mut) {
        persons.retain(|p| p.get("confidence").and_then(Value::as_f64).unwrap_or(1.0) >= min);
        for p in persons.iter_mut().filter_map(Value::as_object_mut) {
            if !view.keypoints {
                p.remove("keypoints");
            }
            if !view.dense_pose {
                p.remove("dense_pose");
            }
            if !view.velocity {
                p.remove("velocity");
                if let Some(a) = p.get_mut("activity").and_then(Value::as_object_mut) {
                    a.remove("velocity");
                }
            }
        }
    }
    data
}

/// An event type a Python callback listens to, and the queue it is fed through.
pub type CallbackSink = std::sync::mpsc::SyncSender<(EventType, Arc<Event>)>;

/// Counters the bus keeps for /metrics.
#[derive(Default)]
pub struct BusCounters {
    pub published: AtomicU64,
    pub callback_dropped: AtomicU64,
    /// Pose frames and limited events dropped for slow clients (`buffer_size`).
    pub frames_dropped: AtomicU64,
    pub limited_dropped: AtomicU64,
    /// Events held back by a subscription's throttle.
    pub throttled: AtomicU64,
    /// Panics caught while offering an event to a session (each closed that session).
    pub offer_panics: AtomicU64,
}

/// The sessions and the callback queue that events fan out to.
pub struct Bus {
    sessions: RwLock<Vec<Arc<SessionShared>>>,
    callbacks: RwLock<Option<(Vec<EventType>, CallbackSink)>>,
    pub counters: BusCounters,
}

impl Default for Bus {
    fn default() -> Self {
        Bus {
            sessions: RwLock::new(Vec::new()),
            callbacks: RwLock::new(None),
            counters: BusCounters::default(),
        }
    }
}

impl Bus {
    pub fn publish(&self, event: Event) -> Arc<Event> {
        let event = Arc::new(event);
        self.counters.published.fetch_add(1, Ordering::Relaxed);
        // Tallied per event, added once: not one shared counter touched per client.
        let (mut throttled, mut frames, mut limited) = (0, 0, 0);
        for session in self.sessions.read().iter() {
            // A bug met while delivering to one session must not unwind into the thread
            // that publishes (an environment's pipeline, the UDP listener, Python's
            // `publish`): that session is closed, every other one still gets the event.
            let offered =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session.offer(&event)));
            match offered {
                Ok(Offered::Throttled) => throttled += 1,
                Ok(Offered::QueuedDropping(Delivery::Frames)) => frames += 1,
                Ok(Offered::QueuedDropping(_)) => limited += 1,
                Ok(Offered::Skipped | Offered::Queued) => {}
                Err(_) => {
                    self.counters.offer_panics.fetch_add(1, Ordering::Relaxed);
                    // The state lock is released by the unwind (parking_lot does not
                    // poison); the writer ends the connection.
                    session.close(CloseReason::InternalError);
                }
            }
        }
        for (counter, n) in [
            (&self.counters.throttled, throttled),
            (&self.counters.frames_dropped, frames),
            (&self.counters.limited_dropped, limited),
        ] {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
        if let Some((types, sink)) = &*self.callbacks.read() {
            if types.contains(&event.event_type)
                && sink.try_send((event.event_type, event.clone())).is_err()
            {
                self.counters
                    .callback_dropped
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        event
    }

    /// Runs `f` while no event is being fanned out: publishes in progress finish first,
    /// new ones wait. `f` must not call the bus's other methods (they would deadlock).
    pub fn quiesced<R>(&self, f: impl FnOnce() -> R) -> R {
        let _sessions = self.sessions.write();
        f()
    }

    pub fn add_session(&self, s: Arc<SessionShared>) {
        self.sessions.write().push(s);
    }

    pub fn remove_session(&self, id: u64) {
        self.sessions.write().retain(|s| s.id != id);
    }

    pub fn find_session(&self, session_id: &str) -> Option<Arc<SessionShared>> {
        self.sessions
            .read()
            .iter()
            .find(|s| s.state.lock().session_id == session_id)
            .cloned()
    }

    pub fn sessions(&self) -> Vec<Arc<SessionShared>> {
        self.sessions.read().clone()
    }

    pub fn set_callbacks(&self, types: Vec<EventType>, sink: Option<CallbackSink>) {
        *self.callbacks.write() = sink.map(|s| (types, s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pose() -> Event {
        Event::new(
            EventType::PoseData,
            json!({"frame_id": 1, "persons": [
                {"person_id": 1, "confidence": 0.9, "keypoints": [1], "dense_pose": [2],
                 "activity": {"type": "walking", "velocity": {"x": 1}}},
                {"person_id": 2, "confidence": 0.3}]}),
            Some("room_001".into()),
        )
    }

    #[test]
    fn one_serialization_is_shared_by_every_receiver() {
        let ev = pose();
        let a = ev.prefix(PoseView::FULL);
        let b = ev.prefix(PoseView::FULL);
        assert_eq!(a.as_ptr(), b.as_ptr(), "the same bytes, not a copy");
        let view = PoseView {
            min_confidence_bits: 0.5f64.to_bits(),
            keypoints: false,
            dense_pose: false,
            velocity: false,
        };
        let c = ev.prefix(view);
        let d = ev.prefix(view);
        assert_eq!(c.as_ptr(), d.as_ptr(), "each distinct view is built once");
        assert_ne!(a.as_ptr(), c.as_ptr());
    }

    fn session_with(spec: Value) -> Arc<SessionShared> {
        let identity = super::super::auth::Identity {
            subject: "s".into(),
            expires_at: u64::MAX,
            environments: super::super::auth::EnvironmentGrant::All,
        };
        let session = SessionShared::new(
            "c".into(),
            &identity,
            super::super::subscription::AppCompression::None,
            256,
            1024,
            1 << 20,
        );
        let sub = super::super::subscription::Subscription::parse(
            "sub_1".into(),
            &spec,
            &super::super::auth::EnvironmentGrant::All,
        )
        .unwrap();
        session
            .state
            .lock()
            .subscriptions
            .push((1, Arc::from("sub_1"), sub));
        session
    }

    #[test]
    fn a_panic_delivering_to_one_session_hurts_that_session_only() {
        let bus = Bus::default();
        let broken = session_with(json!({"event_type": "system_event"}));
        broken.state.lock().panic_on_offer = true;
        let bystander = session_with(json!({"event_type": "system_event"}));
        bus.add_session(broken.clone());
        bus.add_session(bystander.clone());
        // Before the fix this unwound into the publishing thread.
        bus.publish(Event::new(
            EventType::SystemEvent,
            json!({"event": "x"}),
            None,
        ));
        assert_eq!(
            bystander.state.lock().queue.len(),
            1,
            "the bystander got it"
        );
        assert_eq!(
            broken.state.lock().closing,
            Some(CloseReason::InternalError)
        );
        assert_eq!(bus.counters.offer_panics.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_throttle_outside_the_validated_range_never_panics() {
        // max_fps 1e-300 made `Duration::from_secs_f64(1 / fps)` panic on the publishing
        // thread; validation now refuses it, and the throttle admits nothing if such a
        // value is ever built in code.
        let session = session_with(json!({"event_type": "system_event"}));
        for fps in [1e-300, 5e-324, f64::MIN_POSITIVE] {
            session.state.lock().subscriptions[0].2.throttle.max_fps = Some(fps);
            let bus = Bus::default();
            bus.add_session(session.clone());
            bus.publish(Event::new(EventType::SystemEvent, json!({}), None));
        }
    }

    #[test]
    fn pose_view_filters_persons_and_fields() {
        let ev = pose();
        let view = PoseView {
            min_confidence_bits: 0.5f64.to_bits(),
            keypoints: false,
            dense_pose: false,
            velocity: false,
        };
        let mut text = ev.prefix(view).to_vec();
        text.extend_from_slice(b"}}");
        let v: Value = serde_json::from_slice(&text).unwrap();
        let persons = v["data"]["persons"].as_array().unwrap();
        assert_eq!(persons.len(), 1);
        assert!(persons[0].get("keypoints").is_none() && persons[0].get("dense_pose").is_none());
        assert!(persons[0]["activity"].get("velocity").is_none());
        assert_eq!(v["data"]["environment_id"], "room_001");
    }
}
