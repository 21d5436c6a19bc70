"""Simulator speed against a numpy baseline, measured in the same run.

The baseline computes the same path sum as the engine for the ``two_people`` scenario
on an Intel 5300 (3 x 3 antennas, 30 subcarriers): line of sight and the six
first-order image paths, plus ~21 scattering points per person (the 17 keypoints and
the midpoints of the torso and limbs, the same count as the engine's capsule points),
each ``a * exp(-2j pi f d / c)`` with ``a`` from Friis and the bistatic radar equation.
It gets the people's positions from the engine's own ground truth, so both sides sum
the same number of paths over the same geometry. Two numpy versions are timed:

- ``numpy per frame``: a Python loop over frames, vectorised within the frame (how a
  straightforward simulator is written);
- ``numpy batched``: every frame at once, one broadcast over (frame, point, tx, rx, k).

The engine is timed through ``sim.generate`` with ``threads=1`` (one core, the whole
packet: motion, skeleton, path sum, blocking, impairments, keypoint truth; no dense
pose) and with all cores. Ratios are engine over baseline.

Build the extension in release mode first (``maturin develop --release``), then:
    python benches/sim_numpy.py [--seconds 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from wifi_densepose import sim

C = 299_792_458.0
LIMBS = [(5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16), (5, 11), (6, 12)]


def geometry(seconds: float) -> dict:
    d = sim.generate("two_people", seed=0, duration_s=seconds, device="intel5300", fps=100,
                     dense_pose_grid=0, threads=0)
    spec = sim.describe("two_people", duration_s=seconds)
    room = np.array(d["room_size"])
    kp = d["keypoints_3d"].astype(np.float64)  # (n, 2, 17, 3)
    mids = 0.5 * (kp[:, :, [a for a, _ in LIMBS]] + kp[:, :, [b for _, b in LIMBS]])
    pts = np.concatenate([kp, mids[:, :, :4]], axis=2).reshape(len(kp), -1, 3)  # 21 per person
    lam = C / 5.18e9
    spacing = lam / 2
    offs = np.outer(np.arange(3) - 1, [0, spacing, 0])
    tx = np.array([0.3, 0.45 * room[1], 1.2]) + offs
    rx = np.array([room[0] - 0.3, 0.55 * room[1], 1.2]) + offs
    return {"pts": pts, "freqs": d["frequencies"], "room": room, "tx": tx, "rx": rx,
            "gamma": [0.5, 0.5, 0.5, 0.5, 0.3, 0.3], "spec": spec}


def static_paths(g: dict) -> tuple[np.ndarray, np.ndarray]:
    tx, rx, room = g["tx"], g["rx"], g["room"]
    lengths = [np.linalg.norm(tx[:, None] - rx[None], axis=-1)]
    gains = [1.0]
    for s, gamma in enumerate(g["gamma"]):
        axis, plane = s // 2, (0.0 if s % 2 == 0 else room[s // 2])
        img = tx.copy()
        img[:, axis] = 2 * plane - tx[:, axis]
        lengths.append(np.linalg.norm(img[:, None] - rx[None], axis=-1))
        gains.append(gamma)
    return np.array(lengths), np.array(gains)


def numpy_per_frame(g: dict) -> np.ndarray:
    f = g["freqs"]
    lengths, gains = static_paths(g)
    static = np.sum(gains[:, None, None, None] * (C / f) / (4 * np.pi * lengths[..., None])
                    * np.exp(-2j * np.pi * f * lengths[..., None] / C), axis=0)
    amp = 1.0 / np.sqrt(g["pts"].shape[1])
    k = (C / 5.18e9) / (4 * np.pi) ** 1.5
    out = np.empty((len(g["pts"]), 3, 3, len(f)), np.complex64)
    for n, p in enumerate(g["pts"]):
        d1 = np.linalg.norm(p[:, None, :] - g["tx"][None], axis=-1)  # (P, 3)
        d2 = np.linalg.norm(p[:, None, :] - g["rx"][None], axis=-1)
        d = d1[:, :, None] + d2[:, None, :]
        a = amp * k / (d1[:, :, None] * d2[:, None, :])
        out[n] = static + np.sum(a[..., None] * np.exp(-2j * np.pi * f * d[..., None] / C), axis=0)
    return out


def numpy_batched(g: dict) -> np.ndarray:
    f = g["freqs"]
    lengths, gains = static_paths(g)
    static = np.sum(gains[:, None, None, None] * (C / f) / (4 * np.pi * lengths[..., None])
                    * np.exp(-2j * np.pi * f * lengths[..., None] / C), axis=0)
    p = g["pts"]
    amp = 1.0 / np.sqrt(p.shape[1])
    k = (C / 5.18e9) / (4 * np.pi) ** 1.5
    d1 = np.linalg.norm(p[:, :, None, :] - g["tx"][None, None], axis=-1)  # (n, P, 3)
    d2 = np.linalg.norm(p[:, :, None, :] - g["rx"][None, None], axis=-1)
    d = d1[..., :, None] + d2[..., None, :]
    a = amp * k / (d1[..., :, None] * d2[..., None, :])
    return (static + np.sum(a[..., None] * np.exp(-2j * np.pi * f * d[..., None] / C), axis=1)).astype(
        np.complex64)


def best(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="simulated seconds at 100 fps")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    g = geometry(args.seconds)
    n = len(g["pts"])
    sent = round(args.seconds * 100)
    results = {
        "numpy per frame": n / best(lambda: numpy_per_frame(g), args.rounds),
        "numpy batched": n / best(lambda: numpy_batched(g), args.rounds),
        "engine, 1 thread": sent / best(lambda: sim.generate(
            "two_people", seed=0, duration_s=args.seconds, fps=100, dense_pose_grid=0, threads=1),
            args.rounds),
        "engine, all cores": sent / best(lambda: sim.generate(
            "two_people", seed=0, duration_s=args.seconds, fps=100, dense_pose_grid=0, threads=0),
            args.rounds),
        "engine, 1 thread, dense pose 32x32": sent / best(lambda: sim.generate(
            "two_people", seed=0, duration_s=args.seconds, fps=100, dense_pose_grid=32, threads=1),
            args.rounds),
    }
    base = results["numpy per frame"]
    batched = results["numpy batched"]
    print(f"two_people, intel5300 3x3x30, {sent} packets, best of {args.rounds}")
    for name, fps in results.items():
        print(f"  {name:36s} {fps:12,.0f} frames/s   x{fps / base:8.1f} per-frame numpy"
              f"   x{fps / batched:6.2f} batched numpy")


if __name__ == "__main__":
    main()
