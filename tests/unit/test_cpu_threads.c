/*
 * test_cpu_threads.c - the CPU backend's default thread count
 * (kernels/cpu/cpu_backend.c, issue 19): the online CPUs capped by the
 * cgroup CPU quota (v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us),
 * as Cloud Run gives a container its vCPUs, from fixture cgroup directories.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/status.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu.h"
#include "tests/harness.h"

static char dir[64];

static void put(const char *name, const char *text)
{
	char p[256];
	FILE *f;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void clear(void)
{
	static const char *const names[] = { "cpu.max", "cpu.cfs_quota_us", "cpu.cfs_period_us",
					      "cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us" };
	char p[256];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		unlink(p);
	}
}

static void test_quota_parse(void)
{
	long long q = 0, p = 0;
	CHECK(cpu_quota_parse("max 100000\n", &q, &p) == 1, "max is no limit");
	CHECK(cpu_quota_parse("800000 100000\n", &q, &p) == 0 && q == 800000 && p == 100000, "v2 %lld/%lld", q, p);
	CHECK(cpu_quota_parse("-1\n", &q, &p) == 1, "v1 -1 is no limit");
	CHECK(cpu_quota_parse("50000\n", &q, &p) == 0 && q == 50000 && p == 100000, "v1 default period");
	CHECK(cpu_quota_parse("", &q, &p) < 0 && cpu_quota_parse("8 cores\n", &q, &p) < 0 &&
	      cpu_quota_parse("0 100000\n", &q, &p) < 0 && cpu_quota_parse("100 0\n", &q, &p) < 0,
	      "garbage accepted");
}

static void test_threads_from_cgroup(void)
{
	char how[160];

	/* no files: the online count */
	CHECK(cpu_threads_read(dir, 16, how, sizeof(how)) == 16, "no quota: %s", how);
	CHECK(cpu_threads_read(NULL, 3, how, sizeof(how)) == 3, "no cgroup dir");
	/* v2: 8 vCPUs on a 64-core host (Cloud Run) */
	put("cpu.max", "800000 100000\n");
	CHECK(cpu_threads_read(dir, 64, how, sizeof(how)) == 8, "v2 quota 8: %s", how);
	CHECK(strstr(how, "800000/100000") != NULL, "how does not name the quota: %s", how);
	/* the quota never raises the count above the CPUs there are */
	CHECK(cpu_threads_read(dir, 4, how, sizeof(how)) == 4, "capped by online: %s", how);
	/* a fraction of a core rounds up; a sub-core quota still gets one thread */
	put("cpu.max", "150000 100000\n");
	CHECK(cpu_threads_read(dir, 64, how, sizeof(how)) == 2, "1.5 cores -> 2: %s", how);
	put("cpu.max", "20000 100000\n");
	CHECK(cpu_threads_read(dir, 64, how, sizeof(how)) == 1, "0.2 cores -> 1: %s", how);
	put("cpu.max", "max 100000\n");
	CHECK(cpu_threads_read(dir, 64, how, sizeof(how)) == 64, "max: %s", how);
	put("cpu.max", "garbage\n");
	CHECK(cpu_threads_read(dir, 12, how, sizeof(how)) == 12, "unparsable quota: online");
	clear();
	/* v1, in the cpu/ controller directory */
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/cpu", dir);
	mkdir(sub, 0700);
	put("cpu/cpu.cfs_quota_us", "400000\n");
	put("cpu/cpu.cfs_period_us", "100000\n");
	CHECK(cpu_threads_read(dir, 32, how, sizeof(how)) == 4, "v1 quota 4: %s", how);
	put("cpu/cpu.cfs_quota_us", "-1\n");
	CHECK(cpu_threads_read(dir, 32, how, sizeof(how)) == 32, "v1 no limit: %s", how);
	clear();
	rmdir(sub);
}

/* The backend takes the figure when --threads is 0, and --threads over it. */
static void test_create_uses_it(void)
{
	struct be be;
	struct be_opts o = { .n_threads = 3 };
	CHECK(be_create("cpu", &o, &be) == 0, "create");
	CHECK(((struct cpu_ctx *)be.ctx)->n_threads == 3, "--threads 3 not taken");
	be_destroy(&be);
	o.n_threads = 0;
	CHECK(be_create("cpu", &o, &be) == 0, "create");
	char how[160];
	int want = cpu_threads_read("/sys/fs/cgroup", (int)sysconf(_SC_NPROCESSORS_ONLN), how, sizeof(how));
	int got = ((struct cpu_ctx *)be.ctx)->n_threads;
	CHECK(got >= 1 && got <= want, "default %d threads, cgroup/online figure %d (%s)", got, want, how);
	be_destroy(&be);
}

int main(void)
{
	log_setup(stderr, 0, LOG_INFO);
	snprintf(dir, sizeof(dir), "/tmp/gr-cpu-threads-XXXXXX");
	if (!mkdtemp(dir)) {
		CHECK(0, "mkdtemp");
		return th_done();
	}
	RUN(test_quota_parse);
	RUN(test_threads_from_cgroup);
	RUN(test_create_uses_it);
	rmdir(dir);
	return th_done();
}
