//! The event bus: an event is serialized once per distinct view and its bytes are shared
//! by every session that receives it.
//!
//! The pipeline (or `Server.publish`) hands an [`Event`] to [`Bus::publish`]; the bus
//! offers it to every session's subscriptions (see `session_state.rs`) and to the Python
//! callback queue. The per-connection part of the envelope (`metadata.client_id`,
//! `metadata.sequence`) is appended by each session's writer to the shared prefix, so no
//! session ever re-serializes an event.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    wakes: Arc<Wakes>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus {
            sessions: RwLock::new(Vec::new()),
            callbacks: RwLock::new(None),
            counters: BusCounters::default(),
            wakes: Arc::new(Wakes::default()),
        }
    }
}

/// The writers an event reached, handed by a publisher outside the server's runtime to
/// one task inside it that wakes them.
///
/// Waking a task from outside the runtime is a remote schedule, often with a futex call
/// to unpark a worker: measured at 100 clients, `publish` spent about 4 µs per client
/// that way (about 115 futex calls per event, docs/performance.md). From a worker
/// thread a wake is a push on its own run queue; so the publisher makes one remote wake
/// per event and the waking task the rest.
#[derive(Default)]
struct Wakes {
    pending: Mutex<Vec<Arc<SessionShared>>>,
    ready: tokio::sync::Notify,
    /// Whether the waking task runs (it is started with the first session, from the
    /// runtime; without it, publishers wake writers themselves).
    running: AtomicBool,
}

/// The waking task: gives every wake handed to it, until the runtime ends.
async fn wake_writers(wakes: Arc<Wakes>) {
    let mut batch = Vec::new();
    loop {
        wakes.ready.notified().await;
        std::mem::swap(&mut batch, &mut *wakes.pending.lock());
        for session in batch.drain(..) {
            // Cleared first: a wake asked for after this is handed over again, not lost.
            session.wake_pending.store(false, Ordering::Release);
            session.notify.notify_one();
        }
    }
}

/// Writers handed to the waking task at once: the first writes start while the publisher
/// still offers the event to the other sessions, and the waking task is notified once per
/// this many (a notify while it runs costs no futex call).
const WAKE_CHUNK: usize = 8;

/// Whether this thread is one of a tokio runtime's (where waking a task is cheap).
fn on_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

impl Bus {
    pub fn publish(&self, event: Event) -> Arc<Event> {
        let event = Arc::new(event);
        self.counters.published.fetch_add(1, Ordering::Relaxed);
        // Tallied per event, added once: not one shared counter touched per client.
        let (mut throttled, mut frames, mut limited) = (0, 0, 0);
        // Writers are woken directly from a runtime thread, else through the waking task.
        let hand_over = self.wakes.running.load(Ordering::Acquire) && !on_runtime();
        let mut to_wake = Vec::new();
        for session in self.sessions.read().iter() {
            // A bug met while delivering to one session must not unwind into the thread
            // that publishes (an environment's pipeline, the UDP listener, Python's
            // `publish`): that session is closed, every other one still gets the event.
            let offered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                session.offer_quietly(&event)
            }));
            if let Ok(o) = offered {
                if o.queued() {
                    if !hand_over {
                        session.notify.notify_one();
                    } else if !session.wake_pending.swap(true, Ordering::AcqRel) {
                        to_wake.push(session.clone());
                        if to_wake.len() == WAKE_CHUNK {
                            self.hand_over(&mut to_wake);
                        }
                    }
                }
            }
            match offered {
                Ok(Offered::Throttled) => throttled += 1,
                Ok(Offered::QueuedDropping(Delivery::Frames) | Offered::Shed) => frames += 1,
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
        if !to_wake.is_empty() {
            self.hand_over(&mut to_wake);
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

    /// Gives the waking task writers to wake.
    fn hand_over(&self, sessions: &mut Vec<Arc<SessionShared>>) {
        self.wakes.pending.lock().append(sessions);
        self.wakes.ready.notify_one();
    }

    /// Runs `f` while no event is being fanned out: publishes in progress finish first,
    /// new ones wait. `f` must not call the bus's other methods (they would deadlock).
    pub fn quiesced<R>(&self, f: impl FnOnce() -> R) -> R {
        let _sessions = self.sessions.write();
        f()
    }

    pub fn add_session(&self, s: Arc<SessionShared>) {
        self.sessions.write().push(s);
        // Sessions are added on the server's runtime: the waking task starts there, once.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            if !self.wakes.running.swap(true, Ordering::AcqRel) {
                runtime.spawn(wake_writers(self.wakes.clone()));
            }
        }
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
    fn writers_are_woken_through_the_runtime_for_a_publisher_outside_it() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let bus = Arc::new(Bus::default());
        // 20 sessions: more than one chunk handed over, and one partial chunk.
        let sessions: Vec<_> = (0..20)
            .map(|_| session_with(json!({"event_type": "system_event"})))
            .collect();
        runtime.block_on(async {
            for s in &sessions {
                bus.add_session(s.clone()); // on the runtime: the waking task starts
            }
        });
        assert!(bus.wakes.running.load(Ordering::Acquire));
        let (tx, rx) = std::sync::mpsc::channel();
        for (i, s) in sessions.iter().enumerate() {
            let (s, tx) = (s.clone(), tx.clone());
            runtime.spawn(async move {
                // Three wakes each: one per event published below.
                for _ in 0..3 {
                    s.notify.notified().await;
                    let n = std::mem::take(&mut s.state.lock().queue).len();
                    tx.send((i, n)).unwrap();
                }
            });
        }
        let mut got = vec![0; sessions.len()];
        for _ in 0..3 {
            // From this thread, outside the runtime (as Python's publish and the pipelines).
            bus.publish(Event::new(EventType::SystemEvent, json!({}), None));
            for _ in 0..sessions.len() {
                let (i, n) = rx
                    .recv_timeout(std::time::Duration::from_secs(10))
                    .expect("every writer is woken");
                got[i] += n;
            }
        }
        assert_eq!(got, vec![3; sessions.len()], "each got every event");
        assert!(sessions
            .iter()
            .all(|s| !s.wake_pending.load(Ordering::Acquire)));
    }

    #[test]
    fn a_writer_is_handed_to_the_waking_task_once_until_woken() {
        let bus = Bus::default();
        let session = session_with(json!({"event_type": "system_event"}));
        bus.add_session(session.clone());
        // As if the waking task ran on a runtime that has not got to it yet.
        bus.wakes.running.store(true, Ordering::Release);
        for _ in 0..5 {
            bus.publish(Event::new(EventType::SystemEvent, json!({}), None));
        }
        assert_eq!(session.state.lock().queue.len(), 5, "every event queued");
        assert_eq!(
            bus.wakes.pending.lock().len(),
            1,
            "one wake pending, not five"
        );
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

/// Where a publish's time goes, without sockets: `cargo test --release --lib
/// server::bus::cost -- --ignored --nocapture` (docs/performance.md).
#[cfg(test)]
mod cost {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn pose(i: u64) -> Event {
        let kp: Vec<Value> = (0..17)
            .map(|k| json!({"name": format!("kp{k}"), "x": 200 + k, "y": 90 + 2 * k, "confidence": 0.9, "visible": true}))
            .collect();
        Event::new(
            EventType::PoseData,
            json!({"frame_id": i, "persons": [{"person_id": 1, "confidence": 0.87, "keypoints": kp,
                   "activity": {"type": "walking", "confidence": 0.78}}]}),
            Some("room_001".into()),
        )
    }

    #[test]
    #[ignore = "a measurement, not a test: run it by name with --ignored --nocapture"]
    fn publish_to_100_sessions() {
        let bus = Bus::default();
        let identity = super::super::auth::Identity {
            subject: "s".into(),
            expires_at: u64::MAX,
            environments: super::super::auth::EnvironmentGrant::All,
        };
        let sessions: Vec<_> = (0..100)
            .map(|i| {
                let s = SessionShared::new(
                    format!("c{i}"),
                    &identity,
                    super::super::subscription::AppCompression::None,
                    256,
                    1024,
                    1 << 20,
                );
                let spec = json!({"event_type": "pose_data", "quality": "high"});
                let sub = super::super::subscription::Subscription::parse(
                    "sub_1".into(),
                    &spec,
                    &super::super::auth::EnvironmentGrant::All,
                )
                .unwrap();
                s.state
                    .lock()
                    .subscriptions
                    .push((1, Arc::from("sub_1"), sub));
                bus.add_session(s.clone());
                s
            })
            .collect();
        let mut times = Vec::new();
        // A cold cache between events, as between frames 33 ms apart with other work.
        let mut scratch = vec![0u8; 32 << 20];
        for i in 0..300u64 {
            let ev = pose(i);
            let _ = ev.prefix(PoseView::FULL);
            for s in &sessions {
                s.state.lock().queue.clear();
            }
            if i % 2 == 1 {
                for b in scratch.iter_mut().step_by(64) {
                    *b = b.wrapping_add(1);
                }
            }
            let t = Instant::now();
            bus.publish(ev);
            times.push((i % 2 == 1, t.elapsed()));
            std::thread::sleep(Duration::from_micros(200));
        }
        for cold in [false, true] {
            let mut t: Vec<Duration> = times.iter().filter(|x| x.0 == cold).map(|x| x.1).collect();
            t.sort();
            println!(
                "publish to 100 sessions ({}): p50 {:?} p99 {:?}",
                if cold { "cold cache" } else { "warm" },
                t[t.len() / 2],
                t[t.len() * 99 / 100]
            );
        }
    }
}
