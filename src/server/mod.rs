//! The event bus and the WebSocket API server (`docs/protocol.md`).
//!
//! In: events from the pipeline or from [`Server::publish`]. Out: the spec's messages to
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

pub use auth::{Authenticator, EnvironmentGrant, Identity};
pub use broker::StreamId;
pub use bus::{CallbackSink, Event};
pub use config::{BrokerConfig, ConfigOverrides, JwtKey, RateLimits, ServerConfig, WindowLimit};
pub use envelope::rfc3339_from_unix;
pub use error::{AuthError, ServerError};
pub use events::EventType;
pub use http::{SUBPROTOCOL, WS_PATH};

use shared::Shared;

use crate::csi::{CsiFormat, CsiFrame};
use crate::pipeline::{EnvironmentHandle, ReplayProgress, UdpStats};

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
            Some(b) if event.environment_id.is_some() => b.publish(&self.0, event),
            _ => {
                self.0.bus.publish(event);
            }
        }
    }
}

impl crate::pipeline::MonitorSource for Publisher {
    fn frames(&self) -> (u64, usize) {
        let envs = self.0.pipelines.lock();
        let frames = envs.values().map(|e| e.stats.lock().frames).sum();
        let queued = envs.values().map(|e| e.queue_len()).sum();
        (frames, queued)
    }
    fn latency(&self) -> (f64, u64) {
        self.0.metrics.latency_totals()
    }
    fn latency_histogram(&self) -> (Vec<(f64, u64)>, u64) {
        self.0.metrics.latency_histogram()
    }
    fn environments(&self) -> Vec<crate::pipeline::EnvironmentTick> {
        self.0
            .pipelines
            .lock()
            .values()
            .map(|e| crate::pipeline::EnvironmentTick {
                id: e.id.clone(),
                queue_len: e.queue_len(),
                queue_capacity: e.queue_capacity,
            })
            .collect()
    }
    fn inference(&self) -> Option<crate::pipeline::InferenceTotals> {
        use std::sync::atomic::Ordering::Relaxed;
        let model = self.0.model.read();
        let c = &model.as_ref()?.counters;
        Some(crate::pipeline::InferenceTotals {
            calls: c.calls.load(Relaxed),
            windows: c.windows.load(Relaxed),
            failures: c.failures.load(Relaxed),
            busy_s: c.busy_us.load(Relaxed) as f64 / 1e6,
        })
    }
    fn connections(&self) -> u64 {
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
        let shared = Arc::new(Shared {
            config,
            auth,
            bus: bus::Bus::default(),
            metrics: metrics::Metrics::default(),
            environments: Default::default(),
            started: Instant::now(),
            started_at: envelope::now_rfc3339(),
            shutdown: shutdown_rx,
            pipelines: Default::default(),
            settings: Default::default(),
            model: Default::default(),
            broker,
            detached: Default::default(),
        });
        // ---- broker (several nodes): connect before serving, degraded if it cannot ----
        if let Some(b) = &shared.broker {
            broker::Broker::spawn(&shared, runtime.handle());
            runtime.block_on(b.wait_up(Duration::from_secs(2)));
        }
        // ---- end broker ----
        runtime.spawn(accept_loop(listener, shared.clone()));
        runtime.spawn(reap_sessions(shared.clone()));
        let interval = shared.config.performance_interval;
        if !interval.is_zero() {
            let publisher = Publisher(shared.clone());
            crate::pipeline::spawn_monitor(
                runtime.handle(),
                interval,
                publisher.clone(),
                publisher.sink(),
            );
        }
        Ok(Server {
            handle: runtime.handle().clone(),
            runtime: parking_lot::Mutex::new(Some(runtime)),
            stopped: std::sync::atomic::AtomicBool::new(false),
            shared,
            addr,
            shutdown: shutdown_tx,
        })
    }

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

    /// Starts an environment (idempotent), so clients may subscribe to it and sources
    /// may feed it. `device` names the profile of the CSI it will receive.
    pub fn add_environment(&self, id: &str, device: Option<&str>) {
        let mut pipelines = self.shared.pipelines.lock();
        if !pipelines.contains_key(id) {
            let rt = &self.handle;
            let ctx = crate::pipeline::EnvironmentContext {
                publisher: self.publisher().sink(),
                settings: self.shared.settings.clone(),
                model: self.shared.model.clone(),
                stall_timeout: self.shared.config.stall_timeout,
                queue_capacity: self.shared.config.environment_queue,
            };
            let handle =
                EnvironmentHandle::spawn(rt, id.to_string(), device.map(String::from), ctx);
            pipelines.insert(id.to_string(), handle);
        }
        self.shared.environments.write().insert(id.to_string());
        if let Some(b) = &self.shared.broker {
            b.register(id);
        }
    }

    /// Sets the pose model every environment infers with (`None`: no inference; the
    /// environments report their sources only, or run on oracle detections). Windows are
    /// due `rate_hz` times a second per environment; a new model takes over from the
    /// next window.
    pub fn set_model(
        &self,
        model: Option<Arc<crate::model::Model>>,
        rate_hz: f64,
    ) -> Result<(), ServerError> {
        let service = match model {
            Some(m) => Some(
                crate::pipeline::InferenceService::start(m, rate_hz)
                    .map_err(|e| ServerError::Runtime(format!("inference worker: {e}")))?,
            ),
            None => None,
        };
        *self.shared.model.write() = service;
        Ok(())
    }

    /// The model in use and its worker's counters (`None` without a model).
    pub fn model_info(&self) -> Option<serde_json::Value> {
        self.shared.model.read().as_ref().map(|s| s.to_json())
    }

    /// Tells an environment its room's floor size in metres (width, depth): the frame
    /// the model's normalized coordinates are scaled by (default
    /// [`crate::pipeline::DEFAULT_ROOM`]).
    pub fn set_room(&self, environment_id: &str, size: [f64; 2]) -> Result<(), ServerError> {
        if !size.iter().all(|x| x.is_finite() && *x > 0.0) {
            return Err(ServerError::InvalidConfig(format!(
                "room size must be two positive numbers of metres, got {size:?}"
            )));
        }
        let env = self.pipeline(environment_id)?;
        env.tx
            .blocking_send(crate::pipeline::Input::RoomSize(size))
            .map_err(|_| ServerError::UnknownEnvironment(environment_id.to_string()))
    }

    /// Learns the empty room of `environment_id` over its next `seconds` of CSI (source
    /// time), for the sensor's presence and motion thresholds ([`crate::sensing`]). The
    /// room must be empty meanwhile; a calibration that sees motion is refused. Blocks
    /// until it ends, or `timeout` passes without it (no CSI arriving, say). The outcome is
    /// also published as a `system_event` (`calibration_complete` / `calibration_failed`).
    pub fn calibrate(
        &self,
        environment_id: &str,
        seconds: f64,
        timeout: Duration,
    ) -> Result<crate::sensing::Calibration, ServerError> {
        if !(seconds.is_finite() && (1.0..=3600.0).contains(&seconds)) {
            return Err(ServerError::InvalidConfig(format!(
                "calibration seconds must be between 1 and 3600, not {seconds}"
            )));
        }
        let env = self.pipeline(environment_id)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        env.tx
            .blocking_send(crate::pipeline::Input::Calibrate {
                seconds,
                reply: Some(tx),
            })
            .map_err(|_| ServerError::UnknownEnvironment(environment_id.to_string()))?;
        let outcome = self
            .handle
            .block_on(async { tokio::time::timeout(timeout, rx).await });
        match outcome {
            Ok(Ok(Ok(c))) => Ok(c),
            Ok(Ok(Err(reason))) => Err(ServerError::Calibration(reason)),
            Ok(Err(_)) => Err(ServerError::Calibration(
                "the environment stopped before the calibration ended".into(),
            )),
            Err(_) => Err(ServerError::Calibration(format!(
                "no calibration after {:.0} s: is CSI arriving in `{environment_id}`?",
                timeout.as_secs_f64()
            ))),
        }
    }

    /// Applies a saved calibration to `environment_id` (None: back to uncalibrated).
    pub fn set_calibration(
        &self,
        environment_id: &str,
        calibration: Option<crate::sensing::Calibration>,
    ) -> Result<(), ServerError> {
        let env = self.pipeline(environment_id)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        env.tx
            .blocking_send(crate::pipeline::Input::SetCalibration {
                calibration,
                reply: Some(tx),
            })
            .map_err(|_| ServerError::UnknownEnvironment(environment_id.to_string()))?;
        match rx.blocking_recv() {
            Ok(r) => r.map_err(ServerError::Calibration),
            Err(_) => Err(ServerError::UnknownEnvironment(environment_id.to_string())),
        }
    }

    /// Changes runtime settings (`pipeline::SETTINGS`) for every environment, all or
    /// none, and publishes a `config_update` with what changed. Returns the changes.
    pub fn configure(
        &self,
        changes: &serde_json::Value,
        applied_by: &str,
    ) -> Result<serde_json::Value, ServerError> {
        let obj = changes
            .as_object()
            .ok_or_else(|| ServerError::InvalidConfig("settings must be an object".into()))?;
        let changed = self
            .shared
            .settings
            .write()
            .apply(obj)
            .map_err(ServerError::InvalidConfig)?;
        if !changed.is_empty() {
            let fields: Vec<&String> = changed.keys().collect();
            self.publisher().publish(Event::new(
                EventType::ConfigUpdate,
                serde_json::json!({
                    "changed_fields": fields,
                    "new_values": changed,
                    "applied_by": applied_by,
                    "requires_restart": false,
                }),
                None,
            ));
        }
        Ok(serde_json::Value::Object(changed))
    }

    /// A handle that publishes into this server's bus.
    pub fn publisher(&self) -> Publisher {
        Publisher(self.shared.clone())
    }

    fn pipeline(&self, id: &str) -> Result<EnvironmentHandle, ServerError> {
        let pipelines = self.shared.pipelines.lock();
        match pipelines.get(id) {
            Some(env) => Ok(env.clone()),
            None => {
                let known: Vec<&str> = pipelines.keys().map(String::as_str).collect();
                Err(ServerError::UnknownEnvironment(format!(
                    "environment '{id}' was not added (add_environment first; known: {})",
                    known.join(", ")
                )))
            }
        }
    }

    /// Feeds frames into an environment, as a live source would. Waits while the
    /// environment's queue is full (never drops); call from outside the server's runtime.
    pub fn inject(&self, environment_id: &str, frames: Vec<CsiFrame>) -> Result<(), ServerError> {
        let env = self.pipeline(environment_id)?;
        for frame in frames {
            env.tx
                .blocking_send(crate::pipeline::Input::Frame {
                    source: "inject".into(),
                    frame,
                    oracle: None,
                })
                .map_err(|_| ServerError::NotRunning)?;
        }
        Ok(())
    }

    /// Replays a recording into an environment; `speed` 1.0 is real time, 0 as fast as
    /// the environment takes it.
    pub fn replay(
        &self,
        environment_id: &str,
        path: &std::path::Path,
        format: Option<CsiFormat>,
        speed: f64,
    ) -> Result<Arc<ReplayProgress>, ServerError> {
        let env = self.pipeline(environment_id)?;
        let rt = self.live_handle()?;
        Ok(crate::pipeline::spawn_replay(
            rt,
            path.to_path_buf(),
            format,
            speed,
            env.tx,
        ))
    }

    /// Runs a simulator scenario as a live source of an environment (`speed` as for
    /// replays; `repeat` starts the next run with the next seed when one ends). With
    /// `oracle`, detections made from the ground truth under that noise model feed the
    /// environment's tracking and analytics (`pipeline::Oracle`).
    pub fn simulate(
        &self,
        environment_id: &str,
        spec: crate::sim::Spec,
        speed: f64,
        repeat: bool,
        oracle: Option<crate::track::synth::NoiseModel>,
    ) -> Result<Arc<ReplayProgress>, ServerError> {
        let env = self.pipeline(environment_id)?;
        let rt = self.live_handle()?;
        Ok(crate::pipeline::spawn_simulation(
            rt, spec, speed, repeat, oracle, env.tx,
        ))
    }

    /// Listens for ESP32 UDP frames on `addr`, routing node ids to environments.
    pub fn listen_udp(
        &self,
        addr: SocketAddr,
        routes: std::collections::HashMap<u16, String>,
    ) -> Result<(SocketAddr, Arc<UdpStats>), ServerError> {
        self.listen_udp_routes(addr, routes, Default::default(), Default::default())
    }

    /// Listens on `addr` for WDPC and RuView frames (routed by node id) and `CSI_DATA`
    /// lines (routed by sender, `"ip"` or `"ip:port"`, else by their MAC field).
    pub fn listen_udp_routes(
        &self,
        addr: SocketAddr,
        nodes: std::collections::HashMap<u16, String>,
        macs: std::collections::HashMap<String, String>,
        senders: std::collections::HashMap<String, String>,
    ) -> Result<(SocketAddr, Arc<UdpStats>), ServerError> {
        use crate::pipeline::{normalize_mac, Route, UdpRoutes};
        let route = |env: String| -> Result<Route, ServerError> {
            let tx = self.pipeline(&env)?.tx;
            Ok(Route {
                environment: env,
                tx,
            })
        };
        let mut table = UdpRoutes::default();
        for (node, env) in nodes {
            table.nodes.insert(node, route(env)?);
        }
        for (mac, env) in macs {
            let key = normalize_mac(&mac).ok_or_else(|| {
                ServerError::InvalidConfig(format!(
                    "{mac:?} is not a MAC address (six hex octets, e.g. A4:CF:12:13:93:D5)"
                ))
            })?;
            table.macs.insert(key, route(env)?);
        }
        for (sender, env) in senders {
            let key = match (
                sender.parse::<std::net::IpAddr>(),
                sender.parse::<SocketAddr>(),
            ) {
                (Ok(ip), _) => ip.to_string(),
                (_, Ok(sa)) => sa.to_string(),
                _ => {
                    return Err(ServerError::InvalidConfig(format!(
                        "sender {sender:?} is not an IP address or ip:port"
                    )))
                }
            };
            table.senders.insert(key, route(env)?);
        }
        let rt = self.live_handle()?;
        rt.block_on(crate::pipeline::spawn_udp(
            addr,
            table,
            self.publisher().sink(),
        ))
        .map_err(|source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        })
    }

    /// Reads `CSI_DATA` lines from the serial port `path` at `baud` into an
    /// environment (`docs/esp32-live.md`); `mac` keeps one transmitter's lines only.
    pub fn listen_serial(
        &self,
        path: &std::path::Path,
        baud: u32,
        environment_id: &str,
        mac: Option<String>,
    ) -> Result<crate::pipeline::SerialHandle, ServerError> {
        let env = self.pipeline(environment_id)?;
        self.live_handle()?;
        crate::pipeline::spawn_serial(
            path.to_path_buf(),
            baud,
            mac,
            environment_id.to_string(),
            env.tx,
            self.publisher().sink(),
        )
        .map_err(|e| match e {
            crate::pipeline::SerialError::Open { port, source } => {
                ServerError::Serial { port, source }
            }
            other => ServerError::InvalidConfig(other.to_string()),
        })
    }

    /// What an environment has seen: frames, rate, shape, and each source's health.
    pub fn environment_stats(
        &self,
        environment_id: &str,
    ) -> Result<serde_json::Value, ServerError> {
        let env = self.pipeline(environment_id)?;
        let mut v = env.stats.lock().to_json();
        v["queue_length"] = env.queue_len().into();
        v["device"] = env.device.clone().into();
        Ok(v)
    }

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

    pub fn is_running(&self) -> bool {
        !self.stopped.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The runtime's handle, while the server runs.
    fn live_handle(&self) -> Result<&tokio::runtime::Handle, ServerError> {
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
        let header_timeout = shared.config.header_timeout;
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| http::handle(req, shared.clone()));
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
