"""One server node behind a broker, as a process of its own (tests/test_broker.py and
benches/broker.py start several and kill them).

    python tests/broker_node.py --port 0 --broker redis://127.0.0.1:6390 --secret s \\
        --node-id a --env ward_1 --env ward_2

It prints ``READY <port>`` once serving, then obeys JSON commands, one per line on stdin,
answering each with one JSON line on stdout:

- ``{"op": "produce", "env": "ward_1", "count": 100, "interval_s": 0.02}``: publishes
  ``count`` activity_events (``data.n`` = 0, 1, ...) from a background thread.
- ``{"op": "publish", "type": "...", "data": {...}, "env": "..."}``
- ``{"op": "claim", "env": "..."}`` / ``{"op": "holder", "env": "..."}``
- ``{"op": "produced"}``: how many events ``produce`` has published so far.
- ``{"op": "stop"}``: stops the server and exits.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from wifi_densepose import Server


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--broker", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--node-id", required=True)
    p.add_argument("--key-prefix", default="wdp")
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--lease-ttl", type=float, default=1.0)
    args = p.parse_args()
    server = Server(
        port=args.port,
        jwt_secret=args.secret,
        config={
            "heartbeat_timeout_s": 30.0,
            "resume_ttl_s": 30.0,
            "performance_interval_s": 0,
            "broker": {"url": args.broker, "node_id": args.node_id,
                       "key_prefix": args.key_prefix, "lease_ttl_s": args.lease_ttl,
                       "reconnect_max_s": 0.5, "discovery_interval_s": 0.1},
        },
    ).start()
    for env in args.env:
        server.add_environment(env)
    produced = [0]

    def produce(env: str, count: int, interval_s: float, kind: str) -> None:
        for n in range(count):
            server.publish("activity_event", {"event_type": kind, "severity": "high",
                                              "n": n, "confidence": 0.9}, environment_id=env)
            produced[0] += 1
            time.sleep(interval_s)

    print(f"READY {server.port}", flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        op = cmd["op"]
        reply: dict = {"op": op}
        if op == "produce":
            threading.Thread(target=produce, daemon=True, args=(
                cmd["env"], int(cmd["count"]), float(cmd.get("interval_s", 0.01)),
                cmd.get("kind", "fall_detected"))).start()
        elif op == "publish":
            server.publish(cmd["type"], cmd["data"], environment_id=cmd.get("env"))
        elif op == "claim":
            reply["held"] = server.claim_environment(cmd["env"])
        elif op == "holder":
            reply["holder"] = server.lease_holder(cmd["env"])
        elif op == "produced":
            reply["produced"] = produced[0]
        elif op == "stop":
            server.stop()
            print(json.dumps(reply), flush=True)
            return 0
        print(json.dumps(reply), flush=True)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
