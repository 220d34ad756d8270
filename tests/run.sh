#!/usr/bin/env bash
# tests/run.sh - runs every test and prints one closing line "N passed, N failed".
#
# What runs, in order:
#   $BUILD/tests/*/test_*        C tests (tests/harness.h), one line per test case
#   tests/**/*.test.sh           shell tests: same line format on stdout
#   tests/**/*.test.mjs          node tests: same line format on stdout
# A program that exits non-zero without printing a FAIL line counts as one failure.
# TEST_FILTER=regex runs only the programs whose path matches.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD GR_ROOT="$PWD" PATH="$PWD/tools/node/node_modules/.bin:$PATH"
log_dir="$BUILD/test-logs"
mkdir -p "$log_dir"
pass=0 fail=0 skip=0
failed_names=()

run_one() {
	local prog="$1"; shift
	local name log rc
	name=$(echo "$prog" | sed 's|^\./||; s|/|_|g')
	log="$log_dir/$name.log"
	local t0=$SECONDS
	timeout "${TEST_TIMEOUT:-900}" "$@" >"$log" 2>&1
	rc=$?
	local p f s
	p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log"); s=$(grep -c '^SKIP ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL $prog: exited with status $rc" >>"$log"
		f=1
	fi
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$s" -eq 0 ]; then
		echo "FAIL $prog: ran no test case" >>"$log"
		f=1
	fi
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
	printf '%-52s %3d passed %2d failed %2d skipped  %3ds\n' "$prog" "$p" "$f" "$s" $((SECONDS - t0))
	if [ "$f" -gt 0 ]; then
		failed_names+=("$prog")
		grep -E '^(FAIL|  )' "$log" | head -40 | sed 's/^/    /'
		tail -n 15 "$log" | sed 's/^/    | /'
	fi
	grep '^SKIP ' "$log" | sed 's/^/    /'
}

progs=()
for t in $(find "$BUILD/tests" -type f -name 'test_*' -perm -u+x 2>/dev/null | sort); do progs+=("$t"); done
for t in $(find tests -name '*.test.sh' | sort); do progs+=("$t"); done
for t in $(find tests -name '*.test.mjs' | sort); do progs+=("$t"); done

for p in "${progs[@]}"; do
	if [ -n "${TEST_FILTER:-}" ] && ! [[ "$p" =~ $TEST_FILTER ]]; then continue; fi
	case "$p" in
	*.test.sh)  run_one "$p" bash "$p" ;;
	*.test.mjs) run_one "$p" node "$p" ;;
	*)          run_one "$p" "$p" ;;
	esac
done

if [ "${#failed_names[@]}" -gt 0 ]; then
	echo "failed programs (logs in $log_dir): ${failed_names[*]}"
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
