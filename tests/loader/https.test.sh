#!/usr/bin/env bash
# tests/loader/https.test.sh - gemma-run load from https:// and http:// served by
# nginx (Debian nginx-light) on 127.0.0.1 with a throwaway CA: ranged reads give
# the same arena as the local load (SHA-256 of every tensor), the CA bundle is
# required, a crc32c.json beside the weights is verified, a missing model fails.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
BIN="$BUILD/gemma-run"
if [ ! -x "$BIN" ]; then echo "FAIL https_setup: $BIN not built"; exit 1; fi
if [ ! -x /usr/sbin/nginx ]; then echo "FAIL https_setup: /usr/sbin/nginx missing (tools/deps.sh installs nginx-light)"; exit 1; fi
T=$(mktemp -d)
. tests/fixtures/nginx_tls.sh
trap 'nginx_tls_stop; rm -rf "$T"' EXIT
mkdir -p "$T/root"
cp -r tests/golden/gemma2-tiny-b "$T/root/b"
cp -r tests/golden/gemma2-tiny-b "$T/root/b-flip"
"$BIN" checksum "$T/root/b-flip" >/dev/null || { echo "FAIL https_setup: checksum"; exit 1; }
cp "$T/root/b-flip/crc32c.json" "$T/root/b/crc32c.json"
python3 - "$T/root/b-flip/model-00001-of-00002.safetensors" <<'PY'
import os, sys
p = sys.argv[1]
with open(p, "r+b") as f:
    f.seek(os.path.getsize(p) - 777); c = f.read(1); f.seek(-1, 1); f.write(bytes([c[0] ^ 4]))
PY
if ! nginx_tls_start "$T/root" "$T/ngx"; then echo "FAIL https_setup: nginx did not start"; exit 1; fi
REF=$("$BIN" load --simple --model tests/golden/gemma2-tiny-b --backend cpu --print-hash 2>/dev/null | grep -o '"sha256":"[0-9a-f]*"')
[ -n "$REF" ] || { echo "FAIL https_setup: reference load"; exit 1; }
HTTPS="https://127.0.0.1:$NGINX_HTTPS_PORT"
HTTP="http://127.0.0.1:$NGINX_HTTP_PORT"
ld() { "$BIN" load --backend cpu --print-hash --loader-chunk-mb 0.05 --loader-workers 6 "$@"; }

out=$(ld --model "$HTTPS/b" --ca-bundle "$NGINX_CA" 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q "$REF" <<<"$out"; then echo "PASS https_ranges_with_ca_bundle"
else echo "FAIL https_ranges_with_ca_bundle: rc $rc"; echo "$out" | tail -5 | sed 's/^/    | /'; fi

out=$(ld --model "$HTTPS/b" 2>&1); rc=$?
if [ $rc -ne 0 ] && grep -Eqi 'certificate|SSL' <<<"$out" && ! grep -q sha256 <<<"$out"; then echo "PASS https_untrusted_ca_refused"
else echo "FAIL https_untrusted_ca_refused: rc $rc"; echo "$out" | tail -5 | sed 's/^/    | /'; fi

out=$(ld --model "$HTTP/b/" 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q "$REF" <<<"$out"; then echo "PASS http_ranges_with_manifest"
else echo "FAIL http_ranges_with_manifest: rc $rc"; echo "$out" | tail -5 | sed 's/^/    | /'; fi

out=$(ld --model "$HTTPS/b-flip" --ca-bundle "$NGINX_CA" 2>&1); rc=$?
if [ $rc -ne 0 ] && grep -q 'model-00001-of-00002.safetensors at offset 0: crc32c mismatch' <<<"$out"; then echo "PASS https_manifest_catches_flipped_byte"
else echo "FAIL https_manifest_catches_flipped_byte: rc $rc"; echo "$out" | tail -5 | sed 's/^/    | /'; fi

out=$(ld --model "$HTTP/nothing-here" 2>&1); rc=$?
if [ $rc -ne 0 ] && grep -q 'nothing-here/config.json at offset 0: not found' <<<"$out"; then echo "PASS http_missing_model"
else echo "FAIL http_missing_model: rc $rc"; echo "$out" | tail -5 | sed 's/^/    | /'; fi

MK="$BUILD/mkmodel"; [ -x "$MK" ] || MK=build/mkmodel
if [ -x "$MK" ]; then
	"$MK" --preset custom --vocab 8192 --hidden 256 --ff 768 --layers 3 --shards 3 --out "$T/root/mk" >/dev/null 2>&1
	R2=$("$BIN" load --simple --model "$T/root/mk" --backend cpu --print-hash 2>/dev/null | grep -o '"sha256":"[0-9a-f]*"')
	out=$(ld --model "$HTTPS/mk" --ca-bundle "$NGINX_CA" --loader-chunk-mb 0.3 2>&1); rc=$?
	if [ $rc -eq 0 ] && [ -n "$R2" ] && grep -q "$R2" <<<"$out"; then echo "PASS https_mkmodel_three_shards"
	else echo "FAIL https_mkmodel_three_shards: rc $rc"; echo "$out" | tail -5 | sed 's/^/    | /'; fi
else
	echo "SKIP https_mkmodel_three_shards: no mkmodel binary"
fi
exit 0
