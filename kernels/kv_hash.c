/*
 * kv_hash.c - the hashes that name full KV blocks for prefix caching: a
 * chain root per cache_salt, and a block's hash from its parent's hash and
 * its tokens (splitmix64 finalizer steps). Pure functions: no state, no
 * allocation, no backend; kv_cache.c keys its table with them and compares
 * the stored tokens too, so a collision can never give a wrong hit.
 */
#include "kernels/kv_hash.h"

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t kv_hash_salt(const char *salt)
{
	uint64_t h = 0x6a09e667f3bcc908ull;	/* no salt */
	if (!salt || !*salt)
		return h;
	h ^= 0x9e3779b97f4a7c15ull;		/* "" and no salt are the same root */
	for (const unsigned char *p = (const unsigned char *)salt; *p; p++)
		h = mix64(h ^ *p) + 0x9e3779b97f4a7c15ull;
	return mix64(h);
}

uint64_t kv_hash_block(uint64_t parent, const int *tokens, int n)
{
	uint64_t h = mix64(parent ^ 0xd6e8feb86659fd93ull) ^ (uint64_t)n;
	for (int i = 0; i < n; i++)
		h = mix64(h ^ (uint32_t)tokens[i]) + 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
	return mix64(h);
}
