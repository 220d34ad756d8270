#!/usr/bin/env bash
# tests/infra/shellcheck.test.sh - shellcheck (severity warning and above) on the
# project's shell scripts. infra/*.sh and tools/*.sh are strict: a finding is a
# FAIL. Scripts under tests/ are reported as "warning:" lines (not counted) when
# they have findings, PASS when clean.
set -u
cd "$(dirname "$0")/../.." || exit 1
if ! command -v shellcheck >/dev/null 2>&1; then
	echo "FAIL shellcheck_installed: shellcheck not found (tools/deps.sh installs it)"
	exit 1
fi

strict=()
for f in infra/*.sh tools/*.sh; do
	[ -f "$f" ] && strict+=("$f")
done
if [ "${#strict[@]}" -eq 0 ]; then
	echo "FAIL shellcheck_found_scripts: no infra/*.sh or tools/*.sh"
	exit 1
fi
for f in "${strict[@]}"; do
	if out=$(shellcheck -S warning -x "$f" 2>&1); then
		echo "PASS shellcheck $f"
	else
		echo "FAIL shellcheck $f: $(echo "$out" | grep -E '^(In |.*SC[0-9]+)' | head -6 | tr '\n' ' ')"
	fi
done

while IFS= read -r f; do
	if out=$(shellcheck -S warning -x "$f" 2>&1); then
		echo "PASS shellcheck $f"
	else
		echo "warning: shellcheck $f: $(echo "$out" | grep -oE 'SC[0-9]+ \([a-z]+\): .{0,60}' | sort -u | head -4 | tr '\n' ';')"
	fi
done < <(find tests -name '*.sh' -type f | sort)
