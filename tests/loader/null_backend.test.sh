#!/usr/bin/env bash
# tests/loader/null_backend.test.sh - `gemma-run load --backend null`: the GPU
# path's pipeline (staging ring, upload, CRC while hot) with the bytes dropped.
#   null_local_verified   a local model with crc32c.json loads; same bytes and
#                         tensors as the cpu load; the ring was used (small ring)
#   null_detects_corrupt  one flipped byte in a shard: crc32c mismatch (the
#                         bytes really went through the ring and were checked)
#   null_gcs              the same through the GCS fixture (object crc32c)
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/loader/lib.sh
gcs_fixture_start null tests/golden/gemma2-tiny-b models/tiny-b
M="$T/model"
cp -r tests/golden/gemma2-tiny-b "$M" && "$BIN" checksum "$M" >/dev/null || { echo "FAIL null_setup: checksum"; exit 1; }
field() { grep '^{' "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }

"$BIN" load --model "$M" --backend cpu >"$T/cpu" 2>&1
"$BIN" load --model "$M" --backend null --loader-pinned-mb 1 --loader-workers 4 >"$T/null" 2>&1; rc=$?
if [ $rc -ne 0 ]; then failc null_local_verified "exit $rc" "$T/null"
elif [ "$(field "$T/null" backend)" != null ] || [ "$(field "$T/null" bytes)" != "$(field "$T/cpu" bytes)" ] ||
     [ "$(field "$T/null" tensors)" != "$(field "$T/cpu" tensors)" ]; then
	failc null_local_verified "backend/bytes/tensors differ from the cpu load" "$T/null"
elif ! grep -q 'staging ring; using 524288-byte chunks' "$T/null"; then
	failc null_local_verified "the staging ring was not used" "$T/null"
else echo "PASS null_local_verified"; fi

python3 - "$M/model-00002-of-00002.safetensors" <<'PY'
import sys
p = sys.argv[1]; d = bytearray(open(p, "rb").read()); d[len(d) - 100] ^= 0x01; open(p, "wb").write(d)
PY
"$BIN" load --model "$M" --backend null --loader-pinned-mb 1 >"$T/bad" 2>&1; rc=$?
if [ $rc -eq 0 ]; then failc null_detects_corrupt "load succeeded on a corrupt shard" "$T/bad"
elif ! grep -q 'model-00002-of-00002.safetensors at offset 0: crc32c mismatch' "$T/bad"; then
	failc null_detects_corrupt "no crc32c mismatch named" "$T/bad"
else echo "PASS null_detects_corrupt"; fi

control '{}'
env STORAGE_EMULATOR_HOST="127.0.0.1:$PORT" "$BIN" load --model "gs://test-bucket/models/tiny-b" --backend null \
	--gcs-anonymous --loader-chunk-mb 0.0625 --loader-workers 4 >"$T/gs" 2>&1; rc=$?
if [ $rc -ne 0 ] || [ "$(field "$T/gs" bytes)" != "$(field "$T/cpu" bytes)" ]; then
	failc null_gcs "exit $rc or other bytes" "$T/gs"
elif [ "$(stat_of media)" -lt 16 ]; then failc null_gcs "too few media requests" "$T/gs"
else echo "PASS null_gcs"; fi
