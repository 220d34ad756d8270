#!/usr/bin/env bash
# tests/infra/curl_symbols.test.sh - every libcurl symbol the code uses exists in the
# oldest libcurl we support, so a newer-curl-only option cannot break the build on an
# older distribution again (CURLOPT_PROTOCOLS_STR, 7.85, broke Ubuntu 22.04's 7.81).
#
# The version table is libcurl's own symbols-in-versions, as Debian ships it in
# libcurl4-doc (man page libcurl-symbols.3; tools/deps.sh installs it) or as the plain
# file from a curl source tree (CURL_SYMBOLS=path). For each CURL*_ token in loader/,
# service/ and tools/ sources (comments and strings removed), the lowest libcurl version
# guaranteed at that line is OLDEST_CURL, raised inside `#if LIBCURL_VERSION_NUM >= X`
# (or the #else of `< X`) blocks. Fails when a symbol was introduced after that version,
# or when a symbol deprecated in version D is used outside a `< D` block (newer curl
# headers warn, and the build is -Werror).
set -u
cd "$(dirname "$0")/../.." || exit 1
OLDEST_CURL=${OLDEST_CURL:-7.81.0}	# Ubuntu 22.04 (jammy); docs/DEPLOY.md "Supported build distributions"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
table=${CURL_SYMBOLS:-}
if [ -z "$table" ]; then
	for f in /usr/share/man/man3/libcurl-symbols.3.gz /usr/share/man/man3/libcurl-symbols.3 \
		$(find /usr/share -name symbols-in-versions 2>/dev/null | head -1); do
		[ -f "$f" ] && { table=$f; break; }
	done
fi
if [ -z "$table" ]; then
	echo "FAIL curl_symbols_table: libcurl's symbols-in-versions not found (apt-get install libcurl4-doc; tools/deps.sh)"
	exit 1
fi
"$PY" - "$table" "$OLDEST_CURL" "$@" <<'PYEOF'
import gzip, os, re, sys
table, oldest = sys.argv[1], sys.argv[2]
files = sys.argv[3:]

def ver(s):
    p = [int(x) for x in s.split(".")]
    return tuple(p + [0] * (3 - len(p)))

def vstr(v):
    return "%d.%d.%d" % v

intro, depr = {}, {}
raw = (gzip.open if table.endswith(".gz") else open)(table, "rt", errors="replace").read()
if "\n.IP " in raw:	# the man page: .IP NAME / Introduced in X / Deprecated since Y
    for m in re.finditer(r"(?m)^\.IP (\w+)\n((?:(?!\.IP ).*\n)*)", raw):
        body = m.group(2)
        i = re.search(r"Introduced in ([\d.]+)", body)
        d = re.search(r"Deprecated since ([\d.]+)", body)
        if i:
            intro[m.group(1)] = ver(i.group(1))
        if d:
            depr[m.group(1)] = ver(d.group(1))
else:	# symbols-in-versions: NAME introduced [deprecated [last]]
    for line in raw.splitlines():
        w = line.split()
        if len(w) >= 2 and re.match(r"^[A-Z]\w+$", w[0]) and re.match(r"^\d+\.\d+", w[1]):
            intro[w[0]] = ver(w[1])
            if len(w) >= 3 and re.match(r"^\d+\.\d+", w[2]):
                depr[w[0]] = ver(w[2])
if len(intro) < 500 or "CURLOPT_URL" not in intro:
    print("FAIL curl_symbols_table: %s does not parse as libcurl's symbol table (%d symbols)" % (table, len(intro)))
    sys.exit(1)
print("PASS curl_symbols_table")

if not files:
    for top in ("loader", "service", "tools", "common"):
        for dp, dn, fn in os.walk(top):
            dn[:] = [d for d in dn if d != "node_modules"]
            files += [os.path.join(dp, f) for f in fn if f.endswith((".c", ".h"))]
files = sorted(files)

def strip(text):
    # comments and string/char literals out, newlines kept
    out, i, n = [], 0, len(text)
    pat = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
    return pat.sub(lambda m: "\n" * m.group(0).count("\n") if m.group(0)[0] == "/" else '""', text)

OLD = ver(oldest)
cond = re.compile(r"LIBCURL_VERSION_NUM\s*(<|>=)\s*0x([0-9a-fA-F]{6})")
bad, used = [], 0
for path in files:
    text = strip(open(path, errors="replace").read())
    if not re.search(r"\bCURL\w*_", text):
        continue
    # stack of (min-version-in-if-branch, min-version-in-else-branch, in-else)
    stack, lo, hi = [], OLD, None	# hi: versions below which this line runs (exclusive)
    def cur():
        l, h = OLD, None
        for (a_lo, a_hi, b_lo, b_hi, els) in stack:
            xl, xh = (b_lo, b_hi) if els else (a_lo, a_hi)
            if xl and xl > l:
                l = xl
            if xh and (h is None or xh < h):
                h = xh
        return l, h
    for no, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        m = re.match(r"#\s*(if|ifdef|ifndef|elif|else|endif)\b(.*)", s)
        if m:
            kw, rest = m.group(1), m.group(2)
            if kw in ("if", "ifdef", "ifndef"):
                c = cond.search(rest) if kw == "if" else None
                if c:
                    v = int(c.group(2), 16)
                    v = ((v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff)
                    stack.append((None, v, v, None, False) if c.group(1) == "<" else (v, None, None, v, False))
                else:
                    stack.append((None, None, None, None, False))
            elif kw in ("else", "elif") and stack:
                a = stack[-1]
                stack[-1] = (a[0], a[1], a[2], a[3], True)
            elif kw == "endif" and stack:
                stack.pop()
            continue
        for sym in re.findall(r"\b(CURL[A-Z]*_[A-Z0-9_]+)\b", line):
            if sym not in intro:
                continue	# a macro of ours or of curl's headers that is no public symbol
            used += 1
            l, h = cur()
            if intro[sym] > l:
                bad.append("%s:%d %s needs libcurl %s, oldest supported is %s (guard it with #if LIBCURL_VERSION_NUM >= 0x%02x%02x%02x)"
                           % (path, no, sym, vstr(intro[sym]), oldest, *intro[sym]))
            if sym in depr and (h is None or h > depr[sym]):
                bad.append("%s:%d %s is deprecated since libcurl %s; use it only under #if LIBCURL_VERSION_NUM < 0x%02x%02x%02x"
                           % (path, no, sym, vstr(depr[sym]), *depr[sym]))
if used < 10:
    print("FAIL curl_symbols_used: found only %d libcurl symbol uses in %d files; the scan is broken" % (used, len(files)))
elif bad:
    print("FAIL curl_symbols_oldest_%s:\n  %s" % (oldest.replace(".", "_"), "\n  ".join(bad)))
else:
    print("PASS curl_symbols_oldest_%s (%d uses checked)" % (oldest.replace(".", "_"), used))
PYEOF
