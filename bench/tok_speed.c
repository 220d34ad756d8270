/*
 * tok_speed.c - the C half of bench/bench_tokenizer.sh: times tok_create on
 * tokenizer.json and tok_encode over a corpus (one string per line, hex of
 * its UTF-8 bytes), one thread.
 *
 *   tok_speed TOKENIZER_JSON CORPUS_HEX [SECONDS]
 *
 * Prints one JSON line: load times (ms), encode MB/s per wall-clock and per
 * CPU second (the fairer figure on a shared machine), and the number of ids
 * and an FNV-1a checksum of every id, so the caller can check the output
 * against the reference before comparing speeds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/fileio.h"
#include "common/util.h"
#include "tokenizer/tokenizer.h"

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 0;
}

static double cpu_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	char *json, *hex, *save = NULL;
	size_t jlen, hlen, n_str = 0, cap = 1024, total = 0;
	double loads[7], cloads[7], secs = argc > 3 ? atof(argv[3]) : 3.0;
	struct tokenizer *t = NULL;
	char **str;
	size_t *len;

	if (argc < 3) {
		fprintf(stderr, "usage: tok_speed TOKENIZER_JSON CORPUS_HEX [SECONDS]\n");
		return 2;
	}
	if (read_file(argv[1], 1u << 30, &json, &jlen) < 0 || read_file(argv[2], 1u << 30, &hex, &hlen) < 0)
		return 1;
	for (int i = 0; i < 7; i++) {
		double t0 = now_sec(), c0 = cpu_sec();
		if (tok_create(json, jlen, &t) < 0)
			return 1;
		loads[i] = (now_sec() - t0) * 1e3;
		cloads[i] = (cpu_sec() - c0) * 1e3;
		if (i < 6)
			tok_destroy(t);
	}
	qsort(loads, 7, sizeof(double), cmp_d);
	qsort(cloads, 7, sizeof(double), cmp_d);
	str = malloc(cap * sizeof(*str));
	len = malloc(cap * sizeof(*len));
	for (char *l = strtok_r(hex, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (n_str == cap) {
			cap *= 2;
			str = realloc(str, cap * sizeof(*str));
			len = realloc(len, cap * sizeof(*len));
		}
		size_t n = strlen(l) / 2;
		for (size_t i = 0; i < n; i++)
			l[i] = (char)(hexval(l[2 * i]) * 16 + hexval(l[2 * i + 1]));
		str[n_str] = l;
		len[n_str++] = n;
		total += n;
	}
	/* one validating pass: count and checksum of the ids */
	uint64_t n_ids = 0;
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n_str; i++) {
		int *ids, m;
		if (tok_encode(t, str[i], len[i], &ids, &m) < 0)
			return 1;
		for (int k = 0; k < m; k++) {
			h = (h ^ (uint32_t)ids[k]) * 16777619u;
		}
		n_ids += (uint64_t)m;
		free(ids);
	}
	/* timed passes */
	int passes = 0;
	double t0 = now_sec(), c0 = cpu_sec(), el;
	do {
		for (size_t i = 0; i < n_str; i++) {
			int *ids, m;
			tok_encode(t, str[i], len[i], &ids, &m);
			free(ids);
		}
		passes++;
		el = now_sec() - t0;
	} while (el < secs);
	double cpu = cpu_sec() - c0;
	printf("{\"load_ms_min\":%.1f,\"load_ms_median\":%.1f,\"load_cpu_ms_median\":%.1f,\"encode_mb_s\":%.2f,"
	       "\"encode_mb_cpu_s\":%.2f,\"bytes\":%zu,\"strings\":%zu,\"ids\":%llu,\"checksum\":%u,\"passes\":%d}\n",
	       loads[0], loads[3], cloads[3], (double)total * passes / el / 1e6,
	       (double)total * passes / cpu / 1e6, total, n_str,
	       (unsigned long long)n_ids, h, passes);
	tok_destroy(t);
	free(str);
	free(len);
	free(json);
	free(hex);
	return 0;
}
