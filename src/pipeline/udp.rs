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

/// How often a listener may report undecodable datagrams or unknown nodes: junk from
/// fresh source ports once made one report per sender, enough to use up every
/// subscriber's hardware_event budget and crowd out a ward's real alerts.
const REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Distinct senders counted per report (past it: counted as datagrams only).
const SENDERS_COUNTED: usize = 256;

/// One kind of problem a listener reports, at most once per `REPORT_INTERVAL`, with what
/// happened since its last report.
#[derive(Default)]
struct Report {
    last: Option<std::time::Instant>,
    datagrams: u64,
    senders: std::collections::HashSet<String>,
}

impl Report {
    /// Counts one occurrence; returns (datagrams, distinct senders) when a report is due.
    fn note(&mut self, sender: &str) -> Option<(u64, usize)> {
        self.datagrams += 1;
        if self.senders.len() < SENDERS_COUNTED {
            self.senders.insert(sender.to_string());
        }
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < REPORT_INTERVAL)
        {
            return None;
        }
        self.last = Some(now);
        let out = (self.datagrams, self.senders.len());
        self.datagrams = 0;
        self.senders.clear();
        Some(out)
    }
}

/// Binds `addr` and routes each node's frames to its environment. Returns the bound
/// address (port 0 picks one) and the listener's counters. Bad datagrams are counted and
/// reported as a hardware_event at most every 10 s, to the environments this listener
/// feeds only (never to other rooms' subscribers); they never stop the listener.
pub async fn spawn_udp(
    addr: SocketAddr,
    routes: HashMap<u16, (String, mpsc::Sender<Input>)>,
    publisher: Publisher,
) -> std::io::Result<(SocketAddr, Arc<UdpStats>)> {
    let socket = UdpSocket::bind(addr).await?;
    let local = socket.local_addr()?;
    let stats = Arc::new(UdpStats::default());
    let s = stats.clone();
    let mut environments: Vec<String> = routes.values().map(|(e, _)| e.clone()).collect();
    environments.sort();
    environments.dedup();
    let report = move |data: serde_json::Value| {
        for env in &environments {
            publisher.publish(Event::new(
                EventType::HardwareEvent,
                data.clone(),
                Some(env.clone()),
            ));
        }
    };
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let (mut bad, mut unknown) = (Report::default(), Report::default());
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
                    if let Some((datagrams, senders)) = bad.note(&sender) {
                        report(json!({"event": "bad_packets", "router_id": sender,
                                      "severity": "warning", "datagrams": datagrams,
                                      "senders": senders,
                                      "message": format!("undecodable datagram: {e}")}));
                    }
                    continue;
                }
            };
            let Some((env, tx)) = routes.get(&decoded.node_id) else {
                s.unknown_node.fetch_add(1, Ordering::Relaxed);
                if let Some((datagrams, senders)) = unknown.note(&sender) {
                    report(
                        json!({"event": "unknown_node", "router_id": format!("node_{}", decoded.node_id),
                                  "severity": "warning", "datagrams": datagrams, "senders": senders,
                                  "message": format!("node {} from {sender} is mapped to no environment", decoded.node_id)}),
                    );
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
