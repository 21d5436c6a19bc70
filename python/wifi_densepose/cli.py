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
from .telemetry import process_figures


def _serve(args: argparse.Namespace) -> int:
    secret = os.environ.get("WIFI_DENSEPOSE_JWT_SECRET") or None
    server = Server(host=args.host, port=args.port, jwt_secret=secret, config=args.config)
    server.start()
    for env in args.environment:
        server.add_environment(env)
    token = server.issue_token("cli", ttl_s=args.token_ttl) if secret is None or args.print_token else None
    print(f"WiFi-DensePose server listening on {server.url}", flush=True)
    print(f"  health:  {server.http_url}/health", flush=True)
    print(f"  metrics: {server.http_url}/metrics", flush=True)
    if token:
        print(f"  token ({args.token_ttl} s): {token}", flush=True)
        print(f"  connect: {server.url}?token={token}", flush=True)
    print(
        "  try:     python -m websockets "
        f"'{server.url}?token={token or '<token>'}'",
        flush=True,
    )
    print("Press Ctrl+C to stop.", flush=True)
    server.publish(
        "system_event",
        {"event": "system_started", "status": "running", "severity": "info",
         "configuration": {"environments": list(args.environment)}},
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = time.monotonic()
    last = process_figures()
    while not stop.wait(args.performance_interval):
        now = process_figures()
        server.publish("performance_update", {"metrics": now.since(last)})
        last = now
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
    s.add_argument("--environment", action="append", default=["room_001"],
                   help="an environment id to serve (repeatable; default room_001)")
    s.add_argument("--token-ttl", type=int, default=3600)
    s.add_argument("--print-token", action="store_true",
                   help="print a token even when WIFI_DENSEPOSE_JWT_SECRET is set")
    s.add_argument("--performance-interval", type=float, default=5.0,
                   help="seconds between performance_update events")
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
