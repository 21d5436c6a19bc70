"""``wifi-densepose train`` and the labelled mode of ``wifi-densepose evaluate``
(``--data --labels``): the command-line face of :mod:`wifi_densepose.training`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .errors import UsageError
from .training import DEFAULT_FEATURES, FEATURE_GROUPS, evaluate_labelled, train


def _read_options(a: argparse.Namespace) -> dict[str, Any]:
    return {"nexmon_chip": a.nexmon_chip} if getattr(a, "nexmon_chip", None) else {}


def add_train_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--data", required=True, help="the folder LABELS.csv's paths are relative to")
    ap.add_argument("--labels", required=True,
                    help="LABELS.csv: path,label[,group][,start_s,end_s]")
    ap.add_argument("--out", required=True, help="the ONNX model to write")
    ap.add_argument("--minutes", type=float, default=5.0,
                    help="wall-clock budget of the fitting (default 5)")
    ap.add_argument("--seed", type=int, default=0, help="the fitting's seed (default 0)")
    ap.add_argument("--holdout-group", action="append", default=[], metavar="G",
                    help="leave this group out of training and score it (repeatable)")
    ap.add_argument("--window-s", type=float, default=1.0,
                    help="seconds each prediction describes (default 1)")
    ap.add_argument("--hop-s", type=float, default=0.25,
                    help="seconds between predictions (default 0.25)")
    ap.add_argument("--features", default=",".join(DEFAULT_FEATURES),
                    help=f"feature groups, comma-separated, of {', '.join(FEATURE_GROUPS)} "
                         f"(default {','.join(DEFAULT_FEATURES)})")
    ap.add_argument("--hidden", type=int, default=0,
                    help="hidden ReLU units (default 0: a linear classifier, which did as well "
                         "or better on held-out groups; docs/training.md)")
    ap.add_argument("--steps", type=int, default=2000, help="optimizer steps (default 2000)")
    ap.add_argument("--balanced", action="store_true",
                    help="weigh every class the same in the loss (rare classes such as falls)")
    ap.add_argument("--nexmon-chip", help="passed to read_csi for Nexmon captures")
    ap.add_argument("--json", nargs="?", const="-", metavar="OUT",
                    help="the held-out report as JSON (to OUT, or stdout)")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run_train(a: argparse.Namespace) -> int:
    features = [f.strip() for f in a.features.split(",") if f.strip()]
    result = train(a.data, a.labels, a.out, minutes=a.minutes, seed=a.seed,
                   holdout_groups=a.holdout_group, window_s=a.window_s, hop_s=a.hop_s,
                   features=features, hidden=a.hidden, steps=a.steps, balanced=a.balanced,
                   read_options=_read_options(a), progress=not a.quiet)
    print(f"model {result.metadata['wifi_densepose.version']} -> {result.path}: classes "
          f"{', '.join(result.classes)}; {result.windows} windows from {result.recordings} "
          f"recordings/segments; {result.steps} steps in {result.seconds:.1f} s")
    if result.report is not None:
        print(table(result.report))
        _write_json(a.json, result.report)
    else:
        print("no group held out: pass --holdout-group G to score the model on data it never saw")
    return 0


def add_evaluate_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--data", help="with --labels: score a trained classifier on labelled "
                                   "recordings under this folder")
    ap.add_argument("--labels", help="LABELS.csv of the recordings to score")
    ap.add_argument("--group", action="append", default=[], metavar="G",
                    help="with --labels: score only this group (repeatable; name the groups "
                         "training held out)")
    ap.add_argument("--end-to-end", action="store_true",
                    help="with --labels: also score through wdp.analyze, the server's path")
    ap.add_argument("--nexmon-chip", help="with --labels: passed to read_csi")


def run_evaluate(a: argparse.Namespace) -> int:
    if not (a.data and a.labels and a.model):
        raise UsageError("labelled evaluation needs --model, --data and --labels")
    report = evaluate_labelled(a.model, a.data, a.labels, groups=a.group or None,
                               end_to_end=a.end_to_end, read_options=_read_options(a),
                               progress=not a.quiet)
    if not a.group:
        print("note: no --group given, so every row is scored, including any the model "
              "was trained on", file=sys.stderr)
    if a.json == "-":
        print(json.dumps(report, indent=1))
    else:
        print(table(report))
        _write_json(a.json, report)
    return 0


def _write_json(path: str | None, report: dict[str, Any]) -> None:
    if not path:
        return
    if path == "-":
        print(json.dumps(report, indent=1))
        return
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {path}")


def table(r: dict[str, Any]) -> str:
    """The report as a plain-text table, each figure beside its baseline."""
    lines = [
        (f"scored {r['scored']} recordings/segments of groups {', '.join(r['groups'])} "
        f"(model {r['model_version']}, {r['window_s']:g} s windows every {r['hop_s']:g} s)"),
        f"{'':24s}{'model':>10s}{'baseline':>10s}",
        (f"{'accuracy':24s}{r['accuracy']:10.3f}{r['baseline_accuracy']:10.3f}"
        f"   (baseline: always {r['baseline_class']!r})"),
        (f"{'balanced accuracy':24s}{r['balanced_accuracy']:10.3f}"
        f"{r['baseline_balanced_accuracy']:10.3f}"),
        f"{'per window':24s}{r['window_accuracy']:10.3f}   ({r['windows']} windows)",
    ]
    e2e = r.get("end_to_end")
    if e2e and "accuracy" in e2e:
        lines.append(f"{'end to end (analyze)':24s}{e2e['accuracy']:10.3f}"
                     f"   balanced {e2e['balanced_accuracy']:.3f}")
    if e2e and "fall_recall" in e2e:
        lines.append(f"{'fall_detected':24s}recall {e2e['fall_recall']}  precision "
                     f"{e2e['fall_precision']}")
    lines.append(f"{'class':16s}{'recall':>8s}{'precision':>10s}{'support':>9s}")
    def fmt(v: float | None) -> str:
        return "   -" if v is None else f"{v:.3f}"

    for c, s in r["per_class"].items():
        lines.append(f"{c:16s}{fmt(s['recall']):>8s}{fmt(s['precision']):>10s}{s['support']:9d}")
    lines.append("confusion (rows truth, columns predicted): " + " ".join(r["labels"]))
    for c, row in zip(r["labels"], r["confusion"]):
        lines.append(f"  {c:14s}" + " ".join(f"{v:3d}" for v in row))
    if r.get("unscored"):
        lines.append(f"{len(r['unscored'])} rows shorter than one window were not scored")
    return "\n".join(lines)
