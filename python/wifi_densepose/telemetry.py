"""Measured figures of this process, for performance_update (Linux /proc; elsewhere the
CPU figure comes from os.times and memory is omitted)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass


@dataclass
class Figures:
    wall: float
    cpu: float
    rss_bytes: int | None

    def since(self, before: Figures) -> dict:
        wall = max(self.wall - before.wall, 1e-9)
        out = {"cpu_usage": round(100.0 * (self.cpu - before.cpu) / wall, 2)}
        if self.rss_bytes is not None:
            out["memory_rss_mb"] = round(self.rss_bytes / 2**20, 2)
        return out


def process_figures() -> Figures:
    t = os.times()
    rss = None
    try:
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    return Figures(time.monotonic(), t.user + t.system, rss)
