#!/usr/bin/env bash
# tests/infra/doc_figures.test.sh - the figures docs/DEPLOY.md, docs/SCALING.md,
# docs/MEMORY.md, docs/API.md and README.md quote agree with service.yaml,
# infra/service-rtx6000.yaml and `gemma-run serve --help` (run now, no copied
# flag list): see tests/infra/check_doc_figures.py. MEMORY.md's plan rows are
# themselves recomputed by tests/unit/test_memory_doc.c.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
PY=/usr/bin/python3
if ! "$PY" -c 'import yaml' 2>/dev/null; then
	echo "FAIL python3_yaml: /usr/bin/python3 cannot import yaml (tools/deps.sh installs python3-yaml)"
	exit 1
fi
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
if ! "$BUILD/gemma-run" serve --help >"$tmp" 2>&1 || ! grep -q -- '--max-num-seqs' "$tmp"; then
	echo "FAIL serve_help: \`$BUILD/gemma-run serve --help\` failed: $(head -c 300 "$tmp")"
	exit 1
fi
"$PY" tests/infra/check_doc_figures.py "$tmp"
