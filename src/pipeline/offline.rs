//! A recording through the live pipeline, as fast as the CPU allows: what
//! `wifi_densepose.analyze` runs.
//!
//! In: frames (from a file, an array, the simulator), the room, the model. Out: every
//! event the server would have published for that environment, in order, each with the
//! time it was published. There is no second implementation here: the frames go through
//! the same environment task ([`EnvironmentHandle::spawn`]), model stage, shared
//! inference worker and analysis stage as a live source's; only the publisher differs (an
//! [`events::Collector`](crate::events::Collector) instead of the server's bus).
//!
//! Guarantees: no frame is dropped (each send waits for room in the environment's
//! bounded queue); every window falls due on the source clock exactly as live (30 a
//! second), and none is skipped; the run ends only when the environment has answered
//! every window in flight ([`Input::Flush`]), so the result is complete without a sleep.
//! What is driven by the wall clock in a live environment gives no event here: a source
//! is never reported stalled (the stall timeout is out of reach), and there is no monitor
//! (`performance_update`, health `system_event`s), which describes a server, not a
//! recording.
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::oneshot;

use super::environment::{EnvironmentContext, EnvironmentHandle, Input, Oracle};
use super::inference::InferenceService;
use crate::csi::CsiFrame;
use crate::events::{Collector, Event};

/// The environment id events name when the caller gives none.
pub const OFFLINE_ENVIRONMENT: &str = "analyze";

/// Far beyond any pause between two frames of a run (a Python progress callback, a slow
/// reader): offline, silence is the caller's doing, never a stopped source.
const NO_STALL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The environment's input queue: the server's default (the queue only smooths the
/// feeder against the environment; sends wait when it is full).
const QUEUE: usize = 1024;

/// How one offline run is set up.
#[derive(Clone)]
pub struct OfflineOptions {
    /// The `environment_id` the events name.
    pub environment_id: String,
    /// The device profile of the CSI, as `Server::add_environment` takes it.
    pub device: Option<String>,
    /// The room's floor (width, depth) in metres; `None` keeps the environment's default
    /// ([`super::DEFAULT_ROOM`]).
    pub room: Option<[f64; 2]>,
    /// The source's link (room, antennas, subcarriers) for the localizer; `None`: people
    /// are placed by the model alone, or not at all.
    pub geometry: Option<crate::sensing::LinkGeometry>,
    /// The pose model; `None`: no inference (sources and rates only, or oracle
    /// detections riding on the frames).
    pub model: Option<Arc<crate::model::Model>>,
    /// Windows due per second of source clock (the server's default is 30).
    pub rate_hz: f64,
    /// The source the frames come from, as a live one would be named (`replay:FILE`,
    /// `sim:SCENARIO`, `inject`).
    pub source: String,
    /// Why the source ended, as the closing `source_finished` says (`replay finished`).
    pub end_reason: String,
    /// Further sources of the same room (several nodes): frames tagged `k >= 1` by
    /// [`analyze_tagged`] come from `extra_sources[k - 1]`, tag 0 from `source`.
    pub extra_sources: Vec<String>,
    /// Each source's own link, by source name (several nodes with their placements): the
    /// links that can place people are fused ([`super::placing`]).
    pub source_geometries: Vec<(String, crate::sensing::LinkGeometry)>,
    /// A saved calibration applied before the first frame (`Server.set_calibration`).
    pub calibration: Option<crate::sensing::Calibration>,
}

impl Default for OfflineOptions {
    fn default() -> Self {
        OfflineOptions {
            environment_id: OFFLINE_ENVIRONMENT.into(),
            device: None,
            room: None,
            geometry: None,
            model: None,
            rate_hz: 30.0,
            source: "inject".into(),
            end_reason: "input finished".into(),
            extra_sources: Vec::new(),
            source_geometries: Vec::new(),
            calibration: None,
        }
    }
}

/// Why an offline run gave no result.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The room size given (width, depth in metres) is not two positive numbers.
    #[error("invalid room size {0:?}: two positive numbers of metres")]
    Room([f64; 2]),
    /// The runtime, the environment or the model worker could not start; the reason.
    #[error("could not start the pipeline: {0}")]
    Start(String),
    /// The environment task ended before the run did (it does not, short of a bug).
    #[error("the environment stopped before the end of the input")]
    Stopped,
    /// The calibration given was refused; why.
    #[error("calibration: {0}")]
    Calibration(String),
    /// The progress callback asked to stop.
    #[error("cancelled after {0} frames")]
    Cancelled(u64),
}

/// One frame to analyse, with the oracle detections that ride on it, if any (see
/// [`Oracle`]).
pub type OfflineFrame = (CsiFrame, Option<Box<Oracle>>);

/// Runs `frames` through an environment of the live pipeline and returns every event it
/// published, oldest first, each with its publication time (RFC 3339). `progress` is
/// called after each frame is handed over with the count so far; returning false stops
/// the run ([`OfflineError::Cancelled`]).
///
/// Call from outside any tokio runtime (it runs its own, and waits on it).
pub fn analyze<I>(
    options: &OfflineOptions,
    frames: I,
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<Vec<(String, Event)>, OfflineError>
where
    I: IntoIterator<Item = OfflineFrame>,
{
    analyze_tagged(options, frames.into_iter().map(|f| (0, f)), progress)
}

/// [`analyze`] for a room of several sources: each frame tagged with its source (0:
/// `options.source`, `k`: `options.extra_sources[k - 1]`), in the order they arrive.
pub fn analyze_tagged<I>(
    options: &OfflineOptions,
    frames: I,
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<Vec<(String, Event)>, OfflineError>
where
    I: IntoIterator<Item = (usize, OfflineFrame)>,
{
    if let Some(room) = options.room {
        if !room.iter().all(|x| x.is_finite() && *x > 0.0) {
            return Err(OfflineError::Room(room));
        }
    }
    // One worker: the environment is one task; the calling thread feeds it and the
    // inference worker has its own thread, so the three overlap.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .thread_name("wdp-analyze")
        .build()
        .map_err(|e| OfflineError::Start(format!("runtime: {e}")))?;
    let service = match &options.model {
        Some(m) => Some(
            InferenceService::start(m.clone(), options.rate_hz)
                .map_err(|e| OfflineError::Start(format!("inference worker: {e}")))?,
        ),
        None => None,
    };
    let collector = Collector::new();
    let ctx = EnvironmentContext {
        publisher: collector.clone(),
        settings: Default::default(),
        model: Arc::new(RwLock::new(service)),
        stall_timeout: NO_STALL,
        queue_capacity: QUEUE,
    };
    let env = EnvironmentHandle::spawn(
        runtime.handle(),
        options.environment_id.clone(),
        options.device.clone(),
        ctx,
    );
    let result = feed(options, &env, frames, progress);
    drop(env); // the environment's task ends with its last sender
    runtime.shutdown_timeout(Duration::from_secs(1));
    result?;
    Ok(collector.take())
}

fn feed<I>(
    options: &OfflineOptions,
    env: &EnvironmentHandle,
    frames: I,
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<(), OfflineError>
where
    I: IntoIterator<Item = (usize, OfflineFrame)>,
{
    let sources: Vec<&String> = std::iter::once(&options.source)
        .chain(&options.extra_sources)
        .collect();
    let send = |input: Input| {
        env.tx
            .blocking_send(input)
            .map_err(|_| OfflineError::Stopped)
    };
    if let Some(room) = options.room {
        send(Input::RoomSize(room))?;
    }
    if let Some(g) = &options.geometry {
        send(Input::Geometry(Some(Box::new(g.clone()))))?;
    }
    for (source, g) in &options.source_geometries {
        send(Input::SourceGeometry {
            source: source.clone(),
            geometry: Box::new(g.clone()),
        })?;
    }
    if let Some(c) = &options.calibration {
        let (reply, answer) = oneshot::channel();
        send(Input::SetCalibration {
            calibration: Some(c.clone()),
            reply: Some(reply),
        })?;
        answer
            .blocking_recv()
            .map_err(|_| OfflineError::Stopped)?
            .map_err(OfflineError::Calibration)?;
    }
    let mut n = 0u64;
    for (tag, (frame, oracle)) in frames {
        let source = sources.get(tag).unwrap_or(&sources[0]);
        send(Input::Frame {
            source: (*source).clone(),
            frame,
            oracle,
        })?;
        n += 1;
        if !progress(n) {
            return Err(OfflineError::Cancelled(n));
        }
    }
    for source in &sources {
        send(Input::SourceEnded {
            source: (*source).clone(),
            reason: options.end_reason.clone(),
        })?;
    }
    let (done, flushed) = oneshot::channel();
    send(Input::Flush(done))?;
    flushed.blocking_recv().map_err(|_| OfflineError::Stopped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventType;
    use crate::sim::channel::Workspace;
    use crate::sim::{build_spec, Simulator};
    use crate::track::synth::{NoiseModel, Synth};

    /// A simulated scenario's frames with oracle detections, as `Server::simulate` makes
    /// them (no model needs loading in a Rust test).
    fn oracle_frames(scenario: &str, seed: u64, duration_s: f64) -> (Vec<OfflineFrame>, [f64; 2]) {
        let spec = build_spec(scenario, Some(seed), Some(duration_s), None, None).unwrap();
        let sim = Simulator::new(spec).unwrap();
        let mut synth = Synth::new(NoiseModel::default(), seed ^ 0x5eed);
        let mut ws = Workspace::default();
        let room = [sim.room.size[0], sim.room.size[1]];
        let frames = (0..sim.n_frames())
            .filter_map(|n| sim.frame(n, &mut ws))
            .map(|(frame, truth)| {
                let oracle = Box::new(Oracle {
                    detections: synth.detections(&sim.room, &truth),
                    room_size: room,
                });
                (frame, Some(oracle))
            })
            .collect();
        (frames, room)
    }

    fn run(frames: Vec<OfflineFrame>, room: [f64; 2]) -> Vec<(String, Event)> {
        let options = OfflineOptions {
            room: Some(room),
            source: "sim:fall".into(),
            end_reason: "simulation finished".into(),
            ..Default::default()
        };
        analyze(&options, frames, &mut |_| true).unwrap()
    }

    #[test]
    fn a_simulated_fall_gives_the_live_messages_in_order_and_the_same_twice() {
        let (frames, room) = oracle_frames("fall", 3, 12.0);
        let n = frames.len();
        let events = run(frames, room);
        let kinds: Vec<EventType> = events.iter().map(|(_, e)| e.event_type).collect();
        // The source opens and closes the run, around everything the frames led to.
        let first = &events[0].1;
        assert_eq!(first.event_type, EventType::HardwareEvent);
        assert_eq!(first.data["event"], "source_connected");
        let last = &events.last().unwrap().1;
        assert_eq!(last.data["event"], "source_finished", "{:?}", last.data);
        assert_eq!(last.data["frames"], n as u64);
        assert!(events
            .iter()
            .all(|(_, e)| e.data["environment_id"] == OFFLINE_ENVIRONMENT));
        // Unthrottled pose_data on the analysis stage's 30-a-second source-clock
        // schedule: about 30 x 12 s, in source-clock order.
        let times: Vec<f64> = events
            .iter()
            .filter(|(_, e)| e.event_type == EventType::PoseData)
            .map(|(_, e)| e.data["metadata"]["source_time"].as_f64().unwrap())
            .collect();
        assert!(
            (340..=362).contains(&times.len()),
            "{} pose_data",
            times.len()
        );
        assert!(times.windows(2).all(|w| w[0] < w[1]));
        assert!(
            times.iter().all(|t| (-0.1..12.1).contains(t)),
            "the source clock as given: {:?}",
            (times.first(), times.last())
        );
        assert!(kinds.contains(&EventType::OccupancyUpdate));
        assert!(
            events
                .iter()
                .any(|(_, e)| e.event_type == EventType::ActivityEvent
                    && e.data["event_type"] == "fall_detected"),
            "the oracle's fall is alerted"
        );
        // Nothing wall-clock driven: no stall however the feeder paced the run.
        assert!(!events
            .iter()
            .any(|(_, e)| e.data["event"] == "source_stopped"));
        // The same input gives the same messages (publication times aside, and the wall
        // clock a hardware_event's `last_seen` carries).
        let again = run(oracle_frames("fall", 3, 12.0).0, room);
        let strip = |v: &[(String, Event)]| -> Vec<Event> {
            v.iter()
                .map(|(_, e)| {
                    let mut e = e.clone();
                    if let Some(m) = e.data.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                        m.remove("last_seen");
                    }
                    e
                })
                .collect()
        };
        let (a, b) = (strip(&events), strip(&again));
        assert_eq!(a.len(), b.len());
        let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        assert_eq!(differ, 0, "{differ} messages differ between two runs");
    }

    #[test]
    fn progress_can_stop_a_run_and_bad_rooms_are_refused() {
        let (frames, room) = oracle_frames("walk", 1, 2.0);
        let mut seen = 0;
        let options = OfflineOptions {
            room: Some(room),
            ..Default::default()
        };
        let err = analyze(&options, frames, &mut |n| {
            seen = n;
            n < 10
        })
        .unwrap_err();
        assert!(matches!(err, OfflineError::Cancelled(10)), "{err}");
        assert_eq!(seen, 10);
        let bad = OfflineOptions {
            room: Some([0.0, 5.0]),
            ..Default::default()
        };
        assert!(matches!(
            analyze(&bad, Vec::new(), &mut |_| true),
            Err(OfflineError::Room(_))
        ));
        // No frames: the source still ends, and nothing else happens.
        let events = analyze(&OfflineOptions::default(), Vec::new(), &mut |_| true).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1.data["event"], "source_finished");
    }
}
