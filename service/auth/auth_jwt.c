/*
 * auth_jwt.c - compact JWS parsing and claim checks. Not signatures: those
 * are checked against a key set by jwks_verify (auth_jwks.c).
 *
 * Tokens over JWT_MAX_LEN, with other than 3 parts, with
 * non-base64url bytes, or whose header/payload is not a JSON object are
 * malformed. Times are NumericDate seconds; exp/iat/nbf use the policy skew.
 */
#include "service/auth/auth_jwt.h"

#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include "common/base64.h"
#include "common/status.h"
#include "common/util.h"

static const char removed_sig[] = "SIGNATURE_REMOVED_BY_GOOGLE";

static cJSON *decode_json_part(const char *p, size_t n)
{
	unsigned char *buf = malloc(n + 1);
	cJSON *j = NULL;
	long m;

	if (!buf)
		return NULL;
	m = b64_decode(buf, n, p, n, B64_URL);
	if (m > 0 && utf8_valid((const char *)buf, (size_t)m)) {
		j = cJSON_ParseWithLength((const char *)buf, (size_t)m);
		if (j && !cJSON_IsObject(j)) {
			cJSON_Delete(j);
			j = NULL;
		}
	}
	free(buf);
	return j;
}

static int num_claim(const cJSON *c, const char *name, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, name);
	if (!cJSON_IsNumber(v))
		return 0;
	*out = v->valuedouble;
	return 1;
}

void jwt_release(struct jwt *j)
{
	if (!j)
		return;
	free(j->sig);
	free(j->signing_input);
	cJSON_Delete(j->claims);
	memset(j, 0, sizeof(*j));
}

int jwt_parse(const char *tok, size_t n, struct jwt *j)
{
	const char *d1, *d2;
	cJSON *hdr = NULL;
	const cJSON *v;

	memset(j, 0, sizeof(*j));
	if (!tok || n == 0 || n > JWT_MAX_LEN)
		return ST_EINVAL;
	d1 = memchr(tok, '.', n);
	if (!d1)
		return ST_EINVAL;
	d2 = memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - tok));
	if (!d2 || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - tok)))
		return ST_EINVAL;
	size_t hl = (size_t)(d1 - tok), pl = (size_t)(d2 - d1 - 1), sl = n - (size_t)(d2 + 1 - tok);
	if (!hl || !pl)
		return ST_EINVAL;

	hdr = decode_json_part(tok, hl);
	if (!hdr)
		goto bad;
	v = cJSON_GetObjectItemCaseSensitive(hdr, "alg");
	if (!cJSON_IsString(v) || strlen(v->valuestring) >= sizeof(j->alg))
		goto bad;
	strcpy(j->alg, v->valuestring);
	v = cJSON_GetObjectItemCaseSensitive(hdr, "kid");
	if (v) {
		if (!cJSON_IsString(v) || strlen(v->valuestring) >= sizeof(j->kid))
			goto bad;
		strcpy(j->kid, v->valuestring);
	}
	cJSON_Delete(hdr);
	hdr = NULL;

	j->claims = decode_json_part(d1 + 1, pl);
	if (!j->claims)
		goto bad;
	v = cJSON_GetObjectItemCaseSensitive(j->claims, "iss");
	j->iss = cJSON_IsString(v) ? v->valuestring : NULL;
	v = cJSON_GetObjectItemCaseSensitive(j->claims, "email");
	j->email = cJSON_IsString(v) ? v->valuestring : NULL;
	v = cJSON_GetObjectItemCaseSensitive(j->claims, "email_verified");
	j->email_verified = cJSON_IsTrue(v) || (cJSON_IsString(v) && !strcmp(v->valuestring, "true"));
	j->has_exp = num_claim(j->claims, "exp", &j->exp);
	j->has_iat = num_claim(j->claims, "iat", &j->iat);
	j->has_nbf = num_claim(j->claims, "nbf", &j->nbf);

	if (sl == sizeof(removed_sig) - 1 && !memcmp(d2 + 1, removed_sig, sl)) {
		j->sig_removed = 1;
	} else {
		if (!sl)
			goto bad;
		j->sig = malloc(sl);
		if (!j->sig)
			goto bad;
		long m = b64_decode(j->sig, sl, d2 + 1, sl, B64_URL);
		if (m <= 0)
			goto bad;
		j->sig_len = (size_t)m;
	}
	j->signing_len = (size_t)(d2 - tok);
	j->signing_input = malloc(j->signing_len + 1);
	if (!j->signing_input)
		goto bad;
	memcpy(j->signing_input, tok, j->signing_len);
	j->signing_input[j->signing_len] = 0;
	return 0;
bad:
	cJSON_Delete(hdr);
	jwt_release(j);
	return ST_EINVAL;
}

static int aud_matches(const cJSON *aud, const struct jwt_policy *p)
{
	if (cJSON_IsString(aud)) {
		for (int i = 0; i < p->n_aud; i++)
			if (!strcmp(aud->valuestring, p->aud[i]))
				return 1;
		return 0;
	}
	if (cJSON_IsArray(aud)) {
		const cJSON *x;
		cJSON_ArrayForEach(x, aud)
			if (cJSON_IsString(x))
				for (int i = 0; i < p->n_aud; i++)
					if (!strcmp(x->valuestring, p->aud[i]))
						return 1;
	}
	return 0;
}

int jwt_check_claims(const struct jwt *j, const struct jwt_policy *p, double now, const char **why)
{
	const char *dummy;
	if (!why)
		why = &dummy;
	*why = NULL;
	if (p->check_iss && (!j->iss || (strcmp(j->iss, "accounts.google.com") != 0 &&
					 strcmp(j->iss, "https://accounts.google.com") != 0))) {
		*why = "wrong issuer";
		return 401;
	}
	if (!j->has_exp || now > j->exp + p->skew_s) {
		*why = "expired or no exp";
		return 401;
	}
	if (!j->has_iat || j->iat > now + p->skew_s) {
		*why = "iat missing or in the future";
		return 401;
	}
	if (j->has_nbf && j->nbf > now + p->skew_s) {
		*why = "not yet valid (nbf)";
		return 401;
	}
	if (p->n_aud && !aud_matches(cJSON_GetObjectItemCaseSensitive(j->claims, "aud"), p)) {
		*why = "wrong audience";
		return 401;
	}
	if (p->n_invokers) {
		if (!j->email || !j->email_verified) {
			*why = "no verified email";
			return 403;
		}
		for (int i = 0; i < p->n_invokers; i++)
			if (!strcasecmp(j->email, p->invokers[i]))
				return 0;
		*why = "email not an allowed invoker";
		return 403;
	}
	return 0;
}
