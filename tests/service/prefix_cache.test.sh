#!/usr/bin/env bash
# tests/service/prefix_cache.test.sh - automatic prefix caching through
# `gemma-run serve` (CPU backend, tiny mkmodel model, 16-token blocks), black
# box with curl: /metrics vllm:prefix_cache_queries_total and
# vllm:prefix_cache_hits_total (tokens) and gemma_run_kv_blocks_evictable
# after a cold and a warm request; a different cache_salt shares nothing;
# n=3 shares the prompt; greedy output identical cached or not; the debug
# log line per hit; usage.prompt_tokens_details.cached_tokens; --no-enable-prefix-caching: no hit; a bad cache_salt
# is a 400 naming it.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/service/lib.sh
T=$(mktemp -d)
trap 'kill_all; rm -rf "$T"' EXIT
if [ ! -x "$BIN" ]; then echo "FAIL prefix_setup: $BIN not built"; exit 1; fi
MODEL=$(model_tiny) || { echo "FAIL prefix_setup: cannot make the tiny model"; exit 1; }

# a 100-token prompt as ids: 6 full blocks before its last token (96 tokens)
IDS=$(seq -s, 1000 1099)
body() { # body SALT_JSON_MEMBER N
	printf '{"prompt":[%s],"max_tokens":4,"temperature":0,"n":%s%s}' "$IDS" "${2:-1}" "$1"
}
post() { curl -s -o "$T/b" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$1" \
	"http://127.0.0.1:$SPORT/v1/completions"; }

start_serve "$T/log" --model "$MODEL" --served-model-name tiny --max-model-len 256 --log-level debug
if ! wait_ready 60; then echo "FAIL prefix_setup: server not ready"; tail -20 "$T/log"; exit 1; fi

[ "$(metric 'vllm:prefix_cache_queries_total')" = 0 ] && [ "$(metric 'vllm:prefix_cache_hits_total')" = 0 ]
check prefix_metrics_start_at_zero $? "queries $(metric 'vllm:prefix_cache_queries_total')"

code=$(post "$(body '' 1)"); cp "$T/b" "$T/cold"
q=$(metric 'vllm:prefix_cache_queries_total'); h=$(metric 'vllm:prefix_cache_hits_total')
ev=$(metric 'gemma_run_kv_blocks_evictable')
[ "$code" = 200 ] && [ "$q" = 100 ] && [ "$h" = 0 ] && [ "${ev:-0}" -ge 6 ]
check prefix_cold_request $? "code $code queries $q hits $h evictable $ev"

code=$(post "$(body '' 1)"); cp "$T/b" "$T/warm"
q=$(metric 'vllm:prefix_cache_queries_total'); h=$(metric 'vllm:prefix_cache_hits_total')
[ "$code" = 200 ] && [ "$q" = 200 ] && [ "$h" = 96 ]
check prefix_warm_request_hits $? "code $code queries $q hits $h (want 200, 96)"
# what the client reads: usage.prompt_tokens_details.cached_tokens (OpenAI's field)
[ "$(jq '.usage.prompt_tokens_details.cached_tokens' "$T/cold")" = 0 ] &&
	[ "$(jq '.usage.prompt_tokens_details.cached_tokens' "$T/warm")" = 96 ] &&
	[ "$(jq '.usage.prompt_tokens' "$T/warm")" = 100 ]
check prefix_usage_cached_tokens $? "cold $(jq -c .usage "$T/cold") warm $(jq -c .usage "$T/warm")"
[ "$(jq -c '.choices[0].text' "$T/cold")" = "$(jq -c '.choices[0].text' "$T/warm")" ] &&
	jq -e '.choices[0].text | length > 0' "$T/warm" >/dev/null
check prefix_warm_same_text $? "cold $(jq -c .choices "$T/cold") warm $(jq -c .choices "$T/warm")"
grep -q 'prefix cache hit, 96 of 100 tokens' "$T/log"
check prefix_debug_log_line $? "$(grep -i prefix "$T/log" | head -3)"

code=$(post "$(body ',"cache_salt":"tenant-a"' 1)")
h=$(metric 'vllm:prefix_cache_hits_total')
[ "$code" = 200 ] && [ "$h" = 96 ]
check prefix_salt_shares_nothing $? "code $code hits $h (want still 96)"
code=$(post "$(body ',"cache_salt":"tenant-a"' 1)")
h=$(metric 'vllm:prefix_cache_hits_total')
[ "$code" = 200 ] && [ "$h" = 192 ]
check prefix_same_salt_hits $? "code $code hits $h (want 192)"

# n=3 with a fresh salt: the 2nd and 3rd share the 1st's blocks (192 + 2*96)
code=$(post "$(body ',"cache_salt":"tenant-n"' 3)")
h=$(metric 'vllm:prefix_cache_hits_total')
[ "$code" = 200 ] && [ "$h" = 384 ] && jq -e '.choices | length == 3' "$T/b" >/dev/null
check prefix_n3_shares_prompt $? "code $code hits $h (want 384)"

code=$(post "$(body ',"cache_salt":""' 1)")
[ "$code" = 400 ] && jq -e '.error.param == "cache_salt"' "$T/b" >/dev/null
check prefix_bad_salt_400 $? "code $code $(head -c 200 "$T/b")"

# caching off
start_serve "$T/log2" --model "$MODEL" --served-model-name tiny --max-model-len 256 --no-enable-prefix-caching
if ! wait_ready 60; then echo "FAIL prefix_off_setup: server not ready"; tail -20 "$T/log2"; exit 1; fi
post "$(body '' 1)" >/dev/null; code=$(post "$(body '' 1)")
h=$(metric 'vllm:prefix_cache_hits_total'); ev=$(metric 'gemma_run_kv_blocks_evictable')
[ "$code" = 200 ] && [ "$h" = 0 ] && [ "$ev" = 0 ] &&
	[ "$(jq -c '.choices[0].text' "$T/b")" = "$(jq -c '.choices[0].text' "$T/cold")" ]
check prefix_off_no_hits $? "code $code hits $h evictable $ev"
