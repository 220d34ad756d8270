#!/usr/bin/env bash
# tests/infra/service_yaml.test.sh - service.yaml and infra/service-{nfs,gcsfuse,rtx6000,cpu}.yaml
# agree with the binary and the rest of the deploy path.
#
# Runs `$BUILD/gemma-run serve --help` now (no hard-coded flag list) and checks,
# for each YAML (tests/infra/check_service_yaml.py): Knative kind; L4 node
# selector, 1 GPU, >= 4 vCPU / 16 GiB; the GPU annotations as strings; startup
# and liveness probes on /health at the container port, which matches the
# Dockerfile's EXPOSE/PORT, and PORT itself left to Cloud Run; every env var it
# sets is one `serve --help` lists; containerConcurrency = MAX_NUM_SEQS +
# ceil(MAX_NUM_SEQS/2) with MAX_QUEUE covering the margin; the startup window
# covers the stated worst-case load time; the image is the one
# infra/cloudbuild.yaml pushes; placeholders are listed in docs/DEPLOY.md.
# Then infra/deploy.sh --dry-run renders each variant with sample values: the
# result parses, keeps no placeholder, and the plan grants the bucket read role
# and roles/run.invoker and runs `gcloud run services replace`.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
PY=/usr/bin/python3
if ! "$PY" -c 'import yaml' 2>/dev/null; then
	echo "FAIL python3_yaml: /usr/bin/python3 cannot import yaml (apt-get install python3-yaml; tools/deps.sh)"
	exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

bin="$BUILD/gemma-run"
if [ ! -x "$bin" ]; then
	echo "FAIL serve_help: $bin not built"
	: >"$tmp/help.txt"
else
	"$bin" serve --help >"$tmp/help.txt" 2>&1
	rc=$?
	if [ "$rc" -ne 0 ] || grep -q 'not built yet' "$tmp/help.txt" || ! grep -q -- '--max-num-seqs' "$tmp/help.txt"; then
		echo "FAIL serve_help: \`$bin serve --help\` exited $rc: $(head -c 300 "$tmp/help.txt")"
	else
		echo "PASS serve_help"
	fi
fi

"$PY" tests/infra/check_service_yaml.py "$tmp/help.txt" \
	service.yaml infra/service-nfs.yaml infra/service-gcsfuse.yaml infra/service-rtx6000.yaml \
	infra/service-cpu.yaml

# deploy.sh --dry-run: render every variant, check the plan.
for variant in gcs gcsfuse nfs rtx6000 cpu; do
	out="$tmp/rendered-$variant.yaml"
	vargs=(--variant "$variant")
	[ "$variant" = rtx6000 ] && vargs=(--gpu rtx6000)
	[ "$variant" = cpu ] && vargs=(--gpu none)
	PROJECT_ID=test-proj-1 REGION=europe-west4 MODEL_BUCKET=test-proj-1-models TAG=v1 \
	INVOKERS=user:alice@example.com,serviceAccount:caller@test-proj-1.iam.gserviceaccount.com \
	FILESTORE_IP=10.0.0.2 VPC_NETWORK=default VPC_SUBNET=default RENDER_OUT="$out" \
		bash infra/deploy.sh --dry-run "${vargs[@]}" --model-dir /nonexistent/gemma-2-9b-it \
		>"$tmp/plan-$variant.txt" 2>&1
	rc=$?
	"$PY" - "$out" "$tmp/plan-$variant.txt" "$variant" "$rc" <<'EOF'
import re, sys, yaml
out, plan_path, variant, rc = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
name = "deploy_dry_run_" + variant
plan = open(plan_path).read()
try:
    text = open(out).read()
    doc = yaml.safe_load(text)
except Exception as e:
    print("FAIL %s: rc=%d, rendered YAML unreadable: %s; %s" % (name, rc, e, plan[-400:])); sys.exit(0)
c = doc["spec"]["template"]["spec"]["containers"][0]
env = {e["name"]: e.get("value") for e in c.get("env", [])}
left = sorted(set(re.findall(r"\b(?:PROJECT_ID|REGION|MODEL_BUCKET|INVOKER_EMAIL|FILESTORE_IP|VPC_NETWORK|VPC_SUBNET)\b",
                             yaml.safe_dump(doc))))
want_img = "europe-west4-docker.pkg.dev/test-proj-1/gemma-run/gemma-run:v1"
checks = [
    (rc == 0, "exit status %d" % rc),
    (not left, "placeholders left: %s" % left),
    (c["image"] == want_img, "image %r" % c["image"]),
    (env.get("ALLOWED_INVOKERS") == "alice@example.com,caller@test-proj-1.iam.gserviceaccount.com",
     "ALLOWED_INVOKERS %r" % env.get("ALLOWED_INVOKERS")),
    (variant != "gcs" or env.get("MODEL") == "gs://test-proj-1-models/gemma-2-9b-it", "MODEL %r" % env.get("MODEL")),
    (variant != "rtx6000" or (env.get("MODEL") == "gs://test-proj-1-models/gemma-2-27b-it"
     and doc["spec"]["template"]["spec"]["nodeSelector"]["run.googleapis.com/accelerator"] == "nvidia-rtx-pro-6000"),
     "rtx6000: MODEL %r, nodeSelector %r" % (env.get("MODEL"), doc["spec"]["template"]["spec"].get("nodeSelector"))),
    (variant != "cpu" or (env.get("MODEL") == "gs://test-proj-1-models/gemma-2-2b-it" and env.get("BACKEND") == "cpu"
     and "nodeSelector" not in doc["spec"]["template"]["spec"]
     and "nvidia.com/gpu" not in c["resources"]["limits"]
     and doc["spec"]["template"]["metadata"]["annotations"].get("run.googleapis.com/startup-cpu-boost") == "true"),
     "cpu: MODEL %r BACKEND %r, a GPU in the spec or no startup boost" % (env.get("MODEL"), env.get("BACKEND"))),
    ("roles/storage.objectViewer" in plan and "add-iam-policy-binding gs://test-proj-1-models" in plan,
     "no bucket-scoped objectViewer grant in the plan"),
    ("projects add-iam-policy-binding" not in plan, "grants a project-wide role"),
    (plan.count("--role roles/run.invoker") == 2, "expected 2 run.invoker grants"),
    ("gcloud run services replace " + out in plan, "no `gcloud run services replace` of the rendered file"),
    ("gcloud storage cp" in plan and ("gs://test-proj-1-models/%s/" % ({"rtx6000": "gemma-2-27b-it", "cpu": "gemma-2-2b-it"}.get(variant, "gemma-2-9b-it"))) in plan, "no model upload"),
    ("--config infra/cloudbuild.yaml" in plan, "no Cloud Build step"),
]
bad = [why for ok, why in checks if not ok]
print("PASS %s" % name if not bad else "FAIL %s: %s" % (name, "; ".join(bad)))
EOF
done

# deploy.sh refuses values that would break the YAML or sed.
if PROJECT_ID='x|y' REGION=us-central1 MODEL_BUCKET=b-b-b RENDER_OUT="$tmp/bad.yaml" \
	bash infra/deploy.sh --dry-run >/dev/null 2>&1; then
	echo "FAIL deploy_rejects_bad_values: accepted PROJECT_ID 'x|y'"
else
	echo "PASS deploy_rejects_bad_values"
fi

# group: members: granted roles/run.invoker by IAM, kept out of ALLOWED_INVOKERS (an ID
# token names no groups: gemma-run would refuse every member of the group).
PROJECT_ID=test-proj-1 REGION=europe-west4 MODEL_BUCKET=test-proj-1-models \
INVOKERS=user:alice@example.com,group:team@example.com RENDER_OUT="$tmp/groups.yaml" \
	bash infra/deploy.sh --dry-run >"$tmp/plan-groups.txt" 2>&1
"$PY" - "$tmp/groups.yaml" "$tmp/plan-groups.txt" <<'EOF'
import sys, yaml
try:
    doc = yaml.safe_load(open(sys.argv[1]))
    env = {e["name"]: e.get("value") for e in doc["spec"]["template"]["spec"]["containers"][0]["env"]}
except Exception as e:
    print("FAIL deploy_groups_iam_only: no rendered YAML: %s" % e); sys.exit(0)
plan = open(sys.argv[2]).read()
bad = []
if "ALLOWED_INVOKERS" in env:
    bad.append("ALLOWED_INVOKERS=%r with a group: invoker" % env["ALLOWED_INVOKERS"])
if "--member group:team@example.com --role roles/run.invoker" not in plan:
    bad.append("no roles/run.invoker grant for the group")
if "team@example.com" in yaml.safe_dump(doc):
    bad.append("the group's address is in the service YAML")
print("PASS deploy_groups_iam_only" if not bad else "FAIL deploy_groups_iam_only: " + "; ".join(bad))
EOF

# --render-only: renders, runs no gcloud step, and says what to run next.
PROJECT_ID=test-proj-1 REGION=europe-west4 MODEL_BUCKET=test-proj-1-models INVOKERS=user:a@example.com \
RENDER_OUT="$tmp/ro.yaml" bash infra/deploy.sh --render-only --gpu rtx6000 >"$tmp/ro.txt" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && [ -s "$tmp/ro.yaml" ] && ! grep -q '^+ gcloud\|^== ' "$tmp/ro.txt" \
	&& grep -q "gcloud run services replace $tmp/ro.yaml" "$tmp/ro.txt" \
	&& ! grep -qE '\b(PROJECT_ID|MODEL_BUCKET|INVOKER_EMAIL|REGION)\b' "$tmp/ro.yaml"; then
	echo "PASS deploy_render_only"
else
	echo "FAIL deploy_render_only: rc $rc: $(head -c 400 "$tmp/ro.txt")"
fi

# --help of both scripts: their header comment, no code, no '#' left.
for s in infra/deploy.sh infra/invoke.sh; do
	h="$tmp/help-$(basename "$s").txt"
	bash "$s" --help >"$h" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ] && [ "$(wc -l <"$h")" -ge 5 ] && ! grep -qE '^#|^set -|^cd |^\[|\$\(dirname' "$h"; then
		echo "PASS help_clean_$(basename "$s" .sh)"
	else
		echo "FAIL help_clean_$(basename "$s" .sh): rc $rc, stray lines: $(grep -E '^#|^set -|^cd |^\[|\$\(dirname' "$h" | head -3 | tr '\n' '|')"
	fi
done

# Every place that tells the user to `gcloud run services replace` says to render first
# (the committed YAML files keep placeholders).
bad=""
for f in README.md docs/*.md service.yaml infra/*.yaml infra/*.md; do
	[ -f "$f" ] || continue
	while IFS=: read -r no _; do
		lo=$((no > 8 ? no - 8 : 1))
		sed -n "${lo},$((no + 3))p" "$f" | grep -qiE 'render|deploy\.sh' || bad="$bad $f:$no"
	done < <(grep -n 'services replace' "$f")
done
if [ -z "$bad" ]; then
	echo "PASS replace_says_render_first"
else
	echo "FAIL replace_says_render_first: no render step next to \`services replace\` at$bad"
fi
