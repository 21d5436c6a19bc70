"""Writes simulated training / held-out windows to ``<out>.npz`` (run with the project venv).

    python training/data.py --split train --clips 160 --out /tmp/wdp_train

The scenario generator is :mod:`wifi_densepose.simdata`; ``<out>.json`` records every
clip's seed and full scenario description.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from wifi_densepose.features import HOP_TRAIN, WINDOW
from wifi_densepose.simdata import build


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=["train", "eval"], required=True)
    ap.add_argument("--clips", type=int, default=160)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--hop", type=int, default=HOP_TRAIN)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dense", action="store_true",
                    help="add the dense-pose targets (dense_part, dense_uv, dense_room)")
    a = ap.parse_args()

    def progress(done: int, total: int) -> None:
        if done % 20 == 0 or done == total:
            print(f"{done}/{total} clips", flush=True)

    x, t, log = build(a.split, a.clips, a.duration, a.hop, progress=progress, dense=a.dense)
    np.savez(a.out, x=x, **t, window=WINDOW)
    with open(a.out + ".json", "w") as f:
        json.dump(log, f)
    print(f"{a.split}: {len(log)} clips, {x.shape[0]} windows of {x.shape[1:]} -> {a.out}.npz")


if __name__ == "__main__":
    main()
