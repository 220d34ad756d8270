#!/usr/bin/env bash
# tests/loader/http_names.test.sh - shard names that are not URL-safe over
# http:// (nginx, tests/fixtures/nginx_tls.sh): a space, '%2D', '#', '?', '+'
# and UTF-8 in a shard's file name must reach the server percent-encoded, so
# that the load gives the same arena as the local load of the same directory.
# A decoy file named like the percent-decoded name (model-1.safetensors beside
# model%2D1.safetensors, with one weight byte changed) must not be loaded
# instead: that was a silently wrong weight.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
BIN="$BUILD/gemma-run"
if [ ! -x "$BIN" ]; then echo "FAIL httpn_setup: $BIN not built"; exit 1; fi
if [ ! -x /usr/sbin/nginx ]; then echo "FAIL httpn_setup: /usr/sbin/nginx missing (tools/deps.sh installs nginx-light)"; exit 1; fi
T=$(mktemp -d)
. tests/fixtures/nginx_tls.sh
trap 'nginx_tls_stop; rm -rf "$T"' EXIT
G=tests/golden/gemma2-tiny-b

# mkdir_renamed DIR NAME1 NAME2: golden b with its two shards renamed (index rewritten)
mkdir_renamed() {
	python3 - "$G" "$1" "$2" "$3" <<'PY'
import json, os, shutil, sys
src, dst, n1, n2 = sys.argv[1:5]
os.makedirs(dst)
ix = json.load(open(os.path.join(src, "model.safetensors.index.json")))
old = sorted(set(ix["weight_map"].values()))
ren = {old[0]: n1, old[1]: n2}
ix["weight_map"] = {k: ren[v] for k, v in ix["weight_map"].items()}
json.dump(ix, open(os.path.join(dst, "model.safetensors.index.json"), "w"))
shutil.copy(os.path.join(src, "config.json"), dst)
for o, n in ren.items():
    shutil.copy(os.path.join(src, o), os.path.join(dst, n))
PY
}
mkdir -p "$T/root"
mkdir_renamed "$T/root/space" "model 1.safetensors" "ü+b.safetensors" || { echo "FAIL httpn_setup: model dirs"; exit 1; }
mkdir_renamed "$T/root/pct" "model%2D1.safetensors" "model-2.safetensors"
mkdir_renamed "$T/root/query" "x?y.safetensors" "a#b%.safetensors"
# the decoy: what a server finds for an unencoded "model%2D1.safetensors"
python3 - "$T/root/pct/model%2D1.safetensors" "$T/root/pct/model-1.safetensors" <<'PY'
import os, sys
b = bytearray(open(sys.argv[1], "rb").read())
b[len(b) - 777] ^= 4
open(sys.argv[2], "wb").write(b)
PY
if ! nginx_tls_start "$T/root" "$T/ngx"; then echo "FAIL httpn_setup: nginx did not start"; exit 1; fi
REF=$("$BIN" load --simple --model "$G" --backend cpu --print-hash 2>/dev/null | grep -o '"sha256":"[0-9a-f]*"')
[ -n "$REF" ] || { echo "FAIL httpn_setup: reference load"; exit 1; }
HTTP="http://127.0.0.1:$NGINX_HTTP_PORT"

for d in space pct query; do
	loc=$("$BIN" load --model "$T/root/$d" --backend cpu --print-hash 2>&1)
	out=$("$BIN" load --model "$HTTP/$d" --backend cpu --print-hash --loader-chunk-mb 0.1 2>&1); rc=$?
	if ! grep -q "$REF" <<<"$loc"; then echo "FAIL httpn_names_$d: the local load of the directory differs"
	elif [ $rc -eq 0 ] && grep -q "$REF" <<<"$out"; then echo "PASS httpn_names_$d"
	else echo "FAIL httpn_names_$d: rc $rc"; echo "$out" | tail -4 | sed 's/^/    | /'; fi
done
exit 0
