#!/usr/bin/env bash
# tests/loader/preload_check.test.sh - serve's configuration errors surface
# before the weights stream (ld_opts.check after the loader's metadata stage),
# and the failing /health and /metrics carry the one-line reason.
# The model (two shards of ~1.1 MB, no tokenizer.json) is served from the GCS
# fixture with 1 MiB chunks: a start-up stopped at the check makes 4 media
# requests (config.json, the index, the two shard heads); one that streams
# the weights first (the old order) makes at least 6.
#   preload_bad_max_model_len   serve --max-model-len 999999
#   preload_impossible_plan     activations for 20 M batched tokens: no RAM for the KV cache
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/loader/lib.sh
gcs_fixture_start preload tests/golden/gemma2-tiny-b models/tiny

# serve_fail NAME REGEX ARGS: serve must fail before the weights stream with REGEX in /health and /metrics
serve_fail() {
	local name=$1 re=$2; shift 2
	local sport code="" t0 t1 secs spid rc media
	sport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	control '{}'
	t0=$(date +%s.%N)
	STORAGE_EMULATOR_HOST="127.0.0.1:$PORT" "$BIN" serve --host 127.0.0.1 --port "$sport" --backend cpu \
		--threads 2 --model "gs://test-bucket/models/tiny" --gcs-anonymous --loader-chunk-mb 1 "$@" \
		>"$T/log" 2>&1 &
	spid=$!
	for _ in $(seq 400); do
		code=$(curl -s -o "$T/h" -w '%{http_code}' "http://127.0.0.1:$sport/health")
		[ "$code" = 500 ] && break
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.02
	done
	t1=$(date +%s.%N)
	curl -s "http://127.0.0.1:$sport/metrics" >"$T/m"
	wait "$spid"; rc=$?
	secs=$(echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}')
	media=$(stat_of media)
	echo "# $name: /health 500 after $secs s, $media media requests, exit $rc"
	if [ "$rc" != 1 ] || [ "$code" != 500 ]; then
		failc "$name" "exit $rc, /health $code (want 1 and 500)" "$T/log"
	elif [ "$media" -gt 4 ]; then
		failc "$name" "$media media requests: the weights streamed before the check" "$T/log"
	elif ! awk -v s="$secs" 'BEGIN { exit !(s < 3) }'; then
		failc "$name" "took $secs s to fail" "$T/log"
	elif ! grep -Eq "$re" "$T/h" || grep -q 'see the error above' "$T/h"; then
		echo "FAIL $name: /health body lacks the reason: $(head -c 400 "$T/h")"
	elif ! grep -E '^gemma_run_load_error\{' "$T/m" | grep -Eq "$re.*\"\} 1$"; then
		echo "FAIL $name: no gemma_run_load_error with the reason: $(grep load_error "$T/m")"
	else
		echo "PASS $name ($secs s)"
	fi
}

serve_fail preload_bad_max_model_len 'max-model-len 999999 is longer than the model.s max_position_embeddings' \
	--max-model-len 999999
serve_fail preload_impossible_plan "does not fit in this machine.s RAM" \
	--max-num-batched-tokens 20000000 --max-num-seqs 20000000
