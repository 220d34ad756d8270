#!/usr/bin/env python3
"""check-layout.py - checks the layering of gemma-run's sources from their
#include lines (docs/ARCHITECTURE.md, "Layers").

    tools/check-layout.py [ROOT]

Prints one line per check, "PASS name" or "FAIL name: why", as tests/run.sh
reads them, and exits 1 when any check fails. The checks:
  - layers: every project #include points to a folder its own folder may use
    (no upward include: cli -> service -> engine -> {kernels, tokenizer} -> common,
    cli -> loader -> kernels);
  - libraries: <event2/...> only under service/; <curl/...> and <openssl/...> only
    under loader/ and service/auth/;
  - cycles: no two files include each other, directly or through others; a .c
    and its .h (same folder, same name) count as one file, and a header with no .c
    of its own (types and constants only, e.g. engine_int.h) is looked through:
    what includes it depends on what it includes;
  - known: every source file lies in a folder with a rule, and every quoted
    #include names a file that exists.
"""
import os
import re
import sys

# folder -> folders its files may include (besides itself). Longest prefix wins.
RULES = {
    "common": [],
    "kernels": ["common"],
    "tokenizer": ["common"],
    "loader": ["common", "kernels"],
    "engine": ["common", "kernels", "tokenizer"],
    "service": ["common", "kernels", "tokenizer", "engine"],
    "service/auth": ["common", "service"],
    "service/api": ["common", "kernels", "tokenizer", "engine", "service"],
    "service/http": ["common", "kernels", "tokenizer", "engine", "service", "service/api",
                     "service/auth"],
    "service/cli": ["common", "kernels", "tokenizer", "loader", "engine", "service",
                    "service/api", "service/auth", "service/http"],
}
# Sub-folders that are part of their parent's layer for these rules.
SAME_LAYER = {"kernels/cpu": "kernels", "kernels/cuda": "kernels"}
LIBS = {
    "event2/": ["service"],
    "curl/": ["loader", "service/auth"],
    "openssl/": ["loader", "service/auth"],
}
TOPS = ["common", "kernels", "tokenizer", "loader", "engine", "service"]
EXTS = (".c", ".h", ".cu", ".cuh")
INC = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def folder_of(path):
    d = os.path.dirname(path)
    d = SAME_LAYER.get(d, d)
    best = None
    for f in RULES:
        if d == f or d.startswith(f + "/"):
            if best is None or len(f) > len(best):
                best = f
    return best


def unit_of(path):
    stem, _ = os.path.splitext(path)
    return stem


def may_include(src_folder, dst_folder):
    if dst_folder == src_folder:
        return True
    return dst_folder in RULES[src_folder]


def scan(root):
    files = []
    for top in TOPS:
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for n in sorted(names):
                if n.endswith(EXTS):
                    files.append(os.path.relpath(os.path.join(dirpath, n), root))
    incs = {}
    for f in sorted(files):
        lst = []
        with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
            for ln, line in enumerate(fh, 1):
                m = INC.match(line)
                if m:
                    lst.append((ln, m.group(1), m.group(2)))
        incs[f] = lst
    return incs


def find_cycles(edges):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def collapse(edges, units):
    """Edges between units (a .c with its .h); header-only nodes are looked through."""
    out = {}
    for a in units:
        seen, todo, reach = {a}, list(edges.get(a, ())), set()
        while todo:
            b = todo.pop()
            if b in seen:
                continue
            seen.add(b)
            if b in units:
                reach.add(b)
            else:
                todo.extend(edges.get(b, ()))
        reach.discard(a)
        out[a] = reach
    return out


def check(root):
    incs = scan(root)
    problems = {"known": [], "layers": [], "libraries": [], "cycles": []}
    edges = {}
    for f, lst in incs.items():
        src = folder_of(f)
        if src is None:
            problems["known"].append(f"{f}: folder has no rule in tools/check-layout.py")
            continue
        for ln, kind, name in lst:
            if kind == "<":
                for prefix, allowed in LIBS.items():
                    if name.startswith(prefix) and not any(
                            src == a or src.startswith(a + "/") for a in allowed):
                        problems["libraries"].append(
                            f"{f}:{ln}: <{name}> is for {' and '.join(a + '/' for a in allowed)} only")
                continue
            if not os.path.exists(os.path.join(root, name)):
                problems["known"].append(f"{f}:{ln}: \"{name}\" does not exist (paths are from the root)")
                continue
            dst = folder_of(name)
            if dst is None:
                problems["known"].append(f"{f}:{ln}: \"{name}\" is outside the source folders")
                continue
            if not may_include(src, dst):
                problems["layers"].append(f"{f}:{ln}: {src}/ may not include {dst}/ (\"{name}\")")
            edges.setdefault(unit_of(f), set()).add(unit_of(name))
    units = {unit_of(f) for f in incs if not f.endswith((".h", ".cuh"))}
    for comp in find_cycles(collapse(edges, units)):
        problems["cycles"].append("include cycle: " + " <-> ".join(comp))
    return len(incs), problems


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    n, problems = check(root)
    failed = 0
    for name in ("known", "layers", "libraries", "cycles"):
        p = problems[name]
        if p:
            failed += 1
            print(f"FAIL layout_{name}: {len(p)} problem(s) in {n} files")
            for line in p:
                print(f"  {line}")
        else:
            print(f"PASS layout_{name} ({n} files)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
