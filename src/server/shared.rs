//! What every connection of one server shares.
use std::collections::BTreeSet;
use std::time::Instant;

use parking_lot::RwLock;
use tokio::sync::watch;

use super::auth::Authenticator;
use super::bus::Bus;
use super::config::ServerConfig;
use super::metrics::Metrics;

pub struct Shared {
    pub config: ServerConfig,
    pub auth: Authenticator,
    pub bus: Bus,
    pub metrics: Metrics,
    /// Environments known to the server: subscribing to another is an error.
    pub environments: RwLock<BTreeSet<String>>,
    pub started: Instant,
    pub started_at: String,
    /// Flips to true when the server stops.
    pub shutdown: watch::Receiver<bool>,
    /// The broker shared with other nodes, when one is configured (`broker/`).
    pub broker: Option<std::sync::Arc<super::broker::Broker>>,
    /// Disconnected sessions held for resume, capped (`detached.rs`).
    pub detached: super::detached::Detached,
}

impl Shared {
    pub fn environment_known(&self, id: &str) -> bool {
        self.environments.read().contains(id)
    }
}
