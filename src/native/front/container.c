/*
 * state, start, kill and delete of one container, from its state record. Each defers to the TypeScript program
 * (see front.h) on anything but the ordinary case.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "front.h"
#include "../proc-stat.h"
#include "../generated/signals.h"
#include "../generated/state-record.h"
#include "../generated/status-rule.h" /* status_of, from the rule in src/vocabulary/state-record.ts */

struct record {
	char dir[4096];
	yajl_val doc;
	long pid;
	const char *init_start_time;
	yajl_val cgroup_dirs; /* controller -> directory (src/runtime/state-store.ts) */
};

static char *read_file(const char *path, size_t max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char *buf = malloc(max + 1);
	size_t len = 0;
	ssize_t n;
	while (buf && len < max && (n = read(fd, buf + len, max - len)) > 0)
		len += n;
	close(fd);
	if (!buf || len == max) { /* too big to be what we wrote: let the TypeScript program say what it is */
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

static const char *str_at(yajl_val v, const char *key)
{
	const char *path[] = {key, NULL};
	yajl_val s = yajl_tree_get(v, path, yajl_t_string);
	return s ? YAJL_GET_STRING(s) : NULL;
}

/*
 * Loads <root>/<id>/state.json: DONE, with r->doc to free. FAILED when there is no state directory at all: the
 * container does not exist, which the TypeScript program would say in the same words (state-store.ts); engines
 * ask often (containerd's shim deletes a task twice; podman reads the state of a container it lost), and "does
 * not exist" is what they match. DEFER when the directory holds no record the front reads (missing, corrupt, or
 * from an older pocrun): the TypeScript program says what it is.
 */
static enum outcome load(const struct front *f, const char *id, struct record *r)
{
	struct stat st;
	snprintf(r->dir, sizeof(r->dir), "%s/%s", f->root, id);
	if (lstat(r->dir, &st) != 0 && errno == ENOENT) {
		report_error(f, "container \"%s\" does not exist", id);
		return FAILED;
	}
	char path[4200];
	snprintf(path, sizeof(path), "%s/" STATE_RECORD, r->dir);
	char *text = read_file(path, 1 << 20);
	if (!text)
		return DEFER;
	r->doc = yajl_tree_parse(text, NULL, 0);
	free(text);
	if (!r->doc)
		return DEFER;
	const char *pid_path[] = {RECORD_PID, NULL}, *dirs_path[] = {RECORD_CGROUP_DIRS, NULL};
	yajl_val pid = yajl_tree_get(r->doc, pid_path, yajl_t_number);
	r->cgroup_dirs = yajl_tree_get(r->doc, dirs_path, yajl_t_object);
	r->init_start_time = str_at(r->doc, RECORD_INIT_START_TIME);
	if (!pid || !YAJL_IS_INTEGER(pid) || !r->cgroup_dirs || !r->init_start_time) {
		yajl_tree_free(r->doc);
		return DEFER;
	}
	r->pid = YAJL_GET_INTEGER(pid);
	return DONE;
}

static bool has_hooks(const struct record *r, const char *phase)
{
	const char *path[] = {RECORD_HOOKS, phase, NULL};
	yajl_val hooks = yajl_tree_get(r->doc, path, yajl_t_array);
	return hooks && YAJL_GET_ARRAY(hooks)->len > 0;
}

static const char *cgroup_dir(const struct record *r, const char *controller)
{
	return str_at(r->cgroup_dirs, controller);
}

/* Alive and the same process: not gone, not a zombie, not a reused pid (proc.ts, isSameLiveProcess). */
static bool same_live_process(long pid, const char *start_time)
{
	char state, now[32];
	return proc_stat_fields((pid_t)pid, &state, now, sizeof(now)) && strcmp(now, start_time) == 0 && state != 'Z' && state != 'X';
}

/* DIR/FILE's text, or NULL; for the small files of a cgroup. */
static char *read_in(const char *dir, const char *file)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return read_file(path, 4096);
}

/* The facts status_of reads (status-rule.h says what each is); status.ts, containerStatus, answers the same. */
static bool fact_init_reported(const struct record *r)
{
	return r->pid != 0;
}

static bool fact_init_alive(const struct record *r)
{
	return same_live_process(r->pid, r->init_start_time);
}

/* As the cgroup drivers' state() tells it (and runc): the cgroup itself frozen or freezing, not only an ancestor. */
static bool fact_frozen(const struct record *r)
{
	const char *v1 = cgroup_dir(r, "freezer"), *v2 = cgroup_dir(r, "unified");
	char *text;
	bool yes = false;
	if (v1) {
		text = read_in(v1, "freezer.state");
		yes = text && (strncmp(text, "FROZEN", 6) == 0 || strncmp(text, "FREEZING", 8) == 0);
		free(text);
		if (yes) {
			text = read_in(v1, "freezer.self_freezing");
			yes = !text || text[0] != '0';
			free(text);
		}
	} else if (v2) {
		text = read_in(v2, "cgroup.freeze");
		yes = text && text[0] == '1';
		free(text);
	}
	return yes;
}

static bool fact_exec_fifo_exists(const struct record *r)
{
	char fifo[4200];
	snprintf(fifo, sizeof(fifo), "%s/" STATE_EXEC_FIFO, r->dir);
	return access(fifo, F_OK) == 0;
}

/* Store.lock's protocol: a file made with O_EXCL holding "<pid> <start time>". A held lock defers. */
static bool lock(const struct record *r, char *lock_path, size_t size)
{
	char state, me[32];
	if (!proc_stat_fields(getpid(), &state, me, sizeof(me)))
		return false;
	snprintf(lock_path, size, "%s/" STATE_LOCK, r->dir);
	int fd = open(lock_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return false;
	dprintf(fd, "%d %s", getpid(), me);
	close(fd);
	return true;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

enum outcome cmd_state(const struct front *f, const char *id)
{
	struct record r;
	enum outcome loaded = load(f, id, &r);
	if (loaded != DONE)
		return loaded;
	const char *status = status_of(&r);
	/* ociState's fields in its order (src/vocabulary/state-record.ts); JSON.stringify(state, null, '  ') */
	static const char *const fields[] = {OCI_STATE_FIELDS};
	printf("{");
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		printf("%s\n  \"%s\": ", i ? "," : "", fields[i]);
		if (strcmp(fields[i], "status") == 0) {
			json_string(stdout, status);
		} else if (strcmp(fields[i], "pid") == 0) {
			printf("%ld", strcmp(status, STATUS_STOPPED) == 0 ? 0 : r.pid);
		} else {
			const char *v = str_at(r.doc, fields[i]);
			if (!v) {
				yajl_tree_free(r.doc);
				return DEFER; /* nothing is printed before the end */
			}
			json_string(stdout, v);
		}
	}
	const char *ann_path[] = {RECORD_ANNOTATIONS, NULL};
	yajl_val ann = yajl_tree_get(r.doc, ann_path, yajl_t_object);
	if (ann && YAJL_GET_OBJECT(ann)->len > 0) {
		printf(",\n  \"annotations\": {");
		for (size_t i = 0; i < YAJL_GET_OBJECT(ann)->len; i++) {
			yajl_val v = YAJL_GET_OBJECT(ann)->values[i];
			printf("%s\n    ", i ? "," : "");
			json_string(stdout, YAJL_GET_OBJECT(ann)->keys[i]);
			printf(": ");
			json_string(stdout, YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : "");
		}
		printf("\n  }");
	}
	printf("\n}\n");
	yajl_tree_free(r.doc);
	return DONE;
}

/* One read of the non-blocking fifo: 1 for the byte, 0 at the end of the file, -1 when nothing is there yet. */
static int read_fifo(int fd)
{
	char byte;
	ssize_t n = read(fd, &byte, 1);
	if (n < 0 && errno != EAGAIN)
		return -2;
	return n < 0 ? -1 : (int)n;
}

/* start.ts: releases the init blocked on exec.fifo, exactly once. Poststart hooks are the TypeScript program's. */
enum outcome cmd_start(const struct front *f, const char *id)
{
	struct record r;
	enum outcome loaded = load(f, id, &r);
	if (loaded != DONE)
		return loaded;
	char lock_path[4200], fifo[4200];
	enum outcome out = DEFER;
	if (has_hooks(&r, "poststart") || !lock(&r, lock_path, sizeof(lock_path))) {
		yajl_tree_free(r.doc);
		return DEFER;
	}
	snprintf(fifo, sizeof(fifo), "%s/" STATE_EXEC_FIFO, r.dir);
	int fd = -1;
	if (strcmp(status_of(&r), STATUS_CREATED) != 0)
		goto out;
	/* Non-blocking: if the init died, a blocking open would wait forever for a writer. */
	fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		goto out;
	out = FAILED;
	for (;;) {
		int n = read_fifo(fd);
		if (n == 1)
			break;
		if (n == -2) {
			report_error(f, "start container \"%s\": read exec.fifo: %s", id, strerror(errno));
			goto out;
		}
		if (!same_live_process(r.pid, r.init_start_time)) {
			/* A short-lived process may have passed the fifo, run and exited between the read and this
			 * check: its byte is still in the fifo then. */
			if (read_fifo(fd) == 1)
				break;
			report_error(f, "cannot start container \"%s\": its init exited before start", id);
			goto out;
		}
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 1) == 1 && (p.revents & POLLHUP))
			sleep_ms(1); /* no writer yet: poll would not wait */
	}
	unlink(fifo);
	/* The end of the file: the init's end closed at its execve (or it died). */
	if (fcntl(fd, F_SETFL, O_RDONLY) == 0) {
		char byte;
		ssize_t n;
		while ((n = read(fd, &byte, 1)) != 0 && (n > 0 || errno == EINTR))
			;
	}
	out = DONE;
out:
	if (fd >= 0)
		close(fd);
	unlink(lock_path);
	yajl_tree_free(r.doc);
	return out;
}

/* runc's signal names (src/vocabulary/signals.ts): "KILL", "SIGKILL", "kill" or "9". Others (RTMIN+n) defer. */
static int parse_signal(const char *text)
{
	static const struct { const char *name; int n; } names[] = {SIGNAL_NAMES};
	char *end;
	long n = strtol(text, &end, 10);
	if (*text >= '0' && *text <= '9' && *end == '\0')
		return n >= 1 && n <= 64 ? (int)n : -1;
	const char *name = strncasecmp(text, "SIG", 3) == 0 ? text + 3 : text;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i].name) == 0)
			return names[i].n;
	return -1;
}

/* Whether none of the container's cgroup directories holds a process (a directory gone holds none). */
static bool cgroups_empty(const struct record *r)
{
	for (size_t i = 0; i < YAJL_GET_OBJECT(r->cgroup_dirs)->len; i++) {
		const char *dir = YAJL_GET_STRING(YAJL_GET_OBJECT(r->cgroup_dirs)->values[i]);
		if (!dir)
			return false;
		char path[4200];
		snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return false;
		}
		char byte;
		ssize_t n = read(fd, &byte, 1);
		close(fd);
		if (n != 0)
			return false;
	}
	return true;
}

/*
 * kill.ts: a signal to the init of a created, running or paused container; a stopped one, or a paused one whose
 * init is gone, is refused with runc's words (NOT_RUNNING in status.ts), which containerd and CRI-O read as
 * "already gone". With --all only the case
 * containerd makes on every exit (kill --all of a stopped container) is answered here: nothing left in its cgroup
 * means nothing to signal; anything else is the TypeScript program's (freeze, signal each process, thaw).
 */
enum outcome cmd_kill(const struct front *f, const char *id, const char *signal, bool all)
{
	int sig = parse_signal(signal);
	struct record r;
	if (sig < 0)
		return DEFER;
	enum outcome loaded = load(f, id, &r);
	if (loaded != DONE)
		return loaded;
	const char *status = status_of(&r);
	enum outcome out = DEFER; /* a kill that failed, or a case for the TypeScript program */
	if (all) {
		if (strcmp(status, STATUS_STOPPED) == 0 && cgroups_empty(&r))
			out = DONE;
	} else if (strcmp(status, STATUS_STOPPED) == 0 ||
		   (strcmp(status, STATUS_PAUSED) == 0 && !same_live_process(r.pid, r.init_start_time))) {
		/* A paused container's init may be gone (the freezer is read first, as runc): not running, and its
		 * pid, maybe another process's now, gets nothing (kill.ts). */
		report_error(f, "cannot kill container \"%s\": container not running", id);
		out = FAILED;
	} else if (strcmp(status, STATUS_PAUSED) == 0 && sig == SIGKILL) {
		/* the TypeScript program thaws it after the signal, as runc does */
	} else if (strcmp(status, STATUS_CREATING) != 0 && kill(r.pid, sig) == 0) {
		out = DONE;
	}
	yajl_tree_free(r.doc);
	return out;
}

/*
 * Removes the state directory when it holds only files; false, with nothing removed, when it holds anything
 * else (restore leaves criu's work directory there): the TypeScript program then removes it whole. state.json
 * goes last, so that a failure part way still leaves a container that delete finds.
 */
static bool remove_dir(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT;
	struct dirent *e;
	struct stat st;
	bool plain = true;
	while (plain && (e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			plain = fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? !S_ISDIR(st.st_mode) : errno == ENOENT;
	rewinddir(d);
	while (plain && (e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && strcmp(e->d_name, STATE_RECORD) != 0 &&
		    unlinkat(dirfd(d), e->d_name, 0) != 0 && errno != ENOENT)
			plain = false;
	if (plain && unlinkat(dirfd(d), STATE_RECORD, 0) != 0 && errno != ENOENT)
		plain = false;
	closedir(d);
	return plain && (rmdir(path) == 0 || errno == ENOENT);
}

/* Removes the cgroup in each hierarchy; false when one is still busy (processes, or cgroups below it). */
static bool remove_cgroups(const struct record *r)
{
	for (size_t i = 0; i < YAJL_GET_OBJECT(r->cgroup_dirs)->len; i++) {
		const char *dir = YAJL_GET_STRING(YAJL_GET_OBJECT(r->cgroup_dirs)->values[i]);
		if (!dir || (rmdir(dir) != 0 && errno != ENOENT))
			return false;
	}
	return true;
}

/*
 * Stops a container's systemd scope as the TypeScript driver does (systemd.ts, destroy), with the same program:
 * pocrun-systemd beside this executable (~2 ms; the Bun program would cost ~10 ms more to start). False when it
 * could not: the TypeScript program then tries again and explains.
 */
static bool stop_unit(const char *unit)
{
	char self[PATH_MAX], program[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return false;
	self[n] = '\0';
	snprintf(program, sizeof(program), "%s/pocrun-systemd", dirname(self));
	pid_t pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0)
			dup2(devnull, 2); /* its error is the TypeScript program's to report */
		execl(program, program, "stop", unit, (char *)NULL);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/*
 * delete.ts of a created or stopped container without poststop hooks: kill the waiting init, remove the
 * cgroup and the state directory. A cgroup still busy (or a state directory that is not plain) defers: the
 * TypeScript program kills what is left, retries, and finds done what was done here.
 */
enum outcome cmd_delete(const struct front *f, const char *id, bool force)
{
	struct record r;
	char lock_path[4200];
	char dir[4200];
	struct stat st;
	snprintf(dir, sizeof(dir), "%s/%s", f->root, id);
	/* delete --force of an unknown container succeeds quietly (engines' cleanup), as delete.ts. */
	if (force && lstat(dir, &st) != 0 && errno == ENOENT)
		return DONE;
	enum outcome loaded = load(f, id, &r);
	if (loaded != DONE)
		return loaded;
	/* Mounts made in the runtime's mount namespace (no namespace of the container's own) are unmounted
	 * (shared-mounts.ts): not plain. A systemd scope (--systemd-cgroup) is stopped by pocrun-systemd, below. */
	const char *unit_path[] = {RECORD_SYSTEMD, "unit", NULL}, *shared_path[] = {RECORD_SHARED_MOUNTS, NULL};
	yajl_val unit = yajl_tree_get(r.doc, unit_path, yajl_t_string);
	if (has_hooks(&r, "poststop") || yajl_tree_get(r.doc, shared_path, yajl_t_object) ||
	    !lock(&r, lock_path, sizeof(lock_path))) {
		yajl_tree_free(r.doc);
		return DEFER;
	}
	enum outcome out = DEFER;
	const char *status = status_of(&r);
	bool created = strcmp(status, STATUS_CREATED) == 0;
	if (!created && strcmp(status, STATUS_STOPPED) != 0)
		goto out;
	if (created) {
		kill(r.pid, SIGKILL);
		/* The init's pid namespace dies with it; wait (briefly) so the cgroup can be removed. */
		for (int i = 0; i < 2000 && same_live_process(r.pid, r.init_start_time); i++)
			sleep_ms(1);
	}
	if (unit && !stop_unit(YAJL_GET_STRING(unit)))
		goto out;
	if (remove_cgroups(&r) && remove_dir(r.dir))
		out = DONE;
out:
	if (out != DONE)
		unlink(lock_path);
	yajl_tree_free(r.doc);
	return out;
}
