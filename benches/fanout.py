"""Fan-out benchmark: our server against a plain Python ``websockets`` server, same load.

Each run starts one server in its own process, publishing the same pose-frame payload at a
fixed rate, and a Rust load client (benches/fanout_client.rs) with N connections that
counts delivered messages and publish-to-receipt latency. Both servers serialize each event
once and send it to every client; ours adds per-connection metadata (sequence, client id)
and the subscription machinery, the baseline broadcasts identical bytes.

    python benches/fanout.py                     # the README's table
    python benches/fanout.py --quick             # smaller, for a smoke run

Nothing here is a test: figures depend on the machine. The ratio is the point.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "target" / "release" / "examples" / "fanout_client"


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

    config = {"alert_queue_capacity": 1_000_000, "permessage_deflate": False,
              "heartbeat_timeout_s": 600.0}
    with wdp.Server(config=config) as s:
        s.add_environment("room_001")
        print(f"{s.url}?token={s.issue_token('bench')}", flush=True)
        while True:  # every client connected and subscribed
            m = re.search(r"^wdp_client_messages_total (\d+)$", s.metrics(), re.MULTILINE)
            if m and int(m.group(1)) >= a.clients:
                break
            time.sleep(0.02)
        time.sleep(0.3)
        for i, delay in publish_schedule(a.rate, a.duration):
            if delay:
                time.sleep(delay)
            data = pose_payload(i)
            data["pub_ns"] = time.time_ns()
            s.publish(a.event, data, "room_001")
        time.sleep(0.5)
        s.publish(a.event, {"end": True, "pub_ns": time.time_ns()}, "room_001")
        time.sleep(a.drain)


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


# -- orchestration -------------------------------------------------------------------------
def run_one(kind: str, clients: int, rate: float, duration: float, event: str) -> dict:
    cmd = [sys.executable, __file__, f"serve-{kind}", "--clients", str(clients), "--rate",
           str(rate), "--duration", str(duration), "--event", event, "--drain", "120"]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
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
                "--timeout", str(duration + 40)]
        if sub:
            ccmd += ["--subscribe", sub]
        # The server keeps serving (drain) until the client has everything or times out.
        out = subprocess.run(ccmd, check=False, capture_output=True, text=True,
                             timeout=duration + 90)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{\"clients\"")]
        if not lines:
            raise RuntimeError(f"load client failed: {out.stderr[-2000:]}")
        result = json.loads(lines[-1])
        result["offered"] = int(rate * duration) * clients
        return result
    finally:
        server.kill()
        server.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", nargs="?", default="run", choices=["run", "serve-ours", "serve-python"])
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
    subprocess.run(["cargo", "build", "--release", "--example", "fanout_client", "-q"],
                   cwd=ROOT, check=True)
    duration = 2.0 if a.quick else 5.0
    scenarios = [
        # (clients, publish rate, event): latency at the spec's high-quality stream...
        (100, 30.0, "pose_data"),
        # ...and delivered throughput at 1,000 clients, an unthrottled stream pushed hard.
        (1000, a.fanout_rate, "activity_event"),
    ]
    rows = []
    for clients, rate, event in scenarios:
        res = {k: run_one(k, clients, rate, duration, event) for k in ("python", "ours")}
        rows.append((clients, rate, event, res))
        print(json.dumps({"clients": clients, "rate": rate, "event": event, **res}), flush=True)
    print()
    print("| clients | publish rate | server | delivered msg/s | p50 ms | p99 ms | delivered/offered |")
    print("|---|---|---|---|---|---|---|")
    for clients, rate, event, res in rows:
        for k in ("python", "ours"):
            r = res[k]
            print(f"| {clients} | {rate:g}/s ({event}) | {k} | {r['msgs_per_s']:,.0f} | "
                  f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['delivered']}/{r['offered']} |")
        ratio = res["ours"]["msgs_per_s"] / max(res["python"]["msgs_per_s"], 1e-9)
        print(f"| | | **ours / python** | **{ratio:.1f}×** | | | |")
    print(f"\n(cpus: {os.cpu_count()}, duration {duration} s per run)")


if __name__ == "__main__":
    main()
