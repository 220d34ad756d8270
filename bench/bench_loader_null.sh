#!/usr/bin/env bash
# bench/bench_loader_null.sh - the loader's GPU path without a GPU:
# `gemma-run load --backend null` (every chunk read into the pinned staging
# ring, CRC-32C taken while hot and checked against crc32c.json, "uploaded",
# dropped) against raw reads of the same files, one run, ratios printed:
#   local warm: cat and parallel dd (4 ranges per file) to /dev/null
#   local cold: the same with our files' pages dropped before each run
#   loopback:   nginx HTTPS (throwaway CA): aria2c -x16 -s16 into /dev/shm
#   gs://:      tests/fixtures/gcs_server.py (sendfile path) on loopback HTTP:
#               16 parallel curl ranges per shard to /dev/null (the fixture's
#               own speed), aria2c -x16 -s16 on the media links, load gs://
# Unlike the cpu backend (bench_loader.sh), nothing here fills GBs of fresh
# memory, so the figures are the loader's, not the kernel's page zeroing.
# Validates first: a null load with crc32c.json must pass, one with a flipped
# byte must fail. Medians of REPS round-robin runs (wall seconds incl. start).
# Parts: ONLY=local runs the warm local part alone, ONLY=gcs the gs:// part.
# Env: BUILD (default build), BENCH_DIR (default /tmp/gr-bench-null), KEEP=1,
# REPS (default 3), LAYERS (default 4: a 2b-shaped model cut to 4 layers, ~1.8 GB).
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
BIN="$BUILD/gemma-run"
MK="$BUILD/mkmodel"
DIR=${BENCH_DIR:-/tmp/gr-bench-null}
REPS=${REPS:-3}
W=$(mktemp -d)
# shellcheck source=tests/fixtures/nginx_tls.sh
. tests/fixtures/nginx_tls.sh
FIX_PID=
cleanup() {
	[ -n "$FIX_PID" ] && kill "$FIX_PID" 2>/dev/null
	nginx_tls_stop
	rm -rf "$W" /dev/shm/gr-bench-aria
	[ "${KEEP:-0}" = 1 ] || rm -rf "$DIR"
}
trap cleanup EXIT
for t in "$BIN" "$MK"; do [ -x "$t" ] || { echo "bench_loader_null: $t not built (make all)"; exit 1; }; done
for t in aria2c dd; do command -v "$t" >/dev/null || { echo "bench_loader_null: $t missing"; exit 1; }; done
if [ ! -f "$DIR/crc32c.json" ]; then
	echo "generating a 2b-shaped model with ${LAYERS:-4} layers in $DIR ..."
	"$MK" --preset 2b --layers "${LAYERS:-4}" --shards 2 --tokenizer none --out "$DIR" >/dev/null 2>&1 &&
		"$BIN" checksum "$DIR" >/dev/null || { echo "bench_loader_null: mkmodel/checksum failed"; exit 1; }
fi
DIR=$(realpath "$DIR")
mapfile -t FILES < <(ls "$DIR"/*.safetensors)
BYTES=$(cat "${FILES[@]}" | wc -c)
echo "model: $DIR, ${#FILES[@]} shards, $BYTES bytes, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

now() { date +%s.%N; }
median() { python3 -c "import sys,statistics; print('%.3f' % statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
gbps() { python3 -c "print('%.3f' % ($BYTES/1e9/$1))"; }
ratio() { python3 -c "print('%.2f' % ($2/$1))"; }	# ratio TIME_OURS TIME_BASE = speed ours:base
timeit() { local t0 t1; t0=$(now); "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; echo 1e9; return 1; }; t1=$(now); python3 -c "print('%.3f' % ($t1-$t0))"; }
declare -A RUNS MED
rr() {
	local n
	for ((r = 0; r < REPS; r++)); do for n in "$@"; do RUNS[$n]+="$(timeit "run_$n") "; done; done
	for n in "$@"; do
		# shellcheck disable=SC2086
		MED[$n]=$(median ${RUNS[$n]})
		printf '  %-14s %7.3f s  %6s GB/s   (runs: %s s)\n' "$n" "${MED[$n]}" "$(gbps "${MED[$n]}")" "${RUNS[$n]% }"
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
run_null() { "$BIN" load --backend null --model "$DIR"; }
run_null_32m() { "$BIN" load --backend null --model "$DIR" --loader-chunk-mb 32; }
run_null_w2() { "$BIN" load --backend null --model "$DIR" --loader-workers 2; }
run_null_noverify() { "$BIN" load --backend null --model "$DIR" --no-verify; }
run_cold_cat() { drop_ours; run_cat; }
run_cold_dd() { drop_ours; run_dd; }
run_cold_null() { drop_ours; run_null; }

echo "--- validation: crc32c.json checked through the ring; a flipped byte is caught"
out=$("$BIN" load --backend null --model "$DIR" 2>&1) || { echo "VALIDATION FAILED"; echo "$out" | tail -3; exit 1; }
grep '^{' <<<"$out" | cut -c1-300
mkdir -p "$W/bad" && for f in "$DIR"/*; do ln -s "$f" "$W/bad/"; done
rm "$W/bad/$(basename "${FILES[0]}")" && cp "${FILES[0]}" "$W/bad/" &&
	printf '\x5a' | dd of="$W/bad/$(basename "${FILES[0]}")" bs=1 seek=$((BYTES / 4)) conv=notrunc status=none
if "$BIN" load --backend null --model "$W/bad" >/dev/null 2>&1; then echo "VALIDATION FAILED: corrupt byte not caught"; exit 1; fi
rm -rf "$W/bad"

run_gcs_part() {
	echo "--- gs:// through the GCS fixture on loopback HTTP (median of $REPS, round-robin)"
	python3 tests/fixtures/gcs_server.py --dir "$DIR" --prefix m --portfile "$W/fport" --trust-manifest \
		2>"$W/fixture.log" &
	FIX_PID=$!
	for _ in $(seq 200); do [ -s "$W/fport" ] && break; sleep 0.1; done
	[ -s "$W/fport" ] || { echo "bench_loader_null: the fixture did not start"; exit 1; }
	local fu f cpu0 cpu1
	fu="http://127.0.0.1:$(cat "$W/fport")"
	: >"$W/gurls"
	for f in "${FILES[@]}"; do
		echo "$fu/download/storage/v1/b/test-bucket/o/m%2F$(basename "$f")?alt=media" >>"$W/gurls"
	done
	run_curl16() {	# 16 ranged readers per shard, one after the other, to /dev/null
		local f u sz i pids=()
		for f in "${FILES[@]}"; do
			u="$fu/download/storage/v1/b/test-bucket/o/m%2F$(basename "$f")?alt=media"; sz=$(stat -c %s "$f")
			for i in $(seq 0 15); do
				curl -sf -o /dev/null -H "Range: bytes=$((i * sz / 16))-$(((i + 1) * sz / 16 - 1))" "$u" & pids+=($!)
			done
			wait "${pids[@]}" || return 1; pids=()
		done
	}
	run_aria2c_gcs() {
		rm -rf /dev/shm/gr-bench-aria; mkdir -p /dev/shm/gr-bench-aria
		aria2c -x16 -s16 -k1M -j4 --file-allocation=none --allow-overwrite=true -q -d /dev/shm/gr-bench-aria \
			-i "$W/gurls"
		local rc=$?; rm -rf /dev/shm/gr-bench-aria; return $rc
	}
	run_null_gcs() {
		env STORAGE_EMULATOR_HOST="${fu#http://}" "$BIN" load --backend null --model gs://test-bucket/m --gcs-anonymous
	}
	run_null_gcs 2>&1 | grep '^{' | cut -c1-300
	fcpu() { awk '{ print $14 + $15 }' "/proc/$FIX_PID/stat"; }	# utime + stime, clock ticks
	cpu0=$(fcpu)
	rr curl16 aria2c_gcs null_gcs
	cpu1=$(fcpu)
	echo "  fixture CPU: $(python3 -c "print('%.2f' % (($cpu1 - $cpu0) / $(getconf CLK_TCK) / (3 * $REPS * $BYTES / 1e9)))") s per GB served"
	echo "  fixture speed (16 curl ranges) $(gbps "${MED[curl16]}") GB/s   (target >= 1 GB/s: not the bottleneck)"
	echo "  ratio null/aria2c -x16 -s16    $(ratio "${MED[null_gcs]}" "${MED[aria2c_gcs]}")x   (target >= 0.9)"
	echo "  ratio null/16 curl ranges      $(ratio "${MED[null_gcs]}" "${MED[curl16]}")x"
	kill "$FIX_PID" 2>/dev/null; FIX_PID=
}
[ "${ONLY:-}" = gcs ] && { run_gcs_part; exit 0; }

echo "--- local, page cache warm (median of $REPS, round-robin)"
rr cat dd null null_noverify null_w2 null_32m
best=$(best_of "${MED[cat]}" "${MED[dd]}")
echo "  ratio null 32 MiB chunks/best  $(ratio "${MED[null_32m]}" "$best")x   (the network chunk size: 18 x 32 MiB ring)"
echo "  ratio null 2 workers/best      $(ratio "${MED[null_w2]}" "$best")x   (one worker per core)"
echo "  ratio null/cat                 $(ratio "${MED[null]}" "${MED[cat]}")x"
echo "  ratio null/parallel-dd         $(ratio "${MED[null]}" "${MED[dd]}")x"
echo "  ratio null/best-raw-read       $(ratio "${MED[null]}" "$best")x   (crc32c verified; target >= 0.9)"
echo "  ratio null --no-verify/best    $(ratio "${MED[null_noverify]}" "$best")x"

[ "${ONLY:-}" = local ] && exit 0
echo "--- local, our files dropped from the page cache before each run (median of $REPS)"
rr cold_cat cold_dd cold_null
bestc=$(best_of "${MED[cold_cat]}" "${MED[cold_dd]}")
echo "  ratio cold null/best-raw-read  $(ratio "${MED[cold_null]}" "$bestc")x"
cat "${FILES[@]}" >/dev/null

echo "--- loopback HTTPS via nginx (median of $REPS, round-robin)"
nginx_tls_start "$DIR" "$W/ngx" || { echo "bench_loader_null: nginx did not start"; exit 1; }
URL="https://127.0.0.1:$NGINX_HTTPS_PORT"
"$BIN" load --backend null --model "$URL" --ca-bundle "$NGINX_CA" 2>&1 | grep '^{' | cut -c1-300
for f in "${FILES[@]}"; do echo "$URL/$(basename "$f")"; done >"$W/urls"
run_aria2c() {
	rm -rf /dev/shm/gr-bench-aria; mkdir -p /dev/shm/gr-bench-aria
	aria2c -x16 -s16 -k1M -j4 --ca-certificate="$NGINX_CA" --file-allocation=none --allow-overwrite=true \
		-q -d /dev/shm/gr-bench-aria -i "$W/urls"
	local rc=$?; rm -rf /dev/shm/gr-bench-aria; return $rc
}
run_null_https() { "$BIN" load --backend null --model "$URL" --ca-bundle "$NGINX_CA"; }
rr aria2c null_https
echo "  ratio null/aria2c -x16 -s16    $(ratio "${MED[null_https]}" "${MED[aria2c]}")x   (target >= 0.9)"
run_gcs_part
