"""Evaluates a pose model on a held-out simulated set, beside trivial baselines.

    python -m wifi_densepose.evaluate [--clips 24] [--duration 20] [--model path.onnx]

The held-out set (:func:`wifi_densepose.simdata.build` with ``split="eval"``) uses
seeds, rooms and motion paths that training never used. Metrics (``docs/model.md``):

- PCK@a: share of keypoints of present people whose predicted ``(u, v)`` lies within
  ``a`` of the truth in the normalized floor frame (``a = 0.1`` is 10 % of the room's
  width/depth, about 0.5 m); people are matched to slots by the Hungarian algorithm.
- mean per-keypoint error in metres on the floor (room size undoes the normalization).
- person-count accuracy: slots with presence > 0.5 against the number present.
- activity accuracy over present people; fall precision / recall (class ``falling``).

Baselines, given the evaluation set's own statistics (an oracle advantage): the mean
pose (every present person predicted at the set's mean keypoints), the majority person
count, and the majority activity.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from scipy.optimize import linear_sum_assignment

from .model import Model
from .simdata import build

FALL = 4


def _match(pred_kp, gt_kp, present):
    """Per window: list of (slot, person) pairs for the present people."""
    pairs = []
    for i in range(gt_kp.shape[0]):
        gts = np.flatnonzero(present[i])
        if len(gts) == 0:
            pairs.append([])
            continue
        cost = np.abs(pred_kp[i][:, None] - gt_kp[i][None, gts]).mean(axis=(2, 3))
        r, c = linear_sum_assignment(cost)
        pairs.append([(int(a), int(gts[b])) for a, b in zip(r, c)])
    return pairs


def score(pred: dict, t: dict) -> dict:
    """Metrics of predictions ``pred`` (Model.predict's dict) against targets ``t``."""
    kp_p = pred["keypoints"][..., :2]
    pairs = _match(kp_p, t["kp"], t["present"])
    err_list: list[np.ndarray] = []
    err_m_list: list[np.ndarray] = []
    act_p_list: list[int] = []
    act_t_list: list[int] = []
    for i, pp in enumerate(pairs):
        for s, g in pp:
            d = kp_p[i, s] - t["kp"][i, g]
            err_list.append(np.linalg.norm(d, axis=-1))
            err_m_list.append(np.linalg.norm(d * t["room"][i], axis=-1))
            act_p_list.append(int(np.argmax(pred["activity"][i, s])))
            act_t_list.append(int(t["activity"][i, g]))
    errs, errs_m = np.concatenate(err_list), np.concatenate(err_m_list)
    act_p, act_t = np.array(act_p_list), np.array(act_t_list)
    count_p = (pred["presence"] > 0.5).sum(axis=1)
    count_t = t["present"].sum(axis=1)
    tp = int(((act_p == FALL) & (act_t == FALL)).sum())
    return {
        "pck@0.1": float((errs < 0.1).mean()),
        "pck@0.2": float((errs < 0.2).mean()),
        "mpjpe_m": float(errs_m.mean()),
        "count_acc": float((count_p == count_t).mean()),
        "activity_acc": float((act_p == act_t).mean()),
        "fall_precision": float(tp / max(1, int((act_p == FALL).sum()))),
        "fall_recall": float(tp / max(1, int((act_t == FALL).sum()))),
    }


def baseline(t: dict, k: int) -> dict:
    """Predictions of the trivial baselines for targets ``t`` (same dict layout)."""
    n = t["kp"].shape[0]
    mean_pose = t["kp"][t["present"]].mean(axis=0)  # (17, 2)
    counts = t["present"].sum(axis=1)
    majority_count = int(np.bincount(counts).argmax())
    acts = t["activity"][t["present"]]
    majority_act = int(np.bincount(acts.astype(np.int64)).argmax())
    kp = np.zeros((n, k, 17, 3), np.float32)
    kp[..., :2] = mean_pose
    presence = np.zeros((n, k), np.float32)
    presence[:, :majority_count] = 1.0
    activity = np.zeros((n, k, 5), np.float32)
    activity[..., majority_act] = 1.0
    return {"presence": presence, "keypoints": kp, "activity": activity}


def evaluate(model: Model, clips: int = 24, duration_s: float = 20.0, hop: int = 16) -> dict:
    x, t, log = build("eval", clips, duration_s, hop=hop)
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("presence", "keypoints", "boxes", "activity")
    }
    for s in range(0, len(x), 256):
        out = model.predict(x[s : s + 256])
        for k, v in parts.items():
            v.append(out[k])
    pred = {k: np.concatenate(v) for k, v in parts.items()}
    return {
        "model": score(pred, t),
        "baseline": score(baseline(t, model.slots), t),
        "windows": len(x),
        "clips": clips,
        "seeds": [c["seed"] for c in log],
        "version": model.version,
    }


def table(r: dict) -> str:
    names = {
        "pck@0.1": "PCK@0.1 (higher is better)",
        "pck@0.2": "PCK@0.2",
        "mpjpe_m": "mean per-keypoint error, m (lower is better)",
        "count_acc": "person-count accuracy",
        "activity_acc": "activity accuracy",
        "fall_precision": "fall precision",
        "fall_recall": "fall recall",
    }
    rows = ["| metric | model | baseline |", "|---|---|---|"]
    for k, name in names.items():
        rows.append(f"| {name} | {r['model'][k]:.3f} | {r['baseline'][k]:.3f} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--model", default=None)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    model = Model.load(a.model) if a.model else Model.default()
    r = evaluate(model, a.clips, a.duration)
    if a.json:
        print(json.dumps(r, indent=1))
    else:
        print(f"model {r['version']}, {r['windows']} held-out windows from {r['clips']} clips")
        print(table(r))


if __name__ == "__main__":
    main()
