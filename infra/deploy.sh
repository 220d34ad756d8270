#!/usr/bin/env bash
# infra/deploy.sh - from a local google/gemma-2-9b-it directory to a private,
# autoscaled Cloud Run service. Each step is idempotent; docs/DEPLOY.md walks
# through the same steps by hand.
#
#   PROJECT_ID=my-proj REGION=us-central1 MODEL_BUCKET=my-proj-models \
#   INVOKERS=user:me@example.com,serviceAccount:caller@my-proj.iam.gserviceaccount.com \
#   infra/deploy.sh [--model-dir ./gemma-2-9b-it] [--variant gcs|gcsfuse|nfs] \
#                   [--gpu l4|rtx6000|none] [--skip-build] [--dry-run] [--render-only]
#
# --gpu l4 (default) deploys service.yaml (or the --variant's file): 9B on an L4.
# --gpu rtx6000 deploys infra/service-rtx6000.yaml: 27B (MODEL_NAME default
# gemma-2-27b-it) on an RTX PRO 6000 Blackwell, weights from gs:// (--variant gcs).
# --gpu none deploys infra/service-cpu.yaml: 2B (MODEL_NAME default gemma-2-2b-it)
# on the CPU backend, 8 vCPU and 32 GiB, no GPU (no GPU quota needed; --variant gcs).
#
# Steps: enable APIs; create the bucket; upload the model's config/tokenizer/
# safetensors files with `gcloud storage cp`; create the service account
# gemma-run@PROJECT_ID with roles/storage.objectViewer on MODEL_BUCKET only;
# create the Artifact Registry repository; build + push the image with Cloud
# Build; render the service YAML (placeholders -> values) and
# `gcloud run services replace` it; grant roles/run.invoker to INVOKERS.
#
# Environment:
#   PROJECT_ID, REGION, MODEL_BUCKET   required
#   INVOKERS     IAM members allowed to call (user:..., serviceAccount:..., group:...).
#                All get roles/run.invoker; the user: and serviceAccount: emails also go
#                into ALLOWED_INVOKERS. group: members are checked by Cloud Run IAM only
#                (an ID token carries no group membership, so gemma-run cannot check
#                them): with any group: member, ALLOWED_INVOKERS is left out and IAM
#                alone decides who calls.
#   SERVICE      service name (default gemma-run; must match the YAML)
#   MODEL_NAME   folder in the bucket (default gemma-2-9b-it; gemma-2-27b-it with --gpu rtx6000,
#                gemma-2-2b-it with --gpu none)
#   TAG          image tag (default latest)
#   FILESTORE_IP, VPC_NETWORK, VPC_SUBNET   for --variant nfs
#   RENDER_OUT   where to write the rendered YAML (default: a temp file)
# --dry-run prints the gcloud commands instead of running them (and renders the
# YAML), so the script can be checked without a Google Cloud account.
# --render-only renders the YAML (to RENDER_OUT) and stops: then
#   gcloud run services replace "$RENDER_OUT" --region "$REGION"
# (the committed YAML files keep placeholders; never replace them unrendered).
#
# Cloud Build runs as the project's Cloud Build service account, on new projects the
# Compute Engine default service account: it needs roles/artifactregistry.writer and
# roles/logging.logWriter (docs/DEPLOY.md step 4). GPU quota: maxScale above the
# regional quota is rejected at deploy time (docs/DEPLOY.md "Before you start").
set -euo pipefail
cd "$(dirname "$0")/.."

variant=gcs
gpu=l4
model_dir=""
skip_build=0
dry_run=0
render_only=0
while [ $# -gt 0 ]; do
	case "$1" in
	--variant) variant="$2"; shift 2 ;;
	--model-dir) model_dir="$2"; shift 2 ;;
	--skip-build) skip_build=1; shift ;;
	--gpu) gpu="$2"; shift 2 ;;
	--dry-run) dry_run=1; shift ;;
	--render-only) render_only=1; shift ;;
	-h|--help) sed -n '2,/^set -euo pipefail/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	*) echo "deploy.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done

die() { echo "deploy.sh: $*" >&2; exit 2; }
: "${PROJECT_ID:?set PROJECT_ID}" "${REGION:?set REGION}" "${MODEL_BUCKET:?set MODEL_BUCKET}"
SERVICE=${SERVICE:-gemma-run}
case "$gpu" in
l4) MODEL_NAME=${MODEL_NAME:-gemma-2-9b-it} ;;
rtx6000) MODEL_NAME=${MODEL_NAME:-gemma-2-27b-it} ;;
none) MODEL_NAME=${MODEL_NAME:-gemma-2-2b-it} ;;
*) echo "deploy.sh: --gpu must be l4, rtx6000 or none" >&2; exit 2 ;;
esac
TAG=${TAG:-latest}
INVOKERS=${INVOKERS:-}
REPO=gemma-run
SA_EMAIL="gemma-run@${PROJECT_ID}.iam.gserviceaccount.com"
IMAGE="${REGION}-docker.pkg.dev/${PROJECT_ID}/${REPO}/gemma-run:${TAG}"

# Values go into sed and YAML: accept only what the names allow.
[[ "$PROJECT_ID" =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] || die "bad PROJECT_ID '$PROJECT_ID'"
[[ "$REGION" =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || die "bad REGION '$REGION'"
[[ "$MODEL_BUCKET" =~ ^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$ ]] || die "bad MODEL_BUCKET '$MODEL_BUCKET'"
[[ "$MODEL_NAME" =~ ^[A-Za-z0-9._-]+$ ]] || die "bad MODEL_NAME '$MODEL_NAME'"
[[ "$TAG" =~ ^[A-Za-z0-9._-]+$ ]] || die "bad TAG '$TAG'"
[[ "$SERVICE" == gemma-run ]] || die "SERVICE must be gemma-run (the name in the YAML)"
[[ "$INVOKERS" =~ ^[A-Za-z0-9@.:,_+-]*$ ]] || die "bad INVOKERS '$INVOKERS'"

case "$variant" in
gcs) yaml=service.yaml ;;
gcsfuse) yaml=infra/service-gcsfuse.yaml ;;
nfs)
	yaml=infra/service-nfs.yaml
	: "${FILESTORE_IP:?set FILESTORE_IP for --variant nfs}"
	: "${VPC_NETWORK:?set VPC_NETWORK for --variant nfs}" "${VPC_SUBNET:?set VPC_SUBNET for --variant nfs}"
	[[ "$FILESTORE_IP" =~ ^[0-9.]+$ ]] || die "bad FILESTORE_IP '$FILESTORE_IP'"
	[[ "$VPC_NETWORK$VPC_SUBNET" =~ ^[a-z0-9-]+$ ]] || die "bad VPC_NETWORK/VPC_SUBNET"
	;;
*) die "--variant must be gcs, gcsfuse or nfs" ;;
esac
if [ "$gpu" = rtx6000 ]; then
	[ "$variant" = gcs ] || die "--gpu rtx6000 comes with --variant gcs only (infra/service-rtx6000.yaml)"
	yaml=infra/service-rtx6000.yaml
fi
if [ "$gpu" = none ]; then
	[ "$variant" = gcs ] || die "--gpu none comes with --variant gcs only (infra/service-cpu.yaml)"
	yaml=infra/service-cpu.yaml
fi

# run CMD...: runs it, or prints it under --dry-run.
# Under --render-only the steps before the render do nothing and print nothing.
run() {
	if [ "$render_only" -eq 1 ]; then
		return 0
	elif [ "$dry_run" -eq 1 ]; then
		printf '+'; printf ' %q' "$@"; printf '\n'
	else
		"$@"
	fi
}
# exists CMD...: whether a describe command succeeds (always "no" under --dry-run).
exists() {
	[ "$render_only" -eq 1 ] && return 0
	[ "$dry_run" -eq 0 ] && "$@" >/dev/null 2>&1
}
step() { [ "$render_only" -eq 1 ] || echo "== $*"; }

step "enable APIs"
apis=(run.googleapis.com artifactregistry.googleapis.com cloudbuild.googleapis.com
      storage.googleapis.com iam.googleapis.com)
[ "$variant" = nfs ] && apis+=(file.googleapis.com compute.googleapis.com)
run gcloud services enable "${apis[@]}" --project "$PROJECT_ID"

step "model bucket gs://$MODEL_BUCKET"
if ! exists gcloud storage buckets describe "gs://$MODEL_BUCKET" --project "$PROJECT_ID"; then
	run gcloud storage buckets create "gs://$MODEL_BUCKET" --project "$PROJECT_ID" \
		--location "$REGION" --uniform-bucket-level-access
fi

if [ -n "$model_dir" ]; then
	step "upload $model_dir -> gs://$MODEL_BUCKET/$MODEL_NAME/"
	# Only what gemma-run reads: config, tokenizer, index and safetensors shards.
	files=()
	for f in "$model_dir"/config.json "$model_dir"/generation_config.json "$model_dir"/tokenizer.json \
		 "$model_dir"/model.safetensors.index.json "$model_dir"/*.safetensors; do
		[ -f "$f" ] && files+=("$f")
	done
	if [ "${#files[@]}" -eq 0 ]; then
		[ "$dry_run" -eq 1 ] || die "$model_dir has no model files"
		files=("$model_dir/config.json" "$model_dir/tokenizer.json" "$model_dir/*.safetensors")
	fi
	run gcloud storage cp "${files[@]}" "gs://$MODEL_BUCKET/$MODEL_NAME/"
fi

step "service account $SA_EMAIL (read access to gs://$MODEL_BUCKET only)"
if ! exists gcloud iam service-accounts describe "$SA_EMAIL" --project "$PROJECT_ID"; then
	run gcloud iam service-accounts create gemma-run --project "$PROJECT_ID" \
		--display-name "gemma-run (Cloud Run runtime)"
fi
run gcloud storage buckets add-iam-policy-binding "gs://$MODEL_BUCKET" \
	--member "serviceAccount:$SA_EMAIL" --role roles/storage.objectViewer

if [ "$skip_build" -eq 0 ]; then
	step "Artifact Registry + Cloud Build -> $IMAGE"
	if ! exists gcloud artifacts repositories describe "$REPO" --location "$REGION" --project "$PROJECT_ID"; then
		run gcloud artifacts repositories create "$REPO" --repository-format docker \
			--location "$REGION" --project "$PROJECT_ID"
	fi
	# Global pool (no --region): regional builds are refused in some regions.
	run gcloud builds submit --project "$PROJECT_ID" \
		--config infra/cloudbuild.yaml --substitutions "_REGION=$REGION,_TAG=$TAG" .
fi

step "render $yaml"
emails="" groups=0
IFS=, read -r -a members <<<"$INVOKERS"
for m in "${members[@]}"; do
	case "$m" in
	"") ;;
	group:*) groups=1 ;;	# IAM's job: an ID token names no groups
	user:*|serviceAccount:*) emails="${emails:+$emails,}${m#*:}" ;;
	*) die "INVOKERS member '$m': want user:, serviceAccount: or group:" ;;
	esac
done
if [ "$groups" -eq 1 ]; then
	echo "deploy.sh: INVOKERS has a group: member: ALLOWED_INVOKERS is left out, Cloud Run IAM alone admits callers" >&2
	emails=""
elif [ -z "$emails" ]; then
	echo "deploy.sh: warning: INVOKERS is empty: ALLOWED_INVOKERS keeps its placeholder and nobody can call" >&2
fi
out=${RENDER_OUT:-$(mktemp "${TMPDIR:-/tmp}/gemma-run-service.XXXXXX.yaml")}
# The header comments (up to apiVersion) are dropped: they describe the placeholders.
sed -n '/^apiVersion:/,$p' "$yaml" |
sed -E -e "s|gemma-run:latest|gemma-run:${TAG}|g" \
    -e "s|PROJECT_ID|${PROJECT_ID}|g" \
    -e "s|MODEL_BUCKET|${MODEL_BUCKET}|g" \
    -e "s#gemma-2-(2b|9b|27b)-it#${MODEL_NAME}#g" \
    -e "s|FILESTORE_IP|${FILESTORE_IP:-FILESTORE_IP}|g" \
    -e "s|VPC_NETWORK|${VPC_NETWORK:-VPC_NETWORK}|g" \
    -e "s|VPC_SUBNET|${VPC_SUBNET:-VPC_SUBNET}|g" \
    -e "s|REGION|${REGION}|g" >"$out.tmp"
if [ "$groups" -eq 1 ]; then
	# drop the ALLOWED_INVOKERS entry (name line + value line)
	sed -e '/- name: ALLOWED_INVOKERS/{N;d}' "$out.tmp" >"$out"
else
	sed -e "s|INVOKER_EMAIL|${emails:-INVOKER_EMAIL}|g" "$out.tmp" >"$out"
fi
rm -f "$out.tmp"
echo "rendered: $out"
if [ "$render_only" -eq 1 ]; then
	echo "next: gcloud run services replace $out --project $PROJECT_ID --region $REGION"
	exit 0
fi

step "deploy $SERVICE in $REGION (private: no allUsers invoker)"
run gcloud run services replace "$out" --project "$PROJECT_ID" --region "$REGION"

step "grant roles/run.invoker"
for m in "${members[@]}"; do
	[ -n "$m" ] || continue
	run gcloud run services add-iam-policy-binding "$SERVICE" --project "$PROJECT_ID" \
		--region "$REGION" --member "$m" --role roles/run.invoker
done

if [ "$dry_run" -eq 0 ]; then
	url=$(gcloud run services describe "$SERVICE" --project "$PROJECT_ID" --region "$REGION" \
		--format 'value(status.url)')
	echo "service URL: $url"
	echo "try it:      REGION=$REGION infra/invoke.sh 'Why is the sky blue?'"
fi
