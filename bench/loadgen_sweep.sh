#!/usr/bin/env bash
# bench/loadgen_sweep.sh - the "classic Cloud Run experiment" shape: constant
# open-loop rates one after another (10, 20, 30 req/s for 10 minutes each on a
# real L4 service), streaming, reported as one markdown table row per rate.
#
# Against a real service (docs/SCALING.md):
#   bench/loadgen_sweep.sh --target "$URL/v1/completions" --rates "10 20 30" \
#     --duration 10m --max-tokens 128 --model google/gemma-2-9b-it \
#     --header "Authorization: Bearer $(gcloud auth print-identity-token)"
#
# Locally, scaled down to the CPU demo model (starts and stops the server itself,
# with service.yaml's engine settings; --max-inflight stands in for Cloud Run's
# containerConcurrency on one instance):
#   bench/loadgen_sweep.sh --serve-demo --rates "3 6 9" --duration 60s --max-tokens 16
#
# Output: one JSON report per rate in $OUT (default build/sweep) and the table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-$BUILD/sweep}
target=""
rates="3 6 9"
duration=60s
max_tokens=16
model=""
max_inflight=12
serve_demo=0
headers=()
while [ $# -gt 0 ]; do
	case "$1" in
	--target) target="$2"; shift 2 ;;
	--rates) rates="$2"; shift 2 ;;
	--duration) duration="$2"; shift 2 ;;
	--max-tokens) max_tokens="$2"; shift 2 ;;
	--model) model="$2"; shift 2 ;;
	--max-inflight) max_inflight="$2"; shift 2 ;;
	--header) headers+=(--header "$2"); shift 2 ;;
	--serve-demo) serve_demo=1; shift ;;
	-h|--help) sed -n '2,18p' "$0"; exit 0 ;;
	*) echo "loadgen_sweep.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
mkdir -p "$OUT"

srv_pid=""
cleanup() { if [ -n "$srv_pid" ]; then kill "$srv_pid" 2>/dev/null || true; wait "$srv_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

if [ "$serve_demo" -eq 1 ]; then
	export BUILD
	tools/demo-model.sh "$BUILD/demo-model"
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
	t0=$(date +%s.%N)
	MAX_NUM_SEQS=8 MAX_QUEUE=8 MAX_NUM_BATCHED_TOKENS=2048 LOG_FORMAT=text \
		"$BUILD/gemma-run" serve --model "$BUILD/demo-model" --backend cpu --host 127.0.0.1 \
		--port "$port" >"$OUT/serve.log" 2>&1 &
	srv_pid=$!
	code=000
	for _ in $(seq 1 3000); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health" || true)
		[ "$code" = 200 ] && break
		sleep 0.01
	done
	t1=$(date +%s.%N)
	[ "$code" = 200 ] || { echo "server did not become healthy; see $OUT/serve.log" >&2; exit 1; }
	echo "cold start (exec -> /health 200): $(python3 -c "print(round($t1 - $t0, 3))") s"
	target="http://127.0.0.1:$port/v1/completions"
	model=${model:-demo-model}
fi
[ -n "$target" ] || { echo "loadgen_sweep.sh: --target or --serve-demo" >&2; exit 2; }
model=${model:-google/gemma-2-9b-it}

python3 -c 'import json,sys; print(json.dumps({"model": sys.argv[1],
  "prompt": "Write a short story about a lighthouse keeper who finds a message in a bottle.",
  "max_tokens": int(sys.argv[2]), "min_tokens": int(sys.argv[2]), "temperature": 0.8, "stream": True}))' \
	"$model" "$max_tokens" >"$OUT/body.json"

for r in $rates; do
	echo "rate $r req/s for $duration ..." >&2
	"$BUILD/loadgen" --target "$target" --rate "$r" --duration "$duration" --stream \
		--body "$OUT/body.json" "${headers[@]}" --max-inflight "$max_inflight" \
		--timeout 600s --drain 60s --json >"$OUT/rate-$r.json"
done

python3 - "$OUT" "$rates" <<'EOF'
import json, sys
out, rates = sys.argv[1], sys.argv[2].split()
print("| offered req/s | sent | ok | dropped (> max-inflight) | errors | achieved ok/s | p50 / p95 / p99 latency | p50 / p95 TTFT | p50 / p95 ITL | output tok/s |")
print("|---|---|---|---|---|---|---|---|---|---|")
ms = lambda s: "%.0f ms" % (s * 1000) if s < 10 else "%.1f s" % s
for r in rates:
    j = json.load(open("%s/rate-%s.json" % (out, r)))
    l, s = j["latency_s"], j.get("stream", {})
    t, i = s.get("ttft_s", {}), s.get("itl_s", {})
    print("| %s | %d | %d | %d | %d | %.2f | %s / %s / %s | %s / %s | %s / %s | %.1f |" % (
        r, j["sent"], j["success"], j["dropped"], j["errors"], j["throughput"],
        ms(l["p50"]), ms(l["p95"]), ms(l["p99"]), ms(t.get("p50", 0)), ms(t.get("p95", 0)),
        ms(i.get("p50", 0)), ms(i.get("p95", 0)), s.get("output_tokens_per_s", 0)))
EOF
