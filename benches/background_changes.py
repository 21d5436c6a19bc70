"""Changes that are not people: does an empty room stay empty when a door opens or a chair moves?

    python benches/background_changes.py                 # about 4 minutes on 2 cores
    python benches/background_changes.py --json benches/results/background_changes.json

Held-out empty rooms (``sensing_eval.clip_scenario("empty", 100 + i)``: seeds, rooms and
placements never tuned on; the sensing evaluation's own clips are 0-23), 40 s each, and one
background event at 15 s, cycling through three kinds:

- **door left open**: a door on a random wall swings 60-100 degrees into the room over
  0.7-1.5 s and stays open;
- **door opened and closed**: the same, closing again 3-15 s later;
- **chair moved**: a chair-sized scatterer (0.3-0.8 m^2 at 0.5 m) slides 0.5-1.5 m over 1 s.

The sensor is scored per frame (``sensing.sense``) and end to end (``analyze``, the bundled
model where it runs: the ``pose_data`` frames that report anyone and the
``occupancy_update``s saying someone entered), uncalibrated and calibrated on the clip's
first 10 s (an empty room, as an installer would calibrate it). Scored from the event's
start: the share of frames reporting someone while it moves and from 3 s after it stopped
(the sensor's 2 s motion hold and a margin), and the seconds from its end to the last frame
reporting anyone. The baseline, "never anyone", is right on every frame here.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import wifi_densepose as wdp
from wifi_densepose import sensing, sim
from wifi_densepose import sensing_eval as se

EVENT_AT_S = 15.0
AFTER_S = 3.0
KINDS = ("door left open", "door opened and closed", "chair moved")


def event_scenario(i: int, duration_s: float) -> tuple[dict, str, float]:
    """Clip ``i``'s empty room with its background event; returns (spec, kind, end time of
    the last movement)."""
    spec = se.clip_scenario("empty", 100 + i, duration_s)
    rng = np.random.default_rng(se.SEED_BASE + 210_000 + i)
    w, d = spec["room"]["size"][:2]
    kind = KINDS[i % len(KINDS)]
    if kind.startswith("door"):
        wall = int(rng.integers(4))
        length = w if wall < 2 else d
        u = float(rng.uniform(0.2, max(0.25, length - 1.1)))
        hinge, closed, into = [([u, 0.0], 0.0, 1.0), ([u, d], 0.0, -1.0),
                               ([0.0, u], 90.0, -1.0), ([w, u], 90.0, 1.0)][wall]
        swing = float(rng.uniform(0.7, 1.5))
        ev: dict[str, Any] = {"type": "door", "at_s": EVENT_AT_S, "hinge": hinge,
                              "from_deg": closed,
                              "to_deg": closed + into * float(rng.uniform(60, 100)),
                              "duration_s": swing}
        end = EVENT_AT_S + swing
        if kind == "door opened and closed":
            ev["return_at_s"] = end + float(rng.uniform(3, 15))
            end = ev["return_at_s"] + swing
    else:
        x, y = float(rng.uniform(0.5, w - 0.5)), float(rng.uniform(0.5, d - 0.5))
        spec["room"]["objects"] = [{"position": [x, y, 0.5],
                                    "rcs_m2": float(rng.uniform(0.3, 0.8))}]
        step = float(rng.uniform(0.5, 1.5))
        angle = float(rng.uniform(0, 2 * np.pi))
        to = [float(np.clip(x + step * np.cos(angle), 0.3, w - 0.3)),
              float(np.clip(y + step * np.sin(angle), 0.3, d - 0.3)), 0.5]
        ev = {"type": "move_object", "at_s": EVENT_AT_S, "object": 0, "to": to,
              "duration_s": 1.0}
        end = EVENT_AT_S + 1.0
    spec["events"] = [ev]
    return spec, kind, end


def _lingering(t: np.ndarray, someone: np.ndarray, end: float) -> float:
    """Seconds from the event's end to the last frame reporting anyone (0 if none)."""
    late = someone & (t >= end)
    return float(t[late].max() - end) if late.any() else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=12, help="clips per device (default 12)")
    ap.add_argument("--duration", type=float, default=40.0)
    ap.add_argument("--devices", default="intel5300,esp32,nexmon")
    ap.add_argument("--model", default="default", help="'none' for the sensor alone end to end")
    ap.add_argument("--seed-base", type=int, default=se.SEED_BASE,
                    help="600000 for the tuning seeds (default: the held-out 700000)")
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    model = None if a.model == "none" else a.model
    se.SEED_BASE = a.seed_base
    started = time.monotonic()
    out: dict[str, Any] = {"clips": a.clips, "duration_s": a.duration, "seed_base": se.SEED_BASE,
                           "event_at_s": EVENT_AT_S,
                           "after_s": AFTER_S, "calibrate_s": se.CALIBRATE_S, "devices": {}}
    print("| device, calibration | kind | clips | frames reporting someone while it moves / "
          f"from {AFTER_S:g} s after (per frame) | the same end to end | person_entered per event "
          "| largest seconds after its end still reporting someone |", flush=True)
    print("|---|---|---|---|---|---|---|")
    for device in a.devices.split(","):
        rows: dict[str, dict[str, list]] = {}
        for i in range(a.clips):
            spec, kind, end = event_scenario(i, a.duration)
            data = sim.generate(json.dumps(spec), seed=se.SEED_BASE + 100 + i,
                                duration_s=a.duration, device=device)
            ts = np.asarray(data["timestamps"], dtype=np.float64)
            channel = data.get("channel")
            cal = sensing.sense(data["csi"], ts, calibrate_s=se.CALIBRATE_S, channel=channel)
            raw = sensing.sense(data["csi"], ts, channel=channel)
            for tag, s in (("uncalibrated", raw), ("calibrated", cal)):
                calibration = s.get("calibration") if tag == "calibrated" else None
                if tag == "calibrated" and calibration is None:
                    print(f"  {device} clip {i}: the calibration was refused", flush=True)
                    continue
                msgs = wdp.analyze(data, model=model, calibration=calibration)
                poses = [m["data"] for m in msgs if m["type"] == "pose_data"]
                pt = np.array([p["metadata"]["source_time"] for p in poses], dtype=np.float64)
                p_someone = np.array([bool(p["persons"]) for p in poses], dtype=bool)
                # The room is empty throughout: every person_entered is a false one.
                entered = sum(1 for m in msgs if m["type"] == "occupancy_update"
                              and m["data"].get("change_type") == "person_entered")
                presence = np.asarray(s["presence"], dtype=bool)
                during = (ts >= EVENT_AT_S) & (ts < end + AFTER_S)
                after = ts >= end + AFTER_S
                p_during = (pt >= EVENT_AT_S) & (pt < end + AFTER_S)
                p_after = pt >= end + AFTER_S
                r = rows.setdefault(f"{tag}|{kind}", {k: [] for k in (
                    "during", "after", "e2e_during", "e2e_after", "entered", "linger")})
                r["during"].append(presence[during])
                r["after"].append(presence[after])
                r["e2e_during"].append(p_someone[p_during])
                r["e2e_after"].append(p_someone[p_after])
                r["entered"].append(entered)
                r["linger"].append(max(_lingering(ts, presence, end),
                                       _lingering(pt, p_someone, end)))
            print(f"  {device} clip {i + 1}/{a.clips} ({kind}), "
                  f"{time.monotonic() - started:.0f} s", flush=True)
        figures = {}
        for key, r in sorted(rows.items()):
            tag, kind = key.split("|")
            f = {
                "clips": len(r["entered"]),
                "during": float(np.concatenate(r["during"]).mean()),
                "after": float(np.concatenate(r["after"]).mean()),
                "e2e_during": float(np.concatenate(r["e2e_during"]).mean()),
                "e2e_after": float(np.concatenate(r["e2e_after"]).mean()),
                "person_entered_per_event": float(np.mean(r["entered"])),
                "largest_linger_s": float(np.max(r["linger"])),
            }
            figures[key] = f
            print(f"| {device}, {tag} | {kind} | {f['clips']} | {f['during']:.3f} / {f['after']:.3f} "
                  f"| {f['e2e_during']:.3f} / {f['e2e_after']:.3f} "
                  f"| {f['person_entered_per_event']:.2f} | {f['largest_linger_s']:.1f} |", flush=True)
        out["devices"][device] = figures
    out["seconds"] = round(time.monotonic() - started, 1)
    print("baseline 'never anyone': 0.000 on every frame, 0 person_entered")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
