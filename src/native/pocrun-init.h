/* pocrun-init: executes the init plan of src/plan/PROTOCOL.md. Shared declarations. */
#ifndef POCRUN_INIT_H
#define POCRUN_INIT_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One decoded step: argv[0] is the step's name; ref is its last field for steps that carry one, else "-". */
struct step {
	int argc;
	char **argv;
	const char *ref;
};

struct hook {
	const char *phase, *path, *ref;
	unsigned timeout; /* seconds, 0 = none */
	char **argv, **envp;
};

/* Everything the steps share. */
struct helper {
	int sync_out, sync_in;   /* -1 once `created` closed them */
	bool sync_json;          /* sync-out is Bun's IPC channel: each line a JSON string */
	int root_fd;             /* O_PATH of the rootfs, from `rootfs` */
	char root_path[4096];    /* where root_fd is, as the helper's /proc sees it ("/" after pivot/chroot) */
	int state_dir_fd;        /* from `exec-fifo` */
	int fifo_fd;             /* O_PATH of state-dir/exec.fifo */
	int console_sock;        /* from `console-connect` */
	int null_fd;             /* O_PATH of the container's /dev/null, checked 1:3 (mask) */
	bool new_userns;         /* `clone` made a user namespace */
	int cgroup_fd;           /* the container's cgroup v2 directory, for clone3(CLONE_INTO_CGROUP); -1: none */
	const char *cgroup_dir;  /* its path (the fallback writes cgroup.procs there) */
	bool time_unshared;      /* `time-offset` already unshared a time namespace */
	bool signals_reset;      /* `seccomp-load` already reset the signals execve would reset */
	pid_t host_pid;          /* the container init's pid as the runtime sees it (child stage) */
	char *state;             /* container state JSON, from the last `ok <json>` */
	char **env;              /* from `env` steps */
	int nenv, capenv;
	char *exec_path;         /* resolved by `exec` */
	char **exec_argv;
	struct hook *hooks;
	int nhooks, caphooks;
	const char *ref_override; /* error ref while running a hook */
};

extern struct helper G;
extern const struct step *cur;

/* Reports the failure of the current step and exits: `error <step>\t<ref>\t<errno>\t<msg>` on sync-out and
 * exit 1, or (after `created`) a line on stderr and exit 127. */
__attribute__((noreturn, format(printf, 2, 3))) void die(int err, const char *fmt, ...);
/* Writes `value` to `path` (relative to dirfd) whole, or dies naming `what`. */
void write_file(int dirfd, const char *path, const char *value, const char *what);

/* Number parsing; a malformed number fails the step. */
unsigned long long parse_u64(const char *s, int base, const char *what);
long long parse_s64(const char *s, const char *what);

/* "/proc/self/fd/N" into buf (>= 32 bytes). */
const char *fdpath(char *buf, int fd);
void xclose(int *fd);
void write_all(int fd, const char *buf, size_t len, const char *what);
void reset_signals(void);

/* The step_* functions of mounts.c, process.c, seccomp.c, device-filter.c and pocrun-init.c, one per step of
 * src/vocabulary/steps.ts. */
#include "generated/step-functions.h"

/* mounts.c: a new pty pair from the container's /dev/ptmx (through the rootfs) or the caller's: returns the
 * slave (O_CLOEXEC), its number in *ptn and the master in *master; console_send_master sends the master to the
 * console socket of `console-connect` and closes both. */
int console_pty(bool container_ptmx, unsigned short rows, unsigned short cols, unsigned *ptn, int *master);
void console_send_master(int master, unsigned ptn);

/* process.c: capset(2) of the three 64-bit sets; -1 with errno on failure (each caller says what it was doing). */
int set_capabilities(uint64_t effective, uint64_t permitted, uint64_t inheritable);

/* seccomp.c */
int print_known_seccomp_archs(int argc, char **argv);

/* device-filter.c */
int device_filter_mode(char *dir, char *hex);

#endif
