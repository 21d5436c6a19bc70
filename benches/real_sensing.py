"""The sensor on real labelled ESP32 recordings: person crossing vs background.

    python benches/real_sensing.py            # prints a table; --json for the figures

Data: ../shared/data/labelled/ (labels.csv rows of the `wisensing_person_200cm_1` group:
21 `person` segments, a person walking through the line between two ESP32 boards 2 m
apart, and 26 `noise` segments of the empty background; SOURCES.md). The sensor is not
trained or tuned on them — its thresholds were set on simulated tuning seeds — so the whole
recording is held out. A segment is called `person` when motion is detected in at least a
quarter of its frames (the rule was fixed before this data was scored); the motion
fraction's AUC (person vs noise) is reported too, free of that rule. Baseline: the
majority class.

The frames' channel (6, 2.4 GHz) is passed to the sensor, as the live path does with a
recording's frames; `--no-channel` reads them on an unknown band (the 5 GHz motion time
scale, as before the sensor knew bands). The capture holds no 6.4 s of background in one
stretch to calibrate on, so a calibration's rule is applied by hand as well: the motion
threshold 1.5 times the 99.9th percentile of one half's background frames' motion ratio
(at least the default), scored on the other half, both ways.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
from pathlib import Path

import numpy as np
from wifi_densepose import read_csi, sensing

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "labelled"
RULE = 0.25


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties half)."""
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-channel", action="store_true",
                    help="do not tell the sensor the frames' channel (unknown band)")
    a = ap.parse_args()
    with open(a.data / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f)
                if r["group"].startswith("wisensing") and r["start_s"]]
    path = a.data / rows[0]["path"]
    rec = read_csi(str(path))
    # The capture's main shape (3 of its 7,888 rows are non-HT, 64 values fewer).
    csi = rec.csi_dominant()
    idx = np.asarray(rec.dominant_indices)
    ts = np.asarray(rec.timestamps, dtype=np.float64)[idx]
    t0 = float(np.asarray(rec.timestamps)[0])
    channel = None if a.no_channel else rec[int(idx[0])].channel
    s = sensing.sense(csi, ts, channel=channel)
    labels, fractions, ratios = [], [], []
    for r in rows:
        lo, hi = t0 + float(r["start_s"]), t0 + float(r["end_s"])
        inside = (ts >= lo) & (ts <= hi)
        fractions.append(float(s["motion_detected"][inside].mean()) if inside.any() else 0.0)
        ratios.append(float(np.median(s["motion_ratio"][inside])) if inside.any() else 0.0)
        labels.append(r["label"])
    y = np.array([lab == "person" for lab in labels])
    f = np.array(fractions)
    pred = f >= RULE
    out = {
        "recording": rows[0]["path"], "segments": len(rows), "person": int(y.sum()),
        "noise": int((~y).sum()), "accuracy": float((pred == y).mean()),
        "baseline_majority": float(max(y.mean(), 1 - y.mean())),
        "person_recall": float(pred[y].mean()), "noise_specificity": float((~pred[~y]).mean()),
        "motion_fraction_auc": auc(f[y], f[~y]),
        "motion_ratio_auc": auc(np.array(ratios)[y], np.array(ratios)[~y]),
        "motion_ratio_median": {"person": float(np.median(np.array(ratios)[y])),
                                "noise": float(np.median(np.array(ratios)[~y]))},
        "mean_motion_fraction": {"person": float(f[y].mean()), "noise": float(f[~y].mean())},
        "sensing_mode": s["mode"],
        "channel": channel,
        "calibrated_halves": calibrated_halves(rows, t0, ts, np.asarray(s["motion_ratio"])),
        "quietest_between_crossings": quietest_between_crossings(rows, t0, ts,
                                                                 np.asarray(s["motion_ratio"])),
    }
    if a.json:
        print(json.dumps(out, indent=1))
        return
    print(f"{out['recording']}: {out['segments']} segments ({out['person']} person, "
          f"{out['noise']} noise), sensor untrained on it, rule: motion in >= {RULE:.0%} of frames")
    print("| figure | sensor | majority baseline |\n|---|---|---|")
    print(f"| accuracy | {out['accuracy']:.3f} | {out['baseline_majority']:.3f} |")
    print(f"| person recall | {out['person_recall']:.3f} | - |")
    print(f"| noise specificity | {out['noise_specificity']:.3f} | - |")
    print(f"| motion-fraction AUC | {out['motion_fraction_auc']:.3f} | 0.500 |")
    print(f"| segment motion ratio AUC (threshold-free) | {out['motion_ratio_auc']:.3f} | 0.500 |")
    m = out["motion_ratio_median"]
    print(f"median motion ratio: person {m['person']:.1f}, background {m['noise']:.1f} "
          f"(simulated empty rooms: 1.0); channel given to the sensor: {channel}")
    q = out["quietest_between_crossings"]
    print(f"quietest half-second between two crossings ({q['gaps']} gaps): median motion ratio "
          f"{q['median']:.2f} (range {q['min']:.2f}-{q['max']:.2f}; noise alone 1.0)")
    for h in out["calibrated_halves"]:
        print(f"calibrated on the {h['learned_on']} half's background (threshold "
              f"{h['threshold']:.2f}), scored on the other: accuracy {h['accuracy']:.3f} "
              f"(majority {h['baseline_majority']:.3f}), person recall {h['person_recall']:.2f}, "
              f"noise specificity {h['noise_specificity']:.2f}")


def quietest_between_crossings(rows: list[dict], t0: float, ts: np.ndarray,
                               ratio: np.ndarray, bin_s: float = 0.5) -> dict:
    """Between each two consecutive `person` segments, the lowest half-second median of the
    motion ratio: how quiet the room gets between crossings. Near 1.0 would be the noise
    alone (an empty room); well above it, something still moves (the walker turning to
    cross again: the capture has no stretch known to be empty)."""
    crossings = sorted((t0 + float(r["start_s"]), t0 + float(r["end_s"]))
                       for r in rows if r["label"] == "person")
    lows = []
    for (_, end), (start, _) in itertools.pairwise(crossings):
        medians = [float(np.median(ratio[m])) for b in np.arange(end, start - bin_s, bin_s)
                   if (m := (ts >= b) & (ts < b + bin_s)).sum() >= 5]
        if medians:
            lows.append(min(medians))
    return {"gaps": len(lows), "median": float(np.median(lows)), "min": float(min(lows)),
            "max": float(max(lows))}


def calibrated_halves(rows: list[dict], t0: float, ts: np.ndarray,
                      ratio: np.ndarray) -> list[dict]:
    """The calibration's threshold rule learned on one half of the segments (in time)
    and scored on the other, both ways."""
    segs = sorted((t0 + float(r["start_s"]), t0 + float(r["end_s"]), r["label"] == "person")
                  for r in rows)
    half = len(segs) // 2
    out = []
    for name, learn, score in (("first", segs[:half], segs[half:]),
                               ("second", segs[half:], segs[:half])):
        background = np.concatenate([ratio[(ts >= lo) & (ts <= hi)]
                                     for lo, hi, person in learn if not person])
        threshold = max(1.5, 1.5 * float(np.percentile(background, 99.9)))
        pred = np.array([(ratio[(ts >= lo) & (ts <= hi)] > threshold).mean() >= RULE
                         for lo, hi, _ in score])
        y = np.array([person for _, _, person in score])
        out.append({"learned_on": name, "threshold": threshold,
                    "accuracy": float((pred == y).mean()),
                    "baseline_majority": float(max(y.mean(), 1 - y.mean())),
                    "person_recall": float(pred[y].mean()),
                    "noise_specificity": float((~pred[~y]).mean())})
    return out


if __name__ == "__main__":
    main()
