"""Experiment: how far the engine's window features go on held-out simulation, for the
things the sensor does not do yet — person count 0-3, the activity of a lone person, and
fall windows — with the same classifier ``wdp.train`` fits (linear softmax, or one hidden
layer), each beside its trivial baseline.

    .venv/bin/python benches/sim_window_classifier.py --device intel5300 --train-clips 60 --test-clips 20

Training clips are ``sim_dataset`` draws of the ``train`` split, test clips of the
``test`` split: seeds, room sizes and device placements never shared. Every window is
described by the 1 s and the ``--window-s`` describers (their features side by side), at a
hop of 0.5 s; targets are the simulator's truth at the window's last packet (a fall window:
its last packet within ``--window-s`` after an impact). Features are cached in
``--cache`` so heads can be refitted without re-simulating.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from wifi_densepose import _native, sim, sim_dataset, training


def describe(split: str, n: int, device: str, duration_s: float, window_s: float) -> dict:
    xs, occ, act, fall = [], [], [], []
    for i in range(n):
        d = sim_dataset.draw(split, i, duration_s=duration_s, devices=(device,))
        data = sim.generate(d["scenario"], dense_pose_grid=0)
        ts = np.asarray(data["timestamps"])
        csi = np.ascontiguousarray(data["csi"], np.complex64)
        short = _native.window_features(csi, ts, 1.0, 0.5)
        long = _native.window_features(csi, ts, window_s, 0.5)
        t = long["t"]
        idx = np.clip(np.searchsorted(short["t"], t), 0, len(short["t"]) - 1)
        xs.append(np.hstack([short["features"][idx], long["features"]]))
        frame = np.clip(np.searchsorted(ts, t), 0, len(ts) - 1)
        occ.append(np.asarray(data["occupancy"])[frame])
        act.append(np.asarray(data["activity"])[frame].max(axis=1))
        impacts = [float(f[2]) for f in np.asarray(data["falls"])]
        rel = t - ts[0]
        fall.append(np.array([any(0 <= r - imp <= window_s for imp in impacts) for r in rel]))
        print(f"\r{split}: {i + 1}/{n}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return {"x": np.vstack(xs), "occupancy": np.concatenate(occ).astype(int),
            "activity": np.concatenate(act).astype(int), "fall": np.concatenate(fall).astype(int)}


def head(train: dict, test: dict, target: str, classes: int, mask_tr, mask_te, hidden: int,
         balanced: bool) -> dict:
    x, z = train["x"][mask_tr], test["x"][mask_te]
    mean, scale = x.mean(0), x.std(0) + 1e-6
    y, truth = train[target][mask_tr], test[target][mask_te]
    params, _ = training._fit((x - mean) / scale, y, classes, hidden=hidden, l2=0.01,
                              steps=1500, seed=0, deadline=time.monotonic() + 1800,
                              progress=None, balanced=balanced)
    zz = (z - mean) / scale
    logits = (np.maximum(zz @ params[0] + params[1], 0) @ params[2] + params[3]) if hidden \
        else zz @ params[0] + params[1]
    pred = logits.argmax(1)
    majority = int(np.bincount(y, minlength=classes).argmax())
    recalls = [float((pred[truth == c] == c).mean()) for c in range(classes) if (truth == c).any()]
    out = {"n": len(truth), "accuracy": float((pred == truth).mean()),
           "majority": float((truth == majority).mean()),
           "balanced": float(np.mean(recalls)), "chance": 1 / len(recalls),
           "recalls": {c: round(float((pred[truth == c] == c).mean()), 3)
                       for c in range(classes) if (truth == c).any()}}
    if classes == 2:
        called = pred == 1
        out["precision"] = float((truth[called] == 1).mean()) if called.any() else float("nan")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="intel5300")
    ap.add_argument("--train-clips", type=int, default=60)
    ap.add_argument("--test-clips", type=int, default=20)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--window-s", type=float, default=3.0)
    ap.add_argument("--cache", default="/tmp/wdp_sim_window_features")
    a = ap.parse_args()
    started = time.monotonic()
    sets = {}
    for split, n in (("train", a.train_clips), ("test", a.test_clips)):
        path = f"{a.cache}_{a.device}_{split}_{n}_{a.duration:g}_{a.window_s:g}.npz"
        if os.path.exists(path):
            sets[split] = dict(np.load(path))
        else:
            sets[split] = describe(split, n, a.device, a.duration, a.window_s)
            np.savez(path, **sets[split])
    tr, te = sets["train"], sets["test"]
    print(f"{a.device}: {len(tr['x'])} training windows ({a.train_clips} clips), {len(te['x'])} "
          f"held-out windows ({a.test_clips} clips), described in "
          f"{time.monotonic() - started:.0f} s")
    every_tr, every_te = np.ones(len(tr["x"]), bool), np.ones(len(te["x"]), bool)
    one_tr = (tr["occupancy"] == 1) & (tr["activity"] >= 0)
    one_te = (te["occupancy"] == 1) & (te["activity"] >= 0)
    print("| target | head | held-out windows | accuracy | majority | balanced acc. | chance | "
          "per-class recall |")
    print("|---|---|---|---|---|---|---|---|")
    for hidden in (0, 64):
        name = "linear" if not hidden else f"{hidden} hidden"
        for target, classes, mtr, mte, bal in (("occupancy", 4, every_tr, every_te, False),
                                               ("activity", 5, one_tr, one_te, True),
                                               ("fall", 2, every_tr, every_te, True)):
            r = head(tr, te, target, classes, mtr, mte, hidden, bal)
            extra = f", precision {r['precision']:.3f}" if "precision" in r else ""
            print(f"| {target} | {name}{' balanced' if bal else ''} | {r['n']} | "
                  f"{r['accuracy']:.3f} | {r['majority']:.3f} | {r['balanced']:.3f} | "
                  f"{r['chance']:.3f} | {r['recalls']}{extra} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
