//! A driver of one session's message handling for the fuzz target
//! (`fuzz/fuzz_targets/session_messages.rs`) and the stable property test
//! (`tests/session_props.rs`): bytes become a script of client messages (text with every
//! message type and random fields, invalid UTF-8, binary, pings) and published events,
//! run against a real session of a server's shared state, with no socket and no clock
//! tricks. Every step must end without a panic, and the session's invariants must hold.
use std::sync::Arc;

use serde_json::{json, Value};

use super::auth::Identity;
use super::commands::{self, ClientState};
use super::config::{JwtKey, ServerConfig};
use super::events::EventType;
use super::session_state::SessionShared;
use super::shared::Shared;
use super::subscription::AppCompression;

/// Reads the script's bytes in order.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.byte().unwrap_or(0) as usize % from.len()]
    }
    fn number(&mut self) -> Value {
        match self.byte().unwrap_or(0) % 8 {
            0 => json!(-1),
            1 => json!(1e-300),
            2 => json!(5e-324),
            3 => json!(1e308),
            4 => json!(u64::MAX),
            5 => json!(0.5),
            6 => json!(self.byte().unwrap_or(0)),
            _ => json!(i64::MIN),
        }
    }
    fn string(&mut self) -> Value {
        let n = self.byte().unwrap_or(0) as usize % 40;
        let mut s = String::from_utf8_lossy(self.take(n)).into_owned();
        if self.byte().unwrap_or(0).is_multiple_of(4) {
            s = self
                .pick(&[
                    "room_001",
                    "ward_a",
                    "sub_1",
                    "fall_detected",
                    "high",
                    "pose_data",
                ])
                .into();
        }
        Value::from(s)
    }
    fn value(&mut self, depth: u32) -> Value {
        match self.byte().unwrap_or(0) % if depth > 2 { 5 } else { 7 } {
            0 => Value::Null,
            1 => Value::from(self.byte().unwrap_or(0).is_multiple_of(2)),
            2 => self.number(),
            3 | 4 => self.string(),
            5 => {
                let n = self.byte().unwrap_or(0) as usize % 5;
                Value::from((0..n).map(|_| self.value(depth + 1)).collect::<Vec<_>>())
            }
            _ => self.object(depth + 1),
        }
    }
    fn object(&mut self, depth: u32) -> Value {
        const KEYS: [&str; 20] = [
            "event_type",
            "filters",
            "throttle",
            "quality",
            "environment_id",
            "min_confidence",
            "include_keypoints",
            "severity",
            "event_types",
            "max_fps",
            "buffer_size",
            "compression",
            "subscriptions",
            "subscription_ids",
            "subscription_id",
            "session_id",
            "last_sequence",
            "last_event_ids",
            "x",
            "",
        ];
        let n = self.byte().unwrap_or(0) as usize % 5;
        let mut m = serde_json::Map::new();
        for _ in 0..n {
            let k = self.pick(&KEYS);
            let v = self.value(depth);
            m.insert(k.into(), v);
        }
        Value::Object(m)
    }
}

/// Runs one script. Panics (for the fuzzer to report) only when an invariant breaks.
pub fn session_messages(data: &[u8]) {
    let mut config = ServerConfig::new(JwtKey::Hs256Secret(b"fuzz".to_vec()));
    config.max_subscriptions = 8;
    config.alert_history = 64;
    let auth = super::auth::Authenticator::new(&config.jwt_key, 0).expect("a valid key");
    let (_tx, shutdown) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared {
        config,
        auth,
        bus: Default::default(),
        metrics: Default::default(),
        environments: Default::default(),
        started: std::time::Instant::now(),
        started_at: String::new(),
        shutdown,
        broker: None,
        detached: Default::default(),
    });
    shared.environments.write().insert("room_001".into());
    let identity = Identity {
        subject: "fuzz".into(),
        expires_at: u64::MAX,
        environments: super::auth::EnvironmentGrant::Only(vec!["room_001".into()]),
    };
    let session = SessionShared::new("c".into(), &identity, AppCompression::None, 16, 64, 1 << 16);
    let other = SessionShared::new("d".into(), &identity, AppCompression::None, 16, 64, 1 << 16);
    shared.bus.add_session(session.clone());
    shared.bus.add_session(other.clone());
    let mut client = ClientState::new(&shared.config.rate_limits);
    const TYPES: [&str; 9] = [
        "subscribe",
        "unsubscribe",
        "update_subscription",
        "heartbeat",
        "connection_status",
        "resume",
        "disconnect",
        "nonsense",
        "",
    ];
    let mut script = Script(data);
    let mut last_seq = 0;
    while let Some(op) = script.byte() {
        let _reason = match op % 8 {
            0..=2 => {
                let kind = script.pick(&TYPES);
                let mut data = script.object(0);
                if kind == "subscribe" && script.byte().unwrap_or(0).is_multiple_of(2) {
                    let subs: Vec<Value> = (0..script.byte().unwrap_or(0) % 3)
                        .map(|_| {
                            let mut s = script.object(1);
                            s["event_type"] =
                                Value::from(script.pick(&EventType::ALL.map(EventType::as_str)));
                            s
                        })
                        .collect();
                    data = json!({"subscriptions": subs});
                }
                let text = json!({"type": kind, "data": data}).to_string();
                commands::handle_text(&shared, &session, &mut client, &text)
            }
            3 => {
                let n = script.byte().unwrap_or(0) as usize;
                let raw = script.take(n);
                match std::str::from_utf8(raw) {
                    Ok(t) => commands::handle_text(&shared, &session, &mut client, t),
                    Err(_) => commands::handle_malformed(
                        &shared,
                        &session,
                        &mut client,
                        "not UTF-8",
                        json!({}),
                    ),
                }
            }
            4 => commands::handle_malformed(
                &shared,
                &session,
                &mut client,
                "binary",
                json!({"reason": "binary_frame"}),
            ),
            5 => commands::count_message(&shared, &session, &mut client, std::time::Instant::now()),
            _ => {
                let t = script.pick(&EventType::ALL);
                let env = script.pick(&[None, Some("room_001"), Some("ward_b")]);
                let mut data = script.object(0);
                if !data.is_object() {
                    data = json!({});
                }
                shared
                    .bus
                    .publish(super::bus::Event::new(t, data, env.map(String::from)));
                None
            }
        };
        // Invariants: sequences only grow; nothing is queued for a grant it lacks; the
        // queue stays bounded (replies by the rate limits, frames by buffer_size,
        // alerts by alert_queue_capacity).
        let st = session.state.lock();
        let seq = st.next_seq;
        assert!(seq >= last_seq, "sequence went back: {last_seq} -> {seq}");
        last_seq = seq;
        assert!(st.queue.len() <= 1024, "queue grew to {}", st.queue.len());
        assert!(st.alert_log.len() <= 64);
        assert!(st.subscriptions.len() <= 8);
        for o in &st.queue {
            assert!(
                !o.prefix.windows(6).any(|w| w == b"ward_b"),
                "an ungranted room reached the client"
            );
        }
    }
}
