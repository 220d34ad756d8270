#!/usr/bin/env bash
# infra/invoke.sh - call the private gemma-run service with a Google ID token.
#
#   REGION=us-central1 infra/invoke.sh 'Why is the sky blue?'
#   REGION=us-central1 infra/invoke.sh --stream 'Write a haiku about GPUs.'
#   URL=https://gemma-run-xxxx.a.run.app infra/invoke.sh --health
#
# Cloud Run checks the token (IAM: the caller needs roles/run.invoker) before the
# request reaches the container. The token comes from the active gcloud account:
# `gcloud auth print-identity-token` (a user account), or with
# IMPERSONATE=caller@PROJECT_ID.iam.gserviceaccount.com a service account's token
# for the service URL as audience. IMPERSONATE needs the IAM Service Account
# Credentials API enabled in the service account's project
# (gcloud services enable iamcredentials.googleapis.com) and, for the account
# running this script, roles/iam.serviceAccountTokenCreator on that service account:
#   gcloud iam service-accounts add-iam-policy-binding caller@PROJECT_ID.iam.gserviceaccount.com \
#     --member user:YOU@example.com --role roles/iam.serviceAccountTokenCreator
#
# Environment: URL (else looked up from SERVICE/REGION/PROJECT_ID), SERVICE
# (default gemma-run), REGION, PROJECT_ID (optional), MODEL (default
# google/gemma-2-9b-it), MAX_TOKENS (default 128), IMPERSONATE (optional).
set -euo pipefail

SERVICE=${SERVICE:-gemma-run}
MODEL=${MODEL:-google/gemma-2-9b-it}
MAX_TOKENS=${MAX_TOKENS:-128}
mode=chat
stream=false
case "${1:-}" in
--health) mode=health; shift ;;
--models) mode=models; shift ;;
--stream) stream=true; shift ;;
-h|--help) sed -n '2,/^set -euo pipefail/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
esac
prompt=${1:-Why is the sky blue?}

if [ -z "${URL:-}" ]; then
	: "${REGION:?set REGION (or URL)}"
	proj=()
	[ -n "${PROJECT_ID:-}" ] && proj=(--project "$PROJECT_ID")
	URL=$(gcloud run services describe "$SERVICE" --region "$REGION" "${proj[@]}" \
		--format 'value(status.url)')
fi

if [ -n "${IMPERSONATE:-}" ]; then
	token=$(gcloud auth print-identity-token --impersonate-service-account "$IMPERSONATE" \
		--audiences "$URL" --include-email)
else
	token=$(gcloud auth print-identity-token)
fi
auth="Authorization: Bearer $token"

case "$mode" in
health) exec curl -sS -H "$auth" "$URL/health" ;;
models) exec curl -sS --fail-with-body -H "$auth" "$URL/v1/models" ;;
esac

# JSON-encode the prompt with python3 (present wherever gcloud is).
body=$(python3 -c 'import json,sys; print(json.dumps({"model": sys.argv[1],
  "messages": [{"role": "user", "content": sys.argv[2]}],
  "max_tokens": int(sys.argv[3]), "stream": sys.argv[4] == "true"}))' \
	"$MODEL" "$prompt" "$MAX_TOKENS" "$stream")
curl_opts=(-sS --fail-with-body)
[ "$stream" = true ] && curl_opts+=(-N)
exec curl "${curl_opts[@]}" -H "$auth" -H 'Content-Type: application/json' \
	-d "$body" "$URL/v1/chat/completions"
