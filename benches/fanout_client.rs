//! Load client for the fan-out benchmark (`benches/fanout.py` drives it).
//!
//! Opens N WebSocket connections, optionally subscribes each, then counts every message
//! that carries `"pub_ns":` and records publish-to-receipt latency (same machine, same
//! clock). It stops when every connection saw a message with `"end":true`, or at the
//! timeout, and prints one JSON line with the figures. A connection the server cuts as a
//! slow consumer (`disconnect`, reason `slow_consumer`) is counted as `cut`, and the
//! latency of the connections that were not cut is reported apart (`*_kept_ms`). With
//! `--resume 1` (our server) a cut connection comes back and sends `resume` with the last
//! sequence it saw, as a real client would; messages are counted once by their original
//! sequence (`replayed_from` on replays), and any seen twice are reported (`duplicates`).
//! With `--rcvbuf BYTES` each connection's receive buffer is set to that size before it
//! connects (a latency-minded client's choice: Linux otherwise grows it to tens of
//! megabytes, where seconds of messages wait unseen by any server).
//! With `--threads N` the connections are read by N runtime threads (default 1): one
//! thread reads 100 connections one after another, so the last message of an event is
//! timestamped after the other 99 were read, a wait no real client, on its own machine,
//! has (`docs/performance.md`, "Ninth pass").
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use yawc::{Frame, OpCode, Options, WebSocket};

struct Args {
    url: String,
    clients: usize,
    subscribe: Option<String>,
    timeout_s: f64,
    resume: bool,
    rcvbuf: u32,
    threads: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        url: String::new(),
        clients: 10,
        subscribe: None,
        timeout_s: 60.0,
        resume: false,
        rcvbuf: 0,
        threads: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--url" => a.url = v,
            "--clients" => a.clients = v.parse().expect("--clients N"),
            "--subscribe" => a.subscribe = Some(v),
            "--timeout" => a.timeout_s = v.parse().expect("--timeout S"),
            "--resume" => a.resume = v == "1",
            "--rcvbuf" => a.rcvbuf = v.parse().expect("--rcvbuf BYTES"),
            "--threads" => a.threads = v.parse().expect("--threads N"),
            _ => {} // cargo bench passes --bench
        }
    }
    assert!(!a.url.is_empty(), "--url is required");
    a
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// The integer after `"pub_ns":`, without parsing the rest of the message.
fn pub_ns(payload: &[u8]) -> Option<u64> {
    // Every server writes pub_ns last in `data`, so search from the end.
    int_after(payload, b"\"pub_ns\":")
}

/// The integer after the last `key` in the message's last 256 bytes (where every
/// server's `metadata` is): the load client must cost far less per message than the
/// servers it measures, and scanning 1.7 KB for a key that is absent (`replayed_from`)
/// was most of its time.
fn int_in_tail(payload: &[u8], key: &[u8]) -> Option<u64> {
    int_after(&payload[payload.len().saturating_sub(256)..], key)
}

/// The integer after the last `key` in the message.
fn int_after(payload: &[u8], key: &[u8]) -> Option<u64> {
    let mut at = payload.windows(key.len()).rposition(|w| w == key)? + key.len();
    while payload.get(at) == Some(&b' ') {
        at += 1;
    }
    let digits = payload[at..].iter().take_while(|b| b.is_ascii_digit());
    Some(digits.fold(0u64, |n, d| n * 10 + (d - b'0') as u64))
}

struct Report {
    latencies_us: Vec<u32>,
    first: Option<Instant>,
    last: Option<Instant>,
    ended: bool,
    cut: bool,
    resumes: usize,
    duplicates: usize,
}

/// The string after `"session_id":"` (a connection_status), if any.
fn session_id(payload: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"session_id\":\"";
    let at = payload.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let len = payload[at..].iter().position(|b| *b == b'"')?;
    Some(String::from_utf8_lossy(&payload[at..at + len]).into_owned())
}

type Ws = WebSocket<tokio::net::TcpStream>;

/// A WebSocket connection over a TCP socket whose receive buffer is `rcvbuf` bytes (0: the
/// kernel's autotuning).
async fn connect(url: &str, rcvbuf: u32) -> Result<Ws, String> {
    let parsed: url::Url = url.parse().map_err(|e| format!("{e}"))?;
    let addr = tokio::net::lookup_host((
        parsed.host_str().unwrap_or("127.0.0.1"),
        parsed.port().unwrap_or(80),
    ))
    .await
    .map_err(|e| e.to_string())?
    .next()
    .ok_or("no address")?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(|e| e.to_string())?;
    if rcvbuf > 0 {
        socket
            .set_recv_buffer_size(rcvbuf)
            .map_err(|e| e.to_string())?;
    }
    let stream = socket.connect(addr).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let opts = Options::default()
        .without_compression()
        .with_max_payload_read(16 << 20);
    WebSocket::handshake(parsed, stream, opts)
        .await
        .map_err(|e| e.to_string())
}

async fn one_client(
    url: String,
    subscribe: Option<String>,
    ready: tokio::sync::mpsc::Sender<()>,
    deadline: Instant,
    resume: bool,
    rcvbuf: u32,
) -> Report {
    let mut report = Report {
        latencies_us: Vec::new(),
        first: None,
        last: None,
        ended: false,
        cut: false,
        resumes: 0,
        duplicates: 0,
    };
    let mut ws = match connect(&url, rcvbuf).await {
        Ok(ws) => ws,
        Err(e) => {
            eprintln!("connect failed: {e}");
            let _ = ready.send(()).await;
            return report;
        }
    };
    if let Some(sub) = subscribe {
        let _ = ws.send(Frame::text(sub)).await;
    }
    let _ = ready.send(()).await;
    let (mut session, mut last_seq) = (None::<String>, 0u64);
    let mut seen = std::collections::HashSet::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(f)) => Some(f),
            Ok(None) => None,
            Err(_) => break,
        };
        let cut = match &frame {
            Some(f) if f.opcode() == OpCode::Text => {
                let p = f.payload();
                p.starts_with(b"{\"type\":\"disconnect\"")
                    && p.windows(15).any(|w| w == b"\"slow_consumer\"")
            }
            Some(_) => continue,
            None => true, // closed without a goodbye (one that did not fit a full socket)
        };
        if cut {
            report.cut = true;
            let Some(id) = session.clone().filter(|_| resume) else {
                break;
            };
            // Back on a new connection, from the last sequence seen.
            let Ok(mut again) = connect(&url, rcvbuf).await else {
                break;
            };
            let msg = format!(
                "{{\"type\":\"resume\",\"data\":{{\"session_id\":\"{id}\",\"last_sequence\":{last_seq}}}}}"
            );
            if again.send(Frame::text(msg)).await.is_err() {
                break;
            }
            ws = again;
            report.resumes += 1;
            continue;
        }
        let frame = frame.expect("a frame: None is a cut");
        let payload = frame.payload();
        if session.is_none() {
            session = session_id(payload);
        }
        let seq = int_in_tail(payload, b"\"sequence\":");
        if let Some(seq) = seq {
            last_seq = last_seq.max(seq);
        }
        if let Some(sent) = pub_ns(payload) {
            // Once per original sequence: a replay of what arrived before the cut is a
            // duplicate, not a delivery.
            if let Some(orig) = int_in_tail(payload, b"\"replayed_from\":").or(seq) {
                if !seen.insert(orig) {
                    report.duplicates += 1;
                    continue;
                }
            }
            // The end marker is not a measured message: it follows a pause.
            if payload.len() < 256 && payload.windows(6).any(|w| w == b"\"end\":") {
                report.ended = true;
                break;
            }
            let now = Instant::now();
            report.first.get_or_insert(now);
            report.last = Some(now);
            let lat = now_ns().saturating_sub(sent) / 1000;
            report.latencies_us.push(lat.min(u32::MAX as u64) as u32);
        }
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

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let deadline = Instant::now() + Duration::from_secs_f64(args.timeout_s);
        let (tx, mut rx) = tokio::sync::mpsc::channel(args.clients);
        let mut handles = Vec::with_capacity(args.clients);
        for _ in 0..args.clients {
            handles.push(tokio::spawn(one_client(
                args.url.clone(),
                args.subscribe.clone(),
                tx.clone(),
                deadline,
                args.resume,
                args.rcvbuf,
            )));
            // Pace connection setup so the accept queue never overflows.
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        for _ in 0..args.clients {
            rx.recv().await;
        }
        println!("{{\"ready\":true}}");
        let mut all = Vec::new();
        let mut kept = Vec::new();
        let (mut first, mut last, mut ended, mut cut) = (None::<Instant>, None::<Instant>, 0, 0);
        let (mut resumes, mut duplicates) = (0, 0);
        for h in handles {
            let r = h.await.unwrap();
            all.extend_from_slice(&r.latencies_us);
            if !r.cut {
                kept.extend_from_slice(&r.latencies_us);
            }
            cut += r.cut as usize;
            resumes += r.resumes;
            duplicates += r.duplicates;
            if let Some(f) = r.first {
                first = Some(first.map_or(f, |x| x.min(f)));
            }
            if let Some(l) = r.last {
                last = Some(last.map_or(l, |x| x.max(l)));
            }
            ended += r.ended as usize;
        }
        all.sort_unstable();
        kept.sort_unstable();
        let span = match (first, last) {
            (Some(f), Some(l)) => l.duration_since(f).as_secs_f64(),
            _ => 0.0,
        };
        println!(
            "{{\"clients\":{},\"ended\":{},\"cut\":{},\"resumes\":{},\"duplicates\":{},\"p50_kept_ms\":{:.3},\"p99_kept_ms\":{:.3},\"delivered\":{},\"span_s\":{:.3},\"msgs_per_s\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}}}",
            args.clients,
            ended,
            cut,
            resumes,
            duplicates,
            percentile(&kept, 0.5),
            percentile(&kept, 0.99),
            all.len(),
            span,
            if span > 0.0 { all.len() as f64 / span } else { 0.0 },
            percentile(&all, 0.5),
            percentile(&all, 0.99),
            percentile(&all, 1.0),
        );
    });
}
