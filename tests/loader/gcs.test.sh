#!/usr/bin/env bash
# tests/loader/gcs.test.sh - gemma-run load from gs:// against the GCS fixture
# (tests/fixtures/gcs_server.py on 127.0.0.1): a clean load, every fault type,
# and the three credential flows. Each case ends in an arena whose SHA-256
# equals the local reference load's, or in a non-zero exit with a clear
# message; the fixture's counters prove the fault or the token flow happened.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/loader/lib.sh
gcs_fixture_start gcs tests/golden/gemma2-tiny-b models/tiny-b

pass() { echo "PASS $1"; }
# expect_ok NAME OUT: exit 0 and the reference hash
expect_ok() {
	if [ "$2" -ne 0 ]; then failc "$1" "exit $2" "$3"; return 1; fi
	if ! grep -q "$REF" "$3"; then failc "$1" "arena hash differs from the local load" "$3"; return 1; fi
	return 0
}
# expect_fail NAME RC OUT REGEX: non-zero exit and a message matching REGEX
expect_fail() {
	if [ "$2" -eq 0 ]; then failc "$1" "load succeeded but must fail" "$3"; return 1; fi
	if ! grep -Eq "$4" "$3"; then failc "$1" "no message matching /$4/" "$3"; return 1; fi
	if grep -q '"sha256"' "$3"; then failc "$1" "printed a result despite failing" "$3"; return 1; fi
	return 0
}

# 1. clean, anonymous
control '{}'
gsload "$T/o" --gcs-anonymous; rc=$?
expect_ok gcs_clean_load $rc "$T/o" && [ "$(stat_of media)" -ge 16 ] && pass gcs_clean_load

# 2. metadata-server token (no GOOGLE_APPLICATION_CREDENTIALS)
control '{"require_token":true}'
gsload "$T/o"; rc=$?
expect_ok gcs_metadata_token $rc "$T/o" && { [ "$(stat_of tokens_meta)" -ge 1 ] && pass gcs_metadata_token || echo "FAIL gcs_metadata_token: no token issued"; }

# 3. a bucket that wants a token refuses --gcs-anonymous, clearly
control '{"require_token":true}'
gsload "$T/o" --gcs-anonymous; rc=$?
expect_fail gcs_anonymous_refused $rc "$T/o" 'config.json.*HTTP 401' && pass gcs_anonymous_refused

# 4. service-account key: JWT signed RS256, verified by the fixture with the public key
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/sa.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/other.pem" 2>/dev/null
MOD=$(openssl rsa -in "$T/sa.pem" -noout -modulus 2>/dev/null | cut -d= -f2)
mkkey() {
	python3 - "$1" "$2" "$PORT" <<'PY'
import json, sys
pem = open(sys.argv[1]).read()
json.dump({"type": "service_account", "project_id": "p", "private_key_id": "kid-1",
           "private_key": pem, "client_email": "loader@p.iam.gserviceaccount.com",
           "token_uri": "http://127.0.0.1:%s/token" % sys.argv[3]}, open(sys.argv[2], "w"))
PY
}
mkkey "$T/sa.pem" "$T/sa.json"; mkkey "$T/other.pem" "$T/other.json"
SACTL="\"require_token\":true,\"sa_email\":\"loader@p.iam.gserviceaccount.com\",\"sa_kid\":\"kid-1\",\"sa_modulus\":\"$MOD\""
control "{$SACTL}"
GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" gsload "$T/o"; rc=$?
expect_ok gcs_service_account_jwt $rc "$T/o" && {
	if [ "$(stat_of tokens_sa)" -ge 1 ] && [ "$(stat_of tokens_meta)" -eq 0 ]; then pass gcs_service_account_jwt
	else echo "FAIL gcs_service_account_jwt: fixture issued no service-account token"; fi; }

# 5. a key the fixture does not know: the JWT signature is rejected, the load fails clearly
control "{$SACTL}"
GOOGLE_APPLICATION_CREDENTIALS="$T/other.json" gsload "$T/o"; rc=$?
expect_fail gcs_service_account_bad_key $rc "$T/o" 'token exchange.*(invalid_grant|HTTP 400)' &&
	{ [ "$(stat_of jwt_rejected)" -ge 1 ] && pass gcs_service_account_bad_key || echo "FAIL gcs_service_account_bad_key: fixture never rejected a JWT"; }

# 6. short-lived tokens are refreshed during the load (2 s tokens, refreshed after 1 s; a load of
#    16 chunks of 64 KiB at 100 KB/s per response over 4 workers lasts > 2 s)
control '{"require_token":true,"token_ttl":2,"bw":100000}'
gsload "$T/o"; rc=$?
expect_ok gcs_token_refresh $rc "$T/o" && { [ "$(stat_of tokens_meta)" -ge 2 ] && pass gcs_token_refresh || echo "FAIL gcs_token_refresh: only $(stat_of tokens_meta) token(s) issued"; }

# 6b. a token refused with 401 mid-load is dropped, a new one fetched, the read retried
control '{"require_token":true,"revoke_once":true}'
gsload "$T/o"; rc=$?
expect_ok gcs_token_401_refetch $rc "$T/o" && {
	if [ "$(stat_of unauthorized)" -ge 1 ] && [ "$(stat_of tokens_meta)" -ge 2 ]; then pass gcs_token_401_refetch
	else echo "FAIL gcs_token_401_refetch: unauthorized=$(stat_of unauthorized) tokens=$(stat_of tokens_meta)"; fi; }

# 7. retryable faults: each must end in the identical arena, with retries counted
retry_case() {	# NAME CONTROL_JSON
	control "$2"
	gsload "$T/o"; rc=$?
	expect_ok "$1" $rc "$T/o" || return
	local faults; faults=$(stat_of faults)
	if [ "$faults" -lt 1 ]; then echo "FAIL $1: the fixture injected no fault"; return; fi
	if ! grep -q '"retries":[1-9]' "$T/o"; then failc "$1" "no retry reported" "$T/o"; return; fi
	pass "$1"
}
retry_case gcs_fault_503_every_3rd '{"fail_every":3,"fail_status":503}'
retry_case gcs_fault_reset_mid_body '{"reset_every":4}'
retry_case gcs_fault_truncated_body '{"truncate_every":3}'
retry_case gcs_fault_stall '{"stall_every":5,"stall_s":3}'
retry_case gcs_fault_500 '{"fail_every":4,"fail_status":500}'

# 8. repeated 429 lowers concurrency (logged) and still loads
control '{"fail_every":2,"fail_status":429}'
gsload "$T/o" --loader-retries 20; rc=$?
expect_ok gcs_fault_429_backs_off $rc "$T/o" &&
	{ grep -q 'lowering concurrency' "$T/o" && grep -q '"throttles":[1-9]' "$T/o" && pass gcs_fault_429_backs_off ||
	  failc gcs_fault_429_backs_off "concurrency was not lowered" "$T/o"; }

# 9. bandwidth cap: slow but identical
control '{"bw":2000000}'
gsload "$T/o"; rc=$?
expect_ok gcs_fault_bandwidth_cap $rc "$T/o" && pass gcs_fault_bandwidth_cap

# 10. fatal faults
control '{"replace_after":4}'
gsload "$T/o"; rc=$?
expect_fail gcs_object_replaced_412 $rc "$T/o" 'safetensors at offset [0-9]+: HTTP 412.*replaced' &&
	{ [ "$(stat_of replaced)" -ge 1 ] && pass gcs_object_replaced_412 || echo "FAIL gcs_object_replaced_412: fixture did not replace"; }

control '{"wrong_crc":true}'
gsload "$T/o"; rc=$?
expect_fail gcs_wrong_crc $rc "$T/o" 'crc32c mismatch' && pass gcs_wrong_crc

control '{"corrupt_every":5}'
gsload "$T/o"; rc=$?
expect_fail gcs_corrupt_bytes_on_wire $rc "$T/o" 'safetensors at offset 0: crc32c mismatch: read' && pass gcs_corrupt_bytes_on_wire

control '{"gzip":true}'
gsload "$T/o"; rc=$?
expect_fail gcs_gzip_refused $rc "$T/o" "contentEncoding 'gzip'" && pass gcs_gzip_refused

control '{"fail_every":7,"fail_status":403}'
gsload "$T/o"; rc=$?
expect_fail gcs_forbidden_403 $rc "$T/o" 'at offset [0-9]+: HTTP 403' && pass gcs_forbidden_403

control '{"fail_every":1,"fail_status":503}'
gsload "$T/o" --loader-retries 2; rc=$?
expect_fail gcs_retry_budget_exhausted $rc "$T/o" 'config.json at offset 0: gave up after 2 retries: HTTP 503' && pass gcs_retry_budget_exhausted

control '{"stall_every":1,"stall_s":3}'
gsload "$T/o" --loader-deadline-s 2; rc=$?
expect_fail gcs_deadline $rc "$T/o" 'deadline' && pass gcs_deadline

control '{}'
env STORAGE_EMULATOR_HOST="127.0.0.1:$PORT" "$BIN" load --model gs://test-bucket/models/nope --backend cpu \
	--gcs-anonymous >"$T/o" 2>&1; rc=$?
expect_fail gcs_missing_model $rc "$T/o" 'gs://test-bucket/models/nope/config.json at offset 0: not found' &&
	pass gcs_missing_model
exit 0
