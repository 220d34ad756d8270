#!/usr/bin/python3
"""check_service_yaml.py - checks service.yaml and its infra/ variants against
the binary, the Dockerfile, infra/cloudbuild.yaml and docs/DEPLOY.md.

Usage: check_service_yaml.py HELP_FILE YAML... (run from the repository root)
HELP_FILE holds the output of `gemma-run serve --help`. Prints one
PASS/FAIL line per check (tests/run.sh format). Needs python3-yaml.
"""
import math
import os
import re
import sys

import yaml

FAILS = 0


def result(name, ok, why=""):
    global FAILS
    if ok:
        print("PASS %s" % name)
    else:
        FAILS += 1
        print("FAIL %s: %s" % (name, why))


def parse_help(text):
    """flags (without --), env names, {flag: default} from `serve --help`."""
    flags = set(re.findall(r"(?m)^\s*--([a-z0-9][a-z0-9-]*)", text))
    envs = set(re.findall(r"\benv ([A-Z][A-Z0-9_]*)", text))
    defaults = {}
    cur = None
    for line in text.splitlines():
        m = re.match(r"\s*--([a-z0-9][a-z0-9-]*)", line)
        if m:
            cur = m.group(1)
            continue
        m = re.search(r"\bdefault (\S+)", line)
        if cur and m and cur not in defaults:
            defaults[cur] = m.group(1).rstrip(",.")
    return flags, envs, defaults


def env_twin(flag):
    return flag.upper().replace("-", "_")


def mem_gib(s):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Gi|Mi|G|M)", str(s))
    if not m:
        return None
    v = float(m.group(1))
    return {"Gi": v, "Mi": v / 1024, "G": v * 1e9 / 2**30, "M": v * 1e6 / 2**30}[m.group(2)]


def cloudbuild_image():
    cb = yaml.safe_load(open("infra/cloudbuild.yaml"))
    subs = cb.get("substitutions", {})
    imgs = cb.get("images", [])
    def expand(s):
        s = re.sub(r"\$\{(_[A-Z0-9_]+)\}|\$(_[A-Z0-9_]+)",
                   lambda m: str(subs.get(m.group(1) or m.group(2), m.group(0))), s)
        return s.replace("${PROJECT_ID}", "PROJECT_ID").replace("$PROJECT_ID", "PROJECT_ID")
    return [expand(i) for i in imgs], cb


def dockerfile_port():
    try:
        text = open("Dockerfile").read()
    except OSError:
        return None, None
    expose = re.findall(r"(?m)^EXPOSE\s+(\d+)", text)
    envp = re.findall(r"(?m)^ENV\s.*\bPORT=(\d+)", text)
    return (int(expose[-1]) if expose else None), (int(envp[-1]) if envp else None)


def placeholders(obj, out):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k != "name":     # env var and volume names are not placeholders
                placeholders(v, out)
    elif isinstance(obj, list):
        for v in obj:
            placeholders(v, out)
    elif isinstance(obj, str):
        out.update(re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b|\bREGION\b", obj))


# Settings with no effect on the CPU backend (GPU memory share, pinned staging).
GPU_ONLY_ENV = {"GPU_MEMORY_UTILIZATION", "LOADER_PINNED_MB"}


def check_file(path, text, doc, help_info, ref):
    flags, envs, defaults = help_info
    n = os.path.basename(path).replace(".yaml", "")
    result(n + "_kind", doc.get("apiVersion") == "serving.knative.dev/v1" and doc.get("kind") == "Service",
           "apiVersion/kind %r/%r" % (doc.get("apiVersion"), doc.get("kind")))
    tmpl = doc.get("spec", {}).get("template", {})
    ann = tmpl.get("metadata", {}).get("annotations", {}) or {}
    spec = tmpl.get("spec", {})
    ctrs = spec.get("containers", [])
    if len(ctrs) < 1:
        result(n + "_container", False, "no containers")
        return None
    c = ctrs[0]
    env = {e["name"]: e.get("value") for e in c.get("env", [])}

    # A CPU-only service (infra/service-cpu.yaml): no accelerator, BACKEND cpu.
    cpu_only = "run.googleapis.com/accelerator" not in (spec.get("nodeSelector") or {}) \
        and env.get("BACKEND") == "cpu"
    # annotations: strings, GPU essentials, scale bounds
    nonstr = [k for k, v in ann.items() if not isinstance(v, str)]
    try:
        mn = int(ann.get("autoscaling.knative.dev/minScale", "x"))
        mx = int(ann.get("autoscaling.knative.dev/maxScale", "x"))
    except ValueError:
        mn, mx = None, None
    result(n + "_annotations",
           not nonstr and ann.get("run.googleapis.com/cpu-throttling") == "false"
           and ann.get("run.googleapis.com/startup-cpu-boost") == "true"
           and (ann.get("run.googleapis.com/gpu-zonal-redundancy-disabled") in ("true", "false")
                or cpu_only)
           and mn is not None and 0 <= mn <= mx,
           "non-string %s, annotations %r" % (nonstr, ann))

    lim = c.get("resources", {}).get("limits", {})
    gib = mem_gib(lim.get("memory"))
    try:
        cpu = float(lim.get("cpu", 0))
    except (TypeError, ValueError):
        cpu = 0
    # Cloud Run's GPUs and their minimum vCPU / GiB (docs/DEPLOY.md "GPUs").
    gpus = {"nvidia-l4": (4, 16), "nvidia-rtx-pro-6000": (20, 80)}
    acc = spec.get("nodeSelector", {}).get("run.googleapis.com/accelerator")
    mcpu, mgib = gpus.get(acc, (None, None))
    if cpu_only:
        # Cloud Run without a GPU: at most 8 vCPU and 32 GiB, no GPU limit; the
        # 2B weights (5.2 GB) and a KV cache need >= 8 GiB
        result(n + "_cpu_resources",
               "nvidia.com/gpu" not in lim and 1 <= cpu <= 8 and gib is not None and 8 <= gib <= 32
               and "THREADS" not in env,
               "limits %r (CPU-only: no nvidia.com/gpu, 1-8 vCPU, 8-32 GiB; THREADS unset: the "
               "backend takes the cgroup quota) env THREADS %r" % (lim, env.get("THREADS")))
    else:
        result(n + "_gpu_resources",
               mcpu is not None and str(lim.get("nvidia.com/gpu")) == "1" and cpu >= mcpu
               and gib is not None and gib >= mgib,
               "nodeSelector %r limits %r (minimums: %s)" % (spec.get("nodeSelector"), lim,
               ", ".join("%s >= %d vCPU, >= %d GiB" % (k, v[0], v[1]) for k, v in gpus.items())))

    # port and probes
    ports = c.get("ports", [])
    cport = ports[0].get("containerPort") if ports else 8080
    sp, lp = c.get("startupProbe", {}), c.get("livenessProbe", {})
    probe_ports = [p.get("httpGet", {}).get("port", cport) for p in (sp, lp)]
    dexpose, denv = ref["docker_port"]
    result(n + "_probes_health",
           sp.get("httpGet", {}).get("path") == "/health" and lp.get("httpGet", {}).get("path") == "/health",
           "startup %r liveness %r" % (sp, lp))
    result(n + "_port_agrees",
           all(p == cport for p in probe_ports) and "PORT" not in env and "port" in flags
           and "PORT" in envs and dexpose in (None, cport) and denv in (None, cport),
           "containerPort %r probe ports %r env PORT set=%r help has --port/PORT=%r/%r Dockerfile EXPOSE/PORT %r/%r"
           % (cport, probe_ports, "PORT" in env, "port" in flags, "PORT" in envs, dexpose, denv))

    # every env var is one `serve --help` lists
    twins = {env_twin(f) for f in flags}
    unknown = sorted(k for k in env if k not in envs and k not in twins)
    result(n + "_env_in_serve_help", not unknown and env,
           "not listed by `gemma-run serve --help`: %s" % unknown)

    def num(name, typ):
        v = env.get(name, defaults.get(name.lower().replace("_", "-")))
        try:
            return typ(v)
        except (TypeError, ValueError):
            return None

    seqs, queue = num("MAX_NUM_SEQS", int), num("MAX_QUEUE", int)
    gmu, sdt = num("GPU_MEMORY_UTILIZATION", float), num("SHUTDOWN_TIMEOUT", float)
    cc = spec.get("containerConcurrency")
    want = None if seqs is None else seqs + math.ceil(seqs / 2)
    result(n + "_concurrency_rule",
           seqs is not None and seqs >= 1 and cc == want and queue is not None and queue >= cc - seqs
           and "containerConcurrency = MAX_NUM_SEQS + ceil(MAX_NUM_SEQS / 2)" in text,
           "containerConcurrency %r, MAX_NUM_SEQS %r -> want %r; MAX_QUEUE %r must be >= %r; "
           "the rule must be stated in a comment" % (cc, seqs, want, queue, None if want is None else want - seqs))
    result(n + "_engine_values",
           gmu is not None and 0 < gmu <= 1 and sdt is not None and sdt < 10
           and (env.get("BACKEND") in ("cuda", "auto") or cpu_only) and env.get("LOG_FORMAT") == "json",
           "GPU_MEMORY_UTILIZATION %r, SHUTDOWN_TIMEOUT %r (< Cloud Run's 10 s), BACKEND %r, LOG_FORMAT %r"
           % (gmu, sdt, env.get("BACKEND"), env.get("LOG_FORMAT")))

    # startup window vs the stated worst-case load time
    m = re.search(r"probe-budget:\s*weights_gb=([\d.]+)\s+rate_mb_s=([\d.]+)\s+overhead_s=([\d.]+)\s+safety=([\d.]+)", text)
    per, thr, pto = sp.get("periodSeconds", 10), sp.get("failureThreshold", 3), sp.get("timeoutSeconds", 1)
    window = per * thr
    if m:
        gb, rate, ovh, saf = (float(x) for x in m.groups())
        need = saf * (gb * 1000 / rate + ovh)
        # the stated weight bytes must cover the model: 2B 5.2 GB, 9B 18.5, 27B 54.5
        min_gb = 5 if "gemma-2-2b" in env.get("MODEL", "") else 54 if "gemma-2-27b" in env.get("MODEL", "") else 18
        result(n + "_startup_window",
               need <= window <= (240 if cpu_only else 1800) and pto < per and gb >= min_gb,
               "window %d s x %d = %d s; need >= %.0f s (%.1f GB at %.0f MB/s + %.0f s, x%.1f) and <= 1800"
               % (per, thr, window, need, gb, rate, ovh, saf))
    else:
        result(n + "_startup_window", False, "no '# probe-budget: weights_gb=.. rate_mb_s=.. overhead_s=.. safety=..' comment")

    imgs, _ = ref["cloudbuild"]
    result(n + "_image_matches_cloudbuild", c.get("image") in imgs,
           "image %r not among cloudbuild images %r" % (c.get("image"), imgs))
    result(n + "_service_account",
           spec.get("serviceAccountName") == "gemma-run@PROJECT_ID.iam.gserviceaccount.com",
           "serviceAccountName %r" % spec.get("serviceAccountName"))
    to = spec.get("timeoutSeconds")
    result(n + "_timeout", isinstance(to, int) and 60 <= to <= 3600, "timeoutSeconds %r" % to)

    # model source: gs:// directly, or a read-only volume mounted where MODEL points
    model = env.get("MODEL", "")
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = c.get("volumeMounts", [])
    if model.startswith("gs://"):
        ok, why = model.startswith("gs://MODEL_BUCKET/") and not vols, "MODEL %r, volumes %r" % (model, list(vols))
    else:
        mt = [mm for mm in mounts if model.startswith(mm.get("mountPath", "?").rstrip("/") + "/")]
        v = vols.get(mt[0]["name"]) if mt else None
        ok = bool(v) and mt[0].get("readOnly") is True and model == "/models/gemma-2-9b-it" and (
            ("nfs" in v and v["nfs"].get("readOnly") is True and v["nfs"].get("server")) or
            ("csi" in v and v["csi"].get("driver") == "gcsfuse.run.googleapis.com"
             and v["csi"].get("readOnly") is True
             and v["csi"].get("volumeAttributes", {}).get("bucketName") == "MODEL_BUCKET"))
        why = "MODEL %r mounts %r volumes %r" % (model, mounts, vols)
    result(n + "_model_source", ok, why)

    ph = set()
    placeholders(doc, ph)
    missing = sorted(p for p in ph if p not in ref["deploy_md"])
    result(n + "_placeholders_documented", ref["deploy_md"] and not missing,
           "placeholders not listed in docs/DEPLOY.md: %s" % (missing or "(docs/DEPLOY.md missing)"))
    env_names = set(env) - {"MODEL"}
    if cpu_only:
        env_names |= GPU_ONLY_ENV	# a CPU service leaves the GPU-only settings out
    return {"image": c.get("image"), "cc": cc, "env": env_names, "seqs": seqs, "gpu": acc}


def main():
    help_file, paths = sys.argv[1], sys.argv[2:]
    help_info = parse_help(open(help_file).read())
    try:
        deploy_md = open("docs/DEPLOY.md").read()
    except OSError:
        deploy_md = ""
    ref = {"cloudbuild": cloudbuild_image(), "docker_port": dockerfile_port(), "deploy_md": deploy_md}
    imgs, cb = ref["cloudbuild"]
    result("cloudbuild_builds_dockerfile",
           any("Dockerfile" in " ".join(map(str, s.get("args", []))) and "build" in s.get("args", [])
               for s in cb.get("steps", [])) and len(imgs) >= 1,
           "infra/cloudbuild.yaml must run docker build -f Dockerfile and list images")
    seen = []
    for p in paths:
        text = open(p).read()
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            result(os.path.basename(p) + "_parses", False, str(e).replace("\n", " "))
            continue
        result(os.path.basename(p) + "_parses", isinstance(doc, dict), "not a mapping")
        if isinstance(doc, dict):
            seen.append((p, check_file(p, text, doc, help_info, ref)))
    base = [s for p, s in seen if os.path.basename(p) == "service.yaml" and s]
    for p, s in seen:
        if not s or not base or os.path.basename(p) == "service.yaml":
            continue
        b = base[0]
        # Another GPU (service-rtx6000.yaml) sizes its own batch: same image and env
        # names, its own containerConcurrency (checked above against its MAX_NUM_SEQS).
        other_gpu = s.get("gpu") != b.get("gpu")
        result(os.path.basename(p).replace(".yaml", "") + "_same_engine_as_service_yaml",
               s["image"] == b["image"] and (other_gpu or s["cc"] == b["cc"]) and s["env"] == b["env"],
               "image/containerConcurrency/env names differ from service.yaml: %r vs %r" % (s, b))
    return 0


if __name__ == "__main__":
    sys.exit(main())
