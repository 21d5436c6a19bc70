//! What the monitor reads each tick: the environments and the model from the app, delivery
//! latency and connections from the server (`pipeline::spawn_monitor`).
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::Stages;
use crate::pipeline::{EnvironmentTick, InferenceTotals, MonitorSource};
use crate::server::Probe;

pub(super) struct View {
    pub stages: Arc<Stages>,
    pub probe: Probe,
}

impl MonitorSource for View {
    fn frames(&self) -> (u64, usize) {
        let envs = self.stages.pipelines.lock();
        let frames = envs.values().map(|e| e.stats.lock().frames).sum();
        let queued = envs.values().map(|e| e.queue_len()).sum();
        (frames, queued)
    }
    fn latency(&self) -> (f64, u64) {
        self.probe.latency()
    }
    fn latency_histogram(&self) -> (Vec<(f64, u64)>, u64) {
        self.probe.latency_histogram()
    }
    fn environments(&self) -> Vec<EnvironmentTick> {
        self.stages
            .pipelines
            .lock()
            .values()
            .map(|e| EnvironmentTick {
                id: e.id.clone(),
                queue_len: e.queue_len(),
                queue_capacity: e.queue_capacity,
            })
            .collect()
    }
    fn inference(&self) -> Option<InferenceTotals> {
        let model = self.stages.model.read();
        let c = &model.as_ref()?.counters;
        Some(InferenceTotals {
            calls: c.calls.load(Relaxed),
            windows: c.windows.load(Relaxed),
            failures: c.failures.load(Relaxed),
            busy_s: c.busy_us.load(Relaxed) as f64 / 1e6,
        })
    }
    fn connections(&self) -> u64 {
        self.probe.connections()
    }
}
