#!/usr/bin/env bash
# layout.test.sh - the layering of the sources (docs/ARCHITECTURE.md, "Layers"),
# read from their #include lines by tools/check-layout.py: no upward include,
# libevent/libcurl/OpenSSL only where allowed, no include cycle between files.
# First the checker itself is shown to catch each kind of fault in a small
# planted tree, then it runs on this repository.
set -u
cd "$(dirname "$0")/../.."
check=tools/check-layout.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

plant() {	# plant DIR: a minimal clean tree
	mkdir -p "$1"/{common,kernels,tokenizer,loader,engine,service/http,service/cli}
	printf '#include "common/util.h"\n' >"$1/common/log.c"
	printf '/* util */\n' >"$1/common/util.h"
	printf '#include "common/log.h"\n' >"$1/common/util.c"
	printf '/* log */\n' >"$1/common/log.h"
	printf '#include "common/log.h"\n' >"$1/engine/engine.c"
	printf '/* engine */\n' >"$1/engine/engine.h"
	printf '#include "engine/engine.h"\n#include <event2/http.h>\n' >"$1/service/http/http.c"
	printf '#include "service/http/http.h"\n#include "loader/loader.h"\n' >"$1/service/cli/main.c"
	printf '/* http */\n' >"$1/service/http/http.h"
	printf '#include "kernels/backend.h"\n' >"$1/loader/loader.c"
	printf '/* loader */\n' >"$1/loader/loader.h"
	printf '/* backend */\n' >"$1/kernels/backend.h"
}

expect() {	# expect NAME DIR CHECK-THAT-MUST-FAIL PATTERN
	local name=$1 dir=$2 which=$3 pat=$4 out
	out=$(python3 "$check" "$dir" 2>&1)
	if grep -q "^FAIL layout_$which" <<<"$out" && grep -q -- "$pat" <<<"$out"; then
		echo "PASS $name"
	else
		echo "FAIL $name: expected layout_$which to fail with '$pat'; got:"
		sed 's/^/  /' <<<"$out"
	fi
}

# The planted tree has one cycle (common/log <-> common/util): fix it, then check clean.
plant "$tmp/ok"
printf '/* no includes */\n' >"$tmp/ok/common/util.c"
if python3 "$check" "$tmp/ok" >"$tmp/ok.out" 2>&1; then
	echo "PASS checker_accepts_clean_tree"
else
	echo "FAIL checker_accepts_clean_tree:"; sed 's/^/  /' "$tmp/ok.out"
fi

plant "$tmp/cycle"
expect checker_finds_cycle_between_c_files "$tmp/cycle" cycles "common/log <-> common/util"

plant "$tmp/up"; printf '/* no includes */\n' >"$tmp/up/common/util.c"
printf '#include "service/http/http.h"\n' >>"$tmp/up/engine/engine.c"
expect checker_finds_upward_include "$tmp/up" layers "engine/ may not include service/http/"

plant "$tmp/side"; printf '/* no includes */\n' >"$tmp/side/common/util.c"
printf '#include "loader/loader.h"\n' >>"$tmp/side/service/http/http.c"
expect checker_finds_service_including_loader "$tmp/side" layers "service/http/ may not include loader/"

plant "$tmp/lib"; printf '/* no includes */\n' >"$tmp/lib/common/util.c"
printf '#include <curl/curl.h>\n' >>"$tmp/lib/engine/engine.c"
expect checker_finds_curl_outside_loader "$tmp/lib" libraries "engine/engine.c:2: <curl/curl.h>"

plant "$tmp/hdr"; printf '/* no includes */\n' >"$tmp/hdr/common/util.c"
printf '#include "engine/engine_int.h"\n' >>"$tmp/hdr/engine/engine.c"
printf '#include "engine/step.h"\n' >"$tmp/hdr/engine/engine_int.h"
printf '#include "engine/engine_int.h"\n' >"$tmp/hdr/engine/step.c"
printf '/* step */\n' >"$tmp/hdr/engine/step.h"
printf '#include "engine/engine.h"\n' >>"$tmp/hdr/engine/step.c"
expect checker_finds_cycle_through_header "$tmp/hdr" cycles "engine/engine <-> engine/step"

# This repository.
python3 "$check" .
