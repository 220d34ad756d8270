#!/usr/bin/env bash
# tests/service/http_api.test.sh - black-box checks of `gemma-run serve` with
# curl on 127.0.0.1 (CPU backend, tiny mkmodel model): every route's JSON
# shape, every error status with the OpenAI error shape and its `param`,
# SSE framing, greedy stream == non-stream, /metrics through promtool, JSON
# access logs with the Cloud trace field, and `serve --help`.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/service/lib.sh
T=$(mktemp -d)
trap 'kill_all; rm -rf "$T"' EXIT
if [ ! -x "$BIN" ]; then echo "FAIL http_setup: $BIN not built"; exit 1; fi
MODEL=$(model_tiny) || { echo "FAIL http_setup: cannot make the tiny model"; exit 1; }

# --- flags ---
"$BIN" serve --help >"$T/help" 2>&1
ok=0
for f in model:MODEL port:PORT max-model-len:MAX_MODEL_LEN max-num-seqs:MAX_NUM_SEQS \
	 max-queue:MAX_QUEUE api-key:API_KEY api-key-file:API_KEY_FILE auth:AUTH \
	 allowed-invokers:ALLOWED_INVOKERS audience:AUDIENCE jwks-url:JWKS_URL jwks-file:JWKS_FILE \
	 max-body-bytes:MAX_BODY_BYTES shutdown-timeout:SHUTDOWN_TIMEOUT served-model-name:SERVED_MODEL_NAME \
	 gpu-memory-utilization:GPU_MEMORY_UTILIZATION max-num-batched-tokens:MAX_NUM_BATCHED_TOKENS \
	 loader-workers:LOADER_WORKERS ca-bundle:CA_BUNDLE gcs-anonymous:GCS_ANONYMOUS log-format:LOG_FORMAT \
	 metrics-auth:METRICS_AUTH backend:BACKEND threads:THREADS; do
	if ! grep -q -- "--${f%%:*}" "$T/help" || ! grep -q "env ${f##*:}," "$T/help"; then
		ok=1; echo "  missing $f"
	fi
done
grep -q "env PORT, default 8080" "$T/help" && grep -q "env MAX_BODY_BYTES, default 1048576" "$T/help" &&
	grep -q "env SHUTDOWN_TIMEOUT, default 8" "$T/help" || ok=1
check serve_help_lists_flags $ok "serve --help lacks a flag, env name or default"
"$BIN" serve --model x --no-such-flag >"$T/o" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "unknown flag '--no-such-flag'" "$T/o"
check serve_bad_flag $? "rc $rc: $(head -c 200 "$T/o")"
MAX_NUM_SEQS=abc "$BIN" serve --model x >"$T/o" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "MAX_NUM_SEQS" "$T/o"
check serve_bad_env $? "rc $rc: $(head -c 200 "$T/o")"

# --- one server for the rest ---
GOOGLE_CLOUD_PROJECT=test-proj start_serve "$T/log" --model "$MODEL" --served-model-name tiny \
	--max-body-bytes 4096 --max-model-len 128 --log-format json
if ! wait_ready 60; then echo "FAIL http_setup: server not ready"; tail -20 "$T/log"; exit 1; fi
U="http://127.0.0.1:$SPORT"

# req METHOD PATH [BODY]: writes body to $T/b, headers to $T/h; prints the status code
req() {
	if [ $# -ge 3 ]; then
		curl -s -o "$T/b" -D "$T/h" -w '%{http_code}' -X "$1" -H 'Content-Type: application/json' \
			--data-binary "$3" "$U$2"
	else
		curl -s -o "$T/b" -D "$T/h" -w '%{http_code}' -X "$1" "$U$2"
	fi
}
# jqb FILTER: evaluates a jq filter on the last body; exit status from -e
jqb() { jq -e "$1" "$T/b" >/dev/null 2>&1; }
# expect_err NAME STATUS PARAM(or null) METHOD PATH [BODY]
expect_err() {
	local name=$1 st=$2 param=$3; shift 3
	local got; got=$(req "$@")
	if [ "$got" != "$st" ]; then fail "$name" "status $got, want $st: $(head -c 300 "$T/b")"; return; fi
	local pf='.error.param == null'
	[ "$param" != null ] && pf=".error.param == \"$param\""
	if jqb "(.error | (.message|type) == \"string\" and (.type|type) == \"string\" and .code == $st and has(\"param\")) and $pf"; then
		pass "$name"
	else
		fail "$name" "bad error shape: $(head -c 300 "$T/b")"
	fi
}

code=$(req GET /health)
[ "$code" = 200 ] && jqb '.status == "ok"'
check health_ok $? "$code $(cat "$T/b")"
code=$(req GET /version)
[ "$code" = 200 ] && jqb '.version | type == "string"'
check version $? "$code $(cat "$T/b")"
code=$(req GET /v1/models)
[ "$code" = 200 ] && jqb '.object == "list" and .data[0].id == "tiny" and .data[0].object == "model" and .data[0].max_model_len == 128'
check models $? "$code $(cat "$T/b")"

# --- errors ---
expect_err err_404 404 null GET /nope
expect_err err_405_get_completions 405 null GET /v1/completions
grep -qi '^Allow: POST' "$T/h"; check err_405_allow_header $? "no Allow header"
expect_err err_405_post_health 405 null POST /health '{}'
expect_err err_400_bad_json 400 null POST /v1/completions '{"prompt": "hi",'
expect_err err_400_not_object 400 null POST /v1/completions '[1,2]'
expect_err err_400_bad_utf8 400 null POST /v1/completions "$(printf '{"prompt":"\xff\xfe"}')"
expect_err err_400_missing_prompt 400 prompt POST /v1/completions '{"max_tokens":2}'
expect_err err_400_prompt_type 400 prompt POST /v1/completions '{"prompt":{"a":1}}'
expect_err err_400_prompt_ids_range 400 prompt POST /v1/completions '{"prompt":[2,999999999]}'
expect_err err_400_temperature 400 temperature POST /v1/completions '{"prompt":"hi","temperature":-1}'
expect_err err_400_temperature_type 400 temperature POST /v1/completions '{"prompt":"hi","temperature":"hot"}'
expect_err err_400_top_p 400 top_p POST /v1/completions '{"prompt":"hi","top_p":0}'
expect_err err_400_top_k 400 top_k POST /v1/completions '{"prompt":"hi","top_k":-5}'
expect_err err_400_max_tokens 400 max_tokens POST /v1/completions '{"prompt":"hi","max_tokens":0}'
expect_err err_400_max_tokens_float 400 max_tokens POST /v1/completions '{"prompt":"hi","max_tokens":1.5}'
expect_err err_400_n 400 n POST /v1/completions '{"prompt":"hi","n":1000}'
expect_err err_400_logprobs 400 logprobs POST /v1/completions '{"prompt":"hi","logprobs":99}'
expect_err err_400_stop 400 stop POST /v1/completions '{"prompt":"hi","stop":[1,2]}'
expect_err err_400_presence 400 presence_penalty POST /v1/completions '{"prompt":"hi","presence_penalty":5}'
expect_err err_400_stream_options 400 stream_options POST /v1/completions '{"prompt":"hi","stream_options":{"include_usage":true}}'
expect_err err_400_context_len 400 max_tokens POST /v1/completions '{"prompt":"hi","max_tokens":500}'
long=$(python3 -c 'print(" ".join(["hello"]*300))')
expect_err err_400_prompt_too_long 400 prompt POST /v1/completions "{\"prompt\":\"$long\"}"
expect_err err_404_model 404 model POST /v1/completions '{"model":"gpt-4","prompt":"hi"}'
expect_err err_400_messages 400 messages POST /v1/chat/completions '{"messages":"hi"}'
expect_err err_400_messages_role 400 messages POST /v1/chat/completions '{"messages":[{"role":"robot","content":"x"}]}'
expect_err err_400_top_logprobs 400 top_logprobs POST /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"top_logprobs":3}'
big=$(python3 -c 'print("{\"prompt\":\"" + "a"*5000 + "\"}")')
expect_err err_413_body 413 null POST /v1/completions "$big"
expect_err err_400_tokenize 400 prompt POST /tokenize '{"text":"x"}'
expect_err err_400_detokenize 400 tokens POST /detokenize '{"tokens":[-1]}'

# --- completions ---
code=$(req POST /v1/completions '{"prompt":"Hello world","max_tokens":6,"temperature":0}')
[ "$code" = 200 ] && jqb '.object == "text_completion" and (.id|startswith("cmpl-")) and .model == "tiny" and (.choices|length) == 1 and .choices[0].index == 0 and (.choices[0].text|type) == "string" and .choices[0].finish_reason == "length" and .usage.completion_tokens == 6 and .usage.prompt_tokens >= 2 and .usage.total_tokens == .usage.prompt_tokens + 6'
check completion_shape $? "$code $(head -c 400 "$T/b")"
greedy=$(jq -r '.choices[0].text' "$T/b")
req POST /v1/completions '{"prompt":"Hello world","max_tokens":6,"temperature":0}' >/dev/null
[ "$(jq -r '.choices[0].text' "$T/b")" = "$greedy" ]
check completion_greedy_repeatable $? "two greedy runs differ"
code=$(req POST /v1/completions '{"prompt":"Hello world","max_tokens":6,"temperature":0,"echo":true}')
[ "$code" = 200 ] && [ "$(jq -r '.choices[0].text' "$T/b")" = "Hello world$greedy" ]
check completion_echo $? "$(head -c 300 "$T/b")"
code=$(req POST /v1/completions '{"prompt":"Hello world","max_tokens":4,"temperature":0,"logprobs":2}')
[ "$code" = 200 ] && jqb '.choices[0].logprobs | (.tokens|length) == 4 and (.token_logprobs|length) == 4 and (.top_logprobs|length) == 4 and (.top_logprobs[0]|length) == 2 and (.text_offset|length) == 4 and (.token_logprobs|all(. <= 0))'
check completion_logprobs $? "$code $(head -c 600 "$T/b")"
code=$(req POST /v1/completions '{"prompt":[2,651,6037,576],"max_tokens":3,"temperature":0}')
[ "$code" = 200 ] && jqb '.usage.prompt_tokens == 4 and .usage.completion_tokens == 3'
check completion_token_ids $? "$code $(head -c 300 "$T/b")"
code=$(req POST /v1/completions '{"prompt":["a","b"],"n":2,"max_tokens":2,"seed":7}')
[ "$code" = 200 ] && jqb '(.choices|length) == 4 and ([.choices[].index] == [0,1,2,3]) and .usage.completion_tokens == 8'
check completion_n_and_prompt_list $? "$code $(head -c 300 "$T/b")"
code=$(req POST /v1/completions '{"prompt":"Hello","max_tokens":5,"temperature":0.9,"seed":123,"top_k":40,"top_p":0.9,"min_p":0.01,"frequency_penalty":0.5,"presence_penalty":0.5,"repetition_penalty":1.1,"stop":["zzzz"],"user":"u1","ignore_eos":true}')
s1=$(jq -r '.choices[0].text' "$T/b")
req POST /v1/completions '{"prompt":"Hello","max_tokens":5,"temperature":0.9,"seed":123,"top_k":40,"top_p":0.9,"min_p":0.01,"frequency_penalty":0.5,"presence_penalty":0.5,"repetition_penalty":1.1,"stop":["zzzz"],"user":"u1","ignore_eos":true}' >/dev/null
[ "$code" = 200 ] && [ "$s1" = "$(jq -r '.choices[0].text' "$T/b")" ]
check completion_all_params_seeded $? "$code $(head -c 300 "$T/b")"

# --- SSE ---
curl -s -N -D "$T/sh" -H 'Content-Type: application/json' \
	--data '{"prompt":"Hello world","max_tokens":6,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}' \
	"$U/v1/completions" >"$T/sse"
python3 - "$T/sse" "$greedy" <<'PY'
import json, sys
raw = open(sys.argv[1], 'rb').read().decode()
assert raw.endswith("data: [DONE]\n\n"), "stream does not end with [DONE]"
events = raw.split("\n\n")
assert events[-1] == ""
events = events[:-1]
for e in events:
    assert e.startswith("data: ") and "\n" not in e, "bad event framing: %r" % e[:80]
chunks = [json.loads(e[6:]) for e in events[:-1]]
text = "".join(c["choices"][0]["text"] for c in chunks if c["choices"])
assert text == sys.argv[2], "stream text %r != %r" % (text, sys.argv[2])
fin = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
assert fin[-1] == "length" and all(f is None for f in fin[:-1]), fin
u = chunks[-1]
assert u["choices"] == [] and u["usage"]["completion_tokens"] == 6, u
PY
check sse_completion_framing $? "see above"
grep -qi '^Content-Type: text/event-stream' "$T/sh"
check sse_content_type $? "$(cat "$T/sh")"

# --- chat ---
code=$(req POST /v1/chat/completions '{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"max_tokens":5,"temperature":0,"logprobs":true,"top_logprobs":2}')
[ "$code" = 200 ] && jqb '.object == "chat.completion" and (.id|startswith("chatcmpl-")) and .choices[0].message.role == "assistant" and (.choices[0].message.content|type) == "string" and (.choices[0].finish_reason == "length" or .choices[0].finish_reason == "stop") and (.choices[0].logprobs.content[0].top_logprobs|length) == 2 and .usage.prompt_tokens > 5'
check chat_shape $? "$code $(head -c 500 "$T/b")"
chat=$(jq -r '.choices[0].message.content' "$T/b")
curl -s -N -H 'Content-Type: application/json' \
	--data '{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"max_tokens":5,"temperature":0,"stream":true}' \
	"$U/v1/chat/completions" >"$T/sse"
python3 - "$T/sse" "$chat" <<'PY'
import json, sys
raw = open(sys.argv[1]).read()
assert raw.endswith("data: [DONE]\n\n")
ev = [json.loads(e[6:]) for e in raw.split("\n\n")[:-2]]
assert all(c["object"] == "chat.completion.chunk" for c in ev)
assert ev[0]["choices"][0]["delta"].get("role") == "assistant"
text = "".join(c["choices"][0]["delta"].get("content", "") for c in ev)
assert text == sys.argv[2], (text, sys.argv[2])
assert ev[-1]["choices"][0]["finish_reason"] in ("stop", "length")
assert all("usage" not in c for c in ev), "usage without include_usage"
PY
check sse_chat_equals_nonstream $? "see above"

# --- vLLM routes ---
code=$(req POST /generate '{"prompt":"Hello world","max_tokens":6,"temperature":0}')
[ "$code" = 200 ] && [ "$(jq -r '.text[0]' "$T/b")" = "Hello world$greedy" ]
check generate_legacy $? "$code $(head -c 300 "$T/b")"
curl -s -N -H 'Content-Type: application/json' --data '{"prompt":"Hello world","max_tokens":6,"temperature":0,"stream":true}' \
	"$U/generate" >"$T/nd"
[ "$(tail -n 1 "$T/nd" | jq -r '.text[0]')" = "Hello world$greedy" ] && [ "$(wc -l <"$T/nd")" -ge 2 ]
check generate_stream_ndjson $? "$(head -c 300 "$T/nd")"
code=$(req POST /tokenize '{"prompt":"Hello world"}')
[ "$code" = 200 ] && jqb '.tokens[0] == 2 and .count == (.tokens|length) and .max_model_len == 128'
check tokenize $? "$code $(cat "$T/b")"
toks=$(jq -c '.tokens[1:]' "$T/b")
code=$(req POST /detokenize "{\"tokens\":$toks}")
[ "$code" = 200 ] && jqb '.prompt == "Hello world"'
check detokenize_roundtrip $? "$code $(cat "$T/b")"
code=$(req POST /tokenize '{"messages":[{"role":"user","content":"Hi"}]}')
[ "$code" = 200 ] && jqb '.tokens[0] == 2 and (.tokens|index(106)) != null'
check tokenize_chat $? "$code $(cat "$T/b")"

# --- metrics ---
curl -s "$U/metrics" >"$T/m"
# vLLM's names contain ':' by design (recording-rule style); every other finding fails
promtool check metrics <"$T/m" >"$T/pt" 2>&1
# vllm:iteration_tokens_total is a histogram whose name ends in _total, as vLLM names it
grep -v "metric names should not contain ':'" "$T/pt" |
	grep -vF 'vllm:iteration_tokens_total non-counter metrics should not have "_total" suffix' >"$T/pt2"
[ -s "$T/m" ] && [ ! -s "$T/pt2" ]
check metrics_promtool $? "$(head -5 "$T/pt2")"
! printf '# TYPE x counter\nx{a="1"} zz\n' | promtool check metrics >/dev/null 2>&1
check metrics_promtool_detects_errors $? "promtool accepted a broken exposition"
ok=0
for n in 'vllm:num_requests_running{model_name="tiny"} 0' 'vllm:num_requests_waiting{model_name="tiny"} 0' \
	 'vllm:gpu_cache_usage_perc{' 'vllm:kv_cache_usage_perc{' 'vllm:time_to_first_token_seconds_bucket{le="0.001"' \
	 'vllm:time_per_output_token_seconds_count' 'vllm:inter_token_latency_seconds_sum' \
	 'vllm:e2e_request_latency_seconds_bucket{le="+Inf"' 'vllm:request_queue_time_seconds_count' \
	 'vllm:prompt_tokens_total{' 'vllm:generation_tokens_total{' 'vllm:request_success_total{finished_reason="length"' \
	 'vllm:num_preemptions_total{' 'http_requests_total{handler="/v1/completions",method="POST",status="200"}' \
	 'http_requests_total{handler="/v1/completions",method="POST",status="400"}' \
	 'gemma_run_load_bytes{' 'gemma_run_load_seconds{model_name="tiny",stage="transfer"}' 'gemma_run_ready{model_name="tiny"} 1'; do
	grep -qF "$n" "$T/m" || { ok=1; echo "  missing: $n"; }
done
check metrics_names $ok "see above"
gen=$(grep '^vllm:generation_tokens_total' "$T/m" | awk '{print $2}')
[ "${gen:-0}" -ge 30 ]
check metrics_counts_tokens $? "generation_tokens_total $gen"

# --- JSON access log with trace ---
curl -s -o /dev/null -H 'X-Cloud-Trace-Context: 105445aa7843bc8bf206b12000100000/1;o=1' -H 'User-Agent: probe/1' "$U/v1/models"
sleep 0.2
python3 - "$T/log" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
acc = [l for l in lines if "httpRequest" in l and l["httpRequest"]["requestUrl"].endswith("/v1/models") and l["httpRequest"]["userAgent"] == "probe/1"]
assert acc, "no access log line for /v1/models"
l = acc[-1]
assert l["severity"] == "INFO" and l["httpRequest"]["status"] == 200 and l["httpRequest"]["requestMethod"] == "GET"
assert l["httpRequest"]["latency"].endswith("s") and "time" in l and "message" in l
assert l["logging.googleapis.com/trace"] == "projects/test-proj/traces/105445aa7843bc8bf206b12000100000", l
gen = [l for l in lines if "httpRequest" in l and l["httpRequest"]["requestUrl"].endswith("/v1/completions") and l["httpRequest"]["status"] == 200]
assert gen and "tokensIn" in gen[0] and gen[0]["tokensOut"] >= 1 and gen[0]["requestId"].startswith("cmpl-")
assert any("memory plan" in l["message"] for l in lines), "no memory plan line"
assert any("model loaded" in l["message"] and "stages" in l for l in lines), "no load stages line"
PY
check json_access_log $? "see above"
