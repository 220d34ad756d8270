#!/usr/bin/env bash
# tests/loader/cold_start.test.sh - a cold start under a misbehaving network,
# against the GCS fixture (tests/fixtures/gcs_server.py): throttling that
# heals (AIMD concurrency), a retry budget that is a time, and a
# non-retryable status that still fails at once.
#   cold_aimd_burst_heals      a 1 s burst of 503s inside the transfer costs at
#                              most 2x the same bandwidth-limited load without it
#                              (measured: 1.6x; the old never-heal loader: 7.1x,
#                              29 s against 4.1 s); the JSON line
#                              shows the halving and the climb back
#   cold_outage_ridden_out     every object request answers 503 for 6 s; the
#                              load (retry deadline 30 s) waits it out, same hash
#   cold_outage_past_deadline  an 8 s outage with a 2 s retry deadline fails in
#                              a few seconds with one line naming the deadline
#   cold_403_fails_at_once     a 403 is not retried, whatever the budget
#   cold_emulator_anonymous    STORAGE_EMULATOR_HOST, no key, no metadata host: anonymous
#   cold_fixture_gcs_shape     the fixture: md5Hash/etag/timeCreated, x-goog-hash, bytes=-N 206,
#                              a wrong generation 404; mediaLink on /download/storage/v1 (as
#                              GCS and the testbench: media with alt=media, metadata without)
#   cold_fixture_conn_bw       conn_bw caps each connection, not the server: two 16 KiB ranges
#                              on one keep-alive connection at 16 KiB/s take ~2 s, two
#                              connections side by side ~1 s
#   cold_outage_30s_ridden_out (COLD_SLOW=1 only) the 30 s outage, default 300 s budget
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/loader/lib.sh
gcs_fixture_start cold tests/golden/gemma2-tiny-b models/tiny-b

# timed_load OUT ARGS: gsload, prints the seconds it took; the exit status in $T/rc
timed_load() {
	local out=$1; shift
	local t0 t1
	t0=$(date +%s.%N)
	gsload "$out" --gcs-anonymous "$@"; echo $? >"$T/rc"
	t1=$(date +%s.%N)
	echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}'
}
json_field() { grep '^{' "$1" | python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$2"; }

# 1. AIMD. 16 KiB chunks at 32 KiB/s per response from the 5th media request on (the first
#    four are config.json, the index and the two shard heads): each chunk read takes 0.5 s,
#    8 workers, 63 chunks: a clean load lasts ~4 s. The burst opens with the transfer.
control '{"bw":32768,"bw_after":4}'
clean=$(timed_load "$T/clean" --loader-workers 8 --loader-chunk-mb 0.015625)
control '{"bw":32768,"bw_after":4,"outage_s":1,"outage_after":4}'
burst=$(timed_load "$T/burst" --loader-workers 8 --loader-chunk-mb 0.015625)
answers=$(stat_of outage_answers)
ratio=$(echo "$burst $clean" | awk '{printf "%.2f", $1 / $2}')
echo "# cold_aimd_burst_heals: clean $clean s, 1 s burst of 503 ($answers answers) $burst s, ratio $ratio"
if [ "$(cat "$T/rc")" -ne 0 ] || ! grep -q "$REF" "$T/burst"; then
	failc cold_aimd_burst_heals "the load under the burst failed or differs" "$T/burst"
elif ! grep -q "$REF" "$T/clean"; then
	failc cold_aimd_burst_heals "the clean load failed" "$T/clean"
elif [ "$answers" -lt 2 ]; then
	echo "FAIL cold_aimd_burst_heals: the fixture answered only $answers requests with 503"
elif ! awk -v r="$ratio" 'BEGIN { exit !(r <= 2.0) }'; then
	failc cold_aimd_burst_heals "a 1 s burst cost ${ratio}x a clean load (want <= 2x)" "$T/burst"
elif [ "$(json_field "$T/burst" "['workers']['decreases']")" -lt 1 ] ||
     [ "$(json_field "$T/burst" "['workers']['increases']")" -lt 1 ] ||
     [ "$(json_field "$T/burst" "['workers']['min']")" -ge 8 ] ||
     [ "$(json_field "$T/burst" "['workers']['max']")" -ne 8 ]; then
	failc cold_aimd_burst_heals "the JSON line does not show the concurrency halved and grown back" "$T/burst"
else
	echo "PASS cold_aimd_burst_heals"
fi

# 2. a 6 s outage of every object request, inside the transfer, ridden out with a 30 s budget
control '{"outage_s":6,"outage_after":4}'
secs=$(timed_load "$T/o" --loader-retry-deadline-s 30)
if [ "$(cat "$T/rc")" -ne 0 ] || ! grep -q "$REF" "$T/o"; then
	failc cold_outage_ridden_out "exit $(cat "$T/rc") or a different arena" "$T/o"
elif [ "$(stat_of outage_answers)" -lt 1 ] || ! awk -v s="$secs" 'BEGIN { exit !(s >= 5.5) }'; then
	failc cold_outage_ridden_out "no outage seen ($(stat_of outage_answers) answers, $secs s)" "$T/o"
else
	echo "PASS cold_outage_ridden_out ($secs s)"
fi

# 3. the same outage, longer than the retry deadline: one clear line, in about the deadline
control '{"outage_s":8,"outage_after":4}'
secs=$(timed_load "$T/o" --loader-retry-deadline-s 2)
if [ "$(cat "$T/rc")" -eq 0 ]; then
	failc cold_outage_past_deadline "load succeeded but must fail" "$T/o"
elif ! grep -Eq 'load of .* failed: .* at offset [0-9]+: gave up after [0-9]+ retries in [0-9.]+ s \(retry deadline 2 s\): HTTP 503' "$T/o"; then
	failc cold_outage_past_deadline "no line naming the retry deadline" "$T/o"
elif [ "$(grep -c 'load of .* failed' "$T/o")" -ne 1 ]; then
	failc cold_outage_past_deadline "the failure was reported more than once" "$T/o"
elif ! awk -v s="$secs" 'BEGIN { exit !(s >= 1.9 && s < 6) }'; then
	failc cold_outage_past_deadline "took $secs s (deadline 2 s)" "$T/o"
else
	echo "PASS cold_outage_past_deadline ($secs s)"
fi

# 4. a non-retryable status fails at once even with a long budget
control '{"outage_s":30,"outage_after":4,"outage_status":403}'
secs=$(timed_load "$T/o" --loader-retry-deadline-s 300)
if [ "$(cat "$T/rc")" -eq 0 ] || ! grep -q 'HTTP 403' "$T/o"; then
	failc cold_403_fails_at_once "exit $(cat "$T/rc"), or no HTTP 403 named" "$T/o"
elif ! awk -v s="$secs" 'BEGIN { exit !(s < 2) }' || grep -q 'retry 1 in' "$T/o"; then
	failc cold_403_fails_at_once "retried or slow ($secs s)" "$T/o"
else
	echo "PASS cold_403_fails_at_once ($secs s)"
fi
control '{}'

# 5. an emulator with no key and no metadata host: anonymous at once (not minutes of
#    retrying metadata.google.internal)
control '{}'
t0=$(date +%s.%N)
env -u GOOGLE_APPLICATION_CREDENTIALS -u GCE_METADATA_HOST STORAGE_EMULATOR_HOST="127.0.0.1:$PORT" \
	"$BIN" load --model "gs://test-bucket/$GCS_PREFIX" --backend cpu --print-hash --loader-retry-deadline-s 20 \
	>"$T/o" 2>&1; rc=$?
secs=$(echo "$t0 $(date +%s.%N)" | awk '{printf "%.2f", $2 - $1}')
if [ $rc -ne 0 ] || ! grep -q "$REF" "$T/o"; then failc cold_emulator_anonymous "exit $rc ($secs s)" "$T/o"
elif ! awk -v s="$secs" 'BEGIN { exit !(s < 3) }' || [ "$(stat_of tokens_meta)" -ne 0 ]; then
	failc cold_emulator_anonymous "took $secs s or asked for a token" "$T/o"
else echo "PASS cold_emulator_anonymous ($secs s)"; fi

# 6. the fixture answers as GCS does where the testbench comparison found it did not
control '{}'
O="$URL/storage/v1/b/test-bucket/o/$(python3 -c 'import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1], safe=""))' "$GCS_PREFIX/config.json")"
curl -s "$O" >"$T/md"
code=$(curl -s -o "$T/suffix" -w '%{http_code}' -D "$T/hdr" -H 'Range: bytes=-8' "$O?alt=media")
gen404=$(curl -s -o /dev/null -w '%{http_code}' "$O?alt=media&generation=1")
ML=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mediaLink"])' "$T/md" 2>/dev/null)
curl -s -o "$T/dl" "$ML"; curl -s -o "$T/dlmd" "${ML%%\?*}"
if python3 - "$T/md" "$T/suffix" "$T/hdr" tests/golden/gemma2-tiny-b/config.json "$code" "$gen404" "$ML" "$T/dl" \
	"$T/dlmd" <<'PY'
import base64, hashlib, json, sys
md = json.load(open(sys.argv[1])); want = open(sys.argv[4], "rb").read()
assert "/download/storage/v1/b/test-bucket/o/" in sys.argv[7] and "alt=media" in sys.argv[7], sys.argv[7]
assert open(sys.argv[8], "rb").read() == want, "mediaLink did not serve the object"
assert json.load(open(sys.argv[9]))["md5Hash"] == md["md5Hash"], "/download without alt=media: not metadata"
assert md["md5Hash"] == base64.b64encode(hashlib.md5(want).digest()).decode(), md
assert md.get("etag") and md.get("timeCreated"), md
assert sys.argv[5] == "206" and open(sys.argv[2], "rb").read() == want[-8:], sys.argv[5]
h = open(sys.argv[3]).read().lower()
assert "x-goog-hash: crc32c=" in h and ",md5=" in h, h
assert sys.argv[6] == "404", sys.argv[6]
PY
then echo "PASS cold_fixture_gcs_shape"; else echo "FAIL cold_fixture_gcs_shape: see above"; fi

# 6b. per-connection throttling
control '{"conn_bw":16384}'
S="$URL/storage/v1/b/test-bucket/o/$(python3 -c 'import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1], safe=""))' "$GCS_PREFIX/model-00001-of-00002.safetensors")?alt=media"
one=$(curl -s -o /dev/null -o /dev/null -w '%{num_connects} %{time_total}\n' -r 0-16383 "$S" -r 16384-32767 "$S" |
	awk '{ n += $1; t += $2 } END { printf "%d %.2f", n, t }')
t0=$(date +%s.%N)
curl -s -o /dev/null -r 0-16383 "$S" & p1=$!
curl -s -o /dev/null -r 16384-32767 "$S" & p2=$!
wait "$p1" "$p2"	# (not a bare wait: the fixture runs in the background too)
two=$(echo "$t0 $(date +%s.%N)" | awk '{printf "%.2f", $2 - $1}')
control '{}'
echo "# cold_fixture_conn_bw: one connection ${one#* } s (${one% *} connect), two connections $two s"
if [ "${one% *}" != 1 ] || ! awk -v a="${one#* }" -v b="$two" 'BEGIN { exit !(a >= 1.8 && a < 3 && b >= 0.9 && b < 1.6) }'; then
	echo "FAIL cold_fixture_conn_bw: want ~2 s on one connection, ~1 s on two"
else echo "PASS cold_fixture_conn_bw"; fi

# 7. (opt-in, ~40 s: COLD_SLOW=1) the issue's 30 s outage, ridden out with the default 300 s budget
if [ "${COLD_SLOW:-0}" = 1 ]; then
	control '{"outage_s":30,"outage_after":4}'
	secs=$(timed_load "$T/o")
	if [ "$(cat "$T/rc")" -ne 0 ] || ! grep -q "$REF" "$T/o"; then
		failc cold_outage_30s_ridden_out "exit $(cat "$T/rc") or a different arena" "$T/o"
	elif ! awk -v s="$secs" 'BEGIN { exit !(s >= 29.5) }'; then
		failc cold_outage_30s_ridden_out "no 30 s outage seen ($secs s)" "$T/o"
	else echo "PASS cold_outage_30s_ridden_out ($secs s)"; fi
fi
