//! The broker's tasks: the link (connect, discover, read, reconnect), the publisher
//! (appends, pipelined) and maintenance (session records' TTL, leases).
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use redis::aio::MultiplexedConnection;
use redis::Value;
use serde_json::json;
use tokio::sync::mpsc;

use tokio::sync::watch;

use super::super::bus::Event;
use super::super::events::EventType;
use super::{
    is_connection_error, unix_ms, unix_s, wire, Broker, LocalNode, Outbound, StreamId,
    COMMAND_TIMEOUT,
};

/// What each of the broker's tasks holds: the node it serves, the broker, and the switch
/// that stops it.
#[derive(Clone)]
pub(super) struct Tasks {
    pub node: Arc<dyn LocalNode>,
    pub broker: Arc<Broker>,
    pub shutdown: watch::Receiver<bool>,
}

/// Most entries read (and appends pipelined) at once.
const BATCH: usize = 512;
/// How long one read waits for new entries (ms).
const BLOCK_MS: u64 = 250;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Entries kept in the control stream (session hand-overs between nodes).
const CONTROL_MAXLEN: usize = 10_000;

/// Connects, reads every environment's stream into the local bus, and reconnects with
/// backoff when the broker goes away. The broker is "up" while this loop reads.
pub(super) async fn run_link(tasks: Tasks) {
    let Tasks {
        node,
        broker: b,
        mut shutdown,
    } = tasks;
    let node = &*node;
    // The read loop checks the switch between reads; `shutdown` itself is awaited below.
    let stopping = shutdown.clone();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let session = async {
            let read_timeout = Duration::from_millis(BLOCK_MS) + COMMAND_TIMEOUT;
            let mut conn = b.connect(read_timeout).await?;
            on_connect(node, &b, &mut conn).await?;
            b.link_up(node, true);
            read_loop(node, &b, &stopping, &mut conn).await
        };
        let started = Instant::now();
        let err = tokio::select! {
            r = session => match r {
                Ok(()) => return,
                Err(e) => e,
            },
            _ = shutdown.changed() => return,
        };
        b.link_down(node, err.to_string());
        if started.elapsed() > Duration::from_secs(10) {
            backoff = FIRST_BACKOFF; // it had been working: retry soon
        }
        let jitter = rand::thread_rng().gen_range(0.5..1.0);
        tokio::select! {
            _ = tokio::time::sleep(backoff.mul_f64(jitter)) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(b.config.reconnect_max);
    }
}

/// After (re)connecting: the broker's clock, this node's environments listed again (a
/// restarted broker may have lost them), the control stream's position, discovery.
async fn on_connect(
    node: &dyn LocalNode,
    b: &Broker,
    conn: &mut MultiplexedConnection,
) -> redis::RedisResult<()> {
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(conn).await?;
    let broker_ms = secs * 1000 + micros / 1000;
    b.clock_offset_ms.store(broker_ms - unix_ms(), Relaxed);
    let local = node.environments();
    if !local.is_empty() {
        let _: i64 = redis::cmd("SADD")
            .arg(b.keys.environments())
            .arg(&local)
            .query_async(conn)
            .await?;
    }
    if b.control_cursor.lock().is_none() {
        let last = last_id(conn, &b.keys.control()).await?;
        b.control_cursor.lock().get_or_insert(last);
    }
    discover(node, b, conn).await
}

/// The id of a stream's newest entry (zero for an empty or missing stream).
pub(super) async fn last_id(
    conn: &mut MultiplexedConnection,
    key: &str,
) -> redis::RedisResult<StreamId> {
    let v: Value = redis::cmd("XREVRANGE")
        .arg(key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(wire::entries(&v)
        .first()
        .map(|(id, _)| *id)
        .unwrap_or(StreamId::ZERO))
}

/// Learns the environments other nodes added; reading starts at each stream's end.
async fn discover(
    node: &dyn LocalNode,
    b: &Broker,
    conn: &mut MultiplexedConnection,
) -> redis::RedisResult<()> {
    let mut envs: Vec<String> = redis::cmd("SMEMBERS")
        .arg(b.keys.environments())
        .query_async(conn)
        .await?;
    envs.extend(node.environments());
    for env in envs {
        if b.cursors.lock().contains_key(&env) {
            continue;
        }
        let last = last_id(conn, &b.keys.stream(&env)).await?;
        b.start_reading(&env, last);
        node.learn_environment(&env);
    }
    Ok(())
}

async fn read_loop(
    node: &dyn LocalNode,
    b: &Broker,
    shutdown: &watch::Receiver<bool>,
    conn: &mut MultiplexedConnection,
) -> redis::RedisResult<()> {
    let mut last_discovery = Instant::now();
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        if last_discovery.elapsed() >= b.config.discovery_interval {
            discover(node, b, conn).await?;
            last_discovery = Instant::now();
        }
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(BLOCK_MS)
            .arg("STREAMS");
        let streams: Vec<(String, StreamId)> = {
            let cursors = b.cursors.lock();
            let control = b.control_cursor.lock().unwrap_or(StreamId::ZERO);
            cursors
                .iter()
                .map(|(env, id)| (b.keys.stream(env), *id))
                .chain(std::iter::once((b.keys.control(), control)))
                .collect()
        };
        for (key, _) in &streams {
            cmd.arg(key);
        }
        for (_, id) in &streams {
            cmd.arg(id.to_string());
        }
        let reply: Value = cmd.query_async(conn).await?;
        // A read succeeded: if an append failed meanwhile, the broker is back.
        if !b.is_up() {
            b.link_up(node, false);
        }
        feed(node, b, &reply, unix_s());
    }
}

/// Hands one `XREAD` reply to the node: control notices acted on, environment events
/// delivered in the broker's order, each stream's read position moved past what it read.
pub(super) fn feed(node: &dyn LocalNode, b: &Broker, reply: &Value, now_s: f64) {
    let mut batch = Vec::new();
    for (key, entries) in wire::keyed(reply) {
        let Some(key) = wire::text(key) else { continue };
        let entries = wire::entries(entries);
        if key == b.keys.control() {
            control(node, b, &entries);
            continue;
        }
        if let Some(env) = b.keys.env_of(key) {
            batch.extend(entries.into_iter().map(|(id, f)| (id, env, f)));
        }
    }
    // Environments interleave in the broker's order (ids are its clock), not in the
    // order the streams were listed.
    batch.sort_by_key(|(id, _, _)| *id);
    // The feed lock: held while the batch reaches the sessions (see `cursors`).
    let mut cursors = b.cursors.lock();
    for (id, env, fields) in &batch {
        if let Some(ev) = wire::event_from_entry(env, *id, fields, now_s) {
            b.counters.received.fetch_add(1, Relaxed);
            node.deliver(ev);
        }
        match cursors.get_mut(*env) {
            Some(c) => *c = *id,
            None => {
                cursors.insert(env.to_string(), *id);
            }
        }
    }
}

/// Notices from other nodes: a session this node holds was resumed elsewhere.
fn control(node: &dyn LocalNode, b: &Broker, entries: &[(StreamId, Vec<(&str, &Value)>)]) {
    for (id, fields) in entries {
        *b.control_cursor.lock() = Some(*id);
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| *k == name)
                .and_then(|(_, v)| wire::text(v))
        };
        if get("k") != Some("session_taken") || get("n") == Some(b.config.node_id.as_str()) {
            continue;
        }
        let Some(session_id) = get("s") else { continue };
        node.retire_session(session_id);
    }
}

/// Appends what `Broker::publish` queued, pipelined; delivers events locally when the
/// broker cannot take them.
pub(super) async fn run_publisher(tasks: Tasks, mut rx: mpsc::Receiver<Outbound>) {
    let Tasks {
        node,
        broker: b,
        mut shutdown,
    } = tasks;
    let node = &*node;
    let mut batch: Vec<Outbound> = Vec::with_capacity(BATCH);
    let mut conn: Option<(u64, MultiplexedConnection)> = None;
    let ttl_ms = b.resume_ttl.as_millis() as u64;
    loop {
        batch.clear();
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n,
            _ = shutdown.changed() => return,
        };
        if n == 0 {
            return;
        }
        if !b.is_up() {
            fall_back(node, &b, &mut batch);
            continue;
        }
        if conn.as_ref().is_none_or(|(g, _)| *g != b.generation()) {
            match b.connect(COMMAND_TIMEOUT).await {
                Ok(c) => conn = Some((b.generation(), c)),
                Err(e) => {
                    b.link_down(node, e.to_string());
                    fall_back(node, &b, &mut batch);
                    continue;
                }
            }
        }
        let (_, c) = conn.as_mut().expect("connected above");
        let result = append(&b, c, &batch, ttl_ms).await;
        match result {
            Ok(events) => {
                b.counters.appended.fetch_add(events, Relaxed);
            }
            Err(e) => {
                conn = None;
                if is_connection_error(&e) {
                    b.link_down(node, e.to_string());
                } else {
                    log::warn!("broker refused an append: {e}");
                    b.counters.errors.fetch_add(1, Relaxed);
                }
                fall_back(node, &b, &mut batch);
            }
        }
    }
}

/// Sends one batch; returns how many events it appended.
async fn append(
    b: &Broker,
    conn: &mut MultiplexedConnection,
    batch: &[Outbound],
    ttl_ms: u64,
) -> redis::RedisResult<u64> {
    // Before the first append to a stream this node has not read yet, fix where its reading
    // starts: at the stream's end as it is now, so this node's own event is not skipped.
    for item in batch {
        if let Outbound::Event(ev, _) = item {
            let env = ev.environment_id.as_deref().unwrap_or_default();
            if !b.cursors.lock().contains_key(env) {
                let last = last_id(conn, &b.keys.stream(env)).await?;
                b.start_reading(env, last);
            }
        }
    }
    let mut pipe = redis::pipe();
    let mut events = 0;
    for item in batch {
        match item {
            Outbound::Event(ev, wall) => {
                events += 1;
                let env = ev.environment_id.as_deref().unwrap_or_default();
                let cmd = pipe
                    .cmd("XADD")
                    .arg(b.keys.stream(env))
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(b.config.stream_maxlen)
                    .arg("*");
                for (k, v) in wire::entry_fields(ev, *wall, &b.config.node_id) {
                    cmd.arg(k).arg(v);
                }
                cmd.ignore();
            }
            Outbound::Register(env) => {
                pipe.cmd("SADD")
                    .arg(b.keys.environments())
                    .arg(env)
                    .ignore();
            }
            Outbound::SaveSession(key, record) => {
                pipe.cmd("SET")
                    .arg(key)
                    .arg(record)
                    .arg("PX")
                    .arg(ttl_ms.max(1))
                    .ignore();
            }
            Outbound::DropSession(key) => {
                pipe.cmd("DEL").arg(key).ignore();
            }
            Outbound::Control(fields) => {
                let cmd = pipe
                    .cmd("XADD")
                    .arg(b.keys.control())
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(CONTROL_MAXLEN)
                    .arg("*");
                for (k, v) in fields {
                    cmd.arg(*k).arg(v);
                }
                cmd.ignore();
            }
        }
    }
    pipe.query_async::<()>(conn).await?;
    Ok(events)
}

/// The broker did not take the batch: its events reach this node's clients only.
fn fall_back(node: &dyn LocalNode, b: &Broker, batch: &mut Vec<Outbound>) {
    for item in batch.drain(..) {
        if let Outbound::Event(ev, _) = item {
            b.deliver_locally(node, *ev);
        }
    }
}

/// Keeps the records of this node's sessions alive (TTL: resume_ttl from now) and renews
/// its leases; a lease found taken by another node is dropped with a `system_event`.
pub(super) async fn run_maintenance(tasks: Tasks) {
    let Tasks {
        node,
        broker: b,
        mut shutdown,
    } = tasks;
    let node = &*node;
    let lease_every = (b.config.lease_ttl / 3).max(Duration::from_millis(50));
    let records_every =
        (b.resume_ttl / 3).clamp(Duration::from_millis(200), Duration::from_secs(60));
    let mut tick = tokio::time::interval(lease_every.min(records_every));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_records = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if !b.is_up() {
            continue;
        }
        let held: Vec<String> = b.leases.lock().iter().cloned().collect();
        for env in held {
            match b.claim(&env).await {
                Ok(true) => {}
                Ok(false) => lease_lost(node, &b, &env),
                Err(_) => break, // the link notices; renewals resume when it is back
            }
        }
        if last_records.elapsed() >= records_every {
            last_records = Instant::now();
            let ids = node.live_sessions();
            if ids.is_empty() {
                continue;
            }
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("PEXPIRE")
                    .arg(b.keys.session(id))
                    .arg(b.resume_ttl.as_millis() as u64)
                    .ignore();
            }
            if let Ok(mut c) = b.command().await {
                if let Err(e) = pipe.query_async::<()>(&mut c).await {
                    b.command_failed(&e).await;
                }
            }
        }
    }
}

fn lease_lost(node: &dyn LocalNode, b: &Broker, env: &str) {
    log::warn!("lease of environment {env} is held by another node now");
    node.deliver(Event::new(
        EventType::SystemEvent,
        json!({
            "event": "lease_lost",
            "severity": "warning",
            "node_id": b.config.node_id,
            "message": "Another node holds this environment's lease now; this node should stop its sources.",
        }),
        Some(env.to_string()),
    ));
}
