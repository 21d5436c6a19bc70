"""The command line, run as a user would: a subprocess, its output and its exit code."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "csi"


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wifi_densepose", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_help_explains_every_command():
    out = cli("--help")
    assert out.returncode == 0
    for cmd in ("serve", "token", "inspect", "simulate", "analyze", "calibrate", "evaluate", "train"):
        assert cmd in out.stdout


def test_inspect_a_real_recording():
    out = cli("inspect", str(DATA / "intel5300_walk_1590161182.dat"))
    assert out.returncode == 0, out.stderr
    assert "intel5300" in out.stdout and "152" in out.stdout


def test_inspect_missing_file_is_one_line_and_exit_1():
    out = cli("inspect", "/nonexistent/file.dat")
    assert out.returncode == 1
    assert out.stderr.startswith("error:") and len(out.stderr.strip().splitlines()) == 1


def test_token_needs_a_secret():
    out = cli("token")
    assert out.returncode == 2 and "secret" in out.stderr
    out = cli("token", "--secret", "s" * 32, "--subject", "ana", "--environment", "room_001")
    assert out.returncode == 0
    payload = out.stdout.strip().split(".")[1]
    claims = json.loads(__import__("base64").urlsafe_b64decode(payload + "=="))
    assert claims["sub"] == "ana" and claims["environments"] == ["room_001"]


def test_serve_prints_how_to_connect_and_serves():
    proc = subprocess.Popen([sys.executable, "-m", "wifi_densepose", "serve", "--port", "0",
                             "--duration", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert "listening on ws://127.0.0.1:" in first
        url = first.split("listening on ")[1].strip()
        health = url.replace("ws://", "http://").replace("/ws/v1", "/health")
        deadline = time.monotonic() + 5
        while True:
            try:
                with urllib.request.urlopen(health, timeout=2) as r:
                    assert json.loads(r.read())["status"] == "ok"
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert proc.wait(timeout=15) == 0, proc.stderr.read()
        rest = proc.stdout.read()  # (communicate() would skip lines already buffered)
        assert "?token=" in rest
    finally:
        proc.kill()


def test_simulate_writes_csi_and_truth(tmp_path):
    import numpy as np

    out = cli("simulate", "fall", "--seed", "2", "--duration", "3", "--out", str(tmp_path / "f.npz"))
    assert out.returncode == 0, out.stderr
    assert "f.npz" in out.stdout and "1 person, 1 fall," in out.stdout
    with np.load(tmp_path / "f.npz") as d:
        assert d["csi"].dtype == np.complex64 and d["csi"].shape[1:] == (3, 3, 30)
        assert d["keypoints_2d"].shape[0] == d["csi"].shape[0]
    listing = cli("simulate", "--list")
    assert listing.returncode == 0 and "fall_recover" in listing.stdout
    bad = cli("simulate", "teleport", "--out", str(tmp_path / "x.npz"))
    assert bad.returncode == 1 and bad.stderr.startswith("error:")
    assert len(bad.stderr.strip().splitlines()) == 1


WALK = DATA / "intel5300_walk_1590161182.dat"


def _summary_count(text: str, label: str) -> int:
    line = next(ln for ln in text.splitlines() if ln.strip().startswith(label))
    return int(line.split()[len(label.split())])


@pytest.mark.skipif(not WALK.exists(), reason="needs ../shared/data/csi")
def test_analyze_a_real_recording_summary_and_its_messages_as_json_lines(tmp_path):
    out_file = tmp_path / "walk.jsonl"
    out = cli("analyze", str(WALK), "--quiet", "--out", str(out_file), "--types", "pose_data")
    assert out.returncode == 0, out.stderr
    assert "152 frames of 2x2x30 CSI (intel5300)" in out.stdout
    assert "someone reported" in out.stdout and "timeline" in out.stdout
    # A two-antenna card: the model cannot run, and the summary says why.
    assert "the model needs CSI from 3 receive antennas" in out.stdout
    lines = [json.loads(ln) for ln in out_file.read_text().splitlines()]
    assert lines and {m["type"] for m in lines} == {"pose_data"}
    assert len(lines) == _summary_count(out.stdout, "pose_data frames")
    assert f"wrote {len(lines)} messages" in out.stderr


def test_analyze_a_simulated_run_writes_every_message_to_stdout_and_sums_up_on_stderr(tmp_path):
    run = tmp_path / "fall.npz"
    assert cli("simulate", "fall", "--seed", "2", "--duration", "6", "--out", str(run)).returncode == 0
    out = cli("analyze", str(run), "--quiet", "--model", "none", "--out", "-", "--segment", "2")
    assert out.returncode == 0, out.stderr
    messages = [json.loads(ln) for ln in out.stdout.splitlines()]
    types = {m["type"] for m in messages}
    assert {"pose_data", "hardware_event", "system_event"} <= types
    poses = [m for m in messages if m["type"] == "pose_data"]
    assert _summary_count(out.stderr, "pose_data frames") == len(poses)
    # The timeline has a row per 2 s of the recording with frames in it.
    rows = [ln for ln in out.stderr.splitlines() if ln.strip().startswith("|") and "from s" not in ln
            and "---" not in ln]
    assert 2 <= len(rows) <= 4
    someone = sum(bool(p["data"]["persons"]) for p in poses) / len(poses)
    assert f"someone reported     {100 * someone:.1f} %" in out.stderr


def test_analyze_refuses_bad_options_in_one_line(tmp_path):
    run = tmp_path / "walk.npz"
    assert cli("simulate", "walk", "--duration", "2", "--out", str(run)).returncode == 0
    for args, says in ((["/nonexistent/file.dat"], "file.dat"),
                       ([str(run), "--types", "pose_data"], "--types needs --out"),
                       ([str(run), "--out", "x.jsonl", "--types", "bogus"], "unknown ['bogus']"),
                       ([str(run), "--placement", "{not json"], "not JSON"),
                       ([str(run), "--calibration", "/nonexistent.json"], "--calibration"),
                       ([str(run), "--model", "/nonexistent.onnx"], "nonexistent.onnx")):
        out = cli("analyze", *args, "--quiet")
        assert out.returncode == 1, (args, out.stdout)
        assert says in out.stderr and len(out.stderr.strip().splitlines()) == 1, (args, out.stderr)


def test_serve_with_a_config_file(tmp_path):
    cfg = tmp_path / "wdp.toml"
    cfg.write_text(f"""
[server]
heartbeat_interval_s = 10.0

[[environments]]
id = "lab"
source = "replay"
path = "{WALK}"
speed = 0

[[environments]]
id = "ward"
source = "udp"
node = 3

[udp]
port = 0
""")
    out = cli("serve", "--config", str(cfg), "--port", "0", "--duration", "2")
    assert out.returncode == 0, out.stderr
    assert "lab: replay of" in out.stdout and "ward: ESP32 node 3 over UDP" in out.stdout
    assert "udp:     127.0.0.1:" in out.stdout


def test_serve_says_on_the_terminal_when_the_model_cannot_read_a_source(tmp_path):
    """A one-antenna source: the model line alone promised inference that never ran."""
    cfg = tmp_path / "wdp.toml"
    cfg.write_text('[[environments]]\nid = "hall"\nsource = "simulate"\nscenario = "walk"\n'
                   'device = "esp32"\nspeed = 0\n')
    out = cli("serve", "--config", str(cfg), "--port", "0", "--duration", "3")
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stderr.splitlines() if "the model needs CSI from 3" in line]
    assert len(warnings) == 1 and warnings[0].startswith("  hall: warning:"), out.stderr


def test_config_errors_name_the_key(tmp_path):
    def fails(text: str) -> str:
        cfg = tmp_path / "bad.toml"
        cfg.write_text(text)
        out = cli("serve", "--config", str(cfg), "--port", "0", "--duration", "1")
        assert out.returncode == 1 and out.stderr.startswith("error:"), out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
        return out.stderr

    assert "environments[0].source: 'teleport'" in fails('[[environments]]\nid="a"\nsource="teleport"\n')
    assert "environments[0].path" in fails('[[environments]]\nid="a"\nsource="replay"\n')
    assert "environments[0].node" in fails(
        '[[environments]]\nid="a"\nsource="udp"\nnode="x"\n[udp]\nport=0\n')
    assert "environments[1].id" in fails('[[environments]]\nid="a"\n[[environments]]\nid="a"\n')
    assert "environments[0].scenario" in fails(
        '[[environments]]\nid="a"\nsource="replay"\npath="x"\nscenario="walk"\n')
    assert "udp.port: required" in fails('[[environments]]\nid="a"\nsource="udp"\nnode=1\n')
    assert "heartbeat_timout_s" in fails('[server]\nheartbeat_timout_s = 1\n')
    assert "unknown key 'rooms'" in fails('[rooms]\n')
    assert "not valid TOML" in fails('[[environments]\n')
    placed = '[[environments]]\nid="a"\nsource="none"\n'
    assert "environments[0].placement: needs the environment's device" in fails(
        placed + 'placement = {tx_position=[0.3, 2, 1.2], rx_position=[5.7, 3, 1.2]}\n')
    assert "environments[0].placement: placement needs rx_position" in fails(
        placed + 'device="intel5300"\nplacement = {tx_position=[0.3, 2, 1.2]}\n')
