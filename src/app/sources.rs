//! The sources that feed environments: frames injected by the caller, recordings,
//! the simulator, ESP32 nodes over UDP or a serial port.
use std::net::SocketAddr;
use std::sync::Arc;

use super::App;
use super::{AppArgumentError, AppError};
use crate::csi::{CsiFormat, CsiFrame};
use crate::pipeline::{ReplayProgress, UdpStats};

impl App {
    /// Feeds frames into an environment, as a live source would. Waits while the
    /// environment's queue is full (never drops); call from outside the server's runtime.
    pub fn inject(&self, environment_id: &str, frames: Vec<CsiFrame>) -> Result<(), AppError> {
        self.inject_from(environment_id, None, frames)
    }

    /// As [`App::inject`], from the receiver named `receiver` (source `inject:NAME`; None:
    /// `inject`): several receivers of one room are several sources, each with its own
    /// sensor and, given its placement ([`App::set_source_geometry`]), its own link in
    /// the fused localizer. A name is 1-64 characters, none of them a control character.
    pub fn inject_from(
        &self,
        environment_id: &str,
        receiver: Option<&str>,
        frames: Vec<CsiFrame>,
    ) -> Result<(), AppError> {
        let source = match receiver {
            None => "inject".to_string(),
            Some(name) => {
                if name.is_empty()
                    || name.chars().count() > 64
                    || name.chars().any(char::is_control)
                {
                    return Err(
                        AppArgumentError::ReceiverName(name.chars().take(80).collect()).into(),
                    );
                }
                format!("inject:{name}")
            }
        };
        let env = self.pipeline(environment_id)?;
        for frame in frames {
            env.tx
                .blocking_send(crate::pipeline::Input::Frame {
                    source: source.clone(),
                    frame,
                    oracle: None,
                })
                .map_err(|_| AppError::stopped())?;
        }
        Ok(())
    }

    /// Replays a recording into an environment; `speed` 1.0 is real time, 0 as fast as
    /// the environment takes it (a negative or non-finite speed is refused, as is a path
    /// that is not a file).
    pub fn replay(
        &self,
        environment_id: &str,
        path: &std::path::Path,
        format: Option<CsiFormat>,
        speed: f64,
    ) -> Result<Arc<ReplayProgress>, AppError> {
        check_speed(speed)?;
        if !path.is_file() {
            return Err(AppError::RecordingNotFound(path.to_path_buf()));
        }
        let env = self.pipeline(environment_id)?;
        let rt = self.server.live_handle()?;
        Ok(crate::pipeline::spawn_replay(
            rt,
            path.to_path_buf(),
            format,
            speed,
            env.tx,
        ))
    }

    /// Runs a simulator scenario as a live source of an environment (`speed` as for
    /// replays; `repeat` starts the next run with the next seed when one ends). With
    /// `oracle`, detections made from the ground truth under that noise model feed the
    /// environment's tracking and analytics (`pipeline::Oracle`).
    pub fn simulate(
        &self,
        environment_id: &str,
        spec: crate::sim::Spec,
        speed: f64,
        repeat: bool,
        oracle: Option<crate::track::synth::NoiseModel>,
    ) -> Result<Arc<ReplayProgress>, AppError> {
        check_speed(speed)?;
        let env = self.pipeline(environment_id)?;
        let rt = self.server.live_handle()?;
        Ok(crate::pipeline::spawn_simulation(
            rt, spec, speed, repeat, oracle, env.tx,
        ))
    }

    /// Listens for ESP32 UDP frames on `addr`, routing node ids to environments.
    pub fn listen_udp(
        &self,
        addr: SocketAddr,
        routes: std::collections::HashMap<u16, String>,
    ) -> Result<(SocketAddr, Arc<UdpStats>), AppError> {
        self.listen_udp_routes(addr, routes, Default::default(), Default::default())
    }

    /// Listens on `addr` for WDPC and RuView frames (routed by node id) and `CSI_DATA`
    /// lines (routed by sender, `"ip"` or `"ip:port"`, else by their MAC field).
    pub fn listen_udp_routes(
        &self,
        addr: SocketAddr,
        nodes: std::collections::HashMap<u16, String>,
        macs: std::collections::HashMap<String, String>,
        senders: std::collections::HashMap<String, String>,
    ) -> Result<(SocketAddr, Arc<UdpStats>), AppError> {
        use crate::pipeline::{normalize_mac, Route, UdpRoutes};
        let route = |env: String| -> Result<Route, AppError> {
            let tx = self.pipeline(&env)?.tx;
            Ok(Route {
                environment: env,
                tx,
            })
        };
        let mut table = UdpRoutes::default();
        for (node, env) in nodes {
            table.nodes.insert(node, route(env)?);
        }
        for (mac, env) in macs {
            let key = normalize_mac(&mac).ok_or_else(|| {
                AppError::InvalidConfig(format!(
                    "{mac:?} is not a MAC address (six hex octets, e.g. A4:CF:12:13:93:D5)"
                ))
            })?;
            table.macs.insert(key, route(env)?);
        }
        for (sender, env) in senders {
            let key = match (
                sender.parse::<std::net::IpAddr>(),
                sender.parse::<SocketAddr>(),
            ) {
                (Ok(ip), _) => ip.to_string(),
                (_, Ok(sa)) => sa.to_string(),
                _ => {
                    return Err(AppError::InvalidConfig(format!(
                        "sender {sender:?} is not an IP address or ip:port"
                    )))
                }
            };
            table.senders.insert(key, route(env)?);
        }
        let rt = self.server.live_handle()?;
        rt.block_on(crate::pipeline::spawn_udp(
            addr,
            table,
            self.server.publisher().sink(),
        ))
        .map_err(|source| AppError::UdpBind {
            addr: addr.to_string(),
            source,
        })
    }

    /// Reads `CSI_DATA` lines from the serial port `path` at `baud` into an
    /// environment (`docs/esp32-live.md`); `mac` keeps one transmitter's lines only.
    pub fn listen_serial(
        &self,
        path: &std::path::Path,
        baud: u32,
        environment_id: &str,
        mac: Option<String>,
    ) -> Result<crate::pipeline::SerialHandle, AppError> {
        let env = self.pipeline(environment_id)?;
        self.server.live_handle()?;
        crate::pipeline::spawn_serial(
            path.to_path_buf(),
            baud,
            mac,
            environment_id.to_string(),
            env.tx,
            self.server.publisher().sink(),
        )
        .map_err(|e| match e {
            crate::pipeline::SerialError::Open { port, source } => {
                AppError::Serial { port, source }
            }
            other => AppError::InvalidConfig(other.to_string()),
        })
    }
}

/// Replay and simulation speeds: 0 (as fast as the environment takes frames) or more.
/// The slowest replay or simulation speed taken (a thousandth of real time): a frame a
/// second of source time then waits under 17 minutes; far slower ones waited longer
/// than a `Duration` holds, which panicked the source's thread.
pub const MIN_SPEED: f64 = 1e-3;

fn check_speed(speed: f64) -> Result<(), AppArgumentError> {
    if speed.is_finite() && (speed == 0.0 || speed >= MIN_SPEED) {
        Ok(())
    } else {
        Err(AppArgumentError::Speed(speed))
    }
}

/// The spacing assumed between the frames of an injected batch without timestamps: the
/// model contract's 100 Hz.
pub const DEFAULT_PACKET_INTERVAL_S: f64 = 0.01;

/// Frames for [`App::inject`] from CSI `(n_tx, n_rx, n_sub)` (one frame) or
/// `(n, n_tx, n_rx, n_sub)` (a batch). Without `timestamps` a batch is taken as
/// consecutive packets [`DEFAULT_PACKET_INTERVAL_S`] apart ending at `now` (one frame:
/// `now`), so the model stage sees their true spacing; with them, one per frame.
pub fn csi_frames(
    csi: ndarray::ArrayViewD<'_, num_complex::Complex32>,
    timestamps: Option<&[f64]>,
    now: f64,
) -> Result<Vec<CsiFrame>, AppArgumentError> {
    let shape = csi.shape().to_vec();
    let batch = match csi.ndim() {
        3 => csi
            .insert_axis(ndarray::Axis(0))
            .into_dimensionality::<ndarray::Ix4>(),
        4 => csi.into_dimensionality::<ndarray::Ix4>(),
        _ => return Err(AppArgumentError::CsiDimensions { shape }),
    }
    .map_err(|_| AppArgumentError::CsiDimensions {
        shape: shape.clone(),
    })?;
    let n = batch.shape()[0];
    if shape.contains(&0) {
        return Err(AppArgumentError::CsiEmptyAxis(shape));
    }
    if let Some(ts) = timestamps {
        if ts.len() != n {
            return Err(AppArgumentError::TimestampCount {
                timestamps: ts.len(),
                frames: n,
            });
        }
    }
    Ok(batch
        .outer_iter()
        .enumerate()
        .map(|(i, f)| {
            let t = timestamps.map_or(now - (n - 1 - i) as f64 * DEFAULT_PACKET_INTERVAL_S, |ts| {
                ts[i]
            });
            CsiFrame::from_csi(t, f.to_owned(), CsiFormat::Injected)
        })
        .collect())
}
