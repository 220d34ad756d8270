/*
 * test_cpu_mem.c - the CPU backend's memory figures (kernels/cpu/cpu_backend.c,
 * issue 17): MemAvailable, not MemFree (page cache is reclaimable), capped
 * by a cgroup v2 limit where memory.max is set, from fixture files.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/status.h"
#include "kernels/cpu/cpu.h"
#include "tests/harness.h"

/* A machine with 16 GiB, 1 GiB free, 10 GiB available (most of it page cache). */
static const char *meminfo =
	"MemTotal:       16777216 kB\n"
	"MemFree:         1048576 kB\n"
	"MemAvailable:   10485760 kB\n"
	"Buffers:          102400 kB\n"
	"Cached:          9000000 kB\n";

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_meminfo_parse_takes_memavailable(void)
{
	size_t total = 0, avail = 0;
	CHECK(cpu_meminfo_parse(meminfo, &total, &avail) == 0, "parse");
	CHECK(total == (size_t)16 << 30, "total %zu", total);
	CHECK(avail == (size_t)10 << 30, "available %zu is not MemAvailable (MemFree is 1 GiB)", avail);
	/* an old kernel without MemAvailable: MemFree */
	CHECK(cpu_meminfo_parse("MemTotal: 2048 kB\nMemFree: 1024 kB\n", &total, &avail) == 0 &&
	      avail == 1024 * 1024, "MemFree fallback %zu", avail);
	CHECK(cpu_meminfo_parse("MemFree: 1024 kB\n", &total, &avail) < 0, "no MemTotal accepted");
	CHECK(cpu_meminfo_parse("MemTotal: x kB\nMemAvailable: 1 kB\n", &total, &avail) < 0, "garbage accepted");
	/* a key that only ends like another is not it */
	CHECK(cpu_meminfo_parse("XMemTotal: 9 kB\nMemTotal: 4 kB\nMemAvailable: 2 kB\n", &total, &avail) == 0 &&
	      total == 4096 && avail == 2048, "prefix match: total %zu", total);
}

static void test_cgroup_max_parse(void)
{
	size_t v = 0;
	CHECK(cpu_cgroup_max_parse("max\n", &v) == 1, "max is no limit");
	CHECK(cpu_cgroup_max_parse("4294967296\n", &v) == 0 && v == (size_t)4 << 30, "limit %zu", v);
	CHECK(cpu_cgroup_max_parse("", &v) < 0 && cpu_cgroup_max_parse("12k\n", &v) < 0 &&
	      cpu_cgroup_max_parse("-1\n", &v) < 0, "garbage accepted");
}

static void test_read_caps_by_cgroup(void)
{
	char dir[] = "/tmp/gr-cpumem-XXXXXX", p[256], how[256];
	size_t fr = 0, tot = 0;
	if (!mkdtemp(dir)) {
		CHECK(0, "mkdtemp");
		return;
	}
	snprintf(p, sizeof(p), "%s/meminfo", dir);
	put(p, meminfo);
	/* no cgroup files: the host figures */
	CHECK(cpu_mem_read(p, dir, &fr, &tot, how, sizeof(how)) == 0 && fr == (size_t)10 << 30 &&
	      tot == (size_t)16 << 30, "no cgroup: free %zu total %zu", fr, tot);
	CHECK(cpu_mem_read(p, NULL, &fr, &tot, how, sizeof(how)) == 0 && fr == (size_t)10 << 30, "NULL cg_dir");
	/* memory.max "max": no cap */
	snprintf(p, sizeof(p), "%s/memory.max", dir);
	put(p, "max\n");
	snprintf(p, sizeof(p), "%s/meminfo", dir);
	CHECK(cpu_mem_read(p, dir, &fr, &tot, how, sizeof(how)) == 0 && fr == (size_t)10 << 30, "max: %zu", fr);
	/* an 8 GiB container that uses 3 GiB: 5 GiB free, 8 GiB total */
	snprintf(p, sizeof(p), "%s/memory.max", dir);
	put(p, "8589934592\n");
	snprintf(p, sizeof(p), "%s/memory.current", dir);
	put(p, "3221225472\n");
	snprintf(p, sizeof(p), "%s/meminfo", dir);
	CHECK(cpu_mem_read(p, dir, &fr, &tot, how, sizeof(how)) == 0 && fr == (size_t)5 << 30 &&
	      tot == (size_t)8 << 30, "cgroup cap: free %zu total %zu", fr, tot);
	CHECK(strstr(how, "memory.max 8192 MiB") != NULL, "how: %s", how);
	/* a generous limit does not raise the figure above MemAvailable */
	snprintf(p, sizeof(p), "%s/memory.max", dir);
	put(p, "68719476736\n");
	snprintf(p, sizeof(p), "%s/meminfo", dir);
	CHECK(cpu_mem_read(p, dir, &fr, &tot, how, sizeof(how)) == 0 && fr == (size_t)10 << 30 &&
	      tot == (size_t)16 << 30, "big limit: free %zu total %zu", fr, tot);
	/* a missing meminfo is an error, not a zero */
	snprintf(p, sizeof(p), "%s/none", dir);
	log_setup(stderr, 0, LOG_ERROR + 1);
	CHECK(cpu_mem_read(p, dir, &fr, &tot, how, sizeof(how)) < 0, "missing meminfo accepted");
	log_setup(stderr, 0, LOG_INFO);
	const char *files[] = { "meminfo", "memory.max", "memory.current" };
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
}

/* The live figure on this machine is MemAvailable (capped), never MemFree alone. */
static void test_live_is_memavailable(void)
{
	size_t fr = 0, tot = 0, t2 = 0, avail = 0;
	char text[8192];
	FILE *f = fopen("/proc/meminfo", "r");
	size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
	if (f)
		fclose(f);
	text[n] = 0;
	CHECK(cpu_meminfo_parse(text, &t2, &avail) == 0, "/proc/meminfo unreadable");
	CHECK(cpu_mem_info(NULL, &fr, &tot) == 0, "cpu_mem_info");
	CHECK(tot <= t2 && tot > 0, "total %zu, MemTotal %zu", tot, t2);
	/* MemAvailable moves between the two reads: within 2% + 64 MiB */
	CHECK(fr <= avail + avail / 50 + (64u << 20), "free %zu above MemAvailable %zu", fr, avail);
	/* without a cgroup limit it is MemAvailable, not the smaller MemFree */
	char lim[64] = "max";
	if ((f = fopen("/sys/fs/cgroup/memory.max", "r"))) {
		if (!fgets(lim, sizeof(lim), f))
			strcpy(lim, "max");
		fclose(f);
	}
	if (strncmp(lim, "max", 3) == 0)
		CHECK(fr + avail / 50 + (64u << 20) >= avail, "free %zu well below MemAvailable %zu (MemFree?)", fr,
		      avail);
}

int main(void)
{
	log_setup(stderr, 0, LOG_INFO);
	RUN(test_meminfo_parse_takes_memavailable);
	RUN(test_cgroup_max_parse);
	RUN(test_read_caps_by_cgroup);
	RUN(test_live_is_memavailable);
	return th_done();
}
