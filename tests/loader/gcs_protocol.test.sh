#!/usr/bin/env bash
# tests/loader/gcs_protocol.test.sh - gemma-run load from gs:// against a GCS
# fixture (tests/fixtures/gcs_server.py on 127.0.0.1) that breaks the HTTP
# protocol rather than the connection: a 200 to a Range request, a body longer
# than its Content-Range, a Content-Range for other bytes, a Content-Length
# shorter than the range (or longer than the bytes sent), bodies framed by connection close or chunked
# encoding (and cut short), a Content-Encoding, a metadata server that fails
# now and then while tokens are refreshed, --loader-retries 0, and object
# names with spaces, '%', '+', non-ASCII and '..'. Each case ends in the local
# reference's arena hash or in a non-zero exit with a message saying what the
# server did wrong; never in a different arena.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/loader/lib.sh
gcs_fixture_start gcsp tests/golden/gemma2-tiny-b 'my models/a+b%20c/ü/..'

retried() { grep -q '"retries":[1-9]' "$T/o" || failc "$1" "no retry reported" "$T/o"; }
# ok_case NAME CONTROL_JSON [extra args]: exit 0, the reference hash, and the fixture injected something
ok_case() {
	local name=$1 ctl=$2; shift 2
	control "$ctl"
	gsload "$T/o" "$@"; local rc=$?
	if [ $rc -ne 0 ]; then failc "$name" "exit $rc" "$T/o"; return 1; fi
	if ! grep -q "$REF" "$T/o"; then failc "$name" "arena hash differs from the local load" "$T/o"; return 1; fi
	echo "PASS $name"
}
# fail_case NAME CONTROL_JSON REGEX [extra args]: non-zero exit, one message matching REGEX, no result
fail_case() {
	local name=$1 ctl=$2 re=$3; shift 3
	control "$ctl"
	gsload "$T/o" "$@"; local rc=$?
	if [ $rc -eq 0 ]; then failc "$name" "load succeeded but must fail" "$T/o"; return 1; fi
	if ! grep -Eq "$re" "$T/o"; then failc "$name" "no message matching /$re/" "$T/o"; return 1; fi
	if grep -q '"sha256"' "$T/o"; then failc "$name" "printed a result despite failing" "$T/o"; return 1; fi
	echo "PASS $name"
}

# the object names themselves (spaces, %, +, UTF-8, ..) go through percent-encoding intact
ok_case gcsp_special_prefix '{}' --gcs-anonymous

# a server that ignores Range must not have its whole object taken as the chunk
fail_case gcsp_200_instead_of_206 '{"range200_every":5}' \
	'safetensors at offset [0-9]+: asked for bytes=[0-9]+-[0-9]+, server answered HTTP 200' --gcs-anonymous
# more body than the Content-Range announced: refused, never written past the chunk
fail_case gcsp_body_longer_than_range '{"extra_every":5}' 'response body longer than its Content-Range' --gcs-anonymous
# the right number of bytes for the wrong offset; the message quotes the header without its CR LF
fail_case gcsp_content_range_disagrees '{"shift_every":5}' \
	"server answered HTTP 206 with Content-Range 'bytes [0-9]+-[0-9]+/[0-9]+'\$" --gcs-anonymous
# an encoded body is not the object's bytes
fail_case gcsp_content_encoding_refused '{"media_encoding":"gzip"}' "Content-Encoding 'gzip'" --gcs-anonymous

# a complete response with fewer bytes than the range: resumed from the last byte
ok_case gcsp_short_content_length '{"shortlen_every":3}' --gcs-anonymous && retried gcsp_short_content_length_retried
# every byte of the range arrived, then the transfer failed (Content-Length promised more): the
# chunk is complete; it used to be re-asked as a 0-byte read, "object size changed from N to 0"
ok_case gcsp_error_after_last_byte '{"overlen_every":4}' --gcs-anonymous
# no Content-Length, cut short: the small files and the chunks are both retried (a short
# config.json / index used to be a fatal "size mismatch")
ok_case gcsp_close_delimited_truncated '{"nolength":true,"truncate_every":2}' --gcs-anonymous --loader-retries 20 &&
	retried gcsp_close_delimited_truncated_retried
ok_case gcsp_chunked '{"chunked":true}' --gcs-anonymous
ok_case gcsp_chunked_truncated '{"chunked":true,"truncate_every":3}' --gcs-anonymous --loader-retries 20 &&
	retried gcsp_chunked_truncated_retried

# a token refresh that hits a 503 from the metadata server is retried, not fatal
if ok_case gcsp_token_refresh_503 '{"require_token":true,"token_ttl":2,"bw":100000,"token_fail_every":2}'; then
	[ "$(stat_of token_faults)" -ge 1 ] || echo "FAIL gcsp_token_refresh_503_injected: the fixture failed no token request"
fi

# --loader-retries 0 means no retry (it used to mean the default 10)
fail_case gcsp_retries_zero '{"fail_every":3,"fail_status":503}' 'gave up after 0 retries: .*HTTP 503' \
	--gcs-anonymous --loader-retries 0
exit 0
