"""Sensing on held-out simulation: presence, motion and breathing, beside baselines.

``wifi-densepose evaluate --sensing`` (or ``python -m wifi_densepose.sensing_eval``) runs
the sensor on simulated rooms it was never tuned on — seeds from 700000 on, room sizes and
device placements drawn fresh for each clip (transmitter and receiver on two different
walls, at heights from 0.3 to 2.4 m) — for each device profile, in three kinds of clip:

- ``empty``: nobody (what fraction of frames report someone);
- ``still``: one person standing, sitting or lying still for the whole clip (what
  fraction of frames find them, and the breathing rate within 1 bpm: over every frame,
  and over 30 s windows — the frames with 30 s of clip behind them — for everyone and for
  sitting and lying people, who do not sway);
- ``daily``: 0-3 people walking, standing, sitting, lying, falling (presence, motion).

With ``--calibrated``, the ``empty`` and ``still`` clips start with the room empty; the
sensor calibrates on the first 10 s (the empty room's noise and static channel), then the
still clip's person walks in and keeps still; still people are scored on the frames at
least 2 s after they last moved, calibrated against uncalibrated on the same frames.

Each figure is measured two ways: per frame by the sensor alone
(:func:`wifi_densepose.sensing.sense`), and end to end through the live pipeline
(:func:`wifi_densepose.analyze`, the server's own code path) on the ``pose_data`` it
publishes — a frame "reports someone" when its ``persons`` is not empty, and its breathing
rate is the first person's ``breathing_rate_bpm`` (a frame without one is a miss). Baselines: for
presence, the better of "always someone" and "never anyone" on each clip kind (the
majority class); for motion, "always moving" (its F1) and the majority class; for the
breathing rate, "always 15 bpm" (a resting adult's typical rate).
Truth: presence is the simulator's occupancy; motion is a person's mean keypoint speed
above 0.25 m/s. The first 2 s of each clip are left out (settling).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from . import sensing, sim
from .errors import InvalidArgumentError

DEVICES = ("intel5300", "esp32", "nexmon")
SEED_BASE = 700_000
SETTLE_S = 2.0
MOVING_M_S = 0.25
# The breathing rate is scored on 30 s windows (issue 18's "within 1 bpm in 90 % of 30 s
# windows"): at every frame with at least this much of the clip behind it, the rate the
# sensor reports there (none reported counts as wrong).
BREATHING_WINDOW_S = 30.0
# The breathing rate's trivial baseline: always a resting adult's typical rate.
BASELINE_BPM = 15.0


def random_placement(rng: np.random.Generator, w: float, d: float, h: float = 3.0) -> dict:
    """Transmitter and receiver on two different walls (or corners), at random heights."""

    def on_wall(wall: int) -> list[float]:
        along = float(rng.uniform(0.1, 0.9))
        z = float(rng.uniform(0.3, min(2.4, h - 0.2)))
        inset = 0.15
        return [
            [along * w, inset, z],
            [w - inset, along * d, z],
            [along * w, d - inset, z],
            [inset, along * d, z],
        ][wall]

    a, b = rng.choice(4, size=2, replace=False)
    return {"tx_position": on_wall(int(a)), "rx_position": on_wall(int(b))}


def _point(rng: np.random.Generator, w: float, d: float) -> list[float]:
    return [float(rng.uniform(0.7, w - 0.7)), float(rng.uniform(0.7, d - 0.7))]


def clip_scenario(kind: str, i: int, duration_s: float) -> dict:
    """The held-out scenario of clip ``i`` of a kind (its seed is ``SEED_BASE + i``)."""
    rng = np.random.default_rng(SEED_BASE + 1000 * ["empty", "still", "daily"].index(kind) + i)
    w, d = float(rng.uniform(3.5, 8.0)), float(rng.uniform(3.0, 7.0))
    people: list[dict] = []
    if kind == "still":
        posture = ["standing", "sitting", "lying"][i % 3]
        action = {"standing": "stand", "sitting": "sit", "lying": "lie"}[posture]
        people.append({"start": _point(rng, w, d), "heading_deg": float(rng.uniform(0, 360)),
                       "posture": posture,
                       "actions": [{"type": action, "duration_s": duration_s + 1}]})
    elif kind == "daily":
        for _ in range(int(rng.integers(0, 4))):
            acts: list[dict] = []
            t = 0.0
            while t < duration_s:
                r = rng.random()
                if r < 0.4:
                    acts.append({"type": "walk", "to": [_point(rng, w, d) for _ in range(2)],
                                 "speed": float(rng.uniform(0.6, 1.4))})
                    t += 5
                elif r < 0.55:
                    acts.append({"type": "stand", "duration_s": float(rng.uniform(2, 8))})
                    t += 5
                elif r < 0.75:
                    acts += [{"type": "sit_down"},
                             {"type": "sit", "duration_s": float(rng.uniform(3, 10))},
                             {"type": "stand_up"}]
                    t += 8
                elif r < 0.9:
                    acts += [{"type": "lie_down"},
                             {"type": "lie", "duration_s": float(rng.uniform(3, 10))},
                             {"type": "get_up"}]
                    t += 9
                else:
                    acts += [{"type": "fall"}, {"type": "lie", "duration_s": 4.0},
                             {"type": "get_up"}]
                    t += 7
            people.append({"start": _point(rng, w, d),
                           "heading_deg": float(rng.uniform(0, 360)), "actions": acts})
    return {"name": f"heldout_{kind}_{i}", "room": {"size": [w, d, 3.0]},
            "placement": random_placement(rng, w, d), "people": people, "max_people": 3}


CALIBRATE_S = 10.0


def entering_scenario(spec: dict, calibrate_s: float = CALIBRATE_S) -> dict:
    """``spec`` (an ``empty`` or ``still`` clip) as a calibrated room sees it: the room empty
    for the first ``calibrate_s`` + 2 s (the calibration, then a margin), then the still
    clip's person walks in from outside the nearest wall to their spot, sits or lies down
    there, and stays. Same room, placement and seed: one session of the card."""
    out = json.loads(json.dumps(spec))
    if not out["people"]:
        return out
    p = out["people"][0]
    (x, y), (w, d) = p["start"], out["room"]["size"][:2]
    # Out through the nearest wall (a person outside the room is absent).
    gaps = {(-0.6, y): x, (w + 0.6, y): w - x, (x, -0.6): y, (x, d + 0.6): d - y}
    door = min(gaps, key=lambda k: gaps[k])
    posture = p.pop("posture", "standing")
    action = {"standing": "stand", "sitting": "sit", "lying": "lie"}[posture]
    settle = {"standing": [], "sitting": [{"type": "sit_down"}],
              "lying": [{"type": "lie_down"}]}[posture]
    p["start"] = [float(door[0]), float(door[1])]
    p["actions"] = ([{"type": "stand", "duration_s": calibrate_s + 2.0},
                     {"type": "walk", "to": [[x, y]], "speed": 1.0}] + settle
                    + [{"type": action, "duration_s": 1000.0}])
    return out


def _still_after_motion(data: dict, hold_s: float = 2.0) -> np.ndarray:
    """Frames where someone is present, nobody moves, and nobody has for ``hold_s`` (the
    sensor's motion hold): what only a still-person detector can find."""
    ts = np.asarray(data["timestamps"], dtype=np.float64)
    moving = _truth_moving(data)
    last = -np.inf
    since = np.empty(len(ts))
    for k, (t, m) in enumerate(zip(ts, moving, strict=True)):
        if m:
            last = t
        since[k] = t - last
    return (np.asarray(data["occupancy"]) > 0) & ~moving & (since >= hold_s)


def evaluate_calibrated(devices: tuple[str, ...] = DEVICES, clips: int = 6,
                        duration_s: float = 40.0, end_to_end: bool = True,
                        model: str | None = "default",
                        progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Calibrated rooms against the same rooms uncalibrated: each ``empty`` and ``still``
    clip as :func:`entering_scenario` makes it, the sensor calibrated on its first
    ``CALIBRATE_S`` seconds (``sense(..., calibrate_s=...)``; end to end, that calibration
    given to ``analyze``). Scored after the calibration: empty rooms' frames reporting
    someone, and still people found in the frames :func:`_still_after_motion` keeps."""
    total = len(devices) * 2 * clips
    done = 0
    out: dict[str, Any] = {"clips_per_kind": clips, "duration_s": duration_s,
                           "calibrate_s": CALIBRATE_S, "seed_base": SEED_BASE, "devices": {}}
    for device in devices:
        acc: dict[str, list] = {k: [] for k in (
            "empty_cal", "empty_raw", "empty_e2e_cal", "empty_e2e_raw",
            "still_cal", "still_raw", "still_e2e_cal", "still_e2e_raw")}
        refused = 0
        for kind in ("empty", "still"):
            for i in range(clips):
                spec = entering_scenario(clip_scenario(kind, i, duration_s))
                data = sim.generate(json.dumps(spec), seed=SEED_BASE + i,
                                    duration_s=duration_s, device=device)
                ts = np.asarray(data["timestamps"], dtype=np.float64)
                cal = sensing.sense(data["csi"], ts, calibrate_s=CALIBRATE_S,
                                    channel=data.get("channel"))
                raw = sensing.sense(data["csi"], ts, channel=data.get("channel"))
                after = ts - ts[0] >= CALIBRATE_S + SETTLE_S
                if kind == "empty":
                    keep = after
                else:
                    keep = after & _still_after_motion(data)
                calibration = cal.get("calibration")
                if calibration is None:
                    refused += 1
                acc[f"{kind}_cal"].append(cal["presence"][keep])
                acc[f"{kind}_raw"].append(raw["presence"][keep])
                if end_to_end:
                    for tag, c in (("cal", calibration), ("raw", None)):
                        from .analyze import analyze

                        msgs = analyze(data, model=model, calibration=c)
                        poses = [m["data"] for m in msgs if m["type"] == "pose_data"]
                        t = np.array([p["metadata"]["source_time"] for p in poses])
                        someone = np.array([bool(p["persons"]) for p in poses], dtype=bool)
                        idx = np.clip(np.searchsorted(ts, t), 0, len(ts) - 1)
                        acc[f"{kind}_e2e_{tag}"].append(someone[keep[idx]])
                done += 1
                if progress:
                    progress(done, total)

        out["devices"][device] = {
            "calibrations_refused": refused,
            "still_frames": int(sum(len(v) for v in acc["still_cal"])),
            "empty_frames": int(sum(len(v) for v in acc["empty_cal"])),
            **{key: _mean_of(parts) for key, parts in acc.items()}}
    return out


def _mean_of(parts: list) -> float | None:
    v = np.concatenate(parts) if parts else np.zeros(0, bool)
    return float(v.mean()) if len(v) else None


def table_calibrated(r: dict[str, Any]) -> str:
    devs = list(r["devices"])
    rows = [("still people found (frames 2 s or more after their last move)", "still"),
            ("empty frames reporting someone", "empty")]
    lines = ["| figure | " + " | ".join(devs) + " |", "|---" * (len(devs) + 1) + "|"]

    def f(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    for label, kind in rows:
        for how, suffix in (("per frame", ""), ("end to end", "_e2e")):
            cells = [f"{f(r['devices'][d].get(f'{kind}{suffix}_cal'))} (uncalibrated "
                     f"{f(r['devices'][d].get(f'{kind}{suffix}_raw'))})" for d in devs]
            lines.append(f"| {label}, {how}, calibrated | " + " | ".join(cells) + " |")
    lines.append("| calibrations refused | " + " | ".join(
        str(r["devices"][d]["calibrations_refused"]) for d in devs) + " |")
    return "\n".join(lines)


def _truth_moving(data: dict) -> np.ndarray:
    kp = np.asarray(data["keypoints_3d"], dtype=np.float64)  # (n, P, 17, 3)
    ts = np.asarray(data["timestamps"], dtype=np.float64)
    if kp.shape[1] == 0:
        return np.zeros(len(ts), dtype=bool)
    dt = np.diff(ts, prepend=ts[0] - 0.01)[:, None, None]
    v = np.linalg.norm(np.diff(kp, axis=0, prepend=kp[:1]), axis=-1) / np.maximum(dt, 1e-3)
    present = np.asarray(data["present"], dtype=bool)
    speed = np.where(present, np.nan_to_num(v.mean(axis=-1)), 0.0)  # (n, P)
    # A short median over 0.2 s removes the jitter of frame-to-frame differences.
    moving = (speed > MOVING_M_S).any(axis=1).astype(np.float64)
    k = 10
    smooth = np.convolve(moving, np.ones(k) / k, mode="same")
    return smooth > 0.5


def _f1(pred: np.ndarray, truth: np.ndarray) -> float:
    tp = float((pred & truth).sum())
    fp = float((pred & ~truth).sum())
    fn = float((~pred & truth).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def _analyze_presence(data: dict,
                      model: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source time, someone reported, the first person's ``breathing_rate_bpm`` or NaN) of
    every pose_data the live pipeline publishes."""
    from .analyze import analyze

    msgs = analyze(data, model=model)
    poses = [m["data"] for m in msgs if m["type"] == "pose_data"]
    t = np.array([p["metadata"]["source_time"] for p in poses], dtype=np.float64)
    someone = np.array([bool(p["persons"]) for p in poses], dtype=bool)
    bpm = np.array([float(p["persons"][0].get("breathing_rate_bpm") or np.nan)
                    if p["persons"] else np.nan for p in poses], dtype=np.float64)
    return t, someone, bpm


def evaluate(devices: tuple[str, ...] = DEVICES, clips: int = 6, duration_s: float = 30.0,
             end_to_end: bool = True, model: str | None = "default",
             progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Runs every clip for every device; returns the figures (see the module docs)."""
    kinds = ("empty", "still", "daily")
    total = len(devices) * len(kinds) * clips
    done = 0
    out: dict[str, Any] = {"clips_per_kind": clips, "duration_s": duration_s,
                           "seed_base": SEED_BASE, "devices": {}}
    for device in devices:
        acc: dict[str, dict[str, list]] = {k: {"pres": [], "truth": [], "mot": [],
                                               "score": [], "bscore": [],
                                               "mtruth": [], "e2e": [], "e2e_truth": [],
                                               "bpm_err": [], "bpm_win": [],
                                               "bpm_win_still": [], "bpm_win_stand": [],
                                               "e2e_bpm_win": [], "bpm_win_base": []}
                                           for k in kinds}
        for kind in kinds:
            for i in range(clips):
                spec = clip_scenario(kind, i, duration_s)
                data = sim.generate(json.dumps(spec), seed=SEED_BASE + i,
                                    duration_s=duration_s, device=device)
                ts = np.asarray(data["timestamps"], dtype=np.float64)
                s = sensing.sense(data["csi"], ts, channel=data.get("channel"))
                keep = ts - ts[0] >= SETTLE_S
                truth = np.asarray(data["occupancy"]) > 0
                a = acc[kind]
                a["pres"].append(s["presence"][keep])
                a["score"].append(s["presence_score"][keep])
                a["bscore"].append(s["breathing_score"][keep])
                a["truth"].append(truth[keep])
                a["mot"].append(s["motion_detected"][keep])
                a["mtruth"].append(_truth_moving(data)[keep])
                rates = data.get("breathing_rate_bpm")
                if kind == "still" and rates is not None:
                    est = s["breathing_rate_bpm"][keep]
                    true_rate = float(np.asarray(rates).reshape(-1)[0])
                    ok = ~np.isnan(est)
                    a["bpm_err"].append(np.where(ok, np.abs(est - true_rate), np.inf))
                    win = ts - ts[0] >= BREATHING_WINDOW_S
                    err = np.abs(s["breathing_rate_bpm"][win] - true_rate)
                    a["bpm_win"].append(np.where(np.isnan(err), np.inf, err))
                    a["bpm_win_base"].append(np.full(int(win.sum()),
                                                     abs(BASELINE_BPM - true_rate)))
                    # Sitting and lying people do not sway; standing people's sway
                    # shares the breathing band (docs/sensing.md): reported apart.
                    if spec["people"][0]["posture"] != "standing":
                        a["bpm_win_still"].append(a["bpm_win"][-1])
                    else:
                        a["bpm_win_stand"].append(a["bpm_win"][-1])
                if end_to_end:
                    t, someone, bpm = _analyze_presence(data, model)
                    idx = np.clip(np.searchsorted(ts, t), 0, len(ts) - 1)
                    k2 = t - ts[0] >= SETTLE_S
                    a["e2e"].append(someone[k2])
                    a["e2e_truth"].append(truth[idx][k2])
                    if kind == "still" and rates is not None:
                        # The rate a monitoring application reads, on the same 30 s
                        # windows as the sensor's figure above.
                        err = np.abs(bpm[t - ts[0] >= BREATHING_WINDOW_S] - true_rate)
                        a["e2e_bpm_win"].append(np.where(np.isnan(err), np.inf, err))
                done += 1
                if progress:
                    progress(done, total)
        out["devices"][device] = _figures(acc, end_to_end)
    return out


def _figures(acc: dict, end_to_end: bool) -> dict[str, Any]:
    f: dict[str, Any] = {}
    cat = {k: {n: (np.concatenate(v) if v else np.zeros(0, bool)) for n, v in a.items()}
           for k, a in acc.items()}
    e, st, dl = cat["empty"], cat["still"], cat["daily"]
    f["empty_frames_reporting_someone"] = float(e["pres"].mean())
    # What the thresholds must clear (presence 1.8, breathing line 2.0; set on the tuning
    # seeds with `--seed-base 600000`): the empty rooms' largest scores.
    f["empty_presence_score_max"] = float(np.nanmax(e["score"], initial=0.0))
    f["empty_breathing_score_max"] = float(np.nanmax(e["bscore"], initial=0.0))
    f["still_frames_found"] = float(st["pres"][st["truth"]].mean())
    pres = np.concatenate([e["pres"], st["pres"], dl["pres"]])
    truth = np.concatenate([e["truth"], st["truth"], dl["truth"]])
    f["presence_accuracy"] = float((pres == truth).mean())
    f["presence_baseline_majority"] = float(max(truth.mean(), 1 - truth.mean()))
    mot = np.concatenate([st["mot"], dl["mot"], e["mot"]])
    mtruth = np.concatenate([st["mtruth"], dl["mtruth"], e["mtruth"]])
    f["motion_f1"] = _f1(mot, mtruth)
    f["motion_f1_baseline_always"] = _f1(np.ones_like(mtruth), mtruth)
    f["motion_accuracy"] = float((mot == mtruth).mean())
    f["motion_baseline_majority"] = float(max(mtruth.mean(), 1 - mtruth.mean()))
    if len(st["bpm_err"]):
        err = st["bpm_err"]
        f["breathing_within_1_bpm"] = float((err <= 1.0).mean())
        f["breathing_reported"] = float(np.isfinite(err).mean())
    if len(st["bpm_win"]):
        f["breathing_30s_within_1_bpm"] = float((st["bpm_win"] <= 1.0).mean())
        f["breathing_30s_baseline_15_bpm"] = float((st["bpm_win_base"] <= 1.0).mean())
    if len(st["bpm_win_still"]):
        f["breathing_30s_within_1_bpm_sit_lie"] = float((st["bpm_win_still"] <= 1.0).mean())
    if len(st["bpm_win_stand"]):
        f["breathing_30s_within_1_bpm_standing"] = float((st["bpm_win_stand"] <= 1.0).mean())
    if end_to_end:
        ee, es, ed = cat["empty"]["e2e"], cat["still"], cat["daily"]
        f["e2e_empty_frames_reporting_someone"] = float(ee.mean())
        f["e2e_still_frames_found"] = float(es["e2e"][es["e2e_truth"]].mean())
        p2 = np.concatenate([ee, es["e2e"], ed["e2e"]])
        t2 = np.concatenate([cat["empty"]["e2e_truth"], es["e2e_truth"], ed["e2e_truth"]])
        f["e2e_presence_accuracy"] = float((p2 == t2).mean())
        f["e2e_presence_baseline_majority"] = float(max(t2.mean(), 1 - t2.mean()))
        if len(es["e2e_bpm_win"]):
            f["e2e_breathing_30s_within_1_bpm"] = float((es["e2e_bpm_win"] <= 1.0).mean())
    return f


def table(r: dict[str, Any]) -> str:
    rows = [("empty frames reporting someone (lower is better)", "empty_frames_reporting_someone",
             None),
            ("  end to end (pose_data)", "e2e_empty_frames_reporting_someone", None),
            ("still people found", "still_frames_found", None),
            ("  end to end (pose_data)", "e2e_still_frames_found", None),
            ("presence accuracy | majority baseline", "presence_accuracy",
             "presence_baseline_majority"),
            ("  end to end | majority baseline", "e2e_presence_accuracy",
             "e2e_presence_baseline_majority"),
            ("motion F1 | 'always moving' F1", "motion_f1", "motion_f1_baseline_always"),
            ("motion accuracy | majority baseline", "motion_accuracy", "motion_baseline_majority"),
            ("breathing rate within 1 bpm (still, every frame)", "breathing_within_1_bpm", None),
            ("breathing rate within 1 bpm (still, 30 s windows) | always 15 bpm",
             "breathing_30s_within_1_bpm", "breathing_30s_baseline_15_bpm"),
            ("  end to end (pose_data)", "e2e_breathing_30s_within_1_bpm", None),
            ("  sitting and lying only", "breathing_30s_within_1_bpm_sit_lie", None),
            ("  standing only", "breathing_30s_within_1_bpm_standing", None),
            ("largest empty-room presence score (threshold 1.8)", "empty_presence_score_max",
             None),
            ("largest empty-room breathing score (threshold 2.0)", "empty_breathing_score_max",
             None)]
    devs = list(r["devices"])
    lines = ["| figure | " + " | ".join(devs) + " |", "|---" * (len(devs) + 1) + "|"]
    for label, key, base in rows:
        cells = []
        for d in devs:
            f = r["devices"][d]
            if key not in f:
                cells.append("n/a")
                continue
            cell = f"{f[key]:.3f}"
            if base:
                cell += f" \\| {f[base]:.3f}"
            cells.append(cell)
        # A label's "figure | baseline" stays one cell, as the values' do.
        escaped = label.replace(" | ", " \\| ")
        lines.append(f"| {escaped} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--devices", default=",".join(DEVICES),
                    help="device profiles, comma-separated (default: %(default)s)")
    ap.add_argument("--clips", type=int, default=6, help="clips per kind and device (default 6)")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per clip (default 30)")
    ap.add_argument("--calibrated", action="store_true",
                    help="calibrated rooms against uncalibrated: each empty and still clip "
                         "starts with the room empty, the sensor calibrates on its first "
                         f"{CALIBRATE_S:g} s, then the person walks in and keeps still "
                         "(default duration 40 s)")
    ap.add_argument("--no-end-to-end", action="store_true",
                    help="skip the live-pipeline (analyze) figures")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    ap.add_argument("--seed-base", type=int, default=SEED_BASE,
                    help="first seed (default %(default)s, held out; 600000: the tuning seeds "
                         "the thresholds were set on)")


def run(a: argparse.Namespace) -> int:
    devices = tuple(d.strip() for d in a.devices.split(",") if d.strip())
    if a.clips < 1 or a.duration < 8:
        raise InvalidArgumentError("--clips must be at least 1 and --duration at least 8 s")
    global SEED_BASE
    SEED_BASE = int(getattr(a, "seed_base", SEED_BASE))
    started = time.time()

    from .evaluate import print_figures, progress_bar

    progress = None if a.quiet else progress_bar("sensing on held-out clips")
    if getattr(a, "calibrated", False):
        duration = max(a.duration, 40.0)
        r = evaluate_calibrated(devices, a.clips, duration, end_to_end=not a.no_end_to_end,
                                progress=progress)
        title = (f"sensing, calibrated against uncalibrated, {a.clips} clips x 2 kinds x "
                 f"{duration:g} s per device (seeds from {SEED_BASE})")
        text = table_calibrated(r)
    else:
        r = evaluate(devices, a.clips, a.duration, end_to_end=not a.no_end_to_end,
                     progress=progress)
        title = (f"sensing, {a.clips} clips x 3 kinds x {a.duration:g} s per device (seeds "
                 f"from {SEED_BASE}; rooms and placements drawn per clip)")
        text = table(r)
    r["seconds"] = round(time.time() - started, 1)
    print_figures(r, a.json, title, text)
    return 0


def main() -> None:
    from .evaluate import module_main

    module_main(__doc__, add_arguments, run)


if __name__ == "__main__":
    main()
