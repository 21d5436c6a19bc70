#!/usr/bin/env bash
# Installs the Debian packages the tests drive, with apt-get (sudo when not root): a
# headless Chromium (browser tests), redis-server (the broker several nodes share) and
# nginx (the WebSocket reverse proxy in front of them). CI (.ci/run) runs this before
# scripts/test.sh; on your own machine run it once, or install the three yourself.
# Only what is missing is installed. The tests start their own instances on free
# loopback ports; the packages' own services are stopped again.
set -euo pipefail
has() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ]; }
missing=""
has chromium || has chromium-browser || missing="$missing chromium"
has redis-server || missing="$missing redis-server"
has nginx || missing="$missing nginx"
[ -n "$missing" ] || exit 0
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
echo "ci-deps: installing$missing" >&2
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The packages' own services are not needed (and may not start in a container).
for svc in redis-server nginx; do
  $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
