/* cpu_backend.c - the CPU backend's op table (the reference backend). */
#include "kernels/cpu/cpu.h"

const struct be_ops be_cpu_ops = {
	.name           = "cpu",
	.host_visible   = 1,
	.n_upload_lanes = 1,
	.create         = cpu_create,
	.destroy        = cpu_destroy,
	.alloc          = cpu_alloc,
	.free           = cpu_free,
	.host_alloc     = cpu_alloc,
	.host_free      = cpu_free,
	.upload         = cpu_upload,
	.sync           = cpu_sync,
	.mem_info       = cpu_mem_info,
};
