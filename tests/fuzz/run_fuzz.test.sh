#!/usr/bin/env bash
# tests/fuzz/run_fuzz.test.sh - `make fuzz` can fail (issue 17): tools/run-fuzz.sh
# reports a planted UBSan finding (tests/fuzz-selftest/selftest_ubsan.c) as a
# failure, and fuzz_tokenizer passes over its corpus, which keeps the
# tokenizer.json without "model" that once applied a zero offset to NULL.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
if ! command -v clang >/dev/null; then echo "SKIP run_fuzz: clang not installed"; exit 0; fi
out="$BUILD/fuzz-selftest"
mkdir -p "$out"

FUZZ_OUT="$out" FUZZ_DIRS=common tools/run-fuzz.sh 1 tests/fuzz-selftest/selftest_ubsan.c >"$out/selftest.out" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && grep -q 'selftest_ubsan FAILED' "$out/selftest.out" &&
	grep -q 'applying zero offset to null pointer' "$out/selftest.out"; then
	echo "PASS run_fuzz_fails_on_ubsan_finding"
else
	echo "FAIL run_fuzz_fails_on_ubsan_finding: run-fuzz.sh exit $rc on a target with undefined behaviour"
	tail -8 "$out/selftest.out" | sed 's/^/    | /'
fi

if [ ! -f tests/fuzz/corpus/tokenizer/json-no-model ]; then
	echo "FAIL tokenizer_corpus_keeps_no_model_input: tests/fuzz/corpus/tokenizer/json-no-model is gone"
else
	echo "PASS tokenizer_corpus_keeps_no_model_input"
fi
FUZZ_OUT="$out" FUZZ_DIRS="common tokenizer" tools/run-fuzz.sh 2 tests/fuzz/fuzz_tokenizer.c >"$out/tok.out" 2>&1
rc=$?
if [ "$rc" -eq 0 ]; then echo "PASS fuzz_tokenizer_corpus_clean"
else
	echo "FAIL fuzz_tokenizer_corpus_clean: exit $rc"
	grep -m3 'runtime error' "$out/tok.out" | sed 's/^/    | /'
	tail -5 "$out/tok.out" | sed 's/^/    | /'
fi
