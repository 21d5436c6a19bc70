//! Environments: starting them, and what is asked of one running (room size,
//! calibration, counters).
use std::time::Duration;

use super::error::MAX_ENVIRONMENT_ID_BYTES;
use super::App;
use super::{AppArgumentError, AppError};
use crate::pipeline::EnvironmentHandle;

/// How an environment is started ([`App::add_environment`]). Every field has a default,
/// so a new one is one more field here and in the call that reads it.
#[derive(Clone, Debug, Default)]
pub struct EnvironmentOptions {
    /// The device profile of the CSI it will receive (`None`: told by the CSI itself).
    pub device: Option<String>,
}

impl EnvironmentOptions {
    /// Options naming the device profile.
    pub fn device(device: Option<&str>) -> Self {
        EnvironmentOptions {
            device: device.map(String::from),
        }
    }
}

impl App {
    /// Starts an environment (idempotent), so clients may subscribe to it and sources
    /// may feed it. A second call with the same id keeps the running environment (and
    /// its first options). An empty id is refused.
    pub fn add_environment(&self, id: &str, options: EnvironmentOptions) -> Result<(), AppError> {
        if id.is_empty() {
            return Err(AppArgumentError::EmptyEnvironmentId.into());
        }
        if id.len() > MAX_ENVIRONMENT_ID_BYTES || id.chars().any(char::is_control) {
            let shown: String = id.chars().take(40).collect();
            let more = if shown.len() < id.len() { "..." } else { "" };
            return Err(AppArgumentError::EnvironmentId(format!("{shown:?}{more}")).into());
        }
        // An unknown name was taken and meant nothing (no band for the sensor, no
        // wavelength for the localizer), silently.
        if let Some(d) = options.device.as_deref() {
            if !crate::sim::device::DEVICE_NAMES.contains(&d) {
                return Err(AppArgumentError::UnknownDevice(d.to_string()).into());
            }
        }
        let mut pipelines = self.stages.pipelines.lock();
        if !pipelines.contains_key(id) {
            // Each runs a task, queues and per-room state: a bound on what a caller can
            // grow (the bus retains occupancy for as many).
            if pipelines.len() >= crate::server::MAX_ENVIRONMENTS {
                return Err(AppArgumentError::TooManyEnvironments(format!("{id:?}")).into());
            }
            let config = &self.config;
            let ctx = crate::pipeline::EnvironmentContext {
                publisher: self.server.publisher().sink(),
                settings: self.stages.settings.clone(),
                model: self.stages.model.clone(),
                stall_timeout: config.stall_timeout,
                queue_capacity: config.environment_queue,
            };
            let handle =
                EnvironmentHandle::spawn(self.server.handle(), id.to_string(), options.device, ctx);
            pipelines.insert(id.to_string(), handle);
        }
        drop(pipelines);
        self.server.register_environment(id);
        Ok(())
    }

    /// Tells an environment its room's floor size in metres (width, depth): the frame
    /// the model's normalized coordinates are scaled by (default
    /// [`crate::pipeline::DEFAULT_ROOM`]).
    pub fn set_room(&self, environment_id: &str, size: [f64; 2]) -> Result<(), AppError> {
        if !size.iter().all(|x| x.is_finite() && *x > 0.0) {
            return Err(AppError::InvalidConfig(format!(
                "room size must be two positive numbers of metres, got {size:?}"
            )));
        }
        self.send_input(environment_id, crate::pipeline::Input::RoomSize(size))
    }

    /// Tells an environment where its primary source's devices are (room, antennas,
    /// subcarriers), so the localizer places moving people ([`crate::sensing::localizer`]);
    /// `None` forgets it. A geometry that cannot localize is reported by a
    /// `system_event` (`localizer_unavailable`).
    pub fn set_geometry(
        &self,
        environment_id: &str,
        geometry: Option<crate::sensing::LinkGeometry>,
    ) -> Result<(), AppError> {
        self.send_input(
            environment_id,
            crate::pipeline::Input::Geometry(geometry.map(Box::new)),
        )
    }

    /// Where one source of `environment_id` is (several receivers of one room, each its
    /// own link): the environment fuses the maps of the sources whose links can place
    /// people, instead of the primary's alone (`src/pipeline/placing.rs`). `source` is
    /// the source id its frames carry (`inject:NAME`, `replay:PATH`, `udp:...`).
    pub fn set_source_geometry(
        &self,
        environment_id: &str,
        source: &str,
        geometry: crate::sensing::LinkGeometry,
    ) -> Result<(), AppError> {
        self.send_input(
            environment_id,
            crate::pipeline::Input::SourceGeometry {
                source: source.to_string(),
                geometry: Box::new(geometry),
            },
        )
    }

    /// Hands one input to an environment's task, waiting while its queue is full.
    fn send_input(
        &self,
        environment_id: &str,
        input: crate::pipeline::Input,
    ) -> Result<(), AppError> {
        let env = self.pipeline(environment_id)?;
        env.tx
            .blocking_send(input)
            // The environment's task ends only with the server's runtime.
            .map_err(|_| AppError::stopped())
    }

    /// Learns the empty room of `environment_id` over its next `seconds` of CSI (source
    /// time), for the sensor's presence and motion thresholds ([`crate::sensing`]). The
    /// room must be empty meanwhile; a calibration that sees motion is refused. Blocks
    /// until it ends, or `timeout` passes without it (no CSI arriving, say). The outcome is
    /// also published as a `system_event` (`calibration_complete` / `calibration_failed`).
    pub fn calibrate(
        &self,
        environment_id: &str,
        seconds: f64,
        timeout: Duration,
    ) -> Result<crate::sensing::Calibration, AppError> {
        if timeout.is_zero() || timeout > Duration::from_secs(86_400) {
            return Err(AppArgumentError::CalibrationTimeout(timeout.as_secs_f64()).into());
        }
        if !(seconds.is_finite() && (1.0..=3600.0).contains(&seconds)) {
            return Err(AppError::InvalidConfig(format!(
                "calibration seconds must be between 1 and 3600, not {seconds}"
            )));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send_input(
            environment_id,
            crate::pipeline::Input::Calibrate {
                seconds,
                reply: Some(tx),
            },
        )?;
        let outcome = self
            .server
            .handle()
            .block_on(async { tokio::time::timeout(timeout, rx).await });
        match outcome {
            Ok(Ok(Ok(c))) => Ok(c),
            Ok(Ok(Err(reason))) => Err(AppError::Calibration(reason)),
            Ok(Err(_)) => Err(AppError::Calibration(
                "the environment stopped before the calibration ended".into(),
            )),
            Err(_) => Err(AppError::Calibration(format!(
                "no calibration after {:.0} s: is CSI arriving in `{environment_id}`?",
                timeout.as_secs_f64()
            ))),
        }
    }

    /// Applies a saved calibration to `environment_id` (None: back to uncalibrated).
    pub fn set_calibration(
        &self,
        environment_id: &str,
        calibration: Option<crate::sensing::Calibration>,
    ) -> Result<(), AppError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send_input(
            environment_id,
            crate::pipeline::Input::SetCalibration {
                calibration,
                reply: Some(tx),
            },
        )?;
        match rx.blocking_recv() {
            Ok(r) => r.map_err(AppError::Calibration),
            Err(_) => Err(AppError::stopped()),
        }
    }

    pub(super) fn pipeline(&self, id: &str) -> Result<EnvironmentHandle, AppError> {
        let pipelines = self.stages.pipelines.lock();
        match pipelines.get(id) {
            Some(env) => Ok(env.clone()),
            None => {
                let mut known: Vec<String> = pipelines.keys().cloned().collect();
                known.sort();
                Err(AppError::UnknownEnvironment {
                    id: id.to_string(),
                    known,
                })
            }
        }
    }

    /// What an environment has seen: frames, rate, shape, and each source's health.
    pub fn environment_stats(&self, environment_id: &str) -> Result<serde_json::Value, AppError> {
        let env = self.pipeline(environment_id)?;
        let mut v = env.stats.lock().to_json();
        v["queue_length"] = env.queue_len().into();
        v["device"] = env.device.clone().into();
        Ok(v)
    }
}
