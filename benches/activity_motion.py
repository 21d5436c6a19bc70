"""Where a person alone in the room is called walking: the sensor's motion against the
activity the pipeline reports (docs/sensing.md, "End to end").

    python benches/activity_motion.py            # the 24 clips of evaluate --pipeline (~1 min)
    python benches/activity_motion.py --first-clip 2000 --clips 16   # other clips

Runs the same held-out daily clips as ``wifi-densepose evaluate --pipeline`` (Intel 5300,
the bundled model) through ``wifi_densepose.analyze`` and, for every ``pose_data`` frame
2 s in with exactly one person in the room, tallies the person's true activity, whether
the frame's ``metadata.motion_detected`` was set, and the ``activity.type`` reported.
Printed per true activity: the share of frames with motion detected, and what was
reported with and without it, and the percentiles of ``metadata.motion_level``. A
diagnosis, not a score: no baseline is needed to read it, and nothing is tuned on it.
Clip ``FIRST_CLIP + i`` has seed ``SEED_BASE + i``, as in ``evaluate --pipeline``; other
clip numbers keep the same offset.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import numpy as np
from wifi_densepose import sim
from wifi_densepose.analyze import analyze
from wifi_densepose.pipeline_eval import ACTIVITIES, FIRST_CLIP, SEED_BASE, SETTLE_S
from wifi_densepose.sensing_eval import clip_scenario


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--first-clip", type=int, default=FIRST_CLIP)
    a = p.parse_args()
    tally: Counter[tuple[str, bool, str | None]] = Counter()
    levels: dict[str, list[float]] = {name: [] for name in ACTIVITIES}
    for i in range(a.clips):
        clip = a.first_clip + i
        spec = clip_scenario("daily", clip, a.duration)
        data = sim.generate(json.dumps(spec), seed=SEED_BASE + clip - FIRST_CLIP,
                            duration_s=a.duration, device="intel5300")
        ts = np.asarray(data["timestamps"], dtype=np.float64)
        present = np.asarray(data["present"], dtype=bool)
        activity = np.asarray(data["activity"], dtype=np.int64)
        for m in analyze(data, model="default"):
            d = m["data"]
            if m["type"] != "pose_data" or not d["persons"]:
                continue
            t = float(d["metadata"]["source_time"])
            if t - ts[0] < SETTLE_S:
                continue
            k = int(np.clip(np.searchsorted(ts, t), 0, len(ts) - 1))
            people = np.flatnonzero(present[k])
            if len(people) != 1 or activity[k, people[0]] < 0:
                continue
            said = (d["persons"][0].get("activity") or {}).get("type")
            moving = bool(d["metadata"].get("motion_detected"))
            truth = ACTIVITIES[activity[k, people[0]]]
            tally[(truth, moving, said)] += 1
            levels[truth].append(float(d["metadata"].get("motion_level", 0.0)))
    print(f"{a.clips} held-out daily clips from {a.first_clip}, x {a.duration:.0f} s, Intel "
          "5300, bundled model; frames with one person in the room")
    for truth in ACTIVITIES:
        n = sum(v for key, v in tally.items() if key[0] == truth)
        if not n:
            continue
        moving = sum(v for key, v in tally.items() if key[0] == truth and key[1])
        said = {flag: ", ".join(f"{s} {tally[(truth, flag, s)]}" for s in ACTIVITIES)
                for flag in (True, False)}
        print(f"{truth:9s} {n:5d} frames, motion detected in {moving / n:.2f}; "
              f"reported with motion: {said[True]}; without: {said[False]}")
        q = np.percentile(levels[truth], [10, 25, 50, 75, 90])
        print(f"{'':9s} motion_level 10/25/50/75/90th percentiles: "
              + " / ".join(f"{v:.3f}" for v in q))


if __name__ == "__main__":
    main()
