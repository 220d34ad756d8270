/*
 * source.c - picks the byte source for a model URI by its scheme and owns
 * the generic part of every source (struct ld_src: the URI for messages,
 * the abort flag and deadline the pipeline sets).
 *
 * The sources (source_file.c, source_http.c, source_gcs.c) fill in a
 * struct ld_src that this file allocated: their vtable, their private
 * context and the location for messages. They never call back into this
 * file; a new source is one more scheme here (see ld_internal.h for the
 * operations it provides).
 */
#include "loader/source.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/status.h"
#include "loader/ld_internal.h"
#include "loader/source_file.h"
#include "loader/source_gcs.h"
#include "loader/source_http.h"

int ld_src_open(const char *uri, const struct ld_opts *o, struct ld_src **out)
{
	struct ld_src *s;
	int rc;

	*out = NULL;
	if (!uri[0])	/* not "/" */
		return log_err(ST_EINVAL, "empty model URI (use a path, gs:// or http(s)://)");
	if (strstr(uri, "://") && strncmp(uri, "gs://", 5) != 0 && strncmp(uri, "http://", 7) != 0 &&
	    strncmp(uri, "https://", 8) != 0)
		return log_err(ST_EINVAL, "'%s': unknown scheme (use a path, gs:// or http(s)://)", uri);
	if (!(s = calloc(1, sizeof(*s))) || !(s->display = strdup(uri))) {
		free(s);
		return ST_ENOMEM;
	}
	if (strncmp(uri, "gs://", 5) == 0)
		rc = ld_src_gcs_init(s, uri, o);
	else if (strncmp(uri, "http://", 7) == 0 || strncmp(uri, "https://", 8) == 0)
		rc = ld_src_http_init(s, uri, o);
	else
		rc = ld_src_file_init(s, uri);
	if (rc < 0) {
		ld_src_destroy(s);
		return rc;
	}
	*out = s;
	return 0;
}

void ld_src_destroy(struct ld_src *s)
{
	if (!s)
		return;
	if (s->vt)
		s->vt->destroy(s);
	free(s->base);
	free(s->display);
	free(s);
}

void ld_obj_release(struct ld_obj *o)
{
	if (!o)
		return;
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
	free(o->url);
	o->url = NULL;
}
