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
- dense pose (models that give it): part IoU on the room raster (placement and shape)
  and on the patch around each matched person (shape alone).
- metrics undefined on a set with nobody in it are reported as n/a (``null`` in JSON).

Baselines, given the evaluation set's own statistics (an oracle advantage): the mean
pose (every present person predicted at the set's mean keypoints), the majority person
count, and the majority activity.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import InvalidArgumentError
from .model import Model
from .simdata import GRID, PATCH, build, patch_origin

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
        r, c = assignment(cost)
        pairs.append([(int(a), int(gts[b])) for a, b in zip(r, c)])
    return pairs


def assignment(cost: np.ndarray) -> tuple[list[int], list[int]]:
    """Minimum-cost one-to-one matching of rows to columns (the Hungarian problem), by
    exhaustive search: slots and people number a handful, so this is exact and cheap,
    and keeps scipy out of the package's dependencies (the tests check it against
    ``scipy.optimize.linear_sum_assignment``). Returns (rows, columns), rows ascending."""
    n_r, n_c = cost.shape
    if n_r == 0 or n_c == 0:
        return [], []
    best, best_cost = None, np.inf
    if n_r <= n_c:
        for cols in itertools.permutations(range(n_c), n_r):
            c = cost[range(n_r), cols].sum()
            if c < best_cost:
                best, best_cost = (list(range(n_r)), list(cols)), c
    else:
        for rows in itertools.permutations(range(n_r), n_c):
            c = cost[rows, range(n_c)].sum()
            if c < best_cost:
                pairs = sorted(zip(rows, range(n_c)))
                best, best_cost = ([p[0] for p in pairs], [p[1] for p in pairs]), c
    assert best is not None
    return best


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
    if not err_list:  # nobody present in the whole set: only the person count is defined
        count_p = (pred["presence"] > 0.5).sum(axis=1)
        none = dict.fromkeys(["pck@0.1", "pck@0.2", "mpjpe_m", "activity_acc",
                              "fall_precision", "fall_recall"])
        return none | {"count_acc": float((count_p == 0).mean())}
    errs, errs_m = np.concatenate(err_list), np.concatenate(err_m_list)
    act_p, act_t = np.array(act_p_list), np.array(act_t_list)
    count_p = (pred["presence"] > 0.5).sum(axis=1)
    count_t = t["present"].sum(axis=1)
    tp = int(((act_p == FALL) & (act_t == FALL)).sum())
    dense = {}
    if "dense_part" in pred and "dense_room" in t:
        dense["dense_part_iou"] = part_iou(room_maps(pred), t["dense_room"])
        # Shape alone: each matched slot's patch against its person's, both centred on
        # their own mid-hip (localization errors taken out).
        pp = [pred["dense_part"][i, s_].argmax(axis=0) for i, p_ in enumerate(pairs) for s_, _ in p_]
        tp_ = [t["dense_part"][i, g] for i, p_ in enumerate(pairs) for _, g in p_]
        dense["dense_patch_iou"] = part_iou(np.array(pp), np.array(tp_)) if pp else 0.0
    return dense | {
        "pck@0.1": float((errs < 0.1).mean()),
        "pck@0.2": float((errs < 0.2).mean()),
        "mpjpe_m": float(errs_m.mean()),
        "count_acc": float((count_p == count_t).mean()),
        "activity_acc": float((act_p == act_t).mean()),
        "fall_precision": float(tp / max(1, int((act_p == FALL).sum()))),
        "fall_recall": float(tp / max(1, int((act_t == FALL).sum()))),
    }


def room_maps(pred: dict, threshold: float = 0.5) -> np.ndarray:
    """Each window's predicted room raster ``(n, GRID, GRID)``: every slot with presence
    above ``threshold`` pastes the argmax parts of its patch at its mid-hip cell."""
    parts = pred["dense_part"].argmax(axis=2)  # (n, k, PATCH, PATCH)
    rows, cols = patch_origin(pred["keypoints"][..., :2])  # (n, k)
    n, k = parts.shape[:2]
    pad = PATCH
    maps = np.zeros((n, GRID + 2 * pad, GRID + 2 * pad), np.uint8)
    for i in range(n):
        for j in range(k):
            if pred["presence"][i, j] <= threshold:
                continue
            r, c = int(np.clip(rows[i, j], -pad, GRID)), int(np.clip(cols[i, j], -pad, GRID))
            view = maps[i, r + pad : r + 2 * pad, c + pad : c + 2 * pad]
            np.copyto(view, parts[i, j].astype(np.uint8), where=parts[i, j] > 0)
    return maps[:, pad:-pad, pad:-pad]


def part_iou(pred_maps: np.ndarray, true_maps: np.ndarray) -> float:
    """Mean over the DensePose parts (1-24) present in either of the IoU of their cells,
    pooled over every window of the set."""
    ious = []
    for c in range(1, 25):
        p, q = pred_maps == c, true_maps == c
        union = int((p | q).sum())
        if union:
            ious.append(int((p & q).sum()) / union)
    return float(np.mean(ious)) if ious else 0.0


def baseline(t: dict, k: int) -> dict:
    """Predictions of the trivial baselines for targets ``t`` (same dict layout)."""
    n = t["kp"].shape[0]
    anyone = bool(t["present"].any())
    mean_pose = t["kp"][t["present"]].mean(axis=0) if anyone else np.full((17, 2), 0.5)
    counts = t["present"].sum(axis=1)
    majority_count = int(np.bincount(counts).argmax())
    acts = t["activity"][t["present"]]
    majority_act = int(np.bincount(acts.astype(np.int64)).argmax()) if anyone else 0
    kp = np.zeros((n, k, 17, 3), np.float32)
    kp[..., :2] = mean_pose
    presence = np.zeros((n, k), np.float32)
    presence[:, :majority_count] = 1.0
    activity = np.zeros((n, k, 5), np.float32)
    activity[..., majority_act] = 1.0
    out = {"presence": presence, "keypoints": kp, "activity": activity}
    if "dense_part" in t:
        # The set's most frequent part in each patch cell, for every predicted person.
        counts = np.stack([(t["dense_part"][t["present"]] == c).sum(axis=0) for c in range(25)])
        one_hot = np.eye(25, dtype=np.float32)[counts.argmax(axis=0)].transpose(2, 0, 1)
        out["dense_part"] = np.broadcast_to(one_hot, (n, k, 25, PATCH, PATCH))
    return out


def evaluate(model: Model, clips: int = 24, duration_s: float = 20.0, hop: int = 16,
             progress=None) -> dict:
    """Runs ``model`` on the held-out set; ``progress(done, clips)`` after each clip."""
    x, t, log = build("eval", clips, duration_s, hop=hop, progress=progress,
                      dense=model.has_dense_pose)
    names = ["presence", "keypoints", "boxes", "activity"]
    if model.has_dense_pose:
        names += ["dense_part", "dense_uv"]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
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
        "dense_part_iou": "dense-pose part IoU (room raster)",
        "dense_patch_iou": "dense-pose part IoU (patch around the person)",
    }
    rows = ["| metric | model | baseline |", "|---|---|---|"]

    def show(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    for k, name in names.items():
        if k in r["model"]:
            rows.append(f"| {name} | {show(r['model'][k])} | {show(r['baseline'][k])} |")
    return "\n".join(rows)


def progress_bar(label: str) -> Callable[[int, int], None]:
    """A progress callback drawing one line on stderr: ``label [#####     ] done/total``."""

    def progress(done: int, total: int) -> None:
        bar = "#" * (20 * done // total)
        print(f"\r{label} [{bar:<20}] {done}/{total}", end="", file=sys.stderr, flush=True)
        if done == total:
            print(file=sys.stderr)

    return progress


def print_figures(r: dict[str, Any], json_arg: str | bool | None, heading: str,
                  table_text: str) -> None:
    """An evaluation's figures: as JSON on stdout (``--json`` or ``--json -``), else the
    heading and table, and with ``--json OUT`` the JSON written to OUT as well."""
    if json_arg is True or json_arg == "-":
        print(json.dumps(r, indent=1))
        return
    print(heading)
    print(table_text)
    if json_arg:
        with open(str(json_arg), "w", encoding="utf-8") as f:
            json.dump(r, f, indent=1)
        print(f"wrote {json_arg}")


def module_main(doc: str | None, add: Callable[[argparse.ArgumentParser], None],
                run: Callable[[argparse.Namespace], int]) -> None:
    """``python -m`` entry of an evaluation module: its arguments, then its run."""
    ap = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    add(ap)
    sys.exit(run(ap.parse_args()))


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--clips", type=int, default=None,
                    help="held-out clips (default 24; with --pipeline 12)")
    ap.add_argument("--duration", type=float, default=None,
                    help="seconds per clip (default 20; with --pipeline 60)")
    ap.add_argument("--model", default=None,
                    help="an ONNX model fitting the contract (default: the bundled one)")
    ap.add_argument("--json", nargs="?", const="-", metavar="OUT",
                    help="the figures as JSON: on stdout, or (with OUT) written to OUT beside "
                         "the table")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    ap.add_argument("--sensing", action="store_true",
                    help="score the sensor instead (presence, motion, breathing on held-out "
                         "empty, still and daily clips, per frame and end to end; "
                         "docs/sensing.md)")
    ap.add_argument("--pipeline", action="store_true",
                    help="score the whole live pipeline end to end (analyze) on held-out "
                         "simulated days: occupancy 0-3, position, activity, falls, each "
                         "beside its baseline (wifi_densepose.pipeline_eval)")
    ap.add_argument("--device", default="intel5300",
                    help="with --pipeline: the device profile (default intel5300)")
    ap.add_argument("--oracle", action="store_true",
                    help="with --pipeline: detections from the simulator's truth instead of "
                         "the model (the tracker's and analytics' own errors)")
    ap.add_argument("--nodes", type=int, default=1,
                    help="with --pipeline: receivers of one transmitter hearing each day "
                         "(default 1: the clip's own link)")
    ap.add_argument("--first-clip", type=int, default=1000,
                    help="with --pipeline: another set of held-out days, from this clip "
                         "number (default 1000)")
    ap.add_argument("--save", metavar="PATH",
                    help="with --pipeline: also keep the figures in this JSON file under "
                         "DEVICE/MODEL (DEVICE/MODEL/N nodes with --nodes), beside other "
                         "runs' (benches/results/pipeline_eval.json)")
    ap.add_argument("--devices", default="intel5300,esp32,nexmon",
                    help="with --sensing: device profiles, comma-separated")
    ap.add_argument("--no-end-to-end", action="store_true",
                    help="with --sensing: skip the live-pipeline (analyze) figures")
    ap.add_argument("--calibrated", action="store_true",
                    help="with --sensing: calibrated rooms against uncalibrated (each empty "
                         "and still clip starts empty, the sensor calibrates on its first "
                         "10 s, then the person walks in and keeps still; at least 40 s)")
    from .train_cli import add_evaluate_arguments

    add_evaluate_arguments(ap)


def run(a: argparse.Namespace) -> int:
    if a.labels or a.data:
        from .train_cli import run_evaluate

        return run_evaluate(a)
    if a.pipeline:
        from . import pipeline_eval

        a.clips = 12 if a.clips is None else a.clips
        a.duration = 60.0 if a.duration is None else a.duration
        a.model = a.model or "default"
        return pipeline_eval.run(a)
    a.clips = 24 if a.clips is None else a.clips
    a.duration = 20.0 if a.duration is None else a.duration
    if a.sensing:
        from . import sensing_eval

        return sensing_eval.run(a)
    if a.clips < 1 or a.duration <= 0:
        raise InvalidArgumentError("--clips must be at least 1 and --duration above 0")
    model = Model.load(a.model) if a.model else Model.default()

    progress = progress_bar("simulating held-out clips")
    r = evaluate(model, a.clips, a.duration, progress=None if a.quiet else progress)
    print_figures(r, a.json, f"model {r['version']}, {r['windows']} held-out windows from "
                  f"{r['clips']} clips", table(r))
    return 0


def main() -> None:
    module_main(__doc__, add_arguments, run)


if __name__ == "__main__":
    main()
