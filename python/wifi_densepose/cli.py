"""The ``wifi-densepose`` command line: ``serve``, ``token``, ``inspect``, ``simulate`` and
``evaluate``. Exit codes: 0 success, 1 a runtime error (printed in one line), 2 a usage
error."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from . import config
from .errors import UsageError
from .server import Server

#: serve flags that describe environments and sources: with --config the file does that.
_SOURCE_FLAGS: dict[str, Any] = {"environment": [], "replay": None, "udp": None, "node": [], "oracle": False,
                 "simulate": "walk", "seed": 0, "speed": 1.0, "serial": [],
                 "baud": config.DEFAULT_BAUD}


def _node_routes(entries: list[str]) -> dict[str, dict[str, Any]]:
    """``--node KEY=ENV`` entries as {env: {"node"|"mac"|"sender": key}}: KEY is a WDPC or
    RuView node id (an integer), a MAC (CSI_DATA lines by their mac field) or an IP
    address / ip:port (CSI_DATA lines by sender)."""
    routes: dict[str, dict[str, Any]] = {}
    for entry in entries:
        key, sep, env_id = entry.rpartition("=")
        if not sep or not key or not env_id:
            raise UsageError(f"--node {entry!r}: expected KEY=ENVIRONMENT")
        mac, sender = config.normalize_mac(key), config.sender_address(key)
        value: int | str
        if key.isdigit() and int(key) <= 65535:
            kind, value = "node", int(key)
        elif mac is not None:
            kind, value = "mac", mac
        elif sender is not None:
            kind, value = "sender", sender
        else:
            raise UsageError(f"--node {entry!r}: {key!r} is not a node id (0-65535), a MAC "
                             "or an IP address")
        if kind in routes.setdefault(env_id, {}):
            raise UsageError(f"--node: two {kind}s for environment {env_id!r}")
        routes[env_id][kind] = value
    return routes


def _serve_config(args: argparse.Namespace) -> config.ServeConfig:
    """The configuration file if one is given, else the flags. With a file, only --model,
    --device, --host and --port override it; source flags are refused (the file lists
    the environments and their sources)."""
    if args.config:
        given = [f"--{k}" for k, default in _SOURCE_FLAGS.items() if getattr(args, k) != default]
        if given:
            raise UsageError(f"{', '.join(given)} cannot be combined with --config: describe "
                             "environments and sources in the file ([[environments]])")
        cfg = config.load(args.config)
    else:
        cfg = config.ServeConfig(jwt=config.jwt_from_environment())
        ids = list(dict.fromkeys(args.environment or ["room_001"]))
        serial: dict[str, str] = {}
        for entry in args.serial:
            # PORT or PORT=ENV (default: the first environment).
            port, _, env_id = entry.rpartition("=") if "=" in entry else (entry, "", "")
            env_id = env_id or ids[0]
            if env_id in serial:
                raise UsageError(f"--serial: two ports for environment {env_id!r}")
            serial[env_id] = port
            if env_id not in ids:
                ids.append(env_id)
        routes = _node_routes(args.node)
        live = args.replay or args.udp is not None or serial
        for i, env_id in enumerate(ids):
            env = config.Environment(id=env_id, source="none", scenario=args.simulate,
                                     seed=args.seed, speed=args.speed, path=args.replay,
                                     oracle=args.oracle)
            route = routes.get(env_id, {})
            if env_id in serial:
                env.source, env.port, env.baud = "serial", serial[env_id], args.baud
                env.ports = [serial[env_id]]
                env.mac = route.get("mac")
            elif args.replay and i == 0:
                env.source = "replay"
                env.paths = [args.replay]
            elif args.udp is not None and (route or i == 0):
                env.source = "udp"
                env.node, env.mac, env.sender = (route.get("node"), route.get("mac"),
                                                 route.get("sender"))
                if not route:
                    env.node = 0  # the first environment takes node 0 unless routed
                env.nodes = [] if env.node is None else [env.node]
                env.macs = [] if env.mac is None else [env.mac]
                env.senders = [] if env.sender is None else [env.sender]
            elif i == 0 and not live and args.simulate != "none":
                env.source = "simulate"
            cfg.environments.append(env)
        if args.udp is not None:
            cfg.udp_port = args.udp
    if args.model is not None:
        if args.model not in ("default", "none") and not os.path.isfile(args.model):
            raise config.ConfigError(f"--model: no such file {args.model!r}")
        cfg.model.path = args.model
    if args.device is not None:
        cfg.model.device = args.device
    if args.host is not None:
        cfg.server["host"] = args.host
    if args.port is not None:
        cfg.server["port"] = args.port
    cfg.server.setdefault("host", "127.0.0.1")
    cfg.server.setdefault("port", 8000)
    if not cfg.environments:
        cfg.environments.append(config.Environment(id="room_001"))
    return cfg


def _model(cfg: config.ModelConfig):
    from .model import Model

    if cfg.path == "none":
        return None
    if cfg.path == "default":
        return Model.default(threads=cfg.threads, device=cfg.device)
    return Model.load(cfg.path, threads=cfg.threads, device=cfg.device)


class _ConsoleWarnings:
    """Prints the server's warnings and errors on the terminal, each distinct one once: a
    model that cannot read a source's CSI (a one-antenna replay), a stalled source, a
    calibration dropped. Without this, `serve` printed its model line and the only sign
    that the model never ran was a system_event nobody was subscribed to."""

    SEVERE = ("warning", "error", "critical")
    MAX_REMEMBERED = 256

    def __init__(self) -> None:
        self._seen: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def __call__(self, data: dict[str, Any]) -> None:
        if data.get("severity") not in self.SEVERE:
            return
        env = str(data.get("environment_id") or "server")
        what = str(data.get("event") or data.get("event_type") or "event")
        message = str(data.get("message") or "")
        # Counts in a message (packets lost, seconds stalled) do not make it a new one.
        key = (env, what, re.sub(r"[0-9.]+", "#", message))
        with self._lock:
            if key in self._seen or len(self._seen) > self.MAX_REMEMBERED:
                return
            self._seen.add(key)
            if len(self._seen) > self.MAX_REMEMBERED:
                print(f"  ({self.MAX_REMEMBERED} kinds of warning printed; later kinds are "
                      "not: subscribe to system_event for them)", file=sys.stderr, flush=True)
                return
        print(f"  {env}: {data['severity']}: {message or what}", file=sys.stderr, flush=True)


def _serve(args: argparse.Namespace) -> int:
    cfg = _serve_config(args)
    server = Server(config=cfg.server, model=_model(cfg.model),
                    inference_rate_hz=cfg.model.rate_hz, **cfg.jwt)
    server.start()
    console = _ConsoleWarnings()
    server.on("system_event", console)
    server.on("hardware_event", console)
    runs = []
    for env in cfg.environments:
        server.add_environment(env.id, device=env.device, room=env.room, placement=env.placement,
                               source_placements=env.source_placements or None)
        if env.calibration is not None:
            server.set_calibration(env.id, env.calibration)
    can_issue = cfg.jwt.get("jwt_secret") is None or args.print_token
    token = server.issue_token("cli", ttl_s=args.token_ttl) if can_issue and "jwt_public_key" not in cfg.jwt else None
    print(f"WiFi-DensePose server listening on {server.url}", flush=True)
    print(f"  health:  {server.http_url}/health", flush=True)
    print(f"  metrics: {server.http_url}/metrics", flush=True)
    if token:
        print(f"  token ({args.token_ttl} s): {token}", flush=True)
        print(f"  connect: {server.url}?token={token}", flush=True)
    # The interpreter running this server has `websockets`; a shell's `python` may not.
    print(f"  try:     {shlex.quote(sys.executable)} -m websockets "
          f"'{server.url}?token={token or '<token>'}'", flush=True)
    dashboard = f"{server.http_url}/dashboard/" + (f"?token={token}" if token else "")
    print(f"  dashboard: {dashboard}", flush=True)
    model = server.model
    if model is None:
        print("  model:   none (no inference)", flush=True)
    elif model.kind == "classifier":
        window_s, hop_s = model.window or (0.0, 0.0)
        print(f"  model:   {model.version} on {model.device}, a classifier of "
              f"{', '.join(model.classes)}: {window_s:g} s windows every {hop_s:g} s "
              "(classes in pose_data's activity.type; positions come from no model)", flush=True)
    else:
        print(f"  model:   {model.version} on {model.device}, "
              f"{cfg.model.rate_hz:g} windows/s per environment with 3 receive antennas "
              "(other sources: the sensor's pose_data, said below when one arrives)", flush=True)
    udp_envs = [e for e in cfg.environments if e.source == "udp"]
    udp_nodes = {n: e.id for e in udp_envs for n in e.nodes}
    udp_macs = {m: e.id for e in udp_envs for m in e.macs}
    udp_senders = {a: e.id for e in udp_envs for a in e.senders}
    try:
        if cfg.udp_port is not None:
            listener = server.listen_udp(udp_nodes, port=cfg.udp_port, host=cfg.udp_host,
                                         macs=udp_macs, senders=udp_senders)
            routed = ", ".join(f"{k} -> {v}" for k, v in
                               [*udp_nodes.items(), *udp_macs.items(), *udp_senders.items()])
            print(f"  udp:     {cfg.udp_host}:{listener.port}, nodes {udp_nodes}"
                  + (f" ({routed})" if udp_macs or udp_senders else ""), flush=True)
        # Serial ports are this machine's hardware: read them whatever the leases say.
        serials = [server.listen_serial(port, e.baud, e.id, mac=e.mac)
                   for e in cfg.environments if e.source == "serial" for port in e.ports]
    except (OSError, RuntimeError, ValueError):
        server.stop()
        raise
    # With a broker (several nodes), an environment's simulated or replayed source runs on
    # the node holding its lease; the others stand by and take over when it expires.
    leased = server.node_id is not None
    running: dict[str, list[Any]] = {}
    standby: list[config.Environment] = []
    for env in cfg.environments:
        if env.source == "simulate":
            what = f"simulated scenario '{env.scenario}' (seed {env.seed}), repeating"
            if env.oracle:
                what += "; poses from the simulator's truth (oracle), not a model"
        elif env.source == "replay":
            what = f"replay of {', '.join(env.paths)} at {env.speed}x"
        elif env.source == "udp":
            keys = [f"node {n}" for n in env.nodes] + [f"mac {m}" for m in env.macs] + [
                f"sender {a}" for a in env.senders]
            what = f"ESP32 {' / '.join(keys)} over UDP"
        elif env.source == "serial":
            what = f"CSI_DATA lines on serial port {', '.join(env.ports)} at {env.baud} baud"
            if env.mac:
                what += f" (transmitter {env.mac} only)"
        else:
            what = "no source (inject or publish)"
        if env.source in ("simulate", "replay"):
            if leased and not server.claim_environment(env.id):
                holder = server.lease_holder(env.id)
                what += f"; standing by (node {holder} runs it)"
                standby.append(env)
            else:
                running[env.id] = _start_source(server, env)
                runs.extend(running[env.id])
        if env.source_placements:
            what += f"; placed links: {', '.join(env.source_placements)}"
        print(f"  {env.id}: {what}", flush=True)
    print("Press Ctrl+C to stop.", flush=True)
    server.publish(
        "system_event",
        {"event": "system_started", "status": "running", "severity": "info",
         "configuration": {"environments": [e.id for e in cfg.environments]}},
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = time.monotonic()
    while not stop.wait(0.2):
        if leased:
            _follow_leases(server, cfg.environments, running, standby, runs)
        failed = [r for r in runs if r.done and r.error]
        if failed:
            print(f"error: {failed[0].path}: {failed[0].error}", file=sys.stderr)
            server.stop()
            return 1
        if args.duration and time.monotonic() - started >= args.duration:
            break
    for port in serials:
        port.stop()
    server.stop()  # publishes system_stopping to subscribed clients first
    return 0


def _start_source(server: Server, env: config.Environment) -> list[Any]:
    """The environment's simulation or replays (one per file), started."""
    if env.source == "simulate":
        # The embedded default: the physical simulator as the room's live source.
        return [server.simulate(env.id, env.scenario, seed=env.seed, speed=env.speed,
                                duration_s=env.duration_s, device=env.device, repeat=True,
                                oracle=env.oracle)]
    paths = env.paths or ([env.path] if env.path else [])
    assert paths  # config.parse requires one for replay
    return [server.replay(env.id, p, speed=env.speed, format=env.format) for p in paths]


def _follow_leases(server: Server, envs: list[config.Environment], running: dict[str, list[Any]],
                   standby: list[config.Environment], runs: list[Any]) -> None:
    """Takes over environments whose lease another node let expire; stops the sources of
    those whose lease was lost (the broker was away longer than the lease)."""
    for env in list(standby):
        try:
            held = server.claim_environment(env.id)
        except RuntimeError:  # the broker is unreachable: try again later
            return
        if held:
            standby.remove(env)
            running[env.id] = _start_source(server, env)
            runs.extend(running[env.id])
            print(f"  {env.id}: took over (lease acquired by node {server.node_id})", flush=True)
    for env in envs:
        started = running.get(env.id)
        if started is not None and not server.holds_lease(env.id):
            for run in started:
                run.stop()
            del running[env.id]
            standby.append(env)
            print(f"  {env.id}: lease lost; standing by", flush=True)


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

    options = {} if args.nexmon_chip is None else {"nexmon_chip": args.nexmon_chip}
    for path in args.files:
        print(inspect_text(path, args.format, **options))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from . import sim

    if args.list:
        print("scenarios: " + ", ".join(sim.scenarios()))
        print("devices:   " + ", ".join(sim.devices()))
        return 0
    t0 = time.monotonic()
    out = sim.simulate_to_file(args.scenario, args.seed, args.duration, args.out,
                               device=args.device, fps=args.fps)
    data = sim.load(out)
    people = int(data["present"].any(axis=0).sum())
    falls = len(data["falls"])
    links = [data] if "csi" in data else list(data["nodes"])
    frames = ", ".join(f"{len(link['csi'])} frames of {'x'.join(map(str, link['csi'].shape[1:]))}"
                       for link in links)
    nodes = f" from {len(links)} nodes" if "nodes" in data else ""
    print(f"{out}: {frames} CSI{nodes}, {people} {'person' if people == 1 else 'people'}, "
          f"{falls} {'fall' if falls == 1 else 'falls'}, ground truth "
          f"included ({time.monotonic() - t0:.1f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wifi-densepose",
        description="WiFi CSI to live pose, tracks, activities and occupancy over WebSocket.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the WebSocket API server",
                       description="Run the server; prints the URL and a token to connect with.")
    s.add_argument("--host", default=None, help="default 127.0.0.1")
    s.add_argument("--port", type=int, default=None, help="0 picks a free port (default 8000)")
    s.add_argument("--config", help="a TOML file: [server], [model], [[environments]] with "
                                    "their sources, [udp] (see wifi_densepose/config.py); "
                                    "source flags cannot be combined with it")
    s.add_argument("--environment", action="append", default=[],
                   help="an environment id to serve (repeatable; default room_001)")
    s.add_argument("--replay", metavar="FILE", help="replay a CSI recording into the first environment")
    s.add_argument("--speed", type=float, default=1.0,
                   help="replay/simulation speed (1 = real time, 0 = flat out)")
    s.add_argument("--simulate", default="walk", metavar="SCENARIO",
                   help="simulated source when no --replay/--udp/--serial is given (default: walk; "
                        "'none' for no source)")
    s.add_argument("--seed", type=int, default=0, help="simulator seed")
    s.add_argument("--oracle", action="store_true",
                   help="feed tracking and analytics with the simulator's ground truth (with "
                        "realistic detection noise) instead of a model: labelled "
                        "model_version 'oracle:simulator-truth'")
    s.add_argument("--model", default=None, metavar="PATH",
                   help="the pose model: 'default' (bundled; the default), 'none' (no "
                        "inference) or an ONNX file fitting docs/model.md's contract")
    s.add_argument("--device", default=None, choices=None, metavar="DEVICE",
                   help="run the model on 'cpu' (default), 'cuda' or 'cuda:N' (needs the "
                        "onnxruntime-gpu wheel)")
    s.add_argument("--udp", type=int, metavar="PORT",
                   help="receive ESP32 UDP datagrams on PORT (0: any): WDPC or RuView frames, "
                        "CSI_DATA lines (docs/esp32-live.md)")
    s.add_argument("--node", action="append", default=[], metavar="KEY=ENV",
                   help="route to environment ENV (repeatable) the UDP frames of node id KEY, "
                        "or CSI_DATA lines whose mac is KEY (a MAC) or sent from KEY (an IP "
                        "address); with --serial, a MAC keeps that transmitter's lines only")
    s.add_argument("--serial", action="append", default=[], metavar="PORT[=ENV]",
                   help="read ESP32-CSI-Tool / esp-csi CSI_DATA lines from serial PORT (e.g. "
                        "/dev/ttyUSB0) into ENV (default: the first environment); repeatable")
    s.add_argument("--baud", type=int, default=config.DEFAULT_BAUD,
                   help=f"serial baud rate (default {config.DEFAULT_BAUD})")
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
    i.add_argument("--nexmon-chip", help="bcm4339, bcm4358, bcm43455c0 or bcm4366c0, where "
                                         "the capture does not tell")
    i.set_defaults(func=_inspect)
    m = sub.add_parser("simulate", help="simulate a scenario to an .npz (CSI + ground truth)",
                       description="Generate simulated CSI with exact ground truth "
                                   "(see docs/simulator.md).")
    m.add_argument("scenario", nargs="?", default="walk",
                   help="a scenario name (see --list) or a .toml/.json description")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    m.add_argument("--device", help="device profile (default: the scenario's, intel5300)")
    m.add_argument("--fps", type=float, help="packets per second (default: the scenario's)")
    m.add_argument("--out", default="simulation.npz", help="output file (default simulation.npz)")
    m.add_argument("--list", action="store_true", help="list scenarios and devices, then exit")
    m.set_defaults(func=_simulate)
    from . import calibrate_cli

    c = sub.add_parser("calibrate", help="learn an empty room from a recording of it, to JSON",
                       description=calibrate_cli.__doc__.split("\n\n")[1] if calibrate_cli.__doc__ else None)
    calibrate_cli.add_arguments(c)
    c.set_defaults(func=calibrate_cli.run)
    from . import analyze_cli

    a = sub.add_parser("analyze", help="run the live pipeline over a recording: a summary, "
                                       "a timeline, the messages as JSON Lines",
                       description=analyze_cli.__doc__.split("\n\n")[1] if analyze_cli.__doc__ else None)
    analyze_cli.add_arguments(a)
    a.set_defaults(func=analyze_cli.run)
    from . import evaluate

    e = sub.add_parser("evaluate", help="score a pose model on held-out simulated data, or a trained classifier on labelled recordings (--data --labels)",
                       description="Run a model on simulated clips whose seeds, rooms and "
                                   "paths training never used; print PCK, keypoint error, "
                                   "count, activity, fall and dense-pose figures beside "
                                   "trivial baselines (docs/model.md).")
    evaluate.add_arguments(e)
    e.set_defaults(func=evaluate.run)
    from . import train_cli

    t = sub.add_parser("train", help="train a classifier on your labelled recordings",
                       description="Read the recordings LABELS.csv names (any format the "
                                   "readers know), describe them with the engine's window "
                                   "features and fit a classifier of their labels; write "
                                   "it as ONNX for serve --model / Server(model=...). "
                                   "--holdout-group G scores it on groups it never saw "
                                   "(docs/training.md).")
    train_cli.add_train_arguments(t)
    t.set_defaults(func=train_cli.run_train)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ValueError, OSError, RuntimeError) as e:  # ConfigError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
