#!/usr/bin/env bash
# tests/service/access_log.test.sh - the JSON access log as Cloud Logging
# reads it (black box: real servers, curl, the log lines parsed as JSON):
# the project id from a fake metadata server (python http.server on
# loopback, GCE_METADATA_HOST; it insists on Metadata-Flavor: Google) and
# GOOGLE_CLOUD_PROJECT winning over it; none when the metadata server is
# unreachable (a debug line, no trace field); W3C traceparent and
# X-Cloud-Trace-Context to logging.googleapis.com/{trace,spanId,
# trace_sampled} (traceparent first, malformed -> nothing); 4xx WARNING,
# 5xx ERROR; requestUrl with scheme (X-Forwarded-Proto), host, path and
# redacted query; requestSize/responseSize as int64 strings that match what
# curl sent and got; a client that leaves mid-stream (499) logs the tokens
# generated so far; a metadata server that never answers delays neither
# listening (it happens before the lookup gives up) nor exit.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/service/lib.sh
T=$(mktemp -d)
MPID=
trap '[ -n "$MPID" ] && kill "$MPID" 2>/dev/null; kill_all; rm -rf "$T"' EXIT
unset GOOGLE_CLOUD_PROJECT
if [ ! -x "$BIN" ]; then echo "FAIL alog_setup: $BIN not built"; exit 1; fi
MODEL=$(model_tiny) || { echo "FAIL alog_setup: cannot make the tiny model"; exit 1; }

# --- a fake metadata server ---
MPORT=$(free_port)
cat >"$T/meta.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(sys.argv[2], "a") as f:
            f.write("%s %s\n" % (self.path, self.headers.get("Metadata-Flavor")))
        if self.headers.get("Metadata-Flavor") != "Google":
            self.send_response(403); self.end_headers(); return
        if self.path != "/computeMetadata/v1/project/project-id":
            self.send_response(404); self.end_headers(); return
        b = b"fake-proj-123"
        self.send_response(200)
        self.send_header("Metadata-Flavor", "Google")
        self.send_header("Content-Type", "application/text")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$T/meta.py" "$MPORT" "$T/meta.log" &
MPID=$!
for _ in $(seq 100); do
	curl -s -o /dev/null -H 'Metadata-Flavor: Google' "http://127.0.0.1:$MPORT/computeMetadata/v1/project/project-id" && break
	sleep 0.05
done
: >"$T/meta.log"

# logs FILE FILTER-PYTHON: the access lines of FILE as a list `acc`, then the checks
logs() {
	local f=$1; shift
	python3 - "$f" <<PY
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
acc = [l for l in lines if "httpRequest" in l]
def by_ua(ua):
    m = [l for l in acc if l["httpRequest"]["userAgent"] == ua]
    assert m, "no access line with User-Agent " + ua
    return m[-1]
$*
PY
}

# --- server 1: project id from the metadata server ---
GCE_METADATA_HOST="127.0.0.1:$MPORT" start_serve "$T/log1" --model "$MODEL" \
	--served-model-name tiny --max-model-len 512 --log-format json
if ! wait_ready 60; then echo "FAIL alog_setup: server not ready"; tail -20 "$T/log1"; exit 1; fi
U="http://127.0.0.1:$SPORT"
TP=4bf92f3577b34da6a3ce929d0e0e4736
curl -s -o /dev/null -A tp1 -H "traceparent: 00-$TP-00f067aa0ba902b7-01" "$U/v1/models"
curl -s -o /dev/null -A xc1 -H 'X-Cloud-Trace-Context: 105445aa7843bc8bf206b12000100000/2706431281394578193;o=0' "$U/v1/models"
curl -s -o /dev/null -A both1 -H "traceparent: 00-$TP-00f067aa0ba902b7-00" \
	-H 'X-Cloud-Trace-Context: 105445aa7843bc8bf206b12000100000/1;o=1' "$U/v1/models"
curl -s -o /dev/null -A badtp1 -H "traceparent: 00-$TP-0000000000000000-01" \
	-H 'X-Cloud-Trace-Context: 105445aa7843bc8bf206b12000100000/1;o=1' "$U/v1/models"
curl -s -o /dev/null -A badxc1 -H 'X-Cloud-Trace-Context: 105445aa7843bc8bf206b1200010000/1;o=1' "$U/v1/models"
sleep 0.2
grep -q '^/computeMetadata/v1/project/project-id Google$' "$T/meta.log"
check alog_metadata_asked $? "metadata server log: $(head -3 "$T/meta.log")"
logs "$T/log1" "
l = by_ua('tp1')
assert l['logging.googleapis.com/trace'] == 'projects/fake-proj-123/traces/$TP', l
assert l['logging.googleapis.com/spanId'] == '00f067aa0ba902b7', l
assert l['logging.googleapis.com/trace_sampled'] is True, l
"
check alog_traceparent_metadata_project $? "see above"
logs "$T/log1" "
l = by_ua('xc1')
assert l['logging.googleapis.com/trace'] == 'projects/fake-proj-123/traces/105445aa7843bc8bf206b12000100000', l
assert l['logging.googleapis.com/spanId'] == '258f2ce940877311', l
assert l['logging.googleapis.com/trace_sampled'] is False, l
"
check alog_xcloud_span_hex $? "see above"
logs "$T/log1" "
l = by_ua('both1')
assert l['logging.googleapis.com/trace'].endswith('/traces/$TP'), l
assert l['logging.googleapis.com/trace_sampled'] is False, l
for ua in ('badtp1', 'badxc1'):
    l = by_ua(ua)
    assert not any(k.startswith('logging.googleapis.com/') for k in l), l
"
check alog_trace_precedence_and_malformed $? "see above"

# --- severities, requestUrl, sizes ---
curl -s -o /dev/null -A url1 -H 'Host: gemma.example.run.app' -H 'X-Forwarded-Proto: https' \
	"$U/v1/models?key=s3cret&x=1"
curl -s -o /dev/null -A url2 "$U/v1/models?a=b"
body='{"prompt":"Hello there","max_tokens":5}'
curl -s -o "$T/b" -A size1 -H 'Content-Type: application/json' --data-binary "$body" \
	-w '%{size_upload} %{size_request} %{size_header} %{size_download}' "$U/v1/completions" >"$T/sz1"
curl -s -o "$T/b" -A size2 -H 'Content-Type: application/json' \
	--data-binary '{"prompt":"Hello there","max_tokens":5,"stream":true}' \
	-w '%{size_upload} %{size_request} %{size_header} %{size_download}' "$U/v1/completions" >"$T/sz2"
curl -s -o /dev/null -A warn1 -H 'Content-Type: application/json' --data-binary '{"prompt": "hi",' "$U/v1/completions"
sleep 0.2
logs "$T/log1" "
l = by_ua('url1')
assert l['httpRequest']['requestUrl'] == 'https://gemma.example.run.app/v1/models?key=REDACTED&x=1', l
assert l['severity'] == 'INFO', l
l = by_ua('url2')
assert l['httpRequest']['requestUrl'] == 'http://127.0.0.1:$SPORT/v1/models?a=b', l
l = by_ua('warn1')
assert l['severity'] == 'WARNING' and l['httpRequest']['status'] == 400, l
"
check alog_full_url_and_4xx_warning $? "see above"
logs "$T/log1" "
for ua, f in (('size1', '$T/sz1'), ('size2', '$T/sz2')):
    up, req, hdr, down = map(int, open(f).read().split())
    h = by_ua(ua)['httpRequest']
    assert isinstance(h['requestSize'], str) and isinstance(h['responseSize'], str), h
    rq, rs = int(h['requestSize']), int(h['responseSize'])
    # request: exactly what curl sent (size_request: line, headers, body)
    assert rq == req and up > 0, (ua, rq, req, up)
    # response: curl's status line, headers and decoded body, less the
    # Date/Content-Length/Transfer-Encoding lines evhttp adds while sending
    assert down + 20 <= rs <= hdr + down, (ua, rs, hdr, down)
"
check alog_request_response_size $? "see above"

# --- a client that leaves mid-stream: 499 with the tokens generated so far ---
python3 - "$SPORT" <<'PY' >"$T/499" 2>&1
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
b = b'{"prompt":"Hello","max_tokens":400,"min_tokens":400,"stream":true}'
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nUser-Agent: gone1\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\n\r\n%s" % (len(b), b))
got = b""
while got.count(b"data: ") < 3:
    d = s.recv(65536)
    if not d:
        break
    got += d
s.close()
print("events", got.count(b"data: "))
PY
sleep 0.5
logs "$T/log1" "
l = by_ua('gone1')
assert l['httpRequest']['status'] == 499, l
assert l['severity'] == 'WARNING', l
assert l['tokensIn'] >= 2 and l['tokensOut'] >= 3, l
assert int(l['httpRequest']['responseSize']) > 0, l
"
check alog_499_counts_tokens $? "$(cat "$T/499")"

# --- server 2: GOOGLE_CLOUD_PROJECT wins over the metadata server ---
GOOGLE_CLOUD_PROJECT=env-proj GCE_METADATA_HOST="127.0.0.1:$MPORT" start_serve "$T/log2" --model "$MODEL" \
	--served-model-name tiny --max-model-len 128 --log-format json
if wait_ready 60; then
	curl -s -o /dev/null -A tp2 -H "traceparent: 00-$TP-00f067aa0ba902b7-01" "http://127.0.0.1:$SPORT/v1/models"
	sleep 0.2
	logs "$T/log2" "
l = by_ua('tp2')
assert l['logging.googleapis.com/trace'] == 'projects/env-proj/traces/$TP', l
"
	check alog_env_project_wins $? "see above"
else
	fail alog_env_project_wins "server 2 not ready"
fi

# --- server 3: no metadata server: no trace field, a debug line; 5xx is ERROR ---
CPORT=$(free_port)
GCE_METADATA_HOST="127.0.0.1:$CPORT" start_serve "$T/log3" --model "$T/no-such-model" \
	--log-format json --log-level debug
st=
for _ in $(seq 100); do
	st=$(curl -s -o /dev/null -w '%{http_code}' -A err3 -H "traceparent: 00-$TP-00f067aa0ba902b7-01" \
		"http://127.0.0.1:$SPORT/v1/models")
	[ "$st" = 503 ] && break
	sleep 0.05
done
sleep 0.3
logs "$T/log3" "
l = by_ua('err3')
assert l['httpRequest']['status'] == 503 and l['severity'] == 'ERROR', l
assert not any(k.startswith('logging.googleapis.com/') for k in l), l
assert any('no project id' in x['message'] and 'GOOGLE_CLOUD_PROJECT' in x['message'] for x in lines), 'no debug line'
"
check alog_no_project_and_5xx_error $? "status $st; see above"

# --- server 4: a metadata server that never answers delays neither start nor exit ---
BPORT=$(free_port)
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8); time.sleep(60)' "$BPORT" &
BHPID=$!
GCE_METADATA_HOST="127.0.0.1:$BPORT" start_serve "$T/log4" --model "$MODEL" --max-model-len 128 \
	--log-format json --log-level debug
if wait_ready 60; then
	sleep 1.5	# the lookup gives up after 1 s
	t0=$(date +%s%N)
	kill -TERM "$SPID"
	for _ in $(seq 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.05; done
	dt=$(( ($(date +%s%N) - t0) / 1000000 ))
	logs "$T/log4" "
msgs = [x['message'] for x in lines]
r = [i for i, m in enumerate(msgs) if m.startswith('ready in')]
n = [i for i, m in enumerate(msgs) if 'no project id' in m]
l = [i for i, m in enumerate(msgs) if m.startswith('listening on')]
assert r and n and l, msgs[-8:]
assert l[0] < n[0], 'the server listened only after the metadata lookup gave up'
assert 'imeout' in msgs[n[0]] or 'timed out' in msgs[n[0]], msgs[n[0]]
assert $dt < 3000, 'exit took $dt ms'
"
	check alog_silent_metadata_server_no_delay $? "exit ${dt} ms"
else
	fail alog_silent_metadata_server_no_delay "server 4 not ready"
fi
kill "$BHPID" 2>/dev/null
