//! Server metrics, rendered as Prometheus text at `/metrics`.
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the publish-to-write latency histogram.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

#[derive(Default)]
pub struct Metrics {
    pub connections_active: AtomicU64,
    pub connections_total: AtomicU64,
    pub handshake_refused: AtomicU64,
    pub messages_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub client_messages: AtomicU64,
    pub client_errors: AtomicU64,
    pub rate_limited: AtomicU64,
    pub slow_consumer_disconnects: AtomicU64,
    /// Stretches a client spent owing more than its bound (`backlog.rs`), cut or not.
    pub clients_behind: AtomicU64,
    pub heartbeat_timeouts: AtomicU64,
    /// Clients cut because a ping went unanswered for `alert_max_wait_s` (`probe.rs`).
    pub lag_cuts: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_ns: AtomicU64,
    lag_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    lag_count: AtomicU64,
    lag_sum_ns: AtomicU64,
}

impl Metrics {
    /// Records publish-to-write times of a batch of messages (one update per bucket).
    pub fn observe_latencies(&self, times: impl Iterator<Item = Duration>) {
        let mut counts = [0u64; LATENCY_BUCKETS.len()];
        let (mut n, mut sum_ns) = (0u64, 0u64);
        for d in times {
            let s = d.as_secs_f64();
            if let Some(i) = LATENCY_BUCKETS.iter().position(|b| s <= *b) {
                counts[i] += 1;
            }
            n += 1;
            sum_ns += d.as_nanos() as u64;
        }
        if n == 0 {
            return;
        }
        for (bucket, c) in self.latency_buckets.iter().zip(counts) {
            if c > 0 {
                bucket.fetch_add(c, Relaxed);
            }
        }
        self.latency_count.fetch_add(n, Relaxed);
        self.latency_sum_ns.fetch_add(sum_ns, Relaxed);
    }

    /// Records one ping's round trip (`probe.rs`): a client's delivery lag.
    pub fn observe_lag(&self, lag: Duration) {
        let s = lag.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| s <= *b) {
            self.lag_buckets[i].fetch_add(1, Relaxed);
        }
        self.lag_count.fetch_add(1, Relaxed);
        self.lag_sum_ns.fetch_add(lag.as_nanos() as u64, Relaxed);
    }

    /// Delivery latency so far: messages per histogram bucket as (upper bound in
    /// seconds, count), and the total (messages slower than the last bound are only in it).
    pub fn latency_histogram(&self) -> (Vec<(f64, u64)>, u64) {
        let buckets = LATENCY_BUCKETS
            .iter()
            .zip(&self.latency_buckets)
            .map(|(b, c)| (*b, c.load(Relaxed)))
            .collect();
        (buckets, self.latency_count.load(Relaxed))
    }

    /// (sum of delivery latencies in seconds, messages) so far.
    pub fn latency_totals(&self) -> (f64, u64) {
        (
            self.latency_sum_ns.load(Relaxed) as f64 / 1e9,
            self.latency_count.load(Relaxed),
        )
    }

    pub fn render(&self, bus: &super::bus::BusCounters, sessions: usize) -> String {
        let published = bus.published.load(Relaxed);
        let callback_dropped = bus.callback_dropped.load(Relaxed);
        let mut out = String::with_capacity(2048);
        let mut counter = |name: &str, help: &str, kind: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        counter(
            "wdp_connections_active",
            "Open WebSocket connections.",
            "gauge",
            self.connections_active.load(Relaxed),
        );
        counter(
            "wdp_sessions",
            "Sessions held, resumable ones included.",
            "gauge",
            sessions as u64,
        );
        counter(
            "wdp_connections_total",
            "WebSocket connections accepted.",
            "counter",
            self.connections_total.load(Relaxed),
        );
        counter(
            "wdp_handshakes_refused_total",
            "Handshakes refused (bad token, bad request).",
            "counter",
            self.handshake_refused.load(Relaxed),
        );
        counter(
            "wdp_events_published_total",
            "Events published on the bus.",
            "counter",
            published,
        );
        counter(
            "wdp_messages_sent_total",
            "Messages written to clients.",
            "counter",
            self.messages_sent.load(Relaxed),
        );
        counter(
            "wdp_bytes_sent_total",
            "Message bytes written to clients, before WebSocket compression.",
            "counter",
            self.bytes_sent.load(Relaxed),
        );
        counter(
            "wdp_frames_dropped_total",
            "Pose frames dropped for slow clients (buffer_size).",
            "counter",
            bus.frames_dropped.load(Relaxed),
        );
        counter(
            "wdp_frames_shed_total",
            "Pose frames dropped for every client because the server was behind its clients.",
            "counter",
            bus.frames_shed.load(Relaxed),
        );
        counter(
            "wdp_publisher_paced_total",
            "Publishes held back (at most 0.25 s) while the server was behind its clients.",
            "counter",
            bus.publisher_paced.load(Relaxed),
        );
        counter(
            "wdp_bus_inbox_overflow_total",
            "Events a fan-out shard had no room for (its task no longer running).",
            "counter",
            bus.inbox_overflow.load(Relaxed),
        );
        counter(
            "wdp_limited_dropped_total",
            "System and analytics events dropped for slow clients.",
            "counter",
            bus.limited_dropped.load(Relaxed),
        );
        counter(
            "wdp_throttled_total",
            "Events held back by max_fps or per-minute limits.",
            "counter",
            bus.throttled.load(Relaxed),
        );
        counter(
            "wdp_offer_panics_total",
            "Bugs caught while delivering an event to one connection (each closed it).",
            "counter",
            bus.offer_panics.load(Relaxed),
        );
        counter(
            "wdp_client_messages_total",
            "Messages received from clients.",
            "counter",
            self.client_messages.load(Relaxed),
        );
        counter(
            "wdp_client_errors_total",
            "Error messages sent to clients.",
            "counter",
            self.client_errors.load(Relaxed),
        );
        counter(
            "wdp_rate_limited_total",
            "Client messages refused by rate limits.",
            "counter",
            self.rate_limited.load(Relaxed),
        );
        counter(
            "wdp_slow_consumer_disconnects_total",
            "Clients disconnected for falling behind on alerts.",
            "counter",
            self.slow_consumer_disconnects.load(Relaxed),
        );
        counter(
            "wdp_clients_behind_total",
            "Times a client began to owe more than twice its socket buffer (cut if it lasts alert_max_wait_s).",
            "counter",
            self.clients_behind.load(Relaxed),
        );
        counter(
            "wdp_lag_cuts_total",
            "Clients cut as slow consumers because a ping went unanswered for alert_max_wait_s.",
            "counter",
            self.lag_cuts.load(Relaxed),
        );
        counter(
            "wdp_heartbeat_timeouts_total",
            "Connections closed for silence.",
            "counter",
            self.heartbeat_timeouts.load(Relaxed),
        );
        counter(
            "wdp_callback_dropped_total",
            "Events dropped because Python callbacks fell behind.",
            "counter",
            callback_dropped,
        );
        histogram(
            &mut out,
            "wdp_delivery_latency_seconds",
            "Time from publish to the write of a message to a client.",
            (
                &self.latency_buckets,
                &self.latency_count,
                &self.latency_sum_ns,
            ),
        );
        histogram(
            &mut out,
            "wdp_delivery_lag_seconds",
            "Time from a ping sent with a batch to its pong: the client has read everything sent before it.",
            (&self.lag_buckets, &self.lag_count, &self.lag_sum_ns),
        );
        out
    }
}

type HistogramCells<'a> = (
    &'a [AtomicU64; LATENCY_BUCKETS.len()],
    &'a AtomicU64,
    &'a AtomicU64,
);

fn histogram(out: &mut String, name: &str, help: &str, (buckets, count, sum_ns): HistogramCells) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    let mut cumulative = 0;
    for (b, c) in LATENCY_BUCKETS.iter().zip(buckets) {
        cumulative += c.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
    }
    let count = count.load(Relaxed);
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum {}", sum_ns.load(Relaxed) as f64 / 1e9);
    let _ = writeln!(out, "{name}_count {count}");
}
