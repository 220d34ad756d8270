#!/usr/bin/env bash
# tests/service/gpu_9b.test.sh - the service on the GPU with a 9b-shaped model:
# `mkmodel --preset 9b` (18.5 GB of random bf16
# weights) served with --backend cuda; /health turns 200, completions (plain,
# streamed, 8 at once) answer with the asked number of tokens, sampling runs
# on the device, and /metrics shows the 9B memory plan.
# Runs only under `make test-gpu` (GR_TEST_BACKEND=cuda); elsewhere every case
# is reported SKIP by name. Needs ~19 GB of free disk for the model (made in
# $GR_9B_DIR or a temp dir, deleted at the end unless GR_9B_DIR was given).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/service/lib.sh
CASES="gpu9b_health gpu9b_completion gpu9b_stream gpu9b_concurrent gpu9b_device_sampling gpu9b_memory_plan"
if [ "$TEST_BACKEND" != cuda ]; then
	for c in $CASES; do echo "SKIP $c: needs GR_TEST_BACKEND=cuda (make test-gpu on a GPU machine)"; done
	exit 0
fi
T=$(mktemp -d)
M=${GR_9B_DIR:-$T/m9b}
trap 'kill_all; rm -rf "$T"' EXIT
setup_fail() { for c in $CASES; do echo "FAIL $c: $1"; done; exit 1; }
if [ ! -f "$M/config.json" ]; then
	"$BUILD/mkmodel" --preset 9b --out "$M" >"$T/mk.log" 2>&1 || setup_fail "mkmodel --preset 9b failed: $(tail -1 "$T/mk.log")"
fi

start_serve "$T/log" --model "$M" --served-model-name g9 --max-model-len 4096 \
	--max-num-seqs 16 --log-format text
if wait_ready 400; then pass gpu9b_health; else
	tail -20 "$T/log"
	setup_fail "server not ready within 400 s"
fi
U="http://127.0.0.1:$SPORT"

# post BODY -> response body in $T/out, status in $code
post() { code=$(curl -s -o "$T/out" -w '%{http_code}' -H 'Content-Type: application/json' -d "$1" "$U/v1/completions"); }

post '{"model":"g9","prompt":"The capital of France is","max_tokens":32,"temperature":0,"ignore_eos":true}'
n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["usage"]["completion_tokens"])' "$T/out" 2>/dev/null)
check gpu9b_completion "$([ "$code" = 200 ] && [ "$n" = 32 ]; echo $?)" "status $code, completion_tokens '$n': $(head -c 300 "$T/out")"

curl -sN -H 'Content-Type: application/json' \
	-d '{"model":"g9","prompt":"Once upon a time","max_tokens":16,"temperature":0.8,"seed":3,"stream":true,"ignore_eos":true}' \
	"$U/v1/completions" >"$T/sse"
chunks=$(grep -c '^data: {' "$T/sse")
check gpu9b_stream "$([ "$chunks" -ge 16 ] && tail -n 2 "$T/sse" | grep -q '^data: \[DONE\]'; echo $?)" \
	"$chunks data chunks, last lines: $(tail -n 2 "$T/sse" | tr '\n' ' ')"

pids=()
for i in 1 2 3 4 5 6 7 8; do
	curl -s -o "$T/c$i" -w '%{http_code}\n' -H 'Content-Type: application/json' \
		-d "{\"model\":\"g9\",\"prompt\":\"Request $i:\",\"max_tokens\":24,\"temperature\":1,\"top_p\":0.9,\"seed\":$i,\"ignore_eos\":true}" \
		"$U/v1/completions" >"$T/code$i" &
	pids+=("$!")
done
wait "${pids[@]}"	# not a bare wait: the server is a background job too
ok=0
for i in 1 2 3 4 5 6 7 8; do
	[ "$(cat "$T/code$i")" = 200 ] && grep -q '"completion_tokens":24' "$T/c$i" && ok=$((ok + 1))
done
check gpu9b_concurrent "$([ "$ok" = 8 ]; echo $?)" "$ok of 8 concurrent requests gave 200 with 24 tokens"

check gpu9b_device_sampling "$(grep -q 'sampling on the device' "$T/log"; echo $?)" \
	"the engine log does not say 'sampling on the device': $(grep 'engine:' "$T/log" | head -2)"

curl -s "$U/metrics" >"$T/metrics"
plan=$(python3 - "$T/metrics" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
w = re.search(r'^gemma_run_memory_bytes\{kind="weights"[^}]*\} (\S+)$', text, re.M)
kv = re.search(r'^gemma_run_kv_cache_tokens(\{[^}]*\})? (\S+)$', text, re.M)
w = float(w.group(1)) if w else 0
kv = float(kv.group(2)) if kv else 0
print("weights %.4g bytes, KV %d tokens" % (w, kv))
sys.exit(0 if 18.0e9 < w < 19.0e9 and kv >= 4096 else 1)
PY
)
check gpu9b_memory_plan $? "$plan (want weights ~18.5e9 bytes, >= 4096 KV tokens)"
