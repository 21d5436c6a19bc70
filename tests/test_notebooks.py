"""The notebooks run, top to bottom, on a fresh kernel, as a new user would run them."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "commit notebooks with outputs stripped"
    NotebookClient(nb, timeout=120, kernel_name="python3").execute(cwd=str(path.parent))
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors


def _notebook_code(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "code")


def _readme_code() -> str:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = text.split("```python\n")[1:]
    return "\n\n".join(b.split("```", 1)[0] for b in blocks)


@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS] + ["README.md"])
def test_user_code_type_checks(name, tmp_path):
    """mypy passes on what users copy: every notebook's code and the README's examples.
    Top-level ``await`` is what notebooks do, so that one check is off."""
    import subprocess
    import sys

    code = _readme_code() if name == "README.md" else _notebook_code(NOTEBOOKS[0].parent / name)
    assert code.strip()
    src = tmp_path / (Path(name).stem + ".py")
    src.write_text(code)
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--ignore-missing-imports", "--no-error-summary",
         "--disable-error-code", "top-level-await", "--cache-dir", str(tmp_path / "cache"),
         str(src)],
        check=False, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
