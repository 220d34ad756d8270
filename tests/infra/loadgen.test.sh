#!/usr/bin/env bash
# tests/infra/loadgen.test.sh - bench/loadgen ($BUILD/loadgen) against the local
# fixture server tests/fixtures/loadgen_server.py (127.0.0.1, free port).
#
# Asserts: requests = success + errors + dropped; the server saw exactly the
# requests loadgen says it sent; every injected 500 is counted under its code;
# the achieved rate is within +-10% of --rate (over 4 s); --stream counts one
# token per SSE data event with text (not the empty role chunk, not [DONE])
# and reports TTFT / ITL; --max-inflight drops instead of delaying; the run
# ends by itself at duration + drain with the stragglers counted as aborted;
# refused connections are transport errors; bad flags exit 2.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
LG="$BUILD/loadgen"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

if [ ! -x "$LG" ]; then
	echo "FAIL loadgen_built: $LG missing (make $LG)"
	exit 1
fi

tmp=$(mktemp -d)
srv_pid=""
cleanup() {
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

FAIL_EVERY=7
"$PY" tests/fixtures/loadgen_server.py --fail-every "$FAIL_EVERY" --tokens 5 \
	--token-delay-ms 10 >"$tmp/srv.out" 2>"$tmp/srv.err" &
srv_pid=$!
port=""
for _ in $(seq 1 100); do
	port=$(awk '/^PORT /{print $2}' "$tmp/srv.out" 2>/dev/null)
	[ -n "$port" ] && break
	sleep 0.05
done
if [ -z "$port" ]; then
	echo "FAIL fixture_server: did not start: $(cat "$tmp/srv.err")"
	exit 1
fi
base="http://127.0.0.1:$port"
stats() { curl -s "$base/stats" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["requests"])'; }
echo '{"model":"m","prompt":"hi","max_tokens":16}' >"$tmp/body.json"

# check NAME JSONFILE PYTHON-EXPR [MESSAGE-EXPR]: j is the report, env vars via E.
check() {
	local name="$1" file="$2" expr="$3" msg="${4:-repr(j)[:300]}"
	"$PY" - "$file" "$expr" "$msg" "$name" <<'EOF'
import json, os, sys
path, expr, msg, name = sys.argv[1:5]
try:
    j = json.load(open(path))
except Exception as e:
    print("FAIL %s: report is not JSON: %s" % (name, e)); sys.exit(0)
E = {k: float(v) for k, v in os.environ.items() if k.startswith("T_")}
try:
    ok = eval(expr)
except Exception as e:
    print("FAIL %s: %s raised %r" % (name, expr, e)); sys.exit(0)
print(("PASS %s" % name) if ok else ("FAIL %s: not (%s): %s" % (name, expr, eval(msg))))
EOF
}

# 1. plain POST, 25 req/s for 4 s, every 7th request answered 500.
before=$(stats)
"$LG" --target "$base/v1/completions" --rate 25 --duration 4s --body "$tmp/body.json" \
	--header 'X-Test: 1' --json >"$tmp/r1.json" 2>"$tmp/r1.err"
rc=$?
after=$(stats)
[ "$rc" -eq 0 ] && echo "PASS plain_exit_0" || echo "FAIL plain_exit_0: rc=$rc $(cat "$tmp/r1.err")"
export T_SEEN=$((after - before))
export T_500=$((after / FAIL_EVERY - before / FAIL_EVERY))
check plain_requests_scheduled "$tmp/r1.json" 'j["requests"] == 100'
check plain_counts_add_up "$tmp/r1.json" 'j["requests"] == j["success"] + j["errors"] + j["dropped"] and j["errors"] == j["http_errors"] + j["transport_errors"] + j["aborted"]'
check plain_server_saw_sent "$tmp/r1.json" 'j["sent"] == E["T_SEEN"]' '(j["sent"], E["T_SEEN"])'
check plain_500s_counted "$tmp/r1.json" 'j["status_codes"].get("500", 0) == E["T_500"] > 0 and j["http_errors"] == E["T_500"]' '(j["status_codes"], E["T_500"])'
check plain_200s_counted "$tmp/r1.json" 'j["status_codes"].get("200", 0) == j["success"] == j["sent"] - E["T_500"]'
check plain_rate_within_10pct "$tmp/r1.json" 'abs(j["rate"] - 25) <= 2.5' 'j["rate"]'
check plain_latency_reported "$tmp/r1.json" 'j["latency_s"]["n"] == j["success"] and 0 < j["latency_s"]["min"] <= j["latency_s"]["p50"] <= j["latency_s"]["p99"] <= j["latency_s"]["max"]' 'j["latency_s"]'
check plain_success_ratio "$tmp/r1.json" 'abs(j["success_ratio"] - j["success"] / j["requests"]) < 1e-9'

# 2. SSE streaming: 5 text events per 200 response, 10 ms apart.
"$LG" --target "$base/sse" --rate 10 --duration 2s --stream --json >"$tmp/r2.json" 2>"$tmp/r2.err"
rc2=$?
check stream_counts_add_up "$tmp/r2.json" 'j["requests"] == 20 and j["requests"] == j["success"] + j["errors"] + j["dropped"]'
check stream_tokens_are_text_events "$tmp/r2.json" 'j["stream"]["output_tokens"] == 5 * j["status_codes"].get("200", 0) > 0' 'j["stream"]'
check stream_ttft_reported "$tmp/r2.json" 'j["stream"]["ttft_s"]["n"] == j["success"] and 0.005 < j["stream"]["ttft_s"]["p50"] <= j["latency_s"]["p50"]' 'j["stream"]["ttft_s"]'
check stream_itl_reported "$tmp/r2.json" 'j["stream"]["itl_s"]["n"] == 4 * j["success"] and 0.002 < j["stream"]["itl_s"]["p50"] < 5' 'j["stream"]["itl_s"]'
check stream_tokens_per_s "$tmp/r2.json" 'j["stream"]["output_tokens_per_s"] > 0'
check stream_500s_counted "$tmp/r2.json" 'j["http_errors"] == j["status_codes"].get("500", 0) == j["requests"] - j["success"]'

# 3. open loop: /slow never answers in time; 3 may be in flight, the rest drop;
#    the run must end by itself at duration (2 s) + drain (1 s).
t0=$(date +%s.%N)
"$LG" --target "$base/slow" --rate 10 --duration 2s --max-inflight 3 --drain 1s --json \
	>"$tmp/r3.json" 2>"$tmp/r3.err"
rc3=$?
t1=$(date +%s.%N)
export T_ELAPSED
T_ELAPSED=$("$PY" -c "print($t1 - $t0)")
check drop_beyond_max_inflight "$tmp/r3.json" 'j["requests"] == 20 and j["sent"] == 3 and j["dropped"] == 17'
check drain_aborts_stragglers "$tmp/r3.json" 'j["aborted"] == 3 and j["success"] == 0 and j["requests"] == j["success"] + j["errors"] + j["dropped"]'
# generous bound (the server would hold them for 60 s): not a performance assertion
check stops_by_itself "$tmp/r3.json" 'E["T_ELAPSED"] < 2 + 1 + 5' 'E["T_ELAPSED"]'

# 4. nothing listening: every request is a transport error.
dead=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
"$LG" --target "http://127.0.0.1:$dead/" --rate 10 --duration 1s --json >"$tmp/r4.json" 2>"$tmp/r4.err"
rc4=$?
if [ "$rc2" -eq 0 ] && [ "$rc3" -eq 0 ] && [ "$rc4" -eq 0 ]; then
	echo "PASS other_runs_exit_0"
else
	echo "FAIL other_runs_exit_0: rc=$rc2,$rc3,$rc4: $(cat "$tmp/r2.err" "$tmp/r3.err" "$tmp/r4.err" | head -c 400)"
fi
check refused_is_transport_error "$tmp/r4.json" 'j["requests"] == 10 and j["transport_errors"] == 10 and j["success"] == 0 and sum(j["transport_error_set"].values()) == 10' 'j'

# 5. text report (vegeta-like) and usage errors.
"$LG" --target "$base/v1/completions" --rate 5 --duration 1s >"$tmp/r5.txt" 2>&1
if grep -q '^Requests  *\[total, rate, throughput\]' "$tmp/r5.txt" &&
   grep -q '^Latencies *\[min, mean, 50, 90, 95, 99, max\]' "$tmp/r5.txt" &&
   grep -q '^Status Codes' "$tmp/r5.txt" && grep -q '^Success' "$tmp/r5.txt"; then
	echo "PASS text_report"
else
	echo "FAIL text_report: $(head -c 600 "$tmp/r5.txt")"
fi
"$LG" --target "$base/" --duration 1s >/dev/null 2>&1; rc1=$?
"$LG" --target "$base/" --rate 5 --duration 1parsec >/dev/null 2>&1; rc2=$?
"$LG" --target "$base/" --rate 5 --duration 1s --max-inflight 0 >/dev/null 2>&1; rc3=$?
if [ "$rc1" -eq 2 ] && [ "$rc2" -eq 2 ] && [ "$rc3" -eq 2 ]; then
	echo "PASS usage_errors_exit_2"
else
	echo "FAIL usage_errors_exit_2: rc=$rc1,$rc2,$rc3"
fi
