//! The UDP receiver for CSI streamed by ESP32 nodes. One socket takes three kinds of
//! datagram, told apart by their first bytes: our `WDPC` frame (`docs/udp-frame.md`),
//! RuView's raw CSI frame (`0xC5110001`, `csi::ruview`), and text holding one or more
//! `CSI_DATA` lines of ESP32-CSI-Tool / esp-csi (`csi::esp32`, `docs/esp32-live.md`).
//! WDPC and RuView frames are routed by their node id; `CSI_DATA` lines by the sender's
//! address, else by the line's `mac` field.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::json;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::environment::{unix_now, Input};
use crate::csi::esp32::{LineKind, LineParser};
use crate::csi::{ruview, udp, FrameMeta};
use crate::events::{Event, EventType, Publisher};

/// Counters of one UDP listener.
#[derive(Debug, Default)]
pub struct UdpStats {
    /// Datagrams received.
    pub datagrams: AtomicU64,
    /// Frames decoded and handed to an environment.
    pub frames: AtomicU64,
    /// Datagrams that did not decode (garbage, truncated, wrong version), and
    /// `CSI_DATA` lines that did not.
    pub bad: AtomicU64,
    /// Frames from node ids (or lines from senders and MACs) that map to no environment.
    pub unknown_node: AtomicU64,
    /// Datagrams that carry no CSI and are no error: text without a `CSI_DATA` line
    /// (forwarded boot logs) and RuView's other packets (vitals, features). Other lines
    /// beside `CSI_DATA` lines in one datagram are ignored without a count.
    pub skipped: AtomicU64,
    /// Frames dropped because the environment's queue was full (counted, never silent).
    pub dropped: AtomicU64,
    /// Why the last undecodable datagram or line did not decode.
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
pub(super) struct Report {
    last: Option<std::time::Instant>,
    datagrams: u64,
    senders: std::collections::HashSet<String>,
}

impl Report {
    /// Counts one occurrence; returns (datagrams, distinct senders) when a report is due.
    pub(super) fn note(&mut self, sender: &str) -> Option<(u64, usize)> {
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

/// One destination: an environment and its input queue.
#[derive(Clone)]
pub struct Route {
    /// The environment's id.
    pub environment: String,
    /// The environment's input queue.
    pub tx: mpsc::Sender<Input>,
}

/// Where a listener sends what it receives.
#[derive(Clone, Default)]
pub struct UdpRoutes {
    /// WDPC and RuView frames, by node id (one namespace for both).
    pub nodes: HashMap<u16, Route>,
    /// `CSI_DATA` lines by their `mac` field, as [`normalize_mac`] writes it.
    pub macs: HashMap<String, Route>,
    /// `CSI_DATA` lines by sender: `"ip:port"` (checked first) or `"ip"`.
    pub senders: HashMap<String, Route>,
}

impl UdpRoutes {
    fn environments(&self) -> Vec<String> {
        let mut envs: Vec<String> = (self.nodes.values())
            .chain(self.macs.values())
            .chain(self.senders.values())
            .map(|r| r.environment.clone())
            .collect();
        envs.sort();
        envs.dedup();
        envs
    }

    /// The route and source id of a `CSI_DATA` line from `from` with MAC field `mac`.
    fn line_route(&self, from: &SocketAddr, mac: &str) -> Option<(&Route, String)> {
        let exact = from.to_string();
        if let Some(r) = self.senders.get(&exact) {
            return Some((r, format!("udp:{exact}")));
        }
        let ip = from.ip().to_string();
        if let Some(r) = self.senders.get(&ip) {
            return Some((r, format!("udp:{ip}")));
        }
        let mac = normalize_mac(mac)?;
        let r = self.macs.get(&mac)?;
        Some((r, format!("udp:mac_{mac}")))
    }
}

/// A MAC address as routes key it: six hex octets, upper case, colon-separated
/// (`a4-cf-12-13-93-d5` and `A4:CF:12:13:93:D5` are the same). None if it is not one.
pub fn normalize_mac(mac: &str) -> Option<String> {
    let parts: Vec<&str> = mac.trim().split([':', '-']).collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    ok.then(|| parts.join(":").to_ascii_uppercase())
}

/// Whether a datagram is text (what a forwarder of serial output sends): no control
/// bytes but line ends, tabs and the escape of ESP-IDF's coloured logs.
fn is_text(d: &[u8]) -> bool {
    d.iter()
        .all(|&b| b >= 0x20 || matches!(b, b'\n' | b'\r' | b'\t' | 0x1b))
        && std::str::from_utf8(d).is_ok()
}

/// Line parsers kept per sender (a header line sets the layout of the rows after it);
/// past this many senders the table starts again rather than grow.
const PARSERS_KEPT: usize = 1024;

/// Binds `addr` and routes frames to environments (see [`UdpRoutes`]). Returns the
/// bound address (port 0 picks one) and the listener's counters. Bad datagrams and
/// lines are counted and reported as a hardware_event at most every 10 s, to the
/// environments this listener feeds only (never to other rooms' subscribers); they
/// never stop the listener.
pub async fn spawn_udp(
    addr: SocketAddr,
    routes: UdpRoutes,
    publisher: Publisher,
) -> std::io::Result<(SocketAddr, Arc<UdpStats>)> {
    let socket = UdpSocket::bind(addr).await?;
    let local = socket.local_addr()?;
    let stats = Arc::new(UdpStats::default());
    let s = stats.clone();
    let environments = routes.environments();
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
        let mut parsers: HashMap<SocketAddr, LineParser> = HashMap::new();
        loop {
            let (n, from) = match socket.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(_) => continue, // ICMP errors and the like: keep listening
            };
            s.datagrams.fetch_add(1, Ordering::Relaxed);
            let sender = from.to_string();
            let d = &buf[..n];
            let mut bad_one = |e: String| {
                // The error first: whoever sees the count can read what it was.
                *s.last_error.lock() = Some(e.clone());
                s.bad.fetch_add(1, Ordering::Relaxed);
                if let Some((datagrams, senders)) = bad.note(&sender) {
                    report(json!({"event": "bad_packets", "router_id": sender,
                                  "severity": "warning", "datagrams": datagrams,
                                  "senders": senders,
                                  "message": format!("undecodable datagram: {e}")}));
                }
            };
            // (node id, frame) of a binary frame, or the lines of a text datagram.
            let node_frame = if d.starts_with(&udp::MAGIC) {
                match udp::decode(d, &format!("udp:{sender}")) {
                    Ok(f) => (f.node_id, f.frame),
                    Err(e) => {
                        bad_one(e.to_string());
                        continue;
                    }
                }
            } else if let Some(magic) = ruview::family(d) {
                if magic != ruview::MAGIC_V1 {
                    // RuView's vitals and feature packets: no CSI in them.
                    s.skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                match ruview::decode(d, &format!("udp:{sender}"), unix_now()) {
                    Ok(f) => (f.node_id as u16, f.frame),
                    Err(e) => {
                        bad_one(e.to_string());
                        continue;
                    }
                }
            } else if is_text(d) {
                if parsers.len() >= PARSERS_KEPT && !parsers.contains_key(&from) {
                    parsers.clear();
                }
                let parser = parsers.entry(from).or_default();
                let mut csi_lines = 0;
                for (i, line) in d.split(|&b| b == b'\n').enumerate() {
                    let kind = parser.parse(line, i as u64 + 1);
                    if matches!(kind, LineKind::Frame(_) | LineKind::Bad(_)) {
                        csi_lines += 1;
                    }
                    let frame = match kind {
                        LineKind::Frame(f) => f,
                        LineKind::Header | LineKind::Other => continue,
                        LineKind::Bad(problem) => {
                            bad_one(format!("udp:{sender}, line {}: {problem}", i + 1));
                            continue;
                        }
                    };
                    let mac = match &frame.meta {
                        FrameMeta::Esp32(m) => m.mac.clone(),
                        _ => String::new(),
                    };
                    let Some((route, source)) = routes.line_route(&from, &mac) else {
                        s.unknown_node.fetch_add(1, Ordering::Relaxed);
                        if let Some((datagrams, senders)) = unknown.note(&sender) {
                            report(
                                json!({"event": "unknown_node", "router_id": format!("mac_{mac}"),
                                          "severity": "warning", "datagrams": datagrams, "senders": senders,
                                          "message": format!("CSI_DATA lines from {sender} (mac {mac}) are mapped to no environment")}),
                            );
                        }
                        continue;
                    };
                    deliver(&s, route, source, frame);
                }
                if csi_lines == 0 {
                    s.skipped.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            } else {
                bad_one(format!(
                    "udp:{sender}: {n} bytes starting {:02x?} are not a WDPC frame, a RuView \
                     frame or CSI_DATA text",
                    &d[..n.min(4)]
                ));
                continue;
            };
            let (node_id, frame) = node_frame;
            let Some(route) = routes.nodes.get(&node_id) else {
                s.unknown_node.fetch_add(1, Ordering::Relaxed);
                if let Some((datagrams, senders)) = unknown.note(&sender) {
                    report(
                        json!({"event": "unknown_node", "router_id": format!("node_{node_id}"),
                                  "severity": "warning", "datagrams": datagrams, "senders": senders,
                                  "message": format!("node {node_id} from {sender} is mapped to no environment")}),
                    );
                }
                continue;
            };
            deliver(&s, route, format!("udp:node_{node_id}"), frame);
        }
    });
    Ok((local, stats))
}

/// Hands a frame to its environment; a full queue drops it (counted, never silent).
fn deliver(s: &UdpStats, route: &Route, source: String, frame: crate::csi::CsiFrame) {
    match route.tx.try_send(Input::Frame {
        source,
        frame,
        oracle: None,
    }) {
        Ok(()) => s.frames.fetch_add(1, Ordering::Relaxed),
        Err(_) => s.dropped.fetch_add(1, Ordering::Relaxed),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_normalize_and_junk_is_refused() {
        assert_eq!(
            normalize_mac("a4-cf-12-13-93-d5").as_deref(),
            Some("A4:CF:12:13:93:D5")
        );
        assert_eq!(
            normalize_mac(" A4:CF:12:13:93:D5 ").as_deref(),
            Some("A4:CF:12:13:93:D5")
        );
        for junk in [
            "",
            "A4:CF:12:13:93",
            "A4:CF:12:13:93:D5:00",
            "G4:CF:12:13:93:D5",
            "A4CF121393D5",
        ] {
            assert_eq!(normalize_mac(junk), None, "{junk}");
        }
        assert!(is_text(b"CSI_DATA,1,2\r\n\x1b[0;32mI (1) boot\x1b[0m\n"));
        assert!(!is_text(b"WDPC\x01\x00"));
        assert!(!is_text(b"CSI_DATA \xff\xfe"));
    }
}
