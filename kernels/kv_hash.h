/*
 * kv_hash.h - the hashes of prefix-cache blocks (see kv_hash.c).
 */
#ifndef GR_KV_HASH_H
#define GR_KV_HASH_H

#include <stdint.h>

/* The root of a hash chain for a request's cache_salt (NULL or "": no salt). */
uint64_t kv_hash_salt(const char *salt);

/* The hash of a full block of tokens[0..n) whose parent block hashed to parent. */
uint64_t kv_hash_block(uint64_t parent, const int *tokens, int n);

#endif
