"""After someone who stayed leaves a calibrated room, does the room read empty again?

    python benches/calibrated_leaving.py          # about 20 s

Tuning clips (``sensing_eval.clip_scenario("still", 100 + i)``, seeds 600000 + i): the room
empty for 12 s (the sensor calibrates on the first 10), the clip's person walks in, stands,
sits or lies for 10 s, gets up, walks out through the wall they came in by. Scored: the
frames from 3 s after they are gone to the clip's end, per device — the share that still
report someone (``docs/sensing.md``, "The empty room's static channel"). Baseline: the same
frames uncalibrated. The sensor is told the profile's channel, as the live path is
(``--no-channel``: an unknown band, as before the sensor read bands).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from wifi_densepose import sensing, sim
from wifi_densepose import sensing_eval as se


def leaving_spec(i: int, duration_s: float) -> dict:
    spec = se.entering_scenario(se.clip_scenario("still", 100 + i, duration_s))
    p = spec["people"][0]
    door = p["start"]
    acts = p["actions"][:-1] + [{"type": p["actions"][-1]["type"], "duration_s": 10.0}]
    acts += {"sit": [{"type": "stand_up"}], "lie": [{"type": "get_up"}]}.get(acts[-1]["type"], [])
    p["actions"] = acts + [{"type": "walk", "to": [door], "speed": 1.0},
                           {"type": "stand", "duration_s": 100.0}]
    return spec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--devices", default="intel5300,esp32,nexmon")
    ap.add_argument("--no-channel", action="store_true",
                    help="do not tell the sensor the profile's channel (unknown band)")
    a = ap.parse_args()
    print("| device | frames after leaving | reporting someone, calibrated | uncalibrated |")
    print("|---|---|---|---|")
    for device in a.devices.split(","):
        cal = raw = total = 0
        for i in range(a.clips):
            data = sim.generate(json.dumps(leaving_spec(i, a.duration)), seed=600000 + i,
                                duration_s=a.duration, device=device)
            ts = np.asarray(data["timestamps"])
            occupied = np.flatnonzero(np.asarray(data["occupancy"]) > 0)
            after = ts > ts[occupied[-1]] + 3.0
            channel = None if a.no_channel else data["channel"]
            cal += int(sensing.sense(data["csi"], ts, calibrate_s=10.0,
                                     channel=channel)["presence"][after].sum())
            raw += int(sensing.sense(data["csi"], ts, channel=channel)["presence"][after].sum())
            total += int(after.sum())
        print(f"| {device} | {total} | {cal / total:.3f} | {raw / total:.3f} |", flush=True)


if __name__ == "__main__":
    main()
