"""The pose_data throttle under late frames: how many of 30 FPS pass at max_fps 30 for a
schedule tolerance of a quarter, half or one period (``docs/performance.md``, "Seventh
pass"). A numpy model of ``Subscription::admit`` (GCRA: a frame passes unless it comes more
than the tolerance before its due time; the schedule then moves on from the later of the
due time and the frame's time less the tolerance), fed frames on the 30 FPS grid of a
100 Hz source, each late by an exponential delay of the given mean (seed 1, 3,000 frames).

    .venv/bin/python benches/throttle_model.py         # a second
"""

from __future__ import annotations

import numpy as np

PERIOD = 1 / 30


def passed_fps(times: np.ndarray, tolerance: float) -> float:
    due = None
    passed = 0
    for x in times:
        if due is None:
            due, passed = x + PERIOD, 1
        elif x + tolerance >= due:
            due = max(due, x - tolerance) + PERIOD
            passed += 1
    return passed / float(times[-1] - times[0])


def main() -> None:
    rng = np.random.default_rng(1)
    n = 3000
    grid = np.floor(np.arange(n) * PERIOD / 0.01) * 0.01 + 0.01  # made on 10 ms packets
    print("| mean lateness | tolerance 1/4 period | 1/2 period | 1 period |")
    print("|---|---|---|---|")
    for mean in (0.002, 0.005, 0.01, 0.02):
        times = np.sort(grid + rng.exponential(mean, n))
        cells = " | ".join(f"{passed_fps(times, f * PERIOD):.1f}" for f in (0.25, 0.5, 1.0))
        print(f"| {mean * 1e3:.0f} ms | {cells} |")


if __name__ == "__main__":
    main()
