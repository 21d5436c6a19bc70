"""Fan-out benchmark: our server against a plain Python ``websockets`` server and a Node
``ws`` 8 server, same load, one run.

Each run starts one server in its own process, publishing the same pose-frame payload at a
fixed rate, and a Rust load client (benches/fanout_client.rs) with N connections that
counts delivered messages and publish-to-receipt latency. Every server serializes each
event once and sends it to every client; ours adds per-connection metadata (sequence,
client id) and the subscription machinery, the baselines broadcast identical bytes.

Node's ``ws`` is installed by this script with npm into a cache directory
(``~/.cache/wifi-densepose-bench/node``), never a dependency of the project; without
node and npm that column is skipped, said so. ``--servers raw`` adds the floor: a server
that only frames each event once and sends it to every socket (no library, one writer
thread per core), what the machine and the load client allow any server.

    python benches/fanout.py --fanout-rate 1000  # the README's table
    python benches/fanout.py --quick             # smaller, for a smoke run
    python benches/fanout.py --servers ours,node --scenarios 100
    python benches/fanout.py --servers raw,node,ours --scenarios 100 --client-threads 2

Nothing here is a test: figures depend on the machine. The ratios are the point.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "target" / "release" / "examples" / "fanout_client"
NODE_SERVER = Path(__file__).resolve().parent / "fanout_node.js"
NODE_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wifi-densepose-bench" / "node"


def pose_payload(frame_id: int) -> dict:
    """A realistic pose_data frame (about 1.7 KB of JSON): one person, 17 keypoints."""
    names = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
             "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
             "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]
    return {
        "frame_id": frame_id,
        "environment_id": "room_001",
        "processing_time_ms": 4.2,
        "persons": [{
            "person_id": 1, "track_id": 7, "confidence": 0.87,
            "bounding_box": {"x": 120, "y": 80, "width": 180, "height": 320},
            "keypoints": [{"name": n, "x": 200 + i, "y": 90 + 2 * i, "confidence": 0.9,
                           "visible": True} for i, n in enumerate(names)],
            "activity": {"type": "walking", "confidence": 0.78},
        }],
        "metadata": {"model_version": "bench", "csi_quality": 0.85, "frame_rate": 30.0},
    }


def publish_schedule(rate: float, duration: float):
    """Yields (index, seconds to sleep first) on an absolute schedule: no drift."""
    start = time.perf_counter()
    n = int(rate * duration)
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        yield i, max(delay, 0.0)


# -- servers -------------------------------------------------------------------------------
def serve_ours(a: argparse.Namespace) -> None:
    import re

    import wifi_densepose as wdp

    # No bound on the alert queue's length: the bound under test is alert_max_wait_s, the
    # longest an alert may wait before its client is cut (it can resume).
    # The resume log holds the whole run, so a client cut and resumed loses nothing; every
    # client shares one token subject, so the per-subject cap on resumable sessions is
    # raised to the client count (by default 64 per subject).
    config = {"alert_queue_capacity": 1_000_000, "permessage_deflate": False,
              "heartbeat_timeout_s": 600.0, "alert_history": int(a.rate * a.duration) + 16,
              "max_detached_per_subject": max(a.clients, 64),
              "max_detached_sessions": max(a.clients, 1024)}
    if a.alert_max_wait > 0:
        config["alert_max_wait_s"] = a.alert_max_wait
    if a.send_buffer > 0:
        config["socket_send_buffer_bytes"] = a.send_buffer
    if a.lag_ping_interval >= 0:
        config["lag_ping_interval_s"] = a.lag_ping_interval
    if a.lag_window > 0:
        config["lag_window_messages"] = a.lag_window
    with wdp.Server(config=config) as s:
        s.add_environment("room_001")
        print(f"{s.url}?token={s.issue_token('bench')}", flush=True)
        while True:  # every client connected and subscribed
            m = re.search(r"^wdp_client_messages_total (\d+)$", s.metrics(), re.MULTILINE)
            if m and int(m.group(1)) >= a.clients:
                break
            time.sleep(0.02)
        time.sleep(0.3)
        wall, cpu = [], []  # the publish call itself: where a publisher's time goes
        for i, delay in publish_schedule(a.rate, a.duration):
            if delay:
                time.sleep(delay)
            data = pose_payload(i)
            data["pub_ns"] = time.time_ns()
            t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
            s.publish(a.event, data, "room_001")
            wall.append(time.perf_counter_ns() - t0)
            cpu.append(time.thread_time_ns() - c0)
        time.sleep(0.5)
        trace(s, wall, cpu)
        s.publish(a.event, {"end": True, "pub_ns": time.time_ns()}, "room_001")
        time.sleep(a.drain)


def trace(server, wall: list[int], cpu: list[int]) -> None:
    """Prints (stderr) the publish call's wall and CPU time and the server's own
    publish-to-write histogram: the server's part of the latency the client measures."""
    def pct(xs: list[int], p: float) -> float:
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(len(xs) * p))] / 1e3 if xs else float("nan")

    hist, lag, counters = {}, {}, {}
    for line in server.metrics().splitlines():
        for prefix, into in (("wdp_delivery_latency_seconds_bucket", hist),
                             ("wdp_delivery_lag_seconds_bucket", lag)):
            if line.startswith(prefix):
                le = line.split('le="')[1].split('"')[0]
                into[le] = int(line.rsplit(" ", 1)[1])
        if line.startswith(("wdp_publisher_paced_total ", "wdp_frames_shed_total ",
                            "wdp_slow_consumer_disconnects_total ", "wdp_lag_cuts_total ",
                            "wdp_clients_behind_total ")):
            name, value = line.split()
            counters[name] = int(value)
    # The ping round trips (builds that have them): a client's lag through every buffer.
    print(json.dumps({"publish_wall_us": [pct(wall, 0.5), pct(wall, 0.99)],
                      "publish_cpu_us": [pct(cpu, 0.5), pct(cpu, 0.99)],
                      "publish_to_write_cumulative": hist, "ping_lag_cumulative": lag,
                      **counters}),
          file=sys.stderr, flush=True)


def serve_python(a: argparse.Namespace) -> None:
    import websockets

    async def main() -> None:
        conns: set = set()

        async def handler(ws):
            conns.add(ws)
            try:
                await ws.wait_closed()
            finally:
                conns.discard(ws)

        async with websockets.serve(handler, "127.0.0.1", 0, compression=None,
                                    max_queue=None, ping_interval=None) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            print(f"ws://127.0.0.1:{port}/", flush=True)
            while len(conns) < a.clients:
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
            start = time.perf_counter()
            for i in range(int(a.rate * a.duration)):
                delay = start + i / a.rate - time.perf_counter()
                await asyncio.sleep(max(delay, 0))
                data = pose_payload(i)
                data["pub_ns"] = time.time_ns()
                msg = json.dumps({"type": a.event, "timestamp": "", "data": data, "metadata": {}},
                                 separators=(",", ":"))
                websockets.broadcast(conns, msg)
            await asyncio.sleep(0.5)
            end = json.dumps({"type": a.event, "data": {"end": True, "pub_ns": time.time_ns()}},
                             separators=(",", ":"))
            websockets.broadcast(conns, end)
            await asyncio.sleep(a.drain)

    asyncio.run(main())


def serve_raw(a: argparse.Namespace) -> None:
    """The floor: what any server must at least do. No WebSocket library, no event loop:
    each event is serialized and framed once, then written to every socket with one
    blocking ``send`` each, half the sockets from the publishing thread and half from a
    helper thread (one writer per core; Node's ``ws`` writes them all from one thread).
    What this measures is the machine's loopback and the load client. For the latency
    scenario only: a blocking send waits for a slow client, which is no server's policy."""
    import base64
    import hashlib
    import re
    import socket

    guid = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
    listener = socket.create_server(("127.0.0.1", 0), backlog=a.clients + 16)
    print(f"ws://127.0.0.1:{listener.getsockname()[1]}/", flush=True)
    conns = []
    while len(conns) < a.clients:
        conn, _ = listener.accept()
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                break
            request += chunk
        key = re.search(rb"(?im)^sec-websocket-key:\s*(\S+)", request)
        if key is None:
            conn.close()
            continue
        accept = base64.b64encode(hashlib.sha1(key.group(1) + guid).digest())
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns.append(conn)

    def frame(text: str) -> bytes:
        # A server's text frame: FIN, unmasked, 16-bit or 64-bit length as needed.
        body = text.encode()
        n = len(body)
        if n < 126:
            head = bytes([0x81, n])
        elif n < 1 << 16:
            head = bytes([0x81, 126]) + n.to_bytes(2, "big")
        else:
            head = bytes([0x81, 127]) + n.to_bytes(8, "big")
        return head + body

    import queue
    import threading

    due: queue.SimpleQueue = queue.SimpleQueue()
    done: queue.SimpleQueue = queue.SimpleQueue()

    def helper() -> None:
        while (msg := due.get()) is not None:
            for conn in conns[len(conns) // 2:]:
                conn.sendall(msg)
            done.put(True)

    threading.Thread(target=helper, daemon=True).start()
    time.sleep(0.3)
    for i, delay in publish_schedule(a.rate, a.duration):
        if delay:
            time.sleep(delay)
        data = pose_payload(i)
        data["pub_ns"] = time.time_ns()
        msg = frame(json.dumps({"type": a.event, "timestamp": "", "data": data, "metadata": {}},
                               separators=(",", ":")))
        # Half the sockets from this thread, half from a helper (send releases the GIL):
        # one writer per core, as ours has.
        due.put(msg)
        for conn in conns[: len(conns) // 2]:
            conn.sendall(msg)
        done.get()
    due.put(None)
    time.sleep(0.5)
    end = frame(json.dumps({"type": a.event, "data": {"end": True, "pub_ns": time.time_ns()}},
                           separators=(",", ":")))
    for conn in conns:
        conn.sendall(end)
    time.sleep(a.drain)


def node_ws() -> Path | None:
    """node_modules holding ``ws`` 8 (installed on first use), or None without node/npm."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return None
    if not (NODE_CACHE / "node_modules" / "ws" / "package.json").exists():
        NODE_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(NODE_CACHE), "--no-save",
                        "--no-package-lock", "--no-audit", "--no-fund", "ws@8"],
                       check=True, stdout=subprocess.DEVNULL)
    return NODE_CACHE / "node_modules"


# -- orchestration -------------------------------------------------------------------------
def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of a running process and all its threads (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan"), float("nan")
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def children_cpu_seconds() -> float:
    """User + system CPU time of every child this process has waited for."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_one(kind: str, clients: int, rate: float, duration: float, event: str,
            alert_max_wait: float, rcvbuf: int = 0, send_buffer: int = 0,
            lag_ping_interval: float = -1.0, lag_window: int = 0, client_threads: int = 1) -> dict:
    env = None
    if kind == "node":
        modules = node_ws()
        assert modules is not None
        payload = NODE_CACHE / "payload.json"
        payload.write_text(json.dumps(pose_payload(0), separators=(",", ":")))
        cmd = ["node", str(NODE_SERVER), str(payload), str(clients), str(rate), str(duration),
               event, "120"]
        env = {**os.environ, "NODE_PATH": str(modules)}
    else:
        cmd = [sys.executable, __file__, f"serve-{kind}", "--clients", str(clients), "--rate",
               str(rate), "--duration", str(duration), "--event", event, "--drain", "120",
               "--alert-max-wait", str(alert_max_wait), "--send-buffer", str(send_buffer),
               "--lag-ping-interval", str(lag_ping_interval), "--lag-window", str(lag_window)]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    try:
        url = server.stdout.readline().strip()
        if not url:
            raise RuntimeError(f"{kind} server did not start")
        sub = None
        if kind == "ours":
            spec = {"event_type": event}
            if event == "pose_data":
                spec["quality"] = "high"
            sub = json.dumps({"type": "subscribe", "data": {"subscriptions": [spec]}})
        ccmd = [str(CLIENT), "--url", url, "--clients", str(clients),
                "--timeout", str(duration + 40), "--rcvbuf", str(rcvbuf),
                "--threads", str(client_threads)]
        if sub:
            # Ours cuts a client whose alerts wait too long; it comes back with `resume`
            # and gets what it missed, as a real client would (counted once each).
            ccmd += ["--subscribe", sub, "--resume", "1"]
        # The server keeps serving (drain) until the client has everything or times out.
        server_cpu0, client_cpu0 = cpu_seconds(server.pid), children_cpu_seconds()
        client = subprocess.Popen(ccmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            stdout, stderr = client.communicate(timeout=duration + 90)
        except subprocess.TimeoutExpired:
            client.kill()
            stdout, stderr = client.communicate()
        # The load client was the one child waited for since client_cpu0.
        client_cpu = children_cpu_seconds() - client_cpu0
        server_user, server_sys = (b - a for a, b in zip(server_cpu0, cpu_seconds(server.pid)))
        server_cpu = server_user + server_sys
        lines = [ln for ln in stdout.splitlines() if ln.startswith("{\"clients\"")]
        if not lines:
            raise RuntimeError(f"load client failed: {stderr[-2000:]}")
        result = json.loads(lines[-1])
        result["offered"] = int(rate * duration) * clients
        # CPU time per delivered message: what a message costs each side, whatever share of
        # the cores it got (on a machine shared with other work, msg/s measures that share
        # as much as the server).
        n = max(result["delivered"], 1)
        result["server_cpu_s"] = round(server_cpu, 3)
        result["client_cpu_s"] = round(client_cpu, 3)
        result["server_cpu_us_per_msg"] = round(server_cpu / n * 1e6, 3)
        # The kernel's share: on loopback a send runs the receiver's TCP input too.
        result["server_sys_us_per_msg"] = round(server_sys / n * 1e6, 3)
        result["client_cpu_us_per_msg"] = round(client_cpu / n * 1e6, 3)
        return result
    finally:
        server.kill()
        server.wait()


def cut_text(r: dict) -> str:
    """Clients cut as slow consumers, and how they came back."""
    if not r.get("resumes"):
        return str(r.get("cut", 0))
    return f"{r['cut']} ({r['resumes']} resumes, {r['duplicates']} duplicates)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", nargs="?", default="run", choices=["run", "serve-ours", "serve-python", "serve-raw"])
    p.add_argument("--servers", default="python,node,ours",
                   help="comma-separated: which servers to measure (python, node, ours; raw: "
                        "the floor: pre-framed bytes, one send per socket, no library)")
    p.add_argument("--scenarios", default="100,1000",
                   help="comma-separated: 100 (latency at 30 FPS), 1000 (past saturation)")
    p.add_argument("--alert-max-wait", type=float, default=0.1,
                   help="our server's alert_max_wait_s: a client whose alerts wait longer is cut "
                        "(0: the server's default)")
    p.add_argument("--client-rcvbuf", type=int, default=0,
                   help="the load client's receive buffer per connection, bytes (0: the kernel's "
                        "autotuning, up to tens of MB, where seconds of messages can wait)")
    p.add_argument("--send-buffer", type=int, default=0,
                   help="our server's socket_send_buffer_bytes (0: the server's default)")
    p.add_argument("--lag-ping-interval", type=float, default=-1.0,
                   help="our server's lag_ping_interval_s (0: no pings; negative: the server's "
                        "default)")
    p.add_argument("--lag-window", type=int, default=0,
                   help="our server's lag_window_messages (0: the server's default, 8)")
    p.add_argument("--client-threads", type=int, default=1,
                   help="threads the load client reads its connections with (1: one thread "
                        "reads them all in turn, its own wait in every latency figure)")
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--rate", type=float, default=30.0)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--event", default="pose_data")
    p.add_argument("--drain", type=float, default=5.0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--fanout-rate", type=float, default=400.0,
                   help="publish rate of the 1,000-client run (high enough to saturate)")
    a = p.parse_args()
    if a.mode == "serve-ours":
        return serve_ours(a)
    if a.mode == "serve-python":
        return serve_python(a)
    if a.mode == "serve-raw":
        return serve_raw(a)
    subprocess.run(["cargo", "build", "--release", "--example", "fanout_client", "-q"],
                   cwd=ROOT, check=True)
    duration = 2.0 if a.quick else 5.0
    servers = [k for k in a.servers.split(",") if k]
    if "node" in servers and node_ws() is None:
        print("node or npm not found: the Node `ws` column is skipped", file=sys.stderr)
        servers.remove("node")
    scenarios = [
        # (clients, publish rate, event): latency at the spec's high-quality stream...
        (100, 30.0, "pose_data"),
        # ...and delivered throughput at 1,000 clients, an unthrottled stream pushed hard.
        (1000, a.fanout_rate, "activity_event"),
    ]
    wanted = {int(x) for x in a.scenarios.split(",") if x}
    rows = []
    for clients, rate, event in scenarios:
        if clients not in wanted:
            continue
        res = {k: run_one(k, clients, rate, duration, event, a.alert_max_wait, a.client_rcvbuf,
                          a.send_buffer, a.lag_ping_interval, a.lag_window, a.client_threads)
               for k in servers}
        rows.append((clients, rate, event, res))
        print(json.dumps({"clients": clients, "rate": rate, "event": event, **res}), flush=True)
    print()
    print("| clients | publish rate | server | delivered msg/s | p50 ms | p99 ms | delivered/offered "
          "| clients cut (slow consumer) | p99 ms, clients never cut | server CPU µs/msg |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for clients, rate, event, res in rows:
        for k in servers:
            r = res[k]
            print(f"| {clients} | {rate:g}/s ({event}) | {k} | {r['msgs_per_s']:,.0f} | "
                  f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['delivered']}/{r['offered']} | "
                  f"{cut_text(r)} | {r.get('p99_kept_ms', r['p99_ms']):.2f} | "
                  f"{r['server_cpu_us_per_msg']:.2f} |")
        for base in ("python", "node"):
            if base in res and "ours" in res:
                ratio = res["ours"]["msgs_per_s"] / max(res[base]["msgs_per_s"], 1e-9)
                print(f"| | | **ours / {base}** | **{ratio:.1f}×** | | | | | | |")
    load = os.getloadavg()[0]
    print(f"\n(cpus: {os.cpu_count()}, duration {duration} s per run, load average {load:.2f}, "
          f"client receive buffer {a.client_rcvbuf or 'autotuned'}, "
          f"load client threads {a.client_threads})")


if __name__ == "__main__":
    main()
