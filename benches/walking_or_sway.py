"""Walking, or swaying in place? Fit and score the pipeline's walking regression
(``src/analytics/rest_posture.rs``, ``walking_probability``).

The sensor's ``motion_detected`` is set in most of a standing person's frames (a standing
body sways and shifts its weight) and in some of a sitting or lying person's; the pipeline
called every moving frame walking. This fits a two-class logistic regression, walking
against the rest, on the six features the rest posture reads (the motion run so far, the
mean ``motion_level`` 3-2, 2-1 and 1-0 s back, the localizer's displacement and spread
over the last 2.5 s), computed at every frame with motion detected by
``_native.walking_features`` — the pipeline's own code.

Clips: the daily mix of ``wifi-densepose evaluate --pipeline`` (walks, standing, sitting,
lying, falls at drawn durations; each clip its own room, placement and seed) with only its
first person kept (clips without anyone are skipped), through ``wifi_densepose.analyze``
without a model (the sensor and the localizer, the placement given). Every moving
``pose_data`` frame 2 s in is labelled by the person's true activity (walking against
standing, sitting and lying; falling is left out). Placed, only the frames the localizer
placed count (elsewhere the unplaced regression decides).

    python benches/walking_or_sway.py --fit            # tuning clips: the Rust constants
    python benches/walking_or_sway.py                  # held out: the build's regression
    python benches/walking_or_sway.py --json benches/results/walking_or_sway.json
    python benches/walking_or_sway.py --unplaced --fit
    python benches/walking_or_sway.py --unplaced --json benches/results/walking_or_sway_unplaced.json
    python benches/walking_or_sway.py --onsets

``--onsets`` measures instead what the regression costs at the start of a walk: over the
held-out clips (Intel 5300, no model, through ``analyze``), for every walk that starts
from another activity, the delay from its start to the first ``pose_data`` frame that
calls the person walking, and how many walks are never called walking while they last.

``--unplaced`` hides the places (as for a one-antenna link or one without a placement) and
cycles the clips through ``--devices`` (default ``intel5300,esp32,nexmon``): the regression
on the seven features that need no place.

Tuning clips are daily clips from 8000 with simulator seeds from 620000; held-out ones
from 9000 with seeds from 720000 (neither used by any other bench or by
``evaluate --pipeline``). Held out, beside the build's: each feature group's regression
refitted on the tuning frames (an ablation), the frame's ``motion_level`` alone (AUC), and
the baseline the pipeline had, "every moving frame is walking" (balanced accuracy 0.5).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np
from experiment import auc_by_rank, sensor_frames
from wifi_densepose import _native, sim
from wifi_densepose.analyze import analyze
from wifi_densepose.pipeline_eval import SETTLE_S
from wifi_densepose.sensing_eval import clip_scenario

TUNE = (8000, 620_000)
TEST = (9000, 720_000)
FEATURES = ("run", "level_3_2", "level_2_1", "level_1_0", "displacement", "spread",
            "share_5s", "level_5s", "onsets_5s", "displacement_5s")
UNPLACED = [0, 1, 2, 3, 6, 7, 8]
GROUPS = {"run and three levels": [0, 1, 2, 3],
          "displacement and spread": [4, 5],
          "the rest posture's six": [0, 1, 2, 3, 4, 5],
          "the 5 s share, level and onsets": [6, 7, 8],
          "without the places (the unplaced regression's seven)": UNPLACED,
          "all ten (the build's)": list(range(10))}
UNPLACED_GROUPS = {"run and three levels": [0, 1, 2, 3],
                   "the 5 s share, level and onsets": [4, 5, 6],
                   "all seven (the build's)": list(range(7))}
L2 = 1.0


def clip_frames(clip: int, seed: int, duration_s: float, device: str,
                placed: bool) -> tuple[list[list[float]], list[bool], list[float]] | None:
    """(features, walking, the build's probability) of a clip's moving frames; None for a
    clip without anyone."""
    spec = clip_scenario("daily", clip, duration_s)
    if not spec["people"]:
        return None
    spec["people"] = spec["people"][:1]
    data = sim.generate(json.dumps(spec), seed=seed, duration_s=duration_s, device=device)
    ts = np.asarray(data["timestamps"], dtype=np.float64)
    truth = np.asarray(data["activity"], dtype=np.int64)[:, 0]
    t, motion, level, x, y = sensor_frames(data)
    if not placed:
        x = y = np.full(len(t), np.nan)
    feats, walking, probs = [], [], []
    for when, f, p in _native.walking_features(t, motion, level, x, y):
        if when - ts[0] < SETTLE_S:
            continue
        k = int(np.clip(np.searchsorted(ts, when), 0, len(ts) - 1))
        name = sim.ACTIVITIES[int(truth[k])] if truth[k] >= 0 else None
        if name in ("standing", "walking", "sitting", "lying") and (not placed or np.isfinite(f[4]) and np.isfinite(f[9])):
            feats.append(f)
            walking.append(name == "walking")
            probs.append(p)
    return feats, walking, probs


def frames(start: tuple[int, int], clips: int, duration_s: float, devices: list[str],
           placed: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    xs: list[list[float]] = []
    ys: list[bool] = []
    ps: list[float] = []
    ds: list[str] = []
    used = 0
    for i in range(clips):
        device = devices[used % len(devices)]
        got = clip_frames(start[0] + i, start[1] + i, duration_s, device, placed)
        if got is not None:
            used += 1
            xs += got[0]
            ys += got[1]
            ps += got[2]
            ds += [device] * len(got[1])
        print(f"\r{start}: {i + 1}/{clips} clips, {used} with someone, {len(ys)} moving frames",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return (np.array(xs, dtype=np.float64), np.array(ys, dtype=bool),
            np.array(ps, dtype=np.float64), np.array(ds))


def walk_onsets(start: tuple[int, int], clips: int, duration_s: float) -> dict[str, Any]:
    """The delay from each walk's start to the first frame reported walking (see
    ``--onsets``)."""
    walking = sim.ACTIVITIES.index("walking")
    delays: list[float] = []
    never = 0
    for i in range(clips):
        spec = clip_scenario("daily", start[0] + i, duration_s)
        if not spec["people"]:
            continue
        spec["people"] = spec["people"][:1]
        data = sim.generate(json.dumps(spec), seed=start[1] + i, duration_s=duration_s,
                            device="intel5300")
        ts = np.asarray(data["timestamps"], dtype=np.float64)
        truth = np.asarray(data["activity"], dtype=np.int64)[:, 0]
        said = [(m["data"]["metadata"]["source_time"],
                 (m["data"]["persons"][0].get("activity") or {}).get("type"))
                for m in analyze(data, model=None)
                if m["type"] == "pose_data" and m["data"]["persons"]]
        when = np.array([w for w, _ in said])
        walked = np.array([a == "walking" for _, a in said])
        for k in np.flatnonzero((truth[1:] == walking) & (truth[:-1] != walking) & (truth[:-1] >= 0)) + 1:
            end = k + int(np.argmax(truth[k:] != walking)) if (truth[k:] != walking).any() else len(ts) - 1
            hit = np.flatnonzero(walked & (when >= ts[k]) & (when < ts[end]))
            if len(hit):
                delays.append(float(when[hit[0]] - ts[k]))
            else:
                never += 1
    d = np.array(delays)
    return {"walks": len(d) + never, "never_called_walking": never,
            "delay_s_median_p75_p90": [round(float(v), 2) for v in np.percentile(d, [50, 75, 90])]}


def fit(x: np.ndarray, y: np.ndarray, l2: float = L2, iters: int = 4000, lr: float = 0.1) -> np.ndarray:
    """Two-class logistic regression on standardized ``x``, classes weighted to balance,
    L2 on the weights (not the bias), plain gradient descent from zero: deterministic."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    weight = np.where(y, n / (2 * max(1, int(y.sum()))), n / (2 * max(1, int((~y).sum()))))
    w = np.zeros(d + 1)
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(xb @ w)))
        g = xb.T @ ((p - y) * weight) / n
        g[:-1] += l2 * w[:-1] / n
        w -= lr * g
    return w


def balanced(y: np.ndarray, said: np.ndarray) -> tuple[float, float, float]:
    """Balanced accuracy, recall of walking, recall of the rest."""
    walk, rest = float(np.mean(said[y])), float(np.mean(~said[~y]))
    return (walk + rest) / 2, walk, rest


def rust_constants(mean: np.ndarray, std: np.ndarray, w: np.ndarray, placed: bool) -> str:
    def row(v: np.ndarray) -> str:
        return "[" + ", ".join(f"{float(a):.6}" for a in v) + "]"

    pre, n, ty = ("", "N_WALK", "WalkFeatures") if placed else ("UNPLACED_", "7", "[f64; 7]")
    return (f"const {pre}WALK_MEAN: {ty} = {row(mean)};\n"
            f"const {pre}WALK_STD: {ty} = {row(std)};\n"
            f"const {pre}WALK_WEIGHTS: [f64; {n} + 1] = {row(w)};")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=32, help="clips of each set (default 32)")
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--fit", action="store_true", help="print the Rust constants fitted on the tuning clips")
    ap.add_argument("--unplaced", action="store_true",
                    help="the places hidden: the regression on the seven features without them")
    ap.add_argument("--devices", help="device profiles the clips cycle through (default "
                                      "intel5300; with --unplaced intel5300,esp32,nexmon)")
    ap.add_argument("--onsets", action="store_true",
                    help="the delay from a walk's start to the first frame called walking")
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    t0 = time.time()
    if a.onsets:
        print(json.dumps(walk_onsets(TEST, a.clips, a.duration)))
        return
    placed = not a.unplaced
    devices = (a.devices or ("intel5300" if placed else "intel5300,esp32,nexmon")).split(",")
    xa, ya, _, _ = frames(TUNE, a.clips, a.duration, devices, placed)
    cols_all = list(range(10)) if placed else UNPLACED
    xa = xa[:, cols_all]
    mean, std = xa.mean(axis=0), xa.std(axis=0) + 1e-9
    if a.fit:
        print(rust_constants(mean, std, fit((xa - mean) / std, ya), placed))
        return
    xb, yb, pb, db = frames(TEST, a.clips, a.duration, devices, placed)
    xb = xb[:, cols_all]
    rows: dict[str, Any] = {}
    groups = GROUPS if placed else UNPLACED_GROUPS
    for name, cols in groups.items():
        w = fit((xa[:, cols] - mean[cols]) / std[cols], ya)
        z = np.hstack([(xb[:, cols] - mean[cols]) / std[cols], np.ones((len(xb), 1))]) @ w
        rows[name] = (*balanced(yb, z > 0), auc_by_rank(yb, z))
    rows["the build's regression"] = (*balanced(yb, pb > 0.5), auc_by_rank(yb, pb))
    if len(devices) > 1:
        for dev in devices:
            sel = db == dev
            rows[f"the build's, {dev} clips only ({int(sel.sum())} frames)"] = (
                *balanced(yb[sel], pb[sel] > 0.5), auc_by_rank(yb[sel], pb[sel]))
    for k, name in enumerate(FEATURES if placed else [FEATURES[c] for c in UNPLACED]):
        rows[f"{name} alone"] = (float("nan"), float("nan"), float("nan"),
                                 auc_by_rank(yb, np.nan_to_num(xb[:, k])))
    rows["every moving frame walking (the baseline)"] = (*balanced(yb, np.ones_like(yb)), 0.5)
    print(f"\nwalking or swaying, {'placed' if placed else 'unplaced'}, {','.join(devices)}, "
          f"held out ({len(yb)} moving frames of {a.clips} clips, {int(yb.sum())} walking; "
          f"tuning: {len(ya)} frames, {int(ya.sum())} walking)\n")
    print("| features | balanced accuracy | recall walking / the rest | AUC |")
    print("|---|---|---|---|")
    for name, (b, rw, rr, auc) in rows.items():
        print(f"| {name} | {b:.3f} | {rw:.2f} / {rr:.2f} | {auc:.3f} |")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"clips": a.clips, "duration_s": a.duration, "tune": TUNE, "test": TEST,
                       "placed": placed, "devices": devices,
                       "tune_frames": len(ya), "tune_walking": int(ya.sum()),
                       "test_frames": len(yb), "test_walking": int(yb.sum()),
                       "figures": {k: {"balanced_accuracy": v[0], "recall_walking": v[1],
                                       "recall_rest": v[2], "auc": v[3]} for k, v in rows.items()},
                       "seconds": round(time.time() - t0, 1)}, fh, indent=1)
            fh.write("\n")


if __name__ == "__main__":
    main()
