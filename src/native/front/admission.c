/*
 * Admission of the commands that start a container process: create, run and exec.
 *
 * Each of them runs in a Bun process that holds 2-4 MB from its first instruction to its last, and spends most
 * of its life queued on the kernel's cgroup locks when many containers start at once: fifty `pocrun run` at once
 * held ~180 MiB, more than runc's fifty. So the front lets at most SLOTS_PER_CPU commands per CPU into the
 * TypeScript program at once, and the others wait here, with ~50 kB of their own (the code is shared). The
 * same work gets done either way; the queue only moves the waiting out of the big processes (measured on 2
 * CPUs: 50 at once peaked at ~33 MiB instead of ~180, in no more time: bench/runtime.mjs).
 *
 * A slot is an OFD lock on one byte of ROOT/.create-slots (a name no container id can take: ids begin with a
 * letter or digit). The lock belongs to the open file, which execve keeps: the TypeScript program inherits it
 * and closes it (src/runtime/admission.ts) once the container is created, so a long `pocrun run` does not keep
 * it, and before any hook runs, so a hook that starts a container cannot wait for its own parent's slot. The
 * kernel drops the lock of a process that dies. A wait is bounded: past WAIT_LIMIT_MS the command goes on
 * without a slot, so a holder stuck in the kernel slows the others but never stops them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "front.h"

#define SLOTS_PER_CPU 2
#define WAIT_LIMIT_MS 5000
/* How often a waiter looks again at every slot rather than only at the one it queues on. */
#define RESCAN_US 25000
/* Above the fds an engine passes with --preserve-fds in practice; see slot_fd_of in admission.ts. */
#define SLOT_FD_MIN 100

static bool lock_byte(int fd, int slot, int cmd)
{
	struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = slot, .l_len = 1};
	return fcntl(fd, cmd, &lk) == 0;
}

static bool take_any(int fd, int slots, int first)
{
	for (int i = 0; i < slots; i++)
		if (lock_byte(fd, (first + i) % slots, F_OFD_SETLK))
			return true;
	return false;
}

static long elapsed_ms(const struct timespec *since)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

static void wake(int sig)
{
	(void)sig; /* only interrupts the blocking lock */
}

/* mkdir -p with the state root's mode (Store.makeDir). */
static int make_root(const char *root)
{
	char path[4096];
	if (snprintf(path, sizeof(path), "%s", root) >= (int)sizeof(path))
		return -1;
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0711) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(path, 0711) < 0 && errno != EEXIST ? -1 : 0;
}

/*
 * Blocks on one slot (its "home", spread by pid) and, every RESCAN_US, tries them all: a slot freed elsewhere
 * is taken at once. The timer interrupts the blocking lock (no SA_RESTART); a tick that comes between the scan
 * and the lock only delays the next scan by one tick.
 */
static bool wait_for_slot(int fd, int slots)
{
	int home = getpid() % slots;
	struct sigaction quiet = {.sa_handler = wake}, old;
	struct itimerval tick = {{0, RESCAN_US}, {0, RESCAN_US}}, off = {{0, 0}, {0, 0}};
	struct timespec start;
	bool taken = false;
	clock_gettime(CLOCK_MONOTONIC, &start);
	sigemptyset(&quiet.sa_mask);
	sigaction(SIGALRM, &quiet, &old);
	setitimer(ITIMER_REAL, &tick, NULL);
	while (!taken && elapsed_ms(&start) < WAIT_LIMIT_MS) {
		taken = take_any(fd, slots, home) || lock_byte(fd, home, F_OFD_SETLKW);
		if (!taken && errno != EINTR)
			break; /* a lock error: go on without a slot */
	}
	/* execve keeps an interval timer: the TypeScript program must not inherit one. */
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);
	return taken;
}

void take_start_slot(const char *root)
{
	char file[4096], fd_text[16];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int slots = SLOTS_PER_CPU * (cpus > 0 ? (int)cpus : 1);
	if (snprintf(file, sizeof(file), "%s/.create-slots", root) >= (int)sizeof(file) || make_root(root) < 0)
		return; /* the TypeScript program reports what is wrong with the root */
	int opened = open(file, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (opened < 0)
		return;
	/* Not close-on-exec: the TypeScript program inherits the lock. Moved up, out of the way of preserved fds. */
	int fd = fcntl(opened, F_DUPFD, SLOT_FD_MIN);
	close(opened);
	if (fd < 0)
		return;
	if (!take_any(fd, slots, getpid() % slots) && !wait_for_slot(fd, slots)) {
		close(fd);
		return;
	}
	snprintf(fd_text, sizeof(fd_text), "%d", fd);
	setenv(SLOT_FD_ENV, fd_text, 1);
}
