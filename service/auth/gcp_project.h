/*
 * gcp_project.h - the Google Cloud project id for the access log's trace
 * field (gcp_project.c): GOOGLE_CLOUD_PROJECT when set, else asked once of
 * the metadata server (GCE_METADATA_HOST, else metadata.google.internal)
 * on a thread of its own, so a start outside Google Cloud is not delayed.
 * It lives in service/auth/ because that is where libcurl may be used.
 */
#ifndef GR_SERVICE_GCP_PROJECT_H
#define GR_SERVICE_GCP_PROJECT_H

struct gcp_project;

/* Starts the lookup; ST_ENOMEM only. Caller frees with gcp_project_destroy. */
int gcp_project_create(struct gcp_project **out);
/* Stops a lookup still under way (at most about a second) and frees p. */
void gcp_project_destroy(struct gcp_project *p);
/* The project id, or NULL while unknown or when there is none. Any thread. */
const char *gcp_project_get(const struct gcp_project *p);

#endif
