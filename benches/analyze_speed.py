"""How long ``wifi_densepose.analyze`` takes over a simulated clip (the live pipeline,
default model, flat out), with the model's share.

    python benches/analyze_speed.py                     # 60 s of walk, Intel 5300, 3 runs
    python benches/analyze_speed.py --duration 10 --runs 1

The clip is generated first and the default model loaded once (as in a notebook), so the
figure is analyze alone. An environment keeps one window in flight, so one recording's
windows are inferred one after another at batch 1: the model's latency at batch 1 times
the number of windows is most of the time. Figures depend on the machine and its load
(printed with them).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import wifi_densepose as wdp
from wifi_densepose.model import Model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="walk")
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--device", default="intel5300")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    model = Model.default()
    data = wdp.sim.generate(args.scenario, seed=args.seed, duration_s=args.duration,
                            device=args.device)
    n = len(data["csi"])
    print(f"{args.scenario}, {args.duration:g} s, {args.device} {data['csi'].shape[1:]}: "
          f"{n} packets; cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    walls = []
    for _ in range(args.runs):
        t = time.perf_counter()
        messages = wdp.analyze(data, model=model)
        walls.append(time.perf_counter() - t)
    poses = sum(m["type"] == "pose_data" for m in messages)
    best = min(walls)
    print(f"analyze: best {best:.2f} s, median {float(np.median(walls)):.2f} s of {args.runs} "
          f"({args.duration / best:.0f}x real time); {poses} pose_data, {len(messages)} messages")
    x = np.random.default_rng(0).standard_normal((1, 2, 32, 90)).astype(np.float32)
    for _ in range(20):
        model.predict(x)
    t = time.perf_counter()
    for _ in range(200):
        model.predict(x)
    per = (time.perf_counter() - t) / 200
    print(f"model alone at batch 1: {per * 1e3:.2f} ms a window (through Python), "
          f"x about {poses} windows (one per pose_data) = {per * poses:.2f} s")


if __name__ == "__main__":
    main()
