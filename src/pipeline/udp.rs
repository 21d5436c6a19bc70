//! The UDP receiver for CSI streamed by ESP32 nodes (`docs/udp-frame.md`).
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::json;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::environment::Input;
use crate::csi::udp;
use crate::events::{Event, EventType, Publisher};

/// Counters of one UDP listener.
#[derive(Debug, Default)]
pub struct UdpStats {
    pub datagrams: AtomicU64,
    pub frames: AtomicU64,
    /// Datagrams that did not decode (garbage, truncated, wrong version).
    pub bad: AtomicU64,
    /// Frames from node ids that map to no environment.
    pub unknown_node: AtomicU64,
    /// Frames dropped because the environment's queue was full (counted, never silent).
    pub dropped: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

/// Binds `addr` and routes each node's frames to its environment. Returns the bound
/// address (port 0 picks one) and the listener's counters. A bad datagram is counted and
/// reported once per sender as a hardware_event; it never stops the listener.
pub async fn spawn_udp(
    addr: SocketAddr,
    routes: HashMap<u16, (String, mpsc::Sender<Input>)>,
    publisher: Publisher,
) -> std::io::Result<(SocketAddr, Arc<UdpStats>)> {
    let socket = UdpSocket::bind(addr).await?;
    let local = socket.local_addr()?;
    let stats = Arc::new(UdpStats::default());
    let s = stats.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let mut warned: std::collections::HashSet<String> = Default::default();
        loop {
            let (n, from) = match socket.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(_) => continue, // ICMP errors and the like: keep listening
            };
            s.datagrams.fetch_add(1, Ordering::Relaxed);
            let sender = from.to_string();
            let decoded = match udp::decode(&buf[..n], &format!("udp:{sender}")) {
                Ok(d) => d,
                Err(e) => {
                    s.bad.fetch_add(1, Ordering::Relaxed);
                    *s.last_error.lock() = Some(e.to_string());
                    if warned.insert(format!("bad:{sender}")) {
                        publisher.publish(Event::new(
                            EventType::HardwareEvent,
                            json!({"event": "bad_packets", "router_id": sender, "severity": "warning",
                                   "message": format!("undecodable datagram: {e}")}),
                            None,
                        ));
                    }
                    continue;
                }
            };
            let Some((env, tx)) = routes.get(&decoded.node_id) else {
                s.unknown_node.fetch_add(1, Ordering::Relaxed);
                if warned.insert(format!("node:{}", decoded.node_id)) {
                    publisher.publish(Event::new(
                        EventType::HardwareEvent,
                        json!({"event": "unknown_node", "router_id": format!("node_{}", decoded.node_id),
                               "severity": "warning",
                               "message": format!("node {} from {sender} is mapped to no environment", decoded.node_id)}),
                        None,
                    ));
                }
                continue;
            };
            let source = format!("udp:node_{}", decoded.node_id);
            match tx.try_send(Input::Frame {
                source,
                frame: decoded.frame,
                oracle: None,
            }) {
                Ok(()) => {
                    s.frames.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    s.dropped.fetch_add(1, Ordering::Relaxed);
                    let _ = env;
                }
            }
        }
    });
    Ok((local, stats))
}
