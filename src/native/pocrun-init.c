/*
 * pocrun-init: the container init helper of pocrun. It decodes the plan of src/plan/PROTOCOL.md and runs its
 * steps in order: the parent stage (join namespaces, cgroup, exec.fifo, console socket, clone), then, in the
 * clone'd child, everything that makes the container's init (mounts, devices, hooks, pivot_root, credentials)
 * up to execve. This file: entry, sealed re-exec, plan decoding, sync messages, the parent stage and the
 * create/start handshake. mounts.c: everything about the filesystem; process.c: credentials, hooks, exec.
 */
#include "pocrun-init.h"
#include "generated/signals.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef OVERLAYFS_SUPER_MAGIC
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#endif
#ifndef FSMOUNT_CLOEXEC
#define FSMOUNT_CLOEXEC 0x00000001
#endif

#define SEALED_ENV "_POCRUN_INIT_SEALED"
/* Bun.spawn's IPC channel (serialization "json"): the fd, and the variable that names the framing. */
#define CHANNEL_FD_ENV "NODE_CHANNEL_FD"
#define CHANNEL_MODE_ENV "NODE_CHANNEL_SERIALIZATION_MODE"

struct helper G = {
	.sync_out = -1, .sync_in = -1, .root_fd = -1, .state_dir_fd = -1, .fifo_fd = -1,
	.console_sock = -1, .null_fd = -1, .cgroup_fd = -1,
};
static const struct step init_step = {1, (char *[]){"init", NULL}, "-"};
static const struct step plan_step = {1, (char *[]){"plan", NULL}, "-"};
const struct step *cur = &init_step;

/* ---- small utilities ---- */

static void sanitize(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\t' || *s == '\r')
			*s = ' ';
}

/*
 * One message to the runtime, in one write(2) (lines from the parent stage and from the container init never
 * interleave). On Bun's IPC channel (sync-out given as `ipc`) each line is a JSON string: `"` `\\` and control
 * characters escaped, and every byte above 0x7f as \u00XX, so that any bytes arrive whole (the runtime reads the
 * string back as latin1 bytes). Returns the bytes written, -1 with errno on failure.
 */
static ssize_t send_line(const char *text, size_t n)
{
	static char buf[6 * 4096 + 4];
	size_t at = 0;
	if (n > 4095)
		n = 4095;
	if (G.sync_json) {
		static const char hex[] = "0123456789abcdef";
		buf[at++] = '"';
		for (size_t i = 0; i < n; i++) {
			unsigned char c = text[i];
			if (c == '"' || c == '\\') {
				buf[at++] = '\\';
				buf[at++] = c;
			} else if (c < 0x20 || c > 0x7e) {
				memcpy(buf + at, "\\u00", 4);
				buf[at + 4] = hex[c >> 4];
				buf[at + 5] = hex[c & 15];
				at += 6;
			} else {
				buf[at++] = c;
			}
		}
		buf[at++] = '"';
	} else {
		memcpy(buf, text, n);
		at = n;
	}
	buf[at++] = '\n';
	ssize_t w;
	do
		w = write(G.sync_out, buf, at);
	while (w < 0 && errno == EINTR);
	if (w >= 0 && (size_t)w != at) {
		errno = EIO;
		return -1;
	}
	return w;
}

void die(int err, const char *fmt, ...)
{
	char msg[3072], step[128], ref[512], line[4000];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(step, sizeof step, "%s", cur->argv[0]);
	snprintf(ref, sizeof ref, "%s", G.ref_override ? G.ref_override : cur->ref);
	sanitize(msg);
	sanitize(step);
	sanitize(ref);
	if (G.sync_out >= 0) {
		int n = snprintf(line, sizeof line, "error %s\t%s\t%d\t%s", step, ref, err, msg);
		if (n >= (int)sizeof line)
			n = sizeof line - 1;
		send_line(line, n); /* nobody to tell if it fails */
		_exit(1);
	}
	int n = snprintf(line, sizeof line, "pocrun-init: %s: %s\n", step, msg);
	if (n >= (int)sizeof line)
		n = sizeof line - 1;
	if (write(2, line, n) < 0) { /* nothing left */ }
	_exit(127);
}

unsigned long long parse_u64(const char *s, int base, const char *what)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		die(EINVAL, "invalid %s %s", what, *s ? s : "(empty)");
	unsigned long long v = strtoull(s, &end, base);
	if (errno || *end)
		die(EINVAL, "invalid %s %s", what, s);
	return v;
}

long long parse_s64(const char *s, const char *what)
{
	char *end;
	errno = 0;
	if (!*s || *s == ' ' || *s == '+')
		die(EINVAL, "invalid %s %s", what, *s ? s : "(empty)");
	long long v = strtoll(s, &end, 10);
	if (errno || *end)
		die(EINVAL, "invalid %s %s", what, s);
	return v;
}

const char *fdpath(char *buf, int fd)
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
	return buf;
}

void xclose(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void write_all(int fd, const char *buf, size_t len, const char *what)
{
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(errno, "%s: %s", what, strerror(errno));
		buf += n;
		len -= n;
	}
}

/* Default dispositions for every signal and an empty mask (before the container process or a hook runs). */
void reset_signals(void)
{
	struct sigaction sa = {.sa_handler = SIG_DFL};
	sigset_t none;
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL); /* EINVAL for the libc-reserved ones: fine */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* One line to the runtime, in one write(2). */
static void say(const char *fmt, ...)
{
	char line[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof line)
		n = sizeof line - 1;
	if (send_line(line, n) < 0)
		die(errno, "write to the runtime: %s", strerror(errno));
}

/* One reply line from the runtime (without '\n'), NULL at EOF. */
static char *read_line(void)
{
	static char *buf;
	static size_t len, cap, skip;
	if (skip) {
		memmove(buf, buf + skip, len - skip);
		len -= skip;
		skip = 0;
	}
	for (;;) {
		char *nl = len ? memchr(buf, '\n', len) : NULL;
		if (nl) {
			*nl = 0;
			skip = nl - buf + 1;
			return buf;
		}
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 16384;
			buf = realloc(buf, cap);
			if (!buf)
				die(ENOMEM, "out of memory");
		}
		ssize_t n = read(G.sync_in, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(errno, "read from the runtime: %s", strerror(errno));
		if (n == 0)
			return NULL;
		len += n;
	}
}

/* ---- sealed re-exec (CVE-2019-5736) ---- */

/*
 * The helper never runs from the host binary once it may meet the container: it re-executes itself from a copy
 * that nothing can write to, so that a process in the container that reaches it through /proc/<pid>/exe cannot
 * change dist/pocrun-init. Two ways, as runc's libcontainer/exeseal:
 *
 * - overlay: a private overlayfs made with fsopen/fsmount and never attached anywhere, whose only layers are
 *   read-only lower layers (the binary's directory, and /dev as the second layer that a lower-only overlay needs).
 *   There is no upper layer to write to and no mount to remount: a zero-copy, read-only view of the binary.
 * - memfd: a sealed memfd copy of the binary (page cache charged to the container's creator, ~1 MB: the helper is
 *   linked statically), when the kernel or the runtime's privileges do not allow the first (no overlayfs, no new
 *   mount API, not root).
 */

/* The binary through a private read-only overlayfs: an O_PATH fd, or -1. */
static int overlay_exe(void)
{
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (len <= 0 || (size_t)len >= sizeof exe - 1)
		return -1;
	exe[len] = 0;
	char *slash = strrchr(exe, '/');
	if (exe[0] != '/' || !slash || slash == exe || strstr(exe, " (deleted)"))
		return -1;
	*slash = 0;
	const char *dir = exe, *name = slash + 1;
	/* The binary's layer on top: a file of that name in the second layer cannot hide it. ':' and '\' separate
	 * and escape layers; a directory that holds them is left to the memfd. */
	if (strpbrk(dir, ":\\,") || !strncmp(dir, "/dev/", 5) || !strcmp(dir, "/dev"))
		return -1;
	char lower[PATH_MAX + 8];
	snprintf(lower, sizeof lower, "%s:/dev", dir);
	int ctx = syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
	if (ctx < 0)
		return -1;
	int mnt = -1, fd = -1;
	if (syscall(SYS_fsconfig, ctx, FSCONFIG_SET_STRING, "lowerdir", lower, 0) < 0)
		goto out;
	syscall(SYS_fsconfig, ctx, FSCONFIG_SET_STRING, "xino", "off", 0); /* optional: spares dmesg a warning */
	if (syscall(SYS_fsconfig, ctx, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		goto out;
	mnt = syscall(SYS_fsmount, ctx, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID);
	if (mnt < 0)
		goto out;
	fd = openat(mnt, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
out:
	if (mnt >= 0)
		close(mnt);
	close(ctx);
	return fd;
}

/* A sealed memfd copy of the binary. */
static int memfd_exe(void)
{
	int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (exe < 0)
		die(errno, "open /proc/self/exe: %s", strerror(errno));
	struct stat st;
	if (fstat(exe, &st) < 0)
		die(errno, "stat /proc/self/exe: %s", strerror(errno));
	int mfd = memfd_create("pocrun-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (mfd < 0 && errno == EINVAL)
		mfd = memfd_create("pocrun-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		die(errno, "memfd_create: %s", strerror(errno));
	for (off_t left = st.st_size; left > 0;) {
		ssize_t n = sendfile(mfd, exe, NULL, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die(n < 0 ? errno : EIO, "copy /proc/self/exe to a memfd: %s", n < 0 ? strerror(errno) : "short read");
		left -= n;
	}
	close(exe);
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
		die(errno, "seal the memfd: %s", strerror(errno));
	return mfd;
}

/* Whether /proc/self/exe is what the first stage made: a sealed memfd, or a file on a read-only overlayfs. */
static bool exe_is_sealed(const char *how)
{
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = false;
	if (!strcmp(how, "memfd")) {
		int seals = fcntl(fd, F_GET_SEALS);
		int want = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
		ok = seals >= 0 && (seals & want) == want;
	} else if (!strcmp(how, "overlay")) {
		struct statfs fs;
		ok = fstatfs(fd, &fs) == 0 && fs.f_type == OVERLAYFS_SUPER_MAGIC && (fs.f_flags & ST_RDONLY);
	}
	close(fd);
	return ok;
}

/*
 * `--new-userns` (a runtime that is not root: rootless): the container's user namespace is made here, before the
 * sealed re-exec, not by `clone`. The kernel gives a process's memory the user namespace its execve ran in
 * (mm->user_ns), and a non-dumpable process is reachable through /proc (its ns files, fds, exe) and ptrace only
 * with CAP_SYS_PTRACE over that namespace. Made in the host's, the waiting init would be out of its own user's
 * reach too (`exec` into a created container, `ps` by its pid namespace: they open the files in /proc/PID/ns). Made in the
 * container's, it is as root's: its owner, the user, reaches it (as root does in the host's namespace), and a
 * process in the container without CAP_SYS_PTRACE does not. The runtime writes the maps at `sync maps`, for this
 * process's pid; the re-exec then runs as the namespace's root.
 */
static const struct step userns_step = {2, (char *[]){"clone", "user", NULL}, "/linux/namespaces"};
static const struct step uid_map_step = {2, (char *[]){"clone", "user", NULL}, "/linux/uidMappings"};
static const struct step gid_map_step = {2, (char *[]){"clone", "user", NULL}, "/linux/gidMappings"};
static void enter_user_namespace(const char *uid_map, const char *gid_map)
{
	cur = &userns_step;
	if (unshare(CLONE_NEWUSER) < 0)
		die(errno, "unshare user namespace: %s", strerror(errno));
	if (uid_map) {
		/* `--own-maps`: each map is only our own id, which the kernel lets a process write for its own
		 * namespace (the gid after setgroups is denied), as `unshare -r` does: no round trip to the runtime. */
		cur = &uid_map_step;
		write_file(AT_FDCWD, "/proc/self/uid_map", uid_map, "write uid_map");
		cur = &gid_map_step;
		write_file(AT_FDCWD, "/proc/self/setgroups", "deny", "deny setgroups");
		write_file(AT_FDCWD, "/proc/self/gid_map", gid_map, "write gid_map");
		cur = &userns_step;
	} else {
		say("sync maps");
		char *reply = read_line();
		if (!reply || strcmp(reply, "ok"))
			_exit(1);
	}
	if (setresgid(0, 0, 0) < 0)
		die(errno, "setresgid 0 in the new user namespace: %s (is gid 0 mapped?)", strerror(errno));
	if (setresuid(0, 0, 0) < 0)
		die(errno, "setresuid 0 in the new user namespace: %s (is uid 0 mapped?)", strerror(errno));
	cur = &init_step;
}

static void sealed_reexec(char **argv)
{
	const char *how = getenv(SEALED_ENV);
	if (how) {
		char mode[16];
		snprintf(mode, sizeof mode, "%s", how);
		unsetenv(SEALED_ENV);
		if (!exe_is_sealed(mode))
			die(EPERM, "re-executed but /proc/self/exe is not a sealed copy (%s)", mode);
		return;
	}
	int fd = overlay_exe();
	setenv(SEALED_ENV, fd >= 0 ? "overlay" : "memfd", 1);
	if (fd < 0)
		fd = memfd_exe();
	extern char **environ;
	syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
	die(errno, "execute the sealed copy of the helper: %s", strerror(errno));
}

/* ---- the plan ---- */

/* One row of the table src/vocabulary/steps.ts defines (generated/step-table.h). */
struct stepdef {
	const char *name;
	int min, max; /* fields after the name; max -1 = any */
	int ref;      /* 1: the last field is the ref */
	void (*run)(const struct step *);
};

#include "generated/step-table.h"

struct planned {
	struct step step;
	const struct stepdef *def;
};

static char *read_plan(int fd, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (n == cap && buf)
			buf = realloc(buf, cap *= 2);
		if (!buf)
			die(ENOMEM, "out of memory");
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die(errno, "read the plan: %s", strerror(errno));
		if (r == 0)
			break;
		n += r;
	}
	*len = n;
	return buf;
}

static uint32_t le32(const unsigned char *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static struct planned *decode_plan(const unsigned char *buf, size_t len, int *count)
{
	/* Every field costs at least 4 bytes, so the strings fit in len + len/4 bytes with their NULs. */
	char *arena = malloc(len + len / 4 + 1);
	size_t cap = 64, at = 0;
	int n = 0;
	struct planned *steps = malloc(cap * sizeof *steps);
	if (!arena || !steps)
		die(ENOMEM, "out of memory");
	while (at < len) {
		if (len - at < 4)
			die(EINVAL, "step %d: truncated", n);
		uint32_t nf = le32(buf + at);
		at += 4;
		if (nf == 0 || nf > (len - at) / 4 + 1)
			die(EINVAL, "step %d: bad field count %u", n, nf);
		char **argv = malloc((nf + 1) * sizeof *argv);
		if (!argv)
			die(ENOMEM, "out of memory");
		for (uint32_t i = 0; i < nf; i++) {
			if (len - at < 4)
				die(EINVAL, "step %d: truncated", n);
			uint32_t fl = le32(buf + at);
			at += 4;
			if (fl > len - at)
				die(EINVAL, "step %d: field %u is truncated", n, i);
			if (memchr(buf + at, 0, fl))
				die(EINVAL, "step %d: field %u contains a NUL byte", n, i);
			memcpy(arena, buf + at, fl);
			arena[fl] = 0;
			argv[i] = arena;
			arena += fl + 1;
			at += fl;
		}
		argv[nf] = NULL;
		if ((size_t)n == cap && !(steps = realloc(steps, (cap *= 2) * sizeof *steps)))
			die(ENOMEM, "out of memory");
		const struct stepdef *def = NULL;
		for (size_t d = 0; d < sizeof stepdefs / sizeof *stepdefs; d++)
			if (!strcmp(stepdefs[d].name, argv[0]))
				def = &stepdefs[d];
		if (!def)
			die(EINVAL, "step %d: unknown step \"%s\"", n, argv[0]);
		int nargs = (int)nf - 1;
		if (nargs < def->min || (def->max >= 0 && nargs > def->max)) {
			char want[48];
			if (def->max < 0)
				snprintf(want, sizeof want, "at least %d", def->min);
			else if (def->max == def->min)
				snprintf(want, sizeof want, "%d", def->min);
			else
				snprintf(want, sizeof want, "%d to %d", def->min, def->max);
			die(EINVAL, "step %d (%s): %d fields, expected %s", n, argv[0], nargs, want);
		}
		const char *ref = "-";
		if (def->ref)
			ref = argv[nf - 1];
		steps[n].step = (struct step){(int)nf, argv, ref};
		steps[n].def = def;
		n++;
	}
	*count = n;
	return steps;
}

/* ---- parent stage ---- */

static const struct {
	const char *name;
	int flag;
} namespaces[] = {
	{"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS}, {"pid", CLONE_NEWPID}, {"net", CLONE_NEWNET},
	{"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
};

static int ns_flag(const char *name)
{
	for (size_t i = 0; i < sizeof namespaces / sizeof *namespaces; i++)
		if (!strcmp(namespaces[i].name, name))
			return namespaces[i].flag;
	die(EINVAL, "unknown namespace type \"%s\"", name);
}

void step_setns(const struct step *s)
{
	const char *path = s->argv[1], *type = s->argv[2];
	int flag = ns_flag(type);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(errno, "open %s namespace %s: %s", type, path, strerror(errno));
	if (setns(fd, flag) < 0)
		die(errno, "setns %s %s: %s", type, path, strerror(errno));
	close(fd);
	if (flag == CLONE_NEWUSER) {
		/* Become root of the joined user namespace (as runc does), so that what the container init creates
		 * belongs to it; the capabilities in it stay (we were not its root before). */
		if (setresgid(0, 0, 0) < 0)
			die(errno, "setresgid 0 in the user namespace %s: %s (is gid 0 mapped?)", path, strerror(errno));
		if (setresuid(0, 0, 0) < 0)
			die(errno, "setresuid 0 in the user namespace %s: %s (is uid 0 mapped?)", path, strerror(errno));
	}
}

void step_cgroup_join(const struct step *s)
{
	char pid[32];
	int fd = open(s->argv[1], O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		die(errno, "open %s: %s", s->argv[1], strerror(errno));
	int n = snprintf(pid, sizeof pid, "%d\n", getpid());
	if (write(fd, pid, n) != n)
		die(errno, "write %s: %s", s->argv[1], strerror(errno));
	close(fd);
}

void step_exec_fifo(const struct step *s)
{
	const char *dir = s->argv[1];
	uid_t uid = (uid_t)parse_s64(s->argv[2], "uid");
	gid_t gid = (gid_t)parse_s64(s->argv[3], "gid");
	xclose(&G.state_dir_fd);
	xclose(&G.fifo_fd);
	G.state_dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (G.state_dir_fd < 0)
		die(errno, "open %s: %s", dir, strerror(errno));
	mode_t old = umask(0);
	int r = mkfifoat(G.state_dir_fd, "exec.fifo", 0622);
	umask(old);
	if (r < 0)
		die(errno, "mkfifo %s/exec.fifo: %s", dir, strerror(errno));
	if (fchownat(G.state_dir_fd, "exec.fifo", uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		die(errno, "chown %s/exec.fifo: %s", dir, strerror(errno));
	G.fifo_fd = openat(G.state_dir_fd, "exec.fifo", O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (G.fifo_fd < 0)
		die(errno, "open %s/exec.fifo: %s", dir, strerror(errno));
}

void step_console_connect(const struct step *s)
{
	const char *path = s->argv[1];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char alias[sizeof sa.sun_path];
	int dirfd = -1;
	if (strlen(path) >= sizeof sa.sun_path) {
		/* Too long for sun_path: reach it through an fd of its directory. */
		const char *slash = strrchr(path, '/');
		char dir[4096];
		if (!slash || (size_t)(slash - path) >= sizeof dir || strlen(slash + 1) > 64)
			die(ENAMETOOLONG, "connect %s: %s", path, strerror(ENAMETOOLONG));
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
		dirfd = open(dir[0] ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dirfd < 0)
			die(errno, "open %s: %s", dir, strerror(errno));
		snprintf(alias, sizeof alias, "/proc/self/fd/%d/%s", dirfd, slash + 1);
		path = alias;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die(errno, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die(errno, "connect %s: %s", s->argv[1], strerror(errno));
	xclose(&dirfd);
	xclose(&G.console_sock);
	G.console_sock = fd;
}

void step_time_offset(const struct step *s)
{
	int clock;
	if (!strcmp(s->argv[1], "monotonic"))
		clock = 1; /* CLOCK_MONOTONIC */
	else if (!strcmp(s->argv[1], "boottime"))
		clock = 7; /* CLOCK_BOOTTIME */
	else
		die(EINVAL, "unknown clock \"%s\" (monotonic or boottime)", s->argv[1]);
	long long secs = parse_s64(s->argv[2], "seconds");
	unsigned long long nsecs = parse_u64(s->argv[3], 10, "nanoseconds");
	if (!G.time_unshared) {
		if (unshare(CLONE_NEWTIME) < 0)
			die(errno, "unshare time namespace: %s", strerror(errno));
		G.time_unshared = true;
	}
	char line[96];
	int n = snprintf(line, sizeof line, "%d %lld %llu\n", clock, secs, nsecs);
	int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		die(errno, "open /proc/self/timens_offsets: %s", strerror(errno));
	if (write(fd, line, n) != n)
		die(errno, "set the %s offset: %s", s->argv[1], strerror(errno));
	close(fd);
}

static const int forwarded[] = {FORWARDED_SIGNALS};

static __attribute__((noreturn)) void wait_for(pid_t child, const sigset_t *set)
{
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(set, &si);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		int status;
		pid_t r;
		while ((r = waitpid(-1, &status, WNOHANG)) > 0)
			if (r == child)
				_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	}
}

static int move_self(const char *procs);
static const struct step join_step;

/*
 * clone3 of the container's init. With a cgroup v2 directory (G.cgroup_fd), CLONE_INTO_CGROUP places the child
 * there as it is made: no write to cgroup.procs, no migration of a running process, and so none of the kernel's
 * waits that come with one (Linux 5.7+, as crun does). A new cgroup namespace made with it is rooted at the
 * target cgroup (the kernel's cgroup_post_fork), so the container sees its cgroup as /. A kernel without the
 * flag (ENOSYS; E2BIG: a clone_args larger than it knows; EINVAL: an unknown flag) gets the old way: this
 * process moves itself into the cgroup, and the child is born there.
 */
static pid_t clone_init(uint64_t flags)
{
	struct clone_args args = {.flags = flags, .exit_signal = SIGCHLD};
	if (G.cgroup_fd >= 0) {
		args.flags = flags | CLONE_INTO_CGROUP;
		args.cgroup = (uint64_t)G.cgroup_fd;
		pid_t pid = syscall(SYS_clone3, &args, sizeof args);
		if (pid >= 0 || (errno != ENOSYS && errno != E2BIG && errno != EINVAL))
			return pid;
		char procs[4200];
		snprintf(procs, sizeof procs, "%s/cgroup.procs", G.cgroup_dir);
		if (move_self(procs) < 0) {
			cur = &join_step;
			die(errno, "write %s: %s", procs, strerror(errno));
		}
		xclose(&G.cgroup_fd);
		args = (struct clone_args){.flags = flags, .exit_signal = SIGCHLD};
	}
	return syscall(SYS_clone3, &args, CLONE_ARGS_SIZE_VER0);
}

void step_clone(const struct step *s)
{
	const char *mode = s->argv[1];
	bool wait = !strcmp(mode, "wait");
	if (!wait && strcmp(mode, "detach") && strcmp(mode, "fork"))
		die(EINVAL, "unknown clone mode \"%s\" (detach, wait or fork)", mode);
	uint64_t flags = 0;
	char names[256] = "";
	for (int i = 2; i < s->argc; i++) {
		flags |= ns_flag(s->argv[i]);
		snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i > 2 ? " " : "", s->argv[i]);
	}
	if (G.time_unshared)
		flags &= ~(uint64_t)CLONE_NEWTIME; /* the child enters the one time-offset made */

	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
		sigaddset(&set, forwarded[i]);
	if (wait)
		sigprocmask(SIG_BLOCK, &set, &old);

	/* The child says nothing before the parent has written `pid`: it waits for EOF on this pipe, which comes
	 * when the parent closes its fds right after. */
	int gate[2];
	if (pipe2(gate, O_CLOEXEC) < 0)
		die(errno, "pipe: %s", strerror(errno));
	pid_t pid = clone_init(flags);
	if (pid < 0)
		die(errno, "clone%s%s: %s", names[0] ? " " : "", names, strerror(errno));
	if (pid == 0) {
		/* The container's init: continue with the next step, knowing its pid in the runtime's namespace. */
		pid_t host_pid = 0;
		ssize_t n;
		close(gate[1]);
		xclose(&G.cgroup_fd);
		while ((n = read(gate[0], &host_pid, sizeof host_pid)) < 0 && errno == EINTR)
			;
		G.host_pid = n == sizeof host_pid ? host_pid : 0;
		close(gate[0]);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		G.new_userns = flags & CLONE_NEWUSER;
		return;
	}
	xclose(&G.cgroup_fd);
	char line[64];
	int n = snprintf(line, sizeof line, "pid %d", pid);
	if (send_line(line, n) < 0) {
		int err = errno;
		kill(pid, SIGKILL);
		die(err, "write to the runtime: %s", strerror(err));
	}
	/* Keep nothing of the runtime's: only the child talks to it from now on. Closing the gate lets it go on
	 * (explicitly: with stdio closed, the pipe may have got fds below 3). The child learns its pid through it. */
	if (write(gate[1], &pid, sizeof pid) != sizeof pid) { /* the child then knows 0 */ }
	close(gate[0]);
	close(gate[1]);
	if (wait) {
		syscall(SYS_close_range, 3, ~0U, 0);
		wait_for(pid, &set);
	}
	/* detach, fork: Bun closes its IPC channel when this process exits, even though the child still writes to
	 * it; so on that channel this process stays until the runtime closed its end of the sync socket (it read
	 * `created`, or the end of the channel at the child's execve). Nothing else is kept. */
	int keep = G.sync_json ? G.sync_in : -1;
	if (keep >= 3) {
		syscall(SYS_close_range, 3, keep - 1, 0);
		syscall(SYS_close_range, keep + 1, ~0U, 0);
		struct pollfd p = {.fd = keep, .events = POLLRDHUP};
		while (poll(&p, 1, -1) < 0 && errno == EINTR)
			;
	} else {
		syscall(SYS_close_range, 3, ~0U, 0);
	}
	_exit(0);
}

/* ---- child stage: sync, create/start ---- */

void step_sync(const struct step *s)
{
	bool maps = !strcmp(s->argv[1], "maps") && G.new_userns;
	/* While the runtime writes the maps, as runc: dumpable, or /proc/PID/uid_map belongs to root and neither an
	 * unprivileged runtime nor newuidmap (which checks that the target is the caller's) may open it. */
	if (maps && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		die(errno, "prctl(PR_SET_DUMPABLE): %s", strerror(errno));
	say("sync %s", s->argv[1]);
	char *reply = read_line();
	if (maps && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		die(errno, "prctl(PR_SET_DUMPABLE): %s", strerror(errno));
	if (!reply || (strcmp(reply, "ok") && strncmp(reply, "ok ", 3)))
		_exit(1);
	if (reply[2]) {
		free(G.state);
		if (!(G.state = strdup(reply + 3)))
			die(ENOMEM, "out of memory");
	}
	if (maps) {
		/* Become root of the new user namespace, so that what the next steps create belongs to it. */
		if (setresgid(0, 0, 0) < 0)
			die(errno, "setresgid 0 in the new user namespace: %s (is gid 0 mapped?)", strerror(errno));
		if (setresuid(0, 0, 0) < 0)
			die(errno, "setresuid 0 in the new user namespace: %s (is uid 0 mapped?)", strerror(errno));
	}
}

void step_setsid(const struct step *s)
{
	(void)s;
	if (setsid() < 0)
		die(errno, "setsid: %s", strerror(errno));
}

void step_created(const struct step *s)
{
	(void)s;
	say("created");
	if (G.sync_in != G.sync_out)
		xclose(&G.sync_in);
	xclose(&G.sync_out);
	G.sync_in = -1;
}

void step_wait_start(const struct step *s)
{
	(void)s;
	char p[32];
	if (G.fifo_fd < 0)
		die(EINVAL, "no exec-fifo step before wait-start");
	/* Reopening the O_PATH fd needs no search permission on the state directory (the container's user may
	 * not have it); without a /proc in the container, fall back to the directory. */
	int fd;
	do
		fd = open(fdpath(p, G.fifo_fd), O_WRONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0 && errno == ENOENT && G.state_dir_fd >= 0) {
		do
			fd = openat(G.state_dir_fd, "exec.fifo", O_WRONLY | O_CLOEXEC);
		while (fd < 0 && errno == EINTR);
	}
	if (fd < 0)
		die(errno, "open exec.fifo: %s", strerror(errno));
	if (write(fd, "0", 1) != 1)
		die(errno, "write exec.fifo: %s", strerror(errno));
	/* Left open: it closes at the execve (O_CLOEXEC), and `pocrun start` reads to that EOF, so that it runs
	 * the poststart hooks only once the user's process runs (after the startContainer hooks). */
	(void)fd;
	xclose(&G.fifo_fd);
	xclose(&G.state_dir_fd);
}

void step_close_fds(const struct step *s)
{
	unsigned first = (unsigned)parse_u64(s->argv[1], 10, "fd number");
	if (first < 3)
		die(EINVAL, "close-fds %u: fds 0-2 are the container's stdio", first);
	if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		die(errno, "close_range: %s", strerror(errno));
}

/* ---- entry ---- */

static int fd_arg(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	return (errno || *end || !*s || v < 0 || v > INT_MAX) ? -1 : (int)v;
}

/* Writes our pid to a cgroup.procs file. */
static int move_self(const char *procs)
{
	char pid[32];
	int fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int n = snprintf(pid, sizeof pid, "%d\n", getpid());
	ssize_t w = write(fd, pid, n);
	int err = errno;
	close(fd);
	errno = err;
	return w == n ? 0 : -1;
}

static const struct step join_step = {2, (char *[]){"cgroup-join", "", NULL}, "/linux/cgroupsPath"};

/* `sync-out` is an fd number, or `ipc`: Bun's IPC channel, named by the environment. */
static int sync_out_arg(const char *s)
{
	if (strcmp(s, "ipc"))
		return fd_arg(s);
	const char *fd = getenv(CHANNEL_FD_ENV), *mode = getenv(CHANNEL_MODE_ENV);
	if (!fd || !mode || strcmp(mode, "json"))
		return -1;
	G.sync_json = true;
	return fd_arg(fd);
}

/* `pocrun-init --console-pair SOCKET`: the restore of a container with a terminal (src/runtime/checkpoint/
 * restore.ts). criu's command line cannot hand back a pty it makes, so the runtime makes one: a new pair on
 * the caller's /dev/ptmx. The slave's name is printed ("pts /dev/pts/N"); once the runtime has opened the slave
 * (to give criu in place of the checkpointed one) it closes our stdin, and the master goes to SOCKET as create
 * sends it: the engine never sees a pty without a slave. A failure is an `error` line, as the steps report. */
static int console_pair_mode(char *socket_path)
{
	/* Reported as create reports it: "connect console socket (config.json /process/terminal): ...". */
	const struct step connect_step = {2, (char *[]){"console-connect", socket_path, NULL}, "/process/terminal"};
	cur = &connect_step;
	G.sync_out = 1;
	step_console_connect(&connect_step);
	unsigned ptn;
	int master;
	close(console_pty(false, 0, 0, &ptn, &master));
	char line[64], go;
	int n = snprintf(line, sizeof line, "pts /dev/pts/%u", ptn);
	if (send_line(line, n) < 0)
		return 1;
	while (read(0, &go, 1) > 0) { /* until the runtime closes it */ }
	console_send_master(master, ptn);
	return 0;
}

/* `pocrun-init --criu-launch ROOTFS CRIU_ROOT [CGROUP_DIR FILTER] -- CRIU ARGS...`: how restore starts criu
 * (src/runtime/checkpoint/restore.ts), one exec where a shell took four (unshare, sh, mount, and the helper for
 * the device filter). In a mount namespace of its own whose mounts are slaves of the caller's (nothing propagates
 * back, and the rootfs's bind keeps the peer group that criu 3.17 copies to the restored root: from a private
 * mount MOVE_MOUNT_SET_GROUP fails with EINVAL), it attaches the container's device filter (cgroup v2, as the
 * `device-filter` step does at create), waits for the runtime's "go" on fd 3 (meanwhile the runtime moves it into
 * the container's cgroup, or starts the systemd scope with it, so that criu and what it forks are born there, as
 * runc applies the cgroup to criu), binds the rootfs on CRIU_ROOT (criu's --root must be a mount point; the
 * host's mount table never holds it) and becomes criu. A failure is an `error` line on fd 4, which closes at
 * the exec: the runtime reads it to its end. */
static int criu_launch_mode(int argc, char **argv)
{
	const struct step launch = {1, (char *[]){"criu-launch", NULL}, "-"};
	cur = &launch;
	G.sync_out = 4;
	if (fcntl(3, F_SETFD, FD_CLOEXEC) < 0 || fcntl(4, F_SETFD, FD_CLOEXEC) < 0)
		die(errno, "fds 3 and 4: %s", strerror(errno));
	int sep = 0;
	for (int i = 2; i < argc && !sep; i++)
		if (!strcmp(argv[i], "--"))
			sep = i;
	if ((sep != 4 && sep != 6) || sep + 1 >= argc)
		die(EINVAL, "usage: pocrun-init --criu-launch ROOTFS CRIU_ROOT [CGROUP_DIR FILTER] -- CRIU ARGS...");
	if (unshare(CLONE_NEWNS) < 0)
		die(errno, "unshare the mount namespace: %s", strerror(errno));
	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		die(errno, "make the mounts slaves of the host's: %s", strerror(errno));
	if (sep == 6) {
		const struct step filter = {4, (char *[]){"device-filter", argv[4], argv[5], "/linux/resources/devices", NULL},
					    "/linux/resources/devices"};
		cur = &filter;
		step_device_filter(&filter);
		cur = &launch;
	}
	char go[3];
	ssize_t n;
	do
		n = read(3, go, sizeof go);
	while (n < 0 && errno == EINTR);
	if (n != 3 || memcmp(go, "go\n", 3))
		_exit(1); /* the runtime gave up */
	close(3);
	const struct step root = {2, (char *[]){"rootfs", argv[2], NULL}, "/root/path"};
	cur = &root;
	if (mount(argv[2], argv[3], NULL, MS_BIND | MS_REC, NULL) < 0)
		die(errno, "bind %s on %s for criu: %s", argv[2], argv[3], strerror(errno));
	const struct step exec = {2, (char *[]){"exec", argv[sep + 1], NULL}, "-"};
	cur = &exec;
	execv(argv[sep + 1], argv + sep + 1);
	die(errno, "exec %s: %s", argv[sep + 1], strerror(errno));
}

/* `pocrun-init --wait-exit PID`: returns once PID has exited (a zombie counts), in poll on its pidfd. How restore
 * waits for a detached criu (src/runtime/checkpoint/restore.ts) in a blocking call: while Bun's event loop is
 * idle its GC timer collects every second, CPU taken from criu in a slow guest. 0 once gone, 1 on an error. */
static int wait_exit_mode(const char *arg)
{
	char *end;
	long pid = strtol(arg, &end, 10);
	if (*arg == '\0' || *end != '\0' || pid <= 0)
		return 1;
	int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (fd < 0)
		return errno == ESRCH ? 0 : 1;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int n;
	do
		n = poll(&p, 1, -1);
	while (n < 0 && errno == EINTR);
	return n == 1 ? 0 : 1;
}

int main(int argc, char **argv)
{
	int plan_fd;
	if (argc >= 2 && !strcmp(argv[1], "--seccomp-archs"))
		return print_known_seccomp_archs(argc - 2, argv + 2);
	/* The runtime's head start on the kernel's wait for a first cgroup move: a move of this process into the
	 * cgroup it is already in (src/cgroups/join.ts). Nothing of the container is involved. */
	if (argc == 3 && !strcmp(argv[1], "--cgroup-move"))
		return move_self(argv[2]) < 0;
	if (argc == 4 && !strcmp(argv[1], "--device-filter"))
		return device_filter_mode(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "--console-pair"))
		return console_pair_mode(argv[2]);
	if (argc >= 2 && !strcmp(argv[1], "--criu-launch"))
		return criu_launch_mode(argc, argv);
	if (argc == 3 && !strcmp(argv[1], "--wait-exit"))
		return wait_exit_mode(argv[2]);
	if (argc < 4 || (plan_fd = fd_arg(argv[1])) < 0 || (G.sync_out = sync_out_arg(argv[2])) < 0 ||
	    (G.sync_in = fd_arg(argv[3])) < 0) {
		G.sync_out = -1;
		static const char usage[] =
			"usage: pocrun-init <plan-fd> <sync-out-fd>|ipc <sync-in-fd> [--new-userns [--own-maps UID_MAP GID_MAP]] [--clone-into-cgroup DIR] [cgroup.procs ...]\n";
		if (write(2, usage, sizeof usage - 1) < 0) { /* nothing to do */ }
		return 1;
	}
	int opt = 4;
	bool new_userns = argc > opt && !strcmp(argv[opt], "--new-userns");
	if (new_userns)
		opt++;
	const char *uid_map = NULL, *gid_map = NULL;
	if (new_userns && argc >= opt + 3 && !strcmp(argv[opt], "--own-maps")) {
		uid_map = argv[opt + 1];
		gid_map = argv[opt + 2];
		opt += 3;
	}
	if (new_userns && !getenv(SEALED_ENV))
		enter_user_namespace(uid_map, gid_map);
	sealed_reexec(argv);
	unsetenv(CHANNEL_FD_ENV);
	unsetenv(CHANNEL_MODE_ENV);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL); /* an inherited SIG_IGN would reap the child and the hooks behind our back */
	umask(022);

	/* `--clone-into-cgroup DIR` (cgroup v2): the helper stays where it is and `clone` places the container's init
	 * in DIR (see clone_init). Opened now, before a `setns` into a user namespace could take the right away. */
	int first_procs = opt;
	if (argc >= opt + 2 && !strcmp(argv[opt], "--clone-into-cgroup")) {
		G.cgroup_dir = argv[opt + 1];
		G.cgroup_fd = open(G.cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (G.cgroup_fd < 0) {
			cur = &join_step;
			die(errno, "open %s: %s", G.cgroup_dir, strerror(errno));
		}
		first_procs = opt + 2;
	}
	/* Or join the container's cgroup first: the kernel's wait for a first move overlaps with the runtime's
	 * planning, and everything the helper makes is charged to the container. */
	for (int i = first_procs; i < argc; i++) {
		if (move_self(argv[i]) < 0) {
			cur = &join_step;
			die(errno, "write %s: %s", argv[i], strerror(errno));
		}
	}

	size_t len;
	char *raw = read_plan(plan_fd, &len);
	close(plan_fd);
	cur = &plan_step;
	int count, clones = 0;
	struct planned *plan = decode_plan((unsigned char *)raw, len, &count);
	free(raw);
	for (int i = 0; i < count; i++)
		clones += plan[i].def->run == step_clone;
	if (clones != 1)
		die(EINVAL, "the plan has %d clone steps, expected one", clones);
	/* Until execve (which makes the process dumpable again), nothing in the container may ptrace us or open our
	 * fds through /proc: a created container's init holds O_PATH fds of the host state directory, which
	 * an `exec`'d process with the same uid and capabilities could otherwise walk out through
	 * (/proc/1/fd/N/..; CVE-2024-21626), and a joining helper holds the runtime's. As runc. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		die(errno, "prctl(PR_SET_DUMPABLE): %s", strerror(errno));

	for (int i = 0; i < count; i++) {
		cur = &plan[i].step;
		plan[i].def->run(cur);
	}
	die(EINVAL, "the plan ended without execve");
}
