"""How well the bundled pose model counts people, on held-out simulation.

    python benches/model_count.py      # about a minute

12 clips of 20 s from `simdata.random_scenario(rng, "eval", ...)` (held-out room sizes,
seeds 900000+, 0-2 people), windows as `features.windows_from_recording` cuts them. Counts
the slots whose presence score is above each threshold, against the simulator's occupancy,
beside "always one person". This is why the live pipeline tracks only the model's most
confident detection while the sensor says someone is present (`detection.max_persons`,
docs/model.md).
"""

from __future__ import annotations

import json

import numpy as np
from wifi_densepose import sim, simdata
from wifi_densepose.features import windows_from_recording
from wifi_densepose.model import Model


def main() -> None:
    model = Model.default()
    rng = np.random.default_rng(5)
    scores, truth = [], []
    for i in range(12):
        spec = simdata.random_scenario(rng, "eval", i, 20.0)
        data = sim.generate(json.dumps(spec), seed=900_000 + i, duration_s=20)
        x, ends = windows_from_recording(data["csi"])
        scores.append(model.predict(x)["presence"])
        truth.append(np.asarray(data["occupancy"])[ends])
    p, t = np.concatenate(scores), np.concatenate(truth)
    print(f"model {model.version}, {len(t)} held-out windows, true counts {np.bincount(t).tolist()}")
    print(f"always one person: {np.mean(t == 1):.3f}")
    for th in (0.5, 0.6, 0.7, 0.8, 0.9):
        c = (p > th).sum(axis=1)
        print(f"slots above {th}: count accuracy {np.mean(c == t):.3f}")
    for k in range(int(t.max()) + 1):
        print(f"true count {k}: mean sorted slot scores {np.sort(p[t == k], axis=1).mean(0).round(3)}")


if __name__ == "__main__":
    main()
