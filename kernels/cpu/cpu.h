/*
 * cpu.h - internals shared by the CPU backend's files (the files in kernels/cpu).
 * Not part of the backend interface; include kernels/backend.h for that.
 */
#ifndef GR_CPU_H
#define GR_CPU_H

#include <stddef.h>

#include "kernels/backend.h"

struct cpu_ctx {
	int n_threads;
};

int cpu_create(const struct be_opts *opts, void **ctx);
void cpu_destroy(void *ctx);
void *cpu_alloc(void *ctx, size_t bytes);
void cpu_free(void *ctx, void *p);
int cpu_upload(void *ctx, void *dst, const void *src, size_t n, int lane, void (*done)(void *),
	       void *arg);
int cpu_sync(void *ctx);
int cpu_mem_info(void *ctx, size_t *free_bytes, size_t *total_bytes);

#endif
