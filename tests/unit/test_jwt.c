/*
 * test_jwt.c - JWT parsing, RS256 verification, claim checks, JWKS parsing
 * and the auth checker (api keys, cloud-run-iam, google-id-token), with a
 * throwaway RSA key generated in-process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <unistd.h>

#include "common/base64.h"
#include "common/fileio.h"
#include "common/util.h"
#include "service/auth/auth.h"
#include "service/auth/auth_jwks.h"
#include "service/auth/auth_jwt.h"
#include "tests/harness.h"

static EVP_PKEY *g_key, *g_key2;
static char g_jwks_path[256];
static double g_now;

static void b64url(const unsigned char *in, size_t n, char *out)
{
	static const char tb[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
			     (i + 2 < n ? in[i + 2] : 0);
		out[o++] = tb[v >> 18 & 63];
		out[o++] = tb[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = tb[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = tb[v & 63];
	}
	out[o] = 0;
}

static void b64url_str(const char *s, char *out)
{
	b64url((const unsigned char *)s, strlen(s), out);
}

/* mode: 0 RS256 with key, 1 alg none (empty sig), 2 HS256 keyed with the public key PEM, 3 stripped */
static char *make_token(const char *header, const char *payload, EVP_PKEY *key, int mode)
{
	static char tok[16384];
	char h[2048], p[4096];
	unsigned char sig[1024];
	size_t sl = sizeof(sig);

	b64url_str(header, h);
	b64url_str(payload, p);
	snprintf(tok, sizeof(tok), "%s.%s", h, p);
	size_t n = strlen(tok);
	if (mode == 1) {
		strcat(tok, ".");
		return tok;
	}
	if (mode == 3) {
		strcat(tok, ".SIGNATURE_REMOVED_BY_GOOGLE");
		return tok;
	}
	if (mode == 2) {
		unsigned char pem[4096];
		unsigned int ml = 0;
		unsigned char *der = NULL;
		int dl = i2d_PUBKEY(key, &der);
		memcpy(pem, der, (size_t)dl);
		OPENSSL_free(der);
		HMAC(EVP_sha256(), pem, dl, (unsigned char *)tok, n, sig, &ml);
		sl = ml;
	} else {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key);
		EVP_DigestSign(md, sig, &sl, (unsigned char *)tok, n);
		EVP_MD_CTX_free(md);
	}
	tok[n] = '.';
	b64url(sig, sl, tok + n + 1);
	return tok;
}

static void jwk_of(EVP_PKEY *k, const char *kid, char *out, size_t cap)
{
	BIGNUM *n = NULL, *e = NULL;
	unsigned char nb[1024], eb[16];
	char ns[2048], es[64];
	EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n);
	EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e);
	int nl = BN_bn2bin(n, nb), el = BN_bn2bin(e, eb);
	b64url(nb, (size_t)nl, ns);
	b64url(eb, (size_t)el, es);
	snprintf(out, cap, "{\"kty\":\"RSA\",\"alg\":\"RS256\",\"use\":\"sig\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"}",
		 kid, ns, es);
	BN_free(n);
	BN_free(e);
}

static const char *claims(const char *aud, const char *iss, double iat, double exp, const char *email,
			  int verified)
{
	static char p[1024];
	snprintf(p, sizeof(p),
		 "{\"aud\":\"%s\",\"iss\":\"%s\",\"iat\":%.0f,\"exp\":%.0f,\"email\":\"%s\","
		 "\"email_verified\":%s,\"sub\":\"1234\"}",
		 aud, iss, iat, exp, email, verified ? "true" : "false");
	return p;
}

#define HDR "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}"
#define AUD "https://svc.example.run.app"
#define ISS "https://accounts.google.com"

static struct auth *mk_auth(const char *modes, const char *keys, const char *invokers)
{
	struct srv_config c;
	struct auth *a = NULL;
	memset(&c, 0, sizeof(c));
	cfg_parse_auth(modes, &c.auth);
	c.api_key = keys;
	c.allowed_invokers = invokers;
	c.audience = AUD;
	c.jwks_file = g_jwks_path;
	c.jwt_skew_s = 60;
	if (auth_create(&c, &a) < 0)
		return NULL;
	return a;
}

static int check_bearer(struct auth *a, const char *tok)
{
	char h[17000];
	snprintf(h, sizeof(h), "Bearer %s", tok);
	return auth_check(a, h, NULL, NULL, 0);
}

static void test_b64url(void)
{
	unsigned char out[16];
	CHECK(b64_decode(out, sizeof(out), "TWFu", 4, B64_URL) == 3 && !memcmp(out, "Man", 3), "Man");
	CHECK(b64_decode(out, sizeof(out), "TWE", 3, B64_URL) == 2, "no padding");
	CHECK(b64_decode(out, sizeof(out), "TWE=", 4, B64_URL) < 0, "padding refused");
	CHECK(b64_decode(out, sizeof(out), "TW+/", 4, B64_URL) < 0, "standard alphabet refused");
	CHECK(b64_decode(out, sizeof(out), "T", 1, B64_URL) < 0, "1 mod 4");
	CHECK(b64_decode(out, sizeof(out), "TWF", 3, B64_URL) < 0, "non-canonical trailing bits");
}

static void test_parse_malformed(void)
{
	struct jwt j;
	const char *bad[] = { "", "abc", "a.b", "a.b.c.d", "!!!.e30.sig", "e30.!!!.c2ln", ".e30.c2ln",
			      "e30..c2ln", "bm90anNvbg.e30.c2ln" /* header not JSON */,
			      "W10.e30.c2ln" /* header an array */ };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(jwt_parse(bad[i], strlen(bad[i]), &j) < 0, "'%s' accepted", bad[i]);
	char *big = malloc(JWT_MAX_LEN + 100);
	memset(big, 'A', JWT_MAX_LEN + 99);
	big[10] = '.';
	big[20] = '.';
	CHECK(jwt_parse(big, JWT_MAX_LEN + 99, &j) < 0, "oversize accepted");
	free(big);
}

static void test_valid_token(void)
{
	struct auth *a = mk_auth("google-id-token", NULL, NULL);
	CHECK(a != NULL, "auth_create");
	if (!a)
		return;
	char *t = make_token(HDR, claims(AUD, ISS, g_now - 10, g_now + 3600, "a@x.com", 1), g_key, 0);
	CHECK(check_bearer(a, t) == 0, "valid token rejected");
	/* iss without scheme is Google's too */
	t = make_token(HDR, claims(AUD, "accounts.google.com", g_now - 10, g_now + 3600, "a@x.com", 1), g_key, 0);
	CHECK(check_bearer(a, t) == 0, "accounts.google.com rejected");
	/* aud as a list */
	t = make_token(HDR, "{\"aud\":[\"other\",\"" AUD "\"],\"iss\":\"" ISS "\",\"iat\":1,\"exp\":9999999999}", g_key, 0);
	CHECK(check_bearer(a, t) == 0, "aud list rejected");
	/* via X-Serverless-Authorization */
	char h[17000];
	t = make_token(HDR, claims(AUD, ISS, g_now - 10, g_now + 3600, "a@x.com", 1), g_key, 0);
	snprintf(h, sizeof(h), "Bearer %s", t);
	CHECK(auth_check(a, "Bearer some-api-key", h, NULL, 0) == 0, "x-serverless token rejected");
	auth_destroy(a);
}

static void test_rejections(void)
{
	struct auth *a = mk_auth("google-id-token", NULL, "a@x.com");
	const char *ok = claims(AUD, ISS, g_now - 10, g_now + 3600, "a@x.com", 1);
	char *t;

	CHECK(a != NULL, "auth_create");
	if (!a)
		return;
	t = make_token(HDR, ok, g_key, 0);
	CHECK(check_bearer(a, t) == 0, "baseline");
	t = make_token("{\"alg\":\"none\",\"kid\":\"k1\"}", ok, g_key, 1);
	CHECK(check_bearer(a, t) == 401, "alg none");
	t = make_token("{\"alg\":\"none\",\"kid\":\"k1\"}", ok, g_key, 0);
	CHECK(check_bearer(a, t) == 401, "alg none with an RSA signature");
	t = make_token("{\"alg\":\"HS256\",\"kid\":\"k1\"}", ok, g_key, 2);
	CHECK(check_bearer(a, t) == 401, "HS256 keyed with the public key");
	t = make_token("{\"alg\":\"RS256\",\"kid\":\"nope\"}", ok, g_key, 0);
	CHECK(check_bearer(a, t) == 401, "unknown kid");
	t = make_token("{\"alg\":\"RS256\"}", ok, g_key, 0);
	CHECK(check_bearer(a, t) == 401, "no kid");
	t = make_token(HDR, ok, g_key2, 0);
	CHECK(check_bearer(a, t) == 401, "signed by another key");
	t = make_token(HDR, claims(AUD, ISS, g_now - 7200, g_now - 3600, "a@x.com", 1), g_key, 0);
	CHECK(check_bearer(a, t) == 401, "expired");
	t = make_token(HDR, claims(AUD, ISS, g_now + 3600, g_now + 7200, "a@x.com", 1), g_key, 0);
	CHECK(check_bearer(a, t) == 401, "iat in the future");
	t = make_token(HDR, claims("https://other.run.app", ISS, g_now - 10, g_now + 3600, "a@x.com", 1), g_key, 0);
	CHECK(check_bearer(a, t) == 401, "wrong aud");
	t = make_token(HDR, claims(AUD, "https://evil.example", g_now - 10, g_now + 3600, "a@x.com", 1), g_key, 0);
	CHECK(check_bearer(a, t) == 401, "wrong iss");
	t = make_token(HDR, claims(AUD, ISS, g_now - 10, g_now + 3600, "b@x.com", 1), g_key, 0);
	CHECK(check_bearer(a, t) == 403, "email not allowed");
	t = make_token(HDR, claims(AUD, ISS, g_now - 10, g_now + 3600, "a@x.com", 0), g_key, 0);
	CHECK(check_bearer(a, t) == 403, "email not verified");
	t = make_token(HDR, ok, g_key, 3);
	CHECK(check_bearer(a, t) == 401, "stripped signature in google-id-token mode");
	t = make_token(HDR, ok, g_key, 0);
	t[strlen(t) - 3] ^= 1;	/* still base64url, different signature */
	CHECK(check_bearer(a, t) == 401, "tampered signature");
	t = make_token(HDR, ok, g_key, 0);
	{
		char *dot = strchr(t, '.');
		dot[2] = dot[2] == 'A' ? 'B' : 'A';	/* tamper with the payload */
	}
	CHECK(check_bearer(a, t) == 401, "tampered payload");
	CHECK(check_bearer(a, "!!garbage!!.@@.##") == 401, "garbage base64");
	CHECK(auth_check(a, NULL, NULL, NULL, 0) == 401, "no header");
	CHECK(auth_check(a, "Basic dXNlcjpwYXNz", NULL, NULL, 0) == 401, "basic auth");
	{
		static char big[JWT_MAX_LEN + 64];
		memset(big, 'A', sizeof(big) - 1);
		big[100] = '.';
		big[200] = '.';
		CHECK(check_bearer(a, big) == 401, "oversize token");
	}
	auth_destroy(a);
}

static void test_skew_edges(void)
{
	struct jwt j;
	struct jwt_policy p;
	memset(&p, 0, sizeof(p));
	p.skew_s = 60;
	p.check_iss = 1;
	char *t = make_token(HDR, claims(AUD, ISS, 1000, 2000, "a@x.com", 1), g_key, 0);
	CHECK(jwt_parse(t, strlen(t), &j) == 0, "parse");
	CHECK(jwt_check_claims(&j, &p, 2059, NULL) == 0, "exp within skew");
	CHECK(jwt_check_claims(&j, &p, 2061, NULL) == 401, "exp past skew");
	CHECK(jwt_check_claims(&j, &p, 941, NULL) == 0, "iat within skew");
	CHECK(jwt_check_claims(&j, &p, 939, NULL) == 401, "iat past skew");
	jwt_release(&j);
	t = make_token(HDR, "{\"iss\":\"" ISS "\",\"iat\":1000,\"exp\":5000,\"nbf\":3000}", g_key, 0);
	CHECK(jwt_parse(t, strlen(t), &j) == 0, "parse nbf");
	CHECK(jwt_check_claims(&j, &p, 2000, NULL) == 401, "nbf in the future");
	CHECK(jwt_check_claims(&j, &p, 2950, NULL) == 0, "nbf within skew");
	jwt_release(&j);
	t = make_token(HDR, "{\"iss\":\"" ISS "\",\"iat\":1000}", g_key, 0);
	CHECK(jwt_parse(t, strlen(t), &j) == 0, "parse no exp");
	CHECK(jwt_check_claims(&j, &p, 1000, NULL) == 401, "no exp");
	jwt_release(&j);
}

static void test_cloud_run_iam(void)
{
	struct auth *a = mk_auth("cloud-run-iam", NULL, "a@x.com");
	char h[17000];
	CHECK(a != NULL, "auth_create");
	if (!a)
		return;
	char *t = make_token(HDR, claims(AUD, ISS, g_now - 10, g_now + 3600, "a@x.com", 1), g_key, 3);
	CHECK(check_bearer(a, t) == 0, "stripped token from Cloud Run rejected");
	snprintf(h, sizeof(h), "Bearer %s", t);
	CHECK(auth_check(a, "Bearer whatever", h, NULL, 0) == 0, "X-Serverless-Authorization");
	t = make_token(HDR, claims(AUD, ISS, g_now - 10, g_now + 3600, "b@x.com", 1), g_key, 3);
	CHECK(check_bearer(a, t) == 403, "invoker not allowed");
	t = make_token(HDR, claims("https://other", ISS, g_now - 10, g_now + 3600, "a@x.com", 1), g_key, 3);
	CHECK(check_bearer(a, t) == 401, "wrong audience");
	t = make_token(HDR, claims(AUD, ISS, g_now - 10, g_now + 3600, "a@x.com", 1), g_key, 0);
	CHECK(check_bearer(a, t) == 401, "signed token where Cloud Run strips signatures");
	auth_destroy(a);
	/* combined: either mode may accept */
	a = mk_auth("cloud-run-iam,google-id-token", NULL, "a@x.com");
	CHECK(a != NULL, "auth_create combined");
	if (!a)
		return;
	t = make_token(HDR, claims(AUD, ISS, g_now - 10, g_now + 3600, "a@x.com", 1), g_key, 0);
	CHECK(check_bearer(a, t) == 0, "verified token in combined mode");
	t = make_token(HDR, claims(AUD, ISS, g_now - 10, g_now + 3600, "a@x.com", 1), g_key, 3);
	CHECK(check_bearer(a, t) == 0, "stripped token in combined mode");
	auth_destroy(a);
}

static void test_api_keys(void)
{
	struct auth *a = mk_auth("api-key", "k-one, k-two", NULL);
	CHECK(a != NULL, "auth_create");
	if (!a)
		return;
	CHECK(auth_check(a, "Bearer k-one", NULL, NULL, 0) == 0, "key 1");
	CHECK(auth_check(a, "bearer k-two", NULL, NULL, 0) == 0, "key 2, scheme case");
	CHECK(auth_check(a, "Bearer k-on", NULL, NULL, 0) == 401, "prefix");
	CHECK(auth_check(a, "Bearer k-one2", NULL, NULL, 0) == 401, "longer");
	CHECK(auth_check(a, "Bearer ", NULL, NULL, 0) == 401, "empty");
	CHECK(auth_check(a, "k-one", NULL, NULL, 0) == 401, "no scheme");
	CHECK(auth_check(a, NULL, NULL, NULL, 0) == 401, "missing");
	/* with an IAM token in X-Serverless-Authorization, Authorization carries the key */
	CHECK(auth_check(a, "Bearer k-two", "Bearer x.y.z", NULL, 0) == 0, "key beside IAM token");
	auth_destroy(a);
	/* a key file */
	char path[] = "/tmp/test_jwt_keysXXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp");
	if (fd < 0)
		return;
	const char body[] = "# comment\nfile-key-1\n\n  file-key-2  \r\n";
	CHECK(write(fd, body, sizeof(body) - 1) == (ssize_t)(sizeof(body) - 1), "write");
	close(fd);
	struct srv_config c;
	memset(&c, 0, sizeof(c));
	c.auth = CFG_AUTH_API_KEY;
	c.api_key_file = path;
	CHECK(auth_create(&c, &a) == 0, "key file");
	CHECK(auth_check(a, "Bearer file-key-1", NULL, NULL, 0) == 0, "file key 1");
	CHECK(auth_check(a, "Bearer file-key-2", NULL, NULL, 0) == 0, "file key 2 trimmed");
	CHECK(auth_check(a, "Bearer # comment", NULL, NULL, 0) == 401, "comment is not a key");
	auth_destroy(a);
	unlink(path);
}

static void test_jwks_parse(void)
{
	struct jwks *k = NULL;
	const char *bad[] = { "", "[]", "{\"keys\":1}", "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"!!\",\"e\":\"AQAB\"}]}" };
	CHECK(jwks_parse(bad[0], 0, &k) < 0, "empty");
	CHECK(jwks_parse(bad[1], strlen(bad[1]), &k) < 0, "array");
	CHECK(jwks_parse(bad[2], strlen(bad[2]), &k) < 0, "keys not a list");
	CHECK(jwks_parse(bad[3], strlen(bad[3]), &k) == 0 && jwks_count(k) == 0, "bad n skipped");
	jwks_destroy(k);
	/* a 2048-bit key (RFC 7517 example modulus) is accepted */
	const char *ok = "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"s\",\"n\":\"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw\",\"e\":\"AQAB\"}]}";
	CHECK(jwks_parse(ok, strlen(ok), &k) == 0 && jwks_count(k) == 1, "2048-bit key accepted");
	jwks_destroy(k);
	/* a 1024-bit key is skipped; a key for another algorithm too */
	EVP_PKEY *small = EVP_RSA_gen(1024);
	char jwk[4096], doc[4200];
	jwk_of(small, "small", jwk, sizeof(jwk));
	snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", jwk);
	CHECK(jwks_parse(doc, strlen(doc), &k) == 0 && jwks_count(k) == 0, "1024-bit key accepted");
	jwks_destroy(k);
	EVP_PKEY_free(small);
	jwk_of(g_key, "x", jwk, sizeof(jwk));
	char *alg = strstr(jwk, "RS256");
	memcpy(alg, "RS384", 5);
	snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", jwk);
	CHECK(jwks_parse(doc, strlen(doc), &k) == 0 && jwks_count(k) == 0, "RS384 key accepted");
	jwks_destroy(k);
	CHECK(jwks_max_age("public, max-age=19845, must-revalidate, no-transform", NULL) == 19845, "max-age");
	CHECK(jwks_max_age("public, max-age=100", "40") == 60, "max-age minus age");
	CHECK(jwks_max_age("no-cache", NULL) < 0, "no max-age");
}

int main(void)
{
	char jwk1[4096], jwk2[4096], all[9000];
	g_now = wall_sec();
	g_key = EVP_RSA_gen(2048);
	g_key2 = EVP_RSA_gen(2048);
	if (!g_key || !g_key2) {
		printf("FAIL keygen: EVP_RSA_gen failed\n");
		return 1;
	}
	jwk_of(g_key, "k1", jwk1, sizeof(jwk1));
	jwk_of(g_key2, "k2", jwk2, sizeof(jwk2));
	snprintf(all, sizeof(all), "{\"keys\":[%s,%s]}", jwk1, jwk2);
	/* k2 is known, but tokens signed by key2 under kid k1 must fail */
	snprintf(g_jwks_path, sizeof(g_jwks_path), "/tmp/test_jwt_jwks_%d.json", (int)getpid());
	write_file(g_jwks_path, all, strlen(all));

	RUN(test_b64url);
	RUN(test_parse_malformed);
	RUN(test_valid_token);
	RUN(test_rejections);
	RUN(test_skew_edges);
	RUN(test_cloud_run_iam);
	RUN(test_api_keys);
	RUN(test_jwks_parse);
	unlink(g_jwks_path);
	EVP_PKEY_free(g_key);
	EVP_PKEY_free(g_key2);
	return th_done();
}
