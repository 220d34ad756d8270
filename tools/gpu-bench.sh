#!/usr/bin/env bash
# tools/gpu-bench.sh - the CUDA benchmarks in one device call of at most 600 s: build
# mkmodel, bench_kernels and bench_gpu with nvcc, run `bench_kernels` (single ops, ~1 min
# at most) and then `bench_gpu --backend cuda` (9b model made in a temp dir, load, decode
# at batches 1,8,32,64) under timeouts that end before 600 s, keep their whole output in
# ${OUT:-/tmp}/bench_kernels.txt and bench_gpu.txt and print the summary (every result
# line and the decode table). Figures print as they are measured, so a run cut by the
# timeout still leaves the ones it reached.
#
#   tools/gpu-bench.sh [bench_gpu options...]    e.g. --gen 64, --batches 1,64, --preset 2b
#
# Environment: BUILD (default build), JOBS (default nproc), BUDGET_S (default 570: seconds
# from the start of this script until bench_gpu is stopped). When less than 400 s are left
# after the build, --gen 64 is added (options given here come later and win).
# Exit status: bench_gpu's (0 all validated; 1 a check or step failed; 124 timed out).
set -u
cd "$(dirname "$0")/.." || exit 1
export PATH="$PATH:/usr/local/cuda/bin"
BUILD=${BUILD:-build}
export BUILD
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 4)}
OUTDIR=${OUT:-/tmp}
out="$OUTDIR/bench_gpu.txt"
mkdir -p "$OUTDIR"

if command -v nvidia-smi >/dev/null; then
	nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv 2>&1 | head -n 3
else
	echo "gpu-bench: no nvidia-smi on PATH"
fi
if ! make -j"$JOBS" BUILD="$BUILD" "$BUILD/mkmodel" "$BUILD/bench/bench_gpu" "$BUILD/bench/bench_kernels" >"$OUTDIR/bench_gpu_build.txt" 2>&1; then
	tail -n 30 "$OUTDIR/bench_gpu_build.txt"
	echo "gpu-bench: build failed after ${SECONDS}s (log $OUTDIR/bench_gpu_build.txt)"
	exit 1
fi
if ! nm "$BUILD/libgemma.a" 2>/dev/null | grep -q ' D be_cuda_ops'; then
	echo "gpu-bench: $BUILD/libgemma.a has no be_cuda_ops (nvcc not found?): CUDA is off"
	exit 1
fi
echo "gpu-bench: built in ${SECONDS}s"
timeout -k 10 120 "$BUILD/bench/bench_kernels" --backend cuda >"$OUTDIR/bench_kernels.txt" 2>&1
krc=$?
echo "gpu-bench: bench_kernels exit $krc after ${SECONDS}s (output $OUTDIR/bench_kernels.txt)"

left=$(( ${BUDGET_S:-570} - SECONDS ))
extra=()
[ "$left" -lt 400 ] && extra=(--gen 64)
if [ "$left" -lt 120 ]; then
	echo "gpu-bench: only ${left}s left after the build; run this script again (the build is kept)"
	exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gpu-bench.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
echo "gpu-bench: bench_gpu --backend cuda ${extra[*]} $* (timeout ${left}s; output $out)"
TMPDIR="$tmp" timeout -k 10 "$left" \
	"$BUILD/bench/bench_gpu" --backend cuda "${extra[@]}" "$@" >"$out" 2>&1
rc=$?

echo
echo "=== gpu-bench summary (bench_gpu exit $rc$([ "$rc" = 124 ] && echo ': TIMED OUT'), ${SECONDS}s in all)"
sed -n '/^=== bench_gpu decode/,/^$/p' "$out"
grep -E '^(bench_gpu: |note: |model: )' "$out" | awk '!seen[$0]++'
[ "$rc" = 0 ] || tail -n 15 "$out" | sed 's/^/  | /'
grep -E '^bench_kernels: ' "$OUTDIR/bench_kernels.txt" | awk '!seen[$0]++'
[ "$rc" = 0 ] || exit "$rc"
exit "$krc"
