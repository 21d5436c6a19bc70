#!/usr/bin/env bash
# The layering rule (docs/architecture.md): the stages below the server never import it.
# src/{csi,dsp,sim,model,track,analytics,pipeline,sensing,events} speak crate::events; the
# server implements it. Fails, naming each offending line, when a stage reaches up.
set -euo pipefail
cd "$(dirname "$0")/.."
stages="src/csi src/dsp src/sim src/model src/track src/analytics src/pipeline src/sensing src/events"
existing=""
for d in $stages; do [ -d "$d" ] && existing="$existing $d"; done
# shellcheck disable=SC2086
if hits=$(grep -rnE '(crate|wifi_densepose)::server\b|super::super::server\b' $existing --include='*.rs'); then
  echo "error: a stage imports the server (the server depends on the stages, never the reverse):" >&2
  echo "$hits" >&2
  exit 1
fi
echo "layers: no stage imports crate::server"
