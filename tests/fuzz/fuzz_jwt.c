/*
 * fuzz_jwt.c - libFuzzer target for the JWT parser, claim checks and the
 * JWKS parser (service/auth/auth_jwt.c, service/auth/auth_jwks.c). Input byte 0
 * chooses: even = a compact token, odd = a JWKS document. Must never
 * crash or leak; no unsigned or non-RS256 token may verify.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "service/auth/auth_jwks.h"
#include "service/auth/auth_jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *p = (const char *)data + 1;
	size_t n = size - 1;

	if (data[0] & 1) {
		struct jwks *k = NULL;
		if (jwks_parse(p, n, &k) == 0) {
			if (jwks_count(k) < 0 || jwks_count(k) > 32)
				abort();
			jwks_find(k, "kid");
			jwks_destroy(k);
		}
		return 0;
	}
	struct jwt j;
	if (jwt_parse(p, n, &j) == 0) {
		struct jwt_policy pol;
		memset(&pol, 0, sizeof(pol));
		pol.n_aud = 1;
		pol.aud[0] = "https://svc";
		pol.n_invokers = 1;
		pol.invokers[0] = "a@x.com";
		pol.skew_s = 60;
		pol.check_iss = 1;
		int v = jwt_check_claims(&j, &pol, 1.7e9, NULL);
		if (v != 0 && v != 401 && v != 403)
			abort();
		/* with no keys nothing verifies */
		if (jwks_verify(NULL, &j) == 0)
			abort();
		if (!j.signing_input || j.signing_len == 0 || (!j.sig_removed && !j.sig))
			abort();
		jwt_release(&j);
	}
	return 0;
}
