/*
 * crc32c.h - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum GCS stores for every object and crc32c.json manifests carry.
 *
 * crc32c(0, buf, n) is the standard CRC-32C of buf ("123456789" ->
 * 0xE3069283); crc32c(crc, more, m) continues it. On x86-64 with SSE4.2 the
 * crc32 instruction runs three independent streams per block (its latency
 * is 3, its throughput 1) merged with a precomputed shift; elsewhere a
 * slicing-by-8 table is used. Both give identical results.
 *
 * crc32c_combine(a, b, len_b) is the CRC of A||B from crc(A), crc(B) and
 * the length of B, via multiplication by x^(8*len_b) mod P (O(log len_b)).
 * Lengths are uint64_t: there is no negative length.
 */
#ifndef GR_CRC32C_H
#define GR_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *buf, size_t n);
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

/* The portable table-driven path, always available (tests compare the two). */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t n);
/* Whether crc32c() uses the SSE4.2 instruction on this machine. */
int crc32c_hw_available(void);

/* GCS encoding: the 4 big-endian bytes in base64 ("yZRlqg=="); out holds 9 bytes. */
void crc32c_to_base64(uint32_t crc, char out[9]);
/* Parses that encoding; 0 or ST_EFORMAT. */
int crc32c_from_base64(const char *s, uint32_t *crc);

#endif
