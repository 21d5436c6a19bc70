"""What a researcher checks first about a CSI recording (``wifi-densepose inspect``).

``inspect_text(path)`` reads the file with the Rust readers and returns a short,
human-readable report: format, packet count, antennas, subcarriers, packet rate,
duration, gaps in the timestamps and any corruption the reader met.
"""

from __future__ import annotations

import warnings
from collections import Counter
from itertools import pairwise
from os import PathLike, fspath
from typing import Any

import numpy as np

from ._native import CsiFormatError, CsiFormatWarning, read_csi

#: An interval longer than this many times the median interval counts as a gap.
GAP_FACTOR = 3.0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _timing_lines(ts: np.ndarray) -> list:
    if len(ts) < 2:
        return ["duration:    - (fewer than two packets)"]
    dt = np.diff(ts)
    duration = float(ts[-1] - ts[0])
    lines = [f"duration:    {duration:.6f} s ({ts[0]:.6f} -> {ts[-1]:.6f})"]
    backwards = int((dt < 0).sum())
    forward = dt[dt > 0]
    if len(forward) == 0:
        lines.append("rate:        - (all timestamps are equal; the clock did not advance)")
        return lines
    median = float(np.median(forward))
    rate = (len(ts) - 1) / duration if duration > 0 else float("nan")
    lines.append(
        f"rate:        {rate:.2f} packets/s (median interval {median * 1e3:.3f} ms,"
        f" {1.0 / median:.2f} Hz)"
    )
    gaps = np.flatnonzero(dt > GAP_FACTOR * median)
    if len(gaps):
        worst = int(gaps[np.argmax(dt[gaps])])
        lines.append(
            f"gaps:        {_plural(len(gaps), 'gap')} longer than {GAP_FACTOR:g}x the median;"
            f" largest {dt[worst] * 1e3:.3f} ms after packet {worst}"
            f" (t = {ts[worst] - ts[0]:.6f} s)"
        )
    else:
        lines.append(f"gaps:        none longer than {GAP_FACTOR:g}x the median interval")
    if backwards:
        lines.append(
            f"warning:     timestamps go backwards {_plural(backwards, 'time')}"
            " (clock wrap or reordering)"
        )
    return lines


def _antenna_order_line(rec: Any) -> str | None:
    """For two-antenna Intel 5300 frames left in the card's RF-chain order (the official
    reader's behaviour): how often the card re-ordered its antennas."""
    two = [f for f in rec if f.shape[1] == 2 and not f.meta.get("permuted", True)]
    if not two:
        return None
    orders = [tuple(f.meta["perm"][:2]) for f in two]
    flips = sum(a != b for a, b in pairwise(orders))
    return (f"antennas:    2 receive antennas in the card's RF-chain order; it re-ordered them"
            f" {_plural(flips, 'time')} (the engine puts them in antenna order;"
            " read_csi(..., antenna_order=True) for arrays)")


def inspect_text(path: str | PathLike, format: str | None = None, **options: Any) -> str:
    """A short report on the recording at ``path`` (format detected unless named;
    ``options`` are ``read_csi``'s, e.g. ``nexmon_chip``). A file that gives no frame
    is reported, not raised: the "problems" line says why and what option fixes it."""
    try:
        with warnings.catch_warnings():
            # The report says the same as the warning would, in its "problems" line.
            warnings.simplefilter("ignore", CsiFormatWarning)
            rec = read_csi(path, format, **options)
    except CsiFormatError as e:
        # No frame at all: the error groups the problems and names the fix.
        return "\n".join(
            [
                f"file:        {fspath(path)}",
                f"format:      {format or '-'}",
                "packets:     0 packets",
                f"problems:    {e}",
            ]
        )
    lines = [f"file:        {rec.path}", f"format:      {rec.format}"]
    lines.append(f"packets:     {_plural(len(rec), 'packet')}")
    shapes = Counter(f.shape for f in rec)
    if shapes:
        ntx = "/".join(str(t) for t in sorted({s[0] for s in shapes}))
        nrx = "/".join(str(r) for r in sorted({s[1] for s in shapes}))
        nsub = "/".join(str(n) for n in sorted({s[2] for s in shapes}))
        lines.append(f"antennas:    Ntx {ntx}, Nrx {nrx}")
        if rec.format == "nexmon":
            # nexmon sends one packet per (core, spatial stream); say which were captured.
            cores = sorted({f.meta["core"] for f in rec})
            streams = sorted({f.meta["spatial"] for f in rec})
            lines.append(
                f"nexmon:      cores {cores}, spatial streams {streams}"
                " (one packet each per received frame)"
            )
            if len(cores) > 1 or len(streams) > 1:
                lines.append(
                    "             the engine senses each core and stream as its own"
                    " one-antenna link (source <name>/core1...)"
                )
        if rec.format == "intel5300":
            line = _antenna_order_line(rec)
            if line:
                lines.append(line)
        lines.append(f"subcarriers: {nsub} subcarriers")
        if len(shapes) > 1:
            listed = ", ".join(f"{s} x{n}" for s, n in shapes.most_common())
            lines.append(
                f"shapes:      {listed} (not uniform: Recording.csi refuses to stack;"
                " csi_dominant() stacks the first)"
            )
        lines.extend(_timing_lines(np.asarray(rec.timestamps)))
        rssi = np.asarray(rec.rssi)
        if np.isfinite(rssi).any():
            good = rssi[np.isfinite(rssi)]
            lines.append(
                f"rssi:        mean {good.mean():.1f}, min {good.min():.1f}, max {good.max():.1f}"
            )
    summary = rec.error_summary
    if summary:
        lines.append(f"problems:    {summary}")
    else:
        lines.append("problems:    none")
    return "\n".join(lines)
