//! One environment: its input channel, its task, and what it knows about its sources.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::sequence::SequenceTracker;
use crate::csi::CsiFrame;
use crate::server::{Event, EventType, Publisher};

/// Detections made from a simulator's ground truth instead of by a model (oracle mode):
/// they let tracking, analytics and every client downstream run before a model exists,
/// and every message they lead to says so (`model_version: "oracle:simulator-truth"`).
pub struct Oracle {
    pub detections: Vec<crate::track::Detection>,
    /// Room width and depth, metres: the frame of the detections' normalized coordinates.
    pub room_size: [f64; 2],
}

/// The `model_version` of pose_data built from oracle detections.
pub const ORACLE_MODEL: &str = "oracle:simulator-truth";

/// What sources send to an environment.
pub enum Input {
    Frame {
        source: String,
        frame: CsiFrame,
        /// Oracle detections riding along with a simulated frame (see [`Oracle`]).
        oracle: Option<Box<Oracle>>,
    },
    /// A source that ends on purpose (a replay that finished): no stall alarm follows.
    SourceEnded { source: String, reason: String },
}

/// Health of one source, as `hardware_event`s and `environment_stats` report it.
#[derive(Debug, Clone, Default)]
pub struct SourceStats {
    pub frames: u64,
    pub sequence: SequenceTracker,
    pub last_seen_unix: f64,
    pub stalled: bool,
    pub ended: bool,
    pub stalls: u64,
    last_seen: Option<Instant>,
    window_start: Option<(Instant, u64, u64)>,
}

/// What an environment has seen.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentStats {
    pub frames: u64,
    /// Frames per second over the last second.
    pub frame_rate: f64,
    pub last_shape: Option<[usize; 3]>,
    pub sources: BTreeMap<String, SourceStats>,
    recent: std::collections::VecDeque<Instant>,
}

impl EnvironmentStats {
    pub fn to_json(&self) -> Value {
        let sources: serde_json::Map<String, Value> = self
            .sources
            .iter()
            .map(|(k, s)| {
                (
                    k.clone(),
                    json!({
                        "frames": s.frames,
                        "gaps": s.sequence.gaps,
                        "reordered": s.sequence.reordered,
                        "duplicates": s.sequence.duplicates,
                        "last_seen": s.last_seen_unix,
                        "stalled": s.stalled,
                        "ended": s.ended,
                        "stalls": s.stalls,
                    }),
                )
            })
            .collect();
        json!({
            "frames": self.frames,
            "frame_rate": self.frame_rate,
            "shape": self.last_shape,
            "sources": sources,
        })
    }
}

/// A running environment.
#[derive(Clone)]
pub struct EnvironmentHandle {
    pub id: String,
    pub device: Option<String>,
    pub tx: mpsc::Sender<Input>,
    pub stats: Arc<Mutex<EnvironmentStats>>,
    pub queue_capacity: usize,
}

impl EnvironmentHandle {
    /// Starts the environment's task on `runtime`.
    pub fn spawn(
        runtime: &tokio::runtime::Handle,
        id: String,
        device: Option<String>,
        publisher: Publisher,
        settings: super::settings::SharedSettings,
        stall_timeout: Duration,
        queue_capacity: usize,
    ) -> Self {
        let (tx, rx) = mpsc::channel(queue_capacity);
        let stats = Arc::new(Mutex::new(EnvironmentStats::default()));
        let env = Environment {
            id: id.clone(),
            settings,
            stats: stats.clone(),
            publisher,
            stall_timeout,
        };
        runtime.spawn(env.run(rx));
        EnvironmentHandle {
            id,
            device,
            tx,
            stats,
            queue_capacity,
        }
    }

    /// Frames waiting to be processed.
    pub fn queue_len(&self) -> usize {
        self.queue_capacity - self.tx.capacity()
    }
}

struct Environment {
    id: String,
    settings: super::settings::SharedSettings,
    stats: Arc<Mutex<EnvironmentStats>>,
    publisher: Publisher,
    stall_timeout: Duration,
}

/// Loss over a window above this ratio raises a `packet_loss` hardware_event.
const LOSS_ALERT_RATIO: f64 = 0.01;
const LOSS_WINDOW: Duration = Duration::from_secs(5);

impl Environment {
    async fn run(self, mut rx: mpsc::Receiver<Input>) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut analysis = super::analysis::Analysis::default();
        loop {
            tokio::select! {
                input = rx.recv() => match input {
                    Some(Input::Frame { source, frame, oracle }) => {
                        let t = frame.timestamp;
                        self.on_frame(source, frame);
                        if let Some(o) = oracle {
                            let settings = self.settings.read().clone();
                            analysis.on_detections(t, *o, &settings, &self.publisher, &self.id);
                        }
                    }
                    Some(Input::SourceEnded { source, reason }) => self.on_source_ended(source, reason),
                    None => return, // the server dropped the environment
                },
                _ = tick.tick() => self.check_sources(),
            }
        }
    }

    fn on_frame(&self, source: String, frame: CsiFrame) {
        let now = Instant::now();
        let unix = unix_now();
        let mut events = Vec::new();
        {
            let mut st = self.stats.lock();
            st.frames += 1;
            st.last_shape = Some([frame.n_tx(), frame.n_rx(), frame.n_subcarriers()]);
            st.recent.push_back(now);
            while st
                .recent
                .front()
                .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1))
            {
                st.recent.pop_front();
            }
            st.frame_rate = st.recent.len() as f64;
            let new_source = !st.sources.contains_key(&source);
            let s = st.sources.entry(source.clone()).or_default();
            s.frames += 1;
            if let Some(seq) = frame.sequence {
                s.sequence.observe(seq as u32);
            }
            s.last_seen = Some(now);
            s.last_seen_unix = unix;
            s.ended = false;
            if new_source {
                events.push(self.hardware(
                    &source,
                    "source_connected",
                    "info",
                    "Source started sending CSI",
                    s,
                ));
            } else if s.stalled {
                s.stalled = false;
                events.push(self.hardware(
                    &source,
                    "source_reconnected",
                    "info",
                    "Source is sending CSI again",
                    s,
                ));
            }
            let (t0, expected0, gaps0) =
                *s.window_start
                    .get_or_insert((now, s.sequence.expected(), s.sequence.gaps));
            if now.duration_since(t0) >= LOSS_WINDOW {
                let expected = s.sequence.expected() - expected0;
                let lost = s.sequence.gaps.saturating_sub(gaps0);
                if expected > 0 && lost as f64 / expected as f64 > LOSS_ALERT_RATIO {
                    let msg = format!(
                        "{lost} of {expected} frames lost in the last {} s",
                        LOSS_WINDOW.as_secs()
                    );
                    events.push(self.hardware(&source, "packet_loss", "warning", &msg, s));
                }
                s.window_start = Some((now, s.sequence.expected(), s.sequence.gaps));
            }
        }
        for e in events {
            self.publisher.publish(e);
        }
        // The later stages (condition → window → infer → track → analyse) take the frame
        // here as they land; until then an environment reports sources and rates only.
    }

    fn on_source_ended(&self, source: String, reason: String) {
        let event = {
            let mut st = self.stats.lock();
            let s = st.sources.entry(source.clone()).or_default();
            s.ended = true;
            Event::new(
                EventType::SystemEvent,
                json!({"event": "source_finished", "source_id": source, "severity": "info",
                       "message": reason, "frames": s.frames}),
                Some(self.id.clone()),
            )
        };
        self.publisher.publish(event);
    }

    fn check_sources(&self) {
        let now = Instant::now();
        let mut events = Vec::new();
        {
            let mut st = self.stats.lock();
            for (name, s) in st.sources.iter_mut() {
                let silent = s
                    .last_seen
                    .is_some_and(|t| now.duration_since(t) >= self.stall_timeout);
                if silent && !s.stalled && !s.ended {
                    s.stalled = true;
                    s.stalls += 1;
                    let msg = format!(
                        "No CSI from this source for {:.1} s",
                        self.stall_timeout.as_secs_f64()
                    );
                    events.push(self.hardware(name, "source_stopped", "warning", &msg, s));
                }
            }
        }
        for e in events {
            self.publisher.publish(e);
        }
    }

    fn hardware(
        &self,
        source: &str,
        event: &str,
        severity: &str,
        message: &str,
        s: &SourceStats,
    ) -> Event {
        Event::new(
            EventType::HardwareEvent,
            json!({
                "event": event,
                "router_id": source,
                "source_id": source,
                "severity": severity,
                "message": message,
                "metadata": {
                    "last_seen": crate::server::rfc3339_from_unix(s.last_seen_unix),
                    "frames": s.frames,
                    "gaps": s.sequence.gaps,
                    "reordered": s.sequence.reordered,
                    "duplicates": s.sequence.duplicates,
                    "stalls": s.stalls,
                },
            }),
            Some(self.id.clone()),
        )
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}
