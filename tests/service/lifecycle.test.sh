#!/usr/bin/env bash
# tests/service/lifecycle.test.sh - the process around the API, black-box on
# 127.0.0.1: 429 + Retry-After when the waiting queue is full, a client that
# disconnects (waiting, non-streaming and mid-stream) is cancelled and its KV
# blocks freed, SIGTERM drains (running request completes, new ones 503,
# exit 0), the drain deadline cancels what is left, /health 503 with
# progress during a throttled gs:// load then 200, and a failed load exits
# non-zero with a clear log line. Polls have generous bounds (noisy box);
# nothing asserts a duration.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/service/lib.sh
T=$(mktemp -d)
FPID=
CPIDS=()
cleanup() {
	for p in "${CPIDS[@]}"; do kill "$p" 2>/dev/null; done
	[ -n "$FPID" ] && kill "$FPID" 2>/dev/null
	kill_all
	rm -rf "$T"
}
trap cleanup EXIT
if [ ! -x "$BIN" ]; then echo "FAIL life_setup: $BIN not built"; exit 1; fi
MODEL=$(model_tiny) || { echo "FAIL life_setup: cannot make the tiny model"; exit 1; }

# poll_metric NAME VALUE SECONDS: waits until the metric equals VALUE
poll_metric() {
	for _ in $(seq $(( $3 * 20 ))); do
		[ "$(metric "$1")" = "$2" ] && return 0
		sleep 0.05
	done
	return 1
}
LONG='{"prompt":"Once upon a time","max_tokens":4000,"ignore_eos":true,"temperature":0}'
post_bg() { # OUT BODY [PATH]: curl in the background, pid in CPID
	curl -s -o "$1" -w '%{http_code}' -H 'Content-Type: application/json' --data "$2" \
		"http://127.0.0.1:$SPORT${3:-/v1/completions}" >"$1.code" 2>/dev/null &
	CPID=$!
	CPIDS+=("$CPID")
}

# --- queue full -> 429, and disconnects ---
start_serve "$T/log" --model "$MODEL" --max-num-seqs 1 --max-queue 1 --shutdown-timeout 120 --log-format text --log-level debug
if ! wait_ready 60; then echo "FAIL life_setup: server not ready"; tail -20 "$T/log"; exit 1; fi
U="http://127.0.0.1:$SPORT"
post_bg "$T/a" "$LONG"; A=$CPID
poll_metric 'vllm:num_requests_running' 1 30
check queue_first_running $? "running=$(metric vllm:num_requests_running)"
post_bg "$T/b" "$LONG"; B=$CPID
poll_metric 'vllm:num_requests_waiting' 1 30
check queue_second_waiting $? "waiting=$(metric vllm:num_requests_waiting)"
code=$(curl -s -o "$T/c" -D "$T/ch" -w '%{http_code}' -H 'Content-Type: application/json' --data "$LONG" "$U/v1/completions")
[ "$code" = 429 ] && grep -qi '^Retry-After: [0-9]' "$T/ch" && jq -e '.error.code == 429 and .error.type == "RateLimitError"' "$T/c" >/dev/null
check queue_full_429 $? "code $code $(cat "$T/c")"
kill "$B" 2>/dev/null	# the waiting client leaves
poll_metric 'vllm:num_requests_waiting' 0 10
check disconnect_waiting_cancelled $? "waiting=$(metric vllm:num_requests_waiting)"
kill "$A" 2>/dev/null	# the running (non-streaming) client leaves
poll_metric 'vllm:num_requests_running' 0 10
check disconnect_running_cancelled $? "running=$(metric vllm:num_requests_running)"
total=$(metric gemma_run_kv_blocks)
poll_metric gemma_run_kv_blocks_free "$total" 10
check disconnect_blocks_freed $? "free $(metric gemma_run_kv_blocks_free) of $total"
# mid-stream: read a few events, then go away
curl -s -N -H 'Content-Type: application/json' \
	--data '{"prompt":"Once","max_tokens":4000,"ignore_eos":true,"stream":true}' "$U/v1/completions" >"$T/s" &
S=$!; CPIDS+=("$S")
for _ in $(seq 200); do [ "$(grep -c '^data: ' "$T/s")" -ge 3 ] && break; sleep 0.05; done
grep -q '^data: ' "$T/s"
check stream_started $? "no events"
kill "$S" 2>/dev/null
poll_metric 'vllm:num_requests_running' 0 10
check disconnect_midstream_cancelled $? "running=$(metric vllm:num_requests_running)"
poll_metric gemma_run_kv_blocks_free "$total" 10
check disconnect_midstream_blocks_freed $? "free $(metric gemma_run_kv_blocks_free) of $total"
grep -q 'finished_reason="abort"' <(curl -s "$U/metrics") &&
	[ "$(curl -s "$U/metrics" | awk '/^vllm:request_success_total\{finished_reason="abort"/ {print $2}')" -ge 3 ]
check disconnect_counted_abort $? "$(curl -s "$U/metrics" | grep request_success_total)"
# a client that pipelines bytes mid-stream (so the EOF watch stops) and then
# resets: evhttp itself finds the dead socket on a write and hands the
# request back (the "write failed" path of on_close)
python3 - "$SPORT" <<'PY'
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
body = b'{"prompt":"Once","max_tokens":4000,"ignore_eos":true,"stream":true}'
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
got = b""
while got.count(b"data: ") < 3:
    got += s.recv(4096)
s.sendall(b"GET /hea")
time.sleep(0.3)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
PY
poll_metric 'vllm:num_requests_running' 0 10
check disconnect_write_error_cancelled $? "running=$(metric vllm:num_requests_running)"
poll_metric gemma_run_kv_blocks_free "$total" 10
check disconnect_write_error_blocks_freed $? "free $(metric gemma_run_kv_blocks_free) of $total"
grep -q "client gone (write failed)" "$T/log" && grep -q "client gone (connection closed)" "$T/log"
check disconnect_both_close_paths $? "$(grep 'client gone' "$T/log")"
# the server still serves
code=$(curl -s -o "$T/d" -w '%{http_code}' -H 'Content-Type: application/json' --data '{"prompt":"Hi","max_tokens":3}' "$U/v1/completions")
[ "$code" = 200 ]
check serves_after_disconnects $? "code $code"

# --- SIGTERM: the running request completes, new ones get 503, exit 0 ---
post_bg "$T/e" '{"prompt":"Once upon a time","max_tokens":100,"ignore_eos":true,"temperature":0}'; E=$CPID
poll_metric 'vllm:num_requests_running' 1 30
kill -TERM "$SPID"
sleep 0.1
code=$(curl -s -o "$T/h" -w '%{http_code}' "$U/health")
[ "$code" = 503 ] && jq -e '.status == "draining"' "$T/h" >/dev/null
check drain_health_503 $? "code $code $(cat "$T/h")"
code=$(curl -s -o "$T/n" -w '%{http_code}' -H 'Content-Type: application/json' --data '{"prompt":"Hi"}' "$U/v1/completions")
[ "$code" = 503 ] && jq -e '.error.code == 503' "$T/n" >/dev/null
check drain_new_request_503 $? "code $code $(cat "$T/n")"
wait "$E"
[ "$(cat "$T/e.code")" = 200 ] && jq -e '.usage.completion_tokens == 100 and .choices[0].finish_reason == "length"' "$T/e" >/dev/null
check drain_inflight_completes $? "code $(cat "$T/e.code") $(head -c 200 "$T/e")"
wait "$SPID"; rc=$?
[ $rc -eq 0 ] && grep -q "drained; exiting" "$T/log"
check drain_exit_0 $? "exit $rc; $(tail -3 "$T/log")"

# --- the drain deadline cancels what is left; still exit 0 ---
start_serve "$T/log2" --model "$MODEL" --shutdown-timeout 0.5 --log-format text
if ! wait_ready 60; then echo "FAIL life_setup: server 2 not ready"; tail -20 "$T/log2"; exit 1; fi
post_bg "$T/f" '{"prompt":"Once","max_tokens":8000,"ignore_eos":true}'; F=$CPID
curl -s -N -H 'Content-Type: application/json' --data '{"prompt":"Once","max_tokens":8000,"ignore_eos":true,"stream":true}' \
	"http://127.0.0.1:$SPORT/v1/completions" >"$T/g" & G=$!; CPIDS+=("$G")
poll_metric 'vllm:num_requests_running' 2 30
kill -TERM "$SPID"
wait "$F"; wait "$G"
wait "$SPID"; rc=$?
[ $rc -eq 0 ] && [ "$(cat "$T/f.code")" = 503 ] && jq -e '.error.code == 503' "$T/f" >/dev/null
check drain_deadline_cancels $? "exit $rc, code $(cat "$T/f.code") $(head -c 200 "$T/f")"
tail -c 300 "$T/g" | grep -q '"error"' && tail -c 20 "$T/g" | grep -q 'data: \[DONE\]'
check drain_deadline_stream_error_chunk $? "$(tail -c 300 "$T/g")"

# --- /health 503 with progress during a throttled gs:// load, then 200 ---
python3 tests/fixtures/gcs_server.py --dir "$MODEL" --bucket b --prefix m/tiny --portfile "$T/fport" \
	--control '{"bw": 8000000}' 2>"$T/fixture.log" &
FPID=$!
# the fixture computes CRC32C of every file in Python first (~10 s for the tiny model)
for _ in $(seq 1800); do [ -s "$T/fport" ] && break; sleep 0.05; done
FP=$(cat "$T/fport" 2>/dev/null)
if [ -z "$FP" ]; then fail health_during_load "fixture did not start"; else
	STORAGE_EMULATOR_HOST="127.0.0.1:$FP" start_serve "$T/log3" --model gs://b/m/tiny --gcs-anonymous \
		--loader-workers 2 --log-format text
	seen=0 ok=0 mseen=0
	for _ in $(seq 1200); do
		code=$(curl -s -o "$T/h" -w '%{http_code}' "http://127.0.0.1:$SPORT/health")
		if [ "$code" = 503 ] && jq -e '(.status == "loading" or .status == "warming_up") and (.bytes_loaded|type) == "number" and (.bytes_total|type) == "number" and has("gbps") and has("eta_s")' "$T/h" >/dev/null; then
			seen=1
			# a generation request is refused while loading (it may land just after ready)
			c=$(curl -s -o "$T/r" -w '%{http_code}' -H 'Content-Type: application/json' --data '{"prompt":"x","max_tokens":1}' "http://127.0.0.1:$SPORT/v1/completions")
			[ "$c" = 503 ] && jq -e '.error.code == 503' "$T/r" >/dev/null && ok=1
			curl -s "http://127.0.0.1:$SPORT/metrics" >"$T/lm"
			grep -q '^gemma_run_ready{model_name="tiny"} 0' "$T/lm" && grep -q '^gemma_run_load_bytes{' "$T/lm" && mseen=1
		fi
		[ "$code" = 200 ] && break
		kill -0 "$SPID" 2>/dev/null || break
		sleep 0.05
	done
	[ $seen = 1 ] && [ $ok = 1 ] && [ "$code" = 200 ]
	check health_503_while_loading_then_200 $? "seen 503=$seen, requests refused=$ok, last $code $(cat "$T/h"); $(tail -3 "$T/log3")"
	[ $mseen = 1 ] && curl -s "http://127.0.0.1:$SPORT/metrics" | grep -q '^gemma_run_ready{model_name="tiny"} 1'
	check metrics_during_load $? "gemma_run_ready 0 / load bytes not seen while loading"
	kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null
fi

# --- a failed load exits non-zero with a clear line ---
start_serve "$T/log4" --model "$T/no-such-model" --log-format json
wait "$SPID"; rc=$?
[ $rc -ne 0 ] && grep '"severity":"ERROR"' "$T/log4" | grep -q "startup failed: cannot load model '$T/no-such-model'"
check load_failure_exits_nonzero $? "exit $rc; $(tail -3 "$T/log4")"
# SIGTERM during a (slow) load exits 0 promptly
if [ -z "$FP" ]; then fail sigterm_during_load_exit_0 "no fixture"; exit 0; fi
STORAGE_EMULATOR_HOST="127.0.0.1:$FP" start_serve "$T/log5" --model gs://b/m/tiny --gcs-anonymous --loader-workers 1
for _ in $(seq 200); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SPORT/health")" = 503 ] && break; sleep 0.05; done
kill -TERM "$SPID"
wait "$SPID"; rc=$?
[ $rc -eq 0 ] && grep -q "exiting during the load" "$T/log5"
check sigterm_during_load_exit_0 $? "exit $rc"
