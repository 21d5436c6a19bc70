//! The event bus and the WebSocket API server (`docs/protocol.md`).
//!
//! This module is the transport and nothing else: sessions, the protocol, the bus, the
//! broker, HTTP. It knows no stage; the environments, their sources and the model are
//! composed above it, in [`crate::app`], which publishes through [`Publisher`] (an
//! [`crate::events::EventSink`]) and starts environments with
//! [`Server::register_environment`].
//!
//! In: events from the application or from [`Server::publish`]. Out: the spec's messages to
//! every subscribed client over `/ws/v1`, plus `/health` and `/metrics` on the same port.
//! Guarantees: each event is serialized once per distinct view and shared by all sessions;
//! every connection has a bounded queue; pose frames may be dropped (and are counted) but
//! alerts never are silently (a client that cannot keep up is disconnected and can resume);
//! no client message can stop the server or stall other clients.
//!
//! ```no_run
//! use wifi_densepose::server::{JwtKey, Server, ServerConfig};
//! let mut server = Server::start(ServerConfig::new(JwtKey::Hs256Secret(b"secret".to_vec()))).unwrap();
//! let token = server.issue_token("me", None, 3600).unwrap();
//! println!("{}?token={token}", server.url());
//! server.publish("system_event", serde_json::json!({"event": "system_started"}), None).unwrap();
//! server.stop();
//! ```

mod auth;
mod backlog;
mod broker;
mod bus;
mod commands;
mod config;
mod connection;
mod detached;
mod envelope;
mod error;
mod events;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod metrics;
mod probe;
mod rate_limit;
mod session_state;
mod shared;
mod static_files;
mod subscription;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub(crate) use auth::Authenticator;
pub(crate) use broker::StreamId;
pub use bus::{CallbackSink, Event};

/// The most environments one application runs: each is a task with its own queues and
/// state, and the bus retains each one's last occupancy (`App::add_environment` refuses
/// one more).
pub const MAX_ENVIRONMENTS: usize = 4096;
pub use config::{BrokerConfig, JwtKey, RateLimits, ServerConfig, WindowLimit};
// The configuration's value checks, for the application's keys in the same object.
pub(crate) use config::{positive as positive_setting, seconds as seconds_setting};
pub use envelope::rfc3339_from_unix;
pub use error::{ArgumentError, AuthError, ServerError};
pub use events::EventType;
pub use http::{SUBPROTOCOL, WS_PATH};

use shared::Shared;

/// Task polls between the runtime's looks at its timers, sockets and the queue of tasks
/// woken from other threads (tokio's default is 61). On a busy worker one poll is an
/// environment's frame or a room's simulated packet, a fraction of a millisecond, so 61
/// of them held a due timer or a model's answer back by tens of milliseconds: the late
/// pose frames of `benches/load.py` (`docs/performance.md`, "Eighth pass").
const EVENT_INTERVAL: u32 = 8;

/// A handle that puts events on a server's bus. The stages hold it as an
/// [`crate::events::Publisher`] ([`Publisher::sink`]) and never see the server.
#[derive(Clone)]
pub struct Publisher(Arc<Shared>);

impl crate::events::EventSink for Publisher {
    fn publish(&self, event: crate::events::Event) {
        Publisher::publish(self, event.into());
    }
}

impl Publisher {
    /// This publisher as the stages hold it.
    pub fn sink(&self) -> crate::events::Publisher {
        Arc::new(self.clone())
    }

    /// Publishes an event; its environment becomes known to the server.
    pub fn publish(&self, event: Event) {
        if let Some(env) = &event.environment_id {
            if !self.0.environment_known(env) {
                self.0.environments.write().insert(env.to_string());
                if let Some(b) = &self.0.broker {
                    b.register(env);
                }
            }
        }
        // With a broker an environment's event goes through its stream (every node reads
        // it back, this one included); without one, or without an environment, straight
        // to this node's bus.
        match &self.0.broker {
            Some(b) if event.environment_id.is_some() => b.publish(&*self.0, event),
            _ => {
                self.0.bus.publish(event);
            }
        }
    }
}

/// A read-only view of the server's measurements, cheap to clone and to hold in a task.
#[derive(Clone)]
pub struct Probe(Arc<Shared>);

impl Probe {
    /// (delivery latency sum in seconds, messages delivered) so far.
    pub fn latency(&self) -> (f64, u64) {
        self.0.metrics.latency_totals()
    }

    /// Delivery latency histogram so far: (upper bound s, count) per bucket, and the total.
    pub fn latency_histogram(&self) -> (Vec<(f64, u64)>, u64) {
        self.0.metrics.latency_histogram()
    }

    /// WebSocket connections open now.
    pub fn connections(&self) -> u64 {
        self.0
            .metrics
            .connections_active
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A running server. Dropping it stops it.
pub struct Server {
    /// Taken (and shut down) by `stop`; behind a lock so every method takes `&self` and a
    /// server can be shared (the Python bindings hold it in an `Arc`).
    runtime: parking_lot::Mutex<Option<tokio::runtime::Runtime>>,
    /// Spawns on the runtime without locking it.
    handle: tokio::runtime::Handle,
    stopped: std::sync::atomic::AtomicBool,
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
}

impl Server {
    /// Binds and starts serving on a runtime of its own.
    pub fn start(config: ServerConfig) -> Result<Server, ServerError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .event_interval(EVENT_INTERVAL)
            .global_queue_interval(EVENT_INTERVAL)
            .thread_name("wdp-server")
            .build()
            .map_err(|e| ServerError::Runtime(e.to_string()))?;
        let auth = auth::Authenticator::new(&config.jwt_key, config.jwt_leeway_s)?;
        let bind = format!("{}:{}", config.host, config.port);
        let listener = runtime
            .block_on(TcpListener::bind(&bind))
            .map_err(|source| ServerError::Bind {
                addr: bind.clone(),
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr: bind, source })?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let broker = match &config.broker {
            Some(b) => Some(Arc::new(
                broker::Broker::new(b.clone(), config.resume_ttl).map_err(ServerError::Broker)?,
            )),
            None => None,
        };
        let bus = bus::Bus::default();
        bus.set_window(config.lag_window_messages as usize);
        let shared = Arc::new(Shared {
            config,
            auth,
            bus,
            metrics: metrics::Metrics::default(),
            environments: Default::default(),
            started: Instant::now(),
            started_at: envelope::now_rfc3339(),
            shutdown: shutdown_rx,
            broker,
            detached: Default::default(),
        });
        // ---- broker (several nodes): connect before serving, degraded if it cannot ----
        if let Some(b) = &shared.broker {
            b.spawn(shared.clone(), shared.shutdown.clone(), runtime.handle());
            runtime.block_on(b.wait_up(Duration::from_secs(2)));
        }
        // ---- end broker ----
        runtime.spawn(accept_loop(listener, shared.clone()));
        runtime.spawn(reap_sessions(shared.clone()));
        Ok(Server {
            handle: runtime.handle().clone(),
            runtime: parking_lot::Mutex::new(Some(runtime)),
            stopped: std::sync::atomic::AtomicBool::new(false),
            shared,
            addr,
            shutdown: shutdown_tx,
        })
    }

    /// The address it listens on (the port chosen when the config said 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://HOST:PORT/ws/v1`.
    pub fn url(&self) -> String {
        format!("ws://{}{}", self.addr, WS_PATH)
    }

    /// Issues an HS256 token; `environments: None` grants every environment.
    pub fn issue_token(
        &self,
        subject: &str,
        environments: Option<&[String]>,
        ttl_s: u64,
    ) -> Result<String, ServerError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Ok(self.shared.auth.issue(subject, environments, ttl_s, now)?)
    }

    /// A handle that publishes into this server's bus.
    pub fn publisher(&self) -> Publisher {
        Publisher(self.shared.clone())
    }

    /// Makes an environment known (idempotent): clients may subscribe to it, and with a
    /// broker its stream is announced to the other nodes. The application calls this when
    /// it starts one ([`crate::app::App::add_environment`]).
    pub fn register_environment(&self, id: &str) {
        self.shared.environments.write().insert(id.to_string());
        if let Some(b) = &self.shared.broker {
            b.register(id);
        }
    }

    /// What the server measured so far (delivery latency, connections), for the
    /// application's `performance_update`s.
    pub fn probe(&self) -> Probe {
        Probe(self.shared.clone())
    }

    /// Every environment the server knows (registered, or named by a published event).
    pub fn environments(&self) -> Vec<String> {
        self.shared.environments.read().iter().cloned().collect()
    }

    /// Publishes an event into the bus, as the pipeline would. An environment named here
    /// (or in `data.environment_id`) becomes known.
    pub fn publish(
        &self,
        event_type: &str,
        data: serde_json::Value,
        environment_id: Option<String>,
    ) -> Result<(), ServerError> {
        let t = EventType::parse(event_type).ok_or_else(|| {
            let names: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            ServerError::InvalidEvent(format!(
                "unknown event type '{event_type}' (one of: {})",
                names.join(", ")
            ))
        })?;
        if !data.is_object() {
            return Err(ServerError::InvalidEvent(
                "event data must be a JSON object".into(),
            ));
        }
        self.publisher()
            .publish(Event::new(t, data, environment_id));
        Ok(())
    }

    /// Routes events of `types` to `sink` (the Python callback dispatcher).
    pub fn set_callback_sink(&self, types: Vec<EventType>, sink: Option<CallbackSink>) {
        self.shared.bus.set_callbacks(types, sink);
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.shared.config
    }

    /// Prometheus text, as `/metrics` serves it.
    pub fn metrics_text(&self) -> String {
        http::metrics_text(&self.shared)
    }

    // ---- broker (several nodes; docs/deployment.md) ----

    fn broker(&self) -> Result<&Arc<broker::Broker>, ServerError> {
        self.shared.broker.as_ref().ok_or_else(|| {
            ServerError::InvalidConfig("no broker is configured (config `broker.url`)".into())
        })
    }

    /// Takes or renews the lease of an environment for this node (renewed automatically
    /// while held). Only the holder should run the environment's sources; when a node
    /// dies its leases expire after `lease_ttl` and another node can take them over.
    pub fn claim_environment(&self, environment_id: &str) -> Result<bool, ServerError> {
        let b = self.broker()?.clone();
        let env = environment_id.to_string();
        self.live_handle()?
            .block_on(async move { b.claim(&env).await })
            .map_err(|e| ServerError::Broker(e.to_string()))
    }

    /// Gives an environment's lease back, if this node holds it.
    pub fn release_environment(&self, environment_id: &str) -> Result<(), ServerError> {
        let b = self.broker()?.clone();
        let env = environment_id.to_string();
        self.live_handle()?
            .block_on(async move { b.release(&env).await })
            .map_err(|e| ServerError::Broker(e.to_string()))
    }

    /// The node that holds an environment's lease, if any.
    pub fn lease_holder(&self, environment_id: &str) -> Result<Option<String>, ServerError> {
        let b = self.broker()?.clone();
        let env = environment_id.to_string();
        self.live_handle()?
            .block_on(async move { b.lease_holder(&env).await })
            .map_err(|e| ServerError::Broker(e.to_string()))
    }

    /// Whether this node holds the environment's lease (as of its last renewal).
    pub fn holds_lease(&self, environment_id: &str) -> bool {
        self.shared
            .broker
            .as_ref()
            .is_some_and(|b| b.holds(environment_id))
    }

    /// This node's id in the broker, when one is configured.
    pub fn node_id(&self) -> Option<String> {
        self.shared
            .broker
            .as_ref()
            .map(|b| b.config.node_id.clone())
    }

    /// The broker part of `/health`, when one is configured.
    pub fn broker_status(&self) -> Option<serde_json::Value> {
        self.shared.broker.as_ref().map(|b| b.health())
    }

    // ---- end broker ----

    /// Stops the server: every client gets a `disconnect` (server_shutdown) and a close
    /// frame, with at most about two seconds given to slow ones. Never hangs; idempotent.
    pub fn stop(&self) {
        use std::sync::atomic::Ordering::{Relaxed, SeqCst};
        if self.stopped.swap(true, SeqCst) {
            return;
        }
        // Clients subscribed to system_event hear why they are about to be disconnected
        // (the writers deliver what is queued before the goodbye).
        self.publisher().publish(Event::new(
            EventType::SystemEvent,
            serde_json::json!({"event": "system_stopping", "status": "stopping",
                               "severity": "info", "message": "the server is shutting down"}),
            None,
        ));
        self.shared.bus.settle(); // queued before the writers' last flush (bus shards)
        if let Some(b) = self.shared.broker.clone() {
            // Give the leases back so another node can take over at once (bounded).
            let (tx, rx) = std::sync::mpsc::channel();
            self.handle.spawn(async move {
                b.release_all().await;
                let _ = tx.send(());
            });
            let _ = rx.recv_timeout(Duration::from_millis(500));
        }
        let _ = self.shutdown.send(true);
        let runtime = self.runtime.lock().take();
        if let Some(rt) = runtime {
            // Give writers a moment to send their goodbyes, then stop whatever is left.
            let deadline = Instant::now() + Duration::from_millis(1500);
            while Instant::now() < deadline
                && self.shared.metrics.connections_active.load(Relaxed) > 0
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            rt.shutdown_timeout(Duration::from_millis(500));
        }
    }

    /// Whether it serves (false once [`Server::stop`] began).
    pub fn is_running(&self) -> bool {
        !self.stopped.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The runtime's handle, whether or not the server still runs.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// The runtime's handle, while the server runs: what the application spawns its
    /// environments and sources on.
    pub fn live_handle(&self) -> Result<&tokio::runtime::Handle, ServerError> {
        if self.is_running() {
            Ok(&self.handle)
        } else {
            Err(ServerError::NotRunning)
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(pair) => pair,
                // Out of file descriptors and the like: wait instead of spinning.
                Err(_) => { tokio::time::sleep(Duration::from_millis(50)).await; continue; }
            },
            _ = shutdown.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        connection::limit_send_buffer(&stream, shared.config.socket_send_buffer_bytes);
        // The connection's writer asks the socket what it still holds (`backlog.rs`): the
        // socket goes to hyper, and after the upgrade it is no longer ours to ask.
        let send_queue = backlog::SendQueue::of(&stream);
        let header_timeout = shared.config.header_timeout;
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(send_queue);
                http::handle(req, shared.clone())
            });
            let _ = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

/// Forgets sessions nobody resumed within `resume_ttl`.
async fn reap_sessions(shared: Arc<Shared>) {
    let ttl = shared.config.resume_ttl;
    let mut tick = tokio::time::interval(Duration::from_secs(1).min(ttl));
    loop {
        tick.tick().await;
        for s in shared.bus.sessions() {
            let expired = {
                let st = s.state.lock();
                st.retired || st.detached_at.is_some_and(|t| t.elapsed() >= ttl)
            };
            if expired {
                shared.bus.remove_session(s.id);
                shared.detached.remove(s.id);
            }
        }
    }
}
