"""Soak: the whole system for a long time, with clients dropping and resuming, checking
that no alert is lost or repeated and that memory and file descriptors stay flat.

    python benches/soak.py                 # 10 minutes (docs/reliability.md)
    python benches/soak.py --minutes 0.75  # the short run tests/test_soak.py makes

The server runs in its own process: ``--envs`` simulated rooms through the bundled model,
tracking and analytics, plus one room fed over UDP by an ESP32-style node (3x3x30 at
100 Hz) that goes silent for a few seconds every half minute and comes back. Inside the
server a publisher puts numbered alerts (``activity_event`` with ``event_type: "soak"``,
``n`` counting per room) on the bus at ``--alert-rate`` a second, round-robin over the
rooms.

The checked clients (``--clients``) each subscribe to the numbered alerts of every room or
of one room, and to one room's pose_data (10 FPS). Every few seconds each one breaks its
connection without a close frame, waits up to two seconds, reconnects and resumes with the
highest sequence it saw. At the end, publishing stops and each client must hold, per room,
every number from the first it saw to the last published, once each, in order of original
sequence (``replayed_from`` or ``sequence``), unless the server told it ``alerts_lost``.
Every half minute a storm of connections opens, subscribes and goes (half closing cleanly,
half breaking off), so sessions are made and expire (``resume_ttl_s`` 10 s here).

Every few seconds the server process's resident memory and open file descriptors
(``/proc/PID/fd``) are sampled. Reported: the least-squares slope of memory over the run
after a warm-up, the fd count with no client connected before and after, and the alert
figures. Written to benches/results/soak.json (``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from portable import write_result

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benches" / "results" / "soak.json"
SCENARIOS = ["walk", "two_people", "fall_recover", "sit_stand", "enter_leave"]
UDP_ENV = "udp_room"
UDP_NODE = 9
CONFIG = {"resume_ttl_s": 10.0, "heartbeat_timeout_s": 60.0, "stall_timeout_s": 1.0}


# -- the server process -------------------------------------------------------------------
def serve(a: argparse.Namespace) -> None:
    import wifi_densepose as wdp

    with wdp.Server(config=CONFIG) as s:
        envs = [f"env_{i}" for i in range(a.envs)]
        for i, env in enumerate(envs):
            s.add_environment(env)
            s.simulate(env, SCENARIOS[i % len(SCENARIOS)], seed=i, duration_s=30.0,
                       speed=1.0, repeat=True)
        s.add_environment(UDP_ENV)
        listener = s.listen_udp({UDP_NODE: UDP_ENV})
        rooms = envs + [UDP_ENV]
        published = {env: 0 for env in rooms}
        publishing = threading.Event()
        publishing.set()
        lock = threading.Lock()

        def publish() -> None:
            start, i = time.monotonic(), 0
            while publishing.is_set():
                delay = start + i / a.alert_rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                env = rooms[i % len(rooms)]
                with lock:
                    n = published[env]
                    s.publish("activity_event", {"event_type": "soak", "n": n,
                                                 "severity": "info"}, env)
                    published[env] = n + 1
                i += 1

        thread = threading.Thread(target=publish, daemon=True)
        thread.start()
        print(json.dumps({"url": s.url, "token": s.issue_token("soak"), "pid": os.getpid(),
                          "udp_port": listener.port, "rooms": rooms}), flush=True)
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "stop-publishing":
                publishing.clear()
                thread.join()
                print(json.dumps({"published": published}), flush=True)
            elif cmd == "stats":
                m = s.model_info() or {}
                print(json.dumps({"udp": listener.stats(), "model_windows": m.get("windows"),
                                  "callback_errors": s.callback_errors,
                                  "metrics": metrics(s.metrics())}), flush=True)
            else:
                break


def metrics(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        if line.startswith("wdp_") and "{" not in line:
            name, value = line.split()
            out[name] = float(value)
    return out


# -- sampling -------------------------------------------------------------------------------
def sample(pid: int) -> dict:
    rss = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    return {"rss_mb": round(rss, 2), "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": len(os.listdir(f"/proc/{pid}/task"))}


def slope(xs: list, ys: list) -> float:
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0


# -- the UDP node that comes and goes --------------------------------------------------------
def udp_node(port: int, stop: threading.Event, counters: dict) -> None:
    from wifi_densepose import sim
    from wifi_densepose.udp import encode_frame

    csi = sim.generate("walk", seed=11, duration_s=10)["csi"]
    seq, t0, sent_since = 0, time.monotonic(), None
    silent = False
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        while not stop.is_set():
            now = time.monotonic()
            if (now - t0) % 30 > 26:  # silent 4 s every 30 s: a reboot, a cable
                if not silent:
                    counters["silences"] = counters.get("silences", 0) + 1
                silent, sent_since = True, None
                time.sleep(0.05)
                continue
            silent = False
            if sent_since is None:
                sent_since = (now, seq)  # pace 100 a second from here
            sock.sendto(encode_frame(UDP_NODE, csi[seq % len(csi)], sequence=seq),
                        ("127.0.0.1", port))
            seq += 1
            counters["sent"] = seq
            delay = sent_since[0] + (seq - sent_since[1]) / 100 - time.monotonic()
            if delay > 0:
                time.sleep(delay)


# -- checked clients --------------------------------------------------------------------------
class Checked:
    """A client that drops its connection every few seconds and resumes; it records every
    numbered alert it gets."""

    def __init__(self, idx: int, url: str, rooms: list, rng: random.Random) -> None:
        self.idx, self.url, self.rng = idx, url, rng
        # Even clients: every room's alerts; odd: one room's.
        self.rooms = rooms if idx % 2 == 0 else [rooms[idx % len(rooms)]]
        self.pose_room = rooms[idx % len(rooms)]
        self.session: str | None = None
        self.last_seq = 0
        self.alerts: list = []  # (room, n, original sequence)
        self.lost_told = 0
        self.resumes = 0
        self.resume_failures: list = []
        self.poses = 0

    def subscriptions(self) -> list:
        alert = {"event_type": "activity_event", "filters": {"event_types": ["soak"]}}
        if len(self.rooms) == 1:
            alert["filters"]["environment_id"] = self.rooms[0]
        return [alert, {"event_type": "pose_data",
                        "filters": {"environment_id": self.pose_room,
                                    "include_keypoints": False}, "throttle": {"max_fps": 10}}]

    def take(self, raw: str | bytes) -> dict:
        m = json.loads(raw)
        seq = m.get("metadata", {}).get("sequence")
        if isinstance(seq, int) and seq > self.last_seq:
            self.last_seq = seq
        if m["type"] == "activity_event" and m["data"].get("event_type") == "soak":
            original = m["metadata"].get("replayed_from", m["metadata"]["sequence"])
            self.alerts.append((m["data"]["environment_id"], m["data"]["n"], original))
        elif m["type"] == "pose_data":
            self.poses += 1
        return m

    async def connect(self):
        import websockets

        ws = await websockets.connect(self.url, compression=None, max_size=None,
                                      open_timeout=30)
        hello = json.loads(await ws.recv())
        if self.session is None:
            self.session = hello["data"]["session_id"]
            self.last_seq = max(self.last_seq, hello["metadata"]["sequence"])
            await ws.send(json.dumps({"type": "subscribe",
                                      "data": {"subscriptions": self.subscriptions()}}))
        else:
            await ws.send(json.dumps({"type": "resume", "data": {
                "session_id": self.session, "last_sequence": self.last_seq}}))
            while True:
                m = self.take(await asyncio.wait_for(ws.recv(), 30))
                if m["type"] == "ack" and m["data"].get("message_type") == "resume":
                    self.resumes += 1
                    self.lost_told += bool(m["data"]["alerts_lost"])
                    break
                if m["type"] == "error":
                    # Should not happen: count it and start a new session.
                    self.resume_failures.append(m["data"])
                    self.session = hello["data"]["session_id"]
                    await ws.send(json.dumps({"type": "subscribe",
                                              "data": {"subscriptions": self.subscriptions()}}))
                    break
        return ws

    async def run(self, stop: asyncio.Event, drop_every: tuple) -> None:
        while True:
            ws = await self.connect()
            until = time.monotonic() + self.rng.uniform(*drop_every)
            while time.monotonic() < until and not stop.is_set():
                try:
                    self.take(await asyncio.wait_for(ws.recv(), 0.5))
                except TimeoutError:
                    pass
            if stop.is_set():
                self.ws = ws  # kept for the final drain
                return
            ws.transport.abort()  # no close frame: the session stays resumable
            await asyncio.sleep(self.rng.uniform(0, 2))

    async def drain(self, published: dict, timeout: float) -> None:
        """Reads until every published alert of its rooms arrived (or the timeout)."""
        ws = self.ws
        deadline = time.monotonic() + timeout
        want = {room: published[room] - 1 for room in self.rooms}

        def done() -> bool:
            have: dict = {}
            for room, n, _ in self.alerts:
                have[room] = max(have.get(room, -1), n)
            return all(have.get(r, -1) >= want[r] for r in self.rooms)

        while not done() and time.monotonic() < deadline:
            try:
                self.take(await asyncio.wait_for(ws.recv(), 0.5))
            except TimeoutError:
                pass
        await ws.close()

    def check(self, published: dict) -> dict:
        lost = dup = disorder = 0
        originals = [o for _, _, o in self.alerts]
        disorder += sum(1 for a, b in itertools.pairwise(originals) if b <= a)
        for room in self.rooms:
            ns = [n for r, n, _ in self.alerts if r == room]
            if not ns:
                lost += published[room]
                continue
            first = ns[0]
            expected = list(range(first, published[room]))
            dup += len(ns) - len(set(ns))
            lost += len(set(expected) - set(ns))
            disorder += sum(1 for a, b in itertools.pairwise(ns) if b <= a)
        return {"alerts": len(self.alerts), "lost": lost, "duplicated": dup,
                "out_of_order": disorder, "resumes": self.resumes,
                "alerts_lost_told": self.lost_told,
                "resume_failures": len(self.resume_failures), "poses": self.poses}


async def storm(url: str, n: int, rng: random.Random) -> int:
    import websockets

    async def one() -> None:
        ws = await websockets.connect(url, compression=None, open_timeout=30)
        await ws.recv()
        await ws.send(json.dumps({"type": "subscribe", "data": {"subscriptions": [
            {"event_type": "activity_event"}, {"event_type": "pose_data"}]}}))
        await ws.recv()
        if rng.random() < 0.5:
            await ws.close()
        else:
            ws.transport.abort()

    await asyncio.gather(*[one() for _ in range(n)])
    return n


async def drive(a: argparse.Namespace, hello: dict, server: subprocess.Popen) -> dict:
    rng = random.Random(a.seed)
    url = f"{hello['url']}?token={hello['token']}"
    pid = hello["pid"]
    rooms = hello["rooms"]
    samples: list = []
    t0 = time.monotonic()

    def ctl(cmd: str) -> dict:
        assert server.stdin and server.stdout
        server.stdin.write(cmd + "\n")
        server.stdin.flush()
        return json.loads(server.stdout.readline())

    await asyncio.sleep(2)
    idle_before = sample(pid)
    node_stop, node_counters = threading.Event(), {}
    node = threading.Thread(target=udp_node, args=(hello["udp_port"], node_stop, node_counters),
                            daemon=True)
    node.start()
    clients = [Checked(i, url, rooms, random.Random(rng.random())) for i in range(a.clients)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(c.run(stop, (a.drop_min, a.drop_max))) for c in clients]
    end = t0 + a.minutes * 60
    next_storm, storms = t0 + 15, 0
    while time.monotonic() < end:
        samples.append({"t": round(time.monotonic() - t0, 1), **sample(pid)})
        if time.monotonic() >= next_storm:
            storms += await storm(url, a.storm, rng)
            next_storm += 30
        await asyncio.sleep(min(a.sample_s, max(0.0, end - time.monotonic())))
    published = ctl("stop-publishing")["published"]
    stop.set()
    await asyncio.gather(*tasks)
    await asyncio.gather(*[c.drain(published, 30) for c in clients])
    node_stop.set()
    node.join()
    stats = ctl("stats")
    # Every client gone: wait for the abandoned sessions to expire (resume_ttl_s), then
    # count descriptors with nobody connected again.
    await asyncio.sleep(CONFIG["resume_ttl_s"] + 3)
    idle_after = sample(pid)
    checks = [c.check(published) for c in clients]
    warm = [s for s in samples if s["t"] >= a.warmup_s] or samples
    total = {k: sum(c[k] for c in checks) for k in checks[0]}
    return {
        "minutes": a.minutes, "envs": a.envs, "clients": a.clients, "alert_rate": a.alert_rate,
        "published": published, "published_total": sum(published.values()),
        "storm_connections": storms, "udp_node": {**node_counters, **stats["udp"]},
        "alerts": total, "per_client": checks,
        "rss_mb": {"first": samples[0]["rss_mb"], "after_warmup": warm[0]["rss_mb"],
                   "last": samples[-1]["rss_mb"], "max": max(s["rss_mb"] for s in samples),
                   "slope_mb_per_min": round(60 * slope([s["t"] for s in warm],
                                                        [s["rss_mb"] for s in warm]), 3),
                   "slope_second_half_mb_per_min": round(60 * slope(
                       [s["t"] for s in samples[len(samples) // 2:]],
                       [s["rss_mb"] for s in samples[len(samples) // 2:]]), 3)},
        "fds": {"idle_before": idle_before["fds"], "idle_after": idle_after["fds"],
                "max": max(s["fds"] for s in samples),
                "slope_per_min": round(60 * slope([s["t"] for s in warm],
                                                  [s["fds"] for s in warm]), 3)},
        "threads": {"idle_before": idle_before["threads"], "idle_after": idle_after["threads"]},
        "metrics": stats["metrics"], "samples": samples,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", nargs="?", default="run", choices=["run", "serve"])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--envs", type=int, default=4, help="simulated rooms (plus the UDP room)")
    p.add_argument("--clients", type=int, default=20, help="checked clients")
    p.add_argument("--alert-rate", type=float, default=20.0, help="numbered alerts a second")
    p.add_argument("--storm", type=int, default=50, help="connections per storm (every 30 s)")
    p.add_argument("--drop-min", type=float, default=3.0)
    p.add_argument("--drop-max", type=float, default=15.0)
    p.add_argument("--sample-s", type=float, default=5.0)
    p.add_argument("--warmup-s", type=float, default=60.0,
                   help="memory slope from here on (model, buffers and pools settle)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=RESULTS)
    a = p.parse_args()
    if a.command == "serve":
        return serve(a)
    if a.minutes < 2:
        a.warmup_s = min(a.warmup_s, a.minutes * 60 / 3)
        a.sample_s = min(a.sample_s, 2.0)
    cmd = [sys.executable, __file__, "serve", "--envs", str(a.envs),
           "--alert-rate", str(a.alert_rate)]
    server = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        hello = json.loads(server.stdout.readline())
        result = asyncio.run(drive(a, hello, server))
    finally:
        if server.stdin:
            try:
                server.stdin.write("quit\n")
                server.stdin.close()
            except OSError:
                pass
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    write_result(a.json, result)
    al, rss, fds = result["alerts"], result["rss_mb"], result["fds"]
    print(f"{a.minutes:g} min, {a.envs}+1 rooms, {a.clients} checked clients, "
          f"{result['published_total']} numbered alerts published, "
          f"{al['resumes']} resumes, {result['storm_connections']} storm connections")
    print(f"alerts received {al['alerts']}: lost {al['lost']}, duplicated {al['duplicated']}, "
          f"out of order {al['out_of_order']}, alerts_lost told {al['alerts_lost_told']}, "
          f"resume failures {al['resume_failures']}")
    print(f"RSS {rss['first']} -> {rss['last']} MB (max {rss['max']}), slope after warm-up "
          f"{rss['slope_mb_per_min']} MB/min, over the second half "
          f"{rss['slope_second_half_mb_per_min']} MB/min; fds idle {fds['idle_before']} -> "
          f"{fds['idle_after']} (max {fds['max']}); threads idle "
          f"{result['threads']['idle_before']} -> {result['threads']['idle_after']}")
    print(f"written: {a.json}")


if __name__ == "__main__":
    main()
