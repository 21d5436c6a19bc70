"""Can the localizer's floor maps count people? An experiment: persistent lobes, tracked.

`benches/count_separability.py` found that global motion features (moving power,
eigenvalue spread) count 1/2/3 walkers only 0.46 of the time against 0.33 for "always
one": where people walk matters as much as how many walk. The idea tested here: resolve
each person as a lobe of the localizer's back-projection map (`src/sensing/localizer.rs`,
one map per 25-packet window) and count the lobes that persist over a few seconds.

Per window, the map's peaks are its local maxima at least ``ratio`` of its top (linear
power; for fused maps, of the fused likelihood) and at least ``radius`` metres from a
higher accepted one. Three counters over the last ``span`` seconds:

- ``peaks``: the windows' peak count, averaged and rounded;
- ``tracks``: a greedy multi-target tracker over the peaks (a peak joins the nearest
  track within ``speed * dt + 0.4`` m, else starts one; a track ends after 1.5 s
  unmatched); the count is the tracks matched in at least ``share`` of the span's
  windows (persist) and not standing on another track (within ``radius``);
- ``combined``: a three-class logistic regression on the peak counts at four ratios and
  the tracks' count (the sensor's presence already says 0 against at least 1).

Every count is clipped to 1-3 while someone is there (0 needs the sensor's presence,
which is reliable: `docs/sensing.md`). The counters' settings are chosen on the "tune"
clips (their own rooms, placements and seeds) and scored once on the "held-out" clips,
never used for choosing. Conditions:

- ``walk1`` / ``walk3``: 1, 2 and 3 people walking the whole time (as
  `count_separability.py`, new rooms and seeds), one Intel 5300 3x3 link, or three
  receivers of one transmitter with their maps fused (product: the localizer's own
  fusion, `fused_log_map`; sum: each link's map over its own peak, averaged);
- ``daily1`` / ``daily3``: the daily mix of `wifi-densepose evaluate --pipeline`
  (0-3 people walking, standing, sitting, lying, falling); held out: the pipeline
  evaluation's own clips (one link; for three links their rooms with three receivers
  drawn for them). Still people put nothing in the motion maps: the counters remember
  tracks for the span, and the sensor's presence gives 0.

Baselines: "always one" (what the live pipeline reports while anyone is there), the
majority class, and count_separability's 0.46 (1-3 walkers).

    python benches/count_lobes.py --conditions walk1 --clips 24    # about 2.5 minutes on 2 cores
    python benches/count_lobes.py --conditions walk3 --clips 6     # about 5 minutes
    python benches/count_lobes.py --conditions daily1 --clips 24   # about 4 minutes
    python benches/count_lobes.py --conditions daily3 --clips 14 --duration 30  # about 6 minutes
    python benches/count_lobes.py --diagnose 1 --clips 24          # each walker among the top peaks?
    python benches/count_lobes.py --diagnose 3 --clips 18
    python benches/count_lobes.py --diagnose 1 --clips 24 --ideal  # no impairments, no reflections

``--json PATH`` keeps a run's figures; `benches/results/count_lobes.json` holds the
four runs above (``conditions``) and the two diagnoses (``diagnose``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from typing import Any

import numpy as np
from count_separability import _softmax_regression
from count_separability import scenario as walk_scenario
from experiment import run_conditions
from wifi_densepose import _native, sensing, sim
from wifi_densepose.sensing_eval import clip_scenario

SEED_BASE = 910_000
#: The pipeline evaluation's held-out daily clips (python/wifi_densepose/pipeline_eval.py).
PIPELINE_FIRST_CLIP, PIPELINE_SEED_BASE = 1000, 760_000
#: Daily clips for tuning: clip numbers no evaluation uses.
TUNE_FIRST_CLIP = 4000
STEP_S = 0.5  # a count every half second
SETTLE_S = 3.0  # counted from this far into a clip (the localizer's background settles)
FUSE_MAX_AGE_S = 0.5
GATE_M = 0.4
TRACK_END_S = 1.5
RATIOS = (0.3, 0.5, 0.7, 0.85)
#: For lobes by successive cancellation: a later lobe's peak over the first's (they are
#: far lower than a plain map's side peaks: the first person's response is gone).
LOBE_RATIOS = (0.05, 0.1, 0.2, 0.35)
LOBES = 3
LOBE_RADIUS_M = 0.0  # one steering vector out per lobe: 0.3 m took most of every window's energy
RADII = (0.8, 1.5)
SPANS = (2.0, 4.0, 8.0)
SPANS_DAILY = (2.0, 4.0, 8.0, 16.0, 30.0)
SHARES = (0.2, 0.4, 0.6)
SPEED = 2.0

CONDITIONS: dict[str, dict[str, Any]] = {
    "walk1": {"kind": "walk", "links": 1},
    "walk3": {"kind": "walk", "links": 3},
    "daily1": {"kind": "daily", "links": 1},
    "daily3": {"kind": "daily", "links": 3},
}


# ---------------------------------------------------------------- maps and peaks


def _link_arg(node: dict[str, Any], times: np.ndarray, moving: np.ndarray | None) -> dict[str, Any]:
    return {"csi": np.ascontiguousarray(node["csi"]), "timestamps": np.asarray(times, float),
            "tx": np.asarray(node["tx_antennas"], float), "rx": np.asarray(node["rx_antennas"], float),
            "freqs_hz": np.asarray(node["frequencies"], float), "moving": moving}


def link_maps(node: dict[str, Any], room: list[float], times: np.ndarray,
              moving: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(window end times, maps ``(n, points)``, grid ``(points, 2)``, lobes ``(n, LOBES,
    4)``) of one link."""
    a = _link_arg(node, times, moving)
    r = _native.localize(a["csi"], a["timestamps"], room, a["tx"], a["rx"], a["freqs_hz"], moving=moving,
                         maps=True, lobes=LOBES, lobe_radius_m=LOBE_RADIUS_M)
    return np.asarray(r["t"]), np.asarray(r["maps"]), np.asarray(r["grid"]), np.asarray(r["lobes"])


def fused_lobes(nodes: list[dict[str, Any]], room: list[float], times: list[np.ndarray],
                moving: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """(fused window end times, lobes ``(n, LOBES, 4)``): successive cancellation over
    every recent link at once (``MultiLocalizer``)."""
    r = _native.localize_links([_link_arg(n, t, m) for n, t, m in zip(nodes, times, moving)], room,
                               lobes=LOBES, lobe_radius_m=LOBE_RADIUS_M)
    return np.asarray(r["t"]), np.asarray(r["lobes"])


def fuse(per_link: list[tuple[np.ndarray, np.ndarray]], how: str) -> tuple[np.ndarray, np.ndarray]:
    """Each window of any link: the latest map of every link at most 0.5 s old, fused
    into one linear map over its peak. ``product``: the localizer's fusion (log power
    over each map's peak, floored at 1e-3, summed); ``sum``: the maps over their peaks
    averaged (a person dominant in one link's map keeps a lobe)."""
    ends = np.unique(np.concatenate([t for t, _ in per_link]))
    out_t, out_m = [], []
    for t in ends:
        got = []
        for lt, lm in per_link:
            j = int(np.searchsorted(lt, t + 1e-9)) - 1
            if j >= 0 and t - lt[j] <= FUSE_MAX_AGE_S and lm[j].max() > 0:
                got.append(lm[j] / lm[j].max())
        if not got:
            continue
        if how == "product":
            s = np.sum([np.log(np.maximum(g, 1e-3)) for g in got], axis=0)
            m = np.exp(s - s.max())
        else:
            m = np.mean(got, axis=0)
        out_t.append(t)
        out_m.append(m)
    if not out_m:  # nothing moved in this clip: no window, no map
        return np.zeros(0), np.zeros((0, 0))
    return np.array(out_t), np.array(out_m)


class Grid:
    """A floor grid's neighbour structure, for local maxima."""

    def __init__(self, grid: np.ndarray):
        self.points = grid
        ys = np.unique(grid[:, 1])
        step = float(np.min(np.diff(ys))) if len(ys) > 1 else 1.0
        self.ix = np.round((grid[:, 0] - grid[:, 0].min()) / step).astype(int)
        self.iy = np.round((grid[:, 1] - grid[:, 1].min()) / step).astype(int)
        self.shape = (self.ix.max() + 3, self.iy.max() + 3)

    def maxima(self, m: np.ndarray) -> np.ndarray:
        """Indices of the local maxima (8 neighbours), highest first."""
        img = np.full(self.shape, -np.inf)
        img[self.ix + 1, self.iy + 1] = m
        top = np.ones(len(m), bool)
        for dx, dy in itertools.product((-1, 0, 1), repeat=2):
            if dx or dy:
                top &= m >= img[self.ix + 1 + dx, self.iy + 1 + dy]
        cand = np.flatnonzero(top)
        return cand[np.argsort(-m[cand])]


def peaks(m: np.ndarray, grid: Grid, ratio: float, radius: float, most: int = 4) -> np.ndarray:
    """The map's peaks (see the module docs), ``(k, 2)`` positions, highest first."""
    top = float(m.max())
    out: list[np.ndarray] = []
    if top <= 0:
        return np.zeros((0, 2))
    for c in grid.maxima(m):
        if m[c] < ratio * top or len(out) >= most:
            break
        p = grid.points[c]
        if all(np.hypot(*(p - q)) >= radius for q in out):
            out.append(p)
    return np.array(out).reshape(-1, 2)


# ---------------------------------------------------------------- counters


def track_counts(times: np.ndarray, window_peaks: list[np.ndarray], eval_t: np.ndarray,
                 span: float, share: float, radius: float) -> np.ndarray:
    """The ``tracks`` counter at each of ``eval_t`` (see the module docs)."""
    tracks: list[dict[str, Any]] = []
    ended: list[dict[str, Any]] = []
    for t, ps in zip(times, window_peaks):
        live = [tr for tr in tracks if t - tr["last"] <= TRACK_END_S]
        ended += [tr for tr in tracks if t - tr["last"] > TRACK_END_S]
        tracks = live
        free = list(range(len(ps)))
        pairs = sorted((float(np.hypot(*(ps[i] - tr["pos"]))), k, i)
                       for k, tr in enumerate(tracks) for i in free)
        used_t: set[int] = set()
        for d, k, i in pairs:
            tr = tracks[k]
            if k in used_t or i not in free or d > SPEED * (t - tr["last"]) + GATE_M:
                continue
            tr["pos"], tr["last"] = ps[i], t
            tr["hits"].append(t)
            tr["path"].append(ps[i])
            used_t.add(k)
            free.remove(i)
        for i in free:
            tracks.append({"pos": ps[i], "last": t, "hits": [t], "path": [ps[i]]})
    everything = tracks + ended
    windows = np.asarray(times)
    out = np.zeros(len(eval_t), int)
    for e, t in enumerate(eval_t):
        n_win = int(((windows > t - span) & (windows <= t)).sum())
        if n_win == 0:
            continue
        keep: list[np.ndarray] = []
        scored = []
        for tr in everything:
            h = np.asarray(tr["hits"])
            inside = (h > t - span) & (h <= t)
            if inside.sum() >= max(1, share * n_win):
                last_pos = np.asarray(tr["path"])[np.flatnonzero(inside)[-1]]
                scored.append((int(inside.sum()), last_pos))
        for _, pos in sorted(scored, key=lambda s: -s[0]):
            if all(np.hypot(*(pos - q)) >= radius for q in keep):
                keep.append(pos)
        out[e] = len(keep)
    return out


def peak_counts(times: np.ndarray, counts: np.ndarray, eval_t: np.ndarray, span: float) -> np.ndarray:
    """The mean peak count of the windows of the last ``span`` seconds at each ``eval_t``."""
    out = np.zeros(len(eval_t))
    for e, t in enumerate(eval_t):
        inside = (times > t - span) & (times <= t)
        out[e] = counts[inside].mean() if inside.any() else 0.0
    return out


# ---------------------------------------------------------------- clips


def _walk_spec(i: int, people: int, links: int, duration_s: float) -> tuple[dict[str, Any], int]:
    spec = walk_scenario(i, people, duration_s)
    spec["name"] = f"lobes_{i}_{people}"
    if links > 1:
        placement = sim.random_placement(spec["room"]["size"], SEED_BASE + 7 * i + people,
                                         nodes=links, shared_tx=True)
        spec.pop("placement")
        spec["nodes"] = [{"name": f"node{k}", **n} for k, n in enumerate(placement["nodes"])]
    return spec, SEED_BASE + 10 * i + people


def _daily_spec(clip: int, links: int, duration_s: float) -> dict[str, Any]:
    spec = clip_scenario("daily", clip, duration_s)
    if links > 1:
        placement = sim.random_placement(spec["room"]["size"], SEED_BASE + 31 * clip,
                                         nodes=links, shared_tx=True)
        spec.pop("placement")
        spec["nodes"] = [{"name": f"node{k}", **n} for k, n in enumerate(placement["nodes"])]
    return spec


def clip_record(data: dict[str, Any], links: int, gate: bool) -> dict[str, Any]:
    """What every counter needs from one generated clip: each map family's window times
    and maps, the truth and the sensor's presence at each evaluation time."""
    room = [float(x) for x in data["room_size"]]
    nodes = data.get("nodes", [data])
    per_link = []
    presence_curves = []
    grid = None
    all_times, all_moving = [], []
    single_lobes = None
    for n in nodes:
        # Scenario nodes keep their clocks on true time; the fusion needs one clock.
        times = np.asarray(n.get("true_time", n["timestamps"]), float)
        s = sensing.sense(n["csi"], times)
        moving = np.asarray(s["motion_detected"], bool) if gate else None
        t, m, grid, lobes = link_maps(n, room, times, moving)
        per_link.append((t, m))
        single_lobes = single_lobes if single_lobes is not None else (t, lobes)
        presence_curves.append((times, np.asarray(s["presence"], bool)))
        all_times.append(times)
        all_moving.append(moving)
    ts = np.asarray(data["timestamps"], float)
    eval_t = np.arange(ts[0] + SETTLE_S, ts[-1], STEP_S)
    truth = np.asarray(data["occupancy"])[np.clip(np.searchsorted(ts, eval_t), 0, len(ts) - 1)]
    # Several nodes: someone is there if any node's sensor says so (the bank fuses so).
    present = np.zeros(len(eval_t), bool)
    for times, p in presence_curves:
        present |= p[np.clip(np.searchsorted(times, eval_t) - 1, 0, len(times) - 1)]
    families: dict[str, Any] = {"single": per_link[0]} if links == 1 else {
        "product": fuse(per_link, "product"), "sum": fuse(per_link, "sum")}
    assert single_lobes is not None
    families["lobes" if links == 1 else "lobes_fused"] = (
        single_lobes if links == 1 else fused_lobes(nodes, room, all_times, all_moving))
    assert grid is not None
    return {"families": families, "grid": Grid(grid), "eval_t": eval_t, "truth": truth.astype(int),
            "present": present}


def clips_for(name: str, n_clips: int, duration_s: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(tune, held-out) clip records of a condition."""
    c = CONDITIONS[name]
    tune: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    t0 = time.time()
    if c["kind"] == "walk":
        for i in range(n_clips):
            for people in (1, 2, 3):
                spec, seed = _walk_spec(i, people, c["links"], duration_s)
                data = sim.generate(json.dumps(spec), seed=seed, duration_s=duration_s,
                                    device="intel5300", dense_pose_grid=0)
                (tune if i < n_clips // 2 else held).append(clip_record(data, c["links"], gate=False))
            print(f"{name}: room {i + 1}/{n_clips} {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    else:
        for i in range(n_clips):
            for split, first, seed_base, out in (("tune", TUNE_FIRST_CLIP, SEED_BASE + 500, tune),
                                                 ("held", PIPELINE_FIRST_CLIP, PIPELINE_SEED_BASE, held)):
                spec = _daily_spec(first + i, c["links"], duration_s)
                data = sim.generate(json.dumps(spec), seed=seed_base + i, duration_s=duration_s,
                                    device="intel5300", dense_pose_grid=0)
                out.append(clip_record(data, c["links"], gate=True))
            print(f"{name}: clip {i + 1}/{n_clips} {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return tune, held


# ---------------------------------------------------------------- scoring


def lobe_peaks(lobes: np.ndarray, ratio: float, radius: float) -> np.ndarray:
    """A window's lobes (rows x, y, share, peak) kept as peaks: the first, then each at
    least ``ratio`` of its peak and ``radius`` from a kept one."""
    out: list[np.ndarray] = []
    for x, y, _, peak in lobes:
        if not np.isfinite(peak) or (out and peak < ratio):
            continue
        p = np.array([x, y])
        if all(np.hypot(*(p - q)) >= radius for q in out):
            out.append(p)
    return np.array(out).reshape(-1, 2)


def _ratios(family: str) -> tuple[float, ...]:
    return LOBE_RATIOS if family.startswith("lobes") else RATIOS


def _peak_lists(rec: dict[str, Any], family: str, ratio: float, radius: float) -> list[np.ndarray]:
    key = ("peaks", family, ratio, radius)
    if key not in rec:
        _, maps = rec["families"][family]
        if family.startswith("lobes"):
            rec[key] = [lobe_peaks(lb, ratio, radius) for lb in maps]
        else:
            rec[key] = [peaks(m, rec["grid"], ratio, radius) for m in maps]
    return rec[key]


def counter_output(rec: dict[str, Any], family: str, how: str, ratio: float, radius: float,
                   span: float, share: float) -> np.ndarray:
    """One counter's raw count (0 = no lobe) at each evaluation time of a clip."""
    times, _ = rec["families"][family]
    pl = _peak_lists(rec, family, ratio, radius)
    if how == "peaks":
        return np.rint(peak_counts(times, np.array([len(p) for p in pl]), rec["eval_t"], span)).astype(int)
    return track_counts(times, pl, rec["eval_t"], span, share, radius)


def reported(rec: dict[str, Any], raw: np.ndarray, use_presence: bool) -> np.ndarray:
    """What a pipeline would report: 0 when nobody is there (the sensor's presence, or the
    truth for the walking conditions, where everyone is always there), else the count
    clipped to 1-3."""
    there = rec["present"] if use_presence else rec["truth"] > 0
    return np.where(there, np.clip(raw, 1, 3), 0)


def score(recs: list[dict[str, Any]], said: list[np.ndarray]) -> dict[str, Any]:
    y = np.concatenate([r["truth"] for r in recs])
    p = np.concatenate(said)
    classes = sorted({int(v) for v in y} | {1, 2, 3})
    confusion = [[int(((y == t) & (p == q)).sum()) for q in classes] for t in classes]
    occupied = y > 0
    return {"n": len(y), "accuracy": float((p == y).mean()),
            "accuracy_occupied_1_3": float((p[occupied] == y[occupied]).mean()) if occupied.any() else None,
            "classes": classes, "confusion_rows_true": confusion}


def baselines(recs: list[dict[str, Any]], use_presence: bool) -> dict[str, float]:
    y = np.concatenate([r["truth"] for r in recs])
    pres = np.concatenate([reported(r, np.ones(len(r["truth"]), int), use_presence) for r in recs])
    two = np.concatenate([reported(r, np.full(len(r["truth"]), 2), use_presence) for r in recs])
    return {"always_one_when_present": float((pres == y).mean()),
            "always_two_when_present": float((two == y).mean()),
            "majority": float(max((y == k).mean() for k in range(4)))}


def choose(recs: list[dict[str, Any]], family: str, how: str, spans: tuple[float, ...],
           use_presence: bool) -> tuple[dict[str, float], float]:
    """The settings of a counter with the best accuracy on ``recs`` (the tune clips)."""
    best: tuple[float, dict[str, float]] = (-1.0, {})
    shares = SHARES if how == "tracks" else (0.0,)
    for ratio, radius, span, share in itertools.product(_ratios(family), RADII, spans, shares):
        said = [reported(r, counter_output(r, family, how, ratio, radius, span, share), use_presence)
                for r in recs]
        acc = score(recs, said)["accuracy"]
        if acc > best[0]:
            best = (acc, {"ratio": ratio, "radius": radius, "span": span, "share": share})
    return best[1], best[0]


def combined_features(rec: dict[str, Any], family: str, span: float, tracks: dict[str, float]) -> np.ndarray:
    cols = [peak_counts(rec["families"][family][0],
                        np.array([len(p) for p in _peak_lists(rec, family, ratio, 1.0)]),
                        rec["eval_t"], span) for ratio in _ratios(family)]
    cols.append(counter_output(rec, family, "tracks", **tracks).astype(float))
    return np.stack(cols, axis=1)


def run_condition(name: str, clips: int, duration_s: float) -> dict[str, Any]:
    c = CONDITIONS[name]
    daily = c["kind"] == "daily"
    tune, held = clips_for(name, clips, duration_s)
    spans = SPANS_DAILY if daily else SPANS
    out: dict[str, Any] = {"condition": name, **c, "clips_tune": len(tune), "clips_held_out": len(held),
                           "duration_s": duration_s, "tune_baselines": baselines(tune, daily),
                           "held_out_baselines": baselines(held, daily), "counters": {}}
    for family in tune[0]["families"]:
        for how in ("peaks", "tracks"):
            settings, tune_acc = choose(tune, family, how, spans, daily)
            said = [reported(r, counter_output(r, family, how, **settings), daily) for r in held]
            out["counters"][f"{family}/{how}"] = {"settings": settings, "tune_accuracy": tune_acc,
                                                  "held_out": score(held, said)}
        # Combined: a logistic regression on the occupied evaluation times (1-3).
        tr_settings = out["counters"][f"{family}/tracks"]["settings"]
        span = tr_settings["span"]

        xt = np.concatenate([combined_features(r, family, span, tr_settings) for r in tune])
        yt = np.concatenate([r["truth"] for r in tune])
        occ = yt > 0
        predict = _softmax_regression(xt[occ], yt[occ] - 1, 3)
        said = []
        for r in held:
            x = combined_features(r, family, span, tr_settings)
            said.append(reported(r, predict(x) + 1, daily))
        out["counters"][f"{family}/combined"] = {"settings": {"span": span}, "held_out": score(held, said)}
    return out


def diagnose(links: int, rooms: range, duration_s: float = 20.0, ideal: bool = False) -> str:
    """Why the counts fail: per window, whether each walker (the best-found first) is
    within 0.6 m of one of the three highest peaks of the plain (fused) map, and of the
    three lobes by successive cancellation. ``ideal``: the same rooms with no card
    impairments and no reflections (walls, floor, ceiling, furniture)."""
    found: dict[tuple[str, int], list[list[bool]]] = {}
    for i in rooms:
        for people in (1, 2, 3):
            spec, seed = _walk_spec(i, people, links, duration_s)
            if ideal:
                spec["impairments"] = {"enabled": False}
                spec["room"] = {**spec["room"], "wall_reflectivity": 0.0, "floor_reflectivity": 0.0,
                                "ceiling_reflectivity": 0.0, "objects": []}
                spec["events"] = []
            data = sim.generate(json.dumps(spec), seed=seed, duration_s=duration_s, device="intel5300",
                                dense_pose_grid=0)
            rec = clip_record(data, links, gate=False)
            k = np.asarray(data["keypoints_3d"])
            hips = 0.5 * (k[:, :, 11, :2] + k[:, :, 12, :2])
            ts = np.asarray(data["timestamps"], float)
            for family, (times, maps) in rec["families"].items():
                if family == "sum":
                    continue
                for t, m in zip(times, maps):
                    top = (lobe_peaks(m, 0.0, 0.0)[:3] if family.startswith("lobes")
                           else rec["grid"].points[rec["grid"].maxima(m)[:3]])
                    j = min(int(np.searchsorted(ts, t)), len(ts) - 1)
                    hit = sorted((bool(np.any(np.hypot(*(top - hips[j, p]).T) < 0.6)) for p in range(people)),
                                 reverse=True)
                    found.setdefault((family, people), []).append(hit)
    what = ", no impairments or reflections" if ideal else ""
    out = [(f"| {links} link(s), rooms {rooms.start}-{rooms.stop - 1}{what} | walkers | share of windows with the "
            "1st / 2nd / 3rd walker within 0.6 m of a top-3 peak |"), "|---|---|---|"]
    for (family, people), rows in found.items():
        share = np.mean(np.array(rows, float), axis=0)
        out.append(f"| {family} | {people} | {' / '.join(f'{v:.2f}' for v in share)} |")
    return "\n".join(out)


def table(results: list[dict[str, Any]]) -> str:
    lines = [("| condition | counter | settings (chosen on tune clips) | held-out accuracy | "
              "accuracy where occupied | always one | always two | majority | confusion (rows: true) |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        b = r["held_out_baselines"]
        for k, v in r["counters"].items():
            h = v["held_out"]
            s = ", ".join(f"{a}={x:g}" for a, x in v["settings"].items())
            lines.append(f"| {r['condition']} | {k} | {s} | {h['accuracy']:.2f} | "
                         f"{h['accuracy_occupied_1_3']:.2f} | {b['always_one_when_present']:.2f} | "
                         f"{b['always_two_when_present']:.2f} | {b['majority']:.2f} | {h['confusion_rows_true']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=24,
                    help="rooms per walking condition (half tune, half held out); daily: clips per split")
    ap.add_argument("--duration", type=float, default=0.0,
                    help="seconds per clip (default 20 walking, 60 daily)")
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--diagnose", type=int, default=0,
                    help="instead: with this many links, how often each walker is among the top peaks")
    ap.add_argument("--ideal", action="store_true",
                    help="with --diagnose: no card impairments and no reflections")
    a = ap.parse_args()
    if a.diagnose:
        print(diagnose(a.diagnose, range(12, 12 + max(1, a.clips // 6)), ideal=a.ideal))
        return

    def one(name: str, clips: int, duration_s: float) -> dict[str, Any]:
        daily = CONDITIONS[name]["kind"] == "daily"
        return run_condition(name, clips, duration_s or (60.0 if daily else 20.0))

    run_conditions(a.conditions, one, a.clips, a.duration, table, a.json)


if __name__ == "__main__":
    main()
