#!/usr/bin/env bash
# tests/infra/dockerfile.test.sh - static checks of the Dockerfile (Docker is not
# available on the build machine, so the image itself is not built here).
#
# Asserts: a Debian 12 build stage with NVIDIA's CUDA 12.x (x >= 8) nvcc, cudart and
# cuBLAS packages and a debian:12-slim runtime stage with the same CUDA version's
# cudart and cuBLAS, the driver's mount point on LD_LIBRARY_PATH, a cuobjdump check of
# the SASS, an ldd check of the final binary; the build stage runs a make target that, with nvcc present,
# links $BUILD/gemma-run against cuBLAS/cudart from the same objects as CI's
# `make test` (both dry-run with `make -n`), and fails the image build if cuBLAS
# is not linked; the build stage installs the -dev packages tools/deps.sh lists;
# the runtime stage installs a package for every shared library the binary
# links (readelf NEEDED -> dpkg -S), runs as a non-root user, copies the binary
# the make line built, has ENTRYPOINT ["gemma-run","serve"], and carries no
# weights (.dockerignore excludes them).
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -f Dockerfile ]; then
	echo "FAIL dockerfile_exists: no Dockerfile"
	exit 1
fi
if command -v docker >/dev/null 2>&1; then
	echo "SKIP docker_build: building the CUDA image takes too long for make test (docker build -t gemma-run .)"
else
	echo "SKIP docker_build: docker is not installed here; only static checks run"
fi

# The make command of the Dockerfile's build stage, as words: VAR=value... targets...
"$PY" - >"$tmp/make_args" <<'EOF'
import re, shlex
text = open("Dockerfile").read().replace("\\\n", " ")
for line in text.splitlines():
    m = re.match(r"\s*RUN\s+(.*)", line)
    if not m:
        continue
    for cmd in re.split(r"&&|;", m.group(1)):
        w = shlex.split(cmd.strip())
        if w and w[0] == "make":
            print(" ".join(x for x in w[1:] if not x.startswith("-j") and not x.startswith("-")))
            raise SystemExit
EOF
read -r -a make_args <"$tmp/make_args"

docker_nvcc=""
targets=()
for a in "${make_args[@]}"; do
	case "$a" in
	BUILD=*) ;;
	NVCC=*) docker_nvcc=${a#NVCC=} ;;
	CUDA=0) echo "FAIL dockerfile_make_cuda: the make line forces CUDA=0" ;;
	*=*) ;;
	*) targets+=("$a") ;;
	esac
done
[ "${#targets[@]}" -eq 0 ] && targets=(all)
if [ -z "$(cat "$tmp/make_args")" ] && ! grep -qE '^\s*RUN .*\bmake\b' Dockerfile; then
	echo "FAIL dockerfile_make_line: no RUN make in the Dockerfile"
fi

# Dry-run the Dockerfile's make line and CI's `make test` (its `tests` target) with nvcc
# "present": both must link gemma-run with cuBLAS from the same objects.
nvcc=${docker_nvcc:-/usr/local/cuda/bin/nvcc}
make -n -B BUILD="$tmp/docker" NVCC="$nvcc" "${targets[@]}" >"$tmp/docker.n" 2>"$tmp/docker.err"
rc1=$?
make -n -B BUILD="$tmp/ci" NVCC="$nvcc" tests >"$tmp/ci.n" 2>"$tmp/ci.err"
rc2=$?
"$PY" - "$tmp" "$rc1" "$rc2" "${targets[*]}" <<'EOF'
import glob, re, sys
tmp, rc1, rc2, targets = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def link_line(path, build):
    for line in open(path):
        if re.search(r"-o %s/gemma-run\b" % re.escape(build), line):
            return line
    return None
d = link_line(tmp + "/docker.n", tmp + "/docker")
c = link_line(tmp + "/ci.n", tmp + "/ci")
name = "dockerfile_make_links_cuda"
if rc1 or not d:
    print("FAIL %s: `make -n %s` (rc %d) does not link gemma-run: %s" % (name, targets, rc1, open(tmp + "/docker.err").read()[-300:]))
elif not all(l in d for l in ("-lcublas", "-lcublasLt", "-lcudart")):
    print("FAIL %s: link line lacks cuBLAS/cudart: %s" % (name, d.strip()[-300:]))
else:
    cu = sorted(glob.glob("kernels/cuda/*.cu"))
    dn = open(tmp + "/docker.n").read()
    missing = [f for f in cu if not re.search(r"nvcc\b.*-c %s\b" % re.escape(f), dn)]
    print("FAIL %s: .cu files not compiled by nvcc: %s" % (name, missing) if missing else "PASS " + name)
name = "dockerfile_same_build_as_ci"
if rc2 or not c or not d:
    print("FAIL %s: CI's `make tests` dry-run (rc %d) does not link gemma-run" % (name, rc2))
else:
    norm = lambda s, b: s.replace(b, "BUILD").split()
    a, b = norm(d, tmp + "/docker"), norm(c, tmp + "/ci")
    print("PASS " + name if a == b else "FAIL %s: link lines differ:\n  %s\n  %s" % (name, " ".join(a), " ".join(b)))
EOF
if [ -f .ci/run ]; then
	if grep -qE '\bmake\b.*\b(test|tests|all)\b' .ci/run; then
		echo "PASS ci_runs_make_test"
	else
		echo "FAIL ci_runs_make_test: .ci/run does not run make test/tests/all"
	fi
else
	echo "SKIP ci_runs_make_test: .ci/run does not exist yet"
fi

# The rest is static: the Dockerfile's stages, packages, user, entrypoint.
bin="$BUILD/gemma-run"
needed_pkgs=""
if [ -x "$bin" ] && command -v readelf >/dev/null && command -v dpkg >/dev/null; then
	for lib in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		case "$lib" in
		libc.so*|libm.so*|libgcc_s*|libstdc++*|libpthread*|libdl*|ld-linux*|libasan*|libubsan*) continue ;;
		libcuda.so*|libcublas*|libcudart*) continue ;;	# in the CUDA runtime base image
		esac
		path=$(ldd "$bin" | awk -v l="$lib" '$1 == l {print $3}')
		pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
		[ -z "$pkg" ] && pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
		needed_pkgs="$needed_pkgs $lib=${pkg:-UNKNOWN}"
	done
fi
"$PY" - "$needed_pkgs" <<'EOF'
import json, re, sys
needed = [x.split("=", 1) for x in sys.argv[1].split()]
text = open("Dockerfile").read()
joined = text.replace("\\\n", " ")
args = dict(re.findall(r"(?m)^ARG\s+(\w+)=(\S+)", joined))
def expand(s):
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), s)
stages, cur = [], None
for line in joined.splitlines():
    m = re.match(r"\s*FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
    if m:
        cur = {"image": expand(m.group(1)), "name": m.group(2), "lines": []}
        stages.append(cur)
    elif cur is not None:
        cur["lines"].append(line)
def res(name, ok, why):
    print(("PASS %s" % name) if ok else ("FAIL %s: %s" % (name, why)))

ok = len(stages) >= 2
b, r = (stages[0], stages[-1]) if ok else ({}, {})
# Both stages on the release CI builds on (Debian 12, /etc/os-release here when run on
# CI), the runtime one -slim; CUDA 12 (driver 535 on the L4 runs 12.x by minor-version
# compatibility, driver 580 by backward compatibility), minor >= 8 (first with sm_120).
codename = ""
try:
    codename = re.search(r"(?m)^VERSION_CODENAME=(\w+)", open("/etc/os-release").read()).group(1)
except (OSError, AttributeError):
    pass
deb = args.get("DEBIAN", "")
res("dockerfile_stages", ok and b.get("image") == "debian:" + deb and r.get("image") == "debian:%s-slim" % deb
    and deb == "bookworm",
    "want FROM debian:${DEBIAN} AS build and FROM debian:${DEBIAN}-slim with DEBIAN=bookworm (CI's Debian 12), got %s"
    % [s["image"] for s in stages])
res("dockerfile_same_release_as_ci", not codename or codename == deb,
    "this machine (CI) runs Debian %s, the image %s" % (codename, deb))
cmaj, cmin = args.get("CUDA_MAJOR", ""), args.get("CUDA_MINOR", "")
res("dockerfile_cuda_version", cmaj == "12" and cmin.isdigit() and int(cmin) >= 8,
    "want CUDA_MAJOR=12 (runs on driver 535) and CUDA_MINOR >= 8 (sm_120), got %s.%s" % (cmaj, cmin))
blines = "\n".join(b.get("lines", []))
rlines = "\n".join(r.get("lines", []))
bl = "\n".join(b.get("lines", []))
rl = "\n".join(r.get("lines", []))
cv = "${CUDA_MAJOR}-${CUDA_MINOR}"
res("dockerfile_cuda_packages",
    all(("%s-%s" % (p, cv)) in bl for p in ("cuda-nvcc", "cuda-cudart-dev", "libcublas-dev"))
    and all(("%s-%s" % (p, cv)) in rl for p in ("cuda-cudart", "libcublas")),
    "build stage needs cuda-nvcc, cuda-cudart-dev, libcublas-dev and the runtime stage cuda-cudart, libcublas, all -%s" % cv)
res("dockerfile_checks_sass", all(sm in bl for sm in ("sm_89", "sm_90", "sm_120")) and "cuobjdump --list-elf" in bl,
    "the build stage must fail without sm_89, sm_90, sm_120 SASS (cuobjdump --list-elf)")
ldp = re.search(r"LD_LIBRARY_PATH=(\S+)", rl)
res("dockerfile_driver_libs", ldp and "/usr/local/nvidia/lib64" in ldp.group(1).split(":")
    and re.search(r"ldconfig", rl),
    "runtime stage must put /usr/local/nvidia/lib64 (where the driver's libcuda is mounted) on LD_LIBRARY_PATH and ldconfig the CUDA libraries")
res("dockerfile_runtime_resolves_libs", re.search(r"ldd\s+\S*gemma-run\s*\|\s*grep\s+'not found'", rl),
    "runtime stage must fail when ldd finds a library missing")
res("dockerfile_fails_without_cublas", re.search(r"ldd\s+\S*gemma-run\s*\|\s*grep\s+-q\s+libcublas", blines),
    "the build stage must check `ldd build/gemma-run | grep -q libcublas`")

deps = open("tools/deps.sh").read()
m = re.search(r"APT_PKGS=\(([^)]*)\)", deps, re.S)
want_dev = [p for p in (m.group(1).split() if m else []) if p.endswith("-dev") and p.startswith(("libevent", "libcjson", "libcurl", "libssl"))]
want_dev += ["pkg-config", "build-essential"]
res("dockerfile_build_deps_match_tools_deps", m and all(re.search(r"\b%s\b" % re.escape(p), blines) for p in want_dev),
    "build stage must install %s" % want_dev)

missing = [(lib, pkg) for lib, pkg in needed if pkg == "UNKNOWN" or not re.search(r"(?<![\w.-])%s(?![\w.-])" % re.escape(pkg), rlines)]
res("dockerfile_runtime_has_linked_libs", needed and not missing,
    "runtime stage lacks packages for %s (NEEDED: %s)" % (missing, needed) if needed else
    "could not list the binary's NEEDED libraries (build it; needs readelf, dpkg)")
res("dockerfile_runtime_no_toolchain", not re.search(r"\b(build-essential|gcc|-dev\b|cuda-nvcc|cuda-toolkit)", rlines),
    "runtime stage installs build tools")

users = re.findall(r"(?m)^\s*USER\s+(\S+)", rlines)
res("dockerfile_non_root", users and users[-1].split(":")[0] not in ("root", "0"), "final USER %r" % users)

ents = re.findall(r"(?m)^\s*ENTRYPOINT\s+(.*)$", rlines)
try:
    ent = json.loads(ents[-1]) if ents else None
except ValueError:
    ent = None
res("dockerfile_entrypoint", ent == ["gemma-run", "serve"], "ENTRYPOINT %r" % ents)

wd = re.findall(r"(?m)^\s*WORKDIR\s+(\S+)", blines)
mk = re.search(r"\bmake\b[^\n]*?\bBUILD=(\S+)", blines)
bdir = mk.group(1) if mk else "build"
src = (wd[-1].rstrip("/") + "/" if wd else "/") + bdir + "/gemma-run"
cp = re.search(r"(?m)^\s*COPY\s+--from=%s\s+(\S+)\s+(\S+)" % re.escape(b.get("name") or "0"), rlines)
res("dockerfile_copies_built_binary", cp and cp.group(1) == src and cp.group(2).rstrip("/").endswith(("/usr/local/bin/gemma-run", "/usr/local/bin", "/usr/bin/gemma-run")),
    "want COPY --from=%s %s /usr/local/bin/gemma-run, got %r" % (b.get("name"), src, cp and cp.groups()))

# (an ADD of NVIDIA's cuda-keyring .deb is the one URL allowed)
weights = re.search(r"(?im)^\s*(COPY|ADD)\b(?!\s+https://developer\.download\.nvidia\.com/\S+/cuda-keyring_[\w.-]+\.deb\s)"
                    r".*(safetensors|\.gguf|models?/|gs://|https?://)", rlines)
try:
    di = open(".dockerignore").read().split()
except OSError:
    di = []
res("dockerfile_no_weights", not weights and "**/*.safetensors" in di and ".git" in di
    and any(x in di for x in ("build", "build*", "build/")),
    "runtime copies weights (%r) or .dockerignore lacks **/*.safetensors, .git, build" % (weights and weights.group(0)))
EOF

# gcloud builds submit uploads what .gcloudignore allows (it does not read .dockerignore):
# every .dockerignore pattern must be in .gcloudignore too, weights above all.
"$PY" - <<'EOF'
import os
def pats(p):
    try:
        return [l.strip() for l in open(p) if l.strip() and not l.startswith("#")]
    except OSError:
        return None
d, g = pats(".dockerignore"), pats(".gcloudignore")
if g is None:
    print("FAIL gcloudignore_exists: no .gcloudignore: gcloud builds submit would upload model weights in the checkout")
else:
    missing = [x for x in d or [] if x not in g]
    print("PASS gcloudignore_matches_dockerignore" if not missing and "**/*.safetensors" in g
          else "FAIL gcloudignore_matches_dockerignore: .gcloudignore lacks %s" % missing)
EOF
