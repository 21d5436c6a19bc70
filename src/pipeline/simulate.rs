//! The simulator as a live source: frames generated on the fly and fed to an environment
//! at the recording's own pace (or N× faster), optionally run after run with new seeds.
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::environment::{Input, Oracle};
use super::replay::ReplayProgress;
use crate::analytics::eval::mid_hips;
use crate::sim::channel::Workspace;
use crate::sim::{Simulator, Spec};
use crate::track::synth::{NoiseModel, Synth};

/// How far a person may be from where the last run left them and still be taken for the
/// same person carrying on (a looping walk ends where it starts).
const CARRIES_ON_M: f64 = 0.5;

/// Whether a repeated run's first frame carries on from the last run's last: the same
/// people present, each near where they were. Then tracking goes on (a looping walk is one
/// walker); otherwise the environment is told a new run began ([`Input::NewRun`]): a
/// fallen person does not lie on beside the next run's walker.
fn carries_on(last: &[Option<[f64; 2]>], first: &[Option<[f64; 2]>]) -> bool {
    last.len() == first.len()
        && last.iter().zip(first).all(|(a, b)| match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => (a[0] - b[0]).hypot(a[1] - b[1]) <= CARRIES_ON_M,
            _ => false,
        })
}

/// Where each run's stamps start.
struct RunClock {
    /// Unix time when the first run started.
    wall0: f64,
    started: Instant,
}

impl RunClock {
    fn new() -> Self {
        RunClock {
            wall0: super::environment::unix_now(),
            started: Instant::now(),
        }
    }

    /// Unix time now, and never before the first run's start plus the monotonic time
    /// since: the packets are sent on the monotonic clock's schedule, and the wall clock
    /// can run slow against it (NTP slewing it back). At speed 1 the next run then starts
    /// after the last one's last packet; on the wall clock alone it was stamped 0.3 ms
    /// before it, and the sensor read that step back as a gap (`docs/sensing.md`).
    fn run_base(&self) -> f64 {
        later_base(
            super::environment::unix_now(),
            self.wall0,
            self.started.elapsed().as_secs_f64(),
        )
    }
}

fn later_base(wall_now: f64, wall0: f64, monotonic_elapsed: f64) -> f64 {
    wall_now.max(wall0 + monotonic_elapsed)
}

/// Feeds `spec`'s frames into `tx`. `speed` as for replays (0: flat out). With `repeat`,
/// when a run ends the next one starts with `seed + 1`, and so on, until stopped. With
/// `oracle`, each frame carries detections made from the ground truth under that noise
/// model (see [`Oracle`]).
pub fn spawn_simulation(
    runtime: &tokio::runtime::Handle,
    spec: Spec,
    speed: f64,
    repeat: bool,
    oracle: Option<NoiseModel>,
    tx: mpsc::Sender<Input>,
) -> Arc<ReplayProgress> {
    let progress = Arc::new(ReplayProgress::default());
    let p = progress.clone();
    runtime.spawn(async move {
        let source = format!(
            "sim:{}",
            if spec.name.is_empty() {
                "custom"
            } else {
                &spec.name
            }
        );
        let mut spec = spec;
        let mut runs = 0u64;
        // Where the people were at the last frame sent (see `carries_on`).
        let mut last_places: Vec<Option<[f64; 2]>> = Vec::new();
        let clock = RunClock::new();
        'runs: loop {
            let built = {
                let spec = spec.clone();
                tokio::task::spawn_blocking(move || Simulator::new(spec)).await
            };
            let sim = match built {
                Ok(Ok(sim)) => Arc::new(sim),
                Ok(Err(e)) => {
                    *p.error.lock() = Some(e.to_string());
                    break;
                }
                Err(e) => {
                    *p.error.lock() = Some(format!("simulator failed: {e}"));
                    break;
                }
            };
            p.total.fetch_add(sim.n_frames() as u64, Ordering::Relaxed);
            // The model's coordinates are scaled by the room: tell the environment ours.
            let room = Input::RoomSize([sim.room.size[0], sim.room.size[1]]);
            // And where its devices are, so the localizer can place people.
            let geometry = sim
                .links()
                .first()
                .map(|l| Box::new(super::geometry::sim_link_geometry(l, sim.room.size)));
            // A run after the first is judged at its first frame (`carries_on`).
            let mut judge_new_run = runs > 0;
            runs += 1;
            if tx.send(room).await.is_err() || tx.send(Input::Geometry(geometry)).await.is_err() {
                *p.error.lock() = Some("the environment was removed".into());
                break;
            }
            let mut ws = Workspace::default();
            // A live source stamps frames in Unix time: the run's simulated seconds on a
            // base taken when it starts (wall-clock time at speed 1; at other speeds the
            // stamps keep simulated durations, which the analytics measure falls by).
            let base = clock.run_base();
            // Oracle detections: the track stage's noise model over the truth, seeded.
            let mut synth = oracle
                .clone()
                .map(|noise| Synth::new(noise, spec.seed ^ 0x5eed));
            let start = Instant::now();
            // Packets sent in a row without waiting (behind the schedule).
            let mut behind = 0usize;
            for n in 0..sim.n_frames() {
                if p.cancelled.load(Ordering::Relaxed) {
                    break 'runs;
                }
                let Some((mut frame, truth)) = sim.frame(n, &mut ws) else {
                    continue; // a packet the impairments dropped: the gap shows in its sequence
                };
                let here = mid_hips(&truth.people);
                if std::mem::take(&mut judge_new_run)
                    && !carries_on(&last_places, &here)
                    && tx.send(Input::NewRun).await.is_err()
                {
                    *p.error.lock() = Some("the environment was removed".into());
                    break 'runs;
                }
                last_places = here;
                frame.timestamp += base;
                let oracle = synth.as_mut().map(|synth| {
                    Box::new(Oracle {
                        detections: synth.detections(&sim.room, &truth),
                        room_size: [sim.room.size[0], sim.room.size[1]],
                    })
                });
                if speed > 0.0 {
                    let due = Duration::try_from_secs_f64((n as f64 / sim.spec.fps) / speed)
                        .unwrap_or(Duration::MAX);
                    let wait = due.saturating_sub(start.elapsed());
                    if !wait.is_zero() {
                        behind = 0;
                        tokio::time::sleep(wait).await;
                    } else {
                        behind += 1;
                        if behind.is_multiple_of(super::environment::BACKLOG_YIELD_EVERY) {
                            // Behind its schedule: catch up between the other tasks
                            // rather than in one long poll (see environment.rs).
                            tokio::task::yield_now().await;
                        }
                    }
                }
                if tx
                    .send(Input::Frame {
                        source: source.clone(),
                        frame,
                        oracle,
                    })
                    .await
                    .is_err()
                {
                    *p.error.lock() = Some("the environment was removed".into());
                    break 'runs;
                }
                p.sent.fetch_add(1, Ordering::Relaxed);
            }
            if !repeat {
                break;
            }
            spec.seed = spec.seed.wrapping_add(1);
        }
        p.finish(&tx, source, "simulation").await;
    });
    progress
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wall_clock_running_slow_does_not_stamp_a_run_before_the_last() {
        // 30 s of packets sent on the monotonic clock while the wall clock advanced 29.985.
        assert_eq!(later_base(1000.0 + 29.985, 1000.0, 30.0), 1030.0);
        // A wall clock ahead (stepped forward) is followed.
        assert_eq!(later_base(1040.0, 1000.0, 30.0), 1040.0);
    }

    #[test]
    fn a_run_carries_on_when_its_people_start_where_the_last_left_them() {
        let last = vec![Some([1.5, 1.0]), None];
        assert!(carries_on(&last, &[Some([1.6, 1.1]), None]));
        // A fallen person at (3, 2.5) and the next run's walker at (1, 1): a new run.
        assert!(!carries_on(&[Some([3.0, 2.5])], &[Some([1.0, 1.0])]));
        assert!(!carries_on(&last, &[Some([1.5, 1.0]), Some([4.0, 4.0])]));
        assert!(!carries_on(&last, &[Some([1.5, 1.0])]));
        assert!(carries_on(&[], &[]));
    }
}
