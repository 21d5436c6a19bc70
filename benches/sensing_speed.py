"""The sensor's cost per frame, per device layout (docs/sensing.md).

    python benches/sensing_speed.py               # --runs 5 --devices esp32 --scenes walk

60 s of the simulator's `walk` and of one person sitting still (100 packets/s) per
device, run through `wifi_densepose.sensing.sense` (the engine's sensor, the code every
environment runs) with the profile's channel, as the live path has it, and with
``--both-bands`` also without it (an unknown band: on ESP32, no long-wave motion ratio), the
two alternating; the best of three runs (``--runs``), in microseconds per frame and as a share of one
core at 100 packets/s. The still room is the dearer one: its presence and breathing windows
grow to 25.6 s (walking restarts them).
"""

from __future__ import annotations

import argparse
import json
import time

from wifi_densepose import sensing, sim

STILL = json.dumps({"name": "sit_still", "room": {"size": [5.0, 4.0, 3.0]},
                    "people": [{"start": [2.5, 2.0], "posture": "sitting",
                                "actions": [{"type": "sit", "duration_s": 61}]}]})
SCENES = {"walk": "walk", "still": STILL}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", default="intel5300,esp32,nexmon")
    ap.add_argument("--scenes", default="walk,still")
    ap.add_argument("--runs", type=int, default=3, help="runs per case; the best counts")
    ap.add_argument("--both-bands", action="store_true",
                    help="also time each case without the channel, alternating with it")
    a = ap.parse_args()
    for device in a.devices.split(","):
        for name in a.scenes.split(","):
            data = sim.generate(SCENES[name], seed=1, duration_s=60, device=device)
            n = len(data["timestamps"])
            channels = [data["channel"], None] if a.both_bands else [data["channel"]]
            best = dict.fromkeys(channels, float("inf"))
            for _ in range(a.runs):
                for channel in channels:
                    t0 = time.perf_counter()
                    sensing.sense(data["csi"], data["timestamps"], channel=channel)
                    best[channel] = min(best[channel], time.perf_counter() - t0)
            for channel, b in best.items():
                us = b / n * 1e6
                told = f"channel {channel}" if channel is not None else "no channel"
                print(f"{device:10s} {name:5s} {tuple(data['csi'].shape[1:])} {told:11s}: "
                      f"{us:.2f} us/frame, {us * 100 / 1e6 * 100:.2f} % of a core at 100 packets/s")


if __name__ == "__main__":
    main()
