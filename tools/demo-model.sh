#!/usr/bin/env bash
# tools/demo-model.sh DIR - writes the demo model (mkmodel --preset tiny: the real
# Gemma tokenizer and vocabulary, random weights) into DIR unless it is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build/demo-model}
if [ -f "$dir/config.json" ] && [ -f "$dir/model.safetensors" ] && [ -f "$dir/tokenizer.json" ]; then
	exit 0
fi
"${BUILD:-build}/mkmodel" --preset tiny --seed 1 --out "$dir"
