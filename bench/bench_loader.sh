#!/usr/bin/env bash
# bench/bench_loader.sh - the loader against raw-read baselines, one run, ratios
# printed (DESIGN.md §6):
#   local: a 2b-shaped model (~5.2 GB, $BUILD/mkmodel --preset 2b --shards 2)
#          gemma-run load (CPU backend: into its host arena, crc32c.json verified,
#          and with --no-verify) vs `cat` of the same files and vs parallel `dd`
#          (4 ranges per file), page cache warm (median of 3); then "cold" for
#          our files only (their pages dropped with dd iflag=nocache, 1 run each).
#   loopback: nginx (HTTPS, throwaway CA) serving the same files:
#          gemma-run load https:// vs aria2c -x16 -s16 (into /dev/shm) and vs one
#          curl per file (to /dev/null), median of 3.
# Validates first: every gemma-run load must give the reference arena hash.
# Env: BUILD (default build), BENCH_DIR (default /tmp/gr-bench-loader), KEEP=1 keeps the model.
# Note: the CPU backend's arena is 5 GB of fresh anonymous memory; on a VM its first touch
# can cost more than the read itself (perf: clear_page_erms), which cat/dd to /dev/null
# never pay. cat into /dev/shm (also fresh memory) is printed as that baseline.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN="$BUILD/gemma-run"
MK="$BUILD/mkmodel"
DIR=${BENCH_DIR:-/tmp/gr-bench-loader}
W=$(mktemp -d)
. tests/fixtures/nginx_tls.sh
cleanup() {
	nginx_tls_stop
	rm -rf "$W" /dev/shm/gr-bench-aria /dev/shm/gr-bench-cp
	[ "${KEEP:-0}" = 1 ] || rm -rf "$DIR"
}
trap cleanup EXIT
for t in "$BIN" "$MK"; do [ -x "$t" ] || { echo "bench_loader: $t not built (make all)"; exit 1; }; done
for t in aria2c curl nginx dd; do command -v "$t" >/dev/null || [ -x /usr/sbin/$t ] || { echo "bench_loader: $t missing (tools/deps.sh)"; exit 1; }; done

if [ ! -f "$DIR/config.json" ]; then
	echo "generating a 2b-shaped model in $DIR ..."
	"$MK" --preset 2b --shards 2 --out "$DIR" >/dev/null 2>&1 || { echo "bench_loader: mkmodel failed"; exit 1; }
fi
FILES=$(ls "$DIR"/*.safetensors)
BYTES=$(cat $FILES | wc -c)	# warms the page cache too

echo "model: $DIR, $(echo $FILES | wc -w) shards, $BYTES bytes of safetensors, $(nproc) cores"

now() { date +%s.%N; }
median() { python3 -c "import sys,statistics; print('%.3f' % statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
fmt_runs() { python3 -c "import sys; print(' '.join('%.2f' % float(x) for x in sys.argv[1:]))" "$@"; }
gbps() { python3 -c "print('%.3f' % ($BYTES/1e9/$1))"; }
ratio() { python3 -c "print('%.2f' % ($2/$1))"; }	# time_baseline / time_ours = speed ratio ours:baseline
timeit() { local t0 t1; t0=$(now); "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; return 1; }; t1=$(now); python3 -c "print($t1-$t0)"; }

drop_ours() { for f in "$DIR"/*; do dd if="$f" iflag=nocache count=0 status=none 2>/dev/null; done; }
run_cat() { cat $FILES >/dev/null; }
run_shm() { rm -rf /dev/shm/gr-bench-cp; mkdir -p /dev/shm/gr-bench-cp; cat $FILES >/dev/shm/gr-bench-cp/all; rm -rf /dev/shm/gr-bench-cp; }
run_dd() {
	local f sz part
	for f in $FILES; do
		sz=$(stat -c %s "$f"); part=$(( (sz + 3) / 4 ))
		for i in 0 1 2 3; do
			dd if="$f" of=/dev/null bs=16M iflag=skip_bytes,count_bytes skip=$((i * part)) count=$part status=none &
		done
	done
	wait
}
REF=$("$BIN" load --model "$DIR" --backend cpu --print-hash --simple 2>/dev/null | grep -o '"sha256":"[0-9a-f]*"')
[ -n "$REF" ] || { echo "bench_loader: reference load failed"; exit 1; }
check_ours() {	# validates one load: same arena hash as the reference
	local out; out=$("$BIN" load --backend cpu --print-hash "$@" 2>&1)
	grep -q "$REF" <<<"$out" || { echo "bench_loader: VALIDATION FAILED for $*"; echo "$out" | tail -3; exit 1; }
	grep '^{' <<<"$out"
}
run_ours() { "$BIN" load --backend cpu "$@"; }

echo "--- validation"
check_ours --model "$DIR" | cut -c1-300

echo "--- local, page cache warm (median of 3, wall seconds incl. process start)"
declare -A T
for name in cat dd cat_to_shm ours ours_noverify; do
	ts=()
	for _ in 1 2 3; do
		case $name in
		cat) ts+=("$(timeit run_cat)") ;;
		dd) ts+=("$(timeit run_dd)") ;;
		cat_to_shm) ts+=("$(timeit run_shm)") ;;
		ours) ts+=("$(timeit run_ours --model "$DIR")") ;;
		ours_noverify) ts+=("$(timeit run_ours --model "$DIR" --no-verify)") ;;
		esac
	done
	T[$name]=$(median "${ts[@]}")
	printf '  %-22s %7.3f s  %6s GB/s   (runs: %s s)\n' "$name" "${T[$name]}" "$(gbps "${T[$name]}")" "$(fmt_runs "${ts[@]}")"
done
best=${T[cat]}; python3 -c "import sys; sys.exit(0 if ${T[dd]} < ${T[cat]} else 1)" && best=${T[dd]}
echo "  ratio gemma-run/cat            $(ratio "${T[ours]}" "${T[cat]}")x"
echo "  ratio gemma-run/parallel-dd    $(ratio "${T[ours]}" "${T[dd]}")x"
echo "  ratio gemma-run/best-raw-read  $(ratio "${T[ours]}" "$best")x   (verify on; target >= 0.9)"
echo "  ratio gemma-run --no-verify/best $(ratio "${T[ours_noverify]}" "$best")x"
echo "  ratio gemma-run/cat-into-/dev/shm  $(ratio "${T[ours]}" "${T[cat_to_shm]}")x   (both fill 5 GB of fresh RAM; cat/dd to /dev/null do not)"

echo "--- local, our files dropped from the page cache first (1 run each)"
for name in cat dd ours; do
	drop_ours
	case $name in
	cat) t=$(timeit run_cat) ;;
	dd) t=$(timeit run_dd) ;;
	ours) t=$(timeit run_ours --model "$DIR") ;;
	esac
	T[cold_$name]=$t
	printf '  %-22s %7.3f s  %6s GB/s\n' "cold $name" "$t" "$(gbps "$t")"
done
bestc=${T[cold_cat]}; python3 -c "import sys; sys.exit(0 if ${T[cold_dd]} < ${T[cold_cat]} else 1)" && bestc=${T[cold_dd]}
echo "  ratio cold gemma-run/best-raw-read  $(ratio "${T[cold_ours]}" "$bestc")x"
cat $FILES >/dev/null	# warm again for the network part

echo "--- loopback HTTPS via nginx (median of 3)"
nginx_tls_start "$DIR" "$W/ngx" || { echo "bench_loader: nginx did not start"; exit 1; }
URL="https://127.0.0.1:$NGINX_HTTPS_PORT"
check_ours --model "$URL" --ca-bundle "$NGINX_CA" | cut -c1-300
run_aria() {
	rm -rf /dev/shm/gr-bench-aria; mkdir -p /dev/shm/gr-bench-aria
	for f in $FILES; do echo "$URL/$(basename "$f")"; done >"$W/urls"
	aria2c -x16 -s16 -k1M -j4 --ca-certificate="$NGINX_CA" --file-allocation=none --allow-overwrite=true \
		-q -d /dev/shm/gr-bench-aria -i "$W/urls"
}
run_curl() { for f in $FILES; do curl -sf --cacert "$NGINX_CA" -o /dev/null "$URL/$(basename "$f")" || return 1; done; }
for name in aria2c curl ours_https; do
	ts=()
	for _ in 1 2 3; do
		case $name in
		aria2c) ts+=("$(timeit run_aria)") ;;
		curl) ts+=("$(timeit run_curl)") ;;
		ours_https) ts+=("$(timeit run_ours --model "$URL" --ca-bundle "$NGINX_CA")") ;;
		esac
	done
	rm -rf /dev/shm/gr-bench-aria
	T[$name]=$(median "${ts[@]}")
	printf '  %-22s %7.3f s  %6s GB/s   (runs: %s s)\n' "$name" "${T[$name]}" "$(gbps "${T[$name]}")" "$(fmt_runs "${ts[@]}")"
done
echo "  ratio gemma-run/aria2c -x16 -s16  $(ratio "${T[ours_https]}" "${T[aria2c]}")x   (target >= 1.0)"
echo "  ratio gemma-run/curl             $(ratio "${T[ours_https]}" "${T[curl]}")x"
echo "--- per-stage times of one https load"
run_ours --model "$URL" --ca-bundle "$NGINX_CA" 2>/dev/null | head -1
