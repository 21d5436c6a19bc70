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
mod bus;
mod commands;
mod config;
mod connection;
mod envelope;
mod error;
mod events;
mod http;
mod metrics;
mod rate_limit;
mod session_state;
mod shared;
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
pub use bus::{CallbackSink, Event};
pub use config::{ConfigOverrides, JwtKey, RateLimits, ServerConfig, WindowLimit};
pub use error::{AuthError, ServerError};
pub use events::EventType;
pub use http::{SUBPROTOCOL, WS_PATH};

use shared::Shared;

/// A running server. Dropping it stops it.
pub struct Server {
    runtime: Option<tokio::runtime::Runtime>,
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
        let shared = Arc::new(Shared {
            config,
            auth,
            bus: bus::Bus::default(),
            metrics: metrics::Metrics::default(),
            environments: Default::default(),
            started: Instant::now(),
            started_at: envelope::now_rfc3339(),
            shutdown: shutdown_rx,
        });
        runtime.spawn(accept_loop(listener, shared.clone()));
        runtime.spawn(reap_sessions(shared.clone()));
        Ok(Server {
            runtime: Some(runtime),
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

    /// Makes an environment known, so clients may subscribe to it.
    pub fn add_environment(&self, id: &str) {
        self.shared.environments.write().insert(id.to_string());
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
        let event = Event::new(t, data, environment_id);
        if let Some(env) = &event.environment_id {
            if !self.shared.environment_known(env) {
                self.add_environment(env);
            }
        }
        self.shared.bus.publish(event);
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
        use std::sync::atomic::Ordering::Relaxed;
        self.shared.metrics.render(
            self.shared.bus.counters.published.load(Relaxed),
            self.shared.bus.counters.callback_dropped.load(Relaxed),
            self.shared.bus.sessions().len(),
        )
    }

    /// Stops the server: every client gets a `disconnect` (server_shutdown) and a close
    /// frame, with at most about two seconds given to slow ones. Never hangs.
    pub fn stop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(rt) = self.runtime.take() {
            // Give writers a moment to send their goodbyes, then stop whatever is left.
            let deadline = Instant::now() + Duration::from_millis(1500);
            while Instant::now() < deadline
                && self
                    .shared
                    .metrics
                    .connections_active
                    .load(std::sync::atomic::Ordering::Relaxed)
                    > 0
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            rt.shutdown_timeout(Duration::from_millis(500));
        }
    }

    pub fn is_running(&self) -> bool {
        self.runtime.is_some()
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
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| http::handle(req, shared.clone()));
            let _ = http1::Builder::new()
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
            }
        }
    }
}
