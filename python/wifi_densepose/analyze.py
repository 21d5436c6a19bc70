"""Scoring a recording: the live pipeline over a whole input, as fast as the CPU allows.

::

    import wifi_densepose as wdp

    messages = wdp.analyze("../shared/data/csi/intel5300_walk_1590161182.dat")
    poses = [m["data"] for m in messages if m["type"] == "pose_data"]

    data = wdp.sim.generate("fall", seed=3, duration_s=20)
    falls = [m for m in wdp.analyze(data) if m["type"] == "activity_event"]

:func:`analyze` feeds every frame through the same environment task, model stage,
inference worker, tracker and analytics as a server's environment (there is no second
implementation), and returns what the server would publish for that environment, in
order: every ``pose_data`` (unthrottled: the analysis stage's own 30 a second of source
clock), ``tracking_update``, ``activity_event``, ``occupancy_update``, ``hardware_event``
and ``system_event``. The only difference from a live run is the clock: nothing is
reported for silence between frames (no ``source_stopped``), and there is no monitor
(``performance_update``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import _native
from .errors import ArgumentTypeError, InvalidArgumentError
from .model import Model
from .server import _resolve_model

#: Packets per second assumed for an array given without timestamps (the model's rate).
DEFAULT_RATE_HZ = 100.0

#: The most of a clock's steps that may go back or repeat (see ``_timestamps``).
MAX_BACK_SHARE = 0.01

#: The largest real or imaginary part a CSI value may have: no tool writes more (16-bit
#: I/Q, or scaled to a few thousand), and a squared 1e19 overflows float32.
MAX_CSI_MAGNITUDE = 1e15

Progress = Callable[[int, int], object]


def _stderr_progress(done: int, total: int) -> None:
    end = "\n" if done >= total else ""
    print(f"\ranalyze: {done}/{total} frames ({100 * done / max(total, 1):.0f} %)",
          end=end, file=sys.stderr, flush=True)


def _room(room: tuple[float, float] | None) -> tuple[float, float] | None:
    if room is None:
        return None
    try:
        width, depth = (float(x) for x in room)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"room must be (width, depth) in metres, not {room!r}") from None
    if not (np.isfinite(width) and np.isfinite(depth) and width > 0 and depth > 0):
        raise InvalidArgumentError(f"room must be two positive numbers of metres, not {room!r}")
    return width, depth


def _csi_array(csi: Any) -> np.ndarray:
    a = np.asarray(csi)
    if not np.iscomplexobj(a):
        raise ArgumentTypeError(
            f"csi must be a complex array (n, n_tx, n_rx, n_sub), not dtype {a.dtype}"
        )
    if a.ndim != 4:
        raise InvalidArgumentError(
            f"csi must have 4 dimensions (n, n_tx, n_rx, n_sub), got shape {a.shape}"
        )
    if 0 in a.shape:
        raise InvalidArgumentError(f"csi has an empty axis: shape {a.shape}")
    out = np.ascontiguousarray(a, dtype=np.complex64)
    # NaN, infinity, or values past complex64's range: the conditioner would refuse every
    # window of them, and nothing but an info event would say why.
    # Magnitudes past MAX_CSI_MAGNITUDE are no CSI tool's and overflow float32 once squared.
    flat = out.reshape(len(out), -1).view(np.float32)
    finite = np.isfinite(flat).all(axis=1) & (np.abs(flat).max(axis=1) <= MAX_CSI_MAGNITUDE)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise InvalidArgumentError(
            f"csi holds non-finite values (NaN, infinity, or magnitudes past "
            f"{MAX_CSI_MAGNITUDE:g}) in {len(bad)} of {len(out)} frames, the first at frame "
            f"{int(bad[0])}")
    return out


def _timestamps(timestamps: Any, n: int) -> np.ndarray:
    if timestamps is None:
        return np.arange(n, dtype=np.float64) / DEFAULT_RATE_HZ
    ts = np.ascontiguousarray(timestamps, dtype=np.float64)
    if ts.ndim != 1 or len(ts) != n:
        raise InvalidArgumentError(f"{ts.size} timestamps for {n} frames: give one per frame")
    if not np.all(np.isfinite(ts)):
        raise InvalidArgumentError("timestamps must be finite seconds")
    # A clock that steps back now and then (a device restarting) is realigned and said so
    # by the live path (`clock_realigned`); one that mostly does not go forward is no
    # clock, and its frames came out as a handful of pose_data, silently.
    back = np.diff(ts) <= 0
    if back.sum() > max(1, MAX_BACK_SHARE * len(back)):
        i = int(np.flatnonzero(back)[0]) + 1
        raise InvalidArgumentError(
            f"timestamps must increase: {int(back.sum())} of {len(back)} steps go back or "
            f"repeat (the first: frame {i} at {float(ts[i]):.9g} s after frame {i - 1} at "
            f"{float(ts[i - 1]):.9g} s); a clock stepping back now and then is realigned, one "
            "this disordered is not a clock")
    return ts


def _is_sim_result(source: Any) -> bool:
    return isinstance(source, Mapping) and "csi" in source and "timestamps" in source


def analyze(
    source: str | os.PathLike[str] | _native.Recording | np.ndarray | Mapping[str, Any],
    *,
    device: str | None = None,
    room: tuple[float, float] | None = None,
    model: Model | str | os.PathLike[str] | None = "default",
    timestamps: Any = None,
    progress: Progress | bool | None = None,
    placement: Mapping[str, Any] | None = None,
    calibration: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Runs the live pipeline over ``source``; returns the messages the server would
    publish for that environment, oldest first, each ``{"type", "timestamp", "data"}``
    (``timestamp``: when it was published, RFC 3339; ``data`` as the wire carries it,
    ``environment_id`` ``"analyze"``).

    ``source`` is one of:

    - a recording's path (read with :func:`wifi_densepose.read_csi`, format detected),
      or a :class:`~wifi_densepose.Recording`: its frames with their own timestamps
      (frames after a corruption are not in it; ``Recording.errors`` says why);
    - a CSI array ``(n, n_tx, n_rx, n_sub)`` (complex; complex64 is used), with
      ``timestamps`` in seconds (default: 100 packets a second from 0);
    - a :func:`wifi_densepose.sim.generate` result: its CSI, timestamps and sequence
      numbers, and its room (so positions are in metres of that room) and device; for a
      multi-node run (``nodes``), every node is a source of the room with its own clock,
      the frames merged in the order the nodes sampled the channel (``docs/sensing.md``).

    ``room`` is the floor's (width, depth) in metres (default: the simulated run's room,
    else 6 x 5 as for a server's environment); ``device`` names the CSI's device profile,
    as :meth:`Server.add_environment` takes it. ``model`` is ``"default"`` (the bundled
    model), a path to your own ONNX model, a loaded :class:`~wifi_densepose.Model`, or
    ``None`` (no inference: the sensor's own ``pose_data``, ``model_version``
    ``"sensing"``, with sources and health).
    ``placement`` says where the link's devices are, in metres in the room frame (as a
    scenario's ``placement``: ``tx_position``, ``rx_position``, and optionally
    ``tx_axis``/``rx_axis`` (default ``[0, 1, 0]``), ``antenna_spacing_m`` (default half
    the carrier's wavelength) and ``room_height`` (default 2.8)); it needs ``device``.
    With it, a moving person is placed from the link itself (``docs/sensing.md``,
    "Position"), on links with at least two antennas on one side. A simulated run
    brings its own.
    ``calibration`` is a calibration :meth:`Server.calibrate` (or
    :func:`wifi_densepose.sensing.sense` with ``calibrate_s``) returned, applied before the
    first frame as :meth:`Server.set_calibration` would: the room's own thresholds, and
    with them its empty static channel, against which a still person shows
    (``docs/sensing.md``, "The empty room's static channel"). It must be for the same CSI
    shape (``InvalidArgumentError`` otherwise).
    ``progress`` is called as ``progress(frames_done, frames_total)`` a few times a second
    (``True``: a line on stderr); an exception it raises stops the run and propagates, as
    does Ctrl-C.

    Raises ``TypeError``/``ValueError`` for a source it cannot take (wrong dtype or
    shape, timestamps of the wrong length), :class:`~wifi_densepose.ModelLoadError` for a
    model that cannot be loaded, and the errors of :func:`~wifi_densepose.read_csi` for a
    file it cannot read.
    """
    resolved = _resolve_model(model)
    native_model = None if resolved is None else resolved._native
    room = _room(room)
    callback: Progress | None = _stderr_progress if progress is True else (progress or None)
    if callback is not None and not callable(callback):
        raise ArgumentTypeError("progress must be a callable(done, total), True or None")
    common: dict[str, Any] = {"model": native_model, "device": device, "progress": callback}
    if placement is not None:
        common["placement"] = _placement(placement)
    if calibration is not None:
        if not isinstance(calibration, Mapping):
            raise ArgumentTypeError("calibration must be a dict that calibrate returned, or None")
        common["calibration"] = dict(calibration)

    if isinstance(source, (str, os.PathLike)):
        source = _native.read_csi(os.fspath(source))
    if isinstance(source, _native.Recording):
        if timestamps is not None:
            raise ArgumentTypeError("a recording carries its own timestamps; do not pass timestamps")
        if len(source) == 0:
            raise InvalidArgumentError(f"{source.path}: the recording holds no frames")
        _check_calibration_shape(common, tuple(source.shapes[0]) if source.shapes else None)
        return _native.analyze_recording(source, room=room, **common)
    if isinstance(source, Mapping) and "nodes" in source and "csi" not in source:
        if timestamps is not None:
            raise ArgumentTypeError("a simulated run carries its own timestamps; do not pass timestamps")
        if placement is not None:
            raise ArgumentTypeError("a multi-node simulated run carries each node's placement; "
                                    "do not pass placement")
        return _analyze_nodes(source, room, common)
    if isinstance(source, Mapping) and _is_sim_result(source):
        if timestamps is not None:
            raise ArgumentTypeError("a simulated run carries its own timestamps; do not pass timestamps")
        csi = _csi_array(source["csi"])
        ts = _timestamps(source["timestamps"], len(csi))
        _check_calibration_shape(common, csi.shape[1:])
        if room is None and "room_size" in source:
            width, depth = (float(x) for x in list(source["room_size"])[:2])
            room = _room((width, depth))
        if device is None and isinstance(source.get("device"), str):
            common["device"] = source["device"]
        spec = json.loads(source["spec"]) if "spec" in source else {}
        if placement is None and isinstance(source.get("placement"), Mapping):
            height = (spec.get("room") or {}).get("size", [0, 0, 2.8])[2]
            common["placement"] = _placement({**source["placement"], "room_height": height})
        name = spec.get("name")
        sequence = rssi = None
        if "sequence" in source:  # lost packets show as gaps, as from a live simulation
            sequence = np.ascontiguousarray(source["sequence"], dtype=np.uint64)
        if "rssi" in source:
            rssi = np.ascontiguousarray(source["rssi"], dtype=np.float32)
        return _native.analyze_array(
            csi, ts, sequence=sequence, rssi=rssi, simulated=True,
            source=f"sim:{name or 'custom'}", end_reason="simulation finished", room=room,
            **common,
        )
    if isinstance(source, Mapping):
        raise ArgumentTypeError(
            "a dict source must be a wifi_densepose.sim.generate result (with 'csi' and "
            f"'timestamps'); this one has keys {sorted(source)[:8]}"
        )
    if isinstance(source, np.ndarray) or hasattr(source, "__array__"):
        csi = _csi_array(source)
        ts = _timestamps(timestamps, len(csi))
        _check_calibration_shape(common, csi.shape[1:])
        return _native.analyze_array(csi, ts, room=room, **common)
    raise ArgumentTypeError(
        "source must be a recording path, a Recording, a CSI array (n, n_tx, n_rx, n_sub) "
        f"or a sim.generate result, not {type(source).__name__}"
    )


def _placement(placement: Mapping[str, Any]) -> dict[str, Any]:
    """Every key the engine reads, defaults filled, values checked."""
    if not isinstance(placement, Mapping):
        raise ArgumentTypeError(f"placement must be a dict, not {type(placement).__name__}")
    known = {"tx_position", "rx_position", "tx_axis", "rx_axis", "antenna_spacing_m", "room_height"}
    unknown = sorted(set(placement) - known)
    if unknown:
        raise InvalidArgumentError(f"placement has unknown keys {unknown}; known: {sorted(known)}")
    out: dict[str, Any] = {}
    for key, default in (("tx_position", None), ("rx_position", None),
                         ("tx_axis", [0.0, 1.0, 0.0]), ("rx_axis", [0.0, 1.0, 0.0])):
        value = placement.get(key, default)
        if value is None:
            raise InvalidArgumentError(f"placement needs {key} (x, y, z in metres)")
        try:
            vec = [float(v) for v in value]
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"placement {key} must be three numbers, not {value!r}") from None
        if len(vec) != 3 or not all(np.isfinite(vec)):
            raise InvalidArgumentError(f"placement {key} must be three finite numbers, not {value!r}")
        out[key] = vec
    for key, fallback in (("antenna_spacing_m", None), ("room_height", 2.8)):
        raw = placement.get(key, fallback)
        number = None if raw is None else float(raw)
        if number is not None and not (np.isfinite(number) and number > 0):
            raise InvalidArgumentError(f"placement {key} must be a positive number, not {raw!r}")
        out[key] = number
    return out


#: Sources' links one room fuses at most (``src/pipeline/placing.rs``, MAX_SOURCE_LINKS).
MAX_SOURCE_LINKS = 16


def _source_placements(placements: Any, known: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """``{source id: placement}`` checked as :func:`_placement` checks one: keys are source
    ids (among ``known`` when the sources are known), at most :data:`MAX_SOURCE_LINKS`."""
    if not isinstance(placements, Mapping):
        raise ArgumentTypeError("source_placements must be a dict of source id to placement, "
                                f"not {type(placements).__name__}")
    if len(placements) > MAX_SOURCE_LINKS:
        raise InvalidArgumentError(f"source_placements: at most {MAX_SOURCE_LINKS} links per "
                                   f"room, not {len(placements)}")
    out: dict[str, dict[str, Any]] = {}
    for source, where in placements.items():
        if not isinstance(source, str) or not source:
            raise ArgumentTypeError(f"source_placements keys are source ids, not {source!r}")
        if known is not None and source not in known:
            raise InvalidArgumentError(f"source_placements: {source!r} is not a source of this "
                                       f"environment (its sources: {', '.join(known)})")
        try:
            out[source] = _placement(where)
        except (ArgumentTypeError, InvalidArgumentError) as e:
            raise type(e)(f"source_placements[{source!r}]: {e}") from None
    return out


def _check_calibration_shape(common: dict[str, Any], shape: tuple[int, ...] | None) -> None:
    """A calibration is for one CSI shape; the sensor would drop one of another shape at the
    first frame, silently: refuse it here instead."""
    calibration = common.get("calibration")
    if calibration is None or shape is None or "shape" not in calibration:
        return  # (one without a shape is refused as not a calibration by the engine)
    made_for = tuple(int(v) for v in calibration.get("shape", ()))
    if made_for != tuple(int(v) for v in shape):
        raise InvalidArgumentError(
            f"the calibration was made for CSI shaped {made_for}, this input is {tuple(shape)}")


def _analyze_nodes(source: Mapping[str, Any], room: tuple[float, float] | None,
                   common: dict[str, Any]) -> list[dict[str, Any]]:
    """A multi-node ``sim.generate`` result: every node a source of one room, its frames
    with its own clock, all merged in the order the nodes sampled the channel."""
    nodes = list(source["nodes"])
    if not nodes:
        raise InvalidArgumentError("the simulated run has no nodes")
    name = json.loads(source["spec"]).get("name") if "spec" in source else None
    csi = [_csi_array(n["csi"]) for n in nodes]
    stamps = [_timestamps(n["timestamps"], len(c)) for n, c in zip(nodes, csi)]
    true_times = [np.asarray(n.get("true_time", t), float) for n, t in zip(nodes, stamps)]
    for k, (tt, c) in enumerate(zip(true_times, csi)):
        if tt.shape != (len(c),):
            # A short one silently dropped most of that node's frames, a long one raised
            # an IndexError.
            raise InvalidArgumentError(f"nodes[{k}]: {tt.size} true_time values for "
                                       f"{len(c)} frames: give one per frame")
    true_time = np.concatenate(true_times)
    order = np.stack([np.concatenate([np.full(len(c), k) for k, c in enumerate(csi)]),
                      np.concatenate([np.arange(len(c)) for c in csi])], axis=1)
    order = np.ascontiguousarray(order[np.argsort(true_time, kind="stable")], dtype=np.uint64)
    if room is None and "room_size" in source:
        width, depth = (float(x) for x in list(source["room_size"])[:2])
        room = _room((width, depth))
    if common.get("device") is None and isinstance(nodes[0].get("device"), str):
        common["device"] = nodes[0]["device"]
    sources = [f"sim:{name or 'custom'}:{n.get('name', k)}" for k, n in enumerate(nodes)]
    placements = None
    if all(isinstance(n.get("placement"), Mapping) for n in nodes):
        # Each node's own link: the localizer fuses those that can place people.
        spec = json.loads(source["spec"]) if "spec" in source else {}
        height = (spec.get("room") or {}).get("size", [0, 0, 2.8])[2]
        placements = [_placement({**n["placement"], "room_height": height}) for n in nodes]
    return _native.analyze_nodes(csi, stamps, sources, order, room=room,
                                 placements=placements, **common)


__all__ = ["DEFAULT_RATE_HZ", "analyze"]
