/*
 * fp8.h - the FP8 E4M3 ("e4m3fn", OCP FP8 spec) element: decode, encode,
 * and the compressed-tensors scheme constants shared by the CPU op
 * (kernels/cpu/cpu_matmul_fp8.c), the quantizer (loader/quantize_fp8.c)
 * and the tests. Header-only, no state.
 *
 * Layout: s eeee mmm, exponent bias 7. e = 0: subnormal, m/8 * 2^-6;
 * otherwise (1 + m/8) * 2^(e-7). No infinities; s 1111 111 (0x7F, 0xFF)
 * is NaN; the largest finite magnitude is 448 (0x7E).
 *
 * Encoding rounds to nearest, ties to even, and saturates: anything beyond
 * +-448 (including +-inf) becomes +-448, as vLLM clamps to the finite range
 * before converting. NaN encodes as 0x7F.
 */
#ifndef GR_FP8_H
#define GR_FP8_H

#include <math.h>
#include <stdint.h>

#define FP8_E4M3_MAX 448.0f
/* vLLM's lower bound on a dynamic per-token scale: 1 / (448 * 512). */
#define FP8_MIN_SCALE (1.0f / (FP8_E4M3_MAX * 512.0f))

static inline float fp8_e4m3_to_f32(uint8_t b)
{
	int e = (b >> 3) & 15, m = b & 7;
	float v;

	if (e == 15 && m == 7)
		return NAN;
	v = e == 0 ? ldexpf((float)m, -9) : ldexpf((float)(8 + m), e - 10);
	return (b & 0x80) ? -v : v;
}

static inline uint8_t fp8_e4m3_from_f32(float f)
{
	uint8_t s = signbit(f) ? 0x80 : 0;
	float a = fabsf(f);
	int ex, code;

	if (isnan(f))
		return 0x7F;
	if (!(a < FP8_E4M3_MAX))
		return (uint8_t)(s | 0x7E);
	if (a < 0.015625f) {			/* below 2^-6: subnormal quantum 2^-9 */
		code = (int)rintf(a * 512.0f);	/* 8 is 2^-6, the smallest normal: same code */
		return (uint8_t)(s | code);
	}
	frexpf(a, &ex);				/* a = fr * 2^ex, fr in [0.5, 1) */
	ex -= 1;				/* a in [2^ex, 2^(ex+1)) */
	code = (int)rintf(ldexpf(a, 3 - ex));	/* 8 .. 16, exact scaling, RNE */
	if (code == 16) {
		code = 8;
		ex++;
	}
	code = ((ex + 7) << 3) | (code - 8);
	if (code > 0x7E)
		code = 0x7E;
	return (uint8_t)(s | code);
}

#endif
