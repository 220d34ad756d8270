#!/usr/bin/env bash
# tests/loader/serve_verified.test.sh - serve says which checks its weights
# passed (issue 17): mkmodel writes crc32c.json, so its model is
# "crc32c-manifest" in /health; the same weights without the manifest are
# "sizes-only", and the start-up log says once that they were not verified
# end to end.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/service/lib.sh
T=$(mktemp -d)
trap 'kill_all; rm -rf "$T"' EXIT

m=$(model_tiny) || { echo "FAIL serve_verified_setup: mkmodel failed"; exit 1; }
if [ -s "$m/crc32c.json" ] && grep -q '"model.safetensors"' "$m/crc32c.json"; then pass mkmodel_writes_manifest
else fail mkmodel_writes_manifest "no crc32c.json entry for model.safetensors in $m"; fi

# health LOG MODEL LEVEL NAME
health() {
	start_serve "$1" --model "$2"
	if ! wait_ready 120; then fail "$4" "server not ready"; tail -5 "$1" | sed 's/^/    | /'; return; fi
	h=$(curl -s "http://127.0.0.1:$SPORT/health")
	if echo "$h" | grep -q "\"weights_verified\":\"$3\""; then pass "$4"; else fail "$4" "/health: $h"; fi
	kill -TERM "$SPID"; wait "$SPID" 2>/dev/null
}
health "$T/a.log" "$m" crc32c-manifest health_says_crc32c_manifest
mkdir "$T/nomani"
for f in "$m"/*; do [ "$(basename "$f")" = crc32c.json ] || ln -s "$(realpath "$f")" "$T/nomani/"; done
health "$T/b.log" "$T/nomani" sizes-only health_says_sizes_only
n=$(grep -c 'weights NOT verified end to end (sizes-only)' "$T/b.log")
if [ "$n" -eq 1 ]; then pass startup_log_says_not_verified_once
else fail startup_log_says_not_verified_once "$n lines in the log"; fi
grep -q 'weights NOT verified' "$T/a.log" && fail verified_model_no_warning "a verified model logged 'NOT verified'"
grep -q 'weights NOT verified' "$T/a.log" || pass verified_model_no_warning
