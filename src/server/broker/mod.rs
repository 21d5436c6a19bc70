//! The event bus shared by several server nodes, on Redis Streams
//! (`docs/decisions/0002-broker.md`, `docs/deployment.md`).
//!
//! With a broker configured, [`super::Publisher::publish`] appends an environment's event
//! to that environment's capped stream instead of handing it to the local [`super::bus::Bus`];
//! every node (the publishing one included) reads every environment's stream and feeds what
//! it reads to its own bus, where the sessions filter and throttle it as they always do.
//! The entry's id in the stream goes out as `metadata.event_id`: it is the same on every
//! node, so a client can resume from it on any node (`resume.rs`).
//!
//! Events without an environment (`performance_update`, `config_update`, server-wide
//! `system_event`) describe the node that publishes them and stay on it.
//!
//! The broker can go away: events are then delivered by the node that produced them only,
//! a `system_event` (`broker_unavailable`) says so, `/health` says `degraded`, and the
//! node reconnects with backoff (`broker_recovered` when it is back).
//!
//! Tasks: `link` (connects, discovers environments, reads the streams, reconnects),
//! `publisher` (pipelines appends), `maintenance` (keeps session records and leases alive).
mod ids;
mod link;
mod local;
mod resume;
mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::bus::Event;
use super::config::BrokerConfig;
use super::events::EventType;
use super::session_state::SessionShared;

pub use ids::{Since, StreamId};
pub use resume::resume_from_broker;

/// What the broker needs of the node it runs on, and nothing more: it hands the events it
/// reads (and those it cannot append) to the node's bus, lists and learns the node's
/// environments, retires a session another node resumed, and keeps the records of the
/// node's live sessions. The server implements it (`local.rs`); so can a test, which runs
/// the broker's logic without Redis.
pub trait LocalNode: Send + Sync + 'static {
    /// Hands an event to this node's bus (its sessions and callbacks).
    fn deliver(&self, event: Event);
    /// The environments this node knows.
    fn environments(&self) -> Vec<String>;
    /// Makes an environment another node added known here (idempotent).
    fn learn_environment(&self, env: &str);
    /// Forgets a session another node resumed (closing its connection if attached).
    fn retire_session(&self, session_id: &str);
    /// The session ids whose records this node keeps alive in the broker.
    fn live_sessions(&self) -> Vec<String>;
}

/// What the publisher task sends to the broker, in order.
pub(crate) enum Outbound {
    /// An event and the wall time (s) it was published at.
    Event(Box<Event>, f64),
    /// An environment to list in the broker's set of environments.
    Register(String),
    /// A session record (key, JSON) to write with the resume TTL.
    SaveSession(String, String),
    DropSession(String),
    /// A notice to the other nodes (field/value pairs) on the control stream.
    Control(Vec<(&'static str, String)>),
}

#[derive(Default)]
pub struct BrokerCounters {
    /// Events appended to the broker by this node.
    pub appended: AtomicU64,
    /// Events read from the broker and handed to this node's bus.
    pub received: AtomicU64,
    /// Events delivered by this node only: the broker was unreachable or the append queue
    /// was full.
    pub local_only: AtomicU64,
    /// Broker connections lost.
    pub outages: AtomicU64,
    /// Commands the broker refused (not connection losses).
    pub errors: AtomicU64,
    /// Sessions resumed from the broker (another node's session).
    pub resumed: AtomicU64,
}

#[derive(Default)]
struct LinkState {
    /// Set when the loss was announced (system_event) and until it is recovered.
    down_since: Option<(Instant, String)>,
    local_only_at_down: u64,
    last_error: Option<String>,
    connected_since: Option<String>,
}

/// The Redis key names of one deployment (`key_prefix`).
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    fn stream(&self, env: &str) -> String {
        format!("{}:env:{env}", self.prefix)
    }
    fn env_of<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(&self.prefix)?.strip_prefix(":env:")
    }
    fn environments(&self) -> String {
        format!("{}:environments", self.prefix)
    }
    fn control(&self) -> String {
        format!("{}:control", self.prefix)
    }
    fn session(&self, id: &str) -> String {
        format!("{}:session:{id}", self.prefix)
    }
    fn lease(&self, env: &str) -> String {
        format!("{}:lease:{env}", self.prefix)
    }
}

/// The broker side of one node.
pub struct Broker {
    pub config: BrokerConfig,
    client: redis::Client,
    keys: Keys,
    up: AtomicBool,
    /// Counts the link's connections: a connection made under an older one is stale
    /// (the broker may have restarted) and is replaced before use.
    generation: AtomicU64,
    link: Mutex<LinkState>,
    tx: mpsc::Sender<Outbound>,
    rx: Mutex<Option<mpsc::Receiver<Outbound>>>,
    /// This node's read position in each environment stream. The reader holds the lock
    /// while it hands a batch to the bus, so a position read under it is exact: every
    /// event up to it was offered to the sessions, none after it.
    pub(crate) cursors: Mutex<HashMap<String, StreamId>>,
    control_cursor: Mutex<Option<StreamId>>,
    /// When (local ms) environments became known here that this node has no read
    /// position for yet: reading starts from then, so no event published after a client
    /// could subscribe to them is skipped.
    known_since: Mutex<HashMap<String, i64>>,
    /// The connection for commands other than reads (appends have their own).
    command: tokio::sync::Mutex<Option<(u64, MultiplexedConnection)>>,
    /// Environments whose lease this node holds.
    leases: Mutex<HashSet<String>>,
    /// Broker clock minus local clock, ms.
    clock_offset_ms: AtomicI64,
    resume_ttl: Duration,
    pub counters: BrokerCounters,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How far before an environment became known here reading starts (clock error between
/// this node and the broker, measured at connect, is far below it on a LAN).
const KNOWN_MARGIN_MS: i64 = 250;
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

fn unix_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Whether a Redis error means the connection (not the command) failed.
fn is_connection_error(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
}

/// The script behind leases: take the lease if free, renew it if ours, else refuse.
const LEASE_SCRIPT: &str = "local v = redis.call('GET', KEYS[1]) \
    if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end \
    if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end \
    return 0";
const RELEASE_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    return redis.call('DEL', KEYS[1]) end return 0";

impl Broker {
    pub fn new(config: BrokerConfig, resume_ttl: Duration) -> Result<Broker, String> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| format!("broker url '{}': {e}", config.redacted_url()))?;
        let (tx, rx) = mpsc::channel(config.publish_queue);
        Ok(Broker {
            keys: Keys {
                prefix: config.key_prefix.clone(),
            },
            config,
            client,
            up: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            link: Mutex::new(LinkState::default()),
            tx,
            rx: Mutex::new(Some(rx)),
            cursors: Mutex::new(HashMap::new()),
            control_cursor: Mutex::new(None),
            known_since: Mutex::new(HashMap::new()),
            command: tokio::sync::Mutex::new(None),
            leases: Mutex::new(HashSet::new()),
            clock_offset_ms: AtomicI64::new(0),
            resume_ttl,
            counters: BrokerCounters::default(),
        })
    }

    /// Starts the link, publisher and maintenance tasks on `rt`, for `node`, until
    /// `shutdown` turns true. Once: a second call does nothing.
    pub fn spawn(
        self: &Arc<Self>,
        node: Arc<dyn LocalNode>,
        shutdown: tokio::sync::watch::Receiver<bool>,
        rt: &tokio::runtime::Handle,
    ) {
        let Some(rx) = self.rx.lock().take() else {
            return;
        };
        let tasks = link::Tasks {
            node,
            broker: self.clone(),
            shutdown,
        };
        rt.spawn(link::run_link(tasks.clone()));
        rt.spawn(link::run_publisher(tasks.clone(), rx));
        rt.spawn(link::run_maintenance(tasks));
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Relaxed)
    }

    fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }

    /// Waits until the broker is connected, at most `timeout` (less if the first attempt
    /// failed already).
    pub async fn wait_up(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.is_up() {
            if Instant::now() >= deadline || self.link.lock().down_since.is_some() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Publishes an environment's event through the broker (every node's bus gets it from
    /// its stream), or locally when the broker cannot take it.
    pub fn publish(&self, node: &dyn LocalNode, event: Event) {
        if !self.is_up() {
            return self.deliver_locally(node, event);
        }
        match self.tx.try_send(Outbound::Event(Box::new(event), unix_s())) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Outbound::Event(ev, _)))
            | Err(mpsc::error::TrySendError::Closed(Outbound::Event(ev, _))) => {
                self.deliver_locally(node, *ev)
            }
            Err(_) => {}
        }
    }

    fn deliver_locally(&self, node: &dyn LocalNode, event: Event) {
        self.counters.local_only.fetch_add(1, Relaxed);
        node.deliver(event);
    }

    /// Lists an environment in the broker, so every node learns of it.
    pub fn register(&self, env: &str) {
        if !self.cursors.lock().contains_key(env) {
            self.known_since
                .lock()
                .entry(env.to_string())
                .or_insert_with(unix_ms);
        }
        let _ = self.tx.try_send(Outbound::Register(env.to_string()));
    }

    /// Fixes where this node starts reading an environment's stream, if not yet fixed: from
    /// when the environment became known here (less a margin for clock error), or, for one
    /// learnt from another node, at the stream's end (`last`, computed by the caller).
    fn start_reading(&self, env: &str, last: StreamId) {
        let known = self.known_since.lock().get(env).copied();
        let start = match known {
            Some(t) => {
                let ms = t + self.clock_offset_ms.load(Relaxed) - KNOWN_MARGIN_MS;
                StreamId {
                    ms: ms.max(0) as u64,
                    seq: 0,
                }
                .min(last)
            }
            None => last,
        };
        self.cursors.lock().entry(env.to_string()).or_insert(start);
        self.known_since.lock().remove(env);
    }

    /// Stamps a new session with where it starts in every stream.
    pub fn stamp(&self, session: &SessionShared) {
        let positions = self.cursors.lock().clone();
        let since = Since {
            positions,
            broker_ms: (unix_ms() + self.clock_offset_ms.load(Relaxed)).max(0) as u64,
        };
        session.state.lock().broker_since = Some(Arc::new(since));
    }

    /// Writes (or rewrites) the session's record, which lets another node resume it.
    pub fn save_session(&self, session: &SessionShared) {
        let record = {
            let st = session.state.lock();
            if st.retired {
                return;
            }
            let since = st.broker_since.clone().unwrap_or_default();
            json!({
                "session_id": st.session_id,
                "subject": session.subject,
                "client_id": session.client_id,
                "node_id": self.config.node_id,
                "next_subscription": st.next_subscription,
                "subscriptions": st.subscriptions.iter().map(|(_, id, s)| json!({
                    "subscription_id": &**id,
                    "spec": spec_of(&s.describe()),
                })).collect::<Vec<_>>(),
                "since": since.positions.iter().map(|(k, v)| (k.clone(), Value::from(v.to_string()))).collect::<serde_json::Map<_, _>>(),
                "since_ms": since.broker_ms,
                "saved_at": super::envelope::now_rfc3339(),
            })
        };
        let key = self
            .keys
            .session(record["session_id"].as_str().unwrap_or_default());
        let _ = self
            .tx
            .try_send(Outbound::SaveSession(key, record.to_string()));
    }

    /// Removes the record of a session that ended for good.
    pub fn drop_session(&self, session_id: &str) {
        let _ = self
            .tx
            .try_send(Outbound::DropSession(self.keys.session(session_id)));
    }

    /// The command connection, connected on first use (and after a failure).
    async fn command(&self) -> redis::RedisResult<MultiplexedConnection> {
        let mut slot = self.command.lock().await;
        let generation = self.generation();
        if let Some((g, c)) = &*slot {
            if *g == generation {
                return Ok(c.clone());
            }
        }
        let c = self.connect(COMMAND_TIMEOUT).await?;
        *slot = Some((generation, c.clone()));
        Ok(c)
    }

    async fn command_failed(&self, e: &redis::RedisError) {
        if is_connection_error(e) {
            *self.command.lock().await = None;
        } else {
            self.counters.errors.fetch_add(1, Relaxed);
        }
    }

    async fn connect(
        &self,
        response_timeout: Duration,
    ) -> redis::RedisResult<MultiplexedConnection> {
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout));
        self.client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
    }

    /// Runs one command on the command connection.
    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        let mut c = self.command().await?;
        match cmd.query_async(&mut c).await {
            Ok(v) => Ok(v),
            Err(e) => {
                self.command_failed(&e).await;
                Err(e)
            }
        }
    }

    /// Takes (or renews) the lease of an environment for this node: only the holder should
    /// run the environment's sources. Returns whether this node holds it.
    pub async fn claim(&self, env: &str) -> redis::RedisResult<bool> {
        let got: i64 = self
            .run(
                redis::cmd("EVAL")
                    .arg(LEASE_SCRIPT)
                    .arg(1)
                    .arg(self.keys.lease(env))
                    .arg(&self.config.node_id)
                    .arg(self.config.lease_ttl.as_millis() as u64),
            )
            .await?;
        let mut leases = self.leases.lock();
        if got == 1 {
            leases.insert(env.to_string());
        } else {
            leases.remove(env);
        }
        Ok(got == 1)
    }

    /// Gives a lease back (if this node holds it).
    pub async fn release(&self, env: &str) -> redis::RedisResult<()> {
        self.leases.lock().remove(env);
        let _: i64 = self
            .run(
                redis::cmd("EVAL")
                    .arg(RELEASE_SCRIPT)
                    .arg(1)
                    .arg(self.keys.lease(env))
                    .arg(&self.config.node_id),
            )
            .await?;
        Ok(())
    }

    pub async fn release_all(&self) {
        let envs: Vec<String> = self.leases.lock().iter().cloned().collect();
        for env in envs {
            let _ = self.release(&env).await;
        }
    }

    /// The node holding an environment's lease, if any.
    pub async fn lease_holder(&self, env: &str) -> redis::RedisResult<Option<String>> {
        self.run(redis::cmd("GET").arg(self.keys.lease(env))).await
    }

    /// Whether this node holds the lease (as of its last renewal).
    pub fn holds(&self, env: &str) -> bool {
        self.leases.lock().contains(env)
    }

    /// The `broker` object of `/health`.
    pub fn health(&self) -> Value {
        let link = self.link.lock();
        let mut leases: Vec<String> = self.leases.lock().iter().cloned().collect();
        leases.sort();
        json!({
            "kind": "redis-streams",
            "url": self.config.redacted_url(),
            "node_id": self.config.node_id,
            "connected": self.is_up(),
            "connected_since": link.connected_since,
            "down_since": link.down_since.as_ref().map(|(_, t)| t.clone()),
            "last_error": link.last_error,
            "leases": leases,
            "appended": self.counters.appended.load(Relaxed),
            "received": self.counters.received.load(Relaxed),
            "local_only": self.counters.local_only.load(Relaxed),
            "outages": self.counters.outages.load(Relaxed),
        })
    }

    /// Prometheus lines for `/metrics`.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        let c = &self.counters;
        for (name, help, kind, v) in [
            (
                "wdp_broker_connected",
                "1 while the broker is reachable.",
                "gauge",
                self.is_up() as u64,
            ),
            (
                "wdp_broker_appended_total",
                "Events this node appended to the broker.",
                "counter",
                c.appended.load(Relaxed),
            ),
            (
                "wdp_broker_received_total",
                "Events this node read from the broker.",
                "counter",
                c.received.load(Relaxed),
            ),
            (
                "wdp_broker_local_only_total",
                "Events delivered by this node only (broker unreachable or append queue full).",
                "counter",
                c.local_only.load(Relaxed),
            ),
            (
                "wdp_broker_outages_total",
                "Broker connections lost.",
                "counter",
                c.outages.load(Relaxed),
            ),
            (
                "wdp_broker_errors_total",
                "Commands the broker refused.",
                "counter",
                c.errors.load(Relaxed),
            ),
            (
                "wdp_broker_resumed_total",
                "Sessions resumed from another node.",
                "counter",
                c.resumed.load(Relaxed),
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            ));
        }
        out
    }

    /// The link works (again): announces the recovery if a loss was announced.
    fn link_up(&self, node: &dyn LocalNode, new_connection: bool) {
        if new_connection {
            self.generation.fetch_add(1, Relaxed);
        }
        self.up.store(true, Relaxed);
        let mut link = self.link.lock();
        link.connected_since = Some(super::envelope::now_rfc3339());
        let Some((since, _)) = link.down_since.take() else {
            return;
        };
        let local = self.counters.local_only.load(Relaxed) - link.local_only_at_down;
        drop(link);
        log::info!("broker {} reachable again", self.config.redacted_url());
        node.deliver(Event::new(
            EventType::SystemEvent,
            json!({
                "event": "broker_recovered",
                "severity": "info",
                "node_id": self.config.node_id,
                "broker": self.config.redacted_url(),
                "down_s": since.elapsed().as_secs_f64(),
                "local_only_events": local,
                "message": "The broker is reachable again; events flow between nodes again.",
            }),
            None,
        ));
    }

    /// The link failed: announces it once (system_event on this node), until recovered.
    fn link_down(&self, node: &dyn LocalNode, error: String) {
        self.up.store(false, Relaxed);
        let mut link = self.link.lock();
        link.last_error = Some(error.clone());
        link.connected_since = None;
        if link.down_since.is_some() {
            return;
        }
        link.down_since = Some((Instant::now(), super::envelope::now_rfc3339()));
        link.local_only_at_down = self.counters.local_only.load(Relaxed);
        drop(link);
        self.counters.outages.fetch_add(1, Relaxed);
        log::warn!("broker {} unreachable: {error}", self.config.redacted_url());
        node.deliver(Event::new(
            EventType::SystemEvent,
            json!({
                "event": "broker_unavailable",
                "severity": "error",
                "node_id": self.config.node_id,
                "broker": self.config.redacted_url(),
                "error": error,
                "message": "The broker is unreachable: this node delivers only what it produces itself, and reconnects with backoff.",
            }),
            None,
        ));
    }
}

/// A subscription's description (`describe()`) as the spec that recreates it.
fn spec_of(described: &Value) -> Value {
    let mut spec = serde_json::Map::new();
    for key in ["event_type", "filters", "throttle", "quality"] {
        if let Some(v) = described.get(key) {
            spec.insert(key.into(), v.clone());
        }
    }
    Value::Object(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value as Resp;

    /// A node that records what the broker does to it: the broker's whole view of a node
    /// is [`LocalNode`], so this runs its logic as the server would, without Redis.
    #[derive(Default)]
    struct Recorder {
        delivered: Mutex<Vec<Event>>,
        environments: Mutex<Vec<String>>,
        retired: Mutex<Vec<String>>,
    }

    impl LocalNode for Recorder {
        fn deliver(&self, event: Event) {
            self.delivered.lock().push(event);
        }
        fn environments(&self) -> Vec<String> {
            self.environments.lock().clone()
        }
        fn learn_environment(&self, env: &str) {
            let mut envs = self.environments.lock();
            if !envs.iter().any(|e| e == env) {
                envs.push(env.to_string());
            }
        }
        fn retire_session(&self, session_id: &str) {
            self.retired.lock().push(session_id.to_string());
        }
        fn live_sessions(&self) -> Vec<String> {
            Vec::new()
        }
    }

    /// A broker whose Redis is nowhere (nothing listens on port 1).
    fn unreachable_broker() -> Arc<Broker> {
        let mut config = BrokerConfig::new("redis://127.0.0.1:1");
        config.node_id = "node-self".into();
        config.reconnect_max = Duration::from_millis(200);
        Arc::new(Broker::new(config, Duration::from_secs(30)).unwrap())
    }

    fn bulk(s: &str) -> Resp {
        Resp::BulkString(s.as_bytes().to_vec())
    }

    /// A stream entry `[id, [field, value, ...]]`.
    fn entry(id: &str, fields: &[(&str, String)]) -> Resp {
        Resp::Array(vec![
            bulk(id),
            Resp::Array(
                fields
                    .iter()
                    .flat_map(|(k, v)| [bulk(k), bulk(v)])
                    .collect(),
            ),
        ])
    }

    fn pose(env: &str, n: u64) -> Resp {
        let ev = Event::new(EventType::PoseData, json!({"n": n}), Some(env.to_string()));
        let fields = super::wire::entry_fields(&ev, unix_s(), "node-other");
        let id = format!("{n}-0");
        entry(&id, &fields)
    }

    #[test]
    fn a_read_reaches_the_node_in_the_brokers_order_and_moves_each_position() {
        let b = unreachable_broker();
        let node = Recorder::default();
        let taken = |session: &str, by: &str| {
            vec![
                ("k", "session_taken".to_string()),
                ("s", session.to_string()),
                ("n", by.to_string()),
            ]
        };
        // XREAD's reply (RESP2): per stream, its entries; the streams in any order.
        let reply = Resp::Array(vec![
            Resp::Array(vec![
                bulk("wdp:env:ward_a"),
                Resp::Array(vec![pose("ward_a", 5), pose("ward_a", 9)]),
            ]),
            Resp::Array(vec![
                bulk("wdp:env:ward_b"),
                Resp::Array(vec![
                    pose("ward_b", 7),
                    // Written by something else: skipped, but read past.
                    entry("8-0", &[("t", "no_such_type".into()), ("d", "{}".into())]),
                ]),
            ]),
            Resp::Array(vec![
                bulk("wdp:control"),
                Resp::Array(vec![
                    entry("3-0", &taken("sess_elsewhere", "node-other")),
                    entry("4-0", &taken("sess_mine", "node-self")),
                    entry("6-0", &[("k", "something_else".into())]),
                ]),
            ]),
        ]);
        link::feed(&node, &b, &reply, unix_s());

        let got: Vec<(String, u64)> = node
            .delivered
            .lock()
            .iter()
            .map(|e| {
                (
                    e.environment_id.as_deref().unwrap_or_default().to_string(),
                    e.data["n"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("ward_a".into(), 5),
                ("ward_b".into(), 7),
                ("ward_a".into(), 9)
            ]
        );
        let ids: Vec<_> = node.delivered.lock().iter().map(|e| e.stream_id).collect();
        assert_eq!(ids[1], Some(StreamId { ms: 7, seq: 0 }));
        assert_eq!(b.counters.received.load(Relaxed), 3);
        let cursors = b.cursors.lock().clone();
        assert_eq!(cursors["ward_a"], StreamId { ms: 9, seq: 0 });
        assert_eq!(cursors["ward_b"], StreamId { ms: 8, seq: 0 });
        // Only a session another node took is retired here; the notice this node wrote
        // itself is not acted on.
        assert_eq!(*node.retired.lock(), vec!["sess_elsewhere".to_string()]);
        assert_eq!(*b.control_cursor.lock(), Some(StreamId { ms: 6, seq: 0 }));
    }

    #[test]
    fn an_unreachable_broker_leaves_delivery_local_and_says_so_once() {
        let b = unreachable_broker();
        let node = Arc::new(Recorder::default());
        let ev = || Event::new(EventType::PoseData, json!({"n": 1}), Some("ward_a".into()));
        // Not connected yet: the event is this node's alone, and counted.
        b.publish(&*node, ev());
        assert_eq!(node.delivered.lock().len(), 1);
        assert_eq!(b.counters.local_only.load(Relaxed), 1);

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        b.spawn(node.clone(), shutdown, rt.handle());
        assert!(!rt.block_on(b.wait_up(Duration::from_secs(2))));
        // Several reconnection attempts (backoff 100 ms, at most 200 ms) fail meanwhile.
        std::thread::sleep(Duration::from_millis(700));
        b.publish(&*node, ev());

        let notices: Vec<Value> = node
            .delivered
            .lock()
            .iter()
            .filter(|e| e.event_type == EventType::SystemEvent)
            .map(|e| e.data.clone())
            .collect();
        assert_eq!(
            notices.len(),
            1,
            "one broker_unavailable, not one per retry: {notices:?}"
        );
        assert_eq!(notices[0]["event"], "broker_unavailable");
        assert_eq!(notices[0]["node_id"], "node-self");
        assert_eq!(b.counters.outages.load(Relaxed), 1);
        assert_eq!(b.counters.local_only.load(Relaxed), 2);
        let health = b.health();
        assert_eq!(health["connected"], false);
        assert!(health["down_since"].is_string() && health["last_error"].is_string());
        assert!(b.metrics().contains("wdp_broker_local_only_total 2\n"));
        let _ = stop.send(true);
        rt.shutdown_timeout(Duration::from_secs(1));
    }

    #[test]
    fn keys_round_trip_environment_names() {
        let k = Keys {
            prefix: "wdp".into(),
        };
        assert_eq!(k.env_of(&k.stream("ward:3")), Some("ward:3"));
        assert_eq!(k.env_of("other:env:x"), None);
    }
}
