"""Pure-Python encoder and a tiny sender for the ESP32 node UDP frame (docs/udp-frame.md).

For tests and simple nodes; the receiver and decoder are in the Rust engine.
"""

from __future__ import annotations

import socket
import struct
import time

import numpy as np

from .errors import InvalidArgumentError

MAGIC = b"WDPC"
VERSION = 1
HEADER = struct.Struct("<4sBBHBBHHHIQbbH")
UNKNOWN_DBM = -128


def _dbm(value: float | None) -> int:
    return UNKNOWN_DBM if value is None else int(max(-127, min(127, round(value))))


def encode_frame(
    node_id: int,
    csi: np.ndarray,
    *,
    sequence: int = 0,
    timestamp_us: int | None = None,
    channel: int = 0,
    bandwidth_mhz: int = 0,
    rssi: float | None = None,
    noise: float | None = None,
) -> bytes:
    """One datagram for ``csi`` shaped (n_tx, n_rx, n_sub), complex; values are rounded
    and clamped to int8."""
    csi = np.asarray(csi)
    if csi.ndim != 3 or 0 in csi.shape:
        raise InvalidArgumentError(
            f"csi must be a non-empty (n_tx, n_rx, n_sub) array, got shape {csi.shape}"
        )
    n_tx, n_rx, n_sub = csi.shape
    if timestamp_us is None:
        timestamp_us = time.time_ns() // 1000
    header = HEADER.pack(
        MAGIC,
        VERSION,
        0,
        node_id,
        n_tx,
        n_rx,
        n_sub,
        channel,
        bandwidth_mhz,
        sequence & 0xFFFFFFFF,
        timestamp_us,
        _dbm(rssi),
        _dbm(noise),
        0,
    )
    pairs = np.empty(csi.shape + (2,), dtype=np.int8)
    pairs[..., 0] = np.clip(np.rint(csi.real), -128, 127)
    pairs[..., 1] = np.clip(np.rint(csi.imag), -128, 127)
    return header + pairs.tobytes()


def send_frames(host: str, port: int, node_id: int, frames, interval_s: float = 0.0) -> int:
    """Sends each (n_tx, n_rx, n_sub) array of ``frames`` as one datagram, numbering
    them from 0; returns how many were sent."""
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for seq, csi in enumerate(frames):
            sock.sendto(encode_frame(node_id, csi, sequence=seq), (host, port))
            sent += 1
            if interval_s:
                time.sleep(interval_s)
    return sent
