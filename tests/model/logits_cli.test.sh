#!/usr/bin/env bash
# logits_cli.test.sh - `gemma-run logits` prints the golden logits (first case of each
# golden model: every position within 1e-3), and rejects bad --ids with status 2.
set -u
cd "${GR_ROOT:-$(dirname "$0")/../..}"
BIN="${BUILD:-build}/gemma-run"
if [ ! -x "$BIN" ]; then echo "FAIL logits_cli: $BIN not built"; exit 1; fi
for m in gemma2-tiny-a gemma2-tiny-b; do
	dir=tests/golden/$m
	ids=$(python3 -c "import json;print(','.join(map(str,json.load(open('$dir/cases.json'))['cases'][0]['input_ids'])))")
	out=$("$BIN" logits --model "$dir" --ids "$ids" --threads 2 2>/dev/null)
	res=$(printf '%s' "$out" | python3 -c "
import json,sys
got=json.load(sys.stdin)['logits']
ref=json.load(open('$dir/cases.json'))['cases'][0]['logits']
assert len(got)==len(ref) and all(len(a)==len(b) for a,b in zip(got,ref)), 'shape'
print(max(abs(x-y) for a,b in zip(got,ref) for x,y in zip(a,b)))
" 2>&1)
	if python3 -c "import sys; sys.exit(0 if float('$res') <= 1e-3 else 1)" 2>/dev/null; then
		echo "PASS logits_cli_$m (max|d| $res)"
	else
		echo "FAIL logits_cli_$m: $res"
	fi
done
for bad in "" "2,,3" "2,x" "-1" "2,99999999"; do
	"$BIN" logits --model tests/golden/gemma2-tiny-a --ids "$bad" >/dev/null 2>&1
	rc=$?
	if [ "$rc" -eq 2 ]; then echo "PASS logits_cli_bad_ids '$bad'"; else echo "FAIL logits_cli_bad_ids '$bad': status $rc"; fi
done
