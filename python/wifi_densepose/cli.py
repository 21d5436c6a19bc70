"""The ``wifi-densepose`` command line: ``serve``, ``token`` and ``inspect`` (simulate and
evaluate arrive with the simulator and model issues). Exit codes: 0 success, 1 a runtime
error (printed in one line), 2 a usage error."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

from .server import Server


def _serve(args: argparse.Namespace) -> int:
    secret = os.environ.get("WIFI_DENSEPOSE_JWT_SECRET") or None
    server = Server(host=args.host, port=args.port, jwt_secret=secret, config=args.config)
    server.start()
    environments = list(dict.fromkeys(args.environment or ["room_001"]))
    for env in environments:
        server.add_environment(env)
    token = server.issue_token("cli", ttl_s=args.token_ttl) if secret is None or args.print_token else None
    print(f"WiFi-DensePose server listening on {server.url}", flush=True)
    print(f"  dashboard: {server.http_url}/dashboard/", flush=True)
    print(f"  health:  {server.http_url}/health", flush=True)
    print(f"  metrics: {server.http_url}/metrics", flush=True)
    print(f"  environments: {', '.join(environments)}", flush=True)
    if token:
        print(f"  token ({args.token_ttl} s): {token}", flush=True)
        print(f"  connect: {server.url}?token={token}", flush=True)
    print(f"  try:     python -m websockets '{server.url}?token={token or '<token>'}'", flush=True)
    if args.udp is not None:
        nodes = {int(k): v for k, v in (n.split("=", 1) for n in args.node)} or {0: environments[0]}
        listener = server.listen_udp(nodes, port=args.udp, host=args.host)
        print(f"  udp:     listening on {args.host}:{listener.port} for nodes {nodes}", flush=True)
    replay = None
    if args.replay:
        replay = server.replay(environments[0], args.replay, speed=args.speed)
        print(f"  replay:  {args.replay} into {environments[0]} at {args.speed}x", flush=True)
    print("Press Ctrl+C to stop.", flush=True)
    server.publish(
        "system_event",
        {"event": "system_started", "status": "running", "severity": "info",
         "configuration": {"environments": environments}},
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = time.monotonic()
    shown = -1
    while not stop.wait(0.2):
        if replay is not None and sys.stderr.isatty():
            pct = int(100 * replay.progress)
            if pct != shown:
                shown = pct
                print(f"\r  replay {pct:3d}% ({replay.sent}/{replay.total})", end="", file=sys.stderr)
        if replay is not None and replay.done and replay.error:
            print(f"error: replay: {replay.error}", file=sys.stderr)
            server.stop()
            return 1
        if args.duration and time.monotonic() - started >= args.duration:
            break
    server.publish("system_event", {"event": "system_stopping", "status": "stopping", "severity": "info"})
    server.stop()
    return 0


def _token(args: argparse.Namespace) -> int:
    secret = args.secret or os.environ.get("WIFI_DENSEPOSE_JWT_SECRET")
    if not secret:
        print("error: give --secret or set WIFI_DENSEPOSE_JWT_SECRET (the server's HS256 secret)",
              file=sys.stderr)
        return 2
    server = Server(jwt_secret=secret).start()
    try:
        envs = args.environment or None
        print(server.issue_token(args.subject, envs, args.ttl))
    finally:
        server.stop()
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from .inspect import inspect_text

    for path in args.files:
        print(inspect_text(path, args.format))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wifi-densepose",
        description="WiFi CSI to live pose, tracks, activities and occupancy over WebSocket.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the WebSocket API server",
                       description="Run the server; prints the URL and a token to connect with.")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000, help="0 picks a free port (default 8000)")
    s.add_argument("--config", help="TOML file; its [server] table overrides limits")
    s.add_argument("--environment", action="append", default=[],
                   help="an environment id to serve (repeatable; default room_001)")
    s.add_argument("--replay", metavar="FILE", help="replay a CSI recording into the first environment")
    s.add_argument("--speed", type=float, default=1.0, help="replay speed (1 = real time, 0 = flat out)")
    s.add_argument("--udp", type=int, metavar="PORT", help="receive ESP32 UDP frames on PORT (0: any)")
    s.add_argument("--node", action="append", default=[], metavar="ID=ENV",
                   help="route UDP node ID to environment ENV (repeatable)")
    s.add_argument("--token-ttl", type=int, default=3600)
    s.add_argument("--print-token", action="store_true",
                   help="print a token even when WIFI_DENSEPOSE_JWT_SECRET is set")
    s.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: run)")
    s.set_defaults(func=_serve)
    t = sub.add_parser("token", help="issue an HS256 token for a server's secret")
    t.add_argument("--subject", default="user")
    t.add_argument("--environment", action="append", default=[])
    t.add_argument("--ttl", type=int, default=3600)
    t.add_argument("--secret", help="the HS256 secret (or WIFI_DENSEPOSE_JWT_SECRET)")
    t.set_defaults(func=_token)
    i = sub.add_parser("inspect", help="summarize a CSI recording (format, packets, rate, gaps)",
                       description="What a researcher checks first about a recording.")
    i.add_argument("files", nargs="+", help="recordings (.dat, .pcap, .csv, .csi)")
    i.add_argument("--format", help="intel5300, atheros, nexmon, esp32, picoscenes "
                                    "(default: detected from the content)")
    i.set_defaults(func=_inspect)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
