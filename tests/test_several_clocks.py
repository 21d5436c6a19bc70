"""Several receivers of one room, each with its own clock and its own placement
(``src/pipeline/clocks.rs``, ``src/pipeline/placing.rs``, ``docs/sensing.md`` "Several
clocks"): node clocks 1000 s apart are put on the environment's time base so their maps
are fused; a clock that goes back is re-aligned and says so; ``source_placements`` in the
serve config file reach a real ``serve`` fed by UDP nodes.

The room: the held-out "val" draw 11 that ``test_localizer.py`` uses (two Intel 5300 3x3
receivers of one transmitter, one walker), where node 0 alone sits on a wrong lobe and the
two maps fused place the walker."""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
import pytest
import wifi_densepose as wdp
from wifi_densepose import ConfigError, Server, SyncClient, config, sim, sim_dataset
from wifi_densepose.udp import encode_frame

from tests.test_localizer import PoseRows, _injected_placements, _walking_errors


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    d = sim_dataset.draw("val", 11, devices=("intel5300",), duration_s=30, nodes=2)
    return {"draw": d, "data": sim.generate(d["scenario"], dense_pose_grid=0)}


def _order(data: dict[str, Any]) -> list[int]:
    """The nodes in the order their first frames were sampled: the first is the time base."""
    return sorted(range(len(data["nodes"])), key=lambda k: float(data["nodes"][k]["true_time"][0]))


def _errors(run: dict[str, Any], rows: list[tuple[float, float, float]]) -> np.ndarray:
    assert rows, "nobody was placed"
    t, x, y = (np.array(c) for c in zip(*rows))
    return _walking_errors(run, {"t": t, "x": x, "y": y})[0]


def _analyzed(run: dict[str, Any], nodes: list[dict[str, Any]]) -> tuple[np.ndarray, list[dict]]:
    errors, _, hardware = _analyzed_rows(run, nodes)
    return errors, hardware


def _analyzed_rows(run: dict[str, Any], nodes: list[dict[str, Any]]
                   ) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Walking errors, the (t, x, y) of every position published, the hardware_events."""
    events = wdp.analyze({**run["data"], "nodes": nodes}, model=None)
    rows = [(m["data"]["metadata"]["source_time"], q["position"]["x"], q["position"]["y"])
            for m in events if m["type"] == "pose_data"
            for q in m["data"]["persons"] if "position" in q]
    hardware = [m["data"] for m in events if m["type"] == "hardware_event"]
    return _errors(run, rows), np.array(rows), hardware


def _same_fixes(a: np.ndarray, b: np.ndarray) -> float:
    """The share of `a`'s positions that `b` has too (a position within 5 cm at a time
    within 20 ms): maps paired as in `b` give the same fixes."""
    j = np.clip(np.searchsorted(b[:, 0], a[:, 0]), 1, len(b) - 1)
    same = np.zeros(len(a), bool)
    for k in (j - 1, j):
        same |= (np.abs(b[k, 0] - a[:, 0]) < 0.02) & (np.hypot(*(b[k, 1:] - a[:, 1:]).T) < 0.05)
    return float(same.mean())


def _shifted(node: dict[str, Any], shift: np.ndarray | float) -> dict[str, Any]:
    # The node's own clock reads `shift` more; the order they sampled is unchanged.
    return {**node, "timestamps": np.asarray(node["timestamps"], float) + shift}


def test_node_clocks_1000_s_apart_are_fused_as_if_they_shared_one(run):
    first, second = _order(run["data"])
    nodes = run["data"]["nodes"]
    shared, shared_rows, _ = _analyzed_rows(run, nodes)
    alone, _ = _analyzed(run, [nodes[0]])
    apart = [None, None]
    apart[first], apart[second] = nodes[first], _shifted(nodes[second], 1000.0)
    fused, rows, hardware = _analyzed_rows(run, apart)
    # Unaligned, the 0.5 s fusion would never pair the two maps: each window would be
    # placed by one link's map alone. Aligned, the fixes are the shared clock's.
    assert _same_fixes(rows, shared_rows) > 0.9, _same_fixes(rows, shared_rows)
    assert np.median(fused) < 0.6 and np.median(fused) < 0.6 * np.median(alone), (
        np.median(fused), np.median(alone))
    assert abs(np.median(fused) - np.median(shared)) < 0.05, (np.median(fused), np.median(shared))
    assert not [h for h in hardware if h["event"] == "clock_realigned"]


def test_a_clock_that_goes_back_is_realigned_and_said(run):
    first, second = _order(run["data"])
    nodes = run["data"]["nodes"]
    alone, _ = _analyzed(run, [nodes[0]])
    ts = np.asarray(nodes[second]["timestamps"], float)
    # The second node restarts halfway (its clock back by 1500 s).
    jump = np.where(np.arange(len(ts)) < len(ts) // 2, 1000.0, -500.0)
    apart = [None, None]
    apart[first], apart[second] = nodes[first], _shifted(nodes[second], jump)
    fused, rows, hardware = _analyzed_rows(run, apart)
    _, shared_rows, _ = _analyzed_rows(run, nodes)
    assert _same_fixes(rows, shared_rows) > 0.9, _same_fixes(rows, shared_rows)
    realigned = [h for h in hardware if h["event"] == "clock_realigned"]
    assert len(realigned) == 1, realigned
    event = realigned[0]
    assert event["source_id"].endswith(nodes[second]["name"]) and event["severity"] == "warning"
    # Back 1500 s less the frame interval between its two frames.
    assert re.search(r"its clock went back 1499\.9\d\d s", event["message"]), event["message"]
    assert abs(event["metadata"]["clock_step_s"] - 1500.0) < 0.05, event["metadata"]
    assert np.median(fused) < 0.6 and np.median(fused) < 0.6 * np.median(alone), (
        np.median(fused), np.median(alone))


def test_a_server_aligns_injected_receivers_and_reports_the_links_it_fuses(run):
    data = run["data"]
    nodes = data["nodes"]
    first, second = _order(data)
    room, placements = _injected_placements(run, list(range(len(nodes))))
    collect = PoseRows()
    with Server(model=None) as server:
        server.add_environment("ward", device="intel5300", room=room, source_placements=placements)
        server.on("pose_data", collect)
        step, t_end = 0.1, max(float(n["timestamps"][-1]) for n in nodes)
        for t0 in np.arange(0.0, t_end + step, step):
            for k in (first, second):
                ts = np.asarray(nodes[k]["timestamps"], float)
                sel = (ts >= t0) & (ts < t0 + step)
                if sel.any():
                    own = ts[sel] + (1000.0 if k == second else 0.0)
                    server.inject_csi("ward", np.ascontiguousarray(nodes[k]["csi"][sel]), own,
                                      receiver=nodes[k]["name"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            stats = server.environment_stats("ward")
            if stats["frames"] == sum(len(n["timestamps"]) for n in nodes) and stats["queue_length"] == 0:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        stats = server.environment_stats("ward")
    sources = stats["sources"]
    # Injected 0.1 s at a time, so aligned to within that burst (documented: a source
    # that sends in bursts is placed at its bursts' arrival).
    assert abs(sources[f"inject:{nodes[second]['name']}"]["clock_offset_s"] + 1000.0) < 0.15, sources
    assert sources[f"inject:{nodes[first]['name']}"]["clock_offset_s"] == 0.0
    placing = stats["placing"]
    assert sorted(placing["links"]) == sorted(placements) and placing["fixes"] > 20, placing
    assert placing["last_fix_links"] == 2, placing
    assert np.median(_errors(run, collect.rows())) < 0.6


# ------------------------------------------------------------------ the serve config


def _env(**extra: Any) -> dict[str, Any]:
    return {"id": "ward", "source": "udp", "device": "intel5300", "node": [1, 2], **extra}


PLACE = {"tx_position": [0.2, 2.5, 1.2], "rx_position": [5.8, 1.0, 1.2]}


def test_source_placements_in_the_config_are_checked_like_the_argument(tmp_path):
    cfg = config.parse({"environments": [_env(source_placements={"udp:node_1": PLACE,
                                                                 "udp:node_2": PLACE})],
                        "udp": {"port": 0}})
    env = cfg.environments[0]
    assert env.nodes == [1, 2] and env.node == 1
    assert env.source_ids() == ["udp:node_1", "udp:node_2"]
    assert set(env.source_placements) == {"udp:node_1", "udp:node_2"}
    assert env.source_placements["udp:node_1"]["rx_axis"] == [0.0, 1.0, 0.0]  # filled in
    bad = [
        (_env(source_placements={"udp:node_3": PLACE}),
         ("environments[0].source_placements: 'udp:node_3' is not a source of this "
          "environment (its sources: udp:node_1, udp:node_2)")),
        (_env(source_placements={"udp:node_1": {"rx_position": [1, 2, 3]}}),
         "environments[0].source_placements['udp:node_1']: placement needs tx_position"),
        (_env(source_placements={"udp:node_1": {**PLACE, "tx_position": [1, 2]}}),
         "placement tx_position must be three finite numbers"),
        (_env(node=list(range(17)), source_placements={f"udp:node_{k}": PLACE for k in range(17)}),
         "environments[0].source_placements: at most 16 links per room, not 17"),
        ({**_env(source_placements={"udp:node_1": PLACE}), "device": None},
         "source_placements: needs the environment's device"),
        (_env(source_placements=[PLACE]), "source_placements: must be a table"),
        (_env(node=[]), "environments[0].node: an empty list"),
        (_env(node=[1, "2"]), "environments[0].node: must be an integer node id or a list"),
        ({"id": "ward", "source": "none", "source_placements": {}},
         "environments[0].source_placements: not a setting of source 'none'"),
    ]
    for env_table, message in bad:
        env_table = {k: v for k, v in env_table.items() if v is not None}
        with pytest.raises(ConfigError, match=re.escape(message)):
            config.parse({"environments": [env_table], "udp": {"port": 0}})
    # Replays are named by file name: two files of one name would be one source.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "rx.dat").write_bytes(b"\0")
    with pytest.raises(ConfigError, match="two sources would both be 'replay:rx.dat'"):
        config.parse({"environments": [{"id": "r", "source": "replay",
                                        "path": [str(tmp_path / "a" / "rx.dat"),
                                                 str(tmp_path / "b" / "rx.dat")]}]})
    # One node routed to two rooms is refused (it used to go to the last one silently).
    with pytest.raises(ConfigError, match="udp node 2 is routed to two environments"):
        config.parse({"environments": [_env(), {**_env(), "id": "lab", "node": 2}],
                      "udp": {"port": 0}})


class _Lines:
    """A process's output lines, read by a thread (a select() on a buffered pipe misses
    lines already in the buffer)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=lambda: [self.lines.put(x) for x in stdout], daemon=True).start()

    def until(self, pattern: str, timeout: float = 90) -> re.Match:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if m := re.search(pattern, line):
                return m
        raise AssertionError(f"no {pattern!r} in serve's output: {''.join(self.seen)}")


def test_serve_places_a_walker_from_two_udp_nodes_with_their_own_clocks(run, tmp_path):
    """``serve --config`` with two WDPC nodes routed to one room, each given its placement
    in ``[environments.source_placements]``; the nodes' clocks read 1000 s apart. The
    walker's published positions come from both links' maps, fused."""
    data, draw = run["data"], run["draw"]
    nodes = data["nodes"]
    first, second = _order(data)
    height = float(draw["room_size"][2])
    width, depth = (float(v) for v in draw["room_size"][:2])

    def inline(p: dict[str, Any]) -> str:
        return "{" + ", ".join(f"{k} = {list(map(float, v))}" for k, v in p.items()
                               if k in ("tx_position", "rx_position", "tx_axis", "rx_axis")) + \
            f", room_height = {height}}}"

    conf = tmp_path / "room.toml"
    conf.write_text(f"""
[server]
port = 0
performance_interval_s = 0
[model]
path = "none"
[[environments]]
id = "ward"
source = "udp"
device = "intel5300"
node = [1, 2]
room = [{width}, {depth}]
[environments.source_placements]
"udp:node_1" = {inline(nodes[first]["placement"])}
"udp:node_2" = {inline(nodes[second]["placement"])}
[udp]
port = 0
""")
    proc = subprocess.Popen([sys.executable, "-m", "wifi_densepose", "serve", "--config", str(conf)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            # No secret: serve issues and prints a token of its own.
                            env={k: v for k, v in os.environ.items()
                                 if not k.startswith("WIFI_DENSEPOSE_JWT")})
    try:
        out = _Lines(proc)
        url, token = out.until(r"connect: (ws://\S+)\?token=(\S+)").groups()
        port = int(out.until(r"udp:\s+127\.0\.0\.1:(\d+)").group(1))
        out.until(r"ward: ESP32 node 1 / node 2 over UDP; placed links: udp:node_1, udp:node_2")
        rows: list[tuple[float, float, float]] = []
        hardware: list[dict[str, Any]] = []
        with SyncClient(url, token) as client:
            client.subscribe("pose_data", environment_id="ward")
            client.subscribe("hardware_event", environment_id="ward")
            # Node 1 is the first to sample (the time base), node 2's clock 1000 s ahead;
            # int8 CSI as WDPC carries it, one scale per node; sent at 4x real time.
            scale = [100.0 / np.abs(np.concatenate([n["csi"].real.ravel(), n["csi"].imag.ravel()])).max()
                     for n in nodes]
            frames = sorted((float(t), k, i) for k in (first, second)
                            for i, t in enumerate(nodes[k]["true_time"]))
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            start = time.monotonic()
            for t, k, i in frames:
                own = float(nodes[k]["timestamps"][i]) + (1000.0 if k == second else 0.0)
                wait = t / 4.0 - (time.monotonic() - start)
                if wait > 0.002:
                    time.sleep(wait)
                sock.sendto(encode_frame(1 if k == first else 2, nodes[k]["csi"][i] * scale[k],
                                         timestamp_us=round(own * 1e6), sequence=i), ("127.0.0.1", port))
            sock.close()
            deadline = time.monotonic() + 20
            t_end = float(frames[-1][0])
            while time.monotonic() < deadline:
                try:
                    msg = client.recv(timeout=2)
                except wdp.WaitTimeoutError:
                    break
                d = msg.get("data", {})
                if msg.get("type") == "hardware_event":
                    hardware.append(d)
                elif msg.get("type") == "pose_data":
                    rows += [(d["metadata"]["source_time"], q["position"]["x"], q["position"]["y"])
                             for q in d["persons"] if "position" in q]
                    if d["metadata"]["source_time"] >= t_end - 0.5:
                        break
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert {h["source_id"] for h in hardware if h["event"] == "source_connected"} == {
        "udp:node_1", "udp:node_2"}
    assert not [h for h in hardware if h["event"] == "clock_realigned"], hardware
    err = _errors(run, rows)
    print(f"serve, two UDP nodes 1000 s apart: {len(err)} walking fixes, median error "
          f"{np.median(err):.2f} m")
    assert len(err) >= 10 and np.median(err) < 0.6, (len(err), np.median(err))
