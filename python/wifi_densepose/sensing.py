"""The sensor on its own: motion, presence and breathing from CSI, any device.

The live pipeline runs the same engine code in every environment (``docs/sensing.md``);
:func:`sense` runs it over an array of frames you already have, for scoring and plots::

    from wifi_densepose import sim, sensing
    data = sim.generate("sit_stand", seed=1, duration_s=30)
    s = sensing.sense(data["csi"], data["timestamps"])
    s["presence"].mean(), s["motion_detected"].mean()
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _native
from .errors import InvalidArgumentError

__all__ = ["sense"]


def sense(
    csi: Any,
    timestamps: Any,
    *,
    calibrate_s: float | None = None,
    calibration: dict | None = None,
    align_chains: bool = True,
    channel: int | None = None,
) -> dict[str, Any]:
    """Runs a fresh sensor over ``csi`` (complex, ``(n, n_tx, n_rx, n_sub)``) at
    ``timestamps`` (seconds, length ``n``) and returns its state after every frame:
    ``motion_ratio`` (measured change over noise; 1 = still), ``motion_level`` (0-1),
    ``motion_detected``, ``presence``, ``presence_score`` (breathing-band power over
    noise; NaN until 2 s were seen), ``breathing_rate_bpm`` (NaN when not measurable),
    ``mode`` (how the features were formed for this layout). ``calibrate_s`` learns the
    empty room from the first seconds of the input (``calibration`` in the result, or
    ``calibration_refused`` with the reason); ``calibration`` applies a saved one.
    ``align_chains=False`` leaves a stepping card's quarter-turn chain steps in
    (:func:`wifi_densepose.dsp.align_chains`): only to see what they cost. ``channel`` is
    the frames' 802.11 channel number where you know it (a ``sim.generate`` result's
    ``channel``; a recording's frames carry theirs, ``recording[0].channel``): on a
    one-antenna link the breathing rate is read differently at 5 GHz than at 2.4 GHz or
    on an unknown band, and at 2.4 GHz motion is also read on a longer time scale, the
    slower Doppler of the longer wave (``docs/sensing.md``)."""
    array = np.ascontiguousarray(csi, dtype=np.complex64)
    if array.ndim != 4:
        raise InvalidArgumentError(f"csi must be (n, n_tx, n_rx, n_sub), got shape {array.shape}")
    ts = np.ascontiguousarray(timestamps, dtype=np.float64)
    if ts.ndim != 1 or len(ts) != len(array):
        raise InvalidArgumentError(f"timestamps must be 1-D with {len(array)} values, got shape {ts.shape}")
    if calibrate_s is not None and not (np.isfinite(calibrate_s) and calibrate_s > 0):
        # NaN or a negative number silently calibrated over the default span.
        raise InvalidArgumentError(f"calibrate_s must be a positive number of seconds, not {calibrate_s!r}")
    given = None if calibration is None else dict(calibration)
    if channel is not None and (isinstance(channel, bool) or not isinstance(channel, (int, np.integer))
                                or not 0 <= int(channel) <= 65535):
        raise InvalidArgumentError(f"channel must be an 802.11 channel number (0-65535) or None, got {channel!r}")
    return _native.sense(array, ts, calibrate_s, given, bool(align_chains),
                         None if channel is None else int(channel))
