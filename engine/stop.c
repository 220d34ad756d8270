/*
 * stop.c - stop-string matching with hold-back (see stop.h).
 *
 * Invariant between calls: held[0, held_len) is a proper prefix of at least
 * one stop string and contains no complete stop string.
 */
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "engine/stop.h"

int stop_init(struct stop_matcher *m, char **stop, int n_stop)
{
	memset(m, 0, sizeof(*m));
	if (n_stop <= 0)
		return 0;
	m->stop_len = calloc((size_t)n_stop, sizeof(size_t));
	if (!m->stop_len)
		return ST_ENOMEM;
	m->n_stop = n_stop;
	m->stop = stop;
	for (int i = 0; i < n_stop; i++) {
		m->stop_len[i] = strlen(stop[i]);
		if (m->stop_len[i] > m->max_len)
			m->max_len = m->stop_len[i];
	}
	m->held = malloc(m->max_len + 1);
	if (!m->held) {
		stop_release(m);
		return ST_ENOMEM;
	}
	return 0;
}

void stop_release(struct stop_matcher *m)
{
	free(m->stop_len);
	free(m->held);
	memset(m, 0, sizeof(*m));
}

size_t stop_out_cap(const struct stop_matcher *m, size_t n)
{
	return m->held_len + n + 1;
}

int stop_feed(struct stop_matcher *m, const char *text, size_t n, int check, char *out,
	      size_t *out_len)
{
	size_t len = m->held_len + n, best = (size_t)-1, keep = 0;

	if (m->held_len)
		memcpy(out, m->held, m->held_len);
	if (n)
		memcpy(out + m->held_len, text, n);
	out[len] = '\0';
	m->held_len = 0;
	if (!check || m->n_stop == 0) {
		*out_len = len;
		return 0;
	}
	for (int i = 0; i < m->n_stop; i++) {
		const char *p = memmem(out, len, m->stop[i], m->stop_len[i]);
		if (p && (size_t)(p - out) < best)
			best = (size_t)(p - out);
	}
	if (best != (size_t)-1) {
		out[best] = '\0';
		*out_len = best;
		return 1;
	}
	/* Keep back the longest tail that is a proper prefix of a stop string. */
	for (int i = 0; i < m->n_stop; i++) {
		size_t k = m->stop_len[i] - 1 < len ? m->stop_len[i] - 1 : len;
		for (; k > keep; k--)
			if (memcmp(out + len - k, m->stop[i], k) == 0) {
				keep = k;
				break;
			}
	}
	if (keep) {
		memcpy(m->held, out + len - keep, keep);
		m->held_len = keep;
	}
	out[len - keep] = '\0';
	*out_len = len - keep;
	return 0;
}

size_t stop_flush(struct stop_matcher *m, char *out)
{
	size_t n = m->held_len;
	if (n)
		memcpy(out, m->held, n);
	out[n] = '\0';
	m->held_len = 0;
	return n;
}

int stop_mask_ids(const struct eng_sampling *sp, const int *eos_ids, int n_eos, int n_gen,
		  int *out)
{
	int n = 0;
	if (n_gen >= sp->min_tokens)
		return 0;
	if (!sp->ignore_eos)
		for (int i = 0; i < n_eos; i++)
			out[n++] = eos_ids[i];
	for (int i = 0; i < sp->n_stop_ids; i++)
		out[n++] = sp->stop_ids[i];
	return n;
}

int stop_token_ends(const struct eng_sampling *sp, const int *eos_ids, int n_eos, int tok,
		    int n_gen)
{
	if (n_gen < sp->min_tokens)
		return 0;
	if (!sp->ignore_eos)
		for (int i = 0; i < n_eos; i++)
			if (tok == eos_ids[i])
				return 1;
	for (int i = 0; i < sp->n_stop_ids; i++)
		if (tok == sp->stop_ids[i])
			return 1;
	return 0;
}

int stop_length(const struct eng_sampling *sp, int n_gen, int n_tokens, int max_len)
{
	return n_gen >= sp->max_tokens || n_tokens >= max_len;
}
