//! One environment: its input channel, its task, and what it knows about its sources.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::clocks::{Clocks, Realigned};
use super::model_stage::{ModelSlot, ModelStage, ModelStats, StageProblem};
use super::placing::Placing;
use super::sequence::SequenceTracker;
use crate::csi::CsiFrame;
use crate::events::{Event, EventType, Publisher};
use crate::sensing::{Calibration, CalibrationOutcome, Fix, SensingState, SensorBank};

/// Detections made from a simulator's ground truth instead of by a model (oracle mode):
/// they let tracking, analytics and every client downstream run before a model exists,
/// and every message they lead to says so (`model_version: "oracle:simulator-truth"`).
pub struct Oracle {
    /// The people the simulator placed at the frame's time, as a model would detect them.
    pub detections: Vec<crate::track::Detection>,
    /// Room width and depth, metres: the frame of the detections' normalized coordinates.
    pub room_size: [f64; 2],
}

/// The `model_version` of pose_data built from oracle detections.
pub const ORACLE_MODEL: &str = "oracle:simulator-truth";

/// What sources send to an environment.
pub enum Input {
    /// One CSI frame from a source.
    Frame {
        /// The source's name within the environment (`serial:<port>`, `udp:node_<id>`,
        /// `replay:<file>`...): per-source health is kept by it.
        source: String,
        /// The CSI.
        frame: CsiFrame,
        /// Oracle detections riding along with a simulated frame (see [`Oracle`]).
        oracle: Option<Box<Oracle>>,
    },
    /// A source that ends on purpose (a replay that finished): no stall alarm follows.
    SourceEnded {
        /// The source's name, as its frames gave it.
        source: String,
        /// Why it ended, in words, for the `hardware_event`.
        reason: String,
    },
    /// The room's floor size in metres (width, depth): the frame the model's normalized
    /// coordinates are scaled by. A simulated source sends its room's.
    RoomSize([f64; 2]),
    /// A repeating simulation starts its scenario over, and its people do not carry on
    /// from where the last run left them: they are gone (a fallen person does not lie on
    /// while the new run's walks in), so tracking starts over too. A looping walk that
    /// ends where it starts is one walker and sends none.
    NewRun,
    /// The primary source's link: room, antennas and subcarriers, for the localizer
    /// ([`crate::sensing::localizer`]); None forgets it. A simulated source sends its own.
    Geometry(Option<Box<crate::sensing::LinkGeometry>>),
    /// One source's own link (several nodes of one room): every source with such a link
    /// that can place people feeds one fused localizer, which then takes over from the
    /// primary's ([`super::placing`]).
    SourceGeometry {
        /// The source's name, as its frames give it.
        source: String,
        /// Its link.
        geometry: Box<crate::sensing::LinkGeometry>,
    },
    /// Learn the empty room over the next `seconds` of source time (the room must be
    /// empty meanwhile); the outcome is published as a system_event and sent to `reply`.
    Calibrate {
        /// Source time to learn over, seconds.
        seconds: f64,
        /// Told the calibration, or why it failed.
        reply: Option<tokio::sync::oneshot::Sender<Result<Calibration, String>>>,
    },
    /// Apply a saved calibration (None: back to uncalibrated).
    SetCalibration {
        /// The calibration to use; None drops the one in force.
        calibration: Option<Calibration>,
        /// Told once it is in force, or why it was refused.
        reply: Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
    },
    /// Answered once every input sent before it has been processed and the model has
    /// answered the window in flight, so every event those inputs lead to has been
    /// published (`analyze` knows it has everything without sleeping).
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The room an environment assumes until told otherwise (the simulator's default room).
pub const DEFAULT_ROOM: [f64; 2] = [6.0, 5.0];

/// Health of one source, as `hardware_event`s and `environment_stats` report it.
#[derive(Debug, Clone, Default)]
pub struct SourceStats {
    /// Frames received from the source.
    pub frames: u64,
    /// Gaps, reorderings and duplicates in the source's sequence numbers.
    pub sequence: SequenceTracker,
    /// When the last frame arrived, seconds since the Unix epoch (0: never).
    pub last_seen_unix: f64,
    /// Whether the source has been silent past the stall timeout (and not ended).
    pub stalled: bool,
    /// Whether the source said it ended on purpose ([`Input::SourceEnded`]).
    pub ended: bool,
    /// Times the source went from sending to stalled.
    pub stalls: u64,
    /// Added to the source's timestamps to put them on the environment's time base
    /// (its first source's clock; `src/pipeline/clocks.rs`), seconds.
    pub clock_offset_s: f64,
    /// Times the source's clock was re-aligned (it went back or jumped).
    pub clock_realignments: u64,
    last_seen: Option<Instant>,
    window_start: Option<(f64, u64, u64)>,
}

/// What an environment has seen.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentStats {
    /// Frames received from every source together.
    pub frames: u64,
    /// Frames per second over the last second.
    pub frame_rate: f64,
    /// `(n_tx, n_rx, n_subcarriers)` of the last frame.
    pub last_shape: Option<[usize; 3]>,
    /// Each source's health, by source name.
    pub sources: BTreeMap<String, SourceStats>,
    /// The model stage's counters.
    pub model: ModelStats,
    /// The version of the model whose answers this environment last used.
    pub model_version: Option<String>,
    /// Room width and depth in metres, once a source told it ([`Input::RoomSize`]).
    pub room_size: Option<[f64; 2]>,
    /// The sensor after the last frame.
    pub sensing: Option<SensingState>,
    /// The calibration in force.
    pub calibration: Option<Calibration>,
    /// The fused localizer of the sources' own links, once one is set
    /// ([`Input::SourceGeometry`]).
    pub placing: Option<PlacingStats>,
    recent: std::collections::VecDeque<Instant>,
}

impl EnvironmentStats {
    /// The stats as JSON (`App::environment_stats` adds the queue length and device).
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
                        "clock_offset_s": s.clock_offset_s,
                        "clock_realignments": s.clock_realignments,
                    }),
                )
            })
            .collect();
        json!({
            "frames": self.frames,
            "frame_rate": self.frame_rate,
            "shape": self.last_shape,
            "sources": sources,
            "room_size": self.room_size,
            "model": self.model.to_json(self.model_version.as_deref()),
            "sensing": self.sensing,
            "calibration": self.calibration,
            "placing": self.placing.as_ref().map(|p| json!({
                "links": p.links,
                "fixes": p.fixes,
                "last_fix_links": p.last_fix_links,
            })),
        })
    }
}

/// What the fused localizer of several sources' links did ([`EnvironmentStats::placing`]).
#[derive(Debug, Clone, Default)]
pub struct PlacingStats {
    /// The sources whose links the fusion uses (the ones that can place people).
    pub links: Vec<String>,
    /// Fixes it made.
    pub fixes: u64,
    /// How many links' maps the last fix fused (maps at most `FUSE_MAX_AGE_S` apart on
    /// the environment's time base).
    pub last_fix_links: usize,
}

/// A running environment.
#[derive(Clone)]
pub struct EnvironmentHandle {
    /// The environment's id (the room's name in every message).
    pub id: String,
    /// The device profile of the CSI it receives, where one was named (None: told by
    /// the CSI itself).
    pub device: Option<String>,
    /// Where sources send their input; bounded by `queue_capacity`.
    pub tx: mpsc::Sender<Input>,
    /// What the environment has seen, updated by its task.
    pub stats: Arc<Mutex<EnvironmentStats>>,
    /// Inputs the queue holds before senders wait.
    pub queue_capacity: usize,
}

/// What every environment of a server shares with it.
#[derive(Clone)]
pub struct EnvironmentContext {
    /// Where the environment publishes its events.
    pub publisher: Publisher,
    /// The runtime settings every environment reads.
    pub settings: super::settings::SharedSettings,
    /// The model in use, shared (swapped by `load_model`).
    pub model: ModelSlot,
    /// A source silent this long is reported stopped.
    pub stall_timeout: Duration,
    /// Frames an environment's input queue holds.
    pub queue_capacity: usize,
}

impl EnvironmentHandle {
    /// Starts the environment's task on `runtime`.
    pub fn spawn(
        runtime: &tokio::runtime::Handle,
        id: String,
        device: Option<String>,
        ctx: EnvironmentContext,
    ) -> Self {
        let queue_capacity = ctx.queue_capacity;
        let (tx, rx) = mpsc::channel(queue_capacity);
        let stats = Arc::new(Mutex::new(EnvironmentStats::default()));
        let env = Environment {
            id: id.clone(),
            device_channel: device
                .as_deref()
                .and_then(|d| crate::sim::device::DeviceProfile::named(d).ok())
                .map(|p| p.channel),
            settings: ctx.settings,
            model: ctx.model,
            stats: stats.clone(),
            publisher: ctx.publisher,
            stall_timeout: ctx.stall_timeout,
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
    model: ModelSlot,
    stats: Arc<Mutex<EnvironmentStats>>,
    publisher: Publisher,
    stall_timeout: Duration,
    /// The channel of the named device profile: the band of frames that do not say
    /// theirs (the sensor reads one-antenna breathing differently at 5 GHz).
    device_channel: Option<u16>,
}

/// Loss over a window above this ratio raises a `packet_loss` hardware_event. At 1 % a
/// busy channel's normal loss (the simulator's default 1 %) warned four times a minute,
/// a warning nobody could act on; 5 % is loss that costs the sensing.
const LOSS_ALERT_RATIO: f64 = 0.05;
/// The loss window, seconds of the source's clock.
const LOSS_WINDOW_S: f64 = 5.0;

impl Environment {
    async fn run(self, mut rx: mpsc::Receiver<Input>) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut analysis = super::analysis::Analysis::default();
        let (answers_tx, mut answers) = mpsc::unbounded_channel();
        let mut stage = ModelStage::new(answers_tx);
        // One sensor per source, fused (several nodes in one room: src/sensing/bank.rs).
        let mut sensors = SensorBank::default();
        // The source the model follows (the bank's primary), to restart on a change.
        let mut model_source: Option<String> = None;
        // The room's sensing when the window in flight was taken (one at a time).
        let mut window_sensing = sensors.state();
        let mut window_position: Option<[f64; 2]> = None;
        let mut calibration_reply = None;
        let mut room = DEFAULT_ROOM;
        self.stats.lock().room_size = Some(room);
        // Where the moving person is, when a link's placement is known.
        let mut placing = Placing::default();
        let mut fix: Option<Fix> = None;
        // Every source's timestamps on one time base (nodes stamp with their own clocks).
        let mut clocks = Clocks::default();
        // Inputs taken in a row with more waiting (see BACKLOG_YIELD_EVERY).
        let mut backlog_run = 0usize;
        loop {
            if rx.is_empty() {
                backlog_run = 0;
            } else {
                backlog_run += 1;
                if backlog_run.is_multiple_of(BACKLOG_YIELD_EVERY) {
                    // A backlog is worked through between the other rooms' tasks, not in
                    // one poll: tokio lets a task take up to 128 ready messages at a time,
                    // which at a fraction of a millisecond each held every other room (and
                    // its timers) back by tens of milliseconds, so one late room made the
                    // others late (`docs/performance.md`, "Eighth pass").
                    tokio::task::yield_now().await;
                }
            }
            tokio::select! {
                input = rx.recv() => match input {
                    Some(Input::Frame { source, mut frame, oracle }) => {
                        // A two-antenna Intel 5300 capture read as the official reader
                        // reads it has its antennas trade places from packet to packet.
                        crate::csi::intel5300::put_in_antenna_order(&mut frame);
                        // A multi-core nexmon chip's cores and streams interleave packet by
                        // packet: each is its own one-antenna link.
                        let source = match crate::csi::nexmon::stream_suffix(&frame) {
                            Some(stream) => format!("{source}/{stream}"),
                            None => source,
                        };
                        let (t, realigned) = clocks.map(&source, frame.timestamp);
                        frame.timestamp = t;
                        let offset = clocks.offset(&source).unwrap_or(0.0);
                        let channel = frame.channel.or(self.device_channel);
                        if let Some(outcome) = sensors.push(&source, frame.timestamp, &frame.csi, channel) {
                            self.on_calibration(outcome, calibration_reply.take());
                        }
                        if let Some(reason) = sensors.take_dropped() {
                            self.stats.lock().calibration = sensors.calibration().cloned();
                            self.publisher.publish(Event::new(
                                EventType::SystemEvent,
                                json!({"event": "calibration_dropped", "severity": "warning",
                                       "message": reason}),
                                Some(self.id.clone()),
                            ));
                        }
                        let sensing = sensors.state();
                        self.stats.lock().sensing = Some(sensing.clone());
                        // The pose model reads one link's windows: the primary source's
                        // (frames of two nodes interleaved would make no window at all).
                        let primary = sensors.primary() == Some(source.as_str());
                        if primary && model_source.as_deref() != Some(source.as_str()) {
                            if model_source.is_some() {
                                stage.restart();
                            }
                            model_source = Some(source.clone());
                        }
                        if let Some(f) = placing.push(&source, primary, frame.timestamp, &frame.csi, sensing.motion_detected) {
                            fix = Some(f);
                            self.stats.lock().placing = placing.stats();
                        }
                        let fix_room = placing.room().unwrap_or(DEFAULT_ROOM);
                        self.on_frame(source, &frame, offset, realigned);
                        if !sensing.presence {
                            fix = None; // an empty room: the last place means nothing
                        }
                        let position = fix.map(|f| [f.x, f.y]);
                        match oracle {
                            // Oracle detections stand in for the model's (never both).
                            Some(o) => {
                                let settings = self.settings.read().clone();
                                analysis.on_detections(frame.timestamp, o.detections, o.room_size,
                                    ORACLE_MODEL, &settings, &self.publisher, &self.id, None, None);
                            }
                            None if !primary => {
                                // Another node of the room: sensed (above), not modelled.
                                let classifier = self.model.read().as_ref().map(|m| m.classifier().is_some());
                                if classifier != Some(false) {
                                    analysis.on_sensing_only(&sensing, position, fix_room,
                                        classifier == Some(true), &self.publisher, &self.id);
                                }
                            }
                            None => {
                                let unusable = self.stats.lock().model.frames_unsupported;
                                let (has_model, classifier) = {
                                    let m = self.model.read();
                                    (m.is_some(), m.as_ref().is_some_and(|s| s.classifier().is_some()))
                                };
                                let due = self.feed_model(&mut stage, &frame);
                                // A stray or non-finite frame is skipped by the model
                                // without handing the stream to the sensor.
                                let model_took_it = has_model
                                    && self.stats.lock().model.frames_unsupported == unusable;
                                if !model_took_it || classifier {
                                    // No pose model for this frame: the sensor reports, with
                                    // a classifier's latest class when there is one.
                                    analysis.on_sensing_only(&sensing, position, fix_room,
                                        classifier, &self.publisher, &self.id);
                                }
                                if let Some(service) = due {
                                    if stage.in_flight() {
                                        // The model is behind: wait for its answer (back-pressure).
                                        self.stats.lock().model.waits += 1;
                                        if let Some(answer) = answers.recv().await {
                                            self.on_answer(answer, &mut stage, &mut analysis, room, &window_sensing, window_position);
                                        }
                                    }
                                    let problem = {
                                        let mut st = self.stats.lock();
                                        stage.submit(&service, frame.timestamp, &mut st.model)
                                    };
                                    // The sensor as of the window's last frame goes with its
                                    // answer, whenever that comes (same output at any speed).
                                    window_sensing = sensing.clone();
                                    window_position = position;
                                    if let Some(p) = problem {
                                        self.model_problem(p);
                                    } else if classifier && stage.in_flight() {
                                        // A classifier's class goes into the frames after its
                                        // window: waiting for it (a few dozen numbers through a
                                        // small model) makes which frames carry it the same at
                                        // any speed, `analyze` flat out as in a live room.
                                        if let Some(answer) = answers.recv().await {
                                            self.on_answer(answer, &mut stage, &mut analysis, room, &window_sensing, window_position);
                                        }
                                    }
                                }
                            }
                        }
                    }
                    Some(Input::SourceEnded { source, reason }) => {
                        // The window in flight holds this source's last frames: its answer
                        // goes out before the source's end, so `source_finished` follows
                        // every `pose_data` of the run, however fast the model answered.
                        if stage.in_flight() {
                            if let Some(answer) = answers.recv().await {
                                self.on_answer(answer, &mut stage, &mut analysis, room, &window_sensing, window_position);
                            }
                        }
                        self.on_source_ended(source, reason)
                    }
                    Some(Input::Geometry(geometry)) => {
                        fix = None;
                        if let Err(reason) = placing.set_primary(geometry.map(|g| *g)) {
                            self.localizer_unavailable(&format!("People are not placed from this link: {reason}"));
                        }
                    }
                    Some(Input::SourceGeometry { source, geometry }) => {
                        fix = None;
                        if let Err(reason) = placing.set_source(source, *geometry) {
                            self.localizer_unavailable(&format!("People are not placed from these links: {reason}"));
                        }
                        self.stats.lock().placing = placing.stats();
                    }
                    Some(Input::RoomSize(size)) => {
                        room = size;
                        self.stats.lock().room_size = Some(size);
                    }
                    Some(Input::NewRun) => {
                        analysis.start_over();
                        fix = None;
                    }
                    Some(Input::Calibrate { seconds, reply }) => {
                        if let Some(old) = calibration_reply.take() {
                            let _ = old.send(Err("superseded by a newer calibration".to_string()));
                        }
                        sensors.calibrate(seconds);
                        calibration_reply = reply;
                        self.publisher.publish(Event::new(
                            EventType::SystemEvent,
                            json!({"event": "calibration_started", "severity": "info",
                                   "message": format!("Learning the empty room over {seconds} s: keep it empty"),
                                   "seconds": seconds}),
                            Some(self.id.clone()),
                        ));
                    }
                    Some(Input::SetCalibration { calibration, reply }) => {
                        let result = sensors.set_calibration(calibration);
                        self.stats.lock().calibration = sensors.calibration().cloned();
                        if let Some(r) = reply {
                            let _ = r.send(result);
                        }
                    }
                    Some(Input::Flush(done)) => {
                        // One window at most is in flight (see model_stage): its answer
                        // is the last thing the inputs so far can still publish.
                        if stage.in_flight() {
                            if let Some(answer) = answers.recv().await {
                                self.on_answer(answer, &mut stage, &mut analysis, room, &window_sensing, window_position);
                            }
                        }
                        let _ = done.send(());
                    }
                    None => return, // the server dropped the environment
                },
                Some(answer) = answers.recv() => {
                    self.on_answer(answer, &mut stage, &mut analysis, room, &window_sensing, window_position);
                }
                _ = tick.tick() => self.check_sources(),
            }
        }
    }

    /// Hands a frame to the model stage when the server has a model; returns the model
    /// when a window is due.
    fn feed_model(
        &self,
        stage: &mut ModelStage,
        frame: &CsiFrame,
    ) -> Option<std::sync::Arc<super::inference::InferenceService>> {
        let service = self.model.read().clone()?; // no model: sources and rates only
        let due = {
            let mut st = self.stats.lock();
            stage.on_frame(frame, &service, &mut st.model)
        };
        match due {
            Ok(true) => Some(service),
            Ok(false) => None,
            Err(p) => {
                self.model_problem(p);
                None
            }
        }
    }

    /// The model answered a window: its detections go on to tracking and analytics.
    fn on_answer(
        &self,
        answer: super::inference::Inferred,
        stage: &mut ModelStage,
        analysis: &mut super::analysis::Analysis,
        room: [f64; 2],
        sensing: &SensingState,
        position: Option<[f64; 2]>,
    ) {
        let service = {
            let mut st = self.stats.lock();
            let service = stage.on_answer(&answer, &mut st.model);
            if let Some(s) = &service {
                st.model_version = Some(s.version().to_string());
            }
            service
        };
        let Some(service) = service else { return };
        let version = service.version().to_string();
        if let (Some(spec), Some(probs)) = (service.classifier(), &answer.classes) {
            analysis.on_classes(
                answer.t,
                &spec.classes,
                probs,
                &version,
                &self.publisher,
                &self.id,
            );
            return;
        }
        match answer.detections {
            Ok(detections) => {
                let settings = self.settings.read().clone();
                analysis.on_detections(
                    answer.t,
                    detections,
                    room,
                    &version,
                    &settings,
                    &self.publisher,
                    &self.id,
                    Some(sensing),
                    position,
                );
            }
            Err(e) => {
                if let Some(p) = stage.failed(&e) {
                    self.model_problem(p);
                }
            }
        }
    }

    /// A calibration ended: publish it, keep it in the stats, answer whoever asked.
    fn on_calibration(
        &self,
        outcome: CalibrationOutcome,
        reply: Option<tokio::sync::oneshot::Sender<Result<Calibration, String>>>,
    ) {
        let (data, result) = match outcome {
            CalibrationOutcome::Done(c) => {
                self.stats.lock().calibration = Some(c.clone());
                (
                    json!({"event": "calibration_complete", "severity": "info",
                           "message": "The empty room was learned; presence and motion now use its thresholds",
                           "calibration": c}),
                    Ok(c),
                )
            }
            CalibrationOutcome::Refused { reason } => (
                json!({"event": "calibration_failed", "severity": "warning", "message": reason}),
                Err(reason),
            ),
        };
        self.publisher.publish(Event::new(
            EventType::SystemEvent,
            data,
            Some(self.id.clone()),
        ));
        if let Some(r) = reply {
            let _ = r.send(result);
        }
    }

    fn model_problem(&self, p: StageProblem) {
        self.publisher.publish(Event::new(
            EventType::SystemEvent,
            json!({"event": "component_error", "component": "model", "severity": p.severity,
                   "message": p.message}),
            Some(self.id.clone()),
        ));
    }

    fn on_frame(
        &self,
        source: String,
        frame: &CsiFrame,
        clock_offset_s: f64,
        realigned: Option<Realigned>,
    ) {
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
            s.clock_offset_s = clock_offset_s;
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
            // The loss window runs on the source's clock, not the wall's: a replay or a
            // simulation fed flat out (or `analyze`) judges the same frames the same way
            // however fast the machine is, and a live source's clock is the wall's anyway.
            let t = frame.timestamp;
            if s.window_start.is_some_and(|w| t < w.0) || !t.is_finite() {
                s.window_start = None; // the clock went back (re-aligned) or is not a number
            }
            let (t0, expected0, gaps0) =
                *s.window_start
                    .get_or_insert((t, s.sequence.expected(), s.sequence.gaps));
            if t - t0 >= LOSS_WINDOW_S {
                let expected = s.sequence.expected() - expected0;
                let lost = s.sequence.gaps.saturating_sub(gaps0);
                if expected > 0 && lost as f64 / expected as f64 > LOSS_ALERT_RATIO {
                    let msg =
                        format!("{lost} of {expected} frames lost in the last {LOSS_WINDOW_S} s");
                    events.push(self.hardware(&source, "packet_loss", "warning", &msg, s));
                }
                s.window_start = Some((t, s.sequence.expected(), s.sequence.gaps));
            }
            if let Some(r) = realigned {
                s.clock_realignments += 1;
                let msg = format!(
                    "Clock re-aligned onto the room's by {:+.3} s: {}",
                    r.step_s, r.reason
                );
                // A wrapping counter is routine; any other re-alignment is the source's trouble.
                let severity = if r.wrapped { "info" } else { "warning" };
                let mut e = self.hardware(&source, "clock_realigned", severity, &msg, s);
                e.data["metadata"]["clock_offset_s"] = r.offset_s.into();
                e.data["metadata"]["clock_step_s"] = r.step_s.into();
                events.push(e);
            }
        }
        for e in events {
            self.publisher.publish(e);
        }
    }

    /// A link's placement that places nobody, said once as a `system_event`.
    fn localizer_unavailable(&self, message: &str) {
        self.publisher.publish(Event::new(
            EventType::SystemEvent,
            json!({"event": "localizer_unavailable", "severity": "warning", "message": message}),
            Some(self.id.clone()),
        ));
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
                    "last_seen": crate::events::rfc3339_from_unix(s.last_seen_unix),
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

/// Inputs an environment takes in a row from a backlog before it lets the other tasks
/// run. Not every one: a frame or two queued is the normal state of a busy core, and
/// yielding for each of those put the frame that makes a window due behind every other
/// room's work (p50 2.7-3.0 ms without yields, 4.3-5.6 ms yielding every frame: M = 10
/// rooms, N = 100 clients, `docs/performance.md`, "Eighth pass").
pub(crate) const BACKLOG_YIELD_EVERY: usize = 8;

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}
