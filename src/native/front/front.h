/*
 * The native front of pocrun: the `pocrun` a user or an engine runs. See pocrun.c for why it exists.
 */
#ifndef POCRUN_FRONT_H
#define POCRUN_FRONT_H

#include <stdbool.h>
#include <stdio.h>
#include <yajl/yajl_tree.h>

/* What a command sees of the global flags. */
struct front {
	const char *root;
	const char *log_file;
	bool log_json;
};

/*
 * A command's answer. DONE and FAILED end the process (0 and 1). DEFER hands the whole command line to the
 * TypeScript program, which handles every case: a command defers whenever it meets something it does not do
 * itself (hooks, --all, a busy lock, an error to explain), and only before it has changed anything, or where
 * what it changed is idempotent for the TypeScript command that follows.
 */
enum outcome { DONE, FAILED, DEFER };

enum outcome cmd_state(const struct front *f, const char *id);
enum outcome cmd_start(const struct front *f, const char *id);
enum outcome cmd_kill(const struct front *f, const char *id, const char *signal, bool all);
enum outcome cmd_delete(const struct front *f, const char *id, bool force);

/*
 * Waits for one of the host's slots for a command that starts a container process (admission.c) and passes it
 * to the TypeScript program in SLOT_FD_ENV. Without a slot (a root it cannot use, a wait too long) it returns
 * all the same: admission only spreads the load, it never refuses a command.
 */
#define SLOT_FD_ENV "POCRUN_SLOT_FD"
void take_start_slot(const char *root);

/*
 * checkpoint's criu: starts `criu swrk` on a socket pair before the TypeScript program starts (criu.c), and tells
 * that program in CRIU_SWRK_ENV: "FD PID PATH", or empty where it found or started no criu.
 */
#define CRIU_SWRK_ENV "POCRUN_CRIU_SWRK"
void start_criu_swrk(const char *criu_flag);

/* A JSON string literal, escaped as JSON.stringify escapes it. */
void json_string(FILE *out, const char *s);

/* Reports an error as the TypeScript program does: "pocrun: MSG" on stderr, and a line in --log. */
void report_error(const struct front *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
