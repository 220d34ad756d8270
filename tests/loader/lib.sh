# tests/loader/lib.sh - shared set-up of the gs:// loader tests (sourced, not run).
#
#   gcs_fixture_start TAG MODEL_DIR PREFIX [noref]
# starts tests/fixtures/gcs_server.py on 127.0.0.1 serving MODEL_DIR as
# gs://test-bucket/PREFIX, stops it on exit, and sets BIN, T (a temp dir),
# PORT, URL and REF (the local reference load's arena hash; not with noref,
# for a model that is meant to fail). On failure it
# prints "FAIL TAG_setup: ..." and exits 1. Then:
#   control JSON     sets the fixture's fault injection
#   stat_of KEY      reads one of the fixture's counters
#   gsload OUT ARGS  loads through the fixture (small chunks, 4 workers, 1 s stall),
#                    stdout+stderr to OUT; returns gemma-run's exit status
#   failc NAME WHY OUT  prints a FAIL line with the tail of OUT
BUILD=${BUILD:-build}
BIN="$BUILD/gemma-run"
FPID=
T=
cleanup() { [ -n "$FPID" ] && kill "$FPID" 2>/dev/null; wait 2>/dev/null; [ -n "$T" ] && rm -rf "$T"; }
trap cleanup EXIT

gcs_fixture_start() {
	local tag=$1 model=$2
	GCS_PREFIX=$3
	if [ ! -x "$BIN" ]; then echo "FAIL ${tag}_setup: $BIN not built"; exit 1; fi
	T=$(mktemp -d)
	python3 tests/fixtures/gcs_server.py --dir "$model" --bucket test-bucket --prefix "$GCS_PREFIX" \
		--portfile "$T/port" 2>"$T/fixture.log" &
	FPID=$!
	for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.05; done
	if [ ! -s "$T/port" ]; then echo "FAIL ${tag}_setup: fixture did not start"; cat "$T/fixture.log"; exit 1; fi
	PORT=$(cat "$T/port")
	URL="http://127.0.0.1:$PORT"
	[ "${4:-}" = noref ] && return 0
	REF=$("$BIN" load --simple --model "$model" --backend cpu --print-hash 2>/dev/null | grep -o '"sha256":"[0-9a-f]*"')
	if [ -z "$REF" ]; then echo "FAIL ${tag}_setup: reference load failed"; exit 1; fi
}

control() { curl -s -X POST --data "$1" "$URL/_control" >/dev/null; }
stat_of() { curl -s "$URL/_stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
gsload() {
	local out=$1; shift
	env STORAGE_EMULATOR_HOST="127.0.0.1:$PORT" GCE_METADATA_HOST="127.0.0.1:$PORT" \
		"$BIN" load --model "gs://test-bucket/$GCS_PREFIX" --backend cpu --print-hash \
		--loader-chunk-mb 0.0625 --loader-workers 4 --loader-stall-s 1 "$@" >"$out" 2>&1
}
failc() { echo "FAIL $1: $2"; sed 's/^/    | /' "$3" | tail -8; }
