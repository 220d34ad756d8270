#!/usr/bin/env bash
# architecture_doc.test.sh - docs/ARCHITECTURE.md stays true to the tree
# (tools/check-architecture-doc.py): every path it names exists, every
# file:function of its walks is defined there, every source file is on the
# page. First the checker is shown to catch each fault on a copy with one
# planted error each, then it runs on this repository.
set -u
cd "$(dirname "$0")/../.."
check=tools/check-architecture-doc.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

copy() {	# copy DIR: the doc and the source folders
	mkdir -p "$1/docs"
	cp docs/ARCHITECTURE.md "$1/docs/"
	cp -r common kernels tokenizer loader engine service "$1/"
}

expect() {	# expect NAME DIR CHECK PATTERN
	local out
	out=$(python3 "$check" "$2" 2>&1)
	if grep -q "^FAIL arch_doc_$3" <<<"$out" && grep -q -- "$4" <<<"$out"; then
		echo "PASS $1"
	else
		echo "FAIL $1: expected arch_doc_$3 to fail with '$4'; got:"
		sed 's/^/  /' <<<"$out"
	fi
}

copy "$tmp/path"
echo '| `engine/no_such_file.c` | planted |' >>"$tmp/path/docs/ARCHITECTURE.md"
expect checker_finds_missing_path "$tmp/path" paths "engine/no_such_file.c"

copy "$tmp/fn"
echo '1. `engine/engine.c:eng_no_such_function`' >>"$tmp/fn/docs/ARCHITECTURE.md"
expect checker_finds_missing_function "$tmp/fn" functions "engine/engine.c:eng_no_such_function"

copy "$tmp/new"
printf '/* planted */\nint planted_fn(void) { return 0; }\n' >"$tmp/new/engine/planted_unmapped.c"
expect checker_finds_unmapped_file "$tmp/new" complete "engine/planted_unmapped.c"

python3 "$check" .
