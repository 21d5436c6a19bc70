"""Can one link count people? An experiment, not a counter.

Issue 17 asks for occupancy right 95 % of the time with 0-3 people. The sensor says
whether someone is there (`docs/sensing.md`); the bundled model's count is worse than
"always one" (`python benches/model_count.py`). This measures what the channel of one or
three links carries about *how many* people move in a room, on simulated rooms,
placements and seeds drawn for it (never used for tuning anything), with every person
walking the whole time — the easiest case for counting: still people add almost nothing
to the moving part of the channel.

Per 1 s window, from each link's antenna-pair products (gain-normalised per packet, as
the fall experiment; each window's mean removed = the moving part):

- ``power``: the moving part's power against the static channel (decades);
- ``rank``: the participation ratio of the moving part's eigenvalues above the noise (how
  many independent directions it spans: more bodies, more directions, in principle);
- ``second``: the second eigenvalue over the first.

A logistic regression (one against the rest, three classes) on the three is trained on
the first half of the clips and scored on the second half. Baselines: "always one"
(what the live pipeline reports while anyone is there) and the majority class of the
held-out windows.

    python benches/count_separability.py              # about 2 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
from experiment import run_conditions
from wifi_densepose import dsp, sim
from wifi_densepose.sensing_eval import random_placement

SEED_BASE = 880_000
FEATURES = ("power", "rank", "second")
CONDITIONS: dict[str, dict[str, Any]] = {
    "intel100": {"device": "intel5300", "links": 1},
    "intel100_3links": {"device": "intel5300", "links": 3},
}


def _point(rng: np.random.Generator, w: float, d: float) -> list[float]:
    return [float(rng.uniform(0.7, w - 0.7)), float(rng.uniform(0.7, d - 0.7))]


def scenario(i: int, people: int, duration_s: float) -> dict[str, Any]:
    """``people`` walkers, each through 8 random waypoints at their own speed, in a random
    room and placement."""
    rng = np.random.default_rng(SEED_BASE + 10 * i + people)
    w, d = float(rng.uniform(3.5, 8.0)), float(rng.uniform(3.0, 7.0))
    walkers = [{"start": _point(rng, w, d),
                "actions": [{"type": "walk", "to": [_point(rng, w, d) for _ in range(8)],
                             "speed": float(rng.uniform(0.6, 1.4))}]} for _ in range(people)]
    return {"name": f"count_{i}_{people}", "duration_s": duration_s,
            "room": {"size": [w, d, 3.0]}, "placement": random_placement(rng, w, d),
            "people": walkers, "max_people": 3}


def _link_features(csi: np.ndarray) -> np.ndarray:
    n = len(csi)
    if csi.shape[2] >= 2:
        # The simulated Intel 5300's chains step by quarter turns, as the real card's do:
        # taken out as the engine does before any phase between antennas is read.
        csi, _ = dsp.align_chains(np.ascontiguousarray(csi, dtype=np.complex64))
    f = (csi[:, :, :1, :] * np.conj(csi[:, :, 1:, :])).reshape(n, -1)
    f = f / (np.abs(f).mean(axis=1, keepdims=True) + 1e-12)
    return f / (np.abs(f).mean(axis=0, keepdims=True) + 1e-12)


def window_features(f: np.ndarray, start: int, n: int) -> np.ndarray:
    """The three features of one window of ``n`` packets of one link."""
    x = f[start:start + n]
    noise = float(np.median((np.abs(np.diff(x, axis=0)) ** 2).mean(axis=0))) / 2 + 1e-30
    x = x - x.mean(axis=0)
    ev = np.linalg.eigvalsh((x.conj().T @ x) / n).real[::-1]
    excess = np.maximum(ev - 1.5 * noise, 0.0)
    rank = excess.sum() ** 2 / ((excess ** 2).sum() + 1e-30)
    # Power against the static channel (each feature is scaled to mean magnitude 1), not
    # against the noise: at walking speed consecutive packets differ mostly by motion, so
    # a difference-based noise estimate grows with the motion and cancels it.
    return np.array([np.log10(ev.sum() + 1e-12), rank, ev[1] / (ev[0] + 1e-30)])


def clip_windows(data: dict[str, Any], people: int) -> list[np.ndarray]:
    links = [n["csi"] for n in data["nodes"]] if "nodes" in data else [data["csi"]]
    feats = [_link_features(c) for c in links]
    occ = np.asarray(data["occupancy"])
    n = round(float(data["fps"]))
    out = []
    length = min(len(f) for f in feats)
    for s0 in range(n, length - n, n):
        if occ[s0] != people or occ[min(s0 + n - 1, len(occ) - 1)] != people:
            continue  # someone is out of the room in this window
        out.append(np.mean([window_features(f, s0, n) for f in feats], axis=0))
    return out


def _softmax_regression(x: np.ndarray, y: np.ndarray, classes: int, steps: int = 4000):
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.hstack([(x - mu) / sd, np.ones((len(x), 1))])
    w = np.zeros((z.shape[1], classes))
    onehot = np.eye(classes)[y]
    for _ in range(steps):
        logits = z @ w
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        w -= 0.1 * (z.T @ (p - onehot) / len(z) + 1e-3 * w)
    return lambda q: np.argmax(np.hstack([(q - mu) / sd, np.ones((len(q), 1))]) @ w, axis=1)


def run_condition(name: str, clips: int, duration_s: float) -> dict[str, Any]:
    c = CONDITIONS[name]
    per_clip: list[tuple[int, list[np.ndarray]]] = []
    for i in range(clips):
        for people in (1, 2, 3):
            spec = scenario(i, people, duration_s)
            if c["links"] > 1:
                placement = sim.random_placement(spec["room"]["size"], SEED_BASE + 7 * i + people,
                                                 nodes=c["links"], shared_tx=True)
                spec.pop("placement")
                spec["nodes"] = [{"name": f"node{k}", **n} for k, n in enumerate(placement["nodes"])]
            data = sim.generate(json.dumps(spec), seed=SEED_BASE + 10 * i + people,
                                duration_s=duration_s, device=c["device"])
            per_clip.append((i, [np.append(w, people) for w in clip_windows(data, people)]))
    half = clips // 2
    train = np.array([w for i, ws in per_clip if i < half for w in ws])
    test = np.array([w for i, ws in per_clip if i >= half for w in ws])
    predict = _softmax_regression(train[:, :-1], train[:, -1].astype(int) - 1, 3)
    y = test[:, -1].astype(int)
    pred = predict(test[:, :-1]) + 1
    confusion = [[int(((y == t) & (pred == p)).sum()) for p in (1, 2, 3)] for t in (1, 2, 3)]
    medians = {f: {k: float(np.median(test[y == k, j])) for k in (1, 2, 3)}
               for j, f in enumerate(FEATURES)}
    majority = max(int((y == k).sum()) for k in (1, 2, 3)) / len(y)
    return {"condition": name, **c, "clips": clips, "duration_s": duration_s,
            "held_out_windows": len(y), "accuracy": float((pred == y).mean()),
            "always_one": float((y == 1).mean()), "majority": majority,
            "confusion_rows_true_1_2_3": confusion, "held_out_medians": medians}


def table(results: list[dict[str, Any]]) -> str:
    lines = [("| condition | held-out windows | accuracy (1/2/3 walkers) | always one | "
             "median power, 1 / 2 / 3 walkers (decades) | confusion (rows: true 1, 2, 3) |"),
             "|---|---|---|---|---|---|"]
    for r in results:
        p = r["held_out_medians"]["power"]
        lines.append(f"| {r['condition']} | {r['held_out_windows']} | {r['accuracy']:.2f} | "
                     f"{r['always_one']:.2f} | {p[1]:.2f} / {p[2]:.2f} / {p[3]:.2f} | "
                     f"{r['confusion_rows_true_1_2_3']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=16, help="rooms per condition (half train, half test)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per clip")
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    run_conditions(a.conditions, run_condition, a.clips, a.duration, table, a.json)


if __name__ == "__main__":
    main()
