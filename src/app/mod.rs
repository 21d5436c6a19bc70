//! The application: the WebSocket server and the stages composed into one running node.
//!
//! In: an [`AppConfig`] (the server's settings and the application's); then environments ([`App::add_environment`]), their sources
//! (frames injected, recordings replayed, the simulator, ESP32 nodes over UDP or a serial
//! port), the model ([`App::set_model`]) and run-time settings ([`App::configure`]). Out:
//! the environments' events on the server's bus (through [`crate::server::Publisher`], an
//! [`crate::events::EventSink`]), and measured `performance_update`s.
//! Guarantees: this is the only layer that knows both the server and the stages; the
//! server ([`crate::server`]) knows no stage and the stages know no server
//! (`scripts/check-layers.sh`). Every environment runs on the server's runtime, so stopping
//! the app stops them with it.
//!
//! ```no_run
//! use wifi_densepose::app::{App, AppConfig, EnvironmentOptions};
//! use wifi_densepose::server::JwtKey;
//! let app = App::start(AppConfig::new(JwtKey::Hs256Secret(b"secret".to_vec()))).unwrap();
//! app.add_environment("room_001", EnvironmentOptions::default()).unwrap();
//! let token = app.server().issue_token("me", None, 3600).unwrap();
//! println!("{}?token={token}", app.server().url());
//! app.stop();
//! ```

mod config;
mod environments;
mod error;
mod monitor;
mod sources;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

pub use config::AppConfig;
pub use environments::EnvironmentOptions;
pub use error::{AppArgumentError, AppError, MAX_ENVIRONMENT_ID_BYTES};
pub use sources::{csi_frames, DEFAULT_PACKET_INTERVAL_S};

use crate::pipeline::{EnvironmentHandle, ModelSlot, SharedSettings};
use crate::server::{Event, EventType, Server};

/// A running node: the server, and the environments it serves with their sources and
/// model. Dropping it stops it.
pub struct App {
    server: Server,
    stages: Arc<Stages>,
    config: AppConfig,
}

/// What every environment of one app shares; the monitor holds it too.
#[derive(Default)]
struct Stages {
    /// The running environments (one task each) and their input channels.
    pipelines: Mutex<HashMap<String, EnvironmentHandle>>,
    /// Settings changeable at run time ([`App::configure`]), shared by every environment.
    settings: SharedSettings,
    /// The pose model every environment infers with (none until [`App::set_model`]).
    model: ModelSlot,
}

impl App {
    /// Starts the server (binds, serves on a runtime of its own), then the monitor that
    /// publishes `performance_update`s every `config.performance_interval` (0: none).
    pub fn start(config: AppConfig) -> Result<App, AppError> {
        let server = Server::start(config.server.clone())?;
        let stages = Arc::new(Stages::default());
        let interval = config.performance_interval;
        if !interval.is_zero() {
            crate::pipeline::spawn_monitor(
                server.handle(),
                interval,
                monitor::View {
                    stages: stages.clone(),
                    probe: server.probe(),
                },
                server.publisher().sink(),
            );
        }
        Ok(App {
            server,
            stages,
            config,
        })
    }

    /// The configuration it was started with (the server's part as given; the port
    /// actually bound is [`Server::addr`]'s).
    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    /// The WebSocket server: its address, tokens, events, callbacks, metrics and broker.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Sets the pose model every environment infers with (`None`: no inference; the
    /// environments report their sources only, or run on oracle detections). Windows are
    /// due `rate_hz` times a second per environment (above 0, at most 1000); a new model
    /// takes over from the next window.
    pub fn set_model(
        &self,
        model: Option<Arc<crate::model::Model>>,
        rate_hz: f64,
    ) -> Result<(), AppError> {
        if !(rate_hz.is_finite() && rate_hz > 0.0 && rate_hz <= 1000.0) {
            return Err(AppArgumentError::InferenceRate(rate_hz).into());
        }
        let service = match model {
            Some(m) => Some(
                crate::pipeline::InferenceService::start(m, rate_hz)
                    .map_err(|e| AppError::Runtime(format!("inference worker: {e}")))?,
            ),
            None => None,
        };
        *self.stages.model.write() = service;
        Ok(())
    }

    /// The model in use and its worker's counters (`None` without a model).
    pub fn model_info(&self) -> Option<serde_json::Value> {
        self.stages.model.read().as_ref().map(|s| s.to_json())
    }

    /// Changes runtime settings (`pipeline::SETTINGS`) for every environment, all or
    /// none, and publishes a `config_update` with what changed. Returns the changes.
    pub fn configure(
        &self,
        changes: &serde_json::Value,
        applied_by: &str,
    ) -> Result<serde_json::Value, AppError> {
        let obj = changes
            .as_object()
            .ok_or_else(|| AppError::InvalidConfig("settings must be an object".into()))?;
        let changed = self
            .stages
            .settings
            .write()
            .apply(obj)
            .map_err(AppError::InvalidConfig)?;
        if !changed.is_empty() {
            let fields: Vec<&String> = changed.keys().collect();
            self.server.publisher().publish(Event::new(
                EventType::ConfigUpdate,
                serde_json::json!({
                    "changed_fields": fields,
                    "new_values": changed,
                    "applied_by": applied_by,
                    "requires_restart": false,
                }),
                None,
            ));
        }
        Ok(serde_json::Value::Object(changed))
    }

    /// Stops the server and with it every environment and source (bounded to about two
    /// seconds; idempotent, see [`Server::stop`]).
    pub fn stop(&self) {
        self.server.stop();
    }

    /// Whether the server (and so every environment) runs.
    pub fn is_running(&self) -> bool {
        self.server.is_running()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use ndarray::Array3;
    use num_complex::Complex32;

    use super::*;
    use crate::csi::{CsiFormat, CsiFrame};
    use crate::server::{JwtKey, ServerError};

    fn start(performance_interval: Duration) -> App {
        let mut config = AppConfig::new(JwtKey::Hs256Secret(b"app-test".to_vec()));
        config.server.host = "127.0.0.1".into();
        config.server.port = 0;
        config.performance_interval = performance_interval;
        App::start(config).expect("the app starts on a free port")
    }

    fn frames(n: usize) -> Vec<CsiFrame> {
        (0..n)
            .map(|i| {
                let csi = Array3::from_shape_fn((1, 3, 30), |(_, r, s)| {
                    Complex32::new(1.0 + r as f32, (s as f32 * 0.1).sin())
                });
                CsiFrame::from_csi(1000.0 + i as f64 * 0.01, csi, CsiFormat::Injected)
            })
            .collect()
    }

    /// Polls `f` until it holds or five seconds pass.
    fn eventually(mut f: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn an_environment_is_started_by_the_app_and_known_to_the_server() {
        let app = start(Duration::ZERO);
        let unknown = app.inject("room_a", frames(1));
        assert!(
            matches!(&unknown, Err(AppError::UnknownEnvironment { id, known }) if id == "room_a" && known.is_empty()),
            "{unknown:?}"
        );
        assert!(app.server().environments().is_empty());

        app.add_environment("room_a", EnvironmentOptions::device(Some("esp32")))
            .unwrap();
        // A second add keeps the first environment (and its options).
        app.add_environment("room_a", EnvironmentOptions::default())
            .unwrap();
        assert_eq!(app.server().environments(), vec!["room_a".to_string()]);

        app.inject("room_a", frames(10)).unwrap();
        assert!(eventually(|| {
            app.environment_stats("room_a").unwrap()["frames"] == serde_json::json!(10)
        }));
        let stats = app.environment_stats("room_a").unwrap();
        assert_eq!(stats["device"], "esp32");

        app.stop();
        assert!(!app.is_running());
        let spec = crate::sim::build_spec("walk", Some(0), Some(1.0), None, None).unwrap();
        let after = app.simulate("room_a", spec, 1.0, false, None);
        assert!(
            matches!(after, Err(AppError::Server(ServerError::NotRunning))),
            "{after:?}"
        );
    }

    #[test]
    fn a_server_runs_a_bounded_number_of_environments() {
        let app = start(Duration::ZERO);
        for i in 0..crate::server::MAX_ENVIRONMENTS {
            app.add_environment(&format!("room_{i}"), EnvironmentOptions::default())
                .unwrap();
        }
        let e = app.add_environment("one_more", EnvironmentOptions::default());
        assert!(
            matches!(
                e,
                Err(AppError::InvalidArgument(
                    AppArgumentError::TooManyEnvironments(_)
                ))
            ),
            "{e:?}"
        );
        // A running one is still taken again (idempotent).
        app.add_environment("room_0", EnvironmentOptions::default())
            .unwrap();
        assert_eq!(
            app.server().environments().len(),
            crate::server::MAX_ENVIRONMENTS
        );
    }

    #[test]
    fn the_app_refuses_bad_arguments_itself() {
        let app = start(Duration::ZERO);
        let refused = |r: Result<(), AppError>| match r {
            Err(AppError::InvalidArgument(e)) => e,
            other => panic!("expected an argument error, got {other:?}"),
        };
        assert_eq!(
            refused(app.add_environment("", EnvironmentOptions::default())),
            AppArgumentError::EmptyEnvironmentId
        );
        for id in [
            "room\n1".to_string(),
            "r".repeat(MAX_ENVIRONMENT_ID_BYTES + 1),
        ] {
            assert!(matches!(
                refused(app.add_environment(&id, EnvironmentOptions::default())),
                AppArgumentError::EnvironmentId(_)
            ));
        }
        assert!(app.server().environments().is_empty());
        app.add_environment("room_c", EnvironmentOptions::default())
            .unwrap();
        let recording = std::env::temp_dir().join(format!("wdp-app-{}.dat", std::process::id()));
        std::fs::write(&recording, b"not read: the speed is refused first").unwrap();
        for speed in [-1.0, f64::NAN, f64::INFINITY, 1e-300, 1e-4] {
            let e = refused(app.replay("room_c", &recording, None, speed).map(|_| ()));
            assert!(matches!(e, AppArgumentError::Speed(_)));
            assert!(e.to_string().starts_with("speed must be 0"), "{e}");
            let spec = crate::sim::build_spec("walk", Some(0), Some(1.0), None, None).unwrap();
            let e = refused(app.simulate("room_c", spec, speed, false, None).map(|_| ()));
            assert!(matches!(e, AppArgumentError::Speed(_)));
        }
        std::fs::remove_file(&recording).unwrap();
        let missing = app.replay("room_c", &recording, None, 1.0);
        assert!(
            matches!(&missing, Err(AppError::RecordingNotFound(p)) if *p == recording),
            "{missing:?}"
        );
        for rate in [0.0, -5.0, 1000.5, f64::NAN] {
            let e = refused(app.set_model(None, rate));
            assert!(e.to_string().contains("inference rate"), "{e}");
        }
        app.set_model(None, 1000.0).unwrap();
        for timeout in [Duration::ZERO, Duration::from_secs(86_401)] {
            let e = refused(app.calibrate("room_c", 10.0, timeout).map(|_| ()));
            assert!(matches!(e, AppArgumentError::CalibrationTimeout(_)), "{e}");
        }
        app.stop();
    }

    #[test]
    fn csi_frames_take_one_frame_or_a_batch_spaced_at_100_hz_unless_timed() {
        let one = ndarray::ArrayD::<Complex32>::zeros(vec![1, 3, 30]);
        let frames = csi_frames(one.view(), None, 50.0).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].timestamp, 50.0);
        assert_eq!(frames[0].csi.shape(), &[1, 3, 30]);

        let batch = ndarray::ArrayD::<Complex32>::zeros(vec![3, 1, 3, 30]);
        let t: Vec<f64> = csi_frames(batch.view(), None, 50.0)
            .unwrap()
            .iter()
            .map(|f| f.timestamp)
            .collect();
        assert_eq!(t.len(), 3);
        assert!((t[0] - 49.98).abs() < 1e-9 && (t[1] - 49.99).abs() < 1e-9 && t[2] == 50.0);
        let timed = csi_frames(batch.view(), Some(&[1.0, 2.0, 4.0]), 50.0).unwrap();
        assert_eq!(timed[2].timestamp, 4.0);

        let flat = ndarray::ArrayD::<Complex32>::zeros(vec![30]);
        let e = csi_frames(flat.view(), None, 0.0).unwrap_err();
        assert_eq!(e, AppArgumentError::CsiDimensions { shape: vec![30] });
        assert!(e.to_string().contains("got 1 dimensions [30]"), "{e}");
        let empty = ndarray::ArrayD::<Complex32>::zeros(vec![0, 1, 3, 30]);
        assert_eq!(
            csi_frames(empty.view(), None, 0.0).unwrap_err(),
            AppArgumentError::CsiEmptyAxis(vec![0, 1, 3, 30])
        );
        let e = csi_frames(batch.view(), Some(&[1.0]), 0.0).unwrap_err();
        assert_eq!(e.to_string(), "1 timestamps for 3 frames");
    }

    #[test]
    fn the_monitor_reports_the_apps_environments_on_the_servers_bus() {
        let app = start(Duration::from_millis(50));
        app.add_environment("room_b", EnvironmentOptions::default())
            .unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel(64);
        app.server()
            .set_callback_sink(vec![EventType::PerformanceUpdate], Some(tx));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = None;
        while let Ok((t, event)) =
            rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            assert_eq!(t, EventType::PerformanceUpdate);
            if event.data["metrics"]["environment_queues"]
                .get("room_b")
                .is_some()
            {
                seen = Some(event);
                break;
            }
        }
        let event = seen.expect("a performance_update naming room_b within 5 s");
        assert_eq!(event.data["metrics"]["environment_queues"]["room_b"], 0);
        assert_eq!(event.data["metrics"]["connections"], 0);
        app.stop();
    }

    #[test]
    fn configure_applies_all_or_nothing_and_announces_the_change() {
        let app = start(Duration::ZERO);
        let (tx, rx) = std::sync::mpsc::sync_channel(64);
        app.server()
            .set_callback_sink(vec![EventType::ConfigUpdate], Some(tx));
        let refused = app.configure(&serde_json::json!([1]), "test");
        assert!(
            matches!(refused, Err(AppError::InvalidConfig(_))),
            "{refused:?}"
        );
        // One valid change and one invalid: neither is applied.
        let mixed = app.configure(
            &serde_json::json!({"detection.max_persons": 3, "detection.confidence_threshold": 7}),
            "test",
        );
        assert!(
            matches!(mixed, Err(AppError::InvalidConfig(_))),
            "{mixed:?}"
        );
        assert!(rx.try_recv().is_err(), "a refused change announces nothing");
        let changed = app
            .configure(&serde_json::json!({"detection.max_persons": 3}), "test")
            .unwrap();
        assert_eq!(changed, serde_json::json!({"detection.max_persons": 3}));
        let (t, event) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(t, EventType::ConfigUpdate);
        assert_eq!(
            event.data["changed_fields"],
            serde_json::json!(["detection.max_persons"])
        );
        assert_eq!(event.data["applied_by"], "test");
        // The same value again changes nothing and announces nothing.
        let same = app
            .configure(&serde_json::json!({"detection.max_persons": 3}), "test")
            .unwrap();
        assert_eq!(same, serde_json::json!({}));
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        app.stop();
    }
}
