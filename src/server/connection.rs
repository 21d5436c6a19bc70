//! One WebSocket connection: a reader task (client messages, liveness) and a writer loop
//! (the session's queue, server heartbeats, token expiry, shutdown), until one of them ends it.
use std::io::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::Notify;
use yawc::close::CloseCode;
use yawc::{Frame, OpCode};

use super::auth::Identity;
use super::backlog::{Backlog, Owed, SendQueue, Verdict};
use super::commands::{self, code, ClientState};
use super::envelope::{control_prefix, finish, finish_into, now_rfc3339, Metadata};
use super::probe::Pinger;
use super::session_state::{CloseReason, ItemClass, Outgoing, SessionShared, LAGGING_AFTER};
use super::shared::Shared;
use super::subscription::AppCompression;

/// Most messages written before one flush.
const BATCH: usize = 64;

/// Bytes yawc collects before it writes to the socket (its backpressure boundary): a
/// batch of [`BATCH`] pose frames goes out in one or two writes, not one per 8 KiB.
pub(super) const WRITE_BATCH_BYTES: usize = 64 << 10;

/// The longest WebSocket frame header (RFC 6455 5.2: 2 bytes, 8 of length, 4 of mask).
const FRAME_HEAD_MAX: usize = 14;

/// Pings read whose pongs are not yet written, past which the reader stops reading until
/// the writer has sent them: yawc queues a pong per ping without bound, and only a write
/// sends them.
const PONGS_OWED_MAX: u32 = 16;

/// Replies (acks, errors, statuses) waiting for the client, past which the reader stops
/// reading: a client that sends and never reads is held by TCP back-pressure instead of
/// growing its queue (and the writer's timeout ends it).
const REPLIES_QUEUED_MAX: usize = 64;

/// Sets an accepted socket's send buffer (`socket_send_buffer_bytes`; 0 leaves the
/// kernel's autotuning). Failure is harmless: the kernel's default stays.
#[cfg(unix)]
pub(super) fn limit_send_buffer(stream: &tokio::net::TcpStream, bytes: usize) {
    use std::os::fd::AsRawFd as _;
    if bytes == 0 {
        return;
    }
    let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: a valid socket descriptor, and a c_int option value of the stated length.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(unix))]
pub(super) fn limit_send_buffer(_stream: &tokio::net::TcpStream, _bytes: usize) {}

/// How the reader saw the connection end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PeerEnd {
    /// A close frame: the client is done; its session ends.
    Clean,
    /// The socket broke without a close frame: the session stays resumable.
    Abrupt,
}

struct ReaderDone {
    end: std::sync::Mutex<Option<PeerEnd>>,
    notify: Notify,
}

/// Serves one upgraded connection until it ends.
pub async fn serve<S>(
    shared: Arc<Shared>,
    ws: yawc::WebSocket<S>,
    session: Arc<SessionShared>,
    identity: Identity,
    pmd_negotiated: bool,
    send_queue: Option<SendQueue>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    shared.metrics.connections_total.fetch_add(1, Relaxed);
    // Gives the connection slot back however this task ends: a panic here once leaked
    // the slot and the session, and max_connections of them shut everyone out.
    let _slot = Slot {
        shared: shared.clone(),
        session: session.clone(),
    };
    let (mut sink, stream) = ws.split();
    let done = Arc::new(ReaderDone {
        end: std::sync::Mutex::new(None),
        notify: Notify::new(),
    });
    session.push_control(control_prefix(
        "connection_status",
        &commands::connection_status(&shared, &session, "connected"),
    ));
    let mut reader = tokio::spawn(read_loop(
        shared.clone(),
        session.clone(),
        stream,
        done.clone(),
    ));

    let reason = write_loop(
        &shared,
        &session,
        &identity,
        &mut sink,
        &done,
        pmd_negotiated,
        send_queue,
    )
    .await;
    if reason.is_some() {
        // Finish the closing handshake: read until the client's close frame, so the socket
        // is not dropped with unread data (the kernel would answer with a reset and the
        // client would lose our close frame and its reason).
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut reader).await;
    }
    reader.abort();
    let peer_end = *done.end.lock().unwrap();
    finish_session(&shared, &session, reason, peer_end);
}

/// A connection's slot in `connections_active` (taken at the handshake, see http.rs),
/// given back on drop; on a panic, the session goes too.
struct Slot {
    shared: Arc<Shared>,
    session: Arc<SessionShared>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.session.state.lock().retired = true;
            self.shared.bus.remove_session(self.session.id);
            self.shared.detached.remove(self.session.id);
        }
        self.shared.metrics.connections_active.fetch_sub(1, Relaxed);
    }
}

fn finish_session(
    shared: &Shared,
    session: &Arc<SessionShared>,
    reason: Option<CloseReason>,
    peer_end: Option<PeerEnd>,
) {
    session.clear_lag();
    let mut st = session.state.lock();
    st.attached = false;
    st.queue.clear();
    st.alerts_queued = 0;
    let keep = match reason {
        Some(r) => r.keeps_session(),
        None => peer_end != Some(PeerEnd::Clean),
    };
    if keep && !st.retired {
        st.closing = None;
        st.detached_at = Some(Instant::now());
        drop(st);
        let evicted = shared.detached.add(
            session.clone(),
            shared.config.max_detached_sessions,
            shared.config.max_detached_per_subject,
        );
        for old in evicted {
            forget(shared, &old);
        }
    } else {
        // A session retired by a resume lives on elsewhere, and one whose node shuts down
        // can be resumed on another: their records stay.
        let resumed = st.retired || reason == Some(CloseReason::ServerShutdown);
        st.retired = true;
        let session_id = st.session_id.clone();
        drop(st);
        shared.bus.remove_session(session.id);
        if let (Some(b), false) = (&shared.broker, resumed) {
            b.drop_session(&session_id);
        }
    }
}

/// Forgets a detached session to keep within the caps (`detached.rs`).
fn forget(shared: &Shared, session: &SessionShared) {
    let mut st = session.state.lock();
    if st.retired || st.attached {
        return;
    }
    st.retired = true;
    st.alert_log = Default::default();
    st.alert_log_bytes = 0;
    let session_id = st.session_id.clone();
    drop(st);
    shared.bus.remove_session(session.id);
    if let Some(b) = &shared.broker {
        b.drop_session(&session_id);
    }
}

async fn read_loop<S>(
    shared: Arc<Shared>,
    session: Arc<SessionShared>,
    mut stream: futures::stream::SplitStream<yawc::WebSocket<S>>,
    done: Arc<ReaderDone>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut client = ClientState::new(&shared.config.rate_limits);
    let timeout = shared.config.heartbeat_timeout;
    // Moved by every frame from the client but the pongs to our own pings (see below).
    let mut deadline = tokio::time::Instant::now() + timeout;
    let end = loop {
        if !wait_for_room(&shared, &session).await {
            // The writer has given up on this client: read nothing more (a ping read now
            // would queue another pong that is never sent).
            break None;
        }
        let frame = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => {
                deadline = tokio::time::Instant::now() + timeout;
                if session.state.lock().closing.is_none() {
                    shared.metrics.heartbeat_timeouts.fetch_add(1, Relaxed);
                    session.close(CloseReason::HeartbeatTimeout);
                }
                continue; // keep reading until the client answers the close
            }
            Ok(None) => break Some(PeerEnd::Abrupt),
            Ok(Some(frame)) => frame,
        };
        if frame.opcode() == OpCode::Pong {
            if let Some(lag) = session.probe.answered(frame.payload(), Instant::now()) {
                // The answer to the writer's ping (`probe.rs`): the client has read
                // everything sent before it. Its library answers, not the client: neither
                // proof of life for the heartbeat timeout nor a message for the flood limit
                // (the server asks for up to 100 a second).
                session.set_ping_late(false);
                session.window_at(session.probe.unconfirmed());
                shared.metrics.observe_lag(lag);
                if session.probe.unconfirmed_written() {
                    // Written since the ping: the writer follows up (`Pinger::follow_up`).
                    session.notify.notify_one();
                }
                continue;
            }
        }
        deadline = tokio::time::Instant::now() + timeout;
        if frame.opcode() == OpCode::Close {
            // yawc queued the close reply; one more read sends it (and then ends).
            let _ = tokio::time::timeout(Duration::from_millis(500), stream.next()).await;
            break Some(PeerEnd::Clean);
        }
        if frame.opcode() == OpCode::Ping {
            // Counted while closing too: yawc queues its pong whatever state we are in.
            session.pongs_owed.fetch_add(1, Relaxed);
        }
        if session.state.lock().closing.is_some() {
            continue; // closing: drain what the client still sends, act on none of it
        }
        if frame.payload().len() > shared.config.max_message_bytes {
            session.close(CloseReason::MessageTooBig);
            continue;
        }
        match frame.opcode() {
            OpCode::Text => {
                let reason = match std::str::from_utf8(frame.payload()) {
                    Ok(text) => commands::handle_text(&shared, &session, &mut client, text),
                    Err(_) => commands::handle_malformed(
                        &shared,
                        &session,
                        &mut client,
                        "Text frame is not valid UTF-8",
                        json!({}),
                    ),
                };
                if let Some(reason) = reason {
                    session.close(reason);
                }
            }
            OpCode::Binary => {
                if let Some(reason) = commands::handle_malformed(
                    &shared,
                    &session,
                    &mut client,
                    "Binary frames are not accepted; send JSON text messages",
                    json!({"reason": "binary_frame"}),
                ) {
                    session.close(reason);
                }
            }
            // Pings (answered by yawc) and pongs: proof of life, and messages like any
            // other for the flood limit (a ping costs the server a pong).
            OpCode::Ping | OpCode::Pong => {
                if let Some(reason) =
                    commands::count_message(&shared, &session, &mut client, Instant::now())
                {
                    session.close(reason);
                }
            }
            _ => {}
        }
    };
    *done.end.lock().unwrap() = end;
    done.notify.notify_one();
}

/// Waits while the connection owes the client too much (pongs, replies), until the writer
/// has written them. Returns false when the writer gave up (it ends the connection).
async fn wait_for_room(shared: &Shared, session: &SessionShared) -> bool {
    loop {
        let written = session.written.notified();
        tokio::pin!(written);
        written.as_mut().enable();
        let full = {
            let st = session.state.lock();
            let replies = if st.queue.len() < REPLIES_QUEUED_MAX {
                0
            } else {
                st.queue
                    .iter()
                    .filter(|o| o.class == ItemClass::Control)
                    .count()
            };
            session.pongs_owed.load(Relaxed) >= PONGS_OWED_MAX || replies >= REPLIES_QUEUED_MAX
        };
        if !full {
            return true;
        }
        session.notify.notify_one(); // the writer sends what is owed (pongs: see write_loop)
                                     // The writer either writes within its timeout or ends the connection; the margin
                                     // covers the goodbye.
        let patience = shared.config.write_timeout + Duration::from_secs(3);
        if tokio::time::timeout(patience, written).await.is_err() {
            return false;
        }
    }
}

/// Writes the session's queue until the connection ends; returns the server's reason, or
/// None when the peer went away first.
async fn write_loop<W>(
    shared: &Shared,
    session: &Arc<SessionShared>,
    identity: &Identity,
    sink: &mut W,
    done: &ReaderDone,
    pmd_negotiated: bool,
    send_queue: Option<SendQueue>,
) -> Option<CloseReason>
where
    W: futures::Sink<Frame> + Unpin,
{
    let mut shutdown = shared.shutdown.clone();
    let mut heartbeat = tokio::time::interval(shared.config.heartbeat_interval);
    heartbeat.tick().await; // the first tick is immediate
    let connected_at = Instant::now();
    let expiry = token_deadline(identity.expires_at);
    let expiry_sleep = tokio::time::sleep_until(expiry);
    tokio::pin!(expiry_sleep);
    let mut expired = false;
    let mut batch: Vec<Outgoing> = Vec::with_capacity(BATCH);
    // Where each message is completed before the WebSocket layer copies it (`finish_into`).
    let mut scratch = Scratch::default();
    let mut flushed = false;
    // Whether the client is behind (`backlog.rs`): cut when it owes more than its socket
    // can hold for longer than `alert_max_wait`.
    let mut backlog = Backlog::new(
        Backlog::bound_for(shared.config.socket_send_buffer_bytes),
        shared.config.alert_max_wait,
    );
    // When to ping the client, and whether its outstanding ping cuts it (`probe.rs`).
    let mut pinger = Pinger::new(shared.config.lag_ping_interval);
    let mut written_seq = 0u64;
    if !shared.config.lag_ping_interval.is_zero() {
        session.probe.enable();
    }
    session.probe.set_window(shared.config.lag_window_messages);
    loop {
        if done.end.lock().unwrap().is_some() {
            // yawc may have queued a close frame (protocol error, hard size limit): send it.
            let _ = tokio::time::timeout(Duration::from_millis(500), sink.flush()).await;
            return session.state.lock().closing;
        }
        let now = Instant::now();
        let (closing, look, facts, lag_cut) = {
            let mut st = session.state.lock();
            // A server shutting down still delivers, once, everything queued when it
            // closed (its own system_stopping included); other closes skip the queue.
            let last_flush = st.closing == Some(CloseReason::ServerShutdown) && !flushed;
            if st.closing.is_none() || last_flush {
                let n = if last_flush {
                    flushed = true;
                    st.queue.len()
                } else {
                    st.queue.len().min(BATCH)
                };
                batch.extend(st.queue.drain(..n));
                if batch.iter().any(|o| o.class == ItemClass::Replayed) {
                    // Live alerts behind the replay count their wait from here.
                    st.replay_taken_at = Some(now);
                }
                // Whether this writer is behind (`Bus::behind`): its oldest live message
                // waited long, for time to run or for the client's socket to take it. A
                // replay after a resume is old by nature and says nothing of that.
                let oldest = batch
                    .iter()
                    .filter(|o| o.class != ItemClass::Replayed)
                    .find_map(|o| o.published_at);
                session.set_lagging(
                    oldest.is_some_and(|t| now.saturating_duration_since(t) > LAGGING_AFTER),
                );
                // Or its client is slow to answer a ping (`probe.rs`): also seen at every
                // offer, cleared by the pong.
                session.set_ping_late(session.probe.lag_at(now) > super::probe::PING_LATE);
                let alerts = batch.iter().filter(|o| o.class == ItemClass::Alert).count();
                st.alerts_queued -= alerts;
                st.stats.sent += batch.len() as u64;
            }
            let facts = BatchFacts::of(&batch);
            pinger.took(facts.replay);
            // With a live alert owed (in the batch or waiting behind it), a client that has
            // not answered a ping for `alert_max_wait` is behind by at least that, in some
            // buffer between us and its reader (its own receive buffer, autotuned to tens of
            // MB, holds seconds of messages that no other figure shows): it is cut, and
            // resumes. Not while a replay is ahead (`Pinger`), nor while the server as a
            // whole is behind (below).
            let lag_cut = st.closing.is_none()
                && !facts.replay
                && (facts.alerts || st.alerts_queued > 0)
                && pinger.overdue(&session.probe, now, shared.config.alert_max_wait);
            // Whether to judge the client now (`Backlog`). Nothing at stake (no live alert
            // in the batch or waiting behind it) or a replay ahead ends a stretch. Live
            // alerts still waiting after this batch, or a stretch going on: what it owes
            // now is ours (what waits, and this batch) plus the kernel's. Otherwise the
            // write says (a full socket is judged while the write waits): no look, no cost.
            let look = if st.closing.is_some() {
                None
            } else if facts.replay || (!facts.alerts && st.alerts_queued == 0) {
                Some(None)
            } else if st.alerts_queued > 0 || backlog.behind() {
                Some(queued_bytes(&st.queue).map(|q| q + facts.bytes))
            } else {
                None
            };
            (st.closing, look, facts, lag_cut)
        };
        // While a quarter of the clients lag (`Bus::behind`) the publisher is held until
        // they catch up; cutting them too would only add resumes (measured: every client
        // cut several times a run at 1,000 clients past saturation). A client late while
        // most others are not is the one to cut.
        if lag_cut && !shared.bus.behind() {
            // Not written: its alerts stay in the log, and a resume sends them.
            shared.metrics.lag_cuts.fetch_add(1, Relaxed);
            session.state.lock().stats.sent -= batch.len() as u64;
            batch.clear();
            session.close(CloseReason::SlowConsumer);
            continue;
        }
        if let Some(ours) = look {
            if judged(shared, &mut backlog, ours, send_queue, false) {
                // Not written: its alerts stay in the log, and a resume sends them.
                session.state.lock().stats.sent -= batch.len() as u64;
                batch.clear();
                session.close(CloseReason::SlowConsumer);
                continue;
            }
        }
        if let Some(reason) = closing {
            if !batch.is_empty() {
                let written = write_batch(
                    shared,
                    session,
                    sink,
                    &mut batch,
                    pmd_negotiated,
                    &mut scratch,
                    None,
                );
                let _ = bounded(shared.config.write_timeout, written).await;
                batch.clear();
            }
            send_goodbye(shared, session, sink, reason).await;
            return Some(reason);
        }
        if batch.is_empty() && session.pongs_owed.load(Relaxed) >= PONGS_OWED_MAX {
            // Nothing to write, but pongs are owed: yawc sends its queued pongs before any
            // frame it is given, so give it an (unsolicited, RFC 6455 5.5.3) empty pong.
            let pong = async {
                sink.feed(Frame::pong(Bytes::new())).await.map_err(|_| ())?;
                sink.flush().await.map_err(|_| ())
            };
            match bounded(shared.config.write_timeout, pong).await {
                Ok(Ok(())) => {
                    session.pongs_owed.store(0, Relaxed);
                    session.written.notify_one();
                    continue;
                }
                Ok(Err(())) => return None,
                Err(_) => {
                    session.close(CloseReason::SlowConsumer);
                    continue;
                }
            }
        }
        if !batch.is_empty() {
            // A ping goes with the batch, after it, when one is due (`probe.rs`).
            let last_seq = batch.iter().map(|o| o.seq).max().unwrap_or(0);
            let ping = pinger.ping_with(&session.probe, now, last_seq, batch.len());
            let written = write_batch(
                shared,
                session,
                sink,
                &mut batch,
                pmd_negotiated,
                &mut scratch,
                ping,
            );
            let stall = Stall {
                backlog: &mut backlog,
                send_queue,
                facts,
            };
            let outcome = write_unless_cut(shared, session, stall, written).await;
            // What was not written stays in the alert log (resume); it is not tried again.
            batch.clear();
            match outcome {
                Written::Done => {
                    session.probe.wrote(last_seq);
                    written_seq = last_seq;
                    // Writing a frame sent every pong queued before it.
                    session.pongs_owed.store(0, Relaxed);
                    session.written.notify_one();
                    if backlog.behind() {
                        // Whether the stretch goes on: the batch is in the kernel now.
                        let ours = queued_bytes(&session.state.lock().queue);
                        if judged(shared, &mut backlog, ours, send_queue, false) {
                            session.close(CloseReason::SlowConsumer);
                        }
                    }
                    continue;
                }
                Written::Broken => return None, // the socket broke
                Written::TimedOut => {
                    session.close(CloseReason::SlowConsumer);
                    continue;
                }
                Written::Cut => continue, // the closing path above ends the connection
            }
        }
        // A ping with no batch, when the client's window is full, messages written are not
        // confirmed read and none is outstanding (`Pinger::follow_up`): a held publisher
        // may be waiting for its pong.
        let follow_up = pinger.follow_up(&session.probe);
        let follow_up_at = async {
            match follow_up {
                Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = session.notify.notified() => {}
            _ = done.notify.notified() => {}
            _ = follow_up_at => {
                if let Some(payload) = pinger.ping(&session.probe, Instant::now(), written_seq) {
                    let ping = async {
                        sink.feed(Frame::ping(payload)).await.map_err(|_| ())?;
                        sink.flush().await.map_err(|_| ())
                    };
                    match bounded(shared.config.write_timeout, ping).await {
                        Ok(Ok(())) => {
                            session.pongs_owed.store(0, Relaxed);
                            session.written.notify_one();
                        }
                        Ok(Err(())) => return None,
                        Err(_) => session.close(CloseReason::SlowConsumer),
                    }
                }
            }
            _ = heartbeat.tick() => {
                session.push_control(control_prefix("heartbeat", &json!({
                    "client_id": session.client_id,
                    "uptime": connected_at.elapsed().as_secs(),
                    "server_time": now_rfc3339(),
                })));
            }
            _ = &mut expiry_sleep, if !expired => {
                expired = true;
                session.push_control(control_prefix("token_expired", &json!({
                    "message": CloseReason::TokenExpired.message(),
                    "expired_at": identity.expires_at,
                })));
                session.close(CloseReason::TokenExpired);
            }
            _ = shutdown.changed() => session.close(CloseReason::ServerShutdown),
        }
    }
}

/// How a batch's write ended.
enum Written {
    Done,
    /// The socket broke.
    Broken,
    /// Not done within `write_timeout`.
    TimedOut,
    /// Given up while stalled because the session is closing: the client stayed behind
    /// past `alert_max_wait` (`Backlog`), or another reason that skips the queue.
    Cut,
}

/// What a write waiting for a full socket needs to judge the client meanwhile.
struct Stall<'a> {
    backlog: &'a mut Backlog,
    send_queue: Option<SendQueue>,
    facts: BatchFacts,
}

/// What a batch being written holds, for the backlog judge.
#[derive(Clone, Copy)]
struct BatchFacts {
    /// Its messages' bytes (each message's shared part; its metadata adds a few dozen).
    bytes: usize,
    /// A live alert.
    alerts: bool,
    /// A resume's replay: live alerts wait behind it by design (not judged).
    replay: bool,
}

impl BatchFacts {
    fn of(batch: &[Outgoing]) -> BatchFacts {
        let mut facts = BatchFacts {
            bytes: 0,
            alerts: false,
            replay: false,
        };
        for o in batch {
            facts.bytes += o.prefix.len();
            facts.alerts |= o.class == ItemClass::Alert;
            facts.replay |= o.class == ItemClass::Replayed;
        }
        facts
    }
}

/// Writes a batch, bounded by the write timeout, and gives up early when the session is
/// told to close meanwhile or its client stays behind (`Backlog`, looked at every
/// `Backlog::tick` while the socket is full): a client that stops reading is cut within
/// `alert_max_wait` of owing more than its socket holds, not only after `write_timeout`.
/// A shutdown's close waits for the write (it delivers what was queued). Dropping the
/// write mid-way is safe: yawc keeps the bytes of frames it took, and fed alerts count as
/// written (`alerts_written`).
async fn write_unless_cut<F>(
    shared: &Shared,
    session: &SessionShared,
    stall: Stall<'_>,
    write: F,
) -> Written
where
    F: std::future::Future<Output = Result<(), ()>>,
{
    use futures::FutureExt as _;
    let mut write = std::pin::pin!(write);
    // The common case: the socket had room. No timer is armed (a timer per write,
    // registered and cancelled, was a measurable part of a client's cost per message).
    if let Some(r) = write.as_mut().now_or_never() {
        return if r.is_ok() {
            Written::Done
        } else {
            Written::Broken
        };
    }
    let timeout = tokio::time::sleep(shared.config.write_timeout);
    tokio::pin!(timeout);
    let mut look = tokio::time::interval(stall.backlog.tick());
    look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let told = session.notify.notified();
        tokio::select! {
            biased;
            r = &mut write => {
                return if r.is_ok() { Written::Done } else { Written::Broken };
            }
            _ = &mut timeout => return Written::TimedOut,
            // A wake for a new item is not lost by taking it here: after every write the
            // writer looks at the queue again.
            _ = told => {
                let closing = session.state.lock().closing;
                if closing.is_some_and(|r| r != CloseReason::ServerShutdown) {
                    return Written::Cut;
                }
            }
            _ = look.tick() => {
                let ours = ours_while_stalled(session, stall.facts);
                if judged(shared, stall.backlog, ours, stall.send_queue, true) {
                    session.close(CloseReason::SlowConsumer);
                    return Written::Cut;
                }
            }
        }
    }
}

/// One look of the backlog judge at what the client owes: `ours` (None: nothing to judge)
/// and, when that alone does not decide, the kernel's figure (a syscall). Stretches are
/// counted in /metrics; true: cut the client.
fn judged(
    shared: &Shared,
    backlog: &mut Backlog,
    ours: Option<usize>,
    send_queue: Option<SendQueue>,
    stalled: bool,
) -> bool {
    let Some(ours) = ours else {
        backlog.reset();
        return false;
    };
    let owed = Some(Owed {
        ours,
        kernel: backlog
            .needs_kernel(ours)
            .then(|| send_queue.and_then(|q| q.unacknowledged()))
            .flatten(),
        stalled,
    });
    match backlog.look(Instant::now(), owed) {
        Verdict::Began => {
            shared.metrics.clients_behind.fetch_add(1, Relaxed);
            false
        }
        Verdict::Cut => true,
        Verdict::Fine | Verdict::Behind => false,
    }
}

/// What is ours to send to a client whose socket is full: what waits and the whole batch
/// being written (part of it may be in the kernel already, at most one write of
/// `WRITE_BATCH_BYTES`). None while nothing is at stake (no live alert in either) or a
/// replay is ahead.
fn ours_while_stalled(session: &SessionShared, facts: BatchFacts) -> Option<usize> {
    if facts.replay {
        return None;
    }
    let st = session.state.lock();
    if st.alerts_queued == 0 && !facts.alerts {
        return None;
    }
    queued_bytes(&st.queue).map(|q| q + facts.bytes)
}

/// The bytes waiting in a session's queue (each message's shared part: its metadata adds
/// a few dozen bytes), or None when a resume's replay is among them.
fn queued_bytes(queue: &std::collections::VecDeque<Outgoing>) -> Option<usize> {
    let mut bytes = 0;
    for o in queue {
        if o.class == ItemClass::Replayed {
            return None;
        }
        bytes += o.prefix.len();
    }
    Some(bytes)
}

/// Runs a write, bounded by `limit`. A write that completes at once (the socket had room,
/// the common case) arms no timer: a timer per write, registered and cancelled, was a
/// measurable part of a client's cost per message.
async fn bounded<F: std::future::Future>(
    limit: Duration,
    fut: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    use futures::FutureExt as _;
    let mut fut = std::pin::pin!(fut);
    // Polled once with a no-op waker; if it is not done, the timeout polls it again with
    // the task's waker, which is what the socket then wakes.
    if let Some(out) = fut.as_mut().now_or_never() {
        return Ok(out);
    }
    tokio::time::timeout(limit, fut).await
}

fn token_deadline(expires_at: u64) -> tokio::time::Instant {
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    // Verification refuses an `exp` past the year 9999; capped again here, a century
    // away being never, because an overflowing deadline panics the writer.
    let left = (expires_at as f64 - now_s).clamp(0.0, 100.0 * 365.0 * 86_400.0);
    let now = tokio::time::Instant::now();
    now.checked_add(Duration::from_secs_f64(left))
        .unwrap_or(now + Duration::from_secs(86_400 * 365))
}

/// A writer's two scratch buffers, used in turn (`finish_into`): the split sink holds the
/// frame it was last given until the next one comes, so a message's buffer is free again
/// only two messages later. With one, every other message allocated.
#[derive(Default)]
struct Scratch([BytesMut; 2]);

async fn write_batch<W>(
    shared: &Shared,
    session: &SessionShared,
    sink: &mut W,
    batch: &mut Vec<Outgoing>,
    pmd_negotiated: bool,
    scratch: &mut Scratch,
    ping: Option<Bytes>,
) -> Result<(), ()>
where
    W: futures::Sink<Frame> + Unpin,
{
    // Metrics are gathered per batch and added once: shared counters touched per message
    // per client would bounce one cache line between every core.
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut result = Ok(());
    // Frames are fed and written together, up to WRITE_BATCH_BYTES per write. The writer
    // flushes before a frame would take yawc's buffer past that, rather than letting yawc
    // do it after: a buffer that passed its backpressure boundary is replaced by a small
    // one after the flush, so every full batch grew a fresh buffer by doubling (four
    // reallocations, the last past malloc's mmap threshold, each page faulted in again):
    // profiled at 1,000 clients at ~15 % of the server's time (`docs/performance.md`).
    let mut pending = 0usize;
    for (i, item) in batch.iter().enumerate() {
        let frame = to_frame(session, item, pmd_negotiated, &mut scratch.0[i % 2]);
        bytes += frame.payload().len() as u64;
        let size = frame.payload().len() + FRAME_HEAD_MAX;
        if pending > 0 && pending + size > WRITE_BATCH_BYTES {
            if sink.flush().await.is_err() {
                result = Err(());
                break;
            }
            pending = 0;
        }
        pending += size;
        if sink.feed(frame).await.is_err() {
            result = Err(());
            break;
        }
        messages += 1;
        // Per item, not once per batch: a write given up mid-way (write_unless_cut) must
        // have counted every alert yawc took, or a resume would send it twice.
        if matches!(item.class, ItemClass::Alert | ItemClass::Replayed) {
            session.alerts_written.fetch_max(item.seq, Relaxed);
        }
    }
    if let (Ok(()), Some(payload)) = (result, ping) {
        // After the batch: its pong says the client has read all of it.
        result = sink.feed(Frame::ping(payload)).await.map_err(|_| ());
    }
    if result.is_ok() {
        result = sink.flush().await.map_err(|_| ());
    }
    let now = Instant::now();
    shared.metrics.messages_sent.fetch_add(messages, Relaxed);
    shared.metrics.bytes_sent.fetch_add(bytes, Relaxed);
    shared.metrics.observe_latencies(
        batch
            .iter()
            .take(messages as usize)
            .filter_map(|o| o.published_at)
            .map(|t| now.duration_since(t)),
    );
    batch.clear();
    result
}

/// The bytes of one message for this connection: shared prefix, this connection's metadata,
/// and the compression the subscription or connection asked for; written in `scratch`
/// (`finish_into`).
fn to_frame(
    session: &SessionShared,
    item: &Outgoing,
    pmd_negotiated: bool,
    scratch: &mut BytesMut,
) -> Frame {
    let label = match item.compression {
        AppCompression::None => None,
        // Where permessage-deflate is on, `deflate` is done by the WebSocket layer.
        AppCompression::Deflate if pmd_negotiated => Some("permessage-deflate"),
        c => Some(c.as_str()),
    };
    let text = finish_into(
        scratch,
        &item.prefix,
        &Metadata {
            client_id_json: &session.client_id_json,
            subscription_tag: item.subscription_tag.as_deref(),
            sequence: item.seq,
            replayed_from: item.replayed_from,
            compression: label,
        },
    );
    match (item.compression, label) {
        (AppCompression::Gzip, _) => Frame::binary(compress(text, true)),
        (AppCompression::Deflate, Some("deflate")) => Frame::binary(compress(text, false)),
        _ => Frame::text(text),
    }
}

fn compress(text: Bytes, gzip: bool) -> Bytes {
    let level = flate2::Compression::fast();
    let out = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(text.len() / 2), level);
        enc.write_all(&text).and_then(|_| enc.finish())
    } else {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::with_capacity(text.len() / 2), level);
        enc.write_all(&text).and_then(|_| enc.finish())
    };
    Bytes::from(out.expect("compressing into memory cannot fail"))
}

/// The disconnect message and the close frame, with a bound on how long they may take.
async fn send_goodbye<W>(
    shared: &Shared,
    session: &SessionShared,
    sink: &mut W,
    reason: CloseReason,
) where
    W: futures::Sink<Frame> + Unpin,
{
    if reason == CloseReason::SlowConsumer {
        shared
            .metrics
            .slow_consumer_disconnects
            .fetch_add(1, Relaxed);
    }
    if reason == CloseReason::HeartbeatTimeout {
        commands::send_error(
            shared,
            session,
            code::CONNECTION_ERROR,
            "No message, heartbeat or ping received within the heartbeat timeout",
            json!({"reason": "heartbeat_timeout", "timeout_s": shared.config.heartbeat_timeout.as_secs_f64(), "retry_after": 0}),
        );
    }
    // Replies still waiting (an error, token_expired) go out before the goodbye; frames
    // and alerts do not (alerts stay in the resume log).
    let replies: Vec<Outgoing> = {
        let mut st = session.state.lock();
        let (control, rest): (Vec<_>, Vec<_>) = st
            .queue
            .drain(..)
            .partition(|o| o.class == ItemClass::Control);
        st.queue.extend(rest);
        control
    };
    let (prefix, seq) = {
        let mut st = session.state.lock();
        let seq = st.next_seq;
        st.next_seq += 1;
        let data = json!({
            "reason": reason.as_str(),
            "message": reason.message(),
            "session_id": st.session_id,
            // Behind a broker another node can resume a session whose node shuts down.
            "resumable": reason.keeps_session()
                || (shared.broker.is_some() && reason == CloseReason::ServerShutdown),
            "last_sequence": seq,
        });
        (control_prefix("disconnect", &data), seq)
    };
    let text = finish(
        &prefix,
        &Metadata {
            client_id_json: &session.client_id_json,
            subscription_tag: None,
            sequence: seq,
            replayed_from: None,
            compression: None,
        },
    );
    let goodbye = async {
        // A slow consumer's socket may be full: the timeout below bounds the attempt.
        for item in &replies {
            sink.feed(to_frame(session, item, false, &mut BytesMut::new()))
                .await
                .map_err(|_| ())?;
        }
        sink.feed(Frame::text(text)).await.map_err(|_| ())?;
        sink.feed(Frame::close(
            CloseCode::from(reason.close_code()),
            reason.as_str(),
        ))
        .await
        .map_err(|_| ())?;
        sink.flush().await.map_err(|_| ())
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), goodbye).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A sink that records what each flush would write, in order.
    #[derive(Default)]
    struct Recorder {
        pending: Vec<Bytes>,
        writes: Vec<Vec<Bytes>>,
    }

    impl futures::Sink<Frame> for Recorder {
        type Error = ();
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(mut self: Pin<&mut Self>, frame: Frame) -> Result<(), ()> {
            let payload = Bytes::copy_from_slice(frame.payload());
            self.pending.push(payload);
            Ok(())
        }
        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            if !self.pending.is_empty() {
                let write = std::mem::take(&mut self.pending);
                self.writes.push(write);
            }
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
            self.poll_flush(cx)
        }
    }

    fn shared() -> Shared {
        let config = super::super::config::ServerConfig::new(
            super::super::config::JwtKey::Hs256Secret(b"test".to_vec()),
        );
        let auth = super::super::auth::Authenticator::new(&config.jwt_key, 0).unwrap();
        let (_tx, shutdown) = tokio::sync::watch::channel(false);
        Shared {
            config,
            auth,
            bus: Default::default(),
            metrics: Default::default(),
            environments: Default::default(),
            started: Instant::now(),
            started_at: String::new(),
            shutdown,
            broker: None,
            detached: Default::default(),
        }
    }

    #[test]
    fn a_batch_is_written_in_order_and_no_write_passes_the_batch_bytes() {
        let shared = shared();
        let session = super::super::session_state::session_with(&[]);
        let prefix = control_prefix("pose_data", &json!({"x": "y".repeat(1700)}));
        // 64 messages of ~1.8 KB: 115 KB, more than one write may hold.
        let mut batch: Vec<Outgoing> = (1..=64u64)
            .map(|seq| Outgoing {
                seq,
                prefix: prefix.clone(),
                class: ItemClass::Alert,
                subscription_tag: None,
                compression: AppCompression::None,
                published_at: Some(Instant::now()),
                replayed_from: None,
            })
            .collect();
        let mut sink = Recorder::default();
        let mut scratch = Scratch::default();
        let written = futures::executor::block_on(write_batch(
            &shared,
            &session,
            &mut sink,
            &mut batch,
            false,
            &mut scratch,
            None,
        ));
        assert_eq!(written, Ok(()));
        assert!(sink.writes.len() >= 2, "{} writes", sink.writes.len());
        let mut seqs = Vec::new();
        for write in &sink.writes {
            let size: usize = write.iter().map(|p| p.len() + FRAME_HEAD_MAX).sum();
            assert!(size <= WRITE_BATCH_BYTES, "a write of {size} bytes");
            for p in write {
                let v: serde_json::Value = serde_json::from_slice(p).unwrap();
                seqs.push(v["metadata"]["sequence"].as_u64().unwrap());
            }
        }
        assert_eq!(
            seqs,
            (1..=64).collect::<Vec<_>>(),
            "every message, in order"
        );
        assert_eq!(session.alerts_written.load(Relaxed), 64);
        assert_eq!(shared.metrics.messages_sent.load(Relaxed), 64);
    }
}
