#!/usr/bin/env bash
# tools/run-fuzz.sh SECONDS fuzz_x.c... - builds each libFuzzer target with clang
# (ASan + UBSan, no recovery: every finding stops the target) against the project
# sources and runs it for SECONDS, starting from tests/fuzz/corpus/<name>/ when
# present. Fails if any target exits non-zero or its log holds a sanitizer report
# ("runtime error:", "ERROR: ...Sanitizer", "SUMMARY: ...Sanitizer").
# Environment (for tests/fuzz/run_fuzz.test.sh): FUZZ_OUT (default build-fuzz/fuzz),
# FUZZ_DIRS (the source folders built into the archive; default all the parsers').
set -euo pipefail
cd "$(dirname "$0")/.."
secs=$1; shift
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
	echo "run-fuzz: SECONDS must be a positive integer (libFuzzer reads 0 as forever)" >&2; exit 2
fi
out=${FUZZ_OUT:-build-fuzz/fuzz}
dirs=${FUZZ_DIRS:-common tokenizer loader engine service}
mkdir -p "$out"
flags="-std=c11 -g -O1 -D_GNU_SOURCE -I. $(pkg-config --cflags libcjson libcurl openssl libevent) -fsanitize=address,undefined -fno-sanitize-recover=all"
libs="$(pkg-config --libs libevent libevent_pthreads libcjson libcurl openssl) -lm -pthread"
# The parsers under test live in common/, tokenizer/, loader/, engine/ and service/: build those into an
# archive so that each target links only the objects it uses (the compute kernels
# are left out: they are not parsers and use compiler extensions clang 14 lacks; the
# pure config parser and the prefix-cache hashes the request parser calls are in).
# Objects are kept per flag set: a change of flags rebuilds them.
tag=$(echo "$flags" | cksum | cut -d' ' -f1)
mkdir -p "$out/obj-$tag"
objs=()
# shellcheck disable=SC2086
for s in $(find $dirs -name '*.c' | sort) kernels/g2_config.c kernels/kv_hash.c; do
	[ "$s" = service/cli/main.c ] && continue
	o="$out/obj-$tag/$(echo "$s" | tr / _).o"
	if [ ! -f "$o" ] || [ "$s" -nt "$o" ]; then
		# shellcheck disable=SC2086
		clang $flags -fsanitize=fuzzer-no-link -c "$s" -o "$o"
	fi
	objs+=("$o")
done
rm -f "$out/libfuzzdeps.a"
ar rcs "$out/libfuzzdeps.a" "${objs[@]}"
status=0
for t in "$@"; do
	name=$(basename "$t" .c)
	echo "fuzz: building $name"
	# shellcheck disable=SC2086
	clang $flags -fsanitize=fuzzer -o "$out/$name" "$t" "$out/libfuzzdeps.a" $libs
	corpus="tests/fuzz/corpus/${name#fuzz_}"
	work="$out/corpus-$name"
	mkdir -p "$work"
	if [ -d "$corpus" ]; then cp -n "$corpus"/* "$work"/ 2>/dev/null || true; fi
	echo "fuzz: running $name for ${secs}s"
	rc=0
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		"$out/$name" -max_total_time="$secs" -max_len=65536 -artifact_prefix="$out/$name-" "$work" \
		>"$out/$name.log" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ] || grep -Eq 'runtime error:|ERROR: [A-Za-z]*Sanitizer|SUMMARY: [A-Za-z]*Sanitizer' "$out/$name.log"; then
		echo "fuzz: $name FAILED (exit $rc; see $out/$name.log)"
		grep -E -m3 'runtime error:|ERROR: [A-Za-z]*Sanitizer' "$out/$name.log" || true
		tail -30 "$out/$name.log"; status=1
	else
		grep -E '^#[0-9]+.*DONE|Done [0-9]+ runs' "$out/$name.log" | tail -1 || true
	fi
done
exit $status
