"""The sensor's cost per frame, per device layout (docs/sensing.md).

    python benches/sensing_speed.py

60 s of the simulator's `walk` and of one person sitting still (100 packets/s) per
device, run through `wifi_densepose.sensing.sense` (the engine's sensor, the code every
environment runs) with the profile's channel, as the live path has it; the best of three runs, in microseconds per frame and as a share of one
core at 100 packets/s. The still room is the dearer one: its presence and breathing windows
grow to 25.6 s (walking restarts them).
"""

from __future__ import annotations

import json
import time

from wifi_densepose import sensing, sim

STILL = json.dumps({"name": "sit_still", "room": {"size": [5.0, 4.0, 3.0]},
                    "people": [{"start": [2.5, 2.0], "posture": "sitting",
                                "actions": [{"type": "sit", "duration_s": 61}]}]})


def main() -> None:
    for device, (name, scenario) in [(d, s) for d in ("intel5300", "esp32", "nexmon")
                                     for s in (("walk", "walk"), ("still", STILL))]:
        data = sim.generate(scenario, seed=1, duration_s=60, device=device)
        n = len(data["timestamps"])
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            sensing.sense(data["csi"], data["timestamps"], channel=data["channel"])
            best = min(best, time.perf_counter() - t0)
        us = best / n * 1e6
        print(f"{device:10s} {name:5s} {tuple(data['csi'].shape[1:])}: {us:.1f} us/frame, "
              f"{us * 100 / 1e6 * 100:.2f} % of a core at 100 packets/s")


if __name__ == "__main__":
    main()
