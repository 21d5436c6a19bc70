//! The application's configuration: the server's, plus the settings of what the
//! application runs on top of it (environments, their sources, the monitor, the Python
//! callbacks' queue).
//!
//! The configuration object users write (`Server(config={...})`, the `[server]` table of
//! `serve --config`) is one flat object holding both: [`AppConfig::apply_json`] takes the
//! application's keys ([`AppConfig::KEYS`]) and hands the rest to
//! [`ServerConfig::apply_json`], so the format is the one `docs/protocol.md` documents.
use std::time::Duration;

use crate::server::{positive_setting, seconds_setting, JwtKey, ServerConfig};

/// Everything a node needs to run: the WebSocket server's settings and the application's.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// The WebSocket server's settings (address, tokens, limits, broker).
    pub server: ServerConfig,
    /// Events waiting for the Python callbacks' thread; past this they are dropped and
    /// counted (a slow callback must not hold up the bus or grow memory).
    pub callback_queue_capacity: usize,
    /// A source silent for this long raises `hardware_event` `source_stopped`.
    pub stall_timeout: Duration,
    /// Frames waiting per environment; injectors wait (never drop) when it is full, UDP
    /// frames past it are dropped and counted.
    pub environment_queue: usize,
    /// Interval of `performance_update`; zero turns the monitor off.
    pub performance_interval: Duration,
}

/// The application's keys of the configuration object; unknown keys are left to the
/// server's overrides, which refuse them.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AppOverrides {
    callback_queue_capacity: Option<usize>,
    stall_timeout_s: Option<f64>,
    environment_queue: Option<usize>,
    performance_interval_s: Option<f64>,
}

impl AppConfig {
    /// The top-level keys of the configuration object the application reads itself.
    pub const KEYS: &'static [&'static str] = &[
        "callback_queue_capacity",
        "stall_timeout_s",
        "environment_queue",
        "performance_interval_s",
    ];

    /// The protocol document's defaults, with `jwt_key`.
    pub fn new(jwt_key: JwtKey) -> Self {
        AppConfig::with_server(ServerConfig::new(jwt_key))
    }

    /// `server`, with the application's defaults.
    pub fn with_server(server: ServerConfig) -> Self {
        AppConfig {
            server,
            callback_queue_capacity: 4096,
            stall_timeout: Duration::from_secs(2),
            environment_queue: 1024,
            performance_interval: Duration::from_secs(5),
        }
    }

    /// Applies overrides from one JSON object holding the application's keys and the
    /// server's; the error names the key that was wrong. Nothing is applied unless every
    /// key is known (a misspelt key is refused, naming every valid one).
    pub fn apply_json(&mut self, v: &serde_json::Value) -> Result<(), String> {
        let Some(obj) = v.as_object() else {
            // The server's refusal names what an object was expected to be.
            return self.server.apply_json(v);
        };
        if let Some(k) = obj.keys().find(|k| {
            !Self::KEYS.contains(&k.as_str()) && !ServerConfig::KEYS.contains(&k.as_str())
        }) {
            let known: Vec<String> = ServerConfig::KEYS
                .iter()
                .chain(Self::KEYS)
                .map(|k| format!("`{k}`"))
                .collect();
            return Err(format!(
                "config: unknown field `{k}`, expected one of {}",
                known.join(", ")
            ));
        }
        let (mine, theirs): (serde_json::Map<_, _>, serde_json::Map<_, _>) = obj
            .clone()
            .into_iter()
            .partition(|(k, _)| Self::KEYS.contains(&k.as_str()));
        let o: AppOverrides = serde_json::from_value(serde_json::Value::Object(mine))
            .map_err(|e| format!("config: {e}"))?;
        // Checked into a copy first: a refused value leaves the configuration as it was.
        let mut next = self.clone();
        next.server.apply_json(&serde_json::Value::Object(theirs))?;
        if let Some(x) = o.callback_queue_capacity {
            next.callback_queue_capacity = positive_setting("callback_queue_capacity", x)?;
        }
        if let Some(x) = o.stall_timeout_s {
            next.stall_timeout = seconds_setting("stall_timeout_s", x)?;
        }
        if let Some(x) = o.environment_queue {
            next.environment_queue = positive_setting("environment_queue", x)?;
        }
        if let Some(x) = o.performance_interval_s {
            next.performance_interval = if x == 0.0 {
                Duration::ZERO
            } else {
                seconds_setting("performance_interval_s", x)?
            };
        }
        *self = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AppConfig {
        AppConfig::new(JwtKey::Hs256Secret(b"config-test".to_vec()))
    }

    #[test]
    fn one_object_sets_the_apps_keys_and_the_servers() {
        let mut c = config();
        c.apply_json(&serde_json::json!({
            "stall_timeout_s": 0.5,
            "performance_interval_s": 0,
            "environment_queue": 32,
            "callback_queue_capacity": 4,
            "heartbeat_interval_s": 0.25,
            "max_subscriptions": 2,
        }))
        .unwrap();
        assert_eq!(c.stall_timeout, Duration::from_millis(500));
        assert!(c.performance_interval.is_zero());
        assert_eq!((c.environment_queue, c.callback_queue_capacity), (32, 4));
        assert_eq!(c.server.heartbeat_interval, Duration::from_millis(250));
        assert_eq!(c.server.max_subscriptions, 2);
    }

    #[test]
    fn a_bad_key_or_value_is_named_and_nothing_is_applied() {
        let mut c = config();
        let e = c
            .apply_json(&serde_json::json!({"stall_timeout": 1, "max_subscriptions": 2}))
            .unwrap_err();
        assert!(e.contains("unknown field `stall_timeout`"), "{e}");
        // Every valid key is offered, the application's and the server's.
        assert!(
            e.contains("`stall_timeout_s`") && e.contains("`heartbeat_timeout_s`"),
            "{e}"
        );
        let e = c
            .apply_json(&serde_json::json!({"environment_queue": 0, "max_subscriptions": 2}))
            .unwrap_err();
        assert!(e.contains("environment_queue"), "{e}");
        let e = c
            .apply_json(&serde_json::json!({"stall_timeout_s": 1, "heartbeat_timeout_s": -1}))
            .unwrap_err();
        assert!(e.contains("heartbeat_timeout_s"), "{e}");
        let e = c
            .apply_json(&serde_json::json!({"stall_timeout_s": "2"}))
            .unwrap_err();
        assert!(e.starts_with("config: invalid type"), "{e}");
        // None of the refused objects changed anything.
        assert_eq!(c.server.max_subscriptions, 32);
        assert_eq!(c.stall_timeout, Duration::from_secs(2));
        assert_eq!(c.environment_queue, 1024);
    }

    #[test]
    fn the_apps_keys_and_the_servers_do_not_overlap() {
        for k in AppConfig::KEYS {
            assert!(!ServerConfig::KEYS.contains(k), "{k} is both");
        }
    }
}
