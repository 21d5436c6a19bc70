"""Broker benchmark: the event bus through Redis Streams against the in-process bus, and
one node against two, in one run.

Every configuration publishes the same events (``activity_event``, an alert: never
throttled, never dropped) at the same total rate for the same time, to Rust load clients
(benches/fanout_client.rs) that count delivered messages and publish-to-receipt latency:

- ``in-process``: one node, no broker: the single-node default.
- ``broker, 1 node``: the same node with a broker: every event goes to Redis and back.
- ``broker, 2 nodes``: two nodes on the same Redis, each running half the environments
  (half the rate) and serving as many clients as the single node did; every client
  subscribes to every environment, so each node delivers what both nodes produce.

Each node runs in a process of its own, redis-server is started on a free loopback port
(Debian's package; no persistence). Figures are reported raw and as ratios to the
in-process baseline. Nothing here is a test: figures depend on the machine; on a small one
the two nodes, Redis and the load clients share the same cores.

    python benches/broker.py                  # default load
    python benches/broker.py --quick          # a smoke run
    python benches/broker.py --json out.json  # also write the figures

The load client is built with ``cargo build --release --example fanout_client``
(``$CARGO_TARGET_DIR`` is honoured).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from broker_helpers import Redis


def client_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    exe = target / "release" / "examples" / "fanout_client"
    if not exe.exists():
        subprocess.run(["cargo", "build", "--release", "--example", "fanout_client"],
                       cwd=ROOT, check=True)
    return exe


# -- a node (its own process) ---------------------------------------------------------------
def node(a: argparse.Namespace) -> None:
    """Serves, waits for its clients and for `go`, publishes on schedule, then drains."""
    import wifi_densepose as wdp

    config: dict = {"alert_queue_capacity": 1_000_000, "permessage_deflate": False,
                    "heartbeat_timeout_s": 600.0, "performance_interval_s": 0,
                    "alert_history": 16}
    if a.broker != "none":
        config["broker"] = {"url": a.broker, "node_id": a.node_id, "key_prefix": a.prefix,
                            "stream_maxlen": 100_000, "discovery_interval_s": 0.1}
    server = wdp.Server(config=config, jwt_secret="bench-secret-bench-secret-bench-secret")
    server.start()
    server.add_environment(a.env)
    print(f"{server.url}?token={server.issue_token('bench')}", flush=True)
    while True:  # every client connected and subscribed
        m = re.search(r"^wdp_client_messages_total (\d+)$", server.metrics(), re.MULTILINE)
        if m and int(m.group(1)) >= a.clients:
            break
        time.sleep(0.02)
    print("ready", flush=True)
    start = float(sys.stdin.readline().split()[1])  # "go <unix time>"
    n = int(a.rate * a.duration)
    for i in range(n):
        delay = start + i / a.rate - time.time()
        if delay > 0:
            time.sleep(delay)
        server.publish("activity_event", {"event_type": "bench", "severity": "info", "n": i,
                                          "environment_id": a.env, "pub_ns": time.time_ns()},
                       a.env)
    print("done", flush=True)
    if a.end:
        time.sleep(1.0)
        server.publish("activity_event", {"end": True, "pub_ns": time.time_ns()}, a.env)
    sys.stdin.readline()  # "stop"
    server.stop()


# -- orchestration ----------------------------------------------------------------------------
def run(label: str, broker: str | None, nodes: int, clients_per_node: int, rate: float,
        duration: float, client: Path, prefix: str) -> dict:
    procs: list[subprocess.Popen] = []
    loads: list[subprocess.Popen] = []
    try:
        urls = []
        for k in range(nodes):
            cmd = [sys.executable, __file__, "node", "--broker", broker or "none",
                   "--node-id", f"bench-{k}", "--prefix", prefix, "--env", f"room_{k}",
                   "--rate", str(rate / nodes), "--duration", str(duration),
                   "--clients", str(clients_per_node)]
            if k == 0:
                cmd.append("--end")
            p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            procs.append(p)
            assert p.stdout is not None
            url = p.stdout.readline().strip()
            if not url:
                raise RuntimeError(f"node {k} did not start")
            urls.append(url)
        time.sleep(0.3 if broker else 0)  # the nodes discover each other's environments
        sub = json.dumps({"type": "subscribe",
                          "data": {"subscriptions": [{"event_type": "activity_event"}]}})
        for url in urls:
            loads.append(subprocess.Popen(
                [str(client), "--url", url, "--clients", str(clients_per_node),
                 "--subscribe", sub, "--timeout", str(duration + 30)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("a node did not see its clients")
        go = time.time() + 0.5
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(f"go {go}\n")
            p.stdin.flush()
        results = []
        for lp in loads:
            out, err = lp.communicate(timeout=duration + 60)
            lines = [ln for ln in out.splitlines() if ln.startswith('{"clients"')]
            if not lines:
                raise RuntimeError(f"load client failed: {err[-2000:]}")
            results.append(json.loads(lines[-1]))
    finally:
        for p in procs:
            try:
                assert p.stdin is not None
                p.stdin.write("stop\n")
                p.stdin.flush()
            except (BrokenPipeError, OSError):
                pass
        for p in procs + loads:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    delivered = sum(r["delivered"] for r in results)
    span = max(r["span_s"] for r in results)
    clients = nodes * clients_per_node
    offered = int(rate * duration) * clients
    # Latency percentiles: the clients report theirs; the worst node's is the honest one.
    return {
        "config": label, "nodes": nodes, "clients": clients, "rate": rate,
        "offered": offered, "delivered": delivered,
        "msgs_per_s": delivered / span if span else 0.0,
        "p50_ms": max(r["p50_ms"] for r in results),
        "p99_ms": max(r["p99_ms"] for r in results),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", nargs="?", default="run", choices=["run", "node"])
    p.add_argument("--clients", type=int, default=100, help="clients per node")
    p.add_argument("--rate", type=float, default=500.0, help="events per second, all nodes")
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", help="write the figures to this file")
    # node mode
    p.add_argument("--broker", default="none")
    p.add_argument("--node-id", default="bench-0")
    p.add_argument("--prefix", default="bench")
    p.add_argument("--env", default="room_0")
    p.add_argument("--end", action="store_true")
    a = p.parse_args()
    if a.mode == "node":
        return node(a)
    if a.quick:
        a.clients, a.rate, a.duration = 20, 200.0, 2.0
    client = client_binary()
    with tempfile.TemporaryDirectory() as tmp:
        redis = Redis(Path(tmp)).start()
        try:
            rows = []
            for label, broker, nodes in (("in-process", None, 1),
                                         ("broker, 1 node", redis.url, 1),
                                         ("broker, 2 nodes", redis.url, 2)):
                prefix = f"bench{len(rows)}"
                rows.append(run(label, broker, nodes, a.clients, a.rate, a.duration, client,
                                prefix))
        finally:
            redis.stop()
    base = rows[0]
    print(f"{a.rate:g} activity_event/s for {a.duration:g} s, {a.clients} clients per node, "
          f"{os.cpu_count()} CPUs")
    print(f"{'config':<16} {'clients':>7} {'delivered':>10} {'msg/s':>10} {'x base':>7} "
          f"{'p50 ms':>8} {'x base':>7} {'p99 ms':>8} {'x base':>7}")
    for r in rows:
        r["throughput_ratio"] = r["msgs_per_s"] / base["msgs_per_s"]
        r["p50_ratio"] = r["p50_ms"] / base["p50_ms"]
        r["p99_ratio"] = r["p99_ms"] / base["p99_ms"]
        print(f"{r['config']:<16} {r['clients']:>7} {r['delivered']:>5}/{r['offered']:<6}"
              f"{r['msgs_per_s']:>8.0f} {r['throughput_ratio']:>7.2f} {r['p50_ms']:>8.2f} "
              f"{r['p50_ratio']:>7.2f} {r['p99_ms']:>8.2f} {r['p99_ratio']:>7.2f}")
    growth = rows[2]["msgs_per_s"] / rows[1]["msgs_per_s"]
    print(f"one node -> two nodes (broker): delivered msg/s x{growth:.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"rows": rows, "two_node_growth": growth,
                                            "cpus": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
