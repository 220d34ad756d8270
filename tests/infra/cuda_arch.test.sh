#!/usr/bin/env bash
# tests/infra/cuda_arch.test.sh - the CUDA code carries SASS for every Cloud Run GPU.
#
#   cuda_arch_sass       cuobjdump --list-elf $BUILD/gemma-run lists sm_89 (L4), sm_90
#                        and sm_120 (RTX PRO 6000 Blackwell) cubins, and --list-ptx a
#                        compute_120 PTX (the newest, for GPUs after these).
#   cuda_arch_old_nvcc   with an nvcc that cannot build sm_120 (a stub whose
#                        --list-gpu-code stops at sm_90, like CUDA < 12.8), the
#                        Makefile leaves sm_120 out and puts PTX at compute_90 instead of
#                        failing: the local build keeps working on any CUDA 12.x/13.x.
# Without cuobjdump (NVIDIA's Debian nvcc package ships none) the fatbinary headers of
# the .nv_fatbin section are read instead. SKIP, with the reason, without a CUDA build.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nvcc=$(command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
cuobjdump=$(command -v cuobjdump 2>/dev/null || { test -x /usr/local/cuda/bin/cuobjdump && echo /usr/local/cuda/bin/cuobjdump; })
bin="$BUILD/gemma-run"

if [ ! -x "$bin" ] || ! readelf -d "$bin" 2>/dev/null | grep -q libcudart; then
	echo "SKIP cuda_arch_sass: $bin is not a CUDA build (built with CUDA=0 or without nvcc)"
else
	if [ -n "$cuobjdump" ]; then
		how=cuobjdump
		"$cuobjdump" --list-elf "$bin" >"$tmp/elf" 2>&1
		"$cuobjdump" --list-ptx "$bin" >"$tmp/ptx" 2>&1
	else
		# No cuobjdump (this toolkit ships without it): read the .nv_fatbin section's
		# fatbinary headers (magic 0xBA55ED50; per entry: kind 1 = PTX, 2 = ELF, and
		# the SM number at byte 28) and print lines in cuobjdump's naming.
		how="fatbin headers, cuobjdump absent"
		/usr/bin/python3 - "$bin" "$tmp/elf" "$tmp/ptx" <<'PYEOF'
import struct, subprocess, sys
b, elf, ptx = sys.argv[1:]
off = size = None
for l in subprocess.run(["readelf", "-SW", b], capture_output=True, text=True).stdout.splitlines():
    if " .nv_fatbin " in l:
        w = l.split("]", 1)[1].split()
        off, size = int(w[3], 16), int(w[4], 16)
data = open(b, "rb").read()[off:off + size] if off is not None else b""
e, x, n, p = open(elf, "w"), open(ptx, "w"), 0, 0
while p + 16 <= len(data):
    magic, _, hs, fs = struct.unpack_from("<IHHQ", data, p)
    if magic != 0xBA55ED50:
        p += 8
        continue
    q, end = p + hs, p + hs + fs
    while q + 32 <= end:
        kind, _, ehs, esz = struct.unpack_from("<HHIQ", data, q)
        arch = struct.unpack_from("<I", data, q + 28)[0]
        n += 1
        if kind == 2:
            e.write("ELF file %d: gemma-run.%d.sm_%d.cubin\n" % (n, n, arch))
        elif kind == 1:
            x.write("PTX file %d: gemma-run.%d.sm_%d.ptx\n" % (n, n, arch))
        q += ehs + esz
    p = end
PYEOF
	fi
	missing=""
	for sm in sm_89 sm_90 sm_120; do
		grep -q "\.$sm\." "$tmp/elf" || missing="$missing $sm"
	done
	if [ -n "$missing" ]; then
		echo "FAIL cuda_arch_sass: no SASS for$missing in $bin ($how): $(grep -o 'sm_[0-9]*' "$tmp/elf" | sort -u | tr '\n' ' ')"
	elif ! grep -q "\.sm_120\." "$tmp/ptx"; then
		echo "FAIL cuda_arch_sass: no compute_120 PTX in $bin ($how): $(head -c 300 "$tmp/ptx")"
	else
		echo "PASS cuda_arch_sass ($how: $(grep -c 'ELF file' "$tmp/elf") cubins for $(grep -o 'sm_[0-9]*' "$tmp/elf" | sort -u | tr '\n' ' ')+ PTX $(grep -o 'sm_[0-9]*' "$tmp/ptx" | sort -u | tr '\n' ' '))"
	fi
fi

# A stub nvcc that knows sm_89 and sm_90 only; make -n prints the nvcc lines it would run.
cat >"$tmp/nvcc" <<'STUB'
#!/bin/sh
[ "$1" = --list-gpu-code ] && { printf 'sm_75\nsm_80\nsm_86\nsm_89\nsm_90\n'; exit 0; }
exit 0
STUB
chmod +x "$tmp/nvcc"
if ! ls kernels/cuda/*.cu >/dev/null 2>&1; then
	echo "SKIP cuda_arch_old_nvcc: no kernels/cuda/*.cu to compile"
else
	make -n -B BUILD="$tmp/b" NVCC="$tmp/nvcc" all >"$tmp/n" 2>&1
	line=$(grep -m1 -- "-c kernels/cuda/" "$tmp/n")
	if [ -z "$line" ]; then
		echo "FAIL cuda_arch_old_nvcc: make -n with an sm_90-only nvcc compiles no .cu: $(tail -3 "$tmp/n")"
	elif echo "$line" | grep -q "120"; then
		echo "FAIL cuda_arch_old_nvcc: asks an nvcc without sm_120 for it: $line"
	elif ! echo "$line" | grep -q "code=sm_89" || ! echo "$line" | grep -q "arch=compute_90,code=compute_90"; then
		echo "FAIL cuda_arch_old_nvcc: want sm_89, sm_90 SASS and compute_90 PTX: $line"
	else
		echo "PASS cuda_arch_old_nvcc"
	fi
	# And with the real nvcc, when present, all three are asked for.
	if [ -n "$nvcc" ] && "$nvcc" --list-gpu-code 2>/dev/null | grep -qx sm_120; then
		make -n -B BUILD="$tmp/c" NVCC="$nvcc" all >"$tmp/n2" 2>&1
		line=$(grep -m1 -- "-c kernels/cuda/" "$tmp/n2")
		if echo "$line" | grep -q "code=sm_89" && echo "$line" | grep -q "code=sm_90" \
			&& echo "$line" | grep -q "code=sm_120" && echo "$line" | grep -q "code=compute_120"; then
			echo "PASS cuda_arch_nvcc_gencode"
		else
			echo "FAIL cuda_arch_nvcc_gencode: $nvcc supports sm_120 but the nvcc line lacks sm_89/sm_90/sm_120 or compute_120 PTX: $line"
		fi
	else
		echo "SKIP cuda_arch_nvcc_gencode: no nvcc that supports sm_120 here"
	fi
fi
