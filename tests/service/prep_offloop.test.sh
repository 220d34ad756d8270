#!/usr/bin/env bash
# tests/service/prep_offloop.test.sh - prompts are tokenized off the loop
# thread (service/http/http_prep.c): while three ~1 MB prompts are being
# tokenized (each far longer than max_model_len, so each ends in a 400 after
# its tokenization), /health and a small completion are answered first; the
# big requests still get their 400 naming the prompt length; a client that
# hangs up during tokenization leaves nothing behind (the server stays
# healthy, /metrics counts no running request).
# An ordering check, not a timing one: three 1 MB tokenizations take
# hundreds of milliseconds even on a fast machine, a /health round trip
# takes well under one.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/service/lib.sh
T=$(mktemp -d)
trap 'kill_all; rm -rf "$T"' EXIT
if [ ! -x "$BIN" ]; then echo "FAIL prep_setup: $BIN not built"; exit 1; fi
MODEL=$(model_tiny) || { echo "FAIL prep_setup: cannot make the tiny model"; exit 1; }
start_serve "$T/log" --model "$MODEL" --served-model-name tiny --max-model-len 512 \
	--max-body-bytes 4000000 --log-format text
if ! wait_ready 60; then echo "FAIL prep_setup: server not ready"; tail -20 "$T/log"; exit 1; fi

python3 - "$SPORT" <<'PY'
import http.client, json, random, sys, threading, time
port = int(sys.argv[1])
random.seed(7)
words = ["alpha", "beta", "gamma", "delta", "épsilon", "zeta", "東京", "naïve", "x1", "y2"]
prompt = " ".join(random.choice(words) for _ in range(150000))[:1200000]
big = json.dumps({"model": "tiny", "prompt": prompt, "max_tokens": 1}).encode()
events, lock = [], threading.Lock()
sent = threading.Semaphore(0)

def note(what):
    with lock:
        events.append((time.monotonic(), what))

def big_req(i, hang_up=False):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("POST", "/v1/completions", body=big, headers={"Content-Type": "application/json"})
    sent.release()
    if hang_up:
        c.close()
        return
    r = c.getresponse()
    body = r.read()
    note(("big", i, r.status, body[:200]))

threads = [threading.Thread(target=big_req, args=(i,)) for i in range(3)]
threads.append(threading.Thread(target=big_req, args=(3, True)))
for t in threads:
    t.start()
for _ in threads:
    sent.acquire()
time.sleep(0.02)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
c.request("GET", "/health")
r = c.getresponse(); r.read()
note(("health", r.status))
c.request("POST", "/v1/completions", body=json.dumps({"model": "tiny", "prompt": "hi", "max_tokens": 2}),
          headers={"Content-Type": "application/json"})
r = c.getresponse(); body = r.read()
note(("small", r.status))
for t in threads:
    t.join()
order = [e[1][0] for e in sorted(events)]
bigs = [e[1] for e in events if e[1][0] == "big"]
ok_order = order.index("health") < order.index("big") and order.index("small") < order.index("big")
print(("PASS" if ok_order else "FAIL") + " prep_health_not_blocked" +
      ("" if ok_order else ": completion order %s" % order))
ok400 = len(bigs) == 3 and all(b[2] == 400 and b"maximum context length" in b[3] for b in bigs)
print(("PASS" if ok400 else "FAIL") + " prep_errors_after_tokenizing" +
      ("" if ok400 else ": %s" % [(b[2], b[3][:120]) for b in bigs]))
PY

# the hung-up request left nothing running; the server still answers
sleep 0.5
ok=1
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SPORT/health")" = 200 ] || ok=0
run=$(metric vllm:num_requests_running)
[ "${run%.*}" = 0 ] || ok=0
check prep_hangup_clean "$([ $ok = 1 ]; echo $?)" "health or num_requests_running ($run) wrong after a hang-up"
kill_all
check prep_no_sanitizer_report "$(grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/log"; [ $? = 1 ]; echo $?)" "see $T/log"
