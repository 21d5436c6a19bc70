//! The event bus: an event is serialized once per distinct view and its bytes are shared
//! by every session that receives it.
//!
//! The pipeline (or `Server.publish`) hands an [`Event`] to [`Bus::publish`]; the bus
//! offers it to every session's subscriptions (see `session_state.rs`) and to the Python
//! callback queue. The per-connection part of the envelope (`metadata.client_id`,
//! `metadata.sequence`) is appended by each session's writer to the shared prefix, so no
//! session ever re-serializes an event.
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tokio::sync::Notify;

use super::broker::StreamId;
use super::envelope::now_rfc3339;
use super::events::{Delivery, EventType};
use super::session_state::{CloseReason, Offered, SessionShared};
use super::subscription::PoseView;

/// One event on its way to clients.
pub struct Event {
    /// The message type on the wire.
    pub event_type: EventType,
    /// The environment it belongs to (None: server-wide, e.g. `system_event`s).
    pub environment_id: Option<Arc<str>>,
    /// When it was published, RFC 3339 (the envelope's `timestamp`).
    pub timestamp: String,
    /// The message's `data` as the wire carries it.
    pub data: Value,
    /// Fields the filters look at, read once from `data` at publish: `data.confidence`.
    pub confidence: Option<f64>,
    /// `data.severity`, for the severity filter.
    pub severity: Option<String>,
    /// `data.event_type` or `data.event`: what the `event_types` filter matches.
    pub kind: Option<String>,
    /// When `publish` took it (latency and alert-age measurements).
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
    /// Pose frames dropped for every client because the server was behind (`Bus::behind`).
    pub frames_shed: AtomicU64,
    /// Events a shard's inbox had no room for (`INBOX_MAX`: its task stopped running).
    pub inbox_overflow: AtomicU64,
    /// Times a publisher outside the runtime was held back while the server was behind.
    pub publisher_paced: AtomicU64,
}

/// The sessions and the callback queue that events fan out to.
///
/// Sessions are split over shards, one per core. Once the server's runtime runs, a
/// publisher appends each event to every shard's inbox and returns; each shard's task
/// (on a runtime worker) offers it to its own sessions and wakes their writers there.
/// Measured before (docs/performance.md): one publishing thread offering to every session
/// paid ~1.9 µs per offer in cache-line transfers (the session's state is written by its
/// writer on the other core), woke every writer from outside the runtime, and bounced one
/// reference count per message between cores. A shard's sessions and writers mostly stay
/// on its worker, wakes are local run-queue pushes, and the bytes are one copy per shard.
pub struct Bus {
    shards: Vec<Arc<Shard>>,
    /// Read while an event is handed to the shards, written by `quiesced`.
    gate: RwLock<()>,
    /// Whether the shards' tasks run (started with the first session added on a runtime;
    /// until then, and without a runtime, a publish offers the event itself).
    running: AtomicBool,
    next_shard: AtomicUsize,
    callbacks: RwLock<Option<(Vec<EventType>, CallbackSink)>>,
    pub counters: Arc<BusCounters>,
    /// Events a shard may hold waiting before the server counts as behind: the clients'
    /// window (`lag_window_messages`; 0: `probe::WINDOW`).
    window: AtomicUsize,
    /// Each environment's last `occupancy_update`: a client subscribing to occupancy gets
    /// the rooms' current state at once rather than at their next change
    /// (`offer_retained`).
    retained: Mutex<HashMap<String, Arc<Event>>>,
}

/// The most environments whose last occupancy the bus keeps (a bound on what publishers
/// can grow; past it, new environments' occupancy is not retained): as many as an
/// application runs.
const RETAINED_MAX: usize = super::MAX_ENVIRONMENTS;

impl Default for Bus {
    fn default() -> Self {
        // As many shards as the runtime has worker threads (its default: one per core).
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        Bus::with_shards(n)
    }
}

/// One part of the sessions, with the events waiting to reach them.
struct Shard {
    /// Events published and not yet offered, oldest first, each with whether it is a
    /// pose frame to shed (`Bus::publish`).
    inbox: Mutex<VecDeque<(Arc<Event>, bool)>>,
    ready: Notify,
    /// Held while events are offered to the sessions; `quiesced` holds every shard's.
    work: Mutex<ShardWork>,
    /// This shard's sessions whose writer is behind (`SessionShared::set_lagging`).
    lagging: Arc<AtomicIsize>,
    /// This shard's sessions with a connection attached, at its last event.
    live: AtomicUsize,
}

struct ShardWork {
    sessions: Vec<Arc<SessionShared>>,
    prefixes: Prefixes,
}

/// An event's serialized views as one shard hands them out: its own copy of the bytes,
/// made once per event and view, so the reference count every queued message touches
/// stays on the shard's core instead of bouncing between all of them (measured at ~10 %
/// of the server's time at 1,000 clients). Copying 2 KB per shard is far cheaper.
pub struct Prefixes {
    own: bool,
    /// The copies for the event being delivered (`deliver` clears them per event: an
    /// event's address is no key, the next one may be allocated where it was).
    views: Vec<(PoseView, Bytes)>,
}

impl Prefixes {
    /// The event's own shared bytes (no copy): for one-off offers.
    pub fn shared() -> Self {
        Prefixes {
            own: false,
            views: Vec::new(),
        }
    }

    fn per_shard() -> Self {
        Prefixes {
            own: true,
            ..Prefixes::shared()
        }
    }

    /// Forgets the previous event's copies.
    fn next_event(&mut self) {
        self.views.clear();
    }

    /// The bytes of `ev` (the event being delivered) seen through `view`.
    pub fn get(&mut self, ev: &Event, view: PoseView) -> Bytes {
        if !self.own {
            return ev.prefix(view);
        }
        let view = if ev.event_type.is_pose() {
            view
        } else {
            PoseView::FULL
        };
        if let Some((_, b)) = self.views.iter().find(|(v, _)| *v == view) {
            return b.clone();
        }
        let b = Bytes::copy_from_slice(&ev.prefix(view));
        self.views.push((view, b.clone()));
        b
    }
}

/// Events a shard offers before it lets its writers run: a shard that fell behind
/// catches up in turns, not in one long stretch that holds every writer back.
const SHARD_TURN: usize = 8;

/// Events waiting in one shard's inbox, past which more are not taken (counted): reached
/// only when its task no longer runs (a runtime shut down while publishers go on).
const INBOX_MAX: usize = 1 << 16;

/// An inbox whose oldest event waited longer than this, or a quarter of the connections
/// lagging (`BEHIND_FRACTION`), means the server is behind (`Bus::behind`).
const BEHIND_AFTER: Duration = Duration::from_millis(10);

/// At least one in this many connections lagging makes the server behind (`Bus::behind`).
/// Measured at 1,000 clients past saturation (docs/performance.md, fifth pass): with the
/// lag measured by ping (`probe.rs`), a quarter held the publisher often enough to keep
/// every client's p99 near 100 ms; half let the other half drift to 150-190 ms.
const BEHIND_FRACTION: usize = 4;

/// Fewer connections behind than this never make the server behind (`Bus::behind`): a
/// handful of slow clients is theirs to bear (frames dropped, cut on alerts), not every
/// client's.
const LAGGING_MIN: usize = 4;

/// The longest one publish call is held back while the server is behind: the bound on
/// what pacing costs a publisher (a server whose clients mostly stall cuts them within
/// `alert_max_wait_s`, which ends it).
const PACE_MAX: Duration = Duration::from_millis(250);

/// Offers `event` to `sessions` and wakes the writers it reached (`shed`: a pose frame
/// is counted as dropped for each, not queued); returns how many have a connection attached.
fn deliver(work: &mut ShardWork, event: &Arc<Event>, shed: bool, counters: &BusCounters) -> usize {
    // Tallied per event, added once: not one shared counter touched per client.
    let (mut throttled, mut frames, mut limited, mut live) = (0, 0, 0, 0);
    let ShardWork { sessions, prefixes } = work;
    prefixes.next_event();
    for session in sessions.iter() {
        // A bug met while delivering to one session must not unwind into the shard (or a
        // publishing thread): that session is closed, every other one still gets it.
        let offered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            session.offer_quietly(event, prefixes, shed)
        }));
        match offered {
            Ok((offered, attached)) => {
                live += attached as usize;
                if offered.queued() {
                    // On a runtime worker: a push on its own run queue, no system call.
                    session.notify.notify_one();
                }
                match offered {
                    Offered::Throttled => throttled += 1,
                    Offered::QueuedDropping(Delivery::Frames) | Offered::Shed => frames += 1,
                    Offered::QueuedDropping(_) => limited += 1,
                    Offered::Skipped | Offered::Queued => {}
                }
            }
            Err(_) => {
                counters.offer_panics.fetch_add(1, Ordering::Relaxed);
                // The state lock is released by the unwind (parking_lot does not
                // poison); the writer ends the connection.
                session.close(CloseReason::InternalError);
            }
        }
    }
    for (counter, n) in [
        (&counters.throttled, throttled),
        (&counters.frames_dropped, frames),
        (&counters.limited_dropped, limited),
    ] {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
    live
}

impl Shard {
    /// Offers every event in the inbox, with the work lock held (`quiesced`, shutdown).
    fn drain_locked(&self, work: &mut ShardWork, counters: &BusCounters) {
        loop {
            let Some((event, shed)) = self.inbox.lock().pop_front() else {
                return;
            };
            let live = deliver(work, &event, shed, counters);
            self.live.store(live, Ordering::Relaxed);
        }
    }
}

/// A shard's task: offers what is published to its sessions, until the runtime ends.
async fn run_shard(shard: Arc<Shard>, counters: Arc<BusCounters>) {
    let mut batch = Vec::with_capacity(SHARD_TURN);
    loop {
        let taken = {
            // Events are taken from the inbox with the work lock held: `quiesced` (which
            // holds it) then sees every event either offered already or still waiting.
            let mut work = shard.work.lock();
            {
                let mut inbox = shard.inbox.lock();
                let n = inbox.len().min(SHARD_TURN);
                batch.extend(inbox.drain(..n));
            }
            let taken = batch.len();
            let mut live = None;
            for (event, shed) in batch.drain(..) {
                live = Some(deliver(&mut work, &event, shed, &counters));
            }
            if let Some(live) = live {
                shard.live.store(live, Ordering::Relaxed);
            }
            taken
        };
        if taken == 0 {
            // Empty: wait for a publish (a notify given meanwhile is kept as a permit).
            shard.ready.notified().await;
        } else if taken == SHARD_TURN {
            // Behind: let the writers this turn woke run before the next turn.
            tokio::task::yield_now().await;
        }
    }
}

/// Whether this thread is one of a tokio runtime's (whose tasks must not be blocked).
fn on_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

impl Bus {
    /// Sets the clients' window (`lag_window_messages`), which also bounds the events a
    /// shard may hold waiting before the server counts as behind.
    pub fn set_window(&self, messages: usize) {
        self.window.store(messages, Ordering::Relaxed);
    }

    fn window(&self) -> usize {
        match self.window.load(Ordering::Relaxed) {
            0 => super::probe::WINDOW as usize,
            w => w,
        }
    }

    /// A bus with `n` shards (at least one).
    pub fn with_shards(n: usize) -> Self {
        let shards = (0..n.clamp(1, 256))
            .map(|_| {
                Arc::new(Shard {
                    inbox: Mutex::new(VecDeque::new()),
                    ready: Notify::new(),
                    work: Mutex::new(ShardWork {
                        sessions: Vec::new(),
                        prefixes: Prefixes::per_shard(),
                    }),
                    lagging: Arc::new(AtomicIsize::new(0)),
                    live: AtomicUsize::new(0),
                })
            })
            .collect();
        Bus {
            shards,
            gate: RwLock::new(()),
            running: AtomicBool::new(false),
            next_shard: AtomicUsize::new(0),
            window: AtomicUsize::new(0),
            callbacks: RwLock::new(None),
            counters: Arc::new(BusCounters::default()),
            retained: Mutex::new(HashMap::new()),
        }
    }

    /// Publishes an event to every session. With the shards running it returns once the
    /// event is in their inboxes (a session's queue sees it a moment later, in publish
    /// order); `quiesced` and `settle` wait for that moment.
    ///
    /// While the server is behind (`behind`), a pose frame is not queued for anyone
    /// (counted as dropped for each client it was for, and in `frames_shed`: the next one
    /// supersedes it 33 ms later) rather than queue ahead of alerts, and a publisher outside the runtime is held back after its
    /// event is handed over, for at most [`PACE_MAX`], until the server has caught up:
    /// past saturation the publisher goes at the rate the clients are served, and alerts
    /// wait in the publisher, not behind seconds of queued messages.
    pub fn publish(&self, event: Event) -> Arc<Event> {
        let event = Arc::new(event);
        self.counters.published.fetch_add(1, Ordering::Relaxed);
        if event.event_type == EventType::OccupancyUpdate {
            if let Some(env) = &event.environment_id {
                let mut retained = self.retained.lock();
                if retained.len() < RETAINED_MAX || retained.contains_key(&**env) {
                    retained.insert(env.to_string(), event.clone());
                }
            }
        }
        // An event read from the broker is offered here and now: its feed holds the
        // stream's cursor while the event reaches the sessions, and a resume from the
        // broker relies on that (`broker::resume`: what is past the cursor is held).
        if !self.running.load(Ordering::Acquire) || event.stream_id.is_some() {
            let _gate = self.gate.read();
            for shard in &self.shards {
                let mut work = shard.work.lock();
                let live = deliver(&mut work, &event, false, &self.counters);
                shard.live.store(live, Ordering::Relaxed);
            }
        } else {
            let shed = event.event_type.delivery() == Delivery::Frames && self.behind();
            if shed {
                self.counters.frames_shed.fetch_add(1, Ordering::Relaxed);
            }
            {
                let _gate = self.gate.read();
                for shard in &self.shards {
                    let mut inbox = shard.inbox.lock();
                    if inbox.len() >= INBOX_MAX {
                        self.counters.inbox_overflow.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let was_empty = inbox.is_empty();
                    inbox.push_back((event.clone(), shed));
                    drop(inbox);
                    if was_empty {
                        shard.ready.notify_one();
                    }
                }
            }
            if !on_runtime() && !shed {
                self.pace();
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

    /// Whether the server is behind its publishers: a shard has not got to an event
    /// within [`BEHIND_AFTER`] or has more than `probe::WINDOW` waiting, or at least a
    /// quarter of the attached connections (and at least [`LAGGING_MIN`]) are behind
    /// (`SessionShared::set_lagging` and the causes next to it): their writer is late for
    /// want of time to run, or their client has not confirmed reading what it was sent
    /// (`probe.rs`: a ping unanswered for `PING_LATE`, more than `WINDOW` messages not
    /// confirmed) because it does not read as fast as events come. A few
    /// slow clients never make the server behind: they are cut (`alert_max_wait_s`)
    /// while the others go on, and a client's own frames are dropped by its `buffer_size`.
    pub fn behind(&self) -> bool {
        self.lag(BEHIND_FRACTION)
    }

    /// Whether an inbox is late, or at least one in `fraction` of the attached connections
    /// (and [`LAGGING_MIN`]) is behind.
    fn lag(&self, fraction: usize) -> bool {
        let (mut lagging, mut live) = (0isize, 0usize);
        for shard in &self.shards {
            let (oldest, waiting) = {
                let inbox = shard.inbox.lock();
                (inbox.front().map(|(e, _)| e.published_at), inbox.len())
            };
            // More events waiting to be offered than a client may have unconfirmed
            // (`probe::WINDOW`): a publisher catching up is held after that many, not after
            // they have all been handed over and aged.
            if waiting > self.window() || oldest.is_some_and(|t| t.elapsed() > BEHIND_AFTER) {
                return true;
            }
            lagging += shard.lagging.load(Ordering::Relaxed);
            live += shard.live.load(Ordering::Relaxed);
        }
        let lagging = lagging.max(0) as usize;
        lagging >= LAGGING_MIN && lagging * fraction >= live
    }

    /// Holds the calling publisher while the server is behind, for at most [`PACE_MAX`].
    /// (Holding it until nearly every connection had caught up, one in ten, was measured:
    /// fewer messages delivered and more clients cut, docs/performance.md.)
    fn pace(&self) {
        if !self.behind() {
            return;
        }
        self.counters
            .publisher_paced
            .fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        while self.behind() && start.elapsed() < PACE_MAX {
            std::thread::sleep(Duration::from_micros(250));
        }
    }

    /// Runs `f` while no event is being fanned out, and after every event published so
    /// far has been offered to every session: publishes in progress finish first, new ones
    /// wait. `f` must not call the bus's other methods (they would deadlock).
    pub fn quiesced<R>(&self, f: impl FnOnce() -> R) -> R {
        let _gate = self.gate.write();
        let mut works: Vec<_> = self.shards.iter().map(|s| s.work.lock()).collect();
        for (shard, work) in self.shards.iter().zip(works.iter_mut()) {
            shard.drain_locked(work, &self.counters);
        }
        f()
    }

    /// Offers `session` each environment's last `occupancy_update` (those its
    /// subscriptions and token take), after every event published before: what a client
    /// that just subscribed to occupancy would otherwise not learn until the next change.
    pub fn offer_retained(&self, session: &SessionShared) {
        let events: Vec<Arc<Event>> = self.retained.lock().values().cloned().collect();
        if events.is_empty() {
            return;
        }
        self.quiesced(|| {
            let mut prefixes = Prefixes::shared();
            let mut queued = false;
            for ev in &events {
                let (offered, _) = session.offer_quietly(ev, &mut prefixes, false);
                queued |= offered.queued();
            }
            if queued {
                session.notify.notify_one();
            }
        });
    }

    /// Returns once every event published so far has been offered to every session
    /// (a stopping server's last event is queued before its writers' final flush).
    pub fn settle(&self) {
        self.quiesced(|| ())
    }

    pub fn add_session(&self, s: Arc<SessionShared>) {
        let i = self.next_shard.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        let shard = &self.shards[i];
        let _ = s.lag_count.set(shard.lagging.clone());
        shard.work.lock().sessions.push(s);
        // Sessions are added on the server's runtime: the shards' tasks start there, once.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            if !self.running.load(Ordering::Acquire) {
                // Under the gate: no publish is offering inline while the tasks take over.
                let _gate = self.gate.write();
                if !self.running.swap(true, Ordering::AcqRel) {
                    for shard in &self.shards {
                        runtime.spawn(run_shard(shard.clone(), self.counters.clone()));
                    }
                }
            }
        }
    }

    pub fn remove_session(&self, id: u64) {
        for shard in &self.shards {
            let mut work = shard.work.lock();
            if let Some(pos) = work.sessions.iter().position(|s| s.id == id) {
                let s = work.sessions.swap_remove(pos);
                drop(work);
                s.clear_lag();
                return;
            }
        }
    }

    pub fn find_session(&self, session_id: &str) -> Option<Arc<SessionShared>> {
        self.shards.iter().find_map(|shard| {
            shard
                .work
                .lock()
                .sessions
                .iter()
                .find(|s| s.state.lock().session_id == session_id)
                .cloned()
        })
    }

    pub fn sessions(&self) -> Vec<Arc<SessionShared>> {
        let mut all = Vec::new();
        for shard in &self.shards {
            all.extend(shard.work.lock().sessions.iter().cloned());
        }
        all
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
        subscribe(&session, 1, &spec);
        session
    }

    /// Adds subscription `sub_{n}` with `spec` to `session`.
    pub(super) fn subscribe(session: &SessionShared, n: u32, spec: &Value) {
        let id = format!("sub_{n}");
        let sub = super::super::subscription::Subscription::parse(
            id.clone(),
            spec,
            &super::super::auth::EnvironmentGrant::All,
        )
        .unwrap();
        session
            .state
            .lock()
            .subscriptions
            .push((n, Arc::from(id.as_str()), sub));
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

    /// The `n` of each alert queued for `session`, in queue order, taking them.
    fn take_ns(session: &SessionShared) -> Vec<u64> {
        let mut st = session.state.lock();
        let items: Vec<_> = st.queue.drain(..).collect();
        st.alerts_queued = 0;
        items
            .iter()
            .filter(|o| o.class == super::super::session_state::ItemClass::Alert)
            .map(|o| {
                let mut text = o.prefix.to_vec();
                text.extend_from_slice(b"\"x\":0}}");
                let v: Value = serde_json::from_slice(&text).unwrap();
                v["data"]["n"].as_u64().unwrap()
            })
            .collect()
    }

    fn numbered(n: u64) -> Event {
        Event::new(EventType::ActivityEvent, json!({"n": n}), None)
    }

    #[test]
    fn each_shards_sessions_get_every_event_in_order() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let bus = Arc::new(Bus::with_shards(3));
        let sessions: Vec<_> = (0..10)
            .map(|_| session_with(json!({"event_type": "activity_event"})))
            .collect();
        runtime.block_on(async {
            for s in &sessions {
                bus.add_session(s.clone()); // on the runtime: the shards' tasks start
            }
        });
        assert!(bus.running.load(Ordering::Acquire));
        let (tx, rx) = std::sync::mpsc::channel();
        for (i, s) in sessions.iter().enumerate() {
            let (s, tx) = (s.clone(), tx.clone());
            // A writer: takes what is queued each time it is woken, until it has all 300.
            runtime.spawn(async move {
                let mut got = Vec::new();
                while got.len() < 300 {
                    s.notify.notified().await;
                    got.extend(take_ns(&s));
                }
                tx.send((i, got)).unwrap();
            });
        }
        // From this thread, outside the runtime (as Python's publish), and from a task on
        // it (as the pipelines): each returns before the shards have offered its event.
        for n in 0..150 {
            bus.publish(numbered(n));
        }
        let on_runtime = bus.clone();
        runtime.block_on(async move {
            for n in 150..300 {
                on_runtime.publish(numbered(n));
                if n % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        });
        for _ in 0..sessions.len() {
            let (i, got) = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("every writer gets every event");
            assert_eq!(
                got,
                (0..300).collect::<Vec<_>>(),
                "session {i}: all, in order"
            );
        }
        for (i, shard) in bus.shards.iter().enumerate() {
            let n = shard.work.lock().sessions.len();
            assert!((3..=4).contains(&n), "shard {i} holds {n} of 10 sessions");
        }
    }

    #[test]
    fn a_shard_hands_out_its_own_copy_of_the_bytes_once_per_event() {
        let bus = Bus::with_shards(2);
        let sessions: Vec<_> = (0..4)
            .map(|_| session_with(json!({"event_type": "activity_event"})))
            .collect();
        for s in &sessions {
            bus.add_session(s.clone());
        }
        let ev = bus.publish(numbered(1));
        let ptrs: Vec<_> = sessions
            .iter()
            .map(|s| s.state.lock().queue[0].prefix.as_ptr())
            .collect();
        // Sessions 0 and 2 are in one shard, 1 and 3 in the other.
        assert_eq!(ptrs[0], ptrs[2]);
        assert_eq!(ptrs[1], ptrs[3]);
        assert_ne!(ptrs[0], ptrs[1]);
        let shared = ev.prefix(PoseView::FULL);
        assert!(!ptrs.contains(&shared.as_ptr()), "a copy per shard");
        assert_eq!(&sessions[0].state.lock().queue[0].prefix[..], &shared[..]);
        // The next event, wherever it is allocated, gets its own bytes.
        drop(ev);
        for s in &sessions {
            s.state.lock().queue.clear();
        }
        for n in 2..5 {
            bus.publish(numbered(n));
        }
        assert_eq!(take_ns(&sessions[0]), vec![2, 3, 4]);
    }

    /// A bus whose shards' tasks count as running but never run: what is published waits
    /// in the inboxes until `quiesced` or `settle` offers it.
    fn stalled_bus(sessions: &[Arc<SessionShared>]) -> Bus {
        let bus = Bus::with_shards(2);
        for s in sessions {
            bus.add_session(s.clone());
        }
        bus.running.store(true, Ordering::Release);
        bus
    }

    #[test]
    fn quiesced_runs_after_every_event_published_before_it_is_offered() {
        let sessions: Vec<_> = (0..3)
            .map(|_| session_with(json!({"event_type": "activity_event"})))
            .collect();
        let bus = stalled_bus(&sessions);
        for n in 0..5 {
            bus.publish(numbered(n));
        }
        assert!(sessions.iter().all(|s| s.state.lock().queue.is_empty()));
        let seen = bus.quiesced(|| {
            sessions
                .iter()
                .map(|s| s.state.lock().queue.len())
                .collect::<Vec<_>>()
        });
        assert_eq!(seen, vec![5, 5, 5]);
        bus.publish(numbered(5));
        bus.settle();
        assert_eq!(take_ns(&sessions[1]), vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn behind_when_a_quarter_of_the_writers_lag_not_for_a_few() {
        let sessions: Vec<_> = (0..20)
            .map(|_| session_with(json!({"event_type": "activity_event"})))
            .collect();
        let bus = Bus::with_shards(2);
        for s in &sessions[..2] {
            bus.add_session(s.clone());
        }
        bus.publish(numbered(0)); // the shards count their attached sessions
        sessions[0].set_lagging(true);
        sessions[1].set_lagging(true);
        assert!(!bus.behind(), "two slow clients of two: theirs to bear");
        for s in &sessions[2..] {
            bus.add_session(s.clone());
        }
        bus.publish(numbered(1)); // every queue's front is fresh: none behind now
        assert!(!bus.behind());
        for s in &sessions[..4] {
            s.set_lagging(true);
        }
        assert!(!bus.behind(), "four of twenty");
        sessions[4].set_lagging(true);
        assert!(bus.behind(), "a quarter of them");
        sessions[4].set_lagging(false);
        sessions[4].set_lagging(false); // counted once
        assert!(!bus.behind());
        // Late answering a ping or a full window (`probe.rs`) count the same, and a session
        // behind for several causes counts once, until all end.
        sessions[4].set_ping_late(true);
        assert!(bus.behind(), "a quarter, one for its ping");
        sessions[4].set_lagging(true);
        sessions[4].set_window_full(true);
        sessions[4].set_ping_late(true);
        sessions[4].set_ping_late(false);
        sessions[4].set_lagging(false);
        assert!(bus.behind(), "its window is still full");
        sessions[4].set_window_full(false);
        assert!(!bus.behind());
        sessions[5].set_ping_late(true);
        sessions[5].set_window_full(true);
        sessions[5].set_lagging(true);
        sessions[5].clear_lag();
        assert!(!bus.behind(), "every cause cleared at once");
        for s in &sessions[1..4] {
            bus.remove_session(s.id);
        }
        bus.remove_session(sessions[0].id);
        assert_eq!(
            bus.shards
                .iter()
                .map(|s| s.lagging.load(Ordering::Relaxed))
                .sum::<isize>(),
            0,
            "a removed session no longer counts"
        );
    }

    #[test]
    fn a_publisher_catching_up_is_held_after_a_window_of_events() {
        // The shards do not run (no runtime): events wait in their inboxes as they would
        // behind busy shards. More than WINDOW waiting makes the server behind at once,
        // before the oldest has waited BEHIND_AFTER.
        let bus = Bus::with_shards(1);
        let s = session_with(json!({"event_type": "activity_event"}));
        bus.add_session(s);
        bus.running.store(true, Ordering::Release);
        for n in 0..super::super::probe::WINDOW {
            bus.publish(numbered(n));
        }
        assert!(!bus.behind(), "a window's worth");
        bus.publish(numbered(99));
        assert!(bus.behind(), "one more");
    }

    #[test]
    fn while_behind_pose_frames_are_shed_alerts_are_not_and_the_publisher_waits() {
        let session = session_with(json!({"event_type": "activity_event"}));
        subscribe(
            &session,
            2,
            &json!({"event_type": "pose_data", "quality": "low"}),
        );
        let bus = stalled_bus(std::slice::from_ref(&session));
        // An event that has waited 50 ms in an inbox: the server is behind.
        let mut old = numbered(0);
        old.published_at = Instant::now() - Duration::from_millis(50);
        bus.publish(old); // its publisher waits too: the server is behind
        assert!(bus.behind());
        assert_eq!(bus.counters.publisher_paced.load(Ordering::Relaxed), 1);
        let t = Instant::now();
        bus.publish(Event::new(
            EventType::PoseData,
            json!({"persons": []}),
            Some("room".into()),
        ));
        assert!(t.elapsed() < PACE_MAX, "a shed frame does not wait");
        bus.publish(numbered(1));
        assert!(
            t.elapsed() >= PACE_MAX,
            "a publisher outside the runtime waits"
        );
        assert_eq!(bus.counters.publisher_paced.load(Ordering::Relaxed), 2);
        assert_eq!(bus.counters.frames_shed.load(Ordering::Relaxed), 1);
        bus.settle();
        assert!(!bus.behind());
        assert_eq!(
            session.state.lock().stats.dropped_frames,
            1,
            "counted for the client"
        );
        assert_eq!(bus.counters.frames_dropped.load(Ordering::Relaxed), 1);
        assert_eq!(take_ns(&session), vec![0, 1], "every alert, no frame");
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
                super::tests::subscribe(
                    &s,
                    1,
                    &json!({"event_type": "pose_data", "quality": "high"}),
                );
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
