#!/usr/bin/env bash
# tests/service/mem_plan.test.sh - the start-up memory plan as the service
# shows it (CPU backend, tiny mkmodel model): gemma_run_memory_bytes{kind}
# and gemma_run_kv_cache_tokens in /metrics agree with the KV gauges and
# the weights on disk, the JSON log has one "memory plan" line with the same
# figures, and a --max-model-len the model cannot take fails the start-up
# with the plan's message (exit 1, /health names it).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/service/lib.sh
T=$(mktemp -d)
trap 'kill_all; rm -rf "$T"' EXIT
if [ ! -x "$BIN" ]; then echo "FAIL mem_plan_setup: $BIN not built"; exit 1; fi
MODEL=$(model_tiny) || { echo "FAIL mem_plan_setup: cannot make the tiny model"; exit 1; }

start_serve "$T/log" --model "$MODEL" --served-model-name tiny --max-model-len 256 \
	--max-num-seqs 4 --max-num-batched-tokens 128 --log-format json
if ! wait_ready 60; then echo "FAIL mem_plan_setup: server not ready"; tail -20 "$T/log"; exit 1; fi
U="http://127.0.0.1:$SPORT"
curl -s "$U/metrics" >"$T/m"

# the gauges: every kind once, sane sizes
python3 - "$T/m" "$MODEL" <<'PY'
import glob, os, re, sys
text = open(sys.argv[1]).read()
def val(name, labels=""):
    m = re.search(r'^' + re.escape(name) + r'\{' + labels + r'[^}]*\} (\S+)$', text, re.M)
    assert m, "no sample of %s %s" % (name, labels)
    return float(m.group(1))
kinds = {k: val("gemma_run_memory_bytes", 'kind="%s",' % k)
         for k in ("weights", "activations", "kv_cache", "reserve", "budget")}
assert "# TYPE gemma_run_memory_bytes gauge" in text and "# TYPE gemma_run_kv_cache_tokens gauge" in text
disk = sum(os.path.getsize(f) for f in glob.glob(os.path.join(sys.argv[2], "*.safetensors")))
# the arena holds the tensors as stored: a little less than the files (headers)
assert 0.9 * disk <= kinds["weights"] <= disk, (kinds["weights"], disk)
# the CPU plan reserves nothing; a device keeps a fixed reserve for the runtime
cuda = os.environ.get("GR_TEST_BACKEND", "cpu") == "cuda"
assert kinds["activations"] > 0 and (kinds["reserve"] > 0 if cuda else kinds["reserve"] == 0), kinds
assert kinds["kv_cache"] > 0, kinds
assert kinds["budget"] >= kinds["weights"] + kinds["activations"] + kinds["kv_cache"], kinds
tokens = val("gemma_run_kv_cache_tokens")
blocks = val("gemma_run_kv_blocks")
# tiny: bf16 K and V on either backend, 4 layers x 2 kv heads x 32 = 1 KiB per token; 16 per block
assert tokens == blocks * 16, (tokens, blocks)
assert kinds["kv_cache"] == tokens * 2 * 4 * 2 * 32 * 2, (kinds["kv_cache"], tokens)
# 4 sequences of 256 tokens are all the cache can use (host RAM is plentiful)
assert tokens == 4 * 256, tokens
PY
check mem_plan_metrics $? "see above"

promtool check metrics <"$T/m" >"$T/pt" 2>&1
# vllm:iteration_tokens_total is a histogram whose name ends in _total, as vLLM names it
grep -v "metric names should not contain ':'" "$T/pt" |
	grep -vF 'vllm:iteration_tokens_total non-counter metrics should not have "_total" suffix' >"$T/pt2"
[ ! -s "$T/pt2" ]
check mem_plan_promtool $? "$(head -5 "$T/pt2")"

python3 - "$T/log" "$T/m" <<'PY'
import json, re, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
plans = [l for l in lines if "memory_plan" in l]
assert len(plans) == 1, "want one memory plan line, got %d" % len(plans)
p = plans[0]["memory_plan"]
assert "memory plan" in plans[0]["message"] and plans[0]["severity"] == "INFO", plans[0]
text = open(sys.argv[2]).read()
w = float(re.search(r'^gemma_run_memory_bytes\{kind="weights",[^}]*\} (\S+)$', text, re.M).group(1))
assert p["weights_bytes"] == w and p["kv_tokens"] == 1024 and p["max_model_len"] == 256, p
assert p["kv_limit"] == "max_num_seqs" and p["max_concurrent_seqs"] == 4 and p["block_size"] == 16, p
assert p["kv_cache_bytes"] == p["kv_blocks"] * p["kv_block_bytes"], p
PY
check mem_plan_log_line $? "see above"

# a context the model cannot take: start-up fails with the plan's message
start_serve "$T/log2" --model "$MODEL" --max-model-len 100000
code=""
for _ in $(seq 600); do
	code=$(curl -s -o "$T/h" -w '%{http_code}' "http://127.0.0.1:$SPORT/health")
	[ "$code" = 500 ] && break
	kill -0 "$SPID" 2>/dev/null || break
	sleep 0.05
done
for _ in $(seq 200); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.05; done
wait "$SPID"; rc=$?
[ "$rc" = 1 ] && grep -q -- "--max-model-len 100000 is longer than the model's max_position_embeddings 8192" "$T/log2"
check mem_plan_bad_len_fails $? "rc $rc: $(tail -3 "$T/log2")"
[ "$code" != 500 ] || grep -q -- "--max-model-len" "$T/h"
check mem_plan_bad_len_health $? "health $code: $(head -c 300 "$T/h")"
