//! The sources that feed environments: frames injected by the caller, recordings,
//! the simulator, ESP32 nodes over UDP or a serial port.
use std::net::SocketAddr;
use std::sync::Arc;

use super::App;
use crate::csi::{CsiFormat, CsiFrame};
use crate::pipeline::{ReplayProgress, UdpStats};
use crate::server::ServerError;

impl App {
    /// Feeds frames into an environment, as a live source would. Waits while the
    /// environment's queue is full (never drops); call from outside the server's runtime.
    pub fn inject(&self, environment_id: &str, frames: Vec<CsiFrame>) -> Result<(), ServerError> {
        let env = self.pipeline(environment_id)?;
        for frame in frames {
            env.tx
                .blocking_send(crate::pipeline::Input::Frame {
                    source: "inject".into(),
                    frame,
                    oracle: None,
                })
                .map_err(|_| ServerError::NotRunning)?;
        }
        Ok(())
    }

    /// Replays a recording into an environment; `speed` 1.0 is real time, 0 as fast as
    /// the environment takes it.
    pub fn replay(
        &self,
        environment_id: &str,
        path: &std::path::Path,
        format: Option<CsiFormat>,
        speed: f64,
    ) -> Result<Arc<ReplayProgress>, ServerError> {
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
    ) -> Result<Arc<ReplayProgress>, ServerError> {
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
    ) -> Result<(SocketAddr, Arc<UdpStats>), ServerError> {
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
    ) -> Result<(SocketAddr, Arc<UdpStats>), ServerError> {
        use crate::pipeline::{normalize_mac, Route, UdpRoutes};
        let route = |env: String| -> Result<Route, ServerError> {
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
                ServerError::InvalidConfig(format!(
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
                    return Err(ServerError::InvalidConfig(format!(
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
        .map_err(|source| ServerError::Bind {
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
    ) -> Result<crate::pipeline::SerialHandle, ServerError> {
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
                ServerError::Serial { port, source }
            }
            other => ServerError::InvalidConfig(other.to_string()),
        })
    }
}
