/* The cgroup v2 device filter: attaches the eBPF program the runtime compiled from linux.resources.devices
 * (src/cgroups/device-filter.ts, the one definition of its instructions; they come here as hex) to a cgroup
 * directory, in place of the programs attached there before. Plain bpf(2): the five commands used here are what
 * libbpf's bpf_prog_load/attach/detach/query would wrap, and linking libbpf (with libelf and zlib) would add
 * three shared libraries to every start of the helper.
 *
 * As runc and crun: query the programs attached, attach the new one with BPF_F_ALLOW_MULTI, then detach the old
 * ones. In between both run and an access must pass both, so a change never lets through what either denies. */
#include "pocrun-init.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LICENSE "Apache" /* as runc: a program of this type calls no GPL-only helper */
#define PROG_NAME "pocrun_devices" /* what `bpftool cgroup show` prints */

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

/* The program from its hex text: 16 digits (one struct bpf_insn) per instruction. */
static struct bpf_insn *decode_hex(const char *hex, size_t *count)
{
	size_t len = strlen(hex);
	if (len == 0 || len % (2 * sizeof(struct bpf_insn)) != 0)
		die(EINVAL, "the device filter is not whole instructions (%zu hex digits)", len);
	unsigned char *out = malloc(len / 2);
	if (!out)
		die(ENOMEM, "out of memory");
	for (size_t i = 0; i < len / 2; i++) {
		char byte[3] = {hex[2 * i], hex[2 * i + 1], 0}, *end;
		out[i] = (unsigned char)strtoul(byte, &end, 16);
		if (*end)
			die(EINVAL, "the device filter is not hex at %zu", 2 * i);
	}
	*count = len / 2 / sizeof(struct bpf_insn);
	return (struct bpf_insn *)out;
}

/* Before Linux 5.11 programs were charged to RLIMIT_MEMLOCK: raised to the hard limit for a second try, as crun
 * does. The helper's own limit; the container's rlimits are set later from the config. */
static bool raise_memlock(void)
{
	struct rlimit r;
	if (getrlimit(RLIMIT_MEMLOCK, &r) < 0 || r.rlim_cur == r.rlim_max)
		return false;
	r.rlim_cur = r.rlim_max;
	return setrlimit(RLIMIT_MEMLOCK, &r) == 0;
}

/* BPF_PROG_LOAD; on failure once more with the verifier's log, whose last lines go into the error. */
static int load_program(const struct bpf_insn *insns, size_t count)
{
	union bpf_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insns = (uint64_t)(uintptr_t)insns;
	attr.insn_cnt = (uint32_t)count;
	attr.license = (uint64_t)(uintptr_t)LICENSE;
	snprintf(attr.prog_name, sizeof attr.prog_name, "%s", PROG_NAME);
	int fd = sys_bpf(BPF_PROG_LOAD, &attr);
	if (fd < 0 && errno == EPERM && raise_memlock())
		fd = sys_bpf(BPF_PROG_LOAD, &attr);
	if (fd >= 0)
		return fd;
	int err = errno;
	static char log[64 * 1024];
	log[0] = 0;
	attr.log_level = 1;
	attr.log_size = sizeof log;
	attr.log_buf = (uint64_t)(uintptr_t)log;
	fd = sys_bpf(BPF_PROG_LOAD, &attr);
	if (fd >= 0)
		return fd;
	/* The verifier's last lines say why, joined by ";" so that the message stays one line. */
	size_t n = strlen(log);
	while (n > 0 && log[n - 1] == '\n')
		log[--n] = 0;
	char *tail = log + n;
	for (int lines = 0; tail > log; tail--)
		if (tail[-1] == '\n' && ++lines == 4)
			break;
	for (char *p = tail; *p; p++)
		if (*p == '\n')
			*p = ';';
	die(err, "load the device filter (BPF_PROG_LOAD): %s%s%s%s", strerror(err), *tail ? " (verifier: " : "", tail,
	    *tail ? ")" : "");
}

/* The ids of the device programs attached to the cgroup (the kernel allows 64 per cgroup and attach type). */
static uint32_t *query_programs(int dir_fd, uint32_t *count)
{
	for (uint32_t size = 64; size <= 4096; size *= 2) {
		uint32_t *ids = calloc(size, sizeof *ids);
		if (!ids)
			die(ENOMEM, "out of memory");
		union bpf_attr attr;
		memset(&attr, 0, sizeof attr);
		attr.query.target_fd = (uint32_t)dir_fd;
		attr.query.attach_type = BPF_CGROUP_DEVICE;
		attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
		attr.query.prog_cnt = size;
		if (sys_bpf(BPF_PROG_QUERY, &attr) == 0) {
			*count = attr.query.prog_cnt;
			return ids;
		}
		free(ids);
		if (errno != ENOSPC)
			die(errno, "list the device filters attached (BPF_PROG_QUERY): %s", strerror(errno));
	}
	die(ENOSPC, "list the device filters attached (BPF_PROG_QUERY): more than 4096");
}

/* Detaches the program `id`. One gone meanwhile is skipped, and so is one this process may not open (an LSM's),
 * as runc does: another device program can only deny more. */
static void detach_program(int dir_fd, uint32_t id)
{
	union bpf_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.prog_id = id;
	int fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
	if (fd < 0 && (errno == ENOENT || errno == EPERM || errno == EACCES))
		return;
	if (fd < 0)
		die(errno, "open the old device filter %u (BPF_PROG_GET_FD_BY_ID): %s", id, strerror(errno));
	memset(&attr, 0, sizeof attr);
	attr.target_fd = (uint32_t)dir_fd;
	attr.attach_bpf_fd = (uint32_t)fd;
	attr.attach_type = BPF_CGROUP_DEVICE;
	if (sys_bpf(BPF_PROG_DETACH, &attr) < 0 && errno != ENOENT)
		die(errno, "detach the old device filter %u (BPF_PROG_DETACH): %s", id, strerror(errno));
	close(fd);
}

static void install_device_filter(const char *dir, const char *hex)
{
	size_t count;
	struct bpf_insn *insns = decode_hex(hex, &count);
	int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		die(errno, "open %s: %s", dir, strerror(errno));
	uint32_t nold;
	uint32_t *old = query_programs(dir_fd, &nold);
	int prog = load_program(insns, count);
	union bpf_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.target_fd = (uint32_t)dir_fd;
	attr.attach_bpf_fd = (uint32_t)prog;
	attr.attach_type = BPF_CGROUP_DEVICE;
	attr.attach_flags = BPF_F_ALLOW_MULTI;
	if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0)
		die(errno, "attach the device filter to %s (BPF_PROG_ATTACH): %s", dir, strerror(errno));
	close(prog); /* the attachment holds the program */
	for (uint32_t i = 0; i < nold; i++)
		detach_program(dir_fd, old[i]);
	free(old);
	free(insns);
	close(dir_fd);
}

/* `device-filter DIR HEX ref`: at create, in the parent stage before any setns (attaching needs the host's
 * CAP_SYS_ADMIN). */
void step_device_filter(const struct step *s)
{
	install_device_filter(s->argv[1], s->argv[2]);
}

/* `pocrun-init --device-filter DIR HEX`, for update: the same, and exit 0; a failure is the `error` line of a
 * step on stdout (exit 1). */
static const struct step mode_step = {4, (char *[]){"device-filter", "", "", "/linux/resources/devices", NULL},
				      "/linux/resources/devices"};

int device_filter_mode(char *dir, char *hex)
{
	cur = &mode_step;
	G.sync_out = 1;
	install_device_filter(dir, hex);
	return 0;
}
