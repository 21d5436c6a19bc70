"""The physical CSI simulator with ground truth (see ``docs/simulator.md``).

::

    from wifi_densepose import sim

    data = sim.generate(scenario="walk", seed=0, duration_s=10, device="intel5300", fps=100)
    data["csi"]           # complex64 (n, n_tx, n_rx, n_sub), card units like a raw recording
    data["keypoints_2d"]  # float32 (n, max_people, 17, 2), top-down floor frame in [0, 1]
    sim.scenarios()       # ["empty", "walk", "two_people", ...]

A scenario is a name, a dict (the JSON description in ``docs/simulator.md``), a
:class:`Scenario`, or a path to a ``.toml``/``.json`` file.

Coordinate frame: 3-D keypoints in metres in the room frame (origin at a floor corner,
x along the width, y along the depth, z up); 2-D keypoints, boxes and dense-pose maps in
the top-down floor frame ``u = x / width``, ``v = y / depth``.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _native
from .errors import ArgumentTypeError, InvalidArgumentError, PathNotFoundError

SimulationError = _native.SimulationError

#: The activity labels, indexed by the ``activity`` arrays (defined once, in the engine).
ACTIVITIES: tuple[str, ...] = _native.ACTIVITIES


@dataclass
class Scenario:
    """A scenario description; fields mirror the JSON keys (``None``: the default)."""

    people: list[dict[str, Any]] = field(default_factory=list)
    room: dict[str, Any] | None = None
    device: str | dict[str, Any] | None = None
    placement: dict[str, Any] | None = None
    channel: dict[str, Any] | None = None
    impairments: dict[str, Any] | None = None
    name: str = "custom"
    seed: int = 0
    duration_s: float = 10.0
    fps: float = 100.0
    max_people: int | None = None
    nodes: list[dict[str, Any]] | None = None
    events: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def named(cls, name: str, duration_s: float = 10.0) -> Scenario:
        d = json.loads(_native.sim_scenario(name, duration_s))
        return cls(**d)


def scenarios() -> list[str]:
    """Names of the built-in scenarios."""
    return list(_native.sim_scenarios())


def devices() -> list[str]:
    """Names of the device profiles."""
    return list(_native.sim_devices())


def _load(path: str) -> dict[str, Any]:
    try:
        if path.endswith(".toml"):
            with open(path, "rb") as f:
                return tomllib.load(f)
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except ValueError as e:  # TOMLDecodeError, JSONDecodeError: both ValueErrors, as this is
        raise SimulationError(f"{path}: {e}") from e


def _scenario_arg(scenario: str | dict[str, Any] | Scenario) -> str:
    if isinstance(scenario, Scenario):
        return json.dumps(scenario.to_dict())
    if isinstance(scenario, dict):
        return json.dumps(scenario)
    if isinstance(scenario, str):
        if scenario.endswith((".toml", ".json")) and os.path.exists(scenario):
            return json.dumps(_load(scenario))
        return scenario
    raise ArgumentTypeError(f"scenario must be a name, a dict or a Scenario, not {type(scenario).__name__}")


def _seed_arg(seed: int) -> int:
    """A seed the simulator takes (an unsigned 64-bit integer), or a clear error."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ArgumentTypeError(f"seed must be an integer, not {type(seed).__name__}")
    if not 0 <= int(seed) < 2**64:
        raise InvalidArgumentError(f"seed must be an integer from 0 to 2**64 - 1, not {seed}")
    return int(seed)


def describe(
    scenario: str | dict[str, Any] | Scenario = "walk",
    *,
    seed: int | None = None,
    duration_s: float | None = None,
    device: str | None = None,
    fps: float | None = None,
) -> dict[str, Any]:
    """The full description of a scenario, every default filled in."""
    return json.loads(_native.sim_spec(_scenario_arg(scenario), None if seed is None else _seed_arg(seed), duration_s, device, fps))


def generate(
    scenario: str | dict[str, Any] | Scenario = "walk",
    seed: int | None = None,
    duration_s: float | None = None,
    device: str | None = None,
    fps: float | None = None,
    *,
    dense_pose_grid: int = 32,
    threads: int = 0,
) -> dict[str, Any]:
    """Simulates a scenario; returns a dict of numpy arrays and metadata.

    Arrays (``n`` received packets, ``P`` person slots): ``csi`` complex64
    ``(n, n_tx, n_rx, n_sub)``, ``timestamps`` float64, ``sequence`` uint64 (gaps are
    lost packets), ``rssi`` float32, ``keypoints_3d`` ``(n, P, 17, 3)``, ``keypoints_2d``
    ``(n, P, 17, 2)``, ``boxes`` ``(n, P, 4)``, ``present`` bool ``(n, P)``,
    ``activity`` int8 ``(n, P)`` (index into :data:`ACTIVITIES`, -1 absent),
    ``occupancy`` uint8 ``(n,)``, ``falls`` ``(n_falls, 4)`` (person, start, impact,
    standing again or NaN), and with ``dense_pose_grid > 0`` ``dense_part`` uint8,
    ``dense_person`` int8, ``dense_u``/``dense_v`` float32, each ``(n, grid, grid)``.
    ``breathing_rate_bpm`` / ``breathing_depth_mm`` float64 ``(P,)`` (NaN padding).
    Metadata: ``subcarriers``, ``frequencies``, ``room_size``, ``device``, ``channel`` (the
    device's 802.11 channel number), ``fps``,
    ``placement`` (``tx_position``, ``rx_position``, ``tx_axis``, ``rx_axis``),
    ``tx_antennas``/``rx_antennas`` ``(n, 3)`` positions, ``keypoint_names``,
    ``activity_names``, ``spec`` (the full description, JSON). Overrides given here
    (seed, duration, device, fps) replace the description's.

    A scenario listing ``nodes`` returns the multi-node shape instead: no top-level
    ``csi``/``rssi``; the truth arrays above on the packet grid (every packet sent, at
    ``timestamps = sequence / fps``, true time); and ``nodes``, a list with per node
    ``name``, ``csi``, ``timestamps`` (the node's own clock), ``true_time``,
    ``sequence`` (row into the truth arrays; gaps are that node's lost packets),
    ``rssi``, ``clock_offset_s``, ``clock_drift_ppm``, ``subcarriers``,
    ``frequencies``, ``device``, ``channel``, ``placement``, ``tx_antennas``, ``rx_antennas``.
    """
    return _native.sim_generate(
        _scenario_arg(scenario), None if seed is None else _seed_arg(seed), duration_s, device, fps, dense_pose_grid, threads
    )


#: Where a device can be mounted: the four walls (x = 0, x = W, y = 0, y = D) and the four
#: corners ((0, 0), (W, 0), (W, D), (0, D)).
MOUNTS = ("wall_x0", "wall_xw", "wall_y0", "wall_yd", "corner_00", "corner_w0", "corner_wd", "corner_0d")


def _mount(rng: np.random.Generator, w: float, d: float, h: float, mount: int, u: float,
           z: float) -> tuple[list[float], list[float]]:
    """Position and array axis of a device on ``mount`` at fraction ``u`` along the wall
    and height ``z``: walls hold the array along the wall, 5-15 cm off it; corners hold
    it across the corner (perpendicular to the corner's bisector), 10-25 cm off both walls."""
    inset = float(rng.uniform(0.05, 0.15))
    if mount < 4:
        along = 0.3 + u * ((d if mount < 2 else w) - 0.6)
        if mount == 0:
            return [inset, along, z], [0.0, 1.0, 0.0]
        if mount == 1:
            return [w - inset, along, z], [0.0, 1.0, 0.0]
        if mount == 2:
            return [along, inset, z], [1.0, 0.0, 0.0]
        return [along, d - inset, z], [1.0, 0.0, 0.0]
    c = float(rng.uniform(0.1, 0.25))
    x, y = [(c, c), (w - c, c), (w - c, d - c), (c, d - c)][mount - 4]
    sx, sy = [(1, 1), (-1, 1), (-1, -1), (1, -1)][mount - 4]  # bisector, into the room
    r = float(np.sqrt(0.5))
    return [x, y, z], [-sy * r, sx * r, 0.0]


def random_placement(
    room_size: list[float] | tuple[float, ...],
    seed: int,
    *,
    nodes: int = 1,
    shared_tx: bool = False,
    cells: int | None = None,
) -> dict[str, Any]:
    """A random valid placement for a room, drawn from ``seed``.

    Each device goes on one of the :data:`MOUNTS` (a wall or a corner), anywhere along
    it, at a height uniform in 0.3 m .. ``height - 0.3`` m (floor to ceiling mounts);
    transmitter and receiver at least 1.5 m apart. With ``nodes == 1`` the result is a
    scenario ``placement`` (``tx_position``, ``rx_position``, ``tx_axis``, ``rx_axis``);
    otherwise ``{"nodes": [{"placement": ...}, ...]}`` for a scenario's ``nodes`` (with
    ``shared_tx`` every node hears the same transmitter). ``cells`` (0 or 1) keeps every
    device in one half of a checkerboard over (mount, tenth of the wall, 0.4 m of height):
    the placements of one half never coincide with the other's, which is how
    :mod:`wifi_densepose.sim_dataset` keeps held-out placements unseen. A corner has no
    "along", so the corners all belong to half 1: half 0 draws walls only.
    """
    w, d, h = (float(v) for v in room_size)
    rng = np.random.default_rng([int(seed), 0x91ACE])

    def device() -> tuple[list[float], list[float]]:
        for _ in range(1000):
            mount = int(rng.integers(len(MOUNTS)))
            u = float(rng.random())
            z = float(rng.uniform(0.3, max(0.31, h - 0.3)))
            if cells is not None:
                cell = mount + int(u * 10) + int(z / 0.4)
                # A corner device's place does not depend on u, so the checkerboard cannot
                # split the corners: every corner at every height would be in both halves.
                # They all belong to half 1 (the held-out half); half 0 never has one.
                if cell % 2 != cells or (cells == 0 and mount >= 4):
                    continue
            return _mount(rng, w, d, h, mount, u, z)
        raise InvalidArgumentError("no mount found")  # unreachable for cells in (0, 1)

    def link(tx: tuple[list[float], list[float]] | None) -> dict[str, Any]:
        for _ in range(1000):
            t = tx if tx is not None else device()
            r = device()
            if np.linalg.norm(np.subtract(t[0], r[0])) >= 1.5:
                return {"tx_position": t[0], "rx_position": r[0], "tx_axis": t[1], "rx_axis": r[1]}
        raise InvalidArgumentError(f"room {room_size} too small for a 1.5 m link")

    if nodes == 1:
        return link(None)
    tx = device() if shared_tx else None
    return {"nodes": [{"placement": link(tx)} for _ in range(nodes)]}


def simulate_to_file(
    scenario: str | dict[str, Any] | Scenario,
    seed: int,
    duration_s: float,
    out_path: str | os.PathLike[str],
    *,
    device: str | None = None,
    fps: float | None = None,
) -> str:
    """Simulates a scenario and writes every array of :func:`generate` to an ``.npz``;
    :func:`load` reads it back as :func:`generate` returned it.

    Everything is stored as plain arrays (``np.load`` needs no ``allow_pickle``): a dict
    (``placement``) as its JSON text, and a multi-node run's ``nodes`` as
    ``nodes/<i>/<key>`` entries. Returns the path written."""
    data = generate(scenario, seed=seed, duration_s=duration_s, device=device, fps=fps)
    out = os.fspath(out_path)
    np.savez_compressed(out, **_npz_entries(data))  # type: ignore[arg-type]  # numpy's stub types **kwds oddly
    return out if out.endswith(".npz") else out + ".npz"


#: The entry listing which of an ``.npz``'s entries hold JSON text (dicts).
_JSON_KEYS = "__json__"


def _npz_entries(data: dict[str, Any]) -> dict[str, np.ndarray]:
    entries: dict[str, np.ndarray] = {}
    as_json: list[str] = []

    def put(key: str, value: Any) -> None:
        if isinstance(value, dict):
            entries[key] = np.asarray(json.dumps(value))
            as_json.append(key)
        else:
            entries[key] = value if isinstance(value, np.ndarray) else np.asarray(value)

    for key, value in data.items():
        if key == "nodes":
            for i, node in enumerate(value):
                for k, v in node.items():
                    put(f"nodes/{i}/{k}", v)
        else:
            put(key, value)
    entries[_JSON_KEYS] = np.asarray(as_json, dtype=str)
    return entries


#: Entries :func:`generate` returns as lists (kept lists by :func:`load`).
_LIST_KEYS = frozenset({"room_size", "keypoint_names", "activity_names"})


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run :func:`simulate_to_file` (``wifi-densepose simulate``) wrote, as
    :func:`generate` returned it: arrays as arrays, scalars as Python numbers and strings,
    ``placement`` as a dict, a multi-node run's ``nodes`` as a list of dicts; ready for
    :func:`wifi_densepose.analyze`. Raises :class:`PathNotFoundError` for a missing file
    and :class:`InvalidArgumentError` for a file that is not such a run."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise PathNotFoundError(f"{path}: no such file")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InvalidArgumentError(f"{path}: not an .npz that simulate wrote ({e})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise InvalidArgumentError(f"{path}: one array, not an .npz of a simulated run")
    with z:
        as_json = set(z[_JSON_KEYS].tolist()) if _JSON_KEYS in z.files else set()
        out: dict[str, Any] = {}
        nodes: dict[int, dict[str, Any]] = {}
        for key in z.files:
            if key == _JSON_KEYS:
                continue
            try:
                a = z[key]
            except ValueError:
                # Written before December 2026: dicts were pickled, which np.load refuses
                # to run unasked (it can execute code).
                raise InvalidArgumentError(
                    f"{path}: entry {key!r} is a pickled object (a file from an older "
                    "version); simulate it again, or load it with np.load(..., "
                    "allow_pickle=True) if you trust the file") from None
            value: Any = a
            if key in as_json:
                value = json.loads(str(a))
            elif a.ndim == 0:
                value = a.item()
            elif key in _LIST_KEYS:
                value = a.tolist()
            parts = key.split("/")
            if len(parts) == 3 and parts[0] == "nodes" and parts[1].isdigit():
                nodes.setdefault(int(parts[1]), {})[parts[2]] = value
            else:
                out[key] = value
    if nodes:
        out["nodes"] = [nodes[i] for i in sorted(nodes)]
    if "timestamps" not in out:
        raise InvalidArgumentError(f"{path}: no 'timestamps': not a run simulate wrote")
    return out


__all__ = [
    "ACTIVITIES",
    "Scenario",
    "SimulationError",
    "describe",
    "devices",
    "generate",
    "load",
    "random_placement",
    "scenarios",
    "simulate_to_file",
]
