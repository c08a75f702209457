/*
 * pocrun-systemd: the D-Bus calls of pocrun's systemd cgroup driver (src/cgroups/systemd.ts), made with sd-bus
 * from libsystemd, as crun makes them. The TypeScript driver decides everything (unit name, slice, which
 * properties with which values, the bound on the wait); this program only marshals them and waits for systemd's
 * job. It is a program of its own, linked with libsystemd, so that nothing else pays for loading that library:
 * only a container made with --systemd-cgroup runs it.
 *
 *   pocrun-systemd start UNIT PROPERTY...   StartTransientUnit(UNIT, "replace"), wait for its job
 *   pocrun-systemd set UNIT PROPERTY...     SetUnitProperties(UNIT, runtime=true)
 *   pocrun-systemd stop UNIT                StopUnit(UNIT, "replace"), wait for its job, ResetFailedUnit, then until
 *                                           the unit is gone; a unit that is gone is fine
 *
 * A job may take JOB_TIMEOUT_MS (runc's bound); then it is an error. The TypeScript driver runs start, set and
 * stop; the native front runs stop for a plain delete of a systemd container (src/native/front/container.c).
 *
 * A PROPERTY is NAME SIGNATURE then its value: one argument for b (0 or 1), s, t, u; a count then that many
 * arguments for as, au, ay; a count then two arguments (path, access) per entry for a(ss). See
 * encodeProperties in src/cgroups/systemd-bus.ts, the other end.
 *
 * As root, it talks to systemd's own socket (/run/systemd/private), as systemctl does: no bus daemon in between,
 * and systemd sends every job signal there. Otherwise, or when that socket is missing, the system bus.
 * Errors: one line on stderr ("<what>: <message> [<D-Bus error name>]"), exit status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#define DEST "org.freedesktop.systemd1"
#define PATH "/org/freedesktop/systemd1"
#define MANAGER "org.freedesktop.systemd1.Manager"

static const char *unit_name = "";

#define JOB_TIMEOUT_MS 30000

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void __attribute__((noreturn)) die_bus(const char *what, const sd_bus_error *e, int r)
{
	if (e && sd_bus_error_is_set(e))
		die("%s: %s [%s]", what, e->message ? e->message : e->name, e->name);
	die("%s: %s", what, strerror(-r));
}

static uint64_t now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Whether this process runs in a user namespace other than the initial one (uid_map not `0 0 4294967295`). */
static bool in_user_namespace(void)
{
	FILE *f = fopen("/proc/self/uid_map", "re");
	if (!f)
		return false;
	unsigned long inside, outside, count;
	int n = fscanf(f, "%lu %lu %lu", &inside, &outside, &count);
	fclose(f);
	return !(n == 3 && inside == 0 && outside == 0 && count == 4294967295UL);
}

static sd_bus *connect_systemd(bool *direct)
{
	sd_bus *bus = NULL;
	int r;
	/* Rootless: not root, or root of a user namespace (rootless podman's, poc's; runc's userns.RunningInUserNS):
	 * the system's manager would refuse such a caller. */
	bool rootless = geteuid() != 0 || in_user_namespace();
	if (!rootless && access("/run/systemd/private", F_OK) == 0) {
		if ((r = sd_bus_new(&bus)) < 0)
			die_bus("sd_bus_new", NULL, r);
		if ((r = sd_bus_set_address(bus, "unix:path=/run/systemd/private")) >= 0 && (r = sd_bus_start(bus)) >= 0) {
			*direct = true;
			return bus;
		}
		sd_bus_unref(bus);
		bus = NULL;
	}
	*direct = false;
	/* An unprivileged caller asks its own manager (systemd --user) on the user's bus, as runc's rootless driver. */
	if (rootless) {
		if ((r = sd_bus_open_user(&bus)) < 0)
			die_bus("connect to the user's bus (systemd --user, $XDG_RUNTIME_DIR/bus)", NULL, r);
		return bus;
	}
	if ((r = sd_bus_open_system(&bus)) < 0)
		die_bus("connect to the system bus", NULL, r);
	return bus;
}

static unsigned long long number(const char *text, unsigned long long max)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(text, &end, 10);
	if (errno || *end || !*text || text[0] == '-' || n > max)
		die("property value %s: not a number in range", text);
	return n;
}

/* Appends the properties argv[0..argc) as a(sv); returns how many arguments were used. */
static void append_properties(sd_bus_message *m, int argc, char **argv)
{
	int r, i = 0;
#define NEXT() (i < argc ? argv[i++] : (die("property list ends too early"), ""))
#define CHECK(x) \
	do { \
		if ((r = (x)) < 0) \
			die_bus("build the message", NULL, r); \
	} while (0)
	CHECK(sd_bus_message_open_container(m, 'a', "(sv)"));
	while (i < argc) {
		const char *name = NEXT(), *sig = NEXT();
		CHECK(sd_bus_message_open_container(m, 'r', "sv"));
		CHECK(sd_bus_message_append_basic(m, 's', name));
		CHECK(sd_bus_message_open_container(m, 'v', sig));
		if (strcmp(sig, "b") == 0) {
			int b = (int)number(NEXT(), 1);
			CHECK(sd_bus_message_append_basic(m, 'b', &b));
		} else if (strcmp(sig, "s") == 0) {
			CHECK(sd_bus_message_append_basic(m, 's', NEXT()));
		} else if (strcmp(sig, "t") == 0) {
			uint64_t t = number(NEXT(), UINT64_MAX);
			CHECK(sd_bus_message_append_basic(m, 't', &t));
		} else if (strcmp(sig, "u") == 0) {
			uint32_t u = (uint32_t)number(NEXT(), UINT32_MAX);
			CHECK(sd_bus_message_append_basic(m, 'u', &u));
		} else if (strcmp(sig, "as") == 0 || strcmp(sig, "au") == 0) {
			unsigned long long n = number(NEXT(), 1 << 20);
			CHECK(sd_bus_message_open_container(m, 'a', sig + 1));
			for (unsigned long long k = 0; k < n; k++) {
				if (sig[1] == 's') {
					CHECK(sd_bus_message_append_basic(m, 's', NEXT()));
				} else {
					uint32_t u = (uint32_t)number(NEXT(), UINT32_MAX);
					CHECK(sd_bus_message_append_basic(m, 'u', &u));
				}
			}
			CHECK(sd_bus_message_close_container(m));
		} else if (strcmp(sig, "ay") == 0) {
			unsigned long long n = number(NEXT(), 1 << 20);
			uint8_t *bytes = calloc(n ? n : 1, 1);
			if (!bytes)
				die("out of memory");
			for (unsigned long long k = 0; k < n; k++)
				bytes[k] = (uint8_t)number(NEXT(), 255);
			CHECK(sd_bus_message_append_array(m, 'y', bytes, n));
			free(bytes);
		} else if (strcmp(sig, "a(ss)") == 0) {
			unsigned long long n = number(NEXT(), 1 << 20);
			CHECK(sd_bus_message_open_container(m, 'a', "(ss)"));
			for (unsigned long long k = 0; k < n; k++) {
				const char *a = NEXT(), *b = NEXT();
				CHECK(sd_bus_message_append(m, "(ss)", a, b));
			}
			CHECK(sd_bus_message_close_container(m));
		} else {
			die("property %s: signature %s is not one this program marshals", name, sig);
		}
		CHECK(sd_bus_message_close_container(m)); /* v */
		CHECK(sd_bus_message_close_container(m)); /* r */
	}
	CHECK(sd_bus_message_close_container(m)); /* a */
#undef NEXT
#undef CHECK
}

struct job_wait {
	const char *job; /* the object path of the job to wait for */
	char result[64];
	bool done;
};

/* The job that a method's reply names (its object path) becomes the one to wait for; the reply is freed. */
static void take_job(struct job_wait *w, sd_bus_message *reply, const char *method)
{
	const char *job;
	int r = sd_bus_message_read(reply, "o", &job);
	if (r < 0) {
		char what[64];
		snprintf(what, sizeof what, "read %s's reply", method);
		die_bus(what, NULL, r);
	}
	w->job = strdup(job);
	sd_bus_message_unref(reply);
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	(void)ret_error;
	struct job_wait *w = userdata;
	uint32_t id;
	const char *path, *unit, *result;
	if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0 || !w->job)
		return 0;
	if (strcmp(path, w->job) == 0) {
		snprintf(w->result, sizeof(w->result), "%s", result);
		w->done = true;
	}
	return 0;
}

/* Processes the bus until the job is removed or the deadline passes; false on the deadline. */
static bool wait_job(sd_bus *bus, struct job_wait *w, uint64_t deadline)
{
	while (!w->done) {
		int r = sd_bus_process(bus, NULL);
		if (r < 0)
			die_bus("read from systemd", NULL, r);
		if (r > 0)
			continue;
		uint64_t now = now_usec();
		if (now >= deadline)
			return false;
		if ((r = sd_bus_wait(bus, deadline - now)) < 0 && r != -EINTR)
			die_bus("wait for systemd", NULL, r);
	}
	return true;
}

static int call_simple(sd_bus *bus, const char *member, sd_bus_error *e, sd_bus_message **reply, const char *types, ...)
{
	sd_bus_message *m = NULL;
	va_list ap;
	int r = sd_bus_message_new_method_call(bus, &m, DEST, PATH, MANAGER, member);
	if (r >= 0) {
		va_start(ap, types);
		r = sd_bus_message_appendv(m, types, ap);
		va_end(ap);
	}
	if (r >= 0)
		r = sd_bus_call(bus, m, 0, e, reply);
	sd_bus_message_unref(m);
	return r;
}

static void reset_failed(sd_bus *bus)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	call_simple(bus, "ResetFailedUnit", &e, NULL, "s", unit_name);
	sd_bus_error_free(&e);
}

static int cmd_start(sd_bus *bus, struct job_wait *w, uint64_t deadline, int argc, char **argv)
{
	for (int attempt = 0;; attempt++) {
		sd_bus_message *m = NULL, *reply = NULL;
		sd_bus_error e = SD_BUS_ERROR_NULL;
		int r = sd_bus_message_new_method_call(bus, &m, DEST, PATH, MANAGER, "StartTransientUnit");
		if (r < 0 || (r = sd_bus_message_append(m, "ss", unit_name, "replace")) < 0)
			die_bus("build the message", NULL, r);
		append_properties(m, argc, argv);
		if ((r = sd_bus_message_append(m, "a(sa(sv))", 0)) < 0)
			die_bus("build the message", NULL, r);
		r = sd_bus_call(bus, m, 0, &e, &reply);
		sd_bus_message_unref(m);
		if (r < 0 && attempt == 0 && sd_bus_error_has_name(&e, "org.freedesktop.systemd1.UnitExists")) {
			/* A failed unit of the same name left behind: reset it so that systemd unloads it, and retry
			 * once (as runc does). */
			sd_bus_error_free(&e);
			reset_failed(bus);
			continue;
		}
		if (r < 0)
			die_bus("StartTransientUnit", &e, r);
		take_job(w, reply, "StartTransientUnit");
		break;
	}
	if (!wait_job(bus, w, deadline)) {
		reset_failed(bus);
		die("systemd did not finish the job that starts the unit within the time allowed");
	}
	if (strcmp(w->result, "done") != 0) {
		reset_failed(bus);
		die("systemd's job that starts the unit ended with \"%s\" (see journalctl -u %s)", w->result, unit_name);
	}
	return 0;
}

static int cmd_set(sd_bus *bus, int argc, char **argv)
{
	sd_bus_message *m = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int r = sd_bus_message_new_method_call(bus, &m, DEST, PATH, MANAGER, "SetUnitProperties");
	if (r < 0 || (r = sd_bus_message_append(m, "sb", unit_name, 1)) < 0)
		die_bus("build the message", NULL, r);
	append_properties(m, argc, argv);
	if ((r = sd_bus_call(bus, m, 0, &e, NULL)) < 0)
		die_bus("SetUnitProperties", &e, r);
	sd_bus_message_unref(m);
	return 0;
}

static int cmd_stop(sd_bus *bus, struct job_wait *w, uint64_t deadline)
{
	sd_bus_message *reply = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int r = call_simple(bus, "StopUnit", &e, &reply, "ss", unit_name, "replace");
	if (r < 0) {
		if (sd_bus_error_has_name(&e, "org.freedesktop.systemd1.NoSuchUnit"))
			return 0;
		die_bus("StopUnit", &e, r);
	}
	take_job(w, reply, "StopUnit");
	if (!wait_job(bus, w, deadline))
		die("systemd did not finish the job that stops the unit within the time allowed");
	/* A unit whose processes were killed may be left "failed": let systemd unload it. */
	reset_failed(bus);
	/* The job is done once the unit is stopped; it is unloaded (its name free again) just after. */
	for (;;) {
		sd_bus_error_free(&e);
		r = call_simple(bus, "GetUnit", &e, NULL, "s", unit_name);
		if (r < 0 && sd_bus_error_has_name(&e, "org.freedesktop.systemd1.NoSuchUnit"))
			return 0;
		if (r < 0)
			die_bus("GetUnit", &e, r);
		if (now_usec() >= deadline)
			die("the unit was stopped but systemd still has it loaded after the time allowed");
		usleep(2000);
	}
}

int main(int argc, char **argv)
{
	if (argc < 3)
		die("usage: pocrun-systemd start|set|stop UNIT [PROPERTY...]");
	uint64_t deadline = now_usec() + (uint64_t)JOB_TIMEOUT_MS * 1000;
	const char *cmd = argv[1];
	unit_name = argv[2];
	bool direct;
	sd_bus *bus = connect_systemd(&direct);
	struct job_wait w = {0};
	int r;
	if (strcmp(cmd, "start") == 0 || strcmp(cmd, "stop") == 0) {
		/* The match comes first: the job may end before StartTransientUnit's reply is read. On a direct
		 * connection messages have no sender, and systemd sends its signals to every direct client; on the
		 * bus, only once this client has subscribed. */
		r = sd_bus_match_signal(bus, NULL, direct ? NULL : DEST, PATH, MANAGER, "JobRemoved", on_job_removed, &w);
		if (r < 0)
			die_bus("add a match for JobRemoved", NULL, r);
		if (!direct) {
			sd_bus_error e = SD_BUS_ERROR_NULL;
			if ((r = call_simple(bus, "Subscribe", &e, NULL, "")) < 0)
				die_bus("Subscribe", &e, r);
		}
	}
	if (strcmp(cmd, "start") == 0)
		r = cmd_start(bus, &w, deadline, argc - 3, argv + 3);
	else if (strcmp(cmd, "set") == 0)
		r = cmd_set(bus, argc - 3, argv + 3);
	else if (strcmp(cmd, "stop") == 0)
		r = cmd_stop(bus, &w, deadline);
	else
		die("unknown command %s", cmd);
	sd_bus_flush_close_unref(bus);
	return r;
}
