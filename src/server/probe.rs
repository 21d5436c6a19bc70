//! A connection's delivery lag, measured with WebSocket pings.
//!
//! A client answers a ping only once it has read the ping, so only after everything written
//! to its socket before it: the ping's age until its pong is the lag through every buffer
//! between our writer and the client's reader, the client's own receive buffer included.
//! `SIOCOUTQ` (`backlog.rs`) sees only our socket's unacknowledged bytes; on loopback a
//! client's receive buffer autotunes to 32 MiB, seconds of messages no other figure shows
//! (`docs/performance.md`, fourth and fifth passes).
//!
//! While messages flow the writer sends a ping after a batch every [`PING_MESSAGES`]
//! messages, at most every [`PING_EVERY`], one outstanding at a time; the reader clears it
//! when the matching pong comes back, which confirms every message written before it. An
//! outstanding ping older than [`PING_LATE`], or more than [`WINDOW`] messages not
//! confirmed, makes the session count as lagging for the publisher's pacing
//! (`Bus::behind`); a ping older than `alert_max_wait`, with an alert at stake, cuts the
//! client as a slow consumer (it may resume).
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// The least time between two pings of one connection. A ping costs the client a pong
/// (a write) and the server a read: at most 100 a second per connection while messages
/// flow, fewer while it lags (one ping is outstanding at a time). Pongs are what let a
/// held publisher go (`WINDOW`): 25 ms gave a p99 of 114 ms where 10 ms gave 73-97.
pub const PING_EVERY: Duration = Duration::from_millis(10);

/// An outstanding ping older than this makes the session count as lagging (`Bus::behind`
/// holds the publisher while half the connections do): well under the 100 ms a client
/// that keeps up should see, well over a reading client's loopback round trip.
pub const PING_LATE: Duration = Duration::from_millis(20);

/// Messages a client may have been given and not yet confirmed read (by answering a ping
/// sent after them) before it counts as lagging for the publisher's pacing. Unlike a ping's
/// age, this grows with every message queued: a publisher that catches up after a hold
/// (the bench publishes on an absolute schedule) is held again after this many events,
/// not after they have all been queued and aged. Measured at 1,000 clients past
/// saturation (docs/performance.md, fifth pass): 8 kept the p99 at 73-155 ms; 16 and 24
/// let it reach 140-210 ms, with more messages a second (bigger writes) in some runs.
/// Tenth pass: 8 measured 100-113 ms in five runs, 6 measured 83-96 ms in five, at
/// delivered rates within the runs' spread; 4 cost a quarter of the messages a second.
/// The default of `lag_window_messages`, which sets it per server.
pub const WINDOW: u64 = 6;

/// Messages written with batches before the next batch carries a ping (`Pinger::ping_with`).
pub const PING_MESSAGES: u64 = 4;

/// A stream slower than [`PING_MESSAGES`] per this many ping intervals (1 s by default)
/// is pinged at that interval instead: a client that stops reading a trickle of alerts is
/// still cut within about `alert_max_wait` and this.
const PING_SLOW: u32 = 100;

/// The payload's length: the send time, 8 bytes.
const PAYLOAD: usize = 8;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `at` as nanoseconds after the process's epoch, never 0 (0 is "none outstanding").
fn stamp(at: Instant) -> u64 {
    (at.saturating_duration_since(epoch()).as_nanos() as u64).max(1)
}

/// One connection's outstanding ping, shared by its writer (sends), its reader (pongs)
/// and its shard (reads its age at every offer, no clock read).
#[derive(Debug, Default)]
pub struct Probe {
    /// When the outstanding ping was handed to the socket (`stamp`); 0: none.
    outstanding: AtomicU64,
    /// Pongs that answered a ping.
    answered: AtomicU64,
    /// The sequence of the last message written before the outstanding ping.
    ping_seq: AtomicU64,
    /// The last sequence the client has confirmed read (a pong came back from behind it).
    confirmed: AtomicU64,
    /// The last sequence written to the socket (the writer's).
    written: AtomicU64,
    /// The last sequence queued for the client (the shard's, at each offer).
    assigned: AtomicU64,
    /// Whether the writer pings (`lag_ping_interval_s` is not zero): without pings nothing
    /// is ever confirmed, and the window says nothing.
    enabled: AtomicBool,
    /// The messages it may have unconfirmed before it counts as lagging
    /// (`lag_window_messages`); 0: [`WINDOW`].
    window: AtomicU64,
}

impl Probe {
    /// Messages not confirmed read past which the client counts as lagging
    /// (`lag_window_messages`, default [`WINDOW`]).
    pub fn window(&self) -> u64 {
        match self.window.load(Relaxed) {
            0 => WINDOW,
            w => w,
        }
    }

    /// Sets [`Probe::window`] (the server's `lag_window_messages`).
    pub fn set_window(&self, messages: u64) {
        self.window.store(messages, Relaxed);
    }

    /// Whether no ping is outstanding (a writer then reads the clock to ask `due`).
    pub fn idle(&self) -> bool {
        self.outstanding.load(Relaxed) == 0
    }

    /// Whether the writer should send a ping now: none outstanding and the last one sent
    /// at least `every` ago (`last`: the writer keeps it; `lag_ping_interval_s`, by
    /// default [`PING_EVERY`]; zero: never).
    pub fn due(&self, last: Option<Instant>, now: Instant, every: Duration) -> bool {
        !every.is_zero()
            && self.idle()
            && last.is_none_or(|t| now.saturating_duration_since(t) >= every)
    }

    /// Records a ping sent at `at` after the message with sequence `seq`, and returns its
    /// payload.
    pub fn sent(&self, at: Instant, seq: u64) -> Bytes {
        let s = stamp(at);
        self.ping_seq.store(seq, Relaxed);
        self.outstanding.store(s, Relaxed);
        Bytes::copy_from_slice(&s.to_le_bytes())
    }

    /// A pong read with `payload`: when it answers the outstanding ping, clears it and
    /// returns the round trip. Any other pong (unsolicited, or for a ping the client sent
    /// late) is None and changes nothing.
    pub fn answered(&self, payload: &[u8], now: Instant) -> Option<Duration> {
        let bytes: [u8; PAYLOAD] = payload.try_into().ok()?;
        let s = u64::from_le_bytes(bytes);
        if s == 0 {
            return None;
        }
        let seq = self.ping_seq.load(Relaxed);
        self.outstanding
            .compare_exchange(s, 0, Relaxed, Relaxed)
            .ok()?;
        self.confirmed.fetch_max(seq, Relaxed);
        let rtt = Duration::from_nanos(stamp(now).saturating_sub(s));
        self.answered.fetch_add(1, Relaxed);
        Some(rtt)
    }

    /// When the outstanding ping was sent, if one is.
    pub fn outstanding_since(&self) -> Option<Instant> {
        match self.outstanding.load(Relaxed) {
            0 => None,
            s => Some(epoch() + Duration::from_nanos(s)),
        }
    }

    /// The writer wrote every message up to `seq`.
    pub fn wrote(&self, seq: u64) {
        self.written.store(seq, Relaxed);
    }

    /// The writer will ping (its `lag_ping_interval_s` is not zero).
    pub fn enable(&self) {
        self.enabled.store(true, Relaxed);
    }

    /// The shard queued messages up to `seq`; returns how many the client has not
    /// confirmed read (queued, written or in its buffers); 0 without pings.
    pub fn queued(&self, seq: u64) -> u64 {
        if !self.enabled.load(Relaxed) {
            return 0;
        }
        if self.assigned.load(Relaxed) != seq {
            self.assigned.store(seq, Relaxed);
        }
        seq.saturating_sub(self.confirmed.load(Relaxed))
    }

    /// Messages queued for the client and not confirmed read, as of the last offer (0
    /// without pings).
    pub fn unconfirmed(&self) -> u64 {
        if !self.enabled.load(Relaxed) {
            return 0;
        }
        self.assigned
            .load(Relaxed)
            .saturating_sub(self.confirmed.load(Relaxed))
    }

    /// Whether messages were written that no ping has been sent after (none outstanding):
    /// only a follow-up ping can confirm them once the publisher is held.
    pub fn unconfirmed_written(&self) -> bool {
        self.idle() && self.written.load(Relaxed) > self.confirmed.load(Relaxed)
    }

    /// How long the outstanding ping has waited at `now` (zero when none is).
    pub fn lag_at(&self, now: Instant) -> Duration {
        self.outstanding_since()
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
    }
}

/// A writer's side of the probe: when to send a ping, and whether the outstanding one may
/// cut the client.
///
/// A resume's replay is old by nature and may be long (the whole resume log): a ping sent
/// behind it waits for the client to read all of it, which says nothing of how it keeps
/// up. Such a ping never cuts (it still counts for pacing); the next one, sent once it is
/// answered, may.
#[derive(Debug)]
pub struct Pinger {
    every: Duration,
    last: Option<Instant>,
    /// Batches with a replay taken so far, and their number when the last ping was sent.
    replays: u64,
    mark: u64,
    /// Whether a replay was written that no answered ping has come back from behind.
    replay_unread: bool,
    /// Whether the outstanding ping was sent while a replay was unread.
    exempt: bool,
    /// Messages written since the last ping.
    since: u64,
}

impl Pinger {
    /// `every`: `lag_ping_interval_s` (zero: no pings, and none ever cuts).
    pub fn new(every: Duration) -> Pinger {
        Pinger {
            every,
            last: None,
            replays: 0,
            mark: 0,
            replay_unread: false,
            exempt: false,
            since: 0,
        }
    }

    /// The writer took a batch (`replay`: it holds a resume's replay).
    pub fn took(&mut self, replay: bool) {
        if replay {
            self.replays += 1;
            self.replay_unread = true;
        }
    }

    /// A ping answered that was sent after every replay: the client has read them all.
    fn settle(&mut self, probe: &Probe) {
        if probe.idle() && self.mark == self.replays {
            self.replay_unread = false;
        }
    }

    /// The payload of a ping to send with (after) a batch of `messages` written at `now`
    /// whose last message has sequence `seq`, if one is due: [`PING_MESSAGES`] written
    /// since the last one (a ping per message would double what each costs both sides),
    /// or [`PING_SLOW`] times `every` gone by (a slow stream).
    pub fn ping_with(
        &mut self,
        probe: &Probe,
        now: Instant,
        seq: u64,
        messages: usize,
    ) -> Option<Bytes> {
        self.since = self.since.saturating_add(messages as u64);
        let slow = self
            .last
            .is_none_or(|t| now.saturating_duration_since(t) >= self.every * PING_SLOW);
        if self.since < PING_MESSAGES && !slow {
            return None;
        }
        self.ping(probe, now, seq)
    }

    /// The payload of a ping to send at `now` after the message with sequence `seq`, if
    /// none is outstanding and the last went at least `every` ago.
    pub fn ping(&mut self, probe: &Probe, now: Instant, seq: u64) -> Option<Bytes> {
        self.settle(probe);
        if !probe.due(self.last, now, self.every) {
            return None;
        }
        self.since = 0;
        self.last = Some(now);
        self.mark = self.replays;
        self.exempt = self.replay_unread;
        Some(probe.sent(now, seq))
    }

    /// When to send a ping with no batch: the client's window is full (more than
    /// [`WINDOW`] messages not confirmed read, so it may be what holds the publisher, and a
    /// held publisher queues no batch to carry a ping), messages were written that no ping
    /// followed, and none is outstanding. None: no such ping is wanted (below the window a
    /// bare ping per batch was an extra write per message at 30 pose frames a second).
    pub fn follow_up(&self, probe: &Probe) -> Option<Instant> {
        if self.every.is_zero()
            || probe.unconfirmed() <= probe.window()
            || !probe.unconfirmed_written()
        {
            return None;
        }
        Some(self.last.map_or_else(Instant::now, |t| t + self.every))
    }

    /// Whether the client's outstanding ping has waited `grace` at `now` (and was not
    /// sent behind a replay): with an alert owed to it, the client is cut.
    pub fn overdue(&mut self, probe: &Probe, now: Instant, grace: Duration) -> bool {
        self.settle(probe);
        !self.exempt && probe.outstanding_since().is_some() && probe.lag_at(now) >= grace
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn one_ping_at_a_time_and_not_more_often_than_ping_every() {
        let p = Probe::default();
        let t0 = Instant::now();
        assert!(!p.due(None, t0, Duration::ZERO), "zero: never");
        assert!(p.due(None, t0, PING_EVERY), "the first");
        let payload = p.sent(t0, 0);
        assert_eq!(payload.len(), PAYLOAD);
        assert!(
            !p.due(Some(t0), t0 + 10 * PING_EVERY, PING_EVERY),
            "one outstanding"
        );
        assert_eq!(p.answered(&payload, t0 + 3 * MS), Some(3 * MS));
        assert!(
            !p.due(Some(t0), t0 + PING_EVERY - MS, PING_EVERY),
            "too soon"
        );
        assert!(p.due(Some(t0), t0 + PING_EVERY, PING_EVERY));
    }

    #[test]
    fn only_the_matching_pong_clears_the_ping() {
        let p = Probe::default();
        let t0 = Instant::now() + MS;
        let payload = p.sent(t0, 0);
        assert_eq!(p.answered(b"", t0 + MS), None, "unsolicited, empty");
        assert_eq!(p.answered(&[0; 8], t0 + MS), None, "zero");
        let other = (stamp(t0) + 1).to_le_bytes();
        assert_eq!(p.answered(&other, t0 + MS), None, "another ping's");
        assert_eq!(p.answered(&payload[..7], t0 + MS), None, "short");
        assert_eq!(p.lag_at(t0 + 30 * MS), 30 * MS, "still outstanding");
        assert!(p.outstanding_since().is_some());
        assert_eq!(p.answered(&payload, t0 + 40 * MS), Some(40 * MS));
        assert_eq!(p.answered(&payload, t0 + 41 * MS), None, "answered once");
        assert_eq!(p.lag_at(t0 + 50 * MS), Duration::ZERO);
        assert_eq!(p.outstanding_since(), None);
        assert_eq!(p.answered.load(Relaxed), 1);
    }

    #[test]
    fn an_outstanding_ping_cuts_at_the_grace_not_before() {
        let p = Probe::default();
        let mut w = Pinger::new(PING_EVERY);
        let t0 = Instant::now();
        let grace = 100 * MS;
        assert!(!w.overdue(&p, t0 + 10 * grace, grace), "no ping sent");
        w.took(false);
        let payload = w.ping(&p, t0, 0).expect("the first ping");
        assert!(w.ping(&p, t0 + 50 * MS, 0).is_none(), "one outstanding");
        assert!(!w.overdue(&p, t0 + 99 * MS, grace));
        assert!(w.overdue(&p, t0 + 100 * MS, grace));
        assert!(p.answered(&payload, t0 + 120 * MS).is_some());
        assert!(!w.overdue(&p, t0 + 500 * MS, grace), "answered");
        assert!(w.ping(&p, t0 + 500 * MS, 0).is_some(), "due again");
    }

    #[test]
    fn a_ping_sent_behind_a_replay_never_cuts_the_next_one_may() {
        let p = Probe::default();
        let mut w = Pinger::new(PING_EVERY);
        let t0 = Instant::now();
        let grace = 100 * MS;
        w.took(true); // a resume's replay
        let first = w.ping(&p, t0, 0).unwrap();
        assert!(!w.overdue(&p, t0 + 10 * grace, grace), "reading the replay");
        w.took(false);
        w.took(true); // more of the replay, while the first ping is out
        assert!(p.answered(&first, t0 + 2 * grace).is_some());
        // The answered ping was sent before the last replay batch: still unread.
        let second = w.ping(&p, t0 + 2 * grace, 0).unwrap();
        assert!(!w.overdue(&p, t0 + 5 * grace, grace));
        assert!(p.answered(&second, t0 + 5 * grace).is_some());
        w.took(false);
        let _third = w.ping(&p, t0 + 6 * grace, 0).unwrap();
        assert!(!w.overdue(&p, t0 + 6 * grace + 99 * MS, grace));
        assert!(w.overdue(&p, t0 + 7 * grace, grace), "live from here on");
    }

    #[test]
    fn a_zero_interval_sends_no_ping_and_never_cuts() {
        let p = Probe::default();
        let mut w = Pinger::new(Duration::ZERO);
        let t0 = Instant::now();
        assert!(w.ping(&p, t0, 0).is_none());
        assert!(!w.overdue(&p, t0 + Duration::from_secs(60), MS));
    }

    #[test]
    fn a_pong_confirms_what_was_written_before_its_ping() {
        let p = Probe::default();
        let mut w = Pinger::new(PING_EVERY);
        let t0 = Instant::now();
        assert_eq!(p.queued(30), 0, "no pings: nothing to say");
        p.enable();
        assert_eq!(p.queued(30), 30, "nothing confirmed yet");
        assert!(w.follow_up(&p).is_none(), "nothing written");
        p.wrote(10);
        assert!(
            w.follow_up(&p).is_some(),
            "written, no ping after it, window full"
        );
        let payload = w.ping(&p, t0, 10).unwrap();
        p.wrote(20); // more written while the ping is out
        assert_eq!(w.follow_up(&p), None, "one outstanding");
        assert_eq!(p.unconfirmed(), 30);
        assert!(p.answered(&payload, t0 + 5 * MS).is_some());
        assert_eq!(p.unconfirmed(), 20, "10 confirmed");
        assert_eq!(p.queued(40), 30);
        // 11..20 were written after the ping: a follow-up is wanted, PING_EVERY after it.
        assert_eq!(w.follow_up(&p), Some(t0 + PING_EVERY));
        let again = w.ping(&p, t0 + PING_EVERY, 20).unwrap();
        assert!(p.answered(&again, t0 + PING_EVERY + MS).is_some());
        assert_eq!(p.unconfirmed(), 20);
        assert_eq!(w.follow_up(&p), None, "everything written is confirmed");
        assert_eq!(Pinger::new(Duration::ZERO).follow_up(&p), None);
        // Written and not confirmed, but within the window: no bare ping.
        assert_eq!(p.queued(25), 5);
        p.wrote(25);
        assert_eq!(w.follow_up(&p), None, "the window is not full");
    }

    #[test]
    fn a_batch_carries_a_ping_every_ping_messages_or_once_a_second() {
        let p = Probe::default();
        let mut w = Pinger::new(PING_EVERY);
        let t0 = Instant::now();
        let first = w.ping_with(&p, t0, 1, 1).expect("the first batch");
        assert!(p.answered(&first, t0 + MS).is_some());
        assert!(
            w.ping_with(&p, t0 + 20 * MS, 2, 1).is_none(),
            "one message since"
        );
        assert!(w.ping_with(&p, t0 + 40 * MS, 4, 2).is_none(), "three");
        let fourth = w.ping_with(&p, t0 + 60 * MS, 5, 1).expect("four");
        assert!(p.answered(&fourth, t0 + 61 * MS).is_some());
        let second = t0 + 60 * MS + PING_EVERY * PING_SLOW;
        assert!(
            w.ping_with(&p, second - MS, 6, 1).is_none(),
            "a slow stream"
        );
        assert!(
            w.ping_with(&p, second, 7, 1).is_some(),
            "a second since the last"
        );
    }
}
