"""Model input features: windows of conditioned CSI at the contract's fixed shape.

``x`` float32 ``(N, 2, W, F)``: channel 0 normalized amplitude, channel 1 sanitized
phase (radians), ``W`` = 32 consecutive packets (oldest first), ``F`` = 3 links x 30
subcarriers = 90: the first transmit chain to three receive antennas (Intel 5300 layout).
Conditioning is :func:`wifi_densepose.dsp.condition` (sanitize, normalize, resample to
30 subcarriers, causal Hampel), see ``docs/model.md``.
"""

from __future__ import annotations

import numpy as np

from . import dsp
from .errors import InvalidArgumentError

WINDOW = 32
N_SUB = 30
N_LINKS = 3
FEATURES = N_LINKS * N_SUB
HOP_TRAIN = 8


def condition_recording(csi: np.ndarray, rssi=None) -> np.ndarray:
    """``(n, n_tx, n_rx, n_sub)`` complex64 -> ``(n, 2, F)`` float32 per-packet features."""
    csi = np.ascontiguousarray(csi, dtype=np.complex64)
    n = csi.shape[0]
    if csi.shape[2] != N_LINKS:
        raise InvalidArgumentError(
            f"the model expects {N_LINKS} receive antennas, got {csi.shape[2]}"
        )
    csi = np.ascontiguousarray(csi[:, :1])  # the first transmit chain only
    amp, ph, _ = dsp.condition(csi, None, n_subcarriers=N_SUB, motion_window=0)
    feats = np.stack([amp.reshape(n, -1), ph.reshape(n, -1)], axis=1)
    return np.nan_to_num(feats).astype(np.float32)


def windows(feats: np.ndarray, hop: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 2, F)`` per-packet features -> windows ``(N, 2, W, F)`` and each window's last index."""
    n = feats.shape[0]
    ends = np.arange(WINDOW - 1, n, hop)
    idx = ends[:, None] - np.arange(WINDOW - 1, -1, -1)[None, :]
    x = feats[idx]  # (N, W, 2, F)
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3)), ends


def windows_from_recording(csi: np.ndarray, rssi=None, hop: int = 1):
    """Conditions a recording and cuts it into model windows (see :func:`windows`)."""
    return windows(condition_recording(csi, rssi), hop)
