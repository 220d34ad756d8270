#!/usr/bin/env bash
# tests/loader/http_quirks.test.sh - gemma-run load from http:// served by a
# small Range server written here (python3 stdlib, 127.0.0.1) that behaves as
# real servers and proxies may:
#   cap_first N      the first ranged read is answered with at most N bytes (a
#                    valid, shorter 206 with a matching Content-Range). The
#                    loader must read the rest of the header itself. Regression:
#                    the shard-head buffer shrank to that header's size and the
#                    next shard's head read overflowed it (heap-buffer-overflow
#                    under ASan); fewer than 8 bytes was refused as "shorter
#                    than a safetensors header".
#   replace_after N  after N ranged reads every file changes (one byte, new
#                    strong ETag); If-Match is honoured with 412. Regression: the
#                    load mixed old and new bytes and succeeded (a silently wrong
#                    weight); now the ETag of the first read pins every chunk.
#   gzipcut_at K     the K-th ranged read is answered gzip-compressed (though
#                    identity was asked for) and cut in half. Regression: the
#                    compressed bytes were kept as the range's first bytes and
#                    the read resumed after them (a silently wrong weight); now
#                    an encoded body is refused before a byte of it is stored.
#   weak             ETags are weak (W/"..."): nothing to pin, the load works.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
BIN="$BUILD/gemma-run"
G=tests/golden/gemma2-tiny-b
if [ ! -x "$BIN" ]; then echo "FAIL httpq_setup: $BIN not built"; exit 1; fi
T=$(mktemp -d)
SPID=
cleanup() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
REF=$("$BIN" load --simple --model "$G" --backend cpu --print-hash 2>/dev/null | grep -o '"sha256":"[0-9a-f]*"')
[ -n "$REF" ] || { echo "FAIL httpq_setup: reference load"; exit 1; }

cat >"$T/srv.py" <<'PY'
import gzip, json, os, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
root, opts, portfile = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
files = {f: bytearray(open(os.path.join(root, f), "rb").read()) for f in os.listdir(root)}
st = {"ranged": 0, "gen": 1, "p412": 0}
lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def empty(self, code):
        self.send_response(code); self.send_header("Content-Length", "0"); self.end_headers()
    def do_GET(self):
        name = self.path.lstrip("/")
        if name == "_stats":
            b = json.dumps(st).encode()
            self.send_response(200); self.send_header("Content-Length", str(len(b))); self.end_headers()
            self.wfile.write(b); return
        rng = self.headers.get("Range")
        with lock:
            if name not in files:
                return self.empty(404)
            if rng:
                st["ranged"] += 1
                if opts.get("replace_after") and st["ranged"] == opts["replace_after"] + 1:
                    for d in files.values():
                        if d:
                            d[len(d) // 2] ^= 1
                    st["gen"] += 1
            first = st["ranged"] == 1
            gzcut = rng and st["ranged"] == opts.get("gzipcut_at")
            data = bytes(files[name])
            etag = '%s"%s-%d"' % ("W/" if opts.get("weak") else "", name, st["gen"])
        im = self.headers.get("If-Match")
        if im is not None and im != etag:
            st["p412"] += 1
            return self.empty(412)
        if not rng:
            self.send_response(200); self.send_header("Content-Length", str(len(data)))
            self.send_header("ETag", etag); self.end_headers(); self.wfile.write(data); return
        a, b = rng.split("=")[1].split("-")
        a, b = int(a), min(int(b), len(data) - 1)
        if first and opts.get("cap_first"):
            b = min(b, a + opts["cap_first"] - 1)
        body = data[a:b + 1]
        if gzcut:
            body = gzip.compress(body)
        self.send_response(206)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Range", "bytes %d-%d/%d" % (a, b, len(data)))
        self.send_header("ETag", etag)
        if gzcut:
            self.send_header("Content-Encoding", "gzip")
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.end_headers()
        self.wfile.write(body)
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
open(portfile + ".tmp", "w").write(str(s.server_address[1]))
os.rename(portfile + ".tmp", portfile)
s.serve_forever()
PY

OUT=
# run_case NAME OPTS_JSON [load args]: starts the server, loads, leaves $OUT and $RC
run_case() {
	local name=$1 opts=$2; shift 2
	rm -f "$T/port"
	python3 "$T/srv.py" "$G" "$opts" "$T/port" 2>"$T/srv.log" &
	SPID=$!
	for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.05; done
	if [ ! -s "$T/port" ]; then OUT="server did not start"; RC=99; return; fi
	PORT=$(cat "$T/port")
	OUT=$("$BIN" load --model "http://127.0.0.1:$PORT" --backend cpu --print-hash "$@" 2>&1); RC=$?
	STATS=$(curl -s "http://127.0.0.1:$PORT/_stats")
	kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; SPID=
}
show() { grep -E 'ERROR|^E |failed' <<<"$OUT" | head -4 | sed 's/^/    | /'; }
expect_ok() {
	if [ "$RC" -eq 0 ] && grep -q "$REF" <<<"$OUT"; then echo "PASS $1"; else echo "FAIL $1: rc $RC"; show; fi
}

run_case httpq_first_206_1000_bytes '{"cap_first":1000}'; expect_ok httpq_first_206_1000_bytes
run_case httpq_first_206_3_bytes '{"cap_first":3}'; expect_ok httpq_first_206_3_bytes

run_case httpq_replaced_mid_load '{"replace_after":6}' --loader-chunk-mb 0.05 --loader-workers 2
if [ "$RC" -ne 0 ] && grep -q 'HTTP 412.*object changed during the load' <<<"$OUT" && ! grep -q sha256 <<<"$OUT" &&
	grep -q '"p412": [1-9]' <<<"$STATS"; then echo "PASS httpq_replaced_mid_load"
else echo "FAIL httpq_replaced_mid_load: rc $RC, server $STATS"; show; fi

run_case httpq_gzip_cut_refused '{"gzipcut_at":4}' --loader-chunk-mb 0.05 --loader-workers 1
if [ "$RC" -ne 0 ] && grep -q "Content-Encoding 'gzip'" <<<"$OUT" && ! grep -q sha256 <<<"$OUT"; then
	echo "PASS httpq_gzip_cut_refused"
else echo "FAIL httpq_gzip_cut_refused: rc $RC"; show; grep -o '"sha256":"[0-9a-f]*"' <<<"$OUT" | sed 's/^/    | /'; fi

run_case httpq_weak_etag '{"weak":true}' --loader-chunk-mb 0.05; expect_ok httpq_weak_etag
run_case httpq_strong_etag_unchanged '{}' --loader-chunk-mb 0.05; expect_ok httpq_strong_etag_unchanged
exit 0
