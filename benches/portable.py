"""Result files without machine paths.

``benches/results/*.json`` are committed, so they must read the same whoever ran the
benchmark: every absolute path inside the checkout (a model's source, the interpreter, an
error message naming a file) becomes relative to the repository root, and anything under
the home directory is written from ``~``. Strings are rewritten wherever they appear,
keys included, so a path buried in a message is caught too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _prefixes() -> list[tuple[str, str]]:
    # The longest prefix first: the checkout usually lies under the home directory.
    out = [(str(ROOT) + "/", ""), (str(ROOT), ".")]
    home = str(Path.home())
    if home not in ("", "/"):
        out += [(home + "/", "~/"), (home, "~")]
    return out


def strip_paths(value: Any) -> Any:
    """``value`` (JSON-like) with machine paths made relative (see the module's doc)."""
    if isinstance(value, str):
        for prefix, repl in _prefixes():
            value = value.replace(prefix, repl)
        return value
    if isinstance(value, dict):
        return {strip_paths(k): strip_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strip_paths(v) for v in value]
    return value


def write_result(path: Path, result: Any) -> None:
    """Writes ``result`` as indented JSON, machine paths stripped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(strip_paths(result), indent=1) + "\n")
