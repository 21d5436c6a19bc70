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
from .errors import ArgumentTypeError

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


def describe(
    scenario: str | dict[str, Any] | Scenario = "walk",
    *,
    seed: int | None = None,
    duration_s: float | None = None,
    device: str | None = None,
    fps: float | None = None,
) -> dict[str, Any]:
    """The full description of a scenario, every default filled in."""
    return json.loads(_native.sim_spec(_scenario_arg(scenario), seed, duration_s, device, fps))


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
    Metadata: ``subcarriers``, ``frequencies``, ``room_size``, ``device``, ``fps``,
    ``keypoint_names``, ``activity_names``, ``spec`` (the full description, JSON).
    Overrides given here (seed, duration, device, fps) replace the description's.
    """
    return _native.sim_generate(
        _scenario_arg(scenario), seed, duration_s, device, fps, dense_pose_grid, threads
    )


def simulate_to_file(
    scenario: str | dict[str, Any] | Scenario,
    seed: int,
    duration_s: float,
    out_path: str | os.PathLike[str],
    *,
    device: str | None = None,
    fps: float | None = None,
) -> str:
    """Simulates a scenario and writes every array of :func:`generate` to an ``.npz``."""
    data = generate(scenario, seed=seed, duration_s=duration_s, device=device, fps=fps)
    arrays = {k: (v if isinstance(v, np.ndarray) else np.asarray(v)) for k, v in data.items()}
    out = os.fspath(out_path)
    np.savez_compressed(out, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds oddly
    return out if out.endswith(".npz") else out + ".npz"


__all__ = [
    "ACTIVITIES",
    "Scenario",
    "SimulationError",
    "describe",
    "devices",
    "generate",
    "scenarios",
    "simulate_to_file",
]
