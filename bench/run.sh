#!/usr/bin/env bash
# bench/run.sh - runs every benchmark: bench/bench_*.sh scripts and the
# $BUILD/bench/bench_* programs. Each validates first, then times, and prints
# its figures with the ratio to the baseline it measured in the same run.
# BENCH_FILTER=regex runs only the matching ones.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
status=0
for b in bench/bench_*.sh "$BUILD"/bench/bench_*; do
	[ -e "$b" ] || continue
	if [ -n "${BENCH_FILTER:-}" ] && ! [[ "$b" =~ $BENCH_FILTER ]]; then continue; fi
	echo "=== $b"
	case "$b" in
	*.sh) bash "$b" || status=1 ;;
	*) "$b" || status=1 ;;
	esac
done
exit $status
