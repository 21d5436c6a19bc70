"""The loop the separability experiments share: run each named condition, time it, print
the table, optionally keep the figures as JSON."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any


def run_conditions(names: str, run_condition: Callable[[str, int, float], dict[str, Any]],
                   clips: int, duration_s: float, table: Callable[[list[dict[str, Any]]], str],
                   json_path: str | None) -> list[dict[str, Any]]:
    """``run_condition(name, clips, duration_s)`` for each comma-separated name."""
    results = []
    for name in names.split(","):
        t0 = time.time()
        results.append(run_condition(name.strip(), clips, duration_s))
        results[-1]["seconds"] = round(time.time() - t0, 1)
        print(f"{name}: {results[-1]['seconds']} s", flush=True)
    print(table(results))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(results, f, indent=1)
    return results
