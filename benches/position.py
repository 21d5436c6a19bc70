"""Where is the moving person? The single-link localizer on held-out simulation.

Held out: ``sim_dataset`` "test" draws (seeds, room sizes and device placements never in
the training split; the localizer's settings were chosen on "val" draws), Intel 5300
3x3x30 at 100 packets/s, one person (daily scripts: walking, still periods, sitting,
lying, falls), 60 s each. Scored where the person
walks (true mid-hip speed above 0.2 m/s), against the truth's mid-hip on the floor:

- per window: ``_native.localize`` (the engine's localizer alone, gated by the sensor's
  motion), and the same on the clean channel (no card impairments) and without wall,
  floor and ceiling reflections, to show where the error comes from;
- end to end: ``wdp.analyze`` on the run (the simulated placement goes in) against
  ``wdp.analyze`` on the same CSI without a placement (the bundled model places people),
  each person's published ``position``;
- baseline: the room's centre.

    python benches/position.py --clips 24                      # about 75 s on 2 cores
    python benches/position.py --ablation --split val --clips 8  # the settings compared
    python benches/position.py --walk                           # the default scenario
    python benches/position.py --links 3 --split val --clips 24  # several links' maps fused
    python benches/position.py --lobes --split val --clips 24    # an oracle choosing among lobes
    python benches/position.py --links 3 --clips 24 --json benches/results/position_links.json

``--links N``: draws with ``N`` receivers of one transmitter (``sim_dataset.draw(...,
nodes=N)``, every node an Intel 5300 3x3); per window, against the room centre: node 0
alone, the first two nodes' maps fused and all ``N`` fused (``_native.localize_links``),
each without and with the lobe-keeping tracker (the default, 3 m/s).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import wifi_densepose as wdp
from wifi_densepose import _native, sensing, sim, sim_dataset


def _hips(data: dict[str, Any]) -> np.ndarray:
    k = data["keypoints_3d"]
    return 0.5 * (k[:, 0, 11, :2] + k[:, 0, 12, :2])


def _walking(data: dict[str, Any], hips: np.ndarray) -> np.ndarray:
    v = np.linalg.norm(np.diff(hips, axis=0), axis=1) * float(data["fps"])
    v = np.concatenate([v[:1], v])
    return (v > 0.2) & data["present"][:, 0]


def _per_window(data: dict[str, Any], moving: np.ndarray, **settings: Any) -> np.ndarray:
    r = _native.localize(np.ascontiguousarray(data["csi"]), data["timestamps"],
                         [float(x) for x in data["room_size"]],
                         np.asarray(data["tx_antennas"], float), np.asarray(data["rx_antennas"], float),
                         np.asarray(data["frequencies"], float), moving=moving, **settings)
    return np.stack([r["t"], r["x"], r["y"]], axis=1)


def _published(msgs: list[dict[str, Any]]) -> np.ndarray:
    rows = []
    for m in msgs:
        if m["type"] != "pose_data":
            continue
        d = m["data"]
        for p in d["persons"][:1]:
            if "position" in p:
                rows.append((d["metadata"]["source_time"], p["position"]["x"], p["position"]["y"]))
    return np.array(rows).reshape(-1, 3)


def _errors(est: np.ndarray, ts: np.ndarray, hips: np.ndarray, walking: np.ndarray,
            centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(est) == 0:
        return np.zeros(0), np.zeros(0)
    i = np.clip(np.searchsorted(ts, est[:, 0]), 0, len(ts) - 1)
    keep = walking[i]
    e = np.hypot(est[keep, 1] - hips[i[keep], 0], est[keep, 2] - hips[i[keep], 1])
    b = np.hypot(centre[0] - hips[i[keep], 0], centre[1] - hips[i[keep], 1])
    return e, b


def _summary(e: list[np.ndarray]) -> dict[str, float]:
    x = np.concatenate(e) if e else np.zeros(0)
    if len(x) == 0:
        return {"n": 0}
    return {"n": len(x), "median_m": float(np.median(x)), "p90_m": float(np.percentile(x, 90)),
            "within_0_5_m": float((x <= 0.5).mean()), "within_1_m": float((x <= 1.0).mean())}


class Draw(NamedTuple):
    """One held-out one-person draw, generated, with what every measure here needs."""

    draw: dict[str, Any]
    data: dict[str, Any]
    ts: np.ndarray
    hips: np.ndarray
    walking: np.ndarray
    centre: np.ndarray
    index: int  # the draw's number in its split


def one_person_draws(split: str, clips: int, nodes: int = 1) -> Iterator[Draw]:
    """The first ``clips`` one-person ``sim_dataset`` draws of ``split`` (60 s, Intel 5300;
    ``nodes`` receivers of one transmitter)."""
    i = done = 0
    extra = {"nodes": nodes} if nodes > 1 else {}
    while done < clips:
        d = sim_dataset.draw(split, i, devices=("intel5300",), duration_s=60, **extra)
        i += 1
        if d["n_people"] != 1:
            continue
        done += 1
        data = sim.generate(d["scenario"], dense_pose_grid=0)
        hips = _hips(data)
        yield Draw(d, data, data["timestamps"], hips, _walking(data, hips),
                   np.asarray(d["room_size"][:2], float) / 2, i - 1)


def run(clips: int, variants: bool, split: str = "test") -> dict[str, Any]:
    acc: dict[str, list[np.ndarray]] = {k: [] for k in (
        "window", "window_centre", "window_clean", "window_no_reflections",
        "e2e_localizer", "e2e_localizer_centre", "e2e_model", "e2e_model_centre")}
    t0 = time.time()
    for done, (d, data, ts, hips, walking, centre, index) in enumerate(one_person_draws(split, clips), 1):
        moving = np.asarray(sensing.sense(data["csi"], ts)["motion_detected"], bool)
        e, b = _errors(_per_window(data, moving), ts, hips, walking, centre)
        acc["window"].append(e)
        acc["window_centre"].append(b)
        if variants:
            for name, change in (("window_clean", {"impairments": {"enabled": False}}),
                                 ("window_no_reflections", {"room": {
                                     **d["scenario"]["room"], "wall_reflectivity": 0.0,
                                     "floor_reflectivity": 0.0, "ceiling_reflectivity": 0.0,
                                     "objects": []}, "events": []})):
                alt = sim.generate({**d["scenario"], **change}, dense_pose_grid=0)
                m = np.asarray(sensing.sense(alt["csi"], alt["timestamps"])["motion_detected"], bool)
                h = _hips(alt)
                acc[name].append(_errors(_per_window(alt, m), alt["timestamps"], h, _walking(alt, h), centre)[0])
        e, b = _errors(_published(wdp.analyze(data)), ts, hips, walking, centre)
        acc["e2e_localizer"].append(e)
        acc["e2e_localizer_centre"].append(b)
        plain = wdp.analyze(np.ascontiguousarray(data["csi"]), timestamps=ts, room=tuple(d["room_size"][:2]),
                            device="intel5300")
        e, b = _errors(_published(plain), ts, hips, walking, centre)
        acc["e2e_model"].append(e)
        acc["e2e_model_centre"].append(b)
        print(f"clip {done}/{clips} ({split} {index}) {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return {"clips": clips, "device": "intel5300", "split": split,
            **{k: _summary(v) for k, v in acc.items()}}


#: The settings compared by ``--ablation`` (``_native.localize`` keywords), default last.
ABLATION: list[tuple[str, dict[str, Any]]] = [
    ("line-of-sight-only fit, no window mean, 30 subcarriers, no tracker",
     {"fit_reflections": False, "window_highpass": False, "max_subcarriers": 30, "track_speed_mps": 0.0}),
    ("static-path fit, no window mean, 10 subcarriers, no tracker",
     {"window_highpass": False, "track_speed_mps": 0.0}),
    ("window mean out, line-of-sight-only fit, no tracker", {"fit_reflections": False, "track_speed_mps": 0.0}),
    ("window mean out, 30 subcarriers, no tracker", {"max_subcarriers": 30, "track_speed_mps": 0.0}),
    ("window mean out, 50-frame windows, no tracker", {"window_packets": 50, "track_speed_mps": 0.0}),
    ("window mean out, each pair to unit power, no tracker", {"pair_normalize": True, "track_speed_mps": 0.0}),
    ("window mean out, each frame to unit power, no tracker", {"frame_normalize": True, "track_speed_mps": 0.0}),
    ("window mean out, continuity prior 1 m, no tracker", {"continuity_m": 1.0, "track_speed_mps": 0.0}),
    ("lobe-keeping tracker, 1 m/s", {"track_speed_mps": 1.0}),
    ("lobe-keeping tracker, 3 m/s (best on val)", {"track_speed_mps": 3.0}),
    ("lobe-keeping tracker, 5 m/s", {"track_speed_mps": 5.0}),
    ("default: static-path fit, window mean out, 10 subcarriers, 25 frames, no tracker", {}),
]


def ablation(clips: int, split: str) -> str:
    """Per-window median / p90 of each setting in :data:`ABLATION` on ``split`` draws."""
    errs: dict[str, list[np.ndarray]] = {name: [] for name, _ in ABLATION}
    centre_errs: list[np.ndarray] = []
    for done, (_, data, ts, hips, walking, centre, _) in enumerate(one_person_draws(split, clips), 1):
        moving = np.asarray(sensing.sense(data["csi"], ts)["motion_detected"], bool)
        for name, settings in ABLATION:
            e, b = _errors(_per_window(data, moving, **settings), ts, hips, walking, centre)
            errs[name].append(e)
        centre_errs.append(b)  # the default's windows (the last setting)
        print(f"ablation clip {done}/{clips}", file=sys.stderr, flush=True)
    out = [f"| setting ({clips} {split} draws, per window) | median m | p90 m | within 0.5 m |",
           "|---|---|---|---|"]
    for name, rows in [*((n, errs[n]) for n, _ in ABLATION), ("room centre (the default's windows)", centre_errs)]:
        s = _summary(rows)
        out.append(f"| {name} | {s.get('median_m', float('nan')):.2f} | {s.get('p90_m', float('nan')):.2f} | "
                   f"{s.get('within_0_5_m', float('nan')):.2f} |")
    return "\n".join(out)


def _fused(data: dict[str, Any], nodes: list[dict[str, Any]], **settings: Any) -> np.ndarray:
    links = []
    for n in nodes:
        moving = np.asarray(sensing.sense(n["csi"], n["timestamps"])["motion_detected"], bool)
        links.append({"csi": np.ascontiguousarray(n["csi"]), "timestamps": np.asarray(n["timestamps"], float),
                      "tx": np.asarray(n["tx_antennas"], float), "rx": np.asarray(n["rx_antennas"], float),
                      "freqs_hz": np.asarray(n["frequencies"], float), "moving": moving})
    r = _native.localize_links(links, [float(x) for x in data["room_size"]], **settings)
    return np.stack([r["t"], r["x"], r["y"]], axis=1)


def links(n_links: int, clips: int, split: str) -> tuple[str, dict[str, Any]]:
    """Per window: node 0 alone against 2 and ``n_links`` links' maps fused, on ``split``
    draws with ``n_links`` Intel 5300 receivers of one transmitter."""
    rows: list[tuple[str, list[int], dict[str, Any]]] = []
    for k in sorted({1, 2, n_links}):
        label = "1 link (node 0)" if k == 1 else f"{k} links fused"
        rows.append((label + ", no tracker", list(range(k)), {"track_speed_mps": 0.0}))
        rows.append((label + ", tracker 3 m/s", list(range(k)), {"track_speed_mps": 3.0}))
    errs: dict[str, list[np.ndarray]] = {name: [] for name, _, _ in rows}
    # End to end: analyze on node 0 alone, and on every node (the live pipeline fuses
    # the links it was given placements for: src/pipeline/placing.rs).
    e2e = {"end to end (analyze), node 0 alone": 1, f"end to end (analyze), {n_links} links fused": n_links}
    errs.update({name: [] for name in e2e})
    centre_errs: list[np.ndarray] = []
    # Scenario draws keep every node's clock on true time (no offset, no drift).
    draws = one_person_draws(split, clips, nodes=n_links)
    for done, (_, data, ts, hips, walking, centre, _) in enumerate(draws, 1):
        for name, which, settings in rows:
            est = _fused(data, [data["nodes"][j] for j in which], **settings)
            e, b = _errors(est, ts, hips, walking, centre)
            errs[name].append(e)
            if name == rows[0][0]:
                centre_errs.append(b)
        for name, k in e2e.items():
            est = _published(wdp.analyze({**data, "nodes": data["nodes"][:k]}, model=None))
            errs[name].append(_errors(est, ts, hips, walking, centre)[0])
        print(f"links clip {done}/{clips}", file=sys.stderr, flush=True)
    c = _summary(centre_errs)
    head = (f"| {split}, {clips} draws, {n_links} Intel 5300 receivers of one transmitter, per window "
            "| median m | p90 m | within 0.5 m | room centre median / p90 |")
    out = [head, "|---|---|---|---|---|"]
    figures: dict[str, Any] = {"clips": clips, "links": n_links, "split": split, "room_centre": c}
    for name in [*(r[0] for r in rows), *e2e]:
        s = _summary(errs[name])
        figures[name] = s
        out.append(f"| {name} | {s['median_m']:.2f} | {s['p90_m']:.2f} | {s['within_0_5_m']:.2f} | "
                   f"{c['median_m']:.2f} / {c['p90_m']:.2f} |")
    return "\n".join(out), figures


def _local_maxima(m: np.ndarray, grid: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest local maxima (8 neighbours) of a map on its grid."""
    step = float(np.min(np.diff(np.unique(grid[:, 1])))) if len(np.unique(grid[:, 1])) > 1 else 1.0
    ix = np.round((grid[:, 0] - grid[:, 0].min()) / step).astype(int)
    iy = np.round((grid[:, 1] - grid[:, 1].min()) / step).astype(int)
    img = np.full((ix.max() + 3, iy.max() + 3), -np.inf)
    img[ix + 1, iy + 1] = m
    top = np.ones(len(m), bool)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            if dx or dy:
                top &= m >= img[ix + 1 + dx, iy + 1 + dy]
    cand = np.flatnonzero(top)
    return cand[np.argsort(-m[cand])][:k]


def lobes(clips: int, split: str) -> str:
    """Why one link's tail is hard: per walking window, how far the best of the map's K
    highest local maxima is from the person (an oracle choosing among lobes), and how the
    bad windows gather in a few clips."""
    best: dict[int, list[float]] = {k: [] for k in (1, 3, 5, 8)}
    per_clip_bad: list[int] = []
    for done, (_, data, ts, hips, walking, _, _) in enumerate(one_person_draws(split, clips), 1):
        moving = np.asarray(sensing.sense(data["csi"], ts)["motion_detected"], bool)
        r = _native.localize(np.ascontiguousarray(data["csi"]), ts, [float(x) for x in data["room_size"]],
                             np.asarray(data["tx_antennas"], float), np.asarray(data["rx_antennas"], float),
                             np.asarray(data["frequencies"], float), moving=moving, maps=True)
        bad = 0
        for t, m in zip(r["t"], r["maps"]):
            j = min(int(np.searchsorted(ts, t)), len(ts) - 1)
            if not walking[j]:
                continue
            d_max = np.hypot(*(r["grid"][_local_maxima(m, r["grid"], 8)] - hips[j]).T)
            for k, row in best.items():
                row.append(float(d_max[:k].min()))
            bad += int(d_max[0] > 1.5)
        per_clip_bad.append(bad)
        print(f"lobes clip {done}/{clips}", file=sys.stderr, flush=True)
    out = [f"| {split}, {clips} draws, per walking window | median m | p90 m | within 0.5 m |", "|---|---|---|---|"]
    for k, v in best.items():
        x = np.array(v)
        label = "the map's peak" if k == 1 else f"best of the {k} highest local maxima (oracle)"
        out.append(f"| {label} | {np.median(x):.2f} | {np.percentile(x, 90):.2f} | {(x <= 0.5).mean():.2f} |")
    worst = sorted(per_clip_bad, reverse=True)
    out.append(f"\nWindows with the peak over 1.5 m off: {sum(worst)}; the worst clips hold {worst[:3]}.")
    return "\n".join(out)


def walk(seeds: tuple[int, ...] = (11, 12)) -> str:
    """The default ``walk`` scenario end to end: the localizer, the bundled model alone, the
    room centre."""
    out = ["| `walk`, 30 s, end to end | localizer median m | model median m | room centre median m |",
           "|---|---|---|---|"]
    for seed in seeds:
        data = sim.generate("walk", seed=seed, duration_s=30, dense_pose_grid=0)
        ts = data["timestamps"]
        hips = _hips(data)
        walking = _walking(data, hips)
        centre = np.asarray(data["room_size"][:2], float) / 2
        placed, base = _errors(_published(wdp.analyze(data)), ts, hips, walking, centre)
        plain = wdp.analyze(np.ascontiguousarray(data["csi"]), timestamps=ts,
                            room=tuple(data["room_size"][:2]), device=data["device"])
        model, _ = _errors(_published(plain), ts, hips, walking, centre)
        out.append(f"| seed {seed} | {np.median(placed):.2f} | {np.median(model):.2f} | {np.median(base):.2f} |")
    return "\n".join(out)


def table(r: dict[str, Any]) -> str:
    rows = [
        ("localizer, per window (sensor-gated)", "window", "window_centre"),
        ("  same, clean channel (no card impairments)", "window_clean", "window_centre"),
        ("  same, no reflections (walls, floor, ceiling, furniture)", "window_no_reflections", "window_centre"),
        ("end to end (`analyze`), with the placement", "e2e_localizer", "e2e_localizer_centre"),
        ("end to end (`analyze`), bundled model, no placement", "e2e_model", "e2e_model_centre"),
    ]
    out = ["| walking person, held out | n | median m | p90 m | within 0.5 m | room centre median / p90 |",
           "|---|---|---|---|---|---|"]
    for label, key, base in rows:
        s, c = r.get(key, {}), r.get(base, {})
        if not s.get("n"):
            continue
        out.append(f"| {label} | {s['n']} | {s['median_m']:.2f} | {s['p90_m']:.2f} | {s['within_0_5_m']:.2f} | "
                   f"{c['median_m']:.2f} / {c['p90_m']:.2f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--no-variants", action="store_true", help="skip the clean / no-reflection runs")
    ap.add_argument("--split", default="test", choices=["val", "test"],
                    help="draws to score: the localizer's settings were chosen on val; test is untouched")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--ablation", action="store_true",
                    help="instead: the settings compared per window on --split (use val, where they were chosen)")
    ap.add_argument("--walk", action="store_true", help="instead: the default walk scenario end to end")
    ap.add_argument("--links", type=int, default=0,
                    help="instead: per window with this many links (2-16), node 0 alone against the maps fused")
    ap.add_argument("--lobes", action="store_true",
                    help="instead: how far the best of the map's highest peaks is from the person (an oracle)")
    a = ap.parse_args()
    if a.lobes:
        print(lobes(a.clips, a.split))
        return
    if a.links:
        text, figures = links(a.links, a.clips, a.split)
        print(text)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(figures, f, indent=1)
        return
    if a.ablation:
        print(ablation(a.clips, a.split))
        return
    if a.walk:
        print(walk())
        return
    r = run(a.clips, not a.no_variants, a.split)
    print(table(r))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)


if __name__ == "__main__":
    main()
