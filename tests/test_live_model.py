"""The pose model in the live pipeline: environments condition their frames into the
model's windows exactly as the training features were made, the shared worker infers
them (in batches across environments), and pose_data carries the model's version.
Configuration chooses the model (bundled, your own, or none); frames the model cannot
take are reported once, not silently dropped."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from wifi_densepose import Server, read_csi, sim
from wifi_densepose import _native as native
from wifi_densepose.config import ConfigError, parse
from wifi_densepose.evaluate import assignment
from wifi_densepose.features import windows_from_recording
from wifi_densepose.model import Model, ModelLoadError
from wifi_densepose.testing import collect

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "csi"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def until(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.mark.parametrize("source", ["simulated", "atheros_ath_csi_1.dat",
                                    "picoscenes_rx_by_qca9300.csi"])
def test_live_windows_equal_the_training_features(source):
    # Real recordings with 3 receive antennas (56 subcarriers, resampled to 30).
    if source == "simulated":
        csi = sim.generate("walk", seed=5, duration_s=1.5)["csi"]
    else:
        csi = read_csi(DATA / source).csi[:300]
    live = native.live_windows(np.ascontiguousarray(csi, dtype=np.complex64))
    offline, _ = windows_from_recording(csi)
    assert live.shape == offline.shape == (len(csi) - 31, 2, 32, 90)
    np.testing.assert_allclose(live, offline, rtol=0, atol=1e-5)


def test_simulated_room_gets_poses_from_the_bundled_model():
    model = Model.default()
    with Server() as server:
        poses = collect(server, "pose_data")
        server.add_environment("room_001")
        run = server.simulate("room_001", "walk", seed=2, duration_s=4, speed=0)
        assert run.wait(60)

        def all_answered():
            st = server.environment_stats("room_001")
            m = st["model"]
            return st["frames"] == run.sent and m["windows_answered"] == m["windows_submitted"]

        until(all_answered)
        until(lambda: len(poses.items) > 0)
        stats = server.environment_stats("room_001")
        info = server.model_info()
    m = stats["model"]
    # 4 s of source clock at 30 windows/s, the first after 32 packets: about 110 due, and
    # none skipped even flat out (speed 0): the environment waits for the model instead.
    assert 100 <= m["windows_submitted"] <= 115
    assert m["windows_answered"] == m["windows_submitted"] and m["failures"] == 0
    assert stats["room_size"] == [6.0, 5.0]  # the walk scenario's room, sent by the source
    assert info is not None and info["windows"] >= m["windows_answered"]
    assert info["model_version"] == model.version
    assert all(p["metadata"]["model_version"] == model.version for p in poses.items)
    people = [p for frame in poses.items for p in frame["persons"]]
    assert people, "the model found nobody in a walking scenario"
    drawn = [p for p in people if "keypoints" in p]  # coasting tracks have no detection
    assert drawn
    for p in drawn:
        assert len(p["keypoints"]) == 17
        assert all(np.isfinite([k["x"], k["y"], k["confidence"]]).all() for k in p["keypoints"])
    for p in people:
        assert 0 <= p["position"]["x"] <= 6.5 and 0 <= p["position"]["y"] <= 5.5


def test_environments_due_together_are_batched():
    rec = sim.generate("walk", seed=9, duration_s=3)
    csi = np.ascontiguousarray(rec["csi"], dtype=np.complex64)
    stamps = list(np.arange(len(csi)) * 0.01 + 1000.0)
    with Server() as server:
        envs = [f"room_{i}" for i in range(6)]
        for e in envs:
            server.add_environment(e)
        # Every environment's frames at once, flat out: windows fall due together.
        threads = [threading.Thread(target=server.inject_csi, args=(e, csi, stamps)) for e in envs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        until(lambda: all(server.environment_stats(e)["model"]["windows_answered"] > 0
                          for e in envs))
        info = server.model_info()
    assert info is not None
    assert info["largest_batch"] >= 2, info
    assert info["windows"] > info["calls"]


def test_no_model_means_no_inference_and_no_invented_poses():
    with Server(model=None) as server:
        assert server.model is None and server.model_info() is None
        poses = collect(server, "pose_data")
        server.add_environment("room_001")
        run = server.simulate("room_001", "walk", seed=1, duration_s=2, speed=0)
        assert run.wait(30)
        until(lambda: server.environment_stats("room_001")["frames"] >= 150)
        time.sleep(0.3)
        # Only the sensor reports: no keypoints, nothing the model made; a person has a
        # position only where the localizer placed them from the simulated placement.
        assert poses.items
        assert all(p["metadata"]["model_version"] == "sensing" for p in poses.items)
        assert all("keypoints" not in q and ("position" in q) == q["localized"]
                   for p in poses.items for q in p["persons"])
        assert server.environment_stats("room_001")["model"]["windows_submitted"] == 0


def test_a_model_is_switched_at_run_time():
    with Server(model=None) as server:
        server.add_environment("room_001")
        server.set_model("default", inference_rate_hz=10)
        assert server.model is not None
        assert server.model_info()["rate_hz"] == 10
        csi = sim.generate("walk", seed=4, duration_s=1)["csi"]
        server.inject_csi("room_001", csi, list(np.arange(len(csi)) * 0.01 + 50.0))
        # 1 s of frames at 10 windows/s, the first once 32 packets are in: about 7.
        until(lambda: server.environment_stats("room_001")["model"]["windows_answered"] >= 6)
        assert server.environment_stats("room_001")["model"]["windows_submitted"] <= 8


def test_a_model_that_does_not_fit_is_refused_before_serving():
    server = Server(model=FIXTURES / "bad_window.onnx")
    with pytest.raises(ModelLoadError, match="expected shape"):
        server.start()
    assert not server.running
    with pytest.raises(ModelLoadError, match="no-such.onnx"):
        Server(model="/nonexistent/no-such.onnx").start()
    with pytest.raises(TypeError, match="model must be"):
        Server(model=3).start()  # type: ignore[arg-type]
    with Server(model=None) as s, pytest.raises(ValueError, match="inference rate"):
        s.set_model("default", inference_rate_hz=0)


def test_frames_the_model_cannot_take_are_reported_once():
    with Server() as server:
        errors = collect(server, "system_event")
        server.add_environment("esp")
        one_antenna = np.ones((50, 1, 1, 64), np.complex64)
        server.inject_csi("esp", one_antenna, list(np.arange(50) * 0.01))
        until(lambda: server.environment_stats("esp")["model"]["frames_unusable"] == 50)
        until(lambda: any(e.get("component") == "model" for e in errors.items))
        reports = [e for e in errors.items if e.get("component") == "model"]
        assert len(reports) == 1
        assert "3 receive antennas" in reports[0]["message"]
        assert "[1, 1, 64]" in reports[0]["message"]
        assert server.environment_stats("esp")["model"]["last_error"] == reports[0]["message"]


def test_room_size_scales_positions():
    with Server() as server:
        server.add_environment("hall", room=(12.0, 3.0))
        until(lambda: server.environment_stats("hall")["room_size"] == [12.0, 3.0])
        with pytest.raises(ValueError, match="room size"):
            server.add_environment("bad", room=(0.0, 3.0))


def test_model_config_is_validated_with_the_key_named(tmp_path):
    assert parse({"model": {"path": "none", "rate_hz": 10}}).model.path == "none"
    cases = {
        "model.colour": {"model": {"colour": 1}},
        "model.rate_hz": {"model": {"rate_hz": 0}},
        "model.path": {"model": {"path": str(tmp_path / "missing.onnx")}},
        "model.threads": {"model": {"threads": -1}},
        "environments[0].room": {"environments": [{"id": "a", "source": "none", "room": [1]}]},
    }
    for key, doc in cases.items():
        with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
            parse(doc)


def test_serve_says_which_model_runs(tmp_path):
    cfg = tmp_path / "serve.toml"
    cfg.write_text('[server]\nport = 0\n[model]\npath = "none"\n'
                   '[[environments]]\nid = "a"\nsource = "none"\n')
    out = subprocess.run([sys.executable, "-m", "wifi_densepose", "serve", "--config", str(cfg),
                          "--duration", "0.5"], check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "model:   none" in out.stdout
    out = subprocess.run([sys.executable, "-m", "wifi_densepose", "serve", "--port", "0",
                          "--simulate", "none", "--duration", "0.5"],
                         check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"model:   {Model.default().version}" in out.stdout
    out = subprocess.run([sys.executable, "-m", "wifi_densepose", "serve", "--port", "0",
                          "--model", str(tmp_path / "nope.onnx")], check=False, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1 and out.stderr.startswith("error: --model")


def test_evaluate_command_reports_model_beside_baselines():
    out = subprocess.run([sys.executable, "-m", "wifi_densepose", "evaluate", "--clips", "2",
                          "--duration", "3", "--json"], check=False, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert set(r["model"]) == set(r["baseline"]) >= {"pck@0.1", "pck@0.2", "count_acc"}
    assert r["clips"] == 2 and r["windows"] > 0
    assert "2/2" in out.stderr  # progress
    bad = subprocess.run([sys.executable, "-m", "wifi_densepose", "evaluate", "--clips", "0"],
                         check=False, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr.startswith("error:")


def test_assignment_is_the_optimal_matching():
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(0)
    for shape in [(2, 1), (2, 2), (2, 3), (3, 2), (4, 4), (1, 5)]:
        for _ in range(20):
            cost = rng.random(shape)
            r, c = assignment(cost)
            r0, c0 = linear_sum_assignment(cost)
            assert np.isclose(cost[r, c].sum(), cost[r0, c0].sum())
            assert len(set(r)) == len(r) == len(set(c)) == min(shape)


def test_cuda_without_the_gpu_runtime_is_a_clear_error_not_a_cpu_fallback():
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has the GPU build of ONNX Runtime")
    with pytest.raises(ModelLoadError, match="onnxruntime-gpu"):
        Model.default(device="cuda")
    with pytest.raises(ValueError, match="cuda:N"):
        Model.default(device="gpu")
    assert Model.default().device == "cpu"
    with pytest.raises(ConfigError, match="model.device"):
        parse({"model": {"device": "tpu"}})
    assert parse({"model": {"device": "cuda:1"}}).model.device == "cuda:1"


def test_half_a_dense_pose_is_refused_at_load():
    with pytest.raises(ModelLoadError, match="dense pose needs both outputs"):
        Model.load(FIXTURES / "dense_half.onnx")


def test_dense_pose_reaches_only_the_subscriptions_that_ask_for_it():
    from wifi_densepose import SyncClient

    with Server() as server:
        server.add_environment("room_001")
        token = server.issue_token("t")
        with SyncClient(server.url, token) as with_dense, SyncClient(server.url, token) as without:
            with_dense.subscribe("pose_data", environment_id="room_001", include_dense_pose=True,
                                 max_fps=30, buffer_size=100)
            without.subscribe("pose_data", environment_id="room_001", max_fps=30, buffer_size=100)
            run = server.simulate("room_001", "walk", seed=6, duration_s=6, speed=1.0)

            def drawn(client, n=30):
                people = []
                for _ in range(n):
                    msg = client.recv(timeout=20)
                    people += [p for p in msg["data"]["persons"] if "keypoints" in p]
                return people

            dense_people, plain_people = drawn(with_dense), drawn(without)
            run.stop()
    assert dense_people and plain_people
    assert all("dense_pose" not in p for p in plain_people)
    with_cells = [p["dense_pose"] for p in dense_people if p["dense_pose"]["cells"]]
    assert all(p["dense_pose"]["grid"] == 32 for p in dense_people)
    assert with_cells, "no person had a single foreground cell"
    for d in with_cells:
        for row, col, part, u, v in d["cells"]:
            assert 0 <= row < 32 and 0 <= col < 32 and 1 <= part <= 24
            assert 0 <= u <= 1 and 0 <= v <= 1


def test_a_stray_frame_of_another_shape_does_not_break_the_window():
    """Intel 5300 logs carry a frame of another chain count now and then: the model skips
    it and keeps its window (no restart, no sensing-only frame in between)."""
    data = sim.generate("walk", seed=4, duration_s=1.5)
    csi = np.ascontiguousarray(data["csi"], dtype=np.complex64)
    stamps = np.arange(len(csi)) * 0.01 + 50.0
    version = Model.default().version
    with Server() as server:
        poses = collect(server, "pose_data")
        server.add_environment("room_001")
        half = len(csi) // 2
        server.inject_csi("room_001", csi[:half], list(stamps[:half]))
        stray = np.ascontiguousarray(csi[half, :2])  # two transmit chains of three
        server.inject_csi("room_001", stray, [float(stamps[half])])
        server.inject_csi("room_001", csi[half + 1:], list(stamps[half + 1:]))

        # A window about every 3.3 packets from packet 32 on: uninterrupted, that is at
        # least this many; a window restarted at the stray frame would lose about ten.
        expected = int((len(csi) - 32) / 100 * 30) - 2
        until(lambda: server.environment_stats("room_001")["model"]["windows_answered"]
              >= expected)
        until(lambda: len(poses.items) > 0)
        m = server.environment_stats("room_001")["model"]
    assert m["frames_unusable"] == 1 and m["frames_unsupported"] == 0
    assert all(p["metadata"]["model_version"] == version for p in poses.items)
