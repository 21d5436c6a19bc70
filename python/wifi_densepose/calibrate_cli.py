"""``wifi-densepose calibrate``: learn an empty room from a recording of it.

A calibration (``docs/sensing.md``, "Calibration" and "The empty room's static channel")
holds the empty room's noise thresholds and its static channel. A live server learns one
with ``Server.calibrate``; this command learns one from a recording of the empty room
(any format :func:`wifi_densepose.read_csi` reads, or a ``wifi-densepose simulate``
``.npz``), and writes it as JSON for a serve config's ``calibration = "FILE"``,
``Server.set_calibration`` or ``analyze(..., calibration=...)``. The recording must come
from the same card session as the data it will judge (a restarted card draws new gains).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import numpy as np

from .errors import InvalidArgumentError


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("recording", help="a recording of the empty room (.dat, .pcap, .csv, "
                                      ".csi, or a simulate .npz)")
    ap.add_argument("--seconds", type=float, default=30.0,
                    help="seconds of the recording to learn from (default 30; at least 6.4)")
    ap.add_argument("--start", type=float, default=0.0,
                    help="skip this many seconds of the recording first (default 0)")
    ap.add_argument("--out", required=True, help="where to write the calibration (JSON)")
    ap.add_argument("--format", help="the recording's format (default: detected)")


def _frames(path: str, fmt: str | None) -> tuple[np.ndarray, np.ndarray]:
    if path.endswith(".npz"):
        with np.load(path) as z:
            if "csi" not in z or "timestamps" not in z:
                raise InvalidArgumentError(f"{path}: an .npz needs 'csi' and 'timestamps' "
                                           "(as wifi-densepose simulate writes)")
            return np.asarray(z["csi"]), np.asarray(z["timestamps"], dtype=np.float64)
    from . import read_csi

    rec = read_csi(path, format=fmt) if fmt else read_csi(path)
    if len(rec) == 0:
        raise InvalidArgumentError(f"{path}: the recording holds no frames")
    # A stray frame of another shape now and then (Intel 5300 logs): the recording's main
    # shape, as the live pipeline keeps.
    keep = np.asarray(rec.dominant_indices)
    return np.asarray(rec.csi_dominant()), np.asarray(rec.timestamps, dtype=np.float64)[keep]


def learn(path: str, seconds: float, start: float = 0.0,
          fmt: str | None = None) -> dict[str, Any]:
    """The calibration of the empty room recorded in ``path`` (``seconds`` from ``start``);
    raises :class:`InvalidArgumentError` when it cannot be learned, with the reason."""
    from . import sensing

    if not (seconds >= 6.4 and np.isfinite(seconds)):
        raise InvalidArgumentError("--seconds must be at least 6.4 (the presence window)")
    csi, ts = _frames(path, fmt)
    if len(ts) == 0:
        raise InvalidArgumentError(f"{path}: no frames")
    keep = ts >= ts[0] + max(start, 0.0)
    csi, ts = csi[keep], ts[keep]
    if len(ts) == 0 or ts[-1] - ts[0] < seconds:
        span = float(ts[-1] - ts[0]) if len(ts) else 0.0
        raise InvalidArgumentError(f"{path}: {span:.1f} s of frames from {start:g} s on, "
                                   f"fewer than the {seconds:g} s asked for")
    r = sensing.sense(csi, ts, calibrate_s=seconds)
    if "calibration" not in r:
        raise InvalidArgumentError(f"{path}: not calibrated: "
                                   f"{r.get('calibration_refused', 'no calibration came out')}")
    return dict(r["calibration"])


def run(a: argparse.Namespace) -> int:
    try:
        c = learn(a.recording, a.seconds, a.start, a.format)
    except InvalidArgumentError as e:
        print(f"wifi-densepose calibrate: {e}", file=sys.stderr)
        return 1
    tmp = f"{a.out}.tmp"
    with open(tmp, "w") as f:
        json.dump(c, f)
        f.write("\n")
    os.replace(tmp, a.out)
    background = c.get("background")
    print(f"calibrated on {c['seconds']:.1f} s ({c['frames']} frames, CSI {tuple(c['shape'])}, "
          f"{c['mode']}): motion threshold {c['motion_threshold']:.2f}, presence threshold "
          f"{c['presence_threshold']:.2f}", flush=True)
    if background is not None and c.get("static_threshold"):
        print(f"  static channel: {len(background)} amplitudes, threshold "
              f"{10 * np.log10(c['static_threshold']):.1f} dB of its power "
              f"(the empty room varied by {10 * np.log10(max(c['static_max'], 1e-30)):.1f} dB)",
              flush=True)
    else:
        print("  static channel: not learned (fewer than 3 whole seconds)", flush=True)
    print(f"wrote {a.out}", flush=True)
    return 0
