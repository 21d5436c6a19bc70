//! The inference stage shared by every environment: one worker thread that owns the
//! model and runs whatever windows are waiting as one batch.
//!
//! Environments submit a window when one is due and carry on with their frames; the
//! worker takes the first waiting window, then every other window already queued (up to
//! [`MAX_BATCH`]), runs them in one ONNX Runtime call, and sends each environment its
//! detections back. So environments due at the same moment are inferred together, and a
//! model slower than the demand shows as windows skipped by the environments (each keeps
//! at most one window in flight), never as an unbounded queue.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Instant;

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::model::contract::{ACTIVITY_NAMES, BOX, DENSE_PARTS, GRID, KEYPOINTS, PATCH};
use crate::model::{Model, Prediction};
use crate::track::detection::DensePatch;
use crate::track::Detection;

/// Windows run in one call at most.
pub const MAX_BATCH: usize = 64;

/// A window waiting for the model.
struct Job {
    window: Vec<f32>,
    /// The source clock time of the window's last packet.
    t: f64,
    submitted: Instant,
    reply: mpsc::UnboundedSender<Inferred>,
}

/// The model's answer for one window.
pub struct Inferred {
    pub t: f64,
    /// A pose model's detections (none from a classifier).
    pub detections: Result<Vec<Detection>, String>,
    /// A classifier's probability per class (`None` from a pose model).
    pub classes: Option<Vec<f32>>,
    /// How many windows shared the call.
    pub batch: usize,
    /// Submission to answer, seconds.
    pub latency_s: f64,
}

/// Counters the worker keeps, for `environment_stats` and benchmarks.
#[derive(Default)]
pub struct InferenceCounters {
    pub calls: AtomicU64,
    pub windows: AtomicU64,
    pub failures: AtomicU64,
    /// Total time inside the model, microseconds.
    pub busy_us: AtomicU64,
    pub largest_batch: AtomicU64,
}

/// The model and the worker that runs it. Dropping the last handle stops the worker once
/// the queued windows are done.
pub struct InferenceService {
    jobs: Mutex<std_mpsc::Sender<Job>>,
    version: String,
    source: String,
    rate_hz: f64,
    classifier: Option<crate::model::ClassifierSpec>,
    pub(crate) counters: Arc<InferenceCounters>,
}

impl InferenceService {
    /// Starts the worker thread for `model`; environments ask for one window every
    /// `1 / rate_hz` seconds of their source's clock.
    pub fn start(model: Arc<Model>, rate_hz: f64) -> std::io::Result<Arc<InferenceService>> {
        let (tx, rx) = std_mpsc::channel::<Job>();
        let counters = Arc::new(InferenceCounters::default());
        let service = Arc::new(InferenceService {
            jobs: Mutex::new(tx),
            version: model.version().to_string(),
            source: model.source().to_string(),
            classifier: model.classifier().cloned(),
            rate_hz: if rate_hz.is_finite() && rate_hz > 0.0 {
                rate_hz
            } else {
                30.0
            },
            counters: counters.clone(),
        });
        std::thread::Builder::new()
            .name("wdp-inference".into())
            .spawn(move || worker(model, rx, counters))?;
        Ok(service)
    }

    /// The model's version string: the `model_version` of the pose_data it leads to.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Windows per second of source clock each environment asks for.
    pub(crate) fn rate_hz(&self) -> f64 {
        self.rate_hz
    }

    /// The classifier's classes and window, when the model is a classifier.
    pub fn classifier(&self) -> Option<&crate::model::ClassifierSpec> {
        self.classifier.as_ref()
    }

    /// Queues a window `(2, W, F)`; the answer comes on `reply`. False when the worker
    /// has stopped.
    pub fn submit(&self, window: Vec<f32>, t: f64, reply: mpsc::UnboundedSender<Inferred>) -> bool {
        let job = Job {
            window,
            t,
            submitted: Instant::now(),
            reply,
        };
        self.jobs.lock().send(job).is_ok()
    }

    pub(crate) fn to_json(&self) -> Value {
        let c = &self.counters;
        let calls = c.calls.load(Ordering::Relaxed);
        let windows = c.windows.load(Ordering::Relaxed);
        // A classifier answers every hop_s, whatever the pose rate says.
        let rate_hz = self
            .classifier
            .as_ref()
            .map_or(self.rate_hz, |c| 1.0 / c.hop_s);
        let mut info = json!({
            "model_version": self.version,
            "model_source": self.source,
            "kind": if self.classifier.is_some() { "classifier" } else { "pose" },
            "rate_hz": rate_hz,
            "calls": calls,
            "windows": windows,
            "failures": c.failures.load(Ordering::Relaxed),
            "mean_batch": if calls > 0 { windows as f64 / calls as f64 } else { 0.0 },
            "largest_batch": c.largest_batch.load(Ordering::Relaxed),
            "busy_s": c.busy_us.load(Ordering::Relaxed) as f64 / 1e6,
        });
        if let Some(c) = &self.classifier {
            info["classes"] = json!(c.classes);
            info["window_s"] = json!(c.window_s);
            info["hop_s"] = json!(c.hop_s);
        }
        info
    }
}

/// Marks this thread as batch work for the kernel's scheduler (`SCHED_BATCH`): a
/// submitted window then wakes the worker without preempting the thread that runs the
/// environments, so on a loaded core the windows due while that thread is busy pile up
/// and run as one batch (a batch of 8 costs about half as much per window as 8 calls of
/// one: `docs/performance.md`, "Eighth pass"). On a core with room to spare it changes
/// nothing: the worker runs as soon as it is woken. Best effort: where the call is not
/// allowed, the worker runs at the normal policy.
fn yield_to_environments() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sets this thread's own policy; `param` outlives the call.
        unsafe {
            libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
        }
    }
}

fn worker(model: Arc<Model>, rx: std_mpsc::Receiver<Job>, counters: Arc<InferenceCounters>) {
    yield_to_environments();
    let mut input = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        input.clear();
        for job in &jobs {
            input.extend_from_slice(&job.window);
        }
        let started = Instant::now();
        let batch = jobs.len();
        if let Some(spec) = model.classifier() {
            let result = model.classify(&input, batch);
            count(&counters, started, batch, result.is_err());
            let n = spec.classes.len();
            for (b, job) in jobs.into_iter().enumerate() {
                let (detections, classes) = match &result {
                    Ok(p) => (Ok(Vec::new()), Some(p[b * n..(b + 1) * n].to_vec())),
                    Err(e) => (Err(e.to_string()), None),
                };
                let _ = job.reply.send(Inferred {
                    t: job.t,
                    detections,
                    classes,
                    batch,
                    latency_s: job.submitted.elapsed().as_secs_f64(),
                });
            }
            continue;
        }
        let result = model.predict(&input, jobs.len());
        counters
            .busy_us
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        counters.calls.fetch_add(1, Ordering::Relaxed);
        counters
            .windows
            .fetch_add(jobs.len() as u64, Ordering::Relaxed);
        counters
            .largest_batch
            .fetch_max(jobs.len() as u64, Ordering::Relaxed);
        let batch = jobs.len();
        match result {
            Ok(prediction) => {
                for (b, job) in jobs.into_iter().enumerate() {
                    let _ = job.reply.send(Inferred {
                        t: job.t,
                        detections: Ok(detections(&prediction, b)),
                        classes: None,
                        batch,
                        latency_s: job.submitted.elapsed().as_secs_f64(),
                    });
                }
            }
            Err(e) => {
                counters.failures.fetch_add(1, Ordering::Relaxed);
                let message = e.to_string();
                for job in jobs {
                    let _ = job.reply.send(Inferred {
                        t: job.t,
                        detections: Err(message.clone()),
                        classes: None,
                        batch,
                        latency_s: job.submitted.elapsed().as_secs_f64(),
                    });
                }
            }
        }
    }
}

/// Counts one model call of `batch` windows that started at `started`.
fn count(counters: &InferenceCounters, started: Instant, batch: usize, failed: bool) {
    counters
        .busy_us
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    counters.calls.fetch_add(1, Ordering::Relaxed);
    counters.windows.fetch_add(batch as u64, Ordering::Relaxed);
    counters
        .largest_batch
        .fetch_max(batch as u64, Ordering::Relaxed);
    if failed {
        counters.failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// Window `b`'s person slots as detections (every slot; the analysis stage keeps those
/// scored at or above the confidence threshold). Values are clamped into the ranges the
/// tracker's contract wants, and a box given with its corners swapped is put right.
pub fn detections(p: &Prediction, b: usize) -> Vec<Detection> {
    let unit = |x: f32| {
        if x.is_finite() {
            (x as f64).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    (0..p.k)
        .map(|s| {
            let slot = b * p.k + s;
            let mut keypoints = [[0.0; 3]; KEYPOINTS];
            for (j, kp) in keypoints.iter_mut().enumerate() {
                let o = (slot * KEYPOINTS + j) * 3;
                // Coordinates too: the floor frame's unit square is the room, and a body
                // is in it (on real recordings the model put keypoints past the walls).
                *kp = [
                    unit(p.keypoints[o]),
                    unit(p.keypoints[o + 1]),
                    unit(p.keypoints[o + 2]),
                ];
            }
            let o = slot * BOX;
            let (u0, u1) = minmax(unit(p.boxes[o]), unit(p.boxes[o + 2]));
            let (v0, v1) = minmax(unit(p.boxes[o + 1]), unit(p.boxes[o + 3]));
            let mut activity = [0.0; ACTIVITY_NAMES.len()];
            for (c, a) in activity.iter_mut().enumerate() {
                *a = unit(p.activity[slot * ACTIVITY_NAMES.len() + c]);
            }
            let dense = dense_patch(p, slot, &keypoints).map(std::sync::Arc::new);
            Detection {
                keypoints,
                bbox: [u0, v0, u1, v1],
                score: unit(p.presence[slot]),
                activity,
                dense,
            }
        })
        .collect()
}

/// A slot's dense-pose patch as room cells: the patch (`PATCH x PATCH` cells of the
/// `GRID x GRID` room raster) is centred on the slot's mid-hip cell, as in training
/// (`wifi_densepose.simdata.patch_origin`); each cell takes its most probable part, and
/// background cells and cells outside the room are left out.
fn dense_patch(
    p: &Prediction,
    slot: usize,
    keypoints: &[[f64; 3]; KEYPOINTS],
) -> Option<DensePatch> {
    let (parts, uv) = (p.dense_part.as_ref()?, p.dense_uv.as_ref()?);
    let cells_per = PATCH * PATCH;
    let cell = |x: f64| (x.clamp(0.0, 0.9999) * GRID as f64).floor() as i32;
    let hip_u = 0.5 * (keypoints[11][0] + keypoints[12][0]);
    let hip_v = 0.5 * (keypoints[11][1] + keypoints[12][1]);
    let (row0, col0) = (
        cell(hip_v) - PATCH as i32 / 2,
        cell(hip_u) - PATCH as i32 / 2,
    );
    let probs = &parts[slot * DENSE_PARTS * cells_per..(slot + 1) * DENSE_PARTS * cells_per];
    let uvs = &uv[slot * 2 * cells_per..(slot + 1) * 2 * cells_per];
    let mut cells = Vec::new();
    for i in 0..cells_per {
        let (r, c) = (row0 + (i / PATCH) as i32, col0 + (i % PATCH) as i32);
        if r < 0 || c < 0 || r >= GRID as i32 || c >= GRID as i32 {
            continue;
        }
        let best = (0..DENSE_PARTS)
            .max_by(|&a, &b| probs[a * cells_per + i].total_cmp(&probs[b * cells_per + i]))
            .unwrap_or(0);
        if best > 0 {
            cells.push((r, c, best as u8, uvs[i], uvs[cells_per + i]));
        }
    }
    Some(DensePatch { grid: GRID, cells })
}

fn minmax(a: f64, b: f64) -> (f64, f64) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_patches_land_on_room_cells_around_the_hips() {
        let cells = PATCH * PATCH;
        let mut part = vec![0.0f32; DENSE_PARTS * cells];
        part[..cells].fill(1.0); // background everywhere...
        let i = 2 * PATCH + 3;
        part[7 * cells + i] = 2.0; // ...but part 7 wins at patch cell (2, 3)
        let edge = 0; // and part 3 at patch cell (0, 0)
        part[3 * cells + edge] = 2.0;
        let mut uv = vec![0.0f32; 2 * cells];
        uv[i] = 0.25;
        uv[cells + i] = 0.75;
        let p = Prediction {
            batch: 1,
            k: 1,
            presence: vec![0.9],
            keypoints: vec![0.5; KEYPOINTS * 3],
            boxes: vec![0.4, 0.4, 0.6, 0.6],
            activity: vec![0.2; 5],
            dense_part: Some(part),
            dense_uv: Some(uv),
        };
        let d = detections(&p, 0);
        let dense = d[0].dense.as_ref().expect("a dense patch");
        assert_eq!(dense.grid, GRID);
        // Hips at (0.5, 0.5): cell 16, so the patch starts at row 12, column 12.
        assert!(
            dense.cells.contains(&(14, 15, 7, 0.25, 0.75)),
            "{:?}",
            dense.cells
        );
        assert!(dense.cells.contains(&(12, 12, 3, 0.0, 0.0)));
        assert_eq!(dense.cells.len(), 2, "background cells are left out");
        // Hips at the room's corner: cells off the raster are dropped.
        let mut corner = p.clone();
        corner.keypoints = vec![0.0; KEYPOINTS * 3];
        let d = detections(&corner, 0);
        assert!(d[0].dense.as_ref().unwrap().cells.is_empty());
    }

    #[test]
    fn slots_become_valid_detections() {
        let k = 2;
        let mut p = Prediction {
            batch: 2,
            k,
            presence: vec![0.9, 0.1, f32::NAN, 1.5],
            keypoints: vec![0.5; 2 * k * KEYPOINTS * 3],
            boxes: vec![
                0.6, 0.2, 0.4, 0.8, 0.1, 0.1, 0.2, 0.2, 0.0, 0.0, 1.0, 1.0, 0.3, 0.3, 0.3, 0.3,
            ],
            activity: vec![0.2; 2 * k * 5],
            dense_part: None,
            dense_uv: None,
        };
        p.keypoints[2] = 7.0; // an out-of-range confidence
        p.keypoints[3] = 1.04; // a keypoint past the room's far wall
        p.keypoints[4] = -0.05; // and one before its near wall
        let first = detections(&p, 0);
        assert_eq!(first[0].keypoints[1][..2], [1.0, 0.0]);
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(Detection::is_valid));
        assert_eq!(first[0].score, 0.9f32 as f64);
        assert_eq!(
            first[0].bbox,
            [0.4f32 as f64, 0.2f32 as f64, 0.6f32 as f64, 0.8f32 as f64]
        );
        assert_eq!(first[0].keypoints[0][2], 1.0);
        let second = detections(&p, 1);
        assert_eq!(second[0].score, 0.0, "NaN presence is no person");
        assert_eq!(second[1].score, 1.0);
        assert!(second.iter().all(Detection::is_valid));
    }
}
