//! The server's monitor: measured `performance_update`s (Linux `/proc`; elsewhere CPU and
//! memory are left out rather than guessed), and `system_event`s when a component's
//! health changes ([`super::health`]). GPU figures are left out: nothing here reads a
//! GPU's counters.
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::health::{EnvironmentTick, Health, ModelTick};
use crate::events::{Event, EventType, Publisher};

/// CPU time and memory of this process at one instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcessSample {
    /// When the sample was taken.
    pub at: Instant,
    /// User + system CPU seconds.
    pub cpu_s: Option<f64>,
    /// Resident memory of the process, bytes.
    pub rss_bytes: Option<u64>,
    /// The machine's total memory, bytes.
    pub mem_total_bytes: Option<u64>,
}

impl ProcessSample {
    /// Samples the process now (Linux `/proc`; None elsewhere).
    pub fn now() -> Self {
        // /proc/self/stat fields 14 and 15 are utime and stime in clock ticks; Linux
        // reports them in USER_HZ, which is 100 on every architecture it supports.
        let cpu_s = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                let rest = &s[s.rfind(')')? + 2..];
                let f: Vec<&str> = rest.split_whitespace().collect();
                let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
                Some(ticks / 100.0)
            });
        let page = 4096u64;
        let rss_bytes = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map(|pages| pages * page);
        let mem_total_bytes = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
            Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
        });
        ProcessSample {
            at: Instant::now(),
            cpu_s,
            rss_bytes,
            mem_total_bytes,
        }
    }
}

/// What the monitor reads from the server on each tick.
pub trait MonitorSource: Send + Sync + 'static {
    /// (frames processed in total, frames waiting in environment queues)
    fn frames(&self) -> (u64, usize);
    /// (delivery latency sum in seconds, messages) so far
    fn latency(&self) -> (f64, u64);
    /// Delivery latency histogram so far: (upper bound s, count) per bucket, and the total.
    fn latency_histogram(&self) -> (Vec<(f64, u64)>, u64);
    /// WebSocket clients connected now.
    fn connections(&self) -> u64;
    /// Every environment's input queue.
    fn environments(&self) -> Vec<EnvironmentTick>;
    /// The inference worker's totals so far, when there is a model.
    fn inference(&self) -> Option<InferenceTotals>;
}

/// The inference worker's counters at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct InferenceTotals {
    /// Model calls made (a call may answer a batch of windows).
    pub calls: u64,
    /// Windows answered.
    pub windows: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Time spent inside the model, seconds.
    pub busy_s: f64,
}

/// The `q` quantile (0 to 1) of the messages counted between two histogram snapshots,
/// as the upper bound of its bucket, in milliseconds; the last bound when it lies
/// beyond the histogram. None without messages.
fn quantile_ms(before: &[(f64, u64)], after: &[(f64, u64)], n: u64, q: f64) -> Option<f64> {
    if n == 0 {
        return None;
    }
    let want = (q * n as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for ((bound, a), (_, b)) in after.iter().zip(before) {
        seen += a - b;
        if seen >= want {
            return Some(bound * 1e3);
        }
    }
    after.last().map(|(bound, _)| bound * 1e3)
}

/// Publishes a `performance_update` every `interval` with figures measured over it.
pub fn spawn_monitor(
    runtime: &tokio::runtime::Handle,
    interval: Duration,
    source: impl MonitorSource,
    publisher: Publisher,
) {
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        let mut last = ProcessSample::now();
        let (mut last_frames, _) = source.frames();
        let (mut last_lat_sum, mut last_lat_n) = source.latency();
        let (mut last_hist, _) = source.latency_histogram();
        let mut last_inference = source.inference().unwrap_or_default();
        let mut health = Health::default();
        loop {
            tick.tick().await;
            let now = ProcessSample::now();
            let wall = now.at.duration_since(last.at).as_secs_f64().max(1e-9);
            let (frames, queued) = source.frames();
            let (lat_sum, lat_n) = source.latency();
            let mut metrics = Map::new();
            metrics.insert("frames_per_second".into(), json!(round2((frames - last_frames) as f64 / wall)));
            let avg_latency_ms = if lat_n > last_lat_n {
                Some(1000.0 * (lat_sum - last_lat_sum) / (lat_n - last_lat_n) as f64)
            } else {
                None
            };
            if let Some(ms) = avg_latency_ms {
                metrics.insert("average_latency_ms".into(), json!(round2(ms)));
            }
            metrics.insert("processing_queue_size".into(), json!(queued));
            let cpu = match (now.cpu_s, last.cpu_s) {
                (Some(a), Some(b)) => Some(100.0 * (a - b) / wall),
                _ => None,
            };
            if let Some(c) = cpu {
                metrics.insert("cpu_usage".into(), json!(round2(c)));
            }
            if let (Some(rss), Some(total)) = (now.rss_bytes, now.mem_total_bytes) {
                metrics.insert("memory_usage".into(), json!(round2(100.0 * rss as f64 / total as f64)));
                metrics.insert("memory_rss_mb".into(), json!(round2(rss as f64 / 1048576.0)));
            }
            metrics.insert("connections".into(), json!(source.connections()));
            let (hist, _) = source.latency_histogram();
            for (name, q) in [("latency_p50_ms", 0.5), ("latency_p99_ms", 0.99)] {
                if let Some(ms) = quantile_ms(&last_hist, &hist, lat_n - last_lat_n, q) {
                    metrics.insert(name.into(), json!(round2(ms)));
                }
            }
            last_hist = hist;
            let envs = source.environments();
            let queues: Map<String, Value> =
                envs.iter().map(|e| (e.id.clone(), json!(e.queue_len))).collect();
            metrics.insert("environment_queues".into(), Value::Object(queues));
            let inference = source.inference();
            let model_tick = inference.map(|now| {
                let calls = now.calls.saturating_sub(last_inference.calls);
                let windows = now.windows.saturating_sub(last_inference.windows);
                let busy = ((now.busy_s - last_inference.busy_s) / wall).clamp(0.0, 1.0);
                metrics.insert("inference_windows_per_second".into(), json!(round2(windows as f64 / wall)));
                let mean_batch = if calls > 0 { windows as f64 / calls as f64 } else { 0.0 };
                metrics.insert("inference_mean_batch".into(), json!(round2(mean_batch)));
                metrics.insert("inference_busy_percent".into(), json!(round2(100.0 * busy)));
                let failures = now.failures.saturating_sub(last_inference.failures);
                last_inference = now;
                ModelTick { busy, failures }
            });
            let mut alerts = Vec::new();
            if let Some(ms) = avg_latency_ms.filter(|ms| *ms > 50.0) {
                alerts.push(json!({"type": "high_latency", "severity": "warning", "value": round2(ms), "threshold": 50.0}));
            }
            if let Some(c) = cpu.filter(|c| *c > 90.0) {
                alerts.push(json!({"type": "high_cpu", "severity": "warning", "value": round2(c), "threshold": 90.0}));
            }
            let severity = if alerts.is_empty() { "info" } else { "warning" };
            publisher.publish(Event::new(
                EventType::PerformanceUpdate,
                json!({"metrics": Value::Object(metrics), "alerts": alerts, "severity": severity,
                       "window_s": round2(wall)}),
                None,
            ));
            for change in health.update(&envs, model_tick.as_ref()) {
                let env = change["component"]
                    .as_str()
                    .and_then(|c| c.strip_prefix("environment:"))
                    .map(String::from);
                publisher.publish(Event::new(EventType::SystemEvent, change, env));
            }
            last = now;
            last_frames = frames;
            (last_lat_sum, last_lat_n) = (lat_sum, lat_n);
        }
    });
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::quantile_ms;

    #[test]
    fn quantiles_come_from_the_window_only() {
        let before = [(0.001, 100), (0.01, 0), (0.1, 0)];
        let after = [(0.001, 100), (0.01, 98), (0.1, 2)];
        assert_eq!(quantile_ms(&before, &after, 100, 0.5), Some(10.0));
        assert_eq!(quantile_ms(&before, &after, 100, 0.99), Some(100.0));
        assert_eq!(quantile_ms(&before, &after, 0, 0.5), None);
        // Messages slower than the last bound: the last bound.
        assert_eq!(quantile_ms(&before, &after, 200, 0.99), Some(100.0));
    }
}
