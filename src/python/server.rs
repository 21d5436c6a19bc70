//! `_native.Server`: the WebSocket server and its event bus, driven from Python.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors::{
    ArgumentTypeError, ConfigError, InvalidArgumentError, PathNotFoundError,
    ServerError as PyServerError, SimulationError,
};
use crate::app::{App, AppArgumentError, AppConfig, AppError, EnvironmentOptions};
use crate::server::{Event, EventType, JwtKey, ServerError};

fn to_py(e: ServerError) -> PyErr {
    match e {
        ServerError::InvalidConfig(_) => ConfigError::new_err(e.to_string()),
        ServerError::InvalidEvent(_) | ServerError::Auth(_) | ServerError::InvalidArgument(_) => {
            InvalidArgumentError::new_err(e.to_string())
        }
        _ => PyServerError::new_err(e.to_string()),
    }
}

/// The application's errors as the same Python classes the server's map to: a setting is
/// a `ConfigError`, an argument an `InvalidArgumentError`, a missing recording a
/// `PathNotFoundError`, the rest a `ServerError`.
fn app_to_py(e: AppError) -> PyErr {
    match e {
        AppError::Server(e) => to_py(e),
        AppError::InvalidConfig(_) => ConfigError::new_err(e.to_string()),
        AppError::InvalidArgument(_) => InvalidArgumentError::new_err(e.to_string()),
        AppError::RecordingNotFound(_) => PathNotFoundError::new_err(e.to_string()),
        _ => PyServerError::new_err(e.to_string()),
    }
}

/// Runs `f`, turning a panic into a `RuntimeError`: a panic crossing into Python would be
/// a `PanicException` (a `BaseException`), which `except Exception` does not catch and
/// which takes the host process down.
fn no_panic<T>(what: &str, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let detail = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(PyServerError::new_err(format!(
            "internal error in {what}: {detail}"
        )))
    })
}

/// The callback dispatcher thread's handle.
struct Dispatcher {
    /// The queue the thread reads: kept across `set_dispatcher` calls, so events queued
    /// when callbacks change are still delivered (replacing it dropped them uncounted).
    tx: crate::server::CallbackSink,
    stop: Arc<AtomicBool>,
    /// Set by the thread when it has left Python for good.
    finished: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl Dispatcher {
    /// Stops the thread and waits (bounded) until it has left Python: a thread still
    /// inside Python while the interpreter finalizes would crash the process.
    fn stop_and_wait(self, timeout: Duration) {
        self.stop.store(true, Ordering::SeqCst);
        let (lock, cond) = &*self.finished;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let _ = cond.wait_timeout_while(guard, timeout, |done| !*done);
    }
}

/// A WebSocket API server with its event bus (see `wifi_densepose.Server`).
#[pyclass(name = "Server", module = "wifi_densepose._native")]
pub struct PyServer {
    config: AppConfig,
    /// Cloned out under a brief lock by every method: the lock is never held while the
    /// GIL is released (a thread waiting for it while holding the GIL would deadlock with
    /// one that needs the GIL back to release it).
    app: Mutex<Option<Arc<App>>>,
    dispatcher: Mutex<Option<Dispatcher>>,
    dispatch_errors: Arc<AtomicU64>,
}

#[pymethods]
impl PyServer {
    /// `config`: overrides, a dict of the server's and the application's keys (see
    /// docs/protocol.md, "Configuration").
    #[new]
    #[pyo3(signature = (host="127.0.0.1", port=0, jwt_secret=None, jwt_public_key=None, jwt_algorithm="HS256", config=None))]
    fn new(
        host: &str,
        port: u16,
        jwt_secret: Option<String>,
        jwt_public_key: Option<String>,
        jwt_algorithm: &str,
        config: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let key = JwtKey::select(jwt_algorithm, jwt_secret, jwt_public_key).map_err(to_py)?;
        let overrides = config
            .map(|c| super::json::argument(c.as_any(), "config", ConfigError::new_err))
            .transpose()?;
        let mut config = AppConfig::new(key);
        config.server.host = host.to_string();
        config.server.port = port;
        if let Some(v) = overrides {
            config.apply_json(&v).map_err(ConfigError::new_err)?;
        }
        Ok(PyServer {
            config,
            app: Mutex::new(None),
            dispatcher: Mutex::new(None),
            dispatch_errors: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Binds and starts serving. Raises if already running or the port is taken.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        if self.app.lock().is_some() {
            return Err(PyServerError::new_err("the server is already running"));
        }
        let config = self.config.clone();
        let app = Arc::new(py.detach(|| App::start(config)).map_err(app_to_py)?);
        let mut slot = self.app.lock();
        if slot.is_some() {
            drop(slot);
            py.detach(|| app.stop());
            return Err(PyServerError::new_err("the server is already running"));
        }
        *slot = Some(app);
        Ok(())
    }

    /// Stops the server (idempotent; bounded to about two seconds).
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let dispatcher = self.dispatcher.lock().take();
        if let Some(d) = dispatcher {
            py.detach(|| d.stop_and_wait(Duration::from_secs(2)));
        }
        let app = self.app.lock().take();
        if let Some(app) = app {
            app.server().set_callback_sink(Vec::new(), None);
            py.detach(move || {
                no_panic("Server.stop", || {
                    app.stop();
                    Ok(())
                })
            })?;
        }
        Ok(())
    }

    #[getter]
    fn running(&self) -> bool {
        self.app.lock().is_some()
    }

    #[getter]
    fn url(&self) -> PyResult<String> {
        self.with(|s| Ok(s.server().url()))
    }

    #[getter]
    fn port(&self) -> PyResult<u16> {
        self.with(|s| Ok(s.server().addr().port()))
    }

    #[getter]
    fn host(&self) -> String {
        self.config.server.host.clone()
    }

    #[pyo3(signature = (subject, environments=None, ttl_s=3600))]
    fn issue_token(
        &self,
        subject: &str,
        environments: Option<Vec<String>>,
        ttl_s: u64,
    ) -> PyResult<String> {
        self.with(|s| {
            s.server()
                .issue_token(subject, environments.as_deref(), ttl_s)
                .map_err(to_py)
        })
    }

    #[pyo3(signature = (environment_id, device=None))]
    fn add_environment(&self, environment_id: &str, device: Option<&str>) -> PyResult<()> {
        self.with(|s| {
            s.add_environment(environment_id, EnvironmentOptions::device(device))
                .map_err(app_to_py)
        })
    }

    /// Where an environment's devices are (see `Server.add_environment`).
    #[pyo3(signature = (environment_id, device, placement, room, source=None))]
    fn set_placement(
        &self,
        environment_id: &str,
        device: Option<&str>,
        placement: Option<super::localize::PlacementArg>,
        room: (f64, f64),
        source: Option<&str>,
    ) -> PyResult<()> {
        let geometry = super::localize::geometry(placement, device, Some(room))?;
        match (source, geometry) {
            (None, geometry) => {
                self.with(|s| s.set_geometry(environment_id, geometry).map_err(app_to_py))
            }
            (Some(source), Some(g)) => self.with(|s| {
                s.set_source_geometry(environment_id, source, g)
                    .map_err(app_to_py)
            }),
            (Some(_), None) => Err(InvalidArgumentError::new_err(
                "a source's placement cannot be None",
            )),
        }
    }

    /// Sets the pose model every environment infers with (`None`: no inference).
    #[pyo3(signature = (model, rate_hz=30.0))]
    fn set_model(&self, model: Option<&super::model::NativeModel>, rate_hz: f64) -> PyResult<()> {
        let model = model.map(|m| m.shared());
        self.with(|s| s.set_model(model, rate_hz).map_err(app_to_py))
    }

    /// The model in use and its worker's counters (None without one).
    fn model_info<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let info = self.with(|s| Ok(s.model_info()))?;
        info.map(|v| super::json::to_py(py, &v)).transpose()
    }

    /// The room's floor size in metres (width, depth), for the model's coordinates.
    fn set_room(
        &self,
        py: Python<'_>,
        environment_id: &str,
        width_m: f64,
        depth_m: f64,
    ) -> PyResult<()> {
        let app = self.app()?;
        py.detach(|| app.set_room(environment_id, [width_m, depth_m]))
            .map_err(app_to_py)
    }

    /// Feeds CSI into an environment: complex64 `(n_tx, n_rx, n_sub)` or a batch
    /// `(n, n_tx, n_rx, n_sub)`; `timestamps` (seconds) default to now.
    #[pyo3(signature = (environment_id, csi, timestamps=None, receiver=None))]
    fn inject_csi(
        &self,
        py: Python<'_>,
        environment_id: &str,
        csi: &Bound<'_, PyAny>,
        timestamps: Option<Vec<f64>>,
        receiver: Option<&str>,
    ) -> PyResult<usize> {
        let frames = frames_from_numpy(csi, timestamps)?;
        let n = frames.len();
        let app = self.app()?;
        py.detach(|| app.inject_from(environment_id, receiver, frames))
            .map_err(app_to_py)?;
        Ok(n)
    }

    /// Replays a recording into an environment (speed 1.0: real time; 0: as fast as it goes).
    #[pyo3(signature = (environment_id, path, speed=1.0, format=None))]
    fn replay(
        &self,
        environment_id: &str,
        path: std::path::PathBuf,
        speed: f64,
        format: Option<&str>,
    ) -> PyResult<Replay> {
        let format = format
            .map(|f| {
                f.parse::<crate::csi::CsiFormat>()
                    .map_err(InvalidArgumentError::new_err)
            })
            .transpose()?;
        self.with(|s| {
            let progress = s
                .replay(environment_id, &path, format, speed)
                .map_err(app_to_py)?;
            Ok(Replay {
                progress,
                path: path.display().to_string(),
            })
        })
    }

    /// Runs a simulator scenario (a name or a JSON description) as a live source.
    #[pyo3(signature = (environment_id, scenario="walk", seed=0, duration_s=None, device=None, speed=1.0, repeat=false, oracle=false))]
    #[allow(clippy::too_many_arguments)]
    fn simulate(
        &self,
        environment_id: &str,
        scenario: &str,
        seed: u64,
        duration_s: Option<f64>,
        device: Option<&str>,
        speed: f64,
        repeat: bool,
        oracle: bool,
    ) -> PyResult<Replay> {
        let spec = crate::sim::build_spec(scenario, Some(seed), duration_s, device, None)
            .map_err(|e| SimulationError::new_err(e.to_string()))?;
        // What can be checked cheaply is checked here (an unknown device, a placement
        // outside the room), not first found by the source's thread, in `Replay.error`.
        spec.validate()
            .and_then(|_| {
                let room = spec.room();
                room.validate()?;
                spec.links(&room).map(|_| ())
            })
            .map_err(|e| SimulationError::new_err(e.to_string()))?;
        let name = if spec.name.is_empty() {
            "custom".to_string()
        } else {
            spec.name.clone()
        };
        let noise = oracle.then(crate::track::synth::NoiseModel::default);
        self.with(|s| {
            let progress = s
                .simulate(environment_id, spec, speed, repeat, noise)
                .map_err(app_to_py)?;
            Ok(Replay {
                progress,
                path: format!("sim:{name}"),
            })
        })
    }

    /// Listens for ESP32 UDP datagrams: WDPC and RuView frames routed by node id
    /// (`nodes`), `CSI_DATA` lines by sender address (`senders`, "ip" or "ip:port")
    /// else by their MAC field (`macs`). Returns the listener (its port and counters).
    #[pyo3(signature = (nodes, port=0, host="127.0.0.1", macs=None, senders=None))]
    fn listen_udp(
        &self,
        py: Python<'_>,
        nodes: std::collections::HashMap<u16, String>,
        port: u16,
        host: &str,
        macs: Option<std::collections::HashMap<String, String>>,
        senders: Option<std::collections::HashMap<String, String>>,
    ) -> PyResult<UdpListener> {
        let addr: std::net::SocketAddr = format!("{host}:{port}").parse().map_err(|e| {
            InvalidArgumentError::new_err(format!("bad UDP address {host}:{port}: {e}"))
        })?;
        let app = self.app()?;
        let (local, stats) = py
            .detach(|| {
                app.listen_udp_routes(
                    addr,
                    nodes,
                    macs.unwrap_or_default(),
                    senders.unwrap_or_default(),
                )
            })
            .map_err(app_to_py)?;
        Ok(UdpListener {
            port: local.port(),
            stats,
        })
    }

    /// Reads `CSI_DATA` lines from a serial port into an environment; `mac` keeps the
    /// lines of one transmitter only.
    #[pyo3(signature = (port, baud, environment_id, mac=None))]
    fn listen_serial(
        &self,
        py: Python<'_>,
        port: std::path::PathBuf,
        baud: u32,
        environment_id: &str,
        mac: Option<String>,
    ) -> PyResult<SerialListener> {
        let app = self.app()?;
        let handle = py
            .detach(|| app.listen_serial(&port, baud, environment_id, mac))
            .map_err(|e| match e {
                AppError::Serial { ref source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    PathNotFoundError::new_err(e.to_string())
                }
                other => app_to_py(other),
            })?;
        Ok(SerialListener { handle })
    }

    /// Changes runtime settings (a dict of setting to value); returns what changed.
    #[pyo3(signature = (changes, applied_by="python"))]
    fn configure<'py>(
        &self,
        py: Python<'py>,
        changes: &Bound<'py, PyDict>,
        applied_by: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let v = super::json::argument(changes.as_any(), "settings", ConfigError::new_err)?;
        let changed = self.with(|s| s.configure(&v, applied_by).map_err(app_to_py))?;
        super::json::to_py(py, &changed)
    }

    /// Learns the empty room over `seconds` of its CSI; returns the calibration.
    /// Releases the GIL while it waits.
    #[pyo3(signature = (environment_id, seconds, timeout_s))]
    fn calibrate<'py>(
        &self,
        py: Python<'py>,
        environment_id: &str,
        seconds: f64,
        timeout_s: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        // Negative, NaN or unbounded: no Duration; the engine refuses 0 and over a day.
        let timeout = Duration::try_from_secs_f64(timeout_s)
            .map_err(|_| app_to_py(AppArgumentError::CalibrationTimeout(timeout_s).into()))?;
        let app = self.app()?;
        let c = py
            .detach(|| app.calibrate(environment_id, seconds, timeout))
            .map_err(app_to_py)?;
        let v = serde_json::to_value(&c)
            .map_err(|e| PyServerError::new_err(format!("calibration: {e}")))?;
        super::json::to_py(py, &v)
    }

    /// Applies a calibration (a dict `calibrate` returned; None: none).
    #[pyo3(signature = (environment_id, calibration=None))]
    fn set_calibration(
        &self,
        py: Python<'_>,
        environment_id: &str,
        calibration: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let c = calibration
            .map(|c| super::json::calibration(c.as_any()))
            .transpose()?;
        let app = self.app()?;
        py.detach(|| app.set_calibration(environment_id, c))
            .map_err(app_to_py)
    }

    /// The environment's counters (frames, rate, shape, sources' health).
    fn environment_stats<'py>(
        &self,
        py: Python<'py>,
        environment_id: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let stats = self.with(|s| s.environment_stats(environment_id).map_err(app_to_py))?;
        super::json::to_py(py, &stats)
    }

    fn environments(&self) -> PyResult<Vec<String>> {
        self.with(|s| Ok(s.server().environments()))
    }

    /// Publishes an event (`data`: the message's `data` object).
    #[pyo3(signature = (event_type, data, environment_id=None))]
    fn publish(
        &self,
        py: Python<'_>,
        event_type: &str,
        data: &Bound<'_, PyDict>,
        environment_id: Option<String>,
    ) -> PyResult<()> {
        let data =
            super::json::argument(data.as_any(), "event data", InvalidArgumentError::new_err)?;
        let app = self.app()?;
        py.detach(|| {
            no_panic("Server.publish", || {
                app.server()
                    .publish(event_type, data, environment_id)
                    .map_err(to_py)
            })
        })
    }

    /// Routes events of `event_types` to `dispatch(event_type, data_json)`, called on a
    /// thread of its own; a full queue drops events and counts them in /metrics.
    fn set_dispatcher(&self, event_types: Vec<String>, dispatch: Py<PyAny>) -> PyResult<()> {
        let types = event_types
            .iter()
            .map(|t| {
                EventType::parse(t).ok_or_else(|| {
                    InvalidArgumentError::new_err(format!("unknown event type '{t}'"))
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let app = self.app()?;
        if let Some(d) = self.dispatcher.lock().as_ref() {
            // The thread and its queue stay: only what the bus routes to it changes.
            app.server().set_callback_sink(types, Some(d.tx.clone()));
            return Ok(());
        }
        if types.is_empty() {
            app.server().set_callback_sink(Vec::new(), None);
            return Ok(());
        }
        let (tx, rx) = sync_channel(app.config().callback_queue_capacity);
        let stop = Arc::new(AtomicBool::new(false));
        let errors = self.dispatch_errors.clone();
        let thread_stop = stop.clone();
        let finished = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let thread_finished = finished.clone();
        std::thread::Builder::new()
            .name("wdp-callbacks".into())
            .spawn(move || {
                dispatch_loop(rx, dispatch, thread_stop, errors);
                let (lock, cond) = &*thread_finished;
                *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
                cond.notify_all();
            })
            .map_err(|e| {
                PyServerError::new_err(format!("cannot start the callback thread: {e}"))
            })?;
        app.server().set_callback_sink(types, Some(tx.clone()));
        *self.dispatcher.lock() = Some(Dispatcher { tx, stop, finished });
        Ok(())
    }

    /// Errors raised by the dispatcher itself (callbacks' own errors are caught in Python).
    #[getter]
    fn dispatch_errors(&self) -> u64 {
        self.dispatch_errors.load(Ordering::Relaxed)
    }

    fn metrics_text(&self) -> PyResult<String> {
        self.with(|s| Ok(s.server().metrics_text()))
    }

    /// Takes or renews an environment's lease in the broker; whether this node holds it.
    fn claim_environment(&self, py: Python<'_>, environment_id: &str) -> PyResult<bool> {
        let app = self.app()?;
        py.detach(|| app.server().claim_environment(environment_id))
            .map_err(to_py)
    }

    fn release_environment(&self, py: Python<'_>, environment_id: &str) -> PyResult<()> {
        let app = self.app()?;
        py.detach(|| app.server().release_environment(environment_id))
            .map_err(to_py)
    }

    fn lease_holder(&self, py: Python<'_>, environment_id: &str) -> PyResult<Option<String>> {
        let app = self.app()?;
        py.detach(|| app.server().lease_holder(environment_id))
            .map_err(to_py)
    }

    fn holds_lease(&self, environment_id: &str) -> PyResult<bool> {
        self.with(|s| Ok(s.server().holds_lease(environment_id)))
    }

    /// This node's id in the broker (None without a broker).
    #[getter]
    fn node_id(&self) -> Option<String> {
        self.config
            .server
            .broker
            .as_ref()
            .map(|b| b.node_id.clone())
    }

    /// The broker part of /health (None without a broker).
    fn broker_status<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let status = self.with(|s| Ok(s.server().broker_status()))?;
        status.map(|v| super::json::to_py(py, &v)).transpose()
    }
}

/// A running replay: progress and control.
#[pyclass(name = "Replay", module = "wifi_densepose._native")]
pub struct Replay {
    progress: Arc<crate::pipeline::ReplayProgress>,
    path: String,
}

#[pymethods]
impl Replay {
    #[getter]
    fn path(&self) -> &str {
        &self.path
    }
    /// Frames in the recording (0 until it has been read).
    #[getter]
    fn total(&self) -> u64 {
        self.progress.total.load(Ordering::Relaxed)
    }
    #[getter]
    fn sent(&self) -> u64 {
        self.progress.sent.load(Ordering::Relaxed)
    }
    /// 0.0 to 1.0.
    #[getter]
    fn progress(&self) -> f64 {
        self.progress.fraction()
    }
    #[getter]
    fn done(&self) -> bool {
        self.progress.done.load(Ordering::Relaxed)
    }
    /// Why the replay ended early, if it did.
    #[getter]
    fn error(&self) -> Option<String> {
        self.progress.error.lock().clone()
    }
    /// Problems inside the file (frames after a corruption are not replayed).
    #[getter]
    fn file_errors(&self) -> Vec<String> {
        self.progress.file_errors.lock().clone()
    }
    fn stop(&self) {
        self.progress.cancelled.store(true, Ordering::Relaxed);
    }
    /// An awaitable of `wait`: `await run.wait_async(timeout)` lets the event loop run
    /// while the replay or simulation goes on (pyo3-async-runtimes, on its tokio runtime).
    #[pyo3(signature = (timeout=None))]
    fn wait_async<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let progress = self.progress.clone();
        let limit = wait_limit(timeout)?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            Ok(progress.wait_async(limit).await)
        })
    }

    /// Waits until the replay ends or `timeout` seconds pass; returns whether it ended.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let limit = wait_limit(timeout)?;
        Ok(py.detach(|| self.progress.wait(limit)))
    }
}

/// How long `wait` may wait: `None` (or infinity, or more seconds than a `Duration`
/// holds) is no limit, a negative number is none at all (as `threading.Event.wait`
/// takes it), NaN is refused.
fn wait_limit(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() => Err(InvalidArgumentError::new_err(
            "timeout must be a number of seconds (or None), not NaN",
        )),
        Some(t) => Ok(Duration::try_from_secs_f64(t.max(0.0)).ok()),
    }
}

/// A UDP listener's port and counters.
#[pyclass(name = "UdpListener", module = "wifi_densepose._native")]
pub struct UdpListener {
    #[pyo3(get)]
    port: u16,
    stats: Arc<crate::pipeline::UdpStats>,
}

#[pymethods]
impl UdpListener {
    /// datagrams, frames, bad, unknown_node, skipped, dropped
    fn stats(&self) -> std::collections::HashMap<&'static str, u64> {
        let s = &self.stats;
        [
            ("datagrams", s.datagrams.load(Ordering::Relaxed)),
            ("frames", s.frames.load(Ordering::Relaxed)),
            ("bad", s.bad.load(Ordering::Relaxed)),
            ("unknown_node", s.unknown_node.load(Ordering::Relaxed)),
            ("skipped", s.skipped.load(Ordering::Relaxed)),
            ("dropped", s.dropped.load(Ordering::Relaxed)),
        ]
        .into_iter()
        .collect()
    }
    #[getter]
    fn last_error(&self) -> Option<String> {
        self.stats.last_error.lock().clone()
    }
}

/// A serial source's port, counters and stop switch.
#[pyclass(name = "SerialListener", module = "wifi_densepose._native")]
pub struct SerialListener {
    handle: crate::pipeline::SerialHandle,
}

#[pymethods]
impl SerialListener {
    /// The serial port's path.
    #[getter]
    fn port(&self) -> String {
        self.handle.path.clone()
    }
    /// The source id its frames carry in the environment (`serial:<path>`).
    #[getter]
    fn source_id(&self) -> String {
        self.handle.source.clone()
    }
    /// Whether the port is open now (false while it is away, and once stopped).
    #[getter]
    fn connected(&self) -> bool {
        self.handle.stats.connected.load(Ordering::Relaxed)
    }
    /// bytes, lines, frames, skipped, bad, other_mac, dropped, opens
    fn stats(&self) -> std::collections::HashMap<&'static str, u64> {
        let s = &self.handle.stats;
        [
            ("bytes", s.bytes.load(Ordering::Relaxed)),
            ("lines", s.lines.load(Ordering::Relaxed)),
            ("frames", s.frames.load(Ordering::Relaxed)),
            ("skipped", s.skipped.load(Ordering::Relaxed)),
            ("bad", s.bad.load(Ordering::Relaxed)),
            ("other_mac", s.other_mac.load(Ordering::Relaxed)),
            ("dropped", s.dropped.load(Ordering::Relaxed)),
            ("opens", s.opens.load(Ordering::Relaxed)),
        ]
        .into_iter()
        .collect()
    }
    #[getter]
    fn last_error(&self) -> Option<String> {
        self.handle.stats.last_error.lock().clone()
    }
    /// Stops reading and closes the port (within about 0.1 s); the environment is told
    /// the source ended on purpose.
    fn stop(&self) {
        self.handle.stop();
    }
    /// Whether the reader has let the port go after `stop` (or its environment went).
    #[getter]
    fn stopped(&self) -> bool {
        self.handle.stats.stopped.load(Ordering::Relaxed)
    }
}

/// Frames from a complex64 array `(n_tx, n_rx, n_sub)` or `(n, n_tx, n_rx, n_sub)`
/// (`app::csi_frames`: shapes, timestamps, the default spacing).
fn frames_from_numpy(
    csi: &Bound<'_, PyAny>,
    timestamps: Option<Vec<f64>>,
) -> PyResult<Vec<crate::csi::CsiFrame>> {
    use numpy::{PyArrayDyn, PyArrayMethods};
    let array = csi
        .cast::<PyArrayDyn<num_complex::Complex32>>()
        .map_err(|_| {
            let dtype = csi
                .getattr("dtype")
                .map(|d| d.to_string())
                .unwrap_or_else(|_| csi.get_type().to_string());
            ArgumentTypeError::new_err(format!("csi must be a complex64 numpy array, not {dtype}"))
        })?;
    let view = array.readonly();
    crate::app::csi_frames(
        view.as_array(),
        timestamps.as_deref(),
        crate::pipeline::unix_now(),
    )
    .map_err(|e| app_to_py(e.into()))
}

impl PyServer {
    /// The running app, cloned out of the lock.
    fn app(&self) -> PyResult<Arc<App>> {
        self.app
            .lock()
            .clone()
            .ok_or_else(|| to_py(ServerError::NotRunning))
    }

    fn with<T>(&self, f: impl FnOnce(&App) -> PyResult<T>) -> PyResult<T> {
        let app = self.app()?;
        f(&app)
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let dispatcher = self.dispatcher.lock().take();
        if let Some(d) = dispatcher {
            d.stop.store(true, Ordering::SeqCst);
        }
        // App::drop stops it; done outside the GIL-holding caller's way as far as we can.
        let app = self.app.lock().take();
        if let Some(s) = app {
            s.stop();
        }
    }
}

fn dispatch_loop(
    rx: Receiver<(EventType, Arc<Event>)>,
    dispatch: Py<PyAny>,
    stop: Arc<AtomicBool>,
    errors: Arc<AtomicU64>,
) {
    while !stop.load(Ordering::SeqCst) {
        let (t, event) = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(x) => x,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if stop.load(Ordering::SeqCst) {
            break;
        }
        Python::attach(|py| {
            let called = super::json::to_py(py, &event.data)
                .and_then(|data| dispatch.call1(py, (t.as_str(), data)));
            if let Err(e) = called {
                errors.fetch_add(1, Ordering::Relaxed);
                // `display`, not `print`: printing a SystemExit exits the process.
                e.display(py);
            }
        });
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyServer>()?;
    m.add_class::<Replay>()?;
    m.add_class::<UdpListener>()?;
    m.add_class::<SerialListener>()?;
    Ok(())
}
