"""The posture a person comes to rest in, told from the motion that ended: fit and score
the pipeline's rest-posture regression (``src/analytics/rest_posture.rs``).

One person, one Intel 5300 3x3 link at 100 packets/s, 60 s clips, each its own room
(3.5-8 x 3-7 m), placement (``sim.random_placement``) and seed. Scripts of blocks, each
starting with a walk to a random point at 0.6-1.4 m/s: the walk then standing still
(3-8 s), sitting down (1-2.5 s) and sitting (3-8 s) then standing up, lying down (2-4 s)
and lying (3-8 s) then getting up, or a fall (0.6-1 s) and 4 s on the floor then getting
up; every transition's duration is drawn, so nothing keys on the simulator's defaults.

Every clip runs through ``wifi_densepose.analyze`` (no model: the sensor and the
localizer, the placement given); its ``pose_data`` frames' ``motion_detected``,
``motion_level`` and ``position`` go through ``_native.rest_posture_features`` — the
pipeline's own code — which gives the features at every end of motion. An end counts
when the frames stay still for 1 s after it; its label is the person's true activity 1 s
after the end (standing, sitting or lying; others are left out).

    python benches/rest_posture.py --fit     # tuning clips: prints the Rust constants
    python benches/rest_posture.py           # held out: the regression in the build
    python benches/rest_posture.py --json benches/results/rest_posture.json
    python benches/rest_posture.py --unplaced --fit    # the regression without places
    python benches/rest_posture.py --unplaced --json benches/results/rest_posture_unplaced.json

``--unplaced`` hides the localizer's places from the features (as for a one-antenna link
or one without a placement), and the clips cycle through ``--devices`` (default
``intel5300,esp32,nexmon``): the second regression, on the run and the three levels.

Tuning clips have seeds from 610000, held-out ones from 710000 (rooms, placements and
scripts drawn from the same seeds). The held-out figures are each feature group's
regression refitted on the tuning clips (an ablation) and the build's own probabilities,
beside the majority of the tuning ends and chance (1/3).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from typing import Any

import numpy as np
from experiment import hold, sensor_frames
from wifi_densepose import _native, sim

TUNE_BASE = 610_000
TEST_BASE = 710_000
POSTURES = ("standing", "sitting", "lying")
FEATURES = ("run", "level_3_2", "level_2_1", "level_1_0", "displacement", "spread")
GROUPS = {"run and levels": [0, 1, 2, 3], "displacement and spread": [4, 5],
          "all six (the build's)": [0, 1, 2, 3, 4, 5]}
STILL_AFTER_S = 1.0
L2 = 1.0


def scenario(seed: int, duration_s: float) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    w, d = float(rng.uniform(3.5, 8.0)), float(rng.uniform(3.0, 7.0))

    def point() -> list[float]:
        return [float(rng.uniform(0.7, w - 0.7)), float(rng.uniform(0.7, d - 0.7))]

    acts: list[dict[str, Any]] = []
    t = 0.0
    while t < duration_s:
        acts.append({"type": "walk", "to": [point()], "speed": float(rng.uniform(0.6, 1.4))})
        t += 4
        r = rng.random()
        if r < 0.3:
            acts.append({"type": "stand", "duration_s": float(rng.uniform(3, 8))})
            t += 5
        elif r < 0.6:
            acts += hold(rng, "sit", (1.0, 2.5), (3, 8), (1.0, 2.5))
            t += 8
        elif r < 0.85:
            acts += hold(rng, "lie", (2.0, 4.0), (3, 8), (2.0, 4.0))
            t += 10
        else:
            acts += hold(rng, "fall", (0.6, 1.0), 4.0, (2.0, 4.0))
            t += 8
    return {"name": f"rest_posture_{seed}", "room": {"size": [w, d, 3.0]},
            "placement": sim.random_placement([w, d, 3.0], seed),
            "people": [{"start": point(), "heading_deg": float(rng.uniform(0, 360)),
                        "actions": acts}], "max_people": 1}


def clip_ends(seed: int, duration_s: float, device: str = "intel5300",
              placed: bool = True) -> list[tuple[list[float], int, list[float]]]:
    """(features, label index into POSTURES, the build's probabilities) of a clip's ends;
    with ``placed`` only the ends the localizer placed, else every end with the places
    hidden."""
    data = sim.generate(json.dumps(scenario(seed, duration_s)), seed=seed,
                        duration_s=duration_s, device=device)
    ts = np.asarray(data["timestamps"], dtype=np.float64)
    truth = np.asarray(data["activity"], dtype=np.int64)[:, 0]
    t, motion, level, x, y = sensor_frames(data)
    if not placed:
        x = y = np.full(len(t), np.nan)
    out = []
    for end, feats, probs in _native.rest_posture_features(t, motion, level, x, y):
        after = (t >= end) & (t < end + STILL_AFTER_S)
        if t[-1] < end + STILL_AFTER_S or motion[after].any():
            continue  # moving again within a second: not a rest
        k = int(np.clip(np.searchsorted(ts, end + STILL_AFTER_S), 0, len(ts) - 1))
        name = sim.ACTIVITIES[int(truth[k])] if truth[k] >= 0 else None
        if name in POSTURES and (not placed or np.isfinite(feats[4])):
            out.append((feats, POSTURES.index(name), probs))
    return out


def episodes(base: int, clips: int, duration_s: float, devices: list[str],
             placed: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    xs, ys, ps, ds = [], [], [], []
    for i in range(clips):
        device = devices[i % len(devices)]
        for f, label, probs in clip_ends(base + i, duration_s, device, placed):
            xs.append(f)
            ys.append(label)
            ps.append(probs)
            ds.append(device)
        print(f"\r{base}: {i + 1}/{clips} clips, {len(ys)} ends", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return np.array(xs, dtype=np.float64), np.array(ys), np.array(ps, dtype=np.float64), np.array(ds)


def fit(x: np.ndarray, y: np.ndarray, l2: float = L2, iters: int = 4000, lr: float = 0.1) -> np.ndarray:
    """Multinomial logistic regression on standardized ``x``, classes weighted to balance,
    L2 on the weights (not the bias), plain gradient descent from zero: deterministic."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    weight = np.array([n / (3 * max(1, int((y == c).sum()))) for c in range(3)])[y]
    target = np.eye(3)[y]
    w = np.zeros((d + 1, 3))
    for _ in range(iters):
        z = xb @ w
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        g = xb.T @ ((p - target) * weight[:, None]) / n
        g[:-1] += l2 * w[:-1] / n
        w -= lr * g
    return w


def balanced(y: np.ndarray, said: np.ndarray) -> tuple[float, list[float]]:
    recalls = [float(np.mean(said[y == c] == c)) for c in range(3) if (y == c).any()]
    return float(np.mean(recalls)), recalls


def rust_constants(mean: np.ndarray, std: np.ndarray, w: np.ndarray, placed: bool) -> str:
    def row(v: np.ndarray) -> str:
        return "[" + ", ".join(f"{float(a):.6}" for a in v) + "]"

    pre, n, ty = ("", "N_FEATURES", "Features") if placed else ("UNPLACED_", "N_UNPLACED", "[f64; N_UNPLACED]")
    return (f"const {pre}MEAN: {ty} = {row(mean)};\n"
            f"const {pre}STD: {ty} = {row(std)};\n"
            f"const {pre}WEIGHTS: [[f64; 3]; {n} + 1] = [\n"
            + "".join(f"    {row(r)},\n" for r in w) + "];")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=80, help="clips of each set (default 80)")
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--fit", action="store_true", help="print the Rust constants fitted on the tuning clips")
    ap.add_argument("--unplaced", action="store_true",
                    help="the places hidden: the regression on the run and the levels")
    ap.add_argument("--devices", help="device profiles the clips cycle through (default "
                                      "intel5300; with --unplaced intel5300,esp32,nexmon)")
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    t0 = time.time()
    placed = not a.unplaced
    devices = (a.devices or ("intel5300" if placed else "intel5300,esp32,nexmon")).split(",")
    xa, ya, _, _ = episodes(TUNE_BASE, a.clips, a.duration, devices, placed)
    if not placed:
        xa = xa[:, :4]
    mean, std = xa.mean(axis=0), xa.std(axis=0) + 1e-9
    if a.fit:
        print(rust_constants(mean, std, fit((xa - mean) / std, ya), placed))
        return
    xb, yb, pb, db = episodes(TEST_BASE, a.clips, a.duration, devices, placed)
    if not placed:
        xb = xb[:, :4]
    majority = Counter(ya.tolist()).most_common(1)[0][0]
    rows: dict[str, Any] = {}
    groups = GROUPS if placed else {"run and levels (the build's)": [0, 1, 2, 3]}
    for name, cols in groups.items():
        w = fit((xa[:, cols] - mean[cols]) / std[cols], ya)
        xbb = np.hstack([(xb[:, cols] - mean[cols]) / std[cols], np.ones((len(xb), 1))])
        rows[name] = balanced(yb, (xbb @ w).argmax(axis=1))
    rows["the build's regression"] = balanced(yb, pb.argmax(axis=1))
    if len(devices) > 1:
        for dev in devices:
            sel = db == dev
            rows[f"the build's, {dev} clips only ({int(sel.sum())} ends)"] = balanced(yb[sel], pb[sel].argmax(axis=1))
    rows["majority of the tuning ends"] = balanced(yb, np.full_like(yb, majority))
    confusion = np.zeros((3, 3), dtype=int)
    for t_, s_ in zip(yb, pb.argmax(axis=1)):
        confusion[t_, s_] += 1
    print(f"\nrest posture at the end of motion, {'placed' if placed else 'unplaced'}, "
          f"{','.join(devices)}, held out ({len(yb)} ends of {a.clips} clips; "
          f"tuning: {len(ya)} ends; {POSTURES})\n")
    print("| features | balanced accuracy | recall standing / sitting / lying |")
    print("|---|---|---|")
    for name, (b, r) in rows.items():
        print(f"| {name} | {b:.3f} | {' / '.join(f'{v:.2f}' for v in r)} |")
    print(f"| chance | 0.333 | |\n\nconfusion (rows true, columns said): {confusion.tolist()}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"clips": a.clips, "duration_s": a.duration, "tune_base": TUNE_BASE,
                       "placed": placed, "devices": devices,
                       "test_base": TEST_BASE, "tune_ends": len(ya), "test_ends": len(yb),
                       "tune_counts": Counter(ya.tolist()), "test_counts": Counter(yb.tolist()),
                       "figures": {k: {"balanced_accuracy": v[0], "recall": v[1]} for k, v in rows.items()},
                       "confusion_rows_true_cols_said": confusion.tolist(),
                       "seconds": round(time.time() - t0, 1)}, fh, indent=1, default=int)
            fh.write("\n")


if __name__ == "__main__":
    main()
