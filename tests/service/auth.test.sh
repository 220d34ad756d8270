#!/usr/bin/env bash
# tests/service/auth.test.sh - caller authentication end to end over
# 127.0.0.1: api keys, google-id-token with a throwaway RSA key and a JWKS
# (file, and URL served by a tiny local HTTP server), cloud-run-iam with a
# stripped signature; every rejection has the right status (401 / 403) and
# the OpenAI error shape; /health stays open, /metrics follows --metrics-auth.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/service/lib.sh
T=$(mktemp -d)
HPID=
trap '[ -n "$HPID" ] && kill "$HPID" 2>/dev/null; kill_all; rm -rf "$T"' EXIT
if [ ! -x "$BIN" ]; then echo "FAIL auth_setup: $BIN not built"; exit 1; fi
MODEL=$(model_tiny) || { echo "FAIL auth_setup: cannot make the tiny model"; exit 1; }
if ! openssl genrsa -out "$T/k.pem" 2048 2>/dev/null || ! openssl genrsa -out "$T/k2.pem" 2048 2>/dev/null; then
	echo "FAIL auth_setup: openssl genrsa"; exit 1
fi
mkjwt() { python3 tests/service/mkjwt.py "$@"; }
mkjwt jwks "$T/k.pem" k1 >"$T/jwks.json"
AUD=https://svc.example.run.app
ISS=https://accounts.google.com
H='{"alg":"RS256","kid":"k1","typ":"JWT"}'
claims() { # aud iss email verified iat-offset exp-offset
	echo "{\"aud\":\"$1\",\"iss\":\"$2\",\"email\":\"$3\",\"email_verified\":$4,\"iat\":NOW$5,\"exp\":NOW$6}"
}
GOOD=$(claims $AUD $ISS a@x.com true -10 +3600)

start_serve "$T/log" --model "$MODEL" --auth api-key,google-id-token --api-key key-one,key-two \
	--audience "$AUD" --jwks-file "$T/jwks.json" --allowed-invokers a@x.com --metrics-auth --log-format text
if ! wait_ready 60; then echo "FAIL auth_setup: server not ready"; tail -20 "$T/log"; exit 1; fi
U="http://127.0.0.1:$SPORT"

# expect NAME STATUS [curl args...] : GET /v1/models
expect() {
	local name=$1 st=$2; shift 2
	local got; got=$(curl -s -o "$T/b" -w '%{http_code}' "$@" "$U/v1/models")
	if [ "$got" != "$st" ]; then fail "$name" "status $got, want $st: $(head -c 200 "$T/b")"; return; fi
	if [ "$st" != 200 ]; then
		if ! jq -e ".error.code == $st and (.error.message|type) == \"string\" and has(\"error\")" "$T/b" >/dev/null 2>&1; then
			fail "$name" "bad error body: $(head -c 200 "$T/b")"; return
		fi
		if grep -qiE 'kid|expired|signature|issuer|audience|a@x|b@x' "$T/b"; then
			fail "$name" "error body leaks detail: $(head -c 200 "$T/b")"; return
		fi
	fi
	pass "$name"
}
tok() { mkjwt token "$T/k.pem" "$@"; }

[ "$(curl -s -o /dev/null -w '%{http_code}' "$U/health")" = 200 ]
check auth_health_open $? "/health needs auth"
expect auth_none 401
curl -s -D - -o /dev/null "$U/v1/models" | grep -qi '^WWW-Authenticate: Bearer'
check auth_www_authenticate $? "no WWW-Authenticate header"
expect auth_key_ok 200 -H "Authorization: Bearer key-two"
expect auth_key_wrong 401 -H "Authorization: Bearer key-three"
expect auth_key_prefix 401 -H "Authorization: Bearer key-on"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$U/metrics")" = 401 ] &&
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer key-one' "$U/metrics")" = 200 ]
check auth_metrics_auth $? "/metrics not gated by --metrics-auth"
expect auth_token_ok 200 -H "Authorization: Bearer $(tok rs256 "$H" "$GOOD")"
expect auth_token_x_serverless 200 -H "X-Serverless-Authorization: Bearer $(tok rs256 "$H" "$GOOD")"
expect auth_alg_none 401 -H "Authorization: Bearer $(tok none '{"alg":"none","kid":"k1"}' "$GOOD")"
expect auth_hs256_pubkey 401 -H "Authorization: Bearer $(tok hs256 '{"alg":"HS256","kid":"k1"}' "$GOOD")"
expect auth_unknown_kid 401 -H "Authorization: Bearer $(tok rs256 '{"alg":"RS256","kid":"k9"}' "$GOOD")"
expect auth_other_key 401 -H "Authorization: Bearer $(mkjwt token "$T/k2.pem" rs256 "$H" "$GOOD")"
expect auth_expired 401 -H "Authorization: Bearer $(tok rs256 "$H" "$(claims $AUD $ISS a@x.com true -7200 -3600)")"
expect auth_iat_future 401 -H "Authorization: Bearer $(tok rs256 "$H" "$(claims $AUD $ISS a@x.com true +3600 +7200)")"
expect auth_wrong_aud 401 -H "Authorization: Bearer $(tok rs256 "$H" "$(claims https://other.run.app $ISS a@x.com true -10 +3600)")"
expect auth_wrong_iss 401 -H "Authorization: Bearer $(tok rs256 "$H" "$(claims $AUD https://evil.example a@x.com true -10 +3600)")"
expect auth_email_not_allowed 403 -H "Authorization: Bearer $(tok rs256 "$H" "$(claims $AUD $ISS b@x.com true -10 +3600)")"
expect auth_email_unverified 403 -H "Authorization: Bearer $(tok rs256 "$H" "$(claims $AUD $ISS a@x.com false -10 +3600)")"
expect auth_stripped_in_id_token_mode 401 -H "Authorization: Bearer $(tok stripped "$H" "$GOOD")"
expect auth_garbage_base64 401 -H "Authorization: Bearer %%%.&&&.***"
expect auth_oversize 401 -H "Authorization: Bearer $(python3 -c 'print("a"*20000 + ".b.c")')"
kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null

# cloud-run-iam: the claims of a token whose signature Cloud Run removed
start_serve "$T/log2" --model "$MODEL" --auth cloud-run-iam --audience "$AUD" --allowed-invokers a@x.com --log-format text
if ! wait_ready 60; then echo "FAIL auth_setup: iam server not ready"; tail -20 "$T/log2"; exit 1; fi
U="http://127.0.0.1:$SPORT"
expect iam_ok 200 -H "X-Serverless-Authorization: Bearer $(tok stripped "$H" "$GOOD")"
expect iam_not_invoker 403 -H "X-Serverless-Authorization: Bearer $(tok stripped "$H" "$(claims $AUD $ISS b@x.com true -10 +3600)")"
expect iam_signed_token_refused 401 -H "Authorization: Bearer $(tok rs256 "$H" "$GOOD")"
expect iam_no_token 401
kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null

# google-id-token with --jwks-url (fetched with libcurl on the JWKS thread)
mkdir -p "$T/www" && cp "$T/jwks.json" "$T/www/certs"
HPORT=$(free_port)
python3 -m http.server "$HPORT" --bind 127.0.0.1 --directory "$T/www" >"$T/http.log" 2>&1 &
HPID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$HPORT/certs" && break; sleep 0.05; done
start_serve "$T/log3" --model "$MODEL" --auth google-id-token --audience "$AUD" \
	--jwks-url "http://127.0.0.1:$HPORT/certs" --log-format text
if ! wait_ready 60; then echo "FAIL auth_setup: jwks-url server not ready"; tail -20 "$T/log3"; exit 1; fi
U="http://127.0.0.1:$SPORT"
t=$(tok rs256 "$H" "$GOOD")
got=
for _ in $(seq 100); do
	got=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $t" "$U/v1/models")
	[ "$got" = 200 ] && break
	sleep 0.05
done
[ "$got" = 200 ] && grep -q "GET /certs" "$T/http.log"
check jwks_url_fetch $? "status $got; $(tail -3 "$T/log3")"
expect jwks_url_bad_sig 401 -H "Authorization: Bearer $(mkjwt token "$T/k2.pem" rs256 "$H" "$GOOD")"
