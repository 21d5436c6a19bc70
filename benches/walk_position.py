"""What the default ``serve`` shows of its walker: the ``walk`` scenario through ``analyze``.

The README's figure for the default scenario (one person walking a rectangle in the
default 6 x 5 m room, Intel 5300 3x3x30 at 100 packets/s, the default placement, bundled
model, sensor and localizer): each published person's ``position`` against the truth's
mid-hip on the floor, from 2 s into each run, beside the room centre as the baseline.
This is the demo's own scenario, not a held-out set: the held-out position figures are
``benches/position.py``'s.

    python benches/walk_position.py [--seeds 5] [--duration 60]
"""

from __future__ import annotations

import argparse

import numpy as np
import wifi_densepose as wdp

SETTLE_S = 2.0


def errors(seed: int, duration_s: float) -> tuple[list[float], list[float]]:
    d = wdp.sim.generate("walk", seed=seed, duration_s=duration_s)
    ts = np.asarray(d["timestamps"])
    k = np.asarray(d["keypoints_3d"])
    hips = 0.5 * (k[:, 0, 11, :2] + k[:, 0, 12, :2])
    centre = np.asarray(d["room_size"][:2]) / 2
    said, base = [], []
    for m in wdp.analyze(d):
        if m["type"] != "pose_data":
            continue
        t = m["data"]["metadata"]["source_time"]
        if t - ts[0] < SETTLE_S:
            continue
        i = min(int(np.searchsorted(ts, t)), len(ts) - 1)
        for p in m["data"]["persons"]:
            if "position" in p:
                xy = np.array([p["position"]["x"], p["position"]["y"]])
                said.append(float(np.linalg.norm(xy - hips[i])))
                base.append(float(np.linalg.norm(centre - hips[i])))
    return said, base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="runs, seeds 0 to N-1 (default 5)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds per run (default 60)")
    a = ap.parse_args()
    said, base = [], []
    for seed in range(a.seeds):
        s, b = errors(seed, a.duration)
        said += s
        base += b
    e, c = np.array(said), np.array(base)
    print(f"walk, seeds 0-{a.seeds - 1}, {a.duration:g} s each: {len(e)} positions")
    print(f"position median / p90: {np.median(e):.2f} / {np.percentile(e, 90):.2f} m "
          f"(room centre {np.median(c):.2f} / {np.percentile(c, 90):.2f} m)")


if __name__ == "__main__":
    main()
