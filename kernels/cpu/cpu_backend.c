/* cpu_backend.c - the CPU backend's op table (the reference backend). */
#include "kernels/cpu/cpu.h"

const struct be_ops be_cpu_ops = {
	.name           = "cpu",
	.host_visible   = 1,
	.n_upload_lanes = 1,
	.kv_dtype       = BE_F32,
	.create         = cpu_create,
	.destroy        = cpu_destroy,
	.alloc          = cpu_alloc,
	.free           = cpu_free,
	.host_alloc     = cpu_alloc,
	.host_free      = cpu_free,
	.upload         = cpu_upload,
	.sync           = cpu_sync,
	.mem_info       = cpu_mem_info,

	.copy_h2d       = cpu_copy_h2d,		/* dst, src_host, n */
	.copy_d2h       = cpu_copy_d2h,		/* dst_host, src, n */
	.embed          = cpu_embed,		/* out (n_tok, d), table (vocab, d) */
	.rmsnorm        = cpu_rmsnorm,		/* out, x: (n_tok, d); w (d) */
	.matmul         = cpu_matmul,		/* y (n_tok, n_out), x (n_tok, n_in), W (n_out, n_in) */
	.rope           = cpu_rope,		/* x (n_tok, n_heads*head_dim) in place */
	.kv_write       = cpu_kv_write,		/* caches (slots, kv_dim), k, v (n_tok, kv_dim) */
	.attention      = cpu_attention,	/* out, q: (n_tok, n_heads*head_dim) */
	.gelu_mul       = cpu_gelu_mul,		/* out, gate, up: (n) */
	.add            = cpu_add,		/* y += x: (n) */
	.softcap        = cpu_softcap,		/* x (n) in place */
	.gather_rows    = cpu_gather_rows,	/* out (n_rows, d), x (n, d) */
	.sample         = cpu_sample,		/* out (n_rows), logits (n_rows, vocab) */
};
