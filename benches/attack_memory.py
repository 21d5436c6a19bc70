"""How much memory one valid token can make the server hold (docs/reliability.md,
"Under attack"). A server runs in a child process with the default limits; this process
attacks it with one token and reads the child's resident memory (VmRSS) after each step.

    .venv/bin/python benches/attack_memory.py [--cycles 300] [--alerts 2000]

Steps: connect-subscribe-drop cycles (each leaves a resumable session; at most
max_detached_per_subject = 64 are kept), alerts published into their logs, then a client
that sends pings and never reads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time

import websockets

CHILD = r"""
import json, sys
from wifi_densepose import Server
s = Server(config={"performance_interval_s": 0}).start()
s.add_environment("ward_a")
print(json.dumps({"url": s.url, "port": s.port, "token": s.issue_token("attacker")}), flush=True)
for line in sys.stdin:
    for i in range(int(line)):
        s.publish("activity_event", {"event_type": "fall_detected", "n": i, "pad": "x" * 200},
                  "ward_a")
    print("ok", flush=True)
"""


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def drop_sessions(url: str, cycles: int) -> None:
    # The largest subscriptions the caps allow: 9 per connection, 32 long event kinds each.
    subs = [{"event_type": "activity_event",
             "filters": {"event_types": [f"kind_{i}_" + "k" * 100 for i in range(32)]}}
            for _ in range(8)] + [{"event_type": "activity_event"}]
    for _ in range(cycles):
        ws = await websockets.connect(url, compression=None)
        await ws.recv()
        await ws.send(json.dumps({"type": "subscribe", "data": {"subscriptions": subs}}))
        await ws.recv()
        ws.transport.abort()
    await asyncio.sleep(0.5)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=300)
    ap.add_argument("--alerts", type=int, default=2000)
    args = ap.parse_args()
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    info = json.loads(child.stdout.readline())
    url = f"{info['url']}?token={info['token']}"
    time.sleep(0.5)
    print(f"idle server: {rss_mb(child.pid):.1f} MB")
    asyncio.run(drop_sessions(url, args.cycles))
    print(f"after {args.cycles} connect-subscribe-drop cycles: {rss_mb(child.pid):.1f} MB")
    child.stdin.write(f"{args.alerts}\n")
    child.stdin.flush()
    child.stdout.readline()
    print(f"after {args.alerts} alerts logged by the held sessions: {rss_mb(child.pid):.1f} MB")
    # Pings from a client that never reads.
    sock = socket.create_connection(("127.0.0.1", info["port"]))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall((f"GET /ws/v1?token={info['token']} HTTP/1.1\r\nHost: x\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    ping = bytes([0x89, 0x80 | 125]) + b"\0\0\0\0" + b"p" * 125
    sock.settimeout(3)
    sent = 0
    try:
        while sent < 200 << 20:
            sock.sendall(ping * 1000)
            sent += len(ping) * 1000
    except OSError:
        pass
    print(f"after {sent / (1 << 20):.1f} MB of pings taken from a client that never reads: "
          f"{rss_mb(child.pid):.1f} MB")
    sock.close()
    child.stdin.close()
    child.terminate()
    child.wait()


if __name__ == "__main__":
    main()
