#!/usr/bin/env bash
# The layering rules (docs/architecture.md, "Layers"):
#   python/ -> app/ -> server/ -> events/
#              app/ -> stages -> events/
# 1. The stages (src/{csi,dsp,sim,model,track,analytics,pipeline,sensing,events}) never
#    import the server or the application: they speak crate::events, the server implements it.
# 2. The server (src/server) imports no stage and not the application: of the crate it uses
#    crate::events and itself only, so it stays the WebSocket server and nothing else; what
#    composes the stages with it lives in src/app.
# Comment lines are skipped (a doc link to the layer above is not a dependency).
# Fails, naming each offending line.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
# Lines of Rust under $@ matching the pattern, comment lines left out.
code_hits() {
  local pattern=$1
  shift
  grep -rnE "$pattern" "$@" --include='*.rs' | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' || true
}
stages="src/csi src/dsp src/sim src/model src/track src/analytics src/pipeline src/sensing src/events"
existing=""
for d in $stages; do [ -d "$d" ] && existing="$existing $d"; done
# shellcheck disable=SC2086
hits=$(code_hits '(crate|wifi_densepose)::(server|app)\b|super::super::(server|app)\b' $existing)
if [ -n "$hits" ]; then
  echo "error: a stage imports the server or the app (they depend on the stages, never the reverse):" >&2
  echo "$hits" >&2
  status=1
fi
# Every crate path the server names must be crate::server or crate::events.
hits=$(code_hits '(crate|wifi_densepose)::[a-z_]+' src/server | grep -vE '(crate|wifi_densepose)::(server|events)\b' || true)
# A line naming both an allowed and a forbidden module still counts: check each path.
more=$(code_hits '(crate|wifi_densepose)::(app|csi|dsp|sim|model|track|analytics|pipeline|sensing|python)\b' src/server)
hits=$(printf '%s\n%s\n' "$hits" "$more" | sed '/^$/d' | sort -u)
if [ -n "$hits" ]; then
  echo "error: the server imports a stage or the app (it knows crate::events only; compose in src/app):" >&2
  echo "$hits" >&2
  status=1
fi
[ "$status" -eq 0 ] && echo "layers: no stage imports the server or the app; the server imports no stage"
exit "$status"
