"""The whole pipeline, end to end, on held-out simulation: what a user of the stream gets.

``wifi-densepose evaluate --pipeline`` (or ``python -m wifi_densepose.pipeline_eval``)
runs :func:`wifi_densepose.analyze` — the server's own code path — over simulated days it
never saw (0-3 people walking, standing, sitting, lying and falling, each clip its own
room size, device placement and seed, from :func:`wifi_densepose.sensing_eval.clip_scenario`
with clip numbers from 1000 on, so none is a clip the sensor's figures use) and scores the
messages a monitoring application would read, each beside a trivial baseline:

- **occupancy**: the last ``occupancy_update.current_occupancy`` at each ``pose_data``
  frame against the true number in the room (0-3), 2 s after the start; confusion matrix.
  Baselines: "always one" and the majority count of the same frames.
  How steady the stream is: ``occupancy_update`` messages per hour against the true
  count's own changes per hour (every extra one is a false ``person_left`` or
  ``person_entered``), and tracks started per person.
- **empty rooms**: share of ``pose_data`` frames of empty stretches that report anyone.
- **position**: each reported person's ``position`` against the nearest present person's
  mid-hip on the floor (median, 90th percentile). Baseline: the room's centre against
  the same person.
- **activity**: each reported person's ``activity.type`` against that person's true
  activity; recall per class and balanced accuracy over the classes present, the
  confusion matrix, and the same figures over the frames where one person is alone in
  the room (the pipeline reports one person, scored against the nearest where there are
  more). Baseline: always the majority class (balanced accuracy 1 / classes).
- **falls**: a ``fall_detected`` within [descent start, impact + 2 s] of a true fall finds
  it (its delay after the impact is reported); every other one is a false alarm, per hour
  of the clips. A fall whose impact + 2 s is past the clip's end is not scored (the
  scripts run on past it). Baseline: never alarm (recall 0, no false alarm).

The live pipeline runs the bundled model where the device has 3 receive antennas, gated
by the sensor, with the simulated placement given to the localizer (``docs/sensing.md``).
``--model none`` scores the sensor and localizer alone; ``--oracle`` runs the same days
through a live server in oracle mode (detections from the simulator's truth with misses,
ghosts and noise), which shows the tracker's and analytics' own errors apart from the
model's. ``--nodes N`` hears each day with N receivers of one transmitter at random wall
or corner places (``sim.random_placement(..., shared_tx=True)``, in the held-out half of
``sim_dataset``'s placement checkerboard) instead of the clip's
one link: the room's sensors fused, and the links that can place people fused into one
map (``docs/sensing.md``, "Several sources in one room").
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from . import sim
from .errors import InvalidArgumentError
from .sensing_eval import clip_scenario

SEED_BASE = 760_000
FIRST_CLIP = 1000
SETTLE_S = 2.0
FALL_GRACE_S = 2.0
ACTIVITIES = ("standing", "walking", "sitting", "lying", "falling")


def _hips(data: dict[str, Any]) -> np.ndarray:
    k = np.asarray(data["keypoints_3d"], dtype=np.float64)  # (n, P, 17, 3)
    return 0.5 * (k[:, :, 11, :2] + k[:, :, 12, :2])


def score_clip(data: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
    """One clip's raw tallies from the messages ``analyze`` published for it."""
    ts = np.asarray(data["timestamps"], dtype=np.float64)
    occupancy = np.asarray(data["occupancy"], dtype=np.int64)
    present = np.asarray(data["present"], dtype=bool)
    activity = np.asarray(data["activity"], dtype=np.int64)
    hips = _hips(data)
    room = [float(v) for v in data["room_size"][:2]]
    centre = np.array(room) / 2
    # Keypoints on the floor, normalized by the room (the model's frame, docs/model.md).
    truth_kp = np.asarray(data["keypoints_3d"], dtype=np.float64)[..., :2] / np.array(room)
    occ_pairs, empty_frames, errors, centre_errors, act_pairs = [], [], [], [], []
    keypoints: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    alerts: list[float] = []
    current = 0
    last_t = float(ts[0])
    updates = tracks = 0
    for m in messages:
        d = m["data"]
        if m["type"] == "tracking_update" and d.get("event") == "track_started":
            tracks += 1
        if m["type"] == "occupancy_update":
            current = int(d.get("current_occupancy", 0))
            updates += 1
        elif m["type"] == "activity_event" and d.get("event_type") == "fall_detected":
            alerts.append(last_t)  # the source time of the frame it followed
        elif m["type"] == "pose_data":
            t = float(d["metadata"]["source_time"])
            last_t = t
            if t - ts[0] < SETTLE_S:
                continue
            i = int(np.clip(np.searchsorted(ts, t), 0, len(ts) - 1))
            occ_pairs.append((int(occupancy[i]), current))
            if occupancy[i] == 0:
                empty_frames.append(bool(d["persons"]))
            people = np.flatnonzero(present[i])
            for p in d["persons"]:
                if len(people) == 0:
                    continue
                pos = p.get("position")
                if pos is not None:
                    xy = np.array([pos["x"], pos["y"]], dtype=np.float64)
                    dist = np.linalg.norm(hips[i, people] - xy, axis=1)
                    who = people[int(np.argmin(dist))]
                    errors.append(float(dist.min()))
                    centre_errors.append(float(np.linalg.norm(hips[i, who] - centre)))
                    kps = p.get("keypoints")
                    if kps and len(kps) == truth_kp.shape[2]:
                        said = np.array([[k["x"], k["y"]] for k in kps], dtype=np.float64)
                        keypoints.append((said, truth_kp[i, who], xy / np.array(room)))
                else:
                    who = people[0] if len(people) == 1 else None
                kind = (p.get("activity") or {}).get("type")
                if who is not None and kind in ACTIVITIES and activity[i, who] >= 0:
                    act_pairs.append((int(activity[i, who]), ACTIVITIES.index(kind), len(people)))
    every_fall = [(float(s), float(imp))
                  for _, s, imp, _ in np.asarray(data["falls"]).reshape(-1, 4)]
    # A fall is scored only when its alert could come within the clip (the simulator
    # lists the script's falls even where they start after the clip's end); an alert
    # for one that could not is neither found nor false.
    end = float(ts[-1])
    falls = [f for f in every_fall if f[1] + FALL_GRACE_S <= end]
    unscored = [f for f in every_fall if f[1] + FALL_GRACE_S > end]
    alerts = [a for a in alerts if not any(s <= a for s, _ in unscored)]
    found, delays, used = 0, [], set()
    for start, impact in falls:
        hits = [k for k, a in enumerate(alerts) if start <= a <= impact + FALL_GRACE_S and k not in used]
        if hits:
            found += 1
            used.add(hits[0])
            delays.append(alerts[hits[0]] - impact)
    # What a perfect stream would publish: one occupancy_update per change of the true
    # count (the first, from an empty start, included) and one track per person.
    true_changes = int((np.diff(occupancy) != 0).sum()) + int(occupancy[0] != 0)
    return {"occupancy": occ_pairs, "empty": empty_frames, "errors": errors,
            "occupancy_updates": updates, "true_occupancy_changes": true_changes,
            "tracks_started": tracks, "people": int(present.any(axis=0).sum()),
            "centre_errors": centre_errors, "activity": act_pairs, "falls": len(falls),
            "keypoints": keypoints,
            "falls_found": found, "delays": delays, "false_alarms": len(alerts) - len(used),
            "hours": float(ts[-1] - ts[0]) / 3600}


def _keypoint_figures(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """PCK@0.1 / 0.2 (share of keypoints within that distance of the truth, in the room's
    normalized floor frame, as ``wifi-densepose evaluate`` scores the model per window) of
    the reported people's keypoints against the person they were matched to, beside two
    baselines made with the scored set's own statistics: the mean pose (every keypoint at
    its mean place in the room), and the mean body shape (each keypoint's mean offset from
    the mid-hip) stamped at the reported position — what the keypoints add over the
    position alone."""
    if not rows:
        return {"scored": 0}
    said = np.stack([r[0] for r in rows])  # (n, 17, 2)
    truth = np.stack([r[1] for r in rows])
    where = np.stack([r[2] for r in rows])  # (n, 2)
    mid = 0.5 * (truth[:, 11] + truth[:, 12])
    mean_pose = truth.mean(axis=0)
    shape = where[:, None, :] + (truth - mid[:, None, :]).mean(axis=0)[None]

    def pck(pred: np.ndarray, a: float) -> float:
        return float((np.linalg.norm(pred - truth, axis=-1) < a).mean())

    return {"scored": len(rows),
            "pck@0.1": pck(said, 0.1), "pck@0.2": pck(said, 0.2),
            "mean_pose_pck@0.1": pck(np.broadcast_to(mean_pose, truth.shape), 0.1),
            "mean_pose_pck@0.2": pck(np.broadcast_to(mean_pose, truth.shape), 0.2),
            "shape_at_position_pck@0.1": pck(shape, 0.1),
            "shape_at_position_pck@0.2": pck(shape, 0.2)}


def summarize(clips: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures (see the module docs) from every clip's tallies."""
    occ = np.array([p for c in clips for p in c["occupancy"]], dtype=np.int64).reshape(-1, 2)
    truth, said = occ[:, 0], np.minimum(occ[:, 1], 3)
    confusion = [[int(((truth == t) & (said == s)).sum()) for s in range(4)] for t in range(4)]
    counts = np.bincount(truth, minlength=4)
    empty = [e for c in clips for e in c["empty"]]
    err = np.array([e for c in clips for e in c["errors"]])
    cerr = np.array([e for c in clips for e in c["centre_errors"]])
    # Rows: true activity, reported activity, people in the room.
    acts = np.array([p for c in clips for p in c["activity"]], dtype=np.int64).reshape(-1, 3)

    def recall_of(rows: np.ndarray) -> dict[str, float]:
        out = {}
        for k, name in enumerate(ACTIVITIES):
            of_k = rows[rows[:, 0] == k]
            if len(of_k):
                out[name] = float((of_k[:, 1] == k).mean())
        return out

    recall = recall_of(acts)
    # The pipeline reports one person (the sensor's presence): in a room of two or three
    # that person's activity is scored against whoever is nearest, so the rooms of one
    # person alone say what the activity stage itself does.
    alone = acts[acts[:, 2] == 1]
    recall_alone = recall_of(alone)
    falls = sum(c["falls"] for c in clips)
    hours = sum(c["hours"] for c in clips)
    kp = _keypoint_figures([k for c in clips for k in c.get("keypoints", [])])
    delays = [d for c in clips for d in c["delays"]]

    def pct(x: np.ndarray, q: float) -> float | None:
        return float(np.percentile(x, q)) if len(x) else None

    return {
        "clips": len(clips), "hours": hours, "frames": len(truth),
        "occupancy": {
            "accuracy": float((truth == said).mean()) if len(truth) else None,
            # Issue 18's figure for one-antenna devices: rooms with 0-2 people.
            "accuracy_0_2": float((truth == said)[truth <= 2].mean()) if (truth <= 2).any() else None,
            "always_one": float((truth == 1).mean()) if len(truth) else None,
            "majority": float(counts.max() / counts.sum()) if counts.sum() else None,
            "confusion_rows_true_0_3_cols_said_0_3": confusion,
            # How steady the stream is: occupancy_update messages against the true
            # count's own changes, per hour (each extra one a false person_left or
            # person_entered), and tracks started per person in the clips.
            "updates_per_hour": sum(c.get("occupancy_updates", 0) for c in clips) / hours
            if hours else None,
            "true_changes_per_hour": sum(c.get("true_occupancy_changes", 0) for c in clips) / hours
            if hours else None,
            "tracks_per_person": sum(c.get("tracks_started", 0) for c in clips)
            / max(1, sum(c.get("people", 0) for c in clips)),
        },
        "empty_frames_reporting_someone": float(np.mean(empty)) if empty else None,
        "empty_frames": len(empty),
        "position": {"reported": len(err), "median_m": pct(err, 50), "p90_m": pct(err, 90),
                     "centre_median_m": pct(cerr, 50), "centre_p90_m": pct(cerr, 90)},
        "activity": {"scored": len(acts), "recall": recall,
                     "balanced_accuracy": float(np.mean(list(recall.values()))) if recall else None,
                     "majority_balanced_accuracy": 1 / len(recall) if recall else None,
                     # What each true activity was called (rows and columns in ACTIVITIES'
                     # order): where the misses go, not only how many.
                     "confusion_rows_true_cols_said": [
                         [int(((acts[:, 0] == t) & (acts[:, 1] == s)).sum())
                          for s in range(len(ACTIVITIES))] for t in range(len(ACTIVITIES))],
                     "one_person_in_the_room": {
                         "scored": len(alone), "recall": recall_alone,
                         "balanced_accuracy": (float(np.mean(list(recall_alone.values())))
                                               if recall_alone else None)}},
        "keypoints": kp,
        "falls": {"falls": falls, "found": sum(c["falls_found"] for c in clips),
                  "recall": sum(c["falls_found"] for c in clips) / falls if falls else None,
                  "max_delay_s": max(delays) if delays else None,
                  "false_alarms": sum(c["false_alarms"] for c in clips),
                  "false_alarms_per_hour": sum(c["false_alarms"] for c in clips) / hours
                  if hours else None},
    }


ORACLE_TYPES = ("pose_data", "occupancy_update", "activity_event", "tracking_update")


def oracle_messages(spec: dict[str, Any], seed: int, duration_s: float,
                    device: str) -> list[dict[str, Any]]:
    """The same run through a live server in oracle mode (detections made from the
    simulator's truth, with misses, ghosts and noise: `docs/analytics.md`), so the
    tracker's and analytics' own errors show apart from the model's. The messages are
    collected by one callback, in the order the server published them."""
    import threading

    from .server import Server

    got: list[dict[str, Any]] = []
    lock = threading.Lock()
    last = [time.monotonic()]

    def collector(kind: str) -> Callable[[dict[str, Any]], None]:
        def on(data: dict[str, Any]) -> None:
            with lock:
                got.append({"type": kind, "data": data})
                last[0] = time.monotonic()
        return on

    with Server(model=None) as server:
        server.add_environment("oracle")
        for kind in ORACLE_TYPES:
            server.on(kind, collector(kind))
        run = server.simulate("oracle", spec, seed=seed, duration_s=duration_s, device=device,
                              speed=10.0, oracle=True)
        run.wait()
        # The callbacks run on their own thread: wait until they have gone quiet.
        while time.monotonic() - last[0] < 0.5:
            time.sleep(0.1)
    with lock:
        msgs = list(got)
    # A live simulated source stamps its frames on the wall clock from when it started
    # (`metadata.source_time` = start + simulated time): back to simulated time, taking
    # the first frame's published time as the run's start (one frame, 10 ms, at most off).
    poses = [m["data"]["metadata"] for m in msgs if m["type"] == "pose_data"]
    if poses:
        start = float(poses[0]["source_time"])
        for meta in poses:
            meta["source_time"] = float(meta["source_time"]) - start
    return msgs


def with_nodes(spec: dict[str, Any], nodes: int, seed: int) -> dict[str, Any]:
    """``spec`` heard by ``nodes`` receivers of one transmitter at random wall or corner
    places drawn from ``seed``, in place of its one link; the places are the held-out half
    of :mod:`wifi_densepose.sim_dataset`'s checkerboard. (The bundled model was trained
    with one fixed placement per room, ``training/README.md``: any of these is new to it.)"""
    from .sim_dataset import PLACEMENT_CELLS

    placement = sim.random_placement(spec["room"]["size"], seed, nodes=nodes, shared_tx=True,
                                     cells=PLACEMENT_CELLS["test"])
    out = {k: v for k, v in spec.items() if k != "placement"}
    out["nodes"] = [{"name": f"node{k}", **n} for k, n in enumerate(placement["nodes"])]
    return out


def evaluate(clips: int = 12, duration_s: float = 60.0, device: str = "intel5300",
             model: str | None = "default", oracle: bool = False,
             progress: Callable[[int, int], None] | None = None,
             nodes: int = 1, first_clip: int = FIRST_CLIP) -> dict[str, Any]:
    """Runs ``clips`` held-out daily clips through ``analyze`` (or, with ``oracle``,
    through a live server in oracle mode); returns the figures. ``nodes > 1`` hears each
    clip with that many receivers of one transmitter (see the module docs).
    ``first_clip`` picks another set of days (clip ``first_clip + i`` with seed
    ``SEED_BASE + first_clip - FIRST_CLIP + i``): none is fitted on, so each set is as
    held out as the default; the figures' spread over sets is how much a set of 24 days
    tells."""
    from .analyze import analyze

    if not 1 <= nodes <= 16:
        raise InvalidArgumentError(f"nodes must be 1..16 (an environment senses at most 16), not {nodes}")
    if oracle and nodes > 1:
        raise InvalidArgumentError("the oracle column runs one link: --oracle takes no --nodes")
    if not FIRST_CLIP <= first_clip <= 900_000:
        raise InvalidArgumentError(f"first_clip must be {FIRST_CLIP}..900000 (lower numbers are "
                                   f"the sensing figures' clips), not {first_clip}")
    offset = first_clip - FIRST_CLIP
    tallies = []
    for i in range(clips):
        spec = clip_scenario("daily", first_clip + i, duration_s)
        if nodes > 1:
            spec = with_nodes(spec, nodes, SEED_BASE + 7 * (offset + i) + 1)
        seed = SEED_BASE + offset + i
        data = sim.generate(json.dumps(spec), seed=seed, duration_s=duration_s, device=device)
        messages = (oracle_messages(spec, seed, duration_s, device) if oracle
                    else analyze(data, model=model))
        tallies.append(score_clip(data, messages))
        if progress:
            progress(i + 1, clips)
    out = summarize(tallies)
    out.update(device=device, model="oracle" if oracle else (model or "none"),
               duration_s=duration_s, seed_base=SEED_BASE + offset, first_clip=first_clip,
               nodes=nodes)
    return out


def table(r: dict[str, Any]) -> str:
    def f(x: float | None, fmt: str = ".2f") -> str:
        return "n/a" if x is None else format(x, fmt)

    o, p, a, fl = r["occupancy"], r["position"], r["activity"], r["falls"]
    k = r.get("keypoints") or {}
    lines = [
        "| figure | pipeline | baseline |",
        "|---|---|---|",
        (f"| occupancy right (0-3 people, {r['frames']} frames) | {f(o['accuracy'])} | "
        f"always one {f(o['always_one'])}, majority {f(o['majority'])} |"),
        f"| occupancy right where 0-2 people | {f(o['accuracy_0_2'])} | |",
        (f"| occupancy_update messages per hour | {f(o.get('updates_per_hour'), '.0f')} | the "
         f"true count's changes {f(o.get('true_changes_per_hour'), '.0f')} |"),
        (f"| tracks started per person | {f(o.get('tracks_per_person'))} | one each 1.00 |"),
        (f"| empty-room frames reporting someone ({r['empty_frames']}) | "
        f"{f(r['empty_frames_reporting_someone'], '.3f')} | never anyone 0.000 |"),
        (f"| position median / p90, m ({p['reported']} reported) | "
        f"{f(p['median_m'])} / {f(p['p90_m'])} | room centre "
        f"{f(p['centre_median_m'])} / {f(p['centre_p90_m'])} |"),
        (f"| keypoints PCK@0.1 / 0.2 ({k.get('scored', 0)} people) | "
        f"{f(k.get('pck@0.1'))} / {f(k.get('pck@0.2'))} | mean pose "
        f"{f(k.get('mean_pose_pck@0.1'))} / {f(k.get('mean_pose_pck@0.2'))}; mean shape at "
        f"the reported position {f(k.get('shape_at_position_pck@0.1'))} / "
        f"{f(k.get('shape_at_position_pck@0.2'))} |"),
        (f"| activity balanced accuracy ({a['scored']} scored) | {f(a['balanced_accuracy'])} | "
        f"majority class {f(a['majority_balanced_accuracy'])} |"),
        (f"| fall recall ({fl['found']} of {fl['falls']}), max delay after impact s | "
        f"{f(fl['recall'])}, {f(fl['max_delay_s'], '.1f')} | never-fall 0.00 |"),
        (f"| fall false alarms per hour ({fl['false_alarms']} over {r['hours']:.2f} h) | "
        f"{f(fl['false_alarms_per_hour'], '.1f')} | never-fall 0.0 |"),
    ]
    lines.append("")
    lines.append("activity recall per class: " + ", ".join(
        f"{k} {v:.2f}" for k, v in a["recall"].items()))
    alone = a["one_person_in_the_room"]
    if alone["scored"]:
        lines.append(f"activity where one person is in the room ({alone['scored']} scored): "
                     f"balanced accuracy {f(alone['balanced_accuracy'])}; " + ", ".join(
                         f"{k} {v:.2f}" for k, v in alone["recall"].items()))
    lines.append("activity confusion (rows and columns: " + ", ".join(ACTIVITIES) + "): "
                 + str(a["confusion_rows_true_cols_said"]))
    lines.append("occupancy confusion (rows: true 0-3; columns: reported 0-3): "
                 + str(o["confusion_rows_true_0_3_cols_said_0_3"]))
    return "\n".join(lines)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--clips", type=int, default=12, help="held-out daily clips (default 12)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds per clip (default 60)")
    ap.add_argument("--device", default="intel5300", help="device profile (default intel5300)")
    ap.add_argument("--model", default="default",
                    help="'default' (bundled), 'none' (the sensor and localizer alone) or an ONNX path")
    ap.add_argument("--oracle", action="store_true",
                    help="detections from the simulator's truth (a live server in oracle "
                         "mode) instead of the model: the tracker's and analytics' own errors")
    ap.add_argument("--nodes", type=int, default=1,
                    help="receivers of one transmitter hearing each day (default 1: the clip's link)")
    ap.add_argument("--first-clip", type=int, default=FIRST_CLIP,
                    help=f"another set of held-out days, from this clip number (default {FIRST_CLIP})")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    ap.add_argument("--save", metavar="PATH",
                    help="also keep the figures in this JSON file, under the key "
                         "DEVICE/MODEL (other runs' keys are kept): the committed "
                         "benches/results/pipeline_eval.json is made this way")


def save(path: str, r: dict[str, Any]) -> None:
    """Merges one run's figures into the JSON file at ``path`` under ``device/model``,
    written whole to a temporary file first so an interrupted run leaves the old file."""
    import os

    try:
        with open(path) as f:
            kept = json.load(f)
        if not isinstance(kept, dict):
            kept = {}
    except (FileNotFoundError, json.JSONDecodeError):
        kept = {}
    nodes = int(r.get("nodes", 1))
    first = int(r.get("first_clip", FIRST_CLIP))
    kept[f"{r['device']}/{r['model']}" + (f"/{nodes} nodes" if nodes > 1 else "")
         + (f"/from clip {first}" if first != FIRST_CLIP else "")] = r
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(kept, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def run(a: argparse.Namespace) -> int:
    if a.clips < 1 or a.duration < 8:
        raise InvalidArgumentError("--clips must be at least 1 and --duration at least 8 s")
    from .evaluate import print_figures, progress_bar

    model = None if str(a.model).lower() == "none" else a.model
    started = time.time()
    r = evaluate(a.clips, a.duration, a.device, model, oracle=getattr(a, "oracle", False),
                 progress=None if a.quiet else progress_bar("pipeline on held-out days"),
                 nodes=getattr(a, "nodes", 1),
                 first_clip=getattr(a, "first_clip", FIRST_CLIP))
    r["seconds"] = round(time.time() - started, 1)
    if getattr(a, "save", None):
        save(a.save, r)
    how = "a live server in oracle mode" if r["model"] == "oracle" else "analyze"
    heard = f", {r['nodes']} receivers" if r["nodes"] > 1 else ""
    if r["first_clip"] != FIRST_CLIP:
        heard += f", clips from {r['first_clip']}"
    print_figures(r, a.json, f"end to end ({how}), {a.clips} held-out daily clips x "
                  f"{a.duration:g} s, {r['device']}{heard}, model {r['model']}", table(r))
    return 0


def main() -> None:
    from .evaluate import module_main

    module_main(__doc__, add_arguments, run)


if __name__ == "__main__":
    main()
