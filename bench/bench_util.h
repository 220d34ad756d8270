/*
 * bench_util.h - what the GPU benchmark programs share (bench_gpu.c: load and
 * decode; bench_kernels.c: single kernels): "<name>: key=value" result
 * lines kept for a summary at the end, the median, and the CUDA device line.
 * Header-only (every .c in bench/ is its own program); everything static.
 */
#ifndef GR_BENCH_UTIL_H
#define GR_BENCH_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef GR_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

static const char *g_bench = "bench";	/* the program's name: prefix of its result lines */
static char g_lines[96][320];		/* its result lines, for the summary */
static int g_n_lines;

/* Prints "<name>: ..." now and keeps it for the summary. */
__attribute__((format(printf, 1, 2)))
static inline void rec(const char *fmt, ...)
{
	char *l = g_lines[g_n_lines < 96 ? g_n_lines++ : 95];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l, sizeof(g_lines[0]), fmt, ap);
	va_end(ap);
	printf("%s: %s\n", g_bench, l);
}

/* Every line rec() printed, again, under a heading. */
static inline void rec_summary(void)
{
	printf("\n=== %s: all figures\n", g_bench);
	for (int i = 0; i < g_n_lines; i++)
		printf("%s: %s\n", g_bench, g_lines[i]);
}

static inline int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static inline double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_dbl);
	return n <= 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#ifdef GR_HAVE_CUDA
#define CU_OK(x) ((x) == cudaSuccess)

/* Records the device; -1 (msg says why) when the runtime sees none. */
static inline int cuda_info(char *msg, size_t cap)
{
	struct cudaDeviceProp p;
	int n = 0, drv = 0, rt = 0, clk = 0, bus = 0;
	cudaError_t e = cudaGetDeviceCount(&n);

	if (e != cudaSuccess || n <= 0 || !CU_OK(e = cudaGetDeviceProperties(&p, 0))) {
		snprintf(msg, cap, "no CUDA device (%s)", e != cudaSuccess ? cudaGetErrorString(e) :
			 "cudaGetDeviceCount: 0 devices");
		return -1;
	}
	cudaDriverGetVersion(&drv);
	cudaRuntimeGetVersion(&rt);
	cudaDeviceGetAttribute(&clk, cudaDevAttrMemoryClockRate, 0);	/* kHz */
	cudaDeviceGetAttribute(&bus, cudaDevAttrGlobalMemoryBusWidth, 0);	/* bits */
	rec("device name=\"%s\" cc=%d.%d sms=%d mem_gib=%.1f l2_mib=%.0f driver=%d runtime=%d "
	    "spec_peak_gbps=%.0f", p.name, p.major, p.minor, p.multiProcessorCount,
	    p.totalGlobalMem / 1073741824.0, p.l2CacheSize / 1048576.0, drv, rt,
	    2.0 * clk * 1e3 * (bus / 8) / 1e9);
	return 0;
}
#endif

#endif
