#!/usr/bin/env bash
# tests/loader/integrity.test.sh - what the loader promises about the weights
# (issue 17): crc32c.json is verified for gs:// models too (an object corrupted
# before upload has a matching object CRC but fails the manifest), by the
# --simple reference loader as well, every load says which checks ran
# ("weights_verified"), and a config that does not account for every tensor
# of the checkpoint is refused unless --allow-unused-tensors.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/loader/lib.sh
BUILD=${BUILD:-build}
BIN="$BUILD/gemma-run"
GOLD=tests/golden/gemma2-tiny-b
T0=$(mktemp -d)
trap 'cleanup; rm -rf "$T0"' EXIT

# a copy of the golden model with crc32c.json, and one whose shard 2 was damaged after it
good="$T0/good"; bad="$T0/bad"
cp -r "$GOLD" "$good"
if ! "$BIN" checksum "$good" >/dev/null 2>&1 || [ ! -s "$good/crc32c.json" ]; then
	echo "FAIL integrity_setup: gemma-run checksum wrote no crc32c.json"; exit 1
fi
cp -r "$good" "$bad"
python3 - "$bad/model-00002-of-00002.safetensors" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[-3] ^= 0x40; open(p, "wb").write(b)
PY

pass() { echo "PASS $1"; }
ok_verified() {	# NAME RC OUT LEVEL
	if [ "$2" -ne 0 ]; then failc "$1" "exit $2" "$3"; return; fi
	if ! grep -q "\"weights_verified\":\"$4\"" "$3"; then failc "$1" "not \"weights_verified\":\"$4\"" "$3"; return; fi
	pass "$1"
}
# one clear line naming the shard and crc32c.json, no result printed
fails_manifest() {	# NAME RC OUT
	if [ "$2" -eq 0 ]; then failc "$1" "a shard damaged before upload loaded" "$3"; return; fi
	n=$(grep -c 'model-00002-of-00002.safetensors.*crc32c mismatch: read .*, crc32c.json says' "$3")
	if [ "$n" -ne 1 ]; then failc "$1" "expected one line naming the shard and crc32c.json, got $n" "$3"; return; fi
	if grep -q '"sha256"' "$3"; then failc "$1" "printed a result despite failing" "$3"; return; fi
	pass "$1"
}

# --- gs:// (the fixture's object crc32c is computed from the bytes it serves) ---
gcs_fixture_start integrity "$bad" models/bad noref
gsload "$T/o"; rc=$?
fails_manifest gcs_manifest_catches_corruption_before_upload $rc "$T/o"
grep -q 'the stored object matches what was read' "$T/o" ||
	echo "FAIL gcs_manifest_message_says_why: no hint that the object itself was stored damaged"
grep -q 'the stored object matches what was read' "$T/o" && pass gcs_manifest_message_says_why
cleanup; FPID=; T=
gcs_fixture_start integrity "$good" models/good
gsload "$T/o"; rc=$?
ok_verified gcs_with_manifest_verified $rc "$T/o" crc32c-manifest
rm "$good/crc32c.json"; cleanup; FPID=; T=
gcs_fixture_start integrity "$good" models/nomanifest
gsload "$T/o"; rc=$?
ok_verified gcs_without_manifest_object_crc $rc "$T/o" object-crc32c
if [ "$(grep -c 'weights NOT verified end to end (object-crc32c)' "$T/o")" -eq 1 ]; then pass gcs_without_manifest_says_so_once
else failc gcs_without_manifest_says_so_once "no single 'NOT verified' line" "$T/o"; fi
"$BIN" checksum "$good" >/dev/null 2>&1

# --- local, both loaders ---
"$BIN" load --model "$bad" --backend cpu >"$T0/o" 2>&1; rc=$?
fails_manifest local_manifest_catches_corruption $rc "$T0/o"
"$BIN" load --simple --model "$bad" --backend cpu >"$T0/o" 2>&1; rc=$?
fails_manifest simple_loader_verifies_manifest $rc "$T0/o"
"$BIN" load --simple --model "$good" --backend cpu >"$T0/o" 2>&1; rc=$?
ok_verified simple_loader_clean_manifest $rc "$T0/o" crc32c-manifest
"$BIN" load --simple --model "$GOLD" --backend cpu >"$T0/o" 2>&1; rc=$?
ok_verified simple_loader_no_manifest $rc "$T0/o" sizes-only
"$BIN" load --model "$GOLD" --backend cpu >"$T0/o" 2>&1; rc=$?
ok_verified local_no_manifest_sizes_only $rc "$T0/o" sizes-only
if [ "$(grep -c 'weights NOT verified end to end (sizes-only)' "$T0/o")" -eq 1 ]; then pass local_no_manifest_says_so_once
else failc local_no_manifest_says_so_once "no single 'NOT verified' line" "$T0/o"; fi

# --- a config that does not account for every tensor: 3 layers over a 4-layer checkpoint ---
short="$T0/short"
cp -r "$GOLD" "$short"
sed -i 's/"num_hidden_layers": 4/"num_hidden_layers": 3/' "$short/config.json"
grep -q '"num_hidden_layers": 3' "$short/config.json" || echo "FAIL unused_setup: config not edited"
for simple in "" --simple; do
	name=unused_tensors_refused${simple:+_simple}
	"$BIN" load $simple --model "$short" --backend cpu >"$T0/o" 2>&1; rc=$?
	if [ "$rc" -ne 0 ] && grep -q "does not use (first: 'model.layers.3\." "$T0/o"; then pass "$name"
	else failc "$name" "exit $rc: a 4-layer checkpoint loaded under num_hidden_layers 3" "$T0/o"; fi
done
"$BIN" load --model "$short" --backend cpu --allow-unused-tensors >"$T0/o" 2>&1; rc=$?
if [ "$rc" -eq 0 ] && grep -q 'does not use' "$T0/o"; then pass unused_tensors_allowed_by_flag
else failc unused_tensors_allowed_by_flag "exit $rc" "$T0/o"; fi
ALLOW_UNUSED_TENSORS=1 "$BIN" load --model "$short" --backend cpu >"$T0/o" 2>&1; rc=$?
if [ "$rc" -eq 0 ]; then pass unused_tensors_allowed_by_env; else failc unused_tensors_allowed_by_env "exit $rc" "$T0/o"; fi
