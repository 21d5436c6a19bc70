#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, Rust tests, Python tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets --features python -- -D warnings
.venv/bin/ruff check python tests benches
cargo test
.venv/bin/python -m pytest -q tests
