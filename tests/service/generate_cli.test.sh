#!/usr/bin/env bash
# generate_cli.test.sh - `gemma-run generate` on a
# `mkmodel --preset tiny` model (random weights, the real tokenizer):
# greedy output is deterministic and its prefix property holds across
# --max-tokens, seeds decide sampled output, --stop cuts the text before
# the stop string, --chat runs, and bad arguments exit 2 / a missing model 1.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
bin="$BUILD/gemma-run"
mk="$BUILD/mkmodel"
for f in "$bin" "$mk"; do
	if [ ! -x "$f" ]; then
		echo "FAIL generate_cli: $f not built"
		exit 1
	fi
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! "$mk" --preset tiny --out "$work/m" --seed 11 >/dev/null 2>&1; then
	echo "FAIL generate_cli: mkmodel failed"
	exit 1
fi

gen() {	# args... -> stdout in $out, exit status in $rc
	out=$("$bin" generate --model "$work/m" --threads 2 "$@" 2>"$work/err")
	rc=$?
}
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

gen --prompt "The capital of France is" --max-tokens 12 --temperature 0
a=$out rc_a=$rc
gen --prompt "The capital of France is" --max-tokens 12 --temperature 0
if [ "$rc_a" -eq 0 ] && [ "$rc" -eq 0 ] && [ -n "$a" ] && [ "$a" = "$out" ]; then
	pass generate_greedy_deterministic
else
	fail generate_greedy_deterministic "rc $rc_a/$rc, '$a' vs '$out' ($(head -c 200 "$work/err"))"
fi
if grep -q "12 generated, finish length" "$work/err"; then
	pass generate_summary
else
	fail generate_summary "$(tail -n 2 "$work/err")"
fi

gen --prompt "The capital of France is" --max-tokens 4 --temperature 0
short=$out
case "$a" in
"$short"*) if [ -n "$short" ] && [ "${#short}" -lt "${#a}" ]; then pass generate_greedy_prefix;
	   else fail generate_greedy_prefix "'$short' vs '$a'"; fi ;;
*) fail generate_greedy_prefix "4-token output '$short' is not a prefix of '$a'" ;;
esac

gen --prompt "Once upon a time" --max-tokens 16 --temperature 1 --seed 7
s7=$out
gen --prompt "Once upon a time" --max-tokens 16 --temperature 1 --seed 7
s7b=$out
gen --prompt "Once upon a time" --max-tokens 16 --temperature 1 --seed 8 --top-k 40 --top-p 0.9
s8=$out
if [ -n "$s7" ] && [ "$s7" = "$s7b" ] && [ "$s7" != "$s8" ]; then
	pass generate_seeded
else
	fail generate_seeded "seed 7: '$s7' / '$s7b', seed 8: '$s8'"
fi

# a stop string taken from the middle of the greedy text: output ends before it
stop=$(python3 -c 'import sys; t=sys.argv[1]; n=len(t)//2; print(t[n:n+3], end="")' "$a")
want=$(python3 -c 'import sys; t,s=sys.argv[1],sys.argv[2]; print(t[:t.find(s)], end="")' "$a" "$stop")
gen --prompt "The capital of France is" --max-tokens 12 --temperature 0 --stop "$stop"
if [ "$rc" -eq 0 ] && [ "$out" = "$want" ] && grep -q "finish stop" "$work/err"; then
	pass generate_stop_string
else
	fail generate_stop_string "stop '$stop': got '$out', want '$want' ($(tail -n 1 "$work/err"))"
fi

gen --prompt "Hi" --chat --max-tokens 5 --temperature 0
if [ "$rc" -eq 0 ]; then pass generate_chat; else fail generate_chat "rc $rc $(head -c 200 "$work/err")"; fi

bad() {	# name, expected rc, args...
	local name=$1 want=$2
	shift 2
	"$bin" generate "$@" >/dev/null 2>"$work/err"
	local got=$?
	if [ "$got" -eq "$want" ]; then pass "$name"; else fail "$name" "exit $got, want $want"; fi
}
bad generate_no_prompt 2 --model "$work/m"
bad generate_bad_top_p 2 --model "$work/m" --prompt x --top-p 2
bad generate_bad_temperature 2 --model "$work/m" --prompt x --temperature -1
bad generate_bad_max_tokens 2 --model "$work/m" --prompt x --max-tokens 0
bad generate_unknown_flag 2 --model "$work/m" --prompt x --frobnicate 1
bad generate_missing_model 1 --model "$work/nope" --prompt x
bad generate_no_tokenizer 1 --model tests/golden/gemma2-tiny-a --prompt x
