"""The whole system under load, measured end to end (issue #10).

M environments, each fed by a simulated room at the source's own pace (100 CSI packets a
second, 3x3x30, real time), run through conditioning, the bundled pose model (30 windows
a second per environment), tracking and analytics, and the resulting events go to N
WebSocket clients with mixed subscriptions, held by a Rust load client
(benches/load_client.rs) that timestamps every pose_data on arrival.

    python benches/load.py             # the README's table: N = 10, 100, 1000; writes
                                       # benches/results/load.json
    python benches/load.py --quick     # a smaller run (N = 10, 100; short windows)

Each trial starts a fresh server process (pinned to CPU 0 with --pin, the default: the
"environments on one core" figure) and the load client (on the other CPU). Reported per
trial: CSI-to-client latency of pose_data (client receipt time minus
``metadata.source_time``, the due time of the newest CSI packet in the frame) p50 / p99 /
max, delivered messages per second, server CPU per environment (process CPU time / M /
wall time), resident memory, and whether the trial kept 30 FPS.

"Keeps 30 FPS" means, over the measurement window: probe clients subscribed to every
environment's pose_data at 30 FPS (one subscription per environment) got on average at
least 29.5 frames/s per environment and at least 29.0 from the slowest (a 10 s count
varies by a frame or two; a healthy run gives 29.6-29.8: the simulator loses 1% of
packets); no environment's input fell behind its source (frames sent by the simulator
minus frames taken by the environment grew by fewer than 30, 0.3 s of packets); the
pose_data p99 latency stayed under 100 ms (three frame periods: later than that a frame
is not live); and no client was disconnected as a slow consumer.

The machine is shared: other processes' CPU time on the server's core and on the
client's is measured from /proc/stat during each window and reported; a trial that fails
while they took more than 10% of the server's core (or 50% of the client's) is run again
(twice at most) unless the server had filled its core itself.

The baseline is the same system with the model off and the simulator's oracle detections
in its place (``oracle=True``: truth with misses, ghosts and noise, through the same
tracking, analytics and fan-out): ratios model / oracle isolate what conditioning and
inference cost. A third mode, ``source``, runs the simulators with neither (no pose_data)
to show what the sources themselves cost inside the server process.

Nothing here is a test: figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from portable import write_result

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
CLIENT = TARGET / "release" / "examples" / "load_client"
RESULTS = ROOT / "benches" / "results" / "load.json"

#: Scenarios the environments cycle through (people walking, sitting, falling, leaving).
SCENARIOS = ["walk", "two_people", "fall_recover", "sit_stand", "enter_leave"]

#: Probe clients: every environment's pose_data at 30 FPS, one subscription per
#: environment, PROBE_ENVS environments per client (the 30 FPS check).
PROBE_ENVS = 25
#: The other clients take these round-robin ({env}, {env2}: one environment per client).
MIX = {
    # A live view of one room at full rate.
    "room_live": [{"event_type": "pose_data", "filters": {"environment_id": "{env}"},
                   "throttle": {"max_fps": 30, "buffer_size": 1}}],
    # An overview of every room, throttled, without keypoints. (buffer_size bounds a
    # subscription's waiting messages, all rooms together: room frames come in bursts.)
    "overview": [{"event_type": "pose_data", "filters": {"include_keypoints": False},
                  "throttle": {"max_fps": 5, "buffer_size": 100}}],
    # Alerts only, every room.
    "alerts": [{"event_type": "activity_event"}, {"event_type": "occupancy_update"},
               {"event_type": "tracking_update"}],
    # One room at 10 FPS, confident people only, its analytics, and hardware health.
    "room_detail": [{"event_type": "pose_data",
                     "filters": {"environment_id": "{env2}", "min_confidence": 0.5},
                     "throttle": {"max_fps": 10}},
                    {"event_type": "analytics_stream", "filters": {"environment_id": "{env2}"}},
                    {"event_type": "hardware_event"}],
}

FPS_FLOOR = 29.5  # the mean over environments
FPS_MIN = 29.0  # the slowest environment (a 10 s count varies by a frame or two)
P99_CEILING_MS = 100.0
BACKLOG_GROWTH_MAX = 30


def subscribe_message(subs: list) -> str:
    return json.dumps({"type": "subscribe", "data": {"subscriptions": subs}})


def probe_messages(envs: int) -> list[str]:
    """One subscribe message per probe client."""
    out = []
    for first in range(0, envs, PROBE_ENVS):
        out.append(subscribe_message([
            {"event_type": "pose_data",
             "filters": {"environment_id": f"env_{i}", "include_keypoints": False},
             "throttle": {"max_fps": 30, "buffer_size": 1}}
            for i in range(first, min(first + PROBE_ENVS, envs))]))
    return out


# -- the server process -------------------------------------------------------------------
def serve(a: argparse.Namespace) -> None:
    if a.cpu is not None:
        # Before any thread exists: every thread the server starts inherits it.
        os.sched_setaffinity(0, {a.cpu})
    import wifi_densepose as wdp

    config: dict = {"heartbeat_timeout_s": 600.0, "permessage_deflate": False}
    if a.lag_window:
        config["lag_window_messages"] = a.lag_window
    model = "default" if a.mode == "model" else None
    with wdp.Server(model=model, config=config) as s:
        envs = [f"env_{i}" for i in range(a.envs)]
        runs = []
        for i, env in enumerate(envs):
            s.add_environment(env)
            runs.append(s.simulate(env, SCENARIOS[i % len(SCENARIOS)], seed=i, duration_s=30.0,
                                   speed=1.0, repeat=True, oracle=a.mode == "oracle"))
        print(json.dumps({"url": s.url, "token": s.issue_token("load"), "pid": os.getpid()}),
              flush=True)
        for line in sys.stdin:
            if line.strip() != "stats":
                break
            stats = {env: s.environment_stats(env) for env in envs}
            out = {
                "envs": {env: {"frames": st["frames"], "sent": run.sent,
                               "waits": st["model"]["waits"],
                               "answered": st["model"]["windows_answered"]}
                         for (env, st), run in zip(stats.items(), runs)},
                "model": s.model_info(),
                "metrics": {m.group(1): float(m.group(2)) for m in re.finditer(
                    r"^(wdp_\w+) ([0-9.e+-]+)$", s.metrics(), re.MULTILINE)},
            }
            print(json.dumps(out), flush=True)


# -- measuring one trial ------------------------------------------------------------------
def cpu_busy_s() -> dict:
    """Busy seconds of each CPU so far (/proc/stat: everything but idle and iowait)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *ticks = line.split()
            if name.startswith("cpu") and name != "cpu":
                t = [int(x) for x in ticks[:8]]
                out[int(name[3:])] = (sum(t) - t[3] - t[4]) / os.sysconf("SC_CLK_TCK")
    return out


def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_mem_mb(pid: int) -> tuple[float, float]:
    rss = hwm = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return rss, hwm


def trial(mode: str, envs: int, clients: int, a: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "serve", "--mode", mode, "--envs", str(envs)]
    if a.pin:
        cmd += ["--cpu", "0"]
    if a.lag_window:
        cmd += ["--lag-window", str(a.lag_window)]
    server = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    client = None
    try:
        assert server.stdout is not None and server.stdin is not None
        hello = json.loads(server.stdout.readline())

        def stats() -> dict:
            server.stdin.write("stats\n")
            server.stdin.flush()
            return json.loads(server.stdout.readline())

        subs = [subscribe_message(s) for s in MIX.values()]
        ccmd = [str(CLIENT), "--url", f"{hello['url']}?token={hello['token']}",
                "--clients", str(clients), "--envs", str(envs),
                "--warmup", str(a.warmup), "--duration", str(a.duration)]
        for s in subs:
            ccmd += ["--sub", s]
        for s in probe_messages(envs):
            ccmd += ["--probe", s]
        client = subprocess.Popen(ccmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        assert client.stdout is not None
        ready = json.loads(client.stdout.readline())
        time.sleep(a.warmup)
        pid = hello["pid"]
        b0 = cpu_busy_s()
        t0, c0, cc0, s0 = time.monotonic(), proc_cpu_s(pid), proc_cpu_s(client.pid), stats()
        time.sleep(a.duration)
        t1, c1, cc1, s1 = time.monotonic(), proc_cpu_s(pid), proc_cpu_s(client.pid), stats()
        b1 = cpu_busy_s()
        rss, hwm = proc_mem_mb(pid)
        out, err = client.communicate(timeout=60)
        lines = [ln for ln in out.splitlines() if ln.startswith('{"clients"')]
        if not lines:
            raise RuntimeError(f"load client failed: {err[-2000:]}")
        res = json.loads(lines[-1])
        if os.environ.get("LOAD_CLIENT_SLOW_MS"):
            print(err[-4000:])
    finally:
        if client is not None and client.poll() is None:
            client.kill()
            client.wait()
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
    wall = t1 - t0
    backlog_growth = max(
        (s1["envs"][e]["sent"] - s1["envs"][e]["frames"])
        - (s0["envs"][e]["sent"] - s0["envs"][e]["frames"]) for e in s1["envs"])
    frames_per_s = min((s1["envs"][e]["frames"] - s0["envs"][e]["frames"]) / wall
                       for e in s1["envs"])
    probe = res["probe_per_env"]
    probe_fps = [probe.get(f"env_{i}", 0) / res["duration_s"] for i in range(envs)]
    # What other processes took from the server's CPU (and from the client's) during the
    # window: a pinned server cannot move away from them, so a trial that fails under
    # such contention is tried again (search()).
    busy = {c: b1[c] - b0.get(c, b1[c]) for c in b1}
    if a.pin:
        foreign_server = busy.get(0, 0.0) - (c1 - c0)
        foreign_client = busy.get(1, 0.0) - (cc1 - cc0)
    else:
        foreign_server = foreign_client = sum(busy.values()) - (c1 - c0) - (cc1 - cc0)
    m0, m1 = s0["metrics"], s1["metrics"]
    slow = m1.get("wdp_slow_consumer_disconnects_total", 0)
    waits = sum(s1["envs"][e]["waits"] - s0["envs"][e]["waits"] for e in s1["envs"])
    row = {
        "mode": mode, "envs": envs, "clients": clients, "ready": ready["ready"],
        "window_s": round(wall, 3),
        "p50_ms": res["p50_ms"], "p99_ms": res["p99_ms"], "max_ms": res["max_ms"],
        "pose_samples": res["pose_samples"],
        "delivered_msgs_per_s": res["msgs_per_s"], "delivered_bytes_per_s": res["bytes_per_s"],
        "server_msgs_sent_per_s": round(
            (m1.get("wdp_messages_sent_total", 0) - m0.get("wdp_messages_sent_total", 0)) / wall, 1),
        "types": res["types"], "seq_gaps": res["seq_gaps"],
        "frames_dropped": m1.get("wdp_frames_dropped_total", 0) - m0.get("wdp_frames_dropped_total", 0),
        "slow_consumer_disconnects": slow, "closed_early": res["closed_early"],
        "server_cpu_pct": round(100 * (c1 - c0) / wall, 1),
        "cpu_pct_per_env": round(100 * (c1 - c0) / wall / envs, 2),
        "client_cpu_pct": round(100 * (cc1 - cc0) / wall, 1),
        "rss_mb": round(rss, 1), "peak_rss_mb": round(hwm, 1),
        "probe_fps_min": round(min(probe_fps), 2) if probe_fps else None,
        "probe_fps_mean": round(sum(probe_fps) / len(probe_fps), 2) if probe_fps else None,
        "foreign_cpu_pct_server_core": round(100 * foreign_server / wall, 1),
        "foreign_cpu_pct_client_core": round(100 * foreign_client / wall, 1),
        "csi_frames_per_s_min": round(frames_per_s, 1),
        "backlog_growth_frames": backlog_growth, "model_waits": waits,
        "model": s1["model"],
    }
    reasons = []
    if row["ready"] < clients:
        reasons.append(f"only {row['ready']} of {clients} clients ready")
    if not probe_fps or row["probe_fps_mean"] < FPS_FLOOR or min(probe_fps) < FPS_MIN:
        reasons.append(f"pose_data mean {row['probe_fps_mean']}/s, min {row['probe_fps_min']}/s "
                       f"(need {FPS_FLOOR}, {FPS_MIN})")
    if backlog_growth >= BACKLOG_GROWTH_MAX:
        reasons.append(f"input backlog grew by {backlog_growth} frames")
    if row["p99_ms"] is None or row["p99_ms"] > P99_CEILING_MS:
        reasons.append(f"p99 {row['p99_ms']} ms > {P99_CEILING_MS}")
    if slow:
        reasons.append(f"{slow:.0f} slow-consumer disconnects")
    row["keeps_30fps"] = not reasons
    row["why_not"] = reasons
    print(f"  {mode:6} M={envs:3} N={clients:4}: p50 {row['p50_ms']} p99 {row['p99_ms']} "
          f"max {row['max_ms']} ms, {row['delivered_msgs_per_s']:.0f} msg/s, "
          f"cpu {row['server_cpu_pct']}% ({row['cpu_pct_per_env']}%/env), client cpu "
          f"{row['client_cpu_pct']}%, rss {row['rss_mb']} MB, probe "
          f"{row['probe_fps_mean']}/s, others' cpu {row['foreign_cpu_pct_server_core']}%/"
          f"{row['foreign_cpu_pct_client_core']}%, "
          f"{'ok' if row['keeps_30fps'] else '; '.join(reasons)}",
          flush=True)
    return row


def measured(mode: str, envs: int, clients: int, a: argparse.Namespace, log: list) -> dict:
    """A trial; one that fails while other processes took more than a.foreign_max % of the
    server's CPU (or 5 times that of the client's) is tried again, up to a.retries times:
    the figure is the system's, not the neighbours'."""
    for attempt in range(a.retries + 1):
        row = trial(mode, envs, clients, a)
        row["attempt"] = attempt
        log.append(row)
        # The client's core matters less (the client mostly waits, and a waking task
        # is served quickly); a server that filled its core failed on its own.
        contended = (row["foreign_cpu_pct_server_core"] > a.foreign_max
                     or row["foreign_cpu_pct_client_core"] > 5 * a.foreign_max) \
            and row["server_cpu_pct"] < 95
        row["contended"] = contended
        if row["keeps_30fps"] or not contended:
            return row
        print("    (other processes were busy on these CPUs: trying again)", flush=True)
        time.sleep(10)
    return row


def search(mode: str, clients: int, a: argparse.Namespace, log: list) -> int:
    """The largest M that keeps 30 FPS: doubling from a.start_envs, then bisecting."""
    good, bad = 0, None
    m = a.start_envs
    while bad is None and m <= a.max_envs:
        row = measured(mode, m, clients, a, log)
        if row["keeps_30fps"]:
            good, m = m, m * 2
        else:
            bad = m
    if bad is None:
        return good  # a.max_envs kept up
    while bad - good > max(2, good // 10):
        mid = (good + bad) // 2
        row = measured(mode, mid, clients, a, log)
        if row["keeps_30fps"]:
            good = mid
        else:
            bad = mid
    return good


def table(fixed: list, best: dict) -> str:
    header = ("| N clients | pipeline | M | p50 ms | p99 ms | max ms | delivered msg/s "
              "| server CPU % per env | RSS MB | largest M at 30 FPS |")
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|"]
    for row in fixed:
        n, mode = row["clients"], row["mode"]
        lines.append(
            f"| {n:,} | {mode} | {row['envs']} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
            f"| {row['max_ms']:.1f} | {row['delivered_msgs_per_s']:,.0f} "
            f"| {row['cpu_pct_per_env']:.2f} | {row['rss_mb']:.0f} "
            f"| {best.get((mode, n), '—')} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", nargs="?", default="run", choices=["run", "serve"])
    p.add_argument("--mode", default="model", choices=["model", "oracle", "source"])
    p.add_argument("--envs", type=int, default=10, help="M at the fixed point (default 10)")
    p.add_argument("--clients", default="10,100,1000", help="the N values")
    p.add_argument("--modes", default="model,oracle", help="pipelines to measure")
    p.add_argument("--pin", type=int, default=1, help="1: server on CPU 0, clients on CPU 1")
    p.add_argument("--cpu", type=int, default=None, help="(serve) the CPU to run on")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--start-envs", type=int, default=10)
    p.add_argument("--max-envs", type=int, default=240)
    p.add_argument("--no-search", action="store_true", help="only the fixed point")
    p.add_argument("--retries", type=int, default=2,
                   help="tries again a failed trial that other processes disturbed")
    p.add_argument("--foreign-max", type=float, default=10.0,
                   help="%% of a CPU other processes may take before a failure is retried")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--lag-window", type=int, default=0,
                   help="the server's lag_window_messages (default: the server's own)")
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args()
    if a.command == "serve":
        return serve(a)
    if a.quick:
        a.clients, a.warmup, a.duration = "10,100", 2.0, 5.0
    if a.pin and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})  # the load client inherits this
    else:
        a.pin = 0
    subprocess.run(["cargo", "build", "--release", "--example", "load_client", "-q"],
                   cwd=ROOT, check=True)
    ns = [int(x) for x in a.clients.split(",")]
    modes = a.modes.split(",")
    started = datetime.now(UTC)
    load0 = os.getloadavg()
    print(f"load average before: {load0[0]:.2f}", flush=True)
    fixed, log, best = [], [], {}
    for n in ns:
        for mode in modes:
            print(f"N={n} {mode}: fixed point M={a.envs}", flush=True)
            fixed.append(measured(mode, a.envs, n, a, []))
    source = trial("source", a.envs, ns[0], a) if not a.quick else None
    if not a.no_search:
        for n in ns:
            for mode in modes:
                print(f"N={n} {mode}: searching the largest M", flush=True)
                best[(mode, n)] = search(mode, n, a, log)
    by = {(r["mode"], r["clients"]): r for r in fixed}
    ratios = {}
    for n in ns:
        if ("model", n) in by and ("oracle", n) in by:
            m, o = by[("model", n)], by[("oracle", n)]
            ratios[str(n)] = {
                "cpu_per_env": round(m["cpu_pct_per_env"] / o["cpu_pct_per_env"], 2),
                "p50": round(m["p50_ms"] / o["p50_ms"], 2),
                "p99": round(m["p99_ms"] / o["p99_ms"], 2),
                "largest_m": (round(best[("model", n)] / best[("oracle", n)], 2)
                              if best.get(("oracle", n)) else None),
            }
    aim = by.get(("model", 100))
    result = {
        "command": "python benches/load.py" + (" --quick" if a.quick else ""),
        "started": started.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_before": [round(x, 2) for x in load0],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "setup": {"pinned": bool(a.pin), "fixed_envs": a.envs, "warmup_s": a.warmup,
                  "window_s": a.duration, "scenarios": SCENARIOS, "csi_rate_hz": 100,
                  "csi_shape": [3, 3, 30], "probe_envs_per_client": PROBE_ENVS, "mix": MIX,
                  "retries": a.retries, "foreign_cpu_max_pct": a.foreign_max,
                  "keeps_30fps": {"probe_fps_mean_floor": FPS_FLOOR, "probe_fps_min": FPS_MIN,
                                  "p99_ceiling_ms": P99_CEILING_MS,
                                  "backlog_growth_max_frames": BACKLOG_GROWTH_MAX}},
        "fixed": fixed,
        "source_only": source,
        "largest_m": {f"{mode}/{n}": m for (mode, n), m in best.items()},
        "ratios_model_over_oracle": ratios,
        "aims": {
            "p99_under_20ms_at_M10_N100": (aim["p99_ms"] < 20.0) if aim and a.envs == 10 else None,
            "at_least_20_envs_on_one_core": (best[("model", ns[0])] >= 20
                                             if ("model", ns[0]) in best and a.pin else None),
        },
        "search_trials": log,
    }
    write_result(a.out, result)
    print()
    print(table(fixed, best))
    if ratios:
        print("\nmodel / oracle: " + "; ".join(
            f"N={n}: CPU/env {r['cpu_per_env']}x, p99 {r['p99']}x"
            + (f", largest M {r['largest_m']}x" if r["largest_m"] else "")
            for n, r in ratios.items()))
    if source:
        print(f"sources alone (simulators, no pose): {source['cpu_pct_per_env']} %/env")
    print(f"\nwritten: {a.out.relative_to(ROOT) if a.out.is_relative_to(ROOT) else a.out}; "
          f"load average before {load0[0]:.2f}, after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
