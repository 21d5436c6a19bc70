#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, Rust tests, Python tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh
# The browser tests drive a real headless Chromium (Debian's package).
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
cargo fmt --all -- --check
cargo clippy --all-targets --features python -- -D warnings
.venv/bin/ruff check python tests benches
.venv/bin/mypy python/wifi_densepose --ignore-missing-imports
cargo test
.venv/bin/python -m pytest -q tests
