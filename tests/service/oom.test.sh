#!/usr/bin/env bash
# tests/service/oom.test.sh - a reply that cannot be built in full is never
# sent as if whole. The server runs with GR_TEST_SBUF_MAX=1024 (common/sbuf.h:
# every buffer growth past 1 KiB fails as if malloc had): small replies still
# work, a large plain reply is a 500 with the OpenAI error body, and a stream
# whose chunk cannot be built ends with an error event and [DONE] instead of
# a cut JSON chunk. Before the fix both went out with status 200, truncated.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/service/lib.sh
T=$(mktemp -d)
trap 'kill_all; rm -rf "$T"' EXIT
if [ ! -x "$BIN" ]; then echo "FAIL oom_setup: $BIN not built"; exit 1; fi
MODEL=$(model_tiny) || { echo "FAIL oom_setup: cannot make the tiny model"; exit 1; }

GR_TEST_SBUF_MAX=1024 start_serve "$T/log" --model "$MODEL" --served-model-name tiny --max-model-len 256
if ! wait_ready 60; then
	echo "FAIL oom_setup: server not ready"; tail -20 "$T/log"; exit 1
fi
U="http://127.0.0.1:$SPORT"
# post PATH BODY -> body in $T/out, status in $code
post() { code=$(curl -s -o "$T/out" -w '%{http_code}' -H 'Content-Type: application/json' -d "$2" "$U$1"); }
# is_oom_error FILE: the whole file is the OpenAI 500 "out of memory" body
is_oom_error() {
	python3 - "$1" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))["error"]
sys.exit(0 if e["code"] == 500 and e["message"] == "out of memory" and e["type"] == "InternalServerError" else 1)
PY
}

# a small reply fits: the server works under the limit
post /v1/completions '{"model":"tiny","prompt":"hi","max_tokens":1}'
[ "$code" = 200 ] && python3 -c 'import json,sys; json.load(open(sys.argv[1]))["choices"][0]["text"]' "$T/out" 2>/dev/null
check oom_small_reply_ok $? "status $code: $(head -c 300 "$T/out")"

# 16 tokens with 20 top logprobs each: several KiB of JSON -> 500, whole error body
post /v1/completions '{"model":"tiny","prompt":"hi","max_tokens":16,"logprobs":20,"ignore_eos":true}'
[ "$code" = 500 ] && is_oom_error "$T/out" 2>/dev/null
check oom_plain_reply_500 $? "status $code: $(head -c 300 "$T/out")"

post /v1/chat/completions '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":16,"logprobs":true,"top_logprobs":20,"ignore_eos":true}'
[ "$code" = 500 ] && is_oom_error "$T/out" 2>/dev/null
check oom_chat_reply_500 $? "status $code: $(head -c 300 "$T/out")"

# a stream: every event is whole JSON, the last before [DONE] is the error
curl -s -N -o "$T/sse" -w '%{http_code}' -H 'Content-Type: application/json' -d '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":16,"logprobs":true,"top_logprobs":20,"ignore_eos":true,"stream":true}' "$U/v1/chat/completions" >"$T/code"
[ "$(cat "$T/code")" = 200 ] && python3 - "$T/sse" 2>"$T/why" <<'PY'
import json, sys
ev = [l[6:] for l in open(sys.argv[1]).read().split("\n") if l.startswith("data: ")]
assert ev and ev[-1] == "[DONE]", ev[-3:]
objs = [json.loads(e) for e in ev[:-1]]          # a cut chunk fails here
assert objs[0]["choices"][0]["delta"]["role"] == "assistant"
err = objs[-1]["error"]
assert err["code"] == 500 and err["message"] == "out of memory", err
assert not any("error" in o for o in objs[:-1])
PY
check oom_stream_error_event $? "status $(cat "$T/code"): $(tail -1 "$T/why") $(head -c 400 "$T/sse")"

# /metrics is several KiB of text: 500 rather than a cut exposition
code=$(curl -s -o "$T/out" -w '%{http_code}' "$U/metrics")
[ "$code" = 500 ] && is_oom_error "$T/out" 2>/dev/null
check oom_metrics_500 $? "status $code: $(head -c 200 "$T/out")"

# and afterwards the server still answers (the stream's choices were cancelled)
h=$(curl -s -o /dev/null -w '%{http_code}' "$U/health")
post /v1/completions '{"model":"tiny","prompt":"hi","max_tokens":1}'
[ "$h" = 200 ] && [ "$code" = 200 ]
check oom_server_still_serves $? "health $h, completion $code: $(head -c 200 "$T/out")"
