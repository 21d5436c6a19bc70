"""The sensor's cost per frame, per device layout (docs/sensing.md).

    python benches/sensing_speed.py

60 s of the simulator's `walk` (100 packets/s) per device, run through
`wifi_densepose.sensing.sense` (the engine's sensor, the code every environment runs); the
best of three runs, in microseconds per frame and as a share of one core at 100 packets/s.
"""

from __future__ import annotations

import time

from wifi_densepose import sensing, sim


def main() -> None:
    for device in ("intel5300", "esp32", "nexmon"):
        data = sim.generate("walk", seed=1, duration_s=60, device=device)
        n = len(data["timestamps"])
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            sensing.sense(data["csi"], data["timestamps"])
            best = min(best, time.perf_counter() - t0)
        us = best / n * 1e6
        print(f"{device:10s} {tuple(data['csi'].shape[1:])}: {us:.1f} us/frame, "
              f"{us * 100 / 1e6 * 100:.2f} % of a core at 100 packets/s")


if __name__ == "__main__":
    main()
