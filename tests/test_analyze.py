"""``wifi_densepose.analyze``: the live pipeline over a whole input, as fast as it goes.

It is the server's own environment task, model stage, inference worker and analytics
(src/pipeline/offline.rs), so the first test runs a real server on the same simulated run
and requires the same messages, value for value; the others cover real recordings (the
ones the model can take, and the ones it cannot), the source forms and the errors."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import wifi_densepose as wdp
from wifi_densepose import Model, ModelLoadError, Server, read_csi, sim

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "csi"
ENV = "analyze"  # the environment_id analyze's messages name
# What an environment publishes (performance_update and config_update are the server's).
ENV_TYPES = ("pose_data", "pose_data_trajectory", "tracking_update", "activity_event",
             "occupancy_update", "analytics_stream", "hardware_event", "system_event")
# Messages with no wall-clock value in them: compared whole.
EXACT = ("pose_data", "pose_data_trajectory", "tracking_update", "activity_event",
         "occupancy_update", "analytics_stream", "system_event")


def until(pred, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def live(start) -> list[tuple[str, dict]]:
    """Every event a real server publishes for environment ENV while ``start(server)``
    feeds it (a simulation or a replay at speed 0), in order, once all is answered."""
    got: list[tuple[str, dict]] = []
    lock = threading.Lock()

    def recorder(kind):
        def record(data):
            with lock:
                got.append((kind, data))
        return record

    # A callback queue deep enough for a run flat out (a drop would fail the test below).
    with Server(config={"callback_queue_capacity": 1 << 17}) as server:
        for kind in ENV_TYPES:
            server.on(kind, recorder(kind))
        server.add_environment(ENV)
        run = start(server)
        assert run.wait(120) and run.error is None

        def settled():
            st = server.environment_stats(ENV)
            m = st["model"]
            return (st["frames"] == run.sent and all(s["ended"] for s in st["sources"].values())
                    and m["windows_answered"] == m["windows_submitted"])

        until(settled)
        # The last answer's events follow its count by microseconds; then a marker through
        # the same bus and callback queue: everything before it has been delivered.
        time.sleep(0.3)
        server.publish("system_event", {"event": "end_marker"}, ENV)
        until(lambda: any(d.get("event") == "end_marker" for _, d in got))
        assert "wdp_callback_dropped_total 0" in server.metrics()
    return [(k, d) for k, d in got
            if d.get("environment_id") == ENV and d.get("event") != "end_marker"]


def of(messages, kind):
    return [d for k, d in messages if k == kind]


def pairs(messages: list[dict]) -> list[tuple[str, dict]]:
    return [(m["type"], m["data"]) for m in messages]


def test_analyze_publishes_what_the_server_publishes_for_the_same_run():
    scenario, seed, duration = "walk", 2, 20.0
    server_side = live(lambda s: s.simulate(ENV, scenario, seed=seed, duration_s=duration,
                                            speed=0, repeat=False))
    data = sim.generate(scenario, seed=seed, duration_s=duration)
    first = pairs(wdp.analyze(data))
    # A sim.generate result keeps the simulated clock (from 0); a live simulation stamps
    # its frames base + that clock, base = Unix time at its start. Recover the base the
    # server used, to the bit, and give analyze the same clock: then every value that
    # derives from it (first_detection, fall times, tracker steps) can be compared too.
    s_times = [p["metadata"]["source_time"] for p in of(server_side, "pose_data")]
    t_times = [p["metadata"]["source_time"] for p in of(first, "pose_data")]
    assert len(s_times) == len(t_times) > 500  # 30 a second of source clock, unthrottled
    assert t_times[0] < 1.0, "analyze keeps the run's own clock"
    base = s_times[0] - t_times[0]
    bases = [base, np.nextafter(base, np.inf), np.nextafter(base, -np.inf)]
    base = next(b for b in bases if all(b + t == s for t, s in zip(t_times, s_times)))
    offline = pairs(wdp.analyze(dict(data, timestamps=data["timestamps"] + base)))

    for kind in EXACT:
        assert of(offline, kind) == of(server_side, kind), kind
    # hardware_event metadata carries the wall clock (last_seen): the events themselves.
    # The simulated 1 % packet loss is normal, below the 5 % warning.
    assert [h["event"] for h in of(offline, "hardware_event")] == \
        [h["event"] for h in of(server_side, "hardware_event")] == ["source_connected"]
    poses = of(offline, "pose_data")
    assert {p["metadata"]["model_version"] for p in poses} == {Model.default().version}
    assert any(p["persons"] for p in poses), "the model found nobody in a walk"
    assert of(offline, "occupancy_update") and of(offline, "tracking_update")
    assert of(offline, "system_event")[-1]["event"] == "source_finished"
    # The server's order between kinds too (frames and answers interleave the same way).
    order = [k for k, _ in server_side if k in EXACT]
    assert [k for k, _ in offline if k in EXACT] == order
    # Positions are metres in the simulated room (6 x 5 m for walk).
    xs = [p["position"]["x"] for f in poses for p in f["persons"]]
    assert 0 <= min(xs) and max(xs) <= 6.0


def test_a_real_recording_the_model_can_take_gives_poses():
    # Atheros, 3 receive antennas at 56 subcarriers (resampled to 30): 0.87 s of clock.
    path = DATA / "atheros_ath_csi_1.dat"
    rec = read_csi(path)
    messages = wdp.analyze(path)
    poses = [m["data"] for m in messages if m["type"] == "pose_data"]
    # Windows are due 30 times a second of its own clock once 32 packets are in.
    assert 15 <= len(poses) <= 27
    assert all(p["metadata"]["model_version"] == Model.default().version for p in poses)
    times = [p["metadata"]["source_time"] for p in poses]
    assert rec.timestamps[31] <= times[0] and times[-1] <= rec.timestamps[-1]
    assert times == sorted(times)
    assert messages[0]["type"] == "hardware_event"
    assert messages[0]["data"]["source_id"] == "replay:atheros_ath_csi_1.dat"
    assert all(m["data"]["environment_id"] == ENV for m in messages)
    assert all(m["timestamp"].endswith("Z") for m in messages)  # RFC 3339 publication time
    # A Recording and the path are the same source.
    again = wdp.analyze(rec)
    assert [m["data"] for m in again if m["type"] == "pose_data"] == poses


@pytest.mark.parametrize("name", ["esp32_example_csi.csv", "intel5300_walk_1590161182.dat"])
def test_a_recording_the_model_cannot_take_gives_what_the_server_says(name):
    # ESP32 (1 x 1) and this Intel 5300 capture (2 x 2): the model does not take them,
    # one system_event names why, and the sensor alone reports (pose_data with
    # model_version "sensing", no positions), exactly as a server replaying the file.
    path = DATA / name
    server_side = live(lambda s: s.replay(ENV, path, speed=0))
    offline = pairs(wdp.analyze(path))
    poses = of(offline, "pose_data")
    assert poses and poses == of(server_side, "pose_data")
    assert all(p["metadata"]["model_version"] == "sensing" for p in poses)
    assert all("position" not in person for p in poses for person in p["persons"])
    assert of(offline, "system_event") == of(server_side, "system_event")
    reports = [e for e in of(offline, "system_event") if e.get("component") == "model"]
    assert len(reports) == 1 and "3 receive antennas" in reports[0]["message"]
    assert of(offline, "system_event")[-1]["event"] == "source_finished"
    assert of(offline, "system_event")[-1]["frames"] == len(read_csi(path))


def test_arrays_with_or_without_timestamps_and_recordings_of_mixed_shapes():
    data = sim.generate("walk", seed=4, duration_s=3)
    csi = data["csi"]
    # Without timestamps: 100 packets a second from 0.
    plain = wdp.analyze(csi, room=(6, 5))
    poses = [m["data"] for m in plain if m["type"] == "pose_data"]
    assert 70 <= len(poses) <= 95
    assert poses[-1]["metadata"]["source_time"] == pytest.approx((len(csi) - 1) / 100, abs=0.02)
    assert plain[0]["data"]["source_id"] == "inject"
    # With the run's own timestamps (and complex128, cast): the same poses as the sim dict
    # gives when it has no sequence numbers to add.
    stamped = wdp.analyze(csi.astype(np.complex128), timestamps=data["timestamps"])
    from_dict = wdp.analyze({"csi": csi, "timestamps": data["timestamps"]})
    assert [m["data"]["persons"] for m in stamped if m["type"] == "pose_data"] == \
        [m["data"]["persons"] for m in from_dict if m["type"] == "pose_data"]
    # A recording whose frames differ in shape (1 to 3 transmit chains) is taken frame
    # by frame (its stacked .csi cannot be built).
    mixed = read_csi(DATA / "intel5300_log.all_csi.6.7.6.dat")
    messages = wdp.analyze(mixed, model=None)
    assert messages[-1]["data"]["event"] == "source_finished"
    assert messages[-1]["data"]["frames"] == len(mixed)


def test_without_a_model_only_the_sensor_reports():
    data = sim.generate("walk", seed=1, duration_s=4)
    messages = wdp.analyze(data["csi"], timestamps=data["timestamps"], model=None)
    kinds = [m["type"] for m in messages]
    assert "tracking_update" not in kinds
    poses = [m["data"] for m in messages if m["type"] == "pose_data"]
    # The sensor's own pose_data: someone walking is present; without a placement
    # nobody is placed.
    assert poses and all(p["metadata"]["model_version"] == "sensing" for p in poses)
    assert all("position" not in q and "keypoints" not in q for p in poses for q in p["persons"])
    assert all(q["localized"] is False for p in poses for q in p["persons"])
    assert any(p["persons"] for p in poses)
    # With the run's placement the localizer places the walker: a floor position in the
    # room, still no keypoints (no model drew any).
    placed = [m["data"] for m in wdp.analyze(data, model=None) if m["type"] == "pose_data"]
    people = [q for p in placed for q in p["persons"]]
    assert any(q["localized"] for q in people)
    assert all("keypoints" not in q for q in people)
    assert all(0 <= q["position"]["x"] <= 6 and 0 <= q["position"]["y"] <= 5
               for q in people if q["localized"])
    # A frame with a position says which floor it is on (a viewer places the dot by it);
    # the others do not.
    for p in placed:
        has_position = any("position" in q for q in p["persons"])
        assert ("room_size" in p["metadata"]) == has_position
        if has_position:
            assert p["metadata"]["room_size"] == [float(v) for v in data["room_size"][:2]]
    assert "room_size" not in {k for p in poses for k in p["metadata"]}
    events = [m["type"] for m in messages if m["type"] in ("hardware_event", "system_event")]
    assert events == ["hardware_event", "system_event"]  # source_connected, source_finished


def test_progress_is_reported_and_can_stop_the_run():
    data = sim.generate("walk", seed=1, duration_s=2)
    calls: list[tuple[int, int]] = []
    wdp.analyze(data, model=None, progress=lambda done, total: calls.append((done, total)))
    n = len(data["csi"])
    assert calls and calls[-1] == (n, n)

    # A pause longer than a server's stall timeout (2 s) before the source ends: live, that
    # is a source_stopped; offline, silence between frames is the caller's, not news.
    def slow(done, total):
        time.sleep(2.6)

    kinds = [(m["type"], m["data"]["event"]) for m in wdp.analyze(data, model=None,
                                                                   progress=slow)
             if m["type"] in ("hardware_event", "system_event")]
    assert kinds == [("hardware_event", "source_connected"), ("system_event", "source_finished")]

    def stop(done, total):
        raise KeyError("enough")

    with pytest.raises(KeyError, match="enough"):
        wdp.analyze(data, model=None, progress=stop)


def test_bad_inputs_are_refused_clearly(tmp_path):
    csi = sim.generate("walk", seed=1, duration_s=0.5)["csi"]
    with pytest.raises(TypeError, match="complex"):
        wdp.analyze(np.abs(csi))
    with pytest.raises(ValueError, match="4 dimensions"):
        wdp.analyze(csi[0])
    with pytest.raises(ValueError, match="empty axis"):
        wdp.analyze(csi[:, :, :0])
    with pytest.raises(ValueError, match=f"10 timestamps for {len(csi)} frames"):
        wdp.analyze(csi, timestamps=np.arange(10) * 0.01)
    with pytest.raises(ValueError, match="finite"):
        wdp.analyze(csi, timestamps=np.full(len(csi), np.nan))
    with pytest.raises(ValueError, match="room"):
        wdp.analyze(csi, room=(0, 5))
    with pytest.raises(ModelLoadError, match="no-such.onnx"):
        wdp.analyze(csi, model=tmp_path / "no-such.onnx")
    with pytest.raises(TypeError, match="sim.generate result"):
        wdp.analyze({"frames": csi})
    with pytest.raises(TypeError, match="source must be"):
        wdp.analyze(3)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        wdp.analyze(tmp_path / "missing.dat")
    with pytest.raises(TypeError, match="own timestamps"):
        wdp.analyze(read_csi(DATA / "atheros_ath_csi_1.dat"), timestamps=[0.0])


def test_a_multi_node_simulation_is_one_room_of_several_sources():
    """sim.generate with nodes: every node a source with its own clock, fused in one room
    (docs/sensing.md); pose_data stays at 30 a second of the room's clock."""
    from wifi_densepose import sim_dataset

    draw = sim_dataset.draw("test", 1, duration_s=12, devices=("esp32",), nodes=3)
    data = sim.generate(draw["scenario"], dense_pose_grid=0)
    assert "csi" not in data and len(data["nodes"]) == 3
    messages = wdp.analyze(data, model=None)
    connected = [m["data"]["source_id"] for m in messages if m["type"] == "hardware_event"
                 and m["data"]["event"] == "source_connected"]
    assert sorted(connected) == [f"sim:test_1:node{k}" for k in range(3)]
    poses = [m["data"] for m in messages if m["type"] == "pose_data"]
    assert abs(len(poses) - 12 * 30) <= 3
    times = [p["metadata"]["source_time"] for p in poses]
    assert times == sorted(times)
    assert draw["n_people"] == 1 and any(p["persons"] for p in poses)


def _walker_errors(messages, data):
    """Distance of each published person to the simulated walker's mid-hip while walking,
    and of the room centre to the same."""
    k = data["keypoints_3d"]
    hips = 0.5 * (k[:, 0, 11, :2] + k[:, 0, 12, :2])
    speed = np.linalg.norm(np.diff(hips, axis=0), axis=1) * data["fps"]
    ts = data["timestamps"]
    centre = np.asarray(data["room_size"][:2]) / 2
    err, base = [], []
    for m in messages:
        if m["type"] != "pose_data" or not m["data"]["persons"]:
            continue
        p = m["data"]["persons"][0]
        i = min(int(np.searchsorted(ts, m["data"]["metadata"]["source_time"])), len(speed) - 1)
        if "position" in p and speed[i] > 0.2:
            err.append(np.hypot(p["position"]["x"] - hips[i, 0], p["position"]["y"] - hips[i, 1]))
            base.append(np.hypot(*(centre - hips[i])))
    return np.array(err), np.array(base)


def test_the_placement_places_a_walker_better_than_the_model_and_the_room_centre():
    data = sim.generate("walk", seed=11, duration_s=30)
    placement = dict(data["placement"])
    placed, centre = _walker_errors(wdp.analyze(data), data)
    plain = wdp.analyze(data["csi"], timestamps=data["timestamps"], room=(6.0, 5.0),
                        device="intel5300")
    model, _ = _walker_errors(plain, data)
    assert len(placed) > 300 and len(model) > 300
    # Measured: median 0.43 m against 1.84 m (model) and 1.67 m (room centre); the
    # floors sit well below that (docs/sensing.md, "Position").
    assert np.median(placed) < 0.5 * np.median(centre), (np.median(placed), np.median(centre))
    assert np.median(placed) < 0.5 * np.median(model), (np.median(placed), np.median(model))
    # The same placement given by hand to the bare CSI does the same as the run's own.
    by_hand = wdp.analyze(data["csi"], timestamps=data["timestamps"], room=(6.0, 5.0),
                          device="intel5300", placement={**placement, "room_height": 3.0})
    assert np.allclose(_walker_errors(by_hand, data)[0], placed)


def test_placements_that_cannot_place_anyone_are_refused_or_reported():
    data = sim.generate("walk", seed=1, duration_s=3)
    where = {"tx_position": [0.3, 2.0, 1.2], "rx_position": [5.7, 3.0, 1.2]}
    with pytest.raises(wdp.InvalidArgumentError, match="device"):
        wdp.analyze(data["csi"], timestamps=data["timestamps"], placement=where)
    with pytest.raises(wdp.InvalidArgumentError, match="unknown keys"):
        wdp.analyze(data["csi"], device="intel5300", placement={**where, "tx_pos": [0, 0, 0]})
    with pytest.raises(wdp.InvalidArgumentError, match="rx_position"):
        wdp.analyze(data["csi"], device="intel5300", placement={"tx_position": [0, 0, 0]})
    with pytest.raises(wdp.InvalidArgumentError, match="finite"):
        wdp.analyze(data["csi"], device="intel5300",
                    placement={**where, "rx_axis": [float("nan"), 1, 0]})
    # One antenna on each side: no angle to place anyone by; said once, nothing invented.
    esp = sim.generate("walk", seed=1, duration_s=5, device="esp32")
    out = wdp.analyze(esp)
    assert [m["data"]["event"] for m in out if m["type"] == "system_event"
            and m["data"].get("event") == "localizer_unavailable"] == ["localizer_unavailable"]
    assert all("position" not in p for m in out if m["type"] == "pose_data"
               for p in m["data"]["persons"])


def test_a_server_environment_takes_a_placement():
    with Server(port=0, model=None) as server:
        server.add_environment("placed", device="intel5300", room=(6.0, 5.0),
                               placement={"tx_position": [0.3, 2.0, 1.2],
                                          "rx_position": [5.7, 3.0, 1.2]})
        with pytest.raises(wdp.InvalidArgumentError, match="device"):
            server.add_environment("unplaced", placement={"tx_position": [0.3, 2.0, 1.2],
                                                           "rx_position": [5.7, 3.0, 1.2]})


def test_packet_loss_is_judged_on_the_source_clock():
    """20 % of packets lost over 20 s of simulated clock: a `packet_loss` warning (over
    5 % lost) for each 5 s of the source's clock, however fast the machine fed the frames (the window
    was the wall's: a loaded machine running a simulation flat out warned where an idle
    one did not, and `analyze` and the server disagreed)."""
    spec = json.dumps({"name": "walk", "duration_s": 20.0,
                       "impairments": {"packet_loss": 0.2}})
    data = sim.generate(spec, seed=4, duration_s=20.0)
    lost = [m["data"] for m in wdp.analyze(data, model=None)
            if m["type"] == "hardware_event" and m["data"]["event"] == "packet_loss"]
    assert 3 <= len(lost) <= 4, lost
    assert all(h["severity"] == "warning" and "lost in the last 5 s" in h["message"]
               for h in lost)
    # None for the simulator's default 1 %: a busy channel's normal loss is not a warning.
    clean = json.dumps({"name": "walk", "duration_s": 20.0,
                        "impairments": {"packet_loss": 0.01}})
    quiet = sim.generate(clean, seed=4, duration_s=20.0)
    assert not [m for m in wdp.analyze(quiet, model=None)
                if m["type"] == "hardware_event" and m["data"]["event"] == "packet_loss"]


def test_a_still_person_is_not_reported_walking():
    # The bundled model calls almost everyone walking (docs/model.md); while the sensor
    # sees no motion in the channel, nobody is (src/pipeline/analysis.rs, still_channel).
    # Before that rule, 3 of these 4 still people were walking in most frames.
    from wifi_densepose.sensing_eval import clip_scenario

    walking = reported = 0
    for i in (0, 2, 3, 5):  # standing, lying, standing, lying
        spec = clip_scenario("still", 3000 + i, 20.0)
        data = sim.generate(json.dumps(spec), seed=123 + i, duration_s=20.0)
        for m in wdp.analyze(data):
            if m["type"] != "pose_data" or m["data"]["metadata"]["motion_detected"]:
                continue
            for p in m["data"]["persons"]:
                reported += 1
                walking += (p.get("activity") or {}).get("type") == "walking"
    assert reported > 1000
    assert walking / reported < 0.05


def _first_person_frames(messages):
    """Per pose_data: source time, motion detected, motion level, the first person's
    position (x, y; NaN without one) and reported activity type (None without one)."""
    frames = []
    for m in messages:
        if m["type"] == "pose_data":
            meta, persons = m["data"]["metadata"], m["data"]["persons"]
            pos = (persons[0].get("position") if persons else None) or {}
            said = (persons[0].get("activity") or {}).get("type") if persons else None
            frames.append((meta["source_time"], meta["motion_detected"], meta["motion_level"],
                           pos.get("x", np.nan), pos.get("y", np.nan), said))
    return frames


def test_a_person_at_rest_takes_the_posture_read_from_the_motion_that_ended():
    # src/analytics/rest_posture.rs: at each end of motion the pipeline reads standing,
    # sitting or lying from the seconds before, and the person's reported activity follows
    # it while still (through the activity filter). The same regression, run by
    # _native.rest_posture_features over the frames analyze published, must agree with
    # what was reported: wiring, not accuracy (that is benches/rest_posture.py's).
    from wifi_densepose import _native

    spec = {"room": {"size": [6.0, 5.0, 3.0]},
            "placement": sim.random_placement([6.0, 5.0, 3.0], 11),
            "people": [{"start": [1.5, 1.5], "actions": [
                {"type": "walk", "to": [[4.5, 3.5]], "speed": 1.0},
                {"type": "lie_down", "duration_s": 3.0}, {"type": "lie", "duration_s": 12.0},
                {"type": "get_up", "duration_s": 3.0},
                {"type": "walk", "to": [[1.5, 3.5]], "speed": 1.0},
                {"type": "sit_down", "duration_s": 1.5}, {"type": "sit", "duration_s": 20.0}]}]}
    data = sim.generate(json.dumps(spec), seed=5, duration_s=50.0)
    frames = _first_person_frames(wdp.analyze(data))
    t, motion, level, x, y = (np.array(c) for c in list(zip(*frames))[:5])
    said = [f[5] for f in frames]
    ends = _native.rest_posture_features(t, motion.astype(bool), level, x, y)
    assert ends, "the walk's and the lie-down's motion ended"
    checked = 0
    for k, (end, _, probs) in enumerate(ends):
        until = ends[k + 1][0] if k + 1 < len(ends) else t[-1] + 1
        after = np.flatnonzero((t >= end + 2.0) & (t < until) & ~motion.astype(bool))
        if len(after) < 30:
            continue  # too short a rest for the filter to settle
        posture = ("standing", "sitting", "lying")[int(np.argmax(probs))]
        agree = np.mean([said[i] == posture for i in after])
        assert agree > 0.9, (end, posture, agree)
        checked += 1
    assert checked >= 2
    with pytest.raises(wdp.InvalidArgumentError, match="one length"):
        _native.rest_posture_features(t, motion.astype(bool)[:-1], level, x, y)


def test_a_moving_channel_is_walking_only_as_the_walking_regression_says():
    # src/analytics/rest_posture.rs: while the channel moves, a regression on the seconds up
    # to now gives the probability of walking; the sensor's person (no model: its activity
    # per frame, unfiltered) is walking only where that beats the posture of the last rest
    # (before any rest, mostly standing). Computed again by _native.walking_features over
    # the frames analyze published, it must agree with what was reported: wiring, not
    # accuracy (that is benches/walking_or_sway.py's). A standing person's sway and a
    # sit-down set the channel moving without a walk, so both answers occur.
    from wifi_densepose import _native

    spec = {"room": {"size": [6.0, 5.0, 3.0]},
            "placement": sim.random_placement([6.0, 5.0, 3.0], 11),
            "people": [{"start": [1.5, 1.5], "actions": [
                {"type": "walk", "to": [[4.5, 3.5], [1.5, 3.0]], "speed": 1.0},
                {"type": "stand", "duration_s": 15.0},
                {"type": "sit_down", "duration_s": 1.5}, {"type": "sit", "duration_s": 10.0},
                {"type": "stand_up", "duration_s": 1.5},
                {"type": "walk", "to": [[4.5, 1.5]], "speed": 1.0},
                {"type": "stand", "duration_s": 15.0}]}]}
    data = sim.generate(json.dumps(spec), seed=7, duration_s=60.0)
    frames = _first_person_frames(wdp.analyze(data, model=None))
    t, motion, level, x, y = (np.array(c) for c in list(zip(*frames))[:5])
    said = {f[0]: f[5] for f in frames}
    ends = _native.rest_posture_features(t, motion.astype(bool), level, x, y)
    moving = _native.walking_features(t, motion.astype(bool), level, x, y)
    assert len(moving) == int(motion.astype(bool).sum())
    expected, reported = [], []
    for when, _, p_walk in moving:
        if said[when] is None:
            continue  # nobody reported (presence not yet settled)
        before = [probs for end, _, probs in ends if end < when]
        rest = before[-1] if before else [0.6, 0.2, 0.2]
        expected.append(p_walk / (1 - p_walk) > max(rest) if p_walk < 1 else True)
        reported.append(said[when] == "walking")
    expected_a, reported_a = np.array(expected), np.array(reported)
    assert len(expected_a) > 300
    assert np.mean(expected_a == reported_a) > 0.98, np.mean(expected_a == reported_a)
    assert 0.1 < reported_a.mean() < 0.9, reported_a.mean()
    with pytest.raises(wdp.InvalidArgumentError, match="one length"):
        _native.walking_features(t, motion.astype(bool), level[:-1], x, y)


def test_a_multi_core_nexmon_capture_is_one_link_per_core():
    # The bcm4358 example interleaves receive cores 0 and 1, each with spatial streams 0
    # and 1, packet by packet: four antenna pairs' channels, each its own one-antenna
    # link (docs/csi-formats.md).
    path = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "csi" / \
        "nexmon_bcm4358_example.pcap"
    rec = wdp.read_csi(path)
    assert sorted((f.meta["core"], f.meta["spatial"]) for f in rec) == [
        (0, 0), (0, 1), (1, 0), (1, 1)]
    events = wdp.analyze(rec)
    connected = [e["data"]["source_id"] for e in events if e["type"] == "hardware_event"
                 and e["data"]["event"] == "source_connected"]
    name = "replay:nexmon_bcm4358_example.pcap"
    assert sorted(connected) == [name, name + "/core0-ss1", name + "/core1",
                                 name + "/core1-ss1"]

