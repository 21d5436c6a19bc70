"""The soak (benches/soak.py) in short: 45 seconds of clients dropping and resuming,
connection storms, a UDP node that goes silent and returns, the model pipeline running.
No numbered alert may be lost, repeated or reordered, and with nobody connected the server
holds as many file descriptors as before. The full 10-minute run and its figures are in
docs/reliability.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parent.parent / "benches" / "soak.py"


def test_short_soak_loses_nothing_and_leaks_no_descriptors(tmp_path):
    out = tmp_path / "soak.json"
    run = subprocess.run([sys.executable, str(SOAK), "--minutes", "0.75", "--clients", "12",
                          "--json", str(out)], capture_output=True, text=True, timeout=240,
                         check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    r = json.loads(out.read_text())
    alerts = r["alerts"]
    assert r["published_total"] > 500
    assert alerts["resumes"] >= 12, "every client dropped and resumed at least once"
    assert alerts["resume_failures"] == 0 and alerts["alerts_lost_told"] == 0
    assert (alerts["lost"], alerts["duplicated"], alerts["out_of_order"]) == (0, 0, 0)
    assert r["storm_connections"] >= 50
    assert r["udp_node"]["silences"] >= 1 and r["udp_node"]["bad"] == 0
    # Nobody connected before and after: the same descriptors (listening sockets, the
    # UDP socket, the runtime's own), give or take one.
    assert r["fds"]["idle_after"] <= r["fds"]["idle_before"] + 1, r["fds"]
    assert r["threads"]["idle_after"] <= r["threads"]["idle_before"] + 4, r["threads"]
    # Memory: loose, not a leak detector at this length (each session's alert history
    # fills in the first minute); the 10-minute run measures the slope.
    assert r["rss_mb"]["last"] - r["rss_mb"]["first"] < 64, r["rss_mb"]
