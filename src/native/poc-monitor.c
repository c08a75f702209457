/*
 * poc-monitor: the parent and subreaper of one poc container (the role conmon plays for podman). README.md,
 * Architecture: the `poc run` diagram and what follows it.
 *
 *   poc-monitor --runtime PATH --root DIR --id ID --bundle DIR --log FILE --exit-file FILE --pid-file FILE
 *               --sync-fd N [--rootfs DIR --overlay OPTIONS] [--tty --console-socket PATH] [--stdin]
 *               [--foreground] [--systemd-cgroup] [--state-file FILE] [--stop-file FILE]
 *               [--slirp4netns PATH --api-socket PATH [--allow-host-loopback] [--publish PROTO:IP:PORT:PORT]...]
 *               [--pasta PATH [--pasta-arg ARG]...]
 *               [--mount-program PATH [--mount-program-only]]
 *               [--restart always|on-failure|unless-stopped --restart-max N]
 *               [--health-file FILE --health-interval MS --health-timeout MS --health-start-period MS
 *                --health-retries N --health-arg ARG...] [-- EXIT-COMMAND...]
 *   poc-monitor --relay --console-socket PATH [--stdin] -- COMMAND...
 *
 * 1. becomes a child subreaper; with --rootfs, mounts the overlayfs (OPTIONS are its lowerdir/upperdir/workdir)
 *    there: mount(2) here instead of an exec of mount(8) in poc; runs `pocrun create` with the container's
 *    stdout/stderr on pipes (or with a console socket that receives the pty master), so that the init is
 *    reparented to it when create exits;
 * 2. runs `pocrun start`, then reports `ok <init pid>` (or `error <message>`) on the sync fd and closes it
 *    (but for --foreground, below);
 * 3. writes everything the container prints to the log, one CRI line each ("<rfc3339nano> <stream> F|P <text>";
 *    P marks a partial line, continued by the next one), and, with --foreground, also to its own stdout/stderr;
 *    with --tty and --stdin it relays its stdin into the pty (raw mode and window size when stdin is a terminal;
 *    at its end, the terminal's EOF character). poc passes both only when its stdin is a terminal: it refuses
 *    -i with -t from a pipe, as docker does, because a line-editing shell reads the pty in raw mode, where that
 *    EOF character is one more keystroke, and piped input would leave it waiting;
 * 4. forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the init; reaps every orphan;
 * 5. when the init exits: drains the output, unmounts the rootfs (--rootfs), writes
 *    {"exitCode":N,"finishedAt":"..."} to the exit file, runs the exit command (poc's cleanup: `pocrun delete`,
 *    network teardown, and removal for --rm) and exits with the container's status (128+n when a signal ended it).
 *
 * At every start it writes the state file (poc's RunState: init and own pid with their start times, restart count).
 * With --restart it decides after each exit as docker's restart manager does, unless the stop file exists (poc
 * stop, kill and rm make it): it runs the exit command (this run's cleanup), waits the back-off (100 ms, doubled
 * after each restart, at most a minute, back to 100 ms after 10 s up; a forwarded signal ends the wait and the
 * monitor) with `restarting` in the state file, and starts the container again from step 1.
 * With --health-file it runs the health check (`pocrun exec ID ARG...`) on docker's schedule while the container
 * runs and keeps docker's State.Health in that file (see health_done).
 *
 * With --foreground the caller (`poc run` without -d, whose stdio the monitor shares) is waiting anyway, so it does
 * the cleanup itself rather than pay for a second poc process: the sync fd (a socket) stays open after `ok`, the
 * monitor reports `exit <status>` on it once the exit is recorded, and the caller answers `done` when it has
 * cleaned up. If the caller is gone before it answers (killed), the monitor runs the exit command as above.
 *
 * With --relay it is a terminal relay for `poc exec -t`: it runs COMMAND (`pocrun exec --tty --console-socket`),
 * receives the pty master, relays it as above and exits with COMMAND's status.
 *
 * With --slirp4netns (a rootless container: the monitor then runs as root of poc's user namespace, in a mount
 * namespace of its own where its overlay mount lives) it starts slirp4netns on the container's network namespace
 * between create and start, waits until it has configured tap0 (--ready-fd), publishes each --publish through its
 * API socket (add_hostfwd: the port listens in the host's network namespace), and holds its --exit-fd: slirp4netns
 * ends when the init has exited, or when the monitor dies.
 *
 * With --pasta (passt's pasta, podman 5's rootless network) it starts pasta on the container's network namespace
 * instead, in the foreground as its child, with the arguments poc planned (--pasta-arg, src/poc/network/pasta.ts:
 * --config-net, DNS through --dns-forward, each published port as -t/-u ADDR/PORT:PORT, the user's pasta options)
 * and the two that name fds of the monitor's: --pid and --netns. It is ready when it has written its pid (--pid,
 * to a pipe); it is ended when the init has exited, or with the monitor (PR_SET_PDEATHSIG).
 *
 * Either network helper's pid is in the state file while it runs. If it dies while the init lives, the container
 * has lost its network (podman does not watch for that); the monitor says so once, naming the helper and its exit
 * status or signal: a line in the log and the state file's networkError (network_helper_died).
 *
 * --mount-program (fuse-overlayfs, as podman's storage.conf mount_program) mounts the rootfs where the kernel's
 * overlayfs refuses to (a user namespace on a kernel before 5.11), or always with --mount-program-only.
 *
 * If create or start fails nothing runs after the error report: the caller (poc) cleans up and reports it.
 * The monitor is plain C with no allocation beyond a few buffers: it costs well under a megabyte per container.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "generated/signals.h"
#include "proc-stat.h"

#define EXIT_MONITOR_ERROR 125

static struct {
	const char *runtime, *root, *id, *bundle, *log, *exit_file, *pid_file, *console_socket, *rootfs, *overlay;
	const char *slirp, *api_socket, *publish[64], *mount_program, *pasta, *pasta_args[128];
	int sync_fd, npublish, npasta_args;
	bool mount_program_only, tty, stdin_, foreground, relay, systemd_cgroup, host_loopback;
	char **exit_cmd;
	/* state.json (written at every start), the stop marker of poc stop/kill/rm, the restart policy */
	const char *state_file, *stop_file, *restart;
	long restart_max;
	/* --restore DIR: the first run is `pocrun restore` from the checkpoint in DIR instead of create and start (poc
	 * start --checkpoint); --restore-flag FLAG (repeated): its flags, which poc chooses by the container's network */
	const char *restore;
	char *restore_flags[8];
	int n_restore_flags;
	/* health check: health.json, the schedule in ms, and the command run through `pocrun exec` */
	const char *health_file;
	long health_interval, health_timeout, health_start_period, health_retries;
	char *health_args[64];
	int health_nargs;
} O = {.sync_fd = -1};

static int devnull = -1;
/* Set once the container has been restarted: a failure then is reported in the log and the exit file. */
static bool restarted;
static int restart_count;
/*
 * The network helper (pasta or slirp4netns) while the container runs: its name and pid (in state.json, where poc
 * and the tests find it), its stderr, the tail of what it said there, and, once it died before the init, what
 * became of it (state.json's networkError, docker's State.Error in poc inspect).
 */
static struct {
	const char *name;
	pid_t pid;
	int errfd;
	char said[1024];
	size_t said_len;
	char error[1536];
} NET = {.pid = -1, .errfd = -1};

static void after_failed_restart(const char *msg);
static long long mono_ms(void);
static size_t json_escape(char *out, size_t size, const char *in, size_t len);
static void write_state(pid_t init_pid, bool restarting);

static int log_fd = -1;
static bool raw_set;
static struct termios saved_termios;

static void restore_terminal(void)
{
	if (raw_set) {
		tcsetattr(0, TCSADRAIN, &saved_termios);
		raw_set = false;
	}
}

/* Reports a failure before the container runs: on the sync fd for poc, and on stderr. */
static void fail(const char *fmt, ...)
{
	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	restore_terminal();
	if (O.console_socket)
		unlink(O.console_socket);
	if (restarted)
		after_failed_restart(msg);
	if (O.sync_fd >= 0) {
		dprintf(O.sync_fd, "error %s\n", msg);
		close(O.sync_fd);
	} else {
		fprintf(stderr, "poc-monitor: %s\n", msg);
	}
	exit(EXIT_MONITOR_ERROR);
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = {.fd = fd, .events = POLLOUT};
				poll(&p, 1, 1000);
				continue;
			}
			return; /* a reader that went away (EPIPE) or a full disk: the container goes on */
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* Now, as RFC 3339 in UTC with `digits` of the second's fraction: 9 (nanoseconds) for log lines and health
 * results, as docker writes them; 3 for the state's StartedAt, as poc's TypeScript writes its own times. */
static void rfc3339_now(char *out, size_t size, int digits)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
	long fraction = ts.tv_nsec;
	for (int i = digits; i < 9; i++)
		fraction /= 10;
	snprintf(out + n, size - n, ".%0*ldZ", digits, fraction);
}

/* One chunk of output as CRI log lines: complete lines are F, a trailing piece without newline is P. */
static void log_chunk(const char *stream, const char *buf, size_t len)
{
	if (log_fd < 0)
		return;
	char stamp[64];
	rfc3339_now(stamp, sizeof stamp, 9);
	static char line[65536 + 128];
	size_t start = 0;
	while (start < len) {
		const char *nl = memchr(buf + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - buf) : len;
		size_t text = end - start;
		if (nl && text > 0 && buf[end - 1] == '\r')
			text--; /* a terminal's CRLF */
		int head = snprintf(line, sizeof line, "%s %s %c ", stamp, stream, nl ? 'F' : 'P');
		if (text > sizeof line - (size_t)head - 1)
			text = sizeof line - (size_t)head - 1;
		memcpy(line + head, buf + start, text);
		line[head + text] = '\n';
		write_all(log_fd, line, (size_t)head + text + 1);
		start = nl ? end + 1 : len;
	}
}

/*
 * In a child just forked: ARGV with no signal blocked, SIGPIPE at its default (an ignored one, the monitor's,
 * stays ignored across execve, and pasta takes that for a failure to install its handlers), stdio IN, OUT, ERR.
 */
static void exec_child(char *const argv[], int in, int out, int err)
{
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGPIPE, SIG_DFL);
	if ((in != 0 && dup2(in, 0) < 0) || (out != 1 && dup2(out, 1) < 0) || (err != 2 && dup2(err, 2) < 0))
		_exit(127);
	/* dup2 onto the same number leaves FD_CLOEXEC set: clear it. */
	for (int fd = 0; fd <= 2; fd++)
		fcntl(fd, F_SETFD, 0);
	execv(argv[0], argv);
	dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static pid_t spawn(char *const argv[], int in, int out, int err)
{
	pid_t pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0)
		exec_child(argv, in, out, err);
	return pid;
}

/*
 * Starts a helper program of the monitor's (slirp4netns, pasta, the mount program): stdin and stdout /dev/null,
 * stderr a pipe whose read end is returned in *ERRFD (its words if it fails), the fds in KEEP inherited (handed
 * over: closed here; the monitor's others are close-on-exec). It ends with the monitor (PR_SET_PDEATHSIG: pasta
 * has no other way to learn of that) and has a session of its own (not in the monitor's group: the terminal's
 * signals are the container's). Its pid, or -1 with the error in ERR.
 */
static pid_t start_helper(char *const argv[], const int *keep, int nkeep, int *errfd, char *err, size_t errlen)
{
	int errp[2] = {-1, -1};
	pid_t pid = -1, monitor = getpid();
	if (pipe2(errp, O_CLOEXEC) < 0)
		snprintf(err, errlen, "pipe: %s", strerror(errno));
	else if ((pid = fork()) < 0)
		snprintf(err, errlen, "fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != monitor)
			_exit(1); /* the monitor died before the line above */
		for (int i = 0; i < nkeep; i++)
			fcntl(keep[i], F_SETFD, 0);
		setsid();
		exec_child(argv, devnull, devnull, errp[1]);
	}
	for (int i = 0; i < nkeep; i++)
		close(keep[i]);
	if (errp[1] >= 0)
		close(errp[1]);
	if (pid < 0 && errp[0] >= 0)
		close(errp[0]);
	*errfd = pid < 0 ? -1 : errp[0];
	return pid;
}

static int status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

/* Appends what is readable now (non-blocking) to buf. */
static void drain_into(int fd, char *buf, size_t size, size_t *len)
{
	for (;;) {
		char tmp[4096];
		ssize_t n = read(fd, tmp, sizeof tmp);
		if (n <= 0)
			return;
		size_t take = (size_t)n;
		if (*len + take > size - 1)
			take = size - 1 - *len;
		memcpy(buf + *len, tmp, take);
		*len += take;
		buf[*len] = 0;
	}
}

/* pocrun's error lines start with "pocrun: "; keep the message, one line. */
static const char *runtime_message(char *buf)
{
	size_t n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	char *p = buf;
	if (strncmp(p, "pocrun: ", 8) == 0)
		p += 8;
	return *p ? p : "(no message)";
}

static int recv_master(int conn)
{
	char name[256];
	char control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = name, .iov_len = sizeof name - 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
	ssize_t n;
	do
		n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		fail("receive the console: %s", strerror(errno));
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int fd;
			memcpy(&fd, CMSG_DATA(c), sizeof fd);
			return fd;
		}
	}
	fail("the console socket received no terminal");
	return -1;
}

static void copy_window_size(int master)
{
	struct winsize ws;
	if (master >= 0 && ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
		ioctl(master, TIOCSWINSZ, &ws);
}

/* The end of stdin: the terminal's EOF character, end of file to a reader in canonical mode (a raw-mode one may ignore it). */
static void send_eof(int master)
{
	struct termios t;
	if (master < 0)
		return;
	char eof = tcgetattr(master, &t) == 0 && t.c_cc[VEOF] ? (char)t.c_cc[VEOF] : 4;
	write_all(master, &eof, 1);
}

/* Relays what stdin has into the pty master. False at its end (or a read error): the terminal's EOF is sent. */
static bool stdin_to_master(int master, char *buf, size_t size)
{
	ssize_t n = read(0, buf, size);
	if (n > 0) {
		if (master >= 0)
			write_all(master, buf, (size_t)n);
		return true;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	send_eof(master);
	return false;
}

static void write_exit_file(int code)
{
	char stamp[64], tmp[4096], text[256];
	rfc3339_now(stamp, sizeof stamp, 9);
	int len = snprintf(text, sizeof text, "{\"exitCode\":%d,\"finishedAt\":\"%s\"}\n", code, stamp);
	snprintf(tmp, sizeof tmp, "%s.tmp", O.exit_file);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return; /* the container was removed meanwhile */
	write_all(fd, text, (size_t)len);
	fsync(fd);
	close(fd);
	if (rename(tmp, O.exit_file) < 0)
		unlink(tmp);
}

/*
 * The rootfs: the kernel's overlayfs, or the mount program with the same options (userxattr is the kernel's alone):
 * `PROGRAM -o OPTIONS ROOTFS`, which returns once mounted and serves the mount in the background.
 */
static void mount_rootfs(void)
{
	if (!O.mount_program_only && mount("overlay", O.rootfs, "overlay", 0, O.overlay) == 0)
		return;
	int err = errno;
	if (!O.mount_program)
		fail("mount the overlay rootfs on %s: %s", O.rootfs, strerror(err));
	char opts[8192];
	snprintf(opts, sizeof opts, "%s", O.overlay);
	char *ux = strstr(opts, ",userxattr");
	if (ux)
		memmove(ux, ux + strlen(",userxattr"), strlen(ux + strlen(",userxattr")) + 1);
	char *argv[] = {(char *)O.mount_program, "-o", opts, (char *)O.rootfs, NULL};
	int errfd;
	char msg[1024] = {0};
	pid_t pid = start_helper(argv, NULL, 0, &errfd, msg, sizeof msg);
	if (pid < 0)
		fail("%s", msg);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	size_t len = 0;
	fcntl(errfd, F_SETFL, O_NONBLOCK);
	drain_into(errfd, msg, sizeof msg, &len);
	close(errfd);
	if (status_code(st) != 0) {
		if (O.mount_program_only)
			fail("mount the rootfs on %s with %s: %s", O.rootfs, O.mount_program, *msg ? runtime_message(msg) : "failed");
		fail("mount the rootfs on %s: the kernel's overlayfs: %s; %s: %s", O.rootfs, strerror(err), O.mount_program,
		     *msg ? runtime_message(msg) : "failed");
	}
}

/*
 * slirp4netns (its exit fd closed) and a mount program's daemon (its mount gone) end now: reaped here, for at most
 * a second, so that none outlives the monitor as a zombie that its new parent may never reap.
 */
static void reap_helpers(void)
{
	for (int i = 0; i < 100; i++) {
		pid_t w;
		while ((w = waitpid(-1, NULL, WNOHANG)) > 0)
			;
		if (w < 0 && errno == ECHILD)
			return;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* The init is gone, and with it every process of its namespaces: nothing needs the rootfs any more. */
static void unmount_rootfs(void)
{
	if (O.rootfs && umount2(O.rootfs, 0) < 0 && errno == EBUSY)
		umount2(O.rootfs, MNT_DETACH); /* a host process inside it (a shell's cwd): detached, as umount -l */
}

/*
 * --foreground: tells the caller the container's status and waits for its `done` (it has cleaned up). False when
 * the caller went away without it: the exit command must do the cleanup.
 */
static bool caller_cleaned_up(int code)
{
	dprintf(O.sync_fd, "exit %d\n", code); /* EPIPE if the caller is gone: the read below sees the end */
	char buf[64];
	size_t len = 0;
	for (;;) {
		struct pollfd p = {.fd = O.sync_fd, .events = POLLIN};
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			break;
		ssize_t n = read(O.sync_fd, buf + len, sizeof buf - 1 - len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = 0;
		if (strstr(buf, "done\n")) {
			close(O.sync_fd);
			O.sync_fd = -1;
			return true;
		}
		if (len == sizeof buf - 1)
			len = 0; /* not the protocol: keep listening for done or the end */
	}
	close(O.sync_fd);
	O.sync_fd = -1;
	return false;
}

/*
 * A network helper (slirp4netns, pasta): its name, what it must do within the 10 s it is given, and its sign of
 * readiness on the fd it is handed: the first byte it writes there (any byte where READY_BYTE is 0).
 */
struct net_helper {
	const char *name, *late;
	char ready_byte;
};

/*
 * A network helper's words on its stderr (MSG, changed in place), as one message: pasta says that it cannot reach
 * the system logger (none here) before each of its messages, which is noise.
 */
static const char *helper_words(char *msg)
{
	for (char *line = msg, *next; *line; line = next) {
		next = strchr(line, '\n');
		next = next ? next + 1 : line + strlen(line);
		if (strncmp(line, "Failed to send ", 15) == 0 && strstr(line, " bytes to syslog") && strstr(line, " bytes to syslog") < next) {
			memmove(line, next, strlen(next) + 1);
			next = line;
		}
	}
	return *msg ? runtime_message(msg) : "(no message)";
}

/*
 * A network helper that did not come up: killed and reaped here (a monitor that fails exits at once, and the
 * helper's zombie must not outlive it), and its stderr, read from ERRFD, quoted in ERR.
 */
static void network_helper_failed(pid_t pid, int errfd, const char *name, const char *why, char *err, size_t errlen)
{
	char msg[1024] = {0};
	size_t len = 0;
	fcntl(errfd, F_SETFL, O_NONBLOCK);
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	drain_into(errfd, msg, sizeof msg, &len);
	snprintf(err, errlen, "%s %s: %s", name, why, helper_words(msg));
}

/*
 * Starts network helper H (start_helper: ARGV, handing it the fds in KEEP) and waits until it is ready: it writes
 * to READYFD (a pipe's read end; the write end is in KEEP). Its exit first (READYFD or its stderr ends) is a
 * failure, and its stderr says why; 10 s at most. Its pid, with its stderr's read end in *ERRFD_OUT (non-blocking:
 * relay() keeps reading it, so that a later message neither blocks the helper on a full pipe nor kills it with
 * SIGPIPE, and quotes it if the helper dies), or -1 with the error in ERR, the helper killed.
 */
static pid_t start_network_helper(const struct net_helper *h, char *const argv[], const int *keep, int nkeep, int readyfd,
				  int *errfd_out, char *err, size_t errlen)
{
	int errfd;
	pid_t pid = start_helper(argv, keep, nkeep, &errfd, err, errlen);
	if (pid < 0) {
		close(readyfd);
		return -1;
	}
	struct pollfd p[2] = {{.fd = readyfd, .events = POLLIN}, {.fd = errfd, .events = 0}};
	char buf[32];
	bool ready = false, late = false;
	long long deadline = mono_ms() + 10000;
	for (;;) {
		long long left = deadline - mono_ms();
		int r = left > 0 ? poll(p, 2, (int)left) : 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r > 0 && (p[0].revents & POLLIN)) {
			ready = read(readyfd, buf, sizeof buf) > 0 && (!h->ready_byte || buf[0] == h->ready_byte);
			break;
		}
		late = r == 0;
		if (r <= 0 || (p[1].revents & (POLLHUP | POLLERR)) || (p[0].revents & POLLHUP))
			break;
	}
	close(readyfd);
	if (!ready) {
		network_helper_failed(pid, errfd, h->name, late ? h->late : "failed", err, errlen);
		close(errfd);
		return -1;
	}
	fcntl(errfd, F_SETFL, O_NONBLOCK);
	*errfd_out = errfd;
	return pid;
}

/*
 * Starts slirp4netns on the init's network namespace (it joins it as root of the user namespace both share) and
 * waits until tap0 is configured (it writes "1" to its --ready-fd). Returns the write end of its exit fd (closing
 * it ends slirp4netns), with its pid in *PID and its stderr in *ERRFD.
 */
static int start_slirp(pid_t init_pid, pid_t *pid, int *errfd, char *err, size_t errlen)
{
	static const struct net_helper slirp4netns = {"slirp4netns", "did not configure the network within 10 s", '1'};
	int exitp[2], readyp[2];
	if (pipe2(exitp, O_CLOEXEC) < 0 || pipe2(readyp, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	char pidbuf[16], exitarg[32], readyarg[32], apiarg[4200];
	snprintf(pidbuf, sizeof pidbuf, "%d", (int)init_pid);
	snprintf(exitarg, sizeof exitarg, "--exit-fd=%d", exitp[0]);
	snprintf(readyarg, sizeof readyarg, "--ready-fd=%d", readyp[1]);
	snprintf(apiarg, sizeof apiarg, "--api-socket=%s", O.api_socket);
	unlink(O.api_socket);
	char *argv[16];
	int a = 0;
	argv[a++] = (char *)O.slirp;
	argv[a++] = "--configure";
	argv[a++] = "--mtu=65520";
	if (!O.host_loopback)
		argv[a++] = "--disable-host-loopback";
	argv[a++] = exitarg;
	argv[a++] = readyarg;
	argv[a++] = apiarg;
	argv[a++] = pidbuf;
	argv[a++] = "tap0";
	argv[a] = NULL;
	int keep[] = {exitp[0], readyp[1]};
	*pid = start_network_helper(&slirp4netns, argv, keep, 2, readyp[0], errfd, err, errlen);
	if (*pid < 0) {
		close(exitp[1]);
		return -1;
	}
	return exitp[1];
}

/* Starts pasta on the init's network namespace and waits until it is ready. Its pid (its stderr in *ERRFD), or -1
 * with the error. */
static pid_t start_pasta(pid_t init_pid, int *errfd, char *err, size_t errlen)
{
	static const struct net_helper pasta = {"pasta", "did not set up the network within 10 s", 0};
	char netns[64], pidarg[32];
	int readyp[2];
	if (pipe2(readyp, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	/* The namespace through an fd of the monitor's: the created init is not dumpable, and pasta drops the
	 * capability that would let it open that init's /proc files itself. */
	snprintf(netns, sizeof netns, "/proc/%d/ns/net", (int)init_pid);
	int nsfd = open(netns, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		snprintf(err, errlen, "open %s: %s", netns, strerror(errno));
		return -1;
	}
	snprintf(netns, sizeof netns, "/proc/self/fd/%d", nsfd);
	/* Its pid file is the pipe, and its pid there is the readiness podman relies on too (podman runs pasta without
	 * --foreground and waits for its exit, which comes right after the same write): pasta (checked for Debian 12's
	 * 0.0~git20230309, with strace) opens the tap device in the namespace (TUNSETIFF), configures it over netlink
	 * (link up, addresses, routes, each acknowledged: --config-net), binds its forwarded ports, and only then
	 * writes its pid, before its loop. So an exec after `poc run -d` sees the configured interface. (Where that
	 * pasta dies later, the interface goes with it: its seccomp filter lacks gettimeofday(2), which --pcap calls
	 * for each frame, and which is a real system call, not the vDSO's, on a clock source such as the TCG guest's
	 * hpet: SIGSYS.) */
	snprintf(pidarg, sizeof pidarg, "/proc/self/fd/%d", readyp[1]);
	char *argv[sizeof O.pasta_args / sizeof *O.pasta_args + 6];
	int a = 0;
	argv[a++] = (char *)O.pasta;
	for (int i = 0; i < O.npasta_args; i++)
		argv[a++] = (char *)O.pasta_args[i];
	argv[a++] = "--pid";
	argv[a++] = pidarg;
	argv[a++] = "--netns";
	argv[a++] = netns;
	argv[a] = NULL;
	int keep[] = {readyp[1], nsfd};
	return start_network_helper(&pasta, argv, keep, 2, readyp[0], errfd, err, errlen);
}

/* One request on slirp4netns's API socket (a connection each, as slirp4netnsctl); false with its error. */
static bool slirp_api(const char *request, char *err, size_t errlen)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(O.api_socket) >= sizeof addr.sun_path) {
		snprintf(err, errlen, "slirp4netns API socket path %s is too long", O.api_socket);
		return false;
	}
	strcpy(addr.sun_path, O.api_socket);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		snprintf(err, errlen, "connect to slirp4netns's API socket %s: %s", O.api_socket, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	write_all(fd, request, strlen(request));
	shutdown(fd, SHUT_WR);
	char reply[1024] = {0};
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, reply + len, sizeof reply - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof reply - 1)
			break;
	}
	close(fd);
	if (strstr(reply, "\"return\""))
		return true;
	char *desc = strstr(reply, "\"desc\"");
	snprintf(err, errlen, "%s", desc ? desc : (len ? reply : "no reply"));
	return false;
}

/* --publish PROTO:IP:HOSTPORT:CONTAINERPORT (checked by poc) → add_hostfwd. */
static bool publish_port(const char *spec, char *err, size_t errlen)
{
	char proto[8], ip[64];
	unsigned host_port, ctr_port;
	if (sscanf(spec, "%7[a-z]:%63[0-9.]:%u:%u", proto, ip, &host_port, &ctr_port) != 4) {
		snprintf(err, errlen, "invalid --publish %s", spec);
		return false;
	}
	char req[512], e[600];
	snprintf(req, sizeof req,
		 "{\"execute\": \"add_hostfwd\", \"arguments\": {\"proto\": \"%s\", \"host_addr\": \"%s\", \"host_port\": %u, "
		 "\"guest_port\": %u}}",
		 proto, ip, host_port, ctr_port);
	if (!slirp_api(req, e, sizeof e)) {
		snprintf(err, errlen, "publish %s:%u to port %u/%s: %s", ip, host_port, ctr_port, proto, e);
		return false;
	}
	return true;
}

/* A failure after create (the network, pocrun start): the container is killed and deleted before the error is reported. */
static void fail_created(pid_t init_pid, const char *msg)
{
	kill(init_pid, SIGKILL);
	char *del_argv[] = {(char *)O.runtime, "--root", (char *)O.root, "delete", "--force", (char *)O.id, NULL};
	pid_t d = spawn(del_argv, devnull, devnull, devnull);
	while (waitpid(d, NULL, 0) < 0 && errno == EINTR)
		;
	fail("%s", msg);
}

static void usage(void)
{
	fprintf(stderr, "usage: poc-monitor --runtime PATH --root DIR --id ID --bundle DIR --log FILE --exit-file FILE "
			"--pid-file FILE --sync-fd N [--rootfs DIR --overlay OPTIONS] [--tty --console-socket PATH] [--stdin]\n"
			"                   [--foreground] [--systemd-cgroup] [--slirp4netns PATH --api-socket PATH\n"
			"                   [--allow-host-loopback] [--publish PROTO:IP:PORT:PORT]...] [--pasta PATH [--pasta-arg ARG]...]\n"
			"                   [--restore DIR [--restore-flag F]...]\n"
			"                   [-- EXIT-COMMAND...]\n"
			"       poc-monitor --relay --console-socket PATH [--stdin] -- COMMAND...\n");
	exit(EXIT_MONITOR_ERROR);
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"runtime", required_argument, 0, 'r'}, {"root", required_argument, 0, 'R'},
		{"id", required_argument, 0, 'i'}, {"bundle", required_argument, 0, 'b'},
		{"log", required_argument, 0, 'l'}, {"exit-file", required_argument, 0, 'e'},
		{"pid-file", required_argument, 0, 'p'}, {"sync-fd", required_argument, 0, 's'},
		{"console-socket", required_argument, 0, 'c'}, {"tty", no_argument, 0, 't'},
		{"stdin", no_argument, 0, 'I'}, {"foreground", no_argument, 0, 'f'}, {"relay", no_argument, 0, 'y'},
		{"rootfs", required_argument, 0, 'm'}, {"overlay", required_argument, 0, 'o'},
		{"systemd-cgroup", no_argument, 0, 'S'}, {"slirp4netns", required_argument, 0, 'N'},
		{"api-socket", required_argument, 0, 'A'}, {"allow-host-loopback", no_argument, 0, 'L'},
		{"publish", required_argument, 0, 'P'}, {"state-file", required_argument, 0, 'T'},
		{"stop-file", required_argument, 0, 6}, {"restart", required_argument, 0, 'X'},
		{"restart-max", required_argument, 0, 'M'}, {"restore", required_argument, 0, 'C'},
		{"restore-flag", required_argument, 0, 'F'}, {"health-file", required_argument, 0, 'H'},
		{"health-interval", required_argument, 0, 1}, {"health-timeout", required_argument, 0, 2},
		{"health-start-period", required_argument, 0, 3}, {"health-retries", required_argument, 0, 4},
		{"health-arg", required_argument, 0, 5}, {"mount-program", required_argument, 0, 20},
		{"mount-program-only", no_argument, 0, 21}, {"pasta", required_argument, 0, 22},
		{"pasta-arg", required_argument, 0, 23}, {0, 0, 0, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': O.runtime = optarg; break;
		case 'R': O.root = optarg; break;
		case 'i': O.id = optarg; break;
		case 'b': O.bundle = optarg; break;
		case 'l': O.log = optarg; break;
		case 'e': O.exit_file = optarg; break;
		case 'p': O.pid_file = optarg; break;
		case 's': O.sync_fd = atoi(optarg); break;
		case 'c': O.console_socket = optarg; break;
		case 't': O.tty = true; break;
		case 'I': O.stdin_ = true; break;
		case 'f': O.foreground = true; break;
		case 'y': O.relay = true; break;
		case 'm': O.rootfs = optarg; break;
		case 'o': O.overlay = optarg; break;
		case 'S': O.systemd_cgroup = true; break;
		case 'N': O.slirp = optarg; break;
		case 'A': O.api_socket = optarg; break;
		case 'L': O.host_loopback = true; break;
		case 20: O.mount_program = optarg; break;
		case 21: O.mount_program_only = true; break;
		case 22: O.pasta = optarg; break;
		case 23:
			if (O.npasta_args == (int)(sizeof O.pasta_args / sizeof *O.pasta_args))
				usage();
			O.pasta_args[O.npasta_args++] = optarg;
			break;
		case 'P':
			if (O.npublish == (int)(sizeof O.publish / sizeof *O.publish))
				usage();
			O.publish[O.npublish++] = optarg;
			break;
		case 'T': O.state_file = optarg; break;
		case 6: O.stop_file = optarg; break;
		case 'X': O.restart = optarg; break;
		case 'C': O.restore = optarg; break;
		case 'F':
			if (O.n_restore_flags == (int)(sizeof O.restore_flags / sizeof O.restore_flags[0]))
				usage();
			O.restore_flags[O.n_restore_flags++] = optarg;
			break;
		case 'M': O.restart_max = atol(optarg); break;
		case 'H': O.health_file = optarg; break;
		case 1: O.health_interval = atol(optarg); break;
		case 2: O.health_timeout = atol(optarg); break;
		case 3: O.health_start_period = atol(optarg); break;
		case 4: O.health_retries = atol(optarg); break;
		case 5:
			if (O.health_nargs >= (int)(sizeof O.health_args / sizeof *O.health_args) - 1)
				usage();
			O.health_args[O.health_nargs++] = optarg;
			break;
		default: usage();
		}
	}
	if (optind < argc)
		O.exit_cmd = argv + optind;
	if (O.relay) {
		if (!O.console_socket || !O.exit_cmd)
			usage();
		return;
	}
	if (!O.runtime || !O.root || !O.id || !O.bundle || !O.log || !O.exit_file || !O.pid_file || O.sync_fd < 0)
		usage();
	if ((O.tty && !O.console_socket) || !O.rootfs != !O.overlay || !O.slirp != !O.api_socket || (O.slirp && O.pasta) ||
	    (O.npublish && !O.slirp) || (O.npasta_args && !O.pasta) || (O.restore && (O.tty || O.slirp || O.pasta)))
		usage();
	if (O.restart && strcmp(O.restart, "always") != 0 && strcmp(O.restart, "on-failure") != 0 &&
	    strcmp(O.restart, "unless-stopped") != 0)
		usage();
	if (O.health_file && (O.health_nargs == 0 || O.health_interval <= 0 || O.health_timeout <= 0 || O.health_retries <= 0))
		usage();
	fcntl(O.sync_fd, F_SETFD, FD_CLOEXEC);
}

static int listen_console(void)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(O.console_socket) >= sizeof addr.sun_path)
		fail("console socket path %s is too long", O.console_socket);
	strcpy(addr.sun_path, O.console_socket);
	unlink(O.console_socket);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 1) < 0)
		fail("console socket %s: %s", O.console_socket, strerror(errno));
	return fd;
}

static void set_raw(void)
{
	if (isatty(0) && tcgetattr(0, &saved_termios) == 0) {
		struct termios raw = saved_termios;
		cfmakeraw(&raw);
		if (tcsetattr(0, TCSADRAIN, &raw) == 0)
			raw_set = true;
	}
}

/* The signals the monitor passes on (SIGWINCH among them: it copies the window size instead) and SIGCHLD, blocked
 * and read from a signalfd instead. */
static int signals_to_fd(void)
{
	sigset_t mask;
	sigemptyset(&mask);
	static const int forwarded[] = {FORWARDED_SIGNALS};
	for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
		sigaddset(&mask, forwarded[i]);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0)
		fail("signalfd: %s", strerror(errno));
	return sigfd;
}

/*
 * --relay: runs COMMAND (`pocrun exec --tty --console-socket PATH ...`), receives the pty master it sends, and
 * relays the terminal: stdin into the pty (with --stdin), the pty to stdout, raw mode and window size when stdin is
 * a terminal. Signals are passed on to COMMAND. Exits with COMMAND's status.
 */
static int relay_main(void)
{
	int sigfd = signals_to_fd();
	int listener = listen_console();
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	pid_t pid = spawn(O.exit_cmd, devnull, 1, 2);
	int master = -1, status = -1;
	bool relay_stdin = O.stdin_;
	static char buf[65536];
	for (;;) {
		if (status >= 0 && master < 0)
			break;
		struct pollfd p[4] = {{.fd = sigfd, .events = POLLIN}, {.fd = master < 0 ? listener : -1, .events = POLLIN},
				      {.fd = master, .events = POLLIN}, {.fd = master >= 0 && relay_stdin ? 0 : -1, .events = POLLIN}};
		if (poll(p, 4, status >= 0 ? 200 : -1) == 0 && status >= 0)
			break; /* the command is gone and the pty went quiet */
		if (p[1].revents & POLLIN) {
			int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
			if (conn >= 0) {
				master = recv_master(conn);
				close(conn);
				close(listener);
				listener = -1;
				unlink(O.console_socket);
				copy_window_size(master);
				if (relay_stdin)
					set_raw();
			}
		}
		if (master >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = read(master, buf, sizeof buf);
			if (n > 0)
				write_all(1, buf, (size_t)n);
			else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				close(master);
				master = -1;
			}
		}
		if (p[3].fd >= 0 && (p[3].revents & (POLLIN | POLLHUP | POLLERR)))
			relay_stdin = stdin_to_master(master, buf, sizeof buf);
		struct signalfd_siginfo si;
		while (read(sigfd, &si, sizeof si) == sizeof si) {
			int sig = (int)si.ssi_signo;
			if (sig == SIGCHLD) {
				int st;
				pid_t w;
				while ((w = waitpid(-1, &st, WNOHANG)) > 0)
					if (w == pid)
						status = st;
				if (status >= 0 && master < 0 && listener >= 0)
					break; /* it failed before sending a terminal */
			} else if (sig == SIGWINCH) {
				copy_window_size(master);
			} else if (status < 0) {
				kill(pid, sig);
			}
		}
		if (status >= 0 && listener >= 0)
			break;
	}
	restore_terminal();
	if (listener >= 0) {
		close(listener);
		unlink(O.console_socket);
	}
	return status_code(status);
}

/* ---------------------------------------------------------------------------------------------------------
 * Files poc reads: state.json (each start) and health.json, written whole (temporary file, rename).
 */

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_file_atomic(const char *path, const char *text, size_t len)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return; /* the container was removed meanwhile */
	write_all(fd, text, len);
	close(fd);
	if (rename(tmp, path) < 0)
		unlink(tmp);
}

/* Field 22 of /proc/<pid>/stat (proc-stat.h): the start time that tells a reused pid; empty when it is gone. */
static void proc_start_time(pid_t pid, char *out, size_t size)
{
	char state;
	if (!proc_stat_fields(pid, &state, out, size))
		out[0] = 0;
}

static char started_at[64];

/* state.json, in the shape of poc's RunState: written at every start, and with restarting set while backing off. */
static void write_state(pid_t init_pid, bool restarting)
{
	if (!O.state_file)
		return;
	char init_start[64], self_start[64], helper[128] = "", error[4 * sizeof NET.error + 32] = "", text[8192];
	proc_start_time(init_pid, init_start, sizeof init_start);
	proc_start_time(getpid(), self_start, sizeof self_start);
	if (NET.pid > 0)
		snprintf(helper, sizeof helper, ",\"networkHelper\":{\"name\":\"%s\",\"pid\":%d}", NET.name, (int)NET.pid);
	if (NET.error[0]) {
		char escaped[4 * sizeof NET.error];
		json_escape(escaped, sizeof escaped, NET.error, strlen(NET.error));
		snprintf(error, sizeof error, ",\"networkError\":\"%s\"", escaped);
	}
	int len = snprintf(text, sizeof text,
			   "{\"startedAt\":\"%s\",\"pid\":%d,\"initStartTime\":\"%s\",\"monitorPid\":%d,\"monitorStartTime\":\"%s\","
			   "\"restartCount\":%d,\"restarting\":%s%s%s}\n",
			   started_at, (int)init_pid, init_start, (int)getpid(), self_start, restart_count, restarting ? "true" : "false",
			   helper, error);
	write_file_atomic(O.state_file, text, (size_t)len);
}

/* A JSON string's content: quotes, backslashes and control characters escaped (bytes >= 0x80 pass as they are). */
static size_t json_escape(char *out, size_t size, const char *in, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 7 < size; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(out + o, size - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = 0;
	return o;
}

/* ---------------------------------------------------------------------------------------------------------
 * Health checks, as docker runs them: the first after one interval, then one interval after each ends; a check
 * past its timeout is killed (exit code -1); success makes the container healthy, and `retries` failures in a row
 * unhealthy, except that failures in the start period do not count while it has never been healthy. The last 5
 * results are kept, each output cut at 4096 bytes (docker's limits).
 */
#define HEALTH_LOG 5
#define HEALTH_OUTPUT 4096

static struct {
	pid_t pid;	 /* the running check's `pocrun exec`, or 0 */
	int out;	 /* its output, or -1 */
	char buf[HEALTH_OUTPUT + 1];
	size_t len;
	bool timed_out;
	char start[64];
	long long run_start_ms, check_deadline_ms, next_ms;
	const char *status;
	int failing;
	struct {
		char start[64], end[64];
		int code;
		char output[HEALTH_OUTPUT + 1];
	} log[HEALTH_LOG];
	int nlog;
} H = {.out = -1};

static char health_pid_file[4096];

static void write_health(void)
{
	static char text[HEALTH_LOG * (HEALTH_OUTPUT * 6 + 256) + 256];
	size_t o = (size_t)snprintf(text, sizeof text, "{\"Status\":\"%s\",\"FailingStreak\":%d,\"Log\":[", H.status, H.failing);
	for (int i = 0; i < H.nlog; i++) {
		o += (size_t)snprintf(text + o, sizeof text - o, "%s{\"Start\":\"%s\",\"End\":\"%s\",\"ExitCode\":%d,\"Output\":\"", i ? "," : "",
				      H.log[i].start, H.log[i].end, H.log[i].code);
		o += json_escape(text + o, sizeof text - o - 8, H.log[i].output, strlen(H.log[i].output));
		o += (size_t)snprintf(text + o, sizeof text - o, "\"}");
	}
	o += (size_t)snprintf(text + o, sizeof text - o, "]}\n");
	write_file_atomic(O.health_file, text, o);
}

static void health_begin(void)
{
	if (!O.health_file)
		return;
	H.status = "starting";
	H.failing = 0;
	H.nlog = 0;
	H.run_start_ms = mono_ms();
	H.next_ms = H.run_start_ms + O.health_interval;
	write_health();
}

static void health_read(void)
{
	if (H.out < 0)
		return;
	for (;;) {
		char tmp[4096];
		ssize_t n = read(H.out, tmp, sizeof tmp);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close(H.out);
			H.out = -1;
			return;
		}
		size_t take = (size_t)n;
		if (H.len + take > HEALTH_OUTPUT)
			take = HEALTH_OUTPUT - H.len;
		memcpy(H.buf + H.len, tmp, take);
		H.len += take;
		H.buf[H.len] = 0;
	}
}

static void health_spawn(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return;
	char *argv[96];
	int a = 0;
	argv[a++] = (char *)O.runtime;
	argv[a++] = "--root";
	argv[a++] = (char *)O.root;
	argv[a++] = "exec";
	argv[a++] = "--pid-file";
	argv[a++] = health_pid_file;
	argv[a++] = (char *)O.id;
	for (int i = 0; i < O.health_nargs; i++)
		argv[a++] = O.health_args[i];
	argv[a] = NULL;
	unlink(health_pid_file);
	rfc3339_now(H.start, sizeof H.start, 9);
	H.len = 0;
	H.buf[0] = 0;
	H.timed_out = false;
	H.pid = spawn(argv, devnull, p[1], p[1]);
	close(p[1]);
	H.out = p[0];
	fcntl(H.out, F_SETFL, O_NONBLOCK);
	H.check_deadline_ms = mono_ms() + O.health_timeout;
}

/*
 * Kills the check's process in the container (its host pid from --pid-file); `pocrun exec`, which waits for it, then
 * ends by itself. True when it was found. With `exec_too` the `pocrun exec` is killed as well, found or not.
 */
static bool health_kill(bool exec_too)
{
	char buf[32] = {0};
	bool found = false;
	int fd = open(health_pid_file, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, buf, sizeof buf - 1) > 0 && atoi(buf) > 0)
			found = kill(atoi(buf), SIGKILL) == 0;
		close(fd);
	}
	if (exec_too && H.pid > 0)
		kill(H.pid, SIGKILL);
	return found;
}

static void health_done(int status)
{
	health_read();
	if (H.out >= 0) {
		close(H.out);
		H.out = -1;
	}
	H.pid = 0;
	int code = H.timed_out ? -1 : status_code(status);
	if (H.nlog == HEALTH_LOG) {
		memmove(&H.log[0], &H.log[1], sizeof H.log[0] * (HEALTH_LOG - 1));
		H.nlog--;
	}
	strcpy(H.log[H.nlog].start, H.start);
	rfc3339_now(H.log[H.nlog].end, sizeof H.log[H.nlog].end, 9);
	H.log[H.nlog].code = code;
	if (H.timed_out)
		snprintf(H.log[H.nlog].output, sizeof H.log[H.nlog].output, "Health check exceeded timeout (%ldms)", O.health_timeout);
	else
		memcpy(H.log[H.nlog].output, H.buf, H.len + 1);
	H.nlog++;
	if (code == 0) {
		H.failing = 0;
		H.status = "healthy";
	} else if (strcmp(H.status, "starting") != 0 || mono_ms() - H.run_start_ms >= O.health_start_period) {
		if (++H.failing >= O.health_retries)
			H.status = "unhealthy";
	}
	write_health();
	H.next_ms = mono_ms() + O.health_interval;
}

/* Starts a check when one is due, kills one past its timeout; returns the poll timeout until the next event. */
static int health_tick(void)
{
	if (!O.health_file)
		return -1;
	long long now = mono_ms();
	if (H.pid == 0 && now >= H.next_ms)
		health_spawn();
	/*
	 * Past the timeout the check's process is killed; `pocrun exec` itself only if it has not started the process
	 * 10 s later (killed while it sets the process up, it could leave it running unseen).
	 */
	if (H.pid > 0 && now >= H.check_deadline_ms) {
		H.timed_out = true;
		health_kill(now >= H.check_deadline_ms + 10000);
	}
	long long until = H.pid > 0 ? (H.timed_out ? 50 : H.check_deadline_ms - now) : H.next_ms - now;
	return until < 0 ? 0 : until > 60000 ? 60000 : (int)until;
}

/* The container is gone: a running check is ended, and the status is unhealthy, as docker leaves it. */
static void health_end(void)
{
	if (!O.health_file)
		return;
	if (H.pid > 0) {
		health_kill(true);
		H.pid = 0;
	}
	if (H.out >= 0) {
		close(H.out);
		H.out = -1;
	}
	H.status = "unhealthy";
	write_health();
}

/* ---------------------------------------------------------------------------------------------------------
 * One run of the container: mount, `pocrun create`, `pocrun start`; then the relay until the init has exited.
 */

static int run_fds[2] = {-1, -1}, run_master = -1;
/* slirp4netns's exit fd while a rootless container runs (closed when its init has exited). */
static int slirp_exit = -1;


/* pocrun create's argv, or restore's at the first run of a start from a checkpoint; `argv` holds 24. */
static void create_argv(char **argv, bool restoring)
{
	int a = 0;
	argv[a++] = (char *)O.runtime;
	argv[a++] = "--root";
	argv[a++] = (char *)O.root;
	if (O.systemd_cgroup) /* the cgroup is a systemd scope; later commands find that in pocrun's state */
		argv[a++] = "--systemd-cgroup";
	if (restoring) {
		/* Detached: the restored init is pocrun's child, and this monitor's (a subreaper) once pocrun exits.
		 * Its stdout and stderr are the pipes below, handed on by criu in place of the checkpointed ones. */
		argv[a++] = "restore";
		argv[a++] = "--detach";
		for (int i = 0; i < O.n_restore_flags; i++)
			argv[a++] = O.restore_flags[i];
		argv[a++] = "--image-path";
		argv[a++] = (char *)O.restore;
	} else {
		argv[a++] = "create";
	}
	argv[a++] = "--bundle";
	argv[a++] = (char *)O.bundle;
	argv[a++] = "--pid-file";
	argv[a++] = (char *)O.pid_file;
	if (O.tty) {
		argv[a++] = "--console-socket";
		argv[a++] = (char *)O.console_socket;
	}
	argv[a++] = (char *)O.id;
	argv[a] = NULL;
}

/*
 * Waits for pocrun create (`create_pid`) to exit. Until then, anything on the pipes is pocrun's own output, kept
 * in `create_out` for the error report; with a terminal, the pty master comes on `listener` meanwhile.
 * Returns create's wait status.
 */
static int wait_create(int sigfd, pid_t create_pid, int cre, int out, int err, int listener, int *master,
		       char *create_out, size_t create_size)
{
	size_t create_len = 0;
	create_out[0] = 0;
	int create_status = -1;
	while (create_status < 0) {
		struct pollfd p[4] = {{.fd = sigfd, .events = POLLIN}, {.fd = cre, .events = POLLIN},
				      {.fd = O.tty ? listener : out, .events = POLLIN}, {.fd = O.tty ? -1 : err, .events = POLLIN}};
		if (poll(p, 4, -1) < 0 && errno != EINTR)
			fail("poll: %s", strerror(errno));
		if (p[1].revents & POLLIN)
			drain_into(cre, create_out, create_size, &create_len);
		if (!O.tty) {
			if (p[2].revents & POLLIN)
				drain_into(out, create_out, create_size, &create_len);
			if (p[3].revents & POLLIN)
				drain_into(err, create_out, create_size, &create_len);
		} else if ((p[2].revents & POLLIN) && *master < 0) {
			int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
			if (conn >= 0) {
				*master = recv_master(conn);
				close(conn);
			}
		}
		struct signalfd_siginfo si;
		while (read(sigfd, &si, sizeof si) == sizeof si) {
			if (si.ssi_signo != SIGCHLD)
				continue; /* nothing to forward to yet */
			int st;
			pid_t pid;
			while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
				if (pid == create_pid)
					create_status = st;
		}
	}
	if (!O.tty) {
		drain_into(out, create_out, create_size, &create_len);
		drain_into(err, create_out, create_size, &create_len);
	}
	return create_status;
}

/* The init's pid, as pocrun create (or restore) wrote it to --pid-file. */
static pid_t read_pid_file(void)
{
	char buf[32] = {0};
	int fd = open(O.pid_file, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, buf, sizeof buf - 1) < 0)
			buf[0] = 0;
		close(fd);
	}
	pid_t pid = atoi(buf);
	if (pid <= 0)
		fail("pocrun create wrote no pid to %s", O.pid_file);
	return pid;
}

/* Rootless networking (slirp4netns and the published ports), before the container's program runs. */
static void start_rootless_network(pid_t init_pid)
{
	slirp_exit = -1;
	NET.pid = -1;
	NET.errfd = -1;
	NET.said_len = 0;
	NET.said[0] = NET.error[0] = 0;
	char err[2048];
	if (O.pasta) {
		NET.name = "pasta";
		NET.pid = start_pasta(init_pid, &NET.errfd, err, sizeof err);
		if (NET.pid < 0)
			fail_created(init_pid, err);
		return;
	}
	if (!O.slirp)
		return;
	NET.name = "slirp4netns";
	slirp_exit = start_slirp(init_pid, &NET.pid, &NET.errfd, err, sizeof err);
	if (slirp_exit < 0)
		fail_created(init_pid, err);
	for (int i = 0; i < O.npublish; i++)
		if (!publish_port(O.publish[i], err, sizeof err))
			fail_created(init_pid, err);
}

/* pocrun start; if it fails, the created container is killed and deleted, and the monitor fails with its words. */
static void start_created(pid_t init_pid)
{
	char *start_argv[] = {(char *)O.runtime, "--root", (char *)O.root, "start", (char *)O.id, NULL};
	int sout[2];
	if (pipe2(sout, O_CLOEXEC) < 0)
		fail("pipe: %s", strerror(errno));
	pid_t start_pid = spawn(start_argv, devnull, sout[1], sout[1]);
	close(sout[1]);
	int start_status;
	while (waitpid(start_pid, &start_status, 0) < 0 && errno == EINTR)
		;
	fcntl(sout[0], F_SETFL, O_NONBLOCK);
	static char start_out[8192];
	size_t start_len = 0;
	start_out[0] = 0;
	drain_into(sout[0], start_out, sizeof start_out, &start_len);
	close(sout[0]);
	if (status_code(start_status) != 0)
		fail_created(init_pid, runtime_message(start_out));
}

/*
 * One run of the container: the output pipes (or the console socket), the rootfs mounted, pocrun create (or
 * restore), the rootless network, pocrun start. Returns the init's pid, with run_fds set for relay().
 */
static pid_t launch(int sigfd)
{
	/* Output pipes: the init inherits the write ends from pocrun create (or gets a pty instead). */
	int out[2] = {-1, -1}, err[2] = {-1, -1}, cre[2] = {-1, -1};
	int listener = -1, master = -1;
	if (pipe2(cre, O_CLOEXEC | O_NONBLOCK) < 0)
		fail("pipe: %s", strerror(errno));
	if (O.tty) {
		listener = listen_console();
	} else if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		fail("pipe: %s", strerror(errno));
	}
	if (!O.tty) {
		fcntl(out[0], F_SETFL, O_NONBLOCK);
		fcntl(err[0], F_SETFL, O_NONBLOCK);
	}

	if (O.rootfs)
		mount_rootfs();

	/* 1. pocrun create; or restore at the first run of a start from a checkpoint, which leaves the container
	 * running (no start; a restart after it creates anew) */
	bool restoring = O.restore && !restarted;
	char *argv[24];
	create_argv(argv, restoring);
	int in = (O.stdin_ && !O.tty && !restarted) ? 0 : devnull;
	pid_t create_pid = O.tty ? spawn(argv, in, cre[1], cre[1]) : spawn(argv, in, out[1], err[1]);
	close(cre[1]);
	if (!O.tty) {
		close(out[1]);
		close(err[1]);
	}
	static char create_out[8192];
	int create_status = wait_create(sigfd, create_pid, cre[0], out[0], err[0], listener, &master, create_out, sizeof create_out);
	close(cre[0]);
	if (status_code(create_status) != 0)
		fail("%s", runtime_message(create_out));
	if (listener >= 0) {
		close(listener);
		unlink(O.console_socket);
	}
	if (O.tty && master < 0)
		fail("pocrun create did not send the container's terminal");

	pid_t init_pid = read_pid_file();
	if (master >= 0) {
		fcntl(master, F_SETFL, O_NONBLOCK);
		if (O.foreground && isatty(0))
			copy_window_size(master);
	}
	start_rootless_network(init_pid);

	/* 2. pocrun start (a restored container runs already) */
	if (!restoring)
		start_created(init_pid);
	run_fds[0] = O.tty ? master : out[0];
	run_fds[1] = O.tty ? -1 : err[0];
	run_master = master;
	return init_pid;
}

static bool stop_requested(void)
{
	return O.stop_file && access(O.stop_file, F_OK) == 0;
}

/* What the network helper says on its stderr while it runs: the last of it is kept, to be quoted if it exits. */
static void network_helper_said(void)
{
	char tmp[4096];
	ssize_t n;
	while ((n = read(NET.errfd, tmp, sizeof tmp)) > 0) {
		size_t keep = sizeof NET.said - 1;
		if ((size_t)n >= keep) {
			memcpy(NET.said, tmp + (size_t)n - keep, keep);
			NET.said_len = keep;
		} else {
			if (NET.said_len + (size_t)n > keep) {
				size_t drop = NET.said_len + (size_t)n - keep;
				memmove(NET.said, NET.said + drop, NET.said_len - drop);
				NET.said_len -= drop;
			}
			memcpy(NET.said + NET.said_len, tmp, (size_t)n);
			NET.said_len += (size_t)n;
		}
		NET.said[NET.said_len] = 0;
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		close(NET.errfd);
		NET.errfd = -1;
	}
}

/* Whether the init has exited, its status not yet collected (WNOWAIT: relay() reaps it). */
static bool init_exited(pid_t init_pid)
{
	siginfo_t si = {0};
	return waitid(P_PID, (id_t)init_pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == init_pid;
}

/*
 * The network helper died while the container runs (STATUS, its wait status): the container has lost its network
 * (pasta takes its tap device with it; slirp4netns's is left without a peer), and nothing else would say so.
 * Said once, where a poc user looks: a line in the container's log (`poc logs`, and the terminal of a foreground
 * `poc run`), and state.json's networkError (`poc inspect`'s State.Error). Not when the init has exited too: then
 * the helper ended with the network namespace, as it should.
 */
static void network_helper_died(pid_t init_pid, int status)
{
	if (NET.errfd >= 0)
		network_helper_said();
	char how[96];
	if (WIFSIGNALED(status)) {
		static const struct { const char *name; int n; } names[] = {SIGNAL_NAMES};
		const char *name = "?";
		for (size_t i = 0; i < sizeof names / sizeof *names; i++)
			if (names[i].n == WTERMSIG(status)) {
				name = names[i].name;
				break;
			}
		snprintf(how, sizeof how, "was killed by signal %d (SIG%s)", WTERMSIG(status), name);
	} else {
		snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
	}
	/* Its last line, when it exited by itself: its reason (pasta runs with --quiet). Not otherwise: slirp4netns
	 * reports each request on its stderr, which says nothing of a signal. */
	const char *said = NULL;
	if (WIFEXITED(status) && NET.said_len) {
		said = helper_words(NET.said);
		const char *last = strrchr(said, '\n');
		if (last)
			said = last + 1;
	}
	snprintf(NET.error, sizeof NET.error, "%s (pid %d), the container's network, %s%s%s: the container has no network now",
		 NET.name, (int)NET.pid, how, said ? ": " : "", said ? said : "");
	NET.pid = -1;
	char line[sizeof NET.error + 16];
	int n = snprintf(line, sizeof line, "poc-monitor: %s\n", NET.error);
	log_chunk("stderr", line, (size_t)n);
	if (O.foreground)
		write_all(2, line, (size_t)n);
	write_state(init_pid, false);
}

/* 3. relays until the init has exited and its output is drained; runs the health checks meanwhile. */
static int relay(int sigfd, pid_t init_pid)
{
	bool relay_stdin = O.tty && O.stdin_ && !restarted;
	if (relay_stdin && O.foreground)
		set_raw();
	int master = run_master;
	int fds[3] = {run_fds[0], run_fds[1], relay_stdin ? 0 : -1};
	const char *streams[2] = {"stdout", "stderr"};
	int init_status = -1;
	struct timespec init_exit_at = {0, 0};
	static char buf[65536];
	health_begin();
	/* A stop that came while this run was being started (it read the state of the last one): honoured now. */
	if (restarted && stop_requested())
		kill(init_pid, SIGKILL);
	for (;;) {
		bool outputs_open = fds[0] >= 0 || fds[1] >= 0;
		int timeout = -1;
		if (init_status >= 0) {
			if (!outputs_open)
				break;
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			/* Output still open 2 s after the init died belongs to something outside its pid namespace. */
			if (now.tv_sec - init_exit_at.tv_sec >= 2)
				break;
			timeout = 100;
		} else {
			timeout = health_tick();
		}
		/* The sync fd is watched only for the caller's end: then the exit command will clean up. */
		struct pollfd p[7] = {{.fd = sigfd, .events = POLLIN}, {.fd = fds[0], .events = POLLIN},
				      {.fd = fds[1], .events = POLLIN}, {.fd = fds[2], .events = POLLIN},
				      {.fd = O.sync_fd, .events = POLLIN}, {.fd = H.out, .events = POLLIN},
				      {.fd = NET.errfd, .events = POLLIN}};
		int r = poll(p, 7, timeout);
		if (r < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (fds[i] < 0 || !(p[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(fds[i], buf, sizeof buf);
			if (n > 0) {
				log_chunk(streams[i], buf, (size_t)n);
				if (O.foreground)
					write_all(i == 0 ? 1 : 2, buf, (size_t)n);
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				/* EOF; a pty master reads EIO once every slave is closed */
				if (fds[i] != master)
					close(fds[i]);
				fds[i] = -1;
			}
		}
		if (H.out >= 0 && (p[5].revents & (POLLIN | POLLHUP | POLLERR)))
			health_read();
		if (NET.errfd >= 0 && (p[6].revents & (POLLIN | POLLHUP | POLLERR)))
			network_helper_said();
		if (O.sync_fd >= 0 && (p[4].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = read(O.sync_fd, buf, sizeof buf);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
				close(O.sync_fd);
				O.sync_fd = -1;
			}
		}
		if (fds[2] >= 0 && (p[3].revents & (POLLIN | POLLHUP | POLLERR)) && !stdin_to_master(master, buf, sizeof buf))
			fds[2] = -1;
		struct signalfd_siginfo si;
		while (read(sigfd, &si, sizeof si) == sizeof si) {
			int sig = (int)si.ssi_signo;
			if (sig == SIGCHLD) {
				int st;
				pid_t pid;
				while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
					if (pid == init_pid) {
						init_status = st;
						clock_gettime(CLOCK_MONOTONIC, &init_exit_at);
						fds[2] = -1;
						health_end();
					} else if (pid == H.pid && init_status < 0) {
						health_done(st);
					} else if (pid == NET.pid) {
						if (init_status < 0 && !init_exited(init_pid))
							network_helper_died(init_pid, st);
						NET.pid = -1;
					}
				}
			} else if (sig == SIGWINCH) {
				copy_window_size(master);
			} else if (init_status < 0) {
				kill(init_pid, sig);
			}
		}
	}
	restore_terminal();
	if (master >= 0)
		close(master);
	if (slirp_exit >= 0)
		close(slirp_exit); /* slirp4netns ends; the monitor, its subreaper, reaps it */
	slirp_exit = -1;
	if (NET.pid > 0 && O.pasta)
		kill(NET.pid, SIGTERM); /* reaped with the other helpers */
	NET.pid = -1;
	if (NET.errfd >= 0)
		close(NET.errfd);
	NET.errfd = -1;
	if (O.api_socket)
		unlink(O.api_socket);
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0 && fds[i] != master)
			close(fds[i]);
	return status_code(init_status);
}

/* The exit command (poc's cleanup: `pocrun delete`, network teardown, and removal for --rm), waited for. */
static void run_exit_command(void)
{
	if (!O.exit_cmd)
		return;
	pid_t pid = spawn(O.exit_cmd, devnull, O.foreground ? 2 : devnull, O.foreground ? 2 : devnull);
	int st;
	for (;;) {
		pid_t w = waitpid(-1, &st, 0);
		if (w == pid || (w < 0 && errno != EINTR))
			break;
	}
}

/*
 * The restart policy after an exit, as docker's restart manager decides: never after poc stop/kill/rm (the stop
 * file); on-failure only for a non-zero status and at most restart_max times (0: no limit); always and
 * unless-stopped whatever the status.
 */
static bool should_restart(int code)
{
	if (!O.restart || stop_requested())
		return false;
	if (strcmp(O.restart, "on-failure") == 0)
		return code != 0 && (O.restart_max == 0 || restart_count < O.restart_max);
	return true;
}

/*
 * Waits the back-off; false when it was interrupted: a signal poc forwards (poc stop of a restarting container
 * sends SIGTERM to the monitor) or the stop file.
 */
static bool backoff_wait(int sigfd, long ms)
{
	long long end = mono_ms() + ms;
	for (;;) {
		long long left = end - mono_ms();
		if (stop_requested())
			return false;
		if (left <= 0)
			return true;
		struct pollfd p = {.fd = sigfd, .events = POLLIN};
		if (poll(&p, 1, left > 100 ? 100 : (int)left) < 0 && errno != EINTR)
			return false;
		struct signalfd_siginfo si;
		while (read(sigfd, &si, sizeof si) == sizeof si) {
			if (si.ssi_signo == SIGCHLD) {
				while (waitpid(-1, NULL, WNOHANG) > 0)
					;
			} else if (si.ssi_signo != SIGWINCH) {
				return false;
			}
		}
	}
}

static void after_failed_restart(const char *msg)
{
	char line[4200];
	int n = snprintf(line, sizeof line, "poc-monitor: restart failed: %s\n", msg);
	log_chunk("stderr", line, (size_t)n);
	write_exit_file(EXIT_MONITOR_ERROR);
	write_state(0, false);
	if (O.sync_fd >= 0 && caller_cleaned_up(EXIT_MONITOR_ERROR))
		exit(EXIT_MONITOR_ERROR);
	run_exit_command();
	exit(EXIT_MONITOR_ERROR);
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	if (O.relay)
		return relay_main();

	int sigfd = signals_to_fd();
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		fail("become a subreaper: %s", strerror(errno));

	log_fd = open(O.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (log_fd < 0)
		fail("open log %s: %s", O.log, strerror(errno));
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (O.health_file)
		snprintf(health_pid_file, sizeof health_pid_file, "%s.pid", O.health_file);

	/* docker's back-off: 100 ms, doubled after each restart, at most a minute; back to 100 ms after 10 s up. */
	long delay_ms = 0;
	int code;
	pid_t init_pid;
	for (;;) {
		init_pid = launch(sigfd);
		long long up_since = mono_ms();
		rfc3339_now(started_at, sizeof started_at, 3);
		write_state(init_pid, false);
		if (!restarted) {
			dprintf(O.sync_fd, "ok %d\n", (int)init_pid);
			if (!O.foreground) {
				close(O.sync_fd);
				O.sync_fd = -1;
			}
		}
		code = relay(sigfd, init_pid);

		/* 4. record the exit; restart, or the cleanup: the caller's, or the exit command's */
		unmount_rootfs();
		if (O.slirp || O.pasta || O.mount_program)
			reap_helpers();
		write_exit_file(code);
		if (!should_restart(code))
			break;
		delay_ms = mono_ms() - up_since >= 10000 || delay_ms == 0 ? 100 : delay_ms * 2;
		if (delay_ms > 60000)
			delay_ms = 60000;
		write_state(init_pid, true);
		run_exit_command(); /* this run's runtime state, network and mount: the next run makes them anew */
		if (!backoff_wait(sigfd, delay_ms))
			break;
		restarted = true;
		restart_count++;
		unlink(O.exit_file);
	}
	write_state(init_pid, false);
	close(log_fd);
	if (O.sync_fd >= 0 && caller_cleaned_up(code))
		return code;
	run_exit_command();
	return code;
}
