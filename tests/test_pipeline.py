"""Environments and their sources: injected numpy CSI, replayed recordings, ESP32 UDP
nodes; source health as hardware_events; measured performance_updates."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import wifi_densepose as wdp
from wifi_densepose import Server
from wifi_densepose.testing import collect
from wifi_densepose.udp import encode_frame

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "csi"
WALK = DATA / "intel5300_walk_1590161182.dat"


def wait_until(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def server():
    with Server(config={"stall_timeout_s": 0.4, "performance_interval_s": 0.3}) as s:
        s.add_environment("room_001", device="intel5300")
        yield s


def test_inject_single_and_batch(server):
    frame = (np.ones((3, 3, 30)) + 1j).astype(np.complex64)
    assert server.inject_csi("room_001", frame) == 1
    batch = np.zeros((10, 3, 3, 30), np.complex64, order="F")
    assert server.inject_csi("room_001", batch, timestamps=[float(i) for i in range(10)]) == 10
    wait_until(lambda: server.environment_stats("room_001")["frames"] == 11)
    stats = server.environment_stats("room_001")
    assert stats["shape"] == [3, 3, 30]
    assert stats["sources"]["inject"]["frames"] == 11
    assert stats["device"] == "intel5300"


def test_inject_errors(server):
    with pytest.raises(TypeError, match="complex64"):
        server.inject_csi("room_001", np.zeros((3, 3, 30), np.float32))
    with pytest.raises(TypeError, match="complex64"):
        server.inject_csi("room_001", [[1, 2]])
    with pytest.raises(ValueError, match="dimensions"):
        server.inject_csi("room_001", np.zeros((30,), np.complex64))
    with pytest.raises(ValueError, match="empty axis"):
        server.inject_csi("room_001", np.zeros((0, 3, 3, 30), np.complex64))
    with pytest.raises(ValueError, match="timestamps"):
        server.inject_csi("room_001", np.zeros((2, 1, 1, 4), np.complex64), timestamps=[1.0])
    with pytest.raises(RuntimeError, match="was not added"):
        server.inject_csi("room_404", np.zeros((1, 1, 4), np.complex64))


def test_replay_as_fast_as_possible_sends_every_frame(server):
    connected = collect(server, "hardware_event")
    finished = collect(server, "system_event")
    replay = server.replay("room_001", WALK, speed=0)
    assert replay.wait(10)
    assert replay.error is None and replay.file_errors == []
    assert replay.total == replay.sent == 152 and replay.progress == 1.0
    wait_until(lambda: server.environment_stats("room_001")["frames"] == 152)
    seen = connected.wait_for(lambda items: any(e["event"] == "source_connected" for e in items))
    (hello,) = [e for e in seen if e["event"] == "source_connected"]
    assert hello["source_id"] == "replay:intel5300_walk_1590161182.dat"
    ended = finished.wait_for(lambda items: any(e["event"] == "source_finished" for e in items))
    done = [e for e in ended if e["event"] == "source_finished"]
    assert done and done[0]["frames"] == 152
    time.sleep(0.8)  # past the stall timeout: a finished replay is not a stalled source
    assert not [e for e in connected.items if e["event"] == "source_stopped"]


def test_replay_keeps_real_time(server):
    replay = server.replay("room_001", WALK, speed=1.0)
    t0 = time.monotonic()
    assert replay.wait(10)
    # The recording spans 1.50 s of its own clock.
    assert time.monotonic() - t0 >= 1.3
    fast = server.replay("room_001", WALK, speed=4.0)
    t0 = time.monotonic()
    assert fast.wait(10)
    assert time.monotonic() - t0 < 1.2


def test_replay_of_a_corrupt_file_sends_what_was_valid(server, tmp_path):
    broken = tmp_path / "broken.dat"
    data = WALK.read_bytes()
    broken.write_bytes(data[: len(data) // 2 + 100])  # cut inside a record
    replay = server.replay("room_001", broken, speed=0, format="intel5300")
    assert replay.wait(10)
    assert replay.sent > 0 and replay.file_errors
    assert "byte" in replay.file_errors[0]
    with pytest.raises(FileNotFoundError):
        server.replay("room_001", tmp_path / "missing.dat")
    with pytest.raises(ValueError, match="speed"):
        server.replay("room_001", WALK, speed=-1)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00\xffnot csi" * 100)
    bad = server.replay("room_001", garbage, speed=0)
    assert bad.wait(10) and bad.error and "garbage.bin" in bad.error


def test_replay_can_be_stopped(server):
    replay = server.replay("room_001", WALK, speed=0.05)
    time.sleep(0.3)
    replay.stop()
    assert replay.wait(5) and replay.sent < replay.total


def send(port, datagrams):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, ("127.0.0.1", port))
            time.sleep(0.002)


def test_udp_nodes_gaps_reordering_and_garbage(server):
    events = collect(server, "hardware_event")
    listener = server.listen_udp({7: "room_001"})
    csi = (np.arange(64) % 5 + 2j).astype(np.complex64).reshape(1, 1, 64)
    order = [0, 1, 2, 4, 3, 3, 7]  # 5 and 6 lost, 3 late, 3 duplicated
    send(listener.port, [encode_frame(7, csi, sequence=s) for s in order])
    send(listener.port, [b"WDPC garbage", encode_frame(9, csi, sequence=0)])
    wait_until(lambda: listener.stats()["frames"] == 7 and listener.stats()["unknown_node"] == 1)
    stats = listener.stats()
    assert stats["bad"] == 1 and stats["datagrams"] == 9
    assert listener.last_error and "udp:127.0.0.1" in listener.last_error
    wait_until(lambda: server.environment_stats("room_001")["frames"] == 7)
    node = server.environment_stats("room_001")["sources"]["udp:node_7"]
    assert (node["gaps"], node["reordered"], node["duplicates"]) == (2, 1, 1)
    kinds = {e["event"] for e in events.wait_for(
        lambda items: {"source_connected", "bad_packets", "unknown_node"}
        <= {e["event"] for e in items})}
    assert {"source_connected", "bad_packets", "unknown_node"} <= kinds


def test_udp_source_that_stops_raises_hardware_event_then_recovers(server):
    events = collect(server, "hardware_event")
    listener = server.listen_udp({1: "room_001"})
    csi = np.ones((1, 1, 64), np.complex64)
    send(listener.port, [encode_frame(1, csi, sequence=s) for s in range(5)])
    wait_until(lambda: any(e["event"] == "source_stopped" for e in events.items), timeout=3)
    stopped = next(e for e in events.items if e["event"] == "source_stopped")
    assert stopped["severity"] == "warning" and stopped["router_id"] == "udp:node_1"
    assert stopped["metadata"]["frames"] == 5 and stopped["metadata"]["last_seen"].endswith("Z")
    send(listener.port, [encode_frame(1, csi, sequence=5)])
    wait_until(lambda: any(e["event"] == "source_reconnected" for e in events.items))
    assert server.environment_stats("room_001")["sources"]["udp:node_1"]["stalls"] == 1


def test_udp_bad_routes_are_errors(server):
    with pytest.raises(RuntimeError, match="was not added"):
        server.listen_udp({1: "nowhere"})


def test_performance_updates_are_measured(server):
    perf = collect(server, "performance_update")
    for _ in range(10):  # frames over about a second, so some windows see them
        server.inject_csi("room_001", np.zeros((10, 1, 1, 64), np.complex64))
        time.sleep(0.1)
    updates = perf.wait(3, timeout=5)
    m = updates[-1]["metrics"]
    assert {"frames_per_second", "processing_queue_size", "cpu_usage", "memory_usage"} <= set(m)
    assert 0 <= m["cpu_usage"] <= 100 * 64 and 0 < m["memory_usage"] < 100
    assert any(u["metrics"]["frames_per_second"] > 0 for u in updates)




def test_simulator_as_a_live_source(server):
    events = collect(server, "hardware_event")
    run = server.simulate("room_001", "walk", seed=3, duration_s=0.5, speed=0)
    assert run.wait(20) and run.error is None
    assert run.path == "sim:walk" and run.sent > 0 and run.sent <= run.total
    wait_until(lambda: server.environment_stats("room_001")["frames"] == run.sent)
    stats = server.environment_stats("room_001")
    assert stats["shape"] == [3, 3, 30]  # the default device profile: Intel 5300
    assert stats["sources"]["sim:walk"]["frames"] == run.sent
    assert any(e["event"] == "source_connected" for e in events.wait_for(
        lambda items: any(e["event"] == "source_connected" for e in items)))
    with pytest.raises(ValueError, match="scenario"):
        server.simulate("room_001", "teleport")


def test_simulation_repeats_until_stopped(server):
    run = server.simulate("room_001", "empty", duration_s=0.2, speed=0, repeat=True)
    wait_until(lambda: run.sent > 60, timeout=20)
    run.stop()
    assert run.wait(5) and run.error is None


async def test_replays_can_be_awaited(server):
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    run = server.replay("room_001", WALK, speed=2.0)
    assert await run.wait_async(10) is True
    task.cancel()
    assert ticks > 20, "the event loop kept running while the replay went on"
    slow = server.replay("room_001", WALK, speed=0.01)
    assert await slow.wait_async(0.1) is False
    slow.stop()


def test_oracle_mode_runs_tracking_and_analytics_downstream(server):
    falls = collect(server, "activity_event")
    poses = collect(server, "pose_data")
    tracks = collect(server, "tracking_update")
    occupancy = collect(server, "occupancy_update")
    run = server.simulate("room_001", "fall", seed=4, duration_s=12, speed=0, oracle=True)
    assert run.wait(60) and run.error is None
    time.sleep(0.5)
    fall_alerts = [e for e in falls.items if e["event_type"] == "fall_detected"]
    assert len(fall_alerts) == 1, falls.items  # one fall, one alert
    assert fall_alerts[0]["severity"] in ("high", "critical")
    assert any(t["event"] == "track_started" for t in tracks.items)
    assert occupancy.items and occupancy.items[0]["current_occupancy"] == 1
    p = poses.items[-1]
    assert p["metadata"]["model_version"] == "oracle:simulator-truth"
    assert p["environment_id"] == "room_001"
    person = next(pp for e in poses.items for pp in e["persons"] if "keypoints" in pp)
    assert len(person["keypoints"]) == 17 and person["keypoints"][0]["name"] == "nose"
    assert 0 <= person["bounding_box"]["x"] <= 1


def test_a_repeating_scenario_starts_its_people_over_each_run(server):
    """`serve --oracle --simulate fall` repeats: the fallen person of one run must not lie on
    beside the next run's walker (occupancy 2 at every loop, and a second person's fall)."""
    occupancy = collect(server, "occupancy_update")
    # In real time: each run's clock then goes on from the last's (flat out, each run
    # starts back in time, which restarted tracking already).
    run = server.simulate("room_001", "fall", seed=4, duration_s=2.5, speed=1, repeat=True,
                          oracle=True)
    deadline = time.monotonic() + 30
    while (sum(o["change_type"] == "person_entered" for o in occupancy.items) < 2
           and time.monotonic() < deadline):
        time.sleep(0.05)
    time.sleep(1.0)  # into the second run, where the first's person lingered
    run.stop()
    assert run.wait(10)
    entered = [o for o in occupancy.items if o["change_type"] == "person_entered"]
    assert len(entered) >= 2, occupancy.items  # two runs at least, each one person
    assert max(o["current_occupancy"] for o in occupancy.items) == 1, occupancy.items


def test_without_oracle_or_model_no_poses_are_invented():
    with Server(model=None) as server:
        server.add_environment("room_001")
        _no_poses_without_a_model(server)


def _no_poses_without_a_model(server):
    poses = collect(server, "pose_data")
    run = server.simulate("room_001", "walk", seed=1, duration_s=6, speed=0)
    assert run.wait(30)
    time.sleep(0.3)
    # Without a model only the sensor reports: presence, a position where the localizer
    # placed the walker (the simulation brings its placement) and the sensor's activity,
    # never a pose. While the channel moves the activity is walking, or the posture of the
    # last rest (standing before any) until the motion has lasted long enough to tell a
    # walk from a body swaying in place (about a second here; docs/protocol.md).
    assert all(p["metadata"]["model_version"] == "sensing" for p in poses.items)
    keys = {"person_id", "confidence", "localized", "breathing_rate_bpm", "position", "activity"}
    persons = [q for p in poses.items for q in p["persons"]]
    assert all(set(q) <= keys and ("position" in q) == q["localized"] for q in persons)
    moving = [(p["metadata"]["source_time"], q["activity"]["type"]) for p in poses.items
              for q in p["persons"] if "activity" in q and p["metadata"]["motion_detected"]]
    assert moving and {a for _, a in moving} <= {"walking", "standing"}
    start = min(p["metadata"]["source_time"] for p in poses.items)
    late = [a for t, a in moving if t - start > 3.0]
    assert late and set(late) == {"walking"}


def test_runtime_configuration_changes_behaviour_and_is_announced(server):
    updates = collect(server, "config_update")
    falls = collect(server, "activity_event")
    changed = server.configure({"analytics.enable_fall_detection": False}, applied_by="nurse_ana")
    assert changed == {"analytics.enable_fall_detection": False}
    (u,) = updates.wait(1)
    assert u["changed_fields"] == ["analytics.enable_fall_detection"]
    assert u["applied_by"] == "nurse_ana" and u["requires_restart"] is False
    run = server.simulate("room_001", "fall", seed=4, duration_s=12, speed=0, oracle=True)
    assert run.wait(60)
    time.sleep(0.3)
    assert not [e for e in falls.items if e["event_type"].startswith("fall_")]
    assert server.configure({"analytics.enable_fall_detection": False}) == {}  # no change, no event
    with pytest.raises(ValueError, match="unknown setting `analytics.colour`"):
        server.configure({"analytics.colour": 1})
    with pytest.raises(ValueError, match="from 0 to 1"):
        server.configure({"detection.confidence_threshold": 2})
    assert len(updates.items) == 1


def test_one_walker_is_one_track_and_one_occupancy_change_end_to_end():
    """The default scenario's walker through analyze: the sensor says one person is there
    throughout, so their track never breaks (it broke every few seconds, with a
    person_left and a person_entered each time, when the model's score of the detection
    fell below the confidence threshold), and every position stays in the room."""
    d = wdp.sim.generate(scenario="walk", seed=0, duration_s=60)
    messages = wdp.analyze(d)
    started = [m for m in messages if m["type"] == "tracking_update"
               and m["data"]["event"] == "track_started"]
    changes = [m["data"]["change_type"] for m in messages if m["type"] == "occupancy_update"]
    assert len(started) == 1 and changes == ["person_entered"], changes
    w, depth = d["room_size"][:2]
    poses = [m["data"] for m in messages if m["type"] == "pose_data"]
    late = [p for p in poses if p["metadata"]["source_time"] > 2.0]
    assert all(p["persons"] for p in late if p["metadata"]["presence"])
    for m in messages:
        pos = m["data"].get("position")
        if m["type"] == "tracking_update" and pos:
            assert 0 <= pos["x"] <= w and 0 <= pos["y"] <= depth, m
