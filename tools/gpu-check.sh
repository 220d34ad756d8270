#!/usr/bin/env bash
# tools/gpu-check.sh - one-shot check of the CUDA backend on a GPU machine, made to
# run in a single device call:
#
#   1. nvidia-smi / nvcc: which GPU, driver and toolkit
#   2. build with nvcc: make BUILD=$BUILD all tests (CUDA on; warnings are errors)
#   3. the CUDA op and model tests with GR_TEST_GPU=1 (a missing device is a FAIL)
#   4. compute-sanitizer --tool memcheck on $BUILD/tests/kernels/test_cuda_ops and
#      test_cuda_attention, test_cuda_sample and test_cuda_matmul_fp8
#   5. compute-sanitizer --tool racecheck on test_cuda_attention (shared-memory hazards)
#   6. make test-gpu: the whole suite with GR_TEST_GPU=1 (needs tools/deps.sh to pass)
# and prints a summary line per step. Exit status: 0 when steps 2-4 passed.
#
# Environment: BUILD (default build), JOBS (default nproc), SKIP_FULL=1 skips step 6,
# GPU_CHECK_LOG (default $BUILD/gpu-check) for the per-step logs, GPU_CHECK_BUDGET
# (default 570): seconds for the whole script - a device call lasts at most 600 s,
# so each step's timeout is cut to what is left and a step with < 20 s left is
# skipped. The build is kept between device calls: a second call with
# SKIP_FULL=0 and the sanitizer steps done goes straight to `make test-gpu`
# (GPU_CHECK_ONLY=test-gpu runs that step alone).
set -u
cd "$(dirname "$0")/.." || exit 1

BUILD=${BUILD:-build}
BUDGET=${GPU_CHECK_BUDGET:-570}
ONLY=${GPU_CHECK_ONLY:-}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 4)}
LOG=${GPU_CHECK_LOG:-$BUILD/gpu-check}
mkdir -p "$LOG"
export PATH="$PATH:/usr/local/cuda/bin"

names=()
results=()
required_failed=0

# step NAME REQUIRED(1/0) TIMEOUT_S CMD... : runs CMD with its output in $LOG/NAME.log
step() {
	local name="$1" required="$2" tmo="$3"
	shift 3
	local t0=$SECONDS rc left=$((BUDGET - SECONDS))
	if [ -n "$ONLY" ] && [ "$name" != "$ONLY" ] && [ "$name" != build ]; then
		skip_step "$name" "GPU_CHECK_ONLY=$ONLY"
		return 0
	fi
	if [ "$left" -lt 20 ]; then
		skip_step "$name" "out of the ${BUDGET}s budget"
		[ "$required" = 1 ] && required_failed=1
		return 1
	fi
	[ "$tmo" -gt "$left" ] && tmo=$left
	echo "=== $name: $*"
	timeout "$tmo" "$@" >"$LOG/$name.log" 2>&1
	rc=$?
	tail -n 25 "$LOG/$name.log" | sed 's/^/    | /'
	local what="ok"
	if [ "$rc" -ne 0 ]; then
		what="FAILED (exit $rc)"
		[ "$rc" -eq 124 ] && what="TIMED OUT after ${tmo}s"
		[ "$required" = 1 ] && required_failed=1
	fi
	echo "=== $name: $what in $((SECONDS - t0))s (log $LOG/$name.log)"
	names+=("$name")
	results+=("$what, $((SECONDS - t0))s")
	return "$rc"
}

skip_step() {
	echo "=== $1: skipped ($2)"
	names+=("$1")
	results+=("skipped: $2")
}

# 1. the machine
step info 0 60 bash -c 'nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv; nvcc --version | tail -n 2; command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer'

# 2. build (no deps target: the machine may have no network)
if ! pkg-config --exists libevent libevent_pthreads libcjson libcurl openssl 2>/dev/null; then
	echo "note: pkg-config lacks some of libevent libcjson libcurl openssl; the build will" \
	     "likely fail (run tools/deps.sh where a network is reachable)"
fi
if step build 1 600 make -j"$JOBS" BUILD="$BUILD" all tests; then
	built=1
else
	built=0
fi
if [ "$built" = 1 ] && ! nm "$BUILD/libgemma.a" 2>/dev/null | grep -q ' D be_cuda_ops'; then
	echo "error: $BUILD/libgemma.a has no be_cuda_ops: nvcc was not found, CUDA is off"
	required_failed=1
	names+=("cuda-built")
	results+=("FAILED: no be_cuda_ops in $BUILD/libgemma.a")
fi

# 3. CUDA op + model tests (and the CPU model tests for reference)
if [ "$built" = 1 ]; then
	step cuda-tests 1 900 env GR_TEST_GPU=1 BUILD="$BUILD" \
		TEST_FILTER='tests/kernels/test_cuda|tests/model/' tests/run.sh
else
	skip_step cuda-tests "build failed"
fi

# 4./5. compute-sanitizer on the op tests
san=$(command -v compute-sanitizer)
for p in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
	[ -z "$san" ] && [ -x "$p" ] && san=$p
done
if [ "$built" = 1 ] && [ -n "$san" ]; then
	step memcheck 1 900 env GR_TEST_GPU=1 "$san" --tool memcheck --leak-check full \
		--error-exitcode 3 "$BUILD/tests/kernels/test_cuda_ops"
	step memcheck-attn 1 900 env GR_TEST_GPU=1 "$san" --tool memcheck --error-exitcode 3 \
		"$BUILD/tests/kernels/test_cuda_attention"
	step memcheck-sample 1 900 env GR_TEST_GPU=1 "$san" --tool memcheck --error-exitcode 3 \
		"$BUILD/tests/kernels/test_cuda_sample"
	step memcheck-fp8 1 900 env GR_TEST_GPU=1 "$san" --tool memcheck --error-exitcode 3 \
		"$BUILD/tests/kernels/test_cuda_matmul_fp8"
	step racecheck 0 900 env GR_TEST_GPU=1 "$san" --tool racecheck --error-exitcode 3 \
		"$BUILD/tests/kernels/test_cuda_attention"
	step racecheck-sample 0 900 env GR_TEST_GPU=1 "$san" --tool racecheck --error-exitcode 3 \
		"$BUILD/tests/kernels/test_cuda_sample"
else
	[ -z "$san" ] && required_failed=1
	skip_step memcheck "$([ "$built" = 1 ] && echo 'compute-sanitizer not found' || echo 'build failed')"
	skip_step memcheck-attn "same"
	skip_step memcheck-fp8 "same"
	skip_step racecheck "same"
fi

# 6. the whole suite on the GPU build
if [ "${SKIP_FULL:-0}" = 1 ]; then
	skip_step test-gpu "SKIP_FULL=1"
elif [ "$built" = 1 ]; then
	step test-gpu 0 1200 make BUILD="$BUILD" test-gpu
else
	skip_step test-gpu "build failed"
fi

echo
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
echo "=== gpu-check summary (${gpu:-no GPU found by nvidia-smi})"
for i in "${!names[@]}"; do
	printf '  %-14s %s\n' "${names[$i]}" "${results[$i]}"
done
for f in cuda-tests test-gpu; do
	[ -f "$LOG/$f.log" ] && grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOG/$f.log" | sed "s/^/  $f: /"
done
for f in memcheck memcheck-attn memcheck-sample; do
	[ -f "$LOG/$f.log" ] && grep -E 'ERROR SUMMARY' "$LOG/$f.log" | sed "s/^/  $f: /"
done
for f in racecheck racecheck-sample; do
	[ -f "$LOG/$f.log" ] && grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$LOG/$f.log" | sed "s/^/  $f: /"
done
[ "$required_failed" = 0 ] && echo "gpu-check: PASS" || echo "gpu-check: FAIL"
exit "$required_failed"
