/* backend.c - choosing and creating a backend by name; see backend.h. */
#include "kernels/backend.h"

#include <string.h>

#include "common/log.h"
#include "common/status.h"

int be_create(const char *name, const struct be_opts *opts, struct be *out)
{
	int rc;

	out->ops = NULL;
	out->ctx = NULL;
	if (!name || strcmp(name, "auto") == 0) {
#ifdef GR_HAVE_CUDA
		if (be_cuda_ops.create(opts, &out->ctx) == 0) {
			out->ops = &be_cuda_ops;
			log_info("backend auto: using cuda");
			return 0;
		}
		log_info("backend auto: no usable CUDA device, using cpu");
#else
		log_info("backend auto: this build has no CUDA, using cpu");
#endif
		name = "cpu";
	}
	if (strcmp(name, "cpu") == 0) {
		out->ops = &be_cpu_ops;
	} else if (strcmp(name, "null") == 0) {
		out->ops = &be_null_ops;
	} else if (strcmp(name, "cuda") == 0) {
#ifdef GR_HAVE_CUDA
		out->ops = &be_cuda_ops;
#else
		return log_err(ST_ENOSYS, "backend cuda: this binary was built without CUDA (make CUDA=0 or no nvcc)");
#endif
	} else {
		return log_err(ST_EINVAL, "unknown backend '%s' (auto, cpu, cuda or null)", name);
	}
	if ((rc = out->ops->create(opts, &out->ctx)) < 0) {
		out->ops = NULL;
		return log_err(rc, "backend %s: cannot start (%s)", name, st_str(rc));
	}
	return 0;
}

void be_destroy(struct be *be)
{
	if (!be || !be->ops)
		return;
	be->ops->destroy(be->ctx);
	be->ops = NULL;
	be->ctx = NULL;
}
