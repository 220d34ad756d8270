/*
 * url.c - percent-encoding of object names for the http(s) and gcs
 * sources (see url.h). Pure string code: no I/O, no libcurl.
 */
#include "loader/url.h"

#include "common/status.h"

int ld_url_encode(const char *name, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t j = 0;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
		if (j + (plain ? 1 : 3) >= cap)
			return ST_ERANGE;
		if (plain) {
			out[j++] = (char)*p;
		} else {
			out[j++] = '%';
			out[j++] = hex[*p >> 4];
			out[j++] = hex[*p & 15];
		}
	}
	out[j] = 0;
	return 0;
}
