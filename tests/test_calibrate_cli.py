"""Calibrations outside Python: ``wifi-densepose calibrate`` learns one from a recording of
the empty room, a serve config's ``calibration = "FILE"`` applies it, and a calibration
that frames of another shape make meaningless is dropped with a ``system_event``, not
silently."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from wifi_densepose import Server, ServerError, config, sensing, sim
from wifi_densepose.errors import ConfigError
from wifi_densepose.testing import collect


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wifi_densepose", *args], check=False,
                          capture_output=True, text=True, timeout=120)


def _npz(tmp_path, scenario: str, duration: float) -> str:
    out = tmp_path / f"{scenario}.npz"
    r = _cli("simulate", scenario, "--duration", str(duration), "--seed", "4", "--out", str(out))
    assert r.returncode == 0, r.stderr
    return str(out)


def test_calibrate_learns_an_empty_recording_and_refuses_a_busy_or_short_one(tmp_path):
    out = tmp_path / "room.json"
    r = _cli("calibrate", _npz(tmp_path, "empty", 14), "--seconds", "10", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "static channel: 270 amplitudes" in r.stdout
    c = json.loads(out.read_text())
    assert c["shape"] == [3, 3, 30] and len(c["background"]) == 270
    # It is a calibration the sensor takes back.
    empty = sim.generate("empty", seed=4, duration_s=5)
    s = sensing.sense(empty["csi"], empty["timestamps"], calibration=c)
    assert s["presence"].sum() == 0
    busy = _cli("calibrate", _npz(tmp_path, "walk", 14), "--seconds", "10", "--out",
                str(tmp_path / "busy.json"))
    assert busy.returncode == 1 and "motion was seen" in busy.stderr
    assert not (tmp_path / "busy.json").exists()
    short = _cli("calibrate", str(tmp_path / "empty.npz"), "--seconds", "30", "--out",
                 str(tmp_path / "short.json"))
    assert short.returncode == 1 and "fewer than the 30 s" in short.stderr


def test_a_serve_config_applies_a_saved_calibration(tmp_path):
    empty = sim.generate("empty", seed=4, duration_s=12)
    c = sensing.sense(empty["csi"], empty["timestamps"], calibrate_s=8)["calibration"]
    saved = tmp_path / "room.json"
    saved.write_text(json.dumps(c))
    f = tmp_path / "c.toml"
    f.write_text(f'[[environments]]\nid = "lab"\nsource = "none"\ncalibration = "{saved}"\n')
    assert config.load(f).environments[0].calibration == c
    f.write_text('[[environments]]\nid = "lab"\nsource = "none"\ncalibration = "nope.json"\n')
    with pytest.raises(ConfigError, match="calibration: no such file"):
        config.load(f)
    (tmp_path / "other.json").write_text('{"hello": 1}')
    f.write_text(f'[[environments]]\nid = "lab"\nsource = "none"\n'
                 f'calibration = "{tmp_path / "other.json"}"\n')
    with pytest.raises(ConfigError, match="is not a calibration"):
        config.load(f)


def test_a_calibration_for_another_shape_is_dropped_with_a_system_event():
    empty = sim.generate("empty", seed=4, duration_s=12)
    c = sensing.sense(empty["csi"], empty["timestamps"], calibrate_s=8)["calibration"]
    with Server(model=None) as server:
        events = collect(server, "system_event")
        server.add_environment("lab")
        server.set_calibration("lab", c)
        assert server.environment_stats("lab")["calibration"] == c
        esp = sim.generate("empty", seed=4, duration_s=1, device="esp32")
        server.inject_csi("lab", esp["csi"], timestamps=list(np.asarray(esp["timestamps"])))
        end = time.monotonic() + 20
        while time.monotonic() < end and not any(
                e.get("event") == "calibration_dropped" for e in events.items):
            time.sleep(0.05)
        dropped = [e for e in events.items if e.get("event") == "calibration_dropped"]
        assert len(dropped) == 1 and "[3, 3, 30]" in dropped[0]["message"]
        assert server.environment_stats("lab")["calibration"] is None
        # A calibration broken by hand is refused at once, not at the first frame.
        with pytest.raises(ServerError, match="background has 2 values"):
            server.set_calibration("lab", {**c, "background": [1.0, 1.0]})
