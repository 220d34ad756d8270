#!/usr/bin/env bash
# tests/service/hardening.test.sh - the HTTP edge under hostile or unlucky
# clients, black-box on 127.0.0.1 (issue 17): a raw NUL byte in a JSON string
# is a 400 like \u0000; secrets in the query string are redacted in the
# access log; SIGTERM answers requests still waiting 503 + Retry-After at
# once while the running one finishes; a 429 for an n=3 request that was
# partly queued is not counted as an abort. Polls have generous bounds.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/service/lib.sh
T=$(mktemp -d)
CPIDS=()
cleanup() {
	for p in "${CPIDS[@]}"; do kill "$p" 2>/dev/null; done
	kill_all
	rm -rf "$T"
}
trap cleanup EXIT
if [ ! -x "$BIN" ]; then echo "FAIL hard_setup: $BIN not built"; exit 1; fi
MODEL=$(model_tiny) || { echo "FAIL hard_setup: cannot make the tiny model"; exit 1; }

poll_metric() { # NAME VALUE SECONDS
	for _ in $(seq $(( $3 * 20 ))); do
		[ "$(metric "$1")" = "$2" ] && return 0
		sleep 0.05
	done
	return 1
}
abort_count() {
	curl -s "http://127.0.0.1:$SPORT/metrics" |
		awk '/^vllm:request_success_total\{finished_reason="abort"/ { print $2; exit }'
}

start_serve "$T/log" --model "$MODEL" --max-num-seqs 1 --max-queue 2 --shutdown-timeout 120 \
	--api-key sekrit --log-format json
if ! wait_ready 60; then echo "FAIL hard_setup: server not ready"; tail -20 "$T/log"; exit 1; fi
U="http://127.0.0.1:$SPORT"
AUTH=(-H 'Authorization: Bearer sekrit')

# --- a raw NUL inside a JSON string is refused like \u0000, not cut ---
printf '{"prompt":"ab\0cd","max_tokens":1}' >"$T/nul.json"
code=$(curl -s -o "$T/nul" -w '%{http_code}' "${AUTH[@]}" -H 'Content-Type: application/json' \
	--data-binary @"$T/nul.json" "$U/v1/completions")
[ "$code" = 400 ] && jq -e '.error.code == 400 and (.error.message | test("U\\+0000"))' "$T/nul" >/dev/null
check json_raw_nul_400 $? "code $code $(head -c 300 "$T/nul")"
code=$(curl -s -o "$T/nul2" -w '%{http_code}' "${AUTH[@]}" -H 'Content-Type: application/json' \
	--data-binary @"$T/nul.json" "$U/tokenize")
[ "$code" = 400 ]
check tokenize_raw_nul_400 $? "code $code $(head -c 300 "$T/nul2")"

# --- secrets in the query string never reach the log ---
code=$(curl -s -o /dev/null -w '%{http_code}' "$U/v1/models?key=QSECRET1&x=1&api_key=QSECRET2&Token=QSECRET3&api%5Fkey=QSECRET4")
sleep 0.2
[ "$code" = 401 ] && ! grep -q 'QSECRET' "$T/log" &&
	grep -q '"requestUrl":"/v1/models?key=REDACTED&x=1&api_key=REDACTED&Token=REDACTED&api%5Fkey=REDACTED"' "$T/log"
check query_secrets_redacted "$?" "code $code; $(grep -o '"requestUrl":"[^"]*models[^"]*"' "$T/log" | tail -1)"

# --- a 429 for an n=3 request that was partly queued is not an abort ---
LONG='{"prompt":"Once upon a time","max_tokens":3000,"ignore_eos":true,"temperature":0}'
curl_bg_auth() { # OUT BODY
	curl -s -o "$1" -D "$1.h" -w '%{http_code}' "${AUTH[@]}" -H 'Content-Type: application/json' --data "$2" \
		"$U/v1/completions" >"$1.code" 2>/dev/null &
	CPID=$!
	CPIDS+=("$CPID")
}
curl_bg_auth "$T/a" "$LONG"; A=$CPID
poll_metric 'vllm:num_requests_running' 1 30
check n3_setup_running $? "running=$(metric vllm:num_requests_running)"
before=$(abort_count)
code=$(curl -s -o "$T/n3" -w '%{http_code}' "${AUTH[@]}" -H 'Content-Type: application/json' \
	--data '{"prompt":"Hi","max_tokens":5,"n":3}' "$U/v1/completions")
poll_metric 'vllm:num_requests_waiting' 0 10
sleep 0.3
after=$(abort_count)
[ "$code" = 429 ] && [ "${before:-0}" = "${after:-0}" ]
check refused_n3_not_abort $? "code $code, abort before ${before:-0} after ${after:-0}"

# --- SIGTERM: a waiting request gets 503 + Retry-After at once; the running one finishes ---
curl_bg_auth "$T/b" '{"prompt":"Hi","max_tokens":5}'; B=$CPID
poll_metric 'vllm:num_requests_waiting' 1 30
check sigterm_setup_waiting $? "waiting=$(metric vllm:num_requests_waiting)"
kill -TERM "$SPID"
for _ in $(seq 100); do [ -s "$T/b.code" ] && break; sleep 0.05; done	# 5 s, not the 120 s deadline
bcode=$(cat "$T/b.code" 2>/dev/null)
running=$(kill -0 "$A" 2>/dev/null && echo yes)
[ "$bcode" = 503 ] && [ "$running" = yes ] && grep -qi '^Retry-After: [0-9]' "$T/b.h" &&
	jq -e '.error.code == 503' "$T/b" >/dev/null
check sigterm_waiting_503_at_once $? "waiting got '${bcode}' (running still: ${running:-no}); $(head -c 200 "$T/b")"
wait "$A"
[ "$(cat "$T/a.code")" = 200 ] && jq -e '.usage.completion_tokens == 3000' "$T/a" >/dev/null
check sigterm_running_finishes $? "code $(cat "$T/a.code") $(head -c 200 "$T/a")"
wait "$SPID"; rc=$?
[ $rc -eq 0 ]
check sigterm_exit_0 $? "exit $rc"
