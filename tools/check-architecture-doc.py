#!/usr/bin/env python3
"""check-architecture-doc.py - keeps docs/ARCHITECTURE.md true to the tree.

    tools/check-architecture-doc.py [ROOT]

Prints "PASS name" / "FAIL name: why" lines (tests/run.sh format); exits 1 on a failure.
  - arch_doc_paths:     every `path/file.ext` the page names exists;
  - arch_doc_functions: every `path/file.c:function` (and `file.c:function` after a path
    named earlier in the same line) names a function defined in that file;
  - arch_doc_complete:  every .c/.cu/.h source file under the layer folders is named on
    the page (by its path or its file name), so a new file cannot go unmapped.
"""
import os
import re
import sys

TOPS = ["common", "kernels", "tokenizer", "loader", "engine", "service"]
EXTS = (".c", ".h", ".cu", ".cuh")


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    doc = open(os.path.join(root, "docs/ARCHITECTURE.md"), encoding="utf-8").read()
    fails = {"paths": [], "functions": [], "complete": []}

    # Paths: backticked tokens that look like repository paths.
    for m in re.finditer(r"`([A-Za-z0-9_./-]+\.(?:cuh|cu|c|h|py|sh|md|yaml))(?=[`:,])", doc):
        p = m.group(1)
        if "/" in p and "_X" not in p and not os.path.exists(os.path.join(root, p)):
            fails["paths"].append(f"`{p}` does not exist (write paths from the repository root)")

    # file:function references; a bare file name resolves against the last full path's folder.
    sources = {}
    for top in TOPS:
        for d, _, names in os.walk(os.path.join(root, top)):
            for n in names:
                if n.endswith(EXTS):
                    rel = os.path.relpath(os.path.join(d, n), root)
                    sources.setdefault(n, []).append(rel)
    for line in doc.splitlines():
        last_dir = None
        for m in re.finditer(r"([A-Za-z0-9_./-]+\.(?:cu|c)):([A-Za-z_]\w*)", line):
            f, fn = m.group(1), m.group(2)
            if "/" in f:
                path = f
                last_dir = os.path.dirname(f)
            else:
                cands = sources.get(f, [])
                path = os.path.join(last_dir, f) if last_dir and os.path.join(last_dir, f) in cands else (
                    cands[0] if len(cands) == 1 else None)
            if not path or not os.path.exists(os.path.join(root, path)):
                fails["functions"].append(f"{f}:{fn}: no such file")
                continue
            text = open(os.path.join(root, path), encoding="utf-8", errors="replace").read()
            if not re.search(r"^[A-Za-z_][^;{}]*\b" + re.escape(fn) + r"\s*\(", text, re.M):
                fails["functions"].append(f"{path}:{fn}: no such function defined there")

    for top in TOPS:
        for d, _, names in os.walk(os.path.join(root, top)):
            for n in sorted(names):
                if not n.endswith(EXTS):
                    continue
                rel = os.path.relpath(os.path.join(d, n), root)
                stem = os.path.splitext(n)[0]
                if not re.search(r"(?<![\w])" + re.escape(stem) + r"(\.\{?[ch,}]*|\.cuh?|\b)", doc):
                    fails["complete"].append(f"{rel} is not on the page")

    bad = 0
    for name, msgs in fails.items():
        if msgs:
            bad += 1
            print(f"FAIL arch_doc_{name}: {len(msgs)} problem(s)")
            for m in msgs:
                print(f"  {m}")
        else:
            print(f"PASS arch_doc_{name}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
