#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, Rust tests, Python tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh
# Debian packages the tests drive: a headless Chromium (browser tests), redis-server (the
# broker several nodes share) and nginx (the WebSocket reverse proxy in front of them). The
# tests start their own instances on free loopback ports; none is left running.
has() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ]; }
missing=""
has chromium || has chromium-browser || missing="$missing chromium"
has redis-server || missing="$missing redis-server"
has nginx || missing="$missing nginx"
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
  # The packages' own services are not needed (and may not start in a container).
  for svc in redis-server nginx; do
    $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
fi
bash scripts/check-layers.sh
cargo fmt --all -- --check
cargo clippy --all-targets --features python -- -D warnings
.venv/bin/ruff check python tests benches
.venv/bin/mypy python/wifi_densepose --ignore-missing-imports
cargo test
.venv/bin/python -m pytest -q tests
