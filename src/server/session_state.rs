//! One session's shared state: its subscriptions, its bounded outgoing queue, its sequence
//! numbers and the alert log that makes resume possible.
//!
//! The bus calls [`SessionShared::offer`] from the publishing thread; the connection's
//! writer drains the queue. A session outlives its connection for `resume_ttl` so a client
//! that was disconnected (slow, network) can come back and get every alert it missed.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicIsize, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::auth::{EnvironmentGrant, Identity};
use super::bus::{Event, Prefixes};
use super::events::Delivery;
use super::subscription::{AppCompression, Subscription};

/// Why the server ends a connection; sent as the `disconnect` message's `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    ClientRequested,
    SlowConsumer,
    HeartbeatTimeout,
    TokenExpired,
    ServerShutdown,
    ResumedElsewhere,
    Flood,
    MessageTooBig,
    /// The server failed on this session's behalf (a bug caught while delivering to it):
    /// this connection ends, every other one goes on.
    InternalError,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientRequested => "client_requested",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::HeartbeatTimeout => "heartbeat_timeout",
            CloseReason::TokenExpired => "token_expired",
            CloseReason::ServerShutdown => "server_shutdown",
            CloseReason::ResumedElsewhere => "resumed_elsewhere",
            CloseReason::Flood => "rate_limit_flood",
            CloseReason::MessageTooBig => "message_too_big",
            CloseReason::InternalError => "internal_error",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            CloseReason::ClientRequested => "Graceful disconnect initiated by client",
            CloseReason::SlowConsumer => {
                "Client could not keep up with alerts; reconnect and send `resume` with the last sequence seen"
            }
            CloseReason::HeartbeatTimeout => "Nothing received within the heartbeat timeout",
            CloseReason::TokenExpired => "JWT token has expired. Please refresh and reconnect.",
            CloseReason::ServerShutdown => "Server is shutting down",
            CloseReason::ResumedElsewhere => "This session was resumed by another connection",
            CloseReason::Flood => "Too many messages; connection closed",
            CloseReason::MessageTooBig => "Message larger than the server accepts (max_message_bytes)",
            CloseReason::InternalError => {
                "The server could not deliver an event to this connection; reconnect"
            }
        }
    }

    /// The WebSocket close code that goes with the reason.
    pub fn close_code(self) -> u16 {
        match self {
            CloseReason::ClientRequested => 1000,
            CloseReason::ServerShutdown => 1001,
            CloseReason::Flood => 1008,
            CloseReason::MessageTooBig => 1009,
            CloseReason::InternalError => 1011,
            CloseReason::SlowConsumer => 1013,
            // 4000-4999 are for applications: these tell a client to act (refresh, resume).
            CloseReason::TokenExpired => 4001,
            CloseReason::HeartbeatTimeout => 4002,
            CloseReason::ResumedElsewhere => 4003,
        }
    }

    /// Whether the session stays resumable after this close.
    pub fn keeps_session(self) -> bool {
        matches!(
            self,
            CloseReason::SlowConsumer | CloseReason::HeartbeatTimeout
        )
    }
}

/// How an item behaves when the client falls behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemClass {
    /// Replies to the client (ack, error, heartbeat, status): never dropped; bounded by the
    /// client-message rate limits.
    Control,
    /// A frame or limited-stream event of subscription `sub`: the oldest goes first.
    Droppable {
        sub: u32,
    },
    Alert,
    /// An alert sent again after a resume: never dropped, and not counted against
    /// `alert_queue_capacity` (a replay is bounded by `alert_history`; a client too slow
    /// for it is caught by the write timeout, and the log still holds every item).
    Replayed,
}

/// One message waiting to be written.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub seq: u64,
    pub prefix: Bytes,
    pub class: ItemClass,
    /// The subscription's metadata tag (`,"subscription_id":"..."`), if any.
    pub subscription_tag: Option<Arc<[u8]>>,
    pub compression: AppCompression,
    pub published_at: Option<Instant>,
    /// For an alert sent again after a resume: the sequence it first had.
    pub replayed_from: Option<u64>,
}

/// Per-session counters, reported in connection_status.
#[derive(Clone, Debug, Default)]
pub struct SessionStats {
    pub sent: u64,
    pub received: u64,
    pub dropped_frames: u64,
    pub dropped_limited: u64,
    pub throttled: u64,
}

pub struct SessionState {
    pub session_id: String,
    pub subscriptions: Vec<(u32, Arc<str>, Subscription)>,
    pub next_subscription: u32,
    pub queue: VecDeque<Outgoing>,
    pub alerts_queued: usize,
    pub next_seq: u64,
    pub alert_log: VecDeque<Outgoing>,
    /// What `alert_log` holds, as [`log_cost`] counts it.
    pub alert_log_bytes: usize,
    /// The highest sequence evicted from the alert log (0: none): a resume from below it
    /// has lost alerts, and is told how many.
    pub alerts_evicted: u64,
    pub alerts_evicted_max_seq: u64,
    pub attached: bool,
    pub closing: Option<CloseReason>,
    pub retired: bool,
    pub detached_at: Option<Instant>,
    pub stats: SessionStats,
    pub default_compression: AppCompression,
    pub connected_since: String,
    pub grant: EnvironmentGrant,
    /// While a resume from the broker fetches what the session missed, live events wait
    /// here so they go out after the replay, in order (`broker::resume`).
    pub held: Option<Vec<Arc<Event>>>,
    /// After a resume from the broker: per environment, the position the client already
    /// has. Events at or before it are not delivered again (this node's reader may lag
    /// behind the node the client came from); an environment leaves the map at its first
    /// event past it.
    pub floor: Option<std::collections::HashMap<String, super::broker::StreamId>>,
    /// Where this session started in each environment's broker stream (and the broker's
    /// clock then, for streams not yet seen): a resume on another node starts there for
    /// environments the client names no position for. None without a broker.
    pub broker_since: Option<Arc<super::broker::Since>>,
    /// When the writer last took replayed alerts (after a resume): live alerts that waited
    /// behind the replay count their wait from then, not from their publish, when pose
    /// frames are to give way to them (`SHED_FRAMES_AFTER`): the replay is old by nature.
    pub replay_taken_at: Option<Instant>,
    /// Fault injection for the tests of the bus's panic isolation: offering an event to
    /// this session panics.
    #[cfg(test)]
    pub panic_on_offer: bool,
}

impl SessionState {
    /// Whether a connection is attached and not closing: only then are events queued.
    pub fn deliverable(&self) -> bool {
        self.attached && self.closing.is_none()
    }
}

/// What became of an event offered to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// Not for this session (no matching subscription, not granted, nobody connected).
    Skipped,
    /// Held back by the subscription's throttle.
    Throttled,
    Queued,
    /// Queued, and the subscription's oldest waiting message of this class was dropped
    /// for it (`buffer_size`), or pose frames waiting ahead of this alert were.
    QueuedDropping(Delivery),
    /// A pose frame not queued because alerts wait in the queue: frames never hold an
    /// alert back (counted as dropped).
    Shed,
}

impl Offered {
    /// Whether the queue changed, so the writer must be woken.
    pub fn queued(self) -> bool {
        matches!(self, Offered::Queued | Offered::QueuedDropping(_))
    }
}

/// A session shared between the bus (producer) and its connection (consumer).
pub struct SessionShared {
    /// Process-unique number (the bus's key).
    pub id: u64,
    pub client_id: String,
    /// `client_id` as a JSON string literal, escaped once.
    pub client_id_json: String,
    pub subject: String,
    pub state: Mutex<SessionState>,
    pub notify: Notify,
    /// The highest sequence of an alert handed to this session's socket. A resume replays
    /// every logged alert above `min(last_sequence, this)`: alerts never written (left in
    /// the queue at a slow-consumer close, logged while detached) are replayed even though
    /// the client saw a later `disconnect`'s sequence.
    pub alerts_written: AtomicU64,
    /// Pings read since the writer last wrote: each has a pong queued inside the WebSocket
    /// layer, which only a write sends. The reader stops reading past `PONGS_OWED_MAX`
    /// (connection.rs), so a client that pings and never reads cannot grow that queue.
    pub pongs_owed: std::sync::atomic::AtomicU32,
    /// Notified by the writer after each write, for a reader waiting for room.
    pub written: Notify,
    /// Why the session counts as lagging, one bit per cause: [`LAG_QUEUE`] (the oldest
    /// message of its queue had waited longer than [`LAGGING_AFTER`], `set_lagging`),
    /// [`LAG_PING`] (its outstanding ping is older than `probe::PING_LATE`,
    /// `set_ping_late`) and [`LAG_WINDOW`] (more than `probe::WINDOW` messages not
    /// confirmed read, `set_window_full`). Its shard counts the sessions with any bit set.
    lag_bits: AtomicU8,
    /// The connection's delivery lag, measured with WebSocket pings (`probe.rs`).
    pub probe: super::probe::Probe,
    /// Its shard's count of lagging sessions (`bus.rs`), set when the bus takes the
    /// session: the bus holds its publisher back and sheds pose frames while half of the
    /// connections are behind.
    pub(super) lag_count: OnceLock<Arc<AtomicIsize>>,
    alert_queue_capacity: usize,
    alert_history: usize,
    alert_history_bytes: usize,
}

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// Frames kept while a resume fetches the past (alerts are all kept).
const HELD_MAX: usize = 1024;

impl SessionShared {
    pub fn new(
        client_id: String,
        identity: &Identity,
        default_compression: AppCompression,
        alert_queue_capacity: usize,
        alert_history: usize,
        alert_history_bytes: usize,
    ) -> Arc<Self> {
        let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
        let session_id = format!("session_{}", random_hex(12));
        Arc::new(SessionShared {
            id,
            client_id_json: serde_json::Value::from(client_id.clone()).to_string(),
            client_id,
            subject: identity.subject.clone(),
            state: Mutex::new(SessionState {
                session_id,
                subscriptions: Vec::new(),
                next_subscription: 1,
                queue: VecDeque::new(),
                alerts_queued: 0,
                next_seq: 1,
                alert_log: VecDeque::new(),
                alert_log_bytes: 0,
                alerts_evicted: 0,
                alerts_evicted_max_seq: 0,
                attached: true,
                closing: None,
                retired: false,
                detached_at: None,
                stats: SessionStats::default(),
                default_compression,
                connected_since: super::envelope::now_rfc3339(),
                grant: identity.environments.clone(),
                held: None,
                floor: None,
                broker_since: None,
                replay_taken_at: None,
                #[cfg(test)]
                panic_on_offer: false,
            }),
            notify: Notify::new(),
            alerts_written: AtomicU64::new(0),
            pongs_owed: std::sync::atomic::AtomicU32::new(0),
            written: Notify::new(),
            lag_bits: AtomicU8::new(0),
            probe: Default::default(),
            lag_count: OnceLock::new(),
            alert_queue_capacity,
            alert_history,
            alert_history_bytes,
        })
    }

    /// Offers a published event to this session: filters, throttle, then the queue, and
    /// wakes the writer. Says what became of it, for /metrics. (The bus offers quietly and
    /// wakes writers itself; tests offer one session at a time.)
    #[cfg(test)]
    pub fn offer(&self, ev: &Arc<Event>) -> Offered {
        let (offered, _) = self.offer_quietly(ev, &mut Prefixes::shared(), false);
        if offered.queued() {
            self.notify.notify_one();
        }
        offered
    }

    /// [`SessionShared::offer`] without waking the writer (the bus wakes the writers an
    /// event reached, `Offered::queued` says which), taking the event's bytes from
    /// `prefixes` (a shard's own copy). Also says whether a connection is attached.
    ///
    /// `shed`: the server is behind (`Bus::behind`), so a pose frame is dropped (counted)
    /// instead of queued.
    pub fn offer_quietly(
        &self,
        ev: &Arc<Event>,
        prefixes: &mut Prefixes,
        shed: bool,
    ) -> (Offered, bool) {
        let mut st = self.state.lock();
        let offered = self.offer_locked(&mut st, ev, prefixes, shed);
        let deliverable = st.deliverable();
        if deliverable {
            // Behind (`Bus::behind`) when the oldest live message still queued waited
            // more than LAGGING_AFTER before this event: seen here at every event, a
            // writer stalled on a full socket counts at once (its own update waits for
            // the write). The event's publish time stands for now: no clock read.
            let oldest = st
                .queue
                .iter()
                .filter(|o| o.class != ItemClass::Replayed)
                .find_map(|o| o.published_at);
            self.set_lagging(
                oldest
                    .is_some_and(|t| ev.published_at.saturating_duration_since(t) > LAGGING_AFTER),
            );
            // And when its client has not answered a ping for PING_LATE: what it has not
            // read yet, in every buffer up to its reader (`probe.rs`).
            self.set_ping_late(self.probe.lag_at(ev.published_at) > super::probe::PING_LATE);
            // And when more messages than WINDOW were queued for it and not confirmed read:
            // grows with every event, before any of them has aged.
            self.window_at(self.probe.queued(st.next_seq.saturating_sub(1)));
        }
        (offered, deliverable)
    }

    /// Whether the session counts as behind, for either cause (tests).
    #[cfg(test)]
    pub fn is_lagging(&self) -> bool {
        self.lag_bits.load(Ordering::Relaxed) != 0
    }

    /// Tells the session's shard whether its writer is behind (`LAG_QUEUE`), counting
    /// changes only: a writer that keeps up never touches the shard's counter.
    pub fn set_lagging(&self, lagging: bool) {
        self.set_lag_bit(LAG_QUEUE, lagging);
    }

    /// Tells the session's shard whether its client is late answering a ping
    /// (`LAG_PING`, `probe.rs`).
    pub fn set_ping_late(&self, late: bool) {
        self.set_lag_bit(LAG_PING, late);
    }

    /// Tells the session's shard whether more than `probe::WINDOW` messages queued for it
    /// are not confirmed read (`LAG_WINDOW`, `probe.rs`).
    pub fn set_window_full(&self, full: bool) {
        self.set_lag_bit(LAG_WINDOW, full);
    }

    /// Sets or clears `LAG_WINDOW` for `unconfirmed` messages: full past the probe's window
    /// (`lag_window_messages`, default `probe::WINDOW`).
    /// (Tried: no longer full only at half of it, so that a held publisher would let half
    /// a window of events through at once, to be written together. Not kept: no cheaper
    /// per message and later, docs/performance.md fifth pass.)
    pub fn window_at(&self, unconfirmed: u64) {
        self.set_window_full(unconfirmed > self.probe.window());
    }

    /// Clears every cause (the connection ends, the session leaves the bus).
    pub fn clear_lag(&self) {
        self.set_lag_bit(LAG_QUEUE | LAG_PING | LAG_WINDOW, false);
    }

    fn set_lag_bit(&self, bit: u8, on: bool) {
        // A plain load first: the shard calls this at every offer, and an unconditional
        // read-modify-write is a locked instruction (a full fence, waiting for the offer's
        // stores to the queue): profiled at ~13 % of the server's time at 1,000 clients.
        let bits = self.lag_bits.load(Ordering::Relaxed);
        if (bits & bit == bit && on) || (bits & bit == 0 && !on) {
            return;
        }
        // The shard counts sessions with any cause: only a change of "any" touches it.
        let (before, after) = if on {
            let before = self.lag_bits.fetch_or(bit, Ordering::Relaxed);
            (before, before | bit)
        } else {
            let before = self.lag_bits.fetch_and(!bit, Ordering::Relaxed);
            (before, before & !bit)
        };
        if (before != 0) != (after != 0) {
            if let Some(count) = self.lag_count.get() {
                count.fetch_add(if after != 0 { 1 } else { -1 }, Ordering::Relaxed);
            }
        }
    }

    fn offer_locked(
        &self,
        st: &mut SessionState,
        ev: &Arc<Event>,
        prefixes: &mut Prefixes,
        shed: bool,
    ) -> Offered {
        if st.retired {
            return Offered::Skipped;
        }
        #[cfg(test)]
        if st.panic_on_offer {
            panic!("fault injected by a test");
        }
        if let Some(held) = &mut st.held {
            // A resume is fetching the past: keep alerts (all) and frames (a bounded few).
            if held.len() < HELD_MAX || ev.event_type.delivery() == Delivery::Alert {
                held.push(ev.clone());
            }
            return Offered::Skipped; // counted when the held events are offered again
        }
        if let (Some(floor), Some(env), Some(id)) =
            (&mut st.floor, &ev.environment_id, ev.stream_id)
        {
            if let Some(have) = floor.get(&**env) {
                if id <= *have {
                    return Offered::Skipped; // the client has it already
                }
                floor.remove(&**env);
                if floor.is_empty() {
                    st.floor = None;
                }
            }
        }
        // Every event about an environment (performance and config updates included)
        // goes only to tokens that grant it.
        if let Some(env) = &ev.environment_id {
            if !st.grant.allows(env) {
                return Offered::Skipped;
            }
        }
        let now = Instant::now();
        let deliverable = st.deliverable();
        // An event is delivered at most once per connection, through the first
        // subscription (in creation order) that matches it.
        let Some((slot, _, sub)) = st.subscriptions.iter_mut().find(|(_, _, s)| s.matches(ev))
        else {
            return Offered::Skipped;
        };
        let slot = *slot;
        let delivery = ev.event_type.delivery();
        let alert = delivery == Delivery::Alert;
        if !deliverable && !alert {
            return Offered::Skipped; // nobody to deliver frames to; alerts are logged below for resume
        }
        if !sub.admit(ev.environment_id.as_deref(), now) {
            st.stats.throttled += 1;
            return Offered::Throttled;
        }
        let prefix = match (&st.grant, ev.event_type) {
            (EnvironmentGrant::Only(granted), super::events::EventType::PerformanceUpdate) => {
                granted_view(ev, granted)
            }
            _ => prefixes.get(ev, sub.pose_view()),
        };
        let item = Outgoing {
            seq: 0,
            prefix,
            class: if alert {
                ItemClass::Alert
            } else {
                ItemClass::Droppable { sub: slot }
            },
            subscription_tag: Some(sub.wire_tag.clone()),
            compression: sub.throttle.compression.unwrap_or(st.default_compression),
            published_at: Some(ev.published_at),
            replayed_from: None,
        };
        let buffer = sub.throttle.buffer_size;
        let mut offered = Offered::Queued;
        if alert {
            // Pose frames waiting ahead of an alert for a client that is behind are stale
            // by the time it would go out: shed them so the alert does not wait for them.
            let shed = shed_frames(st, now);
            self.push_alert(st, item, false);
            if shed > 0 {
                offered = Offered::QueuedDropping(Delivery::Frames);
            }
        } else if delivery == Delivery::Frames
            && (shed || oldest_alert_age(st, now).is_some_and(|age| age > SHED_FRAMES_AFTER))
        {
            st.stats.dropped_frames += 1;
            return Offered::Shed;
        } else {
            let waiting = st
                .queue
                .iter()
                .filter(|o| o.class == ItemClass::Droppable { sub: slot })
                .count();
            if waiting >= buffer {
                if let Some(pos) = st
                    .queue
                    .iter()
                    .position(|o| o.class == ItemClass::Droppable { sub: slot })
                {
                    st.queue.remove(pos);
                    match delivery {
                        Delivery::Frames => st.stats.dropped_frames += 1,
                        _ => st.stats.dropped_limited += 1,
                    }
                    offered = Offered::QueuedDropping(delivery);
                }
            }
            push(st, item);
        }
        offered
    }

    fn push_alert(&self, st: &mut SessionState, mut item: Outgoing, replay: bool) {
        item.seq = st.next_seq;
        st.next_seq += 1;
        st.alert_log_bytes += log_cost(&item);
        let queue = if !st.deliverable() {
            false // logged only: a resume delivers it
        } else if replay {
            true
        } else if st.alerts_queued >= self.alert_queue_capacity {
            // Never drop an alert silently: end the connection; the alert is in the log,
            // and a resume delivers it. The caller wakes the writer (it ends the
            // connection). A client that stays behind for `alert_max_wait` is cut by its
            // writer, which sees what the socket still holds (`backlog.rs`): a wait in our
            // queue alone is as often the server's own (its writers waiting for a core).
            st.closing.get_or_insert(CloseReason::SlowConsumer);
            false
        } else {
            true
        };
        if queue {
            let mut queued = item.clone();
            if replay {
                queued.class = ItemClass::Replayed;
            } else {
                st.alerts_queued += 1;
            }
            st.queue.push_back(queued);
            if replay {
                self.notify.notify_one();
            }
        }
        // Moved into the log, cloned only when also queued: the shared bytes' reference
        // count is touched once per session that is not sent the alert (cut, detached).
        st.alert_log.push_back(item);
        self.trim_alert_log(st);
    }

    /// Keeps the alert log within `alert_history` entries and `alert_history_bytes`,
    /// dropping the oldest (a resume from before them is told `alerts_lost`).
    pub fn trim_alert_log(&self, st: &mut SessionState) {
        while st.alert_log.len() > self.alert_history
            || (st.alert_log_bytes > self.alert_history_bytes && st.alert_log.len() > 1)
        {
            let Some(old) = st.alert_log.pop_front() else {
                break;
            };
            st.alert_log_bytes -= log_cost(&old);
            st.alerts_evicted += 1;
            st.alerts_evicted_max_seq = old.seq;
        }
    }

    /// Queues a reply to the client (never dropped).
    pub fn push_control(&self, prefix: Bytes) {
        let mut st = self.state.lock();
        self.push_control_locked(&mut st, prefix);
        drop(st);
        self.notify.notify_one();
    }

    /// [`SessionShared::push_control`] with the state already locked (the caller notifies).
    pub fn push_control_locked(&self, st: &mut SessionState, prefix: Bytes) {
        let item = Outgoing {
            seq: 0,
            prefix,
            class: ItemClass::Control,
            subscription_tag: None,
            compression: st.default_compression,
            published_at: None,
            replayed_from: None,
        };
        push(st, item);
    }

    /// Sends alerts again under new sequence numbers (after a resume), with the state
    /// already locked: a resume queues its ack and the replay under the lock that adopts
    /// the subscriptions, so an alert published meanwhile comes after the replay.
    pub fn replay_alerts_locked(&self, st: &mut SessionState, items: Vec<Outgoing>) {
        for mut item in items {
            item.replayed_from.get_or_insert(item.seq);
            item.class = ItemClass::Alert;
            self.push_alert(st, item, true);
        }
    }

    /// Ends a resume from the broker: queues `ack(n)` (n: how many of `missed` are sent
    /// again), then the missed alerts that match the session's subscriptions (at most
    /// `alert_history`, the newest), then the live events held meanwhile. Returns n and
    /// whether older matching alerts were left out.
    pub fn finish_broker_resume(
        &self,
        missed: &[Arc<Event>],
        ack: impl FnOnce(usize, bool) -> Bytes,
    ) -> (usize, bool) {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let mut items = Vec::new();
        for ev in missed {
            if ev.event_type.delivery() != Delivery::Alert {
                continue;
            }
            if let Some(env) = &ev.environment_id {
                if !st.grant.allows(env) {
                    continue;
                }
            }
            let Some((_, _, sub)) = st.subscriptions.iter().find(|(_, _, s)| s.matches(ev)) else {
                continue;
            };
            items.push(Outgoing {
                seq: 0,
                prefix: ev.prefix(sub.pose_view()),
                class: ItemClass::Alert,
                subscription_tag: Some(sub.wire_tag.clone()),
                compression: sub.throttle.compression.unwrap_or(st.default_compression),
                published_at: Some(ev.published_at),
                replayed_from: None,
            });
        }
        let truncated = items.len() > self.alert_history;
        if truncated {
            items.drain(..items.len() - self.alert_history);
        }
        let n = items.len();
        push(
            st,
            Outgoing {
                seq: 0,
                prefix: ack(n, truncated),
                class: ItemClass::Control,
                subscription_tag: None,
                compression: st.default_compression,
                published_at: None,
                replayed_from: None,
            },
        );
        for item in items {
            self.push_alert(st, item, true);
        }
        for ev in st.held.take().unwrap_or_default() {
            self.offer_locked(st, &ev, &mut Prefixes::shared(), false);
        }
        drop(guard);
        self.notify.notify_one();
        (n, truncated)
    }

    /// Asks the writer to end the connection with `reason`.
    pub fn close(&self, reason: CloseReason) {
        self.state.lock().closing.get_or_insert(reason);
        self.notify.notify_one();
    }
}

/// A performance_update for a token granting some environments only: its
/// `environment_queues` names only those. Serialized per session, which a message every
/// few seconds affords; every other event shares its bytes.
fn granted_view(ev: &Event, granted: &[String]) -> Bytes {
    let mut data = ev.data.clone();
    let queues = data
        .get_mut("metrics")
        .and_then(|m| m.get_mut("environment_queues"))
        .and_then(serde_json::Value::as_object_mut);
    if let Some(queues) = queues {
        queues.retain(|env, _| granted.iter().any(|g| g == env));
    }
    let mut view = Event::new(ev.event_type, data, None);
    view.timestamp = ev.timestamp.clone();
    view.stream_id = ev.stream_id;
    view.prefix(super::subscription::PoseView::FULL)
}

/// A lag cause: the session's queue holds a message older than [`LAGGING_AFTER`].
const LAG_QUEUE: u8 = 1;
/// A lag cause: the client has not answered a ping for `probe::PING_LATE`.
const LAG_PING: u8 = 2;
/// A lag cause: more than `probe::WINDOW` messages queued for it are not confirmed read.
const LAG_WINDOW: u8 = 4;

/// A writer whose batch held a message older than this is behind (`set_lagging`): far above
/// a keeping-up client's publish-to-write time (well under 1 ms at 100 clients).
pub const LAGGING_AFTER: Duration = Duration::from_millis(10);

/// A queued message older than this means the writer is behind: pose frames then give way
/// to alerts. Far above a keeping-up client's publish-to-write time (well under 1 ms).
const SHED_FRAMES_AFTER: Duration = Duration::from_millis(10);

/// How long the oldest alert waiting in the queue (not yet handed to the socket) has
/// waited since it was published (or since the writer took a resume's replay it waited
/// behind); None when no alert waits, or while a replay is ahead of it: live alerts then
/// wait for the replay by design, which says nothing of how the client keeps up.
fn oldest_alert_age(st: &SessionState, now: Instant) -> Option<Duration> {
    if st.alerts_queued == 0 {
        return None;
    }
    // The queue is in order; alerts leave it only from the front, and the items ahead of
    // the first alert are few (frames are shed while alerts wait; replies are bounded).
    let first = st
        .queue
        .iter()
        .find(|o| matches!(o.class, ItemClass::Alert | ItemClass::Replayed))?;
    if first.class == ItemClass::Replayed {
        return None;
    }
    let since = |t: Instant| st.replay_taken_at.map_or(t, |r| r.max(t));
    first
        .published_at
        .map(|t| now.saturating_duration_since(since(t)))
}

/// Removes the pose frames that have waited in the queue longer than
/// [`SHED_FRAMES_AFTER`] (counted as dropped); returns how many.
fn shed_frames(st: &mut SessionState, now: Instant) -> usize {
    let stale = |o: &Outgoing| {
        o.published_at
            .is_some_and(|t| now.saturating_duration_since(t) > SHED_FRAMES_AFTER)
    };
    // Cheap when the client keeps up (its queue is empty or fresh at the front) and when
    // it takes no pose frames: this runs for every alert.
    if !st.queue.front().is_some_and(stale) {
        return 0;
    }
    let frames_slots: Vec<u32> = st
        .subscriptions
        .iter()
        .filter(|(_, _, s)| s.event_type.delivery() == Delivery::Frames)
        .map(|(slot, _, _)| *slot)
        .collect();
    if frames_slots.is_empty() {
        return 0;
    }
    let before = st.queue.len();
    st.queue.retain(|o| {
        !(matches!(o.class, ItemClass::Droppable { sub } if frames_slots.contains(&sub))
            && stale(o))
    });
    let shed = before - st.queue.len();
    st.stats.dropped_frames += shed as u64;
    shed
}

/// What one alert-log entry is counted as holding: its message bytes (shared with other
/// sessions or not: the bound must hold when they are not) and the entry itself.
pub fn log_cost(item: &Outgoing) -> usize {
    item.prefix.len() + std::mem::size_of::<Outgoing>()
}

fn push(st: &mut SessionState, mut item: Outgoing) {
    item.seq = st.next_seq;
    st.next_seq += 1;
    st.queue.push_back(item);
}

/// Random lowercase hex for session and subscription ids.
pub fn random_hex(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap())
        .collect()
}

/// A test session of one client holding a subscription per spec (ids `sub_0`, `sub_1`...).
#[cfg(test)]
pub(crate) fn session_with(specs: &[serde_json::Value]) -> Arc<SessionShared> {
    let identity = super::auth::Identity {
        subject: "s".into(),
        expires_at: u64::MAX,
        environments: super::auth::EnvironmentGrant::All,
    };
    let session = SessionShared::new(
        "c".into(),
        &identity,
        super::subscription::AppCompression::None,
        256,
        1024,
        1 << 20,
    );
    let mut st = session.state.lock();
    for (i, spec) in specs.iter().enumerate() {
        let id = format!("sub_{i}");
        let sub = super::subscription::Subscription::parse(
            id.clone(),
            spec,
            &super::auth::EnvironmentGrant::All,
        )
        .unwrap();
        st.subscriptions
            .push((i as u32 + 1, Arc::from(id.as_str()), sub));
    }
    drop(st);
    session
}

#[cfg(test)]
mod tests {
    use super::super::auth::EnvironmentGrant;
    use super::super::broker::StreamId;
    use super::super::events::EventType;
    use super::*;
    use std::time::Duration;

    fn alert(n: u64) -> Arc<Event> {
        let mut ev = Event::new(
            EventType::ActivityEvent,
            serde_json::json!({"n": n}),
            Some("ward".into()),
        );
        ev.stream_id = Some(StreamId { ms: n, seq: 0 });
        Arc::new(ev)
    }

    fn ns(session: &SessionShared) -> Vec<u64> {
        let st = session.state.lock();
        st.queue
            .iter()
            .filter(|o| o.class != ItemClass::Control)
            .map(|o| {
                let mut text = o.prefix.to_vec();
                text.extend_from_slice(b"\"x\":0}}");
                let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
                v["data"]["n"].as_u64().unwrap()
            })
            .collect()
    }

    #[test]
    fn a_broker_resume_replays_then_releases_what_was_held_none_twice() {
        let session = session_with(&[serde_json::json!({"event_type": "activity_event"})]);
        {
            let mut st = session.state.lock();
            st.held = Some(Vec::new());
            // The client has 5 already; this node's reader is behind (at 3).
            st.floor = Some([("ward".to_string(), StreamId { ms: 5, seq: 0 })].into());
        }
        for n in [3, 4] {
            session.offer(&alert(n)); // live events while the replay is read: held
        }
        assert!(ns(&session).is_empty());
        let (n, lost) = session.finish_broker_resume(&[], |n, lost| {
            super::super::envelope::control_prefix(
                "ack",
                &serde_json::json!({"n": n, "lost": lost}),
            )
        });
        assert_eq!((n, lost), (0, false));
        for n in [5, 6, 7] {
            session.offer(&alert(n)); // the reader catches up: 5 the client has
        }
        assert_eq!(ns(&session), vec![6, 7]);
        assert!(session.state.lock().floor.is_none(), "passed, so forgotten");
    }

    #[test]
    fn replayed_alerts_go_out_before_the_held_live_ones() {
        let identity = Identity {
            subject: "s".into(),
            expires_at: u64::MAX,
            environments: EnvironmentGrant::All,
        };
        let session =
            SessionShared::new("c".into(), &identity, AppCompression::None, 256, 2, 1 << 20);
        {
            let mut st = session.state.lock();
            let spec = serde_json::json!({"event_type": "activity_event"});
            let sub = Subscription::parse("sub_1".into(), &spec, &EnvironmentGrant::All).unwrap();
            st.subscriptions.push((1, Arc::from("sub_1"), sub));
            st.held = Some(Vec::new());
        }
        session.offer(&alert(9));
        let missed = [alert(6), alert(7), alert(8)];
        let (n, lost) = session.finish_broker_resume(&missed, |n, lost| {
            super::super::envelope::control_prefix("ack", &serde_json::json!({"n": n, "l": lost}))
        });
        // alert_history is 2 here: the newest two are replayed, and the client is told.
        assert_eq!((n, lost), (2, true));
        assert_eq!(ns(&session), vec![7, 8, 9]);
        let st = session.state.lock();
        assert_eq!(st.queue.front().map(|o| o.class), Some(ItemClass::Control));
        let seqs: Vec<u64> = st.queue.iter().map(|o| o.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    }

    use super::session_with;

    /// An event published `ago` before now (in room `env`: the pose throttle's budget is per
    /// environment).
    fn published_in(env: &str, event_type: EventType, ago: Duration) -> Arc<Event> {
        let mut ev = Event::new(event_type, serde_json::json!({}), Some(env.into()));
        ev.published_at = Instant::now() - ago;
        Arc::new(ev)
    }

    fn published(event_type: EventType, ago: Duration) -> Arc<Event> {
        published_in("ward", event_type, ago)
    }

    #[test]
    fn where_alerts_are_offered_only_the_queues_capacity_cuts_the_client() {
        // How long alerts wait is judged by the writer, which sees the socket
        // (`backlog.rs`): an alert that waited 5 s in our queue may have waited for the
        // server's own writers. The count bound (256 here) still holds at every offer.
        let session = session_with(&[serde_json::json!({"event_type": "activity_event"})]);
        for _ in 0..255 {
            session.offer(&published(EventType::ActivityEvent, Duration::from_secs(5)));
        }
        assert_eq!(session.state.lock().closing, None);
        assert_eq!(session.state.lock().alerts_queued, 255);
        session.offer(&published(EventType::ActivityEvent, Duration::ZERO));
        session.offer(&published(EventType::ActivityEvent, Duration::ZERO));
        let st = session.state.lock();
        assert_eq!(st.closing, Some(CloseReason::SlowConsumer));
        assert_eq!(
            st.alerts_queued, 256,
            "the one past the bound is logged, not queued"
        );
        assert_eq!(st.alert_log.len(), 257, "a resume delivers it");
    }

    #[test]
    fn a_session_whose_queue_front_waited_counts_as_behind_until_it_catches_up() {
        let session = session_with(&[serde_json::json!({"event_type": "activity_event"})]);
        session.offer(&published(
            EventType::ActivityEvent,
            Duration::from_millis(30),
        ));
        assert!(!session.is_lagging(), "nothing waited before it");
        session.offer(&published(
            EventType::ActivityEvent,
            Duration::from_millis(25),
        ));
        assert!(!session.is_lagging(), "5 ms behind the front: keeping up");
        session.offer(&published(EventType::ActivityEvent, Duration::ZERO));
        assert!(session.is_lagging(), "the front waited 30 ms");
        session.state.lock().queue.clear(); // the writer wrote them
        session.offer(&published(EventType::ActivityEvent, Duration::ZERO));
        assert!(!session.is_lagging());
    }

    #[test]
    fn stale_pose_frames_give_way_to_alerts() {
        let session = session_with(&[
            serde_json::json!({"event_type": "pose_data", "quality": "low"}),
            serde_json::json!({"event_type": "activity_event"}),
        ]);
        // A frame that has waited 50 ms: the writer is behind.
        let stale = published(EventType::PoseData, Duration::from_millis(50));
        assert_eq!(session.offer(&stale), Offered::Queued);
        // An alert behind it: the frame is shed, the alert goes first.
        let alert = published(EventType::ActivityEvent, Duration::from_millis(40));
        assert_eq!(
            session.offer(&alert),
            Offered::QueuedDropping(Delivery::Frames)
        );
        {
            let st = session.state.lock();
            assert_eq!(st.queue.len(), 1);
            assert_eq!(st.queue[0].class, ItemClass::Alert);
            assert_eq!(st.stats.dropped_frames, 1);
        }
        // While that alert waits (40 ms: behind), new frames are not queued behind it.
        let frame = published_in("hall", EventType::PoseData, Duration::ZERO);
        assert_eq!(session.offer(&frame), Offered::Shed);
        assert_eq!(session.state.lock().queue.len(), 1);
        assert_eq!(session.state.lock().stats.dropped_frames, 2);
    }

    #[test]
    fn fresh_pose_frames_wait_with_alerts_as_before() {
        let session = session_with(&[
            serde_json::json!({"event_type": "pose_data", "quality": "low"}),
            serde_json::json!({"event_type": "activity_event"}),
        ]);
        session.offer(&published(EventType::PoseData, Duration::ZERO));
        session.offer(&published(EventType::ActivityEvent, Duration::ZERO));
        session.offer(&published_in("hall", EventType::PoseData, Duration::ZERO));
        let st = session.state.lock();
        let classes: Vec<_> = st.queue.iter().map(|o| o.class).collect();
        assert_eq!(
            classes,
            vec![
                ItemClass::Droppable { sub: 1 },
                ItemClass::Alert,
                ItemClass::Droppable { sub: 1 }
            ]
        );
        assert_eq!(st.stats.dropped_frames, 0);
    }

    /// A session taking pose frames and alerts, to which a resume queued the replay of an
    /// alert published 500 ms ago.
    fn session_replaying_an_old_alert() -> Arc<SessionShared> {
        let session = session_with(&[
            serde_json::json!({"event_type": "pose_data", "quality": "low"}),
            serde_json::json!({"event_type": "activity_event"}),
        ]);
        let old = published(EventType::ActivityEvent, Duration::from_millis(500));
        {
            let mut st = session.state.lock();
            let item = Outgoing {
                seq: 0,
                prefix: old.prefix(super::super::subscription::PoseView::FULL),
                class: ItemClass::Alert,
                subscription_tag: None,
                compression: AppCompression::None,
                published_at: Some(old.published_at),
                replayed_from: Some(1),
            };
            session.replay_alerts_locked(&mut st, vec![item]);
        }
        session
    }

    #[test]
    fn live_alerts_behind_a_replay_wait_from_when_the_writer_took_it() {
        let session = session_replaying_an_old_alert();
        // A live alert waits 100 ms behind the replay: frames are not shed for that.
        session.offer(&published(
            EventType::ActivityEvent,
            Duration::from_millis(100),
        ));
        let frame = |env| published_in(env, EventType::PoseData, Duration::ZERO);
        assert_eq!(session.offer(&frame("a")), Offered::Queued);
        {
            let mut st = session.state.lock();
            let taken = st.queue.pop_front().unwrap();
            assert_eq!(taken.class, ItemClass::Replayed);
            st.replay_taken_at = Some(Instant::now());
        }
        assert_eq!(
            session.offer(&frame("b")),
            Offered::Queued,
            "a fresh wait after the replay"
        );
        // Past SHED_FRAMES_AFTER from then, frames give way to the waiting alert again.
        session.state.lock().replay_taken_at = Some(Instant::now() - Duration::from_millis(60));
        assert_eq!(session.offer(&frame("c")), Offered::Shed);
        assert_eq!(session.state.lock().closing, None, "waits cut nobody here");
    }
}
