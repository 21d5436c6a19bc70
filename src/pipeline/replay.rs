//! Replaying a recording into an environment, at real time, N× speed, or as fast as it goes.
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::environment::Input;
use crate::csi::{read_all, CsiFormat};

/// Progress of one replay, shared with whoever started it.
#[derive(Debug, Default)]
pub struct ReplayProgress {
    /// Frames the recording holds (0 until it has been read).
    pub total: AtomicU64,
    /// Frames handed to the environment so far.
    pub sent: AtomicU64,
    /// Set once the replay has ended, whatever the reason.
    pub done: AtomicBool,
    /// Set by the owner to stop the replay; it ends at the next frame.
    pub cancelled: AtomicBool,
    /// Why the replay ended early (unreadable file, environment gone), if it did.
    pub error: Mutex<Option<String>>,
    /// Problems inside the file (frames after a corruption are not replayed).
    pub file_errors: Mutex<Vec<String>>,
    /// Wakes whoever waits for the end (a thread, or a task), so nobody polls.
    ended: std::sync::Mutex<bool>,
    ended_cv: std::sync::Condvar,
    ended_notify: tokio::sync::Notify,
}

impl ReplayProgress {
    /// Tells the environment the source ended on purpose (so no stall alarm follows),
    /// then marks the run done. `what` names the kind of run in the reason.
    pub(super) async fn finish(&self, tx: &mpsc::Sender<Input>, source: String, what: &str) {
        let how = if self.cancelled.load(Ordering::Relaxed) {
            "stopped"
        } else {
            "finished"
        };
        self.finish_with(tx, source, &format!("{what} {how}")).await;
    }

    /// [`Self::finish`] with the reason given in full.
    pub(super) async fn finish_with(&self, tx: &mpsc::Sender<Input>, source: String, reason: &str) {
        let reason = reason.to_string();
        let _ = tx.send(Input::SourceEnded { source, reason }).await;
        self.mark_done();
    }

    /// Marks the run done and wakes every waiter.
    pub(super) fn mark_done(&self) {
        self.done.store(true, Ordering::Release);
        *self.ended.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.ended_cv.notify_all();
        self.ended_notify.notify_waiters();
    }

    /// Blocks until the run is done or `timeout` passes; whether it is done.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let guard = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        let guard = match timeout {
            None => self
                .ended_cv
                .wait_while(guard, |ended| !*ended)
                .unwrap_or_else(|e| e.into_inner()),
            Some(t) => {
                self.ended_cv
                    .wait_timeout_while(guard, t, |ended| !*ended)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
        *guard
    }

    /// [`Self::wait`] for async callers.
    pub async fn wait_async(&self, timeout: Option<Duration>) -> bool {
        let until_done = async {
            loop {
                // Registered before the check, so a finish in between is not missed.
                let notified = self.ended_notify.notified();
                if self.done.load(Ordering::Acquire) {
                    return;
                }
                notified.await;
            }
        };
        match timeout {
            None => {
                until_done.await;
                true
            }
            Some(t) => tokio::time::timeout(t, until_done).await.is_ok(),
        }
    }

    /// Share of the frames sent, 0 to 1 (1 once done when the file held none).
    pub fn fraction(&self) -> f64 {
        let total = self.total.load(Ordering::Relaxed);
        if total == 0 {
            return if self.done.load(Ordering::Relaxed) {
                1.0
            } else {
                0.0
            };
        }
        self.sent.load(Ordering::Relaxed) as f64 / total as f64
    }
}

/// Replays `path` into `tx`. `speed` 1.0 keeps the recording's own timing, 2.0 twice as
/// fast, 0.0 (or less) as fast as the environment takes frames. Frames whose timestamps
/// go backwards or jump more than `max_gap` are sent without waiting (clocks of real
/// recordings wrap and restart).
pub fn spawn_replay(
    runtime: &tokio::runtime::Handle,
    path: PathBuf,
    format: Option<CsiFormat>,
    speed: f64,
    tx: mpsc::Sender<Input>,
) -> Arc<ReplayProgress> {
    let progress = Arc::new(ReplayProgress::default());
    let p = progress.clone();
    runtime.spawn(async move {
        let source = format!(
            "replay:{}",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let read = tokio::task::spawn_blocking(move || read_all(&path, format)).await;
        let recording = match read {
            Ok(Ok(rec)) => rec,
            Ok(Err(e)) => {
                // Subscribers learn why nothing was replayed (the file, the grouped
                // problems, the fix), not just that the replay ended.
                let why = e.to_string();
                *p.error.lock() = Some(why.clone());
                p.finish_with(&tx, source, &format!("replay failed: {why}"))
                    .await;
                return;
            }
            Err(e) => {
                *p.error.lock() = Some(format!("reader failed: {e}"));
                p.mark_done();
                return;
            }
        };
        *p.file_errors.lock() = recording.errors.iter().map(|e| e.to_string()).collect();
        let problems = (!recording.errors.is_empty()).then(|| {
            crate::csi::summary::partial(&recording.path, recording.frames.len(), &recording.errors)
        });
        p.total
            .store(recording.frames.len() as u64, Ordering::Relaxed);
        let max_gap = Duration::from_secs(2);
        let start = Instant::now();
        let t0 = recording.frames.first().map(|f| f.timestamp).unwrap_or(0.0);
        let mut offset = 0.0; // recording seconds already skipped over (wraps, big gaps)
        let mut prev = t0;
        for frame in recording.frames {
            if p.cancelled.load(Ordering::Relaxed) {
                break;
            }
            if speed > 0.0 {
                let dt = frame.timestamp - prev;
                if !(0.0..=max_gap.as_secs_f64()).contains(&dt) {
                    offset += dt; // do not wait across a clock jump
                }
                prev = frame.timestamp;
                let due = (frame.timestamp - t0 - offset) / speed;
                let wait = Duration::try_from_secs_f64(due.max(0.0))
                    .unwrap_or(Duration::MAX)
                    .saturating_sub(start.elapsed());
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
            if tx
                .send(Input::Frame {
                    source: source.clone(),
                    frame,
                    oracle: None,
                })
                .await
                .is_err()
            {
                *p.error.lock() = Some("the environment was removed".into());
                break;
            }
            p.sent.fetch_add(1, Ordering::Relaxed);
        }
        match problems {
            Some(problems) => {
                let how = if p.cancelled.load(Ordering::Relaxed) {
                    "stopped"
                } else {
                    "finished"
                };
                p.finish_with(
                    &tx,
                    source,
                    &format!("replay {how}; the file had problems: {problems}"),
                )
                .await
            }
            None => p.finish(&tx, source, "replay").await,
        }
    });
    progress
}
