# shellcheck shell=bash
# tests/service/lib.sh - helpers for the black-box service tests (sourced, not run).
# Servers bind 127.0.0.1 on a free port and are killed by the caller's trap.
BUILD=${BUILD:-build}
BIN="$BUILD/gemma-run"
# The backend the service tests run on: cpu (make test) or cuda (make test-gpu).
TEST_BACKEND=${GR_TEST_BACKEND:-cpu}
SPIDS=()
SLOGS=()

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
# check NAME CONDITION-EXIT-STATUS MESSAGE
check() { if [ "$2" -eq 0 ]; then pass "$1"; else fail "$1" "$3"; fi; }

# The tiny mkmodel model (vocab 256000 + the real Gemma tokenizer), made once per build dir;
# with GR_TEST_FP8=1 its FP8 (compressed-tensors) twin, so every service test runs on FP8.
model_tiny() {
	local d="$BUILD/test-models/tiny${GR_TEST_FP8:+-fp8}"
	if [ ! -f "$d/tokenizer.json" ]; then
		mkdir -p "$BUILD/test-models"
		local tmp="$d.tmp.$$"
		"$BUILD/mkmodel" --preset tiny --out "$tmp" ${GR_TEST_FP8:+--dtype fp8} >/dev/null 2>&1 || return 1
		mv -T "$tmp" "$d" 2>/dev/null || rm -rf "$tmp"
	fi
	echo "$d"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_serve LOG ARGS...: starts serve in the background; sets SPID and SPORT.
start_serve() {
	local log=$1; shift
	SPORT=$(free_port)
	"$BIN" serve --host 127.0.0.1 --port "$SPORT" --backend "$TEST_BACKEND" --threads 2 "$@" >"$log" 2>&1 &
	SPID=$!
	SPIDS+=("$SPID")
	SLOGS+=("$log")
}

# wait_ready [SECONDS]: waits for /health 200; returns 1 on timeout or if the server died.
wait_ready() {
	local n=$(( ${1:-60} * 20 ))
	for _ in $(seq "$n"); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SPORT/health")" = 200 ] && return 0
		kill -0 "$SPID" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# Stops every server (SIGTERM first, so sanitizer builds run their leak check),
# then fails the run if a server log shows a sanitizer report.
kill_all() {
	for p in "${SPIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for _ in $(seq 100); do
		local alive=0
		for p in "${SPIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.05
	done
	for p in "${SPIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	for l in "${SLOGS[@]}"; do
		if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$l" 2>/dev/null; then
			echo "FAIL sanitizer_report: $l"
			grep -E -A12 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$l" | head -30 | sed 's/^/    | /'
		fi
	done
}

# metric NAME: the value of the first sample of NAME on the current server.
metric() {
	curl -s "http://127.0.0.1:$SPORT/metrics" | awk -v n="$1" 'index($0, n) == 1 && ($0 ~ "^" n "[{ ]") { print $NF; exit }'
}
