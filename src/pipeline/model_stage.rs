//! An environment's model stage: frames in, a window to the shared inference worker when
//! one is due, detections back.
//!
//! Windows are due `rate_hz` times a second of the source's clock (30 by default, the
//! highest pose_data rate a subscription can ask for): on a 100 Hz source about every
//! third packet, on a 30 Hz source every packet. An environment keeps at most one window
//! in flight: when the next falls due before the last is answered, the environment waits
//! for the answer (counted as `waits`). So no window is skipped — a recording replayed
//! flat out is inferred window for window — and a model slower than a live source shows
//! as back-pressure on the environment's bounded input queue (a UDP source then drops
//! and counts packets), never as an unbounded backlog.
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::inference::{InferenceService, Inferred};
use super::windows::{WindowBuilder, WindowError};
use crate::csi::CsiFrame;
use crate::sensing::WindowFeatures;

/// Where environments find the server's model (none until one is set).
pub type ModelSlot = Arc<RwLock<Option<Arc<InferenceService>>>>;

/// What the model stage has done, for `environment_stats`.
#[derive(Debug, Clone, Default)]
pub struct ModelStats {
    /// Windows handed to the inference worker.
    pub windows_submitted: u64,
    /// Times a window fell due with the last still in flight, so frames waited for it.
    pub waits: u64,
    /// Windows the model answered without error.
    pub windows_answered: u64,
    /// Windows the model failed on, or could not be submitted (the worker stopped).
    pub failures: u64,
    /// Frames that could not become features (wrong antenna count, non-finite CSI, a
    /// stray frame of another shape).
    pub frames_unusable: u64,
    /// Of those, frames of a layout the model cannot take at all (the sensor reports
    /// alone for them).
    pub frames_unsupported: u64,
    /// The last problem met (unusable frame or model failure), in words.
    pub last_error: Option<String>,
    /// Submission to answer of the last window, seconds.
    pub last_latency_s: f64,
    /// How many windows shared the model call of the last answer.
    pub last_batch: usize,
}

impl ModelStats {
    /// The counters as JSON (the `model` part of `environment_stats`), latency in
    /// milliseconds.
    pub(crate) fn to_json(&self, model_version: Option<&str>) -> Value {
        json!({
            "model_version": model_version,
            "windows_submitted": self.windows_submitted,
            "waits": self.waits,
            "windows_answered": self.windows_answered,
            "failures": self.failures,
            "frames_unusable": self.frames_unusable,
            "frames_unsupported": self.frames_unsupported,
            "last_error": self.last_error,
            "last_latency_ms": self.last_latency_s * 1e3,
            "last_batch": self.last_batch,
        })
    }
}

/// A problem worth one `system_event` (repeats of the same message are not re-sent).
pub struct StageProblem {
    pub message: String,
    pub severity: &'static str,
}

pub struct ModelStage {
    windows: WindowBuilder,
    /// A classifier's window features (built when the model is one), and the last
    /// description, which is what [`ModelStage::submit`] sends.
    describer: Option<WindowFeatures>,
    described: Vec<f32>,
    next_due: Option<f64>,
    in_flight: Option<Arc<InferenceService>>,
    reported: Option<String>,
    reply: mpsc::UnboundedSender<Inferred>,
    scratch: Vec<f32>,
}

impl ModelStage {
    pub fn new(reply: mpsc::UnboundedSender<Inferred>) -> Self {
        ModelStage {
            windows: WindowBuilder::new(),
            describer: None,
            described: Vec::new(),
            next_due: None,
            in_flight: None,
            reported: None,
            reply,
            scratch: Vec::new(),
        }
    }

    /// Takes a frame; returns whether a window is due now (see [`ModelStage::submit`]).
    pub fn on_frame(
        &mut self,
        frame: &CsiFrame,
        service: &InferenceService,
        stats: &mut ModelStats,
    ) -> Result<bool, StageProblem> {
        if let Some(spec) = service.classifier() {
            return Ok(self.on_classifier_frame(frame, spec.window_s, spec.hop_s, stats));
        }
        let rate_hz = service.rate_hz();
        let t = frame.timestamp;
        if self.next_due.is_some_and(|due| t + 1e-3 < due - 1.0) {
            // The source clock went back (a new simulation run, a restarted replay).
            self.next_due = None;
        }
        match self.windows.push(frame) {
            Ok(false) => return Ok(false),
            Ok(true) => {}
            Err(e) => {
                stats.frames_unusable += 1;
                if matches!(e, WindowError::Unsupported(_)) {
                    stats.frames_unsupported += 1;
                }
                stats.last_error = Some(e.to_string());
                let severity = match e {
                    WindowError::Unsupported(_) => "warning",
                    WindowError::Frame(_) => "info",
                };
                return match self.report(e.to_string(), severity) {
                    Some(p) => Err(p),
                    None => Ok(false),
                };
            }
        }
        // A millisecond of slack: packets stamped exactly on the period are due.
        if self.next_due.is_some_and(|due| t + 1e-3 < due) {
            return Ok(false);
        }
        let period = 1.0 / rate_hz;
        self.next_due = Some(match self.next_due {
            // Keep the cadence, but never owe a burst after a pause.
            Some(due) => (due + period).max(t),
            None => t + period,
        });
        Ok(true)
    }

    /// A classifier's frame: due when the describer has a new window (its own hop, on the
    /// source clock). A frame it leaves out (another shape) is counted, never an error:
    /// any layout can be described.
    fn on_classifier_frame(
        &mut self,
        frame: &CsiFrame,
        window_s: f64,
        hop_s: f64,
        stats: &mut ModelStats,
    ) -> bool {
        let fits = self
            .describer
            .as_ref()
            .is_some_and(|d| d.window_s() == window_s && d.hop_s() == hop_s);
        if !fits {
            // A model with another window was set: start over with its settings (the
            // model checked them at load, so this cannot fail).
            self.describer = WindowFeatures::new(window_s, hop_s).ok();
        }
        let Some(describer) = self.describer.as_mut() else {
            return false;
        };
        let skipped = describer.skipped;
        let out = describer.push(frame.timestamp, &frame.csi);
        stats.frames_unusable += describer.skipped - skipped;
        match out {
            Some(v) => {
                self.described.clear();
                self.described.extend_from_slice(&v);
                true
            }
            None => false,
        }
    }

    /// Starts the windows over (the model now follows another source); a window in
    /// flight is still answered.
    pub fn restart(&mut self) {
        self.windows = WindowBuilder::new();
        self.describer = None;
        self.next_due = None;
    }

    /// Whether a window is with the model.
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Sends the current window (its last packet at `t`) to `service`. Call when
    /// [`ModelStage::on_frame`] says one is due and none is in flight.
    pub fn submit(
        &mut self,
        service: &Arc<InferenceService>,
        t: f64,
        stats: &mut ModelStats,
    ) -> Option<StageProblem> {
        self.scratch.clear();
        if service.classifier().is_some() {
            self.scratch.extend_from_slice(&self.described);
        } else {
            self.windows.write_window(&mut self.scratch);
        }
        let window = std::mem::take(&mut self.scratch);
        if service.submit(window, t, self.reply.clone()) {
            stats.windows_submitted += 1;
            self.in_flight = Some(service.clone());
            None
        } else {
            stats.failures += 1;
            self.report("the inference worker has stopped".into(), "error")
        }
    }

    /// An answer came back: returns the model it belongs to.
    pub fn on_answer(
        &mut self,
        answer: &Inferred,
        stats: &mut ModelStats,
    ) -> Option<Arc<InferenceService>> {
        let service = self.in_flight.take()?;
        stats.last_latency_s = answer.latency_s;
        stats.last_batch = answer.batch;
        match &answer.detections {
            Ok(_) => stats.windows_answered += 1,
            Err(e) => {
                stats.failures += 1;
                stats.last_error = Some(e.clone());
            }
        }
        Some(service)
    }

    /// An inference failure, reported like a frame problem (once per distinct message).
    pub fn failed(&mut self, message: &str) -> Option<StageProblem> {
        self.report(format!("inference failed: {message}"), "error")
    }

    fn report(&mut self, message: String, severity: &'static str) -> Option<StageProblem> {
        if self.reported.as_deref() == Some(message.as_str()) {
            return None;
        }
        self.reported = Some(message.clone());
        Some(StageProblem { message, severity })
    }
}
