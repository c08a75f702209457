/*
 * checkpoint's criu, started before the TypeScript program.
 *
 * pocrun drives criu's dump through its RPC (criu swrk, src/runtime/checkpoint/criu-rpc.ts), as runc does through
 * go-criu. criu's service speaks over a SOCK_SEQPACKET socket pair, which only native code can make, and criu
 * takes a while to start (its exec, libraries and option parsing: ~80-110 ms in the emulated test guest). So the
 * front makes the pair and starts `criu swrk FD` here, and criu gets ready while the Bun program starts and reads
 * the container; the TypeScript program sends the request when it has built it. criu identifies its client by
 * the socket's peer credentials, which are this process's: the pid stays the same across the execve into the
 * TypeScript program, so criu finds the image directory that program opens under /proc/PID/fd.
 *
 * Nothing here refuses anything: where criu is not found, or the pair or fork fails, the TypeScript program
 * learns it from CRIU_SWRK_ENV and reports the cause itself. If that program exits without a request (a bad
 * flag, a container that is not running), criu reads the end of the socket and exits.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "front.h"

/* criu as src/runtime/checkpoint/criu.ts's findCriu finds it: --criu PATH, else the first `criu` on $PATH that
 * can be executed. */
static bool find_criu(const char *flag, char *out, size_t size)
{
	if (flag) {
		snprintf(out, size, "%s", flag);
		return access(out, X_OK) == 0;
	}
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (const char *dir = path; *dir;) {
		size_t len = strcspn(dir, ":");
		if (snprintf(out, size, "%.*s/criu", (int)len, dir) < (int)size && access(out, X_OK) == 0)
			return true;
		dir += len + (dir[len] == ':');
	}
	return false;
}

void start_criu_swrk(const char *criu_flag)
{
	char criu[PATH_MAX], value[PATH_MAX + 64];
	int sk[2];
	/* Set, even empty, so that the TypeScript program knows it was started by the front. */
	setenv(CRIU_SWRK_ENV, "", 1);
	if (!find_criu(criu_flag, criu, sizeof criu) || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk) != 0)
		return;
	pid_t pid = fork();
	if (pid < 0) {
		close(sk[0]);
		close(sk[1]);
		return;
	}
	if (pid == 0) {
		char fd[16];
		snprintf(fd, sizeof fd, "%d", sk[1]);
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		/* criu's stdin is nothing of the engine's; its stdout would be pocrun's (state is printed there): it
		 * goes to stderr, where criu's own complaints belong. Its log is in the work directory. */
		if (null < 0 || dup2(null, 0) < 0 || dup2(2, 1) < 0 || fcntl(sk[1], F_SETFD, 0) != 0)
			_exit(127);
		execl(criu, criu, "swrk", fd, (char *)NULL);
		_exit(127);
	}
	close(sk[1]);
	/* The TypeScript program's end: kept across the execve. */
	if (fcntl(sk[0], F_SETFD, 0) != 0) {
		close(sk[0]);
		return;
	}
	snprintf(value, sizeof value, "%d %d %s", sk[0], (int)pid, criu);
	setenv(CRIU_SWRK_ENV, value, 1);
}
