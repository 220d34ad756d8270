#!/usr/bin/env bash
# bench/bench_cpu_llama.sh - gemma-run's CPU backend side by side with
# llama.cpp (node-llama-cpp 3.21.1 from the npm registry, its prebuilt CPU
# build, pinned in bench/llama/package.json and installed there on demand:
# not part of tools/deps.sh or make test) on the same 2b-shaped weights:
# mkmodel writes them (bf16, the real Gemma tokenizer), tools/gguf_export.py
# writes the same bytes as GGUF for llama.cpp.
#
# Figures (medians of BENCH_REPS, default 3; same thread count both sides):
# prefill of 256 tokens, decode at batch 1, 4 concurrent x 64 tokens; then
# the ratios gemma-run / llama.cpp (>1: we are faster) and each side's
# batch-4 / batch-1 throughput. Validation: both sides must produce every
# figure (llama.cpp must load our GGUF and decode 64 tokens per sequence).
#
# Env: BENCH_THREADS (2), BENCH_LAYERS (26: the 2b depth), BENCH_REPS (3),
# BENCH_KEEP=1 keeps the model files in $BENCH_DIR (default /tmp/gr-bench-cpu-llama).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
THREADS=${BENCH_THREADS:-2}
LAYERS=${BENCH_LAYERS:-26}
REPS=${BENCH_REPS:-3}
DIR=${BENCH_DIR:-/tmp/gr-bench-cpu-llama}
MODEL="$DIR/2b-l$LAYERS"

for b in "$BUILD/mkmodel" "$BUILD/bench/cpu_side"; do
	[ -x "$b" ] || { echo "bench_cpu_llama: $b is missing (make CUDA=0 all $BUILD/bench/cpu_side)"; exit 1; }
done
if [ ! -d bench/llama/node_modules/node-llama-cpp ]; then
	echo "bench_cpu_llama: installing node-llama-cpp (bench/llama/package-lock.json)"
	(cd bench/llama && npm ci --no-audit --no-fund --ignore-scripts >/dev/null)
fi
mkdir -p "$DIR"
if [ ! -f "$MODEL/model.safetensors" ] && [ ! -f "$MODEL/model.safetensors.index.json" ]; then
	rm -rf "$MODEL"
	"$BUILD/mkmodel" --preset 2b --layers "$LAYERS" --out "$MODEL" >/dev/null
fi
[ -f "$MODEL.gguf" ] || python3 tools/gguf_export.py "$MODEL" "$MODEL.gguf"
cleanup() { [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$MODEL" "$MODEL.gguf"; }
trap cleanup EXIT

echo "model: 2b-shaped, $LAYERS layers, bf16 weights; threads $THREADS; medians of $REPS"
ours=$("$BUILD/bench/cpu_side" --model "$MODEL" --threads "$THREADS" --reps "$REPS")
echo "$ours"
llama=$(cd bench/llama && node run.mjs "$MODEL.gguf" "$THREADS" "$REPS" 2>/dev/null)
echo "$llama"

python3 - "$ours" "$llama" <<'EOF'
import sys
def figs(text):
    d = {}
    for line in text.splitlines():
        p = line.split()
        if len(p) >= 3:
            try:
                d[p[1]] = float(p[2])
            except ValueError:
                d[p[1]] = p[2]
    return d
o, l = figs(sys.argv[1]), figs(sys.argv[2])
need = ["prefill_s", "decode1_tps", "conc4_tps"]
miss = [k for k in need if k not in o or k not in l]
if miss:
    sys.exit("FAIL: missing figures %s" % miss)
print("| | gemma-run | llama.cpp %s BF16 | gemma-run / llama.cpp |" % l.get("version", "?"))
print("|---|---|---|---|")
print("| prefill, 256 tokens | %.2f s | %.2f s | %.2fx |" % (o["prefill_s"], l["prefill_s"], l["prefill_s"] / o["prefill_s"]))
print("| decode, batch 1 | %.2f tok/s | %.2f tok/s | %.2fx |" % (o["decode1_tps"], l["decode1_tps"], o["decode1_tps"] / l["decode1_tps"]))
print("| 4 concurrent x 64 tokens | %.2f tok/s | %.2f tok/s | %.2fx |" % (o["conc4_tps"], l["conc4_tps"], o["conc4_tps"] / l["conc4_tps"]))
print("batch 4 / batch 1 throughput: gemma-run %.2fx, llama.cpp %.2fx" % (o["conc4_tps"] / o["decode1_tps"], l["conc4_tps"] / l["decode1_tps"]))
EOF
