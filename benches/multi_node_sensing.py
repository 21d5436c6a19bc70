"""Several nodes in one room against one: presence through the live pipeline
(``wdp.analyze``, no model: the sensor alone) on held-out simulated rooms, with the same
rooms, people and physics seen by node 0 alone and by all nodes fused.

    .venv/bin/python benches/multi_node_sensing.py --device esp32 --nodes 3 --clips 6

Clips are ``sensing_eval.clip_scenario`` (held-out seeds 700000+, the ``evaluate
--sensing`` rooms: empty, one still person standing/sitting/lying, daily activity of 0-3
people) with ``--nodes`` receivers of one transmitter at random wall or corner placements
(``sim.random_placement``). Figures per pose_data frame after 2 s of settling, the truth
taken at each frame's source time (node 0's clock, mapped back to true time). Motion:
``metadata.motion_detected`` against ``sensing_eval``'s truth (a person's mean keypoint
speed above 0.25 m/s), F1 over every clip, beside "always moving". With clips of 30 s or
more (``--duration 40``), the first person's ``breathing_rate_bpm`` on the still clips'
frames with 30 s of clip behind them, within 1 bpm (none counts as wrong), as
``sensing_eval`` scores one link.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from wifi_densepose import analyze, sim
from wifi_densepose.sensing_eval import (
    BASELINE_BPM,
    BREATHING_WINDOW_S,
    SEED_BASE,
    SETTLE_S,
    _f1,
    _truth_moving,
    clip_scenario,
)


def silenced(node: dict, from_s: float) -> dict:
    """``node`` with every frame sampled from ``from_s`` seconds of true time on cut: a
    node that goes silent there."""
    true_t = np.asarray(node["true_time"], float)
    keep = true_t - true_t[0] < from_s
    return {**node, "csi": np.ascontiguousarray(np.asarray(node["csi"])[keep]),
            "timestamps": np.asarray(node["timestamps"], float)[keep], "true_time": true_t[keep]}


def someone(data: dict, nodes: list[dict], from_s: float = 0.0) -> tuple[np.ndarray, ...]:
    """(someone reported, someone truly there, motion reported, someone truly moving, the
    first person's breathing rate or NaN, seconds into the clip) per pose_data frame after
    settling and at least ``from_s`` seconds into the clip."""
    run = dict(data)
    run["nodes"] = nodes
    poses = [m["data"] for m in analyze(run, model=None) if m["type"] == "pose_data"]
    node0 = nodes[0]
    t = np.array([p["metadata"]["source_time"] for p in poses])
    true_t = (t - node0["clock_offset_s"]) / (1 + node0["clock_drift_ppm"] * 1e-6)
    grid = np.asarray(data["timestamps"])
    idx = np.clip(np.searchsorted(grid, true_t), 0, len(grid) - 1)
    keep = true_t - grid[0] >= max(SETTLE_S, from_s)
    reported = np.array([bool(p["persons"]) for p in poses])
    truth = np.asarray(data["occupancy"])[idx] > 0
    moving = np.array([bool(p["metadata"]["motion_detected"]) for p in poses])
    truly_moving = _truth_moving(data)[idx]
    bpm = np.array([float(p["persons"][0].get("breathing_rate_bpm") or np.nan) if p["persons"]
                    else np.nan for p in poses])
    into = true_t - grid[0]
    return (reported[keep], truth[keep], moving[keep], truly_moving[keep], bpm[keep],
            into[keep])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="esp32")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--silent", type=int, metavar="K",
                    help="node K goes silent halfway through each clip (the room's time base "
                         "is whichever node sent first): every column is then scored on the "
                         "clips' second halves only, beside all nodes sending")
    a = ap.parse_args()
    silent = a.silent is not None
    if silent and not 0 <= a.silent < a.nodes:
        ap.error(f"--silent must name a node 0..{a.nodes - 1}")
    half = a.duration / 2 if silent else 0.0
    silent_label = f"{a.nodes} nodes, node {a.silent} silent from {half:g} s"
    acc: dict = {}
    for kind in ("empty", "still", "daily"):
        for i in range(a.clips):
            spec = clip_scenario(kind, i, a.duration)
            room = spec["room"]["size"]
            placement = sim.random_placement(room, SEED_BASE + 7 * i + 1, nodes=a.nodes,
                                             shared_tx=True)
            spec.pop("placement")
            spec["nodes"] = [{"name": f"node{k}", **n} for k, n in enumerate(placement["nodes"])]
            data = sim.generate(json.dumps(spec), seed=SEED_BASE + i, duration_s=a.duration,
                                device=a.device)
            runs = [("1 node", data["nodes"][:1]), (f"{a.nodes} nodes", data["nodes"])]
            if silent:
                runs.append((silent_label, [silenced(n, half) if k == a.silent else n
                                            for k, n in enumerate(data["nodes"])]))
            for label, nodes in runs:
                rep, truth, mot, mtruth, bpm, into = someone(data, nodes, half)
                acc.setdefault((kind, label), []).append((rep, truth))
                acc.setdefault(("motion", label), []).append((mot, mtruth))
                rates = data.get("breathing_rate_bpm")
                if kind == "still" and rates is not None:
                    # Issue 18's breathing figure: frames with 30 s of clip behind them,
                    # within 1 bpm of the truth (no rate counts as wrong).
                    true_rate = float(np.asarray(rates).reshape(-1)[0])
                    err = np.abs(bpm[into >= BREATHING_WINDOW_S] - true_rate)
                    acc.setdefault(("breathing", label), []).append(
                        np.where(np.isnan(err), np.inf, err))
                    if label == "1 node":
                        acc.setdefault(("breathing", "always 15 bpm"), []).append(
                            np.full(len(err), abs(BASELINE_BPM - true_rate)))
            print(f"\r{kind} {i + 1}/{a.clips}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    labels = ["1 node", f"{a.nodes} nodes"] + ([silent_label] if silent else [])
    scored = f", scored from {half:g} s on" if silent else ""
    print(f"{a.device}, {a.clips} held-out clips of {a.duration:g} s per kind, through analyze "
          f"(the sensor alone){scored}\n")
    print("| figure | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    rows = {
        "empty-room frames reporting someone": ("empty", lambda r, t: r.mean()),
        "still person found (frames)": ("still", lambda r, t: r[t].mean()),
        "daily activity: presence accuracy": ("daily", lambda r, t: (r == t).mean()),
    }
    for name, (kind, f) in rows.items():
        cells = []
        for label in labels:
            rep = np.concatenate([r for r, _ in acc[(kind, label)]])
            truth = np.concatenate([t for _, t in acc[(kind, label)]])
            cells.append(f"{f(rep, truth):.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    cells = []
    for label in labels:
        mot = np.concatenate([m for m, _ in acc[("motion", label)]])
        mtruth = np.concatenate([t for _, t in acc[("motion", label)]])
        cells.append(f"{_f1(mot, mtruth):.3f}")
    print("| motion F1, every clip | " + " | ".join(cells) + " |")
    windows = [np.concatenate(acc.get(("breathing", label)) or [np.array([])]) for label in labels]
    if all(len(w) for w in windows):
        base = np.concatenate(acc[("breathing", "always 15 bpm")])
        print(f"| breathing rate within 1 bpm, 30 s windows ({len(windows[0])} frames; always "
              f"15 bpm {(base <= 1.0).mean():.3f}) | "
              + " | ".join(f"{(w <= 1.0).mean():.3f}" for w in windows) + " |")
    daily = np.concatenate([t for _, t in acc[("daily", labels[0])]])
    print(f"\n(daily activity majority baseline: {max(daily.mean(), 1 - daily.mean()):.3f}; "
          f"motion F1 of 'always moving': {_f1(np.ones_like(mtruth), mtruth):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
