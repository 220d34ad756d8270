#!/usr/bin/env bash
# bench/bench_loader.sh - the loader against raw-read baselines, one run, ratios
# printed:
#   local: a 2b-shaped model (~5.2 GB, $BUILD/mkmodel --preset 2b --shards 2)
#          gemma-run load (CPU backend: into its host arena, crc32c.json verified,
#          and with --no-verify) vs `cat` of the same files and vs parallel `dd`
#          (4 ranges per file), page cache warm; then "cold" for our files only
#          (their pages dropped with dd iflag=nocache).
#   loopback: nginx (HTTPS, throwaway CA) serving the same files:
#          gemma-run load https:// vs aria2c -x16 -s16 (into /dev/shm) and vs one
#          curl per file (to /dev/null).
# The tools are run round-robin (one run of each, REPS times) so that they see the
# same background load; medians are reported. Validates first: every gemma-run
# load must give the reference arena hash.
# Env: BUILD (default build), BENCH_DIR (default /tmp/gr-bench-loader), KEEP=1 keeps
# the model, REPS (default 3).
# Note: the CPU backend's arena is 5 GB of fresh anonymous memory; on a VM its first
# touch can cost more than the read itself (perf: clear_page_erms), which cat/dd to
# /dev/null never pay. `cat` into /dev/shm (also fresh memory) is printed as that baseline.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
BIN="$BUILD/gemma-run"
MK="$BUILD/mkmodel"
DIR=${BENCH_DIR:-/tmp/gr-bench-loader}
REPS=${REPS:-3}
W=$(mktemp -d)
# shellcheck source=tests/fixtures/nginx_tls.sh
. tests/fixtures/nginx_tls.sh
cleanup() {
	nginx_tls_stop
	rm -rf "$W" /dev/shm/gr-bench-aria /dev/shm/gr-bench-cp
	[ "${KEEP:-0}" = 1 ] || rm -rf "$DIR"
}
trap cleanup EXIT
for t in "$BIN" "$MK"; do [ -x "$t" ] || { echo "bench_loader: $t not built (make all)"; exit 1; }; done
for t in aria2c curl dd; do command -v "$t" >/dev/null || { echo "bench_loader: $t missing (tools/deps.sh)"; exit 1; }; done

if [ ! -f "$DIR/config.json" ]; then
	echo "generating a 2b-shaped model in $DIR ..."
	"$MK" --preset 2b --shards 2 --out "$DIR" >/dev/null 2>&1 || { echo "bench_loader: mkmodel failed"; exit 1; }
fi
DIR=$(realpath "$DIR")
mapfile -t FILES < <(ls "$DIR"/*.safetensors)
BYTES=$(cat "${FILES[@]}" | wc -c)	# warms the page cache too
echo "model: $DIR, ${#FILES[@]} shards, $BYTES bytes of safetensors, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

now() { date +%s.%N; }
median() { python3 -c "import sys,statistics; print('%.3f' % statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
gbps() { python3 -c "print('%.3f' % ($BYTES/1e9/$1))"; }
ratio() { python3 -c "print('%.2f' % ($2/$1))"; }	# ratio TIME_OURS TIME_BASE = speed ours:base
timeit() { local t0 t1; t0=$(now); "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; echo 1e9; return 1; }; t1=$(now); python3 -c "print('%.3f' % ($t1-$t0))"; }

declare -A RUNS MED
# rr NAME...: REPS rounds, one timed run of each run_NAME per round; then prints the medians
rr() {
	local n
	for ((r = 0; r < REPS; r++)); do
		for n in "$@"; do RUNS[$n]+="$(timeit "run_$n") "; done
	done
	for n in "$@"; do
		# shellcheck disable=SC2086
		MED[$n]=$(median ${RUNS[$n]})
		printf '  %-16s %7.3f s  %6s GB/s   (runs: %s s)\n' "$n" "${MED[$n]}" "$(gbps "${MED[$n]}")" "${RUNS[$n]% }"
	done
}
best_of() { python3 -c "import sys; print(min(float(x) for x in sys.argv[1:]))" "$@"; }

drop_ours() { for f in "$DIR"/*; do dd if="$f" iflag=nocache count=0 status=none 2>/dev/null; done; }
run_cat() { cat "${FILES[@]}" >/dev/null; }
run_dd() {
	local f sz part
	for f in "${FILES[@]}"; do
		sz=$(stat -c %s "$f"); part=$(( (sz + 3) / 4 ))
		for i in 0 1 2 3; do
			dd if="$f" of=/dev/null bs=16M iflag=skip_bytes,count_bytes skip=$((i * part)) count=$part status=none &
		done
	done
	wait
}
run_cat_to_shm() { mkdir -p /dev/shm/gr-bench-cp; cat "${FILES[@]}" >/dev/shm/gr-bench-cp/all; rm -rf /dev/shm/gr-bench-cp; }
run_ours() { "$BIN" load --backend cpu --model "$DIR"; }
run_ours_again() { run_ours; }
run_ours_noverify() { "$BIN" load --backend cpu --model "$DIR" --no-verify; }
run_cold_cat() { drop_ours; run_cat; }
run_cold_dd() { drop_ours; run_dd; }
run_cold_ours() { drop_ours; run_ours; }

REF=$("$BIN" load --model "$DIR" --backend cpu --print-hash --simple 2>/dev/null | grep -o '"sha256":"[0-9a-f]*"')
[ -n "$REF" ] || { echo "bench_loader: reference load failed"; exit 1; }
check_ours() {	# validates one load (same arena hash as the reference) or ends the bench
	local out; out=$("$BIN" load --backend cpu --print-hash "$@" 2>&1)
	grep -q "$REF" <<<"$out" || { echo "bench_loader: VALIDATION FAILED for $*"; echo "$out" | tail -3; exit 1; }
	grep '^{' <<<"$out" | cut -c1-320
}

echo "--- validation (one load, same arena SHA-256 as the sequential reference loader)"
check_ours --model "$DIR"

echo "--- local, page cache warm (median of $REPS, round-robin, wall seconds incl. process start)"
# ours: right after cat_to_shm freed 5 GB (the VM hands freed memory back: the arena's
# first touch is slow); ours_again: the same command at once after ours (memory recycled).
rr cat dd cat_to_shm ours ours_again ours_noverify
best=$(best_of "${MED[cat]}" "${MED[dd]}")
echo "  ratio gemma-run/cat              $(ratio "${MED[ours]}" "${MED[cat]}")x  fresh memory, $(ratio "${MED[ours_again]}" "${MED[cat]}")x recycled"
echo "  ratio gemma-run/parallel-dd      $(ratio "${MED[ours]}" "${MED[dd]}")x  fresh memory, $(ratio "${MED[ours_again]}" "${MED[dd]}")x recycled"
echo "  ratio gemma-run/best-raw-read    $(ratio "${MED[ours]}" "$best")x  fresh memory, $(ratio "${MED[ours_again]}" "$best")x recycled   (crc32c verified; target >= 0.9)"
echo "  ratio --no-verify/best-raw-read  $(ratio "${MED[ours_noverify]}" "$best")x"
echo "  ratio gemma-run/cat-into-/dev/shm $(ratio "${MED[ours]}" "${MED[cat_to_shm]}")x   (both fill 5 GB of fresh RAM)"

echo "--- local, our files dropped from the page cache before each run (median of $REPS)"
rr cold_cat cold_dd cold_ours
bestc=$(best_of "${MED[cold_cat]}" "${MED[cold_dd]}")
echo "  ratio cold gemma-run/best-raw-read  $(ratio "${MED[cold_ours]}" "$bestc")x"
cat "${FILES[@]}" >/dev/null	# warm again for the network part

echo "--- loopback HTTPS via nginx (median of $REPS, round-robin)"
nginx_tls_start "$DIR" "$W/ngx" || { echo "bench_loader: nginx did not start"; exit 1; }
URL="https://127.0.0.1:$NGINX_HTTPS_PORT"
check_ours --model "$URL" --ca-bundle "$NGINX_CA"
for f in "${FILES[@]}"; do echo "$URL/$(basename "$f")"; done >"$W/urls"
run_aria2c() {
	rm -rf /dev/shm/gr-bench-aria; mkdir -p /dev/shm/gr-bench-aria
	aria2c -x16 -s16 -k1M -j4 --ca-certificate="$NGINX_CA" --file-allocation=none --allow-overwrite=true \
		-q -d /dev/shm/gr-bench-aria -i "$W/urls"
	local rc=$?; rm -rf /dev/shm/gr-bench-aria; return $rc
}
run_curl() { local u; while read -r u; do curl -sf --cacert "$NGINX_CA" -o /dev/null "$u" || return 1; done <"$W/urls"; }
run_ours_https() { "$BIN" load --backend cpu --model "$URL" --ca-bundle "$NGINX_CA"; }
run_ours_https_again() { run_ours_https; }
rr aria2c curl ours_https ours_https_again
echo "  ratio gemma-run/aria2c -x16 -s16  $(ratio "${MED[ours_https]}" "${MED[aria2c]}")x  fresh memory, $(ratio "${MED[ours_https_again]}" "${MED[aria2c]}")x recycled   (target >= 1.0)"
echo "  ratio gemma-run/curl              $(ratio "${MED[ours_https]}" "${MED[curl]}")x  fresh memory, $(ratio "${MED[ours_https_again]}" "${MED[curl]}")x recycled   (curl writes to /dev/null)"
echo "--- per-stage times of one more https load"
run_ours_https 2>/dev/null | head -1
