#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, type and stub checks, Rust tests, Python
# tests. It first runs scripts/setup.sh (a .venv with the Python test dependencies from
# PyPI and the package built into it); it installs nothing outside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# The tests drive a headless Chromium, redis-server and nginx (each started by the tests on
# free loopback ports). This script installs nothing system-wide: scripts/ci-deps.sh does,
# and CI (.ci/run) runs it first. Checked before the build, so a missing one is said at once.
has() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ]; }
missing=""
has chromium || has chromium-browser || missing="$missing chromium"
has redis-server || missing="$missing redis-server"
has nginx || missing="$missing nginx"
if [ -n "$missing" ]; then
  echo "error: the tests need$missing (Debian packages). Install them with" >&2
  echo "  bash scripts/ci-deps.sh      # apt-get install, with sudo when not root" >&2
  echo "or with your system's package manager, then run scripts/test.sh again." >&2
  exit 1
fi
bash scripts/setup.sh
bash scripts/check-layers.sh
cargo fmt --all -- --check
cargo clippy --all-targets --features python -- -D warnings
# The API docs build without a warning (broken links, and missing docs where the lint is on).
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --features python --quiet
.venv/bin/ruff check python tests benches
.venv/bin/mypy python/wifi_densepose --ignore-missing-imports
# The hand-kept stubs (python/wifi_densepose/_native/*.pyi) against the built module.
.venv/bin/python -m mypy.stubtest wifi_densepose
cargo test
.venv/bin/python -m pytest -q tests
