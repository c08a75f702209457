/*
 * pocrun's native front: the executable called `pocrun`.
 *
 * The runtime is a TypeScript program compiled with Bun (dist/pocrun-ts). A Bun process needs ~850 page faults
 * and ~10 ms before its first line runs, more than all of runc's `state`; engines call state, start, kill and
 * delete many times per container. So those four commands' ordinary cases run here, reading the state record
 * create wrote (src/runtime/state-store.ts, ContainerRecord), and everything else is handed to the TypeScript program
 * by execve with the same argv: other commands, --help, --debug, bad input, errors worth explaining, hooks.
 * The TypeScript program is complete on its own but for one thing: checkpoint's criu, which speaks over a socket
 * pair only native code can make, is started here (criu.c). Otherwise this file only answers earlier where the
 * answer is plain.
 * create, run and exec first wait here for an admission slot (admission.c), so that many at once do not all
 * wait inside big Bun processes.
 *
 * Keep in step with: the record (state-store.ts), status derivation (status.ts), the lock (Store.lock), the state
 * output (ociState), and the log line format (context.ts). test/integration/front.test.ts runs the same cases
 * through both and compares.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "front.h"
#include "../generated/container-id.h"

#define TS_PROGRAM "pocrun-ts"

static char **saved_argv;

/* Hands the command line, untouched, to the TypeScript program beside this executable. */
static void __attribute__((noreturn)) defer(void)
{
	char self[PATH_MAX], target[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0) {
		fprintf(stderr, "pocrun: readlink /proc/self/exe: %s\n", strerror(errno));
		exit(1);
	}
	self[n] = '\0';
	snprintf(target, sizeof(target), "%s/%s", dirname(self), TS_PROGRAM);
	execv(target, saved_argv);
	fprintf(stderr, "pocrun: cannot run %s: %s\n", target, strerror(errno));
	exit(1);
}

/* An ISO 8601 time with milliseconds, as JavaScript's Date.toISOString() writes it. */
static void iso_time(char *buf, size_t size)
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t len = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + len, size - len, ".%03ldZ", (long)(tv.tv_usec / 1000));
}

void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\b': fputs("\\b", out); break;
		case '\f': fputs("\\f", out); break;
		case '\n': fputs("\\n", out); break;
		case '\r': fputs("\\r", out); break;
		case '\t': fputs("\\t", out); break;
		default:
			if (*p < 0x20)
				fprintf(out, "\\u%04x", *p);
			else
				fputc(*p, out);
		}
	}
	fputc('"', out);
}

void report_error(const struct front *f, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "pocrun: %s\n", msg);
	if (!f->log_file)
		return;
	FILE *log = fopen(f->log_file, "a");
	if (!log)
		return; /* a log that cannot be written must not hide the error being logged */
	char time[64];
	iso_time(time, sizeof(time));
	if (f->log_json) {
		fputs("{\"level\":\"error\",\"msg\":", log);
		json_string(log, msg);
		fprintf(log, ",\"time\":\"%s\"}\n", time);
	} else {
		fprintf(log, "time=\"%s\" level=error msg=", time);
		json_string(log, msg);
		fputc('\n', log);
	}
	fclose(log);
}

/* The global flag NAME at argv[*i], as --NAME VALUE or --NAME=VALUE; advances *i past a separate value. */
static bool string_flag(char **argv, int *i, const char *name, const char **value)
{
	const char *a = argv[*i] + 2;
	size_t len = strlen(name);
	if (strncmp(a, name, len) != 0)
		return false;
	if (a[len] == '=') {
		*value = a + len + 1;
		return true;
	}
	if (a[len] != '\0' || !argv[*i + 1])
		return false;
	*value = argv[++*i];
	return true;
}

/* Whether this process is in a user namespace other than the initial one: its uid_map is not the identity
 * `0 0 4294967295` alone (rootless.ts, uidMapIsUserNs). */
static bool in_user_namespace(void)
{
	char buf[256] = {0};
	FILE *f = fopen("/proc/self/uid_map", "re");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	unsigned long inside, outside, count;
	int used = 0;
	if (sscanf(buf, " %lu %lu %lu %n", &inside, &outside, &count, &used) != 3)
		return true;
	return !(inside == 0 && outside == 0 && count == 4294967295UL && buf[used] == '\0');
}

/* The default --root, by the rule of src/runtime/rootless.ts (defaultRoot), as runc's: $XDG_RUNTIME_DIR/pocrun
 * for a user other than root (and for root in a user namespace whose USER is not root), else /run/pocrun. */
static const char *default_root(void)
{
	static char buf[PATH_MAX];
	const char *xdg = getenv("XDG_RUNTIME_DIR"), *user = getenv("USER");
	if (!xdg || !*xdg)
		return "/run/pocrun";
	if (geteuid() == 0 && !((!user || strcmp(user, "root") != 0) && in_user_namespace()))
		return "/run/pocrun";
	size_t len = strlen(xdg);
	while (len > 1 && xdg[len - 1] == '/')
		len--;
	if (snprintf(buf, sizeof buf, "%.*s/pocrun", (int)len, xdg) >= (int)sizeof buf)
		defer(); /* too long to be a path: the TypeScript program says so */
	return buf;
}

/* --rootless's value is one the TypeScript program accepts (rootless.ts, parseRootlessFlag). */
static bool rootless_value(const char *v)
{
	static const char *const ok[] = {"", "auto", "1", "t", "T", "true", "TRUE", "True", "0", "f", "F", "false", "FALSE", "False"};
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
		if (strcmp(v, ok[i]) == 0)
			return true;
	return false;
}

/* The container id, when it is one the TypeScript program would accept (src/vocabulary/container-id.ts). */
static bool plain_id(const char *id)
{
	size_t len = strlen(id);
	if (len == 0 || len > ID_MAX_LENGTH || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = id[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || !strchr(ID_PUNCTUATION, c)))
			return false;
	}
	return true;
}

static void __attribute__((noreturn)) finish(enum outcome o)
{
	if (o == DEFER)
		defer();
	if (fflush(stdout) != 0 && errno != EPIPE)
		exit(1);
	exit(o == DONE ? 0 : 1);
}

int main(int argc, char **argv)
{
	saved_argv = argv;
	struct front f = {.root = NULL};
	const char *log_format = "text", *criu = NULL, *rootless = "auto";
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	if (strcmp(name, "poc") == 0 || strncmp(name, "poc-", 4) == 0)
		defer();
	/* pocrun's commands are short: JavaScriptCore's JIT never pays for itself in them, and its threads and
	 * code cost each TypeScript process 1.2-1.5 MB, which 50 containers created at once multiply. (Not for poc,
	 * whose bench and image import are long.) A value already set is kept. */
	setenv("BUN_JSC_useJIT", "0", 0);
	/* Nor a thread for Bun's allocator: mimalloc starts its scavenger (it returns freed pages to the kernel
	 * after purge_delay, 100 ms) at the first Bun.spawn, so every create, run and exec made a thread that only
	 * the exit tore down. Without it mimalloc purges on the main thread as it allocates (the same CPU time,
	 * measured). mimalloc reads MIMALLOC_<option> at start-up; a value already set is kept. */
	setenv("MIMALLOC_SCAVENGER", "0", 0);
	unsetenv(SLOT_FD_ENV); /* only a slot taken here is one */
	unsetenv(CRIU_SWRK_ENV); /* and only a criu started here */

	bool debug = false;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strncmp(argv[i], "--", 2) != 0)
			defer(); /* -h, -v, or something to explain */
		if (string_flag(argv, &i, "root", &f.root) || string_flag(argv, &i, "log", &f.log_file) ||
		    string_flag(argv, &i, "log-format", &log_format) || string_flag(argv, &i, "criu", &criu) ||
		    string_flag(argv, &i, "rootless", &rootless) || strcmp(argv[i], "--systemd-cgroup") == 0)
			continue;
		if (strcmp(argv[i], "--debug") == 0) {
			debug = true;
			continue;
		}
		defer(); /* --help, --version, or an unknown flag */
	}
	if (!rootless_value(rootless) || i >= argc)
		defer();
	const char *cmd = argv[i++];
	if (strcmp(cmd, "checkpoint") == 0) {
		start_criu_swrk(criu);
		defer();
	}
	if (debug)
		defer(); /* the TypeScript program's debug lines */
	if (!f.root)
		f.root = default_root();
	if (strcmp(log_format, "json") == 0)
		f.log_json = true;
	else if (strcmp(log_format, "text") != 0)
		defer();
	if (strcmp(cmd, "create") == 0 || strcmp(cmd, "run") == 0 || strcmp(cmd, "exec") == 0) {
		take_start_slot(f.root);
		defer();
	}

	/* The command's own arguments: flags it understands here, then positional ones. */
	const char *pos[2] = {NULL, NULL};
	int npos = 0;
	bool all = false, force = false;
	for (; i < argc; i++) {
		/* --force matters for a running or paused container, which delete defers, and an unknown one. */
		if (strcmp(cmd, "delete") == 0 && (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "-f") == 0)) {
			force = true;
			continue;
		}
		if (strcmp(cmd, "kill") == 0 && (strcmp(argv[i], "--all") == 0 || strcmp(argv[i], "-a") == 0)) {
			all = true;
			continue;
		}
		if (argv[i][0] == '-' || npos == 2)
			defer();
		pos[npos++] = argv[i];
	}
	if (npos == 0 || !plain_id(pos[0]))
		defer();
	if (strcmp(cmd, "kill") == 0)
		finish(cmd_kill(&f, pos[0], npos == 2 ? pos[1] : "SIGTERM", all));
	if (npos != 1)
		defer();
	if (strcmp(cmd, "state") == 0)
		finish(cmd_state(&f, pos[0]));
	if (strcmp(cmd, "start") == 0)
		finish(cmd_start(&f, pos[0]));
	if (strcmp(cmd, "delete") == 0)
		finish(cmd_delete(&f, pos[0], force));
	defer();
}
