"""What the separability experiments share: the loop that runs each named condition, times
it, prints the table and optionally keeps the figures as JSON; the area under the ROC
curve by ranks; the scripted sit / lie / fall blocks; and the sensor's frames of a clip
as the live pipeline publishes them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def auc_by_rank(truth: np.ndarray, score: np.ndarray) -> float:
    """The chance a true frame's score is above a false one's (ties count half), from the
    scores' ranks (no pairwise matrix, so any number of frames)."""
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    # Ties share their mean rank.
    s = score[order]
    edges = np.flatnonzero(np.diff(s) != 0) + 1
    for a, b in zip(np.r_[0, edges], np.r_[edges, len(s)]):
        if b - a > 1:
            ranks[order[a:b]] = (a + 1 + b) / 2
    n1 = truth.sum()
    n0 = len(truth) - n1
    return float((ranks[truth].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def run_conditions(names: str, run_condition: Callable[[str, int, float], dict[str, Any]],
                   clips: int, duration_s: float, table: Callable[[list[dict[str, Any]]], str],
                   json_path: str | None) -> list[dict[str, Any]]:
    """``run_condition(name, clips, duration_s)`` for each comma-separated name."""
    results = []
    for name in names.split(","):
        t0 = time.time()
        results.append(run_condition(name.strip(), clips, duration_s))
        results[-1]["seconds"] = round(time.time() - t0, 1)
        print(f"{name}: {results[-1]['seconds']} s", flush=True)
    print(table(results))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(results, f, indent=1)
    return results


def hold(rng: np.random.Generator, kind: str, transition: tuple[float, float],
         still_s: float | tuple[float, float], rise: tuple[float, float]) -> list[dict[str, Any]]:
    """A scripted transition into a still posture and back up, every duration drawn so a
    detector cannot key on the simulator's defaults: ``kind`` "sit" (sit_down, sit,
    stand_up), "lie" (lie_down, lie, get_up) or "fall" (fall, lie, get_up); the still
    period drawn from ``still_s`` (low, high) or fixed. Draws in that order."""
    down, still, up = {"sit": ("sit_down", "sit", "stand_up"), "lie": ("lie_down", "lie", "get_up"),
                       "fall": ("fall", "lie", "get_up")}[kind]
    acts = [{"type": down, "duration_s": float(rng.uniform(*transition))}]
    held = float(rng.uniform(*still_s)) if isinstance(still_s, tuple) else float(still_s)
    acts.append({"type": still, "duration_s": held})
    acts.append({"type": up, "duration_s": float(rng.uniform(*rise))})
    return acts



def sensor_frames(data: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A ``sim.generate`` result through ``wifi_densepose.analyze`` without a model: every
    ``pose_data`` frame's source time, ``motion_detected``, ``motion_level`` and the
    localizer's place of the person (x, y; NaN where nobody was placed)."""
    from wifi_densepose.analyze import analyze

    rows = []
    for m in analyze(data, model=None):
        if m["type"] != "pose_data":
            continue
        d = m["data"]
        meta = d["metadata"]
        pos = (d["persons"][0].get("position") if d["persons"] else None) or {}
        rows.append((float(meta["source_time"]), bool(meta.get("motion_detected")),
                     float(meta.get("motion_level", 0.0)),
                     float(pos.get("x", np.nan)), float(pos.get("y", np.nan))))
    t, motion, level, x, y = (np.array(c) for c in zip(*rows))
    return t, motion.astype(bool), level, x, y
