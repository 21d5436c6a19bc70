//! The server's monitor: measured `performance_update`s (Linux `/proc`; elsewhere CPU and
//! memory are left out rather than guessed).
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::server::{Event, EventType, Publisher};

/// CPU time and memory of this process at one instant.
#[derive(Debug, Clone, Copy)]
pub struct ProcessSample {
    pub at: Instant,
    /// User + system CPU seconds.
    pub cpu_s: Option<f64>,
    pub rss_bytes: Option<u64>,
    pub mem_total_bytes: Option<u64>,
}

impl ProcessSample {
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
    fn connections(&self) -> u64;
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
            last = now;
            last_frames = frames;
            (last_lat_sum, last_lat_n) = (lat_sum, lat_n);
        }
    });
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
