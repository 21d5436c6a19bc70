//! Load client for the end-to-end load benchmark (`benches/load.py` drives it).
//!
//! Opens N WebSocket connections with mixed subscriptions, waits until every one is
//! connected and subscribed, lets the system warm up, then counts every message that
//! arrives during a measurement window: messages per type, bytes, gaps in each
//! connection's `metadata.sequence` (a gap is a message the server dropped for that
//! client), and the CSI-to-client latency of every `pose_data` (receipt time minus
//! `data.metadata.source_time`; same machine, same clock). Prints one JSON line.
//!
//! Subscriptions: client i < P sends the i-th `--probe` (P of them; their pose_data is
//! counted per environment); the others take the `--sub` patterns round-robin. In a pattern, `{env}` becomes `env_<i mod M>` for client i and
//! `{env2}` becomes `env_<(7 i) mod M>` (M = `--envs`).
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use tokio::sync::watch;
use yawc::{Frame, OpCode, Options, WebSocket};

struct Args {
    url: String,
    clients: usize,
    envs: usize,
    subs: Vec<String>,
    probes: Vec<String>,
    warmup_s: f64,
    duration_s: f64,
    connect_timeout_s: f64,
}

fn parse_args() -> Args {
    let mut a = Args {
        url: String::new(),
        clients: 10,
        envs: 1,
        subs: Vec::new(),
        probes: Vec::new(),
        warmup_s: 2.0,
        duration_s: 10.0,
        connect_timeout_s: 60.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--url" => a.url = v,
            "--clients" => a.clients = v.parse().expect("--clients N"),
            "--envs" => a.envs = v.parse().expect("--envs M"),
            "--sub" => a.subs.push(v),
            "--probe" => a.probes.push(v),
            "--warmup" => a.warmup_s = v.parse().expect("--warmup S"),
            "--duration" => a.duration_s = v.parse().expect("--duration S"),
            "--connect-timeout" => a.connect_timeout_s = v.parse().expect("--connect-timeout S"),
            _ => {}
        }
    }
    assert!(!a.url.is_empty(), "--url is required");
    assert!(!a.subs.is_empty(), "give --sub");
    a
}

/// The measurement window, set once every client is ready and the warm-up is over.
static WINDOW: OnceLock<(Instant, Instant)> = OnceLock::new();

const TYPES: [&str; 13] = [
    "pose_data",
    "pose_data_trajectory",
    "tracking_update",
    "system_event",
    "hardware_event",
    "activity_event",
    "occupancy_update",
    "performance_update",
    "config_update",
    "analytics_stream",
    "heartbeat",
    "disconnect",
    "other",
];

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// The envelope's type: the server writes `type` first.
fn msg_type(payload: &[u8]) -> usize {
    const KEY: &[u8] = b"{\"type\":\"";
    if !payload.starts_with(KEY) {
        return TYPES.len() - 1;
    }
    let rest = &payload[KEY.len()..];
    let end = rest.iter().position(|&b| b == b'"').unwrap_or(0);
    let name = &rest[..end];
    TYPES
        .iter()
        .position(|t| t.as_bytes() == name)
        .unwrap_or(TYPES.len() - 1)
}

/// The number after `key` (searched from the end when `last`).
fn number_after(payload: &[u8], key: &[u8], last: bool) -> Option<f64> {
    let at = if last {
        rfind(payload, key)?
    } else {
        find(payload, key)?
    } + key.len();
    let digits: Vec<u8> = payload[at..]
        .iter()
        .copied()
        .take_while(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'e' | b'E' | b'+'))
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

fn string_after<'a>(payload: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let at = find(payload, key)? + key.len();
    let end = payload[at..].iter().position(|&b| b == b'"')?;
    Some(&payload[at..at + end])
}

/// `LOAD_CLIENT_SLOW_MS`: print every pose_data later than this (for looking into tails).
fn slow_ms() -> Option<f64> {
    static SLOW: OnceLock<Option<f64>> = OnceLock::new();
    *SLOW.get_or_init(|| std::env::var("LOAD_CLIENT_SLOW_MS").ok()?.parse().ok())
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[derive(Default)]
struct Report {
    connected: bool,
    counts: [u64; TYPES.len()],
    bytes: u64,
    latencies_us: Vec<u32>,
    seq_gaps: u64,
    /// pose_data per environment (probe clients only).
    per_env: BTreeMap<String, u64>,
    closed_early: bool,
    disconnect_reason: Option<String>,
}

async fn one_client(
    url: String,
    subscribe: String,
    probe: bool,
    ready: tokio::sync::mpsc::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) -> Report {
    let mut report = Report::default();
    let opts = Options::default()
        .without_compression()
        .with_max_payload_read(16 << 20);
    let mut ws = match WebSocket::connect(url.parse().unwrap())
        .with_options(opts)
        .await
    {
        Ok(ws) => ws,
        Err(e) => {
            eprintln!("connect failed: {e}");
            let _ = ready.send(false).await;
            return report;
        }
    };
    report.connected = true;
    let _ = ws.send(Frame::text(subscribe)).await;
    // Ready once the subscription is acknowledged.
    let mut acked = false;
    let mut last_seq: Option<u64> = None;
    loop {
        let frame = tokio::select! {
            f = ws.next() => match f {
                Some(f) => f,
                None => { report.closed_early = true; break; }
            },
            _ = stop.changed() => break,
        };
        if frame.opcode() != OpCode::Text {
            continue;
        }
        let payload = frame.payload();
        let kind = msg_type(payload);
        if let Some(seq) = number_after(payload, b"\"sequence\":", true) {
            let seq = seq as u64;
            let in_window = WINDOW
                .get()
                .is_some_and(|(start, end)| (*start..*end).contains(&Instant::now()));
            if let Some(prev) = last_seq {
                if in_window && seq > prev + 1 {
                    report.seq_gaps += seq - prev - 1;
                }
            }
            last_seq = Some(seq);
        }
        if !acked && payload.starts_with(b"{\"type\":\"ack\"") {
            acked = true;
            let _ = ready.send(true).await;
            continue;
        }
        if !acked && payload.starts_with(b"{\"type\":\"error\"") {
            eprintln!("subscribe refused: {}", String::from_utf8_lossy(payload));
            let _ = ready.send(false).await;
            return report;
        }
        if TYPES[kind] == "disconnect" {
            report.disconnect_reason = string_after(payload, b"\"reason\":\"")
                .map(|r| String::from_utf8_lossy(r).into_owned());
        }
        let Some((start, end)) = WINDOW.get() else {
            continue;
        };
        let now = Instant::now();
        if now < *start {
            continue;
        }
        if now >= *end {
            break;
        }
        report.counts[kind] += 1;
        report.bytes += payload.len() as u64;
        if TYPES[kind] == "pose_data" {
            if let Some(t) = number_after(payload, b"\"source_time\":", false) {
                let lat_us = ((unix_now() - t) * 1e6).max(0.0);
                if let Some(ms) = slow_ms() {
                    if lat_us > ms * 1e3 {
                        eprintln!(
                            "slow {:.1} ms at +{:.3} s: {}",
                            lat_us / 1e3,
                            now.duration_since(*start).as_secs_f64(),
                            String::from_utf8_lossy(
                                string_after(payload, b"\"environment_id\":\"").unwrap_or(b"?")
                            )
                        );
                    }
                }
                report.latencies_us.push(lat_us.min(u32::MAX as f64) as u32);
            }
            if probe {
                if let Some(env) = string_after(payload, b"\"environment_id\":\"") {
                    *report
                        .per_env
                        .entry(String::from_utf8_lossy(env).into_owned())
                        .or_default() += 1;
                }
            }
        }
    }
    if !acked {
        let _ = ready.send(false).await;
    }
    report
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn json_f(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "null".into()
    }
}

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(false);
        let (tx, mut rx) = tokio::sync::mpsc::channel(args.clients.max(1));
        let mut handles = Vec::with_capacity(args.clients);
        for i in 0..args.clients {
            let p = args.probes.len();
            let (sub, probe) = if i < p {
                (args.probes[i].clone(), true)
            } else {
                (args.subs[(i - p) % args.subs.len()].clone(), false)
            };
            let m = args.envs.max(1);
            let sub = sub
                .replace("{env}", &format!("env_{}", i % m))
                .replace("{env2}", &format!("env_{}", (7 * i) % m));
            handles.push(tokio::spawn(one_client(
                args.url.clone(),
                sub,
                probe,
                tx.clone(),
                stop_rx.clone(),
            )));
            // Pace connection setup so the accept queue never overflows.
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        let deadline = Instant::now() + Duration::from_secs_f64(args.connect_timeout_s);
        let mut ready = 0;
        for _ in 0..args.clients {
            match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
                Ok(Some(true)) => ready += 1,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        println!("{{\"ready\":{ready}}}");
        let start = Instant::now() + Duration::from_secs_f64(args.warmup_s);
        let end = start + Duration::from_secs_f64(args.duration_s);
        let _ = WINDOW.set((start, end));
        tokio::time::sleep_until(end.into()).await;
        let _ = stop_tx.send(true);
        let mut all = Vec::new();
        let mut counts = [0u64; TYPES.len()];
        let (mut bytes, mut gaps, mut connected, mut closed_early) = (0u64, 0u64, 0usize, 0usize);
        let mut per_env: BTreeMap<String, u64> = BTreeMap::new();
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for h in handles {
            let r = h.await.unwrap();
            all.extend_from_slice(&r.latencies_us);
            for (c, n) in counts.iter_mut().zip(r.counts) {
                *c += n;
            }
            bytes += r.bytes;
            gaps += r.seq_gaps;
            connected += r.connected as usize;
            closed_early += r.closed_early as usize;
            if let Some(reason) = r.disconnect_reason {
                *reasons.entry(reason).or_default() += 1;
            }
            for (env, n) in r.per_env {
                *per_env.entry(env).or_default() += n;
            }
        }
        all.sort_unstable();
        let delivered: u64 = counts.iter().sum();
        let types: Vec<String> = TYPES
            .iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| format!("\"{t}\":{n}"))
            .collect();
        let envs: Vec<String> = per_env
            .iter()
            .map(|(e, n)| format!("\"{e}\":{n}"))
            .collect();
        let reasons: Vec<String> = reasons
            .iter()
            .map(|(r, n)| format!("\"{r}\":{n}"))
            .collect();
        println!(
            "{{\"clients\":{},\"connected\":{connected},\"ready\":{ready},\"closed_early\":{closed_early},\
             \"duration_s\":{:.3},\"delivered\":{delivered},\"msgs_per_s\":{:.1},\"bytes_per_s\":{:.0},\
             \"seq_gaps\":{gaps},\"pose_samples\":{},\"p50_ms\":{},\"p99_ms\":{},\"max_ms\":{},\
             \"types\":{{{}}},\"probe_per_env\":{{{}}},\"disconnects\":{{{}}}}}",
            args.clients,
            args.duration_s,
            delivered as f64 / args.duration_s,
            bytes as f64 / args.duration_s,
            all.len(),
            json_f(percentile(&all, 0.5)),
            json_f(percentile(&all, 0.99)),
            json_f(percentile(&all, 1.0)),
            types.join(","),
            envs.join(","),
            reasons.join(","),
        );
    });
}
