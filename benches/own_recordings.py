"""The figures of docs/training.md, regenerated: classifiers trained by ``wdp.train`` on the
real labelled recordings in ../shared/data/labelled, every figure on groups the model never
saw, beside the majority-class baseline; the feature/architecture ablation; training time,
model size and inference cost.

    .venv/bin/python benches/own_recordings.py            # about two minutes on 2 cores
    .venv/bin/python benches/own_recordings.py --no-ablation

Tasks (LABELS.csv files are written to a temporary folder from the shared labels.csv):
- activities: Intel 5300 (2x2), 5 classes, groups = the recording day (May / August 2020);
  leave one day out, both ways;
- esp32 presence: Wisensing ESP32 (1x1) person-crossing vs background segments, one
  capture, groups = its first and second half in time (no second session exists; within
  one capture the static profile is shared by both classes, so it cannot give the class).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import wifi_densepose as wdp
from wifi_densepose import training

LABELLED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "labelled"
ACTIVITIES = ("brushteeth", "washingdishes", "cook", "walk", "getintobed")


def write_tasks(folder: Path) -> dict[str, Path]:
    with open(LABELLED / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    act = folder / "activities.csv"
    with open(act, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "group"])
        for r in rows:
            if r["label"] in ACTIVITIES:
                w.writerow([r["path"], r["label"], r["group"]])
    seg = [r for r in rows if r["label"] in ("person", "noise")]
    half = max(float(r["end_s"]) for r in seg) / 2
    esp = folder / "esp32.csv"
    with open(esp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "group", "start_s", "end_s"])
        for r in seg:
            group = "first_half" if float(r["start_s"]) < half else "second_half"
            w.writerow([r["path"], r["label"], group, r["start_s"], r["end_s"]])
    return {"activities (Intel 5300, day held out)": act,
            "presence (ESP32, half held out)": esp}


def groups_of(labels: Path) -> list[str]:
    with open(labels) as f:
        return sorted({r["group"] for r in csv.DictReader(f)})


def leave_one_group_out(labels: Path, folder: Path, end_to_end: bool = False,
                        **options) -> dict:
    """Trains once per group with that group held out; pools the held-out predictions."""
    truth, pred, base, folds, seconds = [], [], [], [], []
    e2e_truth, e2e_hits = 0, 0
    for g in groups_of(labels):
        out = folder / f"model_{abs(hash((str(labels), g, str(options))))}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = wdp.train(LABELLED, labels, out, holdout_groups=[g], progress=False,
                               **options)
            r = result.report
            if end_to_end:
                e = wdp.evaluate_labelled(out, LABELLED, labels, groups=[g],
                                          end_to_end=True)["end_to_end"]
                e2e_truth += e["scored"]
                e2e_hits += round(e.get("accuracy", 0) * e["scored"])
        seconds.append(result.seconds)
        assert r is not None
        for p in r["predictions"]:
            truth.append(p["label"])
            pred.append(p["predicted"])
            base.append(r["baseline_class"])
        folds.append((g, r["accuracy"], r["baseline_accuracy"], r["scored"]))
    classes = sorted(set(truth))
    recalls = [np.mean([p == t for p, t in zip(pred, truth) if t == c]) for c in classes]
    out = {
        "scored": len(truth),
        "accuracy": float(np.mean([p == t for p, t in zip(pred, truth)])),
        "baseline_accuracy": float(np.mean([b == t for b, t in zip(base, truth)])),
        "balanced_accuracy": float(np.mean(recalls)),
        "baseline_balanced_accuracy": 1 / len(classes),
        "folds": folds,
        "train_seconds": float(np.mean(seconds)),
    }
    if end_to_end:
        out["end_to_end_accuracy"] = e2e_hits / max(e2e_truth, 1)
    return out


def cost(folder: Path, labels: Path) -> dict:
    out = folder / "cost.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wdp.train(LABELLED, labels, out, progress=False)
        rec = wdp.read_csi(LABELLED / "gi-z_csi-data/intel/activity/brushteeth_1597160161.dat")
    model = wdp.Model.load(out)
    start = time.perf_counter()
    for _ in range(5):
        t, x = training.window_features(rec, 1.0, 0.25)
    feature_s = (time.perf_counter() - start) / (5 * len(t))
    one = np.ascontiguousarray(x[:1])
    start = time.perf_counter()
    for _ in range(2000):
        model.classify(one)
    classify_s = (time.perf_counter() - start) / 2000
    return {"bytes": os.path.getsize(out), "feature_ms_per_window": feature_s * 1e3,
            "classify_ms_per_window": classify_s * 1e3}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-ablation", action="store_true")
    ap.add_argument("--json", help="write every figure as JSON here")
    a = ap.parse_args()
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tasks = write_tasks(folder)
        print("## Held-out figures (default model: features eigen+amplitude_angle, 1 s windows, "
              "linear)\n")
        print("| task | scored | accuracy | majority baseline | balanced acc. | chance | "
              "end to end (analyze) | per held-out group (acc. / baseline) |")
        print("|---|---|---|---|---|---|---|---|")
        for name, labels in tasks.items():
            r = leave_one_group_out(labels, folder, end_to_end=True)
            results[name] = r
            folds = "; ".join(f"{g}: {acc:.2f} / {b:.2f} (n={n})" for g, acc, b, n in r["folds"])
            print(f"| {name} | {r['scored']} | {r['accuracy']:.3f} | {r['baseline_accuracy']:.3f} "
                  f"| {r['balanced_accuracy']:.3f} | {r['baseline_balanced_accuracy']:.3f} | "
                  f"{r['end_to_end_accuracy']:.3f} | {folds} |")
            sys.stdout.flush()
        if not a.no_ablation:
            print("\n## Ablation (pooled leave-one-group-out accuracy / balanced accuracy)\n")
            variants = [("default: eigen+amplitude_angle, linear", {})]
            variants += [(f"{g} only", {"features": [g]}) for g in training.FEATURE_GROUPS]
            variants += [("all six groups", {"features": list(training.FEATURE_GROUPS)}),
                         ("all but level", {"features": [g for g in training.FEATURE_GROUPS
                                                         if g != "level"]}),
                         ("32 hidden ReLU units", {"hidden": 32}),
                         ("2 s windows", {"window_s": 2.0, "hop_s": 0.5})]
            print("| variant | " + " | ".join(tasks) + " |")
            print("|---|" + "---|" * len(tasks))
            ablation = {}
            for label, options in variants:
                cells = []
                for name, labels in tasks.items():
                    r = leave_one_group_out(labels, folder, **options)
                    cells.append(f"{r['accuracy']:.3f} / {r['balanced_accuracy']:.3f}")
                    ablation[f"{label} | {name}"] = r
                print(f"| {label} | " + " | ".join(cells) + " |")
                sys.stdout.flush()
            results["ablation"] = ablation
        c = cost(folder, tasks["activities (Intel 5300, day held out)"])
        results["cost"] = c
        print(f"\nModel file {c['bytes']} bytes; features {c['feature_ms_per_window']:.3f} ms and "
              f"classifier {c['classify_ms_per_window']:.3f} ms per window (one CPU thread); "
              f"training {results['activities (Intel 5300, day held out)']['train_seconds']:.1f} "
              "s per fold, reading included.")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
