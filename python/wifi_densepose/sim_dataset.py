"""Simulated daily-activity scenarios for the sensing work, with held-out splits.

Each draw is a complete scenario description (see ``docs/simulator.md``) made from
its split and index alone: a random room, a random device placement on the walls or in
the corners (:func:`wifi_densepose.sim.random_placement`), randomised furniture, 0-3
people following random daily-activity scripts (walking, standing, sitting, lying,
falls and getting up, still periods of tens of seconds), background events that are not
people (a door, a chair moved) and a device among the Intel 5300 (3x3x30), ESP32 (1x1x64)
and Nexmon (1x1x256 at 80 MHz or 1x1x64 at 20 MHz). Everything is recorded in the draw.

Splits never share seeds (disjoint seed ranges), room sizes (on a 0.1 m grid, each
(width, depth) pair belongs to one split) or placements (training devices sit on one
half of a checkerboard over mount, position and height, held-out ones on the other;
the corners, which the checkerboard cannot split, are held out: training devices are on
walls only)::

    from wifi_densepose import sim, sim_dataset
    draw = sim_dataset.draw("train", 0, duration_s=60)
    data = sim.generate(draw["scenario"], dense_pose_grid=0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import sim
from .errors import InvalidArgumentError

#: Seed ranges ``[start, end)`` of each split; a draw's seed is ``start + index``.
SPLITS: dict[str, tuple[int, int]] = {
    "train": (10_000_000, 20_000_000),
    "val": (20_000_000, 21_000_000),
    "test": (30_000_000, 31_000_000),
}
#: Devices drawn by default (equal weights).
DEVICES = ("intel5300", "esp32", "nexmon", "nexmon_20")
#: Checkerboard half of the placements each split uses.
PLACEMENT_CELLS = {"train": 0, "val": 1, "test": 1}


def room_split(width: float, depth: float) -> str:
    """The split a room size belongs to (sizes on a 0.1 m grid): 20 % test, 20 % val,
    the rest train, interleaved over the whole range of sizes."""
    c = (round(width * 10) * 7 + round(depth * 10) * 13) % 5
    return "test" if c == 0 else "val" if c == 1 else "train"


def _room(rng: np.random.Generator, split: str) -> list[float]:
    while True:
        w = round(float(rng.uniform(3.0, 8.0)), 1)
        d = round(float(rng.uniform(3.0, 7.0)), 1)
        if room_split(w, d) == split:
            return [w, d, round(float(rng.uniform(2.4, 3.2)), 1)]


def _point(rng: np.random.Generator, w: float, d: float, margin: float = 0.6) -> list[float]:
    return [float(rng.uniform(margin, w - margin)), float(rng.uniform(margin, d - margin))]


def _script(rng: np.random.Generator, w: float, d: float, start: list[float],
            duration_s: float) -> list[dict[str, Any]]:
    """Actions filling ``duration_s``: walks between random points, still periods of
    tens of seconds standing, sitting or lying, brief pauses, falls (lying still after,
    sometimes not getting up)."""
    acts: list[dict[str, Any]] = []
    t = 0.0
    here = list(start)
    while t < duration_s:
        r = float(rng.random())
        if r < 0.35:
            pts = [_point(rng, w, d) for _ in range(int(rng.integers(1, 4)))]
            speed = float(rng.uniform(0.6, 1.4))
            length = sum(float(np.hypot(b[0] - a[0], b[1] - a[1])) for a, b in zip([here] + pts, pts))
            acts.append({"type": "walk", "to": pts, "speed": speed})
            here = pts[-1]
            t += length / speed
        elif r < 0.5:
            s = float(rng.uniform(10, 40))
            acts.append({"type": "stand", "duration_s": s})
            t += s
        elif r < 0.57:
            s = float(rng.uniform(1, 5))
            acts.append({"type": "stand", "duration_s": s})
            t += s
        elif r < 0.77:
            s = float(rng.uniform(10, 60))
            acts += [{"type": "sit_down"}, {"type": "sit", "duration_s": s}, {"type": "stand_up"}]
            t += s + 3.0
        elif r < 0.9:
            s = float(rng.uniform(10, 60))
            acts += [{"type": "lie_down"}, {"type": "lie", "duration_s": s}, {"type": "get_up"}]
            t += s + 6.0
        else:
            s = float(rng.uniform(5, 30))
            acts += [{"type": "fall"}, {"type": "lie", "duration_s": s}]
            t += s + 0.8
            if rng.random() < 0.3:  # does not get up: lies still to the end
                acts.append({"type": "lie", "duration_s": max(duration_s - t, 0.0) + 1.0})
                break
            acts.append({"type": "get_up"})
            t += 3.0
    return acts


def _door(rng: np.random.Generator, w: float, d: float, duration_s: float) -> dict[str, Any]:
    """A door on a random wall: closed along the wall, opening 60-100 degrees into the
    room, sometimes closing again."""
    wall = int(rng.integers(4))
    length = w if wall < 2 else d
    u = float(rng.uniform(0.2, max(0.25, length - 1.1)))
    hinge, closed, into = [
        ([u, 0.0], 0.0, 1.0),
        ([u, d], 0.0, -1.0),
        ([0.0, u], 90.0, -1.0),
        ([w, u], 90.0, 1.0),
    ][wall]
    at = float(rng.uniform(2.0, max(2.1, duration_s - 2.0)))
    ev: dict[str, Any] = {"type": "door", "at_s": at, "hinge": hinge, "from_deg": closed,
                          "to_deg": closed + into * float(rng.uniform(60, 100)),
                          "duration_s": float(rng.uniform(0.7, 1.5))}
    if rng.random() < 0.5:
        ev["return_at_s"] = at + ev["duration_s"] + float(rng.uniform(3, 20))
    return ev


def draw(split: str, index: int, *, duration_s: float = 60.0, devices: tuple[str, ...] = DEVICES,
         nodes: int = 1, fps: float = 100.0) -> dict[str, Any]:
    """Scenario ``index`` of ``split`` (``"train"``, ``"val"``, ``"test"``).

    Returns ``{"split", "index", "seed", "room_size", "device", "placement", "n_people",
    "scenario"}``; ``scenario`` is the full description to pass to
    :func:`wifi_densepose.sim.generate` (its ``seed`` set). ``nodes > 1`` gives that many
    receivers of one transmitter (the multi-node shape). The same arguments always give
    the same draw.
    """
    if split not in SPLITS:
        raise InvalidArgumentError(f"split must be one of {sorted(SPLITS)}, not {split!r}")
    lo, hi = SPLITS[split]
    if not 0 <= index < hi - lo:
        raise InvalidArgumentError(f"index must be in [0, {hi - lo}) for {split!r}")
    seed = lo + int(index)
    rng = np.random.default_rng([seed, 0xDA7A])
    room = _room(rng, split)
    w, d, _ = room
    device = str(devices[int(rng.integers(len(devices)))])
    placement = sim.random_placement(room, seed, nodes=nodes, shared_tx=True,
                                     cells=PLACEMENT_CELLS[split])
    objects: list[dict[str, Any]] = [{"position": [*_point(rng, w, d, 0.4), float(rng.uniform(0.3, 1.0))],
                "rcs_m2": float(rng.uniform(0.2, 1.5))} for _ in range(int(rng.integers(0, 5)))]
    n_people = int(rng.choice(4, p=[0.2, 0.35, 0.25, 0.2]))
    people = []
    for _ in range(n_people):
        start = _point(rng, w, d)
        posture = str(rng.choice(["standing", "standing", "sitting", "lying"]))
        # Starting seated or lying: a still period, then up, then the day's script.
        still = float(rng.uniform(10, 60))
        first = {"standing": [], "sitting": [{"type": "sit", "duration_s": still}, {"type": "stand_up"}],
                 "lying": [{"type": "lie", "duration_s": still}, {"type": "get_up"}]}[posture]
        people.append({
            "start": start,
            "heading_deg": float(rng.uniform(0, 360)),
            "height": float(rng.uniform(1.5, 1.95)),
            "rcs_m2": float(rng.uniform(0.7, 1.3)),
            "posture": posture,
            "actions": first + _script(rng, w, d, start, duration_s),
        })
    events: list[dict[str, Any]] = []
    if rng.random() < 0.5:
        events.append(_door(rng, w, d, duration_s))
    if objects and rng.random() < 0.4:
        o = int(rng.integers(len(objects)))
        events.append({"type": "move_object", "at_s": float(rng.uniform(1.0, max(1.1, duration_s - 2))),
                       "object": o, "to": [*_point(rng, w, d, 0.4), objects[o]["position"][2]],
                       "duration_s": float(rng.uniform(0.7, 1.5))})
    scenario: dict[str, Any] = {
        "name": f"{split}_{index}",
        "seed": seed,
        "duration_s": float(duration_s),
        "fps": float(fps),
        "room": {"size": room, "wall_reflectivity": float(rng.uniform(0.3, 0.7)), "objects": objects},
        "device": device,
        "impairments": {"snr_db": float(rng.uniform(20, 35))},
        "people": people,
        "max_people": 3,
        "events": events,
    }
    if nodes == 1:
        scenario["placement"] = placement
    else:
        scenario["nodes"] = placement["nodes"]
    return {"split": split, "index": int(index), "seed": seed, "room_size": room, "device": device,
            "placement": placement, "n_people": n_people, "scenario": scenario}


def draws(split: str, n: int, *, start: int = 0, **kwargs: Any) -> list[dict[str, Any]]:
    """Draws ``start .. start + n`` of ``split`` (see :func:`draw`)."""
    return [draw(split, i, **kwargs) for i in range(start, start + n)]


__all__ = ["DEVICES", "PLACEMENT_CELLS", "SPLITS", "draw", "draws", "room_split"]
