#!/usr/bin/env bash
# tests/service/fp8_serve.test.sh - FP8 checkpoints through the binary:
# `gemma-run quantize` of the tiny mkmodel model (real tokenizer) writes a
# compressed-tensors directory that `inspect` names fp8-dynamic and whose
# crc32c.json verifies; `serve` loads it, answers /v1/completions and
# /v1/chat/completions, and /metrics counts the FP8 weight bytes (the arena
# as stored, below the bf16 model's); `mkmodel --dtype fp8` writes the same
# format; bad input fails clearly: an unknown --scheme (exit 2), an --out
# that already holds a model, quantizing an FP8 model again, a
# quant_method we do not run, a missing weight_scale (exit 1, named).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/service/lib.sh
T=$(mktemp -d)
trap 'kill_all; rm -rf "$T"' EXIT
if [ ! -x "$BIN" ]; then echo "FAIL fp8_setup: $BIN not built"; exit 1; fi
MODEL=$(model_tiny) || { echo "FAIL fp8_setup: cannot make the tiny model"; exit 1; }

"$BIN" quantize --model "$MODEL" --out "$T/q" >"$T/qout" 2>"$T/qerr"
rc=$?
[ $rc = 0 ] && grep -q '"scheme":"fp8-dynamic","quantized":28' "$T/qout" && [ -f "$T/q/tokenizer.json" ] &&
	[ -f "$T/q/crc32c.json" ]
check fp8_quantize $? "rc $rc: $(cat "$T/qout" "$T/qerr" | tail -3)"

"$BIN" inspect --model "$T/q" >"$T/insp" 2>&1
grep -q '"quantization":"fp8-dynamic"' "$T/insp"
check fp8_inspect_scheme $? "$(head -c 300 "$T/insp")"
"$BIN" inspect --model "$MODEL" | grep -q '"quantization":"none"'
check fp8_inspect_none $? "bf16 model not 'none'"

python3 - "$T/q/config.json" "$T/q/model.safetensors" <<'PY'
import json, struct, sys
q = json.load(open(sys.argv[1]))["quantization_config"]
assert q["quant_method"] == "compressed-tensors" and q["format"] == "float-quantized", q
g = q["config_groups"]["group_0"]
assert g["weights"]["num_bits"] == 8 and g["weights"]["type"] == "float", g
assert g["weights"]["strategy"] == "channel" and g["weights"]["dynamic"] is False, g
assert g["input_activations"]["strategy"] == "token" and g["input_activations"]["dynamic"] is True, g
assert q["ignore"] == ["lm_head"], q["ignore"]
f = open(sys.argv[2], "rb")
n = struct.unpack("<Q", f.read(8))[0]
h = json.loads(f.read(n))
w, s = h["model.layers.0.mlp.down_proj.weight"], h["model.layers.0.mlp.down_proj.weight_scale"]
assert w["dtype"] == "F8_E4M3" and s["dtype"] == "BF16" and s["shape"] == [w["shape"][0], 1], (w, s)
assert h["model.embed_tokens.weight"]["dtype"] == "BF16"
assert h["model.layers.0.input_layernorm.weight"]["dtype"] == "BF16"
assert n % 8 == 0
PY
check fp8_format $? "see above"

start_serve "$T/log" --model "$T/q" --served-model-name tiny --max-model-len 256 \
	--max-num-seqs 4 --max-num-batched-tokens 128
if ! wait_ready 60; then echo "FAIL fp8_serve: server not ready"; tail -20 "$T/log"; exit 1; fi
U="http://127.0.0.1:$SPORT"
code=$(curl -s -o "$T/c" -w '%{http_code}' "$U/v1/completions" -H 'content-type: application/json' \
	-d '{"model":"tiny","prompt":"Hello","max_tokens":8,"temperature":0}')
[ "$code" = 200 ] && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["usage"]["completion_tokens"] == 8, d' "$T/c"
check fp8_completions $? "http $code: $(head -c 300 "$T/c")"
code=$(curl -s -o "$T/cc" -w '%{http_code}' "$U/v1/chat/completions" -H 'content-type: application/json' \
	-d '{"model":"tiny","messages":[{"role":"user","content":"Hi"}],"max_tokens":4,"stream":false}')
[ "$code" = 200 ]
check fp8_chat $? "http $code: $(head -c 300 "$T/cc")"
wq=$(curl -s "$U/metrics" | grep '^gemma_run_memory_bytes{kind="weights"' | awk '{print $NF}')
python3 - "$wq" "$T/q" "$MODEL" <<'PY'
import glob, os, sys
w = float(sys.argv[1])
disk_q = sum(os.path.getsize(f) for f in glob.glob(os.path.join(sys.argv[2], "*.safetensors")))
disk_b = sum(os.path.getsize(f) for f in glob.glob(os.path.join(sys.argv[3], "*.safetensors")))
assert 0.9 * disk_q <= w <= disk_q, (w, disk_q)
# tiny: the bf16 embedding (256000 x 128) dominates; the 983,040 Linear weights go 2 -> 1 byte
# (plus 2 bytes of scale per row)
assert w < disk_b - 900000, (w, disk_b)
PY
check fp8_metrics_weights $? "weights gauge '$wq'"

# mkmodel --dtype fp8 writes the same format
"$BUILD/mkmodel" --preset custom --vocab 1000 --hidden 64 --ff 128 --layers 2 --tokenizer none \
	--dtype fp8 --out "$T/mk" >/dev/null 2>&1 && "$BIN" inspect --model "$T/mk" | grep -q fp8-dynamic &&
	[ ! -e "$T/mk.bf16-tmp" ]
check fp8_mkmodel $? "mkmodel --dtype fp8"

# errors
"$BIN" quantize --model "$MODEL" --out "$T/x" --scheme int4 >/dev/null 2>"$T/e1"
[ $? = 2 ] && grep -q "scheme 'int4'" "$T/e1"
check fp8_err_scheme $? "$(cat "$T/e1")"
"$BIN" quantize --model "$MODEL" --out "$T/q" >/dev/null 2>"$T/e2"
[ $? = 1 ] && grep -q "already holds a model" "$T/e2"
check fp8_err_out_exists $? "$(cat "$T/e2")"
"$BIN" quantize --model "$T/q" --out "$T/qq" >/dev/null 2>"$T/e3"
[ $? = 1 ] && grep -q "already quantized (fp8-dynamic)" "$T/e3"
check fp8_err_requantize $? "$(cat "$T/e3")"
mkdir -p "$T/g" && cp "$T/q"/* "$T/g/" &&
	sed -i 's/"quant_method":[[:space:]]*"compressed-tensors"/"quant_method": "gptq"/' "$T/g/config.json"
"$BIN" inspect --model "$T/g" >/dev/null 2>"$T/e4"
[ $? = 1 ] && grep -q "quant_method 'gptq' is not supported" "$T/e4"
check fp8_err_quant_method $? "$(cat "$T/e4")"
# a checkpoint whose scale tensor is renamed: the loader names what is missing
cp "$T/q"/* "$T/g/" && python3 - "$T/g/model.safetensors" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.find(b'"model.layers.1.self_attn.q_proj.weight_scale"')
b[i:i + 46] = b'"model.layers.1.self_attn.q_proj.weight_scalX"'
open(p, "wb").write(b)
PY
"$BIN" inspect --model "$T/g" >/dev/null 2>"$T/e5"
[ $? = 1 ] && grep -q "model.layers.1.self_attn.q_proj.weight_scale' (the scale of an FP8 weight) is missing" "$T/e5"
check fp8_err_missing_scale $? "$(cat "$T/e5")"
