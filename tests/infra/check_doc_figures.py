#!/usr/bin/env python3
"""tests/infra/check_doc_figures.py HELP_TXT - the figures the docs quote agree with
the files and the binary they describe. Prints one PASS/FAIL line per check.

Sources of truth: service.yaml and infra/service-rtx6000.yaml (what is deployed),
`gemma-run serve --help` (flag defaults; the text is in HELP_TXT), and
docs/MEMORY.md's plan rows (themselves recomputed from the planner by
tests/unit/test_memory_doc.c). Checked:
  - DEPLOY.md's table "What service.yaml sets": every value in it;
  - DEPLOY.md's architecture line (GPU, vCPU, GiB) and its RTX PRO 6000 paragraph;
  - SCALING.md's "Settings that follow" 9B column and its RTX PRO 6000 paragraph;
  - every "N KV tokens" / "N tokens of KV" on the L4 equals MEMORY.md's service.yaml
    row, and the RTX PRO 6000 figures equal its rows;
  - MEMORY.md's service.yaml rows use service.yaml's engine settings;
  - every flag default the docs state ("`--flag` (default N)", "`--flag` (N s)",
    "`$ENV` (default N)") equals serve --help's.
"""
import re
import sys

import yaml

results = []


def check(name, cond, why=""):
    results.append((name, bool(cond), why))


def load_service(path):
    doc = yaml.safe_load(open(path))
    tmpl = doc["spec"]["template"]
    ann = tmpl["metadata"]["annotations"]
    spec = tmpl["spec"]
    c = spec["containers"][0]
    env = {e["name"]: str(e.get("value", "")) for e in c.get("env", [])}
    sp = c["startupProbe"]
    lp = c["livenessProbe"]
    lim = c["resources"]["limits"]
    return {
        "cpu": str(lim["cpu"]), "memory": str(lim["memory"]),
        "gpu": str(lim.get("nvidia.com/gpu", "")),
        "accelerator": spec.get("nodeSelector", {}).get("run.googleapis.com/accelerator", ""),
        "minScale": str(ann.get("autoscaling.knative.dev/minScale", "")),
        "maxScale": str(ann.get("autoscaling.knative.dev/maxScale", "")),
        "containerConcurrency": str(spec["containerConcurrency"]),
        "timeoutSeconds": str(spec["timeoutSeconds"]),
        "startup_period": sp["periodSeconds"], "startup_failures": sp["failureThreshold"],
        "live_period": lp["periodSeconds"], "live_failures": lp["failureThreshold"],
        "ann": {k: str(v) for k, v in ann.items()},
        "env": env,
    }


def gib(mem):
    m = re.fullmatch(r"(\d+)Gi", mem)
    return int(m.group(1)) if m else None


def num(s):
    return float(s.replace(",", ""))


def table_after(text, heading_re):
    """Rows (lists of cells) of the first markdown table after a line matching heading_re."""
    lines = text.splitlines()
    for i, l in enumerate(lines):
        if re.search(heading_re, l):
            break
    else:
        return []
    rows, started = [], False
    for l in lines[i + 1:]:
        if l.startswith("|"):
            started = True
            cells = [c.strip() for c in l.strip().strip("|").split("|")]
            if not re.fullmatch(r"-+", cells[0].replace(":", "")):
                rows.append(cells)
        elif started:
            break
    return rows[1:]  # without the header


def ticks(s):
    return re.findall(r"`([^`]*)`", s)


def memory_rows(text):
    """MEMORY.md plan rows per section: [(section, cells)]."""
    out, sec = [], None
    for l in text.splitlines():
        if l.startswith("## "):
            sec = "l4" if "NVIDIA L4" in l else "rtx" if "RTX PRO 6000" in l else None
        elif sec and re.match(r"\| \d+b \|", l):
            out.append((sec, [c.strip() for c in l.strip().strip("|").split("|")]))
    return out


def kv_tokens(result):
    m = re.search(r"(\d+) tokens", result)
    return int(m.group(1)) if m else None


def parse_help(text):
    """flag -> (env, default string) from serve --help."""
    out = {}
    for m in re.finditer(r"^  --([a-z0-9-]+)(?: V)?\n\s+env (\w+), default (.*)$", text, re.M):
        out[m.group(1)] = (m.group(2), m.group(3).strip())
    return out


def to_number(value, unit):
    v = float(value)
    unit = (unit or "").strip().lower()
    return v * {"kib": 1024, "mib": 1 << 20, "gib": 1 << 30}.get(unit, 1)


def main():
    help_text = open(sys.argv[1]).read()
    l4 = load_service("service.yaml")
    rtx = load_service("infra/service-rtx6000.yaml")
    deploy = open("docs/DEPLOY.md").read()
    scaling = open("docs/SCALING.md").read()
    memory = open("docs/MEMORY.md").read()
    readme = open("README.md").read()
    api = open("docs/API.md").read()
    e = l4["env"]

    # --- DEPLOY.md: "What service.yaml sets" ---
    rows = table_after(deploy, r"^What `service.yaml` sets")
    check("deploy_table_found", len(rows) >= 10, "%d rows" % len(rows))
    seen = set()
    for cells in rows:
        key, val = cells[0], cells[1]
        names = ticks(key)
        vals = ticks(val)
        if key.startswith("`resources.limits`"):
            want = {"nvidia.com/gpu: %s" % l4["gpu"], "cpu: %s" % l4["cpu"], "memory: %s" % l4["memory"]}
            check("deploy_resources", set(vals) == want, "%s vs %s" % (vals, sorted(want)))
            seen.add("resources")
        elif key.startswith("`nodeSelector"):
            check("deploy_accelerator", vals == [l4["accelerator"]], vals)
        elif names[:2] == ["minScale", "maxScale"]:
            check("deploy_scale", vals == [l4["minScale"], l4["maxScale"]], vals)
            seen.add("scale")
        elif names == ["containerConcurrency"]:
            b = int(e["MAX_NUM_SEQS"])
            m = re.search(r"\((\d+)\) \+ `ceil\((\d+)/2\)`", cells[2])
            check("deploy_concurrency", vals and vals[0] == l4["containerConcurrency"] and m and
                  int(m.group(1)) == b and int(m.group(2)) == b and b + (b + 1) // 2 == int(vals[0]), cells[1:3])
            seen.add("concurrency")
        elif names == ["timeoutSeconds"]:
            check("deploy_timeout", vals == [l4["timeoutSeconds"]], vals)
        elif key.startswith("startup probe"):
            m = re.search(r"every (\d+) s, (\d+) failures = (\d+) s", val)
            check("deploy_startup_probe", m and int(m.group(1)) == l4["startup_period"] and
                  int(m.group(2)) == l4["startup_failures"] and
                  int(m.group(3)) == l4["startup_period"] * l4["startup_failures"], val)
            seen.add("startup")
        elif key.startswith("liveness probe"):
            m = re.search(r"every (\d+) s, (\d+) failures", val)
            check("deploy_liveness_probe", m and int(m.group(1)) == l4["live_period"] and
                  int(m.group(2)) == l4["live_failures"], val)
        elif names and names[0].startswith("run.googleapis.com/"):
            check("deploy_annotation_%s" % names[0].split("/")[1],
                  vals == ['"%s"' % l4["ann"].get(names[0], "?")], vals)
        elif names and all(re.fullmatch(r"[A-Z_]+", n) for n in names):
            # env vars: "`A`, `B`" with "`a`, `b`", or "`A` / `B`" with "`a` / `b`"
            for n, v in zip(names, vals):
                check("deploy_env_%s" % n, e.get(n) == v, "doc %r, service.yaml %r" % (v, e.get(n)))
                seen.add(n)
            if "KV tokens" in cells[2]:
                seen.add("kv")
    for must in ("resources", "scale", "concurrency", "startup", "MAX_QUEUE", "MAX_MODEL_LEN",
                 "GPU_MEMORY_UTILIZATION", "SHUTDOWN_TIMEOUT"):
        check("deploy_table_has_%s" % must, must in seen, "row missing")

    m = re.search(r"\(1 × L4, (\d+) vCPU, (\d+) GiB\)", deploy)
    check("deploy_architecture_line", m and m.group(1) == l4["cpu"] and int(m.group(2)) == gib(l4["memory"]),
          m.group(0) if m else "no '(1 × L4, N vCPU, N GiB)' line")

    # --- MEMORY.md rows that claim to be the deployed settings ---
    mrows = memory_rows(memory)
    l4_row = [c for s, c in mrows if s == "l4" and "service.yaml" in c[4]]
    check("memory_l4_service_row", len(l4_row) == 1, "%d rows marked (service.yaml)" % len(l4_row))
    t_l4 = None
    if l4_row:
        c = l4_row[0]
        check("memory_l4_row_settings",
              c[0] == "9b" and c[1] == e["GPU_MEMORY_UTILIZATION"] and c[2] == e["MAX_NUM_SEQS"] and
              c[3] == e["MAX_NUM_BATCHED_TOKENS"] and c[4].split()[0] == e["MAX_MODEL_LEN"], c[:5])
        t_l4 = kv_tokens(c[9])
    r = rtx["env"]
    rtx27 = [c for s, c in mrows if s == "rtx" and c[0] == "27b"]
    rtx9 = [c for s, c in mrows if s == "rtx" and c[0] == "9b"]
    check("memory_rtx_row_settings", rtx27 and rtx27[0][1] == r["GPU_MEMORY_UTILIZATION"] and
          rtx27[0][2] == r["MAX_NUM_SEQS"] and rtx27[0][3] == r["MAX_NUM_BATCHED_TOKENS"] and
          ("service-rtx6000.yaml: %s" % r["MAX_MODEL_LEN"]) in rtx27[0][4], rtx27[:1])

    # --- the L4 KV figure wherever it is quoted ---
    if t_l4:
        for name, text in (("deploy", deploy), ("scaling", scaling), ("memory", memory), ("readme", readme)):
            k = 0
            for mm in re.finditer(r"([\d,]{4,}) (?:KV tokens|tokens of KV|-token cache|tokens)(?= at 0\.92| of KV| on the L4|-token)?",
                                  text):
                ctx = text[max(0, mm.start() - 80):mm.end() + 40]
                if "0.92" not in ctx or "L4" not in ctx and "9B" not in ctx:
                    continue
                if "RTX" in ctx or "96 GB" in ctx:
                    continue
                k += 1
                check("kv_l4_quoted_%s_%d" % (name, k), int(num(mm.group(1))) == t_l4,
                      "%s: %r (MEMORY.md: %d)" % (name, ctx.strip(), t_l4))
        check("kv_l4_in_deploy", "{:,}".format(t_l4) in deploy, "DEPLOY.md does not quote %d" % t_l4)
        check("kv_l4_in_scaling", "{:,}".format(t_l4) in scaling, "SCALING.md does not quote %d" % t_l4)

    # --- DEPLOY.md and SCALING.md on the RTX PRO 6000 ---
    m = re.search(r"`nvidia-rtx-pro-6000`, (\d+) vCPU / (\d+) GiB", deploy)
    check("deploy_rtx_resources", m and m.group(1) == rtx["cpu"] and int(m.group(2)) == gib(rtx["memory"]),
          m.group(0) if m else "no RTX resources line")
    para = deploy[deploy.find("### RTX PRO 6000"):][:1200]
    w = rtx["startup_period"] * rtx["startup_failures"]
    for label, pat, want in (("seqs", r"`MAX_NUM_SEQS` (\d+)", r["MAX_NUM_SEQS"]),
                             ("concurrency", r"`containerConcurrency` (\d+)", rtx["containerConcurrency"]),
                             ("mml", r"`MAX_MODEL_LEN` (\d+)", r["MAX_MODEL_LEN"]),
                             ("window", r"startup window (\d+) s", str(w)),
                             ("maxscale", r"`maxScale` is (\d+)", rtx["maxScale"])):
        mm = re.search(pat, para)
        check("deploy_rtx_%s" % label, mm and mm.group(1) == want, "%s vs %s" % (mm.group(0) if mm else None, want))
    if rtx27:
        t = kv_tokens(rtx27[0][9])
        mm = re.search(r"~(\d+)k tokens of KV", para)
        check("deploy_rtx_kv", mm and abs(int(mm.group(1)) * 1000 - t) < 1000, "%s vs %d" % (mm and mm.group(0), t))
    if rtx9:
        t9 = kv_tokens(rtx9[0][9])
        mm = re.search(r"large KV cache \(~(\d+)k tokens\)", deploy)
        check("deploy_rtx_9b_kv", mm and abs(int(mm.group(1)) * 1000 - t9) < 1000, "%s vs %d" % (mm and mm.group(0), t9))
    srows = table_after(scaling, r"^## Settings that follow")
    col = {c[0]: c[2] for c in srows if len(c) >= 3}

    def first_int(s):
        mm = re.search(r"\d+", s or "")
        return mm.group(0) if mm else None
    check("scaling_9b_seqs", first_int(col.get("`MAX_NUM_SEQS` (b)")) == e["MAX_NUM_SEQS"], col.get("`MAX_NUM_SEQS` (b)"))
    check("scaling_9b_mml", first_int(col.get("`MAX_MODEL_LEN`")) == e["MAX_MODEL_LEN"], col.get("`MAX_MODEL_LEN`"))
    check("scaling_9b_concurrency", first_int(col.get("`containerConcurrency` (c)")) == l4["containerConcurrency"],
          col.get("`containerConcurrency` (c)"))
    mq = re.search(r"\((\d+) set\)", col.get("`MAX_QUEUE`", ""))
    check("scaling_9b_queue", mq and mq.group(1) == e["MAX_QUEUE"], col.get("`MAX_QUEUE`"))
    check("scaling_9b_timeout", first_int(col.get("`timeoutSeconds`")) == l4["timeoutSeconds"], col.get("`timeoutSeconds`"))
    check("scaling_9b_startup", first_int(col.get("startup probe window")) ==
          str(l4["startup_period"] * l4["startup_failures"]), col.get("startup probe window"))
    sp = scaling[scaling.find("On the RTX PRO 6000"):][:400]
    mm = re.search(r"27B with b = (\d+), c = (\d+),\s+`MAX_QUEUE` (\d+), `MAX_MODEL_LEN` (\d+), startup window (\d+) s", sp)
    check("scaling_rtx", mm and mm.groups() == (r["MAX_NUM_SEQS"], rtx["containerConcurrency"], r["MAX_QUEUE"],
                                                  r["MAX_MODEL_LEN"], str(w)), mm and mm.groups())

    # --- flag defaults quoted in the docs ---
    flags = parse_help(help_text)
    check("help_parsed", len(flags) >= 20, "%d flags parsed from serve --help" % len(flags))
    by_env = {env: (f, d) for f, (env, d) in flags.items()}
    n_quoted = 0
    for name, text in (("api", api), ("deploy", deploy), ("readme", readme), ("memory", memory), ("scaling", scaling)):
        pats = [r"`--([a-z0-9-]+)`(?: seconds)? \((?:default )?(\d+(?:\.\d+)?) ?(s|KiB|MiB|GiB)?[;,)]",
                r"`\$?([A-Z_]+)` \(default (\d+(?:\.\d+)?) ?(s|KiB|MiB|GiB)?[;,)]"]
        for i, pat in enumerate(pats):
            for mm in re.finditer(pat, text):
                key, val, unit = mm.group(1), mm.group(2), mm.group(3)
                if i == 1:
                    if key not in by_env:
                        continue
                    key = by_env[key][0]
                if key not in flags:
                    check("doc_flag_exists_%s_%s" % (name, key), False, "%s names --%s, which serve --help lacks" % (name, key))
                    continue
                d = flags[key][1]
                try:
                    dv = float(d)
                except ValueError:
                    check("doc_default_%s_%s" % (name, key), False, "--help default %r is not a number" % d)
                    continue
                n_quoted += 1
                check("doc_default_%s_%s" % (name, key), abs(to_number(val, unit) - dv) < 1e-9,
                      "%s says %s%s, serve --help %s" % (name, val, unit or "", d))
    check("doc_defaults_found", n_quoted >= 4, "%d quoted defaults found" % n_quoted)

    bad = 0
    for name, ok, why in results:
        print(("PASS %s" % name) if ok else ("FAIL %s: %s" % (name, why)))
        bad += not ok
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
