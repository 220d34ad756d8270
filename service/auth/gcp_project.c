/*
 * gcp_project.c - the project id for trace fields (see gcp_project.h).
 *
 * GET http://HOST/computeMetadata/v1/project/project-id with
 * Metadata-Flavor: Google, once, on a thread; 0.5 s to connect and 1 s in
 * all (the metadata server answers in milliseconds where it exists), and
 * gcp_project_destroy stops it sooner through the progress callback. The
 * answer must carry Metadata-Flavor: Google and look like a project id
 * ([a-z0-9.:-], as domain-scoped ids have '.' and ':').
 *
 * Invariant: id[] is written before `known` is set (release), and never
 * after; readers load `known` (acquire) first, so they need no lock.
 */
#include "service/auth/gcp_project.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/status.h"

#define ID_MAX 128

struct gcp_project {
	char id[ID_MAX];
	atomic_int known;		/* id[] holds the project id */
	atomic_int stop;
	pthread_t thread;
	int have_thread, curl_init;
	char url[512];
};

struct answer {
	char body[ID_MAX];
	size_t n;
	int overflow, flavor;
};

static size_t on_body(char *ptr, size_t sz, size_t nm, void *arg)
{
	struct answer *a = arg;
	size_t n = sz * nm;
	if (a->n + n >= sizeof(a->body)) {
		a->overflow = 1;
		return 0;
	}
	memcpy(a->body + a->n, ptr, n);
	a->n += n;
	a->body[a->n] = 0;
	return n;
}

static size_t on_header(char *ptr, size_t sz, size_t nm, void *arg)
{
	struct answer *a = arg;
	size_t n = sz * nm;
	static const char want[] = "metadata-flavor: google";
	if (n >= sizeof(want) - 1 && !strncasecmp(ptr, want, sizeof(want) - 1))
		a->flavor = 1;
	return n;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct gcp_project *p = arg;
	(void)dt, (void)dn, (void)ut, (void)un;
	return atomic_load(&p->stop);	/* nonzero aborts the transfer */
}

static int valid_id(const char *s, size_t n)
{
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == ':'))
			return 0;
	}
	return 1;
}

static void *lookup(void *arg)
{
	struct gcp_project *p = arg;
	struct answer a = { .n = 0 };
	struct curl_slist *h = NULL;
	long code = 0;
	CURL *c = curl_easy_init();
	CURLcode cr = CURLE_OUT_OF_MEMORY;

	if (!c || !(h = curl_slist_append(NULL, "Metadata-Flavor: Google")))
		goto out;
	curl_easy_setopt(c, CURLOPT_URL, p->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &a);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, p);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 500L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROXY, "");	/* the metadata server is never behind a proxy */
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	cr = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
out:
	curl_slist_free_all(h);
	if (c)
		curl_easy_cleanup(c);
	while (a.n && (a.body[a.n - 1] == '\n' || a.body[a.n - 1] == '\r' || a.body[a.n - 1] == ' '))
		a.body[--a.n] = 0;
	if (cr == CURLE_OK && code == 200 && a.flavor && !a.overflow && valid_id(a.body, a.n)) {
		memcpy(p->id, a.body, a.n + 1);
		atomic_store(&p->known, 1);
		log_info("logging: project '%s' from the metadata server: access logs carry trace fields", p->id);
	} else {
		log_debug("logging: no project id from %s (%s, http %ld%s): access logs carry no trace field; "
			  "set GOOGLE_CLOUD_PROJECT to name one", p->url,
			  cr == CURLE_OK ? "answered" : curl_easy_strerror(cr), code,
			  cr == CURLE_OK && code == 200 && !a.flavor ? ", no Metadata-Flavor: Google" : "");
	}
	return NULL;
}

int gcp_project_create(struct gcp_project **out)
{
	struct gcp_project *p = calloc(1, sizeof(*p));
	const char *env = getenv("GOOGLE_CLOUD_PROJECT"), *host = getenv("GCE_METADATA_HOST");

	*out = NULL;
	if (!p)
		return ST_ENOMEM;
	if (env && *env) {
		snprintf(p->id, sizeof(p->id), "%s", env);
		atomic_store(&p->known, 1);
		*out = p;
		return 0;
	}
	if (!host || !*host)
		host = "metadata.google.internal";
	snprintf(p->url, sizeof(p->url), "http://%.400s/computeMetadata/v1/project/project-id", host);
	curl_global_init(CURL_GLOBAL_DEFAULT);	/* counted; undone in gcp_project_destroy */
	p->curl_init = 1;
	if (pthread_create(&p->thread, NULL, lookup, p) == 0)
		p->have_thread = 1;
	else
		log_debug("logging: cannot start the project id lookup: no trace fields");
	*out = p;
	return 0;
}

void gcp_project_destroy(struct gcp_project *p)
{
	if (!p)
		return;
	atomic_store(&p->stop, 1);
	if (p->have_thread)
		pthread_join(p->thread, NULL);
	if (p->curl_init)
		curl_global_cleanup();
	free(p);
}

const char *gcp_project_get(const struct gcp_project *p)
{
	return p && atomic_load(&((struct gcp_project *)p)->known) ? p->id : NULL;
}
