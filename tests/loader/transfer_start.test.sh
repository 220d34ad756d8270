#!/usr/bin/env bash
# tests/loader/transfer_start.test.sh - how the transfer starts, against the GCS
# fixture's request log (GET /_log: name, kind, range start, start/end times):
#   xfer_tokenizer_beside_shards  tokenizer.json (answer held 1 s by the fixture)
#                                 is fetched by the pool beside the shards: shard
#                                 data requests start before its answer ends (the
#                                 old loader fetched it whole before any shard)
#   xfer_tokenizer_checked        a tokenizer.json that does not match crc32c.json
#                                 still fails the load, naming it (local source)
#   xfer_first_byte_is_a_byte     every data answer sends 1 byte, then holds 1 s:
#                                 the first_byte stage is that byte (< 0.5 s), not
#                                 the first completed chunk (>= 1 s)
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/loader/lib.sh
M=$(mktemp -d)
trap 'cleanup; rm -rf "$M"' EXIT
cp tests/golden/gemma2-tiny-b/*.json tests/golden/gemma2-tiny-b/*.safetensors "$M/" && rm -f "$M/cases.json"
python3 -c 'import json; print(json.dumps({"model": {"type": "x", "vocab": {"t%d" % i: i for i in range(60000)}}}))' \
	>"$M/tokenizer.json"
gcs_fixture_start xfer "$M" models/tok
json_field() { grep '^{' "$1" | python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$2"; }

# 1. tokenizer.json in the pool
control '{"delay_objects":{"tokenizer.json":1.0}}'
gsload "$T/tok" --gcs-anonymous --loader-stall-s 5; rc=$?
curl -s "$URL/_log" >"$T/log"
if [ $rc -ne 0 ] || ! grep -q "$REF" "$T/tok"; then failc xfer_tokenizer_beside_shards "exit $rc or other bytes" "$T/tok"
elif ! python3 - "$T/log" <<'PY'
import json, sys
log = json.load(open(sys.argv[1]))
tok = [e for e in log if e[0].endswith("/tokenizer.json") and e[1] == "media"]
assert len(tok) == 1, "tokenizer.json fetched %d times: %s" % (len(tok), tok)
t_start, t_end = tok[0][3], tok[0][4]
assert t_end - t_start >= 0.9, "the fixture did not hold tokenizer.json (%.2f s)" % (t_end - t_start)
data = [e for e in log if e[0].endswith(".safetensors") and e[1] == "media" and (e[2] or 0) > 0]
during = [e for e in data if e[3] < t_end]
print("# %d shard data requests, %d started while tokenizer.json was in flight" % (len(data), len(during)))
assert len(during) >= 4, "only %d shard data requests started before tokenizer.json's answer ended" % len(during)
PY
then echo "FAIL xfer_tokenizer_beside_shards: see above"
else echo "PASS xfer_tokenizer_beside_shards"; fi

# 2. the pool's tokenizer.json is still checked against crc32c.json
cp -r "$M" "$T/bad" && "$BIN" checksum "$T/bad" >/dev/null && echo ' ' >>"$T/bad/tokenizer.json"
"$BIN" load --model "$T/bad" --backend cpu >"$T/bad.out" 2>&1; rc=$?
if [ $rc -eq 0 ]; then failc xfer_tokenizer_checked "a changed tokenizer.json loaded" "$T/bad.out"
elif ! grep -q 'tokenizer.json at offset 0: does not match its crc32c.json entry' "$T/bad.out" ||
     [ "$(grep -c 'load of .* failed' "$T/bad.out")" -ne 1 ]; then
	failc xfer_tokenizer_checked "not one line naming tokenizer.json" "$T/bad.out"
else echo "PASS xfer_tokenizer_checked"; fi

# 3. first_byte: the first byte received, not the first chunk completed
control '{"hold_s":1.0,"hold_bytes":1}'
gsload "$T/fb" --gcs-anonymous --loader-workers 4; rc=$?
if [ $rc -ne 0 ] || ! grep -q "$REF" "$T/fb"; then failc xfer_first_byte_is_a_byte "exit $rc or other bytes" "$T/fb"
else
	fb=$(json_field "$T/fb" "['stages']['first_byte']")
	tr=$(json_field "$T/fb" "['stages']['transfer']")
	echo "# first_byte $fb s, transfer $tr s"
	if ! awk -v f="$fb" -v t="$tr" 'BEGIN { exit !(f > 0 && f < 0.5 && t >= 1.0) }'; then
		failc xfer_first_byte_is_a_byte "first_byte $fb s (want < 0.5 with answers held 1 s), transfer $tr s" "$T/fb"
	else echo "PASS xfer_first_byte_is_a_byte"; fi
fi
