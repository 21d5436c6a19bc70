"""``_native.localize`` / ``_native.localize_links``: the localizer through the Python
boundary (``src/sensing/localizer.rs``; figures in ``benches/position.py``).

One simulated room heard by two Intel 5300 3x3 receivers of one transmitter (a held-out
"val" draw, one walking person): each link alone and the two maps fused must place the
walker, fused better than the room's centre; bad link sets are refused, not panicked on."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from wifi_densepose import InvalidArgumentError, _native, sensing, sim, sim_dataset


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    # Val draw 11: one person who walks in the first 30 s (the earlier one-person draws
    # start with a still period); the same arguments always give the same draw.
    d = sim_dataset.draw("val", 11, devices=("intel5300",), duration_s=30, nodes=2)
    assert d["n_people"] == 1
    return {"draw": d, "data": sim.generate(d["scenario"], dense_pose_grid=0)}


def _link(node: dict[str, Any]) -> dict[str, Any]:
    moving = np.asarray(sensing.sense(node["csi"], node["timestamps"])["motion_detected"], bool)
    return {"csi": np.ascontiguousarray(node["csi"]), "timestamps": np.asarray(node["timestamps"], float),
            "tx": np.asarray(node["tx_antennas"], float), "rx": np.asarray(node["rx_antennas"], float),
            "freqs_hz": np.asarray(node["frequencies"], float), "moving": moving}


def _walking_errors(run: dict[str, Any], r: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    data = run["data"]
    k = data["keypoints_3d"]
    hips = 0.5 * (k[:, 0, 11, :2] + k[:, 0, 12, :2])
    speed = np.linalg.norm(np.gradient(hips, axis=0), axis=1) * float(data["fps"])
    i = np.clip(np.searchsorted(data["timestamps"], r["t"]), 0, len(hips) - 1)
    keep = (speed[i] > 0.2) & data["present"][i, 0]
    err = np.hypot(r["x"][keep] - hips[i[keep], 0], r["y"][keep] - hips[i[keep], 1])
    centre = np.asarray(run["draw"]["room_size"][:2], float) / 2
    return err, np.hypot(*(centre - hips[i[keep]]).T)


def test_two_links_fused_place_the_walker(run: dict[str, Any]) -> None:
    room = [float(v) for v in run["draw"]["room_size"]]
    links = [_link(n) for n in run["data"]["nodes"]]
    fused = _native.localize_links(links, room)
    err, centre = _walking_errors(run, fused)
    assert len(err) >= 20, len(err)
    assert np.median(err) < 0.5 and np.median(err) < 0.5 * np.median(centre), (np.median(err), np.median(centre))
    # Here node 0 alone sits on a wrong lobe much of the time; the second link's map
    # takes it out.
    alone, _ = _walking_errors(run, _native.localize_links(links[:1], room))
    assert np.median(err) < 0.6 * np.median(alone), (np.median(err), np.median(alone))
    # The tracker is an option on the fused map too; it still places the walker.
    tracked, _ = _walking_errors(run, _native.localize_links(links, room, track_speed_mps=3.0))
    assert np.median(tracked) < 0.6
    # Fixes in time order, inside the room.
    assert np.all(np.diff(fused["t"]) >= 0)
    assert np.all((fused["x"] >= 0) & (fused["x"] <= room[0]) & (fused["y"] >= 0) & (fused["y"] <= room[1]))


def test_one_link_maps_come_back_with_their_grid(run: dict[str, Any]) -> None:
    room = [float(v) for v in run["draw"]["room_size"]]
    link = _link(run["data"]["nodes"][0])
    r = _native.localize(link["csi"], link["timestamps"], room, link["tx"], link["rx"], link["freqs_hz"],
                         moving=link["moving"], maps=True)
    assert r["maps"].shape == (len(r["t"]), len(r["grid"])) and r["grid"].shape[1] == 2
    assert len(r["t"]) > 0
    # The fix is the refined peak of its window's map (within a grid cell and a half).
    peak = r["grid"][r["maps"].argmax(axis=1)]
    assert np.all(np.hypot(peak[:, 0] - r["x"], peak[:, 1] - r["y"]) <= 0.2 * 1.5 + 1e-9)
    assert "maps" not in _native.localize(link["csi"], link["timestamps"], room, link["tx"], link["rx"],
                                          link["freqs_hz"], moving=link["moving"])


def test_lobes_come_back_per_fix_and_bad_counts_are_refused(run: dict[str, Any]) -> None:
    """``lobes=``: each fix's window's lobes by successive cancellation (the count
    experiment's, benches/count_lobes.py), one link and fused."""
    room = [float(v) for v in run["draw"]["room_size"]]
    links = [_link(n) for n in run["data"]["nodes"]]
    one = links[0]
    r = _native.localize(one["csi"], one["timestamps"], room, one["tx"], one["rx"], one["freqs_hz"],
                         moving=one["moving"], lobes=3, lobe_radius_m=0.0)
    assert r["lobes"].shape == (len(r["t"]), 3, 4) and len(r["t"]) > 0
    lobes = r["lobes"]
    # The first lobe is the map's peak cell (the fix is its refinement); later ones are
    # weaker, and each takes out part of the window's energy.
    assert np.all(lobes[:, 0, 3] == 1.0)
    assert np.all(np.hypot(lobes[:, 0, 0] - r["x"], lobes[:, 0, 1] - r["y"]) <= 0.2 * 1.5 + 1e-9)
    assert np.all(lobes[:, 1:, 3] <= 1.0) and np.all((lobes[:, :, 2] >= 0) & (lobes[:, :, 2] <= 1))
    fused = _native.localize_links(links, room, lobes=2)
    assert fused["lobes"].shape == (len(fused["t"]), 2, 4)
    assert "lobes" not in _native.localize_links(links, room)
    with pytest.raises(InvalidArgumentError, match="lobes"):
        _native.localize_links(links, room, lobes=7)
    with pytest.raises(InvalidArgumentError, match="lobe"):
        _native.localize(one["csi"], one["timestamps"], room, one["tx"], one["rx"], one["freqs_hz"],
                         lobes=2, lobe_radius_m=-1.0)


def test_bad_link_sets_are_refused(run: dict[str, Any]) -> None:
    room = [float(v) for v in run["draw"]["room_size"]]
    link = _link(run["data"]["nodes"][0])
    with pytest.raises(InvalidArgumentError):
        _native.localize_links([], room)
    with pytest.raises(InvalidArgumentError):
        _native.localize_links([link] * 17, room)
    with pytest.raises(InvalidArgumentError):
        _native.localize_links([{**link, "timestamps": link["timestamps"][:-1]}], room)
    with pytest.raises(InvalidArgumentError):
        _native.localize_links([link], room, max_age_s=0.0)
    with pytest.raises(InvalidArgumentError):
        _native.localize_links([link], room, track_speed_mps=-1.0)
    missing = {k: v for k, v in link.items() if k != "moving"}
    with pytest.raises((KeyError, TypeError)):
        _native.localize_links([missing], room)


def _published_errors(run: dict[str, Any], messages: list[dict[str, Any]]) -> np.ndarray:
    rows = [(m["data"]["metadata"]["source_time"], q["position"]["x"], q["position"]["y"])
            for m in messages if m["type"] == "pose_data"
            for q in m["data"]["persons"] if "position" in q]
    assert rows, "nobody was placed"
    t, x, y = (np.array(c) for c in zip(*rows))
    return _walking_errors(run, {"t": t, "x": x, "y": y})[0]


def test_the_live_pipeline_fuses_the_nodes_placements(run: dict[str, Any]) -> None:
    """analyze on the multi-node run: each node's placement goes to the environment,
    which fuses the two links' maps (src/pipeline/placing.rs) — better than node 0 alone
    through the same pipeline, on the draw where node 0 alone sits on a wrong lobe."""
    import wifi_densepose as wdp

    data = run["data"]
    fused = _published_errors(run, wdp.analyze(data, model=None))
    alone = _published_errors(run, wdp.analyze({**data, "nodes": data["nodes"][:1]}, model=None))
    assert np.median(fused) < 0.6 and np.median(fused) < 0.6 * np.median(alone), (
        np.median(fused), np.median(alone))
    # A placement for a multi-node run is refused: each node brings its own.
    with pytest.raises(TypeError, match="each node's placement"):
        wdp.analyze(data, model=None, placement=data["nodes"][0]["placement"])


def _injected_placements(run: dict[str, Any],
                         placed: list[int]) -> tuple[tuple[float, ...], dict[str, dict]]:
    """A multi-node draw's room (width, depth) and the ``source_placements`` of nodes
    ``placed`` injected as receivers (``inject:NAME``)."""
    nodes, size = run["data"]["nodes"], run["draw"]["room_size"]
    height = float(size[2])
    return (tuple(float(v) for v in size[:2]),
            {f"inject:{nodes[k]['name']}": {**nodes[k]["placement"], "room_height": height}
             for k in placed})


class PoseRows:
    """A ``pose_data`` callback that keeps every frame (callbacks run on the server's
    thread): the placed persons as (source_time, x, y) rows."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._frames: list[dict[str, Any]] = []

    def __call__(self, d: dict[str, Any]) -> None:
        with self._lock:
            self._frames.append(d)

    def last_time(self) -> float:
        with self._lock:
            return float(self._frames[-1]["metadata"]["source_time"]) if self._frames else 0.0

    def rows(self) -> list[tuple[float, float, float]]:
        with self._lock:
            return [(d["metadata"]["source_time"], q["position"]["x"], q["position"]["y"])
                    for d in self._frames for q in d["persons"] if "position" in q]


def _served_errors(run: dict[str, Any], placed: list[int]) -> np.ndarray:
    """Every node of the run injected into one environment of a real server, nodes
    ``placed`` given their placements (``source_placements``); the walking errors of the
    published positions."""
    from wifi_densepose import Server

    nodes = run["data"]["nodes"]
    room, placements = _injected_placements(run, placed)
    collect = PoseRows()
    with Server(model=None) as server:
        server.add_environment("ward", device="intel5300", room=room,
                               source_placements=placements)
        server.on("pose_data", collect)
        # The nodes' frames in the order they sampled the channel, 0.1 s at a time.
        step = 0.1
        t_end = max(float(n["timestamps"][-1]) for n in nodes)
        for t0 in np.arange(0.0, t_end + step, step):
            for n in nodes:
                ts = np.asarray(n["timestamps"], float)
                sel = (ts >= t0) & (ts < t0 + step)
                if sel.any():
                    server.inject_csi("ward", np.ascontiguousarray(n["csi"][sel]), ts[sel],
                                      receiver=n["name"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if collect.last_time() >= t_end - 0.5:
                break
            time.sleep(0.05)
    rows = collect.rows()
    assert rows, "nobody was placed"
    t, x, y = (np.array(c) for c in zip(*rows))
    return _walking_errors(run, {"t": t, "x": x, "y": y})[0]


def test_a_server_fuses_receivers_injected_with_their_placements(run: dict[str, Any]) -> None:
    """Two receivers injected into one environment of a real server, each with its
    placement (``source_placements``): the published positions come from both links'
    maps — better than with node 0's placement alone, on the draw where node 0 alone
    sits on a wrong lobe."""
    fused = _served_errors(run, [0, 1])
    alone = _served_errors(run, [0])
    assert len(fused) >= 20 and np.median(fused) < 0.6, np.median(fused)
    assert np.median(fused) < 0.6 * np.median(alone), (np.median(fused), np.median(alone))


def test_receiver_names_and_source_placements_are_checked() -> None:
    from wifi_densepose import ArgumentTypeError, Server

    with Server(model=None) as server:
        server.add_environment("ward", device="intel5300")
        with pytest.raises(ArgumentTypeError):
            server.add_environment("ward", device="intel5300", source_placements={1: {}})
        with pytest.raises(InvalidArgumentError, match="placement needs tx_position"):
            server.add_environment("ward", device="intel5300", source_placements={"inject:a": {}})
        csi = np.ones((1, 3, 3, 30), np.complex64)
        for bad in ("", "x" * 65, "a\nb"):
            with pytest.raises(InvalidArgumentError, match="receiver name"):
                server.inject_csi("ward", csi, [0.0], receiver=bad)
        assert server.inject_csi("ward", csi, [0.0], receiver="rx-1") == 1
