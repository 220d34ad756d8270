#!/usr/bin/env bash
# tests/infra/image_rehearsal.sh - `make test-image`: the Dockerfile's distribution
# package steps, replayed in chroots of its distribution, and the C part built there.
#
# Docker is not available where CI runs, and NVIDIA's CUDA apt repository is not
# reachable from it, so this rehearses what can be rehearsed for real:
#   1. build chroot: `debootstrap --variant=minbase SUITE` (SUITE from the Dockerfile's
#      `ARG DEBIAN=`, i.e. the tag of its `FROM debian:...`), then the build stage's
#      "# apt: debian build" RUN block, word for word, inside it;
#   2. the working tree (git ls-files, as COPY . . would see it less .dockerignore'd
#      build outputs) copied to /src there, `make CUDA=0 BUILD=build all`, then
#      `gemma-run --version` and `serve --help`;
#   3. runtime chroot: a second minbase chroot with the runtime stage's
#      "# apt: debian runtime" block; the binary from 2 copied in must resolve every
#      library it links (ldd: no "not found") and run `--version` there.
# Chroots are cached under $BUILD/image-chroot/, keyed by suite and the RUN block's
# text, so a changed package line rebuilds them. IMAGE_MIRROR overrides the archive,
# IMAGE_SUITE the release (see below).
# Prints PASS/FAIL lines like the other tests and the time each step took.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
root_dir=$PWD
cache="$root_dir/$BUILD/image-chroot"
mirror=${IMAGE_MIRROR:-http://deb.debian.org/debian}
components=${IMAGE_COMPONENTS:-main}
t_start=$SECONDS

fail() { echo "FAIL $1: $2"; exit 1; }
[ "$(id -u)" -eq 0 ] || fail image_rehearsal_root "needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null || fail image_rehearsal_debootstrap "debootstrap is not installed (apt-get install debootstrap; tools/deps.sh)"

suite=$(sed -n 's/^ARG DEBIAN=\([a-z0-9.]*\).*/\1/p' Dockerfile | head -1)
grep -qE '^FROM debian:\$\{DEBIAN\}' Dockerfile \
	|| fail image_rehearsal_base "the Dockerfile's stages are not FROM debian:\${DEBIAN}; this rehearsal replays Debian only"
[ -n "$suite" ] || fail image_rehearsal_base "no ARG DEBIAN=<suite> in the Dockerfile"
# IMAGE_SUITE replays the same steps on another release, e.g. the oldest libcurl we
# support: IMAGE_SUITE=jammy IMAGE_MIRROR=http://archive.ubuntu.com/ubuntu
# IMAGE_COMPONENTS=main,universe (Ubuntu 22.04, libcurl 7.81; cJSON is in universe).
suite=${IMAGE_SUITE:-$suite}

# The RUN command between "# apt: debian NAME" and "# apt: end", continuation lines joined.
apt_block() {
	awk -v tag="# apt: debian $1" '
		$0 == tag {on = 1; next}
		on && $0 == "# apt: end" {exit}
		on {print}' Dockerfile | sed 's/\\$//' | tr '\n' ' ' | sed 's/^ *RUN //; s/  */ /g'
}
build_cmd=$(apt_block build)
run_cmd=$(apt_block runtime)
[ -n "$build_cmd" ] || fail image_rehearsal_parse "no '# apt: debian build' RUN block in the Dockerfile"
[ -n "$run_cmd" ] || fail image_rehearsal_parse "no '# apt: debian runtime' RUN block in the Dockerfile"

# proc is mounted in the chroots only from this shell (never inside $(...), whose
# bookkeeping would be lost) and unmounted on exit; nothing is removed while mounted.
mounted=()
cleanup() {
	local m
	for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null; done
}
trap cleanup EXIT
enter() {	# dir: mount proc there once
	mountpoint -q "$1/proc" && return 0
	mount -t proc proc "$1/proc" && mounted+=("$1/proc")
}
in_chroot() {	# dir, command... (after enter dir)
	local dir=$1; shift
	chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
		DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 /bin/bash -c "$*"
}
remove_tree() {	# dir: refuses while anything is mounted below it
	local d=$1
	[ -e "$d" ] || return 0
	awk -v d="$d/" 'index($2, d) == 1 {print $2}' /proc/mounts | while read -r m; do umount -l "$m"; done
	if awk -v d="$d/" 'index($2, d) == 1 {f = 1} END {exit !f}' /proc/mounts; then
		echo "refusing to remove $d: still mounted below it" >&2
		return 1
	fi
	rm -rf --one-file-system "$d"
}

# A cached chroot for SUITE with CMD applied, in $chroot_dir.
chroot_dir=""
make_chroot() {	# name, cmd
	local name=$1 cmd=$2 key dir t0 old
	key=$(printf '%s\n%s\n%s\n%s\n' "$suite" "$mirror" "$components" "$cmd" | sha256sum | cut -c1-12)
	dir="$cache/$suite-$name-$key"
	chroot_dir=$dir
	if [ -f "$dir/.ready" ]; then
		echo "  $name chroot: cached ($dir)"
		return 0
	fi
	for old in "$cache/$suite-$name-"*; do
		remove_tree "$old" || return 1
	done
	mkdir -p "$cache"
	t0=$SECONDS
	if ! debootstrap --variant=minbase --components="$components" "$suite" "$dir.tmp" "$mirror" >"$cache/$name-debootstrap.log" 2>&1; then
		tail -5 "$cache/$name-debootstrap.log"
		return 1
	fi
	echo "  $name chroot: debootstrap $suite $((SECONDS - t0))s"
	t0=$SECONDS
	enter "$dir.tmp" || return 1
	if ! in_chroot "$dir.tmp" "set -e; $cmd" >"$cache/$name-apt.log" 2>&1; then
		tail -15 "$cache/$name-apt.log"
		return 1
	fi
	umount -l "$dir.tmp/proc"
	echo "  $name chroot: Dockerfile package step $((SECONDS - t0))s"
	mv "$dir.tmp" "$dir" && touch "$dir/.ready"
}

echo "# suite $suite from $mirror ($components)"
make_chroot build "$build_cmd" || fail image_rehearsal_build_packages "the build stage's package step failed in a $suite chroot (log: $cache/build-apt.log)"
broot=$chroot_dir
enter "$broot" || fail image_rehearsal_build_packages "cannot mount proc in $broot"
echo "PASS image_rehearsal_build_packages"

# The source as the build context sees it: tracked + untracked-not-ignored files.
t0=$SECONDS
rm -rf --one-file-system "$broot/src" && mkdir -p "$broot/src"
git ls-files -z --cached --others --exclude-standard \
	| grep -zv '^tools/node/node_modules' \
	| tar --null -T - -cf - 2>/dev/null | tar -xf - -C "$broot/src" \
	|| fail image_rehearsal_copy "copying the source into the chroot failed"
if in_chroot "$broot" "cd /src && make -j$(nproc) CUDA=0 BUILD=build all && build/gemma-run --version && build/gemma-run serve --help | grep -q -- --max-num-seqs" \
	>"$cache/make.log" 2>&1; then
	curlv=$(in_chroot "$broot" "dpkg-query -W -f='\${Version}' libcurl4-openssl-dev")
	gccv=$(in_chroot "$broot" "gcc -dumpversion")
	echo "PASS image_rehearsal_make_all_cuda0 ($((SECONDS - t0))s; libcurl $curlv, gcc $gccv)"
else
	grep -E 'error|Error' "$cache/make.log" | head -20
	tail -5 "$cache/make.log"
	fail image_rehearsal_make_all_cuda0 "make all with CUDA=0 failed in the $suite build chroot (log: $cache/make.log)"
fi

make_chroot runtime "$run_cmd" || fail image_rehearsal_runtime_packages "the runtime stage's package step failed in a $suite chroot (log: $cache/runtime-apt.log)"
rroot=$chroot_dir
enter "$rroot" || fail image_rehearsal_runtime_packages "cannot mount proc in $rroot"
echo "PASS image_rehearsal_runtime_packages"
cp "$broot/src/build/gemma-run" "$rroot/usr/local/bin/gemma-run"
in_chroot "$rroot" "ldd /usr/local/bin/gemma-run" >"$cache/ldd.txt" 2>&1
if grep -q 'not found' "$cache/ldd.txt"; then
	fail image_rehearsal_runtime_libs "the runtime stage lacks libraries the binary links: $(grep 'not found' "$cache/ldd.txt" | tr '\n' ' ')"
elif ! in_chroot "$rroot" "id -u gemma >/dev/null && /usr/local/bin/gemma-run --version" >/dev/null 2>&1; then
	fail image_rehearsal_runtime_libs "gemma-run --version does not run in the runtime chroot (or no gemma user)"
fi
echo "PASS image_rehearsal_runtime_libs"
echo "# image rehearsal done in $((SECONDS - t_start))s"
