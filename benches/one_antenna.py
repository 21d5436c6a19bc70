"""What a one-antenna link (ESP32, Nexmon) sees of a walking person, and whether several
such links can place him: an experiment on held-out simulation.

Issue 18 asks of one-antenna devices motion told with F1 0.98 and, from three ESP32 nodes
in a room, a position within 0.5 m (median). Neither has an angle to work with: a lone
chain's phase is scrambled every packet, so the sensor watches amplitudes
(``src/sensing/features.rs``). This measures what those amplitudes carry.

1. **Visibility** (``sim_dataset`` "train" draws, one person, three receivers of one
   transmitter): every link's motion power (packet-to-packet change of the log amplitudes,
   1 s mean, over the link's own quiet floor: its 5th percentile over the clip) while the
   person walks, against the person's *excess path* for that link (transmitter to person to
   receiver, less transmitter to receiver: 0 on the line of sight; the Fresnel zones are
   ellipses of constant excess path).
2. **Motion ceiling**: over the held-out sensing clips (``sensing_eval.clip_scenario``,
   seeds 700000+: empty, still and daily), how well the sensor's own motion ratio ranks
   moving frames above the rest (AUC), the F1 of the threshold in force, and the best F1 any
   threshold gives (chosen on the same clips: an upper bound, not a result).
3. **Placement** (``sim_dataset`` "test" draws, one person; the visibility curve is fitted
   on "train" draws only): each link's observed motion power against the curve's value at
   every floor cell (0.1 m grid), a Gaussian likelihood per link with the curve's spread,
   summed over links and tempered (the temperature chosen on "val" draws); the estimate
   is the posterior mean. Links: three receivers of one
   transmitter (the usual ESP32 mesh: one node sends, the others listen), and 3, 6 and 12
   independent links (each its own transmitter and receiver on the walls: every pair of
   four, six or eight nodes would give 6, 15 or 28). Scored while the person walks,
   against the room centre.

    python benches/one_antenna.py                    # esp32, about 3 minutes on 2 cores
    python benches/one_antenna.py --device nexmon
    python benches/one_antenna.py --json benches/results/one_antenna_esp32.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
from experiment import auc_by_rank
from wifi_densepose import sensing, sim, sim_dataset
from wifi_densepose import sensing_eval as se

# Excess-path bins (m) of the visibility curve.
BINS = np.array([0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 100.0])
POWER_S = 1.0  # the motion power's mean, seconds
FLOOR_PCT = 5.0  # a link's quiet floor: this percentile of its motion power over the clip
GRID_M = 0.1
SCORE_EVERY = 10  # score every 10th walking frame (0.1 s)


def _hips(data: dict[str, Any]) -> np.ndarray:
    k = np.asarray(data["keypoints_3d"], dtype=np.float64)
    return 0.5 * (k[:, 0, 11, :2] + k[:, 0, 12, :2])


def _walking(data: dict[str, Any], hips: np.ndarray) -> np.ndarray:
    v = np.linalg.norm(np.diff(hips, axis=0), axis=1) * float(data["fps"])
    return (np.concatenate([v[:1], v]) > 0.2) & np.asarray(data["present"])[:, 0]


def motion_power(csi: np.ndarray, n_mean: int) -> np.ndarray:
    """Per packet: the mean square change of the log amplitudes since the previous packet
    (each packet's amplitudes over their RMS, floored at 0.3, mean log removed: the
    sensor's amplitude features), averaged over the last ``n_mean`` packets."""
    a = np.abs(csi.reshape(len(csi), -1)).astype(np.float64)
    a /= np.maximum(np.sqrt((a ** 2).mean(axis=1, keepdims=True)), 1e-12)
    la = np.log(np.maximum(a, 0.3))
    la -= la.mean(axis=1, keepdims=True)
    p = (np.diff(la, axis=0) ** 2).mean(axis=1)
    p = np.concatenate([p[:1], p])
    c = np.cumsum(np.concatenate([[0.0], p]))
    i = np.arange(len(p))
    lo = np.maximum(i + 1 - n_mean, 0)
    return (c[i + 1] - c[lo]) / (i + 1 - lo)


def excess_path(points: np.ndarray, tx: np.ndarray, rx: np.ndarray) -> np.ndarray:
    return (np.linalg.norm(points - tx, axis=-1) + np.linalg.norm(points - rx, axis=-1)
            - np.linalg.norm(tx - rx))


class Clip:
    """One one-person draw: each link's observed motion power (decades over its floor) at
    the scored walking frames, the links' ends, the person's floor position there."""

    def __init__(self, data: dict[str, Any]) -> None:
        hips = _hips(data)
        walking = _walking(data, hips)
        idx = np.flatnonzero(walking)[::SCORE_EVERY]
        t = np.asarray(data["timestamps"], dtype=np.float64)[idx]
        obs, tx, rx = [], [], []
        for n in data["nodes"]:
            ts = np.asarray(n["timestamps"], dtype=np.float64)
            p = motion_power(np.asarray(n["csi"]), max(int(POWER_S * data["fps"]), 1))
            floor = np.percentile(p, FLOOR_PCT)
            j = np.minimum(np.searchsorted(ts, t), len(p) - 1)
            obs.append(np.log10(np.maximum(p[j] / floor, 1.0)))
            tx.append(np.asarray(n["tx_antennas"], dtype=np.float64).reshape(-1, 3)[0])
            rx.append(np.asarray(n["rx_antennas"], dtype=np.float64).reshape(-1, 3)[0])
        self.obs = np.array(obs).T  # (frames, links)
        self.tx, self.rx = np.array(tx), np.array(rx)
        self.hips = hips[idx]
        self.room = np.asarray(data["room_size"][:2], dtype=np.float64)

    def excess(self, points: np.ndarray) -> np.ndarray:
        """(points, links) excess path of floor points at 1 m height."""
        p = np.c_[points, np.ones(len(points))]
        return np.stack([excess_path(p, a, b) for a, b in zip(self.tx, self.rx)], axis=1)


def clips(split: str, n: int, device: str, links: int, independent: bool) -> Iterator[Clip]:
    """The first ``n`` one-person draws of ``split`` with ``links`` links: receivers of one
    transmitter, or (``independent``) each link its own transmitter and receiver."""
    i = done = 0
    while done < n:
        d = sim_dataset.draw(split, i, devices=(device,), duration_s=60, nodes=links)
        i += 1
        if d["n_people"] != 1:
            continue
        spec = dict(d["scenario"])
        if independent:
            placement = sim.random_placement(d["room_size"], d["seed"] + 99, nodes=links,
                                             shared_tx=False)
            spec["nodes"] = [{"name": f"link{k}", **p} for k, p in enumerate(placement["nodes"])]
        done += 1
        yield Clip(sim.generate(spec, dense_pose_grid=0))


def visibility(train: list[Clip]) -> dict[str, Any]:
    """The median (and spread) of a link's observed motion power per excess-path bin."""
    ex = np.concatenate([c.excess(c.hips).ravel() for c in train])
    ob = np.concatenate([c.obs.ravel() for c in train])
    b = np.clip(np.digitize(ex, BINS) - 1, 0, len(BINS) - 2)
    med, spread, count = [], [], []
    for k in range(len(BINS) - 1):
        v = ob[b == k]
        count.append(len(v))
        med.append(float(np.median(v)) if len(v) else 0.0)
        spread.append(float(max(np.std(v), 0.02)) if len(v) > 2 else 1.0)
    return {"bins_m": BINS.tolist(), "median_decades": med, "spread_decades": spread,
            "samples": count}


def place(clip: Clip, curve: dict[str, Any], temperature: float) -> np.ndarray:
    """Posterior-mean floor position per scored frame (see the module docs); the summed
    log-likelihood is divided by ``temperature`` (links are not independent, and the curve
    is a median over places and walks: a likelihood taken at face value is overconfident)."""
    w, d = clip.room
    gx, gy = np.meshgrid(np.arange(GRID_M / 2, w, GRID_M), np.arange(GRID_M / 2, d, GRID_M))
    cells = np.c_[gx.ravel(), gy.ravel()]
    b = np.clip(np.digitize(clip.excess(cells), BINS) - 1, 0, len(BINS) - 2)
    mu = np.asarray(curve["median_decades"])[b]
    sd = np.asarray(curve["spread_decades"])[b]
    out = np.empty((len(clip.obs), 2))
    for f, o in enumerate(clip.obs):
        cost = (((o[None, :] - mu) / sd) ** 2).sum(axis=1) + 2 * np.log(sd).sum(axis=1)
        like = np.exp(-0.5 * (cost - cost.min()) / temperature)
        out[f] = like @ cells / like.sum()
    return out


def _summary(e: np.ndarray) -> dict[str, Any]:
    return {"n": len(e), "median_m": float(np.median(e)), "p90_m": float(np.percentile(e, 90)),
            "within_0_5_m": float((e <= 0.5).mean())}


TEMPERATURES = (1.0, 3.0, 10.0, 30.0, 100.0)


def placement_rows(device: str, train_clips: int, test_clips: int) -> list[dict[str, Any]]:
    rows = []
    for links, independent in ((3, False), (3, True), (6, True), (12, True)):
        train = list(clips("train", train_clips, device, links, independent))
        curve = visibility(train)
        # The temperature is chosen on "val" draws, then the "test" draws are scored once.
        val = list(clips("val", test_clips, device, links, independent))
        val_median = {tp: float(np.median(np.concatenate(
            [np.linalg.norm(place(c, curve, tp) - c.hips, axis=1) for c in val])))
            for tp in TEMPERATURES}
        temperature = min(val_median, key=lambda tp: val_median[tp])
        errs, centre = [], []
        for c in clips("test", test_clips, device, links, independent):
            est = place(c, curve, temperature)
            errs.append(np.linalg.norm(est - c.hips, axis=1))
            centre.append(np.linalg.norm(c.room / 2 - c.hips, axis=1))
        label = (f"{links} receivers of one transmitter" if not independent
                 else f"{links} independent links")
        rows.append({"links": label, "temperature": temperature, "val_median_m": val_median,
                     "estimate": _summary(np.concatenate(errs)),
                     "room_centre": _summary(np.concatenate(centre)), "curve": curve})
        print(f"placement: {label} done", file=sys.stderr, flush=True)
    return rows


def _f1(said: np.ndarray, truth: np.ndarray) -> float:
    tp = float((said & truth).sum())
    return 2 * tp / max(float(said.sum() + truth.sum()), 1.0)


def motion_ceiling(device: str, n: int, duration_s: float = 40.0) -> dict[str, Any]:
    ratio, truth, said = [], [], []
    for kind in ("empty", "still", "daily"):
        for i in range(n):
            spec = se.clip_scenario(kind, i, duration_s)
            data = sim.generate(json.dumps(spec), seed=se.SEED_BASE + i, duration_s=duration_s,
                                device=device)
            ts = np.asarray(data["timestamps"], dtype=np.float64)
            s = sensing.sense(data["csi"], ts, channel=data.get("channel"))
            keep = ts - ts[0] >= se.SETTLE_S
            ratio.append(np.asarray(s["motion_ratio"], dtype=np.float64)[keep])
            said.append(np.asarray(s["motion_detected"], dtype=bool)[keep])
            truth.append(se._truth_moving(data)[keep])
    r, t, m = np.concatenate(ratio), np.concatenate(truth), np.concatenate(said)
    thresholds = np.exp(np.linspace(np.log(1.01), np.log(20.0), 120))
    f1s = [_f1(r > th, t) for th in thresholds]
    k = int(np.argmax(f1s))
    return {"clips_per_kind": n, "frames": len(t), "moving_share": float(t.mean()),
            "auc_motion_ratio": auc_by_rank(t, r), "f1_sensor": _f1(m, t),
            "best_f1_any_threshold": float(f1s[k]), "best_threshold": float(thresholds[k]),
            "f1_always_moving": _f1(np.ones_like(t), t)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="esp32", choices=["esp32", "nexmon"])
    ap.add_argument("--train-clips", type=int, default=16)
    ap.add_argument("--test-clips", type=int, default=16)
    ap.add_argument("--motion-clips", type=int, default=6)
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    rows = placement_rows(a.device, a.train_clips, a.test_clips)
    motion = motion_ceiling(a.device, a.motion_clips)
    curve = rows[0]["curve"]
    print(f"{a.device}: a walker's motion power on a link (decades over its floor; train draws, "
          "3 receivers of one transmitter) by excess path\n")
    print("| excess path, m | " + " | ".join(
        f"{lo:g}-{hi:g}" if hi < 100 else f"{lo:g}+" for lo, hi in itertools.pairwise(BINS)) + " |")
    print("|---|" + "---|" * (len(BINS) - 1))
    print("| median | " + " | ".join(f"{v:.2f}" for v in curve["median_decades"]) + " |")
    print("| samples | " + " | ".join(str(v) for v in curve["samples"]) + " |")
    print(f"\nmotion, held-out sensing clips ({motion['frames']} frames, "
          f"{motion['moving_share']:.2f} moving): AUC of the motion ratio "
          f"{motion['auc_motion_ratio']:.3f}; F1 of the sensor {motion['f1_sensor']:.3f}; best F1 "
          f"at any threshold {motion['best_f1_any_threshold']:.3f} (ratio "
          f"{motion['best_threshold']:.2f}); always moving {motion['f1_always_moving']:.3f}\n")
    print(f"| {a.device}, test draws, walking | temperature (val) | n | median m | p90 m | "
          "within 0.5 m | room centre median / p90 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        e, c = r["estimate"], r["room_centre"]
        print(f"| {r['links']} | {r['temperature']:g} | {e['n']} | {e['median_m']:.2f} | {e['p90_m']:.2f} | "
              f"{e['within_0_5_m']:.2f} | {c['median_m']:.2f} / {c['p90_m']:.2f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"device": a.device, "train_clips": a.train_clips, "test_clips": a.test_clips,
                       "placement": rows, "motion": motion}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
