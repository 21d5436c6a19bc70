"""The serve configuration as documented: the docs' example files load, source flags are
not silently dropped next to a file, a simulated room's device is the simulated device,
and evaluate copes with a held-out set that has nobody in it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from wifi_densepose import Server, config

ROOT = Path(__file__).resolve().parent.parent


def _toml_blocks(path: Path) -> list[str]:
    return re.findall(r"```toml\n(.*?)```", path.read_text(), flags=re.DOTALL)


def test_the_documented_example_files_load(tmp_path, monkeypatch):
    docstring = config.__doc__ or ""
    example = "\n".join(line[4:] for line in docstring.split("::", 1)[1].splitlines()
                        if line.startswith("    ") or not line.strip())
    example = example.split("With no [[environments]]")[0]
    examples = [example, *_toml_blocks(ROOT / "docs" / "deployment.md")]
    assert len(examples) >= 2
    recording = tmp_path / "walk.dat"
    recording.write_bytes(b"\0")
    for name in ("rx1.dat", "rx2.dat"):  # the several-receivers example's replays
        (tmp_path / name).write_bytes(b"\0")
    monkeypatch.chdir(tmp_path)  # the example's replay path is relative
    for i, text in enumerate(examples):
        f = tmp_path / f"example{i}.toml"
        f.write_text(text)
        cfg = config.load(f)
        assert cfg.environments, f"example {i} has no environments"


def _serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wifi_densepose", "serve", *args],
                          check=False, capture_output=True, text=True, timeout=60)


def test_source_flags_next_to_a_config_file_are_a_usage_error(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[server]\nport = 0\n[model]\npath = "none"\n')
    out = _serve("--config", str(f), "--oracle", "--simulate", "fall", "--duration", "0.5")
    assert out.returncode == 2
    assert "--oracle, --simulate cannot be combined with --config" in out.stderr
    out = _serve("--config", str(f), "--port", "0", "--duration", "0.5")  # allowed overrides
    assert out.returncode == 0, out.stderr


def test_a_simulated_room_simulates_its_device():
    with Server(model=None) as server:
        server.add_environment("r", device="esp32")
        run = server.simulate("r", "walk", seed=1, duration_s=0.5, device="esp32", speed=0)
        assert run.wait(30)
        deadline = time.monotonic() + 10
        while server.environment_stats("r")["shape"] is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert server.environment_stats("r")["shape"][:2] == [1, 1]


def test_evaluate_reports_na_when_nobody_is_in_the_set():
    # Held-out clip 0 (seed 900000) is an empty room.
    out = subprocess.run([sys.executable, "-m", "wifi_densepose", "evaluate", "--clips", "1",
                          "--duration", "3", "--json", "--quiet"],
                         check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["model"]["pck@0.1"] is None and r["model"]["count_acc"] is not None
