//! The WebSocket server's configuration: every limit of the protocol document, in one
//! place. What the application adds (environments' queues, stall timeout, the monitor, the
//! Python callbacks' queue) is `crate::app::AppConfig`, which holds one of these.
use std::time::Duration;

/// How tokens are verified.
#[derive(Clone, Debug)]
pub enum JwtKey {
    /// HS256 with a shared secret (the default; `Server` picks a random one per process).
    Hs256Secret(Vec<u8>),
    /// RS256 with a PEM public key; the server cannot issue tokens.
    Rs256PublicPem(Vec<u8>),
    /// ES256 with a PEM public key; the server cannot issue tokens.
    Es256PublicPem(Vec<u8>),
}

impl JwtKey {
    /// The key a server is configured with: `HS256` with `secret`, or a random secret when
    /// none is given (tokens then come from this server only); `RS256`/`ES256` with a
    /// PEM `public_key` (the server verifies but cannot issue). A bad combination or a key
    /// that does not parse is refused here, where it is given, not when the server starts.
    pub fn select(
        algorithm: &str,
        secret: Option<String>,
        public_key: Option<String>,
    ) -> Result<JwtKey, super::ServerError> {
        use super::ArgumentError as E;
        let key = match (algorithm, secret, public_key) {
            ("HS256", Some(s), None) if !s.is_empty() => JwtKey::Hs256Secret(s.into_bytes()),
            ("HS256", Some(_), None) => return Err(E::EmptyJwtSecret.into()),
            ("HS256", None, None) => JwtKey::Hs256Secret(random_secret()),
            ("RS256", None, Some(pem)) => JwtKey::Rs256PublicPem(pem.into_bytes()),
            ("ES256", None, Some(pem)) => JwtKey::Es256PublicPem(pem.into_bytes()),
            ("HS256", _, Some(_)) => return Err(E::PublicKeyNeedsAsymmetric.into()),
            ("RS256" | "ES256", _, None) => {
                return Err(E::MissingPublicKey(algorithm.into()).into())
            }
            ("RS256" | "ES256", Some(_), Some(_)) => return Err(E::SecretAndPublicKey.into()),
            (other, _, _) => return Err(E::UnsupportedAlgorithm(other.into()).into()),
        };
        super::Authenticator::new(&key, 0)?;
        Ok(key)
    }
}

/// 32 random bytes: the secret of a server given none.
fn random_secret() -> Vec<u8> {
    use rand::RngCore;
    let mut key = vec![0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    key
}

/// A sliding-window message limit: at most `max` messages in any `window`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowLimit {
    /// The most messages allowed in any window.
    pub max: u32,
    /// The window's length.
    pub window: Duration,
}

/// Client-message rate limits (the spec's "Message Rate Limits" table).
#[derive(Clone, Debug)]
pub struct RateLimits {
    /// `subscribe` and `unsubscribe` messages.
    pub subscribe: WindowLimit,
    /// `heartbeat` messages.
    pub heartbeat: WindowLimit,
    /// Every other message.
    pub general: WindowLimit,
    /// Heartbeats arriving up to this much early still pass: a client timing its
    /// heartbeats every 30 s exactly must not be refused for timer jitter.
    pub heartbeat_grace: Duration,
    /// Past this many messages of any kind in `flood.window` the connection is closed
    /// with 1008: answering a flood with one error per message would amplify it.
    pub flood: WindowLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            subscribe: WindowLimit {
                max: 10,
                window: Duration::from_secs(60),
            },
            heartbeat: WindowLimit {
                max: 1,
                window: Duration::from_secs(30),
            },
            general: WindowLimit {
                max: 60,
                window: Duration::from_secs(60),
            },
            heartbeat_grace: Duration::from_secs(1),
            flood: WindowLimit {
                max: 300,
                window: Duration::from_secs(10),
            },
        }
    }
}

/// Everything the server needs to run.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The address to bind (`127.0.0.1` by default; `0.0.0.0` for every interface).
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    /// How tokens are verified (and issued, with HS256).
    pub jwt_key: JwtKey,
    /// Leeway for `exp`/`nbf` checks, seconds.
    pub jwt_leeway_s: u64,
    /// Interval of the server's own heartbeat messages.
    pub heartbeat_interval: Duration,
    /// A connection from which nothing (message, heartbeat or WebSocket ping) arrives for
    /// this long is closed with reason `heartbeat_timeout`.
    pub heartbeat_timeout: Duration,
    /// Client-message rate limits.
    pub rate_limits: RateLimits,
    /// Largest client message accepted; a larger frame closes the connection with 1009.
    pub max_message_bytes: usize,
    /// Alerts (activity_event, occupancy_update, tracking_update) waiting to be written to one
    /// client; past this the client is disconnected with reason `slow_consumer` and may resume.
    pub alert_queue_capacity: usize,
    /// The longest a client may stay behind: while an alert is owed to it, it owes more
    /// than twice `socket_send_buffer_bytes` (what its socket holds unacknowledged plus
    /// what waits in our queue; `backlog.rs`). Past it the client is disconnected with
    /// reason `slow_consumer` and may resume. A wait in our queue alone (the server's own
    /// writers late) cuts nobody until it passes the bound: the publisher is paced for
    /// that (`Bus::behind`). Also the longest a client may leave a ping unanswered while
    /// an alert is owed to it (`lag_ping_interval`), unless the server as a whole is behind.
    pub alert_max_wait: Duration,
    /// The kernel's send buffer per client socket (SO_SNDBUF; Linux doubles it), in place
    /// of autotuning up to several MiB: what a client cannot take then waits in the
    /// server's queue, where frames are dropped newest-kept and a client that stays behind
    /// is cut (`alert_max_wait`), instead of seconds of messages in the kernel. Twice it is
    /// the bound a client may owe (`backlog.rs`). 0: the kernel's (bound: 4 MiB).
    pub socket_send_buffer_bytes: usize,
    /// The least time between two WebSocket pings the server sends a client while messages
    /// flow (one outstanding at a time; `probe.rs`). A pong comes back only once the client
    /// has read everything sent before the ping, so the ping's age is the client's delivery
    /// lag through every buffer, its own receive buffer included: past
    /// `probe::PING_LATE`, or with more than `probe::WINDOW` messages not confirmed read
    /// this way, the client counts as lagging for the publisher's pacing; past
    /// `alert_max_wait` with an alert owed it is cut as `slow_consumer`. Zero: no pings
    /// (for clients that do not answer them, against RFC 6455).
    pub lag_ping_interval: Duration,
    /// Messages a client may have been given and not yet confirmed read (by answering a
    /// ping) before it counts as lagging for the publisher's pacing (`probe::WINDOW`, 8).
    /// Larger: bigger writes and more messages a second past saturation, and a longer
    /// wait for the clients that stay (`docs/performance.md`, fifth pass: 24 gave about
    /// 1.2x the messages a second at a p99 of 188 ms against 8's 73-155 ms).
    pub lag_window_messages: u64,
    /// Alerts kept per session for resume after a disconnect.
    pub alert_history: usize,
    /// Bytes of alerts kept per session for resume, 32 MiB (each entry counted with its message
    /// bytes, shared or not): past it the oldest go, and a resume from before them is told
    /// `alerts_lost`.
    pub alert_history_bytes: usize,
    /// How long a disconnected session can be resumed.
    pub resume_ttl: Duration,
    /// Disconnected (resumable) sessions held at once; past it the longest-disconnected
    /// is forgotten (its resume gets `RESUME_FAILED`, reason `session_evicted`).
    pub max_detached_sessions: usize,
    /// The same, per token subject: one token cannot crowd out everyone's sessions.
    pub max_detached_per_subject: usize,
    /// A write to a client that takes longer than this marks it as a slow consumer.
    pub write_timeout: Duration,
    /// Offer permessage-deflate to clients that ask for it.
    pub permessage_deflate: bool,
    /// Most subscriptions one connection may hold.
    pub max_subscriptions: usize,
    /// Open WebSocket connections past which handshakes get 503 `server_full`.
    pub max_connections: usize,
    /// A client that has not sent its request headers within this is dropped
    /// (slow or idle sockets must not hold connections).
    pub header_timeout: Duration,
    /// A broker shared with other nodes (`docs/deployment.md`); None: the in-process bus.
    pub broker: Option<BrokerConfig>,
}

/// The broker several server nodes share: Redis Streams, one capped stream per environment
/// (`docs/decisions/0002-broker.md`).
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// `redis://[:password@]host:port[/db]`.
    pub url: String,
    /// This node's name in the broker (leases, session records); unique per node.
    pub node_id: String,
    /// Prefix of every key this deployment uses, so deployments can share a Redis.
    pub key_prefix: String,
    /// Entries kept per environment stream (approximately: `XADD MAXLEN ~`); a resume can
    /// go back this far.
    pub stream_maxlen: usize,
    /// How long an environment lease lasts unless renewed (renewed every third of it).
    pub lease_ttl: Duration,
    /// The longest wait between reconnection attempts (backoff from 100 ms doubles to it).
    pub reconnect_max: Duration,
    /// How often a node looks for environments other nodes added.
    pub discovery_interval: Duration,
    /// Events waiting to be appended to the broker; past it they are delivered locally
    /// only (and counted).
    pub publish_queue: usize,
}

impl BrokerConfig {
    /// A broker at `url` with the defaults: this process's node id, prefix `wdp`, 10 000
    /// entries per stream, 5 s leases.
    pub fn new(url: impl Into<String>) -> Self {
        BrokerConfig {
            url: url.into(),
            node_id: default_node_id(),
            key_prefix: "wdp".into(),
            stream_maxlen: 10_000,
            lease_ttl: Duration::from_secs(5),
            reconnect_max: Duration::from_secs(5),
            discovery_interval: Duration::from_millis(500),
            publish_queue: 65_536,
        }
    }

    /// The URL without a password, for /health and logs.
    pub fn redacted_url(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("***"));
                u.to_string()
            }
            _ => self.url.clone(),
        }
    }
}

/// `<hostname>-<pid>`: unique per process on a host.
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    format!("{host}-{}", std::process::id())
}

impl ServerConfig {
    /// The protocol document's defaults, with `jwt_key`.
    pub fn new(jwt_key: JwtKey) -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 0,
            jwt_key,
            jwt_leeway_s: 0,
            heartbeat_interval: Duration::from_secs(30),
            heartbeat_timeout: Duration::from_secs(90),
            rate_limits: RateLimits::default(),
            max_message_bytes: 64 * 1024,
            alert_queue_capacity: 256,
            alert_max_wait: Duration::from_secs(1),
            socket_send_buffer_bytes: 128 << 10,
            lag_ping_interval: super::probe::PING_EVERY,
            lag_window_messages: super::probe::WINDOW,
            alert_history: 1024,
            alert_history_bytes: 32 << 20,
            resume_ttl: Duration::from_secs(300),
            max_detached_sessions: 1024,
            max_detached_per_subject: 64,
            write_timeout: Duration::from_secs(10),
            permessage_deflate: true,
            max_subscriptions: 32,
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            broker: None,
        }
    }
}

/// Overrides of [`ServerConfig`] from JSON or TOML (`Server(config={...})`, `serve --config`:
/// the application takes its own keys out first, `crate::app::AppConfig`). Unknown keys are
/// refused by name. [`ServerConfig::KEYS`] lists the fields.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigOverrides {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub jwt_leeway_s: Option<u64>,
    pub heartbeat_interval_s: Option<f64>,
    pub heartbeat_timeout_s: Option<f64>,
    pub max_message_bytes: Option<usize>,
    pub alert_queue_capacity: Option<usize>,
    pub alert_max_wait_s: Option<f64>,
    pub socket_send_buffer_bytes: Option<usize>,
    pub lag_ping_interval_s: Option<f64>,
    pub lag_window_messages: Option<u64>,
    pub alert_history: Option<usize>,
    pub alert_history_bytes: Option<usize>,
    pub resume_ttl_s: Option<f64>,
    pub max_detached_sessions: Option<usize>,
    pub max_detached_per_subject: Option<usize>,
    pub write_timeout_s: Option<f64>,
    pub permessage_deflate: Option<bool>,
    pub max_subscriptions: Option<usize>,
    pub max_connections: Option<usize>,
    pub header_timeout_s: Option<f64>,
    pub rate_limits: Option<RateLimitOverrides>,
    pub broker: Option<BrokerOverrides>,
}

/// The `broker` table: `url` turns the broker on; the rest have defaults.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerOverrides {
    pub url: Option<String>,
    pub node_id: Option<String>,
    pub key_prefix: Option<String>,
    pub stream_maxlen: Option<usize>,
    pub lease_ttl_s: Option<f64>,
    pub reconnect_max_s: Option<f64>,
    pub discovery_interval_s: Option<f64>,
    pub publish_queue: Option<usize>,
}

/// `[max, window_s]` pairs for each client-message limit.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitOverrides {
    pub subscribe: Option<(u32, f64)>,
    pub heartbeat: Option<(u32, f64)>,
    pub general: Option<(u32, f64)>,
    pub flood: Option<(u32, f64)>,
    pub heartbeat_grace_s: Option<f64>,
}

/// A positive, finite number of seconds under about 30 years, or an error naming `key`.
pub(crate) fn seconds(key: &str, v: f64) -> Result<Duration, String> {
    if v.is_finite() && v > 0.0 && v < 1e9 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!(
            "config key `{key}`: {v} is not a positive number of seconds"
        ))
    }
}

fn broker_config(b: BrokerOverrides) -> Result<BrokerConfig, String> {
    let url = b
        .url
        .ok_or("config key `broker.url` is required (redis://host:port) when `broker` is given")?;
    match url::Url::parse(&url) {
        Ok(u) if u.scheme() == "redis" && u.host_str().is_some() => {}
        _ => {
            return Err(format!(
                "config key `broker.url`: '{url}' is not a redis://host:port URL"
            ))
        }
    }
    let mut c = BrokerConfig::new(url);
    if let Some(x) = b.node_id {
        if x.is_empty() || x.len() > 128 || x.chars().any(|c| c.is_control()) {
            return Err("config key `broker.node_id` must be 1 to 128 printable characters".into());
        }
        c.node_id = x;
    }
    if let Some(x) = b.key_prefix {
        if x.is_empty() || x.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("config key `broker.key_prefix` must be a non-empty word".into());
        }
        c.key_prefix = x;
    }
    if let Some(x) = b.stream_maxlen {
        c.stream_maxlen = positive("broker.stream_maxlen", x)?;
    }
    if let Some(x) = b.lease_ttl_s {
        c.lease_ttl = seconds("broker.lease_ttl_s", x)?;
    }
    if let Some(x) = b.reconnect_max_s {
        c.reconnect_max = seconds("broker.reconnect_max_s", x)?;
    }
    if let Some(x) = b.discovery_interval_s {
        c.discovery_interval = seconds("broker.discovery_interval_s", x)?;
    }
    if let Some(x) = b.publish_queue {
        c.publish_queue = positive("broker.publish_queue", x)?;
    }
    Ok(c)
}

/// The most entries a count setting (a queue's capacity, a history's length, a limit on
/// sessions) may ask for: some are allocated or made semaphore permits up front, and a
/// count past this (16,777,216) asked for more memory than a machine has, aborting the
/// process, or more permits than a semaphore holds, panicking it.
pub(crate) const MAX_COUNT: usize = 1 << 24;

/// The most bytes a size setting may name (1 TiB).
pub(crate) const MAX_BYTES: usize = 1 << 40;

/// `v` if from 1 to [`MAX_COUNT`], or an error naming `key`.
pub(crate) fn positive(key: &str, v: usize) -> Result<usize, String> {
    within(key, v, MAX_COUNT)
}

/// `v` if from 1 to [`MAX_BYTES`], or an error naming `key`.
pub(crate) fn positive_bytes(key: &str, v: usize) -> Result<usize, String> {
    within(key, v, MAX_BYTES)
}

fn within(key: &str, v: usize, max: usize) -> Result<usize, String> {
    if v == 0 {
        Err(format!("config key `{key}` must be at least 1"))
    } else if v > max {
        Err(format!("config key `{key}` must be at most {max}, not {v}"))
    } else {
        Ok(v)
    }
}

impl ServerConfig {
    /// The top-level keys [`ServerConfig::apply_json`] takes (as the configuration spells
    /// them), so a layer that adds keys of its own can name every valid one when refusing
    /// an unknown key.
    pub const KEYS: &'static [&'static str] = &[
        "host",
        "port",
        "jwt_leeway_s",
        "heartbeat_interval_s",
        "heartbeat_timeout_s",
        "max_message_bytes",
        "alert_queue_capacity",
        "alert_max_wait_s",
        "socket_send_buffer_bytes",
        "lag_ping_interval_s",
        "lag_window_messages",
        "alert_history",
        "alert_history_bytes",
        "resume_ttl_s",
        "max_detached_sessions",
        "max_detached_per_subject",
        "write_timeout_s",
        "permessage_deflate",
        "max_subscriptions",
        "max_connections",
        "header_timeout_s",
        "rate_limits",
        "broker",
    ];

    /// Applies overrides from a JSON object; the error names the key that was wrong.
    pub fn apply_json(&mut self, v: &serde_json::Value) -> Result<(), String> {
        let o: ConfigOverrides =
            serde_json::from_value(v.clone()).map_err(|e| format!("config: {e}"))?;
        self.apply(o)
    }

    pub(crate) fn apply(&mut self, o: ConfigOverrides) -> Result<(), String> {
        if let Some(h) = o.host {
            self.host = h;
        }
        if let Some(p) = o.port {
            self.port = p;
        }
        if let Some(x) = o.jwt_leeway_s {
            self.jwt_leeway_s = x;
        }
        if let Some(x) = o.heartbeat_interval_s {
            self.heartbeat_interval = seconds("heartbeat_interval_s", x)?;
        }
        if let Some(x) = o.heartbeat_timeout_s {
            self.heartbeat_timeout = seconds("heartbeat_timeout_s", x)?;
        }
        if let Some(x) = o.max_message_bytes {
            self.max_message_bytes = positive_bytes("max_message_bytes", x)?;
        }
        if let Some(x) = o.alert_queue_capacity {
            self.alert_queue_capacity = positive("alert_queue_capacity", x)?;
        }
        if let Some(x) = o.alert_max_wait_s {
            self.alert_max_wait = seconds("alert_max_wait_s", x)?;
        }
        if let Some(x) = o.socket_send_buffer_bytes {
            self.socket_send_buffer_bytes = x;
        }
        if let Some(x) = o.lag_ping_interval_s {
            self.lag_ping_interval = if x == 0.0 {
                Duration::ZERO
            } else {
                seconds("lag_ping_interval_s", x)?
            };
        }
        if let Some(x) = o.lag_window_messages {
            if !(1..=4096).contains(&x) {
                return Err(format!(
                    "config key `lag_window_messages` must be 1 to 4096 messages, got {x}"
                ));
            }
            self.lag_window_messages = x;
        }
        if let Some(x) = o.alert_history {
            self.alert_history = positive("alert_history", x)?;
        }
        if let Some(x) = o.alert_history_bytes {
            self.alert_history_bytes = positive_bytes("alert_history_bytes", x)?;
        }
        if let Some(x) = o.resume_ttl_s {
            self.resume_ttl = seconds("resume_ttl_s", x)?;
        }
        if let Some(x) = o.max_detached_sessions {
            self.max_detached_sessions = positive("max_detached_sessions", x)?;
        }
        if let Some(x) = o.max_detached_per_subject {
            self.max_detached_per_subject = positive("max_detached_per_subject", x)?;
        }
        if let Some(x) = o.write_timeout_s {
            self.write_timeout = seconds("write_timeout_s", x)?;
        }
        if let Some(x) = o.permessage_deflate {
            self.permessage_deflate = x;
        }
        if let Some(x) = o.max_subscriptions {
            self.max_subscriptions = positive("max_subscriptions", x)?;
        }
        if let Some(x) = o.max_connections {
            self.max_connections = positive("max_connections", x)?;
        }
        if let Some(x) = o.header_timeout_s {
            self.header_timeout = seconds("header_timeout_s", x)?;
        }
        if let Some(b) = o.broker {
            self.broker = Some(broker_config(b)?);
        }
        if let Some(r) = o.rate_limits {
            let limit = |key: &str, (max, w): (u32, f64)| -> Result<WindowLimit, String> {
                if max == 0 {
                    return Err(format!(
                        "config key `rate_limits.{key}`: the count must be at least 1"
                    ));
                }
                Ok(WindowLimit {
                    max,
                    window: seconds(&format!("rate_limits.{key}"), w)?,
                })
            };
            if let Some(x) = r.subscribe {
                self.rate_limits.subscribe = limit("subscribe", x)?;
            }
            if let Some(x) = r.heartbeat {
                self.rate_limits.heartbeat = limit("heartbeat", x)?;
            }
            if let Some(x) = r.general {
                self.rate_limits.general = limit("general", x)?;
            }
            if let Some(x) = r.flood {
                self.rate_limits.flood = limit("flood", x)?;
            }
            if let Some(x) = r.heartbeat_grace_s {
                if !(0.0..1e9).contains(&x) {
                    return Err(format!(
                        "config key `rate_limits.heartbeat_grace_s` must be from 0 to 1e9 seconds, not {x}"
                    ));
                }
                self.rate_limits.heartbeat_grace = Duration::from_secs_f64(x);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{ArgumentError, ServerError};

    fn refused(r: Result<JwtKey, ServerError>) -> String {
        match r {
            Err(e @ (ServerError::InvalidArgument(_) | ServerError::Auth(_))) => e.to_string(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn counts_past_what_a_machine_holds_are_refused_not_allocated() {
        let huge = 1usize << 62;
        for body in [
            serde_json::json!({"alert_queue_capacity": huge}),
            serde_json::json!({"max_subscriptions": huge}),
            serde_json::json!({"alert_history_bytes": huge}),
            serde_json::json!({"broker": {"url": "redis://127.0.0.1:1", "publish_queue": huge}}),
            serde_json::json!({"broker": {"url": "redis://127.0.0.1:1", "stream_maxlen": huge}}),
            serde_json::json!({"rate_limits": {"heartbeat_grace_s": 1e300}}),
        ] {
            let mut c = ServerConfig::new(JwtKey::Hs256Secret(b"k".to_vec()));
            let e = c.apply_json(&body).unwrap_err();
            assert!(
                e.contains("at most") || e.contains("1e9 seconds"),
                "{body}: {e}"
            );
        }
        let mut c = ServerConfig::new(JwtKey::Hs256Secret(b"k".to_vec()));
        c.apply_json(&serde_json::json!({"alert_queue_capacity": 1_000_000}))
            .unwrap();
        assert_eq!(c.alert_queue_capacity, 1_000_000);
    }

    #[test]
    fn keys_lists_every_key_the_overrides_take() {
        // serde's refusal of an unknown key lists the fields the struct has: the same set.
        let e = ServerConfig::new(JwtKey::Hs256Secret(b"k".to_vec()))
            .apply_json(&serde_json::json!({"no_such_key": 1}))
            .unwrap_err();
        let (_, expected) = e.split_once("expected one of ").expect("serde's list");
        let mut fields: Vec<&str> = expected.split(", ").map(|k| k.trim_matches('`')).collect();
        let mut keys = ServerConfig::KEYS.to_vec();
        fields.sort_unstable();
        keys.sort_unstable();
        assert_eq!(fields, keys);
    }

    #[test]
    fn the_jwt_key_is_chosen_from_the_algorithm_and_what_is_given() {
        let Ok(JwtKey::Hs256Secret(s)) = JwtKey::select("HS256", Some("s3cret".into()), None)
        else {
            panic!("an HS256 secret")
        };
        assert_eq!(s, b"s3cret");
        // No secret: a random one, different per server.
        let (Ok(JwtKey::Hs256Secret(a)), Ok(JwtKey::Hs256Secret(b))) = (
            JwtKey::select("HS256", None, None),
            JwtKey::select("HS256", None, None),
        ) else {
            panic!("random HS256 secrets")
        };
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(matches!(
            JwtKey::select("HS256", Some(String::new()), None),
            Err(ServerError::InvalidArgument(ArgumentError::EmptyJwtSecret))
        ));
        assert!(refused(JwtKey::select("HS256", None, Some("pem".into()))).contains("RS256"));
        assert_eq!(
            refused(JwtKey::select("RS256", None, None)),
            "jwt_algorithm='RS256' needs jwt_public_key (PEM)"
        );
        assert!(
            refused(JwtKey::select("ES256", Some("s".into()), Some("p".into())))
                .contains("not both")
        );
        assert!(refused(JwtKey::select("HS512", None, None)).contains("'HS512' is not supported"));
        // A public key is parsed where it is given.
        assert!(matches!(
            JwtKey::select("RS256", None, Some("not a pem".into())),
            Err(ServerError::Auth(_))
        ));
    }
}
