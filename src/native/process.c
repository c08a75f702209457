/* The process steps: hooks, kernel settings, credentials, capabilities, the executable and execve. */
#include "pocrun-init.h"
#include "generated/capabilities.h"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <net/if.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static char **vector(char *const *items, unsigned n)
{
	char **v = malloc((n + 1) * sizeof *v);
	if (!v)
		die(ENOMEM, "out of memory");
	memcpy(v, items, n * sizeof *v);
	v[n] = NULL;
	return v;
}

/* ---- hooks ---- */

void step_hook(const struct step *s)
{
	/* phase, timeout, path, argc, argv..., envc, env..., ref */
	unsigned argc = parse_u64(s->argv[4], 10, "argument count");
	if ((unsigned long)5 + argc + 2 > (unsigned long)s->argc)
		die(EINVAL, "hook %s: %u arguments announced, fewer given", s->argv[3], argc);
	unsigned envc = parse_u64(s->argv[5 + argc], 10, "environment count");
	if ((unsigned long)5 + argc + 1 + envc + 1 != (unsigned long)s->argc)
		die(EINVAL, "hook %s: %u arguments and %u variables announced, %d fields given", s->argv[3], argc, envc,
		    s->argc - 1);
	if (G.nhooks == G.caphooks) {
		G.caphooks = G.caphooks ? G.caphooks * 2 : 8;
		if (!(G.hooks = realloc(G.hooks, G.caphooks * sizeof *G.hooks)))
			die(ENOMEM, "out of memory");
	}
	struct hook *h = &G.hooks[G.nhooks++];
	h->phase = s->argv[1];
	h->timeout = parse_u64(s->argv[2], 10, "timeout");
	h->path = s->argv[3];
	h->argv = argc ? vector(&s->argv[5], argc) : vector((char *const *)&s->argv[3], 1);
	h->envp = vector(&s->argv[6 + argc], envc);
	h->ref = s->ref;
}

static int above_stdio(int fd)
{
	if (fd < 0 || fd > 2)
		return fd;
	int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return moved;
}

static void run_hook(const struct hook *h)
{
	const char *state = G.state ? G.state : "";
	int in = above_stdio(memfd_create("hook-state", MFD_CLOEXEC));
	int out = above_stdio(memfd_create("hook-output", MFD_CLOEXEC));
	if (in < 0 || out < 0)
		die(errno, "hook %s: memfd_create: %s", h->path, strerror(errno));
	write_all(in, state, strlen(state), "write the state for the hook");
	lseek(in, 0, SEEK_SET);

	pid_t pid = fork();
	if (pid < 0)
		die(errno, "hook %s: fork: %s", h->path, strerror(errno));
	if (pid == 0) {
		reset_signals();
		if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(127);
		syscall(SYS_close_range, 3, ~0U, 0);
		execve(h->path, h->argv, h->envp);
		dprintf(2, "exec %s: %s", h->path, strerror(errno));
		_exit(127);
	}
	close(in);

	bool timed_out = false;
	if (h->timeout) {
		int pfd = syscall(SYS_pidfd_open, pid, 0);
		if (pfd < 0) {
			kill(pid, SIGKILL);
			die(errno, "hook %s: pidfd_open: %s", h->path, strerror(errno));
		}
		long long ms = (long long)h->timeout * 1000;
		struct pollfd pf = {.fd = pfd, .events = POLLIN};
		int r;
		do
			r = poll(&pf, 1, ms > INT_MAX ? INT_MAX : (int)ms);
		while (r < 0 && errno == EINTR);
		if (r == 0) {
			syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
			timed_out = true;
		}
		close(pfd);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die(errno, "hook %s: waitpid: %s", h->path, strerror(errno));

	if (!timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		close(out);
		return;
	}
	/* The end of what it printed says why. */
	char tail[513] = "";
	struct stat st;
	if (fstat(out, &st) == 0 && st.st_size > 0) {
		off_t from = st.st_size > 512 ? st.st_size - 512 : 0;
		ssize_t n = pread(out, tail, 512, from);
		tail[n > 0 ? n : 0] = 0;
		for (ssize_t i = n - 1; i >= 0 && (tail[i] == '\n' || tail[i] == ' ' || tail[i] == '\r'); i--)
			tail[i] = 0;
	}
	close(out);
	const char *sep = tail[0] ? ": " : "";
	if (timed_out)
		die(ETIMEDOUT, "hook %s: timed out after %us%s%s", h->path, h->timeout, sep, tail);
	if (WIFSIGNALED(status))
		die(0, "hook %s: killed by signal %d%s%s", h->path, WTERMSIG(status), sep, tail);
	die(0, "hook %s: exit status %d%s%s", h->path, WEXITSTATUS(status), sep, tail);
}

void step_run_hooks(const struct step *s)
{
	for (int i = 0; i < G.nhooks; i++) {
		if (strcmp(G.hooks[i].phase, s->argv[1]))
			continue;
		G.ref_override = G.hooks[i].ref;
		run_hook(&G.hooks[i]);
	}
	G.ref_override = NULL;
}

/* ---- kernel settings ---- */

void write_file(int dirfd, const char *path, const char *value, const char *what)
{
	int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		die(errno, "%s: open %s: %s", what, path, strerror(errno));
	size_t len = strlen(value);
	ssize_t n = write(fd, value, len);
	if (n < 0 || (size_t)n != len)
		die(n < 0 ? errno : EIO, "%s: write %s: %s", what, path, n < 0 ? strerror(errno) : "short write");
	close(fd);
}

void step_sysctl(const struct step *s)
{
	const char *key = s->argv[1], *value = s->argv[2];
	char what[4200], rel[PATH_MAX];
	snprintf(what, sizeof what, "sysctl %s=%s", key, value);
	if (snprintf(rel, sizeof rel, "%s", key) >= (int)sizeof rel)
		die(ENAMETOOLONG, "%s: %s", what, strerror(ENAMETOOLONG));
	/* "net.ipv4.ip_forward"; a key that has a '/' is already a path ("net/ipv4/conf/eth0.100/forwarding"). */
	if (!strchr(rel, '/'))
		for (char *c = rel; *c; c++)
			if (*c == '.')
				*c = '/';
	int dir = open("/proc/sys", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		die(errno, "%s: open /proc/sys: %s", what, strerror(errno));
	struct open_how how = {.flags = O_WRONLY | O_CLOEXEC, .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
	int fd = syscall(SYS_openat2, dir, rel, &how, sizeof how);
	if (fd < 0)
		die(errno, "%s: open /proc/sys/%s: %s", what, rel, strerror(errno));
	size_t len = strlen(value);
	ssize_t n = write(fd, value, len);
	if (n < 0 || (size_t)n != len)
		die(n < 0 ? errno : EIO, "%s: %s", what, n < 0 ? strerror(errno) : "short write");
	close(fd);
	close(dir);
}

/* A new network namespace has only lo, and it is down: bring it up, as runc and crun do (podman --network none). */
void step_loopback(const struct step *s)
{
	(void)s;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die(errno, "bring up lo: socket: %s", strerror(errno));
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		die(errno, "bring up lo: get its flags: %s", strerror(errno));
	if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			die(errno, "bring up lo: %s", strerror(errno));
	}
	close(fd);
}

void step_hostname(const struct step *s)
{
	if (sethostname(s->argv[1], strlen(s->argv[1])) < 0)
		die(errno, "sethostname %s: %s", s->argv[1], strerror(errno));
}

/* A session keyring of the container's own (runc's default; --no-new-keyring keeps the caller's): keys one
 * container adds are not seen by the next. */
void step_session_keyring(const struct step *s)
{
	if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, s->argv[1]) < 0)
		die(errno, "join a new session keyring %s: %s", s->argv[1], strerror(errno));
}

void step_domainname(const struct step *s)
{
	if (setdomainname(s->argv[1], strlen(s->argv[1])) < 0)
		die(errno, "setdomainname %s: %s", s->argv[1], strerror(errno));
}

void step_oom_score_adj(const struct step *s)
{
	parse_s64(s->argv[1], "oom_score_adj");
	write_file(AT_FDCWD, "/proc/self/oom_score_adj", s->argv[1], "set oom_score_adj");
}

static const char *const rlimit_names[] = {
	"RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
	"RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS", "RLIMIT_SIGPENDING",
	"RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
};

static rlim_t rlim(const char *s)
{
	return !strcmp(s, "-1") ? RLIM_INFINITY : (rlim_t)parse_u64(s, 10, "rlimit value");
}

void step_rlimit(const struct step *s)
{
	unsigned res = parse_u64(s->argv[1], 10, "rlimit resource");
	struct rlimit rl = {.rlim_cur = rlim(s->argv[2]), .rlim_max = rlim(s->argv[3])};
	char name[32];
	if (res < sizeof rlimit_names / sizeof *rlimit_names)
		snprintf(name, sizeof name, "%s", rlimit_names[res]);
	else
		snprintf(name, sizeof name, "rlimit %u", res);
	if (setrlimit(res, &rl) < 0)
		die(errno, "setrlimit %s (soft %s, hard %s): %s", name, s->argv[2], s->argv[3], strerror(errno));
}

void step_chdir(const struct step *s)
{
	char cwd[PATH_MAX];
	if (chdir(s->argv[1]) < 0)
		die(errno, "chdir %s: %s", s->argv[1], strerror(errno));
	/* A cwd outside the root (a leaked fd, CVE-2024-21626) reads "(unreachable)/..." or fails. */
	if (!getcwd(cwd, sizeof cwd))
		die(errno, "chdir %s: %s (getcwd: %s)", s->argv[1],
		    errno == ENOENT ? "the current directory is outside the container" : "cannot tell where it is",
		    strerror(errno));
	if (cwd[0] != '/')
		die(EPERM, "chdir %s: the current directory is outside the container (%s)", s->argv[1], cwd);
}

void step_umask(const struct step *s)
{
	umask(parse_u64(s->argv[1], 8, "umask") & 0777);
}

/* /proc/self/setgroups says "deny" (user_namespaces(7)). */
static bool setgroups_denied(void)
{
	char buf[8] = {0};
	int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	return n >= 4 && strncmp(buf, "deny", 4) == 0;
}

void step_groups(const struct step *s)
{
	int n = s->argc - 1;
	gid_t *gids = malloc((n ? n : 1) * sizeof *gids);
	if (!gids)
		die(ENOMEM, "out of memory");
	for (int i = 0; i < n; i++)
		gids[i] = (gid_t)parse_u64(s->argv[i + 1], 10, "gid");
	if (setgroups(n, gids) < 0) {
		/* A user namespace whose gid_map an unprivileged runtime wrote itself (one gid: the caller's) has
		 * setgroups denied, as the kernel requires; then the groups stay as they came, as runc leaves them. */
		if (errno == EPERM && setgroups_denied()) {
			if (n == 0)
				goto out;
			die(EPERM, "/process/user/additionalGids: setgroups is denied in this user namespace (its gid_map maps "
				   "only the rootless caller's own gid; additional groups need ranges in /etc/subgid, mapped "
				   "with newgidmap)");
		}
		die(errno, "setgroups (%d groups): %s", n, strerror(errno));
	}
out:
	free(gids);
}

void step_keep_caps(const struct step *s)
{
	(void)s;
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		die(errno, "prctl(PR_SET_KEEPCAPS): %s", strerror(errno));
}

void step_user(const struct step *s)
{
	uid_t uid = (uid_t)parse_u64(s->argv[1], 10, "uid");
	gid_t gid = (gid_t)parse_u64(s->argv[2], 10, "gid");
	if (setresgid(gid, gid, gid) < 0)
		die(errno, "setresgid %u: %s", (unsigned)gid, strerror(errno));
	if (setresuid(uid, uid, uid) < 0)
		die(errno, "setresuid %u: %s", (unsigned)uid, strerror(errno));
}

/* ---- capabilities (no libcap) ---- */

static const char *const cap_names[] = {CAPABILITY_NAMES};

static const char *cap_name(int c)
{
	static char buf[16];
	if (c < (int)(sizeof cap_names / sizeof *cap_names))
		return cap_names[c];
	snprintf(buf, sizeof buf, "cap %d", c);
	return buf;
}

static int last_cap(void)
{
	char buf[16] = "";
	int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n > 0) {
			buf[n] = 0;
			int v = atoi(buf);
			if (v > 0 && v < 64)
				return v;
		}
	}
	int c = 0; /* no /proc: probe the bounding set */
	while (c < 63 && prctl(PR_CAPBSET_READ, c + 1, 0, 0, 0) >= 0)
		c++;
	return c;
}

int set_capabilities(uint64_t eff, uint64_t prm, uint64_t inh)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2] = {
		{(uint32_t)eff, (uint32_t)prm, (uint32_t)inh},
		{(uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32)},
	};
	return syscall(SYS_capset, &hdr, d);
}

static void capset_(uint64_t eff, uint64_t prm, uint64_t inh)
{
	if (set_capabilities(eff, prm, inh) < 0)
		die(errno, "capset (effective %llx, permitted %llx, inheritable %llx): %s", (unsigned long long)eff,
		    (unsigned long long)prm, (unsigned long long)inh, strerror(errno));
}

void step_caps(const struct step *s)
{
	int last = last_cap();
	uint64_t valid = last >= 63 ? ~0ULL : (1ULL << (last + 1)) - 1;
	uint64_t bnd = parse_u64(s->argv[1], 16, "capability mask") & valid;
	uint64_t eff = parse_u64(s->argv[2], 16, "capability mask") & valid;
	uint64_t prm = parse_u64(s->argv[3], 16, "capability mask") & valid;
	uint64_t inh = parse_u64(s->argv[4], 16, "capability mask") & valid;
	uint64_t amb = parse_u64(s->argv[5], 16, "capability mask") & valid;

	/* After `user` with keep-caps the effective set is empty: raise it to the permitted set, since dropping
	 * from the bounding set needs CAP_SETPCAP. */
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &hdr, d) < 0)
		die(errno, "capget: %s", strerror(errno));
	uint64_t now_prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	uint64_t now_inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
	capset_(now_prm, now_prm, now_inh);

	for (int c = 0; c <= last; c++)
		if (!(bnd >> c & 1) && prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1 && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
			die(errno, "drop %s from the bounding set: %s", cap_name(c), strerror(errno));
	capset_(eff, prm, inh);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && amb)
		die(errno, "clear the ambient set: %s", strerror(errno));
	for (int c = 0; c <= last; c++)
		if (amb >> c & 1 && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
			die(errno, "raise ambient %s: %s%s", cap_name(c), strerror(errno),
			    (prm & inh) >> c & 1 ? "" : " (an ambient capability must be permitted and inheritable)");
}

void step_no_new_privs(const struct step *s)
{
	(void)s;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die(errno, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
}

/* ---- scheduling, I/O priority, personality, LSM labels ---- */

struct sched_attr_ {
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
	uint32_t sched_util_min, sched_util_max;
};

static const char *const policy_names[] = {"SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO",
					   "SCHED_IDLE", "SCHED_DEADLINE"};

void step_scheduler(const struct step *s)
{
	/* policy, nice, priority, flags, runtime, deadline, period, ref */
	struct sched_attr_ a = {
		.size = sizeof a,
		.sched_policy = (uint32_t)parse_u64(s->argv[1], 10, "policy"),
		.sched_nice = (int32_t)parse_s64(s->argv[2], "nice"),
		.sched_priority = (uint32_t)parse_u64(s->argv[3], 10, "priority"),
		.sched_flags = parse_u64(s->argv[4], 10, "flags"),
		.sched_runtime = parse_u64(s->argv[5], 10, "runtime"),
		.sched_deadline = parse_u64(s->argv[6], 10, "deadline"),
		.sched_period = parse_u64(s->argv[7], 10, "period"),
	};
	if (syscall(SYS_sched_setattr, 0, &a, 0) < 0) {
		int err = errno;
		const char *policy = a.sched_policy < sizeof policy_names / sizeof *policy_names ? policy_names[a.sched_policy] : "?";
		die(err, "sched_setattr %s (nice %d, priority %u): %s%s", policy, a.sched_nice, a.sched_priority, strerror(err),
		    err == EPERM && (a.sched_policy == 1 || a.sched_policy == 2 || a.sched_policy == 6)
			    ? " (a realtime or deadline policy needs CPU time for realtime tasks in the container's cgroup: "
			      "linux.resources.cpu.realtimeRuntime on cgroup v1)"
			    : "");
	}
}

void step_ioprio(const struct step *s)
{
	/* class, priority, ref: IOPRIO_PRIO_VALUE(class, data) = class << 13 | data */
	unsigned cls = parse_u64(s->argv[1], 10, "class"), prio = parse_u64(s->argv[2], 10, "priority");
	if (syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, (int)(cls << 13 | prio)) < 0)
		die(errno, "ioprio_set class %u priority %u: %s", cls, prio, strerror(errno));
}

void step_personality(const struct step *s)
{
	unsigned long v = parse_u64(s->argv[1], 10, "personality");
	if (syscall(SYS_personality, v) < 0)
		die(errno, "personality 0x%lx: %s", v, strerror(errno));
}

#define MASK_WORDS (1024 / (8 * sizeof(unsigned long)))
#define WORD_BITS (8 * sizeof(unsigned long))

/* A plain decimal list ("0,1,7", checked by the runtime) as the kernel's node and CPU masks read it: bit n in
 * word n / WORD_BITS. Returns whether any bit is set. */
static bool list_to_mask(const char *text, unsigned long mask[MASK_WORDS], const char *what)
{
	char list[8192];
	bool any = false;
	memset(mask, 0, MASK_WORDS * sizeof *mask);
	snprintf(list, sizeof list, "%s", text);
	for (char *save = NULL, *n = strtok_r(list, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
		unsigned long bit = parse_u64(n, 10, what);
		if (bit >= MASK_WORDS * WORD_BITS)
			die(EINVAL, "%s %lu: at most %zu", what, bit, MASK_WORDS * WORD_BITS);
		mask[bit / WORD_BITS] |= 1UL << (bit % WORD_BITS);
		any = true;
	}
	return any;
}

/* set_mempolicy(2): kept across fork and execve. */
void step_mempolicy(const struct step *s)
{
	/* mode (with its MPOL_F_* flags), nodes ("0,1,7", may be empty), ref */
	unsigned long mode = parse_u64(s->argv[1], 10, "memory policy mode");
	unsigned long mask[MASK_WORDS];
	bool any = list_to_mask(s->argv[2], mask, "memory node");
	/* maxnode counts one more than the mask's bits: the kernel reads maxnode - 1 of them. */
	if (syscall(SYS_set_mempolicy, mode, any ? mask : NULL, any ? MASK_WORDS * WORD_BITS + 1 : 0) < 0)
		die(errno, "set_mempolicy (mode %#lx, nodes %s): %s%s", mode, any ? s->argv[2] : "none", strerror(errno),
		    errno == EINVAL && any ? " (does this host have those memory nodes?)" : "");
}

/* sched_setaffinity(2) of this process (exec's execCPUAffinity). */
void step_affinity(const struct step *s)
{
	/* cpus, ref */
	unsigned long mask[MASK_WORDS];
	list_to_mask(s->argv[1], mask, "CPU");
	if (syscall(SYS_sched_setaffinity, 0, sizeof mask, mask) < 0)
		die(errno, "sched_setaffinity (CPUs %s): %s%s", s->argv[1], strerror(errno),
		    errno == EINVAL ? " (none of them is online, or allowed by the cgroup's cpuset)" : "");
}

/* Both take effect at execve. */
void step_apparmor(const struct step *s)
{
	char buf[4200];
	int n = snprintf(buf, sizeof buf, "exec %s", s->argv[1]);
	if (n >= (int)sizeof buf)
		die(ENAMETOOLONG, "AppArmor profile name too long");
	int fd = open("/proc/self/attr/apparmor/exec", O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		fd = open("/proc/self/attr/exec", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, n) != n)
		die(errno, "apply AppArmor profile %s: %s", s->argv[1], strerror(errno));
	close(fd);
}

void step_selinux(const struct step *s)
{
	write_file(AT_FDCWD, "/proc/self/attr/exec", s->argv[1], "apply SELinux label");
}

/* ---- the executable ---- */

static void env_append(char *kv)
{
	if (G.nenv + 2 > G.capenv) {
		G.capenv = G.capenv ? G.capenv * 2 : 32;
		if (!(G.env = realloc(G.env, G.capenv * sizeof *G.env)))
			die(ENOMEM, "out of memory");
	}
	G.env[G.nenv++] = kv;
	G.env[G.nenv] = NULL;
}

void step_env(const struct step *s)
{
	env_append(s->argv[1]);
}

/*
 * runc's rule: a process whose environment has no HOME gets its user's home from the container's /etc/passwd,
 * or "/". The file is read by hand: glibc's getpwuid could load NSS modules, and this runs inside the container.
 */
static void default_home(void)
{
	for (int i = 0; i < G.nenv; i++)
		if (!strncmp(G.env[i], "HOME=", 5))
			return;
	char line[4096], *home = NULL;
	FILE *f = fopen("/etc/passwd", "re");
	while (f && !home && fgets(line, sizeof line, f)) {
		/* name:password:uid:gid:gecos:home:shell */
		line[strcspn(line, "\n")] = 0;
		char *field[7] = {0}, *p = line;
		int n = 0;
		for (; n < 7 && p; n++) {
			field[n] = p;
			if ((p = strchr(p, ':')))
				*p++ = 0;
		}
		char *end;
		if (n >= 6 && *field[2] && strtoul(field[2], &end, 10) == (unsigned long)getuid() && *end == 0 && *field[5])
			home = field[5];
	}
	char *kv;
	if (asprintf(&kv, "HOME=%s", home ? home : "/") < 0)
		die(ENOMEM, "out of memory");
	if (f)
		fclose(f);
	env_append(kv);
}

/* 0 when path is an executable file for us, else the errno (as Go's exec.LookPath judges it). */
static int executable(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return errno;
	if (S_ISDIR(st.st_mode))
		return EISDIR;
	if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) < 0)
		return errno;
	return 0;
}

void step_exec(const struct step *s)
{
	unsigned n = parse_u64(s->argv[1], 10, "argument count");
	if (n == 0 || (unsigned long)n + 3 != (unsigned long)s->argc)
		die(EINVAL, "exec: %u arguments announced, %d given", n, s->argc - 3);
	G.exec_argv = vector(&s->argv[2], n);
	default_home();
	const char *name = G.exec_argv[0];
	if (strchr(name, '/')) {
		int err = executable(name);
		if (err)
			die(err, "exec: \"%s\": %s", name, strerror(err));
		G.exec_path = (char *)name;
		return;
	}
	const char *path = DEFAULT_PATH;
	for (int i = 0; i < G.nenv; i++)
		if (!strncmp(G.env[i], "PATH=", 5))
			path = G.env[i] + 5;
	if (*name) {
		for (const char *dir = path;;) {
			size_t len = strcspn(dir, ":");
			char *cand;
			if (asprintf(&cand, "%.*s/%s", (int)len, len ? dir : ".", name) < 0)
				die(ENOMEM, "out of memory");
			if (!executable(cand)) {
				G.exec_path = cand;
				return;
			}
			free(cand);
			if (!dir[len])
				break;
			dir += len + 1;
		}
	}
	die(ENOENT, "exec: \"%s\": executable file not found in $PATH", name);
}

void step_execve(const struct step *s)
{
	(void)s;
	static char *no_env[] = {NULL};
	if (!G.exec_path)
		die(EINVAL, "no exec step before execve");
	if (!G.signals_reset)
		reset_signals();
	execve(G.exec_path, G.exec_argv, G.env ? G.env : no_env);
	int err = errno;
	signal(SIGPIPE, SIG_IGN);
	die(err, "exec \"%s\": %s", G.exec_argv[0], strerror(err));
}
